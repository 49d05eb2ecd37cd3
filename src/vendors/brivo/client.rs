//! Brivo Access API v1 client implementing [`DoorVendor`]: OAuth password-grant tokens refreshed
//! before their 300 s lifetime ends, offset paging read to completion, user creation with the mobile
//! pass invitation, and group membership adds/removes (one call each).
//!
//! Wire facts used (vendor-apis.md §4, recorded/brivo): every call carries `api-key` and
//! `Authorization: bearer <token>`; tokens come from `POST {auth}/oauth/token` with HTTP Basic client
//! credentials, the `api-key` header and a form body `grant_type=password&username=<Administrator
//! ID>&password=…` (or `grant_type=refresh_token&refresh_token=…`) and answer `{access_token,
//! token_type:"bearer", refresh_token, expires_in, scope, jti}`; lists answer `{data, offset, pageSize,
//! count}` with `count` the TOTAL; ids are integers; absent fields are omitted, not null; there is no
//! email filter on `/users`, so people are matched on the full list, whose items carry no emails
//! (users without an external id are read one by one, see [`wire::DETAIL_REUSE`]); `PUT
//! /users/{id}` clears every optional field not sent, so this client never PUTs a user (and never
//! deletes one). Throttling is Mashery's 403, retried with backoff ([`wire::mashery_throttle`]).
//! The wire types and every fact with its source are in [`super::wire`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::wire::{
    self, ContactEmail, ContactPhone, CreateUserBody, Page, TokenResponse, WireGroup, WireId,
    WireUser, API_KEY_HEADER, MAX_GROUPS_PER_USER, MAX_PAGE_SIZE, TOKEN_PATH,
};
use super::{system_clock, BrivoMobilePassTarget, Clock};
use crate::http::{
    is_bearer_type, read_credential_reply, Authorizer, BearerToken, BodyExcerpt, HttpError,
    Idempotency, Issued, RateLimiter, RefreshPolicy, Renewal, Renewed, ResilientClient,
    RetryPolicy, Secret, TokenCache, TokenSource,
};
use crate::vendors::{
    AccountInfo, DoorVendor, GrantContext, NewUser, VendorError, VendorGroup, VendorUser,
};

/// A list is read again from the start at most this often when it changes while being paged.
const MAX_LIST_READS: u32 = 3;

/// Connection settings for one Brivo account.
#[derive(Debug, Clone)]
pub struct BrivoConfig {
    /// API base; resources live under it (`{api_url}/users`).
    pub api_url: Url,
    /// Auth host; the token endpoint is `{auth_url}/oauth/token`.
    pub auth_url: Url,
    /// The Mashery API key from developer.brivo.com, sent on every call.
    pub api_key: Secret,
    /// OAuth client id and secret of the application (HTTP Basic on the token endpoint).
    pub client_id: String,
    pub client_secret: Secret,
    /// The Brivo Administrator ID (not the administrator's email) and password.
    pub username: String,
    pub password: Secret,
    /// Where mobile passes of new users go.
    pub mobile_pass_target: BrivoMobilePassTarget,
    /// Client-side limit for this account (see [`wire::DEFAULT_REQUESTS_PER_SECOND`]). Mashery's
    /// throttling replies (403) are retried with backoff whatever the rate.
    pub requests_per_second: f64,
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
    /// `pageSize` of list calls, 1 ..= 100.
    pub page_size: u32,
    /// Share of a token's lifetime after which it is replaced (0.8: a 300 s token at 240 s).
    pub token_refresh_fraction: f64,
}

impl BrivoConfig {
    pub const DEFAULT_API_URL: &'static str = "https://api.brivo.com/v1/api";
    pub const DEFAULT_AUTH_URL: &'static str = "https://auth.brivo.com";
    /// EU region hosts.
    pub const EU_API_URL: &'static str = "https://api.eu.brivo.com/v1/api";
    pub const EU_AUTH_URL: &'static str = "https://auth.eu.brivo.com";
    pub const DEFAULT_REQUESTS_PER_SECOND: f64 = wire::DEFAULT_REQUESTS_PER_SECOND;
    pub const DEFAULT_TOKEN_REFRESH_FRACTION: f64 = 0.8;

