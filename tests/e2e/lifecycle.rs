//! The operator's own life on a real server: starting after the objects exist, restarting
//! (cleanly or after a crash mid-sync) and leader election between two instances. None of it
//! may report what is not true, rewrite a status that did not change, or grant anyone twice.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use flexgate::api::conditions::{READY, STALLED};
use flexgate::api::{AccessGroupBinding, Vendor, VendorConnection};
use flexgate::sandbox::faults::{Fault, FaultRule, Route};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::{watcher, WatchStreamExt};
use kube::ResourceExt;
use serde_json::json;

use crate::support::{changed, settle, wait_until, Operator, World, KINDS, KISI_BINDINGS, LOBBY};

const LOBBY_MEMBERS: [&str; 3] = [
    "ann.lee@example.com",
    "fay.quinn@example.com",
    "ivy.roe@example.com",
];
const OFFICE_MEMBERS: [&str; 2] = ["cyd.park@example.com", "dee.moss@example.com"];

fn emails(list: &[&str]) -> Vec<String> {
    list.iter().map(|e| (*e).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_sync_converges_without_duplicates() {
    let Some(world) = World::kisi("restart-mid-sync").await else {
        return;
    };
    // Every Kisi write waits a while, so the first sync is still writing when the operator dies.
    let faults = world.sandbox.kisi.faults();
    let writes = Route::any().method(Method::POST);
    faults.add(FaultRule::new(
        writes.clone(),
        Fault::Latency(Duration::from_millis(1500)),
    ));
    let first = world.start_operator().await;
    wait_until("the first sync is writing to Kisi", async || {
        faults.requests_matching(&writes) > 0
    })
    .await;
    first.crash().await;
    faults.clear();

    let (options, metrics) = world.own_options("e2e-replica-2");
    let second = Operator::start(world.cluster.client.clone(), options).await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    assert!(metrics.reconciles_of("AccessGroupBinding") > 0);
    assert_eq!(world.lobby(), emails(&LOBBY_MEMBERS));
    assert_eq!(
        world
            .sandbox
            .group_members(Vendor::Kisi, "OFFICERND_Office 101"),
        emails(&OFFICE_MEMBERS)
    );
    let users = world.sandbox.kisi.users();
    let mut addresses: Vec<String> = users.iter().map(|u| u.email.to_lowercase()).collect();
    addresses.sort();
    let total = addresses.len();
    addresses.dedup();
    assert_eq!(addresses.len(), total, "a Kisi user was created twice");
    // Kisi answers a second grant of the same group with a second row: one each, no more.
    for (group, members) in [
        (LOBBY, &LOBBY_MEMBERS[..]),
        ("OFFICERND_Office 101", &OFFICE_MEMBERS[..]),
    ] {
        let group_id = world.sandbox.group_id(Vendor::Kisi, group);
        for email in members {
            let user = users
                .iter()
                .find(|u| u.email.eq_ignore_ascii_case(email))
                .unwrap_or_else(|| panic!("{email} is a Kisi user"));
            assert_eq!(
                world.sandbox.kisi.access_row_count(&user.id, &group_id),
                1,
                "{email} granted {group} more than once"
            );
        }
    }
    second.stop().await;
    world.finish().await;
}

/// Records every Ready and Stalled condition any binding or connection of the namespace shows,
/// as "Kind/name Type=Status Reason", from before the operator starts.
fn record_conditions(world: &World) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let bindings = {
        let seen = seen.clone();
        watcher(
            world.api::<AccessGroupBinding>(),
            watcher::Config::default(),
        )
        .applied_objects()
        .for_each(move |binding| {
            if let Ok(binding) = binding {
                let conditions = binding.status.map(|s| s.conditions).unwrap_or_default();
                note(
                    &seen,
                    "AccessGroupBinding",
                    &binding.metadata.name,
                    &conditions,
                );
            }
            futures::future::ready(())
        })
    };
    let connections = {
        let seen = seen.clone();
        watcher(world.api::<VendorConnection>(), watcher::Config::default())
            .applied_objects()
            .for_each(move |connection| {
                if let Ok(connection) = connection {
                    let conditions = connection.status.map(|s| s.conditions).unwrap_or_default();
                    note(
                        &seen,
                        "VendorConnection",
                        &connection.metadata.name,
                        &conditions,
                    );
                }
                futures::future::ready(())
            })
    };
    let task = tokio::spawn(async move {
        futures::join!(bindings, connections);
    });
    (seen, task)
}

fn note(
    seen: &Mutex<Vec<String>>,
    kind: &str,
    name: &Option<String>,
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) {
    let mut seen = seen.lock().unwrap();
    for c in conditions
        .iter()
        .filter(|c| c.type_ == READY || c.type_ == STALLED)
    {
        let line = format!(
            "{kind}/{} {}={} {}",
            name.as_deref().unwrap_or_default(),
            c.type_,
            c.status,
            c.reason
        );
        if !seen.contains(&line) {
            seen.push(line);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_started_after_its_objects_reports_nothing_untrue() {
    let Some(world) = World::kisi("start-up").await else {
        return;
    };
    let (seen, recorder) = record_conditions(&world);
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    world.wait_connection("officernd", "True", "Synced").await;
    world.wait_connection("kisi", "True", "Synced").await;
    assert_eq!(operator.http_status("/readyz").await, 200);
    assert_eq!(operator.http_status("/healthz").await, 200);
    settle(&world.metrics).await;
    recorder.abort();

    let seen = seen.lock().unwrap().clone();
    let untrue: Vec<&String> = seen
        .iter()
        .filter(|line| !(line.ends_with("Ready=True Synced") || line.contains(" Stalled=False ")))
        .collect();
    assert!(
        untrue.is_empty(),
        "conditions nobody deserved at start-up: {untrue:#?} (all seen: {seen:#?})"
    );
    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "Warning Events nobody deserved at start-up: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}

/// Brings every connection's status up to date and waits until nothing moves: the first sync
/// created users at Kisi after its connection was checked, so the "N users" it shows is stale
/// until the next check, and any check (a restart's too) rightly rewrites it.
async fn recheck_connections(world: &World, metrics: &flexgate::operator::telemetry::Metrics) {
    let before = metrics.reconciles_of("VendorConnection");
    world.touch_secret("officernd-credentials", "recheck").await;
    world.touch_secret("kisi-credentials", "recheck").await;
    wait_until("both connections are checked again", async || {
        metrics.reconciles_of("VendorConnection") >= before + 2
    })
    .await;
    settle(metrics).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_writes_no_status_and_records_no_event() {
    let Some(world) = World::kisi("restart").await else {
        return;
    };
    let first = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    world.wait_connection("officernd", "True", "Synced").await;
    world.wait_connection("kisi", "True", "Synced").await;
    settle(&world.metrics).await;
    recheck_connections(&world, &world.metrics).await;
    let versions = world.resource_versions().await;
    let statuses = world.statuses().await;
    let events = world.event_versions().await;
    first.stop().await;

    let (options, metrics) = world.own_options("e2e-replica-2");
    let second = Operator::start(world.cluster.client.clone(), options).await;
    wait_until("the new operator reconciled every object", async || {
        metrics.reconciles_of("AccessGroupBinding") >= KISI_BINDINGS.len() as u64
            && metrics.reconciles_of("VendorConnection") >= 2
    })
    .await;
    settle(&metrics).await;
    let rewritten = changed(&versions, &world.resource_versions().await);
    assert!(
        rewritten.is_empty(),
        "a restart rewrote {rewritten:#?}: {:#?}",
        changed(&statuses, &world.statuses().await)
    );
    assert_eq!(metrics.status_writes(), 0);
    assert_eq!(
        world.event_versions().await,
        events,
        "a restart recorded Events: {:#?}",
        world.cluster.events().await
    );
    second.stop().await;
    world.finish().await;
}

/// The holder of the Lease `name` in the world's namespace.
async fn lease_holder(world: &World, name: &str) -> Option<String> {
    world
        .get::<Lease>(name)
        .await?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_the_standby_takes_over_when_it_stops() {
    let Some(world) = World::kisi("leader-election").await else {
        return;
    };
    const LEASE: &str = "flexgate-leader";
    let elected = |identity: &str| {
        let (mut options, metrics) = world.own_options(identity);
        options.leader_election = true;
        options.lease_namespace = world.namespace().to_owned();
        options.lease_name = LEASE.to_owned();
        (options, metrics)
    };
    let (options, leader_metrics) = elected("replica-a");
    let leader = Operator::start(world.cluster.client.clone(), options).await;
    wait_until("replica-a holds the Lease", async || {
        lease_holder(&world, LEASE).await.as_deref() == Some("replica-a")
    })
    .await;
    let (options, standby_metrics) = elected("replica-b");
    let standby = Operator::start(world.cluster.client.clone(), options).await;

    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    world.wait_connection("officernd", "True", "Synced").await;
    world.wait_connection("kisi", "True", "Synced").await;
    settle(&leader_metrics).await;
    recheck_connections(&world, &leader_metrics).await;
    assert_eq!(
        lease_holder(&world, LEASE).await.as_deref(),
        Some("replica-a")
    );
    assert!(leader_metrics.status_writes() > 0);
    for kind in KINDS {
        assert_eq!(
            standby_metrics.reconciles_of(kind),
            0,
            "the standby reconciled {kind}"
        );
    }
    assert_eq!(
        standby_metrics.status_writes(),
        0,
        "the standby wrote status"
    );
    assert!(standby_metrics.encode().contains("flexgate_leader 0"));
    assert_eq!(
        standby.http_status("/readyz").await,
        200,
        "a standby is ready"
    );
    let reporters: Vec<Option<String>> = world
        .cluster
        .events()
        .await
        .into_iter()
        .map(|e| e.reporting_instance)
        .collect();
    assert!(
        !reporters.is_empty() && reporters.iter().all(|r| r.as_deref() == Some("replica-a")),
        "Events come from the leader only: {reporters:?}"
    );
    let versions = world.resource_versions().await;
    let statuses = world.statuses().await;

    // The leader stops: the standby takes the Lease and carries on.
    leader.stop().await;
    wait_until("replica-b holds the Lease", async || {
        lease_holder(&world, LEASE).await.as_deref() == Some("replica-b")
    })
    .await;
    wait_until("the new leader reconciled every object", async || {
        standby_metrics.reconciles_of("AccessGroupBinding") >= KISI_BINDINGS.len() as u64
            && standby_metrics.reconciles_of("VendorConnection") >= 2
    })
    .await;
    settle(&standby_metrics).await;
    let rewritten = changed(&versions, &world.resource_versions().await);
    assert!(
        rewritten.is_empty(),
        "the fail-over rewrote {rewritten:#?}: {:#?}",
        changed(&statuses, &world.statuses().await)
    );

    // A change made after the fail-over reaches the vendor.
    world
        .merge::<AccessGroupBinding>(
            "office-101",
            json!({"spec": {"groups": [{"name": "OFFICERND_Office 101"}, {"name": LOBBY}]}}),
        )
        .await;
    world.wait_bindings(&["office-101"], "Synced", 2).await;
    let mut expected = emails(&LOBBY_MEMBERS);
    expected.extend(emails(&OFFICE_MEMBERS));
    expected.sort();
    assert_eq!(world.lobby(), expected);
    assert!(standby_metrics.status_writes() > 0);
    let office = world.binding("office-101").await.unwrap();
    assert!(office
        .finalizers()
        .iter()
        .any(|f| f == flexgate::api::FINALIZER));
    let warnings = world.cluster.warnings().await;
    assert!(warnings.is_empty(), "{warnings:#?}");
    standby.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_electors_racing_for_one_lease_get_one_leader_and_a_released_lease_passes_on() {
    use flexgate::operator::leader::{LeaderElector, LeaseConfig, LeaseState};
    let Some(cluster) = crate::support::Cluster::connect("lease-race").await else {
        return;
    };
    let elector = |identity: &str| {
        LeaderElector::new(
            cluster.client.clone(),
            LeaseConfig::new(&cluster.namespace, "flexgate-leader", identity),
        )
    };
    let (a, b) = (elector("pod-a"), elector("pod-b"));
    let (first, second) = tokio::join!(a.try_acquire_or_renew(), b.try_acquire_or_renew());
    let states = [first.unwrap(), second.unwrap()];
    assert_eq!(
        states.iter().filter(|s| **s == LeaseState::Leading).count(),
        1,
        "the server's optimistic concurrency lets exactly one win: {states:?}"
    );
    let (leader, follower) = if states[0] == LeaseState::Leading {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(
        leader.try_acquire_or_renew().await.unwrap(),
        LeaseState::Leading
    );
    assert!(matches!(
        follower.try_acquire_or_renew().await.unwrap(),
        LeaseState::Following { holder: Some(_) }
    ));
    leader.release().await.unwrap();
    let mut taken = false;
    for _ in 0..40 {
        if follower.try_acquire_or_renew().await.unwrap() == LeaseState::Leading {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(taken, "the follower never took the released lease");
    assert!(matches!(
        leader.try_acquire_or_renew().await.unwrap(),
        LeaseState::Following { .. }
    ));
    cluster.cleanup().await;
}
