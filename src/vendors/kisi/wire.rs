//! Kisi wire facts in one place (vendor-apis.md §2, recorded/kisi): paths, headers, page sizes, the
//! `X-Collection-Range` paging header, the JSON shapes read and written, and every guess about them.
//!
//! Documented: base `https://api.kisi.io`; `Authorization: KISI-LOGIN <api_key>`; snake_case JSON with
//! integer ids; write payloads wrapped in the resource name; bare JSON array list bodies with
//! `X-Collection-Range: <start>-<end>/<total>` where `end` is the REQUESTED end (not clamped);
//! `/users` limit default 50 max 100, `/role_assignments` default 10 max 250, offset max 20 000;
//! errors `{"code":"afc516","error":"…"}` and 422 `{"errors":{"field":["msg"]}}`; 5 requests/s per user.
//!
//! Guessed (no source): the `/groups` page limits (we assume default 10, max 100 like `/users`); what
//! Kisi does with a `limit` above the maximum (the simulator clamps; the client never sends one and
//! does not rely on page sizes anyway); that filters on `/role_assignments` combine with AND; the
//! metadata key holding our ownership marker (Kisi only documents `metadata` as a free object).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Kisi's public API host.
pub const DEFAULT_BASE_URL: &str = "https://api.kisi.io";
/// Scheme word of the `Authorization` header for API keys.
pub const AUTH_SCHEME: &str = "KISI-LOGIN";
/// The paging header of every list response.
pub const COLLECTION_RANGE_HEADER: &str = "x-collection-range";
/// Headers Kisi asks integration partners to send (recommended, not required).
pub const INTEGRATION_IDENTIFIER_HEADER: &str = "x-kisi-integration-identifier";
pub const INTEGRATION_CONTACT_HEADER: &str = "x-kisi-integration-contact";

pub const GROUPS_PATH: &str = "groups";
pub const USERS_PATH: &str = "users";
pub const ROLE_ASSIGNMENTS_PATH: &str = "role_assignments";

/// The role that opens a group's doors (the common case); the only role flexgate grants or revokes.
pub const GROUP_ACCESS_ROLE: &str = "group_basic";
/// Group managers: set by people in the dashboard, never touched by flexgate.
pub const GROUP_MANAGER_ROLE: &str = "group_manager";

pub const USERS_DEFAULT_LIMIT: u32 = 50;
pub const USERS_MAX_LIMIT: u32 = 100;
pub const ROLE_ASSIGNMENTS_DEFAULT_LIMIT: u32 = 10;
pub const ROLE_ASSIGNMENTS_MAX_LIMIT: u32 = 250;
/// GUESSED: Kisi documents no page limits for `/groups`.
pub const GROUPS_DEFAULT_LIMIT: u32 = 10;
/// GUESSED: Kisi documents no page limits for `/groups`.
pub const GROUPS_MAX_LIMIT: u32 = 100;
/// The largest `offset` Kisi accepts: lists longer than this plus one page cannot be read whole.
pub const MAX_OFFSET: u64 = 20_000;

/// Key in a user's `metadata` object holding the OfficeRnD member id: our ownership marker and the
/// `external_id` of [`crate::vendors::VendorUser`]. The key name is our choice.
pub const OFFICERND_ID_METADATA_KEY: &str = "officernd_id";
/// Start of the `notes` text flexgate writes on users it creates (people read notes in the dashboard;
/// one production client keeps its ownership marker there too).
pub const OWNERSHIP_NOTE_PREFIX: &str = "Managed by flexgate for OfficeRnD member";

/// The `notes` of a user flexgate creates. Kisi's user object has no phone field, so the phone (when
/// OfficeRnD has one) goes here where admins see it; the company is deliberately never sent.
pub fn ownership_note(officernd_id: &str, phone: Option<&str>) -> String {
    match phone.map(str::trim).filter(|phone| !phone.is_empty()) {
        Some(phone) => format!("{OWNERSHIP_NOTE_PREFIX} {officernd_id}. Phone: {phone}"),
        None => format!("{OWNERSHIP_NOTE_PREFIX} {officernd_id}."),
    }
}

/// `X-Collection-Range: <start>-<end>/<total>`, e.g. `10-19/15` for offset 10, limit 10 of 15 items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionRange {
    pub start: u64,
    pub end: u64,
    pub total: u64,
}

impl CollectionRange {
    /// The range Kisi reports for a request of `limit` items from `offset` (end not clamped).
    pub fn requested(offset: u64, limit: u64, total: u64) -> Self {
        Self {
            start: offset,
            end: (offset + limit).saturating_sub(1),
            total,
        }
    }

