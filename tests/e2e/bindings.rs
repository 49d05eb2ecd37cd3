//! What a VendorConnection and an AccessGroupBinding promise beyond a normal sync: rotated
//! credentials apply without a restart, `suspend` stops every vendor call, deletion revokes (or
//! orphans) and always finishes, a mass revocation waits for a person, and an idle resync
//! writes nothing.

use std::time::Duration;

use axum::http::StatusCode;
use flexgate::api::conditions::{find, READY, STALLED};
use flexgate::api::{AccessGroupBinding, Vendor, VendorConnection, ACKNOWLEDGE_REVOCATION};
use flexgate::officernd::Collection;
use flexgate::sandbox::faults::{Fault, FaultRule, Route};
use k8s_openapi::api::core::v1::Secret;
use kube::api::DeleteParams;
use serde_json::json;

use crate::support::{
    binding_condition, binding_ready, binding_reason, settle, wait_until, Operator, World,
    KISI_BINDINGS, LOBBY,
};

const OFFICE_101: &str = "OFFICERND_Office 101";

/// The Lobby as the examples grant it: Ann and Fay (Hot Desk plan), Ivy (day passes).
const LOBBY_MEMBERS: [&str; 3] = [
    "ann.lee@example.com",
    "fay.quinn@example.com",
    "ivy.roe@example.com",
];

fn emails(list: &[&str]) -> Vec<String> {
    list.iter().map(|e| (*e).to_owned()).collect()
}

/// Waits until the binding `name` is gone from the server (its finalizer released).
async fn wait_gone(world: &World, name: &str) {
    wait_until(&format!("{name} is deleted"), async || {
        world.binding(name).await.is_none()
    })
    .await;
}

