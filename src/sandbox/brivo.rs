//! In-process Brivo Access simulator (axum): the token endpoint and the API v1 endpoints the sync
//! uses, state in memory, wrapped in [`Faults`], plus a Rust control surface for tests and the
//! sandbox (seeding, dashboard edits by hand, write counts, invitations and emails sent).
//!
//! Reproduced from the docs and the 2017 production recordings (vendor-apis.md §4, recorded/brivo):
//! `api-key` required on every call (else 403 HTML `<h1>Developer Inactive</h1>`); bearer tokens
//! living 300 s with `{"error":"invalid_token"}` 401s; the password grant with HTTP Basic client
//! credentials, parameters in the form body or the query string (the recordings used the query);
//! `{data, offset, pageSize, count}` lists with `count` the total, `pageSize` default 20 and max 100;
//! sub-resource lists `{data, count}`; the `filter=field__op:value;…` grammar (wrong syntax → 400
//! "Invalid filter format") without an email filter; users sorted by last name; user lists carry
//! the recorded slice `{id, externalId?, firstName, lastName, suspended}` only (no `emails`, no
//! `updated`: rec-08/rec-09), the emails come with `GET /users/{id}`; `POST /users` → 200
//! without `customFields`, GETs with `customFields: []`; absent fields omitted, never null;
//! `externalId` stored as a string; `PUT /users/{id}` clears omitted optional fields, `PATCH` keeps
//! them; membership PUT/DELETE → 204; the 16-groups-per-user cap; `{"message", "code"}` errors with
//! the live messages; digital invitations with 409 (pending exists) and 412 (no passes left).
//!
//! Simulator choices where Brivo's behaviour is unknown (INFERRED): the group-cap error and the
//! "not a member" 404 bodies (see [`crate::vendors::brivo::wire`]); `pageSize` outside 1..=100 or a bad `offset` → 400
//! "Invalid criteria provided"; a malformed JSON body → 400 "Malformed JSON request"; a non-JSON
//! content type → 415; a duplicate `externalId` → 400; wrong verbs and unknown paths → 596 "Service Not
//! Found" (documented for wrong verbs); refresh tokens are reusable (Spring's default); server-side
//! rate limiting (Brivo publishes no limits) answers as its Mashery gateway does: 403 with
//! `X-Mashery-Error-Code: ERR_403_DEVELOPER_OVER_QPS`, `X-Error-Detail-Header: Account Over
//! Queries Per Second Limit` and `<h1>Developer Over Qps</h1>`, without `Retry-After` (some
//! Mashery deployments send one, so a client must not need it; see [`wire::mashery_throttle`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::api::vendor_connection::BrivoMobilePassTarget;
use crate::http::Secret;
use crate::sandbox::faults::Faults;
use crate::sandbox::kit::auth::{self, TokenState, Tokens};
use crate::sandbox::kit::ids::{known, random_hex, uuid_v4, Sequence};
use crate::sandbox::kit::journal::Journal;
use crate::sandbox::kit::paging::{Query, Window};
use crate::sandbox::kit::rate::{self, RateLimit};
use crate::sandbox::kit::{self, reply};
use crate::sandbox::kit::{Login, OAuthClient, RateControls, SimClock, TokenControls};
use crate::vendors::brivo::client::{BrivoConfig, BrivoConfigError};
use crate::vendors::brivo::wire::{
    self, API_KEY_HEADER, DEFAULT_PAGE_SIZE, MAX_GROUPS_PER_USER, MAX_PAGE_SIZE, UNKNOWN_GROUP,
    USER_NOT_FOUND,
};

const API_PREFIX: &str = "/v1/api";
/// Digital invitations expire after three days in the documentation examples.
const INVITATION_LIFETIME_DAYS: i64 = 3;
const SUCCESS_CONTENT_TYPE: &str = "application/json;charset=UTF-8";

/// Why the simulator could not start or a control call failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("cannot bind the Brivo simulator to 127.0.0.1:0: {0}")]
    Bind(#[from] std::io::Error),
    #[error("no Brivo user {0} in the simulator")]
    UnknownUser(String),
    #[error("no Brivo group {0} in the simulator")]
    UnknownGroup(String),
    #[error("Brivo user {user} is already in {MAX_GROUPS_PER_USER} groups")]
    GroupCap { user: String },
}

/// Start-up options. `Default` generates credentials and uses the documented 300 s token lifetime.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// The developer key every call must carry in `api-key`.
    pub api_key: Secret,
    /// The client the token endpoint wants in HTTP Basic.
    pub client: OAuthClient,
    /// The Administrator ID and password the password grant accepts.
    pub login: Login,
    pub token_lifetime: Duration,
    /// Drives token expiry and timestamps.
    pub clock: SimClock,
    pub faults: Faults,
    /// Brivo mobile passes the account may still issue (`None`: unlimited).
    pub mobile_passes_available: Option<u32>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            api_key: Secret::new(random_hex(16)),
            client: OAuthClient::new(format!("sim-client-{}", random_hex(6)), random_hex(16)),
            login: Login::new(
                format!("admin{}", fastrand::u32(100_000..999_999)),
                random_hex(12),
            ),
            token_lifetime: Duration::from_secs(300),
            clock: SimClock::default(),
            faults: Faults::new(),
            mobile_passes_available: None,
        }
    }
}

/// Control surface of a running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SimulatorHandle {
    /// `http://127.0.0.1:<port>`: the auth host (`/oauth/token`); the API is under `/v1/api`.
    pub base_url: String,
    /// The credentials it accepts, as its options set them.
    pub api_key: Secret,
    pub client: OAuthClient,
    pub login: Login,
    sim: kit::Running<SimulatorOptions, SimState>,
}