    /// Parses the header value; `None` when it does not have the documented shape.
    pub fn parse(value: &str) -> Option<Self> {
        let (range, total) = value.trim().split_once('/')?;
        let (start, end) = range.split_once('-')?;
        let number = |text: &str| -> Option<u64> {
            let text = text.trim();
            if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            text.parse().ok()
        };
        Some(Self {
            start: number(start)?,
            end: number(end)?,
            total: number(total)?,
        })
    }

    pub fn header_value(&self) -> String {
        format!("{}-{}/{}", self.start, self.end, self.total)
    }
}

/// An id as Kisi sends it: integers on the wire, accepted as strings too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum WireId {
    Number(u64),
    Text(String),
}

impl WireId {
    pub fn into_string(self) -> String {
        match self {
            Self::Number(number) => number.to_string(),
            Self::Text(text) => text,
        }
    }

    pub fn as_string(&self) -> String {
        self.clone().into_string()
    }
}

/// An id for a request body: a JSON integer when it is one (Kisi's ids are), else the string as is
/// (Kisi then answers 422, which is reported).
pub fn id_value(id: &str) -> Value {
    id.trim()
        .parse::<u64>()
        .map_or_else(|_| Value::String(id.to_owned()), Value::from)
}

/// A group in `GET /groups`. Only what the sync needs; everything else is ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct WireGroup {
    pub id: WireId,
    #[serde(default)]
    pub name: Option<String>,
}

/// A user in `GET /users` and the `POST /users` reply. Keys the 2024 live sample lacked (`notes`,
/// `image`, …) are optional; `metadata` may be absent, null or an object.
#[derive(Debug, Clone, Deserialize)]
pub struct WireUser {
    pub id: WireId,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub notes: Option<String>,
}

