//! In-process essensys Platform simulator (axum) of OUR DESIGNED contract (see the `essensys` module
//! docs): login, sites, floors, spaces, occupiers, contracts, users, Wi-Fi invitations and bookings
//! with cursor paging, strict validation, fault injection, and a Rust handle for tests and the
//! sandbox (seeding, reading back, hand edits in essensys, tap-to-book at a door, write counters).
//!
//! Strictness: unknown or missing fields and bad values → 422 `validation_failed`; unknown ids → 404
//! `not_found`; an email used anywhere on the Platform → 409 `email_taken`; a repeated `externalRef`
//! → 409 `external_ref_taken`; a second standard contract → 409 `contract_exists`; an overlapping
//! booking → 409 `space_unavailable`; unknown query parameters → 422. Lists are ordered by id
//! (ids grow with creation), so cursors (an offset, opaque to clients) are stable while appending.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::Secret;
use crate::sandbox::faults::Faults;
use crate::sandbox::kit;
use crate::sandbox::kit::auth::{self, TokenState, Tokens};
use crate::sandbox::kit::ids::{random_hex, Sequence};
use crate::sandbox::kit::journal::Journal;
use crate::sandbox::kit::paging::{Query, Window};
use crate::sandbox::kit::{Login, SimClock, TokenControls};
use crate::vendors::essensys::client::{EssensysConfig, EssensysError, MAX_PAGE_SIZE};
use crate::vendors::essensys::model::{
    tap_to_book_slot, Booking, BookingSource, BookingStatus, BookingUpdate, Contract, ContractKind,
    ContractUpdate, Floor, FloorUpdate, InvitationStatus, NewBooking, NewContract, NewFloor,
    NewOccupier, NewSpace, NewUser, Occupier, OccupierKind, OccupierUpdate, Site, SiteService,
    Space, SpaceUpdate, User, UserUpdate, WifiInvitation,
};

const DEFAULT_PAGE: usize = 50;

/// Why the simulator could not start or a handle call was refused.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("cannot bind the essensys simulator to 127.0.0.1:0: {0}")]
    Bind(#[from] std::io::Error),
    #[error("essensys simulator: {0}")]
    Seed(String),
}

/// Start-up options. `Default`: generated credentials, 1 h tokens, the wall clock.
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// The integration user `POST /api/auth/login` accepts.
    pub login: Login,
    pub token_lifetime: Duration,
    pub faults: Faults,
    /// "Now" for token expiry and `createdAt`/`updatedAt` stamps.
    pub clock: SimClock,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            login: Login::new(
                "integration@operator.example",
                format!("sim-{}", random_hex(16)),
            ),
            token_lifetime: Duration::from_secs(3600),
            faults: Faults::new(),
            clock: SimClock::default(),
        }
    }
}

/// Control surface of a running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SimulatorHandle {
    /// The "Platform URL": `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The integration user it accepts, as its options set it.
    pub login: Login,
    sim: kit::Running<SimulatorOptions, SimState>,
}

/// Entities whose API writes are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    Floor,
    Space,
    Occupier,
    Contract,
    User,
    Booking,
}

impl Entity {
    /// The path segment of the entity's collection (also its kind in the write journal).
    fn collection(self) -> &'static str {
        match self {
            Self::Floor => "floors",
            Self::Space => "spaces",
            Self::Occupier => "occupiers",
            Self::Contract => "contracts",
            Self::User => "users",
            Self::Booking => "bookings",
        }
    }

    fn from_collection(collection: &str) -> Option<Self> {
        Some(match collection {
            "floors" => Self::Floor,
            "spaces" => Self::Space,
            "occupiers" => Self::Occupier,
            "contracts" => Self::Contract,
            "users" => Self::User,
            "bookings" => Self::Booking,
            _ => return None,
        })
    }
}

/// A Wi-Fi invitation the Platform sent (once per user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    pub site_id: String,
    pub user_id: String,
    pub email: String,
    pub sent_at: DateTime<Utc>,
}

/// Why a tap at a door did not create a booking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapRefusal {
    #[error("no space {0}")]
    UnknownSpace(String),
    #[error("the site of space {0} does not offer elumo")]
    NoElumo(String),
    #[error("space {0} is not bookable")]
    NotBookable(String),
    #[error("space {space_id} is already booked ({booking_id}) in the tapped slot")]
    Occupied {
        space_id: String,
        booking_id: String,
    },
}

/// A site to seed: floors with their spaces, and occupiers.
#[derive(Debug, Clone, Default)]
pub struct SiteSeed {
    pub name: String,
    pub services: Vec<SiteService>,
    pub floors: Vec<FloorSeed>,
    pub occupiers: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FloorSeed {
    pub name: String,
    /// Space name and whether it is bookable.
    pub spaces: Vec<(String, bool)>,
}

#[derive(Default)]
struct SimState {
    sites: BTreeMap<String, Site>,
    floors: BTreeMap<String, Floor>,
    spaces: BTreeMap<String, Space>,
    occupiers: BTreeMap<String, Occupier>,
    contracts: BTreeMap<String, Contract>,
    users: BTreeMap<String, User>,
    bookings: BTreeMap<String, Booking>,
    tokens: Tokens,
    last_token: Option<Secret>,
    logins: u64,
    ids: Sequence,
    /// Successful API writes, kind = the entity's collection.
    writes: Journal,
    invitations: Vec<InvitationRecord>,
}

impl SimState {
    /// `<prefix>_<counter>`: ids sort by creation.
    fn new_id(&mut self, prefix: &str) -> String {
        format!("{prefix}_{:08}", self.ids.next_id())
    }

