//! Kisi client against the in-process Kisi simulator: API-key auth, offset paging, listing, user
//! creation, idempotent group grants and revokes over duplicate rows, notification policies,
//! 429/5xx handling, malformed replies, secret hygiene, and the simulator's own wire strictness.

use std::collections::HashSet;
use std::time::Duration;

use flexgate::http::{HttpError, RetryPolicy};
use flexgate::sandbox::faults::{Fault, FaultRule, Route};
use flexgate::sandbox::kisi::{
    AssignmentOrigin, RoleAssignmentQuirks, Simulator, SimulatorHandle, SimulatorOptions,
};
use flexgate::sync::{self, DesiredGroup, Mode, SnapshotHealth, SyncRequest};
use flexgate::vendors::kisi::{KisiClient, KisiConfig, KisiNotificationPolicy};
use flexgate::vendors::{DoorVendor, GrantContext, NewUser, VendorError, VendorGroup};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_total: Duration::from_secs(30),
        default_retry_after: Duration::from_millis(10),
    }
}

fn config_for(sim: &SimulatorHandle, policy: KisiNotificationPolicy) -> KisiConfig {
    let mut config = sim
        .client_config()
        .unwrap()
        .with_notification_policy(policy);
    config.retry = fast_retries();
    config.requests_per_second = 1000.0;
    config
}

async fn start(policy: KisiNotificationPolicy) -> (SimulatorHandle, KisiClient) {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    let client = KisiClient::new(config_for(&sim, policy)).unwrap();
    (sim, client)
}

fn group(sim: &SimulatorHandle, name: &str) -> VendorGroup {
    VendorGroup {
        id: sim.add_group(name),
        name: name.to_owned(),
    }
}

fn new_user(index: usize) -> NewUser {
    NewUser {
        officernd_id: format!("66a0000000000000000000{index:02}"),
        first_name: format!("First{index}"),
        last_name: format!("Last{index}"),
        email: format!("person{index}@example.com"),
        phone: Some(format!("+44 20 7946 00{index:02}")),
    }
}

fn route(method: Method, path: &str) -> Route {
    Route::path(path).method(method)
}

const NOTIFY: GrantContext = GrantContext { notify: true };
const SILENT: GrantContext = GrantContext { notify: false };

// --- auth -----------------------------------------------------------------------------------------

#[tokio::test]
async fn sends_kisi_login_and_a_wrong_key_is_rejected_once_without_leaking_it() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    sim.add_group("Front door");
    let good = KisiClient::new(config_for(&sim, KisiNotificationPolicy::Never)).unwrap();
    assert_eq!(good.list_groups().await.unwrap().len(), 1);

    let wrong_key = "wrong-key-0123456789abcdef0123456789";
    let mut config = config_for(&sim, KisiNotificationPolicy::Never);
    config.api_key = wrong_key.into();
    let bad = KisiClient::new(config).unwrap();
    let error = bad.list_groups().await.unwrap_err();

    assert!(
        matches!(error, VendorError::CredentialsInvalid(_)),
        "{error:?}"
    );
    assert!(!error.is_retryable_later());
    assert_eq!(
        sim.faults()
            .responses_matching(&Route::path("/groups"), StatusCode::UNAUTHORIZED),
        1,
        "an API key cannot be refreshed: no second attempt"
    );
    let shown = format!("{error} {error:?} {bad:?} {:?}", bad.config());
    assert!(!shown.contains(wrong_key), "{shown}");
    assert!(!shown.contains(sim.api_key.expose()), "{shown}");
}

#[tokio::test]
async fn simulator_answers_kisis_documented_401_body() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    let http = reqwest::Client::new();
    for authorization in [
        None,
        Some(format!("Bearer {}", sim.api_key.expose())),
        Some("KISI-LOGIN nope".to_owned()),
    ] {
        let mut request = http.get(format!("{}/users", sim.base_url));
        if let Some(value) = &authorization {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"code": "afc516", "error": "Wrong email address or password."})
        );
    }
}

// --- listing and paging ---------------------------------------------------------------------------

#[tokio::test]
async fn lists_237_users_in_three_pages_of_100() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    for index in 0..237 {
        sim.add_user(
            &format!("User {index}"),
            &format!("user{index}@example.com"),
        )
        .unwrap();
    }

    let users = client.list_users().await.unwrap();

    assert_eq!(users.len(), 237);
    let listed: HashSet<String> = users.iter().map(|user| user.id.clone()).collect();
    let stored: HashSet<String> = sim.users().into_iter().map(|user| user.id).collect();
    assert_eq!(listed, stored);
    assert!(users.iter().all(|user| user
        .email
        .as_deref()
        .is_some_and(|email| email.ends_with("@example.com"))));
    assert_eq!(
        sim.faults().requests(&Method::GET, "/users"),
        3,
        "100 + 100 + 37"
    );
}

