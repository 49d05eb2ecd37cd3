//! Contract test for the OfficeRnD client against `../shared/reference/recorded/officernd/`: every
//! file is accounted for; every recorded response body the client reads parses with its models
//! (absent and null read as absent, nothing invented or lost); every recorded request the client
//! makes is replayed through a local server on 127.0.0.1 that answers only what was recorded
//! (same method, path, query and body shape; anything else fails the test), and every recorded
//! exchange the client never makes is named with the reason.
//!
//! Two conventions: `$limit` and `$cursorNext` are the client's own paging parameters (it always
//! sends `$limit`, at most 50); the recorded URLs leave them out, so they are not compared (but
//! checked to be within the documented bounds). The reference pages' list examples carry the
//! placeholder cursor `"string"`: following it would ask for a page nobody recorded, so those lists
//! are replayed through the client's one-page read (`first_page`); the real recording `rec-02` has no
//! cursor and is replayed through the pager itself.
//!
//! The folder is `$FLEXGATE_RECORDED_DIR/officernd` when that is set, else
//! `../shared/reference/recorded/officernd` beside the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use flexgate::http::{HttpError, RetryPolicy};
use flexgate::officernd::client::{
    ListPage, ListQuery, OfficeRndClient, OfficeRndConfig, OfficeRndError, RegisteredWebhook,
};
use flexgate::officernd::model::{
    Assignment, Booking, Company, Floor, Location, Member, Membership, Pass, Plan, Resource,
};
use flexgate::officernd::wire;
use flexgate::officernd::Collection;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// The organization slug the recordings were redacted to (legend R6).
const ORG: &str = "example-org";

/// What the test does with one recorded file.
#[derive(Debug, Clone, Copy)]
enum Disposition {
    /// The client makes this exchange: replayed through the local server.
    Replayed,
    /// The client never makes it, for this reason (its body is still parsed where a model exists).
    NeverMade(&'static str),
    /// Observed behaviour rather than one exchange: the verbatim bodies are replayed.
    Observations,
}

/// Every file of the folder, and what becomes of it. A new file fails the test until it is added.
const FILES: [(&str, Disposition); 18] = [
    ("doc-01-get-members-200.json", Disposition::Replayed),
    (
        "doc-02-get-members-count-200.json",
        Disposition::NeverMade(
            "flexgate never asks OfficeRnD for counts: the connection check counts members by listing them (run --manifests) or takes the count from the operator's picture",
        ),
    ),
    (
        "doc-03-put-member-portal-access-204.json",
        Disposition::NeverMade(
            "flexgate never writes members; portal access stays OfficeRnD's to manage",
        ),
    ),
    ("doc-04-get-companies-200.json", Disposition::Replayed),
    ("doc-05-get-locations-200.json", Disposition::Replayed),
    ("doc-06-get-floors-200.json", Disposition::Replayed),
    ("doc-07-get-resource-200.json", Disposition::Replayed),
    (
        "doc-08-get-resource-status-200.json",
        Disposition::NeverMade(
            "occupancy status is not access: who may enter follows from assignments and bookings",
        ),
    ),
    ("doc-09-get-assignments-200.json", Disposition::Replayed),
    ("doc-10-get-membership-200.json", Disposition::Replayed),
    ("doc-11-get-plans-200.json", Disposition::Replayed),
    (
        "doc-12-put-passes-200.json",
        Disposition::NeverMade(
            "flexgate never changes day-pass counts, it only reads passes; the reply is parsed as a Pass",
        ),
    ),
    (
        "doc-13-delete-booking-200.json",
        Disposition::NeverMade(
            "flexgate never deletes bookings (tap-to-book bookings are only created); the reply is parsed as a Booking",
        ),
    ),
    (
        "doc-14-get-webhooks-200.json",
        Disposition::NeverMade(
            "flexgate never lists webhooks (it registers one with POST); the items are parsed as the registration reply the client reads",
        ),
    ),
    (
        "obs-01-v2-memberships-staging-observations.json",
        Disposition::Observations,
    ),
    ("rec-01-identity-post-oauth-token-200.json", Disposition::Replayed),
    ("rec-02-get-v2-locations-200-partial.json", Disposition::Replayed),
    (
        "rec-03-get-v2-resource-types-200-partial.json",
        Disposition::NeverMade(
            "flexgate reads a resource's type from the resource itself (`type`), never the resource-type catalogue",
        ),
    ),
];

fn folder() -> PathBuf {
    match std::env::var_os("FLEXGATE_RECORDED_DIR") {
        Some(dir) => PathBuf::from(dir).join("officernd"),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/recorded/officernd")
        }
    }
}

