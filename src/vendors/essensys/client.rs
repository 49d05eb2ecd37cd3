//! HTTP client for the essensys Platform over [`ResilientClient`]: login with Platform user
//! credentials (cached bearer token, refreshed before expiry and once on a 401), cursor paging to
//! completion, per-account rate limit, retries, and vendor error codes turned into specific errors.
//!
//! PROVISIONAL WIRE: every path, field and code used here is OUR DESIGN (see the `essensys` module
//! docs); essensys publishes no Platform API reference. Paths live in `EssensysClient::url`,
//! [`LOGIN_PATH`] and the [`EssensysApi`] impl; envelopes in `Page`, `LoginResponse` and
//! `VendorErrorBody` — the places to change when the real contract is known.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::model::{
    Booking, BookingFilter, BookingSource, BookingUpdate, Contract, ContractUpdate, Floor,
    FloorUpdate, NewBooking, NewContract, NewFloor, NewOccupier, NewSpace, NewUser, Occupier,
    OccupierUpdate, Site, Space, SpaceUpdate, User, UserUpdate, WifiInvitation,
};
use super::{system_clock, Clock, EssensysApi};
use crate::http::{
    decode_json, is_bearer_type, read_credential_reply, BearerAuth, BearerToken, BodyExcerpt,
    HttpError, Idempotency, Issued, RateLimiter, RefreshPolicy, Renewal, Renewed, ResilientClient,
    RetryPolicy, Secret, TokenCache, TokenSource,
};

/// Login path under the Platform URL (our design).
pub const LOGIN_PATH: [&str; 3] = ["api", "auth", "login"];
/// Prefix of every other path under the Platform URL (our design).
const API_PREFIX: [&str; 2] = ["api", "v1"];
/// Largest `limit` the designed API accepts.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Stops a server that keeps handing out new cursors (100 × 10 000 = one million objects).
const MAX_PAGES: usize = 10_000;

/// Connection settings for one essensys Platform tenant.
#[derive(Debug, Clone)]
pub struct EssensysConfig {
    /// The tenant's unique Platform URL (documented: "your unique elumo Platform URL").
    pub platform_url: Url,
    /// Platform user name (documented: "Platform user credentials").
    pub username: String,
    pub password: Secret,
    /// Client-side limit for this tenant. essensys publishes no numbers; 5/s is a cautious guess.
    pub requests_per_second: f64,
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
    /// `limit` per page, 1 ..= [`MAX_PAGE_SIZE`].
    pub page_size: u32,
    /// Tokens are replaced this long before they expire (capped at half the token lifetime).
    pub token_refresh_margin: Duration,
}

