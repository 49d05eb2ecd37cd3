//! Proves the in-process API stand-in against real kube-rs clients, watchers, controllers and helpers.

mod support;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{finalizer, Event as FinalizerEvent};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use support::apiserver::{ApiServer, ApiServerOptions, FailureRule};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "test.flexgate.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    schema = "disabled"
)]
pub struct WidgetSpec {
    pub size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<WidgetCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct WidgetCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default)]
    pub reason: String,
}

fn widget(name: &str, size: u32) -> Widget {
    let mut w = Widget::new(name, WidgetSpec { size, color: None });
    w.metadata.namespace = Some("default".into());
    w
}

async fn started() -> (ApiServer, Api<Widget>) {
    let server = ApiServer::start().await;
    server.install_crd_for::<Widget>();
    let widgets = Api::namespaced(server.client(), "default");
    (server, widgets)
}

/// Drives a stream on its own task so the watcher keeps its watch open between the test's reads.
fn spawn_stream<T: Send + 'static>(
    stream: impl futures::Stream<Item = T> + Send + 'static,
) -> tokio::sync::mpsc::UnboundedReceiver<T> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(stream.for_each(move |item| {
        let _ = tx.send(item);
        async {}
    }));
    rx
}

fn api_code(error: &kube::Error) -> (u16, String) {
    match error {
        kube::Error::Api(status) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_follows_kubernetes_semantics() {
    let (server, widgets) = started().await;
    let mut labelled = widget("a", 1);
    labelled.metadata.labels = Some(BTreeMap::from([("tier".to_string(), "gold".to_string())]));
    let created = widgets
        .create(&PostParams::default(), &labelled)
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    widgets
        .create(&PostParams::default(), &widget("b", 2))
        .await
        .unwrap();

    let again = widgets
        .create(&PostParams::default(), &widget("a", 9))
        .await
        .unwrap_err();
    assert_eq!(api_code(&again), (409, "AlreadyExists".to_string()));

    let fetched = widgets.get("a").await.unwrap();
    assert_eq!(fetched.spec.size, 1);
    let all = widgets.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), 2);
    assert!(all.metadata.resource_version.is_some());
    let gold = widgets
        .list(&ListParams::default().labels("tier=gold"))
        .await
        .unwrap();
    assert_eq!(
        gold.items.iter().map(|w| w.name_any()).collect::<Vec<_>>(),
        vec!["a"]
    );
    let by_name = widgets
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(
        by_name
            .items
            .iter()
            .map(|w| w.name_any())
            .collect::<Vec<_>>(),
        vec!["b"]
    );

    let mut changed = fetched.clone();
    changed.spec.size = 5;
    let replaced = widgets
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.spec.size, 5);
    assert_ne!(replaced.resource_version(), fetched.resource_version());
    // Replaying the stale object must conflict.
    let stale = widgets
        .replace("a", &PostParams::default(), &fetched)
        .await
        .unwrap_err();
    assert_eq!(api_code(&stale), (409, "Conflict".to_string()));

    widgets.delete("a", &DeleteParams::default()).await.unwrap();
    let gone = widgets.get("a").await.unwrap_err();
    assert_eq!(api_code(&gone), (404, "NotFound".to_string()));
    assert_eq!(server.objects("Widget").len(), 1);
    assert_eq!(
        server.get_as::<Widget>("default", "b").map(|w| w.spec.size),
        Some(2)
    );
}

