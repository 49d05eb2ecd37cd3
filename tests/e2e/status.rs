//! What `kubectl get` and `kubectl describe` show: status, printer columns, observedGeneration,
//! the reconcile-request annotation echoed, Events, metrics and readiness.

use flexgate::api::conditions::{find, READY};
use flexgate::api::{
    AccessGroupBinding, Vendor, VendorConnection, FINALIZER, RECONCILE_REQUESTED_AT,
};
use kube::ResourceExt;
use serde_json::json;

use crate::support::{binding_reason, wait_until, World, KISI_BINDINGS, LOBBY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_bindings_reach_the_vendor_and_status_reports_it() {
    let Some(world) = World::kisi("status").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;

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
    let lobby = world.binding("hot-desk-lobby").await.unwrap();
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

    world.wait_connection("officernd", "True", "Synced").await;
    world.wait_connection("kisi", "True", "Synced").await;
    let kisi = world.connection("kisi").await.unwrap().status.unwrap();
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
    let officernd = world.connection("officernd").await.unwrap().status.unwrap();
    assert!(officernd.account.unwrap().people.unwrap_or(0) > 0);

    // The printer columns, as a person reads them.
    let (ok, table, stderr) = world
        .cluster
        .kubectl(&["get", "accessgroupbindings", "-o", "wide"]);
    assert!(ok, "{stderr}");
    let header = table.lines().next().unwrap_or_default();
    for column in [
        "NAME", "VENDOR", "MODE", "READY", "REASON", "MATCHED", "GRANTED",
    ] {
        assert!(header.contains(column), "{column} missing in {table}");
    }
    let row = table
        .lines()
        .find(|l| l.starts_with("hot-desk-lobby "))
        .unwrap_or_else(|| panic!("no hot-desk-lobby row in {table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(
        cells.contains(&"True") && cells.contains(&"Synced"),
        "{row}"
    );
    assert!(cells.contains(&"3"), "granted 3 expected in {row}");
    let (ok, table, stderr) = world.cluster.kubectl(&["get", "vendorconnections"]);
    assert!(ok, "{stderr}");
    for name in ["officernd", "kisi"] {
        let row = table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} row in {table}"));
        assert!(row.contains("True") && row.contains("Synced"), "{row}");
    }

    // Grants are reported as Events (by whichever binding of the shared group synced it).
    let synced: Vec<_> = world
        .cluster
        .events()
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Synced"))
        .collect();
    assert!(
        synced.iter().any(|e| e
            .note
            .as_deref()
            .unwrap_or_default()
            .starts_with("granted ")),
        "{synced:?}"
    );

    // A spec edit (generation 2) is observed: mode Plan reports instead of writing.
    let writes_before = world.sandbox.kisi.write_calls();
    world
        .merge::<AccessGroupBinding>("office-101", json!({"spec": {"mode": "Plan"}}))
        .await;
    wait_until("office-101 generation 2 is Planned", async || {
        world
            .binding("office-101")
            .await
            .is_some_and(|b| binding_reason(&b, 2).as_deref() == Some("Planned"))
    })
    .await;
    assert_eq!(world.sandbox.kisi.write_calls(), writes_before);
    let office = world.binding("office-101").await.unwrap().status.unwrap();
    assert_eq!(office.observed_generation, Some(2));

    // The reconcile-request annotation triggers a reconcile and is echoed in status.
    world
        .merge::<AccessGroupBinding>(
            "hot-desk-lobby",
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: "2026-11-23T08:00:01Z"}}}),
        )
        .await;
    world
        .merge::<VendorConnection>(
            "kisi",
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: "2026-11-23T08:00:02Z"}}}),
        )
        .await;
    wait_until("the reconcile requests are handled", async || {
        let binding = world
            .binding("hot-desk-lobby")
            .await
            .and_then(|b| b.status?.last_handled_reconcile_at);
        let connection = world
            .connection("kisi")
            .await
            .and_then(|c| c.status?.last_handled_reconcile_at);
        binding.as_deref() == Some("2026-11-23T08:00:01Z")
            && connection.as_deref() == Some("2026-11-23T08:00:02Z")
    })
    .await;

    // Metrics and readiness are served.
    let body = reqwest::get(format!("http://{}/metrics", operator.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("flexgate_reconciles_total"), "{body}");
    assert!(body.contains("flexgate_grants_total"), "{body}");
    assert_eq!(operator.http_status("/readyz").await, 200);

    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "Warning Events nobody deserved: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}
