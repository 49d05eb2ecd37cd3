//! HTTP layer of the API stand-in: Kubernetes URL routing, verbs, discovery documents, `Status` errors,
//! newline-delimited watch streams, request logging and failure injection.

use super::store::{
    translate, ApiError, Filter, KindKey, PatchKind, ResourceKind, Subresource, WatchStart,
};
use super::{crd_key, Shared};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// One request as the stand-in saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// Raw query string (percent-encoded), "" when absent.
    pub query: String,
    pub content_type: Option<String>,
    /// Parsed request body (JSON, or YAML for apply patches), if any.
    pub body: Option<Value>,
    /// HTTP status code of the response (200 for watches that started streaming).
    pub status: u16,
    pub watch: bool,
}

impl RequestRecord {
    pub fn is_status_write(&self) -> bool {
        self.path.ends_with("/status") && self.method != "GET"
    }

    pub fn is_apply_patch(&self) -> bool {
        self.method == "PATCH"
            && self.content_type.as_deref() == Some("application/apply-patch+yaml")
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| v.to_string())
        })
    }
}

/// Injected failure: the next `remaining` matching requests get `code` as a Kubernetes `Status` error.
#[derive(Clone, Debug)]
pub struct FailureRule {
    pub remaining: usize,
    pub code: u16,
    /// Only this HTTP method (e.g. "PATCH"); `None` for any.
    pub method: Option<String>,
    /// Only paths containing this text (e.g. "/status" or "vendorconnections"); `None` for any.
    pub path_contains: Option<String>,
    /// Whether watch requests count (off by default so a running watcher does not consume failures).
    pub include_watches: bool,
    /// Only watch requests count (to keep a watcher from reconnecting while lists still work).
    pub watches_only: bool,
    pub message: String,
}

impl FailureRule {
    pub fn new(count: usize, code: u16) -> Self {
        Self {
            remaining: count,
            code,
            method: None,
            path_contains: None,
            include_watches: false,
            watches_only: false,
            message: format!("injected failure (HTTP {code})"),
        }
    }

    #[must_use]
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    #[must_use]
    pub fn path_contains(mut self, fragment: &str) -> Self {
        self.path_contains = Some(fragment.to_string());
        self
    }

    #[must_use]
    pub fn include_watches(mut self) -> Self {
        self.include_watches = true;
        self
    }

    #[must_use]
    pub fn watches_only(mut self) -> Self {
        self.include_watches = true;
        self.watches_only = true;
        self
    }
}

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

fn json_response(code: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(error: &ApiError) -> Response {
    json_response(error.code, &error.to_status())
}

enum Route {
    Version,
    CoreVersions,
    GroupList,
    Group(String),
    ResourceList(String, String),
    Resource {
        kind: ResourceKind,
        namespace: Option<String>,
        name: Option<String>,
        sub: Subresource,
    },
}

fn route(shared: &Shared, path: &str) -> Result<Route, ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = || {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["api"] => return Ok(Route::CoreVersions),
        ["apis"] => return Ok(Route::GroupList),
        ["api", version] => return Ok(Route::ResourceList(String::new(), version.to_string())),
        ["apis", group] => return Ok(Route::Group(group.to_string())),
        ["apis", group, version] => {
            return Ok(Route::ResourceList(group.to_string(), version.to_string()))
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(not_found()),
    };
    let (namespace, plural, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] => (Some(ns.to_string()), *plural, tail),
        [plural, tail @ ..] => (None, *plural, tail),
        [] => return Err(not_found()),
    };
    let store = shared.lock_store();
    let key = KindKey {
        group: group.to_string(),
        plural: plural.to_string(),
    };
    let kind = store
        .kind(&key)
        .filter(|k| k.served_versions.iter().any(|v| v == version))
        .cloned()
        .ok_or_else(not_found)?;
    if namespace.is_some() && !kind.namespaced {
        return Err(not_found());
    }
    let (name, sub) = match tail {
        [] => (None, Subresource::Main),
        [name] => (Some(name.to_string()), Subresource::Main),
        [name, "status"] if kind.status_subresource => {
            (Some(name.to_string()), Subresource::Status)
        }
        _ => return Err(not_found()),
    };
    if kind.namespaced && namespace.is_none() && name.is_some() {
        return Err(not_found());
    }
    Ok(Route::Resource {
        kind,
        namespace,
        name,
        sub,
    })
}

