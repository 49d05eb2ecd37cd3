//! Kisi wire facts in one place (vendor-apis.md §2, recorded/kisi): paths, headers, page sizes, the
//! `X-Collection-Range` paging header, the JSON shapes read and written, and every guess about them.
//!
//! Documented: base `https://api.kisi.io`; `Authorization: KISI-LOGIN <api_key>`; snake_case JSON with
//! integer ids; write payloads wrapped in the resource name; bare JSON array list bodies with
//! `X-Collection-Range: <start>-<end>/<total>` where `end` is the REQUESTED end (not clamped);
//! `/users` limit default 50 max 100, `/role_assignments` default 10 max 250, offset max 20 000;
//! errors `{"code":"afc516","error":"…"}` and 422 `{"errors":{"field":["msg"]}}`; 5 requests/s per user.
//!
//! Role assignments, from Kisi's OpenAPI (`api.kisi.io/openapi/apps.yaml`, split copy
//! api-evangelist/kisi `openapi/kisi-role-assignments-api-openapi.yml`): `POST /role_assignments`
//! has one body form per scope; the "Group Role Assignment" form REQUIRES `applies_to_type:
//! "Group"`, `applies_to_id`, `assignee_type` (`User|Team|Guest`), `assignee_id` and `role_id`, and
//! still lists `user_id` and `group_id` as optional properties marked `deprecated` (the how-to guides'
//! old form `{user_id, role_id, group_id}` carries none of the required keys). Every row of `GET
//! /role_assignments` is documented with `applies_to_type`/`applies_to_id`/`applies_to` and
//! `assignee_type`/`assignee_id`/`assignee` REQUIRED, plus the deprecated `user_id`, `type` and
//! `scope` (`"group"` on group rows) and `group_id`/`group`. The list filters `assignee_id` and
//! `applies_to_id` "must be used with" `assignee_type` / `applies_to_type`; `user_id`, `group_id`,
//! `place_id` and `scope` filters are deprecated. The 2024 live sample (recorded/kisi/schema-01)
//! had rows with only `type`, `scope`, `role_id`, `user_id`/`user` and `organization`: no group key
//! at all (organization rows, or rows older than the current keys).
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
/// keys and/or the deprecated `user_id`/`user`/`group_id`/`type`/`scope` ones (the 2024 sample had
/// only the deprecated user keys and no group key at all): every one is optional when reading, and
/// [`WireRoleAssignment::reading`] decides what a row says.
#[derive(Debug, Clone, Deserialize)]
pub struct WireRoleAssignment {
    pub id: WireId,
    #[serde(default)]
    pub role_id: Option<String>,
    /// Deprecated scope word: `organization`, `place`, `group` (or `team`).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Deprecated, same words as `type`.
    #[serde(default)]
    pub scope: Option<String>,
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

/// What a role assignment says about one side (user, group or role) of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Side {
    /// It names this id (or role).
    Is(String),
    /// It is about something else (another kind of assignee or scope, another role).
    Other,
    /// It does not say.
    Unstated,
}

