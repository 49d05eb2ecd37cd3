//! The Salto KS client against the Salto KS simulator: auth and token refresh, paging, listing,
//! creation with invitations, idempotent membership changes, eventual consistency, 429/5xx
//! handling, protocol errors and secret hygiene.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use flexgate::http::{HttpError, RetryPolicy, Secret};
use flexgate::sandbox::faults::{Fault, FaultRule, Route};
use flexgate::sandbox::kit::{RateControls, TokenControls};
use flexgate::sandbox::salto_ks::{
    self as simulator, SimulatorHandle, SimulatorOptions, UsersListing,
};
use flexgate::vendors::salto_ks::{Clock, ConsistencyRetry, SaltoKsClient, SaltoKsConfig};
use flexgate::vendors::{DoorVendor, GrantContext, NewUser, VendorError, VendorGroup};
use serde_json::{json, Value};

/// A clock tests move by hand, shared by the simulator and the client.
#[derive(Clone)]
struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
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

async fn start(options: SimulatorOptions) -> SimulatorHandle {
    simulator::start(options).await.expect("simulator starts")
}

async fn start_default() -> SimulatorHandle {
    start(SimulatorOptions::default()).await
}

/// The simulator's configuration with quick retries and no client-side throttling to speak of.
fn fast_config(sim: &SimulatorHandle) -> SaltoKsConfig {
    let mut config = sim.client_config().expect("config");
    config.requests_per_second = 1000.0;
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_total: Duration::from_secs(30),
        default_retry_after: Duration::from_millis(10),
    };
    config.consistency_retry = ConsistencyRetry {
        max_attempts: 5,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        window: Duration::from_secs(300),
    };
    config
}

fn client(sim: &SimulatorHandle) -> SaltoKsClient {
    SaltoKsClient::new(fast_config(sim)).expect("client")
}

fn new_user(first: &str, last: &str, email: &str) -> NewUser {
    NewUser {
        officernd_id: format!("member-{first}"),
        first_name: first.to_owned(),
        last_name: last.to_owned(),
        email: email.to_owned(),
        phone: Some("+15550000001".to_owned()),
    }
}

fn group(id: &str, name: &str) -> VendorGroup {
    VendorGroup {
        id: id.to_owned(),
        name: name.to_owned(),
    }
}

fn token_requests(sim: &SimulatorHandle) -> u64 {
    sim.faults().requests(&Method::POST, "/connect/token")
}

/// Asserts that nothing secret appears in an error's Display or Debug output.
fn assert_no_secret(error: &VendorError, sim: &SimulatorHandle) {
    for text in [error.to_string(), format!("{error:?}")] {
        for secret in [sim.client.secret.expose(), sim.login.password.expose()] {
            assert!(!text.contains(secret), "secret leaked in {text}");
        }
        assert!(!text.contains("sim-at-"), "access token leaked in {text}");
        assert!(!text.contains("sim-rt-"), "refresh token leaked in {text}");
    }
}

#[tokio::test]
async fn password_grant_token_is_fetched_once_and_reused() {
    let sim = start_default().await;
    sim.add_group("OFFICERND_Members");
    let client = client(&sim);
    assert_eq!(client.list_groups().await.unwrap().len(), 1);
    assert_eq!(client.list_groups().await.unwrap().len(), 1);
    client.list_users().await.unwrap();
    assert_eq!(sim.token_grants("password"), 1);
    assert_eq!(token_requests(&sim), 1);
}

#[tokio::test]
async fn token_is_refreshed_before_expiry_with_the_refresh_token_grant() {
    let clock = ManualClock::new();
    let sim = start(SimulatorOptions {
        clock: clock.clock().into(),
        ..SimulatorOptions::default()
    })
    .await;
    let client = client(&sim).with_clock(clock.clock());
    client.list_groups().await.unwrap();
    clock.advance(3000);
    client.list_groups().await.unwrap();
    assert_eq!(sim.token_grants("refresh_token"), 0, "token still fresh");
    // 3590 s after issue: inside the 60 s margin, not yet expired at the server.
    clock.advance(590);
    client.list_groups().await.unwrap();
    assert_eq!(sim.token_grants("password"), 1);
    assert_eq!(sim.token_grants("refresh_token"), 1);
    assert_eq!(
        sim.faults()
            .responses_matching(&Route::any(), StatusCode::UNAUTHORIZED),
        0,
        "the token was replaced before the server would refuse it"
    );
    // The rotated refresh token works again an hour later.
    clock.advance(3590);
    client.list_groups().await.unwrap();
    assert_eq!(sim.token_grants("refresh_token"), 2);
    assert_eq!(sim.token_grants("password"), 1);
}

#[tokio::test]
async fn a_refused_refresh_falls_back_to_the_password_grant() {
    let clock = ManualClock::new();
    let sim = start(SimulatorOptions {
        clock: clock.clock().into(),
        ..SimulatorOptions::default()
    })
    .await;
    let client = client(&sim).with_clock(clock.clock());
    client.list_groups().await.unwrap();
    sim.revoke_refresh_tokens();
    clock.advance(3590);
    client.list_groups().await.unwrap();
    assert_eq!(sim.token_grants("password"), 2);
    assert_eq!(sim.token_grants("refresh_token"), 0);
    assert_eq!(
        token_requests(&sim),
        3,
        "password, refused refresh, password"
    );
}

#[tokio::test]
async fn without_refresh_tokens_the_password_grant_is_repeated() {
    let clock = ManualClock::new();
    let sim = start(SimulatorOptions {
        clock: clock.clock().into(),
        issue_refresh_tokens: false,
        ..SimulatorOptions::default()
    })
    .await;
    let client = client(&sim).with_clock(clock.clock());
    client.list_groups().await.unwrap();
    clock.advance(3590);
    client.list_groups().await.unwrap();
    assert_eq!(sim.token_grants("password"), 2);
    assert_eq!(token_requests(&sim), 2);
}

