//! Brivo client against the Brivo simulator: auth and token refresh, paging, listing, user creation
//! with mobile passes, idempotent membership changes, the 16-group cap, resilience, strictness of
//! the simulator, and secrets kept out of errors.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use flexgate::http::{HttpError, RetryPolicy};
use flexgate::sandbox::brivo::{GrantKind, SeedUser, Simulator, SimulatorHandle, SimulatorOptions};
use flexgate::sandbox::faults::{Fault, FaultRule, Route};
use flexgate::sandbox::kit::{RateControls, TokenControls};
use flexgate::sync::{DesiredGroup, Mode, SnapshotHealth, SyncRequest};
use flexgate::vendors::brivo::{
    BrivoClient, BrivoConfig, BrivoMobilePassTarget, Clock, InvitationOutcome,
};
use flexgate::vendors::{DoorVendor, GrantContext, NewUser, VendorError, VendorGroup};

/// A clock the test moves by hand, shared by the simulator and the client.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(
            Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
        )))
    }

    fn clock(&self) -> Clock {
        let now = Arc::clone(&self.0);
        Arc::new(move || *now.lock().unwrap())
    }

    fn advance(&self, seconds: i64) {
        *self.0.lock().unwrap() += chrono::Duration::seconds(seconds);
    }
}

struct Setup {
    sim: SimulatorHandle,
    clock: TestClock,
}

async fn setup() -> Setup {
    setup_with(SimulatorOptions::default()).await
}

async fn setup_with(mut options: SimulatorOptions) -> Setup {
    let clock = TestClock::new();
    options.clock = clock.clock().into();
    let sim = Simulator::start(options).await.unwrap();
    Setup { sim, clock }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_total: Duration::from_secs(30),
        default_retry_after: Duration::from_millis(10),
    }
}

fn config(setup: &Setup, target: BrivoMobilePassTarget) -> BrivoConfig {
    let mut config = setup.sim.client_config(target).unwrap();
    config.retry = quick_retries();
    config.requests_per_second = 1000.0;
    config
}

fn client_from(setup: &Setup, config: BrivoConfig) -> BrivoClient {
    BrivoClient::new(config)
        .unwrap()
        .with_clock(setup.clock.clock())
}

fn client(setup: &Setup) -> BrivoClient {
    client_from(setup, config(setup, BrivoMobilePassTarget::BrivoApp))
}

fn group(id: &str) -> VendorGroup {
    VendorGroup {
        id: id.to_owned(),
        name: format!("group {id}"),
    }
}

fn new_user(officernd_id: &str, email: &str) -> NewUser {
    NewUser {
        officernd_id: officernd_id.to_owned(),
        first_name: "Ada".to_owned(),
        last_name: "Lovelace".to_owned(),
        email: email.to_owned(),
        phone: Some("+44 20 7946 0000".to_owned()),
    }
}

/// Asserts that neither Display nor Debug of `error` contains any of `secrets`.
fn assert_no_secret(error: &VendorError, secrets: &[&str]) {
    let shown = format!("{error} | {error:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "secret leaked in {shown}");
    }
}

fn secrets_of(sim: &SimulatorHandle) -> Vec<String> {
    vec![
        sim.api_key.expose().to_owned(),
        sim.client.secret.expose().to_owned(),
        sim.login.password.expose().to_owned(),
    ]
}

