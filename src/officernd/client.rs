//! OfficeRnD Flex API v2 client: OAuth2 client-credentials tokens asking only for the scopes of
//! what is read or written, cursor-paged listing (all-or-nothing), incremental refresh, booking
//! creation and webhook registration.
//!
//! Wire facts used (vendor-apis.md §1, recorded/officernd, [`super::wire`]): token `POST
//! {identity}/oauth/token` (form: `client_id, client_secret, grant_type=client_credentials, scope`
//! space-separated) → `{access_token, token_type:"Bearer", expires_in:3599, scope}`; a request naming
//! one scope the application lacks gets no token at all; API base
//! `{api}/api/v2/organizations/{orgSlug}/{collection}`; list envelope `{results, cursorNext?,
//! cursorPrev?, rangeStart, rangeEnd}` where `cursorNext` is ABSENT on the last page; `$limit` ≤ 50;
//! a token missing a scope gets 401 (not 403); an unknown organization slug gets 500 "Organization
//! not found"; no rate-limit numbers are published.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::collection::{Access, Collection, CollectionSet, Feature};
use super::{format_timestamp, system_clock, wire, Clock};
use crate::http::{
    is_bearer_type, read_credential_reply, BearerAuth, BearerToken, BodyExcerpt, HttpError,
    Idempotency, Issued, RateLimiter, RefreshPolicy, Renewal, Renewed, ResilientClient,
    RetryPolicy, Secret, TokenCache, TokenSource,
};

/// Where the token request path lives under the identity URL.
const TOKEN_PATH: [&str; 2] = ["oauth", "token"];
/// The documented maximum page size; the API answers 400 above it.
pub const MAX_PAGE_SIZE: u32 = 50;
/// Stops a server that keeps handing out new cursors (50 × 20 000 = one million objects).
const MAX_PAGES: usize = 20_000;
/// The scope for registering webhooks (`flex.settings.webhooks.create`).
const WEBHOOKS_CREATE_SCOPE: &str = "flex.settings.webhooks.create";

/// Connection settings for one OfficeRnD organization.
#[derive(Debug, Clone)]
pub struct OfficeRndConfig {
    /// Identity server; the token endpoint is `{identity_url}/oauth/token`.
    pub identity_url: Url,
    /// API host; collections live under `{api_url}/api/v2/organizations/{org_slug}/`.
    pub api_url: Url,
    pub org_slug: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Client-side limit for this organization; OfficeRnD publishes no number
    /// ([`wire::DEFAULT_REQUESTS_PER_SECOND`]).
    pub requests_per_second: f64,
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
    /// `$limit` per page, 1 ..= 50.
    pub page_size: u32,
    /// Tokens are replaced this long before they expire (capped at half the token lifetime).
    pub token_refresh_margin: Duration,
    /// Parallel requests when assignments are fetched in batches of resources or memberships.
    pub assignment_concurrency: usize,
    /// Further rounds for one page of a list after the retry policy gave up on it (each after a
    /// longer wait): the pages already read are kept, so a flaky page does not cost the read.
    pub page_rounds: u32,
}

impl OfficeRndConfig {
    pub const DEFAULT_IDENTITY_URL: &'static str = "https://identity.officernd.com";
    pub const DEFAULT_API_URL: &'static str = "https://app.officernd.com";

