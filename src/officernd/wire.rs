//! OfficeRnD wire facts learnt from recordings, observations and public client code rather than
//! from the reference pages, in one place for the client and the simulator; each says where it
//! comes from, and the inferred ones say so and why.

/// The only fields a booking list can be windowed by: `seriesStart[$op]` / `seriesEnd[$op]`.
///
/// Source: public OfficeRnD v2 client code (a meeting-room display service) documents that "bookings
/// can only be filtered by `seriesStart`/`seriesEnd`, not by occurrence `start`/`end` (the API
/// rejects those)" and windows with `seriesStart[$lt]=<end>&seriesEnd[$gte]=<start>`; issue #12
/// reports the same rejection. The rejection's body is not recorded; it is inferred to be the
/// uniform strict-validation answer observed on staging for any unknown query parameter
/// (`recorded/officernd/obs-01`): 400 `{"statusCode":400,"message":"property start should not
/// exist","error":"Bad Request"}`.
///
/// How `seriesEnd` is set on a series without COUNT or UNTIL is not known (the reference example
/// even shows it equal to the first occurrence's end), so a windowed list may miss open-ended
/// series; the snapshot therefore lists bookings whole.
pub const BOOKING_WINDOW_FIELDS: [&str; 2] = ["seriesStart", "seriesEnd"];

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
