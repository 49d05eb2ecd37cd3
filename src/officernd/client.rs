//! OfficeRnD Flex API v2 client: OAuth2 client-credentials tokens per operation group, cursor-paged
//! listing (all-or-nothing), incremental refresh, booking creation and webhook registration.
//!
//! Wire facts used (vendor-apis.md §1, recorded/officernd): token `POST {identity}/oauth/token` (form:
//! `client_id, client_secret, grant_type=client_credentials, scope` space-separated) →
//! `{access_token, token_type:"Bearer", expires_in:3599, scope}`; API base
//! `{api}/api/v2/organizations/{orgSlug}/{collection}`; list envelope `{results, cursorNext?, cursorPrev?,
//! rangeStart, rangeEnd}` where `cursorNext` is ABSENT on the last page; `$limit` ≤ 50; a token missing a
//! scope gets 401 (not 403); no rate-limit numbers are published.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use super::collection::{Access, Collection};
use super::{format_timestamp, system_clock, Clock};
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
    /// Client-side limit for this organization. OfficeRnD publishes no numbers; 5/s is a cautious guess.
    pub requests_per_second: f64,
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
    /// `$limit` per page, 1 ..= 50.
    pub page_size: u32,
    /// Tokens are replaced this long before they expire (capped at half the token lifetime).
    pub token_refresh_margin: Duration,
    /// Parallel requests when assignments are fetched per resource.
    pub assignment_concurrency: usize,
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
            requests_per_second: 5.0,
            attempt_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            page_size: MAX_PAGE_SIZE,
            token_refresh_margin: Duration::from_secs(60),
            assignment_concurrency: 4,
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

/// Groups of operations that each get a token with only the scopes they need.
///
/// Separate tokens because the token request fails as a whole when it names a scope the app was not
/// granted: a read-only app must still be able to sync even though booking creation is impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationGroup {
    /// Reading every collection the sync uses.
    SyncRead,
    /// `POST /bookings`.
    CreateBookings,
    /// `POST /webhooks`.
    ManageWebhooks,
}

impl OperationGroup {
    const ALL: [OperationGroup; 3] = [Self::SyncRead, Self::CreateBookings, Self::ManageWebhooks];

    /// The exact scopes requested for this group.
    pub fn scopes(self) -> Vec<String> {
        match self {
            Self::SyncRead => Collection::ALL
                .iter()
                .map(|c| c.scope(Access::Read))
                .collect(),
            Self::CreateBookings => vec![Collection::Bookings.scope(Access::Create)],
            Self::ManageWebhooks => vec![WEBHOOKS_CREATE_SCOPE.to_owned()],
        }
    }

    fn index(self) -> usize {
        match self {
            Self::SyncRead => 0,
            Self::CreateBookings => 1,
            Self::ManageWebhooks => 2,
        }
    }
}

/// Failures of OfficeRnD calls.
#[derive(Debug, thiserror::Error)]
pub enum OfficeRndError {
    #[error("invalid OfficeRnD configuration: {0}")]
    Config(String),
    /// The identity server refused or failed to issue a token.
    #[error("OfficeRnD token request for scopes [{scopes}] failed: {source}; check the client id/secret and that the app is granted exactly these scopes")]
    Token {
        scopes: String,
        #[source]
        source: HttpError,
    },
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
}

fn base_field(param: &str) -> &str {
    param.split('[').next().unwrap_or(param)
}

