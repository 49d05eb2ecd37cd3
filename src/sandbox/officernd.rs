//! In-process OfficeRnD Flex v2 simulator (axum): token endpoint, collections with the v2 query
//! language and cursor paging, writes, webhook registration and signed webhook deliveries, fault
//! injection, and a Rust control surface for the sandbox and tests.
//!
//! Behaviours reproduced from recorded/observed wire facts (vendor-apis.md §1, recorded/officernd):
//! cursor envelope `{results, cursorNext?, cursorPrev?, rangeStart (1-based), rangeEnd}` with the cursor
//! keys ABSENT (not null) when there is no such page; `$limit` default 50, `$limit=0` → 20, `$limit>50`
//! → 400 `"$limit must not be greater than 50"`; unknown query parameter → 400
//! `"property <name> should not exist"`; date filters rejected on memberships; NestJS error bodies
//! `{statusCode, message, error}`; 401 `"Unauthorized access"` also for a token lacking the scope;
//! 404 `"Item with Id (<id>)"`; unknown org slug → 500 `"Organization not found"`; both cursors → 504;
//! tampered cursor → 500; `DELETE` returns the deleted object with 200; `POST` returns 201; bookings
//! filtered by `seriesStart`/`seriesEnd` only, `start`/`end` filters refused like any unknown
//! parameter ([`crate::officernd::wire::BOOKING_WINDOW_FIELDS`]); a token request naming a scope the simulated
//! application lacks (or a scope that does not exist) refused whole with 400 `{"error":
//! "invalid_scope"}` ([`crate::officernd::wire::INVALID_SCOPE`]).
//!
//! Simulator choices where the real behaviour is unknown: paging order is ascending `_id` (keyset
//! cursors); an empty page has `rangeStart = rangeEnd = 0`; negative `$limit` → 400; `$sort` is accepted
//! and ignored (except on memberships, which reject it); webhook deliveries are sent once, in order,
//! without redelivery; a webhook with an empty `eventTypes` list receives every event; a booking
//! without `seriesStart` gets its `start`, a one-off booking's `seriesEnd` is its `end`, and a
//! recurring one keeps the `seriesEnd` it was given or gets a bound at or after its last
//! occurrence (far in the future when open-ended; [`crate::officernd::wire::OPEN_SERIES_END`]). `modifiedAt`
//! is stamped by the simulator's clock on every write, and `modifiedAt[$gt]` compares strictly;
//! a deleted object is simply gone (no tombstones), as in the real lists. `GET /{collection}/count`
//! answers `{"total": n}` for every collection, ignoring filters, as observed on memberships; that
//! assignments have one is inferred ([`crate::officernd::wire::COUNTED`]), so a test can make any
//! collection refuse it ([`SimulatorHandle::refuse_count`]: 404 `Cannot GET …`, the NestJS
//! unknown-route answer, or 400, `count` validated as an id).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::http::Secret;
use crate::officernd::client::OfficeRndConfig;
use crate::officernd::collection::{Access, Collection};
use crate::officernd::webhooks::{sign, SIGNATURE_HEADER};
use crate::officernd::wire::INVALID_SCOPE;
use crate::officernd::{format_timestamp, Clock, OfficeRndError};
use crate::sandbox::faults::Faults;
use crate::sandbox::kit;
use crate::sandbox::kit::ids::random_hex;

const DEFAULT_PAGE: usize = 50;
const ZERO_LIMIT_PAGE: usize = 20;
const MAX_LIMIT: i64 = 50;
const WEBHOOK_SCOPE_PREFIX: &str = "flex.settings.webhooks";
const UNAUTHORIZED_MESSAGE: &str = "Unauthorized access";

/// Why the simulator could not start or a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("invalid simulator seed: {0}")]
    Seed(String),
    #[error("cannot read seed file {path}: {reason}")]
    SeedFile { path: String, reason: String },
    #[error("cannot bind the simulator to 127.0.0.1:0: {0}")]
    Bind(std::io::Error),
    #[error("invalid object for {collection}: {reason}")]
    InvalidObject {
        collection: Collection,
        reason: String,
    },
}

/// Start-up options. `Default` uses generated credentials and the documented 3599 s token lifetime.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    pub org_slug: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub token_lifetime: Duration,
    /// Scopes the app is granted; `None` grants every scope the simulator knows
    /// ([`known_scopes`]), so a misspelt scope is still refused.
    pub granted_scopes: Option<Vec<String>>,
    pub faults: Faults,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            org_slug: "flexgate-sim".to_owned(),
            client_id: format!("sim-client-{}", random_hex(8)),
            client_secret: Secret::new(random_hex(32)),
            token_lifetime: Duration::from_secs(3599),
            granted_scopes: None,
            faults: Faults::new(),
        }
    }
}

/// The outcome of one webhook delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    /// HTTP status of the receiver, `None` when it could not be reached.
    pub status: Option<u16>,
}

struct IssuedToken {
    scopes: HashSet<String>,
    expires_at: DateTime<Utc>,
}

struct SimState {
    collections: BTreeMap<Collection, BTreeMap<String, Value>>,
    webhooks: BTreeMap<String, Value>,
    tokens: HashMap<String, IssuedToken>,
    pinned_now: Option<DateTime<Utc>>,
    token_lifetime: Duration,
    granted_scopes: Option<HashSet<String>>,
    id_counter: u64,
    deliveries: Vec<DeliveryRecord>,
    /// Collections whose `/count` is refused, with the status ([`SimulatorHandle::refuse_count`]).
    refused_counts: HashMap<Collection, StatusCode>,
}

struct Outgoing {
    webhook_id: String,
    url: String,
    secret: Secret,
    event_id: String,
    event_type: String,
    body: Vec<u8>,
}

