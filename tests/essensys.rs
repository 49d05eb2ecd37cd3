//! The essensys Platform client against the essensys simulator (our designed contract): login and
//! token refresh, paging, every entity, conflicts, Wi-Fi invitations, tap-to-book, faults, secrets.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

use flexgate::http::{HttpError, RetryPolicy};
use flexgate::sandbox::essensys::{
    Entity, FloorSeed, Simulator, SimulatorHandle, SimulatorOptions, SiteSeed, TapRefusal,
};
use flexgate::sandbox::faults::{Fault, FaultRule, Route};
use flexgate::sandbox::kit::TokenControls;
use flexgate::vendors::essensys::model::{
    BookingFilter, BookingSource, BookingStatus, BookingUpdate, ContractKind, ContractUpdate,
    FloorUpdate, InvitationStatus, NewBooking, NewContract, NewFloor, NewOccupier, NewSpace,
    NewUser, OccupierKind, OccupierUpdate, SiteService, SpaceUpdate, UserUpdate,
};
use flexgate::vendors::essensys::{Clock, EssensysApi, EssensysClient, EssensysError};

/// A clock tests move by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(Utc::now())))
    }

    fn advance(&self, seconds: i64) {
        *self.0.lock().unwrap() += chrono::Duration::seconds(seconds);
    }

    fn clock(&self) -> Clock {
        let now = Arc::clone(&self.0);
        Arc::new(move || *now.lock().unwrap())
    }
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_total: Duration::from_secs(20),
        default_retry_after: Duration::from_millis(10),
    }
}

async fn simulator() -> SimulatorHandle {
    Simulator::start(SimulatorOptions::default()).await.unwrap()
}

fn client(sim: &SimulatorHandle, page_size: u32) -> EssensysClient {
    let mut config = sim.client_config().unwrap();
    config.page_size = page_size;
    config.retry = quick_retry();
    config.requests_per_second = 1000.0;
    EssensysClient::new(config).unwrap()
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 2, h, m, 0).unwrap()
}

fn new_user(occupier_id: &str, email: &str, member: &str) -> NewUser {
    NewUser {
        occupier_id: occupier_id.to_owned(),
        email: email.to_owned(),
        first_name: "Ada".to_owned(),
        last_name: "Lovelace".to_owned(),
        mobile: Some("+447700900123".to_owned()),
        external_ref: Some(member.to_owned()),
    }
}

#[tokio::test]
async fn logs_in_once_and_logs_in_again_once_after_a_401() {
    let sim = simulator().await;
    sim.add_site("Soho", &[SiteService::Wifi]);
    let client = client(&sim, 50);

    assert_eq!(client.list_sites().await.unwrap().len(), 1);
    assert_eq!(client.list_sites().await.unwrap().len(), 1);
    assert_eq!(sim.login_count(), 1, "the token is cached between calls");

    sim.revoke_access_tokens();
    assert_eq!(client.list_sites().await.unwrap().len(), 1);
    assert_eq!(sim.login_count(), 2, "one re-login after the 401");
    assert_eq!(
        sim.faults().responses_matching(
            &Route::path("/api/v1/sites"),
            reqwest::StatusCode::UNAUTHORIZED
        ),
        1
    );
}

#[tokio::test]
async fn token_is_replaced_before_expiry_and_when_the_server_expired_it() {
    let server_clock = TestClock::new();
    let sim = Simulator::start(SimulatorOptions {
        token_lifetime: Duration::from_secs(600),
        clock: server_clock.clock().into(),
        ..SimulatorOptions::default()
    })
    .await
    .unwrap();
    sim.add_site("Soho", &[]);
    let client_clock = TestClock::new();
    let mut config = sim.client_config().unwrap();
    config.retry = quick_retry();
    config.token_refresh_margin = Duration::from_secs(60);
    let client = EssensysClient::new(config)
        .unwrap()
        .with_clock(client_clock.clock());

    client.list_sites().await.unwrap();
    client_clock.advance(530);
    client.list_sites().await.unwrap();
    assert_eq!(
        sim.login_count(),
        1,
        "still 70 s left, more than the margin"
    );
    client_clock.advance(20);
    client.list_sites().await.unwrap();
    assert_eq!(
        sim.login_count(),
        2,
        "inside the margin: logged in before expiry"
    );

    // The server thinks the token expired although the client does not: 401, one re-login.
    server_clock.advance(601);
    client.list_sites().await.unwrap();
    assert_eq!(sim.login_count(), 3);
    assert_eq!(client.login_count(), 3);
}