    fn occupier_is_of_site(&self, occupier: &Occupier, site_id: &str) -> bool {
        occupier.site_id == site_id
            || self
                .contracts
                .values()
                .any(|c| c.occupier_id == occupier.id && c.site_id == site_id)
    }

    fn user_is_of_site(&self, user: &User, site_id: &str) -> bool {
        self.occupiers
            .get(&user.occupier_id)
            .is_some_and(|occupier| self.occupier_is_of_site(occupier, site_id))
    }

    fn email_owner(&self, email: &str) -> Option<&User> {
        self.users
            .values()
            .find(|user| user.email.eq_ignore_ascii_case(email))
    }

    /// A confirmed booking of `space_id` overlapping `[start, end)`, other than `except`.
    fn overlapping_booking(
        &self,
        space_id: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        except: Option<&str>,
    ) -> Option<&Booking> {
        self.bookings.values().find(|b| {
            b.space_id == space_id
                && b.status == BookingStatus::Confirmed
                && Some(b.id.as_str()) != except
                && b.start < end
                && start < b.end
        })
    }

    fn count_write(&mut self, entity: Entity) {
        self.writes.record(entity.collection());
    }
}

type Shared = kit::Shared<SimulatorOptions, SimState>;

/// Entry point: `Simulator::start(options)`.
pub struct Simulator;

impl Simulator {
    /// Starts on 127.0.0.1 with an ephemeral port.
    pub async fn start(options: SimulatorOptions) -> Result<SimulatorHandle, SimulatorError> {
        let state = SimState {
            tokens: Tokens::new(options.token_lifetime),
            ..SimState::default()
        };
        let shared = Shared::new(options.clone(), options.clock.clone(), state);
        let sim = kit::Running::start("essensys", shared, router, options.faults.clone()).await?;
        Ok(SimulatorHandle {
            base_url: sim.base_url().to_owned(),
            login: options.login,
            sim,
        })
    }
}

impl SimulatorHandle {
    /// A client configuration pointing at this simulator with its credentials.
    pub fn client_config(&self) -> Result<EssensysConfig, EssensysError> {
        EssensysConfig::new(
            &self.base_url,
            &self.login.username,
            self.login.password.clone(),
        )
    }

    /// The fault injection and request counters wrapped around this simulator.
    pub fn faults(&self) -> &Faults {
        self.sim.faults()
    }

    // ----- seeding ---------------------------------------------------------------------------

    pub fn add_site(&self, name: &str, services: &[SiteService]) -> Site {
        let mut state = self.sim.lock();
        let site = Site {
            id: state.new_id("site"),
            name: name.to_owned(),
            services: services.to_vec(),
            time_zone: Some("Europe/London".to_owned()),
        };
        state.sites.insert(site.id.clone(), site.clone());
        site
    }

    pub fn add_floor(&self, site_id: &str, name: &str) -> Result<Floor, SimulatorError> {
        let mut state = self.sim.lock();
        require_seed(state.sites.contains_key(site_id), "site", site_id)?;
        let floor = Floor {
            id: state.new_id("flr"),
            site_id: site_id.to_owned(),
            name: name.to_owned(),
            external_ref: None,
        };
        state.floors.insert(floor.id.clone(), floor.clone());
        Ok(floor)
    }

    pub fn add_space(
        &self,
        site_id: &str,
        floor_id: Option<&str>,
        name: &str,
        bookable: bool,
    ) -> Result<Space, SimulatorError> {
        let mut state = self.sim.lock();
        require_seed(state.sites.contains_key(site_id), "site", site_id)?;
        if let Some(floor_id) = floor_id {
            let on_site = state
                .floors
                .get(floor_id)
                .is_some_and(|f| f.site_id == site_id);
            require_seed(on_site, "floor at this site", floor_id)?;
        }
        let space = Space {
            id: state.new_id("spc"),
            site_id: site_id.to_owned(),
            floor_id: floor_id.map(str::to_owned),
            name: name.to_owned(),
            bookable,
            capacity: None,
            external_ref: None,
        };
        state.spaces.insert(space.id.clone(), space.clone());
        Ok(space)
    }

    pub fn add_occupier(
        &self,
        site_id: &str,
        name: &str,
        kind: OccupierKind,
    ) -> Result<Occupier, SimulatorError> {
        let mut state = self.sim.lock();
        require_seed(state.sites.contains_key(site_id), "site", site_id)?;
        let occupier = Occupier {
            id: state.new_id("occ"),
            site_id: site_id.to_owned(),
            name: name.to_owned(),
            kind,
            email: None,
            external_ref: None,
        };
        state
            .occupiers
            .insert(occupier.id.clone(), occupier.clone());
        Ok(occupier)
    }

    /// Adds a user by hand (not counted as an API write). The email must be unused.
    pub fn add_user(
        &self,
        occupier_id: &str,
        email: &str,
        first_name: &str,
        mobile: Option<&str>,
    ) -> Result<User, SimulatorError> {
        let mut state = self.sim.lock();
        require_seed(
            state.occupiers.contains_key(occupier_id),
            "occupier",
            occupier_id,
        )?;
        if state.email_owner(email).is_some() {
            return Err(SimulatorError::Seed(format!(
                "email {email} is already used"
            )));
        }
        let user = User {
            id: state.new_id("usr"),
            occupier_id: occupier_id.to_owned(),
            email: email.to_owned(),
            first_name: first_name.to_owned(),
            last_name: String::new(),
            mobile: mobile.map(str::to_owned),
            external_ref: None,
            wifi_invitation_sent_at: None,
        };
        state.users.insert(user.id.clone(), user.clone());
        Ok(user)
    }

