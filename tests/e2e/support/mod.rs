//! What every end-to-end test needs: the cluster named by `FLEXGATE_E2E_KUBECONFIG` (the CRDs
//! installed once), a fresh namespace per test, the sandbox simulators with the examples pointed
//! at them, an operator running in this process on that namespace, waits and Event reads.

#![allow(dead_code)]

pub mod calls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flexgate::api::conditions::{find, READY};
use flexgate::api::{AccessGroupBinding, SiteMapping, Vendor, VendorConnection};
use flexgate::manifests;
use flexgate::operator::controller::{run_on, Listeners, OperatorError, RunOptions};
use flexgate::operator::objects::Objects;
use flexgate::operator::telemetry::Metrics;
use flexgate::sandbox::Sandbox;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, OnceCell};

/// The variable naming the cluster's kubeconfig.
pub const VARIABLE: &str = "FLEXGATE_E2E_KUBECONFIG";
/// The Kisi group the Hot Desk plan and the day passes are bound to in the examples.
pub const LOBBY: &str = "OFFICERND_Lobby";
/// The example bindings on the Kisi account.
pub const KISI_BINDINGS: [&str; 3] = ["hot-desk-lobby", "day-passes", "office-101"];

/// The kubeconfig path, or `None` after saying the test is skipped.
pub fn kubeconfig() -> Option<PathBuf> {
    match std::env::var(VARIABLE) {
        Ok(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            println!("skipped: {VARIABLE} is not set (see README, 'Tests on a real cluster')");
            None
        }
    }
}

/// A client with the kubeconfig's own credentials (cluster admin on the test cluster).
pub async fn admin_client(path: &PathBuf) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("readable kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("usable kubeconfig");
    Client::try_from(config).expect("kube client")
}

static CRDS: OnceCell<()> = OnceCell::const_new();

/// Applies the three CRDs (server-side, as `kubectl apply --server-side -f crds/` does) once per
/// test binary and waits until the server serves them.
pub async fn install_crds(client: &Client) {
    CRDS.get_or_init(|| async {
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
            let name = crd.name_any();
            wait_until(&format!("CRD {name} is Established"), async || {
                crds.get_opt(&name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|c| c.status)
                    .and_then(|s| s.conditions)
                    .is_some_and(|conditions| {
                        conditions
                            .iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
            })
            .await;
        }
    })
    .await;
}

/// The test cluster: an admin client, the CRDs installed, and a fresh namespace of its own.
pub struct Cluster {
    pub kubeconfig: PathBuf,
    pub client: Client,
    pub namespace: String,
}

impl Cluster {
    /// `None` (after saying so) when no cluster is configured.
    pub async fn connect(test: &str) -> Option<Self> {
        let kubeconfig = kubeconfig()?;
        let client = admin_client(&kubeconfig).await;
        install_crds(&client).await;
        let namespace = create_namespace(&client, test).await;
        Some(Cluster {
            kubeconfig,
            client,
            namespace,
        })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Runs kubectl on this cluster and namespace; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        let output = std::process::Command::new(tool("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("-n")
            .arg(&self.namespace)
            .args(args)
            .output()
            .expect("kubectl runs (put it on PATH or set FLEXGATE_E2E_KUBECTL)");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The Events recorded about objects in this namespace.
    pub async fn events(&self) -> Vec<Event> {
        self.api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("events listed")
            .items
    }

    /// Events with `reason` about the object named `name` (any kind).
    pub async fn events_about(&self, name: &str, reason: &str) -> Vec<Event> {
        self.events()
            .await
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            })
            .collect()
    }

    /// Every Warning Event in this namespace, as "Kind/name reason: note".
    pub async fn warnings(&self) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .map(|e| {
                let regarding = e.regarding.unwrap_or_default();
                format!(
                    "{}/{} {}: {}",
                    regarding.kind.unwrap_or_default(),
                    regarding.name.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default()
                )
            })
            .collect()
    }

    /// Deletes the namespace (best effort: objects with a finalizer keep it Terminating once no
    /// operator runs, which does not matter on a throw-away test cluster).
    pub async fn cleanup(&self) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces
            .delete(&self.namespace, &DeleteParams::default())
            .await;
    }
}

/// The path of a kit tool: `FLEXGATE_E2E_KUBECTL` / `FLEXGATE_E2E_HELM`, else from PATH.
pub fn tool(name: &str) -> String {
    let variable = format!("FLEXGATE_E2E_{}", name.to_ascii_uppercase());
    std::env::var(variable).unwrap_or_else(|_| name.to_owned())
}

