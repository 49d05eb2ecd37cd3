//! Client-side HTTP resilience shared by every vendor client: typed errors, retry, rate limiting, secrets.
//!
//! A vendor client owns a [`ResilientClient`] and sends every request through
//! [`ResilientClient::send`] (no credentials, or credentials baked into the builder) or
//! [`ResilientClient::send_authorized`] (an [`Authorizer`] supplies a credential and is told, exactly once
//! per call, when the server rejected it). Both apply the per-account [`RateLimiter`], a per-attempt
//! timeout and the [`RetryPolicy`], and turn the final outcome into an [`HttpError`]. Clients that sign
//! in keep their bearer token in a [`TokenCache`] and supply only the vendor's token request.
//!
//! Error values never carry request URLs with query strings, headers or unredacted bodies: vendors put
//! credentials in all three (Brivo sends passwords as query parameters on its token endpoint).

pub mod rate_limit;
pub mod retry;
pub mod token;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

pub use rate_limit::RateLimiter;
pub use retry::{
    parse_retry_after, NetworkFailure, RetryDecision, RetryPolicy, Throttle, ThrottleClassifier,
};
pub use token::{
    is_bearer_type, read_credential_reply, BearerAuth, BearerToken, Issued, RefreshPolicy, Renewal,
    Renewed, TokenCache, TokenSource,
};

/// A credential or other secret string. `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that must send or use it (a header, a form field, an HMAC key).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// A short, secret-free excerpt of a response body, for error messages.
///
/// JSON bodies have the values of credential-like keys (`token`, `secret`, `password`, `key`,
/// `authorization`, `signature`, `cookie`, `session`) replaced; in any body, long runs of token-like
/// characters (which is what opaque tokens, API keys and hashes look like) are masked; the result is cut
/// to [`BodyExcerpt::MAX_CHARS`]. Bodies of credential endpoints should use [`BodyExcerpt::withheld`].
#[derive(Clone, PartialEq, Eq)]
pub struct BodyExcerpt(String);

impl BodyExcerpt {
    pub const MAX_CHARS: usize = 160;
    /// Runs of at least this many `[A-Za-z0-9_\-.+/=]` characters containing a digit are masked.
    const TOKEN_LIKE_RUN: usize = 20;