/// A person to seed, as if created in the Brivo dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedUser {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    /// Stored as Brivo's `externalId` (the OfficeRnD member id when OfficeRnD created the user).
    pub external_id: Option<String>,
    pub phone: Option<String>,
}

impl SeedUser {
    pub fn new(first_name: impl Into<String>, last_name: impl Into<String>) -> Self {
        Self {
            first_name: first_name.into(),
            last_name: last_name.into(),
            ..Self::default()
        }
    }

    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    pub fn external_id(mut self, external_id: impl Into<String>) -> Self {
        self.external_id = Some(external_id.into());
        self
    }

    pub fn phone(mut self, phone: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self
    }
}

/// A digital (mobile pass) invitation as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    pub id: String,
    pub user_id: String,
    /// The email the invitation is for (Brivo's `referenceId`).
    pub email: String,
    /// Whether Brivo itself emailed the invitation (`sendInvitationEmail`).
    pub send_invitation_email: bool,
    /// `PENDING`, `REDEEMED`, `EXPIRED` or `CANCELLED`.
    pub status: String,
}

/// An email Brivo would have sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub to: String,
    pub subject: String,
}

/// Which OAuth grant issued a token, for assertions on refresh behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKind {
    Password,
    RefreshToken,
}

struct SimUser {
    id: u64,
    /// Every stored attribute except `id`, `created` and `updated`; absent means unset.
    fields: Map<String, Value>,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
}

impl SimUser {
    fn text(&self, key: &str) -> &str {
        self.fields.get(key).and_then(Value::as_str).unwrap_or("")
    }

    fn sort_key(&self) -> (String, String, u64) {
        (
            self.text("lastName").to_lowercase(),
            self.text("firstName").to_lowercase(),
            self.id,
        )
    }

