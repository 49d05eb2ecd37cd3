//! Salto KS Connect API wire shapes shared by the client and the simulator: paths, JSON bodies,
//! list envelopes and error bodies. Every guessed wire fact lives here, marked as such.
//!
//! Sources (vendor-apis.md §3, recorded/salto-ks, README "Findings"):
//! * identity `POST /connect/token`, Basic client auth, form body; 3600 s tokens; OAuth error bodies
//!   `{"error":"invalid_grant" | "invalid_scope" | …}` with 400 (rec-01, rec-14);
//! * `GET /v1.2/sites` is a bare array; other lists use `{items, next_page_link, count}` with
//!   `next_page_link: null` on the last page and `count: null` unless `$inlinecount=allpages`;
//!   `/v1.2/sites/{site}/users` was measured both ways on consecutive days, so both are accepted;
//! * a site user is `{id: <site-user id>, user: {id: <platform user id>, email, first_name, …}, …}`
//!   with explicit nulls (`email: null` for tag-only users, `alias: null`);
//! * business errors `{"ErrorCode": <string or number>, "Message": "…"}`; the wrong (site-user) id
//!   on an access-group add gives 404 `{"ErrorCode":"2202","Message":"User not found"}`.

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

/// A site user (`/v1.2/sites/{site}/users` item and the `POST` answer).
#[derive(Debug, Clone, Deserialize)]
pub struct SiteUser {
    /// The site-user id: used for `/users/{id}` paths (delete, PIN, subscription), never for groups.
    pub id: String,
    pub user: PlatformUser,
    #[serde(default)]
    pub alias: Option<String>,
}

/// `POST /v1.2/sites/{site}/users`. Only the fields the sync owns: the company is deliberately
/// absent, and so is the phone (no source shows a phone field on site-user creation; the person's
/// platform profile holds it once they accept the invitation). `role_ids` is omitted when empty so
/// the site's default role applies.
#[derive(Debug, Serialize)]
pub struct CreateSiteUser<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
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
}

/// Reads a list reply: a bare array (one complete page) or `{items, next_page_link?, count?}`.
/// An empty `next_page_link` is treated like null.
pub fn parse_page(value: Value) -> Result<Page, String> {
    match value {
        Value::Array(items) => Ok(Page {
            items,
            next_page_link: None,
        }),
        Value::Object(mut object) => {
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
            Ok(Page {
                items,
                next_page_link,
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
    fn filter_quotes_are_escaped() {
        assert_eq!(
            email_filter("o'neil@example.com"),
            "user/email eq 'o''neil@example.com'"
        );
    }
}
