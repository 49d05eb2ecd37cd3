//! In-process Kisi simulator (axum): groups, users and group role assignments with Kisi's auth, paging,
//! error bodies, duplicate-row behaviour, notification bookkeeping, an optional server-side rate limit,
//! fault injection, and a Rust control surface for tests and the sandbox.
//!
//! Reproduced from documented wire facts (vendor-apis.md §2, recorded/kisi): `Authorization:
//! KISI-LOGIN <key>`, else 401 `{"error":"Wrong email address or password.","code":"afc516"}` (the
//! documented 401 example); bare JSON array list bodies with `X-Collection-Range: start-end/total`
//! whose end is the requested end, not clamped; `/users` limit default 50 max 100, `/role_assignments`
//! default 10 max 250, offset max 20 000; wrapped write bodies (`{"user":{…}}`,
//! `{"role_assignment":{…}}`) answered with 200 and the object; `DELETE` → 204; validation 422
//! `{"errors":{"field":["msg"]}}` (blank or invalid email → `"can't be blank or invalid"`); unknown
//! path ids → 404 `{"code":"000404","error":"Not found"}`; integer ids; snake_case keys.
//!
//! Modelled explicitly: `POST /role_assignments` for a user already in the group CREATES A DUPLICATE
//! ROW (as one production client reports; another reports 409 — this simulator takes the harsher
//! side). Grants must carry every key the current OpenAPI marks required for a group role
//! assignment (`applies_to_type`, `applies_to_id`, `assignee_type`, `assignee_id`, `role_id`); the
//! how-to guides' deprecated `{user_id, group_id}` form alone is refused with 422 `{"errors":
//! {"applies_to_type": ["can't be blank"]}}` (stricter than the live server is likely to be, which
//! still lists those keys as deprecated properties; see [`crate::vendors::kisi::wire`]). Rows are listed with every
//! key the spec requires of a group role assignment (`applies_to*`, `assignee*`, the deprecated
//! `user_id`, `group_id`, `group`, `type`/`scope` `"group"`…); `assignee_id`/`applies_to_id` filters
//! without their `*_type` filter are a 422 (the spec says they must be used together). Test-only
//! quirks ([`RoleAssignmentQuirks`]) make the listing ignore the group filter and leave the group
//! keys out, as a server that does not honour a filter would. A grant "emails" the person (recorded in [`Notification`]s) when it
//! carries `notify: true` (the default when omitted) and the user accepts emails (`send_emails`);
//! managed users (`send_emails: false`) are never emailed. Creating a user emails nobody.
//!
//! Simulator choices where Kisi's behaviour is unknown: `/groups` limit default 10 max 100; a `limit`
//! above the maximum is clamped to it; a non-numeric or zero `limit` or an offset above 20 000 is a 422;
//! a body that is not JSON or lacks the wrapper key is a 400 `{"code":"000400",…}`; a grant naming an
//! unknown user or group is a 422 `{"errors":{"user":["must exist"]}}`; unknown keys in write bodies
//! are ignored (Rails strong parameters) but recorded for assertions; `email=` is an exact,
//! case-sensitive filter while `query=` is a case-insensitive substring search over email, name and
//! notes; lists are in ascending id order; the rate limit is a one-second sliding window over every
//! request that passes it, answered with 429, `Retry-After: 1` and an empty body.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::clock::system_clock;
use crate::http::Secret;
use crate::sandbox::faults::Faults;
use crate::sandbox::kit::ids::{known, random_hex, Sequence};
use crate::sandbox::kit::journal::Journal;
use crate::sandbox::kit::paging::{Query, Window};
use crate::sandbox::kit::rate::{self, RateLimit};
use crate::sandbox::kit::RateControls;
use crate::sandbox::kit::{self, auth, reply};
use crate::vendors::kisi::client::{KisiConfig, KisiConfigError};
use crate::vendors::kisi::wire::{self, CollectionRange};

/// Journal kinds of the writes whose bodies tests read back.
const CREATE_USER: &str = "POST /users";
const CREATE_ASSIGNMENT: &str = "POST /role_assignments";

/// Start-up options. `Default` generates an API key and sets no server-side rate limit.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    pub api_key: Secret,
    pub faults: Faults,
    /// Server-side limit (Kisi: 5 per user); `None` serves every request.
    pub requests_per_second: Option<u32>,
    pub organization_id: u64,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            api_key: Secret::new(random_hex(16)),
            faults: Faults::new(),
            requests_per_second: None,
            organization_id: 4242,
        }
    }
}