    fn emails(&self) -> Vec<String> {
        self.fields
            .get("emails")
            .and_then(Value::as_array)
            .map(|emails| {
                emails
                    .iter()
                    .filter_map(|email| email.get("address").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn suspended(&self) -> bool {
        self.fields
            .get("suspended")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

struct SimGroup {
    id: u64,
    name: String,
    members: BTreeSet<u64>,
}

struct SimInvitation {
    id: u64,
    user_id: u64,
    reference_id: String,
    credential_id: u64,
    access_code: String,
    created: DateTime<Utc>,
    expiration: DateTime<Utc>,
    status: &'static str,
    nfc_enabled: bool,
    send_email: bool,
}

struct SimState {
    users: BTreeMap<u64, SimUser>,
    groups: BTreeMap<u64, SimGroup>,
    /// Refresh tokens are reusable (Spring's default).
    tokens: Tokens,
    grants: Vec<GrantKind>,
    ids: Sequence,
    invitations: Vec<SimInvitation>,
    emails: Vec<SentEmail>,
    passes_available: Option<u32>,
    rate_limit: RateLimit,
    quota_exhausted: bool,
    /// `"METHOD /path"` of every API write that reached the simulator.
    writes: Journal,
}

impl SimState {
    fn new_id(&mut self) -> u64 {
        self.ids.next_id()
    }

    fn groups_of(&self, user_id: u64) -> Vec<&SimGroup> {
        self.groups
            .values()
            .filter(|group| group.members.contains(&user_id))
            .collect()
    }

    fn external_id_taken(&self, external_id: &str, except: Option<u64>) -> bool {
        self.users.values().any(|user| {
            Some(user.id) != except
                && user.fields.get("externalId").and_then(Value::as_str) == Some(external_id)
        })
    }
}

type Shared = kit::Shared<SimulatorOptions, SimState>;

/// Entry point: `Simulator::start(options)`.
pub struct Simulator;

impl Simulator {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn start(options: SimulatorOptions) -> Result<SimulatorHandle, SimulatorError> {
        let shared = Shared::new(
            options.clone(),
            options.clock.clone(),
            SimState {
                users: BTreeMap::new(),
                groups: BTreeMap::new(),
                tokens: Tokens::new(options.token_lifetime),
                grants: Vec::new(),
                // Brivo ids are 8-digit integers in the recordings.
                ids: Sequence::after(15_540_000),
                invitations: Vec::new(),
                emails: Vec::new(),
                passes_available: options.mobile_passes_available,
                rate_limit: RateLimit::new(rate::Window::Sliding, None),
                quota_exhausted: false,
                writes: Journal::default(),
            },
        );
        let sim = kit::Running::start("Brivo", shared, router, options.faults.clone()).await?;
        Ok(SimulatorHandle {
            base_url: sim.base_url().to_owned(),
            api_key: options.api_key,
            client: options.client,
            login: options.login,
            sim,
        })
    }
}

impl SimulatorHandle {
    /// The API base (`{base_url}/v1/api`), as `BrivoConfig::api_url` wants it.
    pub fn api_url(&self) -> String {
        format!("{}{API_PREFIX}", self.base_url)
    }

    /// A client configuration for this simulator with its credentials.
    pub fn client_config(
        &self,
        target: BrivoMobilePassTarget,
    ) -> Result<BrivoConfig, BrivoConfigError> {
        Ok(BrivoConfig::new(
            self.api_key.clone(),
            &self.client.id,
            self.client.secret.clone(),
            &self.login.username,
            self.login.password.clone(),
        )?
        .with_urls(&self.api_url(), &self.base_url)?
        .with_mobile_pass_target(target))
    }

    /// The fault injection and request counters wrapped around this simulator.
    pub fn faults(&self) -> &Faults {
        self.sim.faults()
    }

    /// The request path of an API resource, as counted by [`Faults`] (e.g. `api_path("/users")`).
    pub fn api_path(&self, path: &str) -> String {
        format!("{API_PREFIX}{path}")
    }

    /// Creates a group as an administrator would; returns its id.
    pub fn add_group(&self, name: &str) -> String {
        let mut state = self.sim.lock();
        let id = state.new_id();
        state.groups.insert(
            id,
            SimGroup {
                id,
                name: name.to_owned(),
                members: BTreeSet::new(),
            },
        );
        id.to_string()
    }

    /// Creates a user as an administrator would in the dashboard; returns its id.
    pub fn add_user(&self, seed: SeedUser) -> String {
        let mut fields = Map::new();
        fields.insert("firstName".into(), Value::String(seed.first_name));
        fields.insert("lastName".into(), Value::String(seed.last_name));
        fields.insert("suspended".into(), Value::Bool(false));
        if let Some(external_id) = seed.external_id {
            fields.insert("externalId".into(), Value::String(external_id));
        }
        if let Some(email) = seed.email {
            fields.insert(
                "emails".into(),
                json!([{"address": email, "type": wire::CONTACT_TYPE}]),
            );
        }
        if let Some(phone) = seed.phone {
            fields.insert(
                "phoneNumbers".into(),
                json!([{"number": phone, "type": wire::CONTACT_TYPE}]),
            );
        }
        let now = self.sim.now();
        let mut state = self.sim.lock();
        let id = state.new_id();
        state.users.insert(
            id,
            SimUser {
                id,
                fields,
                created: now,
                updated: now,
            },
        );
        id.to_string()
    }

    /// Someone adds a user to a group by hand in the dashboard (the cap applies there too).
    pub fn dashboard_add_to_group(
        &self,
        group_id: &str,
        user_id: &str,
    ) -> Result<(), SimulatorError> {
        let mut state = self.sim.lock();
        let user = known(&state.users, user_id)
            .ok_or_else(|| SimulatorError::UnknownUser(user_id.to_owned()))?;
        let group = known(&state.groups, group_id)
            .ok_or_else(|| SimulatorError::UnknownGroup(group_id.to_owned()))?;
        let already = state.groups_of(user);
        if !already.iter().any(|g| g.id == group) && already.len() >= MAX_GROUPS_PER_USER {
            return Err(SimulatorError::GroupCap {
                user: user_id.to_owned(),
            });
        }
        if let Some(group) = state.groups.get_mut(&group) {
            group.members.insert(user);
        }
        Ok(())
    }

    /// Someone changes a user's (first) email by hand in the dashboard.
    pub fn dashboard_set_email(&self, user_id: &str, email: &str) -> Result<(), SimulatorError> {
        let now = self.sim.now();
        let mut state = self.sim.lock();
        let user = parse_id(user_id)
            .and_then(|id| state.users.get_mut(&id))
            .ok_or_else(|| SimulatorError::UnknownUser(user_id.to_owned()))?;
        let mut emails = user
            .fields
            .get("emails")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match emails.first_mut().and_then(Value::as_object_mut) {
            Some(first) => {
                first.insert("address".into(), Value::String(email.to_owned()));
            }
            None => emails.push(json!({"address": email, "type": wire::CONTACT_TYPE})),
        }
        user.fields.insert("emails".into(), Value::Array(emails));
        user.updated = now;
        Ok(())
    }

    /// Member ids of a group (empty for an unknown group).
    pub fn group_member_ids(&self, group_id: &str) -> Vec<String> {
        let state = self.sim.lock();
        parse_id(group_id)
            .and_then(|id| state.groups.get(&id))
            .map(|group| group.members.iter().map(u64::to_string).collect())
            .unwrap_or_default()
    }

    /// The first email of each member of a group, sorted (members without email are skipped).
    pub fn group_member_emails(&self, group_id: &str) -> Vec<String> {
        let state = self.sim.lock();
        let mut emails: Vec<String> = parse_id(group_id)
            .and_then(|id| state.groups.get(&id))
            .map(|group| {
                group
                    .members
                    .iter()
                    .filter_map(|member| state.users.get(member))
                    .filter_map(|user| user.emails().into_iter().next())
                    .collect()
            })
            .unwrap_or_default();
        emails.sort();
        emails
    }

    /// Group ids of a user.
    pub fn user_group_ids(&self, user_id: &str) -> Vec<String> {
        let state = self.sim.lock();
        parse_id(user_id)
            .map(|id| {
                state
                    .groups_of(id)
                    .iter()
                    .map(|group| group.id.to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A user as `GET /users/{id}` returns it.
    pub fn user(&self, user_id: &str) -> Option<Value> {
        let state = self.sim.lock();
        parse_id(user_id)
            .and_then(|id| state.users.get(&id))
            .map(|user| render_user(user, true))
    }

    /// A user by external id, as `GET /users/{externalId}/external` returns it.
    pub fn user_by_external_id(&self, external_id: &str) -> Option<Value> {
        let state = self.sim.lock();
        state
            .users
            .values()
            .find(|user| user.fields.get("externalId").and_then(Value::as_str) == Some(external_id))
            .map(|user| render_user(user, true))
    }

    /// Every user as the list returns them (sorted by last name).
    pub fn users(&self) -> Vec<Value> {
        let state = self.sim.lock();
        sorted_users(&state)
            .into_iter()
            .map(|user| render_user(user, false))
            .collect()
    }

    /// `"METHOD /path"` of every write (non-GET API request) that reached the simulator, in order.
    pub fn write_calls(&self) -> Vec<String> {
        self.sim.lock().writes.kinds()
    }

    /// Digital invitations created so far, in order.
    pub fn invitations(&self) -> Vec<InvitationRecord> {
        self.sim
            .lock()
            .invitations
            .iter()
            .map(|invitation| InvitationRecord {
                id: invitation.id.to_string(),
                user_id: invitation.user_id.to_string(),
                email: invitation.reference_id.clone(),
                send_invitation_email: invitation.send_email,
                status: invitation.status.to_owned(),
            })
            .collect()
    }

    /// Marks a user's pending invitations as redeemed (the person installed the pass).
    pub fn redeem_invitations(&self, user_id: &str) {
        let mut state = self.sim.lock();
        let Some(user) = parse_id(user_id) else {
            return;
        };
        for invitation in state
            .invitations
            .iter_mut()
            .filter(|invitation| invitation.user_id == user && invitation.status == "PENDING")
        {
            invitation.status = "REDEEMED";
        }
    }

    /// Emails Brivo sent, in order.
    pub fn emails_sent(&self) -> Vec<SentEmail> {
        self.sim.lock().emails.clone()
    }

    /// Mobile passes the account may still issue (`None`: unlimited).
    pub fn set_mobile_passes_available(&self, passes: Option<u32>) {
        self.sim.lock().passes_available = passes;
    }

    /// While `true`, every call gets Mashery's used-up-quota 403 (`ERR_403_DEVELOPER_OVER_RATE`),
    /// as when the key's daily allowance is spent.
    pub fn set_quota_exhausted(&self, exhausted: bool) {
        self.sim.lock().quota_exhausted = exhausted;
    }

    /// The grants of every token issued so far, in order.
    pub fn token_grants(&self) -> Vec<GrantKind> {
        self.sim.lock().grants.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Router and middleware

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v1/api/users", get(users_list).post(users_create))
        .route(
            "/v1/api/users/{id}",
            get(user_get)
                .put(user_update)
                .patch(user_update)
                .delete(user_delete),
        )
        .route("/v1/api/users/{id}/external", get(user_by_external))
        .route("/v1/api/users/{id}/groups", get(user_groups))
        .route(
            "/v1/api/users/{id}/credentials/digital-invitations",
            get(invitations_list).post(invitations_create),
        )
        .route("/v1/api/groups", get(groups_list))
        .route("/v1/api/groups/{id}", get(group_get))
        .route("/v1/api/groups/{id}/users", get(group_members))
        .route(
            "/v1/api/groups/{group}/users/{user}",
            put(membership_add).delete(membership_remove),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            require_api_auth,
        ));
    Router::new()
        .route("/oauth/token", post(token))
        .merge(api)
        .fallback(service_not_found)
        .method_not_allowed_fallback(service_not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), observe))
        .with_state(shared)
}

/// The server-side rate limit ([`RateControls`]): more than the limit within one second get
/// Mashery's throttling 403 (see the module doc).
impl RateControls for SimulatorHandle {
    fn change_rate_limit(&self, change: impl FnOnce(&mut RateLimit)) {
        change(&mut self.sim.lock().rate_limit);
    }
}

/// Server-side rate limit (when enabled) and the record of write calls.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    {
        let mut state = shared.lock();
        if state.quota_exhausted {
            return over_rate();
        }
        if state.rate_limit.admit(Instant::now()).is_err() {
            return over_qps();
        }
        let path = request.uri().path();
        if request.method() != Method::GET && path.starts_with(API_PREFIX) {
            let write = format!("{} {path}", request.method());
            state.writes.record(write);
        }
    }
    next.run(request).await
}

fn api_key_ok(shared: &Shared, headers: &HeaderMap) -> bool {
    auth::header_text(headers, API_KEY_HEADER) == Some(shared.api_key.expose())
}

/// The `api-key` check (Mashery) and then the bearer token check (Brivo's OAuth resource server).
async fn require_api_auth(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if !api_key_ok(&shared, request.headers()) {
        return developer_inactive();
    }
    let Some(token) = auth::credentials(request.headers(), "bearer") else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Full authentication is required to access this resource",
        );
    };
    let now = shared.now();
    let token_state = shared.lock().tokens.check(token, now);
    match token_state {
        TokenState::Unknown => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Invalid access token",
        ),
        TokenState::Expired => oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Access token expired",
        ),
        TokenState::Valid => next.run(request).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn ok_json(body: &Value) -> Response {
    reply::json_as(StatusCode::OK, SUCCESS_CONTENT_TYPE, body)
}

/// Brivo's `{"message", "code"}` error body (errors are `application/json` without charset).
fn brivo_error(status: StatusCode, message: &str) -> Response {
    reply::json_as(
        status,
        "application/json",
        &json!({"message": message, "code": status.as_u16()}),
    )
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    reply::json_as(
        status,
        "application/json",
        &json!({"error": error, "error_description": description}),
    )
}

fn developer_inactive() -> Response {
    reply::text_as(
        StatusCode::FORBIDDEN,
        "text/html",
        format!("<h1>{}</h1>", wire::DEVELOPER_INACTIVE),
    )
}

/// Mashery's reply to a key over its per-second limit: a 403, not a 429.
fn over_qps() -> Response {
    mashery_403(
        wire::OVER_QPS_BODY,
        wire::OVER_QPS_CODE,
        wire::OVER_QPS_DETAIL,
    )
}

/// Mashery's reply to a key whose quota for the period is used up.
fn over_rate() -> Response {
    mashery_403(
        wire::OVER_RATE_BODY,
        wire::OVER_RATE_CODE,
        wire::OVER_RATE_DETAIL,
    )
}

/// A Mashery gateway refusal: 403, an XML page, and its error code and detail headers.
fn mashery_403(body: &'static str, code: &'static str, detail: &'static str) -> Response {
    let response = reply::text_as(StatusCode::FORBIDDEN, "text/xml", body);
    let response = reply::with_header(
        response,
        wire::MASHERY_ERROR_CODE_HEADER,
        HeaderValue::from_static(code),
    );
    reply::with_header(
        response,
        wire::MASHERY_ERROR_DETAIL_HEADER,
        HeaderValue::from_static(detail),
    )
}

fn user_not_found() -> Response {
    brivo_error(StatusCode::NOT_FOUND, USER_NOT_FOUND)
}

fn group_not_found() -> Response {
    brivo_error(StatusCode::NOT_FOUND, UNKNOWN_GROUP)
}

fn invalid_criteria() -> Response {
    brivo_error(StatusCode::BAD_REQUEST, wire::INVALID_CRITERIA)
}

async fn service_not_found() -> Response {
    let status = StatusCode::from_u16(596).unwrap_or(StatusCode::NOT_FOUND);
    brivo_error(status, "Service Not Found")
}

/// A handler's answer, or its refusal.
type Reply = Result<Response, Rejection>;

/// A request refused with Brivo's `{"message", "code"}` body; small, unlike a whole `Response`.
struct Rejection {
    status: StatusCode,
    message: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        brivo_error(self.status, &self.message)
    }
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn timestamp_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The full user object; `customFields` only where Brivo adds it (GET/PUT/PATCH, not POST/list).
fn render_user(user: &SimUser, with_custom_fields: bool) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(user.id));
    for key in [
        "externalId",
        "firstName",
        "middleName",
        "lastName",
        "pin",
        "effectiveFrom",
        "effectiveTo",
    ] {
        if let Some(value) = user.fields.get(key) {
            out.insert(key.into(), value.clone());
        }
    }
    out.insert("suspended".into(), Value::Bool(user.suspended()));
    out.insert("created".into(), Value::String(timestamp(user.created)));
    out.insert("updated".into(), Value::String(timestamp(user.updated)));
    if let Some(exempt) = user.fields.get("bleTwoFactorExempt") {
        out.insert("bleTwoFactorExempt".into(), exempt.clone());
    }
    if with_custom_fields {
        out.insert("customFields".into(), json!([]));
    }
    for key in ["emails", "phoneNumbers"] {
        if let Some(items) = user
            .fields
            .get(key)
            .filter(|items| items.as_array().is_some_and(|items| !items.is_empty()))
        {
            out.insert(key.into(), items.clone());
        }
    }
    Value::Object(out)
}

/// An entry of `GET /users` and `GET /groups/{id}/users` (rec-08, rec-16): the user summary,
/// without emails, phone numbers or timestamps.
fn render_member(user: &SimUser) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(user.id));
    if let Some(external_id) = user.fields.get("externalId") {
        out.insert("externalId".into(), external_id.clone());
    }
    out.insert(
        "firstName".into(),
        Value::String(user.text("firstName").to_owned()),
    );
    if let Some(middle) = user.fields.get("middleName") {
        out.insert("middleName".into(), middle.clone());
    }
    out.insert(
        "lastName".into(),
        Value::String(user.text("lastName").to_owned()),
    );
    out.insert("suspended".into(), Value::Bool(user.suspended()));
    Value::Object(out)
}

