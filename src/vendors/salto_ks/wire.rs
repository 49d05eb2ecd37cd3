//! Salto KS Connect API wire shapes shared by the client and the simulator: paths, JSON bodies,
//! list envelopes, paging, roles, subscription (seat) state and error bodies. Every wire fact lives
//! here with its source; every guessed one is marked INFERRED with the reason.
//!
//! Sources. `rec-NN` / `obs-01` are the files of `../shared/reference/recorded/salto-ks/` (real
//! 2026 captures against Salto's accept environment, S1–S3 of its README); `vendor-apis.md §3` is
//! `../shared/reference/vendor-apis.md`; "Roomdoo" is commitsun/roomdoo-smartlocks
//! `roomdoo-locks-salto/roomdoo_locks_salto/provider.py` (commit 178186be) and its
//! `tests/test_salto.py`; "Laravel" is the public `SaltoksCreateUser` console command (SALTO-C2 in
//! vendor-apis.md); "C#" is a public console client of the accept environment (reads `items` of
//! `/v1.1/sites/{site}/users`); "CLP SDK" is ClaySolutions/clp-php-sdk
//! `src/Utilities/MultiPageResponse.php` and `AbstractHttpClient.php` (the sibling CLP API).
//!
//! Facts:
//! * identity `POST /connect/token`, Basic client auth, form body `grant_type=password, username,
//!   password, scope=user_api.full_access`; 3600 s tokens; no `refresh_token` in the recorded
//!   answer; OAuth error bodies `{"error": "invalid_scope" | …}` with 400 (rec-01, rec-14; Roomdoo
//!   and Laravel send the same form);
//! * `GET /v1.2/sites` is a bare array (obs-01); `GET /v1.2/sites/{site}` needs the UUID `id`, the
//!   human `site_uid` gives 400 ErrorCode 1100 (obs-01, rec-02);
//! * other lists use `{items, next_page_link, count}` with `next_page_link: null` on the last page
//!   and `count: null` unless `$inlinecount=allpages` (rec-03/04/07/09–12; Laravel reads `count`
//!   with `$inlinecount=allpages`); `/v1.2/sites/{site}/users` was measured as a bare array for a
//!   request without query options (obs-01, 2026-08-18) and as the envelope for `?$top=100`
//!   (rec-12, 2026-08-19); entries page with `continuation_token` instead (rec-13), see
//!   [`parse_page`];
//! * paging: see [`PAGE_SIZE`] and [`next_link_query`];
//! * a site user is `{id: <site-user id>, user: {id: <platform user id>, email, first_name, …},
//!   roles[], alias, blocked, subscription_state, …}` with explicit nulls (`email: null` for
//!   tag-only users, `alias: null` or `""`) (rec-05, rec-12);
//! * roles: see [`Role`] and [`DEFAULT_USER_ROLE_CODE`]; creation: see [`CreateSiteUser`];
//! * seats: see [`SUBSCRIPTION_SUSPENDED`] and [`SiteDetail`];
//! * business errors `{"ErrorCode": <string or number>, "Message": "…"}`; the wrong (site-user) id
//!   on an access-group add gives 404 `{"ErrorCode":"2202","Message":"User not found"}`; `/v2`
//!   paths answer RFC 7807 `{type, title, status, traceId}` instead (obs-01, rec-08).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The Connect API version prefix of every endpoint this integration uses.
pub const API_VERSION: &str = "v1.2";
/// The token endpoint under the identity URL.
pub const TOKEN_PATH: [&str; 2] = ["connect", "token"];
/// The scope of the Connect (user) API. Other scopes, alone or combined with it, were answered
/// `invalid_scope` for an integration client (rec-14).
pub const USER_API_SCOPE: &str = "user_api.full_access";
/// The business error code observed for "User not found" (also for an unknown OTP: it appears to
/// be the generic not-found code, which is why the simulator uses it for unknown sites and groups).
pub const ERROR_NOT_FOUND: &str = "2202";
/// Observed for a required field / a malformed identifier (e.g. a site_uid where the UUID belongs).
pub const ERROR_FIELD_REQUIRED: i64 = 1100;
/// Observed for a validation rule that failed (e.g. "At least one day should be selected").
pub const ERROR_VALIDATION: i64 = 1101;
/// Observed for an invalid query option (`$orderby`); the simulator also uses it for `$filter`.
pub const ERROR_QUERY: i64 = 1102;

