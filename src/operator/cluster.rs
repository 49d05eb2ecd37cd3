//! The cluster host: what the controllers share (`Ctx`: the caches, the shared OfficeRnD
//! pictures and vendor clients, the per-account sync locks, backoff, the status writer's
//! memory, the Event recorder) and how it serves the reconcile pipelines as their [`Host`].
//! The reconcilers themselves are `cluster_binding.rs`, `cluster_connection.rs` and
//! `cluster_site_mapping.rs`; the watches that drive them are `watches.rs`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use k8s_openapi::NamespaceResourceScope;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::api::{AccessGroupBinding, VendorConnection};
use crate::clock::Clock;
use crate::officernd::OfficeRndClient;

use super::clients::DoorClient;
use super::connection::MemberCount;
use super::door_cache::DirectoryCache;
use super::objects::Objects;
use super::orgs::OrgCache;
use super::reconcile::{
    self, sync_interval, BuildError, Host, Notice, Picture, Reconciled, BINDING_KIND,
    CONNECTION_KIND,
};
use super::runner::ClientCache;
use super::status_writer;
use super::telemetry::Metrics;
use super::webhook_keys::WebhookKeys;

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
    Cleanup(#[from] CleanupError),
}

/// Why a deleted binding's access could not be revoked yet.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// No door client could be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The revoking sync did not succeed; the outcome's message says why.
    #[error("{0}")]
    Sync(String),
}

/// Shared by the controllers.
pub(super) struct Ctx {
    pub(super) client: Client,
    /// Raised once every store the reconcilers read holds its initial list: until then a
    /// reconcile would see missing connections or sibling bindings and report (or act on) a
    /// world that is not there.
    pub(super) caches: watch::Receiver<bool>,
    pub(super) connections: Store<VendorConnection>,
    pub(super) bindings: Store<AccessGroupBinding>,
    pub(super) clients: Mutex<ClientCache>,
    /// One shared OfficeRnD picture per OfficeRnD connection.
    pub(super) orgs: OrgCache,
    pub(super) recorder: Recorder,
    pub(super) metrics: Arc<Metrics>,
    pub(super) clock: Clock,
    pub(super) deletion_timeout: Duration,
    pub(super) min_backoff: Duration,
    pub(super) max_backoff: Duration,
    pub(super) failures: Mutex<HashMap<(String, String, String), u32>>,
    /// One sync or cleanup at a time per vendor account, by (namespace, vendor connection).
    /// Bindings sharing a group, or a person new to the account, would otherwise race: two
    /// syncs would both create that person (Kisi refuses the second, "email has already been
    /// taken") or both add them to the group (Kisi keeps both rows). The account's rate limit,
    /// not this, bounds a sync's speed.
    pub(super) accounts: Mutex<HashMap<(String, String), AccountLock>>,
    /// When a webhook asked for each binding's reconcile, for the latency histogram.
    pub(super) triggered: Mutex<HashMap<(String, String), tokio::time::Instant>>,
    /// SiteMapping reconciles in flight, by (namespace, name).
    pub(super) site_syncs: Mutex<HashMap<(String, String), SiteSync>>,
    /// The status last written per (kind, namespace, name). The object a reconcile receives can
    /// predate our own previous status write (the watch has not delivered it yet); comparing
    /// with what we wrote keeps an idle reconcile from writing the same status again.
    pub(super) written: Mutex<HashMap<StatusKey, u64>>,
    /// The OfficeRnD webhook keys, kept current by the connection reconciler.
    pub(super) webhook_keys: Arc<WebhookKeys>,
}

