//! Reads a complete OfficeRnD snapshot (every collection the engine needs) or fails whole: the
//! engine must never act on a partial picture of who is entitled.

use futures::try_join;

use super::client::{OfficeRndClient, OfficeRndError};
use super::model::{Resource, Snapshot};

/// Resource types that are booked rather than assigned; their assignments are not fetched.
const BOOKABLE_ONLY_TYPES: [&str; 2] = ["meeting_room", "hotdesk"];

/// Fetches every collection. Assignments cannot be bulk-listed on the real API, so they are
/// fetched per assignable resource (everything that is not a meeting room or hot desk).
/// Bookings are listed whole: how the API's time-window filter treats recurring series is
/// undocumented, and a missed series would lock out its bookers.
pub async fn fetch(client: &OfficeRndClient) -> Result<Snapshot, OfficeRndError> {
    let (
        members,
        companies,
        memberships,
        plans,
        locations,
        floors,
        resources,
        bookings,
        passes,
        visitors,
    ) = try_join!(
        client.list_members(None),
        client.list_companies(None),
        client.list_memberships(),
        client.list_plans(),
        client.list_locations(),
        client.list_floors(),
        client.list_resources::<Resource>(None),
        client.list_bookings(None, None),
        client.list_passes(None),
        client.list_visitors(None),
    )?;
    let assignable: Vec<String> = resources
        .iter()
        .filter(|r| {
            r.resource_type
                .as_deref()
                .is_none_or(|t| !BOOKABLE_ONLY_TYPES.contains(&t))
        })
        .map(|r| r.id.clone())
        .collect();
    let assignments = client.list_assignments_for_resources(&assignable).await?;
    Ok(Snapshot {
        members,
        companies,
        memberships,
        plans,
        locations,
        floors,
        resources,
        assignments,
        bookings,
        passes,
        visitors,
    })
}
