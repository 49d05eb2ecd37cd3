//! OfficeRnD reads at scale on the real server (issue #14): a change made at OfficeRnD without any
//! webhook (a desk assigned, which has no webhook at all; a day pass used up) reaches the door with
//! the next incremental read, `syncInterval` after the previous read.

use flexgate::api::{AccessGroupBinding, Vendor, RECONCILE_REQUESTED_AT};
use flexgate::officernd::Collection;
use serde_json::json;

use crate::support::{wait_until, World, KISI_BINDINGS};

const BOB: &str = "bob.stone@example.com";
const IVY: &str = "ivy.roe@example.com";
const OFFICE_101: &str = "OFFICERND_Office 101";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_without_a_webhook_reaches_the_door_with_the_next_incremental_read() {
    let Some(world) = World::kisi("reads-incremental").await else {
        return;
    };
    let operator = world.start_operator().await;
    world.wait_bindings(&KISI_BINDINGS, "Synced", 1).await;
    let office = || world.sandbox.group_members(Vendor::Kisi, OFFICE_101);
    assert!(!office().contains(&BOB.to_owned()));
    assert!(world.lobby().contains(&IVY.to_owned()), "Ivy's day pass");
    // At OfficeRnD, with no webhook registered: Office 101 assigned to Bob's membership, Ivy's
    // last day passes used.
    world
        .sandbox
        .officernd
        .upsert(
            Collection::Assignments,
            json!({"_id": "a550000000000000000000aa", "resource": "7e5000a00000000000000006",
                "membership": "3e3b5000000000000000001b", "startDate": "2026-01-01T00:00:00.000Z"}),
        )
        .unwrap();
    let mut pass = world
        .sandbox
        .officernd
        .get(Collection::Passes, "9a5500000000000000000027")
        .unwrap();
    pass["usedCount"] = json!(5);
    pass["status"] = json!("used");
    world
        .sandbox
        .officernd
        .upsert(Collection::Passes, pass)
        .unwrap();
    assert!(world.sandbox.officernd.deliveries().is_empty());

    // The examples' syncInterval (15 minutes) passes on the sandbox clock; the bindings'
    // reconciles (asked for here, as their 15-minute timers would) read what changed.
    world.sandbox.clock.advance(chrono::Duration::minutes(16));
    for name in ["office-101", "day-passes"] {
        world
            .merge::<AccessGroupBinding>(
                name,
                json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: "2026-11-23T08:16:00Z"}}}),
            )
            .await;
    }
    wait_until(
        "Bob is in Office 101 and Ivy out of the lobby",
        async || office().contains(&BOB.to_owned()) && !world.lobby().contains(&IVY.to_owned()),
    )
    .await;
    operator.stop().await;
    world.finish().await;
}
