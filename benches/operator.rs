//! Operator benchmark (issue 5): the operator against a real Kubernetes API server and the
//! sandbox simulators. Prints figures as `metric value unit` lines (other lines start `#`):
//!
//! - (a) latency from an OfficeRnD change (a Hot Desk membership created or removed, which the
//!   OfficeRnD simulator announces with a signed webhook to the operator's webhook address) to
//!   the Kisi group reflecting it; p50 / p99 / max. Target p99 within 1 s.
//! - (b) lateness of booking-boundary changes: bookings whose grant window opens and closes at
//!   known wall-clock instants a few seconds ahead (the operator runs on the real clock), and how
//!   long after each instant the Kisi group changed. Target within 1 s.
//! - (c) operator memory with 500 bindings and 50,000 members: the operator runs in a child
//!   process (this binary again) so its VmHWM / VmRSS hold the operator alone, while the
//!   simulators stay in the parent (the API server is a process of its own). Target 100 MB. The
//!   operator reads the organization whole once (about 2,100 OfficeRnD pages at full scale) into
//!   its shared picture; `FLEXGATE_BENCH_MEMORY_TIMEOUT` (seconds, default 1800) bounds the first
//!   pass, and progress with the operator's peak so far is printed to stderr every minute.
//!
//! (a) and (b) run twice: with the example connections as shipped (OfficeRnD client limit 5
//! requests per second, the default) and with `requestsPerSecond: 1000` on the OfficeRnD and Kisi
//! connections (the sandbox has no server-side limit), which shows the operator's own overhead.
//! Group membership is polled every millisecond, so figures carry about 1 ms of resolution.
//!
//! The cluster: the one named by `FLEXGATE_E2E_KUBECONFIG` (as for the end-to-end suite), else
//! one started with `../shared/kube/up` (state in `target/tmp/flexgate-bench-kube`, stopped with
//! `down` at the end; `FLEXGATE_BENCH_KUBE_KIT` names another kit folder); without either the
//! benchmark says it needs a cluster and exits 0. The CRDs are applied server-side, and each
//! scenario runs in a namespace of its own, deleted after it.
//!
//! `cargo bench --bench operator` (about 8 minutes on 2 cores); `FLEXGATE_BENCH_QUICK=1` runs
//! 10 + 50 events, 5 boundaries and 2,000 members / 20 bindings (about 70 s).
//! `FLEXGATE_BENCH_ONLY=webhook,boundaries,memory` picks phases.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use flexgate::api::conditions::{find, READY};
use flexgate::api::{AccessGroupBinding, SiteMapping, Vendor, VendorConnection};
use flexgate::manifests;
use flexgate::officernd::Collection;
use flexgate::operator::controller::{run_on, Listeners, OperatorError, RunOptions};
use flexgate::operator::objects::Objects;
use flexgate::operator::telemetry::Metrics;
use flexgate::sandbox::{demo_start, Sandbox, DEMO_SEED};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, CustomResourceExt, ResourceExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

type BenchResult<T> = Result<T, String>;

/// The cluster's kubeconfig, as for the end-to-end suite; the parent passes it on to the phases.
const KUBECONFIG: &str = "FLEXGATE_E2E_KUBECONFIG";
/// The namespace of the memory phase, passed to the operator's child process.
const NAMESPACE: &str = "FLEXGATE_BENCH_NAMESPACE";
/// The end-to-end suite's field manager for the CRDs: the bench and the suite apply them as one
/// owner, so a field the newer CRD drops is dropped whichever applied last.
const CRD_MANAGER: &str = "flexgate-e2e";
const LOBBY: &str = "OFFICERND_Lobby";
/// Hal Ives: in the demo seed, without a Hot Desk membership; (a) toggles one.
const HAL: &str = "3e3be0000000000000000017";
const HAL_EMAIL: &str = "hal.ives@example.com";
const HAL_MEMBERSHIP: &str = "3e3b500000000000000000aa";
/// Bob Stone: (b) books the Elephant room for him.
const BOB: &str = "3e3be0000000000000000011";
const BOB_EMAIL: &str = "bob.stone@example.com";
const ELEPHANT: &str = "7e5000a00000000000000008";
const BOOKING_GROUP: &str = "OFFICERND_Bench Room";
/// The raised client limit of the second configuration (the CRD maximum).
const RAISED_RPS: u32 = 1000;