/// What the handlers read but never change.
struct Settings {
    org_slug: String,
    client_id: String,
    client_secret: Secret,
    outbox: mpsc::UnboundedSender<Outgoing>,
}

type Shared = kit::Shared<Settings, SimState>;

impl SimState {
    /// The pinned time, else the simulator's clock.
    fn now(&self, sim: &Shared) -> DateTime<Utc> {
        self.pinned_now.unwrap_or_else(|| sim.now())
    }

    /// A 24-hex ObjectId-like id: 8 hex of unix seconds, then a counter, so ids sort by creation.
    fn new_id(&mut self, now: DateTime<Utc>) -> String {
        self.id_counter += 1;
        let seconds = u32::try_from(now.timestamp().max(0)).unwrap_or(u32::MAX);
        format!("{seconds:08x}{:016x}", self.id_counter)
    }
}

/// Entry point: `Simulator::start(seed, clock)`.
pub struct Simulator;

impl Simulator {
    /// Starts on 127.0.0.1 with an ephemeral port and default options.
    pub async fn start(seed: Value, clock: Clock) -> Result<SimulatorHandle, SimulatorError> {
        Self::start_with(seed, clock, SimulatorOptions::default()).await
    }

    /// Reads a seed file (JSON object whose keys are collection names, each a list of objects).
    pub fn load_seed(path: &FsPath) -> Result<Value, SimulatorError> {
        let seed_error = |reason: String| SimulatorError::SeedFile {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|error| seed_error(error.to_string()))?;
        serde_json::from_str(&text).map_err(|error| seed_error(format!("not JSON: {error}")))
    }

    pub async fn start_with(
        seed: Value,
        clock: Clock,
        options: SimulatorOptions,
    ) -> Result<SimulatorHandle, SimulatorError> {
        let mut state = SimState {
            collections: Collection::ALL
                .iter()
                .map(|c| (*c, BTreeMap::new()))
                .collect(),
            webhooks: BTreeMap::new(),
            tokens: HashMap::new(),
            pinned_now: None,
            token_lifetime: options.token_lifetime,
            granted_scopes: options
                .granted_scopes
                .map(|scopes| scopes.into_iter().collect()),
            id_counter: fastrand::u64(0..1 << 40),
            deliveries: Vec::new(),
            refused_counts: HashMap::new(),
        };
        load_seed_into(&mut state, seed, clock())?;

        let (outbox, deliveries) = mpsc::unbounded_channel();
        let settings = Settings {
            org_slug: options.org_slug.clone(),
            client_id: options.client_id.clone(),
            client_secret: options.client_secret.clone(),
            outbox,
        };
        let shared = Shared::new(settings, clock, state);
        let weak = Arc::downgrade(&shared);
        let sim = kit::Running::start("OfficeRnD", shared, router, options.faults)
            .await
            .map_err(SimulatorError::Bind)?;
        tokio::spawn(deliver_webhooks(weak, deliveries));

        Ok(SimulatorHandle {
            base_url: sim.base_url().to_owned(),
            client_id: options.client_id,
            client_secret: options.client_secret,
            org_slug: options.org_slug,
            sim,
        })
    }
}

fn load_seed_into(
    state: &mut SimState,
    seed: Value,
    now: DateTime<Utc>,
) -> Result<(), SimulatorError> {
    let Value::Object(top) = seed else {
        return Err(SimulatorError::Seed(
            "top level must be an object keyed by collection".into(),
        ));
    };
    for (key, items) in top {
        let collection: Collection = key
            .parse()
            .map_err(|error| SimulatorError::Seed(format!("{error}")))?;
        let Value::Array(items) = items else {
            return Err(SimulatorError::Seed(format!(
                "{key} must be a list of objects"
            )));
        };
        for item in items {
            let Value::Object(mut object) = item else {
                return Err(SimulatorError::Seed(format!("{key} contains a non-object")));
            };
            let id = match object.get("_id") {
                Some(Value::String(id)) if !id.is_empty() => id.clone(),
                Some(_) => {
                    return Err(SimulatorError::Seed(format!(
                        "{key}: _id must be a non-empty string"
                    )))
                }
                None => {
                    let id = state.new_id(now);
                    object.insert("_id".into(), Value::String(id.clone()));
                    id
                }
            };
            for stamp in ["createdAt", "modifiedAt"] {
                object
                    .entry(stamp)
                    .or_insert_with(|| Value::String(format_timestamp(now)));
            }
            stamp_series(collection, &mut object);
            let objects = state.collections.entry(collection).or_default();
            if objects.insert(id.clone(), Value::Object(object)).is_some() {
                return Err(SimulatorError::Seed(format!("{key}: duplicate _id {id}")));
            }
        }
    }
    Ok(())
}

/// Control surface of a running simulator. Dropping it stops the server.
pub struct SimulatorHandle {
    /// `http://127.0.0.1:<port>`: both the identity (`/oauth/token`) and the API host.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub org_slug: String,
    sim: kit::Running<Settings, SimState>,
}

impl std::fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorHandle")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("org_slug", &self.org_slug)
            .finish_non_exhaustive()
    }
}

impl SimulatorHandle {
    /// A client configuration pointing at this simulator with its credentials.
    pub fn client_config(&self) -> Result<OfficeRndConfig, OfficeRndError> {
        OfficeRndConfig::new(&self.org_slug, &self.client_id, self.client_secret.clone())?
            .with_base_url(&self.base_url)
    }

    /// The fault injection and request counters wrapped around this simulator.
    pub fn faults(&self) -> &Faults {
        self.sim.faults()
    }