    /// Seeds a site with floors, spaces and occupiers (all empty lists: an empty site).
    pub fn seed_site(&self, seed: &SiteSeed) -> Result<Site, SimulatorError> {
        let site = self.add_site(&seed.name, &seed.services);
        for floor_seed in &seed.floors {
            let floor = self.add_floor(&site.id, &floor_seed.name)?;
            for (name, bookable) in &floor_seed.spaces {
                self.add_space(&site.id, Some(&floor.id), name, *bookable)?;
            }
        }
        for name in &seed.occupiers {
            self.add_occupier(&site.id, name, OccupierKind::Company)?;
        }
        Ok(site)
    }

    // ----- reading back ----------------------------------------------------------------------

    pub fn sites(&self) -> Vec<Site> {
        self.sim.lock().sites.values().cloned().collect()
    }

    pub fn floors(&self, site_id: &str) -> Vec<Floor> {
        let state = self.sim.lock();
        state
            .floors
            .values()
            .filter(|f| f.site_id == site_id)
            .cloned()
            .collect()
    }

    pub fn spaces(&self, site_id: &str) -> Vec<Space> {
        let state = self.sim.lock();
        state
            .spaces
            .values()
            .filter(|s| s.site_id == site_id)
            .cloned()
            .collect()
    }

    /// Occupiers of the site (home site or a contract there).
    pub fn occupiers(&self, site_id: &str) -> Vec<Occupier> {
        let state = self.sim.lock();
        state
            .occupiers
            .values()
            .filter(|o| state.occupier_is_of_site(o, site_id))
            .cloned()
            .collect()
    }

    pub fn contracts(&self, site_id: &str) -> Vec<Contract> {
        let state = self.sim.lock();
        state
            .contracts
            .values()
            .filter(|c| c.site_id == site_id)
            .cloned()
            .collect()
    }

    /// Every user on the Platform.
    pub fn users(&self) -> Vec<User> {
        self.sim.lock().users.values().cloned().collect()
    }

    pub fn bookings(&self, site_id: &str) -> Vec<Booking> {
        let state = self.sim.lock();
        state
            .bookings
            .values()
            .filter(|b| b.site_id == site_id)
            .cloned()
            .collect()
    }

    /// Successful API writes (create, update, cancel) per entity; hand edits are not counted.
    pub fn writes(&self, entity: Entity) -> u64 {
        self.sim.lock().writes.count(entity.collection())
    }

    /// Wi-Fi invitations actually sent, in order (at most one per user).
    pub fn wifi_invitations(&self) -> Vec<InvitationRecord> {
        self.sim.lock().invitations.clone()
    }

    // ----- hand edits in essensys (drift) ------------------------------------------------------

    /// Someone renames a space in the essensys UI.
    pub fn rename_space(&self, space_id: &str, name: &str) -> Result<Space, SimulatorError> {
        let mut state = self.sim.lock();
        let space = state
            .spaces
            .get_mut(space_id)
            .ok_or_else(|| SimulatorError::Seed(format!("no space {space_id}")))?;
        space.name = name.to_owned();
        Ok(space.clone())
    }

    /// Someone changes (or clears) a user's mobile number in the essensys UI.
    pub fn set_user_mobile(
        &self,
        user_id: &str,
        mobile: Option<&str>,
    ) -> Result<User, SimulatorError> {
        let mut state = self.sim.lock();
        let user = state
            .users
            .get_mut(user_id)
            .ok_or_else(|| SimulatorError::Seed(format!("no user {user_id}")))?;
        user.mobile = mobile.map(str::to_owned);
        Ok(user.clone())
    }

    // ----- elumo devices -----------------------------------------------------------------------

    /// A tap on the elumo door of `space_id` at `at`: creates a `tap_to_book` booking for the slot
    /// [`tap_to_book_slot`] gives, if the site offers elumo and the space is bookable and free.
    pub fn tap_to_book(
        &self,
        space_id: &str,
        user_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Booking, TapRefusal> {
        let mut state = self.sim.lock();
        let space = state
            .spaces
            .get(space_id)
            .cloned()
            .ok_or_else(|| TapRefusal::UnknownSpace(space_id.to_owned()))?;
        let elumo = state
            .sites
            .get(&space.site_id)
            .is_some_and(|site| site.offers(SiteService::Elumo));
        if !elumo {
            return Err(TapRefusal::NoElumo(space_id.to_owned()));
        }
        if !space.bookable {
            return Err(TapRefusal::NotBookable(space_id.to_owned()));
        }
        let (start, end) = tap_to_book_slot(at);
        if let Some(existing) = state.overlapping_booking(space_id, start, end, None) {
            return Err(TapRefusal::Occupied {
                space_id: space_id.to_owned(),
                booking_id: existing.id.clone(),
            });
        }
        let occupier_id = user_id
            .and_then(|id| state.users.get(id))
            .map(|user| user.occupier_id.clone());
        let booking = Booking {
            id: state.new_id("bkg"),
            site_id: space.site_id,
            space_id: space_id.to_owned(),
            user_id: user_id.map(str::to_owned),
            occupier_id,
            start,
            end,
            source: BookingSource::TapToBook,
            status: BookingStatus::Confirmed,
            external_ref: None,
            created_at: at,
            updated_at: at,
        };
        state.bookings.insert(booking.id.clone(), booking.clone());
        Ok(booking)
    }

    // ----- auth --------------------------------------------------------------------------------

    /// Successful logins so far.
    pub fn login_count(&self) -> u64 {
        self.sim.lock().logins
    }

    /// The last token issued (tests check it never shows up in errors).
    pub fn last_issued_token(&self) -> Option<Secret> {
        self.sim.lock().last_token.clone()
    }
}

fn require_seed(ok: bool, what: &str, id: &str) -> Result<(), SimulatorError> {
    if ok {
        Ok(())
    } else {
        Err(SimulatorError::Seed(format!("no {what} {id}")))
    }
}

// ---------------------------------------------------------------------------------------------------
// HTTP surface

/// An error reply in the designed shape `{"error": {"code", "message"}}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
    }

    fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} {id} not found"),
        )
    }

    fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;
type Sim = State<Arc<Shared>>;

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/v1/sites", get(list_sites))
        .route("/api/v1/users", get(find_users))
        .route(
            "/api/v1/sites/{site}/{collection}",
            get(list_items).post(create_item),
        )
        .route("/api/v1/sites/{site}/{collection}/{id}", patch(update_item))
        .route(
            "/api/v1/sites/{site}/users/{id}/wifi-invitation",
            post(send_invitation),
        )
        .route(
            "/api/v1/sites/{site}/bookings/{id}/cancel",
            post(cancel_booking),
        )
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .with_state(shared)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

/// Token lifetime and revocation (no refresh tokens here) ([`TokenControls`]).
impl TokenControls for SimulatorHandle {
    fn change_tokens<R>(&self, change: impl FnOnce(&mut Tokens) -> R) -> R {
        change(&mut self.sim.lock().tokens)
    }
}

async fn login(State(shared): Sim, body: Bytes) -> ApiResult {
    let request: LoginRequest = parse_body(&body)?;
    let password_ok = request.password == shared.login.password.expose();
    if request.username != shared.login.username || !password_ok {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "username or password is incorrect",
        ));
    }
    let now = shared.now();
    let mut state = shared.lock();
    let token = format!("ess_{}", random_hex(24));
    let lifetime = state.tokens.lifetime();
    state.tokens.issue(token.clone(), now);
    state.last_token = Some(Secret::new(token.clone()));
    state.logins += 1;
    Ok(Json(json!({
        "accessToken": token,
        "tokenType": "Bearer",
        "expiresIn": lifetime.as_secs(),
    }))
    .into_response())
}

fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = auth::credentials(headers, "Bearer").ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing bearer token",
        )
    })?;
    let now = shared.now();
    let token_state = shared.lock().tokens.check(token, now);
    match token_state {
        TokenState::Valid => Ok(()),
        TokenState::Expired => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "the access token has expired; log in again",
        )),
        TokenState::Unknown => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown or revoked access token",
        )),
    }
}

fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid(format!("invalid body: {error}")))
}

fn reject_body(body: &Bytes) -> Result<(), ApiError> {
    let blank = body.iter().all(u8::is_ascii_whitespace);
    if blank || body.as_ref() == b"{}" {
        Ok(())
    } else {
        Err(ApiError::invalid("this endpoint takes no body"))
    }
}

/// Query parameters; anything not in `allowed` (besides `limit` and `cursor`) is a 422.
fn parse_query(raw: Option<String>, allowed: &[&str]) -> Result<Query, ApiError> {
    let params = Query::parse(raw.as_deref());
    for (key, _) in params.pairs() {
        if key != "limit" && key != "cursor" && !allowed.contains(&key) {
            return Err(ApiError::invalid(format!("unknown query parameter {key}")));
        }
    }
    Ok(params)
}

fn parse_time(params: &Query, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    params
        .get(key)
        .map(|value| {
            DateTime::parse_from_rfc3339(value)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| ApiError::invalid(format!("{key} must be an ISO-8601 timestamp")))
        })
        .transpose()
}

/// One page of `items` in the designed envelope.
fn paginate<T: Serialize>(items: Vec<T>, params: &Query) -> ApiResult {
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_PAGE_SIZE as usize).contains(&limit) => limit,
            _ => {
                return Err(ApiError::invalid(format!(
                    "limit must be an integer in 1..={MAX_PAGE_SIZE}"
                )))
            }
        },
    };
    let offset = match params.get("cursor") {
        None => 0,
        Some(cursor) => cursor
            .strip_prefix("o")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|offset| *offset <= items.len())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_cursor",
                    "unknown cursor",
                )
            })?,
    };
    let page = Window::new(offset, limit).slice(items);
    let next_cursor = page.next.map(|end| format!("o{end}"));
    Ok(Json(json!({"items": page.items, "nextCursor": next_cursor})).into_response())
}