#[tokio::test]
async fn status_subresource_is_isolated_and_generation_tracks_spec() {
    let (server, widgets) = started().await;
    let mut with_status = widget("w", 1);
    with_status.status = Some(WidgetStatus {
        observed_generation: Some(42),
        ..Default::default()
    });
    let created = widgets
        .create(&PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(
        created.status, None,
        "status is dropped on create when /status exists"
    );

    // A status write through the main resource is ignored, the spec change is kept.
    let mut main_write = created.clone();
    main_write.spec.size = 2;
    main_write.status = Some(WidgetStatus {
        observed_generation: Some(7),
        ..Default::default()
    });
    let after_main = widgets
        .replace("w", &PostParams::default(), &main_write)
        .await
        .unwrap();
    assert_eq!(after_main.status, None);
    assert_eq!(after_main.spec.size, 2);
    assert_eq!(after_main.metadata.generation, Some(2));

    // A spec write through /status is ignored, the status change is kept, generation stays.
    let status_patch = json!({"spec": {"size": 99}, "status": {"observedGeneration": 2}});
    let after_status = widgets
        .patch_status("w", &PatchParams::default(), &Patch::Merge(&status_patch))
        .await
        .unwrap();
    assert_eq!(after_status.spec.size, 2);
    assert_eq!(
        after_status
            .status
            .as_ref()
            .and_then(|s| s.observed_generation),
        Some(2)
    );
    assert_eq!(after_status.metadata.generation, Some(2));
    assert_ne!(
        after_status.resource_version(),
        after_main.resource_version()
    );

    // Metadata-only change: new resourceVersion, same generation.
    let labels = json!({"metadata": {"labels": {"x": "y"}}});
    let after_labels = widgets
        .patch("w", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(after_labels.metadata.generation, Some(2));
    assert_ne!(
        after_labels.resource_version(),
        after_status.resource_version()
    );

    // No-op patch: nothing changes, not even the resourceVersion.
    let noop = widgets
        .patch("w", &PatchParams::default(), &Patch::Merge(&labels))
        .await
        .unwrap();
    assert_eq!(noop.resource_version(), after_labels.resource_version());

    // Stale resourceVersion on a status replace conflicts too.
    let mut stale_status = created.clone();
    stale_status.status = Some(WidgetStatus::default());
    let conflict = widgets
        .replace_status("w", &PostParams::default(), &stale_status)
        .await
        .unwrap_err();
    assert_eq!(api_code(&conflict).0, 409);
    assert_eq!(
        server.get("Widget", "default", "w").unwrap()["spec"]["size"],
        2
    );
}

#[tokio::test]
async fn server_side_apply_merges_status_conditions_by_type() {
    let (server, widgets) = started().await;
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let apply = PatchParams::apply("flexgate-test").force();
    let ready = json!({"apiVersion": "test.flexgate.dev/v1", "kind": "Widget",
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Pending"}]}});
    widgets
        .patch_status("w", &apply, &Patch::Apply(&ready))
        .await
        .unwrap();
    let synced = json!({"apiVersion": "test.flexgate.dev/v1", "kind": "Widget",
        "status": {"conditions": [{"type": "Synced", "status": "True", "reason": "Done"}]}});
    widgets
        .patch_status("w", &apply, &Patch::Apply(&synced))
        .await
        .unwrap();
    let ready_now = json!({"apiVersion": "test.flexgate.dev/v1", "kind": "Widget",
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled"}]}});
    let result = widgets
        .patch_status("w", &apply, &Patch::Apply(&ready_now))
        .await
        .unwrap();

    let conditions = result.status.unwrap().conditions;
    let summary: Vec<(String, String)> = conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("Ready".into(), "True".into()),
            ("Synced".into(), "True".into())
        ]
    );

    let status_applies: Vec<_> = server
        .request_log()
        .into_iter()
        .filter(|r| r.is_status_write() && r.is_apply_patch())
        .collect();
    assert_eq!(status_applies.len(), 3);
    assert_eq!(
        status_applies[0].query_param("fieldManager").as_deref(),
        Some("flexgate-test")
    );

    // Apply to a missing object creates it.
    let fresh = json!({"apiVersion": "test.flexgate.dev/v1", "kind": "Widget",
        "metadata": {"name": "applied"}, "spec": {"size": 3}});
    let created = widgets
        .patch("applied", &apply, &Patch::Apply(&fresh))
        .await
        .unwrap();
    assert_eq!(
        (created.spec.size, created.metadata.generation),
        (3, Some(1))
    );
}

#[tokio::test]
async fn finalizer_helper_adds_and_removes_its_finalizer_around_deletion() {
    let (server, widgets) = started().await;
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    const NAME: &str = "flexgate.dev/cleanup";
    let run = |obj: Widget| {
        let widgets = widgets.clone();
        async move {
            finalizer(&widgets, NAME, Arc::new(obj), |event| async move {
                Ok::<_, std::io::Error>(match event {
                    FinalizerEvent::Apply(_) => Action::await_change(),
                    FinalizerEvent::Cleanup(_) => Action::await_change(),
                })
            })
            .await
        }
    };
    run(widgets.get("w").await.unwrap()).await.unwrap();
    assert_eq!(
        widgets.get("w").await.unwrap().finalizers(),
        &[NAME.to_string()]
    );
    let json_patches = server
        .request_log()
        .into_iter()
        .filter(|r| r.content_type.as_deref() == Some("application/json-patch+json"));
    assert_eq!(json_patches.count(), 1);

    // Second finalizer added by someone else exercises the non-empty "test + add /-" path.
    let other = json!([{"op": "add", "path": "/metadata/finalizers/-", "value": "other/keep"}]);
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(other).unwrap()),
        )
        .await
        .unwrap();

    widgets.delete("w", &DeleteParams::default()).await.unwrap();
    let deleting = widgets.get("w").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());

    let late = json!([{"op": "add", "path": "/metadata/finalizers/-", "value": "late/one"}]);
    let late = Patch::Json::<()>(serde_json::from_value(late).unwrap());
    let refused = widgets
        .patch("w", &PatchParams::default(), &late)
        .await
        .unwrap_err();
    assert_eq!(api_code(&refused), (422, "Invalid".to_string()));

    run(deleting).await.unwrap();
    let remaining = widgets.get("w").await.unwrap();
    assert_eq!(remaining.finalizers(), &["other/keep".to_string()]);

    let drop_other = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "other/keep"},
        {"op": "remove", "path": "/metadata/finalizers/0"}]);
    widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Json::<()>(serde_json::from_value(drop_other).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(api_code(&widgets.get("w").await.unwrap_err()).0, 404);

    // A failing JSON patch test is rejected with 422.
    widgets
        .create(&PostParams::default(), &widget("x", 1))
        .await
        .unwrap();
    let wrong = json!([{"op": "test", "path": "/spec/size", "value": 7}, {"op": "replace", "path": "/spec/size", "value": 8}]);
    let wrong = Patch::Json::<()>(serde_json::from_value(wrong).unwrap());
    let rejected = widgets
        .patch("x", &PatchParams::default(), &wrong)
        .await
        .unwrap_err();
    assert_eq!(api_code(&rejected).0, 422);
}