    /// API requests served so far (token requests not counted): what the reads benchmark reports.
    pub fn api_requests(&self) -> u64 {
        self.sim
            .faults()
            .request_counts()
            .into_iter()
            .filter(|(route, _)| route.contains("/api/v2/"))
            .map(|(_, count)| count)
            .sum()
    }

    /// The request path of a collection, as counted by [`Faults`].
    pub fn collection_path(&self, collection: Collection) -> String {
        format!(
            "/api/v2/organizations/{}/{}",
            self.org_slug,
            collection.path()
        )
    }

    /// The simulator's current time (pinned time or the injected clock).
    pub fn now(&self) -> DateTime<Utc> {
        self.sim.lock().now(&self.sim)
    }

    /// Pins the simulator's time, overriding the injected clock until [`Self::follow_clock`].
    pub fn set_now(&self, at: DateTime<Utc>) {
        self.sim.lock().pinned_now = Some(at);
    }

    pub fn follow_clock(&self) {
        self.sim.lock().pinned_now = None;
    }

    /// Lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.sim.lock().token_lifetime = lifetime;
    }

    /// Invalidates every issued token (the next API call with one gets 401).
    pub fn revoke_tokens(&self) {
        self.sim.lock().tokens.clear();
    }

    /// Makes `GET /{collection}/count` refused with `status` (404: no such route; 400: `count`
    /// validated as an id), or served again with `None`: the real server is not known to serve it
    /// on every collection ([`crate::officernd::wire::COUNTED`]).
    pub fn refuse_count(&self, collection: Collection, status: Option<StatusCode>) {
        let mut state = self.sim.lock();
        match status {
            Some(status) => state.refused_counts.insert(collection, status),
            None => state.refused_counts.remove(&collection),
        };
    }

    /// Scopes the app may request (`None`: every known scope). Tokens already issued keep their
    /// scopes.
    pub fn set_granted_scopes(&self, scopes: Option<Vec<String>>) {
        self.sim.lock().granted_scopes = scopes.map(|scopes| scopes.into_iter().collect());
    }

    pub fn get(&self, collection: Collection, id: &str) -> Option<Value> {
        self.sim
            .lock()
            .collections
            .get(&collection)?
            .get(id)
            .cloned()
    }

    /// All objects of a collection in `_id` order.
    pub fn list(&self, collection: Collection) -> Vec<Value> {
        self.sim
            .lock()
            .collections
            .get(&collection)
            .map(|objects| objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Inserts (no or unknown `_id`) or replaces (known `_id`) an object, stamping `_id`, `createdAt` and
    /// `modifiedAt`, and sends the matching `*.created` / `*.updated` webhook. Returns the stored object.
    pub fn upsert(&self, collection: Collection, value: Value) -> Result<Value, SimulatorError> {
        let Value::Object(mut object) = value else {
            return Err(SimulatorError::InvalidObject {
                collection,
                reason: "must be a JSON object".into(),
            });
        };
        let mut state = self.sim.lock();
        let now = state.now(&self.sim);
        let id = match object.get("_id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => state.new_id(now),
        };
        object.insert("_id".into(), Value::String(id.clone()));
        object.insert("modifiedAt".into(), Value::String(format_timestamp(now)));
        let previous = state
            .collections
            .get(&collection)
            .and_then(|objects| objects.get(&id))
            .cloned();
        let created_at = previous
            .as_ref()
            .and_then(|old| old.get("createdAt"))
            .cloned()
            .unwrap_or_else(|| Value::String(format_timestamp(now)));
        object.entry("createdAt").or_insert(created_at);
        stamp_series(collection, &mut object);
        let stored = Value::Object(object);
        state
            .collections
            .entry(collection)
            .or_default()
            .insert(id, stored.clone());
        match previous {
            Some(old) => {
                let changed = previous_attributes(&old, &stored);
                emit(
                    &self.sim,
                    &mut state,
                    collection,
                    "updated",
                    &stored,
                    Some(changed),
                    now,
                );
            }
            None => emit(
                &self.sim, &mut state, collection, "created", &stored, None, now,
            ),
        }
        Ok(stored)
    }

    /// Deletes an object and sends `*.removed`; returns it, or `None` if it did not exist.
    pub fn remove(&self, collection: Collection, id: &str) -> Option<Value> {
        let mut state = self.sim.lock();
        let now = state.now(&self.sim);
        let removed = state.collections.get_mut(&collection)?.remove(id)?;
        emit(
            &self.sim, &mut state, collection, "removed", &removed, None, now,
        );
        Some(removed)
    }

    /// Registers a webhook like `POST /webhooks`; returns its `_id` and signing secret.
    pub fn register_webhook(&self, url: &str, event_types: &[&str]) -> (String, Secret) {
        let mut state = self.sim.lock();
        let now = state.now(&self.sim);
        let webhook = new_webhook(
            &mut state,
            url,
            event_types.iter().map(|s| (*s).to_owned()).collect(),
            "",
            now,
        );
        let id = json_str(&webhook, "_id").to_owned();
        let secret = Secret::new(json_str(&webhook, "secret"));
        state.webhooks.insert(id.clone(), webhook);
        (id, secret)
    }

    /// Webhook delivery attempts so far, in order.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.sim.lock().deliveries.clone()
    }

    /// Stops the server (also done on drop).
    pub fn shutdown(mut self) {
        self.sim.stop();
    }
}

/// Every scope the simulator serves: each collection with each access, and the webhooks ones.
pub fn known_scopes() -> HashSet<String> {
    let accesses = [Access::Read, Access::Create, Access::Update, Access::Delete];
    Collection::ALL
        .iter()
        .flat_map(|collection| accesses.map(|access| collection.scope(access)))
        .chain(accesses.map(webhook_scope))
        .collect()
}

