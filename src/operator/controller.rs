//! The cluster side of the operator: kube-runtime controllers for VendorConnections,
//! AccessGroupBindings and SiteMappings, their triggers (spec changes, the reconcile-request
//! annotation, referenced Secrets and connections, OfficeRnD webhooks, the engine's next change,
//! periodic resync), status by server-side apply, Events, the cleanup finalizer, leader election
//! and graceful shutdown.
//!
//! Decisions worth knowing:
//! - OfficeRnD is read through one shared picture per OfficeRnD connection (`orgs.rs`): a
//!   verified webhook is applied to it in place and only the bindings its touches can affect are
//!   reconciled; a binding reconcile evaluates only the bindings sharing one of its groups.
//! - Status is compared with what the object already says, and with what this process last
//!   wrote, before any patch; an idle resync writes nothing. `lastSyncTime` moves only when a reconcile that reached the vendor changed
//!   something (people at the vendor, or anything in the status); it is "when the groups last
//!   had to be brought in line", not "when flexgate last looked". SiteMappings follow the same
//!   rule: a sync that wrote nothing to essensys keeps the previous `lastSyncTime`.
//! - Times written into status come from the engine clock (`RunOptions::clock`, the wall clock
//!   in production, the sandbox clock in tests); the deletion deadline and leases use the wall
//!   clock, because the apiserver stamps `deletionTimestamp` with it.
//! - Other bindings' evaluations include bindings being deleted until their finalizer is gone,
//!   so a deletion never makes a sibling binding trip the mass-revocation guard; the deleting
//!   binding itself revokes what it alone granted.
//! - SiteMappings are read fresh from the API at the start of each reconcile: the saved mapping
//!   and the one-time provisioning record live in their status, and the cache may not hold yet
//!   what the previous reconcile wrote. A SiteMapping has no finalizer: deleting it stops the
//!   sync and leaves the essensys site as it is.
//! - A spec change during a running SiteMapping sync waits for it to end (the essensys rule: do
//!   not reconfigure a site while a sync is in progress). kube-runtime never runs two reconciles
//!   of one object at once (its runner holds a request for an object that is being reconciled
//!   until that reconcile returns, then runs it), so the new generation is reconciled right after
//!   the running sync, never beside it. While it waits, the watch that delivered the new
//!   generation writes `Reconciling=True`, reason `Progressing`, "a sync of generation N is
//!   running; the change to generation M is applied when it ends" (a server-side apply guarded by the
//!   resourceVersion it saw, so it never overwrites a status written meanwhile). The running
//!   sync then writes its status in any case, which replaces that condition, and the reconcile
//!   of generation M follows. The window between reading the object and registering the sync is
//!   not covered: a change landing in it is still applied after the sync, just not announced.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{stream, FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource, ResourceExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::api::access_group_binding::DeletionPolicy;
use crate::api::conditions::{self as vocabulary, Reason, RECONCILING};
use crate::api::vendor_connection::{AccountSummary, DEFAULT_SYNC_INTERVAL};
use crate::api::{
    AccessGroupBinding, AccessGroupBindingStatus, SiteMapping, SiteMappingStatus, Vendor,
    VendorConnection, VendorConnectionStatus, ACKNOWLEDGE_REVOCATION, FINALIZER,
    RECONCILE_REQUESTED_AT,
};
use crate::clock::{system_clock, Clock};

use super::binding::BindingResult;
use super::clients::DoorClient;
use super::context::Context;
use super::credentials;
use super::desired;
use super::door_cache::{CachedDoor, DirectoryCache};
use super::finalizer;
use super::leader::{LeaderElector, LeaseConfig};
use super::objects::Objects;
use super::orgs::{Applied, OrgCache, OrgView};
use super::runner::{self, ClientCache};
use super::server::{self, Health, WebhookTrigger};
use super::site_mapping::{self as site_sync, SiteMappingResult};
use super::status::{self, Outcome};
use super::status_writer;
use super::telemetry::{self, Metrics};
use super::webhook_keys::{WebhookKey, WebhookKeys};

/// The field manager of every status patch.
pub const FIELD_MANAGER: &str = "flexgate";
const BINDING_KIND: &str = "AccessGroupBinding";
const CONNECTION_KIND: &str = "VendorConnection";
const SITE_MAPPING_KIND: &str = "SiteMapping";

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
async fn stopped(mut stop: watch::Receiver<bool>) {
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

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// Why a reconcile failed (the status says why in words a person can act on; this is for the
/// controller's backoff and logs).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The Kubernetes API refused or failed a call.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A bug: the reconcile panicked. Only this object's reconcile failed; it is retried with
    /// backoff and the process keeps serving every other object.
    #[error("internal error (a bug, please report it): {0}")]
    Panicked(String),
    /// The operator is stopping before its caches were filled; nothing was read or written.
    #[error("the operator is stopping")]
    Stopping,
    /// Revoking a deleted binding's access failed; retried until the deletion timeout.
    #[error("revoking the access of a deleted binding failed: {0}")]
    Cleanup(String),
}

/// Shared by the controllers.
struct Ctx {
    client: Client,
    /// Raised once every store the reconcilers read holds its initial list: until then a
    /// reconcile would see missing connections or sibling bindings and report (or act on) a
    /// world that is not there.
    caches: watch::Receiver<bool>,
    connections: Store<VendorConnection>,
    bindings: Store<AccessGroupBinding>,
    clients: Mutex<ClientCache>,
    /// One shared OfficeRnD picture per OfficeRnD connection.
    orgs: OrgCache,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    clock: Clock,
    deletion_timeout: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    failures: Mutex<HashMap<(String, String, String), u32>>,
    /// One sync or cleanup at a time per vendor account, by (namespace, vendor connection).
    /// Bindings sharing a group, or a person new to the account, would otherwise race: two
    /// syncs would both create that person (Kisi refuses the second, "email has already been
    /// taken") or both add them to the group (Kisi keeps both rows). The account's rate limit,
    /// not this, bounds a sync's speed.
    accounts: Mutex<HashMap<(String, String), AccountLock>>,
    /// When a webhook asked for each binding's reconcile, for the latency histogram.
    triggered: Mutex<HashMap<(String, String), tokio::time::Instant>>,
    /// SiteMapping reconciles in flight, by (namespace, name).
    site_syncs: Mutex<HashMap<(String, String), SiteSync>>,
    /// The status last written per (kind, namespace, name). The object a reconcile receives can
    /// predate our own previous status write (the watch has not delivered it yet); comparing
    /// with what we wrote keeps an idle reconcile from writing the same status again.
    written: Mutex<HashMap<StatusKey, u64>>,
    /// The OfficeRnD webhook keys, kept current by the connection reconciler.
    webhook_keys: Arc<WebhookKeys>,
}

type StatusKey = (&'static str, String, String);

/// The sync lock of one vendor account.
type AccountLock = Arc<tokio::sync::Mutex<()>>;

/// How often the per-object maps are pruned of deleted objects.
const PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);

fn forget_deleted(
    failures: &mut HashMap<(String, String, String), u32>,
    written: &mut HashMap<StatusKey, u64>,
    triggered: &mut HashMap<(String, String), tokio::time::Instant>,
    accounts: &mut HashMap<(String, String), AccountLock>,
    exists: impl Fn(&str, &str, &str) -> bool,
) {
    failures.retain(|(kind, namespace, name), _| exists(kind, namespace, name));
    written.retain(|(kind, namespace, name), _| exists(kind, namespace, name));
    triggered.retain(|(namespace, name), _| exists(BINDING_KIND, namespace, name));
    accounts.retain(|(namespace, name), account| {
        exists(CONNECTION_KIND, namespace, name) || Arc::strong_count(account) > 1
    });
}

fn status_hash<S: serde::Serialize>(status: &S) -> Option<u64> {
    let json = serde_json::to_string(status).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut hasher);
    Some(hasher.finish())
}