/// A raw token for hand-made requests against the simulator.
async fn raw_token(sim: &SimulatorHandle) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.base_url))
        .basic_auth(&sim.client.id, Some(sim.client.secret.expose()))
        .header("api-key", sim.api_key.expose())
        .form(&[
            ("grant_type", "password"),
            ("username", sim.login.username.as_str()),
            ("password", sim.login.password.expose()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn raw(
    sim: &SimulatorHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let token = raw_token(sim).await;
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.api_url()))
        .header("api-key", sim.api_key.expose())
        .header("Authorization", format!("bearer {token}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Auth

#[tokio::test]
async fn check_authenticates_with_password_grant_and_reports_counts() {
    let setup = setup().await;
    for name in ["Lobby", "Floor 1", "Floor 2"] {
        setup.sim.add_group(name);
    }
    setup
        .sim
        .add_user(SeedUser::new("Grace", "Hopper").email("grace@example.com"));

    let info = client(&setup).check().await.unwrap();

    assert_eq!((info.groups, info.users), (3, 1));
    assert_eq!(setup.sim.token_grants(), vec![GrantKind::Password]);
}

#[tokio::test]
async fn token_is_refreshed_with_the_refresh_grant_before_it_expires() {
    let setup = setup().await;
    setup.sim.add_group("Lobby");
    let client = client(&setup);

    client.list_groups().await.unwrap();
    setup.clock.advance(200); // 67 % of 300 s: keep the token
    client.list_groups().await.unwrap();
    assert_eq!(setup.sim.token_grants(), vec![GrantKind::Password]);

    setup.clock.advance(50); // 250 s: past 80 %, still valid; refresh proactively
    client.list_groups().await.unwrap();

    assert_eq!(
        setup.sim.token_grants(),
        vec![GrantKind::Password, GrantKind::RefreshToken]
    );
    assert_eq!(
        setup
            .sim
            .faults()
            .responses_matching(&Route::any(), StatusCode::UNAUTHORIZED),
        0,
        "a proactive refresh never lets a request hit an expired token"
    );
}

#[tokio::test]
async fn refused_refresh_token_falls_back_to_the_password_grant() {
    let setup = setup().await;
    let client = client(&setup);
    client.list_groups().await.unwrap();

    setup.sim.revoke_refresh_tokens();
    setup.clock.advance(290);
    client.list_groups().await.unwrap();

    assert_eq!(
        setup.sim.token_grants(),
        vec![GrantKind::Password, GrantKind::Password]
    );
}

#[tokio::test]
async fn rejected_token_is_replaced_once_and_the_call_repeated() {
    let setup = setup().await;
    setup.sim.add_group("Lobby");
    let client = client(&setup);
    client.list_groups().await.unwrap();

    setup.sim.revoke_access_tokens();
    let groups = client.list_groups().await.unwrap();

    assert_eq!(groups.len(), 1);
    assert_eq!(
        setup
            .sim
            .faults()
            .responses_matching(&Route::any(), StatusCode::UNAUTHORIZED),
        1
    );
    assert_eq!(
        setup.sim.token_grants(),
        vec![GrantKind::Password, GrantKind::RefreshToken]
    );
}

#[tokio::test]
async fn wrong_password_is_credentials_invalid_and_leaks_nothing() {
    let setup = setup().await;
    let mut config = config(&setup, BrivoMobilePassTarget::BrivoApp);
    config.password = "not-the-password-0123456789".into();

    let error = client_from(&setup, config).check().await.unwrap_err();

    assert!(
        matches!(&error, VendorError::CredentialsInvalid(message) if message.contains("Administrator ID")),
        "{error:?}"
    );
    let mut secrets = secrets_of(&setup.sim);
    secrets.push("not-the-password-0123456789".to_owned());
    assert_no_secret(
        &error,
        &secrets.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}

#[tokio::test]
async fn wrong_client_secret_is_credentials_invalid() {
    let setup = setup().await;
    let mut config = config(&setup, BrivoMobilePassTarget::BrivoApp);
    config.client_secret = "wrong-secret-abcdef0123456789".into();

    let error = client_from(&setup, config).list_users().await.unwrap_err();

    assert!(
        matches!(&error, VendorError::CredentialsInvalid(message) if message.contains("client id/secret")),
        "{error:?}"
    );
    assert_no_secret(&error, &["wrong-secret-abcdef0123456789"]);
}

#[tokio::test]
async fn missing_or_wrong_api_key_is_developer_inactive() {
    let setup = setup().await;
    let token = raw_token(&setup.sim).await;
    let response = reqwest::Client::new()
        .get(format!("{}/users", setup.sim.api_url()))
        .header("Authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("<h1>Developer Inactive</h1>"));

    let mut config = config(&setup, BrivoMobilePassTarget::BrivoApp);
    config.api_key = "inactive-key-0123456789abcdef".into();
    let error = client_from(&setup, config).check().await.unwrap_err();

    assert!(
        matches!(&error, VendorError::CredentialsInvalid(message) if message.contains("API key")),
        "{error:?}"
    );
    let secrets = secrets_of(&setup.sim);
    let mut all: Vec<&str> = secrets.iter().map(String::as_str).collect();
    all.push("inactive-key-0123456789abcdef");
    assert_no_secret(&error, &all);
}

#[tokio::test]
async fn token_endpoint_takes_query_parameters_like_the_recordings_but_not_json() {
    let setup = setup().await;
    let sim = &setup.sim;
    let post = || {
        reqwest::Client::new()
            .post(format!("{}/oauth/token", sim.base_url))
            .basic_auth(&sim.client.id, Some(sim.client.secret.expose()))
            .header("api-key", sim.api_key.expose())
    };

    let as_query = post()
        .query(&[
            ("grant_type", "password"),
            ("username", sim.login.username.as_str()),
            ("password", sim.login.password.expose()),
        ])
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(as_query.status(), StatusCode::OK);
    let body: Value = as_query.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 300);
    assert!(body["refresh_token"].is_string() && body["jti"].is_string());

    let as_json = post()
        .json(&json!({"grant_type": "password", "username": sim.login.username, "password": sim.login.password.expose()}))
        .send()
        .await
        .unwrap();
    assert_eq!(as_json.status(), StatusCode::BAD_REQUEST);
    let body: Value = as_json.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn config_and_client_debug_show_no_secret() {
    let setup = setup().await;
    let client = client(&setup);
    client.list_groups().await.unwrap();
    let shown = format!("{client:?} {:?} {:?}", client.config(), setup.sim);
    for secret in secrets_of(&setup.sim) {
        assert!(!shown.contains(&secret), "{shown}");
    }
}

// ---------------------------------------------------------------------------------------------
// Listing

#[tokio::test]
async fn lists_are_read_page_by_page_until_complete() {
    let setup = setup().await;
    for index in 0..130 {
        setup.sim.add_group(&format!("Group {index:03}"));
    }
    let mut user_ids = Vec::new();
    for index in 0..250 {
        user_ids.push(
            setup.sim.add_user(
                SeedUser::new(format!("First{index}"), format!("Last{index:03}"))
                    .email(format!("person{index}@example.com")),
            ),
        );
    }
    let big = setup.sim.add_group("Everyone");
    for id in &user_ids[..150] {
        setup.sim.dashboard_add_to_group(&big, id).unwrap();
    }
    let client = client(&setup);

    let groups = client.list_groups().await.unwrap();
    let users = client.list_users().await.unwrap();
    let members = client.list_group_members(&group(&big)).await.unwrap();

    assert_eq!(groups.len(), 131);
    assert!(groups.iter().any(|g| g.id == big && g.name == "Everyone"));
    assert_eq!(users.len(), 250);
    let mut listed: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
    listed.sort_unstable();
    let mut seeded: Vec<&str> = user_ids.iter().map(String::as_str).collect();
    seeded.sort_unstable();
    assert_eq!(listed, seeded);
    let mut members_sorted = members.clone();
    members_sorted.sort();
    let mut expected: Vec<String> = user_ids[..150].to_vec();
    expected.sort();
    assert_eq!(members_sorted, expected);

    let faults = setup.sim.faults();
    assert_eq!(faults.requests(&reqwest::Method::GET, "/v1/api/users"), 3);
    assert_eq!(faults.requests(&reqwest::Method::GET, "/v1/api/groups"), 2);
    assert_eq!(
        faults.requests(
            &reqwest::Method::GET,
            &setup.sim.api_path(&format!("/groups/{big}/users"))
        ),
        2
    );
}

#[tokio::test]
async fn users_carry_email_external_id_and_name() {
    let setup = setup().await;
    let linked = setup.sim.add_user(
        SeedUser::new("Grace", "Hopper")
            .email("Grace.Hopper@Example.com")
            .external_id("64f1c0ffee"),
    );
    let bare = setup.sim.add_user(SeedUser::new("No", "Email"));
    let (status, two_emails) = raw(
        &setup.sim,
        reqwest::Method::POST,
        "/users",
        Some(json!({
            "firstName": "Two", "lastName": "Mails",
            "emails": [{"address": "home@example.com", "type": "Home"},
                       {"address": "work@example.com", "type": "Work"}]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let users = client(&setup).list_users().await.unwrap();
    let find = |id: &str| users.iter().find(|u| u.id == id).unwrap();

    // Lists leave emails out (rec-08): a user with an external id is matched by it and its email
    // is not read; users without one are read one by one for their emails.
    let grace = find(&linked);
    assert_eq!(grace.email, None);
    assert_eq!(grace.external_id.as_deref(), Some("64f1c0ffee"));
    assert_eq!(grace.name, "Grace Hopper");
    assert_eq!(find(&bare).email, None);
    assert_eq!(find(&bare).external_id, None);
    let two_id = two_emails["id"].to_string();
    let two = find(&two_id);
    assert_eq!(two.email.as_deref(), Some("work@example.com"));
    let faults = setup.sim.faults();
    let reads = |id: &str| faults.requests(&reqwest::Method::GET, &format!("/v1/api/users/{id}"));
    assert_eq!((reads(&linked), reads(&bare), reads(&two_id)), (0, 1, 1));
}

/// Issue 12, point 5: user lists carry no `emails`; someone created by hand in Brivo (no
/// `externalId`) must still be recognised by email, not created again with a second invitation.
#[tokio::test]
async fn a_person_created_by_hand_is_found_by_email_not_created_again() {
    let setup = setup().await;
    let lobby = group(&setup.sim.add_group("OFFICERND_Lobby"));
    let by_hand = setup
        .sim
        .add_user(SeedUser::new("Ada", "Lovelace").email("Ada.Lovelace@Example.com"));
    for index in 0..5 {
        setup.sim.add_user(
            SeedUser::new(format!("Other{index}"), "Person")
                .email(format!("other{index}@example.com")),
        );
    }
    let client = client(&setup);
    let request = SyncRequest {
        groups: vec![DesiredGroup {
            group: lobby.clone(),
            people: vec![new_user(
                "64f1a2b3c4d5e6f708192a77",
                "ada.lovelace@example.com",
            )],
        }],
        mode: Mode::Apply,
        snapshot: SnapshotHealth::Complete { members: 1 },
        max_revocation_percent: 100,
        acknowledged_plan: None,
    };

    let report = flexgate::sync::run(&client, &request).await.unwrap();

    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.created_users, 0,
        "a duplicate Brivo user was created"
    );
    assert_eq!(setup.sim.users().len(), 6);
    assert!(
        setup.sim.invitations().is_empty(),
        "a second mobile-pass invitation was sent"
    );
    assert_eq!(setup.sim.group_member_ids(&lobby.id), vec![by_hand]);
}

#[tokio::test]
async fn emails_read_one_by_one_are_reused_for_a_while_then_read_again() {
    let setup = setup().await;
    let by_hand = setup
        .sim
        .add_user(SeedUser::new("Ada", "Lovelace").email("ada@example.com"));
    setup.sim.add_user(
        SeedUser::new("Linked", "Person")
            .email("linked@example.com")
            .external_id("64f1a2b3c4d5e6f708192a78"),
    );
    let client = client(&setup);
    let faults = setup.sim.faults();
    let reads = || {
        faults.requests_matching(&Route::path_prefix("/v1/api/users/").method(reqwest::Method::GET))
    };

    client.list_users().await.unwrap();
    assert_eq!(reads(), 1, "only the user without an external id is read");
    client.list_users().await.unwrap();
    assert_eq!(reads(), 1, "a fresh read is reused");

    setup
        .sim
        .dashboard_set_email(&by_hand, "ada.lovelace@example.com")
        .unwrap();
    setup.clock.advance(301);
    let users = client.list_users().await.unwrap();

    assert_eq!(reads(), 2);
    let ada = users.iter().find(|user| user.id == by_hand).unwrap();
    assert_eq!(ada.email.as_deref(), Some("ada.lovelace@example.com"));
}

#[tokio::test]
async fn a_failed_email_read_fails_the_whole_list() {
    let setup = setup().await;
    let by_hand = setup
        .sim
        .add_user(SeedUser::new("Ada", "Lovelace").email("ada@example.com"));
    setup.sim.faults().add(FaultRule::new(
        Route::path(format!("/v1/api/users/{by_hand}")).method(reqwest::Method::GET),
        Fault::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: None,
        },
    ));

    let error = client(&setup).list_users().await.unwrap_err();

    assert!(error.is_retryable_later(), "{error:?}");
}

#[tokio::test]
async fn a_user_deleted_between_list_and_read_is_kept_without_email() {
    let setup = setup().await;
    let by_hand = setup
        .sim
        .add_user(SeedUser::new("Ada", "Lovelace").email("ada@example.com"));
    setup.sim.faults().add(FaultRule::new(
        Route::path(format!("/v1/api/users/{by_hand}")).method(reqwest::Method::GET),
        Fault::Status {
            status: StatusCode::NOT_FOUND,
            body: Some(json!({"message": "Requested user not found", "code": 404})),
        },
    ));

    let users = client(&setup).list_users().await.unwrap();

    assert_eq!(users.len(), 1);
    assert_eq!(users[0].email, None);
}

#[tokio::test]
async fn a_list_that_changes_while_paged_is_read_again() {
    let setup = setup().await;
    for index in 0..150 {
        setup
            .sim
            .add_user(SeedUser::new(format!("F{index}"), format!("L{index:03}")));
    }
    // Hold the second page long enough for someone to add a user in the dashboard meanwhile.
    setup.sim.faults().add(
        FaultRule::new(
            Route::path("/v1/api/users").method(reqwest::Method::GET),
            Fault::Latency(Duration::from_millis(1500)),
        )
        .after(1)
        .times(1),
    );
    let client = client(&setup);
    let listing = tokio::spawn(async move { client.list_users().await });
    while setup
        .sim
        .faults()
        .requests(&reqwest::Method::GET, "/v1/api/users")
        < 2
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let added = setup.sim.add_user(SeedUser::new("Aaron", "Aardvark"));

    let users = listing.await.unwrap().unwrap();

    assert_eq!(users.len(), 151);
    assert!(users.iter().any(|u| u.id == added));
    assert_eq!(
        setup
            .sim
            .faults()
            .requests(&reqwest::Method::GET, "/v1/api/users"),
        4,
        "two pages, then both pages again"
    );
}

#[tokio::test]
async fn members_of_an_unknown_group_is_not_found() {
    let setup = setup().await;
    let error = client(&setup)
        .list_group_members(&group("999"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, VendorError::Http(HttpError::NotFound { .. })),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Creating users and mobile passes

#[tokio::test]
async fn create_user_sends_profile_without_company_and_brivo_emails_the_pass() {
    let setup = setup().await;
    let client = client(&setup);

    let created = client
        .create_user(&new_user("64f1a2b3c4d5e6f708192a3b", "ada@example.com"))
        .await
        .unwrap();

    assert_eq!(
        created.external_id.as_deref(),
        Some("64f1a2b3c4d5e6f708192a3b")
    );
    assert_eq!(created.email.as_deref(), Some("ada@example.com"));
    assert_eq!(created.name, "Ada Lovelace");
    let stored = setup.sim.user(&created.id).unwrap();
    assert_eq!(stored["firstName"], "Ada");
    assert_eq!(stored["lastName"], "Lovelace");
    assert_eq!(stored["externalId"], "64f1a2b3c4d5e6f708192a3b");
    assert_eq!(
        stored["emails"],
        json!([{"address": "ada@example.com", "type": "work"}])
    );
    assert_eq!(
        stored["phoneNumbers"],
        json!([{"number": "+44 20 7946 0000", "type": "work"}])
    );
    let keys: Vec<&String> = stored.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|key| !key.to_lowercase().contains("compan")),
        "{keys:?}"
    );

    let invitations = setup.sim.invitations();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0].user_id, created.id);
    assert_eq!(invitations[0].email, "ada@example.com");
    assert!(invitations[0].send_invitation_email);
    let emails = setup.sim.emails_sent();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, "ada@example.com");
}

#[tokio::test]
async fn branded_app_target_invites_without_a_brivo_email() {
    let setup = setup().await;
    let client = client_from(&setup, config(&setup, BrivoMobilePassTarget::BrandedApp));

    let created = client
        .create_user(&new_user("64f1a2b3c4d5e6f708192a3c", "bob@example.com"))
        .await
        .unwrap();

    let invitations = setup.sim.invitations();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0].user_id, created.id);
    assert!(!invitations[0].send_invitation_email);
    assert!(setup.sim.emails_sent().is_empty());
}

#[tokio::test]
async fn a_pending_invitation_counts_as_already_invited() {
    let setup = setup().await;
    let id = setup
        .sim
        .add_user(SeedUser::new("Cy", "Press").email("cy@example.com"));
    let client = client(&setup);

    assert_eq!(
        client.invite_mobile_pass(&id).await.unwrap(),
        InvitationOutcome::Created
    );
    assert_eq!(
        client.invite_mobile_pass(&id).await.unwrap(),
        InvitationOutcome::AlreadyPending
    );
    assert_eq!(setup.sim.invitations().len(), 1);
    assert_eq!(setup.sim.emails_sent().len(), 1);
}

#[tokio::test]
async fn no_passes_left_is_refused_and_says_the_user_exists() {
    let setup = setup_with(SimulatorOptions {
        mobile_passes_available: Some(0),
        ..SimulatorOptions::default()
    })
    .await;

    let error = client(&setup)
        .create_user(&new_user("64f1a2b3c4d5e6f708192a3d", "dee@example.com"))
        .await
        .unwrap_err();

    assert!(
        matches!(&error, VendorError::Refused(message) if message.contains("no mobile passes left") && message.contains("was created")),
        "{error:?}"
    );
    assert!(setup
        .sim
        .user_by_external_id("64f1a2b3c4d5e6f708192a3d")
        .is_some());
    assert!(setup.sim.invitations().is_empty());
}

#[tokio::test]
async fn create_adopts_the_user_an_earlier_attempt_created() {
    let setup = setup().await;
    let existing = setup.sim.add_user(
        SeedUser::new("Ada", "Lovelace")
            .email("ada@example.com")
            .external_id("64f1a2b3c4d5e6f708192a3e"),
    );

    let created = client(&setup)
        .create_user(&new_user("64f1a2b3c4d5e6f708192a3e", "ada@example.com"))
        .await
        .unwrap();

    assert_eq!(created.id, existing);
    assert_eq!(setup.sim.users().len(), 1);
    assert_eq!(setup.sim.invitations().len(), 1);
}

#[tokio::test]
async fn a_failed_create_is_not_repeated_blindly() {
    let setup = setup().await;
    setup.sim.faults().inject_status(
        Route::path("/v1/api/users").method(reqwest::Method::POST),
        1,
        StatusCode::BAD_GATEWAY,
    );

    let error = client(&setup)
        .create_user(&new_user("64f1a2b3c4d5e6f708192a3f", "eve@example.com"))
        .await
        .unwrap_err();

    assert!(error.is_retryable_later(), "{error:?}");
    assert_eq!(
        setup
            .sim
            .faults()
            .requests(&reqwest::Method::POST, "/v1/api/users"),
        1
    );
    assert!(setup.sim.users().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Group membership

#[tokio::test]
async fn add_and_remove_are_idempotent_single_calls() {
    let setup = setup().await;
    let lobby = group(&setup.sim.add_group("Lobby"));
    let user = setup
        .sim
        .add_user(SeedUser::new("Fay", "Wray").email("fay@example.com"));
    let client = client(&setup);

    client
        .add_to_group(&user, &lobby, GrantContext::default())
        .await
        .unwrap();
    client
        .add_to_group(&user, &lobby, GrantContext::default())
        .await
        .unwrap();
    assert_eq!(setup.sim.group_member_ids(&lobby.id), vec![user.clone()]);
    assert_eq!(
        setup.sim.group_member_emails(&lobby.id),
        vec!["fay@example.com".to_owned()]
    );

    client.remove_from_group(&user, &lobby).await.unwrap();
    client.remove_from_group(&user, &lobby).await.unwrap();
    client
        .remove_from_group(&user, &group("424242"))
        .await
        .unwrap();

    assert!(setup.sim.group_member_ids(&lobby.id).is_empty());
    let path = format!("/v1/api/groups/{}/users/{user}", lobby.id);
    assert_eq!(
        setup.sim.write_calls(),
        vec![
            format!("PUT {path}"),
            format!("PUT {path}"),
            format!("DELETE {path}"),
            format!("DELETE {path}"),
            format!("DELETE /v1/api/groups/424242/users/{user}"),
        ]
    );
}

#[tokio::test]
async fn a_seventeenth_group_is_refused_naming_the_cap() {
    let setup = setup().await;
    let user = setup.sim.add_user(SeedUser::new("Gus", "Grissom"));
    let client = client(&setup);
    for index in 0..16 {
        let id = setup.sim.add_group(&format!("G{index}"));
        client
            .add_to_group(&user, &group(&id), GrantContext::default())
            .await
            .unwrap();
    }
    let seventeenth = group(&setup.sim.add_group("G16"));

    let error = client
        .add_to_group(&user, &seventeenth, GrantContext::default())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, VendorError::Refused(message) if message.contains("at most 16 groups per user")),
        "{error}"
    );
    assert!(!error.is_retryable_later());
    assert_eq!(setup.sim.user_group_ids(&user).len(), 16);
}

#[tokio::test]
async fn dashboard_edits_are_seen_by_the_client() {
    let setup = setup().await;
    let lobby = setup.sim.add_group("Lobby");
    let user = setup
        .sim
        .add_user(SeedUser::new("Hal", "Jordan").email("hal@example.com"));
    setup.sim.dashboard_add_to_group(&lobby, &user).unwrap();
    setup
        .sim
        .dashboard_set_email(&user, "hal.jordan@example.com")
        .unwrap();
    let client = client(&setup);

    let members = client.list_group_members(&group(&lobby)).await.unwrap();
    let users = client.list_users().await.unwrap();

    assert_eq!(members, vec![user.clone()]);
    assert_eq!(users[0].email.as_deref(), Some("hal.jordan@example.com"));
}

#[tokio::test]
async fn a_full_cycle_never_puts_or_deletes_a_user() {
    let setup = setup().await;
    let lobby = group(&setup.sim.add_group("Lobby"));
    let client = client(&setup);
    let created = client
        .create_user(&new_user("64f1a2b3c4d5e6f708192a40", "ivy@example.com"))
        .await
        .unwrap();
    client
        .add_to_group(&created.id, &lobby, GrantContext { notify: true })
        .await
        .unwrap();
    client.remove_from_group(&created.id, &lobby).await.unwrap();

    let user_path = format!("/v1/api/users/{}", created.id);
    let writes = setup.sim.write_calls();
    assert!(
        writes
            .iter()
            .all(|call| call != &format!("PUT {user_path}")
                && call != &format!("DELETE {user_path}")),
        "{writes:?}"
    );
    assert_eq!(writes.len(), 4, "create, invite, add, remove: {writes:?}");
    assert!(setup.sim.user(&created.id).is_some());
}

// ---------------------------------------------------------------------------------------------
// Resilience

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let setup = setup().await;
    setup.sim.add_group("Lobby");
    setup
        .sim
        .faults()
        .inject_429(Route::path("/v1/api/groups"), 1, 1);

    let groups = client(&setup).list_groups().await.unwrap();

    assert_eq!(groups.len(), 1);
    assert_eq!(
        setup
            .sim
            .faults()
            .requests(&reqwest::Method::GET, "/v1/api/groups"),
        2
    );
}

/// Issue 12, point 3: Brivo's Mashery gateway throttles with a 403 (no 429, no Retry-After).
#[tokio::test]
async fn mashery_throttling_403_is_retried_with_backoff() {
    let setup = setup().await;
    setup.sim.add_group("Lobby");
    let mut config = config(&setup, BrivoMobilePassTarget::BrivoApp);
    // Far faster than the server allows; the waits come from the throttling replies alone.
    config.retry = RetryPolicy {
        max_attempts: 8,
        default_retry_after: Duration::from_millis(300),
        ..quick_retries()
    };
    let client = client_from(&setup, config);
    client.list_groups().await.unwrap();
    setup.sim.set_rate_limit(Some(3));

    for _ in 0..8 {
        assert_eq!(client.list_groups().await.unwrap().len(), 1);
    }
    let user = setup.sim.add_user(SeedUser::new("Ada", "Lovelace"));
    let lobby = client.list_groups().await.unwrap().remove(0);
    for _ in 0..4 {
        // Writes too: the gateway refused before Brivo saw the request.
        client
            .add_to_group(&user, &lobby, GrantContext::default())
            .await
            .unwrap();
    }

    let throttled = setup
        .sim
        .faults()
        .responses_matching(&Route::any(), StatusCode::FORBIDDEN);
    assert!(throttled > 0, "the simulator throttled nobody");
    assert_eq!(
        setup
            .sim
            .faults()
            .responses_matching(&Route::any(), StatusCode::TOO_MANY_REQUESTS),
        0
    );
    assert_eq!(setup.sim.group_member_ids(&lobby.id), vec![user]);
}

#[tokio::test]
async fn a_used_up_quota_is_rate_limited_at_once_not_a_refusal() {
    let setup = setup().await;
    setup.sim.add_group("Lobby");
    let client = client(&setup);
    client.list_groups().await.unwrap();
    setup.sim.faults().reset_counts();
    setup.sim.set_quota_exhausted(true);

    let error = client.list_groups().await.unwrap_err();

    assert!(
        matches!(error, VendorError::Http(HttpError::RateLimited { .. })),
        "{error:?}"
    );
    assert!(error.is_retryable_later());
    assert_eq!(
        setup
            .sim
            .faults()
            .requests(&reqwest::Method::GET, "/v1/api/groups"),
        1,
        "a daily quota is not retried within the call"
    );
}

#[tokio::test]
async fn a_permission_403_is_final_and_says_so() {
    let setup = setup().await;
    let lobby = group(&setup.sim.add_group("Lobby"));
    let user = setup.sim.add_user(SeedUser::new("Ada", "Lovelace"));
    let path = setup
        .sim
        .api_path(&format!("/groups/{}/users/{user}", lobby.id));
    setup.sim.faults().add(FaultRule::new(
        Route::path(path.clone()).method(reqwest::Method::PUT),
        Fault::Status {
            status: StatusCode::FORBIDDEN,
            body: Some(
                json!({"code": 403, "message": "You are not allowed to perform that action"}),
            ),
        },
    ));

    let error = client(&setup)
        .add_to_group(&user, &lobby, GrantContext::default())
        .await
        .unwrap_err();

    assert!(!error.is_retryable_later(), "{error:?}");
    let shown = error.to_string();
    assert!(
        shown.contains("You are not allowed to perform that action")
            && shown.contains("lacks the permission")
            && shown.contains("not throttling"),
        "{shown}"
    );
    assert_eq!(setup.sim.faults().requests(&reqwest::Method::PUT, &path), 1);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let setup = setup().await;
    setup.sim.add_group("Lobby");
    setup.sim.faults().inject_status(
        Route::path("/v1/api/groups"),
        2,
        StatusCode::SERVICE_UNAVAILABLE,
    );

    let groups = client(&setup).list_groups().await.unwrap();

    assert_eq!(groups.len(), 1);
    assert_eq!(
        setup
            .sim
            .faults()
            .requests(&reqwest::Method::GET, "/v1/api/groups"),
        3
    );
}

#[tokio::test]
async fn a_malformed_reply_is_a_protocol_error() {
    let setup = setup().await;
    setup.sim.faults().add(FaultRule::new(
        Route::path("/v1/api/groups"),
        Fault::Status {
            status: StatusCode::OK,
            body: Some(json!({"items": [{"id": 1}]})),
        },
    ));

    let error = client(&setup).list_groups().await.unwrap_err();

    assert!(
        matches!(error, VendorError::Http(HttpError::Protocol { .. })),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Simulator strictness and recorded shapes

#[tokio::test]
async fn simulator_errors_match_the_live_bodies() {
    let setup = setup().await;
    let sim = &setup.sim;
    use reqwest::Method;

    let (status, body) = raw(sim, Method::GET, "/users/424242", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"message": "Requested user not found", "code": 404})
    );

    let (status, body) = raw(sim, Method::GET, "/users/nobody/external", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Requested user not found");

    let (status, body) = raw(sim, Method::GET, "/groups/424242", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"message": "Unknown Group", "code": 404}));

    let (status, body) = raw(sim, Method::GET, "/users?filter=firstname:eq", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Invalid filter format");

    let (status, body) = raw(sim, Method::GET, "/users?filter=email__eq:a@b.c", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Invalid criteria provided");

    let (status, _) = raw(sim, Method::GET, "/users?pageSize=101", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, body) = raw(sim, Method::POST, "/users", Some(json!({"firstName": 7}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 400);

    let (status, body) = raw(sim, Method::POST, "/groups/1/users", None).await;
    assert_eq!(status.as_u16(), 596);
    assert_eq!(body["message"], "Service Not Found");

    let token = raw_token(sim).await;
    let response = reqwest::Client::new()
        .post(format!("{}/users", sim.api_url()))
        .header("api-key", sim.api_key.expose())
        .header("Authorization", format!("bearer {token}"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 400);

    let expired = reqwest::Client::new()
        .get(format!("{}/users", sim.api_url()))
        .header("api-key", sim.api_key.expose())
        .header("Authorization", "bearer not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    let body: Value = expired.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn simulator_user_shapes_follow_the_recordings() {
    let setup = setup().await;
    let sim = &setup.sim;
    use reqwest::Method;

    let (status, created) = raw(
        sim,
        Method::POST,
        "/users",
        Some(
            json!({"firstName": "first", "lastName": "last", "externalId": 1, "middleName": null}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "POST /users answers 200, not 201");
    assert_eq!(created["externalId"], "1");
    assert!(created.get("customFields").is_none());
    assert!(created.get("middleName").is_none(), "nulls are omitted");
    let id = created["id"].as_u64().unwrap();

    let (_, fetched) = raw(sim, Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(fetched["customFields"], json!([]));

    let (_, by_external) = raw(sim, Method::GET, "/users/1/external", None).await;
    assert_eq!(by_external["id"], id);

    let (_, groups) = raw(
        sim,
        Method::GET,
        &format!("/users/{id}/groups?offset=0&pageSize=100"),
        None,
    )
    .await;
    assert_eq!(groups, json!({"data": [], "count": 0}));

    let (_, page) = raw(sim, Method::GET, "/users?offset=0&pageSize=1", None).await;
    assert_eq!(page["count"], 1);
    assert_eq!(page["pageSize"], 1);
    assert_eq!(page["offset"], 0);
}

#[tokio::test]
async fn simulator_lists_users_without_emails_like_the_recordings() {
    let setup = setup().await;
    let sim = &setup.sim;
    let id = sim.add_user(
        SeedUser::new("Ada", "Lovelace")
            .email("ada@example.com")
            .phone("555-0100"),
    );
    use reqwest::Method;

    let (_, page) = raw(sim, Method::GET, "/users?offset=0&pageSize=100", None).await;
    let listed = page["data"][0].as_object().unwrap();
    let mut keys: Vec<&str> = listed.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["firstName", "id", "lastName", "suspended"],
        "rec-08's slice"
    );

    let (_, read) = raw(sim, Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(
        read["emails"],
        json!([{"address": "ada@example.com", "type": "work"}])
    );
}

#[tokio::test]
async fn simulator_throttles_like_mashery() {
    let setup = setup().await;
    let sim = &setup.sim;
    let token = raw_token(sim).await;
    sim.set_rate_limit(Some(1));
    let http = reqwest::Client::new();
    let get = || {
        http.get(format!("{}/groups", sim.api_url()))
            .header("api-key", sim.api_key.expose())
            .header("Authorization", format!("bearer {token}"))
            .send()
    };

    assert_eq!(get().await.unwrap().status(), StatusCode::OK);
    let throttled = get().await.unwrap();

    assert_eq!(
        throttled.status(),
        StatusCode::FORBIDDEN,
        "Mashery says 403, not 429"
    );
    assert_eq!(
        throttled.headers()["x-mashery-error-code"],
        "ERR_403_DEVELOPER_OVER_QPS"
    );
    assert_eq!(
        throttled.headers()["x-error-detail-header"],
        "Account Over Queries Per Second Limit"
    );
    assert!(throttled.headers().get("retry-after").is_none());
    assert_eq!(
        throttled.text().await.unwrap(),
        "<h1>Developer Over Qps</h1>"
    );
}

#[tokio::test]
async fn simulator_put_clears_omitted_fields_and_patch_keeps_them() {
    let setup = setup().await;
    let sim = &setup.sim;
    let id = sim.add_user(
        SeedUser::new("Jo", "March")
            .email("jo@example.com")
            .external_id("64f1a2b3c4d5e6f708192a41")
            .phone("555-0100"),
    );
    use reqwest::Method;

    let (status, patched) = raw(
        sim,
        Method::PATCH,
        &format!("/users/{id}"),
        Some(json!({"firstName": "Josephine"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["firstName"], "Josephine");
    assert_eq!(patched["emails"][0]["address"], "jo@example.com");
    assert_eq!(patched["externalId"], "64f1a2b3c4d5e6f708192a41");

    // A careless PUT with only the names loses the email, phone and external id.
    let (status, replaced) = raw(
        sim,
        Method::PUT,
        &format!("/users/{id}"),
        Some(json!({"firstName": "Jo", "lastName": "March"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(replaced.get("emails").is_none(), "{replaced}");
    assert!(replaced.get("phoneNumbers").is_none());
    assert!(replaced.get("externalId").is_none());
    assert!(sim
        .user_by_external_id("64f1a2b3c4d5e6f708192a41")
        .is_none());
}