fn quick() -> bool {
    std::env::var("FLEXGATE_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn figure(metric: &str, value: f64, unit: &str) {
    println!("{metric} {value:.1} {unit}");
}

fn note(text: impl AsRef<str>) {
    println!("# {}", text.as_ref());
}

trait Context<T> {
    fn ctx(self, what: &str) -> BenchResult<T>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> BenchResult<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

impl<T> Context<T> for Option<T> {
    fn ctx(self, what: &str) -> BenchResult<T> {
        self.ok_or_else(|| format!("{what}: missing"))
    }
}

// ---------------------------------------------------------------------------------------------
// Entry point: the parent finds or starts the cluster, then runs each phase in a fresh child
// process (so peak RSS is per phase).

fn main() {
    let result = match std::env::var("FLEXGATE_BENCH_PHASE").ok().as_deref() {
        None => orchestrate(),
        Some("operator") => runtime().and_then(|rt| rt.block_on(operator_child())),
        Some(phase) => runtime().and_then(|rt| rt.block_on(run_phase(phase))),
    };
    if let Err(error) = result {
        eprintln!("operator bench failed: {error}");
        std::process::exit(1);
    }
}

fn runtime() -> BenchResult<tokio::runtime::Runtime> {
    // FLEXGATE_BENCH_LOG=1 shows the operator's logs (RUST_LOG filters them).
    if std::env::var("FLEXGATE_BENCH_LOG").is_ok_and(|v| v == "1") {
        flexgate::operator::telemetry::init_logging(false).ctx("logging")?;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .ctx("tokio runtime")
}

/// The control-plane kit: `../shared/kube` beside the repository, or `FLEXGATE_BENCH_KUBE_KIT`.
fn kit() -> PathBuf {
    std::env::var_os("FLEXGATE_BENCH_KUBE_KIT")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kube"))
}

/// The cluster the phases run against.
struct Cluster {
    kubeconfig: PathBuf,
    /// The state folder of a control plane this run started (and stops).
    started: Option<PathBuf>,
}

impl Cluster {
    /// The cluster named by `FLEXGATE_E2E_KUBECONFIG`, else one started with the kit beside the
    /// repository; `None` (after saying so) when neither is there.
    fn find() -> Option<Self> {
        if let Some(path) = std::env::var_os(KUBECONFIG).filter(|p| !p.is_empty()) {
            return Some(Self {
                kubeconfig: PathBuf::from(path),
                started: None,
            });
        }
        let up = kit().join("up");
        let state = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flexgate-bench-kube");
        let needs = "the operator benchmark needs a Kubernetes cluster: set FLEXGATE_E2E_KUBECONFIG, or provide the kit ../shared/kube (README, 'Tests on a real cluster')";
        if !up.is_file() {
            note(format!(
                "{needs}; {} is missing. Nothing measured.",
                up.display()
            ));
            return None;
        }
        // `up` reports progress on stderr (passed through) and the kubeconfig path on stdout.
        let output = Command::new(&up)
            .arg(&state)
            .stderr(Stdio::inherit())
            .output();
        match output {
            Ok(output) if output.status.success() => {
                let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
                Some(Self {
                    kubeconfig: PathBuf::from(path),
                    started: Some(state),
                })
            }
            Ok(output) => {
                note(format!(
                    "{needs}; {} failed ({}). Nothing measured.",
                    up.display(),
                    output.status
                ));
                Self::down(&state);
                None
            }
            Err(error) => {
                note(format!(
                    "{needs}; {} did not run ({error}). Nothing measured.",
                    up.display()
                ));
                None
            }
        }
    }

    fn down(state: &Path) {
        let down = kit().join("down");
        match Command::new(&down).arg(state).status() {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("# {} {} failed ({status})", down.display(), state.display()),
            Err(error) => eprintln!("# {} did not run: {error}", down.display()),
        }
    }

    fn stop(self) {
        if let Some(state) = &self.started {
            Self::down(state);
        }
    }
}

fn orchestrate() -> BenchResult<()> {
    let Some(cluster) = Cluster::find() else {
        return Ok(());
    };
    let result = run_phases(&cluster);
    cluster.stop();
    result
}

fn run_phases(cluster: &Cluster) -> BenchResult<()> {
    let only = std::env::var("FLEXGATE_BENCH_ONLY").unwrap_or_default();
    let exe = std::env::current_exe().ctx("own executable")?;
    note(format!(
        "operator benchmark{}",
        if quick() { " (quick)" } else { "" }
    ));
    // The CRDs once for every phase; say which server the figures are from.
    std::env::set_var(KUBECONFIG, &cluster.kubeconfig);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ctx("tokio runtime")?
        .block_on(async {
            let client = client().await?;
            let version = client.apiserver_version().await.ctx("server version")?;
            note(format!(
                "cluster: kube-apiserver {} ({}{})",
                version.git_version,
                cluster.kubeconfig.display(),
                if cluster.started.is_some() {
                    ", started by this run"
                } else {
                    ", from FLEXGATE_E2E_KUBECONFIG"
                }
            ));
            install_crds(&client).await
        })?;
    for phase in ["webhook", "boundaries", "memory"] {
        if !only.is_empty() && !only.split(',').any(|p| p.trim() == phase) {
            continue;
        }
        let status = Command::new(&exe)
            .env("FLEXGATE_BENCH_PHASE", phase)
            .status()
            .ctx(phase)?;
        if !status.success() {
            return Err(format!("phase {phase} failed ({status})"));
        }
    }
    Ok(())
}

async fn run_phase(phase: &str) -> BenchResult<()> {
    match phase {
        "webhook" => {
            let events = if quick() { 50 } else { 1000 };
            let shipped = if quick() { 10 } else { 100 };
            webhook_latency("shipped", None, shipped).await?;
            webhook_latency("rps1000", Some(RAISED_RPS), events).await
        }
        "boundaries" => {
            let boundaries = if quick() { 5 } else { 50 };
            boundary_lateness("shipped", None, boundaries).await?;
            boundary_lateness("rps1000", Some(RAISED_RPS), boundaries).await
        }
        "memory" => memory().await,
        other => Err(format!("unknown phase {other}")),
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster connection, the CRDs, a namespace per scenario.

/// A client with the kubeconfig's own credentials.
async fn client() -> BenchResult<Client> {
    let path = std::env::var(KUBECONFIG).ctx(KUBECONFIG)?;
    let kubeconfig = Kubeconfig::read_from(&path).ctx("kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .ctx("kubeconfig")?;
    Client::try_from(config).ctx("kube client")
}

/// Applies the CRDs server-side (as `kubectl apply --server-side -f crds/` does) and waits until
/// the server serves them.
async fn install_crds(client: &Client) -> BenchResult<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apply = PatchParams::apply(CRD_MANAGER).force();
    for crd in [
        VendorConnection::crd(),
        AccessGroupBinding::crd(),
        SiteMapping::crd(),
    ] {
        let name = crd.name_any();
        crds.patch(&name, &apply, &Patch::Apply(&crd))
            .await
            .ctx(&format!("apply CRD {name}"))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let established = crds
                .get_opt(&name)
                .await
                .ctx(&format!("read CRD {name}"))?
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                });
            if established {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("CRD {name} not Established after 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// A fresh namespace for one scenario.
async fn create_namespace(client: &Client, scenario: &str) -> BenchResult<String> {
    let name = format!("bench-{scenario}-{:08x}", fastrand::u32(..));
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
        .ctx("create namespace")?;
    Ok(name)
}

// ---------------------------------------------------------------------------------------------
// The world: a namespace, the sandbox, the example OfficeRnD and Kisi connections.

struct World {
    client: Client,
    namespace: String,
    sandbox: Sandbox,
    objects: Objects,
    metrics: Arc<Metrics>,
    /// The namespace's bindings as the server has them, kept by a watch.
    bindings: Store<AccessGroupBinding>,
    watch: tokio::task::JoinHandle<()>,
}

struct WorldSpec {
    /// Names the namespace (`bench-<scenario>-<random>`).
    scenario: String,
    seed: Value,
    start: DateTime<Utc>,
    /// `requestsPerSecond` on both connections; `None` keeps the examples' values.
    rps: Option<u32>,
    /// Example bindings to keep (by name).
    examples: &'static [&'static str],
    /// More bindings (namespace set here).
    extra: Vec<AccessGroupBinding>,
    /// Register an OfficeRnD webhook to this URL and configure its secret.
    webhook_url: Option<String>,
}

impl World {
    async fn new(spec: WorldSpec) -> BenchResult<Self> {
        let client = client().await?;
        let sandbox = Sandbox::start(spec.seed, spec.start).await.ctx("sandbox")?;
        let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
        let (documents, problems) = manifests::load(&[examples]);
        if !problems.is_empty() {
            return Err(format!("examples: {problems:?}"));
        }
        let mut objects = Objects::from_documents(&documents).ctx("examples")?;
        objects
            .connections
            .retain(|c| matches!(c.spec.vendor, Vendor::OfficeRnD | Vendor::Kisi));
        objects
            .bindings
            .retain(|b| spec.examples.contains(&b.name_any().as_str()));
        objects.bindings.extend(spec.extra);
        objects.site_mappings.clear();
        let namespace = create_namespace(&client, &spec.scenario).await?;
        for connection in &mut objects.connections {
            connection.metadata.namespace = Some(namespace.clone());
        }
        for binding in &mut objects.bindings {
            binding.metadata.namespace = Some(namespace.clone());
        }
        // The simulators' credentials, in this namespace.
        objects.secrets.clear();
        sandbox.connect(&mut objects);
        if let Some(rps) = spec.rps {
            for connection in &mut objects.connections {
                connection.spec.requests_per_second = Some(rps);
            }
        }
        if let Some(url) = &spec.webhook_url {
            let (_, secret) = sandbox.officernd.register_webhook(url, &[]);
            let credentials = objects
                .secrets
                .get_mut(&(namespace.clone(), "officernd-credentials".to_owned()))
                .ctx("officernd-credentials")?;
            credentials
                .string_data
                .get_or_insert_with(BTreeMap::new)
                .insert("webhookSecret".to_owned(), secret.expose().to_owned());
            for connection in &mut objects.connections {
                if let Some(settings) = connection.spec.officernd.as_mut() {
                    settings.webhook_secret_key = Some("webhookSecret".to_owned());
                }
            }
        }
        let (bindings, writer) = reflector::store();
        let stream = watcher(
            Api::<AccessGroupBinding>::namespaced(client.clone(), &namespace),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(writer);
        let watch = tokio::spawn(stream.for_each(|_| std::future::ready(())));
        Ok(Self {
            client,
            namespace,
            sandbox,
            objects,
            metrics: Arc::new(Metrics::new()),
            bindings,
            watch,
        })
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn apply(&self) -> BenchResult<()> {
        let secrets: Api<Secret> = self.api();
        for secret in self.objects.secrets.values() {
            secrets
                .create(&PostParams::default(), secret)
                .await
                .ctx("create Secret")?;
        }
        let connections: Api<VendorConnection> = self.api();
        for connection in &self.objects.connections {
            connections
                .create(&PostParams::default(), connection)
                .await
                .ctx("create VendorConnection")?;
        }
        let bindings: Api<AccessGroupBinding> = self.api();
        for binding in &self.objects.bindings {
            bindings
                .create(&PostParams::default(), binding)
                .await
                .ctx("create AccessGroupBinding")?;
        }
        Ok(())
    }

    /// How many bindings are Ready (True) for their current generation, as last watched.
    fn ready_bindings(&self) -> usize {
        self.bindings
            .state()
            .iter()
            .filter(|b| binding_ready(b))
            .count()
    }

    async fn wait_ready(&self, timeout: Duration) -> BenchResult<()> {
        let total = self.objects.bindings.len();
        let deadline = Instant::now() + timeout;
        while self.ready_bindings() < total {
            if Instant::now() > deadline {
                let stuck = self
                    .bindings
                    .state()
                    .into_iter()
                    .find(|b| !binding_ready(b))
                    .map(|b| format!("{}: {:?}", b.name_any(), b.status))
                    .unwrap_or_default();
                return Err(format!(
                    "only {} of {total} bindings Ready after {timeout:?}; first not Ready: {stuck}",
                    self.ready_bindings()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Ends the scenario (its operator stopped): the bindings' finalizers are dropped, as no
    /// operator is left to run them, and the namespace is deleted. Returns `outcome`, or the
    /// clean-up's failure when the scenario succeeded.
    async fn finish(self, outcome: BenchResult<()>) -> BenchResult<()> {
        self.watch.abort();
        let cleanup = async {
            let bindings: Api<AccessGroupBinding> = self.api();
            let unfinalize = json!({"metadata": {"finalizers": null}});
            for binding in bindings
                .list(&ListParams::default())
                .await
                .ctx("list bindings")?
            {
                if !binding.finalizers().is_empty() {
                    bindings
                        .patch(
                            &binding.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(&unfinalize),
                        )
                        .await
                        .ctx("drop a finalizer")?;
                }
            }
            let namespaces: Api<Namespace> = Api::all(self.client.clone());
            namespaces
                .delete(&self.namespace, &DeleteParams::default())
                .await
                .ctx("delete namespace")
                .map(|_| ())
        };
        let cleaned: BenchResult<()> = cleanup.await;
        outcome.and(cleaned)
    }
}

fn binding_ready(binding: &AccessGroupBinding) -> bool {
    binding.status.as_ref().is_some_and(|status| {
        status.observed_generation == binding.metadata.generation
            && find(&status.conditions, READY).is_some_and(|c| c.status == "True")
    })
}

fn binding_yaml(text: &str) -> BenchResult<AccessGroupBinding> {
    serde_yaml::from_str(text).ctx("bench binding YAML")
}

/// The operator running in this process; dropped without `stop` (a failed scenario), it is
/// aborted.
struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), OperatorError>>,
}

impl Operator {
    async fn start(
        world: &World,
        clock: flexgate::clock::Clock,
        webhook: Option<TcpListener>,
    ) -> BenchResult<Self> {
        let http = TcpListener::bind("127.0.0.1:0").await.ctx("bind http")?;
        let mut options = RunOptions::new("bench-replica");
        options.namespace = Some(world.namespace.clone());
        options.leader_election = false;
        options.lease_namespace = world.namespace.clone();
        options.clock = clock;
        options.metrics = world.metrics.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run_on(
            world.client.clone(),
            options,
            Listeners { http, webhook },
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            stop: Some(stop),
            task,
        })
    }

    async fn stop(mut self) -> BenchResult<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(30), &mut self.task).await {
            Ok(Ok(result)) => result.ctx("operator"),
            Ok(Err(join)) => Err(format!("operator task: {join}")),
            Err(_) => Err("the operator did not stop within 30 s".to_owned()),
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(prefix: &str, samples: &mut [f64], unit: &str) {
    samples.sort_by(f64::total_cmp);
    figure(&format!("{prefix}_p50"), percentile(samples, 50.0), unit);
    figure(&format!("{prefix}_p99"), percentile(samples, 99.0), unit);
    figure(
        &format!("{prefix}_max"),
        samples.last().copied().unwrap_or(f64::NAN),
        unit,
    );
    figure(&format!("{prefix}_samples"), samples.len() as f64, "count");
}

// ---------------------------------------------------------------------------------------------
// (a) OfficeRnD webhook → vendor write

async fn webhook_latency(label: &str, rps: Option<u32>, events: usize) -> BenchResult<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await.ctx("bind webhook")?;
    let url = format!(
        "http://{}/webhooks/officernd",
        listener.local_addr().ctx("webhook address")?
    );
    let world = World::new(WorldSpec {
        scenario: format!("webhook-{label}"),
        seed: serde_json::from_str(DEMO_SEED).ctx("demo seed")?,
        start: demo_start(),
        rps,
        examples: &["hot-desk-lobby"],
        extra: Vec::new(),
        webhook_url: Some(url),
    })
    .await?;
    let outcome = webhook_measure(&world, label, rps, events, listener).await;
    world.finish(outcome).await
}

async fn webhook_measure(
    world: &World,
    label: &str,
    rps: Option<u32>,
    events: usize,
    listener: TcpListener,
) -> BenchResult<()> {
    world.apply().await?;
    let operator = Operator::start(world, world.sandbox.clock.clock(), Some(listener)).await?;
    world.wait_ready(Duration::from_secs(60)).await?;

    let ann = world
        .sandbox
        .officernd
        .list(Collection::Memberships)
        .into_iter()
        .find(|m| m["name"] == "Ann - Hot Desk")
        .ctx("Ann's Hot Desk membership")?;
    let mut hal = ann;
    hal["_id"] = json!(HAL_MEMBERSHIP);
    hal["name"] = json!("Hal - Hot Desk");
    hal["member"] = json!(HAL);
    if let Some(object) = hal.as_object_mut() {
        object.remove("company");
    }

    let mut latencies = Vec::with_capacity(events);
    let mut timeouts = 0usize;
    let started = Instant::now();
    for event in 0..events {
        let reconciles = world.metrics.reconciles_of("AccessGroupBinding");
        let deliveries = world.sandbox.officernd.deliveries().len();
        let join = event % 2 == 0;
        let changed_at = Instant::now();
        if join {
            world
                .sandbox
                .officernd
                .upsert(Collection::Memberships, hal.clone())
                .ctx("upsert Hal's membership")?;
        } else {
            world
                .sandbox
                .officernd
                .remove(Collection::Memberships, HAL_MEMBERSHIP)
                .ctx("Hal's membership")?;
        }
        loop {
            let in_lobby = world
                .sandbox
                .group_members(Vendor::Kisi, LOBBY)
                .iter()
                .any(|e| e == HAL_EMAIL);
            if in_lobby == join {
                latencies.push(changed_at.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if changed_at.elapsed() > Duration::from_secs(30) {
                timeouts += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Let the reconcile finish (status write) and the delivery be acknowledged, so each event
        // starts from a quiet operator.
        let settle = Instant::now();
        while (world.metrics.reconciles_of("AccessGroupBinding") <= reconciles
            || world.sandbox.officernd.deliveries().len() <= deliveries)
            && settle.elapsed() < Duration::from_secs(10)
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let accepted = world
        .sandbox
        .officernd
        .deliveries()
        .iter()
        .filter(|d| d.status == Some(202))
        .count();
    note(format!(
        "(a) webhook → Kisi group, {label}: OfficeRnD/Kisi requestsPerSecond {}; {events} events (Hot Desk membership created / removed alternately), {accepted} deliveries accepted, {:.1} s",
        rps.map_or_else(|| "as in examples/ (OfficeRnD default 5, Kisi 5)".to_owned(), |r| r.to_string()),
        started.elapsed().as_secs_f64()
    ));
    report(&format!("webhook_to_vendor_{label}"), &mut latencies, "ms");
    figure(
        &format!("webhook_to_vendor_{label}_timeouts"),
        timeouts as f64,
        "count",
    );
    operator.stop().await
}

// ---------------------------------------------------------------------------------------------
// (b) booking boundaries on the real clock

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn boundary_lateness(label: &str, rps: Option<u32>, boundaries: usize) -> BenchResult<()> {
    let spacing = chrono::Duration::seconds(3);
    let bookings = boundaries.div_ceil(2);
    let now = Utc::now();
    // Whole seconds, a little ahead: the first reconcile (finalizer, full read) comes first.
    let first = DateTime::from_timestamp(now.timestamp() + 12, 0).ctx("first boundary")?;
    let mut seed: Value = serde_json::from_str(DEMO_SEED).ctx("demo seed")?;
    let seeded = seed["bookings"].as_array_mut().ctx("seed bookings")?;
    let mut instants = Vec::with_capacity(bookings * 2);
    for n in 0..bookings {
        let start = first + spacing * (2 * n as i32);
        let end = start + spacing;
        instants.push((start, true));
        instants.push((end, false));
        seeded.push(json!({
            "_id": format!("b0000000000000000000b{n:03x}"),
            "title": format!("Bench booking {n}"),
            "resource": ELEPHANT,
            "location": "10ca71000000000000000001",
            "timezone": "Europe/London",
            "start": rfc3339(start),
            "end": rfc3339(end),
            "member": BOB,
            "isCancelled": false,
            "isTentative": false,
        }));
    }
    instants.truncate(boundaries);
    let binding = binding_yaml(&format!(
        "apiVersion: flexgate.dev/v1alpha1
kind: AccessGroupBinding
metadata:
  name: bench-room
spec:
  officerndRef: {{name: officernd}}
  vendorRef: {{name: kisi}}
  source:
    bookableResource: {{id: {ELEPHANT}}}
  groups:
    - name: {BOOKING_GROUP}
  grantBefore: 0s
  revokeAfter: 0s
  includeGuests: false
"
    ))?;
    let world = World::new(WorldSpec {
        scenario: format!("boundaries-{label}"),
        seed,
        start: now,
        rps,
        examples: &[],
        extra: vec![binding],
        webhook_url: None,
    })
    .await?;
    let outcome = boundary_measure(&world, label, rps, first, &instants, spacing).await;
    world.finish(outcome).await
}

async fn boundary_measure(
    world: &World,
    label: &str,
    rps: Option<u32>,
    first: DateTime<Utc>,
    instants: &[(DateTime<Utc>, bool)],
    spacing: chrono::Duration,
) -> BenchResult<()> {
    let boundaries = instants.len();
    let group = world.sandbox.kisi.add_group(BOOKING_GROUP);
    world
        .sandbox
        .kisi
        .add_user("Bob Stone", BOB_EMAIL)
        .ctx("Kisi user for Bob")?;
    // The simulators' clock follows the wall clock (token expiry, timestamps).
    let follow = {
        let clock = world.sandbox.clock.clone();
        tokio::spawn(async move {
            loop {
                clock.set(Utc::now());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    world.apply().await?;
    let operator = Operator::start(world, flexgate::clock::system_clock(), None).await?;
    world.wait_ready(Duration::from_secs(30)).await?;
    if Utc::now() >= first {
        follow.abort();
        return Err("the first reconcile ended after the first boundary; raise the lead".into());
    }
    let mut lateness = Vec::with_capacity(boundaries);
    let mut missed = 0usize;
    for (at, open) in instants {
        loop {
            let inside = world
                .sandbox
                .kisi
                .group_member_emails(&group)
                .iter()
                .any(|e| e.eq_ignore_ascii_case(BOB_EMAIL));
            let now = Utc::now();
            if inside == *open {
                let late = (now - *at).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0;
                lateness.push(late);
                break;
            }
            if now > *at + chrono::Duration::seconds(10) {
                missed += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    follow.abort();
    let early = lateness.iter().filter(|l| **l < 0.0).count();
    note(format!(
        "(b) booking boundary → Kisi group, {label}: OfficeRnD/Kisi requestsPerSecond {}; {} boundaries {} s apart (grant opens and closes), real clock",
        rps.map_or_else(|| "as in examples/ (OfficeRnD default 5, Kisi 5)".to_owned(), |r| r.to_string()),
        instants.len(),
        spacing.num_seconds()
    ));
    report(&format!("boundary_lateness_{label}"), &mut lateness, "ms");
    figure(
        &format!("boundary_lateness_{label}_early"),
        early as f64,
        "count",
    );
    figure(
        &format!("boundary_lateness_{label}_missed"),
        missed as f64,
        "count",
    );
    operator.stop().await
}

// ---------------------------------------------------------------------------------------------
// (c) memory: generated organization, many bindings, operator in a child process

struct Scale {
    members: usize,
    bindings: usize,
}

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

const LOCATIONS: usize = 10;
const UNBOUND_PLANS: usize = 20;
/// People per bound plan (each bound plan has one binding and one Kisi group).
const PER_BOUND_PLAN: usize = 2;
/// Share of the entitled people already in their Kisi group before the operator starts.
const ALREADY_GRANTED_PERCENT: usize = 90;

fn oid(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>23x}")
}

fn stamp() -> &'static str {
    "2026-01-05T09:00:00.000Z"
}

fn member_email(n: usize) -> String {
    format!("member{n}@bench.example")
}

/// A seed in the OfficeRnD API's field names: locations, plans (one per binding, plus unbound
/// ones), companies, members, one personal membership per member. The first
/// `bindings * PER_BOUND_PLAN` members hold the bound plans; everyone else an unbound plan.
fn organization(scale: &Scale, rng: &mut Rng) -> Value {
    let companies = (scale.members / 10).max(1);
    let locations: Vec<Value> = (0..LOCATIONS)
        .map(|n| {
            json!({"_id": oid("1", n), "name": format!("Location {n}"), "timezone": "Europe/London",
                   "isOpen": true, "createdAt": stamp(), "modifiedAt": stamp()})
        })
        .collect();
    let plans: Vec<Value> = (0..scale.bindings + UNBOUND_PLANS)
        .map(|n| {
            json!({"_id": oid("9", n), "name": format!("Plan {n}"), "createdAt": stamp(), "modifiedAt": stamp()})
        })
        .collect();
    let company_list: Vec<Value> = (0..companies)
        .map(|n| {
            json!({"_id": oid("c", n), "name": format!("Company {n}"), "location": oid("1", n % LOCATIONS),
                   "status": "active", "createdAt": stamp(), "modifiedAt": stamp()})
        })
        .collect();
    let entitled = scale.bindings * PER_BOUND_PLAN;
    let mut members = Vec::with_capacity(scale.members);
    let mut memberships = Vec::with_capacity(scale.members);
    for n in 0..scale.members {
        let mut member = json!({
            "_id": oid("e", n), "name": format!("Member{n} Bench"), "email": member_email(n),
            "status": "active", "location": oid("1", n % LOCATIONS), "startDate": "2026-01-05T00:00:00.000Z",
            "createdAt": stamp(), "modifiedAt": stamp(),
        });
        if n >= entitled && rng.chance(80) {
            member["company"] = json!(oid("c", n % companies));
        }
        members.push(member);
        let plan = if n < entitled {
            n / PER_BOUND_PLAN
        } else {
            scale.bindings + rng.below(UNBOUND_PLANS)
        };
        memberships.push(json!({
            "_id": oid("5", n), "name": format!("Member{n} - Plan {plan}"), "plan": oid("9", plan),
            "location": oid("1", n % LOCATIONS), "status": "approved", "startDate": "2026-01-05T00:00:00.000Z",
            "type": "month_to_month", "isPersonal": true, "member": oid("e", n),
            "createdAt": stamp(), "modifiedAt": stamp(),
        }));
    }
    json!({
        "locations": locations,
        "plans": plans,
        "companies": company_list,
        "members": members,
        "memberships": memberships,
    })
}

fn memory_bindings(scale: &Scale) -> BenchResult<Vec<AccessGroupBinding>> {
    (0..scale.bindings)
        .map(|n| {
            binding_yaml(&format!(
                "apiVersion: flexgate.dev/v1alpha1
kind: AccessGroupBinding
metadata:
  name: plan-{n}
spec:
  officerndRef: {{name: officernd}}
  vendorRef: {{name: kisi}}
  source:
    plan: {{name: Plan {n}}}
  groups:
    - name: OFFICERND_Group {n}
"
            ))
        })
        .collect()
}

/// `VmHWM` and `VmRSS` of a process, in MiB.
fn rss_of(pid: &str) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

async fn memory() -> BenchResult<()> {
    let scale = if quick() {
        Scale {
            members: 2_000,
            bindings: 20,
        }
    } else {
        Scale {
            members: 50_000,
            bindings: 500,
        }
    };
    let timeout = Duration::from_secs(
        std::env::var("FLEXGATE_BENCH_MEMORY_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1800),
    );
    let mut rng = Rng(0x5EED_F1E7_6A7E);
    let seed = organization(&scale, &mut rng);
    let world = World::new(WorldSpec {
        scenario: "memory".to_owned(),
        seed,
        start: demo_start(),
        rps: Some(RAISED_RPS),
        examples: &[],
        extra: memory_bindings(&scale)?,
        webhook_url: None,
    })
    .await?;
    let outcome = memory_measure(&world, &scale, timeout, &mut rng).await;
    world.finish(outcome).await
}

async fn memory_measure(
    world: &World,
    scale: &Scale,
    timeout: Duration,
    rng: &mut Rng,
) -> BenchResult<()> {
    // Kisi as a site would have it: the groups, and most entitled people already in them.
    let entitled = scale.bindings * PER_BOUND_PLAN;
    let mut groups = Vec::with_capacity(scale.bindings);
    for n in 0..scale.bindings {
        groups.push(
            world
                .sandbox
                .kisi
                .add_group(&format!("OFFICERND_Group {n}")),
        );
    }
    let mut pre_granted = 0usize;
    for n in 0..entitled {
        if rng.chance(ALREADY_GRANTED_PERCENT) {
            let user = world
                .sandbox
                .kisi
                .add_user(&format!("Member{n} Bench"), &member_email(n))
                .ctx("seed Kisi user")?;
            world
                .sandbox
                .kisi
                .dashboard_add_to_group(&user, &groups[n / PER_BOUND_PLAN])
                .ctx("seed Kisi group row")?;
            pre_granted += 1;
        }
    }
    world.apply().await?;
    let parent = rss_of("self").unwrap_or((f64::NAN, f64::NAN));
    note(format!(
        "(c) {} members, {} companies, {} memberships, {} plans, {} bindings (plan → own Kisi group), {} entitled, {} already in their groups; requestsPerSecond {RAISED_RPS} on both connections, other options default",
        scale.members,
        (scale.members / 10).max(1),
        scale.members,
        scale.bindings + UNBOUND_PLANS,
        scale.bindings,
        entitled,
        pre_granted
    ));
    note(format!(
        "(c) parent process (simulators + seed), not the operator: RSS {:.1} MiB before the operator starts",
        parent.1
    ));

    let exe = std::env::current_exe().ctx("own executable")?;
    let mut child = Command::new(exe)
        .env("FLEXGATE_BENCH_PHASE", "operator")
        .env(NAMESPACE, &world.namespace)
        .stdin(Stdio::piped())
        .spawn()
        .ctx("spawn the operator process")?;
    let pid = child.id().to_string();
    let started = Instant::now();
    let mut peak_seen = 0.0f64;
    let mut last_progress = Instant::now();
    let outcome = loop {
        if let Some((hwm, _)) = rss_of(&pid) {
            peak_seen = peak_seen.max(hwm);
        }
        let ready = world.ready_bindings();
        if ready == scale.bindings {
            break Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("the operator process exited early ({status})"));
        }
        if started.elapsed() > timeout {
            break Err(format!(
                "only {ready} of {} bindings Ready after {timeout:?}",
                scale.bindings
            ));
        }
        if last_progress.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "# (c) {:.0} s: {ready} of {} bindings Ready, operator peak {peak_seen:.1} MiB",
                started.elapsed().as_secs_f64(),
                scale.bindings
            );
            last_progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let first_pass = started.elapsed();
    let after_pass = rss_of(&pid);
    if outcome.is_ok() {
        // Steady state: nothing is due before the 15 min resync.
        tokio::time::sleep(Duration::from_secs(if quick() { 5 } else { 20 })).await;
    }
    let steady = rss_of(&pid);
    // End the operator: closing its stdin is its shutdown signal.
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().ctx("operator process")?.is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    outcome?;
    let requests: u64 = world
        .sandbox
        .officernd
        .faults()
        .request_counts()
        .values()
        .sum();
    let (hwm, rss_after) = after_pass.ctx("operator /proc status")?;
    let (hwm_steady, rss_steady) = steady.ctx("operator /proc status")?;
    figure("operator_first_pass", first_pass.as_secs_f64(), "s");
    figure("officernd_requests_first_pass", requests as f64, "count");
    figure("operator_peak_rss", hwm.max(hwm_steady), "MiB");
    figure("operator_rss_after_first_pass", rss_after, "MiB");
    figure("operator_rss_steady", rss_steady, "MiB");
    Ok(())
}

/// The operator alone in this process, on the parent's namespace, until stdin closes.
async fn operator_child() -> BenchResult<()> {
    let client = client().await?;
    let namespace = std::env::var(NAMESPACE).ctx(NAMESPACE)?;
    let http = TcpListener::bind("127.0.0.1:0").await.ctx("bind http")?;
    let mut options = RunOptions::new("bench-operator");
    options.namespace = Some(namespace.clone());
    options.leader_election = false;
    options.lease_namespace = namespace;
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await;
    };
    run_on(
        client,
        options,
        Listeners {
            http,
            webhook: None,
        },
        stdin_closed,
    )
    .await
    .ctx("operator")
}