/// Gives a booking the series bounds the real API reports (inferred for one-off bookings: the
/// series is the booking itself). A recurring booking keeps the `seriesEnd` it was given; without
/// one it gets a bound no earlier than its last occurrence's end: from `UNTIL`, from `COUNT` ×
/// `INTERVAL` × the frequency's longest period, or [`crate::officernd::wire::OPEN_SERIES_END`] for an
/// open-ended series (inferred, see [`crate::officernd::wire::BOOKING_WINDOW_FIELDS`]).
fn stamp_series(collection: Collection, object: &mut Map<String, Value>) {
    if collection != Collection::Bookings {
        return;
    }
    let rrule = object
        .get("recurrence")
        .and_then(|r| r.get("rrule"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(start) = object.get("start").cloned() {
        if rrule.is_none() || !object.contains_key("seriesStart") {
            object.insert("seriesStart".into(), start);
        }
    }
    match rrule {
        None => {
            if let Some(end) = object.get("end").cloned() {
                object.insert("seriesEnd".into(), end);
            }
        }
        Some(rule) if !object.contains_key("seriesEnd") => {
            let instant = |key: &str| {
                object
                    .get(key)
                    .and_then(Value::as_str)
                    .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                    .map(|at| at.with_timezone(&Utc))
            };
            let bound = match (instant("start"), instant("end")) {
                (Some(start), Some(end)) => series_bound(&rule, start, end - start),
                _ => None,
            };
            let end = bound.map_or_else(
                || crate::officernd::wire::OPEN_SERIES_END.to_owned(),
                format_timestamp,
            );
            object.insert("seriesEnd".into(), Value::String(end));
        }
        Some(_) => {}
    }
}

/// An instant no earlier than the end of the last occurrence of `rule` (an RRULE without the
/// `RRULE:` prefix) starting at `start`; `None` when the rule never ends.
fn series_bound(
    rule: &str,
    start: DateTime<Utc>,
    duration: chrono::Duration,
) -> Option<DateTime<Utc>> {
    let parts: HashMap<String, String> = rule
        .trim_start_matches("RRULE:")
        .split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(key, value)| (key.trim().to_ascii_uppercase(), value.trim().to_owned()))
        .collect();
    if let Some(until) = parts.get("UNTIL") {
        let parsed =
            chrono::NaiveDateTime::parse_from_str(until.trim_end_matches('Z'), "%Y%m%dT%H%M%S")
                .map(|at| at.and_utc())
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(until, "%Y%m%d")
                        .map(|day| day.and_hms_opt(23, 59, 59).unwrap_or_default().and_utc())
                })
                .ok()?;
        return Some(parsed + duration);
    }
    let count: i64 = parts.get("COUNT")?.parse().ok()?;
    let interval: i64 = parts
        .get("INTERVAL")
        .and_then(|i| i.parse().ok())
        .unwrap_or(1);
    let period = match parts.get("FREQ").map(String::as_str) {
        Some("DAILY") => chrono::Duration::days(1),
        Some("WEEKLY") => chrono::Duration::weeks(1),
        Some("MONTHLY") => chrono::Duration::days(31),
        Some("YEARLY") => chrono::Duration::days(366),
        Some("HOURLY") => chrono::Duration::hours(1),
        _ => return None,
    };
    // A BYDAY list makes several occurrences per period: still within COUNT periods.
    Some(start + period * i32::try_from(count.saturating_mul(interval)).ok()? + duration)
}

fn json_str<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn new_webhook(
    state: &mut SimState,
    url: &str,
    event_types: Vec<String>,
    description: &str,
    now: DateTime<Utc>,
) -> Value {
    let id = state.new_id(now);
    // The vendor example shows a UUID-shaped secret.
    let raw = random_hex(16);
    let secret = format!(
        "{}-{}-{}-{}-{}",
        &raw[0..8],
        &raw[8..12],
        &raw[12..16],
        &raw[16..20],
        &raw[20..32]
    );
    json!({
        "_id": id,
        "url": url,
        "description": description,
        "eventTypes": event_types,
        "secret": secret,
        "isEnabled": true,
        "createdAt": format_timestamp(now),
    })
}

/// Old values of the keys that differ between `old` and `new` (`null` for keys `new` added).
fn previous_attributes(old: &Value, new: &Value) -> Value {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return Value::Object(Map::new());
    };
    let mut changed = Map::new();
    for key in old.keys().chain(new.keys()) {
        if key == "modifiedAt" || changed.contains_key(key) {
            continue;
        }
        let before = old.get(key);
        if before != new.get(key) {
            changed.insert(key.clone(), before.cloned().unwrap_or(Value::Null));
        }
    }
    Value::Object(changed)
}

/// Queues `<subject>.<action>` for every registered webhook that wants it.
fn emit(
    shared: &Shared,
    state: &mut SimState,
    collection: Collection,
    action: &str,
    object: &Value,
    previous: Option<Value>,
    now: DateTime<Utc>,
) {
    let Some(subject) = collection.event_subject() else {
        return;
    };
    let event_type = format!("{subject}.{action}");
    let event_id = state.new_id(now);
    let mut data = json!({ "object": object });
    if let (Some(previous), Some(data)) = (previous, data.as_object_mut()) {
        data.insert("previousAttributes".into(), previous);
    }
    let body = json!({
        "event": event_id,
        "eventType": event_type,
        "data": data,
        "createdAt": format_timestamp(now),
    })
    .to_string()
    .into_bytes();
    for webhook in state.webhooks.values() {
        let enabled = webhook
            .get("isEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let wanted = match webhook.get("eventTypes").and_then(Value::as_array) {
            Some(types) if !types.is_empty() => types
                .iter()
                .any(|t| t.as_str() == Some(event_type.as_str())),
            _ => true,
        };
        if enabled && wanted {
            let outgoing = Outgoing {
                webhook_id: json_str(webhook, "_id").to_owned(),
                url: json_str(webhook, "url").to_owned(),
                secret: Secret::new(json_str(webhook, "secret")),
                event_id: event_id.clone(),
                event_type: event_type.clone(),
                body: body.clone(),
            };
            // The receiver task only stops when the simulator is gone; nothing to deliver to then.
            let _ = shared.outbox.send(outgoing);
        }
    }
}

