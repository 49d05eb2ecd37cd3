//! The cluster side of the operator, as wiring: start-up (the CRDs must be served), leader
//! election and graceful shutdown, the metrics and webhook servers, and the three controllers
//! (`watches.rs`: one watch per kind, those several controllers read fanned out to them by
//! `fan_out.rs`) over the reconcile pipelines (`reconcile/`) through the cluster host
//! (`cluster.rs` and its `cluster_*` files).
//!
//! Decisions worth knowing:
//! - OfficeRnD is read through one shared picture per OfficeRnD connection (`orgs.rs`): a
//!   verified webhook is applied to it in place and only the bindings its touches can affect are
//!   reconciled; a binding reconcile evaluates only the bindings sharing one of its groups.
//! - Status is compared with what the object already says, and with what this process last
//!   wrote, before any patch; an idle resync writes nothing. `lastSyncTime` moves only when a
//!   reconcile that reached the vendor changed something (people at the vendor, or anything in
//!   the status): "when the groups last had to be brought in line", not "when flexgate last
//!   looked"; SiteMappings and connections follow the same rule (decided in `reconcile/`, so the
//!   folder host does the same).
//! - Times written into status come from the engine clock (`RunOptions::clock`, the wall clock
//!   in production, the sandbox clock in tests), in whole seconds; the deletion deadline and
//!   leases use the wall clock, because the apiserver stamps `deletionTimestamp` with it.
//! - Other bindings' evaluations include bindings being deleted until their finalizer is gone,
//!   so a deletion never makes a sibling binding trip the mass-revocation guard; the deleting
//!   binding itself revokes what it alone granted.
//! - SiteMappings are read fresh from the API at the start of each reconcile: the saved mapping
//!   and the one-time provisioning record live in their status, and the cache may not hold yet
//!   what the previous reconcile wrote.
//! - A spec change during a running SiteMapping sync waits for it to end (the essensys rule: do
//!   not reconfigure a site while a sync is in progress). kube-runtime never runs two reconciles
//!   of one object at once (its runner holds a request for an object that is being reconciled
//!   until that reconcile returns, then runs it), so the new generation is reconciled right after
//!   the running sync, never beside it. While it waits, the watch that delivered the new
//!   generation writes `Reconciling=True`, reason `Progressing`, "a sync of generation N is
//!   running; the change to generation M is applied when it ends" (a server-side apply guarded by
//!   the resourceVersion it saw, so it never overwrites a status written meanwhile). The running
//!   sync then writes its status in any case, which replaces that condition, and the reconcile
//!   of generation M follows. The window between reading the object and registering the sync is
//!   not covered: a change landing in it is still applied after the sync, just not announced.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{AccessGroupBinding, SiteMapping, VendorConnection};
use crate::clock::{system_clock, Clock};

use super::leader::{LeaderElector, LeaseConfig};
use super::reconcile::{BINDING_KIND, CONNECTION_KIND, SITE_MAPPING_KIND};
use super::server::{self, Health};
use super::telemetry::Metrics;
use super::watches::run_controllers;

/// The field manager of every status patch.
pub const FIELD_MANAGER: &str = "flexgate";