/// A SiteMapping reconcile in flight.
#[derive(Debug, Clone, Copy)]
struct SiteSync {
    /// The generation it reconciles.
    generation: Option<i64>,
    /// Whether a newer generation was announced as waiting in status meanwhile (then the
    /// reconcile writes its status even when it is otherwise unchanged, replacing that note).
    announced: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ctx {
    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Waits until every store holds its initial list (immediate afterwards).
    async fn caches_ready(&self) -> Result<(), ReconcileError> {
        let mut caches = self.caches.clone();
        caches
            .wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| ReconcileError::Stopping)
    }

    /// Forgets what the per-object maps hold for objects that no longer exist (`exists` says
    /// which do), so a long-running operator's memory follows the objects it manages. An
    /// account lock someone still holds is kept.
    fn forget_deleted(&self, exists: impl Fn(&str, &str, &str) -> bool) {
        forget_deleted(
            &mut lock(&self.failures),
            &mut lock(&self.written),
            &mut lock(&self.triggered),
            &mut lock(&self.accounts),
            exists,
        );
    }

    /// The sync lock of the binding's vendor account.
    fn account_lock(&self, binding: &AccessGroupBinding) -> AccountLock {
        let account = (
            binding.namespace().unwrap_or_default(),
            binding.spec.vendor_ref.name.clone(),
        );
        lock(&self.accounts).entry(account).or_default().clone()
    }

    /// The next delay after a failure of `kind` `namespace/name` (exponential, with jitter).
    fn backoff(&self, kind: &str, namespace: &str, name: &str) -> Duration {
        let mut failures = lock(&self.failures);
        let count = failures
            .entry((kind.to_owned(), namespace.to_owned(), name.to_owned()))
            .or_insert(0);
        *count = count.saturating_add(1);
        let factor = 2u32.saturating_pow(count.saturating_sub(1).min(16));
        let delay = self
            .min_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        jitter(delay)
    }

    fn succeeded(&self, kind: &str, namespace: &str, name: &str) {
        lock(&self.failures).remove(&(kind.to_owned(), namespace.to_owned(), name.to_owned()));
    }

    /// The connections of `namespace`, from the cache.
    fn connections_in(&self, namespace: &str) -> Vec<VendorConnection> {
        self.connections
            .state()
            .iter()
            .filter(|c| c.namespace().as_deref() == Some(namespace))
            .map(|c| (**c).clone())
            .collect()
    }

    /// The connections of `namespace` from the cache, and the Secrets of the named connections
    /// read fresh from the API (a rotated Secret is used at once).
    async fn objects(
        &self,
        namespace: &str,
        bindings: Vec<AccessGroupBinding>,
        secret_of: Vec<String>,
    ) -> Result<Objects, kube::Error> {
        let connections = self.connections_in(namespace);
        let api: Api<KubeSecret> = Api::namespaced(self.client.clone(), namespace);
        let mut secrets = BTreeMap::new();
        for name in secret_of {
            let Some(connection) = connections.iter().find(|c| c.name_any() == name) else {
                continue;
            };
            let secret_name = &connection.spec.credentials_secret_ref.name;
            if let Some(secret) = api.get_opt(secret_name).await? {
                secrets.insert((namespace.to_owned(), secret_name.clone()), secret);
            }
        }
        Ok(Objects {
            connections,
            bindings,
            site_mappings: Vec::new(),
            secrets,
        })
    }

    /// Whether `status` is exactly what was last written for `key` (compared by a hash of its
    /// JSON, so hundreds of statuses cost a few kilobytes).
    fn last_written<S: serde::Serialize>(&self, key: &StatusKey, status: &S) -> bool {
        status_hash(status).is_some_and(|hash| lock(&self.written).get(key) == Some(&hash))
    }

    fn remember_written<S: serde::Serialize>(&self, key: StatusKey, status: &S) {
        if let Some(hash) = status_hash(status) {
            lock(&self.written).insert(key, hash);
        }
    }

    /// The bindings of `namespace` as a reconcile reads them: metadata and spec, without status
    /// and managed fields (with hundreds of bindings, each reconcile would otherwise copy them
    /// all).
    fn siblings(&self, namespace: &str) -> Vec<AccessGroupBinding> {
        self.bindings
            .state()
            .iter()
            .filter(|b| b.namespace().as_deref() == Some(namespace))
            .map(|b| {
                let mut metadata = b.metadata.clone();
                metadata.managed_fields = None;
                AccessGroupBinding {
                    metadata,
                    spec: b.spec.clone(),
                    status: None,
                }
            })
            .collect()
    }

    /// The shared picture of the binding's OfficeRnD organization, read whole at most once per
    /// `syncInterval` of that connection.
    async fn org_view(
        &self,
        objects: &Objects,
        namespace: &str,
        binding: &AccessGroupBinding,
    ) -> Result<OrgView, BindingResult> {
        let name = &binding.spec.officernd_ref.name;
        let max_age = sync_interval(objects.connection(namespace, name));
        self.orgs
            .view(objects, namespace, name, max_age)
            .await
            .map_err(|error| {
                BindingResult::not_ready(
                    error.reason,
                    format!("OfficeRnD connection {namespace}/{name}: {error}"),
                )
            })
    }

    fn door(
        &self,
        objects: &Objects,
        namespace: &str,
        name: &str,
    ) -> Result<(Arc<DoorClient>, Arc<DirectoryCache>), (Reason, String)> {
        lock(&self.clients).door_shared(objects, namespace, name, &self.clock)
    }

    async fn publish(&self, object: &impl Resource<DynamicType = ()>, event: Event) {
        let reference = object.object_ref(&());
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, reason = %event.reason, "could not publish an Event");
        }
    }
}

/// Runs one reconcile with its panics contained: a bug met by one object (an input nobody
/// foresaw) becomes that object's error instead of taking down the process, and with it every
/// other object's sync.
fn contained<F>(reconcile: F) -> impl Future<Output = Result<Action, ReconcileError>>
where
    F: Future<Output = Result<Action, ReconcileError>>,
{
    std::panic::AssertUnwindSafe(reconcile)
        .catch_unwind()
        .map(|result| {
            result.unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                tracing::error!(%message, "a reconcile panicked; the object is retried with backoff");
                Err(ReconcileError::Panicked(message))
            })
        })
}

/// When a binding finds its vendor account's sync slot taken, it tries again after this.
const ACCOUNT_BUSY_RETRY: Duration = Duration::from_millis(500);

/// ±10 % jitter, so objects created together do not resync together.
fn jitter(delay: Duration) -> Duration {
    let spread = delay.as_secs_f64() * 0.1;
    let offset = (fastrand::f64() * 2.0 - 1.0) * spread;
    Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0))
}

/// The connection's `syncInterval` (see [`VendorConnectionSpec::sync_interval`]).
fn sync_interval(connection: Option<&VendorConnection>) -> Duration {
    connection.map_or(DEFAULT_SYNC_INTERVAL, |c| c.spec.sync_interval())
}