/// `$top` of every paged list request, and so the size of one paging window. 100 is the value of
/// the only recorded site-user listing (rec-12, `GET /v1.2/sites/{site}/users?$top=100`), which the
/// server accepted.
///
/// INFERRED semantics (why the client pages in windows): the envelope `{items, next_page_link,
/// count}` is ASP.NET Web API OData's `PageResult` in snake case, and `$inlinecount=allpages` is
/// OData v3 syntax, so the server is taken to follow that framework: `$top` caps the whole result
/// (not a page), a server page size below `$top` yields a `next_page_link` carrying the remaining
/// `$top` and a larger `$skip`, and when `$top` is reached the link is null even if more items
/// exist. Hence "fewer than `$top` items in total" is the only proof that a listing is complete;
/// a window that reached `$top` is followed by another with `$skip`. A bare array (measured for a
/// request without `$top`, obs-01) carries no link and no count, so it is complete only when it
/// holds fewer than `$top` items. `$skip` itself is not recorded (vendor-apis.md §3 marks it
/// unconfirmed); a server that ignored it would repeat the first window, which the client detects
/// and reports instead of looping or counting people twice.
pub const PAGE_SIZE: u32 = 100;

/// `subscription_state` of a site user who holds a seat of the site's subscription (rec-12).
pub const SUBSCRIPTION_SUBSCRIBED: &str = "subscribed";

/// `subscription_state` of a site user without a seat: such a user opens no door.
///
/// Facts: with every seat of the subscription taken, `POST /v1.2/sites/{site}/guests` still answers
/// **201** but with `subscription_state: "suspended"` and no error anywhere (obs-01; the same
/// report: "any provisioning job must check `subscription_state`"); a suspended site user appears
/// in rec-12; licences are billed per subscribed user and suspending frees one (Roomdoo
/// `_do_revoke_access`); `DELETE /users/{site_user}` frees the seat at once (obs-01). INFERRED:
/// `POST /v1.2/sites/{site}/users` (the call flexgate makes) behaves as `POST /guests` does when
/// the seats are used up, since both create a site user that takes a seat.
pub const SUBSCRIPTION_SUSPENDED: &str = "suspended";

/// `code` of the built-in role flexgate gives new site users when the connection names none.
///
/// Facts: `POST /v1.2/sites/{site}/users` takes `role_ids[]` (vendor-apis.md §3; Roomdoo and Laravel
/// send exactly one role id); Roomdoo refuses to create a user without a configured role because
/// "without one Salto rejects creation", and offers a role list so the caller can pick "the basic
/// *User* role, which only opens doors" (`list_roles`); role ids must be discovered per site, not
/// hard-coded (Roomdoo); `GET /v1.2/sites/{site}/roles` lists `{id, customer_reference, code,
/// parent_id, is_hierarchical}` and, for the recorded (non-admin) caller, only the role with code
/// `site_user` ("Site User") (rec-07); ordinary members in rec-12 carry `site_user`.
pub const DEFAULT_USER_ROLE_CODE: &str = "site_user";

/// The token endpoint's answer. `refresh_token` is optional: the recorded password-grant response
/// (rec-01) lists no refresh token, other clients report one (IdentityServer issues it when the
/// client is allowed offline access), so the client uses it when present.
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// One entry of `GET /v1.2/sites` (a bare array). `site_uid` is the human id ("DE4520168385");
/// API paths need the UUID `id` (the site_uid gives 400 ErrorCode 1100).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Site {
    pub id: String,
    #[serde(default)]
    pub site_uid: Option<String>,
    #[serde(default)]
    pub customer_reference: Option<String>,
}

/// An access group; its name is `customer_reference`.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessGroup {
    pub id: String,
    #[serde(default)]
    pub customer_reference: Option<String>,
}

/// The platform (global) user nested in a site user. Fields other than `id` may be null.
#[derive(Debug, Clone, Deserialize)]
pub struct PlatformUser {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
}

