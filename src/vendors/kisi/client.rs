//! Kisi API client implementing [`DoorVendor`]: `KISI-LOGIN` API-key auth, offset paging until the
//! `X-Collection-Range` total is reached (never a partial list), a 5 requests/s token bucket per
//! account, de-duplicated group grants, and the connection's notification policy as a fact for the
//! door sync.
//!
//! Group membership is Kisi's role assignments with role `group_basic` on a group. Kisi stacks a new
//! row for every `POST /role_assignments`, even for a user already in the group, so a grant first
//! lists the user's rows in that group and posts only when there is none, and a revoke deletes every
//! row of that user in that group (a 404 on delete means already gone). `group_manager` rows, which
//! people set in the dashboard, are never listed as members, created or deleted. Grants use the
//! current OpenAPI body form and rows are matched fail-closed (see [`super::wire::Reading`]): a
//! row that does not name its group, user and role is never taken for a member.
//!
//! Notification policy (OfficeRnD's "Kisi configuration" tab). The client keeps no memory of whom
//! it notified: the door sync decides per grant (`sync::notify`) from the policy this client
//! reports ([`DoorVendor::grant_notices`]) and from what Kisi shows, and the grant carries its
//! [`GrantContext::notify`] as decided:
//! - `Never` ([`GrantNotices::Never`]): users are created as managed users (`send_emails: false,
//!   confirm: true`), never emailed by Kisi, and the sync sends `notify: false`;
//! - `Always` ([`GrantNotices::Every`]): users are created as regular users (`send_emails: true`)
//!   and every grant carries `notify: true`;
//! - `KisiDefault` ([`GrantNotices::FirstAccess`]): regular users; a person hears once, about their
//!   first access ever: one grant of the sync that created their user, when Kisi shows them no
//!   role yet ([`DoorVendor::holds_access`]), so a new member mapped to three groups gets one email
//!   and a restarted operator never sends it again.
//!
//! Wire facts and guesses are in [`super::wire`].

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use url::Url;

use super::wire::{
    self, CollectionRange, CreateUserFields, CreateUserRequest, GrantRequest, WireGroup,
    WireRoleAssignment, WireUser,
};
use crate::api::vendor_connection::KisiNotificationPolicy;
use crate::http::{
    decode_json, Authorizer, BodyExcerpt, HttpError, RateLimiter, ResilientClient, RetryPolicy,
    Secret,
};
use crate::vendors::{
    AccountInfo, DoorVendor, GrantContext, GrantNotices, NewUser, VendorError, VendorGroup,
    VendorUser,
};

/// Connection settings for one Kisi organization (one API key).
#[derive(Debug, Clone)]
pub struct KisiConfig {
    /// API host; defaults to [`wire::DEFAULT_BASE_URL`].
    pub base_url: Url,
    /// The organization's API key (My Account → API in Kisi), sent as `KISI-LOGIN <key>`.
    pub api_key: Secret,
    /// Client-side limit for this key. Kisi allows 5 requests/s per user and asks for serial requests,
    /// so the bucket has a burst of one: requests leave evenly spaced rather than in bursts.
    pub requests_per_second: f64,
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
    /// When Kisi emails people about new access.
    pub notification_policy: KisiNotificationPolicy,
    /// `limit` for `/users` pages, 1 ..= 100.
    pub users_page_size: u32,
    /// `limit` for `/role_assignments` pages, 1 ..= 250.
    pub role_assignments_page_size: u32,
    /// `limit` for `/groups` pages, 1 ..= 100 (the maximum is a guess).
    pub groups_page_size: u32,
    /// Sent as `X-Kisi-Integration-Identifier`, which Kisi asks integration partners to send.
    pub integration_identifier: Option<String>,
    /// Sent as `X-Kisi-Integration-Contact` (an email address for Kisi to reach the integrator).
    pub integration_contact: Option<String>,
}

impl KisiConfig {
    /// Kisi's public API host, the documented rate limit and the largest documented page sizes.
    pub fn new(api_key: impl Into<Secret>) -> Result<Self, KisiConfigError> {
        Ok(Self {
            base_url: parse_url(wire::DEFAULT_BASE_URL)?,
            api_key: api_key.into(),
            requests_per_second: 5.0,
            attempt_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            notification_policy: KisiNotificationPolicy::default(),
            users_page_size: wire::USERS_MAX_LIMIT,
            role_assignments_page_size: wire::ROLE_ASSIGNMENTS_MAX_LIMIT,
            groups_page_size: wire::GROUPS_MAX_LIMIT,
            integration_identifier: Some("flexgate".to_owned()),
            integration_contact: None,
        })
    }

