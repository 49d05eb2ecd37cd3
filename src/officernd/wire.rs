//! OfficeRnD wire facts learnt from recordings, observations and public client code rather than
//! from the reference pages, in one place for the client and the simulator; each says where it
//! comes from, and the inferred ones say so and why.

/// The only fields a booking list can be windowed by: `seriesStart[$op]` / `seriesEnd[$op]`.
///
/// Source: public OfficeRnD v2 client code (a meeting-room display service) documents that "bookings
/// can only be filtered by `seriesStart`/`seriesEnd`, not by occurrence `start`/`end` (the API
/// rejects those)", that a recurring booking is listed as one row carrying its `rrule`, and windows
/// with `seriesStart[$lt]=<end>&seriesEnd[$gte]=<start>` to find "every series touching the
/// window"; issue #12 reports the same rejection. The rejection's body is not recorded; it is
/// inferred to be the uniform strict-validation answer observed on staging for any unknown query
/// parameter (`recorded/officernd/obs-01`): 400 `{"statusCode":400,"message":"property start
/// should not exist","error":"Bad Request"}`.
///
/// Open-ended series (an `rrule` without `COUNT` or `UNTIL`): **inferred** that the API gives them
/// a `seriesEnd` no earlier than their last possible occurrence (far in the future), not none.
/// The reference example only shows a one-off booking (`seriesEnd` = its `end`). The display
/// service above shows weekly meetings that "still recur this week" through exactly that overlap
/// query; were open-ended series stored without `seriesEnd`, the query could never match them (a
/// date comparison does not match an absent field) and such a display would miss every standing
/// weekly meeting, which its authors would have met at once. The simulator stamps such a series
/// with [`OPEN_SERIES_END`]. Should the inference be wrong, a series without `seriesEnd` is still
/// read by the complete read of the window only if it started inside the window, so the operator
/// documentation tells to give standing series an end date.
pub const BOOKING_WINDOW_FIELDS: [&str; 2] = ["seriesStart", "seriesEnd"];

/// The `seriesEnd` the simulator gives an open-ended recurring booking (see
/// [`BOOKING_WINDOW_FIELDS`]; inferred).
pub const OPEN_SERIES_END: &str = "9999-12-31T23:59:59.999Z";

/// How many ids one `field[$in]=a,b,…` filter carries.
///
/// Known: the v2 query language takes multi-value filters as `field[$in]=a,b` (reference pages,
/// `status[$in]=active,pending`; vendor-apis.md §1.2); `/assignments` must be filtered by
/// `resource` or `membership` (vendor-apis.md §1.4; a third-party backup tool fans out one request
/// per resource because of it). **Inferred**: that `resource[$in]` and `membership[$in]` are taken
/// on `/assignments` like any other exact filter (no source shows either way), and that a query of
/// 100 ids (about 2.5 KB of URL: 24-hex ids and commas) is within what the API's front accepts (no
/// limit is published; 8 KB request lines are the common default of HTTP front ends). Fewer
/// requests than one per resource is the whole point: 500 resources are 5 requests instead of 500.
pub const IDS_PER_FILTER: usize = 100;

/// Collections the client asks `GET /{collection}/count` → `{"total": n}`.
///
/// Known: members and memberships document it (reference pages; `recorded/officernd/doc-02`). On
/// staging the memberships count ignored every filter and never returned the documented `groups`
/// (`recorded/officernd/obs-01`), so only the total is read, never a filtered count.
///
/// Assignments: **inferred**. No page documents `/assignments/count`, and no public client code
/// found uses it (searched: OfficeRnD reference and guide pages, public code and issues). It is
/// asked because the v2 API serves `count` as a generic route of its collections (the same
/// `/{collection}/count` shape on the two collections whose pages show it), and it is the only
/// cheap question assignments allow: the documented object is `{_id, resource, membership,
/// startDate, endDate}` with no `modifiedAt` (`recorded/officernd/doc-09`), so no
/// `modifiedAt[$gt]` filter can be asked, and there is no `assignment.*` webhook (vendor-apis.md
/// §1.6; the `occupancyslot.created|removed` events are about bookings: "Occurs when a booking is
/// created to show its occurrences", n8n's OfficeRnD node). Should the server refuse it (404: no
/// such route, or 400: `count` taken for an id, or the list's required `resource`/`membership`
/// filter enforced there too), the refusal is remembered per organization and assignments are
/// read whole at every resync ([`COUNT_REFUSED`]), which is never less than what they got before
/// the count was asked. Like the memberships count, it is taken to ignore filters: only the
/// organization's total is compared, with the total seen when assignments were last read whole
/// (not with the number held, which is only the assignable resources' share).
pub const COUNTED: [super::Collection; 3] = [
    super::Collection::Members,
    super::Collection::Memberships,
    super::Collection::Assignments,
];

