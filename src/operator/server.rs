//! The operator's HTTP endpoints: `/metrics`, `/healthz`, `/readyz` on the HTTP address, and
//! `POST /webhooks/officernd` on the webhook address, verified against the webhook secret of
//! every OfficeRnD VendorConnection (so a delivery identifies its connection).

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
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

use crate::api::{Vendor, VendorConnection};
use crate::clock::Clock;
use crate::officernd::webhooks::{self, WebhookError, WebhookEvent, SIGNATURE_HEADER};

use super::credentials;
use super::telemetry::Metrics;

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
    client: Client,
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
    client: Client,
    sink: mpsc::Sender<WebhookTrigger>,
    clock: Clock,
    metrics: Arc<Metrics>,
) -> Router {
    let receiver = Arc::new(Receiver {
        connections,
        client,
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
    let mut matched = Vec::new();
    let mut event = None;
    let mut refusal = WebhookError::BadSignature;
    let mut configured = 0usize;
    for connection in receiver.connections.state() {
        if connection.spec.vendor != Vendor::OfficeRnD {
            continue;
        }
        let namespace = connection.namespace().unwrap_or_default();
        let secrets: Api<KubeSecret> = Api::namespaced(receiver.client.clone(), &namespace);
        let secret = secrets
            .get_opt(&connection.spec.credentials_secret_ref.name)
            .await
            .ok()
            .flatten();
        let Ok(credentials) = credentials::read(&connection, &namespace, secret.as_ref()) else {
            continue;
        };
        let Some(signing) = credentials::webhook_secret(&credentials) else {
            continue;
        };
        configured += 1;
        match webhooks::verify(signing, header, &body, now) {
            Ok(verified) => {
                matched.push((namespace, connection.name_any()));
                event = Some(verified);
            }
            Err(WebhookError::BadSignature) => {}
            Err(other) => refusal = other,
        }
    }
    let Some(event) = event else {
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
