//! In-memory object store of the API stand-in: Kubernetes write semantics (resourceVersion, generation,
//! status subresource, finalizers/deletionTimestamp, validation hooks) and the watch event history.

use super::patch::{apply_merge, json_patch, merge_patch, ListType};
use super::selectors::{fields_match, labels_match, FieldRequirement, LabelRequirement};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Validation hook: `(new object, previous object)`; an `Err(message)` rejects the write with 422 Invalid.
pub type Validator = Arc<dyn Fn(&Value, Option<&Value>) -> Result<(), String> + Send + Sync>;

/// Identifies a resource type: API group ("" for core) and plural name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KindKey {
    pub group: String,
    pub plural: String,
}

/// A resource type the stand-in serves.
#[derive(Clone, Debug)]
pub struct ResourceKind {
    pub group: String,
    /// Version used in `apiVersion` of stored objects.
    pub version: String,
    /// Every version accepted in request paths (no conversion happens between them).
    pub served_versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// Whether `/status` exists; if so main-resource writes never change `.status`.
    pub status_subresource: bool,
    /// Server-side-apply list semantics by field path (array positions omitted), e.g. `["status","conditions"]`.
    pub list_types: HashMap<Vec<String>, ListType>,
}

impl ResourceKind {
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            served_versions: vec![version.into()],
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
            status_subresource: false,
            list_types: HashMap::new(),
        }
    }

    /// Describes a typed resource (`k8s-openapi` type or `#[derive(CustomResource)]` type).
    pub fn of<K>() -> Self
    where
        K: kube::Resource<DynamicType = ()>,
        K::Scope: 'static,
    {
        let namespaced = std::any::TypeId::of::<K::Scope>()
            == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>();
        Self::new(
            &K::group(&()),
            &K::version(&()),
            &K::kind(&()),
            &K::plural(&()),
            namespaced,
        )
    }

    #[must_use]
    pub fn with_status_subresource(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// Declares the server-side-apply merge semantics of a list field, e.g.
    /// `with_list_type(&["spec", "ports"], ListType::Map(vec!["port".into()]))`.
    #[must_use]
    pub fn with_list_type(mut self, path: &[&str], list_type: ListType) -> Self {
        self.list_types
            .insert(path.iter().map(|s| s.to_string()).collect(), list_type);
        self
    }

    pub fn key(&self) -> KindKey {
        KindKey {
            group: self.group.clone(),
            plural: self.plural.clone(),
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `secrets` or `vendorconnections.flexgate.dev`, as in real apiserver messages.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Declared list type, else the default: `conditions` lists are maps keyed by `type` (the Kubernetes
    /// convention), every other list is atomic.
    pub fn list_type(&self, path: &[String]) -> ListType {
        if let Some(declared) = self.list_types.get(path) {
            return declared.clone();
        }
        if path.last().is_some_and(|last| last == "conditions") {
            return ListType::Map(vec!["type".into()]);
        }
        ListType::Atomic
    }
}

/// A Kubernetes API error, rendered as a `Status` object.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn for_object(
        code: u16,
        reason: &'static str,
        message: String,
        rk: &ResourceKind,
        name: &str,
    ) -> Self {
        Self {
            code,
            reason,
            message,
            details: Some(json!({"name": name, "group": rk.group, "kind": rk.plural})),
        }
    }

    pub fn not_found(rk: &ResourceKind, name: &str) -> Self {
        Self::for_object(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rk.qualified_resource()),
            rk,
            name,
        )
    }

    pub fn conflict(rk: &ResourceKind, name: &str) -> Self {
        let message = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            rk.qualified_resource()
        );
        Self::for_object(409, "Conflict", message, rk, name)
    }

    pub fn invalid(rk: &ResourceKind, name: &str, why: &str) -> Self {
        let qualified_kind = if rk.group.is_empty() {
            rk.kind.clone()
        } else {
            format!("{}.{}", rk.kind, rk.group)
        };
        Self::for_object(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {why}"),
            rk,
            name,
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn reason_for_code(code: u16) -> &'static str {
        match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            410 => "Gone",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            504 => "Timeout",
            503 => "ServiceUnavailable",
            _ => "InternalError",
        }
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// Watch event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, kept in the history for watch resumption and broadcast to live watches.
#[derive(Clone, Debug)]
pub struct WatchRecord {
    pub rv: u64,
    pub kind: KindKey,
    pub namespace: String,
    pub event: EventType,
    pub object: Value,
    /// State before the change, so label-selector watches can turn MODIFIED into ADDED/DELETED.
    pub previous: Option<Value>,
}

/// What a watch should deliver before live events.
pub enum WatchStart {
    /// Events to send first, then continue with live records whose rv is greater than `from_rv`.
    Events {
        initial: Vec<(EventType, Value)>,
        from_rv: u64,
    },
    /// The requested resourceVersion has been compacted away: send a 410 Expired error event.
    Expired { requested: u64, oldest: u64 },
}

/// Filters of a list or watch request.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub namespace: Option<String>,
    pub labels: Vec<LabelRequirement>,
    pub fields: Vec<FieldRequirement>,
}