fn recorded(file: &str) -> Value {
    let path = folder().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {} ({error}); the recordings live in ../shared/reference/recorded (or set FLEXGATE_RECORDED_DIR)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{file} is not JSON: {error}"))
}

#[test]
fn every_recorded_file_is_accounted_for() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(folder())
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", folder().display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let listed: BTreeSet<String> = FILES.iter().map(|(name, _)| (*name).to_owned()).collect();

    assert_eq!(
        on_disk, listed,
        "files on disk versus files this test accounts for"
    );
    for (name, disposition) in FILES {
        match disposition {
            Disposition::NeverMade(why) => {
                assert!(!why.is_empty());
                println!("{name}: never made by the client: {why}");
            }
            Disposition::Replayed => println!("{name}: replayed"),
            Disposition::Observations => println!("{name}: observations replayed"),
        }
    }
}

// ----- bodies ---------------------------------------------------------------------------------------

/// Whether the model's value `ours` says what the recording says: a default (`null`, `false`, empty)
/// only where the recording has the key absent, `null` or that same default; instants compared as
/// instants, numbers as numbers, objects and lists member by member.
fn same(recorded: Option<&Value>, ours: &Value) -> bool {
    let is_default = |value: &Value| match value {
        Value::Null => true,
        Value::Bool(flag) => !flag,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    };
    match (recorded, ours) {
        (None | Some(Value::Null), ours) => is_default(ours),
        (Some(Value::String(left)), Value::String(right)) => {
            left == right
                || matches!(
                    (instant(left), instant(right)),
                    (Some(a), Some(b)) if a == b
                )
        }
        (Some(Value::Number(left)), Value::Number(right)) => left.as_f64() == right.as_f64(),
        // A count documented as a string in requests, sent as a number in replies.
        (Some(Value::String(left)), Value::Number(right)) => {
            left.parse::<f64>().ok() == right.as_f64()
        }
        (Some(Value::Array(left)), Value::Array(right)) => {
            left.len() == right.len() && left.iter().zip(right).all(|(l, r)| same(Some(l), r))
        }
        (Some(Value::Object(left)), Value::Object(right)) => {
            right.iter().all(|(key, value)| same(left.get(key), value))
        }
        (Some(left), right) => left == right,
    }
}

#[test]
fn the_fidelity_check_tells_a_lost_or_invented_field() {
    assert!(same(
        Some(&json!("2024-01-01T00:00:00Z")),
        &json!("2024-01-01T00:00:00.000Z")
    ));
    assert!(!same(Some(&json!("a")), &json!("b")));
    assert!(
        !same(None, &json!("invented")),
        "an absent key read as a value"
    );
    assert!(!same(Some(&json!("kept")), &Value::Null), "a value lost");
    assert!(same(Some(&Value::Null), &Value::Null));
    assert!(same(None, &json!(false)), "an omitted flag reads as false");
    assert!(!same(Some(&json!(true)), &json!(false)));
}

fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// Parses `body` as `T` and checks that every field the model keeps says what the body says.
fn faithful<T: DeserializeOwned + Serialize>(file: &str, body: &Value) -> T {
    let parsed: T = serde_json::from_value(body.clone())
        .unwrap_or_else(|error| panic!("{file}: does not parse with the client's model: {error}"));
    let ours = serde_json::to_value(&parsed).unwrap();
    let Value::Object(fields) = &ours else {
        panic!("{file}: the model is not an object");
    };
    for (key, value) in fields {
        assert!(
            same(body.get(key), value),
            "{file}: {key} recorded as {:?}, read as {value}",
            body.get(key)
        );
    }
    parsed
}

/// Parses a list envelope and each item; returns the items.
fn faithful_page<T: DeserializeOwned + Serialize>(file: &str, body: &Value) -> Vec<T> {
    let page: ListPage<Value> = serde_json::from_value(body.clone())
        .unwrap_or_else(|error| panic!("{file}: envelope does not parse: {error}"));
    assert_eq!(
        page.cursor_next.as_deref(),
        body.get("cursorNext").and_then(Value::as_str),
        "{file}: cursorNext"
    );
    page.results
        .iter()
        .map(|item| faithful::<T>(file, item))
        .collect()
}