#[tokio::test]
async fn one_401_triggers_exactly_one_refresh() {
    let sim = start_default().await;
    let client = client(&sim);
    client.list_groups().await.unwrap();
    sim.revoke_access_tokens();
    client.list_groups().await.unwrap();
    let groups_path = sim.site_path("/access_groups");
    assert_eq!(sim.faults().requests(&Method::GET, &groups_path), 3);
    assert_eq!(sim.token_grants("refresh_token"), 1);
    assert_eq!(sim.token_grants("password"), 1);

    // Tokens the API never accepts: one refresh, then the call fails as a credentials problem.
    sim.set_token_lifetime(Duration::ZERO);
    sim.revoke_access_tokens();
    sim.faults().reset_counts();
    let error = client.list_groups().await.unwrap_err();
    assert!(
        matches!(&error, VendorError::CredentialsInvalid(message) if message.contains("401")),
        "{error:?}"
    );
    assert_eq!(sim.faults().requests(&Method::GET, &groups_path), 2);
    assert_no_secret(&error, &sim);
}

#[tokio::test]
async fn identity_errors_name_the_wrong_credential_without_revealing_it() {
    let sim = start_default().await;

    let mut wrong_password = fast_config(&sim);
    wrong_password.password = Secret::new("not-the-password-123");
    let error = SaltoKsClient::new(wrong_password)
        .unwrap()
        .list_groups()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VendorError::CredentialsInvalid(m) if m.contains("invalid_grant") && m.contains(&sim.login.username)),
        "{error:?}"
    );
    assert!(!error.to_string().contains("not-the-password-123"));
    assert!(!format!("{error:?}").contains("not-the-password-123"));
    assert_no_secret(&error, &sim);

    let mut wrong_secret = fast_config(&sim);
    wrong_secret.client_secret = Secret::new("not-the-client-secret-456");
    let error = SaltoKsClient::new(wrong_secret)
        .unwrap()
        .list_users()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VendorError::CredentialsInvalid(m) if m.contains("invalid_client")),
        "{error:?}"
    );
    assert!(!format!("{error:?} {error}").contains("not-the-client-secret-456"));

    let mut wrong_scope = fast_config(&sim);
    wrong_scope.scope = "user_api.full_access core_api.full".to_owned();
    let error = SaltoKsClient::new(wrong_scope)
        .unwrap()
        .list_users()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VendorError::CredentialsInvalid(m) if m.contains("invalid_scope")),
        "{error:?}"
    );
    // Refused credentials are not retried.
    assert_eq!(token_requests(&sim), 3);
    assert_eq!(sim.token_grants("password"), 0);
}

#[tokio::test]
async fn groups_are_listed_completely_across_pages() {
    let sim = start(SimulatorOptions {
        page_size: 2,
        ..SimulatorOptions::default()
    })
    .await;
    let mut expected: Vec<(String, String)> = (0..5)
        .map(|i| {
            let name = format!("OFFICERND_Group {i}");
            (sim.add_group(&name), name)
        })
        .collect();
    expected.sort();
    let mut listed: Vec<(String, String)> = client(&sim)
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|group| (group.id, group.name))
        .collect();
    listed.sort();
    assert_eq!(listed, expected);
    assert_eq!(
        sim.faults()
            .requests(&Method::GET, &sim.site_path("/access_groups")),
        3
    );
}

#[tokio::test]
async fn users_are_listed_with_platform_ids_in_both_observed_shapes() {
    let sim = start(SimulatorOptions {
        page_size: 2,
        ..SimulatorOptions::default()
    })
    .await;
    let ada = sim.add_user("Ada", "Lovelace", Some("ada@example.com"));
    let badge = sim.add_user("Badge", "0001", None);
    sim.add_user("Grace", "Hopper", Some("grace@example.com"));
    let client = client(&sim);

    let mut by_shape = Vec::new();
    for listing in [UsersListing::Envelope, UsersListing::BareArray] {
        sim.set_users_listing(listing);
        let mut users = client.list_users().await.unwrap();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        by_shape.push(users);
    }
    assert_eq!(by_shape[0], by_shape[1]);
    let users = &by_shape[0];
    // The service user + three seeded people, over two pages in the envelope form.
    assert_eq!(users.len(), 4);
    let mut expected_ids: Vec<String> = sim.users().into_iter().map(|u| u.user_id).collect();
    expected_ids.sort();
    assert_eq!(
        users.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        expected_ids
    );
    let listed_ada = users.iter().find(|u| u.id == ada.user_id).unwrap();
    assert_eq!(listed_ada.email.as_deref(), Some("ada@example.com"));
    assert_eq!(listed_ada.name, "Ada Lovelace");
    assert_ne!(listed_ada.id, ada.site_user_id);
    assert_eq!(
        client.site_user_id(&ada.user_id).as_deref(),
        Some(ada.site_user_id.as_str())
    );
    let listed_badge = users.iter().find(|u| u.id == badge.user_id).unwrap();
    assert_eq!(listed_badge.email, None, "tag-only users have email null");
    assert_eq!(
        sim.faults()
            .requests(&Method::GET, &sim.site_path("/users")),
        3,
        "two envelope pages, one bare array"
    );
}

#[tokio::test]
async fn users_are_found_by_email_with_the_odata_filter() {
    let sim = start_default().await;
    let lee = sim.add_user("Lee", "O'Neil", Some("lee.o'neil@example.com"));
    sim.add_user("Max", "Example", Some("max@example.com"));
    let client = client(&sim);
    let found = client
        .find_user_by_email("LEE.O'NEIL@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, lee.user_id);
    assert!(client
        .find_user_by_email("nobody@example.com")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn create_user_sends_profile_fields_only_and_salto_invites_them() {
    let sim = start_default().await;
    let client = client(&sim);
    let created = client
        .create_user(&new_user("Joe", "Bloggs", "joe@example.com"))
        .await
        .unwrap();

    let bodies = sim.created_user_bodies();
    assert_eq!(bodies.len(), 1);
    let body = bodies[0].as_object().unwrap();
    let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["email", "first_name", "last_name", "role_ids"]);
    assert_eq!(body["first_name"], "Joe");
    assert_eq!(body["last_name"], "Bloggs");
    assert_eq!(body["email"], "joe@example.com");
    assert!(!body.contains_key("company"));

    let stored = sim.user_by_email("joe@example.com").unwrap();
    assert_eq!(
        created.id, stored.user_id,
        "VendorUser.id is the platform id"
    );
    assert_ne!(created.id, stored.site_user_id);
    assert_eq!(created.email.as_deref(), Some("joe@example.com"));
    assert_eq!(created.name, "Joe Bloggs");
    assert_eq!(
        client.site_user_id(&created.id).as_deref(),
        Some(stored.site_user_id.as_str())
    );
    let invitations = sim.invitations();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0].email, "joe@example.com");
    assert_eq!(invitations[0].user_id, created.id);
}

