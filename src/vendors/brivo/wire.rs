//! Brivo wire facts shared by the client and the simulator: paths, limits, headers, the live error
//! messages, Mashery's throttling replies, and the JSON shapes read and written. Each fact says where
//! it comes from; the INFERRED ones are decisions kept here so that a correction is one edit.
//!
//! Sources:
//! - [docs] Brivo's Access API reference, apidocs.brivo.com (vendor-apis.md §4; verbatim copies in
//!   recorded/brivo/doc-*.json and in the public capture `docs/apidocs.brivo.com_.2025-11-25…md` of
//!   University-of-British-Columbia-Okanagan/MSYK_Membership);
//! - [rec] the 2017 production recordings (recorded/brivo/rec-*.json, techspaceco/brivo cassettes):
//!   every API reply came from `Server: Mashery Proxy`;
//! - [mashery] how the Mashery API gateway (which fronts `api.brivo.com`: "Calls to api.brivo.com
//!   require a Mashery API key" [docs]) answers throttled calls, from public clients of other
//!   Mashery-fronted APIs (cited at [`mashery_throttle`]). Brivo itself documents no rate limit.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

use super::BrivoMobilePassTarget;
use crate::http::Throttle;
use crate::vendors::VendorUser;

/// Header carrying the Mashery API key on every call, token calls included [docs, rec].
pub const API_KEY_HEADER: &str = "api-key";

/// Token endpoint path under the auth host (`https://auth.brivo.com/oauth/token`) [docs].
pub const TOKEN_PATH: [&str; 2] = ["oauth", "token"];

/// Page size when none is asked for, and the documented maximum [docs].
pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 100;

/// Brivo refuses to put a user in more than this many groups (documented on `POST /users/{id}/groups`).
pub const MAX_GROUPS_PER_USER: usize = 16;

/// Type given to the email and phone number we create (Brivo stores free strings; "work" is what
/// the documentation examples and clients use).
pub const CONTACT_TYPE: &str = "work";

/// Live 404 messages (recordings rec-02/rec-07 and rec-13; the docs say "User not found" /
/// "Group not found", the wire said these).
pub const USER_NOT_FOUND: &str = "Requested user not found";
pub const UNKNOWN_GROUP: &str = "Unknown Group";

/// Mashery's answer (HTML, 403) when the API key is missing or not active [docs: "With a
/// `<h1>Developer Inactive</h1>` response body. This indicates that no valid api-key header was
/// provided"].
pub const DEVELOPER_INACTIVE: &str = "Developer Inactive";

/// Brivo's own 403: the administrator behind the token may not do this [docs: "a response from an
/// end point request where the oauth token is acting on behalf of someone who does not have
/// permission", body `{"code": 403, "message": "You are not allowed to perform that action"}`
/// (doc-14)]. Final: retrying cannot grant a permission. Never confused with throttling, which
/// Mashery marks (see [`mashery_throttle`]).
pub const NOT_ALLOWED: &str = "You are not allowed to perform that action";

/// Documented 400 messages.
pub const INVALID_FILTER: &str = "Invalid filter format";
pub const INVALID_CRITERIA: &str = "Invalid criteria provided";

/// Documented digital-invitation conflicts: 409 (a pending invitation exists) and 412 (no passes).
pub const PENDING_INVITATION: &str =
    "There is already a pending invitation for the cardHolder. No new invitation will be generated";
pub const NO_PASSES_LEFT: &str = "You don't have any Brivo Wallet Passes available.";

/// INFERRED: the body Brivo sends when `PUT /groups/{g}/users/{u}` would give the user a 17th
/// group. The cap is documented, its error body on this endpoint is not; we assume the documented
/// `{code, message}` shape with status 400. The client does not depend on this text: any 400 on that
/// call is reported as a refusal that names the cap.
pub const GROUP_CAP_MESSAGE: &str = "A user can be a member of at most 16 groups";

/// INFERRED: the 404 body of `DELETE /groups/{g}/users/{u}` for a user who is not a member.
pub const NOT_A_MEMBER: &str = "User is not a member of the group";

// ---------------------------------------------------------------------------------------------
// Throttling (issue 12, point 3)