fn response_body(file: &str) -> Value {
    recorded(file)["response"]["body"].clone()
}

#[test]
fn every_recorded_response_body_parses_with_the_client_models() {
    let members: Vec<Member> =
        faithful_page("doc-01", &response_body("doc-01-get-members-200.json"));
    assert_eq!(members[0].email.as_deref(), Some("john.doe@example.com"));
    let companies: Vec<Company> =
        faithful_page("doc-04", &response_body("doc-04-get-companies-200.json"));
    assert_eq!(companies.len(), 1);
    // The reference example's address is "" although the schema says object: still a location.
    let locations: Vec<Location> =
        faithful_page("doc-05", &response_body("doc-05-get-locations-200.json"));
    assert_eq!(locations[0].timezone.as_deref(), Some("UTC"));
    let floors: Vec<Floor> = faithful_page("doc-06", &response_body("doc-06-get-floors-200.json"));
    assert_eq!(
        floors[0].floor.as_deref(),
        Some("1"),
        "the floor number is a string"
    );
    let resource: Resource = faithful("doc-07", &response_body("doc-07-get-resource-200.json"));
    assert_eq!(resource.resource_type.as_deref(), Some("team_room"));
    let assignments: Vec<Assignment> =
        faithful_page("doc-09", &response_body("doc-09-get-assignments-200.json"));
    assert!(assignments[0].end_date.is_some());
    let membership: Membership =
        faithful("doc-10", &response_body("doc-10-get-membership-200.json"));
    assert_eq!(membership.is_personal, Some(false));
    let plans: Vec<Plan> = faithful_page("doc-11", &response_body("doc-11-get-plans-200.json"));
    assert_eq!(plans[0].locations.len(), 2);
    let pass: Pass = faithful("doc-12", &response_body("doc-12-put-passes-200.json"));
    assert_eq!((pass.count, pass.used_count), (Some(15), Some(5)));
    let booking: Booking = faithful("doc-13", &response_body("doc-13-delete-booking-200.json"));
    assert_eq!(booking.members.len(), 2);
    assert!(booking.is_tentative && !booking.is_cancelled);
    for item in response_body("doc-14-get-webhooks-200.json")["results"]
        .as_array()
        .unwrap()
    {
        let webhook =
            RegisteredWebhook::from_reply(item.to_string().as_bytes(), "unused", &[]).unwrap();
        assert_eq!(
            webhook.event_types,
            vec!["membership.created", "membership.updated"]
        );
        assert_eq!(webhook.secret.expose(), item["secret"].as_str().unwrap());
    }

    // The real page: cursors absent (the last page), zip null, properties/image/code absent.
    let body = response_body("rec-02-get-v2-locations-200-partial.json");
    assert!(body.get("cursorNext").is_none());
    let real: Vec<Location> = faithful_page("rec-02", &body);
    assert_eq!(real.len(), 2);
    assert!(real.iter().all(|l| l.is_open && l.is_public));

    // Bodies no model reads, because the client never asks for them.
    for file in [
        "doc-02-get-members-count-200.json",
        "doc-08-get-resource-status-200.json",
        "rec-03-get-v2-resource-types-200-partial.json",
    ] {
        let (_, disposition) = FILES.iter().find(|(name, _)| *name == file).unwrap();
        assert!(
            matches!(disposition, Disposition::NeverMade(_)),
            "{file} has no model but is marked as made"
        );
    }
    assert_eq!(
        recorded("doc-03-put-member-portal-access-204.json")["response"]["body"],
        Value::Null,
        "204: no body"
    );
}

// ----- the replay server ------------------------------------------------------------------------------

/// One recorded exchange the server answers.
#[derive(Debug, Clone)]
struct Exchange {
    file: String,
    method: Method,
    path: String,
    /// Query parameters other than the paging ones.
    query: BTreeMap<String, String>,
    /// Request headers as recorded (lower-case names), checked on the request.
    headers: BTreeMap<String, String>,
    /// The recorded form body (token request), checked by shape.
    form: Option<serde_json::Map<String, Value>>,
    status: u16,
    body: Value,
}

#[derive(Default)]
struct Replay {
    exchanges: Vec<Exchange>,
    hits: Mutex<BTreeMap<String, u32>>,
    violations: Mutex<Vec<String>>,
}

impl Replay {
    fn violation(&self, text: String) {
        self.violations.lock().unwrap().push(text);
    }
}

const PAGING: [&str; 2] = ["$limit", "$cursorNext"];