/// Control surface of a running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SimulatorHandle {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The one API key the simulator accepts.
    pub api_key: Secret,
    sim: kit::Running<SimulatorOptions, SimState>,
}

/// Why the simulator could not start or a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("cannot bind the Kisi simulator to 127.0.0.1:0: {0}")]
    Bind(#[from] std::io::Error),
    #[error("no simulated Kisi user {0}")]
    UnknownUser(String),
    #[error("no simulated Kisi group {0}")]
    UnknownGroup(String),
    #[error("a simulated Kisi user already has the email {0}")]
    EmailTaken(String),
}

/// A group as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimGroup {
    pub id: String,
    pub name: String,
}

/// A user as the simulator holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimUser {
    pub id: String,
    pub name: Option<String>,
    pub email: String,
    /// `false`: a managed user, never emailed.
    pub send_emails: bool,
    pub confirmed: bool,
    pub access_enabled: bool,
    pub metadata: Map<String, Value>,
    pub notes: Option<String>,
}

/// How a role assignment came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentOrigin {
    /// `POST /role_assignments` with `assignee_*`/`applies_to_*` (the current spec's form, the only
    /// one accepted).
    ApiCurrentForm,
    /// A person in the Kisi dashboard.
    Dashboard,
}

/// A role assignment on a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRoleAssignment {
    pub id: String,
    pub role_id: String,
    pub user_id: String,
    pub group_id: String,
    pub notify: bool,
    pub origin: AssignmentOrigin,
}

/// Misbehaviours of `GET /role_assignments` for tests of a client against a server that does not
/// honour its filters (the real one is documented to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleAssignmentQuirks {
    /// `applies_to_*` and `group_id` filters are ignored: rows of every group come back.
    pub ignore_group_filter: bool,
    /// Rows leave out every key naming their group or scope (`applies_to*`, `group_id`, `group`,
    /// `type`, `scope`), like the 2024 live sample (recorded/kisi/schema-01) had none.
    pub omit_group_keys: bool,
}

/// An "access granted" email Kisi would have sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub email: String,
    pub user_id: String,
    pub group_id: String,
    pub role_assignment_id: String,
}

struct UserRow {
    name: Option<String>,
    email: String,
    send_emails: bool,
    confirmed: bool,
    access_enabled: bool,
    metadata: Map<String, Value>,
    notes: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

struct GroupRow {
    name: String,
    description: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

struct AssignmentRow {
    role_id: String,
    user_id: u64,
    group_id: u64,
    notify: bool,
    origin: AssignmentOrigin,
    created_at: DateTime<Utc>,
}

struct SimState {
    users: BTreeMap<u64, UserRow>,
    groups: BTreeMap<u64, GroupRow>,
    assignments: BTreeMap<u64, AssignmentRow>,
    user_ids: Sequence,
    group_ids: Sequence,
    assignment_ids: Sequence,
    notifications: Vec<Notification>,
    /// Successful API writes, kind `"METHOD /path-pattern"`, with the wrapped object of a POST.
    writes: Journal,
    rate_limit: RateLimit,
    quirks: RoleAssignmentQuirks,
}

type Shared = kit::Shared<SimulatorOptions, SimState>;

impl SimState {
    fn email_taken(&self, email: &str, except: Option<u64>) -> bool {
        self.users
            .iter()
            .any(|(id, user)| Some(*id) != except && user.email.eq_ignore_ascii_case(email))
    }

    fn insert_user(&mut self, row: UserRow) -> u64 {
        let id = self.user_ids.next_id();
        self.users.insert(id, row);
        id
    }