/// Mashery's error-code header on the replies it makes itself [mashery].
pub const MASHERY_ERROR_CODE_HEADER: &str = "x-mashery-error-code";
/// Mashery's human-readable detail header on the same replies [mashery].
pub const MASHERY_ERROR_DETAIL_HEADER: &str = "x-error-detail-header";
/// The per-second limit of the key's plan is exceeded [mashery].
pub const OVER_QPS_CODE: &str = "ERR_403_DEVELOPER_OVER_QPS";
/// The service-wide per-second limit is exceeded [mashery: listed among Mashery's error set ids].
pub const SERVICE_OVER_QPS_CODE: &str = "ERR_403_SERVICE_OVER_QPS";
/// The key's quota for a longer period (typically a day) is used up [mashery].
pub const OVER_RATE_CODE: &str = "ERR_403_DEVELOPER_OVER_RATE";
/// Detail text of [`OVER_QPS_CODE`], in the detail header or (on some deployments) the body.
pub const OVER_QPS_DETAIL: &str = "Account Over Queries Per Second Limit";
/// Detail text of [`OVER_RATE_CODE`].
pub const OVER_RATE_DETAIL: &str = "Account Over Rate Limit";
/// Mashery's default HTML body for [`OVER_QPS_CODE`] (same style as [`DEVELOPER_INACTIVE`]).
pub const OVER_QPS_BODY: &str = "<h1>Developer Over Qps</h1>";
/// Mashery's default HTML body for [`OVER_RATE_CODE`].
pub const OVER_RATE_BODY: &str = "<h1>Developer Over Rate</h1>";

/// Whether a refused reply of `api.brivo.com` is Mashery throttling, and which kind.
///
/// Facts [mashery], all from clients and docs of other Mashery-fronted APIs (Brivo documents no
/// throttling reply): over the per-second limit Mashery answers **403**, not 429, with
/// `X-Mashery-Error-Code: ERR_403_DEVELOPER_OVER_QPS`, `X-Error-Detail-Header: Account Over Queries
/// Per Second Limit`, sometimes `Retry-After: 1`, and the body `<h1>Developer Over Qps</h1>`
/// (adidas/api-guidelines `execution/rate-limiting.md`); a Go client retries exactly on that header
/// with growing waits, a Python client sleeps `Retry-After` (default 1 s) on it; Getty Images' .NET
/// SDK (gettyimages-api_dotnet PR #23) handled "a 403 with a Mashery-specific header" as its 429;
/// other deployments put the detail text in the body (`{ "Error": "Account Over Queries Per Second
/// Limit" }`, `<h1>Account Over Queries Per Second Limit</h1>`). An exhausted daily quota is 403
/// `ERR_403_DEVELOPER_OVER_RATE` / "Account Over Rate Limit" / `<h1>Developer Over Rate</h1>`.
///
/// INFERRED for Brivo: its gateway speaks Mashery's defaults ([rec]: `Server: Mashery Proxy`; its
/// missing-key reply is Mashery's `<h1>Developer Inactive</h1>` [docs]). So a 403 is throttling
/// only when one of those markers says so (header first, then the body texts); Brivo's own 403
/// (`{"code":403,"message":…}`, a permission) and Developer Inactive stay final.
pub fn mashery_throttle(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Option<Throttle> {
    if status != StatusCode::FORBIDDEN {
        return None;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .unwrap_or("")
    };
    let code = header(MASHERY_ERROR_CODE_HEADER);
    if code.eq_ignore_ascii_case(OVER_QPS_CODE) || code.eq_ignore_ascii_case(SERVICE_OVER_QPS_CODE)
    {
        return Some(Throttle::PerSecond);
    }
    if code.eq_ignore_ascii_case(OVER_RATE_CODE) {
        return Some(Throttle::Quota);
    }
    // Without the code header, the detail header or the body must say it in Mashery's words.
    let detail = header(MASHERY_ERROR_DETAIL_HEADER).to_ascii_lowercase();
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    let says = |needle: &str| {
        let needle = needle.to_ascii_lowercase();
        detail.contains(&needle) || text.contains(&needle)
    };
    if says(OVER_QPS_DETAIL) || says(OVER_QPS_BODY) {
        Some(Throttle::PerSecond)
    } else if says(OVER_RATE_DETAIL) || says(OVER_RATE_BODY) {
        Some(Throttle::Quota)
    } else {
        None
    }
}

/// Client-side limit when the connection sets none.
///
/// INFERRED: Brivo publishes no limit; API keys are tiered subscriptions (vendor-apis.md §4.2) and
/// Mashery enforces each key's per-second limit with the 403 above. One public client defaults to
/// 20/s; we use the conservative 10/s that the `VendorConnection.spec.requestsPerSecond` doc promises
/// for vendors without a documented limit, and throttled calls back off and retry anyway.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 10.0;

// ---------------------------------------------------------------------------------------------
// Users without emails in lists (issue 12, point 5)

/// How many `GET /users/{id}` reads run at once while completing a user list (the per-account
/// token bucket paces them anyway).
pub const DETAIL_READ_CONCURRENCY: usize = 4;

/// How long a user's emails read by `GET /users/{id}` are reused when the list does not carry the
/// user's `updated` time.
///
/// Facts: [docs] "Empty or null values in the domain model are omitted … In many cases the listing
/// calls will provide a smaller slice of data returned than the retrieval of an individual
/// object"; the recorded lists (rec-08/rec-09) carry `{id, externalId?, firstName, lastName,
/// suspended}` only, no `emails` and no `updated`, while `GET /users/{id}` is documented with
/// `emails[]` (doc-02) and `updated`. There is no email filter on `/users` [docs]; `externalId` is
/// "guaranteed to be unique within the clients Brivo Access account … used to link two users"
/// [docs, PATCH user].
///
/// Decision: a listed user without an `emails` key and without an `externalId` (someone created by
/// hand, who can only be recognised by email) is read once with `GET /users/{id}`. A user carrying
/// an `externalId` is matched by it; one whose `externalId` belongs to another system is linked to
/// that system and is not adopted by email. A read is reused while the list shows the same
/// `updated` time; when the list shows none (as recorded), for at most this long.
/// INFERRED: five minutes bounds how long an email typed into Brivo by hand goes unseen, at one read
/// per such user per five minutes.
pub const DETAIL_REUSE: std::time::Duration = std::time::Duration::from_secs(300);

// ---------------------------------------------------------------------------------------------
// JSON shapes (absent and null are the same to Brivo: it omits nulls [docs, rec-14])

/// Brivo ids are integers on the wire [rec]; tolerate strings too and keep them as strings.
fn id_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Number(number) => Ok(number.to_string()),
        serde_json::Value::String(text) if !text.is_empty() => Ok(text),
        other => Err(serde::de::Error::custom(format!(
            "expected an integer id, got {other}"
        ))),
    }
}