async fn answer(
    State(replay): State<Arc<Replay>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let mut query = BTreeMap::new();
    for (name, value) in pairs {
        if name == "$limit" {
            let limit: u32 = value.parse().unwrap_or(0);
            if !(1..=50).contains(&limit) {
                replay.violation(format!("{method} {}: $limit={value}", uri.path()));
            }
        }
        if !PAGING.contains(&name.as_str()) {
            query.insert(name, value);
        }
    }
    let Some(exchange) = replay
        .exchanges
        .iter()
        .find(|e| e.method == method && e.path == uri.path() && e.query == query)
    else {
        replay.violation(format!(
            "unrecorded request: {method} {} {query:?}",
            uri.path()
        ));
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"unrecorded": uri.path()})),
        )
            .into_response();
    };
    *replay
        .hits
        .lock()
        .unwrap()
        .entry(exchange.file.clone())
        .or_default() += 1;
    for (name, wanted) in &exchange.headers {
        let sent = headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let matches = if name == "content-type" {
            sent.starts_with(wanted.as_str())
        } else {
            sent == wanted
        };
        if !matches {
            replay.violation(format!(
                "{}: header {name} sent as {sent:?}, recorded {wanted:?}",
                exchange.file
            ));
        }
    }
    if let Some(form) = &exchange.form {
        check_token_form(&replay, &exchange.file, form, &body);
    } else if !body.is_empty() {
        replay.violation(format!("{}: a body was sent, none recorded", exchange.file));
    }
    let status = StatusCode::from_u16(exchange.status).unwrap();
    if exchange.body.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(exchange.body.clone())).into_response()
    }
}

/// The token request's form: the recorded keys and no others, the client-credentials grant, and
/// space-separated `flex.*` scopes (the recording shows a placeholder for them).
fn check_token_form(
    replay: &Replay,
    file: &str,
    recorded: &serde_json::Map<String, Value>,
    body: &[u8],
) {
    let sent: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let sent_keys: BTreeSet<&str> = sent.keys().map(String::as_str).collect();
    let recorded_keys: BTreeSet<&str> = recorded.keys().map(String::as_str).collect();
    if sent_keys != recorded_keys {
        replay.violation(format!(
            "{file}: form keys {sent_keys:?}, recorded {recorded_keys:?}"
        ));
    }
    if sent.get("grant_type").map(String::as_str) != recorded["grant_type"].as_str() {
        replay.violation(format!("{file}: grant_type {:?}", sent.get("grant_type")));
    }
    for key in ["client_id", "client_secret"] {
        if sent.get(key).is_none_or(String::is_empty) {
            replay.violation(format!("{file}: {key} empty"));
        }
    }
    let scopes: Vec<&str> = sent
        .get("scope")
        .map(|s| s.split(' ').collect())
        .unwrap_or_default();
    let well_formed = |scope: &&str| {
        let parts: Vec<&str> = scope.split('.').collect();
        parts.len() == 4
            && parts[0] == "flex"
            && parts[1..3]
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphabetic()))
            && ["read", "create", "update", "delete"].contains(&parts[3])
    };
    if scopes.is_empty() || !scopes.iter().all(well_formed) {
        replay.violation(format!("{file}: scope {:?}", sent.get("scope")));
    }
}