#[tokio::test]
async fn wrong_password_is_a_login_error_without_the_password() {
    let sim = simulator().await;
    let mut config = sim.client_config().unwrap();
    config.password = "Wrong-Pa55word-Zz".into();
    config.retry = quick_retry();
    let client = EssensysClient::new(config).unwrap();

    let error = client.list_sites().await.unwrap_err();

    assert!(
        matches!(
            &error,
            EssensysError::Login {
                source: HttpError::Unauthorized { .. },
                ..
            }
        ),
        "{error:?}"
    );
    let shown = format!("{error} {error:?} {client:?}");
    assert!(!shown.contains("Wrong-Pa55word-Zz"), "{shown}");
    assert!(!shown.contains(sim.login.password.expose()), "{shown}");
    assert!(error.to_string().contains("Platform user"), "{error}");
}

#[tokio::test]
async fn lists_follow_the_cursor_to_the_last_page() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[SiteService::Elumo]);
    for n in 0..7 {
        sim.add_floor(&site.id, &format!("Floor {n}")).unwrap();
    }
    let client = client(&sim, 3);

    let floors = client.list_floors(&site.id).await.unwrap();

    let names: Vec<String> = floors.iter().map(|f| f.name.clone()).collect();
    let expected: Vec<String> = (0..7).map(|n| format!("Floor {n}")).collect();
    assert_eq!(names, expected);
    let path = format!("/api/v1/sites/{}/floors", site.id);
    assert_eq!(sim.faults().requests(&reqwest::Method::GET, &path), 3);
}