impl EssensysConfig {
    pub fn new(
        platform_url: &str,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Result<Self, EssensysError> {
        let platform_url = Url::parse(platform_url).map_err(|error| {
            EssensysError::Config(format!(
                "Platform URL {platform_url:?} is not a URL: {error}"
            ))
        })?;
        Ok(Self {
            platform_url,
            username: username.into(),
            password: password.into(),
            requests_per_second: 5.0,
            attempt_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            page_size: MAX_PAGE_SIZE,
            token_refresh_margin: Duration::from_secs(60),
        })
    }

    fn validate(&self) -> Result<(), EssensysError> {
        if self.platform_url.cannot_be_a_base()
            || !matches!(self.platform_url.scheme(), "http" | "https")
        {
            return Err(EssensysError::Config(format!(
                "Platform URL {} must be an http(s) base URL",
                self.platform_url
            )));
        }
        if self.username.trim().is_empty() || self.password.expose().is_empty() {
            return Err(EssensysError::Config(
                "Platform username or password is empty (use a Platform user with operator rights)"
                    .into(),
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(EssensysError::Config(format!(
                "page size {} is outside 1..={MAX_PAGE_SIZE}",
                self.page_size
            )));
        }
        Ok(())
    }
}

/// Failures of essensys Platform calls.
#[derive(Debug, thiserror::Error)]
pub enum EssensysError {
    #[error("invalid essensys configuration: {0}")]
    Config(String),
    /// The login endpoint refused or failed.
    #[error("essensys login as {username:?} failed: {source}; check the Platform URL and the Platform user's credentials")]
    Login {
        username: String,
        #[source]
        source: HttpError,
    },
    /// A fresh token was refused too: the Platform user lacks the rights for this call.
    #[error("essensys {operation}: access denied even after a fresh login; give the Platform user operator rights on this site")]
    Unauthorized { operation: String },
    /// A site, floor, space, occupier, user, contract or booking id is unknown to essensys.
    #[error(
        "essensys {operation}: not found; it may have been deleted in essensys, re-run the mapping"
    )]
    NotFound { operation: String },
    /// Emails are unique across the whole Platform.
    #[error("essensys {operation}: a user with email {email} already exists on the Platform (emails are unique across all sites); map the member to that user instead of creating another")]
    EmailTaken { operation: String, email: String },
    /// Another 409: `external_ref_taken`, `contract_exists`, `space_unavailable`, …
    #[error("essensys {operation}: conflict ({code}): {message}")]
    Conflict {
        operation: String,
        code: String,
        message: String,
    },
    /// 422 or another 4xx: the payload was refused (`validation_failed`, `service_not_offered`, …).
    #[error("essensys {operation}: rejected ({code}): {message}")]
    Rejected {
        operation: String,
        code: String,
        message: String,
    },
    /// Transport, 5xx, 429 or a malformed reply (see [`HttpError`]).
    #[error("essensys {operation}: {source}")]
    Http {
        operation: String,
        #[source]
        source: HttpError,
    },
}

impl EssensysError {
    /// True when the same call may succeed later without any change on our side.
    pub fn is_retryable_later(&self) -> bool {
        match self {
            Self::Http { source, .. } | Self::Login { source, .. } => source.is_retryable_later(),
            _ => false,
        }
    }

    /// The vendor's error code for conflicts and rejections.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::EmailTaken { .. } => Some("email_taken"),
            Self::Conflict { code, .. } | Self::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// List envelope (our design): `nextCursor` null, empty or absent means this was the last page.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    items: Vec<T>,
    #[serde(default)]
    next_cursor: Option<String>,
}

/// Login reply (our design).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: u64,
}

#[derive(Serialize)]
struct LoginRequest<'a> {
    username: &'a str,
    password: &'a str,
}

/// Error body (our design): `{"error": {"code", "message"}}`.
#[derive(Deserialize)]
struct VendorErrorBody {
    code: String,
    #[serde(default)]
    message: String,
}

/// essensys Platform client for one tenant. Cheap to clone; clones share the token and rate limit.
#[derive(Clone)]
pub struct EssensysClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: EssensysConfig,
    http: ResilientClient,
    login_url: Url,
    token: TokenCache,
    logins: AtomicU64,
}