/// Delivers queued webhooks one at a time (preserving event order), signed with the simulator clock.
async fn deliver_webhooks(
    shared: std::sync::Weak<Shared>,
    mut queue: mpsc::UnboundedReceiver<Outgoing>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%error, "simulator cannot build its webhook HTTP client; deliveries disabled");
            return;
        }
    };
    while let Some(outgoing) = queue.recv().await {
        let Some(current) = shared.upgrade() else {
            return;
        };
        let timestamp = current.lock().now(&current).timestamp();
        drop(current);
        let signature = sign(&outgoing.secret, &outgoing.body, timestamp);
        let status = client
            .post(&outgoing.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(outgoing.body)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .ok();
        let Some(current) = shared.upgrade() else {
            return;
        };
        current.lock().deliveries.push(DeliveryRecord {
            webhook_id: outgoing.webhook_id,
            event_id: outgoing.event_id,
            event_type: outgoing.event_type,
            status,
        });
    }
}

// ---------------------------------------------------------------------------------------------------
// HTTP surface

type Sim = State<Arc<Shared>>;

fn router(shared: Arc<Shared>) -> Router {
    let org = "/api/v2/organizations/{org}";
    Router::new()
        .route("/oauth/token", post(issue_token))
        .route(
            &format!("{org}/webhooks"),
            get(list_webhooks).post(create_webhook),
        )
        .route(
            &format!("{org}/webhooks/{{id}}"),
            get(get_webhook).delete(delete_webhook),
        )
        .route(
            &format!("{org}/{{collection}}"),
            get(list_items).post(create_item),
        )
        .route(
            &format!("{org}/{{collection}}/{{id}}"),
            get(get_item).put(update_item).delete(delete_item),
        )
        .fallback(cannot)
        .method_not_allowed_fallback(cannot)
        .with_state(shared)
}

/// A NestJS-style error response; `message` is a string or a list of strings.
struct ApiError {
    status: StatusCode,
    message: Value,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: Value::String(message.into()),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn validation(messages: Vec<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: Value::from(messages),
        }
    }

    fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, UNAUTHORIZED_MESSAGE)
    }

    fn not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("Item with Id ({id})"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.status.canonical_reason().unwrap_or("Error");
        (
            self.status,
            Json(json!({"statusCode": self.status.as_u16(), "message": self.message, "error": error})),
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

async fn cannot(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Cannot {method} {}", uri.path()),
    )
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({ "error": code }))).into_response()
}

async fn issue_token(State(sim): Sim, body: Bytes) -> Response {
    let form = parse_form(&body);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let id_ok = field("client_id") == sim.client_id;
    let secret_ok = field("client_secret") == sim.client_secret.expose();
    if !(id_ok && secret_ok) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let requested: HashSet<String> = field("scope")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut state = sim.lock();
    let granted = match &state.granted_scopes {
        Some(granted) => requested.is_subset(granted),
        None => requested.iter().all(|scope| known_scopes().contains(scope)),
    };
    if !granted {
        // The real identity server refuses the whole request when one scope is not granted.
        return oauth_error(StatusCode::BAD_REQUEST, INVALID_SCOPE);
    }
    let now = state.now(&sim);
    let lifetime = state.token_lifetime;
    let access_token = random_hex(20);
    let mut scope: Vec<&str> = requested.iter().map(String::as_str).collect();
    scope.sort_unstable();
    let scope = scope.join(" ");
    state.tokens.insert(
        access_token.clone(),
        IssuedToken {
            scopes: requested,
            expires_at: now
                + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::zero()),
        },
    );
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
        "scope": scope,
    }))
    .into_response()
}

/// Checks the bearer token (present, unexpired, carrying `scope`) and then the org slug.
fn authorize(
    sim: &Shared,
    state: &SimState,
    headers: &HeaderMap,
    org: &str,
    scope: &str,
) -> Result<(), ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthorized)?;
    let issued = state.tokens.get(token).ok_or_else(ApiError::unauthorized)?;
    if issued.expires_at <= state.now(sim) || !issued.scopes.contains(scope) {
        return Err(ApiError::unauthorized());
    }
    if org != sim.org_slug {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Organization not found",
        ));
    }
    Ok(())
}

fn known_collection(name: &str, method: &Method, uri: &Uri) -> Result<Collection, ApiError> {
    name.parse().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Cannot {method} {}", uri.path()),
        )
    })
}