impl Filter {
    pub fn matches(&self, object: &Value) -> bool {
        if let Some(ns) = &self.namespace {
            if object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("")
                != ns
            {
                return false;
            }
        }
        labels_match(&self.labels, object) && fields_match(&self.fields, object)
    }
}

/// Which write path a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}

/// How a PATCH body is interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Strategic,
    Json,
    Apply,
}

pub struct Store {
    pub rv: u64,
    pub kinds: BTreeMap<KindKey, ResourceKind>,
    pub objects: BTreeMap<KindKey, BTreeMap<(String, String), Value>>,
    pub history: VecDeque<Arc<WatchRecord>>,
    pub history_limit: usize,
    /// Watches may resume from any rv >= this one.
    pub compacted_rv: u64,
    pub tx: broadcast::Sender<Arc<WatchRecord>>,
    pub validators: HashMap<String, Vec<Validator>>,
    uid_counter: u64,
}

type WriteResult = Result<Value, ApiError>;

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let Value::Object(map) = object else {
        unreachable!("just made an object")
    };
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    let Value::Object(metadata) = metadata else {
        unreachable!("just made an object")
    };
    metadata
}

/// Everything except `metadata` and `status`: the part whose change bumps `metadata.generation`.
fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Value::Object(map) = &mut copy {
        map.remove("metadata");
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
    }
    copy
}

/// Go's `omitempty` drops empty metadata collections; kube's finalizer helper relies on
/// `/metadata/finalizers` being absent (tests it against `null`) once the list is empty.
fn normalize_metadata(object: &mut Value) {
    let metadata = metadata_mut(object);
    for field in [
        "finalizers",
        "labels",
        "annotations",
        "ownerReferences",
        "managedFields",
    ] {
        let empty = match metadata.get(field) {
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            Some(Value::Null) => true,
            _ => false,
        };
        if empty {
            metadata.remove(field);
        }
    }
}

pub fn now_timestamp() -> Value {
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    serde_json::to_value(now).unwrap_or(Value::Null)
}

