//! Kisi contract from `../shared/reference/recorded/kisi/` (issue 12, deliver 3). No real Kisi
//! exchange was ever recorded publicly: the folder holds documented error bodies (doc-01), the
//! documented `/users` paging exchange (doc-02) and the field sets Airbyte inferred from live
//! responses (schema-01). Every file is accounted for by name; every body (or field set) parses
//! with the client's models, absent versus null as recorded; every documented request the client
//! makes is replayed through a local server that answers only what was recorded.

mod replay;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use flexgate::http::{error_message, HttpError, RetryPolicy};
use flexgate::vendors::kisi::wire::{Reading, WireGroup, WireRoleAssignment, WireUser};
use flexgate::vendors::kisi::{KisiClient, KisiConfig};
use flexgate::vendors::{DoorVendor, NewUser, VendorError};
use replay::{BodyRule, Exchange, Replay};

/// Every recorded file and what the client does with the request it documents.
const FILES: &[(&str, &str)] = &[
    (
        "doc-01-error-bodies.json",
        "replayed: the 401, 422 and 429 examples on calls the client makes; the OAuth error \
         belongs to the OAuth endpoints, never called (the client authenticates with KISI-LOGIN)",
    ),
    (
        "doc-02-users-list-x-collection-range.json",
        "replayed: GET /users?limit=10&offset=0 with the documented X-Collection-Range",
    ),
    (
        "schema-01-airbyte-inferred-record-fields.json",
        "replayed: Airbyte's live paging convention (GET /users?limit=100&offset=0); the streams \
         the client reads (users, groups, role_assignments) parse, the others are never requested",
    ),
];

const API_KEY: &str = "REDACTED-API-KEY";

#[test]
fn every_file_is_accounted_for() {
    let Some(files) = replay::load("kisi") else {
        return;
    };
    let on_disk: BTreeSet<&str> = files.keys().map(String::as_str).collect();
    let listed: BTreeSet<&str> = FILES.iter().map(|(file, _)| *file).collect();
    assert_eq!(
        on_disk, listed,
        "recorded files and the contract's list differ: account for every file"
    );
    for (file, what) in FILES {
        println!("{file}: {what}");
    }
}