/// `externalId` is a string on the wire even when sent as a number (rec-03); accept both.
fn optional_id_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(number)) => Ok(Some(number.to_string())),
        Some(serde_json::Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string externalId, got {other}"
        ))),
    }
}

/// The list envelope: `count` is the total across pages [rec-08: 119 while 100 returned];
/// `offset`/`pageSize` are echoed on top-level lists and absent on sub-resource lists [rec-17,
/// rec-31], which this client does not page.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub count: u64,
}

/// Anything listed with an id, for de-duplication while paging.
pub trait WireId {
    fn wire_id(&self) -> &str;
}

/// A user as listed (`GET /users`, `GET /groups/{id}/users`) or read (`GET /users/{id}`,
/// `/users/{externalId}/external`, the `POST /users` reply). Every key but `id` may be absent.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireUser {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default, deserialize_with = "optional_id_string")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    /// `None`: the reply has no `emails` key (lists leave it out, see [`DETAIL_REUSE`]), so the
    /// emails are unknown; `Some(empty)`: the user has none.
    #[serde(default)]
    pub emails: Option<Vec<WireEmail>>,
    /// Last change [docs: lists since 2024 and single reads carry it; the 2017 lists did not].
    #[serde(default)]
    pub updated: Option<String>,
}

impl WireId for WireUser {
    fn wire_id(&self) -> &str {
        &self.id
    }
}

/// One of a user's emails; `type` is a free string ("work", "Work", "home"…) [docs].
#[derive(Debug, Clone, Deserialize)]
pub struct WireEmail {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

impl WireUser {
    /// Whether this reply says which emails the user has (lists may not, see [`DETAIL_REUSE`]).
    pub fn emails_known(&self) -> bool {
        self.emails.is_some()
    }

    /// The one email [`VendorUser`] carries: the first "work" address (the type we create, in any
    /// case), else the first address. Brivo users may hold several.
    pub fn preferred_email(&self) -> Option<String> {
        let addresses: Vec<&WireEmail> = self
            .emails
            .iter()
            .flatten()
            .filter(|email| {
                email
                    .address
                    .as_deref()
                    .is_some_and(|address| !address.trim().is_empty())
            })
            .collect();
        addresses
            .iter()
            .find(|email| {
                email
                    .kind
                    .as_deref()
                    .is_some_and(|kind| kind.eq_ignore_ascii_case(CONTACT_TYPE))
            })
            .or_else(|| addresses.first())
            .and_then(|email| email.address.as_deref())
            .map(|address| address.trim().to_owned())
    }