#[tokio::test]
async fn lists_groups_with_small_pages_and_a_page_failure_fails_the_whole_list() {
    let (sim, _) = start(KisiNotificationPolicy::KisiDefault).await;
    let names: Vec<String> = (0..12).map(|index| format!("Group {index}")).collect();
    for name in &names {
        sim.add_group(name);
    }
    let mut config = config_for(&sim, KisiNotificationPolicy::KisiDefault);
    config.groups_page_size = 5;
    let client = KisiClient::new(config.clone()).unwrap();

    let groups = client.list_groups().await.unwrap();
    let listed: Vec<String> = groups.iter().map(|group| group.name.clone()).collect();
    assert_eq!(listed, names);
    assert_eq!(
        sim.faults().requests(&Method::GET, "/groups"),
        3,
        "5 + 5 + 2"
    );

    // The third page keeps failing: no partial list comes back.
    config.retry = RetryPolicy {
        max_attempts: 2,
        ..fast_retries()
    };
    let strict = KisiClient::new(config).unwrap();
    sim.faults().reset_counts();
    sim.faults().add(
        FaultRule::new(
            route(Method::GET, "/groups"),
            Fault::Status {
                status: StatusCode::BAD_GATEWAY,
                body: None,
            },
        )
        .after(2),
    );
    let error = strict.list_groups().await.unwrap_err();
    assert!(error.is_retryable_later(), "{error:?}");
    assert_eq!(sim.faults().requests(&Method::GET, "/groups"), 4);
}

#[tokio::test]
async fn check_reports_group_and_user_counts_from_the_collection_range() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    for index in 0..3 {
        sim.add_group(&format!("Group {index}"));
    }
    for index in 0..7 {
        sim.add_user("Someone", &format!("someone{index}@example.com"))
            .unwrap();
    }

    let info = client.check().await.unwrap();

    assert_eq!((info.groups, info.users), (3, 7));
    assert_eq!(sim.faults().requests(&Method::GET, "/groups"), 1);
    assert_eq!(sim.faults().requests(&Method::GET, "/users"), 1);
}

#[tokio::test]
async fn group_members_are_paged_over_250_and_deduplicated() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    let door = group(&sim, "Members");
    let other = group(&sim, "Other");
    let mut expected = HashSet::new();
    for index in 0..260 {
        let user = sim
            .add_user("Member", &format!("member{index}@example.com"))
            .unwrap();
        sim.dashboard_add_to_group(&user, &door.id).unwrap();
        expected.insert(user);
    }
    let first = sim.users()[0].id.clone();
    sim.dashboard_add_to_group(&first, &door.id).unwrap(); // a duplicate row
    sim.dashboard_add_to_group(&first, &other.id).unwrap();

    let members = client.list_group_members(&door).await.unwrap();

    assert_eq!(members.len(), 260);
    assert_eq!(members.iter().cloned().collect::<HashSet<_>>(), expected);
    assert_eq!(
        sim.faults().requests(&Method::GET, "/role_assignments"),
        2,
        "261 rows at 250 per page"
    );
}

#[tokio::test]
async fn simulator_reports_the_requested_range_unclamped() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    for index in 0..15 {
        sim.add_group(&format!("Group {index}"));
    }
    let response = reqwest::Client::new()
        .get(format!("{}/groups?limit=10&offset=10", sim.base_url))
        .header(
            "Authorization",
            format!("KISI-LOGIN {}", sim.api_key.expose()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["x-collection-range"].to_str().unwrap(),
        "10-19/15"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body.as_array().map(Vec::len), Some(5));
}

#[tokio::test]
async fn find_user_by_email_matches_case_insensitively_among_free_text_hits() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    sim.add_user("Ada (AU)", "ada.lovelace@example.com.au")
        .unwrap();
    let ada = sim.add_user("Ada", "Ada.Lovelace@Example.com").unwrap();
    sim.add_user("Nobody", "nobody@example.com").unwrap();

    let found = client
        .find_user_by_email("ada.lovelace@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, ada);
    assert_eq!(found.email.as_deref(), Some("Ada.Lovelace@Example.com"));
    assert!(client
        .find_user_by_email("grace@example.com")
        .await
        .unwrap()
        .is_none());
}

// --- users ----------------------------------------------------------------------------------------