/// A site user (`/v1.2/sites/{site}/users` item, `/sites/{site}/me` and the `POST` answer, rec-05,
/// rec-12). Only `id` and `user.id` are required; everything else is read when present, because the
/// recordings carry explicit nulls and a `PATCH` answer once showed `roles: []` (obs-01).
#[derive(Debug, Clone, Deserialize)]
pub struct SiteUser {
    /// The site-user id: used for `/users/{id}` paths (delete, PIN, subscription), never for groups.
    pub id: String,
    pub user: PlatformUser,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub roles: Vec<Role>,
    /// `"subscribed"` or `"suspended"` (rec-12); see [`SUBSCRIPTION_SUSPENDED`].
    #[serde(default)]
    pub subscription_state: Option<String>,
    /// Always `false` in the recordings; INFERRED meaning: an administrator blocked the user, who then
    /// opens no door (Laravel reads it back as "saltoks_user_blocked" before reusing a user;
    /// vendor-apis.md §3.5 "an existing user may be `blocked`").
    #[serde(default)]
    pub blocked: Option<bool>,
}

impl SiteUser {
    /// Whether the site user holds no seat (see [`SUBSCRIPTION_SUSPENDED`]).
    pub fn is_suspended(&self) -> bool {
        self.subscription_state.as_deref() == Some(SUBSCRIPTION_SUSPENDED)
    }
}

/// A role of a site (`GET /v1.2/sites/{site}/roles` item, `roles[]` of a site user; rec-05, rec-07,
/// rec-12). `parent_id` is null for most roles but set for `site_user`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    #[serde(default)]
    pub customer_reference: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub is_hierarchical: Option<bool>,
}

impl Role {
    /// `Site User (8f60…)`, for messages.
    pub fn describe(&self) -> String {
        let name = self
            .customer_reference
            .as_deref()
            .or(self.code.as_deref())
            .unwrap_or("unnamed role");
        format!("{name} ({})", self.id)
    }
}