    /// Production endpoints and defaults for everything else.
    pub fn new(
        org_slug: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Result<Self, OfficeRndError> {
        Ok(Self {
            identity_url: parse_url("identity URL", Self::DEFAULT_IDENTITY_URL)?,
            api_url: parse_url("API URL", Self::DEFAULT_API_URL)?,
            org_slug: org_slug.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            requests_per_second: f64::from(wire::DEFAULT_REQUESTS_PER_SECOND),
            attempt_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            page_size: MAX_PAGE_SIZE,
            token_refresh_margin: Duration::from_secs(60),
            assignment_concurrency: 4,
            page_rounds: 3,
        })
    }

    /// Points both the identity and the API URL at one server (the simulator serves both).
    pub fn with_base_url(mut self, base: &str) -> Result<Self, OfficeRndError> {
        self.identity_url = parse_url("identity URL", base)?;
        self.api_url = parse_url("API URL", base)?;
        Ok(self)
    }

    fn validate(&self) -> Result<(), OfficeRndError> {
        if self.org_slug.trim().is_empty() {
            return Err(OfficeRndError::Config(
                "org slug is empty (Settings → My Account in OfficeRnD)".into(),
            ));
        }
        if self.client_id.trim().is_empty() || self.client_secret.expose().is_empty() {
            return Err(OfficeRndError::Config(
                "client id or client secret is empty (create an app under Settings → Developer Tools)".into(),
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(OfficeRndError::Config(format!(
                "page size {} is outside 1..={MAX_PAGE_SIZE} (the API rejects larger pages)",
                self.page_size
            )));
        }
        for (what, url) in [
            ("identity URL", &self.identity_url),
            ("API URL", &self.api_url),
        ] {
            if url.cannot_be_a_base() {
                return Err(OfficeRndError::Config(format!(
                    "{what} {url} cannot be used as a base URL"
                )));
            }
        }
        Ok(())
    }
}

fn parse_url(what: &str, value: &str) -> Result<Url, OfficeRndError> {
    Url::parse(value)
        .map_err(|error| OfficeRndError::Config(format!("{what} {value:?} is not a URL: {error}")))
}

/// What a token is for; each purpose gets its own token with exactly its scopes.
///
/// Separate tokens because the token request fails as a whole when it names a scope the app was not
/// granted: an app that cannot create bookings, or is not granted the visitors scope, must still be
/// able to sync whatever does not need them. Reads ask for the read scopes of the collections the
/// read covers (see [`Feature`] for which use reads what), never for every collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    /// Reading these collections.
    Read(CollectionSet),
    /// `POST /bookings` (tap-to-book bookings synced back from essensys).
    CreateBookings,
    /// `POST /webhooks`.
    ManageWebhooks,
}

impl TokenPurpose {
    /// The exact scopes requested for this purpose.
    pub fn scopes(self) -> Vec<String> {
        match self {
            Self::Read(collections) => collections.read_scopes(),
            Self::CreateBookings => vec![Collection::Bookings.scope(Access::Create)],
            Self::ManageWebhooks => vec![WEBHOOKS_CREATE_SCOPE.to_owned()],
        }
    }
}

/// Failures of OfficeRnD calls.
#[derive(Debug, thiserror::Error)]
pub enum OfficeRndError {
    #[error("invalid OfficeRnD configuration: {0}")]
    Config(String),
    /// The identity server refused or failed to issue a token.
    #[error("OfficeRnD token request for scopes [{scopes}] failed: {source}; check the client id/secret and that the app is granted these scopes")]
    Token {
        scopes: String,
        #[source]
        source: HttpError,
    },
    /// The identity server refused these scopes (each was asked for alone to find out): the
    /// OfficeRnD application lacks them.
    #[error("OfficeRnD refused the scope{} {} to this application; {}", plural(.refused.len()), .refused.join(", "), scope_advice(.refused))]
    ScopeRefused {
        /// The refused scopes, in the order they were requested.
        refused: Vec<String>,
    },
    /// The organization slug names no organization (OfficeRnD answers 500 "Organization not
    /// found"); final, not an outage.
    #[error("OfficeRnD has no organization {slug:?}: check spec.officernd.organization (the part after /admin/ in https://app.officernd.com/admin/<slug>)")]
    OrganizationNotFound { slug: String },
    /// The API refused a fresh token too: most likely a missing scope (OfficeRnD answers 401, not 403).
    #[error("OfficeRnD {operation}: access denied even with a fresh token; the app needs scopes [{scopes}]")]
    Unauthorized { operation: String, scopes: String },
    /// A list request the API cannot serve as asked (checked before sending).
    #[error("OfficeRnD {collection} list: {reason}")]
    UnsupportedQuery {
        collection: Collection,
        reason: String,
    },
    #[error("OfficeRnD: {0}")]
    Http(#[from] HttpError),
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// What needs the refused scopes, and what to do.
fn scope_advice(refused: &[String]) -> String {
    let mut needed_by: Vec<&str> = refused
        .iter()
        .flat_map(|scope| Feature::needing(scope))
        .map(Feature::describe)
        .collect();
    needed_by.dedup();
    let who = if needed_by.is_empty() {
        String::new()
    } else {
        format!(" (needed by {})", needed_by.join("; "))
    };
    format!(
        "grant {} to the OfficeRnD app (Settings → Developer Tools){who}, or remove what needs {}",
        if refused.len() == 1 { "it" } else { "them" },
        if refused.len() == 1 { "it" } else { "them" },
    )
}

impl OfficeRndError {
    /// True when the same call may succeed later without any change on our side.
    pub fn is_retryable_later(&self) -> bool {
        match self {
            Self::Http(error) | Self::Token { source: error, .. } => error.is_retryable_later(),
            _ => false,
        }
    }
}

/// Date comparison operators of the v2 query language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl DateOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Gt => "$gt",
            Self::Gte => "$gte",
            Self::Lt => "$lt",
            Self::Lte => "$lte",
        }
    }
}

/// Filters for a list request, in the v2 query language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    params: Vec<(String, String)>,
}

impl ListQuery {
    pub fn new() -> Self {
        Self::default()
    }

    /// `field=value` (exact match; OfficeRnD has no case-insensitive match).
    pub fn eq(mut self, field: &str, value: impl Into<String>) -> Self {
        self.params.push((field.to_owned(), value.into()));
        self
    }

    /// `field[$in]=a,b,c`.
    pub fn any_of<S: AsRef<str>>(mut self, field: &str, values: &[S]) -> Self {
        let joined = values
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(",");
        self.params.push((format!("{field}[$in]"), joined));
        self
    }

    /// `field[$op]=<ISO timestamp with millis>`.
    pub fn date(mut self, field: &str, op: DateOp, at: DateTime<Utc>) -> Self {
        self.params
            .push((format!("{field}[{}]", op.as_str()), format_timestamp(at)));
        self
    }

    /// `modifiedAt[$gt]=at`: objects changed strictly after `at`.
    pub fn modified_after(self, at: DateTime<Utc>) -> Self {
        self.date("modifiedAt", DateOp::Gt, at)
    }

    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    fn has_field(&self, field: &str) -> bool {
        self.params
            .iter()
            .any(|(name, _)| base_field(name) == field)
    }

    /// Fields compared with a date operator (`field[$gt]` and the like; `[$in]` is not one).
    fn date_fields(&self) -> impl Iterator<Item = &str> {
        self.params
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| name.contains('[') && !name.ends_with("[$in]"))
            .map(base_field)
    }
}

fn base_field(param: &str) -> &str {
    param.split('[').next().unwrap_or(param)
}