    /// Points the client at another host (the simulator).
    pub fn with_base_url(mut self, base: &str) -> Result<Self, KisiConfigError> {
        self.base_url = parse_url(base)?;
        Ok(self)
    }

    pub fn with_notification_policy(mut self, policy: KisiNotificationPolicy) -> Self {
        self.notification_policy = policy;
        self
    }

    fn validate(&self) -> Result<(), KisiConfigError> {
        if self.api_key.expose().trim().is_empty() {
            return Err(KisiConfigError(
                "the API key is empty (create one in Kisi under My Account → API)".into(),
            ));
        }
        if self.base_url.cannot_be_a_base() {
            return Err(KisiConfigError(format!(
                "base URL {} cannot be used as a base URL",
                self.base_url
            )));
        }
        if self.requests_per_second.is_nan() || self.requests_per_second <= 0.0 {
            return Err(KisiConfigError(format!(
                "requests per second must be positive, got {}",
                self.requests_per_second
            )));
        }
        for (what, size, max) in [
            ("users", self.users_page_size, wire::USERS_MAX_LIMIT),
            (
                "role assignments",
                self.role_assignments_page_size,
                wire::ROLE_ASSIGNMENTS_MAX_LIMIT,
            ),
            ("groups", self.groups_page_size, wire::GROUPS_MAX_LIMIT),
        ] {
            if !(1..=max).contains(&size) {
                return Err(KisiConfigError(format!(
                    "{what} page size {size} is outside 1..={max}"
                )));
            }
        }
        Ok(())
    }
}

fn parse_url(value: &str) -> Result<Url, KisiConfigError> {
    Url::parse(value)
        .map_err(|error| KisiConfigError(format!("base URL {value:?} is not a URL: {error}")))
}

/// The client cannot be built from this configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid Kisi configuration: {0}")]
pub struct KisiConfigError(String);

/// Adds `Authorization: KISI-LOGIN <key>`. An API key cannot be refreshed: a 401 is final at once.
struct KisiLogin {
    header: HeaderValue,
}

impl Authorizer for KisiLogin {
    type Credential = ();

    async fn credential(&self) -> Result<(), HttpError> {
        Ok(())
    }

    fn apply(&self, request: RequestBuilder, _credential: &()) -> RequestBuilder {
        request.header(AUTHORIZATION, self.header.clone())
    }

    async fn reject(&self, _credential: &()) {}

    fn can_refresh(&self) -> bool {
        false
    }
}

/// Kisi client for one organization. Cheap to clone; clones share the rate limit.
#[derive(Clone)]
pub struct KisiClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: KisiConfig,
    http: ResilientClient,
    auth: KisiLogin,
}

impl fmt::Debug for KisiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KisiClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl KisiClient {
    /// A client with its own rate limiter.
    pub fn new(config: KisiConfig) -> Result<Self, KisiConfigError> {
        let limiter = RateLimiter::with_burst(config.requests_per_second, 1.0);
        Self::with_rate_limiter(config, limiter)
    }