fn render_group_summary(group: &SimGroup) -> Value {
    json!({"id": group.id, "name": group.name})
}

fn render_invitation(invitation: &SimInvitation) -> Value {
    json!({
        "id": invitation.id,
        "referenceId": invitation.reference_id,
        "credentialId": invitation.credential_id,
        "accessCode": invitation.access_code,
        "created": timestamp_millis(invitation.created),
        "expiration": timestamp_millis(invitation.expiration),
        "status": invitation.status,
        "nfcEnabled": invitation.nfc_enabled,
    })
}

// ---------------------------------------------------------------------------------------------
// Request parsing

fn parse_id(text: &str) -> Option<u64> {
    text.parse().ok()
}

/// `offset` and `pageSize` (default 20, 1..=100).
fn paging(pairs: &Query) -> Result<Window, Rejection> {
    let offset = match pairs.first("offset") {
        None => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| Rejection::bad_request(wire::INVALID_CRITERIA))?,
    };
    let page_size = match pairs.first("pageSize") {
        None => DEFAULT_PAGE_SIZE as usize,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|size| (1..=MAX_PAGE_SIZE as usize).contains(size))
            .ok_or_else(|| Rejection::bad_request(wire::INVALID_CRITERIA))?,
    };
    Ok(Window::new(offset, page_size))
}