/// A time window for bookings: those whose series overlaps `[from, to)`.
///
/// Sent as `seriesStart[$lt]=to&seriesEnd[$gte]=from`: the API filters bookings by their series
/// bounds only and rejects `start`/`end` ([`wire::BOOKING_WINDOW_FIELDS`]). A booking ending exactly
/// at `from` is included; the engine decides by the booking's own dates anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl BookingWindow {
    fn apply(self, query: ListQuery) -> ListQuery {
        let [series_start, series_end] = wire::BOOKING_WINDOW_FIELDS;
        query
            .date(series_start, DateOp::Lt, self.to)
            .date(series_end, DateOp::Gte, self.from)
    }
}

/// A webhook registered through `POST /webhooks`.
#[derive(Debug, Clone)]
pub struct RegisteredWebhook {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    /// Signing secret for `officernd-signature` (see [`super::webhooks::verify`]).
    pub secret: Secret,
}

impl RegisteredWebhook {
    /// Reads a webhook object (`{_id, url?, eventTypes?, secret, …}`, the registration reply and
    /// each item of `GET /webhooks`); `url` and `event_types` fill in what the reply leaves out.
    /// The error names the field, never a value: the object holds the signing secret.
    pub fn from_reply(
        body: &[u8],
        url: &str,
        event_types: &[&str],
    ) -> Result<Self, serde_json::Error> {
        let created: WebhookReply = serde_json::from_slice(body)?;
        Ok(RegisteredWebhook {
            id: created.id,
            url: created.url.unwrap_or_else(|| url.to_owned()),
            event_types: created
                .event_types
                .unwrap_or_else(|| event_types.iter().map(|s| (*s).to_owned()).collect()),
            secret: Secret::new(created.secret),
        })
    }
}

/// The list envelope, as far as the client reads it. `cursorNext` absent (or null/empty) means this
/// was the last page; `rangeStart`/`rangeEnd` are not read (the docs say 0-based, the wire is 1-based).
#[derive(Debug, Deserialize)]
pub struct ListPage<T> {
    pub results: Vec<T>,
    #[serde(rename = "cursorNext", default)]
    pub cursor_next: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    expires_in: u64,
    #[serde(default)]
    scope: Option<String>,
}

#[derive(Deserialize)]
struct WebhookReply {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(rename = "eventTypes", default)]
    event_types: Option<Vec<String>>,
    secret: String,
}

#[derive(Serialize)]
struct WebhookRegistration<'a> {
    url: &'a str,
    #[serde(rename = "eventTypes")]
    event_types: &'a [&'a str],
    description: &'a str,
}

/// OfficeRnD v2 client for one organization. Cheap to clone; clones share tokens and the rate limit.
///
/// A client reads with the token of the collections it was told it reads ([`Self::reading`]),
/// plus the one collection a call names: a whole read of the collections the bindings need uses one
/// token, and a single call on a fresh client asks for nothing but its own scope.
#[derive(Clone)]
pub struct OfficeRndClient {
    inner: Arc<Inner>,
    reads: CollectionSet,
}

struct Inner {
    config: OfficeRndConfig,
    http: ResilientClient,
    /// The same client without retries, for requests sent before any request proved that the
    /// organization exists (see [`OfficeRndClient::read_json`]).
    single: ResilientClient,
    token_url: Url,
    refresh: RefreshPolicy,
    clock: Clock,
    /// One token per purpose; a handful of purposes per organization in practice.
    tokens: Mutex<HashMap<TokenPurpose, Arc<TokenCache>>>,
    /// Set once any API request succeeded: the slug names an organization.
    organization_confirmed: AtomicBool,
}

impl fmt::Debug for OfficeRndClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfficeRndClient")
            .field("config", &self.inner.config)
            .field("reads", &self.reads)
            .finish_non_exhaustive()
    }
}

/// The token request of one purpose: client credentials with exactly the purpose's scopes.
struct PurposeToken<'a> {
    inner: &'a Inner,
    purpose: TokenPurpose,
}

impl TokenSource for PurposeToken<'_> {
    async fn fetch(&self, _renewal: Renewal) -> Result<Renewed, HttpError> {
        let scopes = self.purpose.scopes();
        let token = self.inner.request_token(&scopes).await?;
        if !is_bearer_type(token.token_type.as_deref()) {
            tracing::warn!(token_type = ?token.token_type, "OfficeRnD issued a non-bearer token; using it as bearer");
        }
        if let Some(granted) = &token.scope {
            let granted: HashSet<&str> = granted.split_whitespace().collect();
            let missing: Vec<&str> = scopes
                .iter()
                .map(String::as_str)
                .filter(|scope| !granted.contains(scope))
                .collect();
            if !missing.is_empty() {
                tracing::warn!(
                    ?missing,
                    purpose = ?self.purpose,
                    "OfficeRnD token lacks requested scopes; calls needing them will fail"
                );
            }
        }
        tracing::debug!(
            purpose = ?self.purpose,
            expires_in = token.expires_in,
            "fetched OfficeRnD access token"
        );
        Ok(Issued::new(Secret::new(token.access_token), token.expires_in).into())
    }
}

impl Inner {
    /// One token request for exactly `scopes`, cached nowhere.
    async fn request_token(&self, scopes: &[String]) -> Result<TokenResponse, HttpError> {
        let scope = scopes.join(" ");
        let form = [
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.expose()),
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
        ];
        let response = self
            .http
            .send_with(Idempotency::Idempotent, || {
                self.http
                    .http()
                    .post(self.token_url.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .form(&form)
            })
            .await?;
        read_credential_reply(
            response,
            self.token_url.path(),
            "token response",
            "token response is not {access_token, expires_in, …}",
        )
        .await
    }