    /// Production (US) endpoints and defaults for everything else.
    pub fn new(
        api_key: impl Into<Secret>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> Result<Self, BrivoConfigError> {
        Ok(Self {
            api_url: parse_url("API URL", Self::DEFAULT_API_URL)?,
            auth_url: parse_url("auth URL", Self::DEFAULT_AUTH_URL)?,
            api_key: api_key.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            username: username.into(),
            password: password.into(),
            mobile_pass_target: BrivoMobilePassTarget::default(),
            requests_per_second: Self::DEFAULT_REQUESTS_PER_SECOND,
            attempt_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            page_size: MAX_PAGE_SIZE,
            token_refresh_fraction: Self::DEFAULT_TOKEN_REFRESH_FRACTION,
        })
    }

    /// Points the client at other hosts (EU region, a simulator).
    pub fn with_urls(mut self, api_url: &str, auth_url: &str) -> Result<Self, BrivoConfigError> {
        self.api_url = parse_url("API URL", api_url)?;
        self.auth_url = parse_url("auth URL", auth_url)?;
        Ok(self)
    }

    pub fn with_mobile_pass_target(mut self, target: BrivoMobilePassTarget) -> Self {
        self.mobile_pass_target = target;
        self
    }

    fn validate(&self) -> Result<(), BrivoConfigError> {
        let missing = [
            ("API key", self.api_key.expose().trim().is_empty()),
            ("client id", self.client_id.trim().is_empty()),
            ("client secret", self.client_secret.expose().is_empty()),
            ("Administrator ID", self.username.trim().is_empty()),
            ("password", self.password.expose().is_empty()),
        ];
        if let Some((what, _)) = missing.iter().find(|(_, empty)| *empty) {
            return Err(BrivoConfigError(format!(
                "the Brivo {what} is empty (log in with the Administrator ID shown on the Brivo Access home page, not the email)"
            )));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(BrivoConfigError(format!(
                "page size {} is outside 1..={MAX_PAGE_SIZE} (Brivo's maximum)",
                self.page_size
            )));
        }
        if !(self.token_refresh_fraction > 0.0 && self.token_refresh_fraction <= 1.0) {
            return Err(BrivoConfigError(format!(
                "token refresh fraction {} must be in (0, 1]",
                self.token_refresh_fraction
            )));
        }
        for (what, url) in [("API URL", &self.api_url), ("auth URL", &self.auth_url)] {
            if url.cannot_be_a_base() {
                return Err(BrivoConfigError(format!(
                    "{what} {url} cannot be used as a base URL"
                )));
            }
        }
        Ok(())
    }
}

fn parse_url(what: &str, value: &str) -> Result<Url, BrivoConfigError> {
    Url::parse(value)
        .map_err(|error| BrivoConfigError(format!("{what} {value:?} is not a URL: {error}")))
}

/// The client could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid Brivo configuration: {0}")]
pub struct BrivoConfigError(pub String);

/// What [`BrivoClient::invite_mobile_pass`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationOutcome {
    /// A new invitation was created.
    Created,
    /// Brivo already holds a pending invitation for the person (409); nothing new was sent.
    AlreadyPending,
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// Which grant a token request uses.
enum Grant<'a> {
    Password,
    Refresh(&'a Secret),
}

struct Inner {
    config: BrivoConfig,
    http: ResilientClient,
    token_url: Url,
    api_key: HeaderValue,
    /// The `Authorization` header value itself (`bearer <token>`, marked sensitive), replaced after
    /// `token_refresh_fraction` of its lifetime.
    token: TokenCache<HeaderValue>,
    /// Ages the reads in `details`.
    clock: Clock,
    /// Users read one by one because the list left their emails out (see [`wire::DETAIL_REUSE`]),
    /// by user id.
    details: Mutex<HashMap<String, Detail>>,
}

/// One `GET /users/{id}` read kept for reuse.
#[derive(Clone)]
struct Detail {
    /// The `updated` time the list showed when the user was read (`None`: the list shows none).
    listed_updated: Option<String>,
    read_at: DateTime<Utc>,
    /// `None`: the user was gone (404) when read.
    user: Option<VendorUser>,
}

/// Brivo tokens: the refresh_token grant while a refresh token is kept, else (or when Brivo
/// refuses it) the administrator's password grant.
impl TokenSource<HeaderValue> for Inner {
    async fn fetch(&self, renewal: Renewal) -> Result<Renewed<HeaderValue>, HttpError> {
        let fetched = match renewal.refresh_token() {
            Some(refresh_token) => match self.request_token(Grant::Refresh(refresh_token)).await {
                Ok(token) => token,
                Err(error) if error.is_retryable_later() => {
                    // The old token may still have some life left: keep using it rather than fail.
                    if let Some(keep) = renewal.keep_current() {
                        tracing::warn!(%error, "Brivo token refresh failed; using the current token until it expires");
                        return Ok(Renewed::KeepCurrent(keep));
                    }
                    return Err(error);
                }
                Err(error) => {
                    tracing::debug!(%error, "Brivo refresh token refused; logging in again");
                    self.request_token(Grant::Password).await?
                }
            },
            None => self.request_token(Grant::Password).await?,
        };
        self.issued(fetched).map(Renewed::from)
    }
}

impl Inner {
    fn token_path(&self) -> &str {
        self.token_url.path()
    }