fn page_of(items: Vec<Value>, window: &Window) -> Response {
    let page = window.slice(items);
    ok_json(&json!({
        "data": page.items,
        "offset": window.offset,
        "pageSize": window.limit,
        "count": page.total,
    }))
}

/// The paging window and filter terms of a list request.
fn list_request(query: Option<&str>) -> Result<(Window, Vec<FilterTerm>), Rejection> {
    let pairs = Query::parse(query);
    Ok((paging(&pairs)?, parse_filter(&pairs)?))
}

/// One `field__op:value` term of the `filter` parameter.
struct FilterTerm {
    field: String,
    op: String,
    value: String,
}

fn parse_filter(pairs: &Query) -> Result<Vec<FilterTerm>, Rejection> {
    let Some(filter) = pairs.first("filter") else {
        return Ok(Vec::new());
    };
    let invalid = || Rejection::bad_request(wire::INVALID_FILTER);
    filter
        .split(';')
        .filter(|term| !term.trim().is_empty())
        .map(|term| {
            let (field, rest) = term.split_once("__").ok_or_else(invalid)?;
            let (op, value) = rest.split_once(':').ok_or_else(invalid)?;
            let field_ok =
                !field.is_empty() && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let op_ok = matches!(op, "eq" | "ne" | "gt" | "lt" | "exact");
            if !field_ok || !op_ok {
                return Err(invalid());
            }
            Ok(FilterTerm {
                field: field.to_owned(),
                op: op.to_owned(),
                value: value.to_owned(),
            })
        })
        .collect()
}

fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, Rejection> {
    if !reply::content_type_is(headers, "application/json") {
        return Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
        ));
    }
    serde_json::from_slice(body).map_err(|_| Rejection::bad_request("Malformed JSON request"))
}

