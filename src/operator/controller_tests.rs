//! The cluster wiring's decisions that need no API server, from fixtures: what triggers a
//! reconcile, which objects a Secret or connection change reaches, resync spread, contained
//! panics, the CRD check, pruning. (What a reconcile decides is tested beside the pipelines in
//! `reconcile/`.)

use std::time::Duration;

use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt;

use super::*;
use crate::api::AccessGroupBindingStatus;
use crate::operator::cluster::{
    contained, forget_deleted, jitter, AccountLock, ReconcileError, StatusKey,
};
use crate::operator::controller::check_crds;
use crate::operator::reconcile::fixtures::{at, binding, connection};
use crate::operator::reconcile::{stamp as status_time, sync_interval};
use kube::runtime::controller::Action;

fn in_namespace<K: Resource>(mut object: K, namespace: &str) -> K {
    object.meta_mut().namespace = Some(namespace.to_owned());
    object
}

fn store<K>(objects: Vec<K>) -> Store<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, mut writer) = reflector::store();
    for object in objects {
        writer.apply_watcher_event(&watcher::Event::Apply(object));
    }
    reader
}

fn names<K: Resource>(refs: &[ObjectRef<K>]) -> Vec<String>
where
    K::DynamicType: Clone,
{
    let mut names: Vec<String> = refs.iter().map(|r| r.name.clone()).collect();
    names.sort();
    names
}

#[test]
fn a_reconcile_follows_the_spec_the_request_annotations_and_deletion_only() {
    let base = binding("lobby", "officernd", "kisi");
    let key = spec_or_request(&base);

    let mut status_only = base.clone();
    status_only.status = Some(AccessGroupBindingStatus {
        observed_generation: Some(1),
        ..Default::default()
    });
    status_only.labels_mut().insert("team".into(), "ops".into());
    status_only
        .annotations_mut()
        .insert("note".into(), "unrelated".into());
    assert_eq!(
        spec_or_request(&status_only),
        key,
        "status, labels, other annotations"
    );

    let mut edited = base.clone();
    edited.metadata.generation = Some(2);
    let mut requested = base.clone();
    requested
        .annotations_mut()
        .insert(RECONCILE_REQUESTED_AT.into(), "now".into());
    let mut acknowledged = base.clone();
    acknowledged
        .annotations_mut()
        .insert(ACKNOWLEDGE_REVOCATION.into(), "plan-1".into());
    let mut deleting = base.clone();
    deleting.metadata.deletion_timestamp = Some(status_time(at("2026-11-23T08:00:00Z")));
    for (what, changed) in [
        ("a spec edit", edited),
        ("a reconcile request", requested),
        ("an acknowledgement", acknowledged),
        ("a deletion", deleting),
    ] {
        assert_ne!(spec_or_request(&changed), key, "{what} must reconcile");
    }
}

#[test]
fn a_connection_change_reaches_the_bindings_of_its_namespace_that_use_it_either_way() {
    let bindings = store(vec![
        binding("lobby", "officernd", "kisi"),
        binding("floor", "officernd", "salto"),
        binding("other-org", "officernd-paris", "kisi"),
        in_namespace(binding("elsewhere", "officernd", "kisi"), "other"),
    ]);
    assert_eq!(
        names(&bindings_of_connection(&bindings, "doors", "kisi")),
        ["lobby", "other-org"]
    );
    assert_eq!(
        names(&bindings_of_connection(&bindings, "doors", "officernd")),
        ["floor", "lobby"]
    );
    assert!(bindings_of_connection(&bindings, "doors", "brivo").is_empty());
}

#[test]
fn a_secret_change_reaches_the_connections_of_its_namespace_that_read_it() {
    let connections = store(vec![
        connection("kisi", "Kisi", "door-keys"),
        connection("kisi-annex", "Kisi", "door-keys"),
        connection("officernd", "OfficeRnD", "officernd-credentials"),
        in_namespace(connection("kisi", "Kisi", "door-keys"), "other"),
    ]);
    let mut reached: Vec<String> = connections_of_secret(&connections, "doors", "door-keys")
        .iter()
        .map(|c| c.name_any())
        .collect();
    reached.sort();
    assert_eq!(reached, ["kisi", "kisi-annex"]);
    assert!(connections_of_secret(&connections, "doors", "unused").is_empty());
}

#[test]
fn resyncs_spread_by_at_most_a_tenth() {
    let interval = Duration::from_secs(900);
    for _ in 0..1000 {
        let delay = jitter(interval);
        assert!(delay >= Duration::from_secs(810) && delay <= Duration::from_secs(990));
    }
    assert_eq!(
        sync_interval(Some(&connection("kisi", "Kisi", "s"))),
        Duration::from_secs(15 * 60)
    );
}