#[tokio::test]
async fn a_page_that_keeps_failing_fails_the_whole_list() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[]);
    for n in 0..5 {
        sim.add_floor(&site.id, &format!("Floor {n}")).unwrap();
    }
    let path = format!("/api/v1/sites/{}/floors", site.id);
    sim.faults().add(
        FaultRule::new(
            Route::path(path),
            Fault::Status {
                status: reqwest::StatusCode::BAD_GATEWAY,
                body: None,
            },
        )
        .after(1),
    );
    let client = client(&sim, 2);

    let error = client.list_floors(&site.id).await.unwrap_err();

    assert!(
        matches!(
            &error,
            EssensysError::Http {
                source: HttpError::Transient { attempts: 4, .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable_later());
}

#[tokio::test]
async fn creates_lists_and_updates_every_entity() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[SiteService::Wifi, SiteService::Elumo]);
    let client = client(&sim, 2);

    let sites = client.list_sites().await.unwrap();
    assert_eq!(sites.len(), 1);
    assert!(sites[0].offers(SiteService::Wifi) && sites[0].offers(SiteService::Elumo));

    let floor = client
        .create_floor(
            &site.id,
            &NewFloor {
                name: "Ground".into(),
                external_ref: Some("orn-floor-1".into()),
            },
        )
        .await
        .unwrap();
    let space = client
        .create_space(
            &site.id,
            &NewSpace {
                floor_id: Some(floor.id.clone()),
                name: "Board Room".into(),
                bookable: true,
                capacity: Some(8),
                external_ref: Some("orn-res-1".into()),
            },
        )
        .await
        .unwrap();
    let occupier = client
        .create_occupier(
            &site.id,
            &NewOccupier {
                name: "Acme Ltd".into(),
                kind: OccupierKind::Company,
                email: Some("office@acme.example".into()),
                external_ref: Some("orn-co-1".into()),
            },
        )
        .await
        .unwrap();
    let contract = client
        .create_contract(
            &site.id,
            &NewContract {
                occupier_id: occupier.id.clone(),
                kind: ContractKind::Standard,
                start_date: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
                end_date: None,
                external_ref: None,
            },
        )
        .await
        .unwrap();
    let user = client
        .create_user(
            &site.id,
            &new_user(&occupier.id, "ada@acme.example", "orn-mem-1"),
        )
        .await
        .unwrap();
    let booking = client
        .create_booking(
            &site.id,
            &NewBooking {
                space_id: space.id.clone(),
                user_id: Some(user.id.clone()),
                occupier_id: Some(occupier.id.clone()),
                start: at(10, 0),
                end: at(11, 0),
                external_ref: Some("orn-bkg-1".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(booking.source, BookingSource::Officernd);
    assert_eq!(booking.status, BookingStatus::Confirmed);

    assert_eq!(
        client.list_floors(&site.id).await.unwrap(),
        vec![floor.clone()]
    );
    assert_eq!(
        client.list_spaces(&site.id).await.unwrap(),
        vec![space.clone()]
    );
    assert_eq!(
        client.list_occupiers(&site.id).await.unwrap(),
        vec![occupier.clone()]
    );
    assert_eq!(
        client.list_contracts(&site.id).await.unwrap(),
        vec![contract.clone()]
    );
    assert_eq!(
        client.list_users(&site.id).await.unwrap(),
        vec![user.clone()]
    );
    assert_eq!(
        client
            .list_bookings(&site.id, &BookingFilter::default())
            .await
            .unwrap(),
        vec![booking.clone()]
    );
    assert_eq!(
        sim.spaces(&site.id)[0].external_ref.as_deref(),
        Some("orn-res-1")
    );
    assert_eq!(sim.users()[0].mobile.as_deref(), Some("+447700900123"));

    // Updates overwrite only the fields sent.
    let floor = client
        .update_floor(
            &site.id,
            &floor.id,
            &FloorUpdate {
                name: Some("Level 0".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (floor.name.as_str(), floor.external_ref.as_deref()),
        ("Level 0", Some("orn-floor-1"))
    );
    let occupier = client
        .update_occupier(
            &site.id,
            &occupier.id,
            &OccupierUpdate {
                name: Some("Acme Group".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(occupier.email.as_deref(), Some("office@acme.example"));
    let contract = client
        .update_contract(
            &site.id,
            &contract.id,
            &ContractUpdate {
                end_date: NaiveDate::from_ymd_opt(2026, 5, 31),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(contract.end_date, NaiveDate::from_ymd_opt(2026, 5, 31));
    let moved = client
        .update_booking(
            &site.id,
            &booking.id,
            &BookingUpdate {
                start: Some(at(12, 0)),
                end: Some(at(13, 0)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((moved.start, moved.end), (at(12, 0), at(13, 0)));
    let cancelled = client.cancel_booking(&site.id, &booking.id).await.unwrap();
    assert_eq!(cancelled.status, BookingStatus::Cancelled);
    let again = client.cancel_booking(&site.id, &booking.id).await.unwrap();
    assert_eq!(
        again.status,
        BookingStatus::Cancelled,
        "cancelling twice is fine"
    );

    for (entity, writes) in [
        (Entity::Floor, 2),
        (Entity::Space, 1),
        (Entity::Occupier, 2),
        (Entity::Contract, 2),
        (Entity::User, 1),
        (Entity::Booking, 4),
    ] {
        assert_eq!(sim.writes(entity), writes, "{entity:?}");
    }
}

#[tokio::test]
async fn drift_made_by_hand_is_visible_and_overwritten() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[SiteService::Elumo]);
    let space = sim.add_space(&site.id, None, "Board Room", true).unwrap();
    let occupier = sim
        .add_occupier(&site.id, "Acme", OccupierKind::Company)
        .unwrap();
    let user = sim
        .add_user(
            &occupier.id,
            "ada@acme.example",
            "Ada",
            Some("+447700900123"),
        )
        .unwrap();
    let client = client(&sim, 50);

    sim.rename_space(&space.id, "Boardroom (old)").unwrap();
    sim.set_user_mobile(&user.id, Some("+447700900999"))
        .unwrap();
    let listed = client.list_spaces(&site.id).await.unwrap();
    assert_eq!(listed[0].name, "Boardroom (old)");
    assert_eq!(
        client.list_users(&site.id).await.unwrap()[0]
            .mobile
            .as_deref(),
        Some("+447700900999")
    );

    client
        .update_space(
            &site.id,
            &space.id,
            &SpaceUpdate {
                name: Some("Board Room".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client
        .update_user(
            &site.id,
            &user.id,
            &UserUpdate {
                mobile: Some("+447700900123".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(sim.spaces(&site.id)[0].name, "Board Room");
    assert_eq!(sim.users()[0].mobile.as_deref(), Some("+447700900123"));
    assert_eq!(sim.writes(Entity::Space), 1);
    assert_eq!(sim.writes(Entity::User), 1);
}

#[tokio::test]
async fn an_email_used_anywhere_on_the_platform_is_a_specific_error() {
    let sim = simulator().await;
    let north = sim.add_site("North", &[SiteService::Wifi]);
    let south = sim.add_site("South", &[SiteService::Wifi]);
    let acme = sim
        .add_occupier(&north.id, "Acme", OccupierKind::Company)
        .unwrap();
    let existing = sim
        .add_user(&acme.id, "ada@acme.example", "Ada", None)
        .unwrap();
    let globex = sim
        .add_occupier(&south.id, "Globex", OccupierKind::Company)
        .unwrap();
    let client = client(&sim, 50);

    let error = client
        .create_user(
            &south.id,
            &new_user(&globex.id, "ADA@acme.example", "orn-mem-9"),
        )
        .await
        .unwrap_err();

    match &error {
        EssensysError::EmailTaken { email, .. } => assert_eq!(email, "ADA@acme.example"),
        other => panic!("expected EmailTaken, got {other:?}"),
    }
    assert_eq!(error.code(), Some("email_taken"));
    assert_eq!(sim.users().len(), 1, "nothing was created");
    let found = client.find_user_by_email("ada@acme.example").await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(existing.id));
    assert_eq!(
        client
            .find_user_by_email("nobody@acme.example")
            .await
            .unwrap(),
        None
    );

    let bob = client
        .create_user(
            &south.id,
            &new_user(&globex.id, "bob@globex.example", "orn-mem-10"),
        )
        .await
        .unwrap();
    let error = client
        .update_user(
            &south.id,
            &bob.id,
            &UserUpdate {
                email: Some("ada@acme.example".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, EssensysError::EmailTaken { email, .. } if email == "ada@acme.example"),
        "{error:?}"
    );
}

#[tokio::test]
async fn strict_validation_is_surfaced_with_codes() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[SiteService::Elumo]);
    let other = sim.add_site("Elsewhere", &[]);
    let foreign_floor = sim.add_floor(&other.id, "Other floor").unwrap();
    let occupier = sim
        .add_occupier(&site.id, "Acme", OccupierKind::Company)
        .unwrap();
    let client = client(&sim, 50);

    let error = client.list_floors("site_missing").await.unwrap_err();
    assert!(matches!(error, EssensysError::NotFound { .. }), "{error:?}");

    let error = client
        .create_space(
            &site.id,
            &NewSpace {
                floor_id: Some(foreign_floor.id.clone()),
                name: "Pod".into(),
                bookable: true,
                capacity: None,
                external_ref: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, EssensysError::NotFound { .. }), "{error:?}");

    let mut bad_mobile = new_user(&occupier.id, "eve@acme.example", "orn-mem-2");
    bad_mobile.mobile = Some("07700 900123".into());
    let error = client.create_user(&site.id, &bad_mobile).await.unwrap_err();
    assert!(
        matches!(&error, EssensysError::Rejected { code, message, .. } if code == "validation_failed" && message.contains("E.164")),
        "{error:?}"
    );

    let floor = NewFloor {
        name: "Ground".into(),
        external_ref: Some("orn-floor-1".into()),
    };
    client.create_floor(&site.id, &floor).await.unwrap();
    let error = client.create_floor(&site.id, &floor).await.unwrap_err();
    assert_eq!(error.code(), Some("external_ref_taken"), "{error:?}");
    assert!(matches!(error, EssensysError::Conflict { .. }));

    let contract = NewContract {
        occupier_id: occupier.id.clone(),
        kind: ContractKind::Standard,
        start_date: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        end_date: None,
        external_ref: None,
    };
    client.create_contract(&site.id, &contract).await.unwrap();
    let error = client
        .create_contract(&site.id, &contract)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("contract_exists"), "{error:?}");
    assert_eq!(sim.contracts(&site.id).len(), 1);
}

#[tokio::test]
async fn the_simulator_answers_bad_requests_with_the_designed_error_body() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[]);
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/sites/{}/floors", sim.base_url, site.id);

    let unauthenticated = http.get(&url).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let body: Value = unauthenticated.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");

    let login: Value = http
        .post(format!("{}/api/auth/login", sim.base_url))
        .json(&json!({"username": sim.login.username, "password": sim.login.password.expose()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["accessToken"].as_str().unwrap().to_owned();
    assert!(login["expiresIn"].as_u64().unwrap() > 0);

    let unknown_field = http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"name": "Ground", "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), 422);
    let body: Value = unknown_field.json().await.unwrap();
    assert_eq!(body["error"]["code"], "validation_failed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );

    let bad_limit = http
        .get(&url)
        .bearer_auth(&token)
        .query(&[("limit", "500")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_limit.status(), 422);
    let unknown_id = http
        .patch(format!("{url}/flr_missing"))
        .bearer_auth(&token)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_id.status(), 404);
    let body: Value = unknown_id.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(sim.writes(Entity::Floor), 0);
}

#[tokio::test]
async fn wifi_invitation_is_sent_once() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[SiteService::Wifi]);
    let access_only = sim.add_site("Door only", &[SiteService::Elumo]);
    let occupier = sim
        .add_occupier(&site.id, "Acme", OccupierKind::Company)
        .unwrap();
    let user = sim
        .add_user(&occupier.id, "ada@acme.example", "Ada", None)
        .unwrap();
    let door_occupier = sim
        .add_occupier(&access_only.id, "Globex", OccupierKind::Company)
        .unwrap();
    let door_user = sim
        .add_user(&door_occupier.id, "bob@globex.example", "Bob", None)
        .unwrap();
    let client = client(&sim, 50);

    let first = client
        .send_wifi_invitation(&site.id, &user.id)
        .await
        .unwrap();
    let second = client
        .send_wifi_invitation(&site.id, &user.id)
        .await
        .unwrap();

    assert_eq!(first.status, InvitationStatus::Sent);
    assert_eq!(second.status, InvitationStatus::AlreadySent);
    assert_eq!(second.sent_at, first.sent_at);
    let sent = sim.wifi_invitations();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].user_id.as_str(), sent[0].email.as_str()),
        (user.id.as_str(), "ada@acme.example")
    );

    let error = client
        .send_wifi_invitation(&access_only.id, &door_user.id)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("service_not_offered"), "{error:?}");
    let error = client
        .send_wifi_invitation(&site.id, "usr_missing")
        .await
        .unwrap_err();
    assert!(matches!(error, EssensysError::NotFound { .. }), "{error:?}");
    assert_eq!(sim.wifi_invitations().len(), 1);
}

#[tokio::test]
async fn tap_to_book_uses_15_minute_slots_of_at_least_7_minutes() {
    let sim = simulator().await;
    let site = sim
        .seed_site(&SiteSeed {
            name: "Soho".into(),
            services: vec![SiteService::Elumo],
            floors: vec![FloorSeed {
                name: "Ground".into(),
                spaces: vec![
                    ("Pod 1".into(), true),
                    ("Pod 2".into(), true),
                    ("Kitchen".into(), false),
                ],
            }],
            occupiers: vec!["Acme".into()],
        })
        .unwrap();
    let spaces = sim.spaces(&site.id);
    let (pod1, pod2, kitchen) = (&spaces[0], &spaces[1], &spaces[2]);
    let client = client(&sim, 50);

    let tapped = sim.tap_to_book(&pod1.id, None, at(15, 6)).unwrap();
    assert_eq!((tapped.start, tapped.end), (at(15, 0), at(15, 15)));
    assert_eq!(tapped.source, BookingSource::TapToBook);

    // 15:09 leaves 6 minutes of the 15:00 slot, under the 7-minute minimum: the next slot is added.
    let late = sim.tap_to_book(&pod2.id, None, at(15, 9)).unwrap();
    assert_eq!((late.start, late.end), (at(15, 0), at(15, 30)));

    assert!(matches!(
        sim.tap_to_book(&pod1.id, None, at(15, 10)),
        Err(TapRefusal::Occupied { booking_id, .. }) if booking_id == tapped.id
    ));
    assert!(matches!(
        sim.tap_to_book(&kitchen.id, None, at(15, 10)),
        Err(TapRefusal::NotBookable(_))
    ));
    let next_slot = sim.tap_to_book(&pod1.id, None, at(15, 16)).unwrap();
    assert_eq!((next_slot.start, next_slot.end), (at(15, 15), at(15, 30)));

    // OfficeRnD's own booking of the same space is listed, but not as tap-to-book.
    client
        .create_booking(
            &site.id,
            &NewBooking {
                space_id: pod1.id.clone(),
                user_id: None,
                occupier_id: None,
                start: at(16, 0),
                end: at(17, 0),
                external_ref: Some("orn-bkg-1".into()),
            },
        )
        .await
        .unwrap();
    let taps = client
        .list_tap_to_book_bookings(&site.id, at(15, 7))
        .await
        .unwrap();
    let ids: Vec<&str> = taps.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![late.id.as_str(), next_slot.id.as_str()],
        "created at/after 15:07, tap-to-book only"
    );
    assert_eq!(
        client
            .list_bookings(&site.id, &BookingFilter::default())
            .await
            .unwrap()
            .len(),
        4
    );

    // A booking over a tap-to-book slot is refused.
    let error = client
        .create_booking(
            &site.id,
            &NewBooking {
                space_id: pod2.id.clone(),
                user_id: None,
                occupier_id: None,
                start: at(15, 20),
                end: at(15, 45),
                external_ref: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("space_unavailable"), "{error:?}");

    // Created back in OfficeRnD: the sync records the OfficeRnD id on the tap-to-book booking.
    let linked = client
        .update_booking(
            &site.id,
            &tapped.id,
            &BookingUpdate {
                external_ref: Some("orn-bkg-2".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(linked.external_ref.as_deref(), Some("orn-bkg-2"));
    assert_eq!(
        (linked.start, linked.end, linked.source),
        (tapped.start, tapped.end, BookingSource::TapToBook)
    );
}

#[tokio::test]
async fn taps_need_an_elumo_site() {
    let sim = simulator().await;
    let site = sim.add_site("Wi-Fi only", &[SiteService::Wifi]);
    let space = sim.add_space(&site.id, None, "Pod", true).unwrap();
    assert!(matches!(
        sim.tap_to_book(&space.id, None, at(9, 0)),
        Err(TapRefusal::NoElumo(_))
    ));
    assert!(matches!(
        sim.tap_to_book("spc_missing", None, at(9, 0)),
        Err(TapRefusal::UnknownSpace(_))
    ));
    assert!(sim.bookings(&site.id).is_empty());
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let sim = simulator().await;
    sim.add_site("Soho", &[]);
    let client = client(&sim, 50);
    client.login().await.unwrap();
    sim.faults().inject_429(Route::path("/api/v1/sites"), 2, 1);

    let sites = client.list_sites().await.unwrap();

    assert_eq!(sites.len(), 1);
    let route = Route::path("/api/v1/sites");
    assert_eq!(
        sim.faults()
            .responses_matching(&route, reqwest::StatusCode::TOO_MANY_REQUESTS),
        2
    );
    assert_eq!(sim.faults().requests_matching(&route), 3);
}

#[tokio::test]
async fn too_many_requests_beyond_the_budget_is_rate_limited() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[]);
    let client = client(&sim, 50);
    sim.faults()
        .inject_429(Route::path_prefix("/api/v1/sites/"), 10, 60);

    let error = client.list_floors(&site.id).await.unwrap_err();

    assert!(
        matches!(&error, EssensysError::Http { source: HttpError::RateLimited { retry_after: Some(wait), .. }, .. } if wait.as_secs() == 60),
        "{error:?}"
    );
    assert!(error.is_retryable_later());
}

#[tokio::test]
async fn server_errors_are_retried_for_reads_but_creates_are_not_repeated() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[]);
    let client = client(&sim, 50);
    client.login().await.unwrap();
    let floors = format!("/api/v1/sites/{}/floors", site.id);
    sim.faults().inject_status(
        Route::path(floors.clone()).method(reqwest::Method::GET),
        2,
        reqwest::StatusCode::SERVICE_UNAVAILABLE,
    );

    assert!(client.list_floors(&site.id).await.unwrap().is_empty());
    assert_eq!(sim.faults().requests(&reqwest::Method::GET, &floors), 3);

    sim.faults().inject_status(
        Route::path(floors.clone()).method(reqwest::Method::POST),
        1,
        reqwest::StatusCode::INTERNAL_SERVER_ERROR,
    );
    let error = client
        .create_floor(
            &site.id,
            &NewFloor {
                name: "Ground".into(),
                external_ref: None,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            EssensysError::Http {
                source: HttpError::Transient { attempts: 1, .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(sim.faults().requests(&reqwest::Method::POST, &floors), 1);
    assert!(sim.floors(&site.id).is_empty());
}

#[tokio::test]
async fn malformed_replies_are_protocol_errors() {
    let sim = simulator().await;
    sim.add_site("Soho", &[]);
    let client = client(&sim, 50);
    client.login().await.unwrap();
    sim.faults().add(
        FaultRule::new(
            Route::path("/api/v1/sites"),
            Fault::Status {
                status: reqwest::StatusCode::OK,
                body: Some(json!({"sites": []})),
            },
        )
        .times(1),
    );

    let error = client.list_sites().await.unwrap_err();

    assert!(
        matches!(
            &error,
            EssensysError::Http {
                source: HttpError::Protocol { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_retryable_later());

    // A login reply without a token is a protocol error of the login, and shows none of the body.
    let fresh = Simulator::start(SimulatorOptions::default()).await.unwrap();
    fresh.faults().add(FaultRule::new(
        Route::path("/api/auth/login"),
        Fault::Status {
            status: reqwest::StatusCode::OK,
            body: Some(json!({"token": "abc-123-secret-ish"})),
        },
    ));
    let error = self::client(&fresh, 50).list_sites().await.unwrap_err();
    assert!(
        matches!(
            &error,
            EssensysError::Login {
                source: HttpError::Protocol { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains("abc-123-secret-ish"));
}

#[tokio::test]
async fn no_secret_reaches_an_error_or_debug_output() {
    let sim = simulator().await;
    let site = sim.add_site("Soho", &[SiteService::Wifi]);
    let occupier = sim
        .add_occupier(&site.id, "Acme", OccupierKind::Company)
        .unwrap();
    sim.add_user(&occupier.id, "ada@acme.example", "Ada", None)
        .unwrap();
    let client = client(&sim, 50);
    client.login().await.unwrap();
    let token = sim.last_issued_token().unwrap();

    sim.faults().inject_status(
        Route::path("/api/v1/sites"),
        10,
        reqwest::StatusCode::BAD_GATEWAY,
    );
    let errors = vec![
        client.list_sites().await.unwrap_err(),
        client.list_floors("site_missing").await.unwrap_err(),
        client
            .create_user(
                &site.id,
                &new_user(&occupier.id, "ada@acme.example", "orn-mem-1"),
            )
            .await
            .unwrap_err(),
        client
            .create_floor(
                &site.id,
                &NewFloor {
                    name: " ".into(),
                    external_ref: None,
                },
            )
            .await
            .unwrap_err(),
    ];
    sim.revoke_access_tokens();
    sim.faults().inject_status(
        Route::path("/api/auth/login"),
        10,
        reqwest::StatusCode::UNAUTHORIZED,
    );
    let mut errors = errors;
    errors.push(client.list_floors(&site.id).await.unwrap_err());
    assert!(
        matches!(errors.last(), Some(EssensysError::Login { .. })),
        "{:?}",
        errors.last()
    );

    for error in &errors {
        let shown = format!("{error} | {error:?}");
        assert!(!shown.contains(sim.login.password.expose()), "{shown}");
        assert!(!shown.contains(token.expose()), "{shown}");
    }
    let debug = format!("{client:?} {sim:?} {:?}", sim.client_config().unwrap());
    assert!(!debug.contains(sim.login.password.expose()), "{debug}");
}
