//! In-process stand-in for the Kubernetes API server, so unmodified kube-rs clients, watchers, controllers,
//! event recorders and finalizer helpers can be tested without a cluster.
//!
//! ```ignore
//! let server = support::apiserver::ApiServer::start().await;
//! server.install_crd_for::<VendorConnection>();
//! let client = server.client();
//! ```
//!
//! Served: `/version`, discovery (`/api`, `/api/v1`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}`), and for every
//! installed resource the collection and item paths (namespaced, all-namespaces and cluster-scoped) with
//! get, list, watch, create, replace, patch (merge, strategic-merge (treated as merge), JSON patch,
//! server-side apply) and delete / deletecollection, plus `/status` where the kind has that subresource.
//! Built in: core v1 Secrets, ConfigMaps, Events, Namespaces; events.k8s.io/v1 Events;
//! coordination.k8s.io/v1 Leases; apiextensions.k8s.io/v1 CustomResourceDefinitions (creating a CRD
//! through the API installs its kind, deleting it uninstalls it). Custom resources answer 404 until
//! installed, which is how "CRDs missing" is tested.
//!
//! Approximations (differences from a real apiserver):
//! - Server-side apply is a merge: maps merge recursively, `x-kubernetes-list-type: map` lists (taken from the
//!   CRD schema; any `conditions` list defaults to a map keyed by `type`) merge by key, `set` lists union,
//!   other lists are replaced. There are no managedFields: fields a manager stops applying are not removed,
//!   and there are no apply conflicts between field managers (`force` is ignored).
//! - Strategic merge patch is a plain JSON merge patch (real CRDs reject it with 415).
//! - No admission, defaulting, pruning, schema validation, conversion between versions, RBAC,
//!   namespace existence checks, garbage collection of owned objects, or `propagationPolicy` finalizers
//!   (`orphan`/`foregroundDeletion`); validation is only what `ApiServerOptions::validator` hooks do.
//! - Lists ignore `resourceVersion`/`resourceVersionMatch` (always the latest state); `limit`/`continue`
//!   paginate over the current state rather than a snapshot.
//! - Field selectors accept any dotted path to a scalar (real servers allow a per-kind set).
//! - Watches: history is kept for `history_limit` changes; older resourceVersions get a 410 Expired
//!   ERROR event. Bookmarks are sent every `bookmark_interval` when requested, plus the
//!   `k8s.io/initial-events-end` bookmark for `sendInitialEvents=true`.
//! - Validators run while the store is locked: they must not call back into this server.
//! - kube's client retries 429/503/504 by itself, so `fail_next(1, 503)` is invisible to callers;
//!   use 500 (or enough repetitions) to make a failure surface.

mod http;
mod patch;
mod selectors;
mod store;

pub use http::{FailureRule, RequestRecord};
pub use patch::ListType;
pub use store::{ResourceKind, Validator};

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::{ApiError, KindKey, Store};
use tokio::sync::Notify;

/// Key of the built-in CustomResourceDefinition resource.
fn crd_key() -> KindKey {
    KindKey {
        group: "apiextensions.k8s.io".into(),
        plural: "customresourcedefinitions".into(),
    }
}

/// Start-up options of the stand-in.
#[derive(Clone)]
pub struct ApiServerOptions {
    validators: HashMap<String, Vec<Validator>>,
    history_limit: usize,
    bookmark_interval: Option<Duration>,
    kinds: Vec<ResourceKind>,
    crds: Vec<Value>,
}

impl Default for ApiServerOptions {
    fn default() -> Self {
        Self {
            validators: HashMap::new(),
            history_limit: 10_000,
            bookmark_interval: Some(Duration::from_secs(60)),
            kinds: Vec::new(),
            crds: Vec::new(),
        }
    }
}