/// A namespace named after the test, unique per run.
pub async fn create_namespace(client: &Client, test: &str) -> String {
    let mut prefix: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    prefix.truncate(40);
    let name = format!("e2e-{}-{:08x}", prefix.trim_matches('-'), fastrand::u32(..));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await
        .expect("namespace created");
    name
}

/// Polls `check` every 250 ms for at most 120 s (a bound for a loaded machine, not a timing
/// assertion) and panics naming `what` when it never holds.
pub async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The sandbox and the examples pointed at it, applied into the test's namespace.
pub struct World {
    pub cluster: Cluster,
    pub sandbox: Sandbox,
    pub objects: Objects,
    pub metrics: Arc<Metrics>,
}

impl World {
    /// The examples' OfficeRnD and Kisi connections, their Secrets and the Kisi bindings.
    pub async fn kisi(test: &str) -> Option<Self> {
        Self::with(
            test,
            &[Vendor::OfficeRnD, Vendor::Kisi],
            &KISI_BINDINGS,
            &[],
        )
        .await
    }

    /// The examples' OfficeRnD and essensys connections, their Secrets and the SiteMapping
    /// `london`, no bindings.
    pub async fn essensys(test: &str) -> Option<Self> {
        Self::with(
            test,
            &[Vendor::OfficeRnD, Vendor::Essensys],
            &[],
            &["london"],
        )
        .await
    }

    /// The examples' connections of `vendors`, with their Secrets, and the named bindings and
    /// SiteMappings, applied into a fresh namespace; `None` when no cluster is configured.
    pub async fn with(
        test: &str,
        vendors: &[Vendor],
        bindings: &[&str],
        mappings: &[&str],
    ) -> Option<Self> {
        let world = Self::prepared(test, vendors, bindings, mappings).await?;
        world.apply().await;
        Some(world)
    }

    /// Like [`World::with`], without applying anything yet.
    pub async fn prepared(
        test: &str,
        vendors: &[Vendor],
        bindings: &[&str],
        mappings: &[&str],
    ) -> Option<Self> {
        let cluster = Cluster::connect(test).await?;
        let sandbox = Sandbox::start_demo().await.expect("sandbox");
        let (documents, problems) = manifests::load(&[PathBuf::from("examples")]);
        assert!(problems.is_empty(), "{problems:?}");
        let mut objects = Objects::from_documents(&documents).expect("examples load");
        objects
            .connections
            .retain(|c| vendors.contains(&c.spec.vendor));
        objects
            .bindings
            .retain(|b| bindings.contains(&b.name_any().as_str()));
        objects
            .site_mappings
            .retain(|m| mappings.contains(&m.name_any().as_str()));
        let namespace = cluster.namespace.clone();
        for connection in &mut objects.connections {
            connection.metadata.namespace = Some(namespace.clone());
            // The examples keep the cautious default rate; the simulators do not need it.
            connection.spec.requests_per_second = Some(1000);
        }
        for binding in &mut objects.bindings {
            binding.metadata.namespace = Some(namespace.clone());
        }
        for mapping in &mut objects.site_mappings {
            mapping.metadata.namespace = Some(namespace.clone());
        }
        objects.secrets.clear();
        sandbox.connect(&mut objects);
        Some(World {
            cluster,
            sandbox,
            objects,
            metrics: Arc::new(Metrics::new()),
        })
    }

    /// Creates the Secrets, connections, bindings and SiteMappings of `objects`.
    pub async fn apply(&self) {
        let secrets: Api<Secret> = self.cluster.api();
        for secret in self.objects.secrets.values() {
            secrets
                .create(&PostParams::default(), secret)
                .await
                .expect("secret created");
        }
        let connections: Api<VendorConnection> = self.cluster.api();
        for connection in &self.objects.connections {
            connections
                .create(&PostParams::default(), connection)
                .await
                .expect("connection created");
        }
        let bindings: Api<AccessGroupBinding> = self.cluster.api();
        for binding in &self.objects.bindings {
            bindings
                .create(&PostParams::default(), binding)
                .await
                .expect("binding created");
        }
        let mappings: Api<SiteMapping> = self.cluster.api();
        for mapping in &self.objects.site_mappings {
            mappings
                .create(&PostParams::default(), mapping)
                .await
                .expect("site mapping created");
        }
    }

    pub fn namespace(&self) -> &str {
        &self.cluster.namespace
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        self.cluster.api()
    }

