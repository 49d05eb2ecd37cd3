//! OfficeRnD webhook deliveries: signature verification, event parsing into the objects to recompute,
//! a signing helper (simulator, tests) and an axum receiver.
//!
//! Wire facts (vendor-apis.md §1.6; official webhooks demo and the n8n node, no recorded delivery exists):
//! header `officernd-signature: t=<unix-seconds>,signature=<hex>`, where the hex is
//! HMAC-SHA256(secret, `<raw body>.<t>`) with the webhook's `secret` as UTF-8 key; body
//! `{event, eventType, data: {object, previousAttributes?}, createdAt}`. OfficeRnD documents no
//! timestamp tolerance; we enforce 5 minutes either way to bound replays.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use super::collection::Collection;
use super::{system_clock, Clock};
use crate::http::Secret;

/// The signature header name (HTTP header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "officernd-signature";
/// Maximum distance between the signed timestamp and our clock, in either direction.
pub const TOLERANCE_SECONDS: i64 = 300;
const SHA256_LEN: usize = 32;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("missing {SIGNATURE_HEADER} header")]
    MissingHeader,
    #[error("malformed {SIGNATURE_HEADER} header: {0}")]
    MalformedHeader(&'static str),
    #[error("signature timestamp is {skew_seconds} s away from now (tolerance {TOLERANCE_SECONDS} s); replayed or clock skew")]
    StaleTimestamp { skew_seconds: i64 },
    #[error("signature does not match the body (wrong secret or tampered delivery)")]
    BadSignature,
    #[error("malformed webhook body: {0}")]
    MalformedBody(String),
    #[error("this delivery (same signature) was already accepted; a replay is not acted on")]
    Replayed,
}

impl WebhookError {
    /// A stable machine-readable code for responses and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_signature",
            Self::MalformedHeader(_) => "malformed_signature",
            Self::StaleTimestamp { .. } => "stale_timestamp",
            Self::BadSignature => "bad_signature",
            Self::MalformedBody(_) => "malformed_body",
            Self::Replayed => "replayed",
        }
    }
}

/// The change an event reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAction {
    Created,
    Updated,
    Removed,
    Other(String),
}

/// An OfficeRnD object to recompute: its collection and `_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AffectedObject {
    pub collection: Collection,
    pub id: String,
}

/// A verified, parsed delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// OfficeRnD's event id (`event`), for de-duplicating redeliveries; absent in some payloads.
    pub event_id: Option<String>,
    /// As sent, e.g. `booking.updated`, `company.paymentdetails.created`.
    pub event_type: String,
    /// The part before the action, e.g. `booking`, `company.paymentdetails`.
    pub subject: String,
    pub action: EventAction,
    /// `data.object`: the object after the change (before it, for `removed`).
    pub object: Value,
    /// `data.previousAttributes`: changed fields' old values, when sent.
    pub previous_attributes: Option<Value>,
    pub created_at: Option<DateTime<Utc>>,
    /// What to recompute; empty for events flexgate does not act on (invoices, fees, payment details…).
    pub affected: Vec<AffectedObject>,
}

/// Hex HMAC-SHA256 of `<raw_body>.<timestamp>` keyed with `secret`.
pub fn signature_hex(secret: &Secret, raw_body: &[u8], timestamp: i64) -> String {
    mac_bytes(secret, raw_body, timestamp)
        .map(hex::encode)
        .unwrap_or_default()
}

/// The full header value for `raw_body` signed at `timestamp` (unix seconds).
pub fn sign(secret: &Secret, raw_body: &[u8], timestamp: i64) -> String {
    format!(
        "t={timestamp},signature={}",
        signature_hex(secret, raw_body, timestamp)
    )
}

fn mac_bytes(secret: &Secret, raw_body: &[u8], timestamp: i64) -> Option<Vec<u8>> {
    // HMAC accepts keys of any length, so this never fails; if it did, callers fail closed.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes()).ok()?;
    mac.update(raw_body);
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    Some(mac.finalize().into_bytes().to_vec())
}