#[derive(Debug)]
enum Filter {
    Eq(String, String),
    In(String, Vec<String>),
    Date(String, &'static str, DateTime<Utc>),
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

impl Filter {
    fn matches(&self, object: &Value) -> bool {
        match self {
            Self::Eq(field, wanted) => object
                .get(field)
                .and_then(scalar_text)
                .is_some_and(|v| &v == wanted),
            Self::In(field, wanted) => object
                .get(field)
                .and_then(scalar_text)
                .is_some_and(|v| wanted.contains(&v)),
            Self::Date(field, op, bound) => {
                let Some(at) = object
                    .get(field)
                    .and_then(Value::as_str)
                    .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                else {
                    return false;
                };
                let at = at.with_timezone(&Utc);
                match *op {
                    "$gt" => at > *bound,
                    "$gte" => at >= *bound,
                    "$lt" => at < *bound,
                    _ => at <= *bound,
                }
            }
        }
    }
}

enum CursorDirection {
    After(String),
    Before(String),
}

fn encode_cursor(direction: &str, id: &str) -> String {
    hex::encode(json!({ direction: id }).to_string())
}

fn decode_cursor(cursor: &str, direction: &str) -> Option<String> {
    let bytes = hex::decode(cursor).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get(direction)?.as_str().map(str::to_owned)
}

struct ListRequest {
    limit: usize,
    cursor: Option<CursorDirection>,
    select: Option<Vec<String>>,
    filters: Vec<Filter>,
}

fn parse_list_query(collection: Collection, raw: Option<&str>) -> Result<ListRequest, ApiError> {
    let mut request = ListRequest {
        limit: DEFAULT_PAGE,
        cursor: None,
        select: None,
        filters: Vec::new(),
    };
    let mut next = None;
    let mut prev = None;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    for (name, value) in pairs {
        match name.as_str() {
            "$limit" => {
                let limit: i64 = value.trim().parse().map_err(|_| {
                    ApiError::bad_request(
                        "$limit must be a number conforming to the specified constraints",
                    )
                })?;
                request.limit = match limit {
                    l if l > MAX_LIMIT => {
                        return Err(ApiError::bad_request("$limit must not be greater than 50"))
                    }
                    0 => ZERO_LIMIT_PAGE,
                    l if l < 0 => {
                        return Err(ApiError::bad_request("$limit must not be less than 0"))
                    }
                    l => usize::try_from(l).unwrap_or(DEFAULT_PAGE),
                };
            }
            "$cursorNext" => next = Some(value),
            "$cursorPrev" => prev = Some(value),
            "$select" => {
                let fields: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|field| !field.is_empty())
                    .map(str::to_owned)
                    .collect();
                if fields.is_empty() {
                    return Err(ApiError::bad_request("$select should not be empty"));
                }
                request.select = Some(fields);
            }
            "$sort" if collection != Collection::Memberships => {}
            _ => request
                .filters
                .push(parse_filter(collection, &name, value)?),
        }
    }
    request.cursor = match (next, prev) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "Gateway Timeout",
            ))
        }
        (Some(cursor), None) => Some(CursorDirection::After(
            decode_cursor(&cursor, "after").ok_or_else(tampered_cursor)?,
        )),
        (None, Some(cursor)) => Some(CursorDirection::Before(
            decode_cursor(&cursor, "before").ok_or_else(tampered_cursor)?,
        )),
        (None, None) => None,
    };
    let required = collection.required_filters();
    if !required.is_empty()
        && !request.filters.iter().any(|filter| match filter {
            Filter::Eq(field, _) | Filter::In(field, _) => required.contains(&field.as_str()),
            Filter::Date(..) => false,
        })
    {
        return Err(ApiError::bad_request(format!(
            "one of the filters {} must be provided",
            required.join(", ")
        )));
    }
    Ok(request)
}

fn tampered_cursor() -> ApiError {
    // Observed: a tampered cursor makes the real API fail with a 500 JSON parse error.
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Unexpected token in JSON at position 0",
    )
}

fn parse_filter(collection: Collection, name: &str, value: String) -> Result<Filter, ApiError> {
    let (field, operator) = match name.split_once('[') {
        Some((field, rest)) => (field, rest.strip_suffix(']')),
        None => (name, None),
    };
    let unknown = || ApiError::bad_request(format!("property {field} should not exist"));
    if collection.exact_filters().contains(&field) {
        return match (name.contains('['), operator) {
            (false, _) => Ok(Filter::Eq(field.to_owned(), value)),
            (true, Some("$in")) => Ok(Filter::In(
                field.to_owned(),
                value
                    .split(',')
                    .map(|item| item.trim().to_owned())
                    .collect(),
            )),
            _ => Err(unknown()),
        };
    }
    if collection.date_filters().contains(&field) {
        let operator = match operator {
            Some("$gt") => "$gt",
            Some("$gte") => "$gte",
            Some("$lt") => "$lt",
            Some("$lte") => "$lte",
            _ => return Err(unknown()),
        };
        let bound = DateTime::parse_from_rfc3339(&value)
            .map_err(|_| {
                ApiError::bad_request(format!("{field} must be a valid ISO 8601 date string"))
            })?
            .with_timezone(&Utc);
        return Ok(Filter::Date(field.to_owned(), operator, bound));
    }
    Err(unknown())
}

fn project(object: &Value, select: Option<&[String]>) -> Value {
    let (Some(fields), Some(map)) = (select, object.as_object()) else {
        return object.clone();
    };
    let mut projected = Map::new();
    for (key, value) in map {
        if key == "_id" || fields.iter().any(|field| field == key) {
            projected.insert(key.clone(), value.clone());
        }
    }
    Value::Object(projected)
}