    /// The object as the server has it now.
    pub async fn get<K>(&self, name: &str) -> Option<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        self.api::<K>().get_opt(name).await.expect("object read")
    }

    pub async fn binding(&self, name: &str) -> Option<AccessGroupBinding> {
        self.get(name).await
    }

    pub async fn connection(&self, name: &str) -> Option<VendorConnection> {
        self.get(name).await
    }

    pub async fn site_mapping(&self, name: &str) -> Option<SiteMapping> {
        self.get(name).await
    }

    /// A JSON merge patch of the object's spec or metadata.
    pub async fn merge<K>(&self, name: &str, patch: serde_json::Value)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        self.api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("merge patch accepted");
    }

    /// Members of the Kisi lobby group at the simulator.
    pub fn lobby(&self) -> Vec<String> {
        self.sandbox.group_members(Vendor::Kisi, LOBBY)
    }

    /// Waits until every named binding's Ready reason is `reason` at `generation`.
    pub async fn wait_bindings(&self, names: &[&str], reason: &str, generation: i64) {
        wait_until(
            &format!("{names:?} are {reason} at generation {generation}"),
            async || {
                for name in names {
                    let Some(binding) = self.binding(name).await else {
                        return false;
                    };
                    if binding_reason(&binding, generation).as_deref() != Some(reason) {
                        return false;
                    }
                }
                true
            },
        )
        .await;
    }

    /// Waits until the connection's Ready is (`status`, `reason`).
    pub async fn wait_connection(&self, name: &str, status: &str, reason: &str) {
        wait_until(
            &format!("connection {name} is Ready={status} ({reason})"),
            async || {
                self.connection(name)
                    .await
                    .and_then(|c| connection_ready(&c))
                    == Some((status.to_owned(), reason.to_owned()))
            },
        )
        .await;
    }

    /// Waits until `count` more reconciles of `kind` finished than `before`.
    pub async fn wait_reconciles(&self, kind: &str, before: u64, count: u64) {
        let metrics = self.metrics.clone();
        wait_until("the triggered reconciles finished", async || {
            metrics.reconciles_of(kind) >= before + count
        })
        .await;
    }

    /// Operator options for this world: its namespace, the sandbox clock, short backoffs, its
    /// metrics, no leader election.
    pub fn options(&self, identity: &str) -> RunOptions {
        let mut options = RunOptions::new(identity);
        options.namespace = Some(self.namespace().to_owned());
        options.leader_election = false;
        options.lease_namespace = self.namespace().to_owned();
        options.clock = self.sandbox.clock.clock();
        options.min_backoff = Duration::from_millis(100);
        options.max_backoff = Duration::from_secs(1);
        options.metrics = self.metrics.clone();
        options
    }

    /// Starts an operator on this world's namespace with the admin client.
    pub async fn start_operator(&self) -> Operator {
        Operator::start(self.cluster.client.clone(), self.options("e2e-replica")).await
    }

    /// Ends the test: stops nothing (the caller stops its operators), deletes the namespace.
    pub async fn finish(self) {
        self.cluster.cleanup().await;
    }
}

/// An operator running in this process.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), OperatorError>>,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub http: std::net::SocketAddr,
    /// Where OfficeRnD webhooks are received.
    pub webhook: std::net::SocketAddr,
}

impl Operator {
    pub async fn start(client: Client, options: RunOptions) -> Self {
        let http = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let webhook = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addresses = (
            http.local_addr().expect("address"),
            webhook.local_addr().expect("address"),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run_on(
            client,
            options,
            Listeners {
                http,
                webhook: Some(webhook),
            },
            async move {
                let _ = stopped.await;
            },
        ));
        Operator {
            stop: Some(stop),
            task,
            http: addresses.0,
            webhook: addresses.1,
        }
    }

    /// Whether `run_on` has returned (it failed, or it was stopped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// The HTTP status of `GET path` on the operator's health and metrics server.
    pub async fn http_status(&self, path: &str) -> u16 {
        reqwest::get(format!("http://{}{path}", self.http))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Graceful shutdown: in-flight reconciles finish, then `run_on` returns cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let finished = tokio::time::timeout(Duration::from_secs(120), &mut self.task)
            .await
            .expect("the operator stops after its shutdown future resolves");
        finished
            .expect("operator task")
            .expect("operator stopped cleanly");
    }
}

/// The Ready reason, when the status describes `generation`.
pub fn binding_reason(binding: &AccessGroupBinding, generation: i64) -> Option<String> {
    let status = binding.status.as_ref()?;
    if status.observed_generation != Some(generation) {
        return None;
    }
    find(&status.conditions, READY).map(|c| c.reason.clone())
}