    /// A client sharing `limiter` with other clients of the same API key (Kisi limits per user).
    pub fn with_rate_limiter(
        config: KisiConfig,
        limiter: RateLimiter,
    ) -> Result<Self, KisiConfigError> {
        config.validate()?;
        let mut header = HeaderValue::from_str(&format!(
            "{} {}",
            wire::AUTH_SCHEME,
            config.api_key.expose().trim()
        ))
        .map_err(|_| {
            KisiConfigError("the API key contains characters not allowed in a header".into())
        })?;
        header.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("flexgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| KisiConfigError(format!("cannot build HTTP client: {error}")))?;
        let resilient = ResilientClient::new(http)
            .with_policy(config.retry.clone())
            .with_rate_limiter(limiter)
            .with_attempt_timeout(config.attempt_timeout);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http: resilient,
                auth: KisiLogin { header },
            }),
        })
    }

    pub fn config(&self) -> &KisiConfig {
        &self.inner.config
    }

    fn url(&self, segments: &[&str]) -> Result<Url, VendorError> {
        let mut url = self.inner.config.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| HttpError::InvalidRequest("Kisi base URL cannot be a base URL".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        let mut request = self
            .inner
            .http
            .http()
            .request(method, url.clone())
            .header(ACCEPT, "application/json");
        if let Some(identifier) = &self.inner.config.integration_identifier {
            request = request.header(wire::INTEGRATION_IDENTIFIER_HEADER, identifier.as_str());
        }
        if let Some(contact) = &self.inner.config.integration_contact {
            request = request.header(wire::INTEGRATION_CONTACT_HEADER, contact.as_str());
        }
        request
    }

    async fn send(&self, build: impl Fn() -> RequestBuilder) -> Result<Response, VendorError> {
        self.inner
            .http
            .send_authorized(&self.inner.auth, build)
            .await
            .map_err(credentials_error)
    }

    /// One page: the decoded items and the parsed `X-Collection-Range` (absent → `None`).
    async fn page<T: DeserializeOwned>(
        &self,
        url: &Url,
        filters: &[(&str, String)],
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<T>, Option<CollectionRange>), VendorError> {
        let limit = limit.to_string();
        let offset = offset.to_string();
        let response = self
            .send(|| {
                self.request(Method::GET, url)
                    .query(filters)
                    .query(&[("limit", limit.as_str()), ("offset", offset.as_str())])
            })
            .await?;
        let range = match response.headers().get(wire::COLLECTION_RANGE_HEADER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(CollectionRange::parse)
                    .ok_or_else(|| {
                        HttpError::protocol(
                            &Method::GET,
                            url.path(),
                            "X-Collection-Range is not <start>-<end>/<total>",
                            BodyExcerpt::from_body(value.as_bytes()),
                        )
                    })?,
            ),
        };
        let items: Vec<T> = decode_json(&Method::GET, response).await?;
        Ok((items, range))
    }

    /// Every item of a list endpoint, page by page, de-duplicated by `key` (offset paging shifts when
    /// rows are added meanwhile).
    ///
    /// The offset advances by the number of items received, not by `limit`, so a server that serves
    /// fewer than asked never makes us skip items; the list ends when the offset reaches the
    /// `X-Collection-Range` total, or at the first empty page when the header is missing. Any failed
    /// page fails the whole call: never a partial list.
    async fn list_all<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&str, String)],
        limit: u32,
        key: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, VendorError> {
        let url = self.url(&[path])?;
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut offset: u64 = 0;
        loop {
            if offset > wire::MAX_OFFSET {
                return Err(HttpError::protocol(
                    &Method::GET,
                    url.path(),
                    format!(
                        "more than {} items: Kisi's offset limit ({}) prevents reading the whole list",
                        wire::MAX_OFFSET,
                        wire::MAX_OFFSET
                    ),
                    BodyExcerpt::from_body(b""),
                )
                .into());
            }
            let (page, range) = self.page::<T>(&url, filters, limit, offset).await?;
            let received = page.len() as u64;
            for item in page {
                if seen.insert(key(&item)) {
                    items.push(item);
                }
            }
            offset += received;
            let done = match range {
                Some(range) => received == 0 || offset >= range.total,
                None => received == 0,
            };
            if done {
                return Ok(items);
            }
        }
    }

    /// The total a list endpoint reports, from one single-item page (or by listing when the server
    /// sends no range header).
    async fn count(&self, path: &str, page_size: u32) -> Result<u32, VendorError> {
        let url = self.url(&[path])?;
        let (page, range) = self.page::<Value>(&url, &[], 1, 0).await?;
        let total = match range {
            Some(range) => range.total,
            None if page.is_empty() => 0,
            None => self
                .list_all::<Value>(path, &[], page_size, |item| {
                    item.get("id").map(Value::to_string).unwrap_or_default()
                })
                .await?
                .len() as u64,
        };
        Ok(u32::try_from(total).unwrap_or(u32::MAX))
    }

    /// The `group_basic` rows of `group_id` (of one user when given), each checked client-side.
    ///
    /// Fail-closed: a row counts only when it names its role, group and user; rows about other
    /// groups (a server ignoring a filter) are dropped, and a row that does not say its group (or
    /// user, or role) fails the call, so a revoke never deletes a row it cannot place and a grant
    /// never stacks rows on a guess.
    async fn access_rows(
        &self,
        group_id: &str,
        user_id: Option<&str>,
    ) -> Result<Vec<WireRoleAssignment>, VendorError> {
        let url = self.url(&[wire::ROLE_ASSIGNMENTS_PATH])?;
        let rows: Vec<WireRoleAssignment> = self
            .list_all(
                wire::ROLE_ASSIGNMENTS_PATH,
                &wire::group_access_filters(group_id, user_id),
                self.inner.config.role_assignments_page_size,
                |row: &WireRoleAssignment| row.id.as_string(),
            )
            .await?;
        let mut kept = Vec::new();
        for row in rows {
            match row.grants(group_id, user_id) {
                Ok(true) => kept.push(row),
                Ok(false) => {}
                Err(key) => {
                    return Err(HttpError::protocol(
                        &Method::GET,
                        url.path(),
                        format!(
                            "role assignment {} does not say its {key}; flexgate only counts rows that name their group, user and role, so nothing was granted or revoked in group {group_id}",
                            row.id.as_string()
                        ),
                        BodyExcerpt::from_body(b""),
                    )
                    .into())
                }
            }
        }
        Ok(kept)
    }

    /// Looks a person up by email with `GET /users?query=` (free text over email, name and notes),
    /// matching the email case-insensitively here; `None` when no user has it.
    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<VendorUser>, VendorError> {
        let wanted = email.trim();
        let users: Vec<WireUser> = self
            .list_all(
                wire::USERS_PATH,
                &[("query", wanted.to_owned())],
                self.inner.config.users_page_size,
                |user: &WireUser| user.id.as_string(),
            )
            .await?;
        Ok(users
            .into_iter()
            .find(|user| {
                user.email
                    .as_deref()
                    .is_some_and(|have| crate::identity::same_email(have, wanted))
            })
            .map(vendor_user))
    }
}