/// What a role-assignment row says it is, read fail-closed: only a row that names its role, its
/// group and its user counts as door access; a row that leaves one of them out is never taken as
/// a match, however the list was filtered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// `group_basic` for user `user` on group `group`.
    DoorAccess { user: String, group: String },
    /// Something else: another role, a place or organization scope, a team or guest assignee.
    Other,
    /// The row does not say this (a key name): it cannot be interpreted.
    Unstated(&'static str),
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

    /// The group, from `applies_to_*` or, on rows without them, the deprecated `group_id` (whose
    /// `type`/`scope`, when present, must say `group`).
    pub fn group_side(&self) -> Side {
        match &self.applies_to_type {
            Some(kind) if kind.eq_ignore_ascii_case("Group") => self
                .applies_to_id
                .as_ref()
                .or(self.group_id.as_ref())
                .map_or(Side::Unstated, |id| Side::Is(id.as_string())),
            Some(_) => Side::Other,
            None => {
                let scoped_elsewhere = [&self.kind, &self.scope]
                    .into_iter()
                    .flatten()
                    .any(|word| !word.eq_ignore_ascii_case("group"));
                if scoped_elsewhere {
                    return Side::Other;
                }
                self.group_id
                    .as_ref()
                    .map_or(Side::Unstated, |id| Side::Is(id.as_string()))
            }
        }
    }

    pub fn role_side(&self) -> Side {
        self.role_id
            .as_deref()
            .map_or(Side::Unstated, |role| Side::Is(role.to_owned()))
    }

    /// What this row is (see [`Reading`]). A row that is clearly something else on any side is
    /// [`Reading::Other`] even when another side is unstated.
    pub fn reading(&self) -> Reading {
        let (role, group, user) = (self.role_side(), self.group_side(), self.user_side());
        let role_is_access = match &role {
            Side::Is(role) => role == GROUP_ACCESS_ROLE,
            Side::Other | Side::Unstated => false,
        };
        if (matches!(role, Side::Is(_)) && !role_is_access)
            || group == Side::Other
            || user == Side::Other
        {
            return Reading::Other;
        }
        match (role, group, user) {
            (Side::Unstated, _, _) => Reading::Unstated("role_id"),
            (_, Side::Unstated, _) => Reading::Unstated("applies_to_type/applies_to_id"),
            (_, _, Side::Unstated) => Reading::Unstated("assignee_type/assignee_id"),
            (_, Side::Is(group), Side::Is(user)) => Reading::DoorAccess { user, group },
            _ => Reading::Other,
        }
    }

    /// Whether this row grants door access to `group` (and to `user`, when given), by what the row
    /// says of itself; `Err(key)` when it does not say (fail-closed: never counted as a match).
    pub fn grants(&self, group: &str, user: Option<&str>) -> Result<bool, &'static str> {
        match self.reading() {
            Reading::DoorAccess {
                user: row_user,
                group: row_group,
            } => Ok(row_group == group && user.is_none_or(|user| user == row_user)),
            Reading::Other => Ok(false),
            Reading::Unstated(key) => Err(key),
        }
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

/// `POST /role_assignments` body: `{"role_assignment": {…}}`, in the current OpenAPI's "Group Role
/// Assignment" form with every required key (`applies_to_type: "Group"`, `applies_to_id`,
/// `assignee_type: "User"`, `assignee_id`, `role_id`) and none of the deprecated ones. The how-to
/// guides' `{user_id, role_id, group_id}` form, which production clients send, lacks every required
/// key; whether the live server still accepts it is not known (the deprecated keys are still listed
/// as properties, so it probably does), so it is not relied on.
#[derive(Debug, Clone, Serialize)]
pub struct GrantRequest {
    pub role_assignment: GrantFields,
}

#[derive(Debug, Clone, Serialize)]
pub struct GrantFields {
    pub applies_to_type: &'static str,
    pub applies_to_id: Value,
    pub assignee_type: &'static str,
    pub assignee_id: Value,
    pub role_id: &'static str,
    /// Always sent: whether Kisi omits the email when `notify` is missing is undocumented.
    pub notify: bool,
}

/// `applies_to_type` of a group role assignment.
pub const APPLIES_TO_GROUP: &str = "Group";
/// `assignee_type` of a user's role assignment.
pub const ASSIGNEE_USER: &str = "User";

impl GrantRequest {
    pub fn group_access(user_id: &str, group_id: &str, notify: bool) -> Self {
        Self {
            role_assignment: GrantFields {
                applies_to_type: APPLIES_TO_GROUP,
                applies_to_id: id_value(group_id),
                assignee_type: ASSIGNEE_USER,
                assignee_id: id_value(user_id),
                role_id: GROUP_ACCESS_ROLE,
                notify,
            },
        }
    }
}

/// The query that lists the door-access rows of one group (and optionally one user) with the current
/// filter names (each id filter with the type filter it must be used with); the client re-checks
/// every row with [`WireRoleAssignment::grants`] in case the server ignores a filter.
pub fn group_access_filters(group_id: &str, user_id: Option<&str>) -> Vec<(&'static str, String)> {
    let mut filters = vec![
        ("applies_to_type", APPLIES_TO_GROUP.to_owned()),
        ("applies_to_id", group_id.to_owned()),
        ("role_id", GROUP_ACCESS_ROLE.to_owned()),
    ];
    if let Some(user_id) = user_id {
        filters.push(("assignee_type", ASSIGNEE_USER.to_owned()));
        filters.push(("assignee_id", user_id.to_owned()));
    }
    filters
}

/// The query that lists every role assignment of one user, whatever its role or scope (the id
/// filter with the type filter it must be used with).
pub fn user_role_filters(user_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("assignee_type", ASSIGNEE_USER.to_owned()),
        ("assignee_id", user_id.to_owned()),
    ]
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
        assert_eq!(legacy.grants("3", Some("7")), Ok(true));
        assert_eq!(legacy.grants("3", Some("8")), Ok(false));
        assert_eq!(legacy.grants("4", None), Ok(false));

        let current: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": "2", "role_id": "group_basic", "assignee_type": "User", "assignee_id": "7",
            "applies_to_type": "Group", "applies_to_id": 3
        }))
        .unwrap();
        assert_eq!(current.grants("3", Some("7")), Ok(true));

        let place: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": 3, "role_id": "group_basic", "user_id": 7, "applies_to_type": "Place", "applies_to_id": 3
        }))
        .unwrap();
        assert_eq!(place.grants("3", Some("7")), Ok(false));

        let manager: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": 4, "role_id": "group_manager", "user_id": 7, "group_id": 3
        }))
        .unwrap();
        assert_eq!(manager.grants("3", Some("7")), Ok(false));

        let organization: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": 6, "role_id": "group_basic", "type": "organization", "scope": "organization",
            "user_id": 7
        }))
        .unwrap();
        assert_eq!(organization.grants("3", Some("7")), Ok(false));
    }

    #[test]
    fn rows_that_do_not_say_their_group_user_or_role_never_match() {
        let no_group: WireRoleAssignment = serde_json::from_value(
            serde_json::json!({"id": 5, "role_id": "group_basic", "user": {"id": 7}}),
        )
        .unwrap();
        assert_eq!(
            no_group.grants("3", Some("7")),
            Err("applies_to_type/applies_to_id"),
            "fail-closed: an unstated group is not trusted to be the one filtered on"
        );
        let no_role: WireRoleAssignment =
            serde_json::from_value(serde_json::json!({"id": 5, "group_id": 3, "user_id": 7}))
                .unwrap();
        assert_eq!(no_role.grants("3", Some("7")), Err("role_id"));
        let no_user: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": 5, "role_id": "group_basic", "applies_to_type": "Group", "applies_to_id": 3
        }))
        .unwrap();
        assert_eq!(no_user.grants("3", None), Err("assignee_type/assignee_id"));
        let team: WireRoleAssignment = serde_json::from_value(serde_json::json!({
            "id": 5, "role_id": "group_basic", "assignee_type": "Team", "assignee_id": 9
        }))
        .unwrap();
        assert_eq!(
            team.grants("3", None),
            Ok(false),
            "clearly not a user's row"
        );
    }

    #[test]
    fn grants_are_sent_in_the_current_form_only() {
        let body = serde_json::to_value(GrantRequest::group_access("7", "3", false)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"role_assignment": {
                "applies_to_type": "Group", "applies_to_id": 3,
                "assignee_type": "User", "assignee_id": 7,
                "role_id": "group_basic", "notify": false
            }})
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