/// Events about `name` with `reason`, as (type, note).
async fn notes(world: &World, name: &str, reason: &str) -> Vec<(String, String)> {
    world
        .cluster
        .events_about(name, reason)
        .await
        .into_iter()
        .map(|e| (e.type_.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_applies_without_restart() {
    let Some(world) = World::kisi("rotated-secret").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    world.wait_connection("kisi", "True", "Synced").await;
    let good = world.sandbox.kisi.api_key.expose().to_owned();

    world
        .merge::<Secret>(
            "kisi-credentials",
            json!({"stringData": {"apiKey": "not-the-key"}}),
        )
        .await;
    world
        .wait_connection("kisi", "False", "CredentialsInvalid")
        .await;
    world
        .wait_bindings(&KISI_BINDINGS, "CredentialsInvalid", 1)
        .await;
    let connection = world.connection("kisi").await.unwrap().status.unwrap();
    let message = &find(&connection.conditions, READY).unwrap().message;
    assert!(
        !message.contains("not-the-key") && !message.contains(good.as_str()),
        "a secret leaked: {message}"
    );
    let lobby = world.binding("hot-desk-lobby").await.unwrap();
    let stalled = binding_condition(&lobby, STALLED).unwrap();
    assert_eq!(stalled.status, "True", "a person must act: {stalled:?}");
    // Nobody lost access because the key was wrong.
    assert_eq!(world.lobby(), emails(&LOBBY_MEMBERS));

    world
        .merge::<Secret>("kisi-credentials", json!({"stringData": {"apiKey": good}}))
        .await;
    world.wait_connection("kisi", "True", "Synced").await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    assert_eq!(world.lobby(), emails(&LOBBY_MEMBERS));
    let warnings = world.cluster.warnings().await;
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("VendorConnection/kisi CredentialsInvalid")),
        "the refused key is reported: {warnings:#?}"
    );
    assert!(
        warnings.iter().all(|w| !w.contains(good.as_str())),
        "a secret leaked into an Event: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_binding_reads_and_writes_nothing_until_resumed() {
    // Only office-101 on the Kisi account, so every Kisi call would be its own.
    let Some(world) = World::with(
        "suspend-binding",
        &[Vendor::OfficeRnD, Vendor::Kisi],
        &["office-101"],
        &[],
    )
    .await
    else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&["office-101"], "Synced", 1).await;
    settle(&world.metrics).await;

    world
        .merge::<AccessGroupBinding>("office-101", json!({"spec": {"suspend": true}}))
        .await;
    world.wait_bindings(&["office-101"], "Suspended", 2).await;
    let suspended = world.binding("office-101").await.unwrap();
    let ready = binding_ready(&suspended).unwrap();
    assert_eq!(ready.status, "False", "{ready:?}");
    assert!(ready.message.contains("spec.suspend"), "{ready:?}");
    let (kisi, officernd) = (world.kisi_requests(), world.officernd_requests());
    let writes = world.sandbox.kisi.write_calls();
    let lobby = world.lobby();

    // Edited and asked to sync while suspended: the status follows, the vendor does not. (The
    // hand-added person in the Lobby is 1 of the 3 people with access once resumed: 33% would
    // be held at the default 20%.)
    world
        .merge::<AccessGroupBinding>(
            "office-101",
            json!({"spec": {"groups": [{"name": OFFICE_101}, {"name": LOBBY}], "maxRevocationPercent": 50}}),
        )
        .await;
    world.wait_bindings(&["office-101"], "Suspended", 3).await;
    assert_eq!(
        world.kisi_requests(),
        kisi,
        "a suspended binding called Kisi"
    );
    assert_eq!(world.sandbox.kisi.write_calls(), writes);
    assert_eq!(
        world.officernd_requests(),
        officernd,
        "a suspended binding read OfficeRnD"
    );
    assert_eq!(world.lobby(), lobby);

    // Resumed: the edit made meanwhile reaches the vendor (the Lobby is now managed by
    // office-101 alone, so the person the sandbox added to it by hand leaves it).
    world
        .merge::<AccessGroupBinding>("office-101", json!({"spec": {"suspend": false}}))
        .await;
    world.wait_bindings(&["office-101"], "Synced", 4).await;
    let office = ["cyd.park@example.com", "dee.moss@example.com"];
    assert_eq!(world.lobby(), emails(&office));
    assert_eq!(
        world.sandbox.group_members(Vendor::Kisi, OFFICE_101),
        emails(&office)
    );
    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "suspending is not a problem: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_connection_suspends_its_bindings_and_calls_nothing() {
    let Some(world) = World::kisi("suspend-connection").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    settle(&world.metrics).await;

    world
        .merge::<VendorConnection>("kisi", json!({"spec": {"suspend": true}}))
        .await;
    world.wait_connection("kisi", "False", "Suspended").await;
    world.wait_bindings(&KISI_BINDINGS, "Suspended", 1).await;
    let lobby = world.binding("hot-desk-lobby").await.unwrap();
    let message = binding_ready(&lobby).unwrap().message;
    assert!(
        message.contains(&format!("VendorConnection {}/kisi", world.namespace())),
        "{message}"
    );
    let connection = world.connection("kisi").await.unwrap().status.unwrap();
    assert_eq!(connection.observed_generation, Some(2));
    let (kisi, writes) = (world.kisi_requests(), world.sandbox.kisi.write_calls());

    // A binding edited while its connection is suspended waits too.
    world
        .merge::<AccessGroupBinding>(
            "office-101",
            json!({"spec": {"groups": [{"name": OFFICE_101}, {"name": LOBBY}]}}),
        )
        .await;
    world.wait_bindings(&["office-101"], "Suspended", 2).await;
    assert_eq!(
        world.kisi_requests(),
        kisi,
        "a suspended connection was called"
    );
    assert_eq!(world.sandbox.kisi.write_calls(), writes);
    assert_eq!(world.lobby(), emails(&LOBBY_MEMBERS));

    world
        .merge::<VendorConnection>("kisi", json!({"spec": {"suspend": false}}))
        .await;
    world.wait_connection("kisi", "True", "Synced").await;
    world
        .wait_bindings(&["hot-desk-lobby", "day-passes"], "Synced", 1)
        .await;
    world.wait_bindings(&["office-101"], "Synced", 2).await;
    let mut expected = emails(&LOBBY_MEMBERS);
    expected.extend(emails(&["cyd.park@example.com", "dee.moss@example.com"]));
    expected.sort();
    assert_eq!(world.lobby(), expected);
    let warnings = world.cluster.warnings().await;
    assert!(
        warnings.is_empty(),
        "suspending is not a problem: {warnings:#?}"
    );
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_with_revoke_removes_only_what_the_binding_alone_granted() {
    let Some(world) = World::kisi("delete-revoke").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    assert_eq!(world.lobby(), emails(&LOBBY_MEMBERS));

    // Ivy holds day passes only; Ann and Fay are on the Hot Desk plan (hot-desk-lobby).
    world
        .api::<AccessGroupBinding>()
        .delete("day-passes", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world, "day-passes").await;
    assert_eq!(
        world.lobby(),
        emails(&["ann.lee@example.com", "fay.quinn@example.com"])
    );
    let revoked = notes(&world, "day-passes", "Revoked").await;
    assert!(
        revoked
            .iter()
            .any(|(type_, note)| type_ == "Normal" && note.contains("revoked 1")),
        "{revoked:?}"
    );
    // The other bindings were not disturbed by their sibling's deletion.
    let lobby = world.binding("hot-desk-lobby").await.unwrap();
    assert_eq!(binding_reason(&lobby, 1).as_deref(), Some("Synced"));
    let warnings = world.cluster.warnings().await;
    assert!(warnings.is_empty(), "{warnings:#?}");
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_with_orphan_leaves_the_vendor_alone() {
    let Some(world) = World::kisi("delete-orphan").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    let office = emails(&["cyd.park@example.com", "dee.moss@example.com"]);
    assert_eq!(
        world.sandbox.group_members(Vendor::Kisi, OFFICE_101),
        office
    );

    world
        .merge::<AccessGroupBinding>("office-101", json!({"spec": {"deletionPolicy": "Orphan"}}))
        .await;
    world.wait_bindings(&["office-101"], "Synced", 2).await;
    let writes = world.sandbox.kisi.write_calls();
    world
        .api::<AccessGroupBinding>()
        .delete("office-101", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world, "office-101").await;
    assert_eq!(
        world.sandbox.group_members(Vendor::Kisi, OFFICE_101),
        office
    );
    assert_eq!(world.sandbox.kisi.write_calls(), writes);
    let orphaned = notes(&world, "office-101", "Orphaned").await;
    assert!(
        orphaned
            .iter()
            .any(|(type_, note)| type_ == "Normal" && note.contains("deletionPolicy Orphan")),
        "{orphaned:?}"
    );
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_whose_connection_is_gone_is_orphaned_on_deletion() {
    let Some(world) = World::kisi("delete-no-connection").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;

    world
        .api::<VendorConnection>()
        .delete("kisi", &DeleteParams::default())
        .await
        .unwrap();
    // The operator has seen it go once its bindings say so.
    world
        .wait_bindings(&["day-passes"], "ReferenceNotFound", 1)
        .await;
    world
        .api::<AccessGroupBinding>()
        .delete("day-passes", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world, "day-passes").await;
    let orphaned = notes(&world, "day-passes", "Orphaned").await;
    let gone = format!("VendorConnection {}/kisi is gone", world.namespace());
    assert!(
        orphaned
            .iter()
            .any(|(type_, note)| type_ == "Warning" && note.contains(&gone)),
        "{orphaned:?}"
    );
    // Nothing could be revoked: Ivy keeps the access she had.
    assert_eq!(world.lobby(), emails(&LOBBY_MEMBERS));
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_whose_secret_is_gone_is_orphaned_on_deletion() {
    let Some(world) = World::kisi("delete-no-secret").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;

    world
        .api::<Secret>()
        .delete("kisi-credentials", &DeleteParams::default())
        .await
        .unwrap();
    world
        .wait_connection("kisi", "False", "SecretNotFound")
        .await;
    world
        .api::<AccessGroupBinding>()
        .delete("day-passes", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world, "day-passes").await;
    let orphaned = notes(&world, "day-passes", "Orphaned").await;
    assert!(
        orphaned.iter().any(|(type_, note)| type_ == "Warning"
            && note.contains("kisi-credentials")
            && note.contains("cannot be revoked")),
        "{orphaned:?}"
    );
    assert_eq!(world.lobby(), emails(&LOBBY_MEMBERS));
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_whose_vendor_is_unreachable_is_orphaned_after_the_deletion_timeout() {
    let Some(world) = World::kisi("delete-unreachable").await else {
        return;
    };
    let mut options = world.options("e2e-replica");
    options.deletion_timeout = Duration::from_secs(8);
    let operator = Operator::start(world.cluster.client.clone(), options).await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;

    // Kisi answers every request with 503 from now on.
    world.sandbox.kisi.faults().add(FaultRule::new(
        Route::any(),
        Fault::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: None,
        },
    ));
    world
        .api::<AccessGroupBinding>()
        .delete("day-passes", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&world, "day-passes").await;

    // First the deletion waits and says why, then it gives up and says so.
    let waiting = notes(&world, "day-passes", "Deleting").await;
    assert!(
        waiting
            .iter()
            .any(|(type_, note)| type_ == "Warning" && note.contains("orphaned after 8 s")),
        "{waiting:?}"
    );
    let timed_out = notes(&world, "day-passes", "DeletionTimedOut").await;
    assert!(
        timed_out
            .iter()
            .any(|(type_, note)| type_ == "Warning" && note.contains("orphaned")),
        "{timed_out:?}"
    );
    world.sandbox.kisi.faults().clear();
    assert_eq!(world.lobby(), emails(&LOBBY_MEMBERS));
    operator.stop().await;
    world.finish().await;
}

/// Ann's Hot Desk membership, made `member`'s under the id `id`.
fn hot_desk(world: &World, id: &str, member: &str) -> serde_json::Value {
    let mut membership = world
        .sandbox
        .officernd
        .list(Collection::Memberships)
        .into_iter()
        .find(|m| m["name"] == "Ann - Hot Desk")
        .expect("Ann's Hot Desk membership in the demo seed");
    membership["_id"] = json!(id);
    membership["name"] = json!(format!("{member} - Hot Desk"));
    membership["member"] = json!(member);
    membership
}

/// Makes the operator read OfficeRnD whole again now: a changed OfficeRnD connection starts a
/// new picture (the example connection otherwise re-reads every 15 minutes of the sandbox
/// clock, which these tests do not move).
async fn reread_officernd(world: &World, interval: &str) {
    world
        .merge::<VendorConnection>("officernd", json!({"spec": {"syncInterval": interval}}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_revocation_waits_for_its_acknowledgement() {
    let Some(world) = World::prepared(
        "mass-revocation",
        &[Vendor::OfficeRnD, Vendor::Kisi],
        &["hot-desk-lobby"],
        &[],
    )
    .await
    else {
        return;
    };
    // Bob, Cyd, Dee and Hal join the Hot Desk plan too: six people in the Lobby.
    let added = [
        ("3e3b500000000000000000a1", "3e3be0000000000000000011"),
        ("3e3b500000000000000000a2", "3e3be0000000000000000012"),
        ("3e3b500000000000000000a3", "3e3be0000000000000000013"),
        ("3e3b500000000000000000a4", "3e3be0000000000000000017"),
    ];
    for (id, member) in added {
        let membership = hot_desk(&world, id, member);
        world
            .sandbox
            .officernd
            .upsert(Collection::Memberships, membership)
            .unwrap();
    }
    world.apply().await;
    let operator = world.start_operator().await;
    world.wait_bindings(&["hot-desk-lobby"], "Synced", 1).await;
    let everyone = emails(&[
        "ann.lee@example.com",
        "bob.stone@example.com",
        "cyd.park@example.com",
        "dee.moss@example.com",
        "fay.quinn@example.com",
        "hal.ives@example.com",
    ]);
    assert_eq!(world.lobby(), everyone);

    // OfficeRnD drops five of the six memberships at once.
    world
        .sandbox
        .officernd
        .remove(Collection::Memberships, "3e3b50000000000000000019")
        .expect("Ann's membership");
    for (id, _) in added {
        world
            .sandbox
            .officernd
            .remove(Collection::Memberships, id)
            .expect("an added membership");
    }
    let writes = world.sandbox.kisi.write_calls();
    reread_officernd(&world, "14m").await;
    world
        .wait_bindings(&["hot-desk-lobby"], "MassRevocationBlocked", 1)
        .await;
    assert_eq!(world.lobby(), everyone, "nobody may be removed yet");
    assert_eq!(world.sandbox.kisi.write_calls(), writes);
    let blocked = world.binding("hot-desk-lobby").await.unwrap();
    let ready = binding_ready(&blocked).unwrap();
    assert_eq!(ready.status, "False");
    assert_eq!(
        binding_condition(&blocked, STALLED).map(|c| c.status),
        Some("True".to_owned()),
        "a person must decide"
    );
    let command = format!("{ACKNOWLEDGE_REVOCATION}=");
    let plan = ready
        .message
        .split_once(&command)
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no acknowledgement command in {:?}", ready.message))
        .to_owned();
    let warned = notes(&world, "hot-desk-lobby", "MassRevocationBlocked").await;
    assert!(
        warned
            .iter()
            .any(|(type_, note)| type_ == "Warning" && note.contains(&plan)),
        "{warned:?}"
    );

    // An acknowledgement of some other plan allows nothing.
    let reconciles = world.metrics.reconciles_of("AccessGroupBinding");
    world
        .merge::<AccessGroupBinding>(
            "hot-desk-lobby",
            json!({"metadata": {"annotations": {ACKNOWLEDGE_REVOCATION: "000000000000"}}}),
        )
        .await;
    world
        .wait_reconciles("AccessGroupBinding", reconciles, 1)
        .await;
    let still = world.binding("hot-desk-lobby").await.unwrap();
    assert_eq!(
        binding_reason(&still, 1).as_deref(),
        Some("MassRevocationBlocked")
    );
    assert_eq!(world.lobby(), everyone);

    // The person acknowledges exactly this plan: the revocation is applied.
    world
        .merge::<AccessGroupBinding>(
            "hot-desk-lobby",
            json!({"metadata": {"annotations": {ACKNOWLEDGE_REVOCATION: plan}}}),
        )
        .await;
    world.wait_bindings(&["hot-desk-lobby"], "Synced", 1).await;
    assert_eq!(world.lobby(), emails(&["fay.quinn@example.com"]));
    let applied = world.binding("hot-desk-lobby").await.unwrap();
    let message = binding_ready(&applied).unwrap().message;
    assert!(message.contains("5 revoked"), "{message}");
    operator.stop().await;
    world.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_resync_writes_no_status_and_calls_no_vendor_write() {
    let Some(world) = World::kisi("idle-resync").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    world.wait_connection("kisi", "True", "Synced").await;
    world.wait_connection("officernd", "True", "Synced").await;
    settle(&world.metrics).await;
    let writes = world.sandbox.kisi.write_calls();

    // Touching a Secret reconciles its connection and every binding using it. The first rounds
    // may still settle (condition messages going from "3 granted" to "0 granted in this sync");
    // the last two must write nothing at all.
    let mut changed_per_round = Vec::new();
    for round in ["1", "2", "3", "4"] {
        let before = world.resource_versions().await;
        let status_writes = world.metrics.status_writes();
        let bindings = world.metrics.reconciles_of("AccessGroupBinding");
        let connections = world.metrics.reconciles_of("VendorConnection");
        world.touch_secret("kisi-credentials", round).await;
        world.touch_secret("officernd-credentials", round).await;
        // Each touch reconciles all three bindings (both connections are theirs; two requests
        // for one binding may be served by one reconcile).
        world
            .wait_reconciles("AccessGroupBinding", bindings, KISI_BINDINGS.len() as u64)
            .await;
        world
            .wait_reconciles("VendorConnection", connections, 2)
            .await;
        settle(&world.metrics).await;
        let after = world.resource_versions().await;
        let changed: Vec<String> = after
            .iter()
            .filter(|(key, version)| before.get(*key) != Some(version))
            .map(|(key, _)| key.clone())
            .collect();
        changed_per_round.push((changed, world.metrics.status_writes() - status_writes));
        assert_eq!(
            world.sandbox.kisi.write_calls(),
            writes,
            "an idle resync wrote to Kisi"
        );
    }
    assert!(
        changed_per_round[2..]
            .iter()
            .all(|(changed, written)| changed.is_empty() && *written == 0),
        "idle resyncs wrote status: {changed_per_round:#?}"
    );
    operator.stop().await;
    world.finish().await;
}

/// Two bindings on one Kisi group (the Hot Desk plan and the day passes both grant the lobby),
/// converging from an empty group at start-up: each person gets one user and one row, and
/// neither binding reports an error (they once raced: duplicate rows, "email has already been
/// taken").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bindings_on_one_group_converge_without_duplicates_or_errors() {
    let Some(world) = World::with(
        "shared-group",
        &[Vendor::OfficeRnD, Vendor::Kisi],
        &["hot-desk-lobby", "day-passes"],
        &[],
    )
    .await
    else {
        return;
    };
    // From an empty group: the row the sandbox adds by hand goes first (removing it is the
    // guard's business, tested elsewhere; here it would be 1 of the 4 people with access).
    let group_id = world.sandbox.group_id(Vendor::Kisi, LOBBY);
    for row in world.sandbox.kisi.role_assignments() {
        if row.group_id == group_id {
            assert!(world.sandbox.kisi.dashboard_remove_assignment(&row.id));
        }
    }
    assert!(world.lobby().is_empty());
    let operator = world.start_operator().await;
    world
        .wait_bindings(&["hot-desk-lobby", "day-passes"], "Synced", 1)
        .await;
    let lobby = world.lobby();
    assert_eq!(
        lobby,
        [
            "ann.lee@example.com",
            "fay.quinn@example.com",
            "ivy.roe@example.com"
        ]
    );
    let users = world.sandbox.kisi.users();
    for email in &lobby {
        let accounts: Vec<_> = users
            .iter()
            .filter(|u| u.email.eq_ignore_ascii_case(email))
            .collect();
        assert_eq!(
            accounts.len(),
            1,
            "{email} has {} Kisi users",
            accounts.len()
        );
        assert_eq!(
            world
                .sandbox
                .kisi
                .access_row_count(&accounts[0].id, &group_id),
            1,
            "{email} holds more than one lobby row"
        );
    }
    for name in ["hot-desk-lobby", "day-passes"] {
        let status = world.binding(name).await.unwrap().status.unwrap();
        assert_eq!(status.counts.errors, 0, "{name}: {:?}", status.problems);
    }
    let warnings = world.cluster.warnings().await;
    assert!(warnings.is_empty(), "{warnings:#?}");
    operator.stop().await;
    world.finish().await;
}