    fn insert_assignment(&mut self, row: AssignmentRow) -> u64 {
        let id = self.assignment_ids.next_id();
        self.assignments.insert(id, row);
        id
    }
}

/// Entry point: `Simulator::start(options)`.
pub struct Simulator;

impl Simulator {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn start(options: SimulatorOptions) -> Result<SimulatorHandle, SimulatorError> {
        // Distinct id ranges per kind, so a user id passed as a group id never matches by accident.
        let state = SimState {
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            assignments: BTreeMap::new(),
            user_ids: Sequence::after(50_000),
            group_ids: Sequence::after(1_000),
            assignment_ids: Sequence::after(900_000),
            notifications: Vec::new(),
            writes: Journal::default(),
            rate_limit: RateLimit::new(rate::Window::Sliding, options.requests_per_second),
            quirks: RoleAssignmentQuirks::default(),
        };
        let shared = Shared::new(options.clone(), system_clock(), state);
        let sim = kit::Running::start("Kisi", shared, router, options.faults).await?;
        Ok(SimulatorHandle {
            base_url: sim.base_url().to_owned(),
            api_key: options.api_key,
            sim,
        })
    }
}

fn parse_id(id: &str) -> Option<u64> {
    id.trim().parse().ok()
}

impl SimulatorHandle {
    /// A client configuration pointing at this simulator with its API key.
    pub fn client_config(&self) -> Result<KisiConfig, KisiConfigError> {
        KisiConfig::new(self.api_key.clone())?.with_base_url(&self.base_url)
    }

    /// Makes `GET /role_assignments` misbehave (see [`RoleAssignmentQuirks`]).
    pub fn set_role_assignment_quirks(&self, quirks: RoleAssignmentQuirks) {
        self.sim.lock().quirks = quirks;
    }

    /// The fault injection and request counters wrapped around this simulator.
    pub fn faults(&self) -> &Faults {
        self.sim.faults()
    }

    /// Creates a group; returns its id.
    pub fn add_group(&self, name: &str) -> String {
        let mut state = self.sim.lock();
        let now = Utc::now();
        let id = state.group_ids.next_id();
        state.groups.insert(
            id,
            GroupRow {
                name: name.to_owned(),
                description: None,
                created_at: now,
                updated_at: now,
            },
        );
        id.to_string()
    }

    /// Creates a regular (emailed, confirmed) user as an admin would in the dashboard; returns its id.
    pub fn add_user(&self, name: &str, email: &str) -> Result<String, SimulatorError> {
        let mut state = self.sim.lock();
        if state.email_taken(email, None) {
            return Err(SimulatorError::EmailTaken(email.to_owned()));
        }
        let now = Utc::now();
        let id = state.insert_user(UserRow {
            name: Some(name.to_owned()),
            email: email.to_owned(),
            send_emails: true,
            confirmed: true,
            access_enabled: true,
            metadata: Map::new(),
            notes: None,
            created_at: now,
            updated_at: now,
        });
        Ok(id.to_string())
    }

    pub fn groups(&self) -> Vec<SimGroup> {
        self.sim
            .lock()
            .groups
            .iter()
            .map(|(id, group)| SimGroup {
                id: id.to_string(),
                name: group.name.clone(),
            })
            .collect()
    }

    pub fn users(&self) -> Vec<SimUser> {
        self.sim
            .lock()
            .users
            .iter()
            .map(|(id, user)| sim_user(*id, user))
            .collect()
    }

    pub fn user(&self, id: &str) -> Option<SimUser> {
        let id = parse_id(id)?;
        self.sim
            .lock()
            .users
            .get(&id)
            .map(|user| sim_user(id, user))
    }

    /// The user with this email, compared case-insensitively.
    pub fn user_by_email(&self, email: &str) -> Option<SimUser> {
        self.sim
            .lock()
            .users
            .iter()
            .find(|(_, user)| user.email.eq_ignore_ascii_case(email))
            .map(|(id, user)| sim_user(*id, user))
    }

    /// Emails of the users with door access (`group_basic`) to a group, sorted, each once.
    pub fn group_member_emails(&self, group_id: &str) -> Vec<String> {
        let Some(group) = parse_id(group_id) else {
            return Vec::new();
        };
        let state = self.sim.lock();
        let emails: BTreeSet<String> = state
            .assignments
            .values()
            .filter(|row| row.group_id == group && row.role_id == wire::GROUP_ACCESS_ROLE)
            .filter_map(|row| state.users.get(&row.user_id))
            .map(|user| user.email.clone())
            .collect();
        emails.into_iter().collect()
    }

    /// How many `group_basic` rows a user has in a group (more than one = duplicates).
    pub fn access_row_count(&self, user_id: &str, group_id: &str) -> usize {
        let (Some(user), Some(group)) = (parse_id(user_id), parse_id(group_id)) else {
            return 0;
        };
        self.sim
            .lock()
            .assignments
            .values()
            .filter(|row| {
                row.user_id == user
                    && row.group_id == group
                    && row.role_id == wire::GROUP_ACCESS_ROLE
            })
            .count()
    }