#[tokio::test]
async fn the_configured_role_is_sent_without_reading_the_roles() {
    let sim = start_default().await;
    let members = sim.add_role("coworking_member", "Coworking member");
    let mut config = fast_config(&sim);
    config.user_role_id = Some(members.clone());
    SaltoKsClient::new(config)
        .unwrap()
        .create_user(&new_user("Ann", "Member", "ann@example.com"))
        .await
        .unwrap();
    assert_eq!(sim.created_user_bodies()[0]["role_ids"], json!([members]));
    assert_eq!(sim.user_role_ids("ann@example.com"), Some(vec![members]));
    assert_eq!(
        sim.faults()
            .requests(&Method::GET, &sim.site_path("/roles")),
        0
    );
}

#[tokio::test]
async fn creating_someone_already_in_the_site_returns_them_without_an_invitation() {
    let sim = start_default().await;
    let existing = sim.add_user("Eve", "Existing", Some("eve@example.com"));
    let created = client(&sim)
        .create_user(&new_user("Eve", "Existing", "EVE@example.com"))
        .await
        .unwrap();
    assert_eq!(created.id, existing.user_id);
    assert!(sim.invitations().is_empty());
}

#[tokio::test]
async fn a_user_without_email_is_refused_before_any_call() {
    let sim = start_default().await;
    let error = client(&sim)
        .create_user(&new_user("No", "Mail", " "))
        .await
        .unwrap_err();
    assert!(matches!(error, VendorError::Refused(_)), "{error:?}");
    assert_eq!(sim.write_calls(), 0);
}

#[tokio::test]
async fn membership_changes_are_idempotent_and_minimal() {
    let sim = start_default().await;
    let group_id = sim.add_group("OFFICERND_Floor 1");
    let target = group(&group_id, "OFFICERND_Floor 1");
    let ada = sim.add_user("Ada", "Lovelace", Some("ada@example.com"));
    let client = client(&sim);

    client
        .add_to_group(&ada.user_id, &target, GrantContext::default())
        .await
        .unwrap();
    client
        .add_to_group(&ada.user_id, &target, GrantContext::default())
        .await
        .unwrap();
    assert_eq!(sim.group_member_emails(&group_id), ["ada@example.com"]);
    assert_eq!(
        client.list_group_members(&target).await.unwrap(),
        vec![ada.user_id.clone()]
    );

    client
        .remove_from_group(&ada.user_id, &target)
        .await
        .unwrap();
    client
        .remove_from_group(&ada.user_id, &target)
        .await
        .unwrap();
    assert!(sim.group_member_emails(&group_id).is_empty());
    assert!(client.list_group_members(&target).await.unwrap().is_empty());

    let writes = sim.writes_by_kind();
    assert_eq!(writes.get("add_member"), Some(&2), "one call per grant");
    assert_eq!(writes.get("remove_member"), Some(&2), "one call per revoke");
    assert_eq!(
        writes.get("delete_user"),
        None,
        "accounts are never deleted"
    );
    assert_eq!(sim.write_calls(), 4);
}

#[tokio::test]
async fn group_members_are_listed_across_pages() {
    let sim = start(SimulatorOptions {
        page_size: 2,
        ..SimulatorOptions::default()
    })
    .await;
    let group_id = sim.add_group("OFFICERND_Big");
    let mut expected = Vec::new();
    for i in 0..5 {
        let email = format!("person{i}@example.com");
        let user = sim.add_user("Person", &i.to_string(), Some(&email));
        sim.dashboard_add_to_group(&group_id, &email).unwrap();
        expected.push(user.user_id);
    }
    expected.sort();
    let mut members = client(&sim)
        .list_group_members(&group(&group_id, "OFFICERND_Big"))
        .await
        .unwrap();
    members.sort();
    assert_eq!(members, expected);
}