fn parse_body(bytes: &Bytes, yaml: bool) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let parsed = if yaml {
        serde_yaml::from_slice::<Value>(bytes).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| ApiError::bad_request(format!("the request body could not be decoded: {e}")))
}

fn filter_from(
    query: &HashMap<String, String>,
    namespace: Option<String>,
) -> Result<Filter, ApiError> {
    let labels = match query.get("labelSelector") {
        Some(selector) => {
            super::selectors::parse_label_selector(selector).map_err(ApiError::bad_request)?
        }
        None => Vec::new(),
    };
    let fields = match query.get("fieldSelector") {
        Some(selector) => {
            super::selectors::parse_field_selector(selector).map_err(ApiError::bad_request)?
        }
        None => Vec::new(),
    };
    Ok(Filter {
        namespace,
        labels,
        fields,
    })
}

fn is_true(query: &HashMap<String, String>, name: &str) -> bool {
    query.get(name).is_some_and(|v| v == "true" || v == "1")
}

/// Secret payloads never reach the request log (it shows up in assertion failures); keys are kept.
fn redact_secret_values(path: &str, mut body: Value) -> Value {
    if path.contains("/secrets") {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(values)) = body.get_mut(field) {
                values.values_mut().for_each(|v| *v = json!("<redacted>"));
            }
        }
    }
    body
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = pairs.into_iter().collect();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let watch = method == Method::GET && is_true(&query, "watch");
    let is_apply = content_type.as_deref() == Some("application/apply-patch+yaml");
    let mut record = RequestRecord {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        content_type: content_type.clone(),
        body: parse_body(&body, is_apply)
            .ok()
            .filter(|b| !b.is_null())
            .map(|b| redact_secret_values(uri.path(), b)),
        status: 0,
        watch,
    };
    let response = match shared.take_failure(&record) {
        Some(error) => error_response(&error),
        None => match dispatch(
            &shared,
            &method,
            uri.path(),
            &query,
            content_type.as_deref(),
            &body,
            watch,
        ) {
            Ok(response) => response,
            Err(error) => error_response(&error),
        },
    };
    record.status = response.status().as_u16();
    shared.log_request(record);
    shared.changed.notify_waiters();
    response
}

fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    content_type: Option<&str>,
    body: &Bytes,
    watch: bool,
) -> Result<Response, ApiError> {
    let (kind, namespace, name, sub) = match route(shared, path)? {
        Route::Version => return Ok(json_response(200, &version_info())),
        Route::CoreVersions => {
            let body = json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": shared.address}]});
            return Ok(json_response(200, &body));
        }
        Route::GroupList => return Ok(json_response(200, &shared.group_list())),
        Route::Group(group) => {
            let list = shared.group_list();
            let found = list["groups"]
                .as_array()
                .and_then(|gs| gs.iter().find(|g| g["name"] == group.as_str()));
            return match found {
                Some(group) => {
                    let mut group = group.clone();
                    group["kind"] = json!("APIGroup");
                    group["apiVersion"] = json!("v1");
                    Ok(json_response(200, &group))
                }
                None => Err(ApiError::new(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                )),
            };
        }
        Route::ResourceList(group, version) => {
            return shared
                .resource_list(&group, &version)
                .map(|list| json_response(200, &list))
                .ok_or_else(|| {
                    ApiError::new(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    )
                });
        }
        Route::Resource {
            kind,
            namespace,
            name,
            sub,
        } => (kind, namespace, name, sub),
    };
    let dry_run = query.contains_key("dryRun");
    let ns = namespace.clone().unwrap_or_default();
    let no_collection_verb = || {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on a collection"),
        )
    };
    match (method.as_str(), name) {
        ("GET", None) if watch => {
            let filter = filter_from(query, namespace)?;
            Ok(watch_response(
                shared.clone(),
                kind,
                filter,
                query.get("resourceVersion").cloned(),
                is_true(query, "sendInitialEvents"),
                is_true(query, "allowWatchBookmarks"),
                query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok()),
            )?)
        }
        ("GET", None) => {
            let filter = filter_from(query, namespace)?;
            Ok(json_response(
                200,
                &list_response(shared, &kind, &filter, query),
            ))
        }
        ("GET", Some(name)) => Ok(json_response(
            200,
            &shared.lock_store().get(&kind, &ns, &name)?,
        )),
        ("POST", None) => {
            if kind.namespaced && namespace.is_none() {
                return Err(no_collection_verb());
            }
            let created =
                shared
                    .lock_store()
                    .create(&kind, &ns, parse_body(body, false)?, dry_run)?;
            if kind.key() == crd_key() && !dry_run {
                shared.install_crd_kinds(&created);
            }
            Ok(json_response(201, &created))
        }
        ("PUT", Some(name)) => {
            let replaced = shared.lock_store().replace(
                &kind,
                &ns,
                &name,
                parse_body(body, false)?,
                sub,
                dry_run,
            )?;
            Ok(json_response(200, &replaced))
        }
        ("PATCH", Some(name)) => {
            let patch_kind = match content_type {
                Some("application/merge-patch+json") => PatchKind::Merge,
                Some("application/strategic-merge-patch+json") => PatchKind::Strategic,
                Some("application/json-patch+json") => PatchKind::Json,
                Some("application/apply-patch+yaml") => PatchKind::Apply,
                other => {
                    return Err(ApiError::new(
                        415,
                        "UnsupportedMediaType",
                        format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"),
                    ))
                }
            };
            let patch = parse_body(body, patch_kind == PatchKind::Apply)?;
            let existed = shared.lock_store().get(&kind, &ns, &name).is_ok();
            let patched = shared
                .lock_store()
                .patch(&kind, &ns, &name, patch_kind, &patch, sub, dry_run)?;
            Ok(json_response(if existed { 200 } else { 201 }, &patched))
        }
        ("DELETE", Some(name)) => {
            let options = parse_body(body, false)?;
            let deleted = shared
                .lock_store()
                .delete(&kind, &ns, &name, &options, dry_run)?;
            if kind.key() == crd_key()
                && !dry_run
                && deleted.pointer("/metadata/deletionTimestamp").is_none()
            {
                shared.uninstall_crd_kinds(&deleted);
            }
            Ok(json_response(200, &deleted))
        }
        ("DELETE", None) => {
            let filter = filter_from(query, namespace)?;
            let options = parse_body(body, false)?;
            let mut store = shared.lock_store();
            let mut deleted = Vec::new();
            for object in store.list(&kind, &filter) {
                let object_ns = object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let object_name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                deleted.push(store.delete(&kind, object_ns, object_name, &options, dry_run)?);
            }
            let list = json!({"apiVersion": kind.api_version(), "kind": format!("{}List", kind.kind),
                "metadata": {"resourceVersion": store.rv.to_string()}, "items": deleted});
            Ok(json_response(200, &list))
        }
        _ => Err(no_collection_verb()),
    }
}

/// Lists sorted by namespace/name; `limit` + `continue` paginate (the continue token is the last key
/// returned; later pages reflect the current state rather than a snapshot).
fn list_response(
    shared: &Shared,
    kind: &ResourceKind,
    filter: &Filter,
    query: &HashMap<String, String>,
) -> Value {
    let store = shared.lock_store();
    let mut items = store.list(kind, filter);
    let key_of = |o: &Value| {
        format!(
            "{}/{}",
            o.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(""),
            o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
        )
    };
    if let Some(after) = query.get("continue").filter(|c| !c.is_empty()) {
        items.retain(|o| key_of(o).as_str() > after.as_str());
    }
    let mut metadata = json!({"resourceVersion": store.rv.to_string()});
    if let Some(limit) = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
    {
        if items.len() > limit {
            items.truncate(limit);
            if let Some(last) = items.last() {
                metadata["continue"] = json!(key_of(last));
                metadata["remainingItemCount"] =
                    json!(store.list(kind, filter).len().saturating_sub(limit));
            }
        }
    }
    json!({"apiVersion": kind.api_version(), "kind": format!("{}List", kind.kind), "metadata": metadata, "items": items})
}