/// A rejected API key, or one whose user may not do this, is a credentials problem, not a
/// transport one.
fn credentials_error(error: HttpError) -> VendorError {
    match error {
        HttpError::Unauthorized { method, path } => VendorError::CredentialsInvalid(format!(
            "Kisi rejected the API key on {method} {path} (401); create a new key under My Account → API"
        )),
        HttpError::BadRequest {
            method,
            path,
            status: StatusCode::FORBIDDEN,
            message,
        } => VendorError::CredentialsInvalid(format!(
            "Kisi refused {method} {path} (403: {message}); the API key's user must be an owner or \
             administrator of the organization"
        )),
        other => VendorError::Http(other),
    }
}

/// A 422 is Kisi refusing this one change (validation); anything else stays as it is.
fn refused(error: VendorError, what: impl FnOnce() -> String) -> VendorError {
    match error {
        VendorError::Http(HttpError::BadRequest {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message,
            ..
        }) => VendorError::Refused(format!("{}: {message}", what())),
        other => other,
    }
}

fn vendor_user(user: WireUser) -> VendorUser {
    let external_id = user.officernd_id();
    VendorUser {
        id: user.id.into_string(),
        email: user.email.filter(|email| !email.is_empty()),
        external_id,
        name: user.name.unwrap_or_default(),
    }
}

impl DoorVendor for KisiClient {
    async fn check(&self) -> Result<AccountInfo, VendorError> {
        let groups = self
            .count(wire::GROUPS_PATH, self.inner.config.groups_page_size)
            .await?;
        let users = self
            .count(wire::USERS_PATH, self.inner.config.users_page_size)
            .await?;
        Ok(AccountInfo { groups, users })
    }

    async fn list_groups(&self) -> Result<Vec<VendorGroup>, VendorError> {
        let groups: Vec<WireGroup> = self
            .list_all(
                wire::GROUPS_PATH,
                &[],
                self.inner.config.groups_page_size,
                |group: &WireGroup| group.id.as_string(),
            )
            .await?;
        Ok(groups
            .into_iter()
            .map(|group| VendorGroup {
                id: group.id.into_string(),
                name: group.name.unwrap_or_default(),
            })
            .collect())
    }

    async fn list_users(&self) -> Result<Vec<VendorUser>, VendorError> {
        let users: Vec<WireUser> = self
            .list_all(
                wire::USERS_PATH,
                &[],
                self.inner.config.users_page_size,
                |user: &WireUser| user.id.as_string(),
            )
            .await?;
        Ok(users.into_iter().map(vendor_user).collect())
    }