/// How `flexgate run` runs the operator.
#[derive(Clone)]
pub struct RunOptions {
    /// Watch one namespace only; `None` watches all namespaces.
    pub namespace: Option<String>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub http_addr: SocketAddr,
    /// Where `POST /webhooks/officernd` is served; `None` disables webhooks.
    pub webhook_addr: Option<SocketAddr>,
    /// Hold a Lease before writing anything (needed with more than one replica).
    pub leader_election: bool,
    /// Namespace of the leader Lease.
    pub lease_namespace: String,
    /// Name of the leader Lease.
    pub lease_name: String,
    /// This replica's identity in the Lease (the pod name).
    pub identity: String,
    /// Reconciles running at once, per controller.
    pub concurrency: u16,
    /// A deleting binding that still cannot revoke after this long (since its
    /// deletionTimestamp) is orphaned, with an Event saying so.
    pub deletion_timeout: Duration,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub min_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// The engine's "now" (who may enter at which instant) and status timestamps.
    pub clock: Clock,
    /// Where metrics are recorded (shared with the caller, e.g. tests).
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("namespace", &self.namespace)
            .field("http_addr", &self.http_addr)
            .field("webhook_addr", &self.webhook_addr)
            .field("leader_election", &self.leader_election)
            .field("lease_namespace", &self.lease_namespace)
            .field("lease_name", &self.lease_name)
            .field("identity", &self.identity)
            .field("concurrency", &self.concurrency)
            .field("deletion_timeout", &self.deletion_timeout)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// Defaults: all namespaces, HTTP on 0.0.0.0:8080, webhooks on 0.0.0.0:8443, leader
    /// election on (Lease `flexgate-leader` in `flexgate`), 8 concurrent reconciles, 2 per vendor
    /// account, 10 minutes deletion timeout, backoff 5 s to 5 min, the wall clock.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            namespace: None,
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            webhook_addr: Some(SocketAddr::from(([0, 0, 0, 0], 8443))),
            leader_election: true,
            lease_namespace: "flexgate".to_owned(),
            lease_name: "flexgate-leader".to_owned(),
            identity: identity.into(),
            concurrency: 8,
            deletion_timeout: Duration::from_secs(600),
            min_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(300),
            clock: system_clock(),
            metrics: Arc::new(Metrics::new()),
        }
    }
}

/// Why the operator stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The CRDs are not served by the cluster.
    #[error("the flexgate CRDs are not installed: kubectl apply --server-side -f crds/flexgate.yaml (missing: {})", missing.join(", "))]
    CrdsMissing {
        /// The kinds not served.
        missing: Vec<String>,
    },
    /// The API server could not be asked.
    #[error("cannot list {kind} to check that the flexgate CRDs are installed: {source}")]
    Discovery {
        /// The kind listed.
        kind: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// A listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An HTTP server failed while running.
    #[error("the {what} server failed: {source}")]
    Serve {
        /// `metrics` or `webhook`.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The leader lease was lost; the process exits so a fresh one stands for election.
    #[error("lost the leader lease (another replica took it or the API server was unreachable for the renew deadline); all writes stopped, exiting so the pod restarts and stands for election again")]
    LeadershipLost,
}

/// Listeners bound ahead of time (tests bind 127.0.0.1:0 and read the ports).
pub struct Listeners {
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http: TcpListener,
    /// `POST /webhooks/officernd`.
    pub webhook: Option<TcpListener>,
}

/// Binds the configured addresses and runs the operator until `shutdown` resolves (graceful:
/// controllers stop taking work, in-flight syncs finish, the lease is released).
pub async fn run(
    client: Client,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), OperatorError> {
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| OperatorError::Bind { addr, source })
    };
    let http = bind(options.http_addr).await?;
    let webhook = match options.webhook_addr {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    run_on(client, options, Listeners { http, webhook }, shutdown).await
}

/// As [`run`], on listeners the caller bound.
pub async fn run_on(
    client: Client,
    options: RunOptions,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), OperatorError> {
    check_crds(&client, options.namespace.as_deref()).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let metrics = options.metrics.clone();
    let health = Arc::new(Health::default());
    let http = tokio::spawn(server::serve(
        listeners.http,
        server::http_router(metrics.clone(), health.clone()),
        stopped(stop_rx.clone()),
    ));
    // Shutdown is bounded: in-flight syncs get SHUTDOWN_GRACE to finish, then they are dropped.
    // That is safe because every sync is idempotent (a crash between any two writes is
    // recovered by the next sync), and it keeps a stuck vendor call or an open keep-alive
    // connection from outliving the pod's termination grace period.
    let deadline = {
        let stop = stop_rx.clone();
        async move {
            stopped(stop).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    };
    let result = tokio::select! {
        result = lead_and_run(client, &options, health, listeners.webhook, stop_rx) => result,
        () = deadline => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight work did not finish in time after shutdown; stopping anyway (the next sync redoes it)");
            Ok(())
        }
    };
    metrics.set_leader(false);
    let http = match tokio::time::timeout(Duration::from_secs(5), http).await {
        Ok(joined) => joined,
        Err(_) => Ok(Ok(())),
    };
    match http {
        Ok(Ok(())) | Err(_) => {}
        Ok(Err(source)) => {
            return result.and(Err(OperatorError::Serve {
                what: "metrics",
                source,
            }));
        }
    }
    result
}