    fn issued(&self, token: TokenResponse) -> Result<Issued<HeaderValue>, HttpError> {
        if !is_bearer_type(token.token_type.as_deref()) {
            tracing::warn!(token_type = ?token.token_type, "Brivo issued a non-bearer token; using it as bearer");
        }
        let mut authorization = HeaderValue::from_str(&format!("bearer {}", token.access_token))
            .map_err(|_| {
                HttpError::protocol(
                    &Method::POST,
                    self.token_path(),
                    "access_token contains characters not allowed in a header",
                    BodyExcerpt::withheld(),
                )
            })?;
        authorization.set_sensitive(true);
        tracing::debug!(expires_in = token.expires_in, "fetched Brivo access token");
        // Spring-style servers may keep the refresh token and not send it again: the cache then
        // keeps the previous one.
        Ok(Issued::new(authorization, token.expires_in)
            .with_refresh_token(token.refresh_token.map(Secret::new)))
    }

    async fn request_token(&self, grant: Grant<'_>) -> Result<TokenResponse, HttpError> {
        let form: Vec<(&str, &str)> = match grant {
            Grant::Password => vec![
                ("grant_type", "password"),
                ("username", self.config.username.as_str()),
                ("password", self.config.password.expose()),
            ],
            Grant::Refresh(refresh_token) => vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.expose()),
            ],
        };
        let response = self
            .http
            // Issuing a token has no side effect worth protecting: repeat it after a timeout.
            .send_with(Idempotency::Idempotent, || {
                self.http
                    .http()
                    .post(self.token_url.clone())
                    .basic_auth(
                        &self.config.client_id,
                        Some(self.config.client_secret.expose()),
                    )
                    .header(API_KEY_HEADER, self.api_key.clone())
                    .header(ACCEPT, "application/json")
                    .form(&form)
            })
            .await?;
        read_credential_reply(
            response,
            self.token_path(),
            "token response",
            "token response is not {access_token, expires_in, …}",
        )
        .await
    }
}

/// [`Authorizer`] adding the bearer token and the API key to every API call.
struct BrivoAuth<'a> {
    inner: &'a Inner,
}