fn created<T: Serialize>(value: &T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

fn ok<T: Serialize>(value: &T) -> Response {
    Json(value).into_response()
}

async fn list_sites(State(shared): Sim, headers: HeaderMap, RawQuery(raw): RawQuery) -> ApiResult {
    authorize(&shared, &headers)?;
    let params = parse_query(raw, &[])?;
    let sites: Vec<Site> = shared.lock().sites.values().cloned().collect();
    paginate(sites, &params)
}

async fn find_users(State(shared): Sim, headers: HeaderMap, RawQuery(raw): RawQuery) -> ApiResult {
    authorize(&shared, &headers)?;
    let params = parse_query(raw, &["email", "externalRef"])?;
    let state = shared.lock();
    let users: Vec<User> = state
        .users
        .values()
        .filter(|u| {
            params
                .get("email")
                .is_none_or(|e| u.email.eq_ignore_ascii_case(e))
        })
        .filter(|u| {
            params
                .get("externalRef")
                .is_none_or(|r| u.external_ref.as_deref() == Some(r))
        })
        .cloned()
        .collect();
    paginate(users, &params)
}

fn require_site(state: &SimState, site_id: &str) -> Result<(), ApiError> {
    if state.sites.contains_key(site_id) {
        Ok(())
    } else {
        Err(ApiError::not_found("site", site_id))
    }
}

fn matches_ref(external_ref: &Option<String>, params: &Query) -> bool {
    params
        .get("externalRef")
        .is_none_or(|wanted| external_ref.as_deref() == Some(wanted))
}

/// One page of a site's collection: `in_site` gives the `externalRef` of each item of the site
/// (`None` for items elsewhere), which the `externalRef` filter is matched against.
fn list_scoped<'a, T: Serialize + 'a>(
    raw: Option<String>,
    items: impl Iterator<Item = &'a T>,
    in_site: impl Fn(&T) -> Option<&Option<String>>,
) -> ApiResult {
    let params = parse_query(raw, &["externalRef"])?;
    let items: Vec<&T> = items
        .filter(|item| in_site(item).is_some_and(|held| matches_ref(held, &params)))
        .collect();
    paginate(items, &params)
}

async fn list_items(
    State(shared): Sim,
    headers: HeaderMap,
    Path((site_id, collection)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    authorize(&shared, &headers)?;
    let state = shared.lock();
    require_site(&state, &site_id)?;
    let site = site_id.as_str();
    match collection.as_str() {
        "floors" => list_scoped(raw, state.floors.values(), |f| {
            (f.site_id == site).then_some(&f.external_ref)
        }),
        "spaces" => list_scoped(raw, state.spaces.values(), |s| {
            (s.site_id == site).then_some(&s.external_ref)
        }),
        "occupiers" => list_scoped(raw, state.occupiers.values(), |o| {
            state
                .occupier_is_of_site(o, site)
                .then_some(&o.external_ref)
        }),
        "contracts" => list_scoped(raw, state.contracts.values(), |c| {
            (c.site_id == site).then_some(&c.external_ref)
        }),
        "users" => list_scoped(raw, state.users.values(), |u| {
            state.user_is_of_site(u, site).then_some(&u.external_ref)
        }),
        "bookings" => {
            let params = parse_query(
                raw,
                &["externalRef", "source", "createdSince", "from", "to"],
            )?;
            let source = match params.get("source") {
                None => None,
                Some("officernd") => Some(BookingSource::Officernd),
                Some("tap_to_book") => Some(BookingSource::TapToBook),
                Some(other) => {
                    return Err(ApiError::invalid(format!(
                        "source {other:?} is not one of officernd, tap_to_book"
                    )))
                }
            };
            let since = parse_time(&params, "createdSince")?;
            let window = match (parse_time(&params, "from")?, parse_time(&params, "to")?) {
                (Some(from), Some(to)) if from < to => Some((from, to)),
                (None, None) => None,
                _ => return Err(ApiError::invalid("from and to go together, from before to")),
            };
            let items: Vec<&Booking> = state
                .bookings
                .values()
                .filter(|b| b.site_id == site && matches_ref(&b.external_ref, &params))
                .filter(|b| source.is_none_or(|s| b.source == s))
                .filter(|b| since.is_none_or(|since| b.created_at >= since))
                .filter(|b| window.is_none_or(|(from, to)| b.start < to && from < b.end))
                .collect();
            paginate(items, &params)
        }
        other => Err(ApiError::not_found("collection", other)),
    }
}

fn non_empty(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        Err(ApiError::invalid(format!("{field} must not be empty")))
    } else {
        Ok(())
    }
}

fn valid_email(email: &str) -> Result<(), ApiError> {
    let ok = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(' ')
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "email {email:?} is not an email address"
        )))
    }
}

/// E.164: `+` and 8 to 15 digits.
fn valid_mobile(mobile: &str) -> Result<(), ApiError> {
    let digits = mobile.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "mobile {mobile:?} must be in E.164 form, e.g. +447700900123"
        )))
    }
}

/// `externalRef` must not be held by another object of the same collection and scope.
fn unique_ref<'a>(
    mut holders: impl Iterator<Item = (&'a String, &'a Option<String>)>,
    wanted: &Option<String>,
    except: Option<&str>,
) -> Result<(), ApiError> {
    let Some(wanted) = wanted else { return Ok(()) };
    non_empty("externalRef", wanted)?;
    match holders.find(|(id, held)| held.as_ref() == Some(wanted) && Some(id.as_str()) != except) {
        Some((id, _)) => Err(ApiError::conflict(
            "external_ref_taken",
            format!("externalRef {wanted} is already used by {id}"),
        )),
        None => Ok(()),
    }
}

fn require_floor(state: &SimState, site: &str, floor_id: &Option<String>) -> Result<(), ApiError> {
    match floor_id {
        Some(id) if state.floors.get(id).is_none_or(|f| f.site_id != site) => {
            Err(ApiError::not_found("floor", id))
        }
        _ => Ok(()),
    }
}

fn require_occupier_of_site(
    state: &SimState,
    site: &str,
    occupier_id: &str,
) -> Result<(), ApiError> {
    match state.occupiers.get(occupier_id) {
        Some(occupier) if state.occupier_is_of_site(occupier, site) => Ok(()),
        _ => Err(ApiError::not_found("occupier", occupier_id)),
    }
}