    async fn list_group_members(&self, group: &VendorGroup) -> Result<Vec<String>, VendorError> {
        let rows = self.access_rows(&group.id, None).await?;
        let mut seen = HashSet::new();
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.reading() {
                wire::Reading::DoorAccess { user, .. } => Some(user),
                _ => None,
            })
            .filter(|id| seen.insert(id.clone()))
            .collect())
    }

    async fn create_user(&self, user: &NewUser) -> Result<VendorUser, VendorError> {
        let managed = self.inner.config.notification_policy == KisiNotificationPolicy::Never;
        let name = format!("{} {}", user.first_name.trim(), user.last_name.trim())
            .trim()
            .to_owned();
        let mut metadata = Map::new();
        metadata.insert(
            wire::OFFICERND_ID_METADATA_KEY.to_owned(),
            Value::String(user.officernd_id.clone()),
        );
        let body = CreateUserRequest {
            user: CreateUserFields {
                email: user.email.trim().to_owned(),
                name: (!name.is_empty()).then_some(name),
                send_emails: !managed,
                confirm: managed,
                metadata,
                notes: wire::ownership_note(&user.officernd_id, user.phone.as_deref()),
            },
        };
        let url = self.url(&[wire::USERS_PATH])?;
        let response = self
            .send(|| self.request(Method::POST, &url).json(&body))
            .await
            .map_err(|error| {
                refused(error, || {
                    format!(
                        "Kisi refused to create the user for OfficeRnD member {}",
                        user.officernd_id
                    )
                })
            })?;
        let created: WireUser = decode_json(&Method::POST, response).await?;
        let mut created = vendor_user(created);
        if created.external_id.is_none() {
            // Kisi echoed no metadata; the marker was sent and is what later listings will show.
            created.external_id = Some(user.officernd_id.clone());
        }
        Ok(created)
    }

    async fn add_to_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
        context: GrantContext,
    ) -> Result<(), VendorError> {
        // POST always adds a row, so only post when the user has none in this group.
        if !self.access_rows(&group.id, Some(user_id)).await?.is_empty() {
            return Ok(());
        }
        let body = GrantRequest::group_access(user_id, &group.id, context.notify);
        let url = self.url(&[wire::ROLE_ASSIGNMENTS_PATH])?;
        self.send(|| self.request(Method::POST, &url).json(&body))
            .await
            .map(drop)
            .map_err(|error| {
                refused(error, || {
                    format!(
                        "Kisi refused to add user {user_id} to group {} ({})",
                        group.id, group.name
                    )
                })
            })
    }

    async fn remove_from_group(
        &self,
        user_id: &str,
        group: &VendorGroup,
    ) -> Result<(), VendorError> {
        // Every row: duplicates made by other clients or by hand would otherwise keep the door open.
        for row in self.access_rows(&group.id, Some(user_id)).await? {
            let url = self.url(&[wire::ROLE_ASSIGNMENTS_PATH, &row.id.as_string()])?;
            match self.send(|| self.request(Method::DELETE, &url)).await {
                Ok(_) | Err(VendorError::Http(HttpError::NotFound { .. })) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn grant_notices(&self) -> GrantNotices {
        match self.inner.config.notification_policy {
            KisiNotificationPolicy::Never => GrantNotices::Never,
            KisiNotificationPolicy::KisiDefault => GrantNotices::FirstAccess,
            KisiNotificationPolicy::Always => GrantNotices::Every,
        }
    }

    /// Any role assignment of the user (door access in any group, a manager role, a place or
    /// organization role) means Kisi already knows them as someone with access. Rows that name
    /// another user (a server ignoring the filter) are skipped; a row that does not say its user
    /// counts as theirs, so a doubt never sends a second email.
    async fn holds_access(&self, user_id: &str) -> Result<bool, VendorError> {
        let rows: Vec<WireRoleAssignment> = self
            .list_all(
                wire::ROLE_ASSIGNMENTS_PATH,
                &wire::user_role_filters(user_id),
                self.inner.config.role_assignments_page_size,
                |row: &WireRoleAssignment| row.id.as_string(),
            )
            .await?;
        Ok(rows.iter().any(|row| match row.user_side() {
            wire::Side::Is(id) => id == user_id,
            wire::Side::Unstated => true,
            wire::Side::Other => false,
        }))
    }
}