impl Authorizer for BrivoAuth<'_> {
    type Credential = BearerToken<HeaderValue>;

    async fn credential(&self) -> Result<BearerToken<HeaderValue>, HttpError> {
        self.inner.token.token(self.inner).await
    }

    fn apply(
        &self,
        request: RequestBuilder,
        credential: &BearerToken<HeaderValue>,
    ) -> RequestBuilder {
        request
            .header(AUTHORIZATION, credential.token().clone())
            .header(API_KEY_HEADER, self.inner.api_key.clone())
            .header(ACCEPT, "application/json")
    }

    async fn reject(&self, credential: &BearerToken<HeaderValue>) {
        self.inner.token.reject(credential).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// Brivo client for one account. Cheap to clone; clones share the token and the rate limit.
#[derive(Clone)]
pub struct BrivoClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for BrivoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrivoClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl BrivoClient {
    pub fn new(config: BrivoConfig) -> Result<Self, BrivoConfigError> {
        config.validate()?;
        let mut api_key = HeaderValue::from_str(config.api_key.expose()).map_err(|_| {
            BrivoConfigError("the API key contains characters not allowed in a header".into())
        })?;
        api_key.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("flexgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| BrivoConfigError(format!("cannot build HTTP client: {error}")))?;
        let resilient = ResilientClient::new(http)
            .with_policy(config.retry.clone())
            .with_rate_limiter(RateLimiter::new(config.requests_per_second))
            .with_attempt_timeout(config.attempt_timeout)
            .with_throttle_classifier(wire::mashery_throttle);
        let mut token_url = config.auth_url.clone();
        token_url
            .path_segments_mut()
            .map_err(|()| BrivoConfigError("auth URL cannot be a base URL".into()))?
            .pop_if_empty()
            .extend(TOKEN_PATH);
        let refresh = RefreshPolicy::Fraction(config.token_refresh_fraction);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http: resilient,
                token_url,
                api_key,
                token: TokenCache::new(refresh, system_clock()),
                clock: system_clock(),
                details: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Uses `clock` for token refresh decisions and for the age of user reads. Call before the client is cloned; clones made
    /// earlier keep the previous clock.
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
                tracing::warn!("BrivoClient::with_clock on a shared client: clock unchanged");
                Self { inner: shared }
            }
        }
    }

    pub fn config(&self) -> &BrivoConfig {
        &self.inner.config
    }

    fn url(&self, segments: &[&str]) -> Result<Url, VendorError> {
        let mut url = self.inner.config.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| {
                VendorError::Http(HttpError::InvalidRequest(
                    "Brivo API URL cannot be a base URL".into(),
                ))
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn auth(&self) -> BrivoAuth<'_> {
        BrivoAuth { inner: &self.inner }
    }

    /// Turns the shared layer's error into the vendor error, recognising credential failures of
    /// the token endpoint and of the API key.
    fn vendor_error(&self, error: HttpError) -> VendorError {
        let token_path = self.inner.token_path();
        match error {
            HttpError::Unauthorized { ref path, .. } if path == token_path => {
                VendorError::CredentialsInvalid(
                    "Brivo's token endpoint refused the OAuth client id/secret (401); check the application credentials".into(),
                )
            }
            HttpError::BadRequest {
                ref path,
                status,
                ref message,
                ..
            } if path == token_path => VendorError::CredentialsInvalid(if message
                .contains(wire::DEVELOPER_INACTIVE)
            {
                format!("Brivo refused the API key ({status} {})", wire::DEVELOPER_INACTIVE)
            } else {
                format!(
                    "Brivo refused to issue a token ({status}: {message}); log in with the Administrator ID (not the email) and its password"
                )
            }),
            HttpError::Unauthorized { method, path } => VendorError::CredentialsInvalid(format!(
                "Brivo rejected a freshly issued access token on {method} {path} (401)"
            )),
            HttpError::BadRequest {
                status: StatusCode::FORBIDDEN,
                ref message,
                ..
            } if message.contains(wire::DEVELOPER_INACTIVE) => {
                VendorError::CredentialsInvalid(format!(
                    "Brivo refused the API key (403 {}); check the key issued by the Brivo API team",
                    wire::DEVELOPER_INACTIVE
                ))
            }
            // Brivo's own 403 (Mashery's throttling 403 never gets here: it is retried, then
            // reported as rate limited). Final: only a change of the administrator's rights helps.
            HttpError::BadRequest {
                method,
                path,
                status: StatusCode::FORBIDDEN,
                message,
            } => VendorError::Http(HttpError::BadRequest {
                method,
                path,
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "{message}; the Brivo administrator flexgate logs in as lacks the permission for this call (a permission refusal, not throttling; not retried)"
                ),
            }),
            other => VendorError::Http(other),
        }
    }

    /// Reads a whole top-level list (`{data, offset, pageSize, count}`) page by page.
    ///
    /// All-or-nothing. Offset paging over a list sorted by name shifts when people are added or
    /// removed meanwhile, which would silently skip or repeat someone; so when `count` changes
    /// between pages, a page comes back empty early, or an id repeats, the list is read again from
    /// the start (at most [`MAX_LIST_READS`] times, then a retry-later error).
    async fn list_all<T: DeserializeOwned + WireId>(
        &self,
        segments: &[&str],
    ) -> Result<Vec<T>, VendorError> {
        let url = self.url(segments)?;
        let page_size = self.inner.config.page_size;
        let page_size_text = page_size.to_string();
        let mut last_reason = String::new();
        for _ in 0..MAX_LIST_READS {
            match self.read_pages::<T>(&url, &page_size_text).await? {
                Ok(items) => return Ok(items),
                Err(reason) => {
                    tracing::debug!(path = url.path(), %reason, "Brivo list changed while paging; reading again");
                    last_reason = reason;
                }
            }
        }
        Err(VendorError::Http(HttpError::Transient {
            method: Method::GET,
            path: url.path().to_owned(),
            attempts: MAX_LIST_READS,
            reason: format!("the list kept changing while it was paged ({last_reason})"),
        }))
    }

    /// One pass over the pages: `Ok(Err(reason))` when the list changed underneath.
    async fn read_pages<T: DeserializeOwned + WireId>(
        &self,
        url: &Url,
        page_size: &str,
    ) -> Result<Result<Vec<T>, String>, VendorError> {
        let auth = self.auth();
        let mut items: Vec<T> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut total: Option<u64> = None;
        loop {
            let offset = items.len().to_string();
            let page: Page<T> = self
                .inner
                .http
                .send_json(&auth, || {
                    self.inner
                        .http
                        .http()
                        .get(url.clone())
                        .query(&[("offset", offset.as_str()), ("pageSize", page_size)])
                })
                .await
                .map_err(|error| self.vendor_error(error))?;
            match total {
                None => total = Some(page.count),
                Some(expected) if expected != page.count => {
                    return Ok(Err(format!("count went from {expected} to {}", page.count)))
                }
                Some(_) => {}
            }
            let expected = page.count;
            let page_was_empty = page.data.is_empty();
            for item in page.data {
                if !seen.insert(item.wire_id().to_owned()) {
                    return Ok(Err(format!("id {} came twice", item.wire_id())));
                }
                items.push(item);
            }
            let read = items.len() as u64;
            if read >= expected {
                if read > expected {
                    return Ok(Err(format!("read {read} items but count says {expected}")));
                }
                return Ok(Ok(items));
            }
            if page_was_empty {
                return Ok(Err(format!(
                    "empty page at offset {read} while count says {expected}"
                )));
            }
        }
    }

    /// The `count` of a top-level list, read with a one-item page.
    async fn count(&self, segment: &str) -> Result<u32, VendorError> {
        let url = self.url(&[segment])?;
        let page: Page<serde_json::Value> = self
            .inner
            .http
            .send_json(&self.auth(), || {
                self.inner
                    .http
                    .http()
                    .get(url.clone())
                    .query(&[("offset", "0"), ("pageSize", "1")])
            })
            .await
            .map_err(|error| self.vendor_error(error))?;
        Ok(u32::try_from(page.count).unwrap_or(u32::MAX))
    }

    /// `GET /users/{externalId}/external`: the user holding this external id, if any.
    pub async fn find_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<VendorUser>, VendorError> {
        let url = self.url(&["users", external_id, "external"])?;
        let found: Result<WireUser, HttpError> = self
            .inner
            .http
            .send_json(&self.auth(), || self.inner.http.http().get(url.clone()))
            .await;
        match found {
            Ok(user) => Ok(Some(user.into_vendor_user())),
            Err(HttpError::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.vendor_error(error)),
        }
    }

    /// `GET /users/{id}`: the whole user, emails included (lists leave them out); `None` when the
    /// user does not exist (any longer).
    pub async fn read_user(&self, user_id: &str) -> Result<Option<VendorUser>, VendorError> {
        let url = self.url(&["users", user_id])?;
        let read: Result<WireUser, HttpError> = self
            .inner
            .http
            .send_json(&self.auth(), || self.inner.http.http().get(url.clone()))
            .await;
        match read {
            Ok(user) => Ok(Some(user.into_vendor_user())),
            Err(HttpError::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.vendor_error(error)),
        }
    }

    /// Every user exactly as `GET /users` lists them (no completion of missing emails).
    pub async fn list_user_summaries(&self) -> Result<Vec<WireUser>, VendorError> {
        self.list_all(&["users"]).await
    }

    /// The listed users whose emails must be read one by one (see [`wire::DETAIL_REUSE`]) and
    /// whose last read cannot be reused.
    fn stale_details(&self, listed: &[WireUser]) -> Vec<(String, Option<String>)> {
        let now = (self.inner.clock)();
        let reuse = chrono::Duration::from_std(wire::DETAIL_REUSE).unwrap_or_default();
        let details = self
            .inner
            .details
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        listed
            .iter()
            .filter(|user| !user.emails_known() && user.external_id.is_none())
            .filter(|user| {
                !details.get(&user.id).is_some_and(|detail| {
                    detail.listed_updated == user.updated
                        && (user.updated.is_some() || now - detail.read_at < reuse)
                })
            })
            .map(|user| (user.id.clone(), user.updated.clone()))
            .collect()
    }

    /// Creates a mobile-pass invitation for `user_id` per the configured target (see
    /// [`wire::invitation_query`]). A pending invitation already at Brivo (409) counts as done.
    pub async fn invite_mobile_pass(
        &self,
        user_id: &str,
    ) -> Result<InvitationOutcome, VendorError> {
        let url = self.url(&["users", user_id, "credentials", "digital-invitations"])?;
        let query = wire::invitation_query(self.inner.config.mobile_pass_target);
        let sent = self
            .inner
            .http
            // Safe to repeat: a second invitation while one is pending is refused with 409.
            .execute(&self.auth(), Idempotency::Idempotent, || {
                self.inner.http.http().post(url.clone()).query(&query)
            })
            .await;
        match sent {
            Ok(_) => Ok(InvitationOutcome::Created),
            Err(HttpError::BadRequest {
                status: StatusCode::CONFLICT,
                ..
            }) => Ok(InvitationOutcome::AlreadyPending),
            Err(error) => Err(self.vendor_error(error)),
        }
    }

    /// Issues the mobile pass of a user just created; a failure leaves the user in place and says
    /// what to do, because later syncs find the user and will not create (nor invite) them again.
    async fn issue_mobile_pass(&self, user: &VendorUser) -> Result<(), VendorError> {
        match self.invite_mobile_pass(&user.id).await {
            Ok(outcome) => {
                tracing::debug!(user = %user.id, ?outcome, target = ?self.inner.config.mobile_pass_target, "Brivo mobile pass invitation");
                Ok(())
            }
            Err(VendorError::Http(HttpError::BadRequest {
                status: StatusCode::PRECONDITION_FAILED,
                message,
                ..
            })) => Err(VendorError::Refused(format!(
                "Brivo user {} was created, but the account has no mobile passes left ({message}); add passes, then send the invitation from Brivo Access",
                user.id
            ))),
            Err(error) => Err(VendorError::Refused(format!(
                "Brivo user {} was created, but the mobile pass invitation failed: {error}; send it from Brivo Access",
                user.id
            ))),
        }
    }

    async fn post_user(&self, user: &NewUser) -> Result<VendorUser, VendorError> {
        let url = self.url(&["users"])?;
        let phone = user
            .phone
            .as_deref()
            .map(str::trim)
            .filter(|phone| !phone.is_empty());
        let body = CreateUserBody {
            first_name: user.first_name.trim(),
            last_name: user.last_name.trim(),
            external_id: &user.officernd_id,
            emails: vec![ContactEmail {
                address: user.email.trim(),
                kind: wire::CONTACT_TYPE,
            }],
            phone_numbers: phone
                .map(|number| ContactPhone {
                    number,
                    kind: wire::CONTACT_TYPE,
                })
                .into_iter()
                .collect(),
        };
        self.inner
            .http
            .send_json::<_, WireUser>(&self.auth(), || {
                self.inner.http.http().post(url.clone()).json(&body)
            })
            .await
            .map(WireUser::into_vendor_user)
            .map_err(|error| self.vendor_error(error))
    }
}