fn check_booking(
    state: &SimState,
    site: &str,
    space_id: &str,
    user_id: &Option<String>,
    occupier_id: &Option<String>,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    except: Option<&str>,
) -> Result<(), ApiError> {
    let space = state
        .spaces
        .get(space_id)
        .filter(|s| s.site_id == site)
        .ok_or_else(|| ApiError::not_found("space", space_id))?;
    if !space.bookable {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "space_not_bookable",
            format!("space {space_id} is not bookable"),
        ));
    }
    if start >= end {
        return Err(ApiError::invalid("start must be before end"));
    }
    if let Some(user_id) = user_id {
        if !state.users.contains_key(user_id) {
            return Err(ApiError::not_found("user", user_id));
        }
    }
    if let Some(occupier_id) = occupier_id {
        if !state.occupiers.contains_key(occupier_id) {
            return Err(ApiError::not_found("occupier", occupier_id));
        }
    }
    if let Some(other) = state.overlapping_booking(space_id, start, end, except) {
        return Err(ApiError::conflict(
            "space_unavailable",
            format!("space {space_id} is booked ({}) in that time", other.id),
        ));
    }
    Ok(())
}

async fn create_item(
    State(shared): Sim,
    headers: HeaderMap,
    Path((site_id, collection)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    authorize(&shared, &headers)?;
    let now = shared.now();
    let mut guard = shared.lock();
    let state = &mut *guard;
    require_site(state, &site_id)?;
    let site = site_id.clone();
    let entity = Entity::from_collection(&collection)
        .ok_or_else(|| ApiError::not_found("collection", &collection))?;
    let response = match entity {
        Entity::Floor => {
            let new: NewFloor = parse_body(&body)?;
            non_empty("name", &new.name)?;
            let scope = state.floors.values().filter(|f| f.site_id == site);
            unique_ref(
                scope.map(|f| (&f.id, &f.external_ref)),
                &new.external_ref,
                None,
            )?;
            let floor = Floor {
                id: state.new_id("flr"),
                site_id: site,
                name: new.name,
                external_ref: new.external_ref,
            };
            state.floors.insert(floor.id.clone(), floor.clone());
            created(&floor)
        }
        Entity::Space => {
            let new: NewSpace = parse_body(&body)?;
            non_empty("name", &new.name)?;
            require_floor(state, &site, &new.floor_id)?;
            let scope = state.spaces.values().filter(|s| s.site_id == site);
            unique_ref(
                scope.map(|s| (&s.id, &s.external_ref)),
                &new.external_ref,
                None,
            )?;
            let space = Space {
                id: state.new_id("spc"),
                site_id: site,
                floor_id: new.floor_id,
                name: new.name,
                bookable: new.bookable,
                capacity: new.capacity,
                external_ref: new.external_ref,
            };
            state.spaces.insert(space.id.clone(), space.clone());
            created(&space)
        }
        Entity::Occupier => {
            let new: NewOccupier = parse_body(&body)?;
            non_empty("name", &new.name)?;
            if let Some(email) = &new.email {
                valid_email(email)?;
            }
            let all = state.occupiers.values();
            unique_ref(
                all.map(|o| (&o.id, &o.external_ref)),
                &new.external_ref,
                None,
            )?;
            let occupier = Occupier {
                id: state.new_id("occ"),
                site_id: site,
                name: new.name,
                kind: new.kind,
                email: new.email,
                external_ref: new.external_ref,
            };
            state
                .occupiers
                .insert(occupier.id.clone(), occupier.clone());
            created(&occupier)
        }
        Entity::Contract => {
            let new: NewContract = parse_body(&body)?;
            if new.kind != ContractKind::Standard {
                return Err(ApiError::invalid("kind must be standard"));
            }
            if !state.occupiers.contains_key(&new.occupier_id) {
                return Err(ApiError::not_found("occupier", &new.occupier_id));
            }
            check_dates(new.start_date, new.end_date)?;
            let scope = state.contracts.values().filter(|c| c.site_id == site);
            unique_ref(
                scope.map(|c| (&c.id, &c.external_ref)),
                &new.external_ref,
                None,
            )?;
            if let Some(existing) = state.contracts.values().find(|c| {
                c.site_id == site
                    && c.occupier_id == new.occupier_id
                    && c.kind == ContractKind::Standard
            }) {
                return Err(ApiError::conflict(
                    "contract_exists",
                    format!(
                        "occupier {} already has standard contract {} at this site",
                        new.occupier_id, existing.id
                    ),
                ));
            }
            let contract = Contract {
                id: state.new_id("ctr"),
                site_id: site,
                occupier_id: new.occupier_id,
                kind: new.kind,
                start_date: new.start_date,
                end_date: new.end_date,
                external_ref: new.external_ref,
            };
            state
                .contracts
                .insert(contract.id.clone(), contract.clone());
            created(&contract)
        }
        Entity::User => {
            let new: NewUser = parse_body(&body)?;
            non_empty("firstName", &new.first_name)?;
            valid_email(&new.email)?;
            if let Some(mobile) = &new.mobile {
                valid_mobile(mobile)?;
            }
            require_occupier_of_site(state, &site, &new.occupier_id)?;
            if let Some(owner) = state.email_owner(&new.email) {
                return Err(ApiError::conflict(
                    "email_taken",
                    format!("email {} is already used by user {}", new.email, owner.id),
                ));
            }
            let all = state.users.values();
            unique_ref(
                all.map(|u| (&u.id, &u.external_ref)),
                &new.external_ref,
                None,
            )?;
            let user = User {
                id: state.new_id("usr"),
                occupier_id: new.occupier_id,
                email: new.email,
                first_name: new.first_name,
                last_name: new.last_name,
                mobile: new.mobile,
                external_ref: new.external_ref,
                wifi_invitation_sent_at: None,
            };
            state.users.insert(user.id.clone(), user.clone());
            created(&user)
        }
        Entity::Booking => {
            let new: NewBooking = parse_body(&body)?;
            check_booking(
                state,
                &site,
                &new.space_id,
                &new.user_id,
                &new.occupier_id,
                (new.start, new.end),
                None,
            )?;
            let scope = state.bookings.values().filter(|b| b.site_id == site);
            unique_ref(
                scope.map(|b| (&b.id, &b.external_ref)),
                &new.external_ref,
                None,
            )?;
            let booking = Booking {
                id: state.new_id("bkg"),
                site_id: site,
                space_id: new.space_id,
                user_id: new.user_id,
                occupier_id: new.occupier_id,
                start: new.start,
                end: new.end,
                source: BookingSource::Officernd,
                status: BookingStatus::Confirmed,
                external_ref: new.external_ref,
                created_at: now,
                updated_at: now,
            };
            state.bookings.insert(booking.id.clone(), booking.clone());
            created(&booking)
        }
    };
    state.count_write(entity);
    Ok(response)
}

fn check_dates(start: NaiveDate, end: Option<NaiveDate>) -> Result<(), ApiError> {
    match end {
        Some(end) if end < start => Err(ApiError::invalid("endDate must not be before startDate")),
        _ => Ok(()),
    }
}

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

async fn update_item(
    State(shared): Sim,
    headers: HeaderMap,
    Path((site_id, collection, id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    authorize(&shared, &headers)?;
    let now = shared.now();
    let mut guard = shared.lock();
    let state = &mut *guard;
    require_site(state, &site_id)?;
    let site = site_id.as_str();
    let entity = Entity::from_collection(&collection)
        .ok_or_else(|| ApiError::not_found("collection", &collection))?;
    let response = match entity {
        Entity::Floor => {
            let update: FloorUpdate = parse_body(&body)?;
            let mut floor = state
                .floors
                .get(&id)
                .filter(|f| f.site_id == site)
                .cloned()
                .ok_or_else(|| ApiError::not_found("floor", &id))?;
            if let Some(name) = &update.name {
                non_empty("name", name)?;
            }
            if update.external_ref.is_some() {
                let scope = state.floors.values().filter(|f| f.site_id == site);
                unique_ref(
                    scope.map(|f| (&f.id, &f.external_ref)),
                    &update.external_ref,
                    Some(&id),
                )?;
            }
            set(&mut floor.name, update.name);
            set(&mut floor.external_ref, update.external_ref.map(Some));
            state.floors.insert(id, floor.clone());
            ok(&floor)
        }
        Entity::Space => {
            let update: SpaceUpdate = parse_body(&body)?;
            let mut space = state
                .spaces
                .get(&id)
                .filter(|s| s.site_id == site)
                .cloned()
                .ok_or_else(|| ApiError::not_found("space", &id))?;
            if let Some(name) = &update.name {
                non_empty("name", name)?;
            }
            require_floor(state, site, &update.floor_id)?;
            if update.external_ref.is_some() {
                let scope = state.spaces.values().filter(|s| s.site_id == site);
                unique_ref(
                    scope.map(|s| (&s.id, &s.external_ref)),
                    &update.external_ref,
                    Some(&id),
                )?;
            }
            set(&mut space.floor_id, update.floor_id.map(Some));
            set(&mut space.name, update.name);
            set(&mut space.bookable, update.bookable);
            set(&mut space.capacity, update.capacity.map(Some));
            set(&mut space.external_ref, update.external_ref.map(Some));
            state.spaces.insert(id, space.clone());
            ok(&space)
        }
        Entity::Occupier => {
            let update: OccupierUpdate = parse_body(&body)?;
            let mut occupier = state
                .occupiers
                .get(&id)
                .filter(|o| state.occupier_is_of_site(o, site))
                .cloned()
                .ok_or_else(|| ApiError::not_found("occupier", &id))?;
            if let Some(name) = &update.name {
                non_empty("name", name)?;
            }
            if let Some(email) = &update.email {
                valid_email(email)?;
            }
            if update.external_ref.is_some() {
                let all = state.occupiers.values();
                unique_ref(
                    all.map(|o| (&o.id, &o.external_ref)),
                    &update.external_ref,
                    Some(&id),
                )?;
            }
            set(&mut occupier.name, update.name);
            set(&mut occupier.email, update.email.map(Some));
            set(&mut occupier.external_ref, update.external_ref.map(Some));
            state.occupiers.insert(id, occupier.clone());
            ok(&occupier)
        }
        Entity::Contract => {
            let update: ContractUpdate = parse_body(&body)?;
            let mut contract = state
                .contracts
                .get(&id)
                .filter(|c| c.site_id == site)
                .cloned()
                .ok_or_else(|| ApiError::not_found("contract", &id))?;
            if update.external_ref.is_some() {
                let scope = state.contracts.values().filter(|c| c.site_id == site);
                unique_ref(
                    scope.map(|c| (&c.id, &c.external_ref)),
                    &update.external_ref,
                    Some(&id),
                )?;
            }
            set(&mut contract.start_date, update.start_date);
            set(&mut contract.end_date, update.end_date.map(Some));
            set(&mut contract.external_ref, update.external_ref.map(Some));
            check_dates(contract.start_date, contract.end_date)?;
            state.contracts.insert(id, contract.clone());
            ok(&contract)
        }
        Entity::User => {
            let update: UserUpdate = parse_body(&body)?;
            let mut user = state
                .users
                .get(&id)
                .filter(|u| state.user_is_of_site(u, site))
                .cloned()
                .ok_or_else(|| ApiError::not_found("user", &id))?;
            if let Some(first_name) = &update.first_name {
                non_empty("firstName", first_name)?;
            }
            if let Some(mobile) = &update.mobile {
                valid_mobile(mobile)?;
            }
            if let Some(occupier_id) = &update.occupier_id {
                require_occupier_of_site(state, site, occupier_id)?;
            }
            if let Some(email) = &update.email {
                valid_email(email)?;
                if let Some(owner) = state.email_owner(email).filter(|owner| owner.id != id) {
                    return Err(ApiError::conflict(
                        "email_taken",
                        format!("email {email} is already used by user {}", owner.id),
                    ));
                }
            }
            if update.external_ref.is_some() {
                let all = state.users.values();
                unique_ref(
                    all.map(|u| (&u.id, &u.external_ref)),
                    &update.external_ref,
                    Some(&id),
                )?;
            }
            set(&mut user.occupier_id, update.occupier_id);
            set(&mut user.email, update.email);
            set(&mut user.first_name, update.first_name);
            set(&mut user.last_name, update.last_name);
            set(&mut user.mobile, update.mobile.map(Some));
            set(&mut user.external_ref, update.external_ref.map(Some));
            state.users.insert(id, user.clone());
            ok(&user)
        }
        Entity::Booking => {
            let update: BookingUpdate = parse_body(&body)?;
            let mut booking = state
                .bookings
                .get(&id)
                .filter(|b| b.site_id == site)
                .cloned()
                .ok_or_else(|| ApiError::not_found("booking", &id))?;
            if booking.status == BookingStatus::Cancelled {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "booking_cancelled",
                    format!("booking {id} is cancelled and cannot change"),
                ));
            }
            if update.external_ref.is_some() {
                let scope = state.bookings.values().filter(|b| b.site_id == site);
                unique_ref(
                    scope.map(|b| (&b.id, &b.external_ref)),
                    &update.external_ref,
                    Some(&id),
                )?;
            }
            set(&mut booking.space_id, update.space_id);
            set(&mut booking.user_id, update.user_id.map(Some));
            set(&mut booking.occupier_id, update.occupier_id.map(Some));
            set(&mut booking.start, update.start);
            set(&mut booking.end, update.end);
            set(&mut booking.external_ref, update.external_ref.map(Some));
            check_booking(
                state,
                site,
                &booking.space_id,
                &booking.user_id,
                &booking.occupier_id,
                (booking.start, booking.end),
                Some(&id),
            )?;
            booking.updated_at = now;
            state.bookings.insert(id, booking.clone());
            ok(&booking)
        }
    };
    state.count_write(entity);
    Ok(response)
}

async fn send_invitation(
    State(shared): Sim,
    headers: HeaderMap,
    Path((site_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    authorize(&shared, &headers)?;
    reject_body(&body)?;
    let now = shared.now();
    let mut guard = shared.lock();
    let state = &mut *guard;
    let site = state
        .sites
        .get(&site_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("site", &site_id))?;
    let user = state
        .users
        .get(&user_id)
        .filter(|u| state.user_is_of_site(u, &site_id))
        .cloned()
        .ok_or_else(|| ApiError::not_found("user", &user_id))?;
    if !site.offers(SiteService::Wifi) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "service_not_offered",
            format!("site {site_id} does not offer essensys Wi-Fi"),
        ));
    }
    if let Some(sent_at) = user.wifi_invitation_sent_at {
        let invitation = WifiInvitation {
            user_id,
            status: InvitationStatus::AlreadySent,
            sent_at,
        };
        return Ok(ok(&invitation));
    }
    if let Some(stored) = state.users.get_mut(&user_id) {
        stored.wifi_invitation_sent_at = Some(now);
    }
    state.invitations.push(InvitationRecord {
        site_id,
        user_id: user_id.clone(),
        email: user.email,
        sent_at: now,
    });
    let invitation = WifiInvitation {
        user_id,
        status: InvitationStatus::Sent,
        sent_at: now,
    };
    Ok(created(&invitation))
}

