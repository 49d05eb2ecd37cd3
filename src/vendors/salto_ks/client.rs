//! Salto KS Connect API client for one site: service-user tokens (password grant, refresh before
//! expiry), complete paged listing, site-user creation with a role (which emails an invitation),
//! the seat (subscription) state of site users, and access-group membership with the platform user
//! id, implementing [`DoorVendor`].
//!
//! The role of new users comes from `spec.saltoKs.userRoleId` when the connection names one, else
//! from the site itself: the role whose code is `site_user` in `GET /v1.2/sites/{site}/roles` (read
//! once per client). Why: Salto refuses a site user without a role and role ids differ per site
//! (see [`wire::DEFAULT_USER_ROLE_CODE`]); `site_user` is the built-in role that only opens doors,
//! so the default works without anyone looking up a UUID and never grants admin rights, while a
//! site that gives members a custom role names it in the spec.
//!
//! Authentication: the OAuth2 **password grant** of a dedicated service user
//! (`POST {identity}/connect/token`, `Authorization: Basic base64(client_id:client_secret)`, form
//! `grant_type=password, username, password, scope=user_api.full_access`). Salto documents it as a
//! demo flow, but it is what backend integrations use; the documented alternative is the
//! `authorization_code` flow (an admin signs in once in a browser, the integration keeps the refresh
//! token), which needs an interactive step this operator does not have. Tokens live 3600 s; they
//! are cached and replaced `token_refresh_margin` before expiry with the `refresh_token` grant when
//! the identity server issued a refresh token, falling back to the password grant when it did not
//! or when the refresh is refused. An API 401 drops the token and repeats the call once.
//!
//! Hosts: neither default is documented by Salto; both are the production hosts seen in client
//! code (`identity.eu.my-clay.com`, `user.my-clay.com`). Regions/BUs differ, so both are settings.
//!
//! Rate limits: Salto publishes none; 10 requests/s per account is our default, 429 + `Retry-After`
//! is honoured by the shared retry layer.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{header, Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::wire::{
    self, AccessGroup, AddGroupMember, CreateSiteUser, Role, SiteDetail, SiteUser, TokenResponse,
};
use super::{system_clock, Clock};
use crate::http::{
    decode_json, is_bearer_type, read_credential_reply, BearerAuth, BodyExcerpt, HttpError,
    Idempotency, Issued, RateLimiter, RefreshPolicy, Renewal, Renewed, ResilientClient,
    RetryPolicy, Secret, TokenCache, TokenSource,
};
use crate::vendors::{
    AccountInfo, DoorVendor, GrantContext, NewUser, VendorError, VendorGroup, VendorUser,
};

/// Stops a server that keeps handing out new page links.
const MAX_PAGES: usize = 10_000;

/// How `add_to_group` waits for a just-created user to become known to the access-group service.
///
/// Observed on Salto KS: right after creation, calls about the new user fail with 404 ErrorCode
/// 2202 "User not found" (or 403 2203) for up to about a minute. The shared retry layer never
/// retries a 404, so this bounded retry applies to exactly that case: a 404 (or 403) on an
/// access-group add for a user this client created less than `window` ago.
///
/// The shared [`HttpError::NotFound`] does not keep the body, so ErrorCode 2202 cannot be told apart
/// from another 404 (an unknown access group); restricting the retry to just-created users keeps
/// the cost of that ambiguity to a few bounded retries.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsistencyRetry {
    /// Attempts of the add, the first included (1 disables the retry).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles per attempt (jittered), capped at `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long after its creation a user's 404 is treated as "not yet visible".
    pub window: Duration,
}

impl Default for ConsistencyRetry {
    fn default() -> Self {
        // 2 + 4 + 8 + 16 + 20 + 20 s ≈ 70 s of waiting: covers the ~1 minute observed.
        Self {
            max_attempts: 7,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(20),
            window: Duration::from_secs(300),
        }
    }
}

impl ConsistencyRetry {
    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base_delay: self.base_delay,
            max_delay: self.max_delay,
            max_total: self.window,
            ..RetryPolicy::default()
        }
    }
}

/// Connection settings for one Salto KS site.
#[derive(Debug, Clone)]
pub struct SaltoKsConfig {
    /// Identity server; the token endpoint is `{identity_url}/connect/token`.
    pub identity_url: Url,
    /// Connect (user) API host; endpoints live under `{api_url}/v1.2/`.
    pub api_url: Url,
    /// The site's UUID `id` (not its human `site_uid` such as "DE4520168385").
    pub site_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// The service user's login (an email), a site admin of `site_id`.
    pub username: String,
    pub password: Secret,
    /// Requested scope; `user_api.full_access` is the only one known to work for this flow.
    pub scope: String,
    /// The role given to created users (`spec.saltoKs.userRoleId`); `None` uses the site's built-in
    /// `site_user` role, read from `GET /v1.2/sites/{site}/roles`.
    pub user_role_id: Option<String>,
    /// `$top` of paged list requests (see [`wire::PAGE_SIZE`]).
    pub page_size: u32,
    /// Client-side limit for this account (Salto publishes no numbers).
    pub requests_per_second: f64,
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
    /// Tokens are replaced this long before they expire (capped at half the token lifetime).
    pub token_refresh_margin: Duration,
    pub consistency_retry: ConsistencyRetry,
}

/// Why a configuration or client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SaltoKsConfigError {
    #[error("invalid Salto KS configuration: {0}")]
    Invalid(String),
}

impl SaltoKsConfig {
    /// Seen in client code as production identity host; not documented by Salto.
    pub const DEFAULT_IDENTITY_URL: &'static str = "https://identity.eu.my-clay.com";
    /// Seen in client code as production Connect API host; not documented by Salto.
    pub const DEFAULT_API_URL: &'static str = "https://user.my-clay.com";
    pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 10.0;