#[tokio::test]
async fn create_user_sends_name_email_and_marker_but_no_company() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    let person = NewUser {
        officernd_id: "66a00000000000000000abcd".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: "ada@example.com".into(),
        phone: Some("+44 20 7946 0000".into()),
    };

    let created = client.create_user(&person).await.unwrap();

    assert_eq!(created.name, "Ada Lovelace");
    assert_eq!(created.email.as_deref(), Some("ada@example.com"));
    assert_eq!(
        created.external_id.as_deref(),
        Some("66a00000000000000000abcd")
    );
    let payloads = sim.created_user_payloads();
    assert_eq!(payloads.len(), 1);
    let sent = payloads[0].as_object().unwrap();
    assert_eq!(sent["name"], "Ada Lovelace");
    assert_eq!(sent["email"], "ada@example.com");
    assert_eq!(
        sent["metadata"],
        json!({"officernd_id": "66a00000000000000000abcd"})
    );
    let notes = sent["notes"].as_str().unwrap();
    assert!(notes.contains("66a00000000000000000abcd"), "{notes}");
    assert!(notes.contains("+44 20 7946 0000"), "{notes}");
    for absent in ["company", "company_name", "phone", "organization"] {
        assert!(!sent.contains_key(absent), "{absent} was sent: {sent:?}");
    }

    // The marker comes back on listing, so a later sync recognises its own user.
    let listed = client.list_users().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.id);
    assert_eq!(
        listed[0].external_id.as_deref(),
        Some("66a00000000000000000abcd")
    );
}

#[tokio::test]
async fn a_taken_email_is_refused_for_that_person_only() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    sim.add_user("Existing", "Person1@Example.com").unwrap();

    let error = client.create_user(&new_user(1)).await.unwrap_err();

    match &error {
        VendorError::Refused(message) => {
            assert!(message.contains("has already been taken"), "{message}");
            assert!(message.contains(&new_user(1).officernd_id), "{message}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert!(!error.is_retryable_later());
    assert_eq!(sim.users().len(), 1);
}

#[tokio::test]
async fn an_email_changed_by_hand_shows_on_the_next_listing() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    let created = client.create_user(&new_user(2)).await.unwrap();
    sim.dashboard_change_email(&created.id, "renamed@example.com")
        .unwrap();

    let users = client.list_users().await.unwrap();

    assert_eq!(users[0].email.as_deref(), Some("renamed@example.com"));
    assert_eq!(users[0].external_id, created.external_id);
}

// --- group membership -----------------------------------------------------------------------------

/// Issue 12, point 6: the grant body is the current OpenAPI's form, with its required keys.
#[tokio::test]
async fn add_to_group_posts_once_in_the_current_form_and_is_idempotent() {
    let (sim, client) = start(KisiNotificationPolicy::Never).await;
    let door = group(&sim, "Front door");
    let user = sim.add_user("Ada", "ada@example.com").unwrap();

    client.add_to_group(&user, &door, SILENT).await.unwrap();
    client.add_to_group(&user, &door, SILENT).await.unwrap();

    assert_eq!(sim.access_row_count(&user, &door.id), 1);
    assert_eq!(sim.write_calls(), 1);
    assert_eq!(sim.faults().requests(&Method::POST, "/role_assignments"), 1);
    assert_eq!(
        sim.grant_payloads(),
        vec![json!({
            "applies_to_type": "Group",
            "applies_to_id": door.id.parse::<u64>().unwrap(),
            "assignee_type": "User",
            "assignee_id": user.parse::<u64>().unwrap(),
            "role_id": "group_basic",
            "notify": false,
        })]
    );
    assert_eq!(
        sim.role_assignments()[0].origin,
        AssignmentOrigin::ApiCurrentForm
    );
    assert_eq!(sim.group_member_emails(&door.id), vec!["ada@example.com"]);
    assert_eq!(client.list_group_members(&door).await.unwrap(), vec![user]);
}

#[tokio::test]
async fn a_membership_added_by_hand_is_not_duplicated() {
    let (sim, client) = start(KisiNotificationPolicy::Always).await;
    let door = group(&sim, "Front door");
    let user = sim.add_user("Ada", "ada@example.com").unwrap();
    sim.dashboard_add_to_group(&user, &door.id).unwrap();

    client.add_to_group(&user, &door, SILENT).await.unwrap();

    assert_eq!(sim.access_row_count(&user, &door.id), 1);
    assert_eq!(sim.write_calls(), 0);
    assert!(sim.notifications().is_empty());
}

#[tokio::test]
async fn remove_deletes_every_duplicate_row_and_then_is_a_no_op() {
    let (sim, client) = start(KisiNotificationPolicy::Never).await;
    let door = group(&sim, "Front door");
    let lobby = group(&sim, "Lobby");
    let user = sim.add_user("Ada", "ada@example.com").unwrap();
    let bystander = sim.add_user("Bob", "bob@example.com").unwrap();
    client.add_to_group(&user, &door, SILENT).await.unwrap();
    sim.dashboard_add_to_group(&user, &door.id).unwrap();
    sim.dashboard_add_to_group(&user, &door.id).unwrap();
    sim.dashboard_add_to_group(&user, &lobby.id).unwrap();
    sim.dashboard_add_to_group(&bystander, &door.id).unwrap();
    assert_eq!(sim.access_row_count(&user, &door.id), 3);
    let writes_before = sim.write_calls();

    client.remove_from_group(&user, &door).await.unwrap();

    assert_eq!(sim.access_row_count(&user, &door.id), 0);
    assert_eq!(sim.write_calls() - writes_before, 3);
    assert_eq!(
        sim.access_row_count(&user, &lobby.id),
        1,
        "other groups kept"
    );
    assert_eq!(sim.group_member_emails(&door.id), vec!["bob@example.com"]);

    client.remove_from_group(&user, &door).await.unwrap();
    assert_eq!(
        sim.write_calls() - writes_before,
        3,
        "nothing left to delete"
    );
}

#[tokio::test]
async fn a_row_already_gone_on_delete_counts_as_removed() {
    let (sim, client) = start(KisiNotificationPolicy::Never).await;
    let door = group(&sim, "Front door");
    let user = sim.add_user("Ada", "ada@example.com").unwrap();
    let row = sim.dashboard_add_to_group(&user, &door.id).unwrap();
    // Someone else deletes the row between our listing and our DELETE.
    sim.faults().add(
        FaultRule::new(
            route(Method::DELETE, &format!("/role_assignments/{row}")),
            Fault::Status {
                status: StatusCode::NOT_FOUND,
                body: Some(json!({"code": "000404", "error": "Not found"})),
            },
        )
        .times(1),
    );

    client.remove_from_group(&user, &door).await.unwrap();

    assert_eq!(
        sim.faults()
            .requests(&Method::DELETE, &format!("/role_assignments/{row}")),
        1
    );
}

#[tokio::test]
async fn group_manager_rows_are_neither_members_nor_removed() {
    let (sim, client) = start(KisiNotificationPolicy::Never).await;
    let door = group(&sim, "Front door");
    let manager = sim.add_user("Manager", "manager@example.com").unwrap();
    sim.dashboard_assign(&manager, &door.id, "group_manager")
        .unwrap();

    assert!(client.list_group_members(&door).await.unwrap().is_empty());
    client.add_to_group(&manager, &door, SILENT).await.unwrap();
    assert_eq!(sim.access_row_count(&manager, &door.id), 1);
    client.remove_from_group(&manager, &door).await.unwrap();

    let remaining = sim.role_assignments();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].role_id, "group_manager");
}

