//! The operator against the in-process API stand-in and the sandbox simulators: bindings applied
//! as cluster objects reach the vendor, status and Events report it, deletion revokes, rotated
//! Secrets and OfficeRnD webhooks take effect without restart, idle resyncs write nothing; a
//! SiteMapping proposes, is approved, syncs to the essensys simulator and then writes nothing.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use flexgate::api::conditions::{find, READY, RECONCILING};
use flexgate::api::{
    AccessGroupBinding, SiteMapping, Vendor, VendorConnection, FINALIZER, RECONCILE_REQUESTED_AT,
};
use flexgate::manifests;
use flexgate::officernd::Collection;
use flexgate::operator::controller::{run_on, Listeners, OperatorError, RunOptions};
use flexgate::operator::leader::{LeaderElector, LeaseConfig, LeaseState};
use flexgate::operator::objects::Objects;
use flexgate::operator::telemetry::Metrics;
use flexgate::sandbox::faults::{Fault, FaultRule, Route};
use flexgate::sandbox::{Sandbox, ESSENSYS_LONDON_SITE};
use flexgate::vendors::essensys::simulator::Entity;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use support::apiserver::{ApiServer, ApiServerOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const NS: &str = "default";
const LOBBY: &str = "OFFICERND_Lobby";
/// The example bindings on the Kisi account (the other vendors are covered by door_sync.rs).
const BINDINGS: [&str; 3] = ["hot-desk-lobby", "day-passes", "office-101"];

struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), OperatorError>>,
    webhook: std::net::SocketAddr,
    http: std::net::SocketAddr,
}

impl Operator {
    async fn start(world: &World) -> Self {
        Self::start_with(world, |_| {}).await
    }

    async fn start_with(world: &World, adjust: impl FnOnce(&mut RunOptions)) -> Self {
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addresses = (http.local_addr().unwrap(), webhook.local_addr().unwrap());
        let mut options = RunOptions::new("test-replica");
        options.namespace = Some(NS.into());
        options.leader_election = false;
        options.clock = world.sandbox.clock.clock();
        options.min_backoff = Duration::from_millis(100);
        options.max_backoff = Duration::from_secs(1);
        options.metrics = world.metrics.clone();
        adjust(&mut options);
        let (stop, stopped) = oneshot::channel::<()>();
        let client = world.server.client();
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

    /// Graceful shutdown: in-flight reconciles finish, then `run_on` returns (the bound is
    /// generous: on a loaded 2-core machine an in-flight sync may be waiting out a backoff).
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let finished = tokio::time::timeout(Duration::from_secs(120), &mut self.task)
            .await
            .expect("the operator stops after its shutdown future resolves");
        finished.unwrap().unwrap();
    }
}

struct World {
    server: ApiServer,
    sandbox: Sandbox,
    objects: Objects,
    metrics: Arc<Metrics>,
}

impl World {
    /// The stand-in with the CRDs, the sandbox, and the examples' OfficeRnD and Kisi
    /// connections, their Secrets and the Kisi bindings applied as cluster objects.
    async fn new() -> Self {
        Self::with(&[Vendor::OfficeRnD, Vendor::Kisi], &BINDINGS, &[]).await
    }

    /// The stand-in with the CRDs and the sandbox, and of the examples: the OfficeRnD and
    /// essensys connections, their Secrets and the SiteMapping `london`, no bindings.
    async fn with_site_mapping() -> Self {
        Self::with(&[Vendor::OfficeRnD, Vendor::Essensys], &[], &["london"]).await
    }

    async fn with(vendors: &[Vendor], bindings: &[&str], mappings: &[&str]) -> Self {
        let server = ApiServer::start_with(
            ApiServerOptions::new()
                .crd_for::<VendorConnection>()
                .crd_for::<AccessGroupBinding>()
                .crd_for::<SiteMapping>(),
        )
        .await;
        let sandbox = Sandbox::start_demo().await.unwrap();
        let (documents, problems) = manifests::load(&[PathBuf::from("examples")]);
        assert!(problems.is_empty(), "{problems:?}");
        let mut objects = Objects::from_documents(&documents).unwrap();
        objects
            .connections
            .retain(|c| vendors.contains(&c.spec.vendor));
        objects
            .bindings
            .retain(|b| bindings.contains(&b.name_any().as_str()));
        objects
            .site_mappings
            .retain(|m| mappings.contains(&m.name_any().as_str()));
        sandbox.connect(&mut objects);
        if !mappings.is_empty() {
            // The examples keep the cautious default rate; the simulators do not need it.
            for connection in &mut objects.connections {
                connection.spec.requests_per_second = Some(1000);
            }
        }
        let secrets: Vec<String> = objects
            .connections
            .iter()
            .map(|c| c.spec.credentials_secret_ref.name.clone())
            .collect();
        objects
            .secrets
            .retain(|(_, name), _| secrets.contains(name));
        let world = World {
            server,
            sandbox,
            objects,
            metrics: Arc::new(Metrics::new()),
        };
        world.apply().await;
        world
    }