/// Seconds-precision, as the API server stores times: a status written and read back compares
/// equal.
fn status_time(at: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(at.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// What passes the trigger filter: a spec change (generation), a new reconcile-request or
/// acknowledgement annotation, and the start of a deletion. Status writes do not.
fn spec_or_request<K: Resource>(object: &K) -> Option<u64> {
    let meta = object.meta();
    let annotations = meta.annotations.as_ref();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    annotations
        .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
        .hash(&mut hasher);
    annotations
        .and_then(|a| a.get(ACKNOWLEDGE_REVOCATION))
        .hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// The objects of a watch whose spec or request annotations changed (see [`spec_or_request`]),
/// and every deleted one: `predicate_filter` drops deletions (a deleted object carries the
/// generation already seen), so the bindings of a deleted connection would go on saying Synced.
fn changed_or_deleted<K>(
    events: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let mut seen: HashMap<ObjectRef<K>, Option<u64>> = HashMap::new();
    events.flat_map(move |event| {
        let passed = match event {
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                let hash = spec_or_request(&object);
                let before = seen.insert(ObjectRef::from_obj(&object), hash);
                (before != Some(hash)).then_some(Ok(object))
            }
            Ok(watcher::Event::Delete(object)) => {
                seen.remove(&ObjectRef::from_obj(&object));
                Some(Ok(object))
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
            Err(error) => Some(Err(error)),
        };
        stream::iter(passed)
    })
}

/// Bindings in `namespace` that read from or write to the connection `name`.
fn bindings_of_connection(
    bindings: &Store<AccessGroupBinding>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<AccessGroupBinding>> {
    bindings
        .state()
        .iter()
        .filter(|b| {
            b.namespace().as_deref() == Some(namespace)
                && (b.spec.officernd_ref.name == name || b.spec.vendor_ref.name == name)
        })
        .map(|b| ObjectRef::from_obj(b.as_ref()))
        .collect()
}

/// SiteMappings in `namespace` that read from or write to the connection `name`.
fn mappings_of_connection(
    mappings: &Store<SiteMapping>,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<SiteMapping>> {
    mappings
        .state()
        .iter()
        .filter(|m| {
            m.namespace().as_deref() == Some(namespace)
                && (m.spec.officernd_ref.name == name || m.spec.essensys_ref.name == name)
        })
        .map(|m| ObjectRef::from_obj(m.as_ref()))
        .collect()
}

/// Connections in `namespace` whose credentials live in the Secret `secret`.
fn connections_of_secret(
    connections: &Store<VendorConnection>,
    namespace: &str,
    secret: &str,
) -> Vec<Arc<VendorConnection>> {
    connections
        .state()
        .into_iter()
        .filter(|c| {
            c.namespace().as_deref() == Some(namespace)
                && c.spec.credentials_secret_ref.name == secret
        })
        .collect()
}

/// Applies a verified OfficeRnD change to the shared picture of each connection it came for, and
/// returns the bindings whose answer it may change (every binding of the connection when it could
/// not be applied in place). Each is timed from now for the change-to-door latency histogram.
async fn bindings_to_reconcile(
    ctx: &Ctx,
    trigger: &WebhookTrigger,
) -> Vec<ObjectRef<AccessGroupBinding>> {
    let mut refs = Vec::new();
    for (namespace, name) in &trigger.connections {
        let of_connection: Vec<Arc<AccessGroupBinding>> = ctx
            .bindings
            .state()
            .into_iter()
            .filter(|b| {
                b.namespace().as_deref() == Some(namespace.as_str())
                    && b.spec.officernd_ref.name == *name
            })
            .collect();
        let applied = ctx.orgs.apply(namespace, name, &trigger.event).await;
        let chosen: Vec<&Arc<AccessGroupBinding>> = match &applied {
            Applied::Nothing => Vec::new(),
            Applied::Everything(_) => of_connection.iter().collect(),
            Applied::Touched(touched, view) => {
                let objects = Objects {
                    connections: ctx.connections_in(namespace),
                    bindings: Vec::new(),
                    site_mappings: Vec::new(),
                    secrets: BTreeMap::new(),
                };
                let bindings: Vec<&AccessGroupBinding> =
                    of_connection.iter().map(AsRef::as_ref).collect();
                let context = Context::new(
                    format!("{namespace}/{name}"),
                    view.index.clone(),
                    view.members,
                    &objects,
                    &bindings,
                );
                let mut keys: Vec<&crate::engine::BindingKey> = context
                    .index
                    .affected_bindings(&context.bindings, touched)
                    .into_iter()
                    .filter_map(|position| context.bindings.get(position).map(|b| &b.key))
                    .collect();
                // A binding that cannot be mapped is reconciled too: its status says why.
                keys.extend(context.binding_errors.iter().map(|(key, _)| key));
                of_connection
                    .iter()
                    .filter(|b| keys.contains(&&desired::binding_key(b)))
                    .collect()
            }
        };
        for binding in chosen {
            lock(&ctx.triggered)
                .entry((namespace.clone(), binding.name_any()))
                .or_insert_with(tokio::time::Instant::now);
            refs.push(ObjectRef::from_obj(binding.as_ref()));
        }
        tracing::info!(event = %trigger.event.event_type, connection = %format!("{namespace}/{name}"), bindings = refs.len(), of = of_connection.len(), "OfficeRnD change applied: reconciling the bindings it may affect");
    }
    refs
}

async fn run_controllers(
    client: Client,
    options: &RunOptions,
    health: Arc<Health>,
    webhook_listener: Option<TcpListener>,
    stop: watch::Receiver<bool>,
) -> Result<(), OperatorError> {
    let namespace = options.namespace.as_deref();
    let connections_api = scoped::<VendorConnection>(&client, namespace);
    let bindings_api = scoped::<AccessGroupBinding>(&client, namespace);
    let mappings_api = scoped::<SiteMapping>(&client, namespace);
    let site_mappings_served = serves_site_mappings(&client, namespace).await?;
    if !site_mappings_served {
        tracing::warn!("the SiteMapping CRD is not installed, so SiteMappings are not reconciled: kubectl apply --server-side -f crds/flexgate.yaml");
    }
    let secrets_api: Api<PartialObjectMeta<KubeSecret>> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let watch_config = watcher::Config::default();

    // Each controller reflects its own watches: the binding controller also needs every
    // connection (to map Secrets and connection changes onto bindings), the connection
    // controller its own objects.
    let (binding_reader, binding_writer) = reflector::store();
    // Managed fields (a kilobyte or two per object, three managers each) are never read: they
    // are dropped before the cache keeps hundreds of bindings.
    let bindings_stream = watcher(bindings_api.clone(), watch_config.clone())
        .default_backoff()
        .modify(|binding| binding.managed_fields_mut().clear())
        .reflect(binding_writer)
        .applied_objects()
        .predicate_filter(spec_or_request, Default::default());
    let (connection_reader, connection_writer) = reflector::store();
    let connections_for_bindings = changed_or_deleted(
        watcher(connections_api.clone(), watch_config.clone())
            .default_backoff()
            .reflect(connection_writer),
    );
    let (own_connection_reader, own_connection_writer) = reflector::store();
    let connections_stream = watcher(connections_api.clone(), watch_config.clone())
        .default_backoff()
        .reflect(own_connection_writer)
        .applied_objects()
        .predicate_filter(spec_or_request, Default::default());
    let connections_for_mappings = changed_or_deleted(
        watcher(connections_api.clone(), watch_config.clone()).default_backoff(),
    );
    let (mapping_reader, mapping_writer) = reflector::store();

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: Some(options.identity.clone()),
        },
    );
    // After each whole OfficeRnD read, its connection's check runs again to report the count.
    let (org_read_tx, org_read_rx) = mpsc::unbounded_channel::<(String, String)>();
    let org_reads = stream::unfold(org_read_rx, |mut rx| async move {
        let (namespace, name) = rx.recv().await?;
        Some((
            ObjectRef::<VendorConnection>::new(&name).within(&namespace),
            rx,
        ))
    });
    let (caches_tx, caches_rx) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        caches: caches_rx.clone(),
        connections: connection_reader.clone(),
        bindings: binding_reader.clone(),
        clients: Mutex::new(ClientCache::default()),
        orgs: OrgCache::new(options.clock.clone()).notify_reads(org_read_tx),
        recorder,
        metrics: options.metrics.clone(),
        clock: options.clock.clone(),
        deletion_timeout: options.deletion_timeout,
        min_backoff: options.min_backoff,
        max_backoff: options.max_backoff,
        failures: Mutex::new(HashMap::new()),
        accounts: Mutex::new(HashMap::new()),
        triggered: Mutex::new(HashMap::new()),
        site_syncs: Mutex::new(HashMap::new()),
        written: Mutex::new(HashMap::new()),
        webhook_keys: Arc::new(WebhookKeys::default()),
    });

    // SiteMappings: a new generation that arrives while a sync of the mapping runs is announced
    // in status (it is reconciled when that sync ends; see the module doc).
    let mappings_stream = {
        let ctx = ctx.clone();
        watcher(mappings_api, watch_config.clone())
            .default_backoff()
            .reflect(mapping_writer)
            .applied_objects()
            .predicate_filter(spec_or_request, Default::default())
            .inspect_ok(move |mapping| announce_waiting_change(&ctx, mapping))
    };

    // Webhooks: verified deliveries name their OfficeRnD connection; its bindings and
    // SiteMappings reconcile.
    let (webhook_tx, mut webhook_rx) = mpsc::channel::<WebhookTrigger>(256);
    // Deliveries wait in the listen queue until the caches are filled: a connection missing
    // from a half-filled cache would refuse a valid delivery.
    let webhook_server = webhook_listener.map(|listener| {
        let router = server::webhook_router(
            connection_reader.clone(),
            ctx.webhook_keys.clone(),
            webhook_tx.clone(),
            options.clock.clone(),
            options.metrics.clone(),
        );
        let mut caches = caches_rx.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            if caches.wait_for(|ready| *ready).await.is_err() {
                return Ok(());
            }
            server::serve(listener, router, stopped(stop)).await
        })
    });
    drop(webhook_tx);
    // Fan each delivery out to both controllers. A full controller queue holds the fan-out,
    // which fills the receiver's queue, so the webhook server still answers 503 under overload.
    let (binding_webhook_tx, binding_webhook_rx) = mpsc::channel::<WebhookTrigger>(256);
    let (mapping_webhook_tx, mapping_webhook_rx) = mpsc::channel::<WebhookTrigger>(256);
    tokio::spawn(async move {
        while let Some(trigger) = webhook_rx.recv().await {
            // A controller that has stopped no longer listens; the other one still may.
            let _ = binding_webhook_tx.send(trigger.clone()).await;
            if site_mappings_served {
                let _ = mapping_webhook_tx.send(trigger).await;
            }
        }
    });
    let mapping_webhook_triggers = {
        let mappings = mapping_reader.clone();
        stream::unfold(mapping_webhook_rx, |mut rx| async move {
            rx.recv().await.map(|trigger| (trigger, rx))
        })
        .flat_map(move |trigger: WebhookTrigger| {
            // Events about nothing a site sync reads (invoices, fees...) reconcile nothing.
            let relevant = !trigger.event.affected.is_empty();
            let refs: Vec<ObjectRef<SiteMapping>> = trigger
                .connections
                .iter()
                .filter(|_| relevant)
                .flat_map(|(namespace, name)| {
                    mappings
                        .state()
                        .iter()
                        .filter(|m| {
                            m.namespace().as_deref() == Some(namespace.as_str())
                                && m.spec.officernd_ref.name == *name
                        })
                        .map(|m| ObjectRef::from_obj(m.as_ref()))
                        .collect::<Vec<_>>()
                })
                .collect();
            tracing::info!(event = %trigger.event.event_type, site_mappings = refs.len(), "OfficeRnD change: reconciling the SiteMappings of its connection");
            stream::iter(refs)
        })
    };
    let webhook_triggers = {
        let ctx = ctx.clone();
        stream::unfold(binding_webhook_rx, move |mut rx| {
            let ctx = ctx.clone();
            async move {
                let trigger = rx.recv().await?;
                let refs = bindings_to_reconcile(&ctx, &trigger).await;
                Some((stream::iter(refs), rx))
            }
        })
        .flatten()
    };

    let secret_triggers_for_bindings = watcher(secrets_api.clone(), watch_config.clone())
        .default_backoff()
        .touched_objects();
    let secret_triggers_for_connections = watcher(secrets_api.clone(), watch_config.clone())
        .default_backoff()
        .touched_objects();
    let secret_triggers_for_mappings = watcher(secrets_api, watch_config.clone())
        .default_backoff()
        .touched_objects();

    let controller_config = controller::Config::default().concurrency(options.concurrency.max(1));

    let binding_controller = {
        let bindings_for_connections = binding_reader.clone();
        let bindings_for_secrets = binding_reader.clone();
        let connections = connection_reader.clone();
        Controller::for_stream(bindings_stream, binding_reader.clone())
            .with_config(controller_config.clone())
            .watches_stream(
                connections_for_bindings,
                move |connection: VendorConnection| {
                    bindings_of_connection(
                        &bindings_for_connections,
                        &connection.namespace().unwrap_or_default(),
                        &connection.name_any(),
                    )
                },
            )
            .watches_stream(secret_triggers_for_bindings, move |secret| {
                let namespace = secret.namespace().unwrap_or_default();
                connections_of_secret(&connections, &namespace, &secret.name_any())
                    .iter()
                    .flat_map(|c| {
                        bindings_of_connection(&bindings_for_secrets, &namespace, &c.name_any())
                    })
                    .collect::<Vec<_>>()
            })
            .reconcile_on(webhook_triggers)
            .graceful_shutdown_on(stopped(stop.clone()))
            .run(reconcile_binding, binding_error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "binding controller");
                }
            })
    };
    let own_connection_reader_for_gate = own_connection_reader.clone();
    let mapping_reader_for_gate = mapping_reader.clone();
    let mapping_reader_for_pruning = mapping_reader.clone();
    let connection_controller = {
        let connections = own_connection_reader.clone();
        Controller::for_stream(connections_stream, own_connection_reader)
            .with_config(controller_config.clone())
            .watches_stream(secret_triggers_for_connections, move |secret| {
                let namespace = secret.namespace().unwrap_or_default();
                connections_of_secret(&connections, &namespace, &secret.name_any())
                    .iter()
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect::<Vec<_>>()
            })
            .reconcile_on(org_reads)
            .graceful_shutdown_on(stopped(stop.clone()))
            .run(reconcile_connection, connection_error_policy, ctx.clone())
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection controller");
                }
            })
    };
    let mapping_controller = {
        let mappings_for_connections = mapping_reader.clone();
        let mappings_for_secrets = mapping_reader.clone();
        let connections = connection_reader.clone();
        let controller = Controller::for_stream(mappings_stream, mapping_reader)
            .with_config(controller_config)
            .watches_stream(
                connections_for_mappings,
                move |connection: VendorConnection| {
                    mappings_of_connection(
                        &mappings_for_connections,
                        &connection.namespace().unwrap_or_default(),
                        &connection.name_any(),
                    )
                },
            )
            .watches_stream(secret_triggers_for_mappings, move |secret| {
                let namespace = secret.namespace().unwrap_or_default();
                connections_of_secret(&connections, &namespace, &secret.name_any())
                    .iter()
                    .flat_map(|c| {
                        mappings_of_connection(&mappings_for_secrets, &namespace, &c.name_any())
                    })
                    .collect::<Vec<_>>()
            })
            .reconcile_on(mapping_webhook_triggers)
            .graceful_shutdown_on(stopped(stop.clone()))
            .run(
                reconcile_site_mapping,
                site_mapping_error_policy,
                ctx.clone(),
            )
            .for_each(|result| async move {
                if let Err(error) = result {
                    tracing::debug!(%error, "site mapping controller");
                }
            });
        async move {
            if site_mappings_served {
                controller.await;
            } else {
                drop(controller);
            }
        }
    };
    // The gate: every reconcile waits for it, and `/readyz` follows it.
    let caches_filled = {
        let stores = (
            connection_reader.clone(),
            own_connection_reader_for_gate,
            binding_reader.clone(),
            mapping_reader_for_gate,
        );
        let mut stop = stop.clone();
        async move {
            let filled = async {
                stores.0.wait_until_ready().await.is_ok()
                    && stores.1.wait_until_ready().await.is_ok()
                    && stores.2.wait_until_ready().await.is_ok()
                    && (!site_mappings_served || stores.3.wait_until_ready().await.is_ok())
            };
            tokio::select! {
                filled = filled => if filled {
                    tracing::info!("caches filled: reconciling");
                    let _ = caches_tx.send(true);
                    health.set_ready(true);
                },
                _ = stop.wait_for(|raised| *raised) => {}
            }
        }
    };
    let pruning = {
        let (ctx, bindings, connections, mappings) = (
            ctx.clone(),
            binding_reader.clone(),
            connection_reader.clone(),
            mapping_reader_for_pruning,
        );
        let mut stop = stop.clone();
        async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(PRUNE_INTERVAL) => {}
                    _ = stop.wait_for(|raised| *raised) => return,
                }
                ctx.forget_deleted(|kind, namespace, name| match kind {
                    BINDING_KIND => bindings
                        .get(&ObjectRef::new(name).within(namespace))
                        .is_some(),
                    CONNECTION_KIND => connections
                        .get(&ObjectRef::new(name).within(namespace))
                        .is_some(),
                    SITE_MAPPING_KIND => mappings
                        .get(&ObjectRef::new(name).within(namespace))
                        .is_some(),
                    _ => true,
                });
            }
        }
    };
    tracing::info!(namespace = ?options.namespace, "controllers started; waiting for the caches");
    futures::join!(
        caches_filled,
        binding_controller,
        connection_controller,
        mapping_controller,
        pruning
    );
    tracing::info!("controllers stopped");
    if let Some(server) = webhook_server {
        if let Ok(Err(source)) = server.await {
            return Err(OperatorError::Serve {
                what: "webhook",
                source,
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// AccessGroupBinding

fn reconcile_binding(
    binding: Arc<AccessGroupBinding>,
    ctx: Arc<Ctx>,
) -> futures::future::BoxFuture<'static, Result<Action, ReconcileError>> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "reconcile",
        kind = BINDING_KIND,
        namespace = %binding.namespace().unwrap_or_default(),
        name = %binding.name_any()
    );
    contained(reconcile_binding_inner(binding, ctx))
        .instrument(span)
        .boxed()
}

async fn reconcile_binding_inner(
    binding: Arc<AccessGroupBinding>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    ctx.caches_ready().await?;
    let namespace = binding.namespace().unwrap_or_default();
    let name = binding.name_any();
    let api: Api<AccessGroupBinding> = Api::namespaced(ctx.client.clone(), &namespace);
    let has_finalizer = binding.finalizers().iter().any(|f| f == FINALIZER);
    if binding.meta().deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::await_change());
        }
        // The finalizer stays until the cleanup succeeded (or gave up and orphaned).
        let action = cleanup_binding(ctx, binding).await?;
        finalizer::remove(&api, &name, FINALIZER).await?;
        return Ok(action);
    }
    // Before anything is granted, so that a deletion always gets to revoke it.
    if !has_finalizer {
        finalizer::add(&api, &name, FINALIZER).await?;
    }
    apply_binding(ctx, binding).await
}