async fn cancel_booking(
    State(shared): Sim,
    headers: HeaderMap,
    Path((site_id, booking_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    authorize(&shared, &headers)?;
    reject_body(&body)?;
    let now = shared.now();
    let mut guard = shared.lock();
    let state = &mut *guard;
    require_site(state, &site_id)?;
    let booking = state
        .bookings
        .get_mut(&booking_id)
        .filter(|b| b.site_id == site_id)
        .ok_or_else(|| ApiError::not_found("booking", &booking_id))?;
    if booking.status != BookingStatus::Cancelled {
        booking.status = BookingStatus::Cancelled;
        booking.updated_at = now;
    }
    let reply = ok(&*booking);
    state.count_write(Entity::Booking);
    Ok(reply)
}

impl SimulatorHandle {
    /// Every stored object as JSON, keyed by collection (for sandbox snapshots and debugging).
    pub fn snapshot(&self) -> Value {
        let state = self.sim.lock();
        json!({
            "sites": state.sites.values().collect::<Vec<_>>(),
            "floors": state.floors.values().collect::<Vec<_>>(),
            "spaces": state.spaces.values().collect::<Vec<_>>(),
            "occupiers": state.occupiers.values().collect::<Vec<_>>(),
            "contracts": state.contracts.values().collect::<Vec<_>>(),
            "users": state.users.values().collect::<Vec<_>>(),
            "bookings": state.bookings.values().collect::<Vec<_>>(),
        })
    }
}