    pub fn from_body(body: &[u8]) -> Self {
        let text = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(mut value) => {
                redact_json(&mut value);
                value.to_string()
            }
            Err(_) => String::from_utf8_lossy(body).into_owned(),
        };
        let masked = mask_token_like_runs(&text);
        let mut excerpt: String = masked.chars().take(Self::MAX_CHARS).collect();
        if masked.chars().count() > Self::MAX_CHARS {
            excerpt.push('…');
        }
        Self(excerpt)
    }

    /// For responses of endpoints that return credentials: nothing of the body is kept.
    pub fn withheld() -> Self {
        Self("<body withheld: credential endpoint>".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BodyExcerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BodyExcerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

fn is_sensitive_key(key: &str) -> bool {
    const MARKERS: [&str; 8] = [
        "token",
        "secret",
        "password",
        "key",
        "authorization",
        "signature",
        "cookie",
        "session",
    ];
    let lower = key.to_ascii_lowercase();
    MARKERS.iter().any(|marker| lower.contains(marker))
}

fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if is_sensitive_key(key) {
                    *child = serde_json::Value::String("<redacted>".to_owned());
                } else {
                    redact_json(child);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

fn mask_token_like_runs(text: &str) -> String {
    fn is_token_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+' | '/' | '=')
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let looks_like_token = run.chars().count() >= BodyExcerpt::TOKEN_LIKE_RUN
            && run.chars().any(|c| c.is_ascii_digit());
        if looks_like_token {
            out.push_str("<masked>");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Why a request to a vendor failed, after the retry policy has run its course.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server or network failed in a way that may heal by itself (5xx, connect error, timeout).
    #[error(
        "{method} {path}: temporary failure after {attempts} attempt(s): {reason}; retry later"
    )]
    Transient {
        method: Method,
        path: String,
        attempts: u32,
        reason: String,
    },
    /// The vendor keeps answering 429 and the wait it asks for does not fit the retry budget.
    #[error("{method} {path}: rate limited by the vendor{}; slow down or retry later", retry_after_text(.retry_after))]
    RateLimited {
        method: Method,
        path: String,
        retry_after: Option<Duration>,
    },
    /// Credentials were rejected (after one re-authentication, where the client has a hook for it).
    #[error("{method} {path}: credentials rejected (401); check the credentials in the VendorConnection's Secret (for an OAuth application, also its granted scopes)")]
    Unauthorized { method: Method, path: String },
    #[error("{method} {path}: not found (404)")]
    NotFound { method: Method, path: String },
    /// Any other 4xx: the request itself is wrong and retrying will not help.
    #[error("{method} {path}: rejected with {status}: {message}")]
    BadRequest {
        method: Method,
        path: String,
        status: StatusCode,
        message: String,
    },
    /// The reply does not have the shape the client expects (wrong JSON, unexpected status, cursor loop).
    #[error("{method} {path}: malformed reply: {detail} (body: {excerpt})")]
    Protocol {
        method: Method,
        path: String,
        detail: String,
        excerpt: BodyExcerpt,
    },
    /// The request could not be built (invalid URL or body); a programming or configuration error.
    #[error("could not build request: {0}")]
    InvalidRequest(String),
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!(" (asked to wait {} s)", wait.as_secs()),
        None => String::new(),
    }
}

impl HttpError {
    /// True when the same call may succeed later without any change on our side.
    pub fn is_retryable_later(&self) -> bool {
        matches!(self, Self::Transient { .. } | Self::RateLimited { .. })
    }

    /// Builds a [`HttpError::Protocol`] for a reply that could not be understood.
    pub fn protocol(
        method: &Method,
        path: &str,
        detail: impl Into<String>,
        excerpt: BodyExcerpt,
    ) -> Self {
        Self::Protocol {
            method: method.clone(),
            path: path.to_owned(),
            detail: detail.into(),
            excerpt,
        }
    }
}

/// Supplies credentials to [`ResilientClient::send_authorized`] and learns when one was rejected.
///
/// `reject` receives the exact credential the server refused, so an implementation shared by many tasks
/// can drop its cache only if it still holds that credential (one refresh, not one per task).
pub trait Authorizer: Send + Sync {
    type Credential: Send + Sync;

    /// The credential to use now, fetching a fresh one if none is cached or it is about to expire.
    fn credential(&self) -> impl Future<Output = Result<Self::Credential, HttpError>> + Send;

    /// Adds the credential to a request (typically an `Authorization` header).
    fn apply(&self, request: RequestBuilder, credential: &Self::Credential) -> RequestBuilder;

    /// Called once when the server answered 401 to a request carrying `credential`.
    fn reject(&self, credential: &Self::Credential) -> impl Future<Output = ()> + Send;

    /// Whether rejecting a credential can produce a different one (false: a 401 is final at once).
    fn can_refresh(&self) -> bool {
        true
    }
}

/// An [`Authorizer`] for requests that carry no credential, or carry it already in the builder.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuth;

impl Authorizer for NoAuth {
    type Credential = ();

    async fn credential(&self) -> Result<(), HttpError> {
        Ok(())
    }

    fn apply(&self, request: RequestBuilder, _credential: &()) -> RequestBuilder {
        request
    }

    async fn reject(&self, _credential: &()) {}

    fn can_refresh(&self) -> bool {
        false
    }
}

/// Whether a request may be repeated after an ambiguous failure (5xx, timeout) without side effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Decide from the method: GET, HEAD, PUT, DELETE, OPTIONS are idempotent, POST and PATCH are not.
    FromMethod,
    /// The caller knows the request is safe to repeat (e.g. an OAuth token request).
    Idempotent,
    /// Never repeat after an ambiguous failure; only 429 and connect errors (nothing was sent) are retried.
    NonIdempotent,
}

/// A reqwest client with retry policy, per-account rate limit and per-attempt timeout.
#[derive(Debug, Clone)]
pub struct ResilientClient {
    http: reqwest::Client,
    policy: RetryPolicy,
    limiter: Option<RateLimiter>,
    attempt_timeout: Duration,
    throttle: Option<ThrottleClassifier>,
}