    /// Production hosts and defaults for everything else.
    pub fn new(
        site_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Result<Self, SaltoKsConfigError> {
        Ok(Self {
            identity_url: parse_url("identity URL", Self::DEFAULT_IDENTITY_URL)?,
            api_url: parse_url("API URL", Self::DEFAULT_API_URL)?,
            site_id: site_id.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            username: username.into(),
            password: password.into(),
            scope: wire::USER_API_SCOPE.to_owned(),
            user_role_id: None,
            page_size: wire::PAGE_SIZE,
            requests_per_second: Self::DEFAULT_REQUESTS_PER_SECOND,
            attempt_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            token_refresh_margin: Duration::from_secs(60),
            consistency_retry: ConsistencyRetry::default(),
        })
    }

    /// Points both the identity and the API URL at one server (the simulator serves both).
    pub fn with_base_url(mut self, base: &str) -> Result<Self, SaltoKsConfigError> {
        self.identity_url = parse_url("identity URL", base)?;
        self.api_url = parse_url("API URL", base)?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), SaltoKsConfigError> {
        let invalid = |text: &str| Err(SaltoKsConfigError::Invalid(text.to_owned()));
        if self.site_id.trim().is_empty() {
            return invalid("site id is empty (the site's UUID, listed by GET /v1.2/sites)");
        }
        if self.client_id.trim().is_empty() || self.client_secret.expose().is_empty() {
            return invalid(
                "client id or client secret is empty (issued by your regional Salto business unit)",
            );
        }
        if self.username.trim().is_empty() || self.password.expose().is_empty() {
            return invalid("service user name or password is empty (a site admin of the site)");
        }
        if self.scope.trim().is_empty() {
            return invalid("scope is empty (use user_api.full_access)");
        }
        if self.requests_per_second.is_nan() || self.requests_per_second <= 0.0 {
            return invalid("requests per second must be positive");
        }
        if self.page_size == 0 {
            return invalid("page size must be positive");
        }
        if self
            .user_role_id
            .as_deref()
            .is_some_and(|role| role.trim().is_empty())
        {
            return invalid("user role id is empty (the id of a role of the site)");
        }
        for (what, url) in [
            ("identity URL", &self.identity_url),
            ("API URL", &self.api_url),
        ] {
            if url.cannot_be_a_base() {
                return Err(SaltoKsConfigError::Invalid(format!(
                    "{what} {url} cannot be used as a base URL"
                )));
            }
        }
        Ok(())
    }
}

fn parse_url(what: &str, value: &str) -> Result<Url, SaltoKsConfigError> {
    Url::parse(value).map_err(|error| {
        SaltoKsConfigError::Invalid(format!("{what} {value:?} is not a URL: {error}"))
    })
}

/// A site visible to the service user (`GET /v1.2/sites`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaltoKsSite {
    /// The UUID used in API paths and in [`SaltoKsConfig::site_id`].
    pub id: String,
    /// The human site id shown in the Salto KS app (e.g. "DE4520168385").
    pub site_uid: Option<String>,
    pub name: Option<String>,
}

enum Grant<'a> {
    Password,
    Refresh(&'a Secret),
}

impl Grant<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Refresh(_) => "refresh_token",
        }
    }
}

/// Whether a failure concerns the whole account or only one person / group.
#[derive(Clone, Copy)]
enum Impact {
    Account,
    Person,
}

/// How a list endpoint is read.
#[derive(Clone, Copy)]
enum Paging {
    /// `$top` windows, then `$skip` (see [`wire::PAGE_SIZE`]): users, access groups, members.
    Windows,
    /// Without query options, as recorded (sites, roles: a handful of items), following
    /// `next_page_link` only.
    Links,
}

/// Salto KS client for one site. Cheap to clone; clones share the token, the rate limit and
/// the record of users created by this client.
#[derive(Clone)]
pub struct SaltoKsClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: SaltoKsConfig,
    http: ResilientClient,
    clock: Clock,
    token_url: Url,
    token: TokenCache,
    /// Platform user id → when this client created the user (for the consistency retry).
    created: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Platform user id → site-user id, from listings and creations (diagnostics only).
    site_user_ids: Mutex<HashMap<String, String>>,
    /// The site's `site_user` role id, once read (only when the configuration names no role).
    default_role: Mutex<Option<String>>,
    /// Platform user id → why that user opens no door (suspended or blocked), from the last full
    /// listing plus later creations and lookups.
    blocked: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for SaltoKsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaltoKsClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The service user's token: a refresh when the identity server issued a refresh token, else (or
/// when the refresh is refused) the password grant.
impl TokenSource for Inner {
    async fn fetch(&self, renewal: Renewal) -> Result<Renewed, HttpError> {
        let response = match renewal.refresh_token() {
            Some(refresh_token) => match self.request_token(Grant::Refresh(refresh_token)).await {
                Ok(response) => response,
                Err(error) => {
                    tracing::info!(%error, "Salto KS token refresh failed; signing in with the password grant");
                    self.request_token(Grant::Password).await?
                }
            },
            None => self.request_token(Grant::Password).await?,
        };
        if !is_bearer_type(response.token_type.as_deref()) {
            tracing::warn!(token_type = ?response.token_type, "Salto KS issued a non-bearer token; using it as bearer");
        }
        tracing::debug!(
            expires_in = response.expires_in,
            // The cache keeps the previous refresh token when the reply has none.
            has_refresh_token =
                response.refresh_token.is_some() || renewal.refresh_token().is_some(),
            "fetched Salto KS access token"
        );
        Ok(
            Issued::new(Secret::new(response.access_token), response.expires_in)
                .with_refresh_token(response.refresh_token.map(Secret::new))
                .into(),
        )
    }
}