/// Validates a user body and returns the attributes it sets (nulls dropped: Brivo omits them).
/// `require_names`: POST and PUT need `firstName` and `lastName`; PATCH does not.
fn user_fields(body: &Value, require_names: bool) -> Result<Map<String, Value>, Rejection> {
    let bad = |message: &str| Rejection::bad_request(message);
    let Value::Object(input) = body else {
        return Err(bad("Request body must be a JSON object"));
    };
    let mut fields = Map::new();
    for (key, value) in input {
        if value.is_null() {
            continue;
        }
        let stored = match key.as_str() {
            "firstName" | "middleName" | "lastName" | "effectiveFrom" | "effectiveTo" => {
                match value {
                    Value::String(_) => value.clone(),
                    _ => return Err(bad(&format!("{key} must be a string"))),
                }
            }
            // Brivo stores these as strings whatever was sent (rec-03: 1 → "1").
            "externalId" | "pin" => match value {
                Value::String(text) => Value::String(text.clone()),
                Value::Number(number) => Value::String(number.to_string()),
                _ => return Err(bad(&format!("{key} must be a string"))),
            },
            "suspended" | "bleTwoFactorExempt" => match value {
                Value::Bool(_) => value.clone(),
                _ => return Err(bad(&format!("{key} must be a boolean"))),
            },
            "emails" => contact_list(value, "address").map_err(|message| bad(&message))?,
            "phoneNumbers" => contact_list(value, "number").map_err(|message| bad(&message))?,
            // Custom fields are set through their own endpoint; other keys are ignored.
            _ => continue,
        };
        fields.insert(key.clone(), stored);
    }
    if require_names {
        for key in ["firstName", "lastName"] {
            if !fields.contains_key(key) {
                return Err(bad(&format!("{key} is required")));
            }
        }
        if fields
            .get("firstName")
            .and_then(Value::as_str)
            .is_some_and(|name| name.trim().is_empty())
        {
            return Err(bad("firstName must not be empty"));
        }
    }
    Ok(fields)
}