impl WireUser {
    /// The OfficeRnD id flexgate stored in `metadata` when it created this user, if any.
    pub fn officernd_id(&self) -> Option<String> {
        match self.metadata.as_ref()?.get(OFFICERND_ID_METADATA_KEY)? {
            Value::String(id) if !id.is_empty() => Some(id.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct WireRef {
    #[serde(default)]
    pub id: Option<WireId>,
}

/// A role assignment in `GET /role_assignments`. Kisi sends the current `assignee_*`/`applies_to_*`
/// keys and/or the deprecated `user_id`/`user`/`group_id` ones (the 2024 sample had only the
/// deprecated user keys and no group key at all): every one is optional.
#[derive(Debug, Clone, Deserialize)]
pub struct WireRoleAssignment {
    pub id: WireId,
    #[serde(default)]
    pub role_id: Option<String>,
    #[serde(default)]
    pub assignee_type: Option<String>,
    #[serde(default)]
    pub assignee_id: Option<WireId>,
    #[serde(default)]
    pub user_id: Option<WireId>,
    #[serde(default)]
    pub user: Option<WireRef>,
    #[serde(default)]
    pub applies_to_type: Option<String>,
    #[serde(default)]
    pub applies_to_id: Option<WireId>,
    #[serde(default)]
    pub group_id: Option<WireId>,
}

/// What a role assignment says about one side (user or group) of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// It names this id.
    Is(String),
    /// It is about something else (another kind of assignee or scope).
    Other,
    /// It does not say: the server filter we asked for is trusted.
    Unstated,
}

impl WireRoleAssignment {
    pub fn user_side(&self) -> Side {
        if let Some(kind) = &self.assignee_type {
            if !kind.eq_ignore_ascii_case("User") {
                return Side::Other;
            }
        }
        let id = self
            .assignee_id
            .as_ref()
            .or(self.user_id.as_ref())
            .or_else(|| self.user.as_ref().and_then(|user| user.id.as_ref()));
        id.map_or(Side::Unstated, |id| Side::Is(id.as_string()))
    }

    pub fn group_side(&self) -> Side {
        match &self.applies_to_type {
            Some(kind) if kind.eq_ignore_ascii_case("Group") => self
                .applies_to_id
                .as_ref()
                .or(self.group_id.as_ref())
                .map_or(Side::Unstated, |id| Side::Is(id.as_string())),
            Some(_) => Side::Other,
            None => self
                .group_id
                .as_ref()
                .map_or(Side::Unstated, |id| Side::Is(id.as_string())),
        }
    }

    /// Grants door access (role `group_basic`); a missing role is trusted to be the one filtered on.
    pub fn is_group_access(&self) -> bool {
        self.role_id
            .as_deref()
            .is_none_or(|role| role == GROUP_ACCESS_ROLE)
    }

    /// Grants door access to `group` (and to `user`, when given), by what the row says of itself.
    pub fn grants(&self, group: &str, user: Option<&str>) -> bool {
        let group_matches = match self.group_side() {
            Side::Is(id) => id == group,
            Side::Other => false,
            Side::Unstated => true,
        };
        let user_matches = match (self.user_side(), user) {
            (Side::Other, _) => false,
            (_, None) | (Side::Unstated, Some(_)) => true,
            (Side::Is(id), Some(user)) => id == user,
        };
        self.is_group_access() && group_matches && user_matches
    }
}

/// `POST /users` body: `{"user": {…}}`.
#[derive(Debug, Clone, Serialize)]
pub struct CreateUserRequest {
    pub user: CreateUserFields,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreateUserFields {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `false` (with `confirm: true`) makes a managed user whom Kisi never emails.
    pub send_emails: bool,
    pub confirm: bool,
    pub metadata: Map<String, Value>,
    pub notes: String,
}

/// `POST /role_assignments` body: `{"role_assignment": {…}}`.
///
/// CHOICE: the how-to guides' form `{user_id, role_id, group_id, notify}` (what production clients
/// send). The current OpenAPI marks `user_id`/`group_id` deprecated in favour of
/// `assignee_type/assignee_id/applies_to_type/applies_to_id`; switching is a change to this struct
/// only (the simulator accepts both).
#[derive(Debug, Clone, Serialize)]
pub struct GrantRequest {
    pub role_assignment: GrantFields,
}

#[derive(Debug, Clone, Serialize)]
pub struct GrantFields {
    pub user_id: Value,
    pub role_id: &'static str,
    pub group_id: Value,
    /// Always sent: whether Kisi omits the email when `notify` is missing is undocumented.
    pub notify: bool,
}

impl GrantRequest {
    pub fn group_access(user_id: &str, group_id: &str, notify: bool) -> Self {
        Self {
            role_assignment: GrantFields {
                user_id: id_value(user_id),
                role_id: GROUP_ACCESS_ROLE,
                group_id: id_value(group_id),
                notify,
            },
        }
    }
}

/// The query that lists the door-access rows of one group (and optionally one user) with the current
/// filter names; the client re-checks every row with [`WireRoleAssignment::grants`] in case the
/// server ignores a filter.
pub fn group_access_filters(group_id: &str, user_id: Option<&str>) -> Vec<(&'static str, String)> {
    let mut filters = vec![
        ("applies_to_type", "Group".to_owned()),
        ("applies_to_id", group_id.to_owned()),
        ("role_id", GROUP_ACCESS_ROLE.to_owned()),
    ];
    if let Some(user_id) = user_id {
        filters.push(("assignee_type", "User".to_owned()));
        filters.push(("assignee_id", user_id.to_owned()));
    }
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_range_parses_the_documented_examples() {
        assert_eq!(
            CollectionRange::parse("0-9/200"),
            Some(CollectionRange {
                start: 0,
                end: 9,
                total: 200
            })
        );
        let unclamped = CollectionRange::parse("10-19/15").unwrap();
        assert_eq!(
            (unclamped.start, unclamped.end, unclamped.total),
            (10, 19, 15)
        );
        assert_eq!(CollectionRange::requested(10, 10, 15), unclamped);
        assert_eq!(unclamped.header_value(), "10-19/15");
        for bad in ["", "0-9", "0/9", "a-9/10", "0-9/", "-1-9/10", "0-9/1x"] {
            assert_eq!(CollectionRange::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rows_in_either_form_are_read() {
        let legacy: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": 1, "role_id": "group_basic", "user_id": 7, "group_id": 3
        }))
        .unwrap();
        assert!(legacy.grants("3", Some("7")));
        assert!(!legacy.grants("3", Some("8")));
        assert!(!legacy.grants("4", None));

        let current: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": "2", "role_id": "group_basic", "assignee_type": "User", "assignee_id": "7",
            "applies_to_type": "Group", "applies_to_id": 3
        }))
        .unwrap();
        assert!(current.grants("3", Some("7")));

        let place: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": 3, "role_id": "group_basic", "user_id": 7, "applies_to_type": "Place", "applies_to_id": 3
        }))
        .unwrap();
        assert!(!place.grants("3", Some("7")));

        let manager: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": 4, "role_id": "group_manager", "user_id": 7, "group_id": 3
        }))
        .unwrap();
        assert!(!manager.grants("3", Some("7")));

        let bare: WireRoleAssignment =
            serde_json::from_value(serde_json::json!({"id": 5, "user": {"id": 7}})).unwrap();
        assert!(
            bare.grants("3", Some("7")),
            "unstated group trusts the filter"
        );
    }

    #[test]
    fn note_carries_the_phone_only_when_present() {
        assert_eq!(
            ownership_note("m1", Some(" +44 20 ")),
            "Managed by flexgate for OfficeRnD member m1. Phone: +44 20"
        );
        assert_eq!(
            ownership_note("m1", Some("")),
            "Managed by flexgate for OfficeRnD member m1."
        );
    }

    #[test]
    fn ids_are_sent_as_integers_when_they_are() {
        assert_eq!(id_value("42"), serde_json::json!(42));
        assert_eq!(id_value("abc"), serde_json::json!("abc"));
    }
}