impl fmt::Debug for EssensysClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EssensysClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// A login with the Platform user's credentials (there is no refresh grant).
impl TokenSource for Inner {
    async fn fetch(&self, _renewal: Renewal) -> Result<Renewed, HttpError> {
        let body = LoginRequest {
            username: &self.config.username,
            password: self.config.password.expose(),
        };
        let response = self
            .http
            .send_with(Idempotency::Idempotent, || {
                self.http
                    .http()
                    .post(self.login_url.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .json(&body)
            })
            .await?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        let login: LoginResponse = read_credential_reply(
            response,
            self.login_url.path(),
            "login response",
            "login reply is not {accessToken, expiresIn, …}",
        )
        .await?;
        if login.access_token.is_empty() {
            return Err(HttpError::protocol(
                &Method::POST,
                self.login_url.path(),
                "login reply has an empty accessToken",
                BodyExcerpt::withheld(),
            ));
        }
        if !is_bearer_type(login.token_type.as_deref()) {
            tracing::warn!(token_type = ?login.token_type, "essensys issued a non-bearer token; using it as bearer");
        }
        tracing::debug!(expires_in = login.expires_in, "logged in to essensys");
        Ok(Issued::new(Secret::new(login.access_token), login.expires_in).into())
    }
}

impl Inner {
    /// The cached token; concurrent callers wait for one login.
    async fn token(&self) -> Result<BearerToken, HttpError> {
        self.token.token(self).await
    }
}

/// What an error means in the context of one call (for `email_taken`).
#[derive(Clone, Copy)]
enum Subject<'a> {
    Plain,
    UserEmail(Option<&'a str>),
}

impl EssensysClient {
    pub fn new(config: EssensysConfig) -> Result<Self, EssensysError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("flexgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| EssensysError::Config(format!("cannot build HTTP client: {error}")))?;
        let resilient = ResilientClient::new(http)
            .with_policy(config.retry.clone())
            .with_rate_limiter(RateLimiter::new(config.requests_per_second))
            .with_attempt_timeout(config.attempt_timeout);
        let mut login_url = config.platform_url.clone();
        login_url
            .path_segments_mut()
            .map_err(|()| EssensysError::Config("Platform URL cannot be a base URL".into()))?
            .pop_if_empty()
            .extend(LOGIN_PATH);
        let refresh = RefreshPolicy::Margin(config.token_refresh_margin);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http: resilient,
                login_url,
                token: TokenCache::new(refresh, system_clock()),
                logins: AtomicU64::new(0),
            }),
        })
    }

    /// Uses `clock` for token expiry decisions. Call before the client is cloned; clones made
    /// earlier keep the previous clock.
    pub fn with_clock(self, clock: Clock) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.token.set_clock(clock);
                Self {
                    inner: Arc::new(inner),
                }
            }
            Err(shared) => {
                tracing::warn!("EssensysClient::with_clock on a shared client: clock unchanged");
                Self { inner: shared }
            }
        }
    }

    pub fn config(&self) -> &EssensysConfig {
        &self.inner.config
    }

    /// Successful logins so far (for status and tests).
    pub fn login_count(&self) -> u64 {
        self.inner.logins.load(Ordering::Relaxed)
    }

    /// Logs in now if no valid token is cached (checks the credentials).
    pub async fn login(&self) -> Result<(), EssensysError> {
        self.inner
            .token()
            .await
            .map(drop)
            .map_err(|source| self.login_error(source))
    }

    fn login_error(&self, source: HttpError) -> EssensysError {
        EssensysError::Login {
            username: self.inner.config.username.clone(),
            source,
        }
    }

    /// `{platform_url}/api/v1/{segments…}`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<Url, EssensysError> {
        let mut url = self.inner.config.platform_url.clone();
        url.path_segments_mut()
            .map_err(|()| EssensysError::Config("Platform URL cannot be a base URL".into()))?
            .pop_if_empty()
            .extend(API_PREFIX)
            .extend(segments);
        Ok(url)
    }

    fn map_error(&self, operation: &str, subject: Subject<'_>, error: HttpError) -> EssensysError {
        let operation = operation.to_owned();
        match error {
            HttpError::Unauthorized { ref path, .. } if path.ends_with("/api/auth/login") => {
                self.login_error(error)
            }
            HttpError::Unauthorized { .. } => EssensysError::Unauthorized { operation },
            HttpError::NotFound { .. } => EssensysError::NotFound { operation },
            HttpError::BadRequest {
                status, message, ..
            } => {
                let (code, message) = parse_vendor_error(&message);
                match (status, subject) {
                    (StatusCode::CONFLICT, Subject::UserEmail(email)) if code == "email_taken" => {
                        EssensysError::EmailTaken {
                            operation,
                            email: email.unwrap_or("(unchanged)").to_owned(),
                        }
                    }
                    (StatusCode::CONFLICT, _) => EssensysError::Conflict {
                        operation,
                        code,
                        message,
                    },
                    _ => EssensysError::Rejected {
                        operation,
                        code,
                        message,
                    },
                }
            }
            source => EssensysError::Http { operation, source },
        }
    }

    /// Lists every item under `segments`, following `nextCursor` until it is absent.
    ///
    /// All-or-nothing: each page goes through the retry policy (a failed page is asked again with
    /// the same cursor); if a page still fails, the call fails and pages already read are dropped.
    async fn list_all<T: DeserializeOwned>(
        &self,
        operation: &str,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Vec<T>, EssensysError> {
        self.login().await?;
        let url = self.url(segments)?;
        let auth = BearerAuth::new(&self.inner.token, &*self.inner);
        let limit = self.inner.config.page_size.to_string();
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            let page: Page<T> = self
                .inner
                .http
                .send_json(&auth, || {
                    let mut request = self
                        .inner
                        .http
                        .http()
                        .get(url.clone())
                        .header(reqwest::header::ACCEPT, "application/json")
                        .query(query)
                        .query(&[("limit", limit.as_str())]);
                    if let Some(cursor) = &cursor {
                        request = request.query(&[("cursor", cursor.as_str())]);
                    }
                    request
                })
                .await
                .map_err(|error| self.map_error(operation, Subject::Plain, error))?;
            items.extend(page.items);
            match page.next_cursor.filter(|next| !next.is_empty()) {
                None => return Ok(items),
                Some(next) => {
                    if !seen.insert(next.clone()) {
                        return Err(cursor_loop(
                            operation,
                            url.path(),
                            "the server repeated a cursor",
                        ));
                    }
                    cursor = Some(next);
                }
            }
        }
        Err(cursor_loop(
            operation,
            url.path(),
            &format!("more than {MAX_PAGES} pages"),
        ))
    }

    /// One write call: `method` on `segments` with an optional JSON body, decoding the reply.
    async fn write<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        operation: &str,
        subject: Subject<'_>,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
        idempotency: Idempotency,
    ) -> Result<T, EssensysError> {
        self.login().await?;
        let url = self.url(segments)?;
        let auth = BearerAuth::new(&self.inner.token, &*self.inner);
        let response = self
            .inner
            .http
            .execute(&auth, idempotency, || {
                let request = self
                    .inner
                    .http
                    .http()
                    .request(method.clone(), url.clone())
                    .header(reqwest::header::ACCEPT, "application/json");
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await
            .map_err(|error| self.map_error(operation, subject, error))?;
        decode_json(&method, response)
            .await
            .map_err(|error| self.map_error(operation, subject, error))
    }

    /// `POST` creating an object: not repeated after an ambiguous failure (a repeat could create
    /// twice); with an `externalRef` a repeat is refused by the Platform as `external_ref_taken`.
    async fn create<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        operation: &str,
        subject: Subject<'_>,
        segments: &[&str],
        body: &B,
    ) -> Result<T, EssensysError> {
        self.write(
            operation,
            subject,
            Method::POST,
            segments,
            Some(body),
            Idempotency::NonIdempotent,
        )
        .await
    }

    /// `PATCH` setting absolute field values: safe to repeat.
    async fn patch<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        operation: &str,
        subject: Subject<'_>,
        segments: &[&str],
        body: &B,
    ) -> Result<T, EssensysError> {
        self.write(
            operation,
            subject,
            Method::PATCH,
            segments,
            Some(body),
            Idempotency::Idempotent,
        )
        .await
    }
}