fn contact_list(value: &Value, key: &str) -> Result<Value, String> {
    let Value::Array(items) = value else {
        return Err(format!("{key} list must be an array"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(object) = item.as_object() else {
            return Err(format!("each entry must be an object with {key} and type"));
        };
        let Some(text) = object.get(key).and_then(Value::as_str) else {
            return Err(format!("{key} is required in each entry"));
        };
        let mut entry = Map::new();
        entry.insert(key.into(), Value::String(text.to_owned()));
        match object.get("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(kind)) => {
                entry.insert("type".into(), Value::String(kind.clone()));
            }
            Some(_) => return Err("type must be a string".into()),
        }
        out.push(Value::Object(entry));
    }
    Ok(Value::Array(out))
}

fn sorted_users(state: &SimState) -> Vec<&SimUser> {
    let mut users: Vec<&SimUser> = state.users.values().collect();
    users.sort_by_key(|user| user.sort_key());
    users
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

/// Token lifetime and revocation ([`TokenControls`]).
impl TokenControls for SimulatorHandle {
    fn change_tokens<R>(&self, change: impl FnOnce(&mut Tokens) -> R) -> R {
        change(&mut self.sim.lock().tokens)
    }
}

/// `POST /oauth/token`: grant parameters from the form body or the query string (both seen).
async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if !api_key_ok(&shared, &headers) {
        return developer_inactive();
    }
    if !auth::basic_matches(&headers, &shared.client.id, shared.client.secret.expose()) {
        return oauth_error(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials");
    }
    let mut params = Query::parse(query.as_deref());
    if reply::content_type_is(&headers, "application/x-www-form-urlencoded") {
        params.append(Query::from_form(&body));
    }
    let grant = match params.first("grant_type") {
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing grant type",
            )
        }
        Some("password") => {
            let username_ok = params.first("username") == Some(shared.login.username.as_str());
            let password_ok = params.first("password") == Some(shared.login.password.expose());
            if !(username_ok && password_ok) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad credentials");
            }
            GrantKind::Password
        }
        Some("refresh_token") => {
            let known = params
                .first("refresh_token")
                .is_some_and(|token| shared.lock().tokens.knows_refresh(token));
            if !known {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid refresh token",
                );
            }
            GrantKind::RefreshToken
        }
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant type",
            )
        }
    };
    let now = shared.now();
    let mut state = shared.lock();
    let lifetime = state.tokens.lifetime();
    let access_token = random_hex(16);
    let refresh_token = match grant {
        GrantKind::RefreshToken => params.first("refresh_token").unwrap_or_default().to_owned(),
        GrantKind::Password => random_hex(16),
    };
    state.tokens.issue(access_token.clone(), now);
    state.tokens.keep_refresh(refresh_token.clone());
    state.grants.push(grant);
    ok_json(&json!({
        "access_token": access_token,
        "token_type": "bearer",
        "refresh_token": refresh_token,
        "expires_in": lifetime.as_secs(),
        "scope": "brivo.api",
        "jti": uuid_v4(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Users

async fn users_list(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Reply {
    let (paging, terms) = list_request(query.as_deref())?;
    let state = shared.lock();
    let mut users = sorted_users(&state);
    for term in &terms {
        let keep: Box<dyn Fn(&SimUser) -> bool> = match (term.field.as_str(), term.op.as_str()) {
            ("id", "eq" | "ne") => {
                let Ok(ids) = term
                    .value
                    .split(',')
                    .map(|id| id.trim().parse::<u64>())
                    .collect::<Result<HashSet<u64>, _>>()
                else {
                    return Ok(invalid_criteria());
                };
                let wanted = term.op == "eq";
                Box::new(move |user: &SimUser| ids.contains(&user.id) == wanted)
            }
            (field @ ("firstname" | "lastname"), "eq") => {
                let key = if field == "firstname" {
                    "firstName"
                } else {
                    "lastName"
                };
                let needle = term.value.to_lowercase();
                Box::new(move |user: &SimUser| user.text(key).to_lowercase().contains(&needle))
            }
            ("user_status", "eq") => {
                let in_groups: HashSet<u64> = state
                    .groups
                    .values()
                    .flat_map(|group| group.members.iter().copied())
                    .collect();
                match term.value.as_str() {
                    "active" => Box::new(move |user: &SimUser| {
                        !user.suspended() && in_groups.contains(&user.id)
                    }),
                    "unaffiliated" => Box::new(move |user: &SimUser| !in_groups.contains(&user.id)),
                    "suspended" => Box::new(|user: &SimUser| user.suspended()),
                    "deleted" => Box::new(|_: &SimUser| false),
                    _ => return Ok(invalid_criteria()),
                }
            }
            // The simulator holds no custom field values: such filters match nobody.
            (field, "eq" | "exact") if field.starts_with("cf_") => Box::new(|_: &SimUser| false),
            // Notably: there is no email filter.
            _ => return Ok(invalid_criteria()),
        };
        users.retain(|user| keep(user));
    }
    let items = users.into_iter().map(render_member).collect();
    Ok(page_of(items, &paging))
}

async fn users_create(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Reply {
    let fields = json_body(&headers, &body).and_then(|body| user_fields(&body, true))?;
    let now = shared.now();
    let mut state = shared.lock();
    if let Some(external_id) = fields.get("externalId").and_then(Value::as_str) {
        if state.external_id_taken(external_id, None) {
            return Ok(brivo_error(
                StatusCode::BAD_REQUEST,
                "External id is already in use",
            ));
        }
    }
    let id = state.new_id();
    let user = SimUser {
        id,
        fields,
        created: now,
        updated: now,
    };
    // rec-03: 200, not 201, and no customFields in the create response.
    let rendered = render_user(&user, false);
    state.users.insert(id, user);
    Ok(ok_json(&rendered))
}

async fn user_get(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    match parse_id(&id).and_then(|id| state.users.get(&id)) {
        Some(user) => ok_json(&render_user(user, true)),
        None => user_not_found(),
    }
}

/// PUT replaces the user: optional attributes not in the body are removed (documented). PATCH
/// changes only the attributes sent; `null` removes one.
async fn user_update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    update_user(&shared, &id, &headers, &body, method == Method::PUT)
}

fn update_user(
    shared: &Shared,
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
    replace: bool,
) -> Reply {
    let Some(id) = parse_id(id).filter(|id| shared.lock().users.contains_key(id)) else {
        return Ok(user_not_found());
    };
    let body = json_body(headers, body)?;
    let fields = user_fields(&body, replace)?;
    let now = shared.now();
    let mut state = shared.lock();
    if let Some(external_id) = fields.get("externalId").and_then(Value::as_str) {
        if state.external_id_taken(external_id, Some(id)) {
            return Ok(brivo_error(
                StatusCode::BAD_REQUEST,
                "External id is already in use",
            ));
        }
    }
    let Some(user) = state.users.get_mut(&id) else {
        return Ok(user_not_found());
    };
    if replace {
        user.fields = fields;
    } else {
        let removed: Vec<String> = body
            .as_object()
            .map(|input| {
                input
                    .iter()
                    .filter(|(_, value)| value.is_null())
                    .map(|(key, _)| key.clone())
                    .filter(|key| key != "firstName" && key != "lastName")
                    .collect()
            })
            .unwrap_or_default();
        for key in removed {
            user.fields.remove(&key);
        }
        user.fields.extend(fields);
    }
    user.updated = now;
    Ok(ok_json(&render_user(user, true)))
}

async fn user_delete(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let mut state = shared.lock();
    let Some(id) = parse_id(&id).filter(|id| state.users.contains_key(id)) else {
        return user_not_found();
    };
    state.users.remove(&id);
    for group in state.groups.values_mut() {
        group.members.remove(&id);
    }
    no_content()
}

async fn user_by_external(
    State(shared): State<Arc<Shared>>,
    Path(external_id): Path<String>,
) -> Response {
    let state = shared.lock();
    let found = state.users.values().find(|user| {
        user.fields.get("externalId").and_then(Value::as_str) == Some(external_id.as_str())
    });
    match found {
        Some(user) => ok_json(&render_user(user, true)),
        None => user_not_found(),
    }
}

/// A sub-resource list: `{data, count}` only, even when `offset`/`pageSize` are sent (rec-17).
async fn user_groups(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    let Some(id) = parse_id(&id).filter(|id| state.users.contains_key(id)) else {
        return user_not_found();
    };
    let groups: Vec<Value> = state
        .groups_of(id)
        .into_iter()
        .map(render_group_summary)
        .collect();
    ok_json(&json!({"data": groups, "count": groups.len()}))
}

// ---------------------------------------------------------------------------------------------
// Digital invitations (mobile passes)

fn parse_bool_param(pairs: &Query, key: &str) -> Option<bool> {
    match pairs.first(key)? {
        value if value.eq_ignore_ascii_case("true") => Some(true),
        value if value.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

async fn invitations_create(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = Query::parse(query.as_deref());
    let now = shared.now();
    let mut state = shared.lock();
    let Some(user) = parse_id(&id).and_then(|id| state.users.get(&id)) else {
        return user_not_found();
    };
    let user_id = user.id;
    let email = user.emails().into_iter().next();
    // All three parameters are marked required in the reference.
    let (Some(send_email), Some(nfc_enabled), Some(_language)) = (
        parse_bool_param(&pairs, "sendInvitationEmail"),
        parse_bool_param(&pairs, "nfcEnabled"),
        pairs
            .first("language")
            .filter(|language| !language.is_empty()),
    ) else {
        return invalid_criteria();
    };
    let Some(email) = email else {
        return brivo_error(
            StatusCode::BAD_REQUEST,
            "User must have an email address to receive a digital invitation",
        );
    };
    if state
        .invitations
        .iter()
        .any(|invitation| invitation.user_id == user_id && invitation.status == "PENDING")
    {
        return brivo_error(StatusCode::CONFLICT, wire::PENDING_INVITATION);
    }
    match state.passes_available {
        Some(0) => return brivo_error(StatusCode::PRECONDITION_FAILED, wire::NO_PASSES_LEFT),
        Some(left) => state.passes_available = Some(left - 1),
        None => {}
    }
    let invitation = SimInvitation {
        id: state.new_id(),
        user_id,
        reference_id: email.clone(),
        credential_id: state.new_id(),
        access_code: random_hex(4),
        created: now,
        expiration: now + chrono::Duration::days(INVITATION_LIFETIME_DAYS),
        status: "PENDING",
        nfc_enabled,
        send_email,
    };
    let rendered = render_invitation(&invitation);
    state.invitations.push(invitation);
    if send_email {
        state.emails.push(SentEmail {
            to: email,
            subject: "Your Brivo Mobile Pass invitation".to_owned(),
        });
    }
    ok_json(&rendered)
}

async fn invitations_list(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    let (paging, terms) = list_request(query.as_deref())?;
    // Documented default: pending only.
    let mut status = "PENDING".to_owned();
    for term in &terms {
        if term.field != "status" || term.op != "eq" {
            return Ok(invalid_criteria());
        }
        status = term.value.to_ascii_uppercase();
        if !matches!(
            status.as_str(),
            "PENDING" | "REDEEMED" | "EXPIRED" | "CANCELLED" | "ALL"
        ) {
            return Ok(brivo_error(
                StatusCode::BAD_REQUEST,
                "Invalid status provided",
            ));
        }
    }
    let state = shared.lock();
    let Some(user_id) = parse_id(&id).filter(|id| state.users.contains_key(id)) else {
        return Ok(user_not_found());
    };
    let items = state
        .invitations
        .iter()
        .filter(|invitation| invitation.user_id == user_id)
        .filter(|invitation| status == "ALL" || invitation.status == status)
        .map(render_invitation)
        .collect();
    Ok(page_of(items, &paging))
}

// ---------------------------------------------------------------------------------------------
// Groups

async fn groups_list(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Reply {
    let (paging, terms) = list_request(query.as_deref())?;
    let mut needles = Vec::new();
    for term in terms {
        if term.field != "name" || term.op != "eq" {
            return Ok(invalid_criteria());
        }
        needles.push(term.value.to_lowercase());
    }
    let state = shared.lock();
    let items = state
        .groups
        .values()
        .filter(|group| {
            let name = group.name.to_lowercase();
            needles.iter().all(|needle| name.contains(needle.as_str()))
        })
        .map(render_group_summary)
        .collect();
    Ok(page_of(items, &paging))
}

async fn group_get(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let state = shared.lock();
    match parse_id(&id).and_then(|id| state.groups.get(&id)) {
        Some(group) => ok_json(&json!({
            "id": group.id,
            "name": group.name,
            "keypadUnlock": false,
            "immuneToAntipassback": false,
        })),
        None => group_not_found(),
    }
}

async fn group_members(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Reply {
    let pairs = Query::parse(query.as_deref());
    let paging = paging(&pairs)?;
    let state = shared.lock();
    let Some(group) = parse_id(&id).and_then(|id| state.groups.get(&id)) else {
        return Ok(group_not_found());
    };
    let mut members: Vec<&SimUser> = group
        .members
        .iter()
        .filter_map(|member| state.users.get(member))
        .collect();
    members.sort_by_key(|user| user.sort_key());
    Ok(page_of(
        members.into_iter().map(render_member).collect(),
        &paging,
    ))
}

fn membership_ids(state: &SimState, group: &str, user: &str) -> Result<(u64, u64), Rejection> {
    let group = parse_id(group)
        .filter(|id| state.groups.contains_key(id))
        .ok_or_else(|| Rejection::new(StatusCode::NOT_FOUND, UNKNOWN_GROUP))?;
    let user = parse_id(user)
        .filter(|id| state.users.contains_key(id))
        .ok_or_else(|| Rejection::new(StatusCode::NOT_FOUND, USER_NOT_FOUND))?;
    Ok((group, user))
}

/// `PUT /groups/{g}/users/{u}` → 204; a member already in the group stays (204); a 17th group → 400.
async fn membership_add(
    State(shared): State<Arc<Shared>>,
    Path((group, user)): Path<(String, String)>,
) -> Reply {
    let mut state = shared.lock();
    let (group, user) = membership_ids(&state, &group, &user)?;
    let current = state.groups_of(user);
    if current.iter().any(|member_of| member_of.id == group) {
        return Ok(no_content());
    }
    if current.len() >= MAX_GROUPS_PER_USER {
        return Ok(brivo_error(
            StatusCode::BAD_REQUEST,
            wire::GROUP_CAP_MESSAGE,
        ));
    }
    if let Some(group) = state.groups.get_mut(&group) {
        group.members.insert(user);
    }
    Ok(no_content())
}

/// `DELETE /groups/{g}/users/{u}` → 204; not a member → 404.
async fn membership_remove(
    State(shared): State<Arc<Shared>>,
    Path((group, user)): Path<(String, String)>,
) -> Reply {
    let mut state = shared.lock();
    let (group, user) = membership_ids(&state, &group, &user)?;
    let removed = state
        .groups
        .get_mut(&group)
        .is_some_and(|group| group.members.remove(&user));
    if removed {
        Ok(no_content())
    } else {
        Ok(brivo_error(StatusCode::NOT_FOUND, wire::NOT_A_MEMBER))
    }
}