struct SignatureHeader {
    timestamp: i64,
    signatures: Vec<Vec<u8>>,
}

fn parse_header(header: &str) -> Result<SignatureHeader, WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            return Err(WebhookError::MalformedHeader(
                "expected comma-separated key=value pairs",
            ));
        };
        match key.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(WebhookError::MalformedHeader("more than one t="));
                }
                let parsed = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| WebhookError::MalformedHeader("t= is not unix seconds"))?;
                timestamp = Some(parsed);
            }
            "signature" => {
                let bytes = hex::decode(value.trim())
                    .map_err(|_| WebhookError::MalformedHeader("signature= is not hex"))?;
                signatures.push(bytes);
            }
            // Unknown keys (e.g. a future scheme version) are ignored, as signature schemes require.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::MalformedHeader("no t="))?;
    if signatures.is_empty() {
        return Err(WebhookError::MalformedHeader("no signature="));
    }
    Ok(SignatureHeader {
        timestamp,
        signatures,
    })
}

/// Verifies a delivery signed with `secret` and parses it.
///
/// Order of checks: header present and well-formed → signature (constant-time) → timestamp within
/// ±5 minutes of `now` → body shape. A forged delivery therefore always reports `BadSignature`.
pub fn verify(
    secret: &Secret,
    header: Option<&str>,
    raw_body: &[u8],
    now: DateTime<Utc>,
) -> Result<WebhookEvent, WebhookError> {
    verify_any(std::slice::from_ref(secret), header, raw_body, now)
}

/// The checks that need no secret: a signature header is present, well formed and fresh.
/// Receivers run it before looking any secret up, so a flood of unsigned or stale requests
/// costs nothing but this parse. The timestamp is not authenticated here; [`verify`] checks the
/// signature over it.
pub fn precheck(header: Option<&str>, now: DateTime<Utc>) -> Result<(), WebhookError> {
    let parsed = parse_header(header.ok_or(WebhookError::MissingHeader)?)?;
    fresh(parsed.timestamp, now)
}

/// A signature timestamp within [`TOLERANCE_SECONDS`] of `now`.
fn fresh(timestamp: i64, now: DateTime<Utc>) -> Result<(), WebhookError> {
    let skew_seconds = now.timestamp().saturating_sub(timestamp);
    if skew_seconds.abs() > TOLERANCE_SECONDS {
        return Err(WebhookError::StaleTimestamp { skew_seconds });
    }
    Ok(())
}

/// As [`verify`], accepting a signature made with any of `secrets` (secret rotation).
pub fn verify_any(
    secrets: &[Secret],
    header: Option<&str>,
    raw_body: &[u8],
    now: DateTime<Utc>,
) -> Result<WebhookEvent, WebhookError> {
    let header = header.ok_or(WebhookError::MissingHeader)?;
    let parsed = parse_header(header)?;
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let Some(expected) = mac_bytes(secret, raw_body, parsed.timestamp) else {
            continue;
        };
        for candidate in &parsed.signatures {
            // Lengths are public (always 32 for a genuine signature); contents compared in constant time.
            if candidate.len() == SHA256_LEN {
                matched |= expected.as_slice().ct_eq(candidate.as_slice());
            }
        }
    }
    if !bool::from(matched) {
        return Err(WebhookError::BadSignature);
    }
    fresh(parsed.timestamp, now)?;
    parse_event(raw_body)
}