/// How long in-flight work may run after shutdown is requested (inside Kubernetes' default
/// 30-second termination grace period).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Resolves once `stop` is raised (or its sender is gone).
pub(super) async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|raised| *raised).await;
}

async fn lead_and_run(
    client: Client,
    options: &RunOptions,
    health: Arc<Health>,
    webhook: Option<TcpListener>,
    stop: watch::Receiver<bool>,
) -> Result<(), OperatorError> {
    if !options.leader_election {
        options.metrics.set_leader(true);
        return run_controllers(client, options, health, webhook, stop).await;
    }
    let elector = LeaderElector::new(
        client.clone(),
        LeaseConfig::new(
            &options.lease_namespace,
            &options.lease_name,
            &options.identity,
        ),
    );
    // A standby is healthy and ready: it takes over within one lease duration.
    health.set_ready(true);
    if !elector.acquire(&mut stop.clone()).await {
        return Ok(());
    }
    tracing::info!(identity = %options.identity, "acquired the leader lease");
    options.metrics.set_leader(true);
    // Not ready again until this leader's caches are filled.
    health.set_ready(false);
    let (controllers_stop_tx, controllers_stop_rx) = watch::channel(false);
    let renewer = {
        let elector = elector.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let lost = elector.keep_leading(&mut stop).await;
            let _ = controllers_stop_tx.send(true);
            lost
        })
    };
    let controllers = run_controllers(
        client,
        options,
        health,
        webhook,
        controllers_stop_rx.clone(),
    );
    tokio::pin!(controllers);
    // On a lost lease, in-flight syncs get a short grace period (well inside the lease's
    // remaining validity) and are then dropped: a new leader may start writing after that.
    let grace = {
        let stop = controllers_stop_rx.clone();
        let grace_period = elector
            .config()
            .lease_duration
            .saturating_sub(elector.config().renew_deadline)
            .saturating_sub(Duration::from_secs(1));
        async move {
            stopped(stop).await;
            tokio::time::sleep(grace_period).await;
        }
    };
    let result = tokio::select! {
        result = &mut controllers => result,
        () = grace => Ok(()),
    };
    let lost = renewer.await.unwrap_or(true);
    if lost {
        return Err(OperatorError::LeadershipLost);
    }
    if let Err(error) = elector.release().await {
        tracing::warn!(%error, "could not release the leader lease; a standby takes over when it expires");
    }
    result
}

/// Whether the SiteMapping CRD is served. It is optional: `helm upgrade` does not update CRDs,
/// so a cluster upgraded from a release without SiteMappings keeps syncing doors (with a
/// warning) instead of stopping altogether.
pub async fn serves_site_mappings(
    client: &Client,
    namespace: Option<&str>,
) -> Result<bool, OperatorError> {
    match scoped::<SiteMapping>(client, namespace)
        .list_metadata(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(source) => Err(OperatorError::Discovery {
            kind: SITE_MAPPING_KIND.to_owned(),
            source,
        }),
    }
}

/// Lists each required flexgate kind once; 404 means the CRD is not installed.
pub async fn check_crds(client: &Client, namespace: Option<&str>) -> Result<(), OperatorError> {
    let mut missing = Vec::new();
    let params = ListParams::default().limit(1);
    let checks = [
        (
            CONNECTION_KIND,
            scoped::<VendorConnection>(client, namespace)
                .list_metadata(&params)
                .await
                .map(|_| ()),
        ),
        (
            BINDING_KIND,
            scoped::<AccessGroupBinding>(client, namespace)
                .list_metadata(&params)
                .await
                .map(|_| ()),
        ),
    ];
    for (kind, result) in checks {
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => missing.push(kind.to_owned()),
            Err(source) => {
                return Err(OperatorError::Discovery {
                    kind: kind.to_owned(),
                    source,
                })
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(OperatorError::CrdsMissing { missing })
    }
}

pub(super) fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}
