//! Prometheus metrics and JSON logs for the operator. Labels carry kinds, vendors, outcomes and
//! error categories only: never an object's credentials, and never per-person data.

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A global subscriber was installed already (e.g. by a test harness).
    #[error("a log subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Installs the global log subscriber: JSON lines (with the current span and its parents, so
/// every line names the object being reconciled) or human-readable text. `RUST_LOG` filters,
/// default `info`.
pub fn init_logging(json: bool) -> Result<(), TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))
}

/// Labels of a reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `VendorConnection` or `AccessGroupBinding`.
    pub kind: String,
    /// The Ready reason the reconcile ended with, e.g. `Synced`, `VendorUnreachable`.
    pub reason: String,
}

/// Labels of an error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `VendorConnection` or `AccessGroupBinding`.
    pub kind: String,
    /// `credentials`, `vendor`, `reference`, `guard`, `kubernetes`, `spec`, `partial`.
    pub category: String,
}

/// Labels of a vendor sync (one per reconcile that reached the vendor).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VendorLabels {
    /// `OfficeRnD`, `Kisi`, `SaltoKS`, `Brivo`, `Essensys`.
    pub vendor: String,
    /// What the reconcile did: `check` (credentials check) or `sync`.
    pub verb: String,
    /// `ok` or the Ready reason of the failure.
    pub status: String,
}

/// Labels of access changes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    /// The door vendor.
    pub vendor: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    vendor_calls: Family<VendorLabels, Counter>,
    grants: Family<ChangeLabels, Counter>,
    revokes: Family<ChangeLabels, Counter>,
    change_latency: Histogram,
    status_writes: Counter,
    leader: Gauge<i64, AtomicI64>,
    webhooks: Family<WebhookLabels, Counter<u64, AtomicU64>>,
}

/// Labels of a webhook delivery.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `accepted`, `ignored` or the refusal code (`bad_signature`, `stale_timestamp`, ...).
    pub result: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding every flexgate metric (prefix `flexgate_`).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("flexgate");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles finished, by kind and the Ready reason they ended with",
            reconciles.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "errors",
            "Reconciles that ended not ready, by kind and error category",
            errors.clone(),
        );
        let vendor_calls = Family::<VendorLabels, Counter>::default();
        registry.register(
            "vendor_calls",
            "Vendor operations (credential checks and group syncs), by vendor, verb and status",
            vendor_calls.clone(),
        );
        let grants = Family::<ChangeLabels, Counter>::default();
        registry.register(
            "grants",
            "People added to a managed vendor group",
            grants.clone(),
        );
        let revokes = Family::<ChangeLabels, Counter>::default();
        registry.register(
            "revokes",
            "People removed from a managed vendor group",
            revokes.clone(),
        );
        // 0.25 s to about 17 minutes: webhooks land in seconds, timers within a second, resyncs
        // within the sync interval.
        let change_latency = Histogram::new([
            0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1020.0,
        ]);
        registry.register(
            "change_to_door_latency_seconds",
            "From an OfficeRnD change (webhook) or a scheduled access change to the sync that applied it",
            change_latency.clone(),
        );
        let status_writes = Counter::default();
        registry.register(
            "status_writes",
            "Status patches written (unchanged status is never rewritten)",
            status_writes.clone(),
        );
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease (or runs without leader election)",
            leader.clone(),
        );
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "OfficeRnD webhook deliveries, by result",
            webhooks.clone(),
        );
        Self {
            registry,
            reconciles,
            errors,
            vendor_calls,
            grants,
            revokes,
            change_latency,
            status_writes,
            leader,
            webhooks,
        }
    }

    /// Counts a finished reconcile.
    pub fn reconciled(&self, kind: &str, reason: &str) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts an error of `category`.
    pub fn error(&self, kind: &str, category: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
                category: category.to_owned(),
            })
            .inc();
    }

    /// Counts a vendor operation.
    pub fn vendor_call(&self, vendor: &str, verb: &str, status: &str) {
        self.vendor_calls
            .get_or_create(&VendorLabels {
                vendor: vendor.to_owned(),
                verb: verb.to_owned(),
                status: status.to_owned(),
            })
            .inc();
    }

    /// Counts grants and revokes applied at `vendor`.
    pub fn access_changed(&self, vendor: &str, granted: u32, revoked: u32) {
        let labels = ChangeLabels {
            vendor: vendor.to_owned(),
        };
        self.grants
            .get_or_create(&labels)
            .inc_by(u64::from(granted));
        self.revokes
            .get_or_create(&labels)
            .inc_by(u64::from(revoked));
    }

    /// Records how long a change took to reach the doors.
    pub fn change_latency(&self, seconds: f64) {
        self.change_latency.observe(seconds.max(0.0));
    }

    /// Counts a status patch.
    pub fn status_written(&self) {
        self.status_writes.inc();
    }

    /// Sets whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Counts a webhook delivery.
    pub fn webhook(&self, result: &str) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Total reconciles of `kind` so far, whatever their outcome (for tests and readiness).
    pub fn reconciles_of(&self, kind: &str) -> u64 {
        let text = self.encode();
        let prefix = format!("flexgate_reconciles_total{{kind=\"{kind}\"");
        text.lines()
            .filter(|line| line.starts_with(&prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Status patches written so far.
    pub fn status_writes(&self) -> u64 {
        self.status_writes.get()
    }
}

/// The error category of a Ready reason, for the `errors` metric.
pub fn category(reason: crate::api::conditions::Reason) -> &'static str {
    use crate::api::conditions::Reason;
    match reason {
        Reason::SecretNotFound | Reason::CredentialsInvalid => "credentials",
        Reason::VendorUnreachable => "vendor",
        Reason::ReferenceNotFound | Reason::AmbiguousReference => "reference",
        Reason::UnmanagedGroup | Reason::MassRevocationBlocked => "guard",
        Reason::InvalidSpec | Reason::FrozenMappingChanged | Reason::AwaitingApproval => "spec",
        Reason::PartialFailure => "partial",
        Reason::Synced
        | Reason::Planned
        | Reason::Progressing
        | Reason::Suspended
        | Reason::Deleting
        | Reason::NoPublishedApi => "none",
    }
}