/// Parses a delivery body (no signature check; use [`verify`] for anything received).
pub fn parse_event(raw_body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let body: Value = serde_json::from_slice(raw_body)
        .map_err(|error| WebhookError::MalformedBody(format!("not JSON: {error}")))?;
    let event_type = body
        .get("eventType")
        .and_then(Value::as_str)
        .filter(|kind| !kind.is_empty())
        .ok_or_else(|| WebhookError::MalformedBody("eventType missing or not a string".into()))?
        .to_owned();
    let data = body
        .get("data")
        .filter(|data| data.is_object())
        .ok_or_else(|| WebhookError::MalformedBody("data missing or not an object".into()))?;
    let object = data
        .get("object")
        .filter(|object| object.is_object())
        .cloned()
        .ok_or_else(|| {
            WebhookError::MalformedBody("data.object missing or not an object".into())
        })?;
    let previous_attributes = data
        .get("previousAttributes")
        .filter(|value| !value.is_null())
        .cloned();
    let created_at = match body.get("createdAt") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    WebhookError::MalformedBody("createdAt is not an ISO-8601 timestamp".into())
                })?
                .with_timezone(&Utc),
        ),
        Some(_) => {
            return Err(WebhookError::MalformedBody(
                "createdAt is not a string".into(),
            ))
        }
    };
    let event_id = body.get("event").and_then(Value::as_str).map(str::to_owned);
    let (subject, action) = match event_type.rsplit_once('.') {
        Some((subject, action)) => (subject.to_owned(), action),
        None => (event_type.clone(), ""),
    };
    let action = match action {
        "created" => EventAction::Created,
        "updated" => EventAction::Updated,
        "removed" => EventAction::Removed,
        other => EventAction::Other(other.to_owned()),
    };
    let affected = affected_objects(&subject, &object, previous_attributes.as_ref())?;
    Ok(WebhookEvent {
        event_id,
        event_type,
        subject,
        action,
        object,
        previous_attributes,
        created_at,
        affected,
    })
}

/// Which objects an event touches. References are read from the object and from
/// `previousAttributes` (a booking moved to another resource affects both resources).
fn affected_objects(
    subject: &str,
    object: &Value,
    previous: Option<&Value>,
) -> Result<Vec<AffectedObject>, WebhookError> {
    let (own, references): (Collection, &[(&str, Collection)]) = match subject {
        "booking" => (Collection::Bookings, &[("resource", Collection::Resources)]),
        "membership" => (
            Collection::Memberships,
            &[
                ("member", Collection::Members),
                ("company", Collection::Companies),
                ("plan", Collection::Plans),
            ],
        ),
        "member" => (Collection::Members, &[]),
        "company" => (Collection::Companies, &[]),
        "pass" => (Collection::Passes, &[]),
        _ => return Ok(Vec::new()),
    };
    let id = reference_id(object.get("_id"))
        .ok_or_else(|| WebhookError::MalformedBody(format!("{subject} event object has no _id")))?;
    let mut affected = vec![AffectedObject {
        collection: own,
        id,
    }];
    for (field, collection) in references {
        let sources = [Some(object), previous];
        for source in sources.into_iter().flatten() {
            if let Some(id) = reference_id(source.get(*field)) {
                let candidate = AffectedObject {
                    collection: *collection,
                    id,
                };
                if !affected.contains(&candidate) {
                    affected.push(candidate);
                }
            }
        }
    }
    Ok(affected)
}

/// A reference is an id string, or (if the payload embeds it) an object with `_id`.
fn reference_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(id) if !id.is_empty() => Some(id.clone()),
        Value::Object(embedded) => embedded.get("_id")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// Where the receiver gets the currently valid signing secrets (more than one during rotation).
pub trait WebhookSecrets: Send + Sync + 'static {
    fn secrets(&self) -> Vec<Secret>;
}

impl WebhookSecrets for Secret {
    fn secrets(&self) -> Vec<Secret> {
        vec![self.clone()]
    }
}

impl WebhookSecrets for Vec<Secret> {
    fn secrets(&self) -> Vec<Secret> {
        self.clone()
    }
}

impl<F> WebhookSecrets for F
where
    F: Fn() -> Vec<Secret> + Send + Sync + 'static,
{
    fn secrets(&self) -> Vec<Secret> {
        self()
    }
}