fn cursor_loop(operation: &str, path: &str, detail: &str) -> EssensysError {
    EssensysError::Http {
        operation: operation.to_owned(),
        source: HttpError::protocol(
            &Method::GET,
            path,
            format!("paging does not end: {detail}"),
            BodyExcerpt::from_body(b""),
        ),
    }
}

/// Reads `{code, message}` out of the (already redacted) message [`HttpError`] kept from an error
/// body `{"error": {...}}`; falls back to `unknown` and the whole text for other bodies.
fn parse_vendor_error(message: &str) -> (String, String) {
    if let Ok(body) = serde_json::from_str::<VendorErrorBody>(message) {
        return (body.code, body.message);
    }
    // The excerpt may be cut; the code comes first (keys are sorted), so it usually survives.
    let code = message
        .split_once("\"code\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    (code, message.to_owned())
}

fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl EssensysApi for EssensysClient {
    async fn list_sites(&self) -> Result<Vec<Site>, EssensysError> {
        self.list_all("list sites", &["sites"], &[]).await
    }

    async fn list_floors(&self, site_id: &str) -> Result<Vec<Floor>, EssensysError> {
        self.list_all("list floors", &["sites", site_id, "floors"], &[])
            .await
    }

    async fn create_floor(&self, site_id: &str, floor: &NewFloor) -> Result<Floor, EssensysError> {
        self.create(
            "create floor",
            Subject::Plain,
            &["sites", site_id, "floors"],
            floor,
        )
        .await
    }

    async fn update_floor(
        &self,
        site_id: &str,
        floor_id: &str,
        update: &FloorUpdate,
    ) -> Result<Floor, EssensysError> {
        self.patch(
            "update floor",
            Subject::Plain,
            &["sites", site_id, "floors", floor_id],
            update,
        )
        .await
    }

    async fn list_spaces(&self, site_id: &str) -> Result<Vec<Space>, EssensysError> {
        self.list_all("list spaces", &["sites", site_id, "spaces"], &[])
            .await
    }

    async fn create_space(&self, site_id: &str, space: &NewSpace) -> Result<Space, EssensysError> {
        self.create(
            "create space",
            Subject::Plain,
            &["sites", site_id, "spaces"],
            space,
        )
        .await
    }

    async fn update_space(
        &self,
        site_id: &str,
        space_id: &str,
        update: &SpaceUpdate,
    ) -> Result<Space, EssensysError> {
        self.patch(
            "update space",
            Subject::Plain,
            &["sites", site_id, "spaces", space_id],
            update,
        )
        .await
    }

    async fn list_occupiers(&self, site_id: &str) -> Result<Vec<Occupier>, EssensysError> {
        self.list_all("list occupiers", &["sites", site_id, "occupiers"], &[])
            .await
    }

    async fn create_occupier(
        &self,
        site_id: &str,
        occupier: &NewOccupier,
    ) -> Result<Occupier, EssensysError> {
        self.create(
            "create occupier",
            Subject::Plain,
            &["sites", site_id, "occupiers"],
            occupier,
        )
        .await
    }

    async fn update_occupier(
        &self,
        site_id: &str,
        occupier_id: &str,
        update: &OccupierUpdate,
    ) -> Result<Occupier, EssensysError> {
        self.patch(
            "update occupier",
            Subject::Plain,
            &["sites", site_id, "occupiers", occupier_id],
            update,
        )
        .await
    }

    async fn list_contracts(&self, site_id: &str) -> Result<Vec<Contract>, EssensysError> {
        self.list_all("list contracts", &["sites", site_id, "contracts"], &[])
            .await
    }

    async fn create_contract(
        &self,
        site_id: &str,
        contract: &NewContract,
    ) -> Result<Contract, EssensysError> {
        self.create(
            "create contract",
            Subject::Plain,
            &["sites", site_id, "contracts"],
            contract,
        )
        .await
    }

    async fn update_contract(
        &self,
        site_id: &str,
        contract_id: &str,
        update: &ContractUpdate,
    ) -> Result<Contract, EssensysError> {
        self.patch(
            "update contract",
            Subject::Plain,
            &["sites", site_id, "contracts", contract_id],
            update,
        )
        .await
    }

    async fn list_users(&self, site_id: &str) -> Result<Vec<User>, EssensysError> {
        self.list_all("list users", &["sites", site_id, "users"], &[])
            .await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, EssensysError> {
        let users: Vec<User> = self
            .list_all(
                "find user by email",
                &["users"],
                &[("email", email.to_owned())],
            )
            .await?;
        Ok(users.into_iter().next())
    }

    async fn create_user(&self, site_id: &str, user: &NewUser) -> Result<User, EssensysError> {
        self.create(
            "create user",
            Subject::UserEmail(Some(&user.email)),
            &["sites", site_id, "users"],
            user,
        )
        .await
    }

    async fn update_user(
        &self,
        site_id: &str,
        user_id: &str,
        update: &UserUpdate,
    ) -> Result<User, EssensysError> {
        self.patch(
            "update user",
            Subject::UserEmail(update.email.as_deref()),
            &["sites", site_id, "users", user_id],
            update,
        )
        .await
    }

    async fn send_wifi_invitation(
        &self,
        site_id: &str,
        user_id: &str,
    ) -> Result<WifiInvitation, EssensysError> {
        // Safe to repeat: the Platform sends an invitation once and reports `already_sent` after.
        self.write::<(), _>(
            "send Wi-Fi invitation",
            Subject::Plain,
            Method::POST,
            &["sites", site_id, "users", user_id, "wifi-invitation"],
            None,
            Idempotency::Idempotent,
        )
        .await
    }

    async fn list_bookings(
        &self,
        site_id: &str,
        filter: &BookingFilter,
    ) -> Result<Vec<Booking>, EssensysError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(source) = filter.source {
            query.push(("source", source.as_str().to_owned()));
        }
        if let Some(since) = filter.created_since {
            query.push(("createdSince", format_time(since)));
        }
        if let Some((from, to)) = filter.overlapping {
            query.push(("from", format_time(from)));
            query.push(("to", format_time(to)));
        }
        if let Some(external_ref) = &filter.external_ref {
            query.push(("externalRef", external_ref.clone()));
        }
        self.list_all("list bookings", &["sites", site_id, "bookings"], &query)
            .await
    }

    async fn list_tap_to_book_bookings(
        &self,
        site_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Booking>, EssensysError> {
        let filter = BookingFilter {
            source: Some(BookingSource::TapToBook),
            created_since: Some(since),
            ..BookingFilter::default()
        };
        self.list_bookings(site_id, &filter).await
    }

    async fn create_booking(
        &self,
        site_id: &str,
        booking: &NewBooking,
    ) -> Result<Booking, EssensysError> {
        self.create(
            "create booking",
            Subject::Plain,
            &["sites", site_id, "bookings"],
            booking,
        )
        .await
    }

    async fn update_booking(
        &self,
        site_id: &str,
        booking_id: &str,
        update: &BookingUpdate,
    ) -> Result<Booking, EssensysError> {
        self.patch(
            "update booking",
            Subject::Plain,
            &["sites", site_id, "bookings", booking_id],
            update,
        )
        .await
    }

    async fn cancel_booking(
        &self,
        site_id: &str,
        booking_id: &str,
    ) -> Result<Booking, EssensysError> {
        self.write::<(), _>(
            "cancel booking",
            Subject::Plain,
            Method::POST,
            &["sites", site_id, "bookings", booking_id, "cancel"],
            None,
            Idempotency::Idempotent,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_error_codes_are_read_from_full_and_cut_messages() {
        let full = r#"{"code":"email_taken","message":"email a@b.c is in use"}"#;
        assert_eq!(
            parse_vendor_error(full),
            ("email_taken".to_owned(), "email a@b.c is in use".to_owned())
        );
        let cut = r#"{"code":"contract_exists","message":"a very long…"#;
        assert_eq!(parse_vendor_error(cut).0, "contract_exists");
        assert_eq!(parse_vendor_error("Bad Gateway").0, "unknown");
    }

    #[test]
    fn config_debug_hides_the_password() {
        let config = EssensysConfig::new(
            "https://acme.essensys.example",
            "ops@acme.example",
            "pa55-word-x",
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("pa55-word-x"));
        assert!(EssensysClient::new(config).is_ok());
    }
}
