//! The booking horizon on the real server (issue #14): bookings are held only up to a horizon
//! ahead, the OfficeRnD connection's status shows it, no binding plans past it, and it moves
//! forward as time passes, reaching bookings that were beyond it.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use flexgate::api::{AccessGroupBinding, Vendor, VendorConnection, RECONCILE_REQUESTED_AT};
use flexgate::officernd::Collection;
use flexgate::operator::reconcile::instant;
use serde_json::json;

use crate::support::{wait_until, World};

const ROOM: &str = "elephant-meeting-room";
/// The Elephant meeting room of the demo organization, and Bob Stone.
const ELEPHANT: &str = "7e5000a00000000000000008";
const BOB: &str = "3e3be0000000000000000011";

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn horizon_of(connection: &VendorConnection) -> Option<DateTime<Utc>> {
    connection
        .status
        .as_ref()
        .and_then(|status| status.booking_horizon.as_ref())
        .map(instant)
}

fn next_change_of(binding: &AccessGroupBinding) -> Option<DateTime<Utc>> {
    binding
        .status
        .as_ref()
        .and_then(|status| status.next_change_time.as_ref())
        .map(instant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_booking_horizon_shows_in_status_and_moves_forward_with_time() {
    let Some(world) = World::with(
        "booking-horizon",
        &[Vendor::OfficeRnD, Vendor::Brivo],
        &[ROOM],
        &[],
    )
    .await
    else {
        return;
    };
    let start = world.sandbox.clock.now();
    // Made at OfficeRnD before the first read: a booking of the room 9 days ahead, beyond the
    // 8 days a read holds.
    let far = start + Duration::days(9);
    world
        .sandbox
        .officernd
        .upsert(
            Collection::Bookings,
            json!({"_id": "b00c0000000000000000f0f0", "resource": ELEPHANT, "member": BOB,
                "start": stamp(far), "end": stamp(far + Duration::hours(1)),
                "timezone": "Europe/London"}),
        )
        .unwrap();
    let operator = world.start_operator().await;
    world.wait_bindings(&[ROOM], "Synced", 1).await;

    let mut first = None;
    wait_until(
        "the OfficeRnD connection shows its booking horizon",
        async || {
            first = world
                .connection("officernd")
                .await
                .as_ref()
                .and_then(horizon_of);
            first.is_some()
        },
    )
    .await;
    let first = first.unwrap();
    assert!(
        first >= start + Duration::days(7) && first <= start + Duration::days(8),
        "the horizon {first} is 7 to 8 days after {start}"
    );
    assert!(first < far, "the far booking is beyond the horizon");
    let binding = world.binding(ROOM).await.unwrap();
    let next = next_change_of(&binding).expect("the binding says when it next changes");
    assert!(
        next <= first,
        "nextChangeTime {next} is not past the horizon {first}"
    );

    // Two days on, less than 7 days are left: the next read (the daily complete read, due by
    // now) moves the horizon forward, over the far booking, and the connection's status follows
    // without being asked.
    world.sandbox.clock.advance(Duration::days(2));
    world
        .merge::<AccessGroupBinding>(
            ROOM,
            json!({"metadata": {"annotations": {RECONCILE_REQUESTED_AT: "horizon-moved"}}}),
        )
        .await;
    let mut moved = None;
    wait_until(
        "the horizon moved forward in the connection's status",
        async || {
            moved = world
                .connection("officernd")
                .await
                .as_ref()
                .and_then(horizon_of)
                .filter(|horizon| *horizon > first);
            moved.is_some()
        },
    )
    .await;
    let moved = moved.unwrap();
    let now = world.sandbox.clock.now();
    assert!(
        moved >= now + Duration::days(7) && moved > far,
        "the moved horizon {moved} is at least 7 days after {now} and past the far booking {far}"
    );
    operator.stop().await;
    world.finish().await;
}
