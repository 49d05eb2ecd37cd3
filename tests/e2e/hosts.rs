//! One reconcile core, two hosts: the same scenario through the cluster controller (on the real
//! API server) and through the folder host (`flexgate run --manifests`) ends in the same
//! statuses, field for field. The scenario has a suspended VendorConnection (its bindings are
//! Suspended and nothing calls its vendor, in either host), a binding that syncs, a SiteMapping
//! approved from the start (saved and synced), and a reconcile request handled by every object.

use std::collections::BTreeMap;

use flexgate::api::{
    AccessGroupBinding, SiteMapping, Vendor, VendorConnection, RECONCILE_REQUESTED_AT,
};
use flexgate::operator::objects::Objects;
use flexgate::operator::runner::{self, ClientCache};
use flexgate::sandbox::faults::Route;
use flexgate::sandbox::Sandbox;
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::support::{settle, wait_until, World, KISI_BINDINGS};

const REQUEST: &str = "2026-11-23T08:00:00Z";
const SYNCING: &str = "london-building";

/// `Kind/name` → status, as JSON.
fn statuses(objects: &Objects) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for c in &objects.connections {
        all.insert(
            format!("VendorConnection/{}", c.name_any()),
            json!(c.status),
        );
    }
    for b in &objects.bindings {
        all.insert(
            format!("AccessGroupBinding/{}", b.name_any()),
            json!(b.status),
        );
    }
    for m in &objects.site_mappings {
        all.insert(format!("SiteMapping/{}", m.name_any()), json!(m.status));
    }
    all
}

fn request(meta: &mut kube::api::ObjectMeta) {
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(RECONCILE_REQUESTED_AT.to_owned(), REQUEST.to_owned());
}

/// The objects of `world` as the server has them now.
async fn in_cluster(world: &World) -> Objects {
    let mut objects = Objects::default();
    for c in &world.objects.connections {
        objects
            .connections
            .extend(world.get::<VendorConnection>(&c.name_any()).await);
    }
    for b in &world.objects.bindings {
        objects
            .bindings
            .extend(world.get::<AccessGroupBinding>(&b.name_any()).await);
    }
    for m in &world.objects.site_mappings {
        objects
            .site_mappings
            .extend(world.get::<SiteMapping>(&m.name_any()).await);
    }
    objects
}

fn handled(objects: &Objects) -> bool {
    let echoed = |s: Option<&String>| s.map(String::as_str) == Some(REQUEST);
    objects.connections.iter().all(|c| {
        echoed(
            c.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_ref()),
        )
    }) && objects.bindings.iter().all(|b| {
        echoed(
            b.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_ref()),
        )
    }) && objects.site_mappings.iter().all(|m| {
        echoed(
            m.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_ref()),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_and_the_folder_host_reach_the_same_statuses() {
    let mut bindings = KISI_BINDINGS.to_vec();
    bindings.push(SYNCING);
    let Some(mut world) = World::prepared(
        "both-hosts",
        &[
            Vendor::OfficeRnD,
            Vendor::Kisi,
            Vendor::Brivo,
            Vendor::Essensys,
        ],
        &bindings,
        &["london"],
    )
    .await
    else {
        return;
    };
    for connection in &mut world.objects.connections {
        connection.spec.suspend = connection.spec.vendor == Vendor::Kisi;
    }
    for mapping in &mut world.objects.site_mappings {
        mapping.spec.approved = true;
    }
    // The folder host gets the same objects, pointed at a sandbox of its own in the same state.
    let folder_sandbox = Sandbox::start_demo().await.expect("sandbox");
    let mut folder = world.objects.clone();
    folder.secrets.clear();
    folder_sandbox.connect(&mut folder);

    // The cluster: everything reconciled, then a reconcile request on every object.
    world.apply().await;
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Suspended", 1).await;
    world.wait_bindings(&[SYNCING], "Synced", 1).await;
    world.wait_connection("kisi", "False", "Suspended").await;
    world.wait_mapping("london", 1, "True", "Synced").await;
    settle(&world.metrics).await;
    for c in &world.objects.connections {
        world
            .merge::<VendorConnection>(
                &c.name_any(),
                json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: REQUEST}}}),
            )
            .await;
    }
    for b in &world.objects.bindings {
        world
            .merge::<AccessGroupBinding>(
                &b.name_any(),
                json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: REQUEST}}}),
            )
            .await;
    }
    world
        .merge::<SiteMapping>(
            "london",
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: REQUEST}}}),
        )
        .await;
    wait_until("every object handled the reconcile request", async || {
        handled(&in_cluster(&world).await)
    })
    .await;
    settle(&world.metrics).await;
    let cluster = statuses(&in_cluster(&world).await);
    operator.stop().await;

    // The folder host: a pass, the same request, another pass.
    let mut clients = ClientCache::default();
    let clock = folder_sandbox.clock.clock();
    let now = clock();
    runner::pass(&mut folder, now, &mut clients, &clock).await;
    for c in &mut folder.connections {
        request(&mut c.metadata);
    }
    for b in &mut folder.bindings {
        request(&mut b.metadata);
    }
    for m in &mut folder.site_mappings {
        request(&mut m.metadata);
    }
    let second = runner::pass(&mut folder, now, &mut clients, &clock).await;
    assert!(!second.all_ready(), "the suspended connection is not Ready");

    let folder_statuses = statuses(&folder);
    assert_eq!(cluster.len(), 9, "{:?}", cluster.keys());
    for (key, status) in &cluster {
        assert_eq!(
            Some(status),
            folder_statuses.get(key),
            "{key}: the cluster (left) and the folder host (right) disagree"
        );
    }
    assert_eq!(cluster, folder_statuses);

    // A suspended connection is called by neither host.
    assert_eq!(
        world.kisi_requests(),
        0,
        "the cluster called a suspended Kisi"
    );
    assert_eq!(
        folder_sandbox
            .kisi
            .faults()
            .requests_matching(&Route::any()),
        0,
        "the folder host called a suspended Kisi"
    );
    let synced = &folder_statuses[&format!("AccessGroupBinding/{SYNCING}")];
    assert_eq!(synced["conditions"][0]["reason"], "Synced", "{synced}");
    world.finish().await;
}