    /// Every role assignment, in id order.
    pub fn role_assignments(&self) -> Vec<SimRoleAssignment> {
        self.sim
            .lock()
            .assignments
            .iter()
            .map(|(id, row)| SimRoleAssignment {
                id: id.to_string(),
                role_id: row.role_id.clone(),
                user_id: row.user_id.to_string(),
                group_id: row.group_id.to_string(),
                notify: row.notify,
                origin: row.origin,
            })
            .collect()
    }

    /// A person gives a user door access in the dashboard (a new row even if one exists, no email).
    pub fn dashboard_add_to_group(
        &self,
        user_id: &str,
        group_id: &str,
    ) -> Result<String, SimulatorError> {
        self.dashboard_assign(user_id, group_id, wire::GROUP_ACCESS_ROLE)
    }

    /// A person assigns any group role (e.g. `group_manager`) in the dashboard.
    pub fn dashboard_assign(
        &self,
        user_id: &str,
        group_id: &str,
        role_id: &str,
    ) -> Result<String, SimulatorError> {
        let mut state = self.sim.lock();
        let user = known(&state.users, user_id)
            .ok_or_else(|| SimulatorError::UnknownUser(user_id.to_owned()))?;
        let group = known(&state.groups, group_id)
            .ok_or_else(|| SimulatorError::UnknownGroup(group_id.to_owned()))?;
        let id = state.insert_assignment(AssignmentRow {
            role_id: role_id.to_owned(),
            user_id: user,
            group_id: group,
            notify: false,
            origin: AssignmentOrigin::Dashboard,
            created_at: Utc::now(),
        });
        Ok(id.to_string())
    }

    /// A person deletes one role assignment in the dashboard; `false` if it did not exist.
    pub fn dashboard_remove_assignment(&self, assignment_id: &str) -> bool {
        parse_id(assignment_id).is_some_and(|id| self.sim.lock().assignments.remove(&id).is_some())
    }

    /// A person edits a user's email in the dashboard.
    pub fn dashboard_change_email(&self, user_id: &str, email: &str) -> Result<(), SimulatorError> {
        let mut state = self.sim.lock();
        let id = known(&state.users, user_id)
            .ok_or_else(|| SimulatorError::UnknownUser(user_id.to_owned()))?;
        if state.email_taken(email, Some(id)) {
            return Err(SimulatorError::EmailTaken(email.to_owned()));
        }
        if let Some(user) = state.users.get_mut(&id) {
            user.email = email.to_owned();
            user.updated_at = Utc::now();
        }
        Ok(())
    }

    /// Successful API writes (`POST`, `DELETE`) so far; dashboard edits are not counted.
    pub fn write_calls(&self) -> u64 {
        self.sim.lock().writes.total()
    }

    /// "Access granted" emails Kisi would have sent, in order.
    pub fn notifications(&self) -> Vec<Notification> {
        self.sim.lock().notifications.clone()
    }

    /// The addresses of [`Self::notifications`], in order, repeats kept.
    pub fn notified_emails(&self) -> Vec<String> {
        self.sim
            .lock()
            .notifications
            .iter()
            .map(|notification| notification.email.clone())
            .collect()
    }

    /// The `user` objects of every accepted `POST /users`, exactly as received.
    pub fn created_user_payloads(&self) -> Vec<Value> {
        self.sim.lock().writes.bodies(CREATE_USER)
    }

    /// The `role_assignment` objects of every accepted `POST /role_assignments`, exactly as received.
    pub fn grant_payloads(&self) -> Vec<Value> {
        self.sim.lock().writes.bodies(CREATE_ASSIGNMENT)
    }
}

fn sim_user(id: u64, user: &UserRow) -> SimUser {
    SimUser {
        id: id.to_string(),
        name: user.name.clone(),
        email: user.email.clone(),
        send_emails: user.send_emails,
        confirmed: user.confirmed,
        access_enabled: user.access_enabled,
        metadata: user.metadata.clone(),
        notes: user.notes.clone(),
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------------------
// HTTP surface

type Sim = State<Arc<Shared>>;

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/groups", get(list_groups))
        .route("/groups/{id}", get(get_group))
        .route("/users", get(list_users).post(create_user))
        .route(
            "/role_assignments",
            get(list_role_assignments).post(create_role_assignment),
        )
        .route(
            "/role_assignments/{id}",
            delete(delete_role_assignment).get(get_role_assignment),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), gate))
        .with_state(shared)
}

/// Kisi's error bodies.
enum KisiError {
    /// `{"code": "<6 hex>", "error": "…"}`.
    Coded {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// 422 `{"errors": {"field": ["msg"]}}`.
    Invalid { field: String, message: String },
}

impl KisiError {
    fn unauthorized() -> Self {
        // The documented 401 example body; Kisi documents no other text for a bad API key.
        Self::Coded {
            status: StatusCode::UNAUTHORIZED,
            code: "afc516",
            message: "Wrong email address or password.".into(),
        }
    }