impl DoorVendor for BrivoClient {
    async fn check(&self) -> Result<AccountInfo, VendorError> {
        let groups = self.count("groups").await?;
        let users = self.count("users").await?;
        Ok(AccountInfo { groups, users })
    }

    async fn list_groups(&self) -> Result<Vec<VendorGroup>, VendorError> {
        let groups: Vec<WireGroup> = self.list_all(&["groups"]).await?;
        Ok(groups
            .into_iter()
            .map(|group| VendorGroup {
                name: group.name.unwrap_or_default(),
                id: group.id,
            })
            .collect())
    }

    /// Every user; Brivo has no email filter, so callers match on this list (case-insensitively),
    /// after trying the external id.
    ///
    /// Lists may leave the emails out (see [`wire::DETAIL_REUSE`]): a listed user without emails
    /// and without an external id is read with `GET /users/{id}` (reads reused while fresh), so a
    /// person created by hand in Brivo is recognised by email instead of being created again.
    /// All-or-nothing like every list: a failed read fails the call.
    async fn list_users(&self) -> Result<Vec<VendorUser>, VendorError> {
        let listed = self.list_user_summaries().await?;
        let stale = self.stale_details(&listed);
        let reads: Vec<(String, Option<String>, Option<VendorUser>)> = stream::iter(stale)
            .map(|(id, updated)| async move {
                let user = self.read_user(&id).await?;
                Ok::<_, VendorError>((id, updated, user))
            })
            .buffer_unordered(wire::DETAIL_READ_CONCURRENCY)
            .try_collect()
            .await?;
        let now = (self.inner.clock)();
        let mut details = self
            .inner
            .details
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (id, listed_updated, user) in reads {
            details.insert(
                id,
                Detail {
                    listed_updated,
                    read_at: now,
                    user,
                },
            );
        }
        let listed_ids: HashSet<&str> = listed.iter().map(|user| user.id.as_str()).collect();
        details.retain(|id, _| listed_ids.contains(id.as_str()));
        Ok(listed
            .into_iter()
            .map(|user| {
                let complete = (!user.emails_known() && user.external_id.is_none())
                    .then(|| details.get(&user.id).and_then(|detail| detail.user.clone()))
                    .flatten();
                let mut summary = user.into_vendor_user();
                if let Some(read) = complete {
                    summary.email = read.email;
                    summary.external_id = summary.external_id.or(read.external_id);
                }
                summary
            })
            .collect())
    }