impl ApiServerOptions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `check(new, old)` on every create, replace, patch (main resource and `/status`) of objects whose
    /// `kind` is `kind` (e.g. "VendorConnection"); `Err(message)` rejects the write with 422 Invalid.
    #[must_use]
    pub fn validator(
        mut self,
        kind: &str,
        check: impl Fn(&Value, Option<&Value>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.validators
            .entry(kind.to_string())
            .or_default()
            .push(Arc::new(check));
        self
    }

    /// How many changes are kept for watch resumption (default 10 000).
    #[must_use]
    pub fn history_limit(mut self, changes: usize) -> Self {
        self.history_limit = changes.max(1);
        self
    }

    /// Interval of periodic BOOKMARK events for watches with `allowWatchBookmarks=true` (default 60 s).
    #[must_use]
    pub fn bookmark_interval(mut self, interval: Option<Duration>) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Serves an extra resource type from the start.
    #[must_use]
    pub fn kind(mut self, kind: ResourceKind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Installs a CRD from the start.
    #[must_use]
    pub fn crd(
        mut self,
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) -> Self {
        self.crds
            .push(serde_json::to_value(crd).unwrap_or(Value::Null));
        self
    }

    /// Installs the CRD of a `#[derive(CustomResource)]` type from the start.
    #[must_use]
    pub fn crd_for<K: kube::CustomResourceExt>(self) -> Self {
        self.crd(&K::crd())
    }
}

pub(crate) struct Shared {
    store: Mutex<Store>,
    epoch: tokio::sync::watch::Sender<u64>,
    changed: Notify,
    active_watches: AtomicUsize,
    log: Mutex<Vec<RequestRecord>>,
    failures: Mutex<Vec<FailureRule>>,
    bookmark_interval: Option<Duration>,
    address: String,
}

impl Shared {
    fn lock_store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take_failure(&self, record: &RequestRecord) -> Option<ApiError> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let index = failures.iter().position(|rule| {
            rule.remaining > 0
                && (rule.include_watches || !record.watch)
                && (!rule.watches_only || record.watch)
                && rule.method.as_ref().is_none_or(|m| *m == record.method)
                && rule
                    .path_contains
                    .as_ref()
                    .is_none_or(|p| record.path.contains(p.as_str()))
        })?;
        let rule = &mut failures[index];
        rule.remaining -= 1;
        let error = ApiError::new(
            rule.code,
            ApiError::reason_for_code(rule.code),
            rule.message.clone(),
        );
        if rule.remaining == 0 {
            failures.remove(index);
        }
        Some(error)
    }

    fn log_request(&self, record: RequestRecord) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
    }

    fn group_list(&self) -> Value {
        let store = self.lock_store();
        let mut groups: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
        for kind in store.kinds.values().filter(|k| !k.group.is_empty()) {
            let entry = groups
                .entry(kind.group.clone())
                .or_insert_with(|| (kind.version.clone(), BTreeSet::new()));
            entry.1.extend(kind.served_versions.iter().cloned());
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(name, (preferred, versions))| {
                let version_entry =
                    |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
                json!({
                    "name": name,
                    "versions": versions.iter().map(|v| version_entry(v)).collect::<Vec<_>>(),
                    "preferredVersion": version_entry(&preferred),
                })
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let store = self.lock_store();
        let mut resources = Vec::new();
        for kind in store.kinds.values() {
            if kind.group != group || !kind.served_versions.iter().any(|v| v == version) {
                continue;
            }
            resources.push(json!({
                "name": kind.plural, "singularName": kind.kind.to_lowercase(), "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            }));
            if kind.status_subresource {
                resources.push(json!({
                    "name": format!("{}/status", kind.plural), "singularName": "", "namespaced": kind.namespaced,
                    "kind": kind.kind, "verbs": ["get", "patch", "update"],
                }));
            }
        }
        if resources.is_empty() && !(group.is_empty() && version == "v1") {
            return None;
        }
        let group_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
        )
    }

    /// Serves the CRD's kind and marks the stored CRD `NamesAccepted` + `Established`, as the real
    /// apiextensions controller does within moments (so `conditions::is_crd_established()` waits succeed).
    fn install_crd_kinds(&self, crd: &Value) {
        let Some(kind) = kind_from_crd(crd) else {
            return;
        };
        let mut store = self.lock_store();
        store.kinds.insert(kind.key(), kind.clone());
        let crd_name = kind.qualified_resource();
        let established = |kind: &str, reason: &str| {
            json!({"type": kind, "status": "True", "reason": reason, "message": "",
                "lastTransitionTime": store::now_timestamp()})
        };
        let status = json!({"status": {
            "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or_else(|| json!({})),
            "conditions": [established("NamesAccepted", "NoConflicts"), established("Established", "InitialNamesAccepted")],
            "storedVersions": [kind.version],
        }});
        if let Some(crd_kind) = store.kind(&crd_key()).cloned() {
            // The CRD object is absent only if it was installed with `install()`; nothing to mark then.
            let _ = store.replace(
                &crd_kind,
                "",
                &crd_name,
                status,
                store::Subresource::Status,
                false,
            );
        }
    }

    fn uninstall_crd_kinds(&self, crd: &Value) {
        if let Some(kind) = kind_from_crd(crd) {
            let mut store = self.lock_store();
            store.kinds.remove(&kind.key());
            store.objects.remove(&kind.key());
        }
    }
}

/// Reads group, names, scope, served/storage versions, the status subresource and the
/// `x-kubernetes-list-type` annotations of the storage version's schema from a CRD object.
fn kind_from_crd(crd: &Value) -> Option<ResourceKind> {
    let spec = crd.get("spec")?;
    let versions = spec.get("versions")?.as_array()?;
    let storage = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .or_else(|| versions.first())?;
    let mut kind = ResourceKind::new(
        spec.get("group")?.as_str()?,
        storage.get("name")?.as_str()?,
        spec.pointer("/names/kind")?.as_str()?,
        spec.pointer("/names/plural")?.as_str()?,
        spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
    );
    kind.served_versions = versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    kind.status_subresource = storage
        .pointer("/subresources/status")
        .is_some_and(|s| !s.is_null());
    if let Some(schema) = storage.pointer("/schema/openAPIV3Schema") {
        collect_list_types(schema, &mut Vec::new(), &mut kind.list_types);
    }
    Some(kind)
}

fn collect_list_types(
    schema: &Value,
    path: &mut Vec<String>,
    out: &mut HashMap<Vec<String>, ListType>,
) {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("map") => {
            let keys = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            out.insert(path.clone(), ListType::Map(keys));
        }
        Some("set") => {
            out.insert(path.clone(), ListType::Set);
        }
        Some(_) => {
            out.insert(path.clone(), ListType::Atomic);
        }
        None => {}
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            path.push(name.clone());
            collect_list_types(property, path, out);
            path.pop();
        }
    }
    if let Some(items) = schema.get("items") {
        collect_list_types(items, path, out);
    }
}

fn builtin_kinds() -> Vec<ResourceKind> {
    use k8s_openapi::api::{coordination::v1::Lease, core::v1, events::v1::Event};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    vec![
        ResourceKind::of::<v1::Secret>(),
        ResourceKind::of::<v1::ConfigMap>(),
        ResourceKind::of::<v1::Event>(),
        ResourceKind::of::<v1::Namespace>().with_status_subresource(),
        ResourceKind::of::<Event>(),
        ResourceKind::of::<Lease>(),
        ResourceKind::of::<CustomResourceDefinition>().with_status_subresource(),
    ]
}

/// A running stand-in API server bound to 127.0.0.1 on an ephemeral port. Dropping it stops the server.
pub struct ApiServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.drop_watches();
        self.server.abort();
    }
}

