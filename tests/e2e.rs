//! The operator flow against a real cluster: set FLEXGATE_E2E_KUBECONFIG to a kubeconfig (a kind
//! or k3d cluster is enough). The operator runs in this process against the sandbox simulators
//! (on 127.0.0.1), so the cluster only stores objects. Without the variable the test passes
//! after printing why it was skipped.

use std::path::PathBuf;
use std::time::Duration;

use flexgate::api::conditions::{find, READY};
use flexgate::api::{AccessGroupBinding, SiteMapping, Vendor, VendorConnection};
use flexgate::manifests;
use flexgate::operator::controller::{run_on, Listeners, RunOptions};
use flexgate::operator::objects::Objects;
use flexgate::sandbox::Sandbox;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{CustomResourceExt, ResourceExt};

const VARIABLE: &str = "FLEXGATE_E2E_KUBECONFIG";

async fn client() -> Option<kube::Client> {
    let Ok(path) = std::env::var(VARIABLE) else {
        println!("skipped: {VARIABLE} is not set");
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(&path).expect("readable kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("usable kubeconfig");
    Some(kube::Client::try_from(config).expect("kube client"))
}

/// Polls `check` every 500 ms for at most 120 s (a bound, not a timing assertion).
async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..240 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_flow_on_a_real_cluster() {
    let Some(client) = client().await else {
        return;
    };
    // CRDs, as `kubectl apply --server-side -f crds/flexgate.yaml` does.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply("flexgate-e2e").force();
    for crd in [
        VendorConnection::crd(),
        AccessGroupBinding::crd(),
        SiteMapping::crd(),
    ] {
        crds.patch(&crd.name_any(), &apply, &Patch::Apply(&crd))
            .await
            .expect("CRD applied");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let namespace = format!("flexgate-e2e-{}", fastrand::u32(..));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("namespace created");

    let sandbox = Sandbox::start_demo().await.expect("sandbox");
    let (documents, problems) = manifests::load(&[PathBuf::from("examples")]);
    assert!(problems.is_empty(), "{problems:?}");
    let mut objects = Objects::from_documents(&documents).expect("examples load");
    objects
        .connections
        .retain(|c| matches!(c.spec.vendor, Vendor::OfficeRnD | Vendor::Kisi));
    objects
        .bindings
        .retain(|b| b.name_any() == "hot-desk-lobby");
    sandbox.connect(&mut objects);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    for mut secret in objects.secrets.values().cloned() {
        if secret.name_any() != "officernd-credentials" && secret.name_any() != "kisi-credentials" {
            continue;
        }
        secret.metadata.namespace = Some(namespace.clone());
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("secret");
    }
    let connections: Api<VendorConnection> = Api::namespaced(client.clone(), &namespace);
    for mut connection in objects.connections.clone() {
        connection.metadata.namespace = Some(namespace.clone());
        connections
            .create(&PostParams::default(), &connection)
            .await
            .expect("connection");
    }
    let bindings: Api<AccessGroupBinding> = Api::namespaced(client.clone(), &namespace);
    for mut binding in objects.bindings.clone() {
        binding.metadata.namespace = Some(namespace.clone());
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .expect("binding");
    }

    let mut options = RunOptions::new("e2e");
    options.namespace = Some(namespace.clone());
    options.leader_election = false;
    options.clock = sandbox.clock.clock();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(run_on(
        client.clone(),
        options,
        Listeners {
            http,
            webhook: None,
        },
        async move {
            let _ = stopped.await;
        },
    ));

    wait_for("hot-desk-lobby is Synced", || {
        let bindings = bindings.clone();
        async move {
            bindings
                .get("hot-desk-lobby")
                .await
                .ok()
                .and_then(|b| b.status)
                .and_then(|s| find(&s.conditions, READY).map(|c| c.reason.clone()))
                .as_deref()
                == Some("Synced")
        }
    })
    .await;
    assert!(!sandbox
        .group_members(Vendor::Kisi, "OFFICERND_Lobby")
        .contains(&"mallory@example.net".to_owned()));

    bindings
        .delete("hot-desk-lobby", &DeleteParams::default())
        .await
        .expect("delete");
    wait_for("the binding is gone", || {
        let bindings = bindings.clone();
        async move { matches!(bindings.get_opt("hot-desk-lobby").await, Ok(None)) }
    })
    .await;
    assert!(sandbox
        .group_members(Vendor::Kisi, "OFFICERND_Lobby")
        .is_empty());

    let _ = stop.send(());
    operator
        .await
        .expect("operator task")
        .expect("operator stopped cleanly");
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
}