impl ResilientClient {
    pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            policy: RetryPolicy::default(),
            limiter: None,
            attempt_timeout: Self::DEFAULT_ATTEMPT_TIMEOUT,
            throttle: None,
        }
    }

    /// Lets `classifier` call refused replies throttling (see [`ThrottleClassifier`]).
    pub fn with_throttle_classifier(mut self, classifier: ThrottleClassifier) -> Self {
        self.throttle = Some(classifier);
        self
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Shares `limiter` with every clone of this client (and any other client given the same limiter).
    pub fn with_rate_limiter(mut self, limiter: RateLimiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Timeout for one attempt (connect + response body); the policy bounds the whole call.
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The underlying client, for building requests in the `build` closures.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Sends the request `build` makes (called once per attempt) and returns the first 2xx response.
    pub async fn send(&self, build: impl Fn() -> RequestBuilder) -> Result<Response, HttpError> {
        self.execute(&NoAuth, Idempotency::FromMethod, build).await
    }

    /// As [`Self::send`], with an explicit idempotency decision.
    pub async fn send_with(
        &self,
        idempotency: Idempotency,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        self.execute(&NoAuth, idempotency, build).await
    }

    /// As [`Self::send`], with credentials from `auth`. A 401 makes `auth` reject the credential and the
    /// request is repeated once with a fresh one; a second 401 is [`HttpError::Unauthorized`].
    pub async fn send_authorized<A: Authorizer>(
        &self,
        auth: &A,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        self.execute(auth, Idempotency::FromMethod, build).await
    }

    /// [`Self::send_authorized`] followed by JSON decoding of the body into `T`.
    pub async fn send_json<A: Authorizer, T: DeserializeOwned>(
        &self,
        auth: &A,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<T, HttpError> {
        let (method, response) = self.run(auth, Idempotency::FromMethod, build).await?;
        decode_json(&method, response).await
    }

    /// The retry loop behind every `send*` method.
    pub async fn execute<A: Authorizer>(
        &self,
        auth: &A,
        idempotency: Idempotency,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        self.run(auth, idempotency, build)
            .await
            .map(|(_, response)| response)
    }

    async fn run<A: Authorizer>(
        &self,
        auth: &A,
        idempotency: Idempotency,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<(Method, Response), HttpError> {
        let started = tokio::time::Instant::now();
        let mut attempt: u32 = 0;
        let mut reauthenticated = false;
        loop {
            attempt += 1;
            if let Some(limiter) = &self.limiter {
                limiter.acquire().await;
            }
            let credential = auth.credential().await?;
            let (client, request) = auth.apply(build(), &credential).build_split();
            let mut request = request
                .map_err(|error| HttpError::InvalidRequest(error.without_url().to_string()))?;
            *request.timeout_mut() = Some(self.attempt_timeout);
            let method = request.method().clone();
            let path = request.url().path().to_owned();
            let idempotent = match idempotency {
                Idempotency::FromMethod => is_idempotent_method(&method),
                Idempotency::Idempotent => true,
                Idempotency::NonIdempotent => false,
            };

            let failure = match client.execute(request).await {
                Ok(response) if response.status().is_success() => return Ok((method, response)),
                Ok(response)
                    if response.status() == StatusCode::UNAUTHORIZED
                        && !reauthenticated
                        && auth.can_refresh() =>
                {
                    // One re-authentication per call: the credential may have been revoked or expired
                    // early. Not counted against the retry budget; it is not a server failure.
                    tracing::debug!(%method, %path, "401: refreshing credentials once");
                    auth.reject(&credential).await;
                    reauthenticated = true;
                    attempt -= 1;
                    continue;
                }
                Ok(response) => self.refused(response).await,
                Err(error) => Failure::Network(error),
            };

            let decision = match &failure {
                Failure::Status(response) => self.policy.decide_status(
                    response.status(),
                    response.headers(),
                    idempotent,
                    attempt,
                ),
                Failure::Read {
                    status, headers, ..
                } => self
                    .policy
                    .decide_status(*status, headers, idempotent, attempt),
                Failure::Throttled {
                    throttle, headers, ..
                } => self.policy.decide_throttled(*throttle, headers, attempt),
                Failure::Network(error) => {
                    self.policy
                        .decide_network(NetworkFailure::classify(error), idempotent, attempt)
                }
            };
            let elapsed = started.elapsed();
            match decision {
                RetryDecision::RetryAfter(delay) if self.policy.allows(attempt, elapsed, delay) => {
                    tracing::warn!(
                        %method, %path, attempt,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        cause = %failure.describe(),
                        "retrying vendor request"
                    );
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(failure.into_error(method, path, attempt).await),
            }
        }
    }
}

impl ResilientClient {
    /// A refused reply, read whole when the client's [`ThrottleClassifier`] needs to see it.
    async fn refused(&self, response: Response) -> Failure {
        let status = response.status();
        let Some(classify) = self
            .throttle
            .filter(|_| status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS)
        else {
            return Failure::Status(Box::new(response));
        };
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap_or_default().to_vec();
        match classify(status, &headers, &body) {
            Some(throttle) => Failure::Throttled {
                status,
                headers,
                throttle,
            },
            None => Failure::Read {
                status,
                headers,
                body,
            },
        }
    }
}

fn is_idempotent_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

enum Failure {
    Status(Box<Response>),
    /// A refused reply whose body was already read (for the throttle classifier).
    Read {
        status: StatusCode,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    },
    /// A refused reply the vendor's classifier called throttling.
    Throttled {
        status: StatusCode,
        headers: reqwest::header::HeaderMap,
        throttle: Throttle,
    },
    Network(reqwest::Error),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Self::Status(response) => response.status().to_string(),
            Self::Read { status, .. } => status.to_string(),
            Self::Throttled {
                status, throttle, ..
            } => format!("{status} (throttled: {throttle:?})"),
            Self::Network(error) => network_reason(error),
        }
    }

    async fn into_error(self, method: Method, path: String, attempts: u32) -> HttpError {
        match self {
            Self::Network(error) => HttpError::Transient {
                method,
                path,
                attempts,
                reason: network_reason(&error),
            },
            Self::Throttled { headers, .. } => HttpError::RateLimited {
                method,
                path,
                retry_after: parse_retry_after(&headers, chrono::Utc::now()),
            },
            Self::Status(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await.unwrap_or_default();
                status_error(method, path, attempts, status, &headers, &body)
            }
            Self::Read {
                status,
                headers,
                body,
            } => status_error(method, path, attempts, status, &headers, &body),
        }
    }
}

/// The error for a final refused reply.
fn status_error(
    method: Method,
    path: String,
    attempts: u32,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> HttpError {
    match status {
        StatusCode::TOO_MANY_REQUESTS => HttpError::RateLimited {
            method,
            path,
            retry_after: parse_retry_after(headers, chrono::Utc::now()),
        },
        StatusCode::UNAUTHORIZED => HttpError::Unauthorized { method, path },
        StatusCode::NOT_FOUND => HttpError::NotFound { method, path },
        status if status.is_server_error() => HttpError::Transient {
            method,
            path,
            attempts,
            reason: format!("{status}: {}", BodyExcerpt::from_body(body)),
        },
        status if status.is_client_error() => HttpError::BadRequest {
            method,
            path,
            status,
            message: error_message(body),
        },
        status => HttpError::Protocol {
            method,
            path,
            detail: format!("unexpected status {status}"),
            excerpt: BodyExcerpt::from_body(body),
        },
    }
}

/// Describes a transport error without its URL (which may carry credentials in the query).
fn network_reason(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "response body interrupted"
    } else {
        "transport error"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    // The innermost cause is the useful one (e.g. "Connection refused"); reqwest's own Display has the URL.
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// The human message of a 4xx body: `message` (string or list, as NestJS sends it), `error`, `errors`, or
/// a redacted excerpt of the body.
pub fn error_message(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return BodyExcerpt::from_body(body).to_string();
    };
    let pick = |key: &str| -> Option<String> {
        match value.get(key)? {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Array(items) => Some(
                items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map_or_else(|| item.to_string(), str::to_owned)
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    let message = pick("message")
        .or_else(|| pick("error_description"))
        .or_else(|| pick("error"))
        .or_else(|| pick("errors"));
    match message {
        // The message is vendor text and may echo a submitted value; pass it through the same masking.
        Some(message) => BodyExcerpt::from_body(message.as_bytes()).to_string(),
        None => BodyExcerpt::from_body(body).to_string(),
    }
}

/// Reads a successful response and decodes its JSON body, mapping failures to [`HttpError::Protocol`].
pub async fn decode_json<T: DeserializeOwned>(
    method: &Method,
    response: Response,
) -> Result<T, HttpError> {
    let path = response.url().path().to_owned();
    let body = response
        .bytes()
        .await
        .map_err(|error| HttpError::Transient {
            method: method.clone(),
            path: path.clone(),
            attempts: 1,
            reason: network_reason(&error),
        })?;
    serde_json::from_slice(&body).map_err(|error| {
        HttpError::protocol(
            method,
            &path,
            format!("JSON does not match the expected shape: {error}"),
            BodyExcerpt::from_body(&body),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_and_display_are_redacted() {
        let secret = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(format!("{secret}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2-very-secret");
    }

    #[test]
    fn excerpt_redacts_credential_keys_and_token_like_runs() {
        let body = br#"{"access_token":"abc","nested":{"client_secret":"s3"},"note":"id 0123456789abcdef0123456789abcdef"}"#;
        let excerpt = BodyExcerpt::from_body(body).to_string();
        assert!(!excerpt.contains("abc\""), "{excerpt}");
        assert!(!excerpt.contains("s3"), "{excerpt}");
        assert!(
            !excerpt.contains("0123456789abcdef0123456789abcdef"),
            "{excerpt}"
        );
        assert!(excerpt.contains("<redacted>"), "{excerpt}");
        assert!(excerpt.contains("<masked>"), "{excerpt}");
    }

    #[test]
    fn excerpt_is_bounded() {
        let body = "word ".repeat(500);
        let excerpt = BodyExcerpt::from_body(body.as_bytes());
        assert!(excerpt.as_str().chars().count() <= BodyExcerpt::MAX_CHARS + 1);
    }

    fn quick_client(max_attempts: u32) -> ResilientClient {
        ResilientClient::new(reqwest::Client::new())
            .with_policy(RetryPolicy {
                max_attempts,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
                ..RetryPolicy::default()
            })
            .with_attempt_timeout(Duration::from_millis(100))
    }

    /// A server that accepts connections and never answers; returns its URL and the accept count.
    async fn silent_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(socket);
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn timeouts_are_retried_for_idempotent_requests_only() {
        let (url, accepted) = silent_server().await;
        let client = quick_client(3);

        let get = client.send(|| client.http().get(&url)).await.unwrap_err();
        assert!(
            matches!(&get, HttpError::Transient { attempts: 3, reason, .. } if reason.starts_with("timed out")),
            "{get:?}"
        );
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);

        let post = client.send(|| client.http().post(&url)).await.unwrap_err();
        assert!(
            matches!(post, HttpError::Transient { attempts: 1, .. }),
            "{post:?}"
        );
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn connect_errors_are_retried_even_for_posts_and_never_leak_the_query() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/token?password=hunter2",
            listener.local_addr().unwrap()
        );
        drop(listener);
        let client = quick_client(2);

        let error = client.send(|| client.http().post(&url)).await.unwrap_err();

        assert!(
            matches!(&error, HttpError::Transient { attempts: 2, .. }),
            "{error:?}"
        );
        assert!(!format!("{error} {error:?}").contains("hunter2"));
    }

    #[test]
    fn error_message_reads_nestjs_arrays_and_strings() {
        assert_eq!(
            error_message(br#"{"statusCode":400,"message":"$limit must not be greater than 50","error":"Bad Request"}"#),
            "$limit must not be greater than 50"
        );
        assert_eq!(
            error_message(br#"{"statusCode":400,"message":["name must be a string","plan must be a string"]}"#),
            "name must be a string; plan must be a string"
        );
        assert_eq!(
            error_message(br#"{"error":"invalid_scope"}"#),
            "invalid_scope"
        );
    }
}
