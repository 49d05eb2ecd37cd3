//! Reads a complete OfficeRnD snapshot (every collection a use needs) or fails whole: the engine
//! must never act on a partial picture of who is entitled.

use futures::try_join;

use super::client::{OfficeRndClient, OfficeRndError};
use super::collection::{Collection, CollectionSet};
use super::model::{Resource, Snapshot};

/// Resource types that are booked rather than assigned; their assignments are not fetched.
const BOOKABLE_ONLY_TYPES: [&str; 2] = ["meeting_room", "hotdesk"];

/// Fetches the collections of `reads`, each whole; the others stay empty and are not asked for
/// (their scopes are not requested either, so an application without them still reads the rest).
/// Assignments cannot be bulk-listed on the real API, so they are fetched per assignable resource
/// (everything that is not a meeting room or hot desk); reading assignments therefore reads the
/// resources too. Bookings are listed whole: how the API's series-window filter treats open-ended
/// series is undocumented, and a missed series would lock out its bookers.
pub async fn fetch(
    client: &OfficeRndClient,
    reads: CollectionSet,
) -> Result<Snapshot, OfficeRndError> {
    let reads = if reads.contains(Collection::Assignments) {
        reads.with(Collection::Resources)
    } else {
        reads
    };
    let client = &client.reading(reads);
    let wanted = |collection| reads.contains(collection);
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
        when(wanted(Collection::Members), client.list_members(None)),
        when(wanted(Collection::Companies), client.list_companies(None)),
        when(wanted(Collection::Memberships), client.list_memberships()),
        when(wanted(Collection::Plans), client.list_plans()),
        when(wanted(Collection::Locations), client.list_locations()),
        when(wanted(Collection::Floors), client.list_floors()),
        when(
            wanted(Collection::Resources),
            client.list_resources::<Resource>(None)
        ),
        when(
            wanted(Collection::Bookings),
            client.list_bookings(None, None)
        ),
        when(wanted(Collection::Passes), client.list_passes(None)),
        when(wanted(Collection::Visitors), client.list_visitors(None)),
    )?;
    let assignments = if wanted(Collection::Assignments) {
        let assignable: Vec<String> = resources
            .iter()
            .filter(|r| {
                r.resource_type
                    .as_deref()
                    .is_none_or(|t| !BOOKABLE_ONLY_TYPES.contains(&t))
            })
            .map(|r| r.id.clone())
            .collect();
        client.list_assignments_for_resources(&assignable).await?
    } else {
        Vec::new()
    };
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

/// `list` when `wanted`, else an empty list without a request. The list runs boxed: ten paged
/// lists side by side would otherwise make one future too large for a thread's stack.
async fn when<T>(
    wanted: bool,
    list: impl std::future::Future<Output = Result<Vec<T>, OfficeRndError>>,
) -> Result<Vec<T>, OfficeRndError> {
    if wanted {
        Box::pin(list).await
    } else {
        Ok(Vec::new())
    }
}