/// Builds the cursor envelope over `objects` (already filtered, in `_id` order).
fn page(objects: &[&Value], request: &ListRequest) -> Value {
    let id_of = |object: &Value| json_str(object, "_id").to_owned();
    let (start, end) = match &request.cursor {
        None => (0, objects.len().min(request.limit)),
        Some(CursorDirection::After(after)) => {
            let start = objects.partition_point(|object| id_of(object).as_str() <= after.as_str());
            (start, (start + request.limit).min(objects.len()))
        }
        Some(CursorDirection::Before(before)) => {
            let end = objects.partition_point(|object| id_of(object).as_str() < before.as_str());
            (end.saturating_sub(request.limit), end)
        }
    };
    let results: Vec<Value> = objects[start..end]
        .iter()
        .map(|object| project(object, request.select.as_deref()))
        .collect();
    let mut envelope = Map::new();
    envelope.insert("results".into(), Value::from(results));
    if end < objects.len() && end > start {
        envelope.insert(
            "cursorNext".into(),
            Value::String(encode_cursor("after", &id_of(objects[end - 1]))),
        );
    }
    if start > 0 && start < objects.len() {
        envelope.insert(
            "cursorPrev".into(),
            Value::String(encode_cursor("before", &id_of(objects[start]))),
        );
    }
    let (range_start, range_end) = if end > start {
        (start + 1, end)
    } else {
        (0, 0)
    };
    envelope.insert("rangeStart".into(), Value::from(range_start));
    envelope.insert("rangeEnd".into(), Value::from(range_end));
    Value::Object(envelope)
}

async fn list_items(
    State(sim): Sim,
    Path((org, name)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    let collection = known_collection(&name, &method, &uri)?;
    let state = sim.lock();
    authorize(
        &sim,
        &state,
        &headers,
        &org,
        &collection.scope(Access::Read),
    )?;
    let request = parse_list_query(collection, raw.as_deref())?;
    let objects: Vec<&Value> = state
        .collections
        .get(&collection)
        .map(|objects| {
            objects
                .values()
                .filter(|object| request.filters.iter().all(|filter| filter.matches(object)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(page(&objects, &request)).into_response())
}

async fn get_item(
    State(sim): Sim,
    Path((org, name, id)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    let collection = known_collection(&name, &method, &uri)?;
    let state = sim.lock();
    authorize(
        &sim,
        &state,
        &headers,
        &org,
        &collection.scope(Access::Read),
    )?;
    let objects = state.collections.get(&collection);
    if id == "count" {
        match state.refused_counts.get(&collection) {
            Some(&StatusCode::NOT_FOUND) => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("Cannot {method} {}", uri.path()),
                ));
            }
            Some(&status) if status == StatusCode::BAD_REQUEST => {
                return Err(ApiError::validation(vec!["id must be a mongodb id".into()]));
            }
            Some(&status) => return Err(ApiError::new(status, "count refused")),
            // Observed on memberships: only {"total"}, filters ignored.
            None => {
                return Ok(
                    Json(json!({ "total": objects.map_or(0, BTreeMap::len) })).into_response()
                )
            }
        }
    }
    let object = objects
        .and_then(|objects| objects.get(&id))
        .ok_or_else(|| ApiError::not_found(&id))?;
    Ok(Json(object.clone()).into_response())
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(ApiError::validation(vec![
            "request body must be a JSON object".into(),
        ])),
    }
}

/// Fields a create request must carry: documented for memberships, likely shapes elsewhere.
fn required_on_create(collection: Collection) -> &'static [&'static str] {
    match collection {
        Collection::Memberships => &["name", "startDate", "location", "plan"],
        Collection::Bookings => &["resource", "start", "end"],
        Collection::Members | Collection::Companies => &["name"],
        Collection::Assignments => &["resource", "membership", "startDate"],
        Collection::Visitors => &["name"],
        _ => &[],
    }
}

fn ensure_writable(collection: Collection, method: &Method, uri: &Uri) -> Result<(), ApiError> {
    if collection.is_writable() {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Cannot {method} {}", uri.path()),
        ))
    }
}

async fn create_item(
    State(sim): Sim,
    Path((org, name)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let collection = known_collection(&name, &method, &uri)?;
    let mut state = sim.lock();
    authorize(
        &sim,
        &state,
        &headers,
        &org,
        &collection.scope(Access::Create),
    )?;
    ensure_writable(collection, &method, &uri)?;
    let mut object = json_object(&body)?;
    let missing: Vec<String> = required_on_create(collection)
        .iter()
        .filter(|field| !object.get(**field).is_some_and(Value::is_string))
        .map(|field| format!("{field} must be a string"))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::validation(missing));
    }
    let now = state.now(&sim);
    let id = state.new_id(now);
    object.insert("_id".into(), Value::String(id.clone()));
    object.insert("createdAt".into(), Value::String(format_timestamp(now)));
    object.insert("modifiedAt".into(), Value::String(format_timestamp(now)));
    stamp_series(collection, &mut object);
    let stored = Value::Object(object);
    state
        .collections
        .entry(collection)
        .or_default()
        .insert(id, stored.clone());
    emit(&sim, &mut state, collection, "created", &stored, None, now);
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

