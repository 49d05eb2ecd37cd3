//! Reads a complete OfficeRnD snapshot (every collection a use needs) or fails whole: the engine
//! must never act on a partial picture of who is entitled.

use futures::try_join;

use super::client::{BookingWindow, OfficeRndClient, OfficeRndError};
use super::collection::{Collection, CollectionSet};
use super::model::{Resource, Snapshot};

/// Resource types that are booked rather than assigned; their assignments are not fetched.
const BOOKABLE_ONLY_TYPES: [&str; 2] = ["meeting_room", "hotdesk"];

/// Fetches the collections of `reads`, each whole (bookings too); see [`fetch_windowed`].
pub async fn fetch(
    client: &OfficeRndClient,
    reads: CollectionSet,
) -> Result<Snapshot, OfficeRndError> {
    fetch_windowed(client, reads, None).await
}

/// The ids of the resources that can be assigned (everything that is not a meeting room or hot
/// desk): the resources whose assignments are read.
pub fn assignable(resources: &[Resource]) -> Vec<String> {
    resources
        .iter()
        .filter(|r| is_assignable(r))
        .map(|r| r.id.clone())
        .collect()
}

/// Whether assignments of `resource` are read (see [`assignable`]).
pub fn is_assignable(resource: &Resource) -> bool {
    resource
        .resource_type
        .as_deref()
        .is_none_or(|t| !BOOKABLE_ONLY_TYPES.contains(&t))
}

/// Fetches the collections of `reads`; the others stay empty and are not asked for (their scopes
/// are not requested either, so an application without them still reads the rest). Every
/// collection is read whole except bookings when `window` is given: then only the bookings whose
/// series overlaps it ([`BookingWindow`]; open-ended series are inferred to carry a far
/// `seriesEnd`, [`super::wire::BOOKING_WINDOW_FIELDS`]). Assignments cannot be listed without a
/// parent filter, so they are read for the assignable resources (everything that is not a meeting
/// room or hot desk) in `resource[$in]` batches; reading assignments therefore reads the resources
/// too.
pub async fn fetch_windowed(
    client: &OfficeRndClient,
    reads: CollectionSet,
    window: Option<BookingWindow>,
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
            client.list_bookings(window, None)
        ),
        when(wanted(Collection::Passes), client.list_passes(None)),
        when(wanted(Collection::Visitors), client.list_visitors(None)),
    )?;
    let assignments = if wanted(Collection::Assignments) {
        client
            .list_assignments_for_resources(&assignable(&resources))
            .await?
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