fn version_info() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0+flexgate-standin", "gitCommit": "standin",
        "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24",
        "compiler": "gc", "platform": "linux/amd64", "emulationMajor": "1", "emulationMinor": "33"
    })
}

fn watch_line(event: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": event, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn bookmark(kind: &ResourceKind, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    watch_line(
        "BOOKMARK",
        &json!({"apiVersion": kind.api_version(), "kind": kind.kind, "metadata": metadata}),
    )
}

fn expired(message: String) -> Bytes {
    watch_line("ERROR", &ApiError::new(410, "Expired", message).to_status())
}

struct ActiveWatch(Arc<Shared>);

impl Drop for ActiveWatch {
    fn drop(&mut self) {
        self.0.active_watches.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// Streams newline-delimited watch events. The stream ends on `timeoutSeconds`, on `drop_watches()`,
/// or after a 410 error event (history compacted or this watcher lagged too far behind).
fn watch_response(
    shared: Arc<Shared>,
    kind: ResourceKind,
    filter: Filter,
    resource_version: Option<String>,
    send_initial_events: bool,
    bookmarks: bool,
    timeout_seconds: Option<u64>,
) -> Result<Response, ApiError> {
    let (start, mut live) = {
        let store = shared.lock_store();
        let start = store.watch_start(
            &kind,
            &filter,
            resource_version.as_deref(),
            send_initial_events,
        )?;
        (start, store.tx.subscribe())
    };
    let (mut out, body) = futures::channel::mpsc::channel::<Bytes>(64);
    let mut epoch = shared.epoch.subscribe();
    shared.active_watches.fetch_add(1, Ordering::SeqCst);
    let guard = ActiveWatch(shared.clone());
    let bookmark_interval = shared.bookmark_interval;
    tokio::spawn(async move {
        let _guard = guard;
        let from_rv = match start {
            WatchStart::Expired { requested, oldest } => {
                let _ = out
                    .send(expired(format!(
                        "too old resource version: {requested} ({oldest})"
                    )))
                    .await;
                return;
            }
            WatchStart::Events { initial, from_rv } => {
                for (event, object) in initial {
                    if out.send(watch_line(event.as_str(), &object)).await.is_err() {
                        return;
                    }
                }
                if send_initial_events && out.send(bookmark(&kind, from_rv, true)).await.is_err() {
                    return;
                }
                from_rv
            }
        };
        let mut seen_rv = from_rv;
        let deadline = timeout_seconds
            .map(|s| tokio::time::Instant::now() + std::time::Duration::from_secs(s));
        let tick_every = bookmark_interval
            .filter(|_| bookmarks)
            .unwrap_or(std::time::Duration::from_secs(86_400));
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + tick_every, tick_every);
        let key = kind.key();
        loop {
            let line = tokio::select! {
                _ = epoch.changed() => return,
                _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => return,
                _ = ticks.tick() => {
                    if !bookmarks { continue; }
                    bookmark(&kind, seen_rv, false)
                }
                received = live.recv() => match received {
                    Ok(record) => {
                        if record.rv <= seen_rv { continue; }
                        seen_rv = record.rv;
                        if record.kind != key { continue; }
                        match translate(&record, &filter) {
                            Some((event, object)) => watch_line(event.as_str(), &object),
                            None => continue,
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let _ = out.send(expired("watch fell too far behind; relist".into())).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if out.send(line).await.is_err() {
                return;
            }
        }
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body.map(Ok::<Bytes, Infallible>)),
    )
        .into_response())
}