/// A GET with a token fetched by hand, for checking the simulator's raw wire answers.
async fn raw_token(sim: &SimulatorHandle) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/connect/token", sim.base_url))
        .basic_auth(&sim.client.id, Some(sim.client.secret.expose()))
        .form(&[
            ("grant_type", "password"),
            ("username", sim.login.username.as_str()),
            ("password", sim.login.password.expose()),
            ("scope", "user_api.full_access"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn raw_get(sim: &SimulatorHandle, path: &str) -> Value {
    let token = raw_token(sim).await;
    reqwest::Client::new()
        .get(format!("{}{path}", sim.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_site_user_id_is_refused_exactly_as_recorded() {
    let sim = start_default().await;
    let group_id = sim.add_group("OFFICERND_Members");
    let ada = sim.add_user("Ada", "Lovelace", Some("ada@example.com"));
    let token = raw_token(&sim).await;
    let response = reqwest::Client::new()
        .post(format!(
            "{}{}",
            sim.base_url,
            sim.site_path(&format!("/access_groups/{group_id}/users"))
        ))
        .bearer_auth(&token)
        .json(&json!({ "user_id": ada.site_user_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"ErrorCode":"2202","Message":"User not found"}"#
    );

    // Through the client: refused for this person, with a hint once the id is known as a site-user id.
    let client = client(&sim);
    client.list_users().await.unwrap();
    let error = client
        .add_to_group(
            &ada.site_user_id,
            &group(&group_id, "OFFICERND_Members"),
            GrantContext::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VendorError::Refused(m) if m.contains("site-user id")),
        "{error:?}"
    );
    assert!(!error.is_retryable_later());
    assert!(sim.group_member_ids(&group_id).is_empty());
}

#[tokio::test]
async fn simulator_is_strict_about_auth_bodies_and_site_ids() {
    let sim = start_default().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", sim.base_url);

    let anonymous = http.get(url("/v1.2/sites")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    assert!(anonymous.text().await.unwrap().is_empty());

    let bad_client = http
        .post(url("/connect/token"))
        .basic_auth("someone", Some("else"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad_client.status(), 400);
    assert_eq!(
        bad_client.json::<Value>().await.unwrap(),
        json!({"error": "invalid_client"})
    );

    let token = raw_token(&sim).await;
    let malformed = http
        .post(url(&sim.site_path("/users")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["ErrorCode"], 1100);
    assert!(body["Message"].is_string());

    let by_uid = http
        .get(url(&format!("/v1.2/sites/{}/users", sim.site_uid())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(by_uid.status(), 400);
    assert_eq!(by_uid.json::<Value>().await.unwrap()["ErrorCode"], 1100);

    let sites: Value = http
        .get(url("/v1.2/sites"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(sites.is_array(), "sites are a bare array: {sites}");

    let unknown_group = http
        .get(url(&sim.site_path(
            "/access_groups/00000000-0000-4000-8000-000000000000/users",
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_group.status(), 404);
    assert_eq!(
        unknown_group.json::<Value>().await.unwrap()["ErrorCode"],
        "2202"
    );

    let users = raw_get(&sim, &sim.site_path("/users")).await;
    assert!(users["next_page_link"].is_null());
    assert!(users["count"].is_null());
    assert!(users["items"][0]["alias"].is_null(), "explicit nulls");
}

#[tokio::test]
async fn a_just_created_user_is_retried_until_salto_knows_them() {
    let sim = start(SimulatorOptions {
        group_add_lag: 3,
        ..SimulatorOptions::default()
    })
    .await;
    let group_id = sim.add_group("OFFICERND_Members");
    let target = group(&group_id, "OFFICERND_Members");
    let client = client(&sim);
    let created = client
        .create_user(&new_user("Newt", "Comer", "newt@example.com"))
        .await
        .unwrap();
    client
        .add_to_group(&created.id, &target, GrantContext { notify: true })
        .await
        .unwrap();
    assert_eq!(sim.group_member_emails(&group_id), ["newt@example.com"]);
    let add_path = sim.site_path(&format!("/access_groups/{group_id}/users"));
    let route = Route::path(add_path.clone()).method(Method::POST);
    assert_eq!(
        sim.faults().requests_matching(&route),
        4,
        "3 × 404, then 200"
    );
    assert_eq!(
        sim.faults()
            .responses_matching(&route, StatusCode::NOT_FOUND),
        3
    );
}

#[tokio::test]
async fn the_consistency_retry_is_bounded_and_reported_as_temporary() {
    let sim = start(SimulatorOptions {
        group_add_lag: 50,
        ..SimulatorOptions::default()
    })
    .await;
    let group_id = sim.add_group("OFFICERND_Members");
    let target = group(&group_id, "OFFICERND_Members");
    let client = client(&sim);
    let created = client
        .create_user(&new_user("Slow", "Sync", "slow@example.com"))
        .await
        .unwrap();
    let error = client
        .add_to_group(&created.id, &target, GrantContext { notify: true })
        .await
        .unwrap_err();
    assert!(error.is_retryable_later(), "{error:?}");
    let route = Route::path(sim.site_path(&format!("/access_groups/{group_id}/users")))
        .method(Method::POST);
    assert_eq!(sim.faults().requests_matching(&route), 5, "max_attempts");

    // A 404 for a user this client did not just create is not waited for.
    sim.faults().reset_counts();
    let stranger = "00000000-0000-4000-8000-00000000abcd";
    let error = client
        .add_to_group(stranger, &target, GrantContext::default())
        .await
        .unwrap_err();
    assert!(matches!(error, VendorError::Refused(_)), "{error:?}");
    assert_eq!(sim.faults().requests_matching(&route), 1);
}

#[tokio::test]
async fn injected_429s_are_waited_out() {
    let sim = start_default().await;
    sim.add_group("OFFICERND_Members");
    let groups_path = sim.site_path("/access_groups");
    sim.faults()
        .inject_429(Route::path(groups_path.clone()), 1, 1);
    sim.faults()
        .inject_429(Route::path(groups_path.clone()), 1, 0);
    let groups = client(&sim).list_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    let route = Route::path(groups_path);
    assert_eq!(
        sim.faults()
            .responses_matching(&route, StatusCode::TOO_MANY_REQUESTS),
        2
    );
    assert_eq!(sim.faults().responses_matching(&route, StatusCode::OK), 1);
}

#[tokio::test]
async fn the_server_side_rate_limit_is_honoured() {
    let sim = start_default().await;
    sim.add_group("OFFICERND_Members");
    let client = client(&sim);
    client.list_groups().await.unwrap();
    sim.set_rate_limit(Some(2));
    for _ in 0..5 {
        assert_eq!(client.list_groups().await.unwrap().len(), 1);
    }
    let limited = sim
        .faults()
        .responses_matching(&Route::any(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited >= 1, "the simulator limited some requests");
}

#[tokio::test]
async fn too_many_429s_are_a_rate_limited_error() {
    let sim = start_default().await;
    sim.faults()
        .inject_429(Route::path(sim.site_path("/access_groups")), 10, 0);
    let error = client(&sim).list_groups().await.unwrap_err();
    assert!(
        matches!(error, VendorError::Http(HttpError::RateLimited { .. })),
        "{error:?}"
    );
    assert!(error.is_retryable_later());
}

#[tokio::test]
async fn server_errors_are_retried_where_safe() {
    let sim = start_default().await;
    let group_id = sim.add_group("OFFICERND_Members");
    let ada = sim.add_user("Ada", "Lovelace", Some("ada@example.com"));
    let client = client(&sim);

    let users = sim.site_path("/users");
    sim.faults().inject_status(
        Route::path(users.clone()).method(Method::GET),
        2,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    assert_eq!(client.list_users().await.unwrap().len(), 2);

    // Membership adds are set operations: retried after a 5xx.
    let add = sim.site_path(&format!("/access_groups/{group_id}/users"));
    sim.faults().inject_status(
        Route::path(add).method(Method::POST),
        1,
        StatusCode::BAD_GATEWAY,
    );
    client
        .add_to_group(
            &ada.user_id,
            &group(&group_id, "OFFICERND_Members"),
            GrantContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(sim.group_member_emails(&group_id), ["ada@example.com"]);

    // Creation is not repeated after a 5xx (a repeat could invite twice); the email is looked up.
    sim.faults().reset_counts();
    let create = Route::path(users.clone()).method(Method::POST);
    sim.faults()
        .inject_status(create.clone(), 1, StatusCode::INTERNAL_SERVER_ERROR);
    let error = client
        .create_user(&new_user("Bob", "Builder", "bob@example.com"))
        .await
        .unwrap_err();
    assert!(error.is_retryable_later(), "{error:?}");
    assert_eq!(sim.faults().requests_matching(&create), 1);
    assert_eq!(
        sim.faults()
            .requests_matching(&Route::path(users).method(Method::GET)),
        1,
        "one lookup by email"
    );
    assert!(sim.invitations().is_empty());
}

#[tokio::test]
async fn malformed_replies_are_protocol_errors() {
    let sim = start_default().await;
    let client = client(&sim);
    let users = Route::path(sim.site_path("/users")).method(Method::GET);
    let cases = [
        json!({"results": []}),
        json!({"items": [{"id": "site-user-without-platform-user"}], "next_page_link": null}),
        json!({"items": [], "next_page_link": "http://elsewhere.example/v1.2/next"}),
        json!({"items": [], "next_page_link": 42}),
    ];
    for body in cases {
        sim.faults().add(
            FaultRule::new(
                users.clone(),
                Fault::Status {
                    status: StatusCode::OK,
                    body: Some(body.clone()),
                },
            )
            .times(1),
        );
        let error = client.list_users().await.unwrap_err();
        assert!(
            matches!(error, VendorError::Http(HttpError::Protocol { .. })),
            "{body}: {error:?}"
        );
        assert!(!error.is_retryable_later());
        assert_no_secret(&error, &sim);
    }
}

#[tokio::test]
async fn a_repeated_page_link_stops_paging() {
    let sim = start_default().await;
    let groups = sim.site_path("/access_groups");
    let looping = json!({"items": [], "next_page_link": format!("{}{groups}", sim.base_url)});
    sim.faults().add(FaultRule::new(
        Route::path(groups),
        Fault::Status {
            status: StatusCode::OK,
            body: Some(looping),
        },
    ));
    let error = client(&sim).list_groups().await.unwrap_err();
    assert!(
        matches!(&error, VendorError::Http(HttpError::Protocol { detail, .. }) if detail.contains("repeated")),
        "{error:?}"
    );
}

#[tokio::test]
async fn check_reports_the_account_and_explains_a_wrong_site() {
    let sim = start_default().await;
    sim.add_group("OFFICERND_A");
    sim.add_group("OFFICERND_B");
    sim.add_user("Ada", "Lovelace", Some("ada@example.com"));
    let info = client(&sim).check().await.unwrap();
    assert_eq!((info.groups, info.users), (2, 2));

    let mut by_uid = fast_config(&sim);
    by_uid.site_id = sim.site_uid();
    let error = SaltoKsClient::new(by_uid)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VendorError::CredentialsInvalid(m) if m.contains("site_uid") && m.contains(&sim.site_id)),
        "{error:?}"
    );

    let mut unknown = fast_config(&sim);
    unknown.site_id = "00000000-0000-4000-8000-000000000000".to_owned();
    let unknown_client = SaltoKsClient::new(unknown).unwrap();
    let error = unknown_client.check().await.unwrap_err();
    assert!(
        matches!(&error, VendorError::CredentialsInvalid(m) if m.contains(&sim.site_id)),
        "{error:?}"
    );
    let error = unknown_client.list_groups().await.unwrap_err();
    assert!(
        matches!(&error, VendorError::CredentialsInvalid(m) if m.contains("404")),
        "{error:?}"
    );
    assert_no_secret(&error, &sim);
}

#[tokio::test]
async fn dashboard_edits_show_up_in_the_next_listing() {
    let sim = start_default().await;
    let group_id = sim.add_group("OFFICERND_Members");
    let target = group(&group_id, "OFFICERND_Members");
    let walk_in = sim.add_user("Walk", "In", Some("walk.in@example.com"));
    let client = client(&sim);
    assert!(client.list_group_members(&target).await.unwrap().is_empty());

    sim.dashboard_add_to_group(&group_id, "walk.in@example.com")
        .unwrap();
    assert_eq!(
        client.list_group_members(&target).await.unwrap(),
        vec![walk_in.user_id.clone()]
    );

    sim.dashboard_change_email("walk.in@example.com", "walked@example.com")
        .unwrap();
    let users = client.list_users().await.unwrap();
    let changed = users.iter().find(|u| u.id == walk_in.user_id).unwrap();
    assert_eq!(changed.email.as_deref(), Some("walked@example.com"));
    assert_eq!(sim.write_calls(), 0, "dashboard edits are not API writes");
}

#[tokio::test]
async fn a_403_for_a_just_created_user_is_waited_out_too() {
    let sim = start_default().await;
    let group_id = sim.add_group("OFFICERND_Members");
    let client = client(&sim);
    let created = client
        .create_user(&new_user("Fresh", "Face", "fresh@example.com"))
        .await
        .unwrap();
    let route = Route::path(sim.site_path(&format!("/access_groups/{group_id}/users")))
        .method(Method::POST);
    sim.faults().add(
        FaultRule::new(
            route.clone(),
            Fault::Status {
                status: StatusCode::FORBIDDEN,
                body: Some(json!({"ErrorCode": 2203, "Message": "User does not have permission for this operation on this user"})),
            },
        )
        .times(2),
    );
    client
        .add_to_group(
            &created.id,
            &group(&group_id, "OFFICERND_Members"),
            GrantContext::default(),
        )
        .await
        .unwrap();
    assert_eq!(sim.faults().requests_matching(&route), 3);
    assert_eq!(sim.group_member_emails(&group_id), ["fresh@example.com"]);
}

#[tokio::test]
async fn a_person_the_site_refuses_is_refused_only_for_them() {
    let sim = start_default().await;
    let error = client(&sim)
        .create_user(&new_user("", "Nameless", "nameless@example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VendorError::Refused(m) if m.contains("400") && m.contains("first_name")),
        "{error:?}"
    );
    assert!(!error.is_retryable_later());
    assert!(sim.invitations().is_empty());
}

#[tokio::test]
async fn a_deleted_group_is_refused_for_that_group_only() {
    let sim = start_default().await;
    let error = client(&sim)
        .list_group_members(&group("00000000-0000-4000-8000-000000000000", "Gone"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VendorError::Refused(m) if m.contains("Gone")),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_identity_host_answering_404_is_a_temporary_failure() {
    let sim = start_default().await;
    sim.faults()
        .inject_status(Route::path("/connect/token"), 10, StatusCode::NOT_FOUND);
    let error = client(&sim).list_groups().await.unwrap_err();
    assert!(error.is_retryable_later(), "{error:?}");
    assert!(error.to_string().contains("identity"), "{error}");
}

// ------------------------------------------------------------------------------------------------
// Issue 12: a role for every new user, seat exhaustion, list paging.

async fn raw_post(sim: &SimulatorHandle, path: &str, body: Value) -> (u16, Value) {
    let token = raw_token(sim).await;
    let response = reqwest::Client::new()
        .post(format!("{}{path}", sim.base_url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_simulator_refuses_a_site_user_without_a_role() {
    let sim = start_default().await;
    let users = sim.site_path("/users");
    let person = json!({"first_name": "No", "last_name": "Role", "email": "no.role@example.com"});
    assert_eq!(
        raw_post(&sim, &users, person.clone()).await,
        (
            400,
            json!({"ErrorCode": 1100, "Message": "The role_ids field is required."})
        )
    );
    let mut empty = person.clone();
    empty["role_ids"] = json!([]);
    assert_eq!(
        raw_post(&sim, &users, empty).await,
        (
            400,
            json!({"ErrorCode": 1101, "Message": "At least one role should be selected."})
        )
    );
    assert!(sim.user_by_email("no.role@example.com").is_none());
    assert!(sim.invitations().is_empty());

    // The roles are listed in the recorded envelope, `site_user` with a parent (rec-07).
    let roles = raw_get(&sim, &sim.site_path("/roles")).await;
    assert!(roles["next_page_link"].is_null() && roles["count"].is_null());
    let site_user = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|role| role["code"] == "site_user")
        .unwrap();
    assert_eq!(site_user["customer_reference"], "Site User");
    assert!(site_user["parent_id"].is_string());
}

#[tokio::test]
async fn new_users_get_the_sites_site_user_role_read_once() {
    let sim = start_default().await;
    let client = client(&sim);
    for (first, email) in [("Ann", "ann@example.com"), ("Bob", "bob@example.com")] {
        client
            .create_user(&new_user(first, "Member", email))
            .await
            .unwrap();
    }
    let site_user = sim.role_id("site_user").unwrap();
    for body in sim.created_user_bodies() {
        assert_eq!(body["role_ids"], json!([site_user]), "{body}");
    }
    assert_eq!(
        sim.user_role_ids("bob@example.com"),
        Some(vec![site_user.clone()])
    );
    assert_eq!(
        sim.faults()
            .requests(&Method::GET, &sim.site_path("/roles")),
        1,
        "the role is read once per client"
    );
    assert_eq!(client.user_role().await.unwrap(), site_user);
}

#[tokio::test]
async fn a_site_without_a_site_user_role_stops_the_connection_and_creates_nobody() {
    let sim = start_default().await;
    sim.remove_role("site_user");
    let client = client(&sim);
    let error = client.check().await.unwrap_err();
    assert!(
        matches!(&error, VendorError::CredentialsInvalid(m)
            if m.contains("userRoleId") && m.contains("site_user") && m.contains("Site Admin")),
        "{error:?}"
    );
    let error = client
        .create_user(&new_user("Ann", "Member", "ann@example.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VendorError::Refused(m) if m.contains("userRoleId")),
        "{error:?}"
    );
    assert_eq!(sim.write_calls(), 0);

    // Naming a role in the connection works without the list.
    let custom = sim.add_role("members", "Members");
    let mut config = fast_config(&sim);
    config.user_role_id = Some(custom.clone());
    let named = SaltoKsClient::new(config).unwrap();
    named.check().await.unwrap();
    named
        .create_user(&new_user("Ann", "Member", "ann@example.com"))
        .await
        .unwrap();
    assert_eq!(sim.user_role_ids("ann@example.com"), Some(vec![custom]));
}

fn desired(group: &VendorGroup, people: &[(&str, &str)]) -> flexgate::sync::SyncRequest {
    flexgate::sync::SyncRequest {
        groups: vec![flexgate::sync::DesiredGroup {
            group: group.clone(),
            people: people
                .iter()
                .map(|(first, email)| NewUser {
                    officernd_id: format!("member-{first}"),
                    first_name: (*first).to_owned(),
                    last_name: "Member".to_owned(),
                    email: (*email).to_owned(),
                    phone: None,
                })
                .collect(),
        }],
        mode: flexgate::sync::Mode::Apply,
        snapshot: flexgate::sync::SnapshotHealth::Complete { members: 10 },
        max_revocation_percent: 100,
        acknowledged_plan: None,
    }
}

#[tokio::test]
async fn a_person_created_without_a_free_seat_is_reported_never_granted() {
    let sim = start(SimulatorOptions {
        // The service user takes one seat, Ann the other.
        seat_limit: 2,
        ..SimulatorOptions::default()
    })
    .await;
    let group = group(&sim.add_group("OFFICERND_Members"), "OFFICERND_Members");
    let client = client(&sim);
    let request = desired(
        &group,
        &[("Ann", "ann@example.com"), ("Bob", "bob@example.com")],
    );

    let report = flexgate::sync::run(&client, &request).await.unwrap();
    // Salto KS created Bob (201) but suspended: he is not added, not counted, and reported.
    assert_eq!(sim.subscription_state("bob@example.com"), Some("suspended"));
    assert_eq!(sim.group_member_emails(&group.id), ["ann@example.com"]);
    assert_eq!(report.created_users, 2);
    assert_eq!(report.applied_grants, 1);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let failure = &report.failures[0];
    assert_eq!(failure.subject, "member bob@example.com");
    assert!(
        failure.message.contains("not granted")
            && failure.message.contains("suspended")
            && failure.message.contains("2 of the site's 2 user seats"),
        "{}",
        failure.message
    );
    assert!(!failure.retryable);
    assert_eq!(report.pending(), 1, "Bob's grant is still to do");

    // The next sync finds Bob in the site (suspended) and still does not grant him.
    let adds = sim.writes_by_kind().get("add_member").copied();
    let report = flexgate::sync::run(&client, &request).await.unwrap();
    assert_eq!(report.created_users, 0);
    assert_eq!(report.applied_grants, 0);
    assert_eq!(report.groups[0].plan.kept, 1);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(sim.writes_by_kind().get("add_member").copied(), adds);

    // A seat is bought and an administrator resumes Bob: the next sync grants him.
    sim.set_seat_limit(3);
    assert!(sim.dashboard_resume("bob@example.com").unwrap());
    let report = flexgate::sync::run(&client, &request).await.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.applied_grants, 1);
    assert_eq!(
        sim.group_member_emails(&group.id),
        ["ann@example.com", "bob@example.com"]
    );
}

#[tokio::test]
async fn a_group_member_whose_user_is_suspended_is_not_counted_granted() {
    let sim = start_default().await;
    let group = group(&sim.add_group("OFFICERND_Members"), "OFFICERND_Members");
    let cy = sim.add_user("Cy", "Member", Some("cy@example.com"));
    sim.dashboard_add_to_group(&group.id, "cy@example.com")
        .unwrap();
    // An administrator suspends Cy (as licence-saving integrations do, Roomdoo).
    let token = raw_token(&sim).await;
    let response = reqwest::Client::new()
        .patch(format!(
            "{}{}",
            sim.base_url,
            sim.site_path(&format!("/users/{}/subscription", cy.site_user_id))
        ))
        .bearer_auth(&token)
        .json(&json!({"state": "suspended"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let client = client(&sim);
    let report = flexgate::sync::run(&client, &desired(&group, &[("Cy", "cy@example.com")]))
        .await
        .unwrap();
    let plan = &report.groups[0].plan;
    assert_eq!(plan.kept, 0, "a suspended member holds no access");
    assert_eq!(plan.grants.len(), 1);
    assert!(
        plan.revokes.is_empty(),
        "Cy keeps the group for when she is resumed"
    );
    assert_eq!(report.failures.len(), 1);
    assert!(report.failures[0].message.contains("suspended"));
    assert_eq!(sim.group_member_emails(&group.id), ["cy@example.com"]);
    assert_eq!(sim.writes_by_kind().get("add_member"), None);
}

#[tokio::test]
async fn the_simulator_pages_users_as_measured_and_exhausts_seats_silently() {
    let sim = start(SimulatorOptions {
        page_size: 2,
        seat_limit: 3,
        ..SimulatorOptions::default()
    })
    .await;
    for i in 0..4 {
        sim.add_user("Person", &i.to_string(), Some(&format!("p{i}@example.com")));
    }
    // Without $top: a bare array of one server page, nothing saying more exist.
    let bare = raw_get(&sim, &sim.site_path("/users")).await;
    assert_eq!(bare.as_array().map(Vec::len), Some(2));
    // With $top: the recorded envelope, paged with a link that carries $top and $skip.
    let paged = raw_get(&sim, &format!("{}?$top=100", sim.site_path("/users"))).await;
    assert_eq!(paged["items"].as_array().map(Vec::len), Some(2));
    let link = paged["next_page_link"].as_str().unwrap();
    assert!(
        link.contains("%24top=98") && link.contains("%24skip=2"),
        "{link}"
    );
    // $top caps the whole answer: the window ends with a null link although more users exist.
    let capped = raw_get(&sim, &format!("{}?$top=2", sim.site_path("/users"))).await;
    assert!(capped["next_page_link"].is_null());
    // Seats: the service user and two people hold the three seats; the rest are suspended.
    assert_eq!(sim.seats_taken(), 3);
    assert_eq!(sim.subscription_state("p2@example.com"), Some("suspended"));
    let site = raw_get(&sim, &sim.site_path("")).await;
    assert_eq!(
        (&site["active_user_amount"], &site["subscribed_user_amount"]),
        (&json!(3), &json!(3))
    );
    let (status, body) = raw_post(
        &sim,
        &sim.site_path("/users"),
        json!({"first_name": "Late", "email": "late@example.com",
               "role_ids": [sim.role_id("site_user").unwrap()]}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(body["subscription_state"], "suspended");
}

#[tokio::test]
async fn site_users_are_listed_with_top_so_a_short_bare_array_is_never_the_whole_site() {
    // The default listing answers a request without $top with one bare page of 3.
    let sim = start(SimulatorOptions {
        page_size: 3,
        ..SimulatorOptions::default()
    })
    .await;
    for i in 0..7 {
        sim.add_user("Person", &i.to_string(), Some(&format!("p{i}@example.com")));
    }
    let users = client(&sim).list_users().await.unwrap();
    assert_eq!(users.len(), 8, "the service user and seven people");
    let queries = sim.user_list_queries();
    assert_eq!(queries[0], "%24top=100", "{queries:?}");
    assert_eq!(queries.len(), 3, "{queries:?}");
}

#[tokio::test]
async fn bare_arrays_are_read_in_top_windows_with_skip() {
    let sim = start(SimulatorOptions {
        page_size: 5,
        users_listing: UsersListing::BareArray,
        ..SimulatorOptions::default()
    })
    .await;
    for i in 0..7 {
        sim.add_user("Person", &i.to_string(), Some(&format!("p{i}@example.com")));
    }
    let mut config = fast_config(&sim);
    config.page_size = 3;
    let users = SaltoKsClient::new(config)
        .unwrap()
        .list_users()
        .await
        .unwrap();
    let mut emails: Vec<String> = users.into_iter().filter_map(|u| u.email).collect();
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), 8);
    assert_eq!(
        sim.user_list_queries(),
        ["%24top=3", "%24top=3&%24skip=3", "%24top=3&%24skip=6"]
    );
}

#[tokio::test]
async fn a_window_that_reaches_top_is_followed_by_the_next_window() {
    let sim = start(SimulatorOptions {
        page_size: 2,
        users_listing: UsersListing::Envelope,
        ..SimulatorOptions::default()
    })
    .await;
    for i in 0..8 {
        sim.add_user("Person", &i.to_string(), Some(&format!("p{i}@example.com")));
    }
    let mut config = fast_config(&sim);
    config.page_size = 4;
    let users = SaltoKsClient::new(config)
        .unwrap()
        .list_users()
        .await
        .unwrap();
    assert_eq!(users.len(), 9);
    let queries = sim.user_list_queries();
    assert_eq!(queries[0], "%24top=4");
    assert!(
        queries.contains(&"%24top=4&%24skip=4".to_owned()),
        "{queries:?}"
    );
    assert!(
        queries.contains(&"%24top=4&%24skip=8".to_owned()),
        "{queries:?}"
    );
}

#[tokio::test]
async fn a_server_that_ignores_skip_fails_the_list_instead_of_repeating_people() {
    let sim = start(SimulatorOptions {
        users_listing: UsersListing::BareArray,
        ..SimulatorOptions::default()
    })
    .await;
    for i in 0..3 {
        sim.add_user("Person", &i.to_string(), Some(&format!("p{i}@example.com")));
    }
    let page = raw_get(&sim, &format!("{}?$top=3", sim.site_path("/users"))).await;
    sim.faults().add(FaultRule::new(
        Route::path(sim.site_path("/users")).method(Method::GET),
        Fault::Status {
            status: StatusCode::OK,
            body: Some(page),
        },
    ));
    let mut config = fast_config(&sim);
    config.page_size = 3;
    let error = SaltoKsClient::new(config)
        .unwrap()
        .list_users()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, VendorError::Http(HttpError::Protocol { detail, .. }) if detail.contains("$skip")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_count_not_yet_reached_is_read_on() {
    let sim = start_default().await;
    let users = Route::path(sim.site_path("/users")).method(Method::GET);
    let person = |n: u32| {
        json!({"id": format!("site-{n}"), "user": {"id": format!("platform-{n}"),
               "email": format!("p{n}@example.com"), "first_name": "P", "last_name": n.to_string()}})
    };
    // The server stops short of $top without a link, but says there are three.
    sim.faults().add(
        FaultRule::new(
            users.clone(),
            Fault::Status {
                status: StatusCode::OK,
                body: Some(
                    json!({"items": [person(1), person(2)], "next_page_link": null, "count": 3}),
                ),
            },
        )
        .times(1),
    );
    sim.faults().add(
        FaultRule::new(
            users,
            Fault::Status {
                status: StatusCode::OK,
                body: Some(json!({"items": [person(3)], "next_page_link": null, "count": 3})),
            },
        )
        .after(1)
        .times(1),
    );
    let listed = client(&sim).list_users().await.unwrap();
    assert_eq!(listed.len(), 3);
}

/// A listener that counts the connections it gets (and answers none).
async fn trap() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    (origin, hits)
}

#[tokio::test]
async fn an_off_host_next_page_link_is_followed_on_the_api_host_without_the_token_leaving() {
    let (elsewhere, hits) = trap().await;
    let sim = start(SimulatorOptions {
        page_size: 2,
        users_listing: UsersListing::Envelope,
        next_link_origin: Some(elsewhere),
        ..SimulatorOptions::default()
    })
    .await;
    for i in 0..4 {
        sim.add_user("Person", &i.to_string(), Some(&format!("p{i}@example.com")));
    }
    let ids: Vec<String> = (0..3)
        .map(|i| sim.add_group(&format!("OFFICERND_G{i}")))
        .collect();
    let client = client(&sim);
    assert_eq!(client.list_users().await.unwrap().len(), 5);
    assert_eq!(client.list_groups().await.unwrap().len(), ids.len());
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(
        sim.faults()
            .requests(&Method::GET, &sim.site_path("/users")),
        3
    );
}

#[tokio::test]
async fn a_binding_whose_members_get_no_seat_is_a_partial_failure_never_synced() {
    use flexgate::api::conditions::Reason;
    use flexgate::operator::objects::Objects;
    use flexgate::operator::runner::{reconcile_all, ClientCache};
    use flexgate::sandbox::{demo_start, Sandbox};

    let sandbox = Sandbox::start_demo().await.unwrap();
    let (documents, problems) = flexgate::manifests::load(&[std::path::PathBuf::from("examples")]);
    assert!(problems.is_empty(), "{problems:?}");
    let mut objects = Objects::from_documents(&documents).unwrap();
    sandbox.connect(&mut objects);
    // Every seat of the site's subscription is already taken.
    let taken = u32::try_from(sandbox.salto_ks.seats_taken()).unwrap();
    sandbox.salto_ks.set_seat_limit(taken);

    let at = demo_start();
    sandbox.clock.set(at);
    let results = reconcile_all(
        &objects,
        at,
        &mut ClientCache::default(),
        &sandbox.clock.clock(),
    )
    .await
    .results;
    let (_, floor) = results
        .iter()
        .find(|(key, _)| key.name == "london-floor-1")
        .unwrap();
    assert_eq!(
        floor.outcome.reason,
        Reason::PartialFailure,
        "{}",
        floor.outcome.message
    );
    assert!(!floor.outcome.ready);
    assert!(floor.counts.errors > 0);
    assert_eq!(
        floor.counts.granted, 0,
        "nobody holds a seat, nobody is granted"
    );
    let suspended: Vec<_> = floor
        .problems
        .0
        .iter()
        .filter(|problem| problem.message.contains("suspended"))
        .collect();
    assert_eq!(suspended.len() as u32, floor.counts.errors);
    assert!(suspended
        .iter()
        .all(|problem| problem.subject.starts_with("member ")));
    assert!(sandbox
        .group_members(flexgate::api::Vendor::SaltoKS, "OFFICERND_Floor 1")
        .is_empty());
}