/// A time window for bookings: those overlapping `[from, to)`.
///
/// UNKNOWN WIRE SHAPE: no source documents a time-window filter on v2 `GET /bookings`. We send
/// `start[$lt]=to&end[$gt]=from` (the date-operator syntax documented for `createdAt`/`modifiedAt`,
/// applied to the booking's `start`/`end` fields). How recurring series are matched (first occurrence vs.
/// series range) is unknown too; this is the one place to change when the real shape is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl BookingWindow {
    fn apply(self, query: ListQuery) -> ListQuery {
        query
            .date("start", DateOp::Lt, self.to)
            .date("end", DateOp::Gt, self.from)
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

/// The list envelope. `cursorNext` absent (or null/empty) means this was the last page.
#[derive(Deserialize)]
struct Page<T> {
    results: Vec<T>,
    #[serde(rename = "cursorNext", default)]
    cursor_next: Option<String>,
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
struct WebhookCreated {
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
#[derive(Clone)]
pub struct OfficeRndClient {
    inner: std::sync::Arc<Inner>,
}

struct Inner {
    config: OfficeRndConfig,
    http: ResilientClient,
    token_url: Url,
    /// One token per [`OperationGroup`], indexed by [`OperationGroup::index`].
    tokens: [TokenCache; 3],
}

impl fmt::Debug for OfficeRndClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfficeRndClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The token request of one operation group: client credentials with exactly the group's scopes.
struct GroupToken<'a> {
    inner: &'a Inner,
    group: OperationGroup,
}

impl TokenSource for GroupToken<'_> {
    async fn fetch(&self, _renewal: Renewal) -> Result<Renewed, HttpError> {
        let (inner, group) = (self.inner, self.group);
        let scopes = group.scopes();
        let scope = scopes.join(" ");
        let form = [
            ("client_id", inner.config.client_id.as_str()),
            ("client_secret", inner.config.client_secret.expose()),
            ("grant_type", "client_credentials"),
            ("scope", scope.as_str()),
        ];
        let response = inner
            .http
            .send_with(Idempotency::Idempotent, || {
                inner
                    .http
                    .http()
                    .post(inner.token_url.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .form(&form)
            })
            .await?;
        let token: TokenResponse = read_credential_reply(
            response,
            inner.token_url.path(),
            "token response",
            "token response is not {access_token, expires_in, …}",
        )
        .await?;
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
                    ?group,
                    "OfficeRnD token lacks requested scopes; calls needing them will fail"
                );
            }
        }
        tracing::debug!(
            ?group,
            expires_in = token.expires_in,
            "fetched OfficeRnD access token"
        );
        Ok(Issued::new(Secret::new(token.access_token), token.expires_in).into())
    }
}

impl Inner {
    async fn token(&self, group: OperationGroup) -> Result<BearerToken, HttpError> {
        self.tokens[group.index()]
            .token(&GroupToken { inner: self, group })
            .await
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
        let mut token_url = config.identity_url.clone();
        token_url
            .path_segments_mut()
            .map_err(|()| OfficeRndError::Config("identity URL cannot be a base URL".into()))?
            .pop_if_empty()
            .extend(TOKEN_PATH);
        let refresh = RefreshPolicy::Margin(config.token_refresh_margin);
        Ok(Self {
            inner: std::sync::Arc::new(Inner {
                config,
                http: resilient,
                token_url,
                tokens: OperationGroup::ALL.map(|_| TokenCache::new(refresh, system_clock())),
            }),
        })
    }