#[derive(Debug, thiserror::Error)]
#[error("reconcile failed: {0}")]
struct ReconcileError(#[from] kube::Error);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reconciles_new_objects_and_spec_updates() {
    let (server, widgets) = started().await;
    let controller_api = widgets.clone();
    let controller = tokio::spawn(
        Controller::new(widgets.clone(), watcher::Config::default())
            .run(
                |obj: Arc<Widget>, api: Arc<Api<Widget>>| async move {
                    let status = json!({"status": {"observedGeneration": obj.metadata.generation}});
                    api.patch_status(
                        &obj.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&status),
                    )
                    .await?;
                    Ok::<_, ReconcileError>(Action::await_change())
                },
                |_obj, _error: &ReconcileError, _ctx| {
                    Action::requeue(std::time::Duration::from_millis(50))
                },
                Arc::new(controller_api),
            )
            .for_each(|_| async {}),
    );
    server
        .wait_until("the controller watches widgets", |s| s.active_watches() > 0)
        .await;

    widgets
        .create(&PostParams::default(), &widget("late", 1))
        .await
        .unwrap();
    let observed = |s: &ApiServer| {
        s.get_as::<Widget>("default", "late")
            .and_then(|w| w.status?.observed_generation)
    };
    server
        .wait_until("generation 1 is observed", |s| observed(s) == Some(1))
        .await;

    let grow = json!({"spec": {"size": 2}});
    widgets
        .patch("late", &PatchParams::default(), &Patch::Merge(&grow))
        .await
        .unwrap();
    server
        .wait_until("generation 2 is observed", |s| observed(s) == Some(2))
        .await;
    controller.abort();
}