    fn cache(&self, purpose: TokenPurpose) -> Arc<TokenCache> {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens
            .entry(purpose)
            .or_insert_with(|| Arc::new(TokenCache::new(self.refresh, self.clock.clone())))
            .clone()
    }

    async fn token(&self, purpose: TokenPurpose) -> Result<BearerToken, HttpError> {
        self.cache(purpose)
            .token(&PurposeToken {
                inner: self,
                purpose,
            })
            .await
    }

    fn confirm_organization(&self) {
        self.organization_confirmed.store(true, Ordering::Relaxed);
    }
}

/// Whether a token request failed in a way a refused scope explains: a 400 that is not one of the
/// OAuth2 codes blaming the client credentials.
fn may_be_a_refused_scope(error: &HttpError) -> bool {
    match error {
        HttpError::BadRequest {
            status, message, ..
        } => {
            *status == reqwest::StatusCode::BAD_REQUEST
                && !wire::CREDENTIAL_ERRORS
                    .iter()
                    .any(|code| message.contains(code))
        }
        _ => false,
    }
}

impl OfficeRndClient {
    pub fn new(config: OfficeRndConfig) -> Result<Self, OfficeRndError> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("flexgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                OfficeRndError::Config(format!("cannot build HTTP client: {error}"))
            })?;
        let resilient = ResilientClient::new(http)
            .with_policy(config.retry.clone())
            .with_rate_limiter(RateLimiter::new(config.requests_per_second))
            .with_attempt_timeout(config.attempt_timeout);
        let single = resilient.clone().with_policy(RetryPolicy::no_retries());
        let mut token_url = config.identity_url.clone();
        token_url
            .path_segments_mut()
            .map_err(|()| OfficeRndError::Config("identity URL cannot be a base URL".into()))?
            .pop_if_empty()
            .extend(TOKEN_PATH);
        let refresh = RefreshPolicy::Margin(config.token_refresh_margin);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http: resilient,
                single,
                token_url,
                refresh,
                clock: system_clock(),
                tokens: Mutex::new(HashMap::new()),
                organization_confirmed: AtomicBool::new(false),
            }),
            reads: CollectionSet::EMPTY,
        })
    }

    /// Uses `clock` for token expiry decisions (tests and the sandbox share a controllable clock).
    /// Call before the client is cloned; clones made earlier keep the previous clock.
    pub fn with_clock(self, clock: Clock) -> Self {
        let reads = self.reads;
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.clock = clock.clone();
                // Only a fresh client is unshared; a cache made already is dropped, not re-clocked.
                inner
                    .tokens
                    .get_mut()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                Self {
                    inner: Arc::new(inner),
                    reads,
                }
            }
            Err(shared) => {
                tracing::warn!("OfficeRndClient::with_clock on a shared client: clock unchanged");
                Self {
                    inner: shared,
                    reads,
                }
            }
        }
    }

    /// This client (sharing tokens and the rate limit) for a read of `reads`: every read call
    /// uses the token for these collections (plus the collection it names), so a whole read asks
    /// for one token with exactly the scopes it needs.
    pub fn reading(&self, reads: CollectionSet) -> Self {
        Self {
            inner: self.inner.clone(),
            reads,
        }
    }

    /// The collections this client was told it reads.
    pub fn reads(&self) -> CollectionSet {
        self.reads
    }

    pub fn config(&self) -> &OfficeRndConfig {
        &self.inner.config
    }

    fn url(&self, segments: &[&str]) -> Result<Url, OfficeRndError> {
        let mut url = self.inner.config.api_url.clone();
        url.path_segments_mut()
            .map_err(|()| OfficeRndError::Config("API URL cannot be a base URL".into()))?
            .pop_if_empty()
            .extend([
                "api",
                "v2",
                "organizations",
                self.inner.config.org_slug.as_str(),
            ])
            .extend(segments);
        Ok(url)
    }

    /// The token purpose of a read of `collection`.
    fn read_purpose(&self, collection: Collection) -> TokenPurpose {
        TokenPurpose::Read(self.reads.with(collection))
    }

    /// Fetches the purpose's token before the call so that token failures are reported as such,
    /// naming the refused scopes when the identity server refused some.
    async fn ensure_token(&self, purpose: TokenPurpose) -> Result<(), OfficeRndError> {
        let Err(source) = self.inner.token(purpose).await.map(drop) else {
            return Ok(());
        };
        let scopes = purpose.scopes();
        if may_be_a_refused_scope(&source) {
            if let Some(refused) = self.refused_scopes(&scopes, &source).await {
                return Err(OfficeRndError::ScopeRefused { refused });
            }
        }
        Err(OfficeRndError::Token {
            scopes: scopes.join(" "),
            source,
        })
    }

    /// Which of `scopes` the identity server refuses, asking for each alone (the refusal does not
    /// name the scope, [`wire::INVALID_SCOPE`]); `None` when that does not single any out (every
    /// one refused without an `invalid_scope` code, or a request failing otherwise).
    async fn refused_scopes(&self, scopes: &[String], first: &HttpError) -> Option<Vec<String>> {
        let mut refused = Vec::new();
        let mut granted = 0;
        for scope in scopes {
            match self.inner.request_token(std::slice::from_ref(scope)).await {
                Ok(_) => granted += 1,
                Err(error) if may_be_a_refused_scope(&error) => refused.push(scope.clone()),
                Err(_) => return None,
            }
        }
        let said_invalid_scope = matches!(first, HttpError::BadRequest { message, .. } if message.contains(wire::INVALID_SCOPE));
        (!refused.is_empty() && (granted > 0 || said_invalid_scope)).then_some(refused)
    }

    fn map_error(
        &self,
        purpose: TokenPurpose,
        operation: &str,
        error: HttpError,
    ) -> OfficeRndError {
        match error {
            HttpError::Unauthorized { .. } => OfficeRndError::Unauthorized {
                operation: operation.to_owned(),
                scopes: purpose.scopes().join(" "),
            },
            HttpError::Transient { ref reason, .. } if wire::is_organization_not_found(reason) => {
                OfficeRndError::OrganizationNotFound {
                    slug: self.inner.config.org_slug.clone(),
                }
            }
            other => OfficeRndError::Http(other),
        }
    }

    /// Sends a read and decodes its JSON.
    ///
    /// Until a request has proved that the organization exists, a request is first sent once
    /// without retries: a wrong slug gets 500 "Organization not found", which the retry policy
    /// cannot tell from an outage by its status, so it would otherwise be repeated as one. After
    /// any other retryable failure of that attempt, the wait the policy would have made is made
    /// (or the error returned when it does not fit the budget), and the request goes on through
    /// the retry policy.
    async fn read_json<T: DeserializeOwned>(
        &self,
        purpose: TokenPurpose,
        operation: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<T, OfficeRndError> {
        let cache = self.inner.cache(purpose);
        let auth = BearerAuth::new(
            &cache,
            PurposeToken {
                inner: &self.inner,
                purpose,
            },
        );
        if !self.inner.organization_confirmed.load(Ordering::Relaxed) {
            let started = tokio::time::Instant::now();
            match self.inner.single.send_json(&auth, &build).await {
                Ok(value) => {
                    self.inner.confirm_organization();
                    return Ok(value);
                }
                Err(error) => {
                    // The wait the retry policy would have made after this first attempt.
                    let policy = self.inner.http.policy();
                    let delay = match &error {
                        HttpError::RateLimited { retry_after, .. } => {
                            retry_after.unwrap_or(policy.default_retry_after)
                        }
                        HttpError::Transient { .. } => policy.backoff(1),
                        _ => Duration::MAX,
                    };
                    let error = self.map_error(purpose, operation, error);
                    if !error.is_retryable_later() || !policy.allows(1, started.elapsed(), delay) {
                        return Err(error);
                    }
                    tokio::time::sleep(delay).await;
                }
            }
        }
        let value = self
            .inner
            .http
            .send_json(&auth, build)
            .await
            .map_err(|error| self.map_error(purpose, operation, error))?;
        self.inner.confirm_organization();
        Ok(value)
    }

    /// Lists a whole collection, following `$cursorNext` until it is absent.
    ///
    /// All-or-nothing: each page goes through the retry policy (a failed page is re-requested with the
    /// same cursor), and when the policy gives up on a page after an outage (5xx, timeout), that page alone
    /// is asked for again up to `page_rounds` more times, each after a longer wait, keeping the pages
    /// read; if it still fails, the call fails and the pages already read are dropped, so a caller
    /// never sees part of a list.
    pub async fn list<T: DeserializeOwned>(
        &self,
        collection: Collection,
        query: &ListQuery,
    ) -> Result<Vec<T>, OfficeRndError> {
        self.check_query(collection, query)?;
        let purpose = self.read_purpose(collection);
        self.ensure_token(purpose).await?;
        let url = self.url(&[collection.path()])?;
        let page_size = self.inner.config.page_size.to_string();
        let operation = format!("GET {}", collection.path());

        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen_cursors = HashSet::new();
        for _ in 0..MAX_PAGES {
            let mut round = 0;
            let page: ListPage<T> = loop {
                let read = self
                    .read_json(purpose, &operation, || {
                        let mut request = self
                            .inner
                            .http
                            .http()
                            .get(url.clone())
                            .header(reqwest::header::ACCEPT, "application/json")
                            .query(query.params())
                            .query(&[("$limit", page_size.as_str())]);
                        if let Some(cursor) = &cursor {
                            request = request.query(&[("$cursorNext", cursor.as_str())]);
                        }
                        request
                    })
                    .await;
                match read {
                    Ok(page) => break page,
                    // Outages only: a 429 the policy gave up on carries the server's own wait,
                    // which a shorter round of ours must not undercut.
                    Err(error @ OfficeRndError::Http(HttpError::Transient { .. }))
                        if round < self.inner.config.page_rounds =>
                    {
                        round += 1;
                        let wait = self.inner.http.policy().max_delay.saturating_mul(round);
                        tracing::warn!(%error, round, pages_read = items.len() / self.inner.config.page_size.max(1) as usize, ?wait, "an OfficeRnD page failed; retrying that page, keeping the pages read");
                        tokio::time::sleep(wait).await;
                    }
                    Err(error) => return Err(error),
                }
            };
            items.extend(page.results);
            match page.cursor_next.filter(|next| !next.is_empty()) {
                None => return Ok(items),
                Some(next) => {
                    if !seen_cursors.insert(next.clone()) {
                        return Err(cursor_loop(url.path(), "the server repeated a cursor"));
                    }
                    cursor = Some(next);
                }
            }
        }
        Err(cursor_loop(
            url.path(),
            &format!("more than {MAX_PAGES} pages"),
        ))
    }

    /// Refuses, before sending, what the API would refuse: date filters it does not take (e.g.
    /// `start` on bookings), and unfiltered lists of collections that need a parent filter.
    fn check_query(&self, collection: Collection, query: &ListQuery) -> Result<(), OfficeRndError> {
        if query.has_field("modifiedAt") && !collection.supports_modified_filter() {
            return Err(OfficeRndError::UnsupportedQuery {
                collection,
                reason: "the API does not accept modifiedAt filters here; list it whole".into(),
            });
        }
        if let Some(field) = query
            .date_fields()
            .find(|field| !collection.date_filters().contains(field))
        {
            return Err(OfficeRndError::UnsupportedQuery {
                collection,
                reason: format!(
                    "the API rejects date filters on {field} here (it takes {})",
                    collection.date_filters().join(", ")
                ),
            });
        }
        let required = collection.required_filters();
        if !required.is_empty() && !required.iter().any(|field| query.has_field(field)) {
            return Err(OfficeRndError::UnsupportedQuery {
                collection,
                reason: format!(
                    "cannot be listed without one of the filters {}",
                    required.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// One page of a list: `query` with `$limit=limit`, no cursor. For a check that must not list
    /// a whole collection.
    pub async fn first_page<T: DeserializeOwned>(
        &self,
        collection: Collection,
        query: &ListQuery,
        limit: u32,
    ) -> Result<ListPage<T>, OfficeRndError> {
        self.check_query(collection, query)?;
        let purpose = self.read_purpose(collection);
        self.ensure_token(purpose).await?;
        let url = self.url(&[collection.path()])?;
        let limit = limit.clamp(1, MAX_PAGE_SIZE).to_string();
        let operation = format!("GET {}", collection.path());
        self.read_json(purpose, &operation, || {
            self.inner
                .http
                .http()
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .query(query.params())
                .query(&[("$limit", limit.as_str())])
        })
        .await
    }

    /// The first page of a collection with `$limit=1`: proves the credentials and the read scope
    /// in one request, without listing the collection.
    pub async fn probe<T: DeserializeOwned>(
        &self,
        collection: Collection,
    ) -> Result<Vec<T>, OfficeRndError> {
        self.first_page(collection, &ListQuery::new(), 1)
            .await
            .map(|page| page.results)
    }

    /// Asks for a token with the read scopes of `reads` (nothing else), so that a refused scope is
    /// reported, by name, before anything needs it.
    pub async fn check_read_scopes(&self, reads: CollectionSet) -> Result<(), OfficeRndError> {
        if reads.is_empty() {
            return Ok(());
        }
        self.ensure_token(TokenPurpose::Read(reads)).await
    }

    /// `GET /{collection}/{id}`; a missing object is [`HttpError::NotFound`].
    pub async fn get<T: DeserializeOwned>(
        &self,
        collection: Collection,
        id: &str,
    ) -> Result<T, OfficeRndError> {
        let purpose = self.read_purpose(collection);
        self.ensure_token(purpose).await?;
        let url = self.url(&[collection.path(), id])?;
        let operation = format!("GET {}/{{id}}", collection.path());
        self.read_json(purpose, &operation, || {
            self.inner
                .http
                .http()
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
        })
        .await
    }

    /// Members; only those modified after `modified_after` when given.
    pub async fn list_members<T: DeserializeOwned>(
        &self,
        modified_after: Option<DateTime<Utc>>,
    ) -> Result<Vec<T>, OfficeRndError> {
        self.list(Collection::Members, &incremental(modified_after))
            .await
    }

    pub async fn list_companies<T: DeserializeOwned>(
        &self,
        modified_after: Option<DateTime<Utc>>,
    ) -> Result<Vec<T>, OfficeRndError> {
        self.list(Collection::Companies, &incremental(modified_after))
            .await
    }

    /// All memberships. No incremental form: the API rejects `modifiedAt` filters on memberships.
    pub async fn list_memberships<T: DeserializeOwned>(&self) -> Result<Vec<T>, OfficeRndError> {
        self.list(Collection::Memberships, &ListQuery::new()).await
    }

    pub async fn list_plans<T: DeserializeOwned>(&self) -> Result<Vec<T>, OfficeRndError> {
        self.list(Collection::Plans, &ListQuery::new()).await
    }

    pub async fn list_locations<T: DeserializeOwned>(&self) -> Result<Vec<T>, OfficeRndError> {
        self.list(Collection::Locations, &ListQuery::new()).await
    }

    pub async fn list_floors<T: DeserializeOwned>(&self) -> Result<Vec<T>, OfficeRndError> {
        self.list(Collection::Floors, &ListQuery::new()).await
    }

    pub async fn list_resources<T: DeserializeOwned>(
        &self,
        modified_after: Option<DateTime<Utc>>,
    ) -> Result<Vec<T>, OfficeRndError> {
        self.list(Collection::Resources, &incremental(modified_after))
            .await
    }

    /// Assignments of the given resources, `resource[$in]=…` in batches of
    /// [`wire::IDS_PER_FILTER`] ids (`assignment_concurrency` batches at a time).
    ///
    /// `/assignments` cannot be listed without a `resource` or `membership` filter; the `$in` form is
    /// the v2 query language's multi-value filter ([`wire::IDS_PER_FILTER`] says what is known). All-
    /// or-nothing like [`Self::list`].
    pub async fn list_assignments_for_resources<T: DeserializeOwned>(
        &self,
        resource_ids: &[String],
    ) -> Result<Vec<T>, OfficeRndError> {
        self.list_by_ids(Collection::Assignments, "resource", resource_ids)
            .await
    }

    /// Assignments of the given memberships, `membership[$in]=…` in batches (see
    /// [`Self::list_assignments_for_resources`]).
    pub async fn list_assignments_for_memberships<T: DeserializeOwned>(
        &self,
        membership_ids: &[String],
    ) -> Result<Vec<T>, OfficeRndError> {
        self.list_by_ids(Collection::Assignments, "membership", membership_ids)
            .await
    }

    /// The objects of `collection` whose `field` is one of `ids`: `field[$in]=…` in batches of
    /// [`wire::IDS_PER_FILTER`], `assignment_concurrency` batches at a time; all-or-nothing.
    pub async fn list_by_ids<T: DeserializeOwned>(
        &self,
        collection: Collection,
        field: &str,
        ids: &[String],
    ) -> Result<Vec<T>, OfficeRndError> {
        let concurrency = self.inner.config.assignment_concurrency.max(1);
        // Owned batches: a closure over borrowed ids makes this future's `Send` proof fail inside
        // kube-runtime controllers (higher-ranked lifetime limitation of rustc).
        let batches: Vec<Vec<String>> = ids
            .chunks(wire::IDS_PER_FILTER)
            .map(<[String]>::to_vec)
            .collect();
        let field = field.to_owned();
        let per_batch: Vec<Vec<T>> = futures::stream::iter(batches)
            .map(|batch: Vec<String>| {
                let query = ListQuery::new().any_of(&field, &batch);
                async move { self.list::<T>(collection, &query).await }
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        Ok(per_batch.into_iter().flatten().collect())
    }

    /// Assignments of one membership (e.g. after a `membership.updated` webhook).
    pub async fn list_assignments_for_membership<T: DeserializeOwned>(
        &self,
        membership_id: &str,
    ) -> Result<Vec<T>, OfficeRndError> {
        self.list(
            Collection::Assignments,
            &ListQuery::new().eq("membership", membership_id),
        )
        .await
    }

    /// `GET /{collection}/count` → `{"total": n}`: how many objects the collection holds, in one
    /// request (documented for members and memberships, inferred for assignments;
    /// [`wire::COUNTED`]).
    pub async fn count(&self, collection: Collection) -> Result<u64, OfficeRndError> {
        #[derive(Deserialize)]
        struct Total {
            total: u64,
        }
        if !wire::COUNTED.contains(&collection) {
            return Err(OfficeRndError::UnsupportedQuery {
                collection,
                reason: "the API documents no count endpoint here".into(),
            });
        }
        let purpose = self.read_purpose(collection);
        self.ensure_token(purpose).await?;
        let url = self.url(&[collection.path(), "count"])?;
        let operation = format!("GET {}/count", collection.path());
        let total: Total = self
            .read_json(purpose, &operation, || {
                self.inner
                    .http
                    .http()
                    .get(url.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        Ok(total.total)
    }

    /// [`Self::count`], or `None` when the API does not serve the count for this collection
    /// ([`wire::COUNT_REFUSED`]: 404 or 400), so the caller can fall back to a whole read.
    pub async fn count_if_served(
        &self,
        collection: Collection,
    ) -> Result<Option<u64>, OfficeRndError> {
        match self.count(collection).await {
            Ok(total) => Ok(Some(total)),
            Err(OfficeRndError::Http(HttpError::NotFound { .. })) => Ok(None),
            Err(OfficeRndError::Http(HttpError::BadRequest { status, .. }))
                if wire::COUNT_REFUSED.contains(&status.as_u16()) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Bookings whose series starts in `[from, to)`: what a booking window gains when its end
    /// moves from `from` to `to` (series starting earlier were in the window already, or ended).
    pub async fn list_bookings_starting<T: DeserializeOwned>(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<T>, OfficeRndError> {
        let [series_start, _] = wire::BOOKING_WINDOW_FIELDS;
        let query = ListQuery::new().date(series_start, DateOp::Gte, from).date(
            series_start,
            DateOp::Lt,
            to,
        );
        self.list(Collection::Bookings, &query).await
    }

    /// Bookings whose series overlaps `window` (see [`BookingWindow`]), optionally only those
    /// modified after `modified_after`.
    pub async fn list_bookings<T: DeserializeOwned>(
        &self,
        window: Option<BookingWindow>,
        modified_after: Option<DateTime<Utc>>,
    ) -> Result<Vec<T>, OfficeRndError> {
        let mut query = incremental(modified_after);
        if let Some(window) = window {
            query = window.apply(query);
        }
        self.list(Collection::Bookings, &query).await
    }

    pub async fn list_passes<T: DeserializeOwned>(
        &self,
        modified_after: Option<DateTime<Utc>>,
    ) -> Result<Vec<T>, OfficeRndError> {
        self.list(Collection::Passes, &incremental(modified_after))
            .await
    }

    pub async fn list_visitors<T: DeserializeOwned>(
        &self,
        modified_after: Option<DateTime<Utc>>,
    ) -> Result<Vec<T>, OfficeRndError> {
        self.list(Collection::Visitors, &incremental(modified_after))
            .await
    }

    /// `POST /bookings` with `booking` (API field names) and returns the created booking.
    ///
    /// Not retried after a 5xx or timeout (a retry could book twice); 429 and connect errors are retried.
    pub async fn create_booking<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        booking: &B,
    ) -> Result<T, OfficeRndError> {
        let purpose = TokenPurpose::CreateBookings;
        self.ensure_token(purpose).await?;
        let url = self.url(&[Collection::Bookings.path()])?;
        let cache = self.inner.cache(purpose);
        let auth = BearerAuth::new(
            &cache,
            PurposeToken {
                inner: &self.inner,
                purpose,
            },
        );
        let created = self
            .inner
            .http
            .send_json(&auth, || {
                self.inner.http.http().post(url.clone()).json(booking)
            })
            .await
            .map_err(|error| self.map_error(purpose, "POST bookings", error))?;
        self.inner.confirm_organization();
        Ok(created)
    }

    /// `POST /webhooks {url, eventTypes, description}`; the answer carries `_id` and the signing secret.
    pub async fn register_webhook(
        &self,
        url: &str,
        event_types: &[&str],
        description: &str,
    ) -> Result<RegisteredWebhook, OfficeRndError> {
        let purpose = TokenPurpose::ManageWebhooks;
        self.ensure_token(purpose).await?;
        let endpoint = self.url(&["webhooks"])?;
        let registration = WebhookRegistration {
            url,
            event_types,
            description,
        };
        let cache = self.inner.cache(purpose);
        let auth = BearerAuth::new(
            &cache,
            PurposeToken {
                inner: &self.inner,
                purpose,
            },
        );
        let response = self
            .inner
            .http
            .send_authorized(&auth, || {
                self.inner
                    .http
                    .http()
                    .post(endpoint.clone())
                    .json(&registration)
            })
            .await
            .map_err(|error| self.map_error(purpose, "POST webhooks", error))?;
        self.inner.confirm_organization();
        let body = response.bytes().await.map_err(|_| HttpError::Transient {
            method: Method::POST,
            path: endpoint.path().to_owned(),
            attempts: 1,
            reason: "webhook registration response interrupted".into(),
        })?;
        RegisteredWebhook::from_reply(&body, url, event_types).map_err(|error| {
            OfficeRndError::Http(HttpError::protocol(
                &Method::POST,
                endpoint.path(),
                format!("webhook registration reply lacks _id/secret: {error}"),
                // The body holds the signing secret.
                BodyExcerpt::withheld(),
            ))
        })
    }

    /// Drops every cached token (e.g. after the client secret was rotated).
    pub async fn forget_tokens(&self) {
        let caches: Vec<Arc<TokenCache>> = self
            .inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for cache in caches {
            cache.forget().await;
        }
    }
}

fn incremental(modified_after: Option<DateTime<Utc>>) -> ListQuery {
    match modified_after {
        Some(at) => ListQuery::new().modified_after(at),
        None => ListQuery::new(),
    }
}

fn cursor_loop(path: &str, detail: &str) -> OfficeRndError {
    OfficeRndError::Http(HttpError::protocol(
        &Method::GET,
        path,
        format!("paging did not terminate: {detail}"),
        BodyExcerpt::from_body(b""),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_language_shapes() {
        let at = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let query = ListQuery::new()
            .eq("company", "abc")
            .any_of("status", &["active", "pending"])
            .modified_after(at);
        assert_eq!(
            query.params(),
            &[
                ("company".to_owned(), "abc".to_owned()),
                ("status[$in]".to_owned(), "active,pending".to_owned()),
                (
                    "modifiedAt[$gt]".to_owned(),
                    "2025-01-01T00:00:00.000Z".to_owned()
                ),
            ]
        );
        assert!(query.has_field("modifiedAt"));
        assert!(!query.has_field("createdAt"));
    }

    #[test]
    fn scopes_are_minimal_per_purpose() {
        assert_eq!(
            TokenPurpose::CreateBookings.scopes(),
            vec!["flex.space.bookings.create"]
        );
        assert_eq!(
            TokenPurpose::ManageWebhooks.scopes(),
            vec!["flex.settings.webhooks.create"]
        );
        let read = TokenPurpose::Read(CollectionSet::of(&[
            Collection::Members,
            Collection::Passes,
        ]))
        .scopes();
        assert_eq!(
            read,
            vec!["flex.community.members.read", "flex.space.passes.read"]
        );
    }

    #[test]
    fn booking_windows_use_the_series_bounds_and_start_filters_are_refused_before_sending() {
        let window = BookingWindow {
            from: DateTime::parse_from_rfc3339("2025-05-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            to: DateTime::parse_from_rfc3339("2025-05-02T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        let names: Vec<String> = window
            .apply(ListQuery::new())
            .params()
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        assert_eq!(names, vec!["seriesStart[$lt]", "seriesEnd[$gte]"]);

        let client =
            OfficeRndClient::new(OfficeRndConfig::new("acme", "id", "secret").unwrap()).unwrap();
        let start = ListQuery::new().date("start", DateOp::Lt, window.to);
        assert!(matches!(
            client.check_query(Collection::Bookings, &start),
            Err(OfficeRndError::UnsupportedQuery { .. })
        ));
        assert!(client
            .check_query(Collection::Bookings, &window.apply(ListQuery::new()))
            .is_ok());
    }

    #[test]
    fn config_rejects_oversized_pages_and_debug_hides_the_secret() {
        let mut config = OfficeRndConfig::new("acme", "id", "very-secret-value").unwrap();
        assert!(!format!("{config:?}").contains("very-secret-value"));
        config.page_size = 51;
        assert!(matches!(config.validate(), Err(OfficeRndError::Config(_))));
    }
}