    fn not_found() -> Self {
        Self::Coded {
            status: StatusCode::NOT_FOUND,
            code: "000404",
            message: "Not found".into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::Coded {
            status: StatusCode::BAD_REQUEST,
            code: "000400",
            message: message.into(),
        }
    }

    fn invalid(field: &str, message: &str) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

impl IntoResponse for KisiError {
    fn into_response(self) -> Response {
        match self {
            Self::Coded {
                status,
                code,
                message,
            } => (status, Json(json!({"code": code, "error": message}))).into_response(),
            Self::Invalid { field, message } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({"errors": {field: [message]}})),
            )
                .into_response(),
        }
    }
}

type ApiResult = Result<Response, KisiError>;

async fn not_found() -> KisiError {
    KisiError::not_found()
}

/// The server-side rate limit ([`RateControls`]): requests over it get 429 with
/// `Retry-After: 1` and an empty body.
impl RateControls for SimulatorHandle {
    fn change_rate_limit(&self, change: impl FnOnce(&mut RateLimit)) {
        change(&mut self.sim.lock().rate_limit);
    }
}

/// Rate limit (every request, as Kisi limits unauthenticated callers per IP), then the API key.
async fn gate(State(shared): Sim, request: Request, next: Next) -> Response {
    if shared.lock().rate_limit.admit(Instant::now()).is_err() {
        return reply::too_many_requests(Some(1));
    }
    let key = auth::credentials(request.headers(), wire::AUTH_SCHEME);
    if key != Some(shared.api_key.expose()) {
        return KisiError::unauthorized().into_response();
    }
    next.run(request).await
}

/// Applies `limit`/`offset` and answers with a bare array and `X-Collection-Range`.
fn paged(items: Vec<Value>, params: &Query, default: u32, max: u32) -> ApiResult {
    let limit = match params.get("limit") {
        None => u64::from(default),
        Some(text) => match text.trim().parse::<u64>() {
            Ok(0) => return Err(KisiError::invalid("limit", "must be greater than 0")),
            Ok(limit) => limit.min(u64::from(max)),
            Err(_) => return Err(KisiError::invalid("limit", "is not a number")),
        },
    };
    let offset = match params.get("offset") {
        None => 0,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(offset) if offset <= wire::MAX_OFFSET => offset,
            Ok(_) => {
                return Err(KisiError::invalid(
                    "offset",
                    "must be less than or equal to 20000",
                ))
            }
            Err(_) => return Err(KisiError::invalid("offset", "is not a number")),
        },
    };
    let window = Window::new(
        usize::try_from(offset).unwrap_or(usize::MAX),
        usize::try_from(limit).unwrap_or(usize::MAX),
    );
    let page = window.slice(items);
    let range = CollectionRange::requested(offset, limit, page.total as u64).header_value();
    let response = Json(Value::Array(page.items)).into_response();
    Ok(match HeaderValue::from_str(&range) {
        Ok(value) => reply::with_header(response, wire::COLLECTION_RANGE_HEADER, value),
        Err(_) => response,
    })
}

fn group_json(id: u64, group: &GroupRow, state: &SimState) -> Value {
    let rows: Vec<&AssignmentRow> = state
        .assignments
        .values()
        .filter(|row| row.group_id == id)
        .collect();
    let users: BTreeSet<u64> = rows.iter().map(|row| row.user_id).collect();
    json!({
        "id": id,
        "name": group.name,
        "description": group.description,
        "locks_count": 0,
        "users_count": users.len(),
        "members_count": rows.len(),
        "login_enabled": true,
        "time_restriction_enabled": false,
        "reader_restriction_enabled": false,
        "geofence_restriction_enabled": false,
        "created_at": timestamp(group.created_at),
        "updated_at": timestamp(group.updated_at),
    })
}

fn user_json(id: u64, user: &UserRow, state: &SimState, organization_id: u64) -> Value {
    let groups: BTreeSet<u64> = state
        .assignments
        .values()
        .filter(|row| row.user_id == id)
        .map(|row| row.group_id)
        .collect();
    json!({
        "id": id,
        "resource_type": "User",
        "name": user.name,
        "email": user.email,
        "created_at": timestamp(user.created_at),
        "updated_at": timestamp(user.updated_at),
        "metadata": user.metadata,
        "image": null,
        "otp_required_for_login": false,
        "password_flow_enabled": user.send_emails,
        "access_enabled": user.access_enabled,
        "last_accessed_at": null,
        "scim_access_enabled": false,
        "notes": user.notes,
        "organization_id": organization_id,
        "confirmed": user.confirmed,
        "groups_count": groups.len(),
    })
}

/// A group role assignment with every key the spec requires of one (additionalProperties false:
/// no `organization_id` on group rows); `quirks.omit_group_keys` drops the keys naming the group.
fn assignment_json(id: u64, row: &AssignmentRow, state: &SimState) -> Value {
    let user = state.users.get(&row.user_id);
    let group = state.groups.get(&row.group_id);
    let person = json!({
        "id": row.user_id,
        "resource_type": "User",
        "name": user.and_then(|user| user.name.clone()),
        "email": user.map(|user| user.email.clone()),
    });
    let group_ref = json!({
        "id": row.group_id,
        "resource_type": "Group",
        "name": group.map(|group| group.name.clone()),
    });
    let mut out = json!({
        "id": id,
        "resource_type": "RoleAssignment",
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.created_at),
        "role_id": row.role_id,
        "notify": row.notify,
        "valid_from": null,
        "valid_until": null,
        "applies_to_type": "Group",
        "applies_to_id": row.group_id,
        "applies_to": group_ref,
        "assignee_type": "User",
        "assignee_id": row.user_id,
        "assignee": person,
        "created_by_type": "User",
        "created_by_id": null,
        "user_id": row.user_id,
        "user": person,
        "assignee_team_id": null,
        "guest_id": null,
        "issued_by_id": null,
        "type": "group",
        "scope": "group",
        "group_id": row.group_id,
        "group": group_ref,
    });
    if state.quirks.omit_group_keys {
        if let Some(fields) = out.as_object_mut() {
            for key in [
                "applies_to_type",
                "applies_to_id",
                "applies_to",
                "group_id",
                "group",
                "type",
                "scope",
            ] {
                fields.remove(key);
            }
        }
    }
    out
}