#[tokio::test]
async fn watcher_resumes_after_dropped_streams_and_relists_after_expiry() {
    let (server, widgets) = started().await;
    let mut stream = spawn_stream(
        watcher(widgets.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .filter_map(|r| async move { r.ok() }),
    );
    widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .unwrap();
    assert_eq!(stream.recv().await.unwrap().name_any(), "a");
    server
        .wait_until("the watch is open", |s| s.active_watches() == 1)
        .await;

    // Blip: streams end, the watcher re-watches from its last resourceVersion without relisting.
    server.drop_watches();
    widgets
        .create(&PostParams::default(), &widget("b", 1))
        .await
        .unwrap();
    assert_eq!(stream.recv().await.unwrap().name_any(), "b");
    let lists = |s: &ApiServer| {
        s.request_log()
            .iter()
            .filter(|r| r.method == "GET" && !r.watch && r.path.ends_with("/widgets"))
            .count()
    };
    assert_eq!(lists(&server), 1);
    server
        .wait_until("the watch is open again", |s| s.active_watches() == 1)
        .await;

    // Keep the watcher away while a change happens and the history is compacted: resuming gets 410
    // and the watcher relists, finding the object it never saw an event for.
    server.fail_matching(FailureRule::new(usize::MAX, 503).watches_only());
    server.drop_watches();
    widgets
        .create(&PostParams::default(), &widget("c", 1))
        .await
        .unwrap();
    server.compact();
    server
        .wait_until("a watch attempt was refused", |s| {
            s.request_log().iter().any(|r| r.watch && r.status == 503)
        })
        .await;
    server.clear_failures();
    let mut seen = Vec::new();
    while !seen.contains(&"c".to_string()) {
        seen.push(stream.recv().await.unwrap().name_any());
    }
    assert_eq!(
        lists(&server),
        2,
        "the expired resourceVersion forced exactly one relist"
    );
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events() {
    let (_server, widgets) = started().await;
    widgets
        .create(&PostParams::default(), &widget("pre", 1))
        .await
        .unwrap();
    let mut stream = watcher(
        widgets.clone(),
        watcher::Config::default().streaming_lists(),
    )
    .default_backoff()
    .touched_objects()
    .boxed();
    assert_eq!(stream.try_next().await.unwrap().unwrap().name_any(), "pre");
    widgets
        .create(&PostParams::default(), &widget("post", 1))
        .await
        .unwrap();
    assert_eq!(stream.try_next().await.unwrap().unwrap().name_any(), "post");
}

#[tokio::test]
async fn recorder_publishes_events_and_series() {
    let (server, widgets) = started().await;
    let w = widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let recorder = Recorder::new(
        server.client(),
        Reporter {
            controller: "flexgate-test".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "VendorUnreachable".into(),
        note: Some("Kisi answered 503".into()),
        action: "Sync".into(),
        secondary: None,
    };
    recorder.publish(&event, &w.object_ref(&())).await.unwrap();
    recorder.publish(&event, &w.object_ref(&())).await.unwrap();
    let events = server.objects_of::<K8sEvent>();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].reason.as_deref(), Some("VendorUnreachable"));
    assert_eq!(
        events[0].regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("w")
    );
    assert_eq!(events[0].series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(server.events().len(), 1);
}

#[tokio::test]
async fn lease_updates_conflict_on_stale_resource_version() {
    let server = ApiServer::start().await;
    let leases: Api<Lease> = Api::namespaced(server.client(), "flexgate-system");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("flexgate-leader".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("pod-a".into()),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }),
    };
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut renew_a = created.clone();
    renew_a.spec.as_mut().unwrap().lease_transitions = Some(0);
    let renewed = leases
        .replace("flexgate-leader", &PostParams::default(), &renew_a)
        .await
        .unwrap();

    // pod-b read the lease before the renewal; its takeover must fail.
    let mut takeover = created.clone();
    takeover.spec.as_mut().unwrap().holder_identity = Some("pod-b".into());
    let lost = leases
        .replace("flexgate-leader", &PostParams::default(), &takeover)
        .await
        .unwrap_err();
    assert_eq!(api_code(&lost), (409, "Conflict".to_string()));
    assert_eq!(
        leases
            .get("flexgate-leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("pod-a")
    );
    assert_eq!(
        renewed.metadata.namespace.as_deref(),
        Some("flexgate-system")
    );
}

#[tokio::test]
async fn uninstalled_crds_answer_404_and_discovery_tracks_them() {
    let server = ApiServer::start().await;
    let client = server.client();
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        api_code(&widgets.list(&ListParams::default()).await.unwrap_err()).0,
        404
    );
    let groups = client.list_api_groups().await.unwrap();
    assert!(!groups.groups.iter().any(|g| g.name == "test.flexgate.dev"));

    // Installing through the API, as `kubectl apply -f crd.yaml` would.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .unwrap();
    widgets
        .create(&PostParams::default(), &widget("w", 1))
        .await
        .unwrap();
    let groups = client.list_api_groups().await.unwrap();
    assert!(groups.groups.iter().any(|g| g.name == "test.flexgate.dev"));
    let resources = client
        .list_api_group_resources("test.flexgate.dev/v1")
        .await
        .unwrap();
    assert!(resources
        .resources
        .iter()
        .any(|r| r.name == "widgets/status"));
    assert!(client.apiserver_version().await.is_ok());

    server.uninstall("Widget");
    assert_eq!(api_code(&widgets.get("w").await.unwrap_err()).0, 404);
}