/// The Ready (status, reason) of a SiteMapping, when its status describes `generation`.
pub fn mapping_ready(mapping: &SiteMapping, generation: i64) -> Option<(String, String)> {
    let status = mapping.status.as_ref()?;
    if status.observed_generation != Some(generation) {
        return None;
    }
    find(&status.conditions, READY).map(|c| (c.status.clone(), c.reason.clone()))
}

/// The Ready (status, reason) of a connection.
pub fn connection_ready(connection: &VendorConnection) -> Option<(String, String)> {
    let status = connection.status.as_ref()?;
    find(&status.conditions, READY).map(|c| (c.status.clone(), c.reason.clone()))
}

/// A client configuration for the kubeconfig's cluster (its URL and CA) that authenticates
/// with `token` alone, as a pod running under a ServiceAccount does.
pub async fn token_config(path: &PathBuf, token: &str) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(path).expect("readable kubeconfig");
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("usable kubeconfig");
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.to_owned().into()),
        ..Default::default()
    };
    config
}

/// A token of the ServiceAccount `name` in the cluster's namespace, from the TokenRequest API
/// (what the kubelet mounts into a pod).
pub fn service_account_token(cluster: &Cluster, name: &str) -> String {
    let (ok, token, stderr) = cluster.kubectl(&["create", "token", name, "--duration=1h"]);
    assert!(ok, "kubectl create token {name}: {stderr}");
    token.trim().to_owned()
}

/// How many times an Event happened: the recorder folds repeats into one object's series.
pub fn occurrences(event: &Event) -> i32 {
    event.series.as_ref().map_or(1, |series| series.count)
}

/// Waits until no reconcile of `kind` finished for `seconds` (at most 60 s of waiting) and
/// returns the count then: a baseline that in-flight reconciles no longer move.
pub async fn quiet(metrics: &Metrics, kind: &str, seconds: u64) -> u64 {
    let mut seen = metrics.reconciles_of(kind);
    let mut still = 0;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = metrics.reconciles_of(kind);
        still = if now == seen { still + 1 } else { 0 };
        seen = now;
        if still >= seconds * 2 {
            break;
        }
    }
    seen
}

impl World {
    /// Every essensys API write so far (entities and Wi-Fi invitations).
    pub fn essensys_writes(&self) -> u64 {
        use flexgate::sandbox::essensys::Entity;
        let essensys = &self.sandbox.essensys;
        [
            Entity::Floor,
            Entity::Space,
            Entity::Occupier,
            Entity::Contract,
            Entity::User,
            Entity::Booking,
        ]
        .into_iter()
        .map(|e| essensys.writes(e))
        .sum::<u64>()
            + essensys.wifi_invitations().len() as u64
    }

    /// Waits until the SiteMapping's Ready is (`status`, `reason`) at `generation`.
    pub async fn wait_mapping(&self, name: &str, generation: i64, status: &str, reason: &str) {
        wait_until(
            &format!("{name} is Ready={status} ({reason}) at generation {generation}"),
            async || {
                self.site_mapping(name)
                    .await
                    .and_then(|m| mapping_ready(&m, generation))
                    == Some((status.to_owned(), reason.to_owned()))
            },
        )
        .await;
    }

    /// Sets the reconcile-request annotation of the SiteMapping to `value` and waits until a
    /// reconcile echoed it in status.
    pub async fn request_mapping_reconcile(&self, name: &str, value: &str) {
        self.merge::<SiteMapping>(
            name,
            serde_json::json!({"metadata": {"annotations": {
                flexgate::api::RECONCILE_REQUESTED_AT: value
            }}}),
        )
        .await;
        wait_until(
            &format!("the reconcile request {value} on {name} is handled"),
            async || {
                self.site_mapping(name)
                    .await
                    .and_then(|m| m.status?.last_handled_reconcile_at)
                    .as_deref()
                    == Some(value)
            },
        )
        .await;
    }