fn binding_error_policy(
    binding: Arc<AccessGroupBinding>,
    error: &ReconcileError,
    ctx: Arc<Ctx>,
) -> Action {
    let namespace = binding.namespace().unwrap_or_default();
    tracing::warn!(%error, namespace, name = binding.name_any(), "binding reconcile failed; retrying with backoff");
    ctx.metrics.error(BINDING_KIND, "kubernetes");
    Action::requeue(ctx.backoff(BINDING_KIND, &namespace, &binding.name_any()))
}

/// Suspension of the binding or of either connection, found before anything is read.
fn suspension(binding: &AccessGroupBinding, objects: &Objects, namespace: &str) -> Option<String> {
    if binding.spec.suspend {
        return Some("spec.suspend is true: nothing is read or written".to_owned());
    }
    for name in [
        &binding.spec.officernd_ref.name,
        &binding.spec.vendor_ref.name,
    ] {
        if objects
            .connection(namespace, name)
            .is_some_and(|c| c.spec.suspend)
        {
            return Some(format!(
                "VendorConnection {namespace}/{name} is suspended: nothing is read or written"
            ));
        }
    }
    None
}

async fn apply_binding(
    ctx: Arc<Ctx>,
    binding: Arc<AccessGroupBinding>,
) -> Result<Action, ReconcileError> {
    let ctx = ctx.as_ref();
    let binding = binding.as_ref();
    let namespace = binding.namespace().unwrap_or_default();
    let name = binding.name_any();
    let Ok(_account) = ctx.account_lock(binding).try_lock_owned() else {
        // The account is busy (another sync, or a slow or failing vendor): come back shortly
        // without holding one of the controller's slots, so other accounts keep going.
        return Ok(Action::requeue(jitter(ACCOUNT_BUSY_RETRY)));
    };
    let siblings = ctx.siblings(&namespace);
    let objects = ctx
        .objects(
            &namespace,
            siblings,
            vec![
                binding.spec.officernd_ref.name.clone(),
                binding.spec.vendor_ref.name.clone(),
            ],
        )
        .await?;
    let at = ctx.now();
    let vendor_connection = objects.connection(&namespace, &binding.spec.vendor_ref.name);
    let vendor = vendor_connection
        .map(|c| c.spec.vendor.as_str())
        .unwrap_or("unknown");
    let result = if let Some(message) = suspension(binding, &objects, &namespace) {
        BindingResult::not_ready(Reason::Suspended, message)
    } else {
        match ctx.door(&objects, &namespace, &binding.spec.vendor_ref.name) {
            Ok((door, directory)) => match ctx.org_view(&objects, &namespace, binding).await {
                Ok(view) => {
                    let door = CachedDoor::new(door.as_ref(), directory.as_ref());
                    runner::reconcile_binding(&objects, binding, &view, at, &door, false).await
                }
                Err(result) => result,
            },
            Err((reason, message)) => BindingResult::not_ready(reason, message),
        }
    };
    let outcome = &result.outcome;
    let reached_vendor = matches!(
        outcome.reason,
        Reason::Synced | Reason::Planned | Reason::PartialFailure | Reason::MassRevocationBlocked
    );
    if reached_vendor
        || matches!(
            outcome.reason,
            Reason::CredentialsInvalid | Reason::VendorUnreachable
        )
    {
        let status = if reached_vendor {
            "ok"
        } else {
            outcome.reason.as_str()
        };
        ctx.metrics.vendor_call(vendor, "sync", status);
    }
    let (granted, revoked) = result.applied;
    ctx.metrics.access_changed(vendor, granted, revoked);
    let triggered_at = lock(&ctx.triggered).remove(&(namespace.clone(), name.clone()));
    if granted + revoked > 0 {
        if let Some(since) = triggered_at {
            ctx.metrics.change_latency(since.elapsed().as_secs_f64());
        } else if let Some(due) = binding
            .status
            .as_ref()
            .and_then(|s| s.next_change_time.as_ref())
        {
            // A scheduled change (a booking window, a membership end): late by this much.
            let late = at.timestamp() - due.0.as_second();
            if (0..3600).contains(&late) {
                ctx.metrics.change_latency(late as f64);
            }
        }
    }

    let previous = binding.status.clone().unwrap_or_default();
    let next = result.to_status(
        &previous,
        binding.meta().generation,
        binding.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        result.next_change_at.map(status_time),
        status_time(at),
    );
    let changed = write_binding_status(ctx, binding, &previous, next).await?;
    if granted + revoked > 0 {
        let groups = result
            .resolved_groups
            .iter()
            .map(|g| g.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        ctx.publish(
            binding,
            Event {
                type_: EventType::Normal,
                reason: "Synced".into(),
                note: Some(format!("granted {granted}, revoked {revoked} in {groups}")),
                action: "Sync".into(),
                secondary: None,
            },
        )
        .await;
    }
    // A suspension is a person's decision, not a problem: no Warning (as for connections).
    if changed && !outcome.ready && outcome.reason != Reason::Suspended {
        ctx.publish(binding, warning(outcome, "Sync")).await;
    }
    ctx.metrics
        .reconciled(BINDING_KIND, outcome.reason.as_str());
    if !outcome.ready {
        ctx.metrics
            .error(BINDING_KIND, telemetry::category(outcome.reason));
    }
    tracing::info!(reason = %outcome.reason, granted, revoked, status_written = changed, "binding reconciled");

    let resync = sync_interval(vendor_connection);
    let delay = if outcome.retrying {
        ctx.backoff(BINDING_KIND, &namespace, &name)
    } else {
        ctx.succeeded(BINDING_KIND, &namespace, &name);
        jitter(resync)
    };
    // Measured from now, not from the start of this reconcile: kube-runtime starts the requeue
    // timer when the reconcile returns, so the sync's own duration must not delay the change.
    Ok(Action::requeue(until_next_change(
        delay,
        result.next_change_at,
        ctx.now(),
    )))
}

/// `delay`, or less when access changes by time alone sooner (then just after that instant, so
/// the change lands well within a second).
fn until_next_change(
    delay: Duration,
    next_change_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Duration {
    let Some(next) = next_change_at else {
        return delay;
    };
    let until = (next - at).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(50);
    delay.min(until)
}

fn warning(outcome: &Outcome, action: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: outcome.reason.as_str().into(),
        note: Some(event_note(&outcome.message)),
        action: action.into(),
        secondary: None,
    }
}

/// Server-side applies `status` when it differs from `previous`; returns whether it wrote.
async fn write_binding_status(
    ctx: &Ctx,
    binding: &AccessGroupBinding,
    previous: &AccessGroupBindingStatus,
    next: AccessGroupBindingStatus,
) -> Result<bool, kube::Error> {
    let namespace = binding.namespace().unwrap_or_default();
    let key = (BINDING_KIND, namespace.clone(), binding.name_any());
    if binding.status.is_some() && (next == *previous || ctx.last_written(&key, &next)) {
        return Ok(false);
    }
    let api: Api<AccessGroupBinding> = Api::namespaced(ctx.client.clone(), &namespace);
    status_writer::apply_status(&api, &binding.name_any(), &next, None).await?;
    ctx.metrics.status_written();
    ctx.remember_written(key, &next);
    Ok(true)
}

async fn cleanup_binding(
    ctx: Arc<Ctx>,
    binding: Arc<AccessGroupBinding>,
) -> Result<Action, ReconcileError> {
    let ctx = ctx.as_ref();
    let binding = binding.as_ref();
    let namespace = binding.namespace().unwrap_or_default();
    let name = binding.name_any();
    let orphan = |reason: &str, note: String, type_: EventType| Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Delete".into(),
        secondary: None,
    };
    if binding.spec.deletion_policy == DeletionPolicy::Orphan {
        ctx.publish(
            binding,
            orphan(
                "Orphaned",
                "deletionPolicy Orphan: vendor groups left as they are".into(),
                EventType::Normal,
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    if binding.spec.mode == crate::api::access_group_binding::BindingMode::Plan {
        ctx.publish(
            binding,
            orphan(
                "Orphaned",
                "mode Plan never writes to the vendor, so deleting it revokes nothing".into(),
                EventType::Normal,
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    let age = binding
        .meta()
        .deletion_timestamp
        .as_ref()
        .map(|t| Timestamp::now().as_second() - t.0.as_second())
        .unwrap_or(0);
    if age >= i64::try_from(ctx.deletion_timeout.as_secs()).unwrap_or(i64::MAX) {
        ctx.publish(
            binding,
            orphan(
                "DeletionTimedOut",
                format!(
                    "could not revoke this binding's access within {} s of its deletion; orphaned: the vendor groups keep their members until another binding manages them or someone removes them",
                    ctx.deletion_timeout.as_secs()
                ),
                EventType::Warning,
            ),
        )
        .await;
        return Ok(Action::await_change());
    }
    // Deletions are rare: wait for the account rather than requeue.
    let _account = ctx.account_lock(binding).lock_owned().await;
    let siblings = ctx.siblings(&namespace);
    let objects = ctx
        .objects(
            &namespace,
            siblings,
            vec![
                binding.spec.officernd_ref.name.clone(),
                binding.spec.vendor_ref.name.clone(),
            ],
        )
        .await?;
    // Without the connections or their credentials the access cannot be revoked, and waiting
    // will not help: orphan at once and say so.
    for connection in [
        &binding.spec.vendor_ref.name,
        &binding.spec.officernd_ref.name,
    ] {
        let gone = match objects.connection(&namespace, connection) {
            None => Some(format!("VendorConnection {namespace}/{connection} is gone")),
            Some(c) => credentials::read(
                c,
                &namespace,
                objects.secret(&namespace, &c.spec.credentials_secret_ref.name),
            )
            .err()
            .map(|e| e.to_string()),
        };
        if let Some(why) = gone {
            ctx.publish(
                binding,
                orphan(
                    "Orphaned",
                    format!("{why}; the access this binding granted cannot be revoked and is left in place"),
                    EventType::Warning,
                ),
            )
            .await;
            return Ok(Action::await_change());
        }
    }
    let (door, directory) = match ctx.door(&objects, &namespace, &binding.spec.vendor_ref.name) {
        Ok(door) => door,
        Err((_, message)) => return Err(ReconcileError::Cleanup(message)),
    };
    let door = CachedDoor::new(door.as_ref(), directory.as_ref());
    let result = match ctx.org_view(&objects, &namespace, binding).await {
        Ok(view) => {
            runner::reconcile_binding(&objects, binding, &view, ctx.now(), &door, true).await
        }
        Err(result) => result,
    };
    let outcome = &result.outcome;
    let (granted, revoked) = result.applied;
    let vendor = objects
        .connection(&namespace, &binding.spec.vendor_ref.name)
        .map(|c| c.spec.vendor.as_str())
        .unwrap_or("unknown");
    ctx.metrics.access_changed(vendor, granted, revoked);
    ctx.metrics.reconciled(
        BINDING_KIND,
        if outcome.ready {
            "Deleted"
        } else {
            outcome.reason.as_str()
        },
    );
    if outcome.ready && outcome.reason == Reason::Synced {
        ctx.publish(
            binding,
            orphan(
                "Revoked",
                format!("deleted: revoked {revoked} (access only this binding granted), granted {granted}"),
                EventType::Normal,
            ),
        )
        .await;
        ctx.succeeded(BINDING_KIND, &namespace, &name);
        return Ok(Action::await_change());
    }
    // Say why the deletion waits, in status and as an Event, then retry with backoff.
    let waiting = Outcome::not_ready(
        Reason::Deleting,
        format!(
            "deleting: revoking this binding's access failed and is retried (orphaned after {} s): {}",
            ctx.deletion_timeout.as_secs(),
            outcome.message
        ),
    );
    let previous = binding.status.clone().unwrap_or_default();
    let mut next = previous.clone();
    next.conditions = status::conditions(
        &waiting,
        binding.meta().generation,
        status_time(ctx.now()),
        &previous.conditions,
    );
    if write_binding_status(ctx, binding, &previous, next).await? {
        ctx.publish(binding, warning(&waiting, "Delete")).await;
    }
    Err(ReconcileError::Cleanup(outcome.message.clone()))
}

// ---------------------------------------------------------------------------------------------
// VendorConnection

fn connection_error_policy(
    connection: Arc<VendorConnection>,
    error: &ReconcileError,
    ctx: Arc<Ctx>,
) -> Action {
    let namespace = connection.namespace().unwrap_or_default();
    tracing::warn!(%error, namespace, name = connection.name_any(), "connection reconcile failed; retrying with backoff");
    ctx.metrics.error(CONNECTION_KIND, "kubernetes");
    Action::requeue(ctx.backoff(CONNECTION_KIND, &namespace, &connection.name_any()))
}

/// Checks a connection's credentials at its vendor and what the account holds (the same check
/// `flexgate demo` and `run --manifests` use), recording the vendor call in the metrics.
async fn check_connection(
    ctx: &Ctx,
    connection: &VendorConnection,
    objects: &Objects,
) -> (Outcome, Option<AccountSummary>) {
    let members = ctx
        .orgs
        .members(
            &connection.namespace().unwrap_or_default(),
            &connection.name_any(),
        )
        .or_else(|| {
            // Until this process has read the organization (after a restart or a fail-over),
            // the count the status shows stands; the whole read re-checks with the real one.
            // Reporting no count meanwhile would rewrite the status twice for nothing.
            let people = connection.status.as_ref()?.account.as_ref()?.people?;
            usize::try_from(people).ok()
        });
    let checked = super::connection::check(
        connection,
        objects,
        &ctx.clock,
        super::connection::MemberCount::Known(members),
    )
    .await;
    let status = if checked.outcome.ready {
        "ok"
    } else {
        checked.outcome.reason.as_str()
    };
    ctx.metrics
        .vendor_call(connection.spec.vendor.as_str(), "check", status);
    (checked.outcome, checked.account)
}

/// The status a connection check leads to: the account summary kept when the check could not
/// read one, `lastSyncTime` moved only when a successful check changed something.
fn connection_status(
    connection: &VendorConnection,
    outcome: &Outcome,
    account: Option<AccountSummary>,
    at: DateTime<Utc>,
) -> VendorConnectionStatus {
    let previous = connection.status.clone().unwrap_or_default();
    let generation = connection.meta().generation;
    let mut next = VendorConnectionStatus {
        observed_generation: generation,
        conditions: super::connection::status_conditions(
            connection,
            outcome,
            generation,
            status_time(at),
            &previous.conditions,
        ),
        last_sync_time: previous.last_sync_time.clone(),
        last_handled_reconcile_at: connection
            .annotations()
            .get(RECONCILE_REQUESTED_AT)
            .cloned(),
        account: account.or_else(|| previous.account.clone()),
        counts: previous.counts.clone(),
        problems: previous.problems.clone(),
        problems_omitted: previous.problems_omitted,
        booking_horizon: previous.booking_horizon.clone(),
    };
    if outcome.ready && (next != previous || previous.last_sync_time.is_none()) {
        next.last_sync_time = Some(status_time(at));
    }
    next
}

fn reconcile_connection(
    connection: Arc<VendorConnection>,
    ctx: Arc<Ctx>,
) -> futures::future::BoxFuture<'static, Result<Action, ReconcileError>> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "reconcile",
        kind = CONNECTION_KIND,
        namespace = %connection.namespace().unwrap_or_default(),
        name = %connection.name_any()
    );
    contained(reconcile_connection_inner(connection, ctx))
        .instrument(span)
        .boxed()
}

async fn reconcile_connection_inner(
    connection: Arc<VendorConnection>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    ctx.caches_ready().await?;
    let namespace = connection.namespace().unwrap_or_default();
    let name = connection.name_any();
    let siblings = ctx.siblings(&namespace);
    let mut objects = ctx.objects(&namespace, siblings, Vec::new()).await?;
    // The connection as delivered (the cache may lag a moment behind its own watch), and its
    // Secret read fresh.
    objects
        .connections
        .retain(|c| !(c.namespace() == connection.namespace() && c.name_any() == name));
    objects.connections.push((*connection).clone());
    let api: Api<KubeSecret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret_name = &connection.spec.credentials_secret_ref.name;
    let secret = api.get_opt(secret_name).await?;
    if connection.spec.vendor == Vendor::OfficeRnD {
        // This reconcile runs on every change of the connection or its Secret: the webhook
        // receiver's key is kept current here, so it never reads a Secret itself.
        let key = credentials::read(&connection, &namespace, secret.as_ref())
            .ok()
            .and_then(|credentials| credentials::webhook_secret(&credentials).cloned())
            .map_or(WebhookKey::NotConfigured, WebhookKey::Signing);
        ctx.webhook_keys.set(&namespace, &name, key);
    }
    if let Some(secret) = secret {
        objects
            .secrets
            .insert((namespace.clone(), secret_name.clone()), secret);
    }
    let (outcome, account) = check_connection(&ctx, &connection, &objects).await;
    let previous = connection.status.clone().unwrap_or_default();
    let mut next = connection_status(&connection, &outcome, account, ctx.now());
    if let Some(horizon) = ctx.orgs.booking_horizon(&namespace, &name) {
        next.booking_horizon = Some(status_time(horizon));
    }
    let changed = if connection.status.is_some() && next == previous {
        false
    } else {
        let connections: Api<VendorConnection> = Api::namespaced(ctx.client.clone(), &namespace);
        status_writer::apply_status(&connections, &name, &next, None).await?;
        ctx.metrics.status_written();
        true
    };
    if changed && !outcome.ready && outcome.reason != Reason::Suspended {
        ctx.publish(connection.as_ref(), warning(&outcome, "Check"))
            .await;
    }
    ctx.metrics
        .reconciled(CONNECTION_KIND, outcome.reason.as_str());
    if !outcome.ready {
        ctx.metrics
            .error(CONNECTION_KIND, telemetry::category(outcome.reason));
    }
    tracing::info!(reason = %outcome.reason, status_written = changed, "connection reconciled");
    let delay = if outcome.retrying {
        ctx.backoff(CONNECTION_KIND, &namespace, &name)
    } else {
        ctx.succeeded(CONNECTION_KIND, &namespace, &name);
        jitter(sync_interval(Some(&connection)))
    };
    Ok(Action::requeue(delay))
}

// ---------------------------------------------------------------------------------------------
// SiteMapping

fn reconcile_site_mapping(
    mapping: Arc<SiteMapping>,
    ctx: Arc<Ctx>,
) -> futures::future::BoxFuture<'static, Result<Action, ReconcileError>> {
    use tracing::Instrument;
    let span = tracing::info_span!(
        "reconcile",
        kind = SITE_MAPPING_KIND,
        namespace = %mapping.namespace().unwrap_or_default(),
        name = %mapping.name_any()
    );
    contained(reconcile_site_mapping_inner(mapping, ctx))
        .instrument(span)
        .boxed()
}

fn site_mapping_error_policy(
    mapping: Arc<SiteMapping>,
    error: &ReconcileError,
    ctx: Arc<Ctx>,
) -> Action {
    let namespace = mapping.namespace().unwrap_or_default();
    tracing::warn!(%error, namespace, name = mapping.name_any(), "site mapping reconcile failed; retrying with backoff");
    ctx.metrics.error(SITE_MAPPING_KIND, "kubernetes");
    Action::requeue(ctx.backoff(SITE_MAPPING_KIND, &namespace, &mapping.name_any()))
}

/// Registers a SiteMapping reconcile as in flight for as long as it lives (also when the
/// reconcile is dropped, e.g. on a lost lease).
struct SiteSyncGuard<'a> {
    ctx: &'a Ctx,
    key: (String, String),
}

impl<'a> SiteSyncGuard<'a> {
    fn start(ctx: &'a Ctx, key: (String, String), generation: Option<i64>) -> Self {
        lock(&ctx.site_syncs).insert(
            key.clone(),
            SiteSync {
                generation,
                announced: false,
            },
        );
        Self { ctx, key }
    }

    /// Ends the registration; whether a waiting change was announced in status meanwhile.
    fn finish(self) -> bool {
        lock(&self.ctx.site_syncs)
            .remove(&self.key)
            .is_some_and(|sync| sync.announced)
    }
}

impl Drop for SiteSyncGuard<'_> {
    fn drop(&mut self) {
        lock(&self.ctx.site_syncs).remove(&self.key);
    }
}

/// Called for every SiteMapping spec change or reconcile request the watch delivers: when a
/// sync of another generation of that mapping is running, say in status that the change waits
/// for it (the change itself is reconciled by the controller once the sync returns).
fn announce_waiting_change(ctx: &Arc<Ctx>, mapping: &SiteMapping) {
    let key = (mapping.namespace().unwrap_or_default(), mapping.name_any());
    let Some(wanted) = mapping.meta().generation else {
        return;
    };
    let running = {
        let mut syncs = lock(&ctx.site_syncs);
        let Some(sync) = syncs.get_mut(&key) else {
            return;
        };
        match sync.generation {
            Some(running) if running != wanted => {
                sync.announced = true;
                running
            }
            _ => return,
        }
    };
    let ctx = ctx.clone();
    let mapping = mapping.clone();
    tokio::spawn(async move {
        match write_waiting_change(&ctx, &mapping, running, wanted).await {
            Ok(()) => {}
            // The status changed since this version was read: the sync has written its own.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(error) => {
                tracing::debug!(%error, "could not announce a SiteMapping change waiting for a running sync");
            }
        }
    });
}