#[tokio::test]
async fn validators_reject_writes_with_422() {
    let options = ApiServerOptions::new()
        .crd_for::<Widget>()
        .validator("Widget", |new, old| {
            let size = new["spec"]["size"].as_u64().unwrap_or(0);
            if size > 10 {
                return Err(format!(
                    "spec.size: Invalid value: {size}: must be at most 10 (was {:?})",
                    old.map(|o| o["spec"]["size"].clone())
                ));
            }
            Ok(())
        });
    let server = ApiServer::start_with(options).await;
    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    let too_big = widgets
        .create(&PostParams::default(), &widget("big", 11))
        .await
        .unwrap_err();
    assert_eq!(api_code(&too_big), (422, "Invalid".to_string()));
    widgets
        .create(&PostParams::default(), &widget("ok", 10))
        .await
        .unwrap();
    let grow = json!({"spec": {"size": 12}});
    let rejected = widgets
        .patch("ok", &PatchParams::default(), &Patch::Merge(&grow))
        .await
        .unwrap_err();
    match rejected {
        kube::Error::Api(status) => assert!(
            status.message.contains("was Some(Number(10))"),
            "{}",
            status.message
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn injected_failures_hit_the_next_requests_only() {
    let server = ApiServer::start().await;
    let secrets: Api<Secret> = Api::namespaced(server.client(), "vendors");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("kisi".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([(
            "apiKey".to_string(),
            "not-a-real-key".to_string(),
        )])),
        ..Default::default()
    };
    server.fail_next(1, 500);
    let failed = secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_err();
    assert_eq!(api_code(&failed), (500, "InternalError".to_string()));
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let everywhere: Api<Secret> = Api::all(server.client());
    assert_eq!(
        everywhere
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // kube's client retries 429/503/504 on its own: one injected 503 is invisible to the caller.
    server.fail_next(1, 503);
    assert!(secrets.get("kisi").await.is_ok());
    let statuses: Vec<u16> = server.request_log().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![500, 201, 200, 503, 200]);
    let logged = serde_json::to_string(&server.request_log()[1].body).unwrap();
    assert!(
        logged.contains("apiKey") && !logged.contains("not-a-real-key"),
        "{logged}"
    );
}

#[tokio::test]
async fn label_selector_watch_sees_objects_leave_the_selection() {
    let (server, widgets) = started().await;
    let mut w = widget("w", 1);
    w.metadata.labels = Some(BTreeMap::from([("team".to_string(), "a".to_string())]));
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let mut stream = spawn_stream(
        watcher(widgets.clone(), watcher::Config::default().labels("team=a")).default_backoff(),
    );
    let mut initial = Vec::new();
    while let Some(event) = stream.recv().await.transpose().unwrap() {
        match event {
            watcher::Event::InitApply(obj) => initial.push(obj.name_any()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, vec!["w"]);
    server
        .wait_until("the watch is open", |s| s.active_watches() == 1)
        .await;
    let relabel = json!({"metadata": {"labels": {"team": "b"}}});
    widgets
        .patch("w", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .unwrap();
    match stream.recv().await.transpose().unwrap() {
        Some(watcher::Event::Delete(obj)) => assert_eq!(obj.name_any(), "w"),
        other => panic!("expected a delete, got {other:?}"),
    }
}

#[tokio::test]
async fn apply_honours_list_types_declared_in_the_crd_schema() {
    let server = ApiServer::start().await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gates.test.flexgate.dev"},
        "spec": {"group": "test.flexgate.dev", "scope": "Namespaced",
            "names": {"kind": "Gate", "plural": "gates", "singular": "gate", "listKind": "GateList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"doors": {"type": "array",
                        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                        "items": {"type": "object"}}}},
                    "status": {"type": "object", "properties": {"conditions": {"type": "array",
                        "x-kubernetes-list-type": "atomic", "items": {"type": "object"}}}}}}}}]}
    });
    server.install_crd(&serde_json::from_value(crd).unwrap());
    let resource = kube::api::ApiResource {
        group: "test.flexgate.dev".into(),
        version: "v1".into(),
        api_version: "test.flexgate.dev/v1".into(),
        kind: "Gate".into(),
        plural: "gates".into(),
    };
    let gates: Api<kube::api::DynamicObject> =
        Api::namespaced_with(server.client(), "default", &resource);
    let apply = PatchParams::apply("flexgate-test");
    let gate = |doors: serde_json::Value| json!({"apiVersion": "test.flexgate.dev/v1", "kind": "Gate", "metadata": {"name": "g"}, "spec": {"doors": doors}});
    gates
        .patch(
            "g",
            &apply,
            &Patch::Apply(gate(json!([{"id": "d1", "open": false}]))),
        )
        .await
        .unwrap();
    let merged = gates
        .patch(
            "g",
            &apply,
            &Patch::Apply(gate(json!([{"id": "d2", "open": true}]))),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data["spec"]["doors"],
        json!([{"id": "d1", "open": false}, {"id": "d2", "open": true}])
    );
    assert_eq!(merged.metadata.generation, Some(2));

    let status = |conditions: serde_json::Value| json!({"apiVersion": "test.flexgate.dev/v1", "kind": "Gate", "status": {"conditions": conditions}});
    gates
        .patch_status("g", &apply, &Patch::Apply(status(json!([{"type": "A"}]))))
        .await
        .unwrap();
    let atomic = gates
        .patch_status("g", &apply, &Patch::Apply(status(json!([{"type": "B"}]))))
        .await
        .unwrap();
    assert_eq!(
        atomic.data["status"]["conditions"],
        json!([{"type": "B"}]),
        "declared atomic lists are replaced"
    );
}