/// The statuses of a count the API does not serve for a collection (see [`COUNTED`]): 404, no
/// such route (NestJS `Cannot GET …`); 400, `count` validated as an id, or a required filter
/// missing. Anything else (403, 5xx, 429) is an ordinary failure of the read.
pub const COUNT_REFUSED: [u16; 2] = [400, 404];

/// How long before the previous read's start an incremental read asks from
/// (`modifiedAt[$gt]=<start − overlap>`).
///
/// Inferred, nothing published: covers clock skew between OfficeRnD and the operator and writes
/// that commit while a read pages through a collection (a write stamped before the read started
/// but not yet visible to it). Objects read twice are upserted twice, which changes nothing.
pub const INCREMENTAL_OVERLAP: chrono::Duration = chrono::Duration::minutes(2);

/// The `message` of the answer to a request naming an organization slug that does not exist:
/// status **500**, not 404 (`recorded/officernd/obs-01`, a tester's observation on staging; the
/// envelope is the NestJS one every other error uses, `{"statusCode":500,"message":"Organization
/// not found","error":"Internal Server Error"}`, inferred since only the message was quoted).
///
/// A 500 is otherwise an outage and retried; this one is final: the slug in
/// `spec.officernd.organization` is wrong.
pub const ORGANIZATION_NOT_FOUND: &str = "Organization not found";

/// Whether an error text (a 5xx body or the excerpt of one) is the unknown-organization answer.
/// The message is matched as a JSON string value, so a page that merely contains the words does
/// not count.
pub fn is_organization_not_found(text: &str) -> bool {
    text.contains(&format!("\"{ORGANIZATION_NOT_FOUND}\""))
}

/// The OAuth2 error code of a token request naming a scope the application was not granted.
///
/// Inferred: OfficeRnD's identity server is not recorded refusing a scope; a third-party registry
/// of its scopes says the whole token request fails (vendor-apis.md §1.1, "Scope pitfall"). The
/// answer is taken to be RFC 6749 §5.2's: status 400 with `{"error":"invalid_scope"}`, which is
/// also exactly what another vendor's identity server was recorded answering
/// (`recorded/salto-ks/rec-14`). The body does not say which scope was refused, so the client asks
/// for each scope alone to find out (see `OfficeRndClient`).
pub const INVALID_SCOPE: &str = "invalid_scope";

/// OAuth2 error codes that mean the client credentials themselves were refused (RFC 6749 §5.2):
/// no scope is to blame, so no scope is probed.
pub const CREDENTIAL_ERRORS: [&str; 4] = [
    "invalid_client",
    "unauthorized_client",
    "invalid_grant",
    "unsupported_grant_type",
];

/// Requests per second to one organization when `spec.requestsPerSecond` is not set.
///
/// OfficeRnD publishes no number: the v2 announcement only says it "introduces rate limiting for
/// read and write operations", and the webhooks guide warns that polling "can hit the rate limit
/// and be cut off" (vendor-apis.md §1.3). Public clients stay well below 10/s (one bounds its
/// fan-out to 5 concurrent requests). 5/s is the safer of the two numbers this project used (the
/// client's 5, the CRD text's 10); a whole read of a large organization still fits the read
/// deadline at this pace.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unknown_organization_answer_is_recognised_only_as_a_message() {
        assert!(is_organization_not_found(
            r#"500 Internal Server Error: {"error":"Internal Server Error","message":"Organization not found","statusCode":500}"#
        ));
        assert!(!is_organization_not_found(
            "502 Bad Gateway: <html>Organization not found in upstream</html>"
        ));
    }
}