struct Receiver {
    secrets: Box<dyn WebhookSecrets>,
    sink: mpsc::Sender<WebhookEvent>,
    clock: Clock,
}

/// An axum router accepting deliveries at `/` (nest it, e.g. at `/webhooks/officernd`).
///
/// Responses: 202 accepted (event sent on `sink`); 401 with `{error, message}` for a missing, malformed,
/// forged or stale signature; 400 for an authentic delivery whose body cannot be parsed (retrying it
/// cannot help); 503 when `sink` is full or closed, so OfficeRnD redelivers later.
pub fn webhook_router(secrets: impl WebhookSecrets, sink: mpsc::Sender<WebhookEvent>) -> Router {
    webhook_router_with_clock(secrets, sink, system_clock())
}

/// As [`webhook_router`] with an explicit clock for the timestamp tolerance.
pub fn webhook_router_with_clock(
    secrets: impl WebhookSecrets,
    sink: mpsc::Sender<WebhookEvent>,
    clock: Clock,
) -> Router {
    let receiver = Arc::new(Receiver {
        secrets: Box::new(secrets),
        sink,
        clock,
    });
    Router::new().route("/", post(receive)).with_state(receiver)
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = match headers.get(SIGNATURE_HEADER).map(|value| value.to_str()) {
        None => None,
        Some(Ok(text)) => Some(text),
        Some(Err(_)) => return refuse(&WebhookError::MalformedHeader("header is not ASCII")),
    };
    let secrets = receiver.secrets.secrets();
    let event = match verify_any(&secrets, header, &body, (receiver.clock)()) {
        Ok(event) => event,
        Err(error) => return refuse(&error),
    };
    let event_id = event.event_id.clone();
    let event_type = event.event_type.clone();
    match receiver.sink.try_send(event) {
        Ok(()) => {
            tracing::debug!(%event_type, ?event_id, "accepted OfficeRnD webhook");
            (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response()
        }
        Err(error) => {
            let reason = match error {
                mpsc::error::TrySendError::Full(_) => "event queue full",
                mpsc::error::TrySendError::Closed(_) => "event consumer stopped",
            };
            tracing::warn!(%event_type, ?event_id, reason, "cannot queue OfficeRnD webhook; asking for redelivery");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "unavailable", "message": reason})),
            )
                .into_response()
        }
    }
}

fn refuse(error: &WebhookError) -> Response {
    let status = match error {
        WebhookError::MalformedBody(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    tracing::warn!(code = error.code(), %error, "refused OfficeRnD webhook delivery");
    (
        status,
        Json(json!({"error": error.code(), "message": error.to_string()})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_rejects_garbage_and_accepts_unknown_keys() {
        assert!(matches!(
            parse_header("garbage"),
            Err(WebhookError::MalformedHeader(_))
        ));
        assert!(matches!(
            parse_header("t=1"),
            Err(WebhookError::MalformedHeader(_))
        ));
        assert!(matches!(
            parse_header("signature=00"),
            Err(WebhookError::MalformedHeader(_))
        ));
        assert!(matches!(
            parse_header("t=x,signature=00"),
            Err(WebhookError::MalformedHeader(_))
        ));
        assert!(matches!(
            parse_header("t=1,signature=zz"),
            Err(WebhookError::MalformedHeader(_))
        ));
        let parsed = parse_header(" t=12 , v0=whatever, signature=0a0b").unwrap();
        assert_eq!(parsed.timestamp, 12);
        assert_eq!(parsed.signatures, vec![vec![0x0a, 0x0b]]);
    }

    #[test]
    fn reference_ids_accept_strings_and_embedded_objects() {
        assert_eq!(reference_id(Some(&json!("abc"))), Some("abc".into()));
        assert_eq!(
            reference_id(Some(&json!({"_id": "abc", "name": "x"}))),
            Some("abc".into())
        );
        assert_eq!(reference_id(Some(&json!(null))), None);
        assert_eq!(reference_id(None), None);
    }
}