/// A record with every field of an Airbyte stream, typed as listed; with `nulls`, every field the
/// generator marked `|null` is null instead (Airbyte adds `|null` to every non-key field, so both
/// must parse).
fn record(fields: &Value, nulls: bool) -> Value {
    let mut out = Map::new();
    for (key, kind) in fields.as_object().unwrap() {
        let value = match kind {
            Value::Object(_) => record(kind, nulls),
            Value::String(kind) if nulls && kind.ends_with("|null") => Value::Null,
            Value::String(kind) => match kind.trim_end_matches("|null") {
                "number" => json!(7),
                "string" => json!("text"),
                "boolean" => json!(true),
                "object" => json!({}),
                other => panic!("unknown Airbyte type {other}"),
            },
            other => panic!("unexpected schema entry {other}"),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

fn stream<'a>(files: &'a BTreeMap<String, Value>, name: &str) -> &'a Value {
    &files["schema-01-airbyte-inferred-record-fields.json"]["streams"][name]
}

/// The users the documented exchange (doc-02) would carry: the body is only described ("top-level
/// JSON array of User objects"), so each item has exactly the keys the spec requires of a user,
/// the nullable ones null.
fn documented_users(files: &BTreeMap<String, Value>, first_id: u64, count: u64) -> Value {
    let required = files["doc-02-users-list-x-collection-range.json"]
        ["user_object_required_keys_per_spec"]
        .as_array()
        .unwrap();
    let users: Vec<Value> = (first_id..first_id + count)
        .map(|id| {
            let mut user = Map::new();
            for key in required {
                let key = key.as_str().unwrap();
                let value = match key {
                    "id" => json!(id),
                    "resource_type" => json!("User"),
                    "name" => json!(format!("Person {id}")),
                    "email" => json!(format!("person{id}@example.com")),
                    "created_at" | "updated_at" => json!("2026-03-02T09:00:00.000Z"),
                    "metadata" => json!({}),
                    "image" | "last_accessed_at" | "notes" => Value::Null,
                    "organization_id" => json!(4242),
                    "groups_count" => json!(0),
                    _ => json!(false),
                };
                user.insert(key.to_owned(), value);
            }
            Value::Object(user)
        })
        .collect();
    Value::Array(users)
}

#[test]
fn every_body_and_field_set_parses_with_the_client_models() {
    let Some(files) = replay::load("kisi") else {
        return;
    };
    // doc-01: error bodies as the client reads them.
    for example in files["doc-01-error-bodies.json"]["examples"]
        .as_array()
        .unwrap()
    {
        let body = &example["body"];
        let read = error_message(body.to_string().as_bytes());
        match example["schema"].as_str() {
            Some("Error") => assert_eq!(read, body["error"].as_str().unwrap()),
            Some("Errors") => {
                assert!(read.contains("can't be blank or invalid"), "{read}");
                assert!(read.contains("email"), "the field is named: {read}");
            }
            Some("OauthError") => assert_eq!(read, body["error_description"].as_str().unwrap()),
            None => assert_eq!(body, &Value::Null, "the 429 has no body"),
            Some(other) => panic!("doc-01: no case for schema {other}"),
        }
    }

    // doc-02: the documented User objects (required keys, nullable ones null).
    let users: Vec<WireUser> = serde_json::from_value(documented_users(&files, 1, 10)).unwrap();
    assert_eq!(users.len(), 10);
    assert!(users
        .iter()
        .all(|user| user.notes.is_none() && user.officernd_id().is_none()));

    // schema-01: the streams the client reads, with every field present and with nulls.
    for nulls in [false, true] {
        let user: WireUser =
            serde_json::from_value(record(stream(&files, "users (GET /users)"), nulls)).unwrap();
        assert_eq!(user.email.is_none(), nulls);
        assert_eq!(user.officernd_id(), None, "metadata without our marker");
        let group: WireGroup =
            serde_json::from_value(record(stream(&files, "groups (GET /groups)"), nulls)).unwrap();
        assert_eq!(group.name.is_none(), nulls);
        let row: WireRoleAssignment = serde_json::from_value(record(
            stream(&files, "role_assignments (GET /role_assignments)"),
            nulls,
        ))
        .unwrap();
        // The live-sampled rows name no group: never counted as anyone's door access
        // (issue 12, point 6).
        assert!(
            matches!(row.reading(), Reading::Unstated(_) | Reading::Other),
            "{:?}",
            row.reading()
        );
        assert!(!matches!(row.grants("7", Some("7")), Ok(true)));
    }
    // The sampled `type`/`scope` words (organization rows) make such a row plainly not a group's.
    let mut organization_row = record(
        stream(&files, "role_assignments (GET /role_assignments)"),
        false,
    );
    organization_row["type"] = json!("organization");
    organization_row["scope"] = json!("organization");
    organization_row["role_id"] = json!("group_basic");
    let row: WireRoleAssignment = serde_json::from_value(organization_row).unwrap();
    assert_eq!(row.reading(), Reading::Other);

    // Streams the client never requests: members (the legacy sharing model), places, locks,
    // floors, elevators, organizations, logins, reports, scheduled reports.
    let read = [
        "users (GET /users)",
        "groups (GET /groups)",
        "role_assignments (GET /role_assignments)",
    ];
    let streams = files["schema-01-airbyte-inferred-record-fields.json"]["streams"]
        .as_object()
        .unwrap();
    for name in streams.keys() {
        if !read.contains(&name.as_str()) {
            println!("schema-01 {name}: never requested by the client");
        }
    }
    assert_eq!(
        streams.len(),
        12,
        "a new stream in schema-01: decide whether the client reads it"
    );
}

// ---------------------------------------------------------------------------------------------
// Replay

fn client(replay: &Replay, users_page_size: u32) -> KisiClient {
    let mut config = KisiConfig::new(API_KEY)
        .unwrap()
        .with_base_url(&replay.base_url)
        .unwrap();
    config.users_page_size = users_page_size;
    config.retry = RetryPolicy::no_retries();
    config.requests_per_second = 1000.0;
    config.attempt_timeout = Duration::from_secs(10);
    KisiClient::new(config).unwrap()
}

/// An exchange documented by a reply only: method and path, any body, the API key required.
fn documented(file: &str, method: Method, path: &str, status: u16, body: &Value) -> Exchange {
    Exchange {
        file: file.into(),
        method,
        path: path.into(),
        query: Vec::new(),
        free_query_names: vec!["limit", "offset"],
        headers: vec![("authorization".into(), format!("KISI-LOGIN {API_KEY}"))],
        body: BodyRule::Any,
        status: StatusCode::from_u16(status).unwrap(),
        reply_headers: if body.is_null() {
            Vec::new()
        } else {
            vec![("content-type".into(), "application/json".into())]
        },
        reply_body: (!body.is_null()).then(|| body.to_string().into_bytes()),
    }
}

#[tokio::test]
async fn every_request_the_client_makes_replays_as_recorded() {
    let Some(files) = replay::load("kisi") else {
        return;
    };

    // doc-02: the first page as documented; headers as recorded (the key after KISI-LOGIN, JSON
    // accepted). The body is only described, so it is built from the required keys (see
    // `documented_users`).
    let file = "doc-02-users-list-x-collection-range.json";
    let mut page = Exchange::from_file(file, &files[file]);
    page.headers = vec![
        ("authorization".into(), format!("KISI-LOGIN {API_KEY}")),
        ("accept".into(), "application/json".into()),
    ];
    page.reply_body = Some(documented_users(&files, 1, 10).to_string().into_bytes());
    let server = Replay::start(vec![page]).await;
    let error = client(&server, 10).list_users().await.unwrap_err();
    server.assert_all_answered("GET /users?limit=10&offset=0");
    // "0-9/200" says 190 more: the client asks for the next page, which was not recorded, and
    // the list fails whole instead of returning the 10 users it has.
    assert!(
        matches!(error, VendorError::Http(HttpError::Transient { .. })),
        "{error:?}"
    );
    let unrecorded: Vec<Vec<(String, String)>> = server
        .seen()
        .into_iter()
        .filter(|seen| seen.outcome.is_err())
        .map(|seen| {
            assert_eq!((seen.method, seen.path.as_str()), (Method::GET, "/users"));
            let mut query = seen.query;
            query.sort();
            query
        })
        .collect();
    assert_eq!(
        unrecorded,
        vec![vec![
            ("limit".to_owned(), "10".to_owned()),
            ("offset".to_owned(), "10".to_owned())
        ]]
    );

    // schema-01: Airbyte's live convention, `limit=100&offset=0` on the first request, bare array.
    let conventions =
        &files["schema-01-airbyte-inferred-record-fields.json"]["request_conventions_seen"];
    assert!(conventions["paging"]
        .as_str()
        .unwrap()
        .starts_with("limit=100&offset=N"));
    let mut user = record(stream(&files, "users (GET /users)"), false);
    user["metadata"] = json!({"officernd_id": "66a000000000000000000001"});
    let mut first = documented(
        "schema-01-airbyte-inferred-record-fields.json",
        Method::GET,
        "/users",
        200,
        &json!([user]),
    );
    first.free_query_names = Vec::new();
    first.query = vec![
        ("limit".into(), "100".into()),
        ("offset".into(), "0".into()),
    ];
    first
        .reply_headers
        .push(("x-collection-range".into(), "0-99/1".into()));
    let server = Replay::start(vec![first]).await;
    let users = client(&server, 100).list_users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        users[0].external_id.as_deref(),
        Some("66a000000000000000000001")
    );
    server.assert_exact("Airbyte's paging convention");

    // doc-01: 401 (the key is refused at once: an API key cannot be refreshed), 422 (one person
    // refused), 429 without a body (rate limited, retry later).
    let examples = files["doc-01-error-bodies.json"]["examples"]
        .as_array()
        .unwrap();
    let example = |schema: Option<&str>| {
        examples
            .iter()
            .find(|example| example["schema"].as_str() == schema)
            .unwrap()["body"]
            .clone()
    };
    let server = Replay::start(vec![
        documented(
            "doc-01 (401)",
            Method::GET,
            "/groups",
            401,
            &example(Some("Error")),
        ),
        documented(
            "doc-01 (422)",
            Method::POST,
            "/users",
            422,
            &example(Some("Errors")),
        ),
        documented("doc-01 (429)", Method::GET, "/users", 429, &Value::Null),
    ])
    .await;
    let kisi = client(&server, 100);
    let refused_key = kisi.list_groups().await.unwrap_err();
    assert!(
        matches!(refused_key, VendorError::CredentialsInvalid(_)),
        "{refused_key:?}"
    );
    let refused_user = kisi
        .create_user(&NewUser {
            officernd_id: "66a000000000000000000001".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email: "ada@example.com".into(),
            phone: None,
        })
        .await
        .unwrap_err();
    match refused_user {
        VendorError::Refused(message) => {
            assert!(message.contains("can't be blank or invalid"), "{message}")
        }
        other => panic!("422: {other:?}"),
    }
    let limited = kisi.list_users().await.unwrap_err();
    assert!(
        matches!(limited, VendorError::Http(HttpError::RateLimited { .. })),
        "{limited:?}"
    );
    assert!(limited.is_retryable_later());
    server.assert_exact("documented errors");
    assert_eq!(
        server.answered("doc-01 (401)"),
        1,
        "a refused API key is not retried"
    );
}