    /// Uses `clock` for token expiry decisions (tests and the sandbox share a controllable clock).
    /// Call before the client is cloned; clones made earlier keep the previous clock.
    pub fn with_clock(self, clock: Clock) -> Self {
        match std::sync::Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                for tokens in &mut inner.tokens {
                    tokens.set_clock(clock.clone());
                }
                Self {
                    inner: std::sync::Arc::new(inner),
                }
            }
            Err(shared) => {
                tracing::warn!("OfficeRndClient::with_clock on a shared client: clock unchanged");
                Self { inner: shared }
            }
        }
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

    /// [`Authorizer`](crate::http::Authorizer) for one operation group.
    fn auth(&self, group: OperationGroup) -> BearerAuth<'_, GroupToken<'_>> {
        BearerAuth::new(
            &self.inner.tokens[group.index()],
            GroupToken {
                inner: &self.inner,
                group,
            },
        )
    }

    /// Fetches the group's token before the call so that token failures are reported as such.
    async fn ensure_token(&self, group: OperationGroup) -> Result<(), OfficeRndError> {
        self.inner
            .token(group)
            .await
            .map(drop)
            .map_err(|source| OfficeRndError::Token {
                scopes: group.scopes().join(" "),
                source,
            })
    }

    fn map_error(
        &self,
        group: OperationGroup,
        operation: &str,
        error: HttpError,
    ) -> OfficeRndError {
        match error {
            HttpError::Unauthorized { .. } => OfficeRndError::Unauthorized {
                operation: operation.to_owned(),
                scopes: group.scopes().join(" "),
            },
            other => OfficeRndError::Http(other),
        }
    }

    /// Lists a whole collection, following `$cursorNext` until it is absent.
    ///
    /// All-or-nothing: each page goes through the retry policy (a failed page is re-requested with the
    /// same cursor); if a page still fails, the call fails and the pages already read are dropped.
    pub async fn list<T: DeserializeOwned>(
        &self,
        collection: Collection,
        query: &ListQuery,
    ) -> Result<Vec<T>, OfficeRndError> {
        if query.has_field("modifiedAt") && !collection.supports_modified_filter() {
            return Err(OfficeRndError::UnsupportedQuery {
                collection,
                reason: "the API does not accept modifiedAt filters here; list it whole".into(),
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
        let group = OperationGroup::SyncRead;
        self.ensure_token(group).await?;
        let url = self.url(&[collection.path()])?;
        let auth = self.auth(group);
        let page_size = self.inner.config.page_size.to_string();
        let operation = format!("GET {}", collection.path());

        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen_cursors = HashSet::new();
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
                        .query(query.params())
                        .query(&[("$limit", page_size.as_str())]);
                    if let Some(cursor) = &cursor {
                        request = request.query(&[("$cursorNext", cursor.as_str())]);
                    }
                    request
                })
                .await
                .map_err(|error| self.map_error(group, &operation, error))?;
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

    /// The first page of a collection with `$limit=1`: proves the credentials and the read scope
    /// in one request, without listing the collection.
    pub async fn probe<T: DeserializeOwned>(
        &self,
        collection: Collection,
    ) -> Result<Vec<T>, OfficeRndError> {
        let group = OperationGroup::SyncRead;
        self.ensure_token(group).await?;
        let url = self.url(&[collection.path()])?;
        let auth = self.auth(group);
        let operation = format!("GET {}", collection.path());
        let page: Page<T> = self
            .inner
            .http
            .send_json(&auth, || {
                self.inner
                    .http
                    .http()
                    .get(url.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .query(&[("$limit", "1")])
            })
            .await
            .map_err(|error| self.map_error(group, &operation, error))?;
        Ok(page.results)
    }

    /// `GET /{collection}/{id}`; a missing object is [`HttpError::NotFound`].
    pub async fn get<T: DeserializeOwned>(
        &self,
        collection: Collection,
        id: &str,
    ) -> Result<T, OfficeRndError> {
        let group = OperationGroup::SyncRead;
        self.ensure_token(group).await?;
        let url = self.url(&[collection.path(), id])?;
        let operation = format!("GET {}/{{id}}", collection.path());
        self.inner
            .http
            .send_json(&self.auth(group), || {
                self.inner.http.http().get(url.clone())
            })
            .await
            .map_err(|error| self.map_error(group, &operation, error))
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

    /// Assignments of the given resources.
    ///
    /// `/assignments` cannot be listed without a `resource=` or `membership=` filter, and no source shows
    /// a multi-value form (`resource[$in]`), so this issues one paged list per resource,
    /// `assignment_concurrency` at a time. Pass only assignable resources (types `team_room`, `desk`,
    /// `desk_tr`) to keep the fan-out small. All-or-nothing like [`Self::list`]; results keep the order
    /// of `resource_ids`.
    pub async fn list_assignments_for_resources<T: DeserializeOwned>(
        &self,
        resource_ids: &[String],
    ) -> Result<Vec<T>, OfficeRndError> {
        let concurrency = self.inner.config.assignment_concurrency.max(1);
        // Owned ids: a closure over `&String` makes this future's `Send` proof fail inside
        // kube-runtime controllers (higher-ranked lifetime limitation of rustc).
        let per_resource: Vec<Vec<T>> = futures::stream::iter(resource_ids.iter().cloned())
            .map(|id: String| async move {
                self.list::<T>(
                    Collection::Assignments,
                    &ListQuery::new().eq("resource", id.as_str()),
                )
                .await
            })
            .buffered(concurrency)
            .try_collect()
            .await?;
        Ok(per_resource.into_iter().flatten().collect())
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

    /// Bookings overlapping `window` (see [`BookingWindow`] for the assumed filter shape), optionally
    /// only those modified after `modified_after`.
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
        let group = OperationGroup::CreateBookings;
        self.ensure_token(group).await?;
        let url = self.url(&[Collection::Bookings.path()])?;
        self.inner
            .http
            .send_json(&self.auth(group), || {
                self.inner.http.http().post(url.clone()).json(booking)
            })
            .await
            .map_err(|error| self.map_error(group, "POST bookings", error))
    }

    /// `POST /webhooks {url, eventTypes, description}`; the answer carries `_id` and the signing secret.
    pub async fn register_webhook(
        &self,
        url: &str,
        event_types: &[&str],
        description: &str,
    ) -> Result<RegisteredWebhook, OfficeRndError> {
        let group = OperationGroup::ManageWebhooks;
        self.ensure_token(group).await?;
        let endpoint = self.url(&["webhooks"])?;
        let registration = WebhookRegistration {
            url,
            event_types,
            description,
        };
        let response = self
            .inner
            .http
            .send_authorized(&self.auth(group), || {
                self.inner
                    .http
                    .http()
                    .post(endpoint.clone())
                    .json(&registration)
            })
            .await
            .map_err(|error| self.map_error(group, "POST webhooks", error))?;
        let body = response.bytes().await.map_err(|_| HttpError::Transient {
            method: Method::POST,
            path: endpoint.path().to_owned(),
            attempts: 1,
            reason: "webhook registration response interrupted".into(),
        })?;
        let created: WebhookCreated = serde_json::from_slice(&body).map_err(|error| {
            HttpError::protocol(
                &Method::POST,
                endpoint.path(),
                format!("webhook registration reply lacks _id/secret: {error}"),
                // The body holds the signing secret.
                BodyExcerpt::withheld(),
            )
        })?;
        Ok(RegisteredWebhook {
            id: created.id,
            url: created.url.unwrap_or_else(|| url.to_owned()),
            event_types: created
                .event_types
                .unwrap_or_else(|| event_types.iter().map(|s| (*s).to_owned()).collect()),
            secret: Secret::new(created.secret),
        })
    }

    /// Drops every cached token (e.g. after the client secret was rotated).
    pub async fn forget_tokens(&self) {
        for tokens in &self.inner.tokens {
            tokens.forget().await;
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
    fn scopes_are_minimal_per_group() {
        assert_eq!(
            OperationGroup::CreateBookings.scopes(),
            vec!["flex.space.bookings.create"]
        );
        assert_eq!(
            OperationGroup::ManageWebhooks.scopes(),
            vec!["flex.settings.webhooks.create"]
        );
        let read = OperationGroup::SyncRead.scopes();
        assert!(read.iter().all(|scope| scope.ends_with(".read")));
        assert!(read.contains(&"flex.space.assignments.read".to_owned()));
    }

    #[test]
    fn config_rejects_oversized_pages_and_debug_hides_the_secret() {
        let mut config = OfficeRndConfig::new("acme", "id", "very-secret-value").unwrap();
        assert!(!format!("{config:?}").contains("very-secret-value"));
        config.page_size = 51;
        assert!(matches!(config.validate(), Err(OfficeRndError::Config(_))));
    }
}