async fn list_groups(State(shared): Sim, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Query::parse(raw.as_deref());
    let state = shared.lock();
    let items = state
        .groups
        .iter()
        .map(|(id, group)| group_json(*id, group, &state))
        .collect();
    paged(
        items,
        &params,
        wire::GROUPS_DEFAULT_LIMIT,
        wire::GROUPS_MAX_LIMIT,
    )
}

async fn get_group(State(shared): Sim, Path(id): Path<String>) -> ApiResult {
    let state = shared.lock();
    let id = parse_id(&id).ok_or_else(KisiError::not_found)?;
    let group = state.groups.get(&id).ok_or_else(KisiError::not_found)?;
    Ok(Json(group_json(id, group, &state)).into_response())
}

async fn list_users(State(shared): Sim, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Query::parse(raw.as_deref());
    let state = shared.lock();
    let query = params
        .get("query")
        .map(|text| text.trim().to_lowercase())
        .filter(|text| !text.is_empty());
    let email = params.get("email");
    let in_group = params.get("group_id").map(parse_id);
    let ids: Option<BTreeSet<Option<u64>>> = params
        .get("ids")
        .map(|ids| ids.split(',').map(parse_id).collect());
    let items = state
        .users
        .iter()
        .filter(|(id, user)| {
            let matches_query = query.as_ref().is_none_or(|query| {
                user.email.to_lowercase().contains(query)
                    || user
                        .name
                        .as_ref()
                        .is_some_and(|name| name.to_lowercase().contains(query))
                    || user
                        .notes
                        .as_ref()
                        .is_some_and(|notes| notes.to_lowercase().contains(query))
            });
            let matches_email = email.is_none_or(|email| user.email == email);
            let matches_group = in_group.is_none_or(|group| {
                state
                    .assignments
                    .values()
                    .any(|row| row.user_id == **id && Some(row.group_id) == group)
            });
            let matches_ids = ids.as_ref().is_none_or(|ids| ids.contains(&Some(**id)));
            matches_query && matches_email && matches_group && matches_ids
        })
        .map(|(id, user)| user_json(*id, user, &state, shared.organization_id))
        .collect();
    paged(
        items,
        &params,
        wire::USERS_DEFAULT_LIMIT,
        wire::USERS_MAX_LIMIT,
    )
}