impl Store {
    pub fn new(history_limit: usize, validators: HashMap<String, Vec<Validator>>) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            rv: 1,
            kinds: BTreeMap::new(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit,
            compacted_rv: 0,
            tx,
            validators,
            uid_counter: 0,
        }
    }

    pub fn kind(&self, key: &KindKey) -> Option<&ResourceKind> {
        self.kinds.get(key)
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!(
            "{nanos:08x}-{:04x}-4000-8000-{:012x}",
            self.rv & 0xffff,
            self.uid_counter
        )
    }

    fn validate(
        &self,
        rk: &ResourceKind,
        new: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        for validator in self.validators.get(&rk.kind).into_iter().flatten() {
            validator(new, old)
                .map_err(|why| ApiError::invalid(rk, meta_str(new, "name").unwrap_or(""), &why))?;
        }
        Ok(())
    }

    fn record(
        &mut self,
        rk: &ResourceKind,
        event: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        let record = Arc::new(WatchRecord {
            rv: self.rv,
            kind: rk.key(),
            namespace: meta_str(&object, "namespace").unwrap_or("").to_string(),
            event,
            object,
            previous,
        });
        self.history.push_back(record.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_rv = dropped.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(record);
    }

    /// Forgets the event history so that every watch resuming from an older resourceVersion gets 410 Expired.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_rv = self.rv;
    }

    pub fn get(&self, rk: &ResourceKind, namespace: &str, name: &str) -> WriteResult {
        self.objects
            .get(&rk.key())
            .and_then(|objects| objects.get(&(namespace.to_string(), name.to_string())))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rk, name))
    }

    pub fn list(&self, rk: &ResourceKind, filter: &Filter) -> Vec<Value> {
        self.objects
            .get(&rk.key())
            .map(|objects| {
                objects
                    .values()
                    .filter(|o| filter.matches(o))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn store_path(rk: &ResourceKind, namespace: &str, name: &str) -> (String, String) {
        (
            if rk.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name.to_string(),
        )
    }

    /// POST. `namespace` is the path namespace ("" for cluster-scoped kinds).
    pub fn create(
        &mut self,
        rk: &ResourceKind,
        namespace: &str,
        mut body: Value,
        dry_run: bool,
    ) -> WriteResult {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let body_namespace = meta_str(&body, "namespace").unwrap_or("").to_string();
        if rk.namespaced && !body_namespace.is_empty() && body_namespace != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut name = meta_str(&body, "name").unwrap_or("").to_string();
        if name.is_empty() {
            let Some(prefix) = meta_str(&body, "generateName").map(str::to_string) else {
                return Err(ApiError::invalid(
                    rk,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            };
            name = format!("{prefix}{}", &self.next_uid()[24..29]);
        }
        let path = Self::store_path(rk, namespace, &name);
        if self
            .objects
            .get(&rk.key())
            .is_some_and(|objects| objects.contains_key(&path))
        {
            let message = format!("{} \"{name}\" already exists", rk.qualified_resource());
            return Err(ApiError::for_object(
                409,
                "AlreadyExists",
                message,
                rk,
                &name,
            ));
        }
        body["apiVersion"] = json!(rk.api_version());
        body["kind"] = json!(rk.kind);
        if rk.status_subresource {
            if let Value::Object(map) = &mut body {
                map.remove("status");
            }
        }
        let uid = self.next_uid();
        let metadata = metadata_mut(&mut body);
        metadata.insert("name".into(), json!(name));
        if rk.namespaced {
            metadata.insert("namespace".into(), json!(namespace));
        } else {
            metadata.remove("namespace");
        }
        for server_owned in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            metadata.remove(server_owned);
        }
        metadata.insert("uid".into(), json!(uid));
        metadata.insert("creationTimestamp".into(), now_timestamp());
        metadata.insert("generation".into(), json!(1));
        normalize_metadata(&mut body);
        self.validate(rk, &body, None)?;
        if dry_run {
            return Ok(body);
        }
        self.rv += 1;
        metadata_mut(&mut body).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.objects
            .entry(rk.key())
            .or_default()
            .insert(path, body.clone());
        self.record(rk, EventType::Added, body.clone(), None);
        Ok(body)
    }

    /// Turns a client-proposed full object into the object to store, applying subresource isolation,
    /// server-owned metadata, the resourceVersion precondition, generation and validation; then commits.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        rk: &ResourceKind,
        namespace: &str,
        name: &str,
        old: Value,
        proposed: Value,
        sub: Subresource,
        dry_run: bool,
    ) -> WriteResult {
        if !proposed.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        if let Some(proposed_name) = meta_str(&proposed, "name") {
            if proposed_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({proposed_name}) does not match the name on the URL ({name})"
                )));
            }
        }
        if rk.namespaced {
            if let Some(proposed_ns) = meta_str(&proposed, "namespace") {
                if !proposed_ns.is_empty() && proposed_ns != namespace {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        }
        if let Some(proposed_rv) = meta_str(&proposed, "resourceVersion") {
            if !proposed_rv.is_empty() && Some(proposed_rv) != meta_str(&old, "resourceVersion") {
                return Err(ApiError::conflict(rk, name));
            }
        }
        let mut new = match sub {
            Subresource::Status => {
                let mut new = old.clone();
                if let Value::Object(map) = &mut new {
                    match proposed.get("status") {
                        Some(status) if !status.is_null() => {
                            map.insert("status".into(), status.clone());
                        }
                        _ => {
                            map.remove("status");
                        }
                    }
                }
                new
            }
            Subresource::Main => {
                let mut new = proposed;
                if rk.status_subresource {
                    if let Value::Object(map) = &mut new {
                        match old.get("status") {
                            Some(status) => {
                                map.insert("status".into(), status.clone());
                            }
                            None => {
                                map.remove("status");
                            }
                        }
                    }
                }
                new
            }
        };
        new["apiVersion"] = json!(rk.api_version());
        new["kind"] = json!(rk.kind);
        let old_metadata = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let metadata = metadata_mut(&mut new);
        for server_owned in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
            "managedFields",
        ] {
            match old_metadata.get(server_owned) {
                Some(value) => metadata.insert(server_owned.into(), value.clone()),
                None => metadata.remove(server_owned),
            };
        }
        normalize_metadata(&mut new);
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            let finalizers = |o: &Value| -> Vec<Value> {
                o.pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            let before = finalizers(&old);
            if finalizers(&new).iter().any(|f| !before.contains(f)) {
                return Err(ApiError::invalid(
                    rk,
                    name,
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        if new == old {
            // A no-op write changes nothing, not even the resourceVersion, and emits no watch event.
            return Ok(old);
        }
        if spec_part(&new) != spec_part(&old) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        self.validate(rk, &new, Some(&old))?;
        if dry_run {
            return Ok(new);
        }
        self.rv += 1;
        metadata_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let path = Self::store_path(rk, namespace, name);
        let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
        let finalizers_left = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if deleting && !finalizers_left {
            if let Some(objects) = self.objects.get_mut(&rk.key()) {
                objects.remove(&path);
            }
            self.record(rk, EventType::Deleted, new.clone(), Some(old));
        } else {
            self.objects
                .entry(rk.key())
                .or_default()
                .insert(path, new.clone());
            self.record(rk, EventType::Modified, new.clone(), Some(old));
        }
        Ok(new)
    }

    /// PUT on the object or its `/status`.
    pub fn replace(
        &mut self,
        rk: &ResourceKind,
        namespace: &str,
        name: &str,
        body: Value,
        sub: Subresource,
        dry_run: bool,
    ) -> WriteResult {
        let old = self.get(rk, namespace, name)?;
        self.write(rk, namespace, name, old, body, sub, dry_run)
    }

    /// PATCH on the object or its `/status`. Server-side apply creates a missing object.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rk: &ResourceKind,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        sub: Subresource,
        dry_run: bool,
    ) -> WriteResult {
        let old = match self.get(rk, namespace, name) {
            Ok(old) => old,
            Err(_) if kind == PatchKind::Apply && sub == Subresource::Main => {
                let mut fresh = json!({"metadata": {"name": name}});
                apply_merge(&mut fresh, patch, &mut Vec::new(), &|path| {
                    rk.list_type(path)
                });
                if let Value::Object(map) = &mut fresh {
                    map.remove("status");
                }
                return self.create(rk, namespace, fresh, dry_run);
            }
            Err(e) => return Err(e),
        };
        let mut proposed = old.clone();
        match kind {
            PatchKind::Merge | PatchKind::Strategic => merge_patch(&mut proposed, patch),
            PatchKind::Apply => apply_merge(&mut proposed, patch, &mut Vec::new(), &|path| {
                rk.list_type(path)
            }),
            PatchKind::Json => {
                json_patch(&mut proposed, patch)
                    .map_err(|why| ApiError::invalid(rk, name, &why))?;
            }
        }
        self.write(rk, namespace, name, old, proposed, sub, dry_run)
    }

    /// DELETE. With finalizers the object only gains `deletionTimestamp`; otherwise it is removed.
    pub fn delete(
        &mut self,
        rk: &ResourceKind,
        namespace: &str,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> WriteResult {
        let old = self.get(rk, namespace, name)?;
        if let Some(uid) = options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
        {
            if Some(uid) != meta_str(&old, "uid") {
                return Err(ApiError::conflict(rk, name));
            }
        }
        if let Some(rv) = options
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
        {
            if Some(rv) != meta_str(&old, "resourceVersion") {
                return Err(ApiError::conflict(rk, name));
            }
        }
        let has_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if old.pointer("/metadata/deletionTimestamp").is_some() || dry_run {
                return Ok(old);
            }
            let mut new = old.clone();
            self.rv += 1;
            let metadata = metadata_mut(&mut new);
            metadata.insert("deletionTimestamp".into(), now_timestamp());
            metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
            metadata.insert("resourceVersion".into(), json!(self.rv.to_string()));
            let path = Self::store_path(rk, namespace, name);
            self.objects
                .entry(rk.key())
                .or_default()
                .insert(path, new.clone());
            self.record(rk, EventType::Modified, new.clone(), Some(old));
            return Ok(new);
        }
        if dry_run {
            return Ok(old);
        }
        self.rv += 1;
        let mut gone = old.clone();
        metadata_mut(&mut gone).insert("resourceVersion".into(), json!(self.rv.to_string()));
        if let Some(objects) = self.objects.get_mut(&rk.key()) {
            objects.remove(&Self::store_path(rk, namespace, name));
        }
        self.record(rk, EventType::Deleted, gone.clone(), Some(old));
        Ok(gone)
    }

    /// Decides how a watch starting at `resource_version` begins (see `WatchStart`).
    pub fn watch_start(
        &self,
        rk: &ResourceKind,
        filter: &Filter,
        resource_version: Option<&str>,
        send_initial_events: bool,
    ) -> Result<WatchStart, ApiError> {
        let requested = resource_version.filter(|rv| !rv.is_empty() && *rv != "0");
        if send_initial_events || requested.is_none() {
            let initial = self
                .list(rk, filter)
                .into_iter()
                .map(|o| (EventType::Added, o))
                .collect();
            return Ok(WatchStart::Events {
                initial,
                from_rv: self.rv,
            });
        }
        let requested = requested
            .unwrap_or_default()
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request("resourceVersion must be an unsigned integer"))?;
        if requested < self.compacted_rv {
            return Ok(WatchStart::Expired {
                requested,
                oldest: self.compacted_rv,
            });
        }
        let key = rk.key();
        let initial = self
            .history
            .iter()
            .filter(|r| r.rv > requested && r.kind == key)
            .filter_map(|r| translate(r, filter))
            .collect();
        Ok(WatchStart::Events {
            initial,
            from_rv: self.rv,
        })
    }
}

/// Maps a change to what a filtered watcher sees: objects entering the filter are ADDED, leaving it DELETED.
pub fn translate(record: &WatchRecord, filter: &Filter) -> Option<(EventType, Value)> {
    let now = filter.matches(&record.object);
    let before = record.previous.as_ref().is_some_and(|p| filter.matches(p));
    match (record.event, before, now) {
        (EventType::Deleted, _, true) | (EventType::Deleted, true, _) => {
            Some((EventType::Deleted, record.object.clone()))
        }
        (EventType::Deleted, false, false) => None,
        (_, true, true) => Some((EventType::Modified, record.object.clone())),
        (_, false, true) => Some((EventType::Added, record.object.clone())),
        (_, true, false) => Some((EventType::Deleted, record.object.clone())),
        (_, false, false) => None,
    }
}