    /// Events about the object `name` with `reason`, counting repeats.
    pub async fn occurrences_of(&self, name: &str, reason: &str) -> i32 {
        self.cluster
            .events_about(name, reason)
            .await
            .iter()
            .map(occurrences)
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Binding and lifecycle helpers: quiet periods, resourceVersions, Secret touches, crashes.

/// The kinds the operator reconciles, as its metrics name them.
pub const KINDS: [&str; 3] = ["VendorConnection", "AccessGroupBinding", "SiteMapping"];

/// Every reconcile and status write `metrics` counted so far.
fn activity(metrics: &Metrics) -> u64 {
    KINDS.iter().map(|k| metrics.reconciles_of(k)).sum::<u64>() + metrics.status_writes()
}

/// Waits until the operator behind `metrics` has finished no reconcile and written no status
/// for three seconds in a row (what follows a start-up or a change: the whole OfficeRnD read
/// re-checks its connection, a busy vendor account sends a binding back for two seconds).
pub async fn settle(metrics: &Metrics) {
    let mut seen = activity(metrics);
    let mut still = tokio::time::Instant::now();
    wait_until("the operator is idle for three seconds", async || {
        let now = activity(metrics);
        if now != seen {
            seen = now;
            still = tokio::time::Instant::now();
        }
        still.elapsed() >= Duration::from_secs(3)
    })
    .await;
}

impl World {
    /// [`World::options`] with metrics of its own, for a second operator in one world.
    pub fn own_options(&self, identity: &str) -> (RunOptions, Arc<Metrics>) {
        let mut options = self.options(identity);
        let metrics = Arc::new(Metrics::new());
        options.metrics = metrics.clone();
        (options, metrics)
    }

    /// Changes the Secret's labels only: a new resourceVersion, the same credentials.
    pub async fn touch_secret(&self, name: &str, value: &str) {
        self.merge::<Secret>(
            name,
            serde_json::json!({"metadata": {"labels": {"flexgate-e2e/touched": value}}}),
        )
        .await;
    }

    /// `Kind/name` → resourceVersion of every flexgate object in the namespace (a status write
    /// changes it).
    pub async fn resource_versions(&self) -> std::collections::BTreeMap<String, String> {
        self.flexgate_objects()
            .await
            .into_iter()
            .map(|(key, object)| {
                let version = object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (key, version)
            })
            .collect()
    }

    /// `Kind/name` → the object as JSON, for every flexgate object in the namespace.
    async fn flexgate_objects(&self) -> Vec<(String, serde_json::Value)> {
        let params = ListParams::default();
        let mut objects = Vec::new();
        macro_rules! list {
            ($kind:ty) => {
                for object in self.api::<$kind>().list(&params).await.expect("listed") {
                    let key = format!(
                        "{}/{}",
                        <$kind as kube::Resource>::kind(&()),
                        object.name_any()
                    );
                    objects.push((key, serde_json::to_value(&object).expect("JSON")));
                }
            };
        }
        list!(VendorConnection);
        list!(AccessGroupBinding);
        list!(SiteMapping);
        objects
    }

    /// Event uid → resourceVersion (a repeated Event bumps its series, so its version).
    pub async fn event_versions(&self) -> std::collections::BTreeMap<String, String> {
        self.cluster
            .events()
            .await
            .iter()
            .map(|e| (e.uid().unwrap_or_default(), version(e)))
            .collect()
    }

    /// Every request the Kisi simulator received so far (reads and writes).
    pub fn kisi_requests(&self) -> u64 {
        self.sandbox
            .kisi
            .faults()
            .requests_matching(&flexgate::sandbox::faults::Route::any())
    }

    /// Every request the OfficeRnD simulator received so far.
    pub fn officernd_requests(&self) -> u64 {
        self.sandbox
            .officernd
            .faults()
            .requests_matching(&flexgate::sandbox::faults::Route::any())
    }
}

fn version<K: Resource>(object: &K) -> String {
    object.meta().resource_version.clone().unwrap_or_default()
}

impl Operator {
    /// Ends the operator as a crash would: its work is dropped wherever it is, nothing is
    /// finished or released.
    pub async fn crash(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        drop(self.stop.take());
    }
}

type Condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// The Ready condition of a binding, whatever generation it describes.
pub fn binding_ready(binding: &AccessGroupBinding) -> Option<Condition> {
    binding_condition(binding, READY)
}

/// A condition of any type of a binding.
pub fn binding_condition(binding: &AccessGroupBinding, type_: &str) -> Option<Condition> {
    find(&binding.status.as_ref()?.conditions, type_).cloned()
}

impl World {
    /// `Kind/name` → status of every flexgate object in the namespace, to show what a write
    /// changed.
    pub async fn statuses(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        self.flexgate_objects()
            .await
            .into_iter()
            .map(|(key, mut object)| (key, object["status"].take()))
            .collect()
    }
}

/// The entries of `after` that differ from `before`, as "key: before → after".
pub fn changed<V: PartialEq + std::fmt::Debug>(
    before: &std::collections::BTreeMap<String, V>,
    after: &std::collections::BTreeMap<String, V>,
) -> Vec<String> {
    after
        .iter()
        .filter(|(key, value)| before.get(*key) != Some(value))
        .map(|(key, value)| format!("{key}: {:?} → {value:?}", before.get(key)))
        .collect()
}