impl Inner {
    async fn request_token(&self, grant: Grant<'_>) -> Result<TokenResponse, HttpError> {
        let config = &self.config;
        let response = self
            .http
            // Token requests change nothing server-side worth protecting: safe to repeat.
            .send_with(Idempotency::Idempotent, || {
                let request = self
                    .http
                    .http()
                    .post(self.token_url.clone())
                    .basic_auth(&config.client_id, Some(config.client_secret.expose()))
                    .header(header::ACCEPT, "application/json");
                match &grant {
                    Grant::Password => request.form(&[
                        ("grant_type", "password"),
                        ("username", config.username.as_str()),
                        ("password", config.password.expose()),
                        ("scope", config.scope.as_str()),
                    ]),
                    Grant::Refresh(token) => request.form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token.expose()),
                    ]),
                }
            })
            .await?;
        read_credential_reply(
            response,
            self.token_url.path(),
            "token response",
            &format!(
                "{} grant reply is not {{access_token, expires_in, …}}",
                grant.name()
            ),
        )
        .await
    }
}

impl SaltoKsClient {
    pub fn new(config: SaltoKsConfig) -> Result<Self, SaltoKsConfigError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("flexgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                SaltoKsConfigError::Invalid(format!("cannot build HTTP client: {error}"))
            })?;
        let resilient = ResilientClient::new(http)
            .with_policy(config.retry.clone())
            .with_rate_limiter(RateLimiter::new(config.requests_per_second))
            .with_attempt_timeout(config.attempt_timeout);
        let mut token_url = config.identity_url.clone();
        token_url
            .path_segments_mut()
            .map_err(|()| SaltoKsConfigError::Invalid("identity URL cannot be a base".into()))?
            .pop_if_empty()
            .extend(wire::TOKEN_PATH);
        let refresh = RefreshPolicy::Margin(config.token_refresh_margin);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http: resilient,
                clock: system_clock(),
                token_url,
                token: TokenCache::new(refresh, system_clock()),
                created: Mutex::new(HashMap::new()),
                site_user_ids: Mutex::new(HashMap::new()),
                default_role: Mutex::new(None),
                blocked: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Uses `clock` for token expiry and the consistency window. Call before cloning the client;
    /// clones made earlier keep the previous clock.
    pub fn with_clock(self, clock: Clock) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.token.set_clock(clock.clone());
                inner.clock = clock;
                Self {
                    inner: Arc::new(inner),
                }
            }
            Err(shared) => {
                tracing::warn!("SaltoKsClient::with_clock on a shared client: clock unchanged");
                Self { inner: shared }
            }
        }
    }

    pub fn config(&self) -> &SaltoKsConfig {
        &self.inner.config
    }

    /// Drops the cached token (e.g. after the password was rotated).
    pub async fn forget_token(&self) {
        self.inner.token.forget().await;
    }

    /// The site-user id of a platform user seen in a listing or created by this client.
    /// Only for diagnostics and site-user endpoints; group membership uses the platform id.
    pub fn site_user_id(&self, user_id: &str) -> Option<String> {
        lock(&self.inner.site_user_ids).get(user_id).cloned()
    }

    /// Every site the service user can see (`GET /v1.2/sites`, a bare array, obs-01). Requested
    /// without query options, as recorded; the configured site is checked with
    /// [`SaltoKsClient::site`], so this list only feeds hints.
    pub async fn list_sites(&self) -> Result<Vec<SaltoKsSite>, VendorError> {
        let url = self.api_url(&["sites"])?;
        let items = self
            .list_all(url, &[], Paging::Links)
            .await
            .map_err(|error| self.vendor_error(error, Impact::Account))?;
        let sites: Vec<wire::Site> = typed_items(&Method::GET, "/v1.2/sites", items)?;
        Ok(sites
            .into_iter()
            .map(|site| SaltoKsSite {
                id: site.id,
                site_uid: site.site_uid,
                name: site.customer_reference,
            })
            .collect())
    }

    /// The configured site (`GET /v1.2/sites/{site}`, rec-02): proves the service user reaches it
    /// and tells how many of its subscription's seats are taken. A refusal is explained with the
    /// sites the service user can see (a `site_uid` given where the UUID belongs is named).
    pub async fn site(&self) -> Result<SiteDetail, VendorError> {
        match self.site_detail().await {
            Ok(site) => Ok(site),
            Err(
                error @ (HttpError::NotFound { .. }
                | HttpError::BadRequest {
                    status: StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN,
                    ..
                }),
            ) if !self.is_token_error(&error) => Err(self.site_refusal(error).await),
            Err(error) => Err(self.vendor_error(error, Impact::Account)),
        }
    }

    async fn site_detail(&self) -> Result<SiteDetail, HttpError> {
        let url = self.site_url(&[])?;
        let response = self
            .inner
            .http
            .send_authorized(&self.auth(), || {
                self.inner
                    .http
                    .http()
                    .get(url.clone())
                    .header(header::ACCEPT, "application/json")
            })
            .await?;
        decode_json(&Method::GET, response).await
    }

    async fn site_refusal(&self, error: HttpError) -> VendorError {
        let configured = &self.inner.config.site_id;
        let status = match &error {
            HttpError::BadRequest { status, .. } => status.as_u16(),
            _ => 404,
        };
        let hint = match self.list_sites().await {
            Ok(sites) => match sites
                .iter()
                .find(|site| site.site_uid.as_deref() == Some(configured.as_str()))
            {
                Some(site) => format!(
                    "{configured} is the site's site_uid; use its id {} instead",
                    site.id
                ),
                None => format!(
                    "visible sites: {}",
                    sites
                        .iter()
                        .map(|site| format!(
                            "{} ({})",
                            site.id,
                            site.name.as_deref().unwrap_or("unnamed")
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            Err(list_error) => format!("the site list could not be read either: {list_error}"),
        };
        VendorError::CredentialsInvalid(format!(
            "the service user {} has no access to Salto KS site {configured} ({status}); {hint}",
            self.inner.config.username
        ))
    }

    /// The site's roles (`GET /v1.2/sites/{site}/roles`, rec-07), requested without query options
    /// as recorded.
    pub async fn list_roles(&self) -> Result<Vec<Role>, VendorError> {
        let url = self.site_url(&["roles"])?;
        let path = url.path().to_owned();
        let items = self
            .list_all(url, &[], Paging::Links)
            .await
            .map_err(|error| self.vendor_error(error, Impact::Account))?;
        typed_items(&Method::GET, &path, items)
    }

    /// The role id new site users get: the configured one, else the site's `site_user` role (read
    /// once). A site without exactly one `site_user` role is refused with the roles it lists.
    pub async fn user_role(&self) -> Result<String, VendorError> {
        if let Some(role) = &self.inner.config.user_role_id {
            return Ok(role.clone());
        }
        if let Some(role) = lock(&self.inner.default_role).clone() {
            return Ok(role);
        }
        let roles = self.list_roles().await?;
        let role = wire::default_user_role(&roles).map_err(|detail| {
            VendorError::Refused(format!(
                "flexgate cannot choose the role of new Salto KS users on site {}: {detail}; set spec.saltoKs.userRoleId to the id of the role members should get",
                self.inner.config.site_id
            ))
        })?;
        *lock(&self.inner.default_role) = Some(role.id.clone());
        Ok(role.id.clone())
    }

    /// The site users whose email is `email` (OData `$filter=user/email eq '…'`), compared
    /// case-insensitively again on our side in case the server ignores the filter.
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<VendorUser>, VendorError> {
        let url = self.site_url(&["users"])?;
        let path = url.path().to_owned();
        let filter = wire::email_filter(email);
        let items = self
            .list_all(url, &[("$filter", filter.as_str())], Paging::Windows)
            .await
            .map_err(|error| self.vendor_error(error, Impact::Account))?;
        let users: Vec<SiteUser> = typed_items(&Method::GET, &path, items)?;
        let found = users.into_iter().find(|user| {
            user.user
                .email
                .as_deref()
                .is_some_and(|found| crate::identity::same_email(found, email))
        });
        Ok(match found {
            Some(user) => {
                let seats = self.seats_if_suspended(std::slice::from_ref(&user)).await;
                self.remember_site_user(&user, seats.as_ref());
                Some(vendor_user(user))
            }
            None => None,
        })
    }

    fn auth(&self) -> BearerAuth<'_, &Inner> {
        BearerAuth::new(&self.inner.token, &*self.inner)
    }

    /// `{api_url}/v1.2/{segments…}`, each segment percent-encoded.
    fn api_url(&self, segments: &[&str]) -> Result<Url, HttpError> {
        let mut url = self.inner.config.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| HttpError::InvalidRequest("Salto KS API URL cannot be a base".into()))?
            .pop_if_empty()
            .push(wire::API_VERSION)
            .extend(segments);
        Ok(url)
    }

    /// `{api_url}/v1.2/sites/{site_id}/{segments…}`.
    fn site_url(&self, segments: &[&str]) -> Result<Url, HttpError> {
        let mut all = vec!["sites", self.inner.config.site_id.as_str()];
        all.extend_from_slice(segments);
        self.api_url(&all)
    }

    /// Every item of a list endpoint: all-or-nothing, never a partial list.
    ///
    /// [`Paging::Windows`] asks for `$top` items (then `$skip` windows) and follows each
    /// `next_page_link` until it is null; a window that reached `$top`, or a total (`count`) not yet
    /// reached, means more may exist (see [`wire::PAGE_SIZE`]), so a bare array or a null link is
    /// never taken as the end by itself. Items repeated across windows (by `id`) are kept once; a
    /// window of nothing but repeats means the server ignores `$skip`, which fails the list rather
    /// than looping. Each page goes through the retry policy; a page that still fails fails the
    /// call. Links to another host are followed on the API host (see [`wire::next_link_query`]):
    /// the bearer token never leaves it.
    async fn list_all(
        &self,
        base: Url,
        query: &[(&str, &str)],
        paging: Paging,
    ) -> Result<Vec<Value>, HttpError> {
        let listing_path = base.path().to_owned();
        let top = match paging {
            Paging::Windows => {
                Some(usize::try_from(self.inner.config.page_size.max(1)).unwrap_or(100))
            }
            Paging::Links => None,
        };
        let auth = self.auth();
        let mut items = Vec::new();
        let mut ids = HashSet::new();
        let mut requests = 0usize;
        let mut skip = 0usize;
        loop {
            let mut url = base.clone();
            let mut pairs: Vec<(&str, String)> = query
                .iter()
                .map(|(key, value)| (*key, (*value).to_owned()))
                .collect();
            if let Some(top) = top {
                pairs.push(("$top", top.to_string()));
                if skip > 0 {
                    pairs.push(("$skip", skip.to_string()));
                }
            }
            if !pairs.is_empty() {
                url.query_pairs_mut().extend_pairs(pairs);
            }
            let mut visited = HashSet::from([url.as_str().to_owned()]);
            let (mut in_window, mut new_in_window, mut count) = (0usize, 0usize, None);
            loop {
                requests += 1;
                if requests > MAX_PAGES {
                    return Err(paging_error(
                        &listing_path,
                        &format!("more than {MAX_PAGES} pages"),
                    ));
                }
                let response = self
                    .inner
                    .http
                    .send_authorized(&auth, || {
                        self.inner
                            .http
                            .http()
                            .get(url.clone())
                            .header(header::ACCEPT, "application/json")
                    })
                    .await?;
                let value: Value = decode_json(&Method::GET, response).await?;
                let page = wire::parse_page(value.clone()).map_err(|detail| {
                    HttpError::protocol(
                        &Method::GET,
                        url.path(),
                        format!("list reply is {detail}"),
                        excerpt(&value),
                    )
                })?;
                in_window += page.items.len();
                count = page.count.or(count);
                for item in page.items {
                    let fresh = match item.get("id").and_then(Value::as_str) {
                        Some(id) => ids.insert(id.to_owned()),
                        None => true,
                    };
                    if fresh {
                        new_in_window += 1;
                        items.push(item);
                    }
                }
                let Some(link) = page.next_page_link else {
                    break;
                };
                let next = self.follow_link(&base, &url, &link, &value)?;
                if !visited.insert(next.as_str().to_owned()) {
                    return Err(paging_error(
                        &listing_path,
                        "the server repeated a page link",
                    ));
                }
                url = next;
            }
            let Some(top) = top else {
                return Ok(items);
            };
            if in_window == 0 {
                return Ok(items);
            }
            if skip > 0 && new_in_window == 0 {
                return Err(paging_error(
                    &listing_path,
                    &format!("the answer to $skip={skip} repeats items already read (the server seems to ignore $skip), so the list cannot be read completely"),
                ));
            }
            let short_of_count = count.is_some_and(|total| (items.len() as u64) < total);
            if in_window < top && !short_of_count {
                return Ok(items);
            }
            skip += in_window;
        }
    }

    /// Resolves a `next_page_link` (absolute per the CLP SDK; relative accepted). A link to another
    /// origin is followed on the API host with its query when it names this listing's path (see
    /// [`wire::next_link_query`]); otherwise it is a protocol error.
    fn follow_link(
        &self,
        listing: &Url,
        current: &Url,
        link: &str,
        page: &Value,
    ) -> Result<Url, HttpError> {
        let api = &self.inner.config.api_url;
        let next = current.join(link).map_err(|_| {
            HttpError::protocol(
                &Method::GET,
                current.path(),
                "next_page_link is not a URL",
                excerpt(page),
            )
        })?;
        if next.origin() == api.origin() {
            return Ok(next);
        }
        let prefix = api.path().trim_end_matches('/');
        let relative = listing
            .path()
            .strip_prefix(prefix)
            .unwrap_or(listing.path());
        match wire::next_link_query(&next, relative) {
            Some(query) => {
                tracing::debug!(
                    link_origin = %next.origin().ascii_serialization(),
                    "Salto KS next_page_link names another host; following its query on the API host"
                );
                let mut rebased = listing.clone();
                rebased.set_query(query.as_deref());
                Ok(rebased)
            }
            None => Err(HttpError::protocol(
                &Method::GET,
                current.path(),
                format!(
                    "next_page_link leaves the API host {} for another resource (not followed: it would carry the token)",
                    api.origin().ascii_serialization()
                ),
                excerpt(page),
            )),
        }
    }

    /// Records a site user's two ids and whether they can open doors at all.
    fn remember_site_user(&self, user: &SiteUser, seats: Option<&SiteDetail>) {
        lock(&self.inner.site_user_ids).insert(user.user.id.clone(), user.id.clone());
        let mut blocked = lock(&self.inner.blocked);
        match blocked_reason(user, seats) {
            Some(reason) => blocked.insert(user.user.id.clone(), reason),
            None => blocked.remove(&user.user.id),
        };
    }

    /// The site's seat counters, read only when one of `users` is suspended (for the message; a
    /// failure just leaves the counters out).
    async fn seats_if_suspended(&self, users: &[SiteUser]) -> Option<SiteDetail> {
        if !users.iter().any(SiteUser::is_suspended) {
            return None;
        }
        match self.site_detail().await {
            Ok(site) => Some(site),
            Err(error) => {
                tracing::debug!(%error, "Salto KS site seat counters could not be read");
                None
            }
        }
    }

    fn is_token_error(&self, error: &HttpError) -> bool {
        let token_path = self.inner.token_url.path();
        match error {
            HttpError::BadRequest { path, .. }
            | HttpError::Unauthorized { path, .. }
            | HttpError::NotFound { path, .. } => path == token_path,
            _ => false,
        }
    }

    fn created_recently(&self, user_id: &str) -> bool {
        let now = (self.inner.clock)();
        let window = chrono::Duration::from_std(self.inner.config.consistency_retry.window)
            .unwrap_or(chrono::Duration::MAX);
        lock(&self.inner.created)
            .get(user_id)
            .is_some_and(|created| now.signed_duration_since(*created) <= window)
    }

    /// Turns a transport-level failure into the vendor-level error the sync acts on.
    fn vendor_error(&self, error: HttpError, impact: Impact) -> VendorError {
        let config = &self.inner.config;
        let token_path = self.inner.token_url.path();
        let on_token_endpoint = match &error {
            HttpError::BadRequest { path, .. } | HttpError::Unauthorized { path, .. } => {
                path == token_path
            }
            _ => false,
        };
        if let HttpError::NotFound { method, path } = &error {
            if path == token_path {
                // Seen on Salto's accept identity hosts: 404 on every path during a ~2 h outage.
                return VendorError::Http(HttpError::Transient {
                    method: method.clone(),
                    path: path.clone(),
                    attempts: 1,
                    reason: "the identity server answered 404 for the token endpoint: check the identity URL, or it is down (Salto identity hosts have answered 404 during outages)".to_owned(),
                });
            }
        }
        if on_token_endpoint {
            let message = match &error {
                HttpError::BadRequest { message, .. } => message.as_str(),
                _ => "invalid_client",
            };
            return VendorError::CredentialsInvalid(token_refusal(message, config));
        }
        match (error, impact) {
            (HttpError::Unauthorized { .. }, _) => VendorError::CredentialsInvalid(format!(
                "the Salto KS API rejected a freshly issued token (401); check that the service user {} still exists",
                config.username
            )),
            (HttpError::BadRequest { status, message, .. }, Impact::Account)
                if status == StatusCode::FORBIDDEN =>
            {
                VendorError::CredentialsInvalid(format!(
                    "the service user {} lacks permission on Salto KS site {} (403: {message}); make it a site admin",
                    config.username, config.site_id
                ))
            }
            (HttpError::NotFound { .. }, Impact::Account) => VendorError::CredentialsInvalid(format!(
                "Salto KS site {} was not found for the service user {} (404); check the site id (its UUID) and that the user belongs to the site",
                config.site_id, config.username
            )),
            (HttpError::BadRequest { status, message, .. }, Impact::Person)
                if status.is_client_error() =>
            {
                VendorError::Refused(format!("Salto KS refused the change ({status}): {message}"))
            }
            (other, _) => VendorError::Http(other),
        }
    }

    async fn post_member(&self, url: &Url, user_id: &str) -> Result<Response, HttpError> {
        let body = AddGroupMember { user_id };
        // Adding a member is a set operation (a repeat is deduplicated below), so a 5xx or a
        // timeout may be retried like an idempotent request.
        self.inner
            .http
            .execute(&self.auth(), Idempotency::Idempotent, || {
                self.inner.http.http().post(url.clone()).json(&body)
            })
            .await
    }
}

/// GUESSED: how Salto answers an add for someone already in the group is not recorded. A 409, or
/// a 4xx whose message says "already", is taken as "already a member".
fn is_already_member(error: &HttpError) -> bool {
    match error {
        HttpError::BadRequest {
            status, message, ..
        } => {
            *status == StatusCode::CONFLICT
                || (status.is_client_error() && message.to_ascii_lowercase().contains("already"))
        }
        _ => false,
    }
}

fn token_refusal(message: &str, config: &SaltoKsConfig) -> String {
    let lower = message.to_ascii_lowercase();
    if lower.contains("invalid_client") {
        "the Salto KS identity server rejected the client id / client secret (invalid_client)"
            .to_owned()
    } else if lower.contains("invalid_grant") {
        format!(
            "the Salto KS identity server rejected the service user {}'s username or password (invalid_grant)",
            config.username
        )
    } else if lower.contains("invalid_scope") {
        format!(
            "the Salto KS client is not allowed the scope {:?} (invalid_scope); user_api.full_access is the Connect API scope",
            config.scope
        )
    } else if lower.contains("unauthorized_client") || lower.contains("unsupported_grant_type") {
        "the Salto KS client may not use the password grant; ask the Salto business unit to enable it (the alternative is the authorization_code flow)".to_owned()
    } else {
        format!("the Salto KS identity server refused the token request: {message}")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain maps that stay valid after a panic elsewhere.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn excerpt(value: &Value) -> BodyExcerpt {
    BodyExcerpt::from_body(value.to_string().as_bytes())
}

fn paging_error(path: &str, detail: &str) -> HttpError {
    HttpError::protocol(
        &Method::GET,
        path,
        format!("paging did not terminate: {detail}"),
        BodyExcerpt::from_body(b""),
    )
}

fn typed_items<T: DeserializeOwned>(
    method: &Method,
    path: &str,
    items: Vec<Value>,
) -> Result<Vec<T>, VendorError> {
    items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item.clone()).map_err(|error| {
                VendorError::Http(HttpError::protocol(
                    method,
                    path,
                    format!("list item does not have the expected shape: {error}"),
                    excerpt(&item),
                ))
            })
        })
        .collect()
}

