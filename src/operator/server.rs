//! The operator's HTTP endpoints: `/metrics`, `/healthz`, `/readyz` on the HTTP address, and
//! `POST /webhooks/officernd` on the webhook address, verified against the webhook secret of
//! every OfficeRnD VendorConnection (so a delivery identifies its connection), held in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use serde_json::json;
use tokio::sync::mpsc;

use crate::api::{Vendor, VendorConnection};
use crate::clock::Clock;
use crate::officernd::webhooks::{self, WebhookError, WebhookEvent, SIGNATURE_HEADER};

use super::telemetry::Metrics;
use super::webhook_keys::{WebhookKey, WebhookKeys};

/// Liveness and readiness, flipped by the controller.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Marks the operator ready (CRDs found, caches started) or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// `/metrics`, `/healthz` (the process serves) and `/readyz` (started and, with leader
/// election, either leading or standing by).
pub fn http_router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let health = health.clone();
                async move {
                    if health.is_ready() {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "starting")
                    }
                }
            }),
        )
}

/// A verified delivery and the OfficeRnD connections (`namespace`, `name`) whose secret signed it.
#[derive(Debug, Clone)]
pub struct WebhookTrigger {
    /// The connections whose webhook secret verified the delivery.
    pub connections: Vec<(String, String)>,
    /// The event.
    pub event: WebhookEvent,
}

struct Receiver {
    connections: Store<VendorConnection>,
    keys: Arc<WebhookKeys>,
    sink: mpsc::Sender<WebhookTrigger>,
    clock: Clock,
    metrics: Arc<Metrics>,
    /// Signature headers of the deliveries accepted within the replay window, with when: a
    /// captured delivery sent again inside the signature's tolerance is refused.
    accepted: std::sync::Mutex<HashMap<String, DateTime<Utc>>>,
}

/// How long an accepted signature is remembered: the signature tolerance both ways, so a
/// replay is refused for as long as its timestamp would pass.
const REPLAY_WINDOW_SECONDS: i64 = 2 * webhooks::TOLERANCE_SECONDS;

impl Receiver {
    /// Records an accepted delivery's signature; false when it was accepted before.
    fn first_time(&self, signature: &str, now: DateTime<Utc>) -> bool {
        let mut accepted = self
            .accepted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        accepted.retain(|_, at| (now - *at).num_seconds() <= REPLAY_WINDOW_SECONDS);
        accepted.insert(signature.to_owned(), now).is_none()
    }

    /// Forgets an accepted delivery that could not be queued (OfficeRnD redelivers it).
    fn forget(&self, signature: &str) {
        self.accepted
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(signature);
    }
}

/// `POST /webhooks/officernd`. Answers as [`webhooks::webhook_router`] does: 202 accepted, 401 for
/// a missing, forged or stale signature, 400 for an authentic but unreadable body, 503 when the
/// controller cannot take the event (not leading, queue full) so OfficeRnD redelivers.
pub fn webhook_router(
    connections: Store<VendorConnection>,
    keys: Arc<WebhookKeys>,
    sink: mpsc::Sender<WebhookTrigger>,
    clock: Clock,
    metrics: Arc<Metrics>,
) -> Router {
    let receiver = Arc::new(Receiver {
        connections,
        keys,
        sink,
        clock,
        metrics,
        accepted: std::sync::Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/webhooks/officernd", post(receive))
        .with_state(receiver)
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    let now = (receiver.clock)();
    // Unsigned, malformed or stale requests are refused before any secret is looked up.
    if let Err(refusal) = webhooks::precheck(header, now) {
        return refuse(&receiver.metrics, &refusal);
    }
    // Keys come from memory (see `webhook_keys`): nothing here calls the API server.
    let mut matched = Vec::new();
    let mut event = None;
    let mut refusal = WebhookError::BadSignature;
    let mut configured = 0usize;
    let mut loading = 0usize;
    let connections: Vec<_> = receiver
        .connections
        .state()
        .into_iter()
        .filter(|connection| connection.spec.vendor == Vendor::OfficeRnD)
        .collect();
    for connection in &connections {
        let namespace = connection.namespace().unwrap_or_default();
        let name = connection.name_any();
        let signing = match receiver.keys.get(&namespace, &name) {
            Some(WebhookKey::Signing(signing)) => signing,
            Some(WebhookKey::NotConfigured) => continue,
            None => {
                loading += 1;
                continue;
            }
        };
        configured += 1;
        match webhooks::verify(&signing, header, &body, now) {
            Ok(verified) => {
                matched.push((namespace, name));
                event = Some(verified);
            }
            Err(WebhookError::BadSignature) => {}
            Err(other) => refusal = other,
        }
    }
    if receiver.keys.len() > connections.len() {
        receiver.keys.retain(|namespace, name| {
            connections
                .iter()
                .any(|c| c.namespace().as_deref() == Some(namespace) && c.name_any() == name)
        });
    }
    let Some(event) = event else {
        if loading > 0 && matches!(refusal, WebhookError::BadSignature) {
            // A connection not yet reconciled may own this delivery: refusing it as forged
            // would lose it, so OfficeRnD is asked to redeliver.
            receiver.metrics.webhook("unavailable");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "unavailable", "message": "the webhook secrets of some OfficeRnD connections are still being loaded; redeliver later"})),
            )
                .into_response();
        }
        if configured == 0 {
            tracing::warn!("OfficeRnD webhook received but no OfficeRnD VendorConnection has spec.officernd.webhookSecretKey");
        }
        return refuse(&receiver.metrics, &refusal);
    };
    let signature = header.unwrap_or_default();
    if !receiver.first_time(signature, now) {
        return refuse(&receiver.metrics, &WebhookError::Replayed);
    }
    if event.affected.is_empty() {
        receiver.metrics.webhook("ignored");
        return (StatusCode::ACCEPTED, Json(json!({"status": "ignored"}))).into_response();
    }
    let event_type = event.event_type.clone();
    match receiver.sink.try_send(WebhookTrigger {
        connections: matched,
        event,
    }) {
        Ok(()) => {
            receiver.metrics.webhook("accepted");
            tracing::debug!(%event_type, "accepted OfficeRnD webhook");
            (StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response()
        }
        Err(_) => {
            receiver.forget(signature);
            receiver.metrics.webhook("unavailable");
            tracing::warn!(%event_type, "cannot queue OfficeRnD webhook; asking for redelivery");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "unavailable", "message": "the controller is not taking events (not leading or queue full); redeliver later"})),
            )
                .into_response()
        }
    }
}