/// The `Reconciling=True` (`Progressing`) note that generation `wanted` waits for the running
/// sync of generation `running`, merged into the conditions `mapping` carries, guarded by its
/// resourceVersion.
async fn write_waiting_change(
    ctx: &Ctx,
    mapping: &SiteMapping,
    running: i64,
    wanted: i64,
) -> Result<(), kube::Error> {
    let mut status = mapping.status.clone().unwrap_or_default();
    let note = vocabulary::condition(
        RECONCILING,
        true,
        Reason::Progressing,
        format!(
            "a sync of generation {running} is running; the change to generation {wanted} is applied when it ends"
        ),
        Some(wanted),
        status_time(ctx.now()),
        &status.conditions,
    );
    status.conditions.retain(|c| c.type_ != RECONCILING);
    status.conditions.push(note);
    let api: Api<SiteMapping> =
        Api::namespaced(ctx.client.clone(), &mapping.namespace().unwrap_or_default());
    // The whole status as read plus the note, guarded by the resourceVersion it was read at:
    // the apply owns every field it names, so a partial apply would drop the others.
    status_writer::apply_status(
        &api,
        &mapping.name_any(),
        &status,
        mapping.resource_version().as_deref(),
    )
    .await?;
    ctx.metrics.status_written();
    Ok(())
}