/// The site's built-in basic role (code [`DEFAULT_USER_ROLE_CODE`]) among `roles`: exactly one must
/// be listed, otherwise the message says which roles are visible.
pub fn default_user_role(roles: &[Role]) -> Result<&Role, String> {
    let found: Vec<&Role> = roles
        .iter()
        .filter(|role| role.code.as_deref() == Some(DEFAULT_USER_ROLE_CODE))
        .collect();
    match found.as_slice() {
        [role] => Ok(role),
        [] => Err(format!(
            "the site lists no role with code {DEFAULT_USER_ROLE_CODE:?} (visible roles: {})",
            describe_roles(roles)
        )),
        several => Err(format!(
            "the site lists {} roles with code {DEFAULT_USER_ROLE_CODE:?} ({})",
            several.len(),
            several
                .iter()
                .map(|role| role.describe())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `Site User (…), Site Admin (…)` or `none`.
pub fn describe_roles(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "none".to_owned();
    }
    roles
        .iter()
        .map(Role::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /v1.2/sites/{site}` (rec-02), the fields flexgate reads.
///
/// `active_user_amount` is the number of site users holding a seat and `subscribed_user_amount` the
/// seats of the subscription: rec-02 (5 of 10) was captured together with rec-12 (six site users,
/// one suspended), `GET /sites/{site}/subscription` answered `user_amount: 10` (obs-01), and the
/// measurement report says `active_user_amount` "stops counting at `subscribed_user_amount`" once
/// the seats are used up (ECCdigital `salto-ks-api-contract.md` §3, the source of obs-01).
#[derive(Debug, Clone, Deserialize)]
pub struct SiteDetail {
    pub id: String,
    #[serde(default)]
    pub site_uid: Option<String>,
    #[serde(default)]
    pub customer_reference: Option<String>,
    #[serde(default)]
    pub active_user_amount: Option<u64>,
    #[serde(default)]
    pub subscribed_user_amount: Option<u64>,
    #[serde(default)]
    pub subscription_valid: Option<bool>,
}

/// `POST /v1.2/sites/{site}/users`. Only the fields the sync owns: the company is deliberately
/// absent, and so is the phone (no source shows a phone field on site-user creation; the person's
/// platform profile holds it once they accept the invitation). `role_ids` is always sent with one
/// role (see [`DEFAULT_USER_ROLE_CODE`]): every public client sends one, and Salto refuses a user
/// without a role (Roomdoo). Fields other clients add (`blocked: false`, `use_pin`, `alias`,
/// `subscription_status`, Laravel and Roomdoo) are left to the site's defaults.
///
/// INFERRED refusal shape (what the simulator answers): no recording shows the refusal of a
/// role-less user. A missing `role_ids` is answered like the other missing required fields
/// observed, 400 `{"ErrorCode": 1100, "Message": "The role_ids field is required."}` (obs-01: "The
/// otp field is required." is 400 1100), and an empty list like the observed empty weekday
/// selection, 400 ErrorCode 1101 "At least one role should be selected." (obs-01: "At least one day
/// should be selected").
#[derive(Debug, Serialize)]
pub struct CreateSiteUser<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    pub role_ids: &'a [String],
}

/// `POST /v1.2/sites/{site}/access_groups/{ag}/users`: the PLATFORM user id.
#[derive(Debug, Serialize)]
pub struct AddGroupMember<'a> {
    pub user_id: &'a str,
}

/// INFERRED SHAPE: no source shows `GET /v1.2/sites/{site}/access_groups/{ag}/users`. It is assumed
/// to use the usual envelope; an item is accepted as a site user (`{id, user: {id}}`: the nested
/// platform id is taken), as `{user_id}`, or as a platform user (`{id}`), in that order.
pub fn member_user_id(item: &Value) -> Option<String> {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    text(item.get("user").and_then(|user| user.get("id")))
        .or_else(|| text(item.get("user_id")))
        .or_else(|| text(item.get("id")))
}

/// One page of a list endpoint, whichever of the two observed shapes it came in.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Value>,
    pub next_page_link: Option<String>,
    /// The total, when the server sent one (`$inlinecount=allpages`; null otherwise, rec-12).
    pub count: Option<u64>,
    /// Whether the reply was a bare array (no link, no count: see [`PAGE_SIZE`]).
    pub bare: bool,
}

/// Reads a list reply: a bare array or `{items, next_page_link?, count?}`. An empty
/// `next_page_link` is treated like null. A reply paged with `continuation_token` (the entries
/// style, rec-13) is refused: this client does not follow such tokens, and reading only the first
/// page would silently drop the rest.
pub fn parse_page(value: Value) -> Result<Page, String> {
    match value {
        Value::Array(items) => Ok(Page {
            items,
            next_page_link: None,
            count: None,
            bare: true,
        }),
        Value::Object(mut object) => {
            if matches!(object.get("continuation_token"), Some(Value::String(token)) if !token.is_empty())
            {
                return Err(
                    "paged with a continuation_token, which this client does not follow".into(),
                );
            }
            let items = match object.remove("items") {
                Some(Value::Array(items)) => items,
                Some(other) => {
                    return Err(format!(
                        "\"items\" is {} instead of an array",
                        json_kind(&other)
                    ))
                }
                None => return Err("neither a JSON array nor an object with \"items\"".into()),
            };
            let next_page_link = match object.remove("next_page_link") {
                None | Some(Value::Null) => None,
                Some(Value::String(link)) if link.is_empty() => None,
                Some(Value::String(link)) => Some(link),
                Some(other) => {
                    return Err(format!(
                        "\"next_page_link\" is {} instead of a string or null",
                        json_kind(&other)
                    ))
                }
            };
            let count = match object.remove("count") {
                None | Some(Value::Null) => None,
                Some(Value::Number(count)) => count.as_u64(),
                Some(other) => {
                    return Err(format!(
                        "\"count\" is {} instead of a number or null",
                        json_kind(&other)
                    ))
                }
            };
            Ok(Page {
                items,
                next_page_link,
                count,
                bare: false,
            })
        }
        other => Err(format!(
            "{} instead of a JSON array or an {{items}} object",
            json_kind(&other)
        )),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where a `next_page_link` that names another host is followed (INFERRED): only its query is
/// kept, on the listing's own URL at the configured API host.
///
/// The CLP SDK follows `next_page_link` as a full URL, so links are absolute. ASP.NET Web API builds
/// that link from the request URI as the server saw it; behind Salto's gateway this can be an
/// internal host or `http://` (never recorded: every recorded link is null). Failing the whole list
/// for that would stop every sync, and following it would send the bearer token to a host nobody
/// configured. The link's path must still be the listing's path (a link to another resource is
/// not a next page); its query (`$top`, `$skip`, `$filter`…) is what moves the page.
pub fn next_link_query(link: &url::Url, listing_path: &str) -> Option<Option<String>> {
    let path = link.path().trim_end_matches('/');
    let listing = listing_path.trim_end_matches('/');
    (!listing.is_empty() && path.ends_with(listing)).then(|| link.query().map(str::to_owned))
}

/// The OData filter that finds site users by email: `user/email eq 'a@b.c'`, quotes doubled as
/// OData string literals require.
pub fn email_filter(email: &str) -> String {
    format!("user/email eq '{}'", email.replace('\'', "''"))
}

/// A business error body `{"ErrorCode", "Message"}`; `ErrorCode` is a string or a number.
pub fn business_error(code: impl Into<Value>, message: &str) -> Value {
    serde_json::json!({ "ErrorCode": code.into(), "Message": message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_list_shapes_are_read() {
        let bare = parse_page(json!([{"id": "a"}])).unwrap();
        assert_eq!(bare.items.len(), 1);
        assert!(bare.next_page_link.is_none());
        let envelope =
            parse_page(json!({"items": [], "next_page_link": "http://x/next", "count": null}))
                .unwrap();
        assert_eq!(envelope.next_page_link.as_deref(), Some("http://x/next"));
        let last = parse_page(json!({"items": [{"id": "b"}], "next_page_link": null})).unwrap();
        assert!(last.next_page_link.is_none());
        assert!(parse_page(json!({"results": []})).is_err());
        assert!(parse_page(json!({"items": {}})).is_err());
        assert!(parse_page(json!("text")).is_err());
    }

    #[test]
    fn member_ids_prefer_the_platform_id() {
        assert_eq!(
            member_user_id(&json!({"id": "site-user", "user": {"id": "platform"}})).as_deref(),
            Some("platform")
        );
        assert_eq!(
            member_user_id(&json!({"id": "x", "user_id": "platform"})).as_deref(),
            Some("platform")
        );
        assert_eq!(
            member_user_id(&json!({"id": "platform", "email": null})).as_deref(),
            Some("platform")
        );
        assert_eq!(member_user_id(&json!({"email": "a@b.c"})), None);
    }

    #[test]
    fn counts_are_read_and_continuation_tokens_refused() {
        let counted = parse_page(json!({"items": [], "next_page_link": null, "count": 7})).unwrap();
        assert_eq!(counted.count, Some(7));
        assert!(!counted.bare);
        assert!(parse_page(json!([])).unwrap().bare);
        assert!(parse_page(json!({"items": [], "count": "7"})).is_err());
        let entries = json!({"items": [{"id": "e"}], "continuation_token": "[{\"token\":\"x\"}]"});
        assert!(parse_page(entries)
            .unwrap_err()
            .contains("continuation_token"));
        // A null or empty token ends the entries list like a null link.
        assert!(parse_page(json!({"items": [], "continuation_token": null})).is_ok());
    }

    fn role(id: &str, code: &str) -> Role {
        Role {
            id: id.to_owned(),
            customer_reference: Some(code.replace('_', " ")),
            code: Some(code.to_owned()),
            parent_id: None,
            is_hierarchical: Some(true),
        }
    }

    #[test]
    fn the_default_role_is_the_one_site_user_role() {
        let roles = [role("a", "site_admin"), role("u", "site_user")];
        assert_eq!(default_user_role(&roles).unwrap().id, "u");
        let missing = default_user_role(&roles[..1]).unwrap_err();
        assert!(missing.contains("site admin (a)"), "{missing}");
        let twice = [role("u1", "site_user"), role("u2", "site_user")];
        assert!(default_user_role(&twice).unwrap_err().contains("2 roles"));
        assert!(default_user_role(&[]).unwrap_err().contains("none"));
    }

    #[test]
    fn off_host_links_keep_only_their_query_for_the_same_listing() {
        let link =
            url::Url::parse("http://internal:8080/v1.2/sites/s/users?$top=90&$skip=10").unwrap();
        assert_eq!(
            next_link_query(&link, "/v1.2/sites/s/users"),
            Some(Some("$top=90&$skip=10".to_owned()))
        );
        let elsewhere = url::Url::parse("http://internal:8080/v1.2/next?$skip=10").unwrap();
        assert_eq!(next_link_query(&elsewhere, "/v1.2/sites/s/users"), None);
    }

    #[test]
    fn filter_quotes_are_escaped() {
        assert_eq!(
            email_filter("o'neil@example.com"),
            "user/email eq 'o''neil@example.com'"
        );
    }
}