fn refuse(metrics: &Metrics, error: &WebhookError) -> Response {
    let status = match error {
        WebhookError::MalformedBody(_) => StatusCode::BAD_REQUEST,
        WebhookError::Replayed => StatusCode::CONFLICT,
        _ => StatusCode::UNAUTHORIZED,
    };
    metrics.webhook(error.code());
    tracing::warn!(code = error.code(), %error, "refused OfficeRnD webhook delivery");
    (
        status,
        Json(json!({"error": error.code(), "message": error.to_string()})),
    )
        .into_response()
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use kube::runtime::{reflector, watcher};
    use tower::ServiceExt;

    use super::*;
    use crate::http::Secret;
    use crate::officernd::webhooks::sign;

    fn officernd(name: &str) -> VendorConnection {
        serde_yaml::from_str(&format!(
            "apiVersion: flexgate.dev/v1alpha1
kind: VendorConnection
metadata: {{name: {name}, namespace: doors}}
spec:
  vendor: OfficeRnD
  credentialsSecretRef: {{name: {name}-credentials}}
  officernd: {{organization: example, webhookSecretKey: webhookSecret}}
"
        ))
        .expect("a connection fixture")
    }

    /// The receiver over two OfficeRnD connections, with no API client at all: whatever it
    /// answers, it answered from memory.
    fn receiver(
        keys: Arc<WebhookKeys>,
        now: DateTime<Utc>,
    ) -> (Router, mpsc::Receiver<WebhookTrigger>) {
        let (store, mut writer) = reflector::store();
        for name in ["paris", "london"] {
            writer.apply_watcher_event(&watcher::Event::Apply(officernd(name)));
        }
        let (sink, triggers) = mpsc::channel(16);
        let clock: Clock = Arc::new(move || now);
        let router = webhook_router(store, keys, sink, clock, Arc::new(Metrics::new()));
        (router, triggers)
    }

    async fn deliver(router: &Router, body: &str, signature: String) -> StatusCode {
        let request = Request::post("/webhooks/officernd")
            .header(SIGNATURE_HEADER, signature)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .expect("a request");
        router
            .clone()
            .oneshot(request)
            .await
            .expect("an answer")
            .status()
    }

    const BODY: &str = r#"{"event":"e1","eventType":"membership.created","data":{"object":{"_id":"3e3b500000000000000000aa","member":"3e3be0000000000000000017"}},"createdAt":"2026-12-06T10:00:00Z"}"#;

    #[tokio::test]
    async fn deliveries_are_verified_from_keys_in_memory_and_follow_a_rotation() {
        let now: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().expect("an instant");
        let keys = Arc::new(WebhookKeys::default());
        let (router, mut triggers) = receiver(keys.clone(), now);
        let old = Secret::new("old-signing-secret");
        let new = Secret::new("new-signing-secret");
        let t = now.timestamp();

        // Before London's key is loaded, a delivery no loaded key verifies may be London's:
        // redelivery is asked for, not a refusal.
        keys.set("doors", "paris", WebhookKey::NotConfigured);
        assert_eq!(
            deliver(&router, BODY, sign(&old, BODY.as_bytes(), t)).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        keys.set("doors", "london", WebhookKey::Signing(old.clone()));
        assert_eq!(
            deliver(&router, BODY, sign(&old, BODY.as_bytes(), t)).await,
            StatusCode::ACCEPTED
        );
        let trigger = triggers.try_recv().expect("the delivery was queued");
        assert_eq!(
            trigger.connections,
            [("doors".to_owned(), "london".to_owned())]
        );

        // Rotated: the old secret no longer opens anything, the new one does.
        keys.set("doors", "london", WebhookKey::Signing(new.clone()));
        for i in 1..=300 {
            assert_eq!(
                deliver(&router, BODY, sign(&old, BODY.as_bytes(), t - i)).await,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            deliver(&router, BODY, sign(&new, BODY.as_bytes(), t - 1)).await,
            StatusCode::ACCEPTED
        );
        assert!(triggers.try_recv().is_ok());
        assert!(
            triggers.try_recv().is_err(),
            "refused deliveries queue nothing"
        );
    }

    #[tokio::test]
    async fn keys_of_deleted_connections_are_forgotten() {
        let now: DateTime<Utc> = "2026-12-06T10:00:00Z".parse().expect("an instant");
        let keys = Arc::new(WebhookKeys::default());
        let (router, _triggers) = receiver(keys.clone(), now);
        let gone = Secret::new("deleted-connection-secret");
        keys.set("doors", "paris", WebhookKey::NotConfigured);
        keys.set("doors", "london", WebhookKey::NotConfigured);
        keys.set("doors", "deleted", WebhookKey::Signing(gone.clone()));
        assert_eq!(
            deliver(&router, BODY, sign(&gone, BODY.as_bytes(), now.timestamp())).await,
            StatusCode::UNAUTHORIZED,
            "only connections that exist verify deliveries"
        );
        assert_eq!(keys.get("doors", "deleted"), None);
    }
}