    async fn list_group_members(&self, group: &VendorGroup) -> Result<Vec<String>, VendorError> {
        let members: Vec<WireUser> = self.list_all(&["groups", &group.id, "users"]).await?;
        Ok(members.into_iter().map(|member| member.id).collect())
    }

    /// `POST /users` (200) with first/last name, the OfficeRnD id as `externalId`, the email and
    /// the phone (company not sent), then the mobile-pass invitation.
    ///
    /// A POST is not repeated after an ambiguous failure; instead the external id is looked up, so
    /// a user the failed call did create is adopted rather than created twice.
    async fn create_user(&self, user: &NewUser) -> Result<VendorUser, VendorError> {
        let created = match self.post_user(user).await {
            Ok(created) => created,
            Err(error @ VendorError::CredentialsInvalid(_)) => return Err(error),
            Err(error) => match self.find_by_external_id(&user.officernd_id).await {
                Ok(Some(existing)) => {
                    tracing::info!(user = %existing.id, %error, "Brivo user creation failed but the user exists; using it");
                    existing
                }
                _ => return Err(error),
            },
        };
        self.issue_mobile_pass(&created).await?;
        Ok(created)
    }

    async fn add_to_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
        _context: GrantContext,
    ) -> Result<(), VendorError> {
        let url = self.url(&["groups", &group.id, "users", user_id])?;
        let added = self
            .inner
            .http
            .send_authorized(&self.auth(), || self.inner.http.http().put(url.clone()))
            .await;
        match added {
            Ok(_) => Ok(()),
            Err(HttpError::BadRequest {
                status: StatusCode::BAD_REQUEST,
                message,
                ..
            }) => Err(VendorError::Refused(format!(
                "Brivo refused to add user {user_id} to group {:?} ({message}); Brivo allows at most {MAX_GROUPS_PER_USER} groups per user (counting groups this administrator cannot see), so the user is most likely at that cap: remove them from a group they no longer need",
                group.name
            ))),
            Err(error) => Err(self.vendor_error(error)),
        }
    }

    async fn remove_from_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
    ) -> Result<(), VendorError> {
        let url = self.url(&["groups", &group.id, "users", user_id])?;
        let removed = self
            .inner
            .http
            .send_authorized(&self.auth(), || self.inner.http.http().delete(url.clone()))
            .await;
        match removed {
            // 404: not a member (or the group or user is gone): either way they are not in it.
            Ok(_) | Err(HttpError::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.vendor_error(error)),
        }
    }
}