    pub fn into_vendor_user(self) -> VendorUser {
        let email = self.preferred_email();
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        VendorUser {
            id: self.id,
            email,
            external_id: self.external_id.filter(|id| !id.is_empty()),
            name,
        }
    }
}

/// A group in `GET /groups` (2017: `{id, name, keypadUnlock, immuneToAntipassback}`; the docs add
/// `excludedFromLockdown` and a string `antipassbackResetTime`): only the id and name are read.
#[derive(Debug, Clone, Deserialize)]
pub struct WireGroup {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

impl WireId for WireGroup {
    fn wire_id(&self) -> &str {
        &self.id
    }
}

/// `POST /users` body. Differs from the 2017 recording (rec-03: `{firstName, lastName,
/// externalId: 1, suspended: false}`) on purpose: `externalId` is sent as the string it is
/// documented to be ("Text"; the server turned the recorded number into `"1"`), `suspended` is left
/// to its default (false), and the person's email and phone are sent (the integration guides sync
/// them; the documented create body accepts `emails[]`/`phoneNumbers[]`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserBody<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    /// The OfficeRnD member id.
    pub external_id: &'a str,
    pub emails: Vec<ContactEmail<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phone_numbers: Vec<ContactPhone<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ContactEmail<'a> {
    pub address: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
}

#[derive(Debug, Serialize)]
pub struct ContactPhone<'a> {
    pub number: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
}

/// The token reply (rec-01: `{access_token, token_type: "bearer", refresh_token, expires_in: 59,
/// scope, jti}`; docs: `expires_in` 300 (60 in the overview example)).
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    pub expires_in: u64,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Query of `POST /users/{id}/credentials/digital-invitations`; all three parameters are marked
/// required in the reference.
///
/// INFERRED for [`BrivoMobilePassTarget::BrandedApp`]: the integration guide only says passes are
/// "assigned in the OfficeRnD Branded App"; the most likely shape is the same invitation with
/// `sendInvitationEmail=false`, so Brivo sends no email and the branded app redeems the invitation.
pub fn invitation_query(target: BrivoMobilePassTarget) -> [(&'static str, &'static str); 3] {
    let send_email = match target {
        BrivoMobilePassTarget::BrivoApp => "true",
        BrivoMobilePassTarget::BrandedApp => "false",
    };
    [
        ("sendInvitationEmail", send_email),
        ("nfcEnabled", "false"),
        ("language", "en"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn mashery_throttling_is_told_apart_from_brivo_403s() {
        let none = HeaderMap::new();
        let qps = headers(&[(MASHERY_ERROR_CODE_HEADER, OVER_QPS_CODE)]);
        assert_eq!(
            mashery_throttle(StatusCode::FORBIDDEN, &qps, OVER_QPS_BODY.as_bytes()),
            Some(Throttle::PerSecond)
        );
        assert_eq!(
            mashery_throttle(StatusCode::FORBIDDEN, &qps, b""),
            Some(Throttle::PerSecond),
            "the header alone is enough"
        );
        let detail = headers(&[(MASHERY_ERROR_DETAIL_HEADER, OVER_QPS_DETAIL)]);
        assert_eq!(
            mashery_throttle(StatusCode::FORBIDDEN, &detail, b""),
            Some(Throttle::PerSecond)
        );
        assert_eq!(
            mashery_throttle(
                StatusCode::FORBIDDEN,
                &none,
                br#"{ "Error": "Account Over Queries Per Second Limit" }"#
            ),
            Some(Throttle::PerSecond)
        );
        assert_eq!(
            mashery_throttle(StatusCode::FORBIDDEN, &none, OVER_RATE_BODY.as_bytes()),
            Some(Throttle::Quota)
        );
        assert_eq!(
            mashery_throttle(
                StatusCode::FORBIDDEN,
                &headers(&[(MASHERY_ERROR_CODE_HEADER, OVER_RATE_CODE)]),
                b""
            ),
            Some(Throttle::Quota)
        );
        // Brivo's own refusals stay final.
        assert_eq!(
            mashery_throttle(
                StatusCode::FORBIDDEN,
                &none,
                br#"{"code":403,"message":"You are not allowed to perform that action"}"#
            ),
            None
        );
        assert_eq!(
            mashery_throttle(StatusCode::FORBIDDEN, &none, b"<h1>Developer Inactive</h1>"),
            None
        );
        assert_eq!(
            mashery_throttle(StatusCode::BAD_REQUEST, &qps, OVER_QPS_BODY.as_bytes()),
            None,
            "only a 403 is Mashery's throttling reply"
        );
    }

    #[test]
    fn listed_users_without_emails_are_told_from_users_without_any() {
        let listed: WireUser = serde_json::from_value(serde_json::json!(
            {"id": 15150324, "firstName": "A", "lastName": "B", "suspended": false}
        ))
        .unwrap();
        assert!(!listed.emails_known());
        let read: WireUser = serde_json::from_value(serde_json::json!(
            {"id": 1, "emails": [], "externalId": 7}
        ))
        .unwrap();
        assert!(read.emails_known());
        assert_eq!(read.preferred_email(), None);
        assert_eq!(read.external_id.as_deref(), Some("7"));
    }
}