/// The wrapped object of a write body: `{"<wrapper>": {…}}`.
fn wrapped(body: &Bytes, wrapper: &str) -> Result<Map<String, Value>, KisiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| KisiError::bad_request("The request body is not valid JSON."))?;
    match value.get(wrapper) {
        Some(Value::Object(fields)) if !fields.is_empty() => Ok(fields.clone()),
        _ => Err(KisiError::bad_request(format!(
            "param is missing or the value is empty: {wrapper}"
        ))),
    }
}

fn optional_bool(fields: &Map<String, Value>, key: &str, default: bool) -> Result<bool, KisiError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(KisiError::invalid(key, "is not a boolean")),
    }
}

fn optional_string(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, KisiError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(KisiError::invalid(key, "is not a string")),
    }
}

fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
        && !domain.contains('@')
}

async fn create_user(State(shared): Sim, body: Bytes) -> ApiResult {
    let fields = wrapped(&body, "user")?;
    let email = optional_string(&fields, "email")?
        .map(|email| email.trim().to_owned())
        .filter(|email| plausible_email(email))
        .ok_or_else(|| KisiError::invalid("email", "can't be blank or invalid"))?;
    let name = optional_string(&fields, "name")?;
    let notes = optional_string(&fields, "notes")?;
    let send_emails = optional_bool(&fields, "send_emails", true)?;
    let confirm = optional_bool(&fields, "confirm", false)?;
    let access_enabled = optional_bool(&fields, "access_enabled", true)?;
    let metadata = match fields.get("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(metadata)) => metadata.clone(),
        Some(_) => return Err(KisiError::invalid("metadata", "is not an object")),
    };
    let mut state = shared.lock();
    if state.email_taken(&email, None) {
        return Err(KisiError::invalid("email", "has already been taken"));
    }
    let now = Utc::now();
    let row = UserRow {
        name,
        email,
        send_emails,
        confirmed: confirm,
        access_enabled,
        metadata,
        notes,
        created_at: now,
        updated_at: now,
    };
    let id = state.insert_user(row);
    state
        .writes
        .record_body(CREATE_USER, Some(Value::Object(fields)));
    let created = state
        .users
        .get(&id)
        .map(|user| user_json(id, user, &state, shared.organization_id))
        .unwrap_or(Value::Null);
    Ok(Json(created).into_response())
}

async fn list_role_assignments(State(shared): Sim, RawQuery(raw): RawQuery) -> ApiResult {
    let params = Query::parse(raw.as_deref());
    let state = shared.lock();
    let id_filter = |keys: &[&str]| -> Option<Option<u64>> {
        keys.iter().find_map(|key| params.get(key)).map(parse_id)
    };
    // Every row here is a user's role on a group: other assignee or scope types match nothing.
    let type_ok = |key: &str, wanted: &str| {
        params
            .get(key)
            .is_none_or(|kind| kind.eq_ignore_ascii_case(wanted))
    };
    // "Filter by … ID. Must be used with `…_type`" (spec).
    for (id_key, type_key) in [
        ("assignee_id", "assignee_type"),
        ("applies_to_id", "applies_to_type"),
    ] {
        if params.contains(id_key) && !params.contains(type_key) {
            return Err(KisiError::invalid(
                type_key,
                &format!("must be given with {id_key}"),
            ));
        }
    }
    let ignore_group = state.quirks.ignore_group_filter;
    let kinds_match =
        (ignore_group || type_ok("applies_to_type", "Group")) && type_ok("assignee_type", "User");
    let group = if ignore_group {
        None
    } else {
        id_filter(&["applies_to_id", "group_id"])
    };
    let user = id_filter(&["assignee_id", "user_id"]);
    let role = params.get("role_id");
    let items = state
        .assignments
        .iter()
        .filter(|(_, row)| {
            kinds_match
                && group.is_none_or(|group| group == Some(row.group_id))
                && user.is_none_or(|user| user == Some(row.user_id))
                && role.is_none_or(|role| *role == row.role_id)
        })
        .map(|(id, row)| assignment_json(*id, row, &state))
        .collect();
    paged(
        items,
        &params,
        wire::ROLE_ASSIGNMENTS_DEFAULT_LIMIT,
        wire::ROLE_ASSIGNMENTS_MAX_LIMIT,
    )
}