#[test]
fn a_resync_interval_below_thirty_seconds_is_held_at_thirty() {
    let mut kisi = connection("kisi", "Kisi", "s");
    for (written, honoured) in [
        ("1ms", 30),
        ("0s", 30),
        ("29s", 30),
        ("45s", 45),
        ("1h", 3600),
    ] {
        kisi.spec.sync_interval = written.to_owned();
        assert_eq!(
            sync_interval(Some(&kisi)),
            Duration::from_secs(honoured),
            "{written}"
        );
    }
    kisi.spec.sync_interval = "soon".to_owned();
    assert_eq!(sync_interval(Some(&kisi)), Duration::from_secs(900));
}

#[tokio::test]
async fn a_panicking_reconcile_becomes_that_objects_error() {
    let outcome = contained(async {
        let margins: Vec<i64> = Vec::new();
        #[allow(clippy::indexing_slicing)]
        let _ = margins[3];
        Ok(Action::await_change())
    })
    .await;
    assert!(
        matches!(&outcome, Err(ReconcileError::Panicked(message)) if message.contains("index out of bounds")),
        "{outcome:?}"
    );
    let calm = contained(async { Ok(Action::await_change()) }).await;
    assert!(calm.is_ok());
}

/// An API server on which the flexgate kinds are not installed: every request answers 404, as
/// the real server does for a resource of an unknown group.
#[derive(Clone)]
struct WithoutFlexgateCrds;

impl tower::Service<axum::http::Request<kube::client::Body>> for WithoutFlexgateCrds {
    type Response = axum::http::Response<kube::client::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<kube::client::Body>) -> Self::Future {
        let body = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("the server could not find the requested resource ({})", request.uri().path()),
            "reason": "NotFound", "code": 404,
        });
        let response = axum::http::Response::builder()
            .status(404)
            .header("content-type", "application/json")
            .body(kube::client::Body::from(body.to_string().into_bytes()))
            .expect("a response");
        std::future::ready(Ok(response))
    }
}

#[tokio::test]
async fn missing_crds_are_a_clear_error_naming_the_fix() {
    let client = Client::new(WithoutFlexgateCrds, "default");
    let error = check_crds(&client, None).await.unwrap_err();
    match &error {
        OperatorError::CrdsMissing { missing } => {
            assert_eq!(missing, &[CONNECTION_KIND, BINDING_KIND]);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        error.to_string().starts_with(
            "the flexgate CRDs are not installed: kubectl apply --server-side -f crds/flexgate.yaml"
        ),
        "{error}"
    );
    assert!(!serves_site_mappings(&client, Some("doors")).await.unwrap());
}

#[test]
fn the_per_object_maps_forget_deleted_objects_but_not_a_held_account_lock() {
    let key = |kind: &'static str, name: &str| (kind, "doors".to_owned(), name.to_owned());
    let mut failures: HashMap<(String, String, String), u32> = HashMap::from([
        ((BINDING_KIND.into(), "doors".into(), "kept".into()), 1),
        ((BINDING_KIND.into(), "doors".into(), "deleted".into()), 3),
    ]);
    let mut written: HashMap<StatusKey, u64> = HashMap::from([
        (key(BINDING_KIND, "kept"), 1),
        (key(SITE_MAPPING_KIND, "deleted"), 2),
        (key(CONNECTION_KIND, "kisi"), 3),
    ]);
    let now = tokio::time::Instant::now();
    let mut triggered = HashMap::from([
        (("doors".to_owned(), "kept".to_owned()), now),
        (("doors".to_owned(), "deleted".to_owned()), now),
    ]);
    let held = AccountLock::default();
    let mut accounts: HashMap<(String, String), AccountLock> = HashMap::from([
        (
            ("doors".to_owned(), "kisi".to_owned()),
            AccountLock::default(),
        ),
        (
            ("doors".to_owned(), "gone".to_owned()),
            AccountLock::default(),
        ),
        (
            ("doors".to_owned(), "gone-but-held".to_owned()),
            held.clone(),
        ),
    ]);
    forget_deleted(
        &mut failures,
        &mut written,
        &mut triggered,
        &mut accounts,
        |_, _, name| name == "kept" || name == "kisi",
    );
    assert_eq!(failures.len(), 1);
    let mut names: Vec<&str> = written.keys().map(|(_, _, name)| name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["kept", "kisi"]);
    assert_eq!(triggered.len(), 1);
    let mut accounts: Vec<&str> = accounts.keys().map(|(_, name)| name.as_str()).collect();
    accounts.sort();
    assert_eq!(accounts, ["gone-but-held", "kisi"]);
}