/// Issue 12, point 6: rows that do not say their group are never taken as this group's rows,
/// even when the server ignored the group filter; the person's rows elsewhere survive a revoke.
#[tokio::test]
async fn a_revoke_never_deletes_rows_that_do_not_say_their_group() {
    let (sim, client) = start(KisiNotificationPolicy::Never).await;
    let door = group(&sim, "Front door");
    let lobby = group(&sim, "Lobby");
    let user = sim.add_user("Ada", "ada@example.com").unwrap();
    sim.dashboard_add_to_group(&user, &door.id).unwrap();
    sim.dashboard_add_to_group(&user, &lobby.id).unwrap();
    sim.set_role_assignment_quirks(RoleAssignmentQuirks {
        ignore_group_filter: true,
        omit_group_keys: true,
    });

    let revoke = client.remove_from_group(&user, &door).await;
    let members = client.list_group_members(&door).await;
    let grant = client.add_to_group(&user, &lobby, SILENT).await;

    assert_eq!(
        sim.access_row_count(&user, &lobby.id),
        1,
        "the Lobby row was deleted by a Front door revoke"
    );
    for outcome in [revoke, grant, members.map(|_| ())] {
        match outcome {
            Err(VendorError::Http(HttpError::Protocol { detail, .. })) => {
                assert!(detail.contains("does not say its"), "{detail}")
            }
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }
    assert_eq!(
        sim.write_calls(),
        0,
        "nothing written on rows it cannot place"
    );
}

#[tokio::test]
async fn rows_of_other_groups_returned_despite_the_filter_are_ignored() {
    let (sim, client) = start(KisiNotificationPolicy::Never).await;
    let door = group(&sim, "Front door");
    let lobby = group(&sim, "Lobby");
    let ada = sim.add_user("Ada", "ada@example.com").unwrap();
    let bob = sim.add_user("Bob", "bob@example.com").unwrap();
    sim.dashboard_add_to_group(&ada, &door.id).unwrap();
    sim.dashboard_add_to_group(&ada, &lobby.id).unwrap();
    sim.dashboard_add_to_group(&bob, &lobby.id).unwrap();
    sim.set_role_assignment_quirks(RoleAssignmentQuirks {
        ignore_group_filter: true,
        omit_group_keys: false,
    });

    assert_eq!(
        client.list_group_members(&door).await.unwrap(),
        vec![ada.clone()]
    );
    client.remove_from_group(&ada, &door).await.unwrap();

    assert_eq!(sim.access_row_count(&ada, &door.id), 0);
    assert_eq!(sim.access_row_count(&ada, &lobby.id), 1);
    assert_eq!(sim.access_row_count(&bob, &lobby.id), 1);
}

#[tokio::test]
async fn a_grant_to_a_group_deleted_in_kisi_is_refused() {
    let (sim, client) = start(KisiNotificationPolicy::Never).await;
    let user = sim.add_user("Ada", "ada@example.com").unwrap();
    let gone = VendorGroup {
        id: "987654".into(),
        name: "Deleted group".into(),
    };

    let error = client.add_to_group(&user, &gone, SILENT).await.unwrap_err();

    match error {
        VendorError::Refused(message) => assert!(message.contains("must exist"), "{message}"),
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn simulator_stacks_duplicate_rows_and_refuses_the_deprecated_form() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    let door = sim.add_group("Front door");
    let user = sim.add_user("Ada", "ada@example.com").unwrap();
    let http = reqwest::Client::new();
    let post = |body: Value| {
        http.post(format!("{}/role_assignments", sim.base_url))
            .header(
                "Authorization",
                format!("KISI-LOGIN {}", sim.api_key.expose()),
            )
            .json(&body)
            .send()
    };

    let legacy = post(json!({"role_assignment": {
        "user_id": user.parse::<u64>().unwrap(), "role_id": "group_basic",
        "group_id": door.parse::<u64>().unwrap(), "notify": false}}))
    .await
    .unwrap();
    assert_eq!(legacy.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = legacy.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errors": {"applies_to_type": ["can't be blank"]}})
    );
    let first = post(json!({"role_assignment": {
        "assignee_type": "User", "assignee_id": user, "applies_to_type": "Group",
        "applies_to_id": door, "role_id": "group_basic", "notify": false}}))
    .await
    .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let current = post(json!({"role_assignment": {
        "assignee_type": "User", "assignee_id": user, "applies_to_type": "Group",
        "applies_to_id": door, "role_id": "group_basic", "notify": false}}))
    .await
    .unwrap();
    assert_eq!(current.status(), StatusCode::OK);
    let row: Value = current.json().await.unwrap();
    assert_eq!(row["applies_to_id"].to_string(), door);
    assert_eq!(row["user_id"].to_string(), user);

    assert_eq!(
        sim.access_row_count(&user, &door),
        2,
        "a duplicate, not a 409"
    );
    let origins: Vec<AssignmentOrigin> = sim
        .role_assignments()
        .iter()
        .map(|row| row.origin)
        .collect();
    assert_eq!(
        origins,
        vec![
            AssignmentOrigin::ApiCurrentForm,
            AssignmentOrigin::ApiCurrentForm
        ]
    );
    let listed: Vec<Value> = http
        .get(format!(
            "{}/role_assignments?applies_to_type=Group&applies_to_id={door}",
            sim.base_url
        ))
        .header(
            "Authorization",
            format!("KISI-LOGIN {}", sim.api_key.expose()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    for key in [
        "applies_to_type",
        "applies_to_id",
        "assignee_type",
        "assignee_id",
        "role_id",
        "group_id",
        "type",
        "scope",
    ] {
        assert!(
            listed[0].get(key).is_some(),
            "rows carry {key}: {}",
            listed[0]
        );
    }
    let unpaired = http
        .get(format!(
            "{}/role_assignments?applies_to_id={door}",
            sim.base_url
        ))
        .header(
            "Authorization",
            format!("KISI-LOGIN {}", sim.api_key.expose()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unpaired.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let unwrapped = post(json!({"user_id": 1, "group_id": 2})).await.unwrap();
    assert_eq!(unwrapped.status(), StatusCode::BAD_REQUEST);
    let body: Value = unwrapped.json().await.unwrap();
    assert!(
        body["code"].is_string() && body["error"].is_string(),
        "{body}"
    );

    let bad_role = post(json!({"role_assignment": {
        "assignee_type": "User", "assignee_id": user, "applies_to_type": "Group",
        "applies_to_id": door, "role_id": "owner"}}))
    .await
    .unwrap();
    assert_eq!(bad_role.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = bad_role.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errors": {"role_id": ["is not included in the list"]}})
    );

    let missing = http
        .delete(format!("{}/role_assignments/123", sim.base_url))
        .header(
            "Authorization",
            format!("KISI-LOGIN {}", sim.api_key.expose()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body, json!({"code": "000404", "error": "Not found"}));

    let garbage = http
        .post(format!("{}/users", sim.base_url))
        .header(
            "Authorization",
            format!("KISI-LOGIN {}", sim.api_key.expose()),
        )
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let invalid_email = http
        .post(format!("{}/users", sim.base_url))
        .header(
            "Authorization",
            format!("KISI-LOGIN {}", sim.api_key.expose()),
        )
        .json(&json!({"user": {"email": "not-an-email", "name": "X"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(invalid_email.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = invalid_email.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errors": {"email": ["can't be blank or invalid"]}})
    );
}

// --- notification policy --------------------------------------------------------------------------
//
// The client keeps no memory of whom it notified: the door sync decides per grant. These tests run
// the sync (`sync::run`) with a fresh client each time, as a restarted operator would.

fn sync_request(groups: &[&VendorGroup], people: &[NewUser]) -> SyncRequest {
    SyncRequest {
        groups: groups
            .iter()
            .map(|group| DesiredGroup {
                group: (*group).clone(),
                people: people.to_vec(),
            })
            .collect(),
        mode: Mode::Apply,
        snapshot: SnapshotHealth::Complete {
            members: people.len(),
        },
        max_revocation_percent: 100,
        acknowledged_plan: None,
    }
}

/// One sync by a client built for it: a new process each time.
async fn sync_fresh(
    sim: &SimulatorHandle,
    policy: KisiNotificationPolicy,
    request: &SyncRequest,
) -> sync::SyncReport {
    let client = KisiClient::new(config_for(sim, policy)).unwrap();
    sync::run(&client, request).await.unwrap()
}

fn existing_person(officernd_id: &str, email: &str) -> NewUser {
    NewUser {
        officernd_id: officernd_id.into(),
        first_name: "Existing".into(),
        last_name: String::new(),
        email: email.into(),
        phone: None,
    }
}

fn notify_flags(sim: &SimulatorHandle, user_id: &str) -> Vec<bool> {
    sim.role_assignments()
        .iter()
        .filter(|row| row.user_id == user_id)
        .map(|row| row.notify)
        .collect()
}

#[tokio::test]
async fn the_client_puts_the_decided_flag_on_the_wire_whatever_it_sent_before() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    let door = group(&sim, "Front door");
    let lobby = group(&sim, "Lobby");
    let user = sim.add_user("Ada", "ada@example.com").unwrap();

    client.add_to_group(&user, &door, NOTIFY).await.unwrap();
    client.add_to_group(&user, &lobby, NOTIFY).await.unwrap();

    assert_eq!(notify_flags(&sim, &user), vec![true, true]);
    assert_eq!(
        client.grant_notices(),
        flexgate::vendors::GrantNotices::FirstAccess
    );
}

#[tokio::test]
async fn holds_access_reads_any_role_of_the_user_fresh() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    let door = group(&sim, "Front door");
    let ada = sim.add_user("Ada", "ada@example.com").unwrap();
    let bob = sim.add_user("Bob", "bob@example.com").unwrap();
    let manager = sim.add_user("Mia", "mia@example.com").unwrap();
    sim.dashboard_add_to_group(&bob, &door.id).unwrap();
    sim.dashboard_assign(&manager, &door.id, "group_manager")
        .unwrap();

    assert!(!client.holds_access(&ada).await.unwrap());
    assert!(client.holds_access(&bob).await.unwrap());
    assert!(client.holds_access(&manager).await.unwrap());
    client.add_to_group(&ada, &door, SILENT).await.unwrap();
    assert!(client.holds_access(&ada).await.unwrap());
    client.remove_from_group(&bob, &door).await.unwrap();
    assert!(!client.holds_access(&bob).await.unwrap());
}

#[tokio::test]
async fn never_creates_managed_users_and_never_notifies() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    let door = group(&sim, "Front door");
    let lobby = group(&sim, "Lobby");
    sim.add_user("Existing", "existing@example.com").unwrap();
    let people = [
        new_user(1),
        existing_person("66a0000000000000000000ee", "existing@example.com"),
    ];

    let report = sync_fresh(
        &sim,
        KisiNotificationPolicy::Never,
        &sync_request(&[&door, &lobby], &people),
    )
    .await;

    assert_eq!((report.created_users, report.applied_grants), (1, 4));
    let created = sim.user_by_email("person1@example.com").unwrap();
    assert!(!created.send_emails, "managed user");
    assert!(created.confirmed);
    let sent = &sim.created_user_payloads()[0];
    assert_eq!(
        (&sent["send_emails"], &sent["confirm"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(sim.role_assignments().len(), 4);
    assert!(sim.role_assignments().iter().all(|row| !row.notify));
    assert!(sim.notifications().is_empty(), "{:?}", sim.notifications());
}

#[tokio::test]
async fn always_notifies_on_every_new_grant_and_only_new_ones() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    let door = group(&sim, "Front door");
    let lobby = group(&sim, "Lobby");
    let existing = sim.add_user("Existing", "existing@example.com").unwrap();
    sim.dashboard_add_to_group(&existing, &lobby.id).unwrap();
    let people = [
        new_user(1),
        existing_person("66a0000000000000000000ee", "existing@example.com"),
    ];
    let request = sync_request(&[&door, &lobby], &people);

    sync_fresh(&sim, KisiNotificationPolicy::Always, &request).await;
    sync_fresh(&sim, KisiNotificationPolicy::Always, &request).await;

    assert!(
        sim.user_by_email("person1@example.com")
            .unwrap()
            .send_emails
    );
    let mut told: Vec<(String, String)> = sim
        .notifications()
        .into_iter()
        .map(|n| (n.email, n.group_id))
        .collect();
    told.sort();
    let mut expected = vec![
        ("existing@example.com".to_owned(), door.id.clone()),
        ("person1@example.com".to_owned(), door.id.clone()),
        ("person1@example.com".to_owned(), lobby.id.clone()),
    ];
    expected.sort();
    assert_eq!(told, expected, "the second sync grants nothing new");
}

#[tokio::test]
async fn kisi_default_tells_a_new_member_in_three_groups_exactly_once() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    let groups = [
        group(&sim, "Front door"),
        group(&sim, "Lobby"),
        group(&sim, "Office 101"),
    ];
    let existing = sim.add_user("Existing", "existing@example.com").unwrap();
    let people = [
        new_user(1),
        existing_person("66a0000000000000000000ee", "existing@example.com"),
    ];

    let report = sync_fresh(
        &sim,
        KisiNotificationPolicy::KisiDefault,
        &sync_request(&groups.iter().collect::<Vec<_>>(), &people),
    )
    .await;

    assert_eq!((report.created_users, report.applied_grants), (1, 6));
    let created = sim.user_by_email("person1@example.com").unwrap();
    assert!(created.send_emails);
    let mut flags = notify_flags(&sim, &created.id);
    flags.sort();
    assert_eq!(flags, vec![false, false, true], "one notifying grant");
    assert_eq!(
        notify_flags(&sim, &existing),
        vec![false, false, false],
        "a user flexgate did not create is not told"
    );
    assert_eq!(sim.notified_emails(), vec!["person1@example.com"]);
}

#[tokio::test]
async fn kisi_default_never_tells_anyone_twice_across_restarts() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    let door = group(&sim, "Front door");
    let lobby = group(&sim, "Lobby");
    let office = group(&sim, "Office 101");
    let people = [new_user(1), new_user(2)];

    // First process: both people are created and granted the door.
    sync_fresh(
        &sim,
        KisiNotificationPolicy::KisiDefault,
        &sync_request(&[&door], &people),
    )
    .await;
    assert_eq!(sim.notifications().len(), 2);

    // Restarted processes: another group, then access lost and given back; a fresh client and a
    // fresh sync each time, against the same Kisi.
    sync_fresh(
        &sim,
        KisiNotificationPolicy::KisiDefault,
        &sync_request(&[&door, &lobby], &people),
    )
    .await;
    let mut nobody = sync_request(&[&door, &lobby], &[]);
    nobody.snapshot = SnapshotHealth::Complete {
        members: people.len(),
    };
    let revoked = sync_fresh(&sim, KisiNotificationPolicy::KisiDefault, &nobody).await;
    assert_eq!(revoked.applied_revokes, 4, "{:?}", revoked.verdict);
    let report = sync_fresh(
        &sim,
        KisiNotificationPolicy::KisiDefault,
        &sync_request(&[&door, &lobby, &office], &people),
    )
    .await;

    assert_eq!(report.applied_grants, 6);
    assert_eq!(report.created_users, 0);
    let mut told = sim.notified_emails();
    told.sort();
    assert_eq!(told, vec!["person1@example.com", "person2@example.com"]);
}

#[tokio::test]
async fn kisi_default_moves_the_email_to_the_next_grant_when_the_first_one_failed() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    let door = group(&sim, "Front door");
    let lobby = group(&sim, "Lobby");
    sim.faults().inject_status(
        route(Method::POST, "/role_assignments"),
        1,
        StatusCode::INTERNAL_SERVER_ERROR,
    );
    let request = sync_request(&[&door, &lobby], &[new_user(1)]);

    let first = sync_fresh(&sim, KisiNotificationPolicy::KisiDefault, &request).await;
    assert_eq!(first.applied_grants, 1);
    assert_eq!(first.failures.len(), 1, "{:?}", first.failures);
    assert!(first.failures[0].retryable);
    assert_eq!(
        sim.faults().requests(&Method::POST, "/role_assignments"),
        2,
        "a POST is not repeated after an ambiguous failure"
    );
    assert_eq!(sim.notified_emails(), vec!["person1@example.com"]);

    // The next process grants what failed, silently.
    let second = sync_fresh(&sim, KisiNotificationPolicy::KisiDefault, &request).await;
    assert_eq!((second.applied_grants, second.failures.len()), (1, 0));
    let created = sim.user_by_email("person1@example.com").unwrap();
    assert_eq!(sim.access_row_count(&created.id, &door.id), 1);
    assert_eq!(sim.access_row_count(&created.id, &lobby.id), 1);
    assert_eq!(sim.notified_emails(), vec!["person1@example.com"]);
}

// --- resilience -----------------------------------------------------------------------------------

#[tokio::test]
async fn honours_429_with_retry_after_then_succeeds() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    for index in 0..3 {
        sim.add_user("U", &format!("u{index}@example.com")).unwrap();
    }
    sim.faults().inject_429(route(Method::GET, "/users"), 2, 0);

    let users = client.list_users().await.unwrap();

    assert_eq!(users.len(), 3);
    assert_eq!(
        sim.faults()
            .responses_matching(&Route::path("/users"), StatusCode::TOO_MANY_REQUESTS),
        2
    );
    assert_eq!(sim.faults().requests(&Method::GET, "/users"), 3);
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_is_reported_as_rate_limited() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    sim.faults()
        .inject_429(route(Method::GET, "/groups"), 1, 3600);

    let error = client.list_groups().await.unwrap_err();

    assert!(
        matches!(
            &error,
            VendorError::Http(HttpError::RateLimited { retry_after: Some(wait), .. })
                if *wait == Duration::from_secs(3600)
        ),
        "{error:?}"
    );
    assert!(error.is_retryable_later());
}

#[tokio::test]
async fn survives_kisis_server_side_rate_limit() {
    let sim = Simulator::start(SimulatorOptions {
        requests_per_second: Some(5),
        ..SimulatorOptions::default()
    })
    .await
    .unwrap();
    let mut config = config_for(&sim, KisiNotificationPolicy::Never);
    config.groups_page_size = 2;
    let client = KisiClient::new(config).unwrap();
    for index in 0..13 {
        sim.add_group(&format!("Group {index}"));
    }

    let groups = client.list_groups().await.unwrap();

    assert_eq!(groups.len(), 13);
    assert_eq!(
        sim.faults()
            .responses_matching(&Route::path("/groups"), StatusCode::OK),
        7
    );
}

#[tokio::test]
async fn server_errors_on_reads_are_retried() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    sim.add_group("Front door");
    sim.faults().inject_status(
        route(Method::GET, "/groups"),
        2,
        StatusCode::SERVICE_UNAVAILABLE,
    );

    let groups = client.list_groups().await.unwrap();

    assert_eq!(groups.len(), 1);
    assert_eq!(sim.faults().requests(&Method::GET, "/groups"), 3);
}

#[tokio::test]
async fn a_malformed_reply_is_a_protocol_error() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    sim.add_user("Ada", "ada@example.com").unwrap();
    sim.faults().add(
        FaultRule::new(
            route(Method::GET, "/users"),
            Fault::Status {
                status: StatusCode::OK,
                body: Some(json!({"users": [{"id": 1}]})),
            },
        )
        .times(1),
    );

    let error = client.list_users().await.unwrap_err();

    assert!(
        matches!(error, VendorError::Http(HttpError::Protocol { .. })),
        "{error:?}"
    );
    assert!(!error.is_retryable_later());
    assert_eq!(sim.faults().requests(&Method::GET, "/users"), 1);
}

#[tokio::test]
async fn no_secret_in_any_error_or_debug_output() {
    let (sim, client) = start(KisiNotificationPolicy::KisiDefault).await;
    let key = sim.api_key.expose().to_owned();
    sim.faults()
        .inject_status(Route::any(), 10, StatusCode::INTERNAL_SERVER_ERROR);
    let transient = client.list_groups().await.unwrap_err();
    sim.faults().clear();
    let bad = KisiClient::new(
        sim.client_config()
            .unwrap()
            .with_notification_policy(KisiNotificationPolicy::Never),
    )
    .unwrap();
    let mut other_config = sim.client_config().unwrap();
    other_config.api_key = format!("{key}x").into();
    let rejected = KisiClient::new(other_config)
        .unwrap()
        .check()
        .await
        .unwrap_err();

    let shown = format!(
        "{transient} {transient:?} {rejected} {rejected:?} {client:?} {bad:?} {:?} {sim:?}",
        client.config()
    );
    assert!(!shown.contains(&key), "{shown}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[tokio::test]
async fn configuration_is_validated() {
    assert!(KisiConfig::new("")
        .and_then(|config| KisiClient::new(config).map(drop))
        .is_err());
    let config = KisiConfig::new("key").unwrap();
    assert_eq!(config.base_url.as_str(), "https://api.kisi.io/");
    assert_eq!(config.requests_per_second, 5.0);
    assert_eq!(
        config.notification_policy,
        KisiNotificationPolicy::KisiDefault
    );
    let mut too_big = config.clone();
    too_big.users_page_size = 101;
    assert!(KisiClient::new(too_big).is_err());
    let mut newline = config;
    newline.api_key = "bad\nkey".into();
    let error = KisiClient::new(newline).unwrap_err();
    assert!(!error.to_string().contains("bad\nkey"));
}