    async fn apply(&self) {
        let client = self.server.client();
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
        for secret in self.objects.secrets.values() {
            secrets
                .create(&PostParams::default(), secret)
                .await
                .unwrap();
        }
        let connections: Api<VendorConnection> = Api::namespaced(client.clone(), NS);
        for connection in &self.objects.connections {
            connections
                .create(&PostParams::default(), connection)
                .await
                .unwrap();
        }
        let bindings = self.bindings();
        for binding in &self.objects.bindings {
            bindings
                .create(&PostParams::default(), binding)
                .await
                .unwrap();
        }
        let mappings = self.site_mappings();
        for mapping in &self.objects.site_mappings {
            mappings
                .create(&PostParams::default(), mapping)
                .await
                .unwrap();
        }
    }

    fn site_mappings(&self) -> Api<SiteMapping> {
        Api::namespaced(self.server.client(), NS)
    }

    fn site_mapping(&self, name: &str) -> Option<SiteMapping> {
        self.server.get_as::<SiteMapping>(NS, name)
    }

    /// Every essensys API write so far (entities and Wi-Fi invitations).
    fn essensys_writes(&self) -> u64 {
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

    fn bindings(&self) -> Api<AccessGroupBinding> {
        Api::namespaced(self.server.client(), NS)
    }

    fn binding(&self, name: &str) -> Option<AccessGroupBinding> {
        self.server.get_as::<AccessGroupBinding>(NS, name)
    }

    fn connection(&self, name: &str) -> Option<VendorConnection> {
        self.server.get_as::<VendorConnection>(NS, name)
    }

    fn lobby(&self) -> Vec<String> {
        self.sandbox.group_members(Vendor::Kisi, LOBBY)
    }

    async fn wait_bindings(&self, what: &str, reason: &str, generation: i64) {
        self.server
            .wait_until(what, |s| {
                BINDINGS.iter().all(|name| {
                    s.get_as::<AccessGroupBinding>(NS, name)
                        .is_some_and(|b| binding_reason(&b, generation) == Some(reason.into()))
                })
            })
            .await;
    }

    /// Waits until `count` more reconciles of `kind` finished than `before`.
    async fn wait_reconciles(&self, kind: &str, before: u64, count: u64) {
        let metrics = self.metrics.clone();
        let kind = kind.to_owned();
        self.server
            .wait_until("the triggered reconciles finished", move |_| {
                metrics.reconciles_of(&kind) >= before + count
            })
            .await;
    }

    /// Changes the Secret's labels only: a new resourceVersion, nothing else.
    async fn touch_secret(&self, name: &str, value: &str) {
        let secrets: Api<Secret> = Api::namespaced(self.server.client(), NS);
        let patch = json!({"metadata": {"labels": {"touched": value}}});
        secrets
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
}

/// The Ready reason, when the status describes `generation`.
fn binding_reason(binding: &AccessGroupBinding, generation: i64) -> Option<String> {
    let status = binding.status.as_ref()?;
    if status.observed_generation != Some(generation) {
        return None;
    }
    find(&status.conditions, READY).map(|c| c.reason.clone())
}

/// The Ready (status, reason) of a SiteMapping, when its status describes `generation`.
fn mapping_ready(mapping: &SiteMapping, generation: i64) -> Option<(String, String)> {
    let status = mapping.status.as_ref()?;
    if status.observed_generation != Some(generation) {
        return None;
    }
    find(&status.conditions, READY).map(|c| (c.status.clone(), c.reason.clone()))
}

fn connection_ready(connection: &VendorConnection) -> Option<(String, String)> {
    let status = connection.status.as_ref()?;
    find(&status.conditions, READY).map(|c| (c.status.clone(), c.reason.clone()))
}

fn events_with_reason(server: &ApiServer, reason: &str) -> Vec<serde_json::Value> {
    server
        .events()
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_bindings_reach_the_vendor_and_report_status_and_spec_edits_resync() {
    let world = World::new().await;
    let operator = Operator::start(&world).await;
    world
        .wait_bindings("every binding is Synced at generation 1", "Synced", 1)
        .await;

    assert_eq!(
        world.lobby(),
        [
            "ann.lee@example.com",
            "fay.quinn@example.com",
            "ivy.roe@example.com"
        ]
    );
    assert_eq!(
        world
            .sandbox
            .group_members(Vendor::Kisi, "OFFICERND_Office 101"),
        ["cyd.park@example.com", "dee.moss@example.com"]
    );
    let lobby = world.binding("hot-desk-lobby").unwrap();
    let status = lobby.status.clone().unwrap();
    assert_eq!(status.counts.granted as usize, world.lobby().len());
    assert_eq!(status.resolved_groups[0].name, LOBBY);
    assert!(status.last_sync_time.is_some());
    assert!(lobby.finalizers().contains(&FINALIZER.to_owned()));
    let ready = find(&status.conditions, READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.observed_generation),
        ("True", Some(1))
    );

    // Connections: credentials checked, the account summarised.
    world
        .server
        .wait_until("both connections are Ready", |s| {
            ["officernd", "kisi"].iter().all(|name| {
                s.get_as::<VendorConnection>(NS, name)
                    .and_then(|c| connection_ready(&c))
                    == Some(("True".into(), "Synced".into()))
            })
        })
        .await;
    let kisi = world.connection("kisi").unwrap().status.unwrap();
    let account = kisi.account.unwrap();
    assert_eq!(
        account.groups,
        Some(
            world
                .sandbox
                .seeded_groups()
                .iter()
                .filter(|(v, _)| *v == Vendor::Kisi)
                .count() as u32
        )
    );
    assert!(account.people.unwrap_or(0) >= 3);
    let officernd = world.connection("officernd").unwrap().status.unwrap();
    assert!(officernd.account.unwrap().people.unwrap_or(0) > 0);

    // Grants are reported as aggregated Events.
    let synced = events_with_reason(&world.server, "Synced");
    assert!(
        synced.iter().any(|e| e["note"]
            .as_str()
            .unwrap_or_default()
            .starts_with("granted ")),
        "{synced:?}"
    );

    // A spec edit (generation 2) is picked up: mode Plan reports instead of writing.
    let writes_before = world.sandbox.kisi.write_calls();
    world
        .bindings()
        .patch(
            "office-101",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"mode": "Plan"}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("office-101 generation 2 is Planned", |s| {
            s.get_as::<AccessGroupBinding>(NS, "office-101")
                .is_some_and(|b| binding_reason(&b, 2) == Some("Planned".into()))
        })
        .await;
    assert_eq!(world.sandbox.kisi.write_calls(), writes_before);

    // The reconcile-request annotation triggers a reconcile and is echoed in status.
    world
        .bindings()
        .patch(
            "hot-desk-lobby",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: "2026-11-23T08:00:01Z"}}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("the reconcile request is handled", |s| {
            s.get_as::<AccessGroupBinding>(NS, "hot-desk-lobby")
                .and_then(|b| b.status?.last_handled_reconcile_at)
                .as_deref()
                == Some("2026-11-23T08:00:01Z")
        })
        .await;

    // Metrics are served.
    let body = reqwest::get(format!("http://{}/metrics", operator.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("flexgate_reconciles_total"), "{body}");
    assert!(body.contains("flexgate_grants_total"), "{body}");
    let ready = reqwest::get(format!("http://{}/readyz", operator.http))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_with_revoke_removes_only_what_the_binding_alone_granted() {
    let world = World::new().await;
    let operator = Operator::start(&world).await;
    world
        .wait_bindings("every binding is Synced", "Synced", 1)
        .await;
    let before = world.lobby();
    assert!(before.contains(&"ivy.roe@example.com".to_owned()));

    // Ivy holds day passes only; Ann and Fay are on the Hot Desk plan (another binding).
    world
        .bindings()
        .delete("day-passes", &DeleteParams::default())
        .await
        .unwrap();
    world
        .server
        .wait_until("the finalizer is released and the binding gone", |s| {
            s.get("AccessGroupBinding", NS, "day-passes").is_none()
        })
        .await;
    assert_eq!(
        world.lobby(),
        ["ann.lee@example.com", "fay.quinn@example.com"]
    );
    let revoked = events_with_reason(&world.server, "Revoked");
    assert!(
        revoked
            .iter()
            .any(|e| e["note"].as_str().unwrap_or_default().contains("revoked 1")),
        "{revoked:?}"
    );

    // Orphan: deleting leaves the vendor alone.
    world
        .bindings()
        .patch(
            "office-101",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"deletionPolicy": "Orphan"}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("office-101 generation 2 is handled", |s| {
            s.get_as::<AccessGroupBinding>(NS, "office-101")
                .is_some_and(|b| binding_reason(&b, 2).is_some())
        })
        .await;
    world
        .bindings()
        .delete("office-101", &DeleteParams::default())
        .await
        .unwrap();
    world
        .server
        .wait_until("office-101 is gone", |s| {
            s.get("AccessGroupBinding", NS, "office-101").is_none()
        })
        .await;
    assert_eq!(
        world
            .sandbox
            .group_members(Vendor::Kisi, "OFFICERND_Office 101"),
        ["cyd.park@example.com", "dee.moss@example.com"]
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_credentials_take_effect_without_restart() {
    let world = World::new().await;
    let operator = Operator::start(&world).await;
    world
        .wait_bindings("every binding is Synced", "Synced", 1)
        .await;
    let secrets: Api<Secret> = Api::namespaced(world.server.client(), NS);
    let good = world.sandbox.kisi.api_key.expose().to_owned();

    secrets
        .patch(
            "kisi-credentials",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"apiKey": "not-the-key"}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("the Kisi connection reports CredentialsInvalid", |s| {
            s.get_as::<VendorConnection>(NS, "kisi")
                .and_then(|c| connection_ready(&c))
                == Some(("False".into(), "CredentialsInvalid".into()))
        })
        .await;
    world
        .wait_bindings(
            "bindings report CredentialsInvalid",
            "CredentialsInvalid",
            1,
        )
        .await;
    let message = find(
        &world.connection("kisi").unwrap().status.unwrap().conditions,
        READY,
    )
    .unwrap()
    .message
    .clone();
    assert!(
        !message.contains("not-the-key"),
        "a secret leaked: {message}"
    );

    secrets
        .patch(
            "kisi-credentials",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"apiKey": good}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("the Kisi connection is Ready again", |s| {
            s.get_as::<VendorConnection>(NS, "kisi")
                .and_then(|c| connection_ready(&c))
                == Some(("True".into(), "Synced".into()))
        })
        .await;
    world
        .wait_bindings("bindings are Synced again", "Synced", 1)
        .await;
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_sync_converges_without_duplicates() {
    let world = World::new().await;
    let first = Operator::start(&world).await;
    world
        .server
        .wait_until("the first sync has started", |s| {
            s.get_as::<AccessGroupBinding>(NS, "hot-desk-lobby")
                .is_some_and(|b| !b.finalizers().is_empty())
        })
        .await;
    world.server.drop_watches();
    first.stop().await;
    world.server.drop_watches();
    let second = Operator::start(&world).await;
    world
        .wait_bindings("every binding is Synced", "Synced", 1)
        .await;
    assert_eq!(
        world.lobby(),
        [
            "ann.lee@example.com",
            "fay.quinn@example.com",
            "ivy.roe@example.com"
        ]
    );
    let mut emails: Vec<String> = world
        .sandbox
        .kisi
        .users()
        .iter()
        .map(|u| u.email.to_ascii_lowercase())
        .collect();
    let total = emails.len();
    emails.sort();
    emails.dedup();
    assert_eq!(emails.len(), total, "a Kisi user was created twice");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_resync_writes_no_status() {
    let world = World::new().await;
    let operator = Operator::start(&world).await;
    world
        .wait_bindings("every binding is Synced", "Synced", 1)
        .await;
    // Touching the Kisi Secret reconciles its connection and its three bindings. The first
    // rounds may still settle (reconciles from start-up still in flight, condition messages
    // going from "3 granted" to "0 granted in this sync"); the last two must write nothing.
    let mut writes_per_round = Vec::new();
    for round in ["1", "2", "3", "4"] {
        let bindings_before = world.metrics.reconciles_of("AccessGroupBinding");
        let connections_before = world.metrics.reconciles_of("VendorConnection");
        world.server.clear_request_log();
        let vendor_writes_before = world.sandbox.kisi.write_calls();
        world.touch_secret("kisi-credentials", round).await;
        world
            .wait_reconciles("AccessGroupBinding", bindings_before, BINDINGS.len() as u64)
            .await;
        world
            .wait_reconciles("VendorConnection", connections_before, 1)
            .await;
        assert_eq!(world.sandbox.kisi.write_calls(), vendor_writes_before);
        let status_writes: Vec<_> = world
            .server
            .request_log()
            .into_iter()
            .filter(|r| r.is_status_write())
            .map(|r| format!("{} {}", r.path, r.body.unwrap_or_default()))
            .collect();
        writes_per_round.push(status_writes);
    }
    assert!(
        writes_per_round[2..].iter().all(Vec::is_empty),
        "idle resyncs wrote status: {writes_per_round:#?}"
    );
    let triggered_reconciles = world.metrics.reconciles_of("AccessGroupBinding");
    assert!(triggered_reconciles >= 4 * BINDINGS.len() as u64);
    operator.stop().await;
}

/// Hal (no plan in the demo) on the Hot Desk plan: Ann's membership, made his.
fn hal_hot_desk(world: &World) -> serde_json::Value {
    let mut hal = world
        .sandbox
        .officernd
        .list(Collection::Memberships)
        .into_iter()
        .find(|m| m["name"] == "Ann - Hot Desk")
        .unwrap();
    hal["_id"] = json!("3e3b500000000000000000aa");
    hal["name"] = json!("Hal - Hot Desk");
    hal["member"] = json!("3e3be0000000000000000017");
    hal.as_object_mut().unwrap().remove("company");
    hal
}

/// Registers the operator's webhook endpoint at the OfficeRnD simulator for `events` and gives
/// the OfficeRnD connection the signing secret; returns the webhook id once the connection is
/// Ready with it.
async fn enable_webhooks(world: &World, operator: &Operator, events: &[&str]) -> String {
    let url = format!("http://{}/webhooks/officernd", operator.webhook);
    // The sandbox wiring drops the webhook secret; configure it, as a real set-up has it.
    let (webhook_id, secret) = world.sandbox.officernd.register_webhook(&url, events);
    let secrets: Api<Secret> = Api::namespaced(world.server.client(), NS);
    secrets
        .patch(
            "officernd-credentials",
            &PatchParams::default(),
            &Patch::Merge(&json!({"stringData": {"webhookSecret": secret.expose()}})),
        )
        .await
        .unwrap();
    let connections: Api<VendorConnection> = Api::namespaced(world.server.client(), NS);
    connections
        .patch(
            "officernd",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"officernd": {"webhookSecretKey": "webhookSecret"}}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until(
            "the OfficeRnD connection is Ready with its webhook secret",
            |s| {
                s.get_as::<VendorConnection>(NS, "officernd")
                    .is_some_and(|c| {
                        c.status.as_ref().and_then(|st| st.observed_generation) == Some(2)
                            && connection_ready(&c) == Some(("True".into(), "Synced".into()))
                    })
            },
        )
        .await;
    webhook_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officernd_webhook_reconciles_the_bindings_of_its_connection() {
    let world = World::new().await;
    let operator = Operator::start(&world).await;
    world
        .wait_bindings("every binding is Synced", "Synced", 1)
        .await;
    let webhook_id = enable_webhooks(&world, &operator, &["membership.created"]).await;

    // Hal joins the Hot Desk plan: OfficeRnD sends membership.created, the lobby follows.
    let hal = hal_hot_desk(&world);
    world
        .sandbox
        .officernd
        .upsert(Collection::Memberships, hal)
        .unwrap();
    world
        .server
        .wait_until("Hal is in the lobby", |_| {
            world.lobby().contains(&"hal.ives@example.com".to_owned())
        })
        .await;
    assert!(world
        .sandbox
        .officernd
        .deliveries()
        .iter()
        .any(|d| d.webhook_id == webhook_id && d.status == Some(202)));
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_reconciles_only_the_bindings_its_change_can_affect() {
    let world = World::new().await;
    let operator = Operator::start(&world).await;
    world
        .wait_bindings("every binding is Synced", "Synced", 1)
        .await;
    enable_webhooks(
        &world,
        &operator,
        &["booking.created", "membership.created"],
    )
    .await;
    // Let the reconciles that the Secret and connection changes started settle: none for three
    // seconds (a busy vendor account sends a reconcile back for about two).
    let quiet = |seconds: u64| {
        let metrics = world.metrics.clone();
        async move {
            let mut seen = metrics.reconciles_of("AccessGroupBinding");
            let mut still = 0;
            for _ in 0..60 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let now = metrics.reconciles_of("AccessGroupBinding");
                still = if now == seen { still + 1 } else { 0 };
                seen = now;
                if still >= seconds * 2 {
                    break;
                }
            }
            seen
        }
    };
    let before = quiet(3).await;
    let delivered = |count: usize| {
        world
            .sandbox
            .officernd
            .deliveries()
            .iter()
            .filter(|d| d.status == Some(202))
            .count()
            >= count
    };
    let accepted = world
        .sandbox
        .officernd
        .deliveries()
        .iter()
        .filter(|d| d.status == Some(202))
        .count();

    // A booking of the Elephant room: no binding here reads that room, so none is reconciled.
    world
        .sandbox
        .officernd
        .upsert(
            Collection::Bookings,
            json!({
                "_id": "b000000000000000000000f1",
                "title": "Bob's call",
                "resource": "7e5000a00000000000000008",
                "location": "10ca71000000000000000001",
                "timezone": "Europe/London",
                "start": "2026-11-23T15:00:00.000Z",
                "end": "2026-11-23T16:00:00.000Z",
                "member": "3e3be0000000000000000012",
                "isCancelled": false,
                "isTentative": false
            }),
        )
        .unwrap();
    world
        .server
        .wait_until("the booking delivery is accepted", |_| {
            delivered(accepted + 1)
        })
        .await;
    let after_booking = quiet(2).await;
    assert_eq!(
        after_booking, before,
        "a change no binding reads reconciles nothing"
    );

    // Hal joins the Hot Desk plan: only hot-desk-lobby (a plan binding on that plan) is
    // reconciled, not day-passes or office-101.
    let hal = hal_hot_desk(&world);
    world
        .sandbox
        .officernd
        .upsert(Collection::Memberships, hal)
        .unwrap();
    world
        .server
        .wait_until("Hal is in the lobby", |_| {
            world.lobby().contains(&"hal.ives@example.com".to_owned())
        })
        .await;
    let after_membership = quiet(2).await;
    assert_eq!(
        after_membership,
        before + 1,
        "only hot-desk-lobby is reconciled"
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_mapping_proposes_then_syncs_once_approved_and_a_resync_writes_nothing() {
    let world = World::with_site_mapping().await;
    let operator = Operator::start(&world).await;

    // Proposed, waiting for approval: the proposal is in status and nothing reached essensys.
    world
        .server
        .wait_until("london is AwaitingApproval at generation 1", |s| {
            s.get_as::<SiteMapping>(NS, "london")
                .and_then(|m| mapping_ready(&m, 1))
                == Some(("False".into(), "AwaitingApproval".into()))
        })
        .await;
    let status = world.site_mapping("london").unwrap().status.unwrap();
    let proposal = status.proposal.expect("status.proposal");
    let mut floors: Vec<(String, String)> = proposal
        .floors
        .matched
        .iter()
        .map(|p| (p.officernd.clone(), p.essensys.clone()))
        .collect();
    floors.sort();
    assert_eq!(
        floors,
        [
            ("Floor 1".to_owned(), "1st Floor".to_owned()),
            ("Floor 2".to_owned(), "Second Floor".to_owned())
        ]
    );
    assert!(status.saved_mapping.is_none());
    assert_eq!(world.essensys_writes(), 0);
    assert!(events_with_reason(&world.server, "SyncStarted").is_empty());

    // Approved: saved and synced to the essensys simulator.
    world
        .site_mappings()
        .patch(
            "london",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"approved": true}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("london generation 2 is Synced", |s| {
            s.get_as::<SiteMapping>(NS, "london")
                .and_then(|m| mapping_ready(&m, 2))
                == Some(("True".into(), "Synced".into()))
        })
        .await;
    let status = world.site_mapping("london").unwrap().status.unwrap();
    let saved = status.saved_mapping.expect("status.savedMapping");
    assert!(
        saved.fingerprint.starts_with("sha256:"),
        "{}",
        saved.fingerprint
    );
    assert!(status.last_sync_time.is_some());
    let essensys = &world.sandbox.essensys;
    let site = essensys
        .sites()
        .into_iter()
        .find(|s| s.name == ESSENSYS_LONDON_SITE)
        .unwrap();
    let occupiers = essensys.occupiers(&site.id);
    assert!(
        occupiers
            .iter()
            .any(|o| o.name == "Acme Ltd" && o.external_ref.is_some()),
        "{occupiers:?}"
    );
    assert!(essensys.writes(Entity::Occupier) > 0);
    assert!(essensys.writes(Entity::User) > 0);
    let mut emails: Vec<String> = essensys
        .users()
        .iter()
        .map(|u| u.email.to_lowercase())
        .collect();
    emails.sort();
    for email in ["ann.lee@example.com", "ivy.roe@example.com"] {
        assert!(emails.contains(&email.to_owned()), "{emails:?}");
    }
    let regarding_london = |reason: &str| {
        events_with_reason(&world.server, reason)
            .into_iter()
            .filter(|e| {
                e["regarding"]["name"] == "london" || e["involvedObject"]["name"] == "london"
            })
            .count()
    };
    // Events are published after the status is written.
    world
        .server
        .wait_until(
            "MappingSaved, SyncStarted and SyncCompleted are recorded",
            |_| {
                ["MappingSaved", "SyncStarted", "SyncCompleted"]
                    .iter()
                    .all(|reason| regarding_london(reason) > 0)
            },
        )
        .await;
    for reason in ["MappingSaved", "SyncStarted", "SyncCompleted"] {
        assert_eq!(regarding_london(reason), 1, "{reason} Events");
    }

    // A second reconcile (requested by annotation) finds everything in sync: no essensys write.
    let writes = world.essensys_writes();
    world
        .site_mappings()
        .patch(
            "london",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: "2026-11-23T09:00:00Z"}}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("the reconcile request on london is handled", |s| {
            s.get_as::<SiteMapping>(NS, "london")
                .and_then(|m| m.status?.last_handled_reconcile_at)
                .as_deref()
                == Some("2026-11-23T09:00:00Z")
        })
        .await;
    assert_eq!(world.essensys_writes(), writes);
    let status = world.site_mapping("london").unwrap().status.unwrap();
    assert_eq!(
        mapping_ready(&world.site_mapping("london").unwrap(), 2),
        Some(("True".into(), "Synced".into()))
    );
    assert_eq!(status.saved_mapping.unwrap(), saved);
    assert_eq!(regarding_london("SyncStarted"), 1);

    // An idle resync (the essensys Secret touched) writes neither to essensys nor to status.
    let reconciles = world.metrics.reconciles_of("SiteMapping");
    world.server.clear_request_log();
    world.touch_secret("essensys-credentials", "1").await;
    world.wait_reconciles("SiteMapping", reconciles, 1).await;
    assert_eq!(world.essensys_writes(), writes);
    let status_writes: Vec<String> = world
        .server
        .request_log()
        .into_iter()
        .filter(|r| r.is_status_write() && r.path.contains("sitemappings"))
        .map(|r| format!("{} {}", r.path, r.body.unwrap_or_default()))
        .collect();
    assert!(status_writes.is_empty(), "{status_writes:#?}");

    // The essensys connection is checked through the shared connection check.
    world
        .server
        .wait_until("the essensys connection is Ready", |s| {
            s.get_as::<VendorConnection>(NS, "essensys")
                .and_then(|c| connection_ready(&c))
                == Some(("True".into(), "Synced".into()))
        })
        .await;
    let account = world
        .connection("essensys")
        .unwrap()
        .status
        .unwrap()
        .account;
    assert_eq!(
        account.and_then(|a| a.sites),
        Some(world.sandbox.essensys.sites().len() as u32)
    );
    operator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_change_during_a_site_sync_waits_for_it_and_a_condition_says_so() {
    let world = World::with_site_mapping().await;
    let operator = Operator::start(&world).await;
    // The connection check also lists the sites; let it finish first, so the only listing
    // later is the mapping's sync.
    world
        .server
        .wait_until("the essensys connection is Ready", |s| {
            s.get_as::<VendorConnection>(NS, "essensys")
                .and_then(|c| connection_ready(&c))
                == Some(("True".into(), "Synced".into()))
        })
        .await;
    world
        .site_mappings()
        .patch(
            "london",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"approved": true}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("london generation 2 is Synced", |s| {
            s.get_as::<SiteMapping>(NS, "london")
                .and_then(|m| mapping_ready(&m, 2))
                == Some(("True".into(), "Synced".into()))
        })
        .await;

    // Hold the next sync inside its essensys site listing, and request it.
    let sites = Route::path("/api/v1/sites").method(Method::GET);
    let faults = world.sandbox.essensys.faults();
    let listed = faults.requests_matching(&sites);
    faults.add(FaultRule::new(sites.clone(), Fault::Latency(Duration::from_secs(5))).times(1));
    world
        .site_mappings()
        .patch(
            "london",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: "2026-11-23T10:00:00Z"}}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("the sync of generation 2 is inside essensys", |_| {
            faults.requests_matching(&sites) > listed
        })
        .await;

    // A spec change meanwhile (generation 3) waits, and the status says so.
    world
        .site_mappings()
        .patch(
            "london",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"sync": {"autoSendWifiInvitations": false}}})),
        )
        .await
        .unwrap();
    world
        .server
        .wait_until("Reconciling=True says generation 3 waits for the sync of 2", |s| {
            s.get_as::<SiteMapping>(NS, "london")
                .and_then(|m| m.status)
                .and_then(|st| find(&st.conditions, RECONCILING).cloned())
                .is_some_and(|c| {
                    c.status == "True"
                        && c.reason == "Progressing"
                        && c.message
                            == "a sync of generation 2 is running; the change to generation 3 is applied when it ends"
                })
        })
        .await;
    // The running sync was not interrupted: generation 2 is still what the status describes.
    let waiting = world.site_mapping("london").unwrap();
    assert_eq!(waiting.status.unwrap().observed_generation, Some(2));

    // When it ends, generation 3 is reconciled and the note is replaced.
    world
        .server
        .wait_until("london generation 3 is Synced", |s| {
            s.get_as::<SiteMapping>(NS, "london")
                .and_then(|m| mapping_ready(&m, 3))
                == Some(("True".into(), "Synced".into()))
        })
        .await;
    let status = world.site_mapping("london").unwrap().status.unwrap();
    let reconciling = find(&status.conditions, RECONCILING).unwrap();
    assert_eq!(
        (reconciling.status.as_str(), reconciling.observed_generation),
        ("False", Some(3))
    );
    assert_eq!(
        status.last_handled_reconcile_at.as_deref(),
        Some("2026-11-23T10:00:00Z")
    );
    operator.stop().await;
}

#[tokio::test]
async fn missing_crds_are_a_clear_error() {
    let server = ApiServer::start().await;
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = RunOptions::new("test");
    options.leader_election = false;
    let error = run_on(
        server.client(),
        options,
        Listeners {
            http,
            webhook: None,
        },
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, OperatorError::CrdsMissing { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("the flexgate CRDs are not installed: kubectl apply --server-side -f crds/flexgate.yaml"),
        "{error}"
    );
}

#[tokio::test]
async fn only_one_replica_holds_the_lease() {
    let server = ApiServer::start().await;
    let a = LeaderElector::new(
        server.client(),
        LeaseConfig::new("flexgate", "leader", "pod-a"),
    );
    let b = LeaderElector::new(
        server.client(),
        LeaseConfig::new("flexgate", "leader", "pod-b"),
    );
    let (first, second) = tokio::join!(a.try_acquire_or_renew(), b.try_acquire_or_renew());
    let states = [first.unwrap(), second.unwrap()];
    assert_eq!(
        states.iter().filter(|s| **s == LeaseState::Leading).count(),
        1,
        "{states:?}"
    );
    let (leader, follower) = if states[0] == LeaseState::Leading {
        (a, b)
    } else {
        (b, a)
    };
    // Renewing keeps it; the other cannot take a valid lease.
    assert_eq!(
        leader.try_acquire_or_renew().await.unwrap(),
        LeaseState::Leading
    );
    assert!(matches!(
        follower.try_acquire_or_renew().await.unwrap(),
        LeaseState::Following { holder: Some(_) }
    ));
    // Released: the follower takes over.
    leader.release().await.unwrap();
    let mut taken = false;
    for _ in 0..20 {
        if follower.try_acquire_or_renew().await.unwrap() == LeaseState::Leading {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(taken, "the follower never took the released lease");
    assert!(matches!(
        leader.try_acquire_or_renew().await.unwrap(),
        LeaseState::Following { .. }
    ));
}