impl ApiServer {
    pub async fn start() -> Self {
        Self::start_with(ApiServerOptions::default()).await
    }

    pub async fn start_with(options: ApiServerOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the API stand-in");
        let address = listener
            .local_addr()
            .expect("local address of the API stand-in");
        let mut store = Store::new(options.history_limit, options.validators);
        for kind in builtin_kinds().into_iter().chain(options.kinds) {
            store.kinds.insert(kind.key(), kind);
        }
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            epoch: tokio::sync::watch::channel(0).0,
            changed: Notify::new(),
            active_watches: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            bookmark_interval: options.bookmark_interval,
            address: address.to_string(),
        });
        let app = http::router(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let server = Self {
            shared,
            address,
            server,
        };
        for crd in &options.crds {
            server.install_crd_value(crd.clone());
        }
        server
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A kube client talking plain HTTP to this server, default namespace "default".
    pub fn client(&self) -> kube::Client {
        let uri: axum::http::Uri = self.url().parse().expect("stand-in URL is a valid URI");
        let config = kube::Config::new(uri);
        kube::Client::try_from(config).expect("kube client for the API stand-in")
    }

    /// Serves an extra resource type (no CRD object is created).
    pub fn install(&self, kind: ResourceKind) {
        self.shared.lock_store().kinds.insert(kind.key(), kind);
        self.shared.changed.notify_waiters();
    }

    /// Stores the CRD object and serves its kind (as `kubectl apply -f crd.yaml` would).
    pub fn install_crd(
        &self,
        crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ) {
        self.install_crd_value(serde_json::to_value(crd).expect("CRD serializes to JSON"));
    }

    pub fn install_crd_for<K: kube::CustomResourceExt>(&self) {
        self.install_crd(&K::crd());
    }

    fn install_crd_value(&self, crd: Value) {
        {
            let mut store = self.shared.lock_store();
            let crd_kind = store
                .kind(&crd_key())
                .cloned()
                .expect("CRD kind is built in");
            match store.create(&crd_kind, "", crd.clone(), false) {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => panic!("installing CRD failed: {}", e.message),
            }
        }
        self.shared.install_crd_kinds(&crd);
        self.shared.changed.notify_waiters();
    }

    /// Stops serving a kind (by Kind, plural or `plural.group`): its paths answer 404 as if the CRD were
    /// never installed; its objects and CRD object are discarded (open watches are not closed).
    pub fn uninstall(&self, kind: &str) {
        let keys = self.keys_for(kind);
        let mut store = self.shared.lock_store();
        for key in keys {
            store.kinds.remove(&key);
            store.objects.remove(&key);
            let crd_name = format!("{}.{}", key.plural, key.group);
            if let Some(crds) = store.objects.get_mut(&crd_key()) {
                crds.remove(&(String::new(), crd_name));
            }
        }
        drop(store);
        self.shared.changed.notify_waiters();
    }

    /// Kinds matching a Kind name ("Event" matches both core and events.k8s.io), a plural or `plural.group`.
    fn keys_for(&self, kind: &str) -> Vec<KindKey> {
        self.shared
            .lock_store()
            .kinds
            .values()
            .filter(|k| k.kind == kind || k.plural == kind || k.qualified_resource() == kind)
            .map(ResourceKind::key)
            .collect()
    }

    /// All stored objects of a kind (Kind name, plural or `plural.group`), sorted by namespace/name.
    pub fn objects(&self, kind: &str) -> Vec<Value> {
        let keys = self.keys_for(kind);
        let store = self.shared.lock_store();
        keys.iter()
            .flat_map(|key| {
                store
                    .objects
                    .get(key)
                    .into_iter()
                    .flat_map(|o| o.values().cloned())
            })
            .collect()
    }

    /// One stored object; `namespace` is ignored for cluster-scoped kinds.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let keys = self.keys_for(kind);
        let store = self.shared.lock_store();
        keys.iter().find_map(|key| {
            let rk = store.kind(key)?;
            store
                .get(rk, if rk.namespaced { namespace } else { "" }, name)
                .ok()
        })
    }

    /// All stored objects of a typed kind.
    pub fn objects_of<K>(&self) -> Vec<K>
    where
        K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned,
    {
        let key = KindKey {
            group: K::group(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
        };
        let store = self.shared.lock_store();
        store
            .objects
            .get(&key)
            .into_iter()
            .flat_map(|o| o.values())
            .map(|v| {
                serde_json::from_value(v.clone()).expect("stored object deserializes into its type")
            })
            .collect()
    }

    /// One stored object of a typed kind.
    pub fn get_as<K>(&self, namespace: &str, name: &str) -> Option<K>
    where
        K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned,
    {
        let key = KindKey {
            group: K::group(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
        };
        let store = self.shared.lock_store();
        let rk = store.kind(&key)?;
        let value = store
            .get(rk, if rk.namespaced { namespace } else { "" }, name)
            .ok()?;
        Some(serde_json::from_value(value).expect("stored object deserializes into its type"))
    }

    /// Creates an object directly (validators run; resourceVersion, uid etc. are assigned) and returns it.
    /// The kind is found from `apiVersion` + `kind`; the namespace defaults to "default".
    pub fn seed<T: serde::Serialize>(&self, object: &T) -> Value {
        let object = serde_json::to_value(object).expect("seed object serializes to JSON");
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind_name = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut store = self.shared.lock_store();
        let rk = store
            .kinds
            .values()
            .find(|k| k.kind == kind_name && k.api_version() == api_version)
            .cloned()
            .unwrap_or_else(|| panic!("seed: {api_version} {kind_name} is not installed"));
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        let status = object.get("status").cloned();
        let mut created = store
            .create(
                &rk,
                if rk.namespaced { &namespace } else { "" },
                object,
                false,
            )
            .unwrap_or_else(|e| panic!("seed failed: {}", e.message));
        if let (Some(status), true) = (status, rk.status_subresource) {
            let name = created
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            created = store
                .replace(
                    &rk,
                    if rk.namespaced { &namespace } else { "" },
                    &name,
                    json!({"status": status}),
                    store::Subresource::Status,
                    false,
                )
                .unwrap_or_else(|e| panic!("seed status failed: {}", e.message));
        }
        drop(store);
        self.shared.changed.notify_waiters();
        created
    }

    /// Every request served so far, in order.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn clear_request_log(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Events stored through both the events.k8s.io/v1 and the core v1 API.
    pub fn events(&self) -> Vec<Value> {
        self.objects("Event")
    }

    /// The next `count` non-watch requests fail with HTTP `code` and a matching `Status` reason.
    pub fn fail_next(&self, count: usize, code: u16) {
        self.fail_matching(FailureRule::new(count, code));
    }

    /// Adds a targeted failure rule, e.g. `FailureRule::new(1, 409).method("PATCH").path_contains("/status")`.
    pub fn fail_matching(&self, rule: FailureRule) {
        self.shared
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(rule);
    }

    /// Removes all pending injected failures.
    pub fn clear_failures(&self) {
        self.shared
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Ends every open watch stream (an apiserver blip); stored state and history are kept, so clients
    /// resume from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.shared.epoch.send_modify(|epoch| *epoch += 1);
    }

    /// Like an apiserver restart: drops all watch streams. State is kept.
    pub fn restart(&self) {
        self.drop_watches();
    }

    /// Forgets the watch history: a watch resuming from an older resourceVersion gets 410 Expired and
    /// kube's watcher relists. Combine with `drop_watches()` to force a relist.
    pub fn compact(&self) {
        self.shared.lock_store().compact();
    }

    /// Number of watch streams currently open.
    pub fn active_watches(&self) -> usize {
        self.shared.active_watches.load(Ordering::SeqCst)
    }

    /// Current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock_store().rv
    }

    /// Waits until `condition` holds, re-checking after every request and watch open/close.
    /// Panics after 30 s with `what` so a hung test names what it waited for (not a timing assertion).
    pub async fn wait_until(&self, what: &str, condition: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if condition(self) {
                return;
            }
            // Also re-check periodically: state can change through paths that do not notify.
            let wake = tokio::time::Instant::now() + Duration::from_millis(50);
            if tokio::time::Instant::now() >= deadline {
                panic!("timed out waiting until {what}");
            }
            let _ = tokio::time::timeout_at(wake.min(deadline), notified).await;
        }
    }
}