/// Suspension of either connection of `mapping` (the mapping's own `spec.suspend` is the
/// reconcile core's to report).
fn suspended_connection(
    mapping: &SiteMapping,
    objects: &Objects,
    namespace: &str,
) -> Option<String> {
    [
        &mapping.spec.officernd_ref.name,
        &mapping.spec.essensys_ref.name,
    ]
    .into_iter()
    .find(|name| {
        objects
            .connection(namespace, name)
            .is_some_and(|c| c.spec.suspend)
    })
    .map(|name| {
        format!("VendorConnection {namespace}/{name} is suspended: nothing is read or written")
    })
}

/// `at` without its sub-second part: the API server stores whole seconds, so a status written
/// and read back compares equal.
fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

async fn reconcile_site_mapping_inner(
    cached: Arc<SiteMapping>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    let ctx = ctx.as_ref();
    ctx.caches_ready().await?;
    let namespace = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    let api: Api<SiteMapping> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(mapping) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    let generation = mapping.meta().generation;
    let in_flight = SiteSyncGuard::start(ctx, (namespace.clone(), name.clone()), generation);
    let objects = ctx
        .objects(
            &namespace,
            Vec::new(),
            vec![
                mapping.spec.officernd_ref.name.clone(),
                mapping.spec.essensys_ref.name.clone(),
            ],
        )
        .await?;
    let at = whole_seconds(ctx.now());
    let previous = mapping.status.clone();
    let result = match suspended_connection(&mapping, &objects, &namespace) {
        Some(message) => SiteMappingResult::carry(
            previous.as_ref(),
            Outcome {
                ready: false,
                reason: Reason::Suspended,
                message,
                retrying: false,
            },
        ),
        None => {
            let shared = ctx
                .orgs
                .client(&objects, &namespace, &mapping.spec.officernd_ref.name)
                .ok();
            site_sync::run(
                &mapping,
                &objects,
                at,
                previous.as_ref(),
                &ctx.clock,
                shared,
            )
            .await
        }
    };
    let announced = in_flight.finish();

    let outcome = &result.outcome;
    let next = site_mapping_status(&mapping, &result, at, previous.as_ref());
    let key = (SITE_MAPPING_KIND, namespace.clone(), name.clone());
    let unchanged = previous.as_ref() == Some(&next) || ctx.last_written(&key, &next);
    let written = if unchanged && !announced {
        false
    } else {
        status_writer::apply_status(&api, &name, &next, None).await?;
        ctx.metrics.status_written();
        ctx.remember_written(key, &next);
        true
    };
    for event in &result.events {
        ctx.publish(
            &mapping,
            Event {
                type_: if event.warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: event.reason.into(),
                note: Some(event_note(&event.message)),
                action: "Sync".into(),
                secondary: None,
            },
        )
        .await;
    }
    let quiet = matches!(
        outcome.reason,
        Reason::Suspended | Reason::AwaitingApproval | Reason::PartialFailure
    );
    if written && !outcome.ready && !quiet {
        ctx.publish(&mapping, warning(outcome, "Sync")).await;
    }
    if result.summary.is_some() {
        ctx.metrics.vendor_call("essensys", "sync", "ok");
    } else if matches!(
        outcome.reason,
        Reason::CredentialsInvalid | Reason::VendorUnreachable
    ) {
        ctx.metrics
            .vendor_call("essensys", "sync", outcome.reason.as_str());
    }
    ctx.metrics
        .reconciled(SITE_MAPPING_KIND, outcome.reason.as_str());
    if !outcome.ready && !matches!(outcome.reason, Reason::Suspended | Reason::AwaitingApproval) {
        ctx.metrics
            .error(SITE_MAPPING_KIND, telemetry::category(outcome.reason));
    }
    tracing::info!(reason = %outcome.reason, status_written = written, events = result.events.len(), "site mapping reconciled");

    // Resync at the essensys connection's syncInterval (the side written to, as a binding
    // follows its vendor connection); failures back off.
    let delay = if outcome.retrying {
        ctx.backoff(SITE_MAPPING_KIND, &namespace, &name)
    } else {
        ctx.succeeded(SITE_MAPPING_KIND, &namespace, &name);
        jitter(sync_interval(
            objects.connection(&namespace, &mapping.spec.essensys_ref.name),
        ))
    };
    Ok(Action::requeue(delay))
}

/// The status a SiteMapping reconcile leads to: the core's, with the reconcile request echoed
/// and `lastSyncTime` kept when the sync wrote nothing to essensys.
fn site_mapping_status(
    mapping: &SiteMapping,
    result: &SiteMappingResult,
    at: DateTime<Utc>,
    previous: Option<&SiteMappingStatus>,
) -> SiteMappingStatus {
    let mut next = result.status(mapping.meta().generation, at, previous);
    next.last_handled_reconcile_at = mapping.annotations().get(RECONCILE_REQUESTED_AT).cloned();
    let idle = result
        .summary
        .as_ref()
        .is_some_and(|summary| summary.writes() == 0 && summary.failed() == 0);
    if let Some(before) = previous.and_then(|p| p.last_sync_time.clone()) {
        if idle {
            next.last_sync_time = Some(before);
        }
    }
    next
}

/// An Event note within the API's 1 kB limit.
fn event_note(message: &str) -> String {
    let mut note = message.to_owned();
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    note
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