async fn get_role_assignment(State(shared): Sim, Path(id): Path<String>) -> ApiResult {
    let state = shared.lock();
    let id = parse_id(&id).ok_or_else(KisiError::not_found)?;
    let row = state
        .assignments
        .get(&id)
        .ok_or_else(KisiError::not_found)?;
    Ok(Json(assignment_json(id, row, &state)).into_response())
}

/// An id field of a write body: an integer or a numeric string.
fn body_id(fields: &Map<String, Value>, key: &str) -> Option<Option<u64>> {
    match fields.get(key)? {
        Value::Null => None,
        Value::Number(number) => Some(number.as_u64()),
        Value::String(text) => Some(parse_id(text)),
        _ => Some(None),
    }
}

async fn create_role_assignment(State(shared): Sim, body: Bytes) -> ApiResult {
    let fields = wrapped(&body, "role_assignment")?;
    // Required by the spec's "Group Role Assignment" body; the deprecated `user_id`/`group_id`
    // do not stand in for them.
    for key in [
        "applies_to_type",
        "applies_to_id",
        "assignee_type",
        "assignee_id",
        "role_id",
    ] {
        if fields.get(key).is_none_or(Value::is_null) {
            return Err(KisiError::invalid(key, "can't be blank"));
        }
    }
    let role_id = optional_string(&fields, "role_id")?
        .filter(|role| role == wire::GROUP_ACCESS_ROLE || role == wire::GROUP_MANAGER_ROLE)
        .ok_or_else(|| KisiError::invalid("role_id", "is not included in the list"))?;
    if optional_string(&fields, "assignee_type")?.is_some_and(|kind| kind != "User") {
        return Err(KisiError::invalid(
            "assignee_type",
            "is not included in the list",
        ));
    }
    if optional_string(&fields, "applies_to_type")?.is_some_and(|kind| kind != "Group") {
        return Err(KisiError::invalid("applies_to_type", "is not supported"));
    }
    let user = body_id(&fields, "assignee_id");
    let group = body_id(&fields, "applies_to_id");
    let notify = optional_bool(&fields, "notify", true)?;

    let mut state = shared.lock();
    let user = user
        .flatten()
        .filter(|id| state.users.contains_key(id))
        .ok_or_else(|| KisiError::invalid("user", "must exist"))?;
    let group = group
        .flatten()
        .filter(|id| state.groups.contains_key(id))
        .ok_or_else(|| KisiError::invalid("group", "must exist"))?;
    // Deliberately no uniqueness check: Kisi stacks a new row for an existing membership.
    let id = state.insert_assignment(AssignmentRow {
        role_id,
        user_id: user,
        group_id: group,
        notify,
        origin: AssignmentOrigin::ApiCurrentForm,
        created_at: Utc::now(),
    });
    let recipient = state
        .users
        .get(&user)
        .filter(|person| notify && person.send_emails)
        .map(|person| person.email.clone());
    if let Some(email) = recipient {
        state.notifications.push(Notification {
            email,
            user_id: user.to_string(),
            group_id: group.to_string(),
            role_assignment_id: id.to_string(),
        });
    }
    state
        .writes
        .record_body(CREATE_ASSIGNMENT, Some(Value::Object(fields)));
    let created = state
        .assignments
        .get(&id)
        .map(|row| assignment_json(id, row, &state))
        .unwrap_or(Value::Null);
    Ok(Json(created).into_response())
}

async fn delete_role_assignment(State(shared): Sim, Path(id): Path<String>) -> ApiResult {
    let mut state = shared.lock();
    let id = parse_id(&id).ok_or_else(KisiError::not_found)?;
    state
        .assignments
        .remove(&id)
        .ok_or_else(KisiError::not_found)?;
    state.writes.record("DELETE /role_assignments/{id}");
    Ok(StatusCode::NO_CONTENT.into_response())
}