fn vendor_user(site_user: SiteUser) -> VendorUser {
    let platform = site_user.user;
    let name = [
        platform.first_name.as_deref(),
        platform.last_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(str::trim)
    .filter(|part| !part.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    let name = if name.is_empty() {
        site_user.alias.unwrap_or_default()
    } else {
        name
    };
    VendorUser {
        id: platform.id,
        email: platform.email.filter(|email| !email.trim().is_empty()),
        // Salto KS has no external-id field for integrations.
        external_id: None,
        name,
    }
}

/// Why a site user opens no door whatever their access groups, or `None`.
fn blocked_reason(user: &SiteUser, seats: Option<&SiteDetail>) -> Option<String> {
    if user.is_suspended() {
        let counters = seats
            .and_then(|site| Some((site.active_user_amount?, site.subscribed_user_amount?)))
            .map(|(used, total)| format!("; {used} of the site's {total} user seats are taken"))
            .unwrap_or_default();
        return Some(format!(
            "Salto KS holds their site user suspended (subscription_state \"{}\"), so no access group opens a door for them{counters}. Salto KS suspends the users it adds while every seat of the site's subscription is taken: free seats (remove people who no longer need access from the site) or buy more, then resume this user in Salto KS",
            wire::SUBSCRIPTION_SUSPENDED
        ));
    }
    if user.blocked == Some(true) {
        return Some(
            "Salto KS holds their site user blocked (blocked: true), so no access group opens a door for them; unblock the user in Salto KS".to_owned(),
        );
    }
    None
}

impl DoorVendor for SaltoKsClient {
    /// Reads the configured site (a refusal names the sites the service user can see), the role new
    /// users will get when the connection names none (a site without a `site_user` role is refused
    /// here, before anyone is synced), then the site's access groups and users.
    async fn check(&self) -> Result<AccountInfo, VendorError> {
        self.site().await?;
        if self.inner.config.user_role_id.is_none() {
            self.user_role().await.map_err(|error| match error {
                VendorError::Refused(message) => VendorError::CredentialsInvalid(message),
                other => other,
            })?;
        }
        let groups = self.list_groups().await?.len();
        let users = self.list_users().await?.len();
        Ok(AccountInfo {
            groups: u32::try_from(groups).unwrap_or(u32::MAX),
            users: u32::try_from(users).unwrap_or(u32::MAX),
        })
    }

    async fn list_groups(&self) -> Result<Vec<VendorGroup>, VendorError> {
        let url = self.site_url(&["access_groups"])?;
        let path = url.path().to_owned();
        let items = self
            .list_all(url, &[], Paging::Windows)
            .await
            .map_err(|error| self.vendor_error(error, Impact::Account))?;
        let groups: Vec<AccessGroup> = typed_items(&Method::GET, &path, items)?;
        Ok(groups
            .into_iter()
            .map(|group| VendorGroup {
                id: group.id,
                name: group.customer_reference.unwrap_or_default(),
            })
            .collect())
    }

    async fn list_users(&self) -> Result<Vec<VendorUser>, VendorError> {
        let url = self.site_url(&["users"])?;
        let path = url.path().to_owned();
        let items = self
            .list_all(url, &[], Paging::Windows)
            .await
            .map_err(|error| self.vendor_error(error, Impact::Account))?;
        let users: Vec<SiteUser> = typed_items(&Method::GET, &path, items)?;
        let seats = self.seats_if_suspended(&users).await;
        // A full listing is the whole truth about who is suspended or blocked: replaced at once.
        let mut blocked = HashMap::new();
        {
            let mut ids = lock(&self.inner.site_user_ids);
            for user in &users {
                ids.insert(user.user.id.clone(), user.id.clone());
                if let Some(reason) = blocked_reason(user, seats.as_ref()) {
                    blocked.insert(user.user.id.clone(), reason);
                }
            }
        }
        *lock(&self.inner.blocked) = blocked;
        Ok(users.into_iter().map(vendor_user).collect())
    }

    async fn list_group_members(&self, group: &VendorGroup) -> Result<Vec<String>, VendorError> {
        let url = self.site_url(&["access_groups", group.id.as_str(), "users"])?;
        let path = url.path().to_owned();
        let items =
            self.list_all(url, &[], Paging::Windows)
                .await
                .map_err(|error| match error {
                    HttpError::NotFound { .. } => VendorError::Refused(format!(
                "Salto KS access group {} ({}) was not found on site {} (404); was it deleted?",
                group.id, group.name, self.inner.config.site_id
            )),
                    other => self.vendor_error(other, Impact::Account),
                })?;
        items
            .iter()
            .map(|item| {
                wire::member_user_id(item).ok_or_else(|| {
                    VendorError::Http(HttpError::protocol(
                        &Method::GET,
                        &path,
                        "access-group member without a user id",
                        excerpt(item),
                    ))
                })
            })
            .collect()
    }

    /// Adds the person to the site with their email and the new-user role (see the module doc),
    /// which makes Salto KS send them an invitation to complete their profile (needed for the
    /// mobile app). Not retried after an ambiguous failure (a repeat could invite twice); instead
    /// the email is looked up, and a user found is returned as created. A 409/400 for an existing
    /// person is resolved the same way. A user Salto answers `subscription_state: "suspended"`
    /// (no free seat) is returned as created, since it was, and recorded as unable to open doors:
    /// [`DoorVendor::access_blocked`] says so and the sync never reports them granted.
    async fn create_user(&self, user: &NewUser) -> Result<VendorUser, VendorError> {
        if user.email.trim().is_empty() {
            return Err(VendorError::Refused(format!(
                "cannot add OfficeRnD member {} to Salto KS without an email (it would be a tag-only user)",
                user.officernd_id
            )));
        }
        let role_ids = [self.user_role().await?];
        let url = self.site_url(&["users"])?;
        let body = CreateSiteUser {
            first_name: user.first_name.trim(),
            last_name: user.last_name.trim(),
            email: user.email.trim(),
            role_ids: &role_ids,
        };
        let outcome = self
            .inner
            .http
            .execute(&self.auth(), Idempotency::NonIdempotent, || {
                self.inner.http.http().post(url.clone()).json(&body)
            })
            .await;
        let response = match outcome {
            Ok(response) => response,
            Err(error) => {
                let ambiguous = matches!(error, HttpError::Transient { .. });
                let maybe_exists = matches!(
                    &error,
                    HttpError::BadRequest { status, .. }
                        if *status == StatusCode::CONFLICT || *status == StatusCode::BAD_REQUEST
                );
                if ambiguous || maybe_exists {
                    if let Some(found) = self.find_user_by_email(&user.email).await? {
                        if ambiguous {
                            lock(&self.inner.created)
                                .insert(found.id.clone(), (self.inner.clock)());
                        }
                        return Ok(found);
                    }
                }
                if matches!(error, HttpError::BadRequest { .. }) {
                    // The refusal may be about the role read earlier: read it again next time.
                    lock(&self.inner.default_role).take();
                }
                return Err(self.vendor_error(error, Impact::Person));
            }
        };
        let created: SiteUser = decode_json(&Method::POST, response).await?;
        let seats = self
            .seats_if_suspended(std::slice::from_ref(&created))
            .await;
        if created.is_suspended() {
            tracing::warn!(
                seats_in_use = ?seats.as_ref().and_then(|site| site.active_user_amount),
                seats = ?seats.as_ref().and_then(|site| site.subscribed_user_amount),
                "Salto KS created a site user suspended: the subscription has no free seat"
            );
        }
        self.remember_site_user(&created, seats.as_ref());
        lock(&self.inner.created).insert(created.user.id.clone(), (self.inner.clock)());
        Ok(vendor_user(created))
    }

    /// `POST …/access_groups/{ag}/users {"user_id": <platform id>}`; an existing membership is
    /// success. A 404 (or 403, also observed for brand-new users) for a user this client just
    /// created is retried (bounded, with backoff) because Salto KS takes a while to make new users
    /// known; when that budget runs out the error is reported as temporary. Salto KS has no
    /// per-grant notification switch: the invitation went out when the user was created, so
    /// `context` is not needed.
    async fn add_to_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
        _context: GrantContext,
    ) -> Result<(), VendorError> {
        let url = self.site_url(&["access_groups", group.id.as_str(), "users"])?;
        let policy = self.inner.config.consistency_retry.policy();
        let started = tokio::time::Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let error = match self.post_member(&url, user_id).await {
                Ok(_) => return Ok(()),
                Err(error) if is_already_member(&error) => return Ok(()),
                Err(error) => error,
            };
            let not_yet_visible = match &error {
                HttpError::NotFound { .. } => true,
                HttpError::BadRequest { status, .. } => *status == StatusCode::FORBIDDEN,
                _ => false,
            };
            if not_yet_visible && self.created_recently(user_id) {
                let delay = policy.backoff(attempt);
                if policy.allows(attempt, started.elapsed(), delay) {
                    tracing::debug!(
                        attempt,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "new Salto KS user not yet known to the access group; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
                return Err(VendorError::Http(HttpError::Transient {
                    method: Method::POST,
                    path: url.path().to_owned(),
                    attempts: attempt,
                    reason: "the just-created user is not yet known to Salto KS (404 User not found); retry on the next sync".to_owned(),
                }));
            }
            if !matches!(error, HttpError::NotFound { .. }) {
                return Err(self.vendor_error(error, Impact::Person));
            }
            let is_site_user_id = lock(&self.inner.site_user_ids)
                .values()
                .any(|site_user| site_user == user_id);
            let hint = if is_site_user_id {
                " (that is a site-user id; access groups take the platform user.id)"
            } else {
                ""
            };
            return Err(VendorError::Refused(format!(
                "Salto KS does not know user {user_id} or access group {} ({}) on site {} (404){hint}",
                group.id, group.name, self.inner.config.site_id
            )));
        }
    }

    /// Suspended (no seat) or blocked site users, as last listed, looked up or created.
    fn access_blocked(&self, user_id: &str) -> Option<String> {
        lock(&self.inner.blocked).get(user_id).cloned()
    }

    /// `DELETE …/access_groups/{ag}/users/{user_id}`; a 404 (not a member) is success.
    async fn remove_from_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
    ) -> Result<(), VendorError> {
        let url = self.site_url(&["access_groups", group.id.as_str(), "users", user_id])?;
        match self
            .inner
            .http
            .send_authorized(&self.auth(), || self.inner.http.http().delete(url.clone()))
            .await
        {
            Ok(_) | Err(HttpError::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.vendor_error(error, Impact::Person)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SaltoKsConfig {
        SaltoKsConfig::new(
            "00d20e57-9ac2-4b76-a65d-7911bfb00da2",
            "client",
            "client-secret-value",
            "svc@example.com",
            "service-password-value",
        )
        .unwrap()
    }

    #[test]
    fn defaults_and_redaction() {
        let config = config();
        assert_eq!(config.api_url.as_str(), "https://user.my-clay.com/");
        assert_eq!(
            config.identity_url.as_str(),
            "https://identity.eu.my-clay.com/"
        );
        assert_eq!(config.scope, "user_api.full_access");
        assert_eq!(config.requests_per_second, 10.0);
        let debug = format!("{config:?}");
        assert!(!debug.contains("client-secret-value"), "{debug}");
        assert!(!debug.contains("service-password-value"), "{debug}");
    }

    #[test]
    fn validation_names_the_missing_piece() {
        let mut missing_site = config();
        missing_site.site_id = " ".into();
        assert!(
            matches!(SaltoKsClient::new(missing_site), Err(SaltoKsConfigError::Invalid(m)) if m.contains("site id"))
        );
        let mut missing_password = config();
        missing_password.password = Secret::new("");
        assert!(
            matches!(SaltoKsClient::new(missing_password), Err(SaltoKsConfigError::Invalid(m)) if m.contains("password"))
        );
    }

    #[test]
    fn urls_are_built_under_the_version_prefix() {
        let client =
            SaltoKsClient::new(config().with_base_url("http://127.0.0.1:9/").unwrap()).unwrap();
        assert_eq!(
            client
                .site_url(&["access_groups", "a b", "users"])
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/v1.2/sites/00d20e57-9ac2-4b76-a65d-7911bfb00da2/access_groups/a%20b/users"
        );
        assert_eq!(
            client.inner.token_url.as_str(),
            "http://127.0.0.1:9/connect/token"
        );
    }

    #[test]
    fn names_fall_back_to_the_alias() {
        let user: SiteUser = serde_json::from_value(serde_json::json!({
            "id": "su", "alias": "Badge 7",
            "user": {"id": "pu", "email": null, "first_name": null, "last_name": ""}
        }))
        .unwrap();
        let vendor = vendor_user(user);
        assert_eq!(vendor.id, "pu");
        assert_eq!(vendor.email, None);
        assert_eq!(vendor.name, "Badge 7");
    }
}