async fn update_item(
    State(sim): Sim,
    Path((org, name, id)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let collection = known_collection(&name, &method, &uri)?;
    let mut state = sim.lock();
    authorize(
        &sim,
        &state,
        &headers,
        &org,
        &collection.scope(Access::Update),
    )?;
    ensure_writable(collection, &method, &uri)?;
    let changes = json_object(&body)?;
    let now = state.now(&sim);
    let old = state
        .collections
        .get(&collection)
        .and_then(|objects| objects.get(&id))
        .cloned()
        .ok_or_else(|| ApiError::not_found(&id))?;
    let mut updated = old.as_object().cloned().unwrap_or_default();
    for (key, value) in changes {
        if !matches!(
            key.as_str(),
            "_id" | "createdAt" | "createdBy" | "modifiedAt"
        ) {
            updated.insert(key, value);
        }
    }
    updated.insert("modifiedAt".into(), Value::String(format_timestamp(now)));
    stamp_series(collection, &mut updated);
    let stored = Value::Object(updated);
    state
        .collections
        .entry(collection)
        .or_default()
        .insert(id, stored.clone());
    let changed = previous_attributes(&old, &stored);
    emit(
        &sim,
        &mut state,
        collection,
        "updated",
        &stored,
        Some(changed),
        now,
    );
    Ok(Json(stored).into_response())
}

async fn delete_item(
    State(sim): Sim,
    Path((org, name, id)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    let collection = known_collection(&name, &method, &uri)?;
    let mut state = sim.lock();
    authorize(
        &sim,
        &state,
        &headers,
        &org,
        &collection.scope(Access::Delete),
    )?;
    ensure_writable(collection, &method, &uri)?;
    let now = state.now(&sim);
    let removed = state
        .collections
        .get_mut(&collection)
        .and_then(|objects| objects.remove(&id))
        .ok_or_else(|| ApiError::not_found(&id))?;
    emit(&sim, &mut state, collection, "removed", &removed, None, now);
    Ok(Json(removed).into_response())
}

fn webhook_scope(access: Access) -> String {
    format!("{WEBHOOK_SCOPE_PREFIX}.{}", access.as_str())
}

async fn list_webhooks(State(sim): Sim, Path(org): Path<String>, headers: HeaderMap) -> ApiResult {
    let state = sim.lock();
    authorize(&sim, &state, &headers, &org, &webhook_scope(Access::Read))?;
    let hooks: Vec<&Value> = state.webhooks.values().collect();
    let request = ListRequest {
        limit: DEFAULT_PAGE,
        cursor: None,
        select: None,
        filters: Vec::new(),
    };
    Ok(Json(page(&hooks, &request)).into_response())
}

async fn create_webhook(
    State(sim): Sim,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let mut state = sim.lock();
    authorize(&sim, &state, &headers, &org, &webhook_scope(Access::Create))?;
    let request = json_object(&body)?;
    let mut problems = Vec::new();
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if url::Url::parse(&url).is_err() {
        problems.push("url must be a URL address".to_owned());
    }
    let event_types: Option<Vec<String>> = request
        .get("eventTypes")
        .and_then(Value::as_array)
        .and_then(|types| {
            types
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect()
        });
    if event_types.is_none() {
        problems.push("eventTypes must be an array of strings".to_owned());
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let description = request
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let now = state.now(&sim);
    let webhook = new_webhook(
        &mut state,
        &url,
        event_types.unwrap_or_default(),
        &description,
        now,
    );
    state
        .webhooks
        .insert(json_str(&webhook, "_id").to_owned(), webhook.clone());
    Ok((StatusCode::CREATED, Json(webhook)).into_response())
}

async fn get_webhook(
    State(sim): Sim,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let state = sim.lock();
    authorize(&sim, &state, &headers, &org, &webhook_scope(Access::Read))?;
    let webhook = state
        .webhooks
        .get(&id)
        .ok_or_else(|| ApiError::not_found(&id))?;
    Ok(Json(webhook.clone()).into_response())
}

async fn delete_webhook(
    State(sim): Sim,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let mut state = sim.lock();
    authorize(&sim, &state, &headers, &org, &webhook_scope(Access::Delete))?;
    let removed = state
        .webhooks
        .remove(&id)
        .ok_or_else(|| ApiError::not_found(&id))?;
    Ok(Json(removed).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(count: usize) -> Vec<Value> {
        (0..count)
            .map(|i| json!({"_id": format!("{i:024x}")}))
            .collect()
    }

    #[test]
    fn envelope_pages_forward_and_omits_cursors_at_the_ends() {
        let all = objects(7);
        let refs: Vec<&Value> = all.iter().collect();
        let mut request = ListRequest {
            limit: 3,
            cursor: None,
            select: None,
            filters: Vec::new(),
        };
        let first = page(&refs, &request);
        assert_eq!(first["rangeStart"], 1);
        assert_eq!(first["rangeEnd"], 3);
        assert!(first.get("cursorPrev").is_none());
        let next = first["cursorNext"].as_str().unwrap();
        request.cursor = Some(CursorDirection::After(
            decode_cursor(next, "after").unwrap(),
        ));
        let second = page(&refs, &request);
        assert_eq!(second["rangeStart"], 4);
        assert!(second.get("cursorPrev").is_some());
        request.cursor = Some(CursorDirection::After(
            decode_cursor(second["cursorNext"].as_str().unwrap(), "after").unwrap(),
        ));
        let last = page(&refs, &request);
        assert_eq!(last["results"].as_array().unwrap().len(), 1);
        assert_eq!(last["rangeEnd"], 7);
        assert!(
            last.get("cursorNext").is_none(),
            "cursorNext must be absent on the last page"
        );
    }

    #[test]
    fn query_validation_matches_the_observed_messages() {
        let message = |collection, raw| match parse_list_query(collection, Some(raw)) {
            Err(error) => error.message.as_str().unwrap_or_default().to_owned(),
            Ok(_) => "ok".to_owned(),
        };
        assert_eq!(
            message(Collection::Members, "$limit=51"),
            "$limit must not be greater than 50"
        );
        assert_eq!(
            message(Collection::Members, "unknownParam=1"),
            "property unknownParam should not exist"
        );
        assert_eq!(
            message(
                Collection::Memberships,
                "modifiedAt%5B%24gt%5D=2025-01-01T00:00:00.000Z"
            ),
            "property modifiedAt should not exist"
        );
        assert_eq!(
            message(Collection::Members, "status%5B%24in%5D=active,pending"),
            "ok"
        );
        assert_eq!(
            message(Collection::Assignments, ""),
            "one of the filters resource, membership must be provided"
        );
        assert_eq!(
            parse_list_query(Collection::Members, Some("$limit=0"))
                .map(|r| r.limit)
                .ok(),
            Some(20)
        );
    }
}