pub(super) type StatusKey = (&'static str, String, String);

/// The sync lock of one vendor account.
pub(super) type AccountLock = Arc<tokio::sync::Mutex<()>>;

/// How often the per-object maps are pruned of deleted objects.
pub(super) const PRUNE_INTERVAL: Duration = Duration::from_secs(10 * 60);

pub(super) fn forget_deleted(
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
pub(super) struct SiteSync {
    /// The generation it reconciles.
    pub(super) generation: Option<i64>,
    /// Whether a newer generation was announced as waiting in status meanwhile (then the
    /// reconcile writes its status even when it is otherwise unchanged, replacing that note).
    pub(super) announced: bool,
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ctx {
    pub(super) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Waits until every store holds its initial list (immediate afterwards).
    pub(super) async fn caches_ready(&self) -> Result<(), ReconcileError> {
        let mut caches = self.caches.clone();
        caches
            .wait_for(|ready| *ready)
            .await
            .map(|_| ())
            .map_err(|_| ReconcileError::Stopping)
    }

    /// Forgets what the per-object maps and the client cache hold for objects that no longer
    /// exist (`exists` says which do), so a long-running operator's memory follows the objects
    /// it manages. An account lock someone still holds is kept.
    pub(super) fn forget_deleted(&self, exists: impl Fn(&str, &str, &str) -> bool) {
        lock(&self.clients)
            .forget_deleted(|namespace, name| exists(CONNECTION_KIND, namespace, name));
        forget_deleted(
            &mut lock(&self.failures),
            &mut lock(&self.written),
            &mut lock(&self.triggered),
            &mut lock(&self.accounts),
            exists,
        );
    }

    /// The sync lock of the binding's vendor account.
    pub(super) fn account_lock(&self, binding: &AccessGroupBinding) -> AccountLock {
        let account = (
            binding.namespace().unwrap_or_default(),
            binding.spec.vendor_ref.name.clone(),
        );
        lock(&self.accounts).entry(account).or_default().clone()
    }

    /// The next delay after a failure of `kind` `namespace/name` (exponential, with jitter).
    pub(super) fn backoff(&self, kind: &str, namespace: &str, name: &str) -> Duration {
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

    pub(super) fn succeeded(&self, kind: &str, namespace: &str, name: &str) {
        lock(&self.failures).remove(&(kind.to_owned(), namespace.to_owned(), name.to_owned()));
    }

    /// The delay before the next reconcile of `kind` `namespace/name` after `reconciled`: its
    /// backoff after a failure (a success resets it), else the jittered resync, cut short at the
    /// next change.
    pub(super) fn requeue<S>(
        &self,
        kind: &'static str,
        namespace: &str,
        name: &str,
        reconciled: &Reconciled<S>,
    ) -> Action {
        let delay = reconciled.requeue.delay(
            || self.backoff(kind, namespace, name),
            |resync| {
                self.succeeded(kind, namespace, name);
                jitter(resync)
            },
            self.now(),
        );
        Action::requeue(delay)
    }

    /// The connections of `namespace`, from the cache.
    pub(super) fn connections_in(&self, namespace: &str) -> Vec<VendorConnection> {
        self.connections
            .state()
            .iter()
            .filter(|c| c.namespace().as_deref() == Some(namespace))
            .map(|c| (**c).clone())
            .collect()
    }

    /// The connections of `namespace` from the cache, and the Secrets of the named connections
    /// read fresh from the API (a rotated Secret is used at once).
    pub(super) async fn objects(
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
    pub(super) fn last_written<S: serde::Serialize>(&self, key: &StatusKey, status: &S) -> bool {
        status_hash(status).is_some_and(|hash| lock(&self.written).get(key) == Some(&hash))
    }

    pub(super) fn remember_written<S: serde::Serialize>(&self, key: StatusKey, status: &S) {
        if let Some(hash) = status_hash(status) {
            lock(&self.written).insert(key, hash);
        }
    }

    /// Server-side applies `next` as the status of `object` unless it is what the object
    /// already says or what this process last wrote (`force` writes anyway); returns whether it
    /// wrote.
    pub(super) async fn write_status<K, S>(
        &self,
        kind: &'static str,
        object: &K,
        previous: Option<&S>,
        next: &S,
        force: bool,
    ) -> Result<bool, kube::Error>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        S: serde::Serialize + PartialEq,
    {
        let namespace = object.namespace().unwrap_or_default();
        let name = object.name_any();
        let key = (kind, namespace.clone(), name.clone());
        if !force
            && (previous == Some(next) || (previous.is_some() && self.last_written(&key, next)))
        {
            return Ok(false);
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), &namespace);
        status_writer::apply_status(&api, &name, next, None).await?;
        self.metrics.status_written();
        self.remember_written(key, next);
        Ok(true)
    }

    /// The bindings of `namespace` as a reconcile reads them: metadata and spec, without status
    /// and managed fields (with hundreds of bindings, each reconcile would otherwise copy them
    /// all).
    pub(super) fn siblings(&self, namespace: &str) -> Vec<AccessGroupBinding> {
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

    pub(super) async fn publish(&self, object: &impl Resource<DynamicType = ()>, event: Event) {
        let reference = object.object_ref(&());
        if let Err(error) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(%error, reason = %event.reason, "could not publish an Event");
        }
    }

    /// Emits what a pipeline decided: its Events, and those kept for a status change when
    /// `written`; records its metrics (`triggered`: how long ago a webhook asked for it).
    pub(super) async fn tell<S>(
        &self,
        object: &impl Resource<DynamicType = ()>,
        reconciled: &Reconciled<S>,
        written: bool,
        triggered: Option<Duration>,
    ) {
        let changed = if written {
            reconciled.on_change.as_slice()
        } else {
            &[]
        };
        for notice in reconciled.events.iter().chain(changed) {
            self.publish(object, event(notice)).await;
        }
        reconcile::record(&self.metrics, &reconciled.metrics, triggered);
    }
}

/// A pipeline's Event as kube-runtime publishes it.
pub(super) fn event(notice: &Notice) -> Event {
    Event {
        type_: if notice.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: notice.reason.clone(),
        note: Some(notice.note.clone()),
        action: notice.action.to_owned(),
        secondary: None,
    }
}

impl Host for Ctx {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    fn door(
        &self,
        objects: &Objects,
        namespace: &str,
        name: &str,
    ) -> Result<(Arc<DoorClient>, Arc<DirectoryCache>), BuildError> {
        lock(&self.clients).door_shared(objects, namespace, name, &self.clock)
    }

    /// The shared picture of the organization, read whole at most once per `syncInterval` of
    /// that connection.
    async fn picture(
        &self,
        objects: &Objects,
        namespace: &str,
        name: &str,
    ) -> Result<Picture, BuildError> {
        let max_age = sync_interval(objects.connection(namespace, name));
        let view = self
            .orgs
            .view(objects, namespace, name, max_age)
            .await
            .map_err(|source| BuildError::OfficeRnd {
                connection: format!("{namespace}/{name}"),
                source,
            })?;
        Ok(Picture {
            index: view.index.clone(),
            members: view.members,
        })
    }

    fn officernd(&self, objects: &Objects, namespace: &str, name: &str) -> Option<OfficeRndClient> {
        self.orgs.client(objects, namespace, name).ok()
    }

    fn booking_horizon(&self, connection: &VendorConnection) -> Option<DateTime<Utc>> {
        self.orgs.booking_horizon(
            &connection.namespace().unwrap_or_default(),
            &connection.name_any(),
        )
    }

    fn member_count(&self, connection: &VendorConnection) -> MemberCount {
        let members = self
            .orgs
            .members(
                &connection.namespace().unwrap_or_default(),
                &connection.name_any(),
            )
            .or_else(|| {
                // Until this process has read the organization (after a restart or a
                // fail-over), the count the status shows stands; the whole read re-checks with
                // the real one. Reporting no count meanwhile would rewrite the status twice for
                // nothing.
                let people = connection.status.as_ref()?.account.as_ref()?.people?;
                usize::try_from(people).ok()
            });
        MemberCount::Known(members)
    }
}

/// Runs one reconcile with its panics contained: a bug met by one object (an input nobody
/// foresaw) becomes that object's error instead of taking down the process, and with it every
/// other object's sync.
pub(super) fn contained<F>(reconcile: F) -> impl Future<Output = Result<Action, ReconcileError>>
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
pub(super) const ACCOUNT_BUSY_RETRY: Duration = Duration::from_millis(500);

/// ±10 % jitter, so objects created together do not resync together.
pub(super) fn jitter(delay: Duration) -> Duration {
    let spread = delay.as_secs_f64() * 0.1;
    let offset = (fastrand::f64() * 2.0 - 1.0) * spread;
    Duration::from_secs_f64((delay.as_secs_f64() + offset).max(0.0))
}

/// The error policy of every controller: log, count, back off.
pub(super) fn error_policy<K: Resource<DynamicType = ()>>(
    kind: &'static str,
    object: &K,
    error: &ReconcileError,
    ctx: &Ctx,
) -> Action {
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    tracing::warn!(%error, kind, namespace, name, "reconcile failed; retrying with backoff");
    ctx.metrics.error(kind, "kubernetes");
    Action::requeue(ctx.backoff(kind, &namespace, &name))
}