/// The exchange of a recorded file, its URL's `{placeholders}` filled from `ids`.
fn exchange(file: &str, ids: &[(&str, &str)]) -> Exchange {
    let record = recorded(file);
    let request = &record["request"];
    let mut url = request["url"]
        .as_str()
        .or_else(|| request["url_template"].as_str())
        .unwrap_or_else(|| panic!("{file}: no URL"))
        .replace("{orgSlug}", ORG);
    for (placeholder, id) in ids {
        url = url.replace(&format!("{{{placeholder}}}"), id);
    }
    assert!(!url.contains('{'), "{file}: unfilled placeholder in {url}");
    let url = url::Url::parse(&url).unwrap();
    let headers = request["headers"]
        .as_object()
        .map(|headers| {
            headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_ascii_lowercase(),
                        value.as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Exchange {
        file: file.to_owned(),
        method: request["method"].as_str().unwrap().parse().unwrap(),
        path: url.path().to_owned(),
        query: url.query_pairs().into_owned().collect(),
        headers,
        form: request["body_form"].as_object().cloned(),
        status: record["response"]["status"].as_u64().unwrap() as u16,
        body: record["response"]["body"].clone(),
    }
}

struct Server {
    replay: Arc<Replay>,
    base_url: String,
}

impl Server {
    /// Serves the token exchange of `rec-01` (every call needs a token) and `exchanges`.
    async fn start(exchanges: Vec<Exchange>) -> Server {
        let mut all = vec![exchange("rec-01-identity-post-oauth-token-200.json", &[])];
        all.extend(exchanges);
        let replay = Arc::new(Replay {
            exchanges: all,
            ..Replay::default()
        });
        let router = Router::new().fallback(answer).with_state(replay.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Server { replay, base_url }
    }

    fn client(&self) -> OfficeRndClient {
        let mut config = OfficeRndConfig::new(ORG, "REDACTED-CLIENT-ID", "REDACTED-CLIENT-SECRET")
            .unwrap()
            .with_base_url(&self.base_url)
            .unwrap();
        config.requests_per_second = 1000.0;
        config.retry = RetryPolicy {
            base_delay: std::time::Duration::from_millis(1),
            max_delay: std::time::Duration::from_millis(5),
            ..RetryPolicy::default()
        };
        OfficeRndClient::new(config).unwrap()
    }

    fn hits(&self, file: &str) -> u32 {
        self.replay
            .hits
            .lock()
            .unwrap()
            .get(file)
            .copied()
            .unwrap_or_default()
    }

    /// No request went unanswered or unlike its recording, and every exchange was made.
    fn assert_clean(&self) {
        let violations = self.replay.violations.lock().unwrap().clone();
        assert!(violations.is_empty(), "{violations:#?}");
        for exchange in &self.replay.exchanges {
            assert!(
                self.hits(&exchange.file) > 0,
                "{}: the client never made it",
                exchange.file
            );
        }
    }
}

#[tokio::test]
async fn the_real_token_and_locations_exchanges_replay_through_the_pager() {
    let server = Server::start(vec![exchange(
        "rec-02-get-v2-locations-200-partial.json",
        &[],
    )])
    .await;

    // A whole list: one page, as the recording has no cursor.
    let locations: Vec<Location> = server.client().list_locations().await.unwrap();

    assert_eq!(locations.len(), 2);
    assert_eq!(locations[1].name.as_deref(), Some("New York"));
    server.assert_clean();
    assert_eq!(server.hits("rec-02-get-v2-locations-200-partial.json"), 1);
    assert_eq!(server.hits("rec-01-identity-post-oauth-token-200.json"), 1);
}

/// The first page of each documented list, read as the client reads every page.
#[tokio::test]
async fn the_documented_lists_replay_as_first_pages() {
    /// A recorded list: file, collection, the client's query, the URL placeholders' ids.
    type RecordedList = (
        &'static str,
        Collection,
        ListQuery,
        &'static [(&'static str, &'static str)],
    );
    let lists: [RecordedList; 6] = [
        (
            "doc-01-get-members-200.json",
            Collection::Members,
            ListQuery::new(),
            &[],
        ),
        (
            "doc-04-get-companies-200.json",
            Collection::Companies,
            ListQuery::new(),
            &[],
        ),
        (
            "doc-05-get-locations-200.json",
            Collection::Locations,
            ListQuery::new(),
            &[],
        ),
        (
            "doc-06-get-floors-200.json",
            Collection::Floors,
            ListQuery::new(),
            &[],
        ),
        (
            "doc-11-get-plans-200.json",
            Collection::Plans,
            ListQuery::new(),
            &[],
        ),
        (
            "doc-09-get-assignments-200.json",
            Collection::Assignments,
            ListQuery::new().eq("resource", "61f2736224071037dea8956c"),
            &[("resourceId", "61f2736224071037dea8956c")],
        ),
    ];
    for (file, collection, query, ids) in lists {
        let server = Server::start(vec![exchange(file, ids)]).await;

        let page = server
            .client()
            .first_page::<Value>(collection, &query, 50)
            .await
            .unwrap_or_else(|error| panic!("{file}: {error}"));

        assert_eq!(page.results.len(), 1, "{file}");
        assert_eq!(page.cursor_next.as_deref(), Some("string"), "{file}");
        server.assert_clean();
    }
}

/// Objects read by id (what a webhook delivery makes the operator re-read).
#[tokio::test]
async fn the_documented_single_objects_replay_through_get() {
    let resource_id = response_body("doc-07-get-resource-200.json")["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let membership_id = response_body("doc-10-get-membership-200.json")["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = Server::start(vec![
        exchange(
            "doc-07-get-resource-200.json",
            &[("resourceId", &resource_id)],
        ),
        exchange(
            "doc-10-get-membership-200.json",
            &[("membershipId", &membership_id)],
        ),
    ])
    .await;
    let client = server.client();

    let resource: Resource = client
        .get(Collection::Resources, &resource_id)
        .await
        .unwrap();
    let membership: Membership = client
        .get(Collection::Memberships, &membership_id)
        .await
        .unwrap();

    assert_eq!(resource.id, resource_id);
    assert_eq!(membership.plan.as_deref(), Some("603dfbc260f4054084125d33"));
    server.assert_clean();
}

fn observation(observations: &Value, starts_with: &str) -> Value {
    observations["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| {
            o["request"]
                .as_str()
                .unwrap_or_default()
                .starts_with(starts_with)
        })
        .unwrap_or_else(|| panic!("obs-01 has no observation of {starts_with}"))
        .clone()
}

fn observed(file: &str, method: Method, path: &str, status: u16, body: Value) -> Exchange {
    Exchange {
        file: file.to_owned(),
        method,
        path: format!("/api/v2/organizations/{ORG}{path}"),
        query: BTreeMap::new(),
        headers: BTreeMap::new(),
        form: None,
        status,
        body,
    }
}

/// The staging observations with verbatim bodies, as the client reads them.
#[tokio::test]
async fn the_observed_error_answers_replay_as_the_client_reads_them() {
    let observations = recorded("obs-01-v2-memberships-staging-observations.json");
    let missing = observation(&observations, "GET /memberships/aaaaaaaaaaaaaaaaaaaaaaaa");
    let refused = observation(&observations, "any v2 /memberships endpoint without");
    let wrong_org = observation(&observations, "wrong or non-existent {orgSlug}");
    assert_eq!(refused["body_quoted_verbatim"], true);
    assert!(wrong_org["observed"]
        .as_str()
        .unwrap()
        .contains(wire::ORGANIZATION_NOT_FOUND));

    // 404 "Item with Id (…)": not found, final.
    let server = Server::start(vec![observed(
        "obs-01 404",
        Method::GET,
        "/memberships/aaaaaaaaaaaaaaaaaaaaaaaa",
        404,
        missing["body"].clone(),
    )])
    .await;
    let error = server
        .client()
        .get::<Membership>(Collection::Memberships, "aaaaaaaaaaaaaaaaaaaaaaaa")
        .await
        .unwrap_err();
    assert!(
        matches!(error, OfficeRndError::Http(HttpError::NotFound { .. })),
        "{error:?}"
    );
    server.assert_clean();

    // 401 "Unauthorized access" (also a token lacking the scope): one fresh token, then final.
    let server = Server::start(vec![observed(
        "obs-01 401",
        Method::GET,
        "/memberships/603dfbc260f4054084125d30",
        401,
        refused["body"].clone(),
    )])
    .await;
    let error = server
        .client()
        .get::<Membership>(Collection::Memberships, "603dfbc260f4054084125d30")
        .await
        .unwrap_err();
    assert!(
        matches!(error, OfficeRndError::Unauthorized { .. }),
        "{error:?}"
    );
    assert_eq!(server.hits("obs-01 401"), 2);
    assert_eq!(server.hits("rec-01-identity-post-oauth-token-200.json"), 2);
    server.assert_clean();

    // 500 "Organization not found": the slug is wrong; final at once, not retried.
    let server = Server::start(vec![observed(
        "obs-01 500",
        Method::GET,
        "/memberships",
        500,
        json!({"statusCode": 500, "message": wire::ORGANIZATION_NOT_FOUND, "error": "Internal Server Error"}),
    )])
    .await;
    let error = server
        .client()
        .list_memberships::<Membership>()
        .await
        .unwrap_err();
    assert!(
        matches!(error, OfficeRndError::OrganizationNotFound { .. }),
        "{error:?}"
    );
    assert_eq!(server.hits("obs-01 500"), 1);
    server.assert_clean();

    // `$limit` above 50 is refused by the API; the client cannot be configured to send it.
    let over = observation(&observations, "GET /memberships?$limit=51");
    assert_eq!(over["status"], 400);
    let mut config = OfficeRndConfig::new(ORG, "id", "secret").unwrap();
    config.page_size = 51;
    assert!(matches!(
        OfficeRndClient::new(config),
        Err(OfficeRndError::Config(_))
    ));
}
