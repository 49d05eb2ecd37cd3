//! One cache for OAuth-style bearer tokens, shared by every client that signs in (OfficeRnD,
//! Salto KS, Brivo, essensys): single-flight fetching, refresh before expiry, one refresh per 401.
//!
//! The cache knows nothing of a vendor's wire format. A client implements [`TokenSource`] (which
//! grant to use, what the request looks like, how the reply is read) and the cache decides *when*
//! to call it:
//!
//! - a lock is held across the fetch, so concurrent callers wait for one token request instead of
//!   each signing in (vendors count and sometimes throttle logins);
//! - a token is replaced before it expires, per [`RefreshPolicy`], so requests never carry a token
//!   the server is about to refuse;
//! - [`TokenCache::reject`] marks a token the server answered 401 to. Only the token that was
//!   refused is marked (compared by generation), so when many tasks see the same 401 the first one
//!   triggers the single refresh and the others reuse its result;
//! - a refresh token issued with the last grant is kept (also across a rejection and when a
//!   refresh reply does not repeat it), because a refresh is cheaper than a new sign-in;
//! - a failed fetch caches nothing: the next call tries again.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

use super::{Authorizer, BodyExcerpt, HttpError, Secret};
use crate::clock::Clock;

/// When a cached token is replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RefreshPolicy {
    /// This long before it expires, capped at half the token's lifetime (so a short-lived token is
    /// still used for a while).
    Margin(Duration),
    /// After this share of its lifetime, in (0, 1] (0.8: a 300 s token is replaced at 240 s).
    Fraction(f64),
}

impl RefreshPolicy {
    /// How long after issue a token of `lifetime` is replaced.
    fn refresh_after(self, lifetime: Duration) -> Duration {
        match self {
            Self::Margin(margin) => lifetime - margin.min(lifetime / 2),
            // `Duration::mul_f64` panics on a negative or NaN share; an invalid share refreshes at
            // once rather than taking the process down, and a share above 1 is capped at expiry.
            Self::Fraction(share) => Duration::try_from_secs_f64(share * lifetime.as_secs_f64())
                .map_or(Duration::ZERO, |after| after.min(lifetime)),
        }
    }
}

/// A token as handed to one request. The generation says which cache entry a 401 invalidates.
///
/// `T` is what requests carry: the access token as a [`Secret`], or a ready header value.
/// `Debug` never shows it.
pub struct BearerToken<T = Secret> {
    token: T,
    generation: u64,
}

impl<T> BearerToken<T> {
    /// The token, for the one place that puts it on a request.
    pub fn token(&self) -> &T {
        &self.token
    }
}

impl<T> fmt::Debug for BearerToken<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not `T`'s own Debug: a header value or a plain string would print the credential.
        f.debug_struct("BearerToken")
            .field("access_token", &format_args!("<redacted>"))
            .field("generation", &self.generation)
            .finish()
    }
}

/// A token a [`TokenSource`] obtained.
pub struct Issued<T = Secret> {
    token: T,
    lifetime: Duration,
    refresh_token: Option<Secret>,
}

impl<T> Issued<T> {
    /// A token valid for `expires_in_secs` seconds from the moment the cache asked for it.
    pub fn new(token: T, expires_in_secs: u64) -> Self {
        Self {
            token,
            lifetime: Duration::from_secs(expires_in_secs),
            refresh_token: None,
        }
    }

    /// The refresh token of the same reply; `None` keeps the one from the previous grant.
    pub fn with_refresh_token(mut self, refresh_token: Option<Secret>) -> Self {
        self.refresh_token = refresh_token;
        self
    }
}

/// Permission to go on using the current token; only [`Renewal::keep_current`] makes one.
pub struct KeepCurrent(());

/// What a [`TokenSource`] hands back from a fetch.
pub enum Renewed<T = Secret> {
    Issued(Issued<T>),
    /// The refresh failed in a way that may heal and the current token is still valid: use it.
    KeepCurrent(KeepCurrent),
}

impl<T> From<Issued<T>> for Renewed<T> {
    fn from(issued: Issued<T>) -> Self {
        Self::Issued(issued)
    }
}

/// What the cache knows when it asks a [`TokenSource`] for a new token.
pub struct Renewal {
    refresh_token: Option<Secret>,
    current_usable: bool,
}

impl Renewal {
    /// The refresh token kept from an earlier grant, if the server issued one.
    pub fn refresh_token(&self) -> Option<&Secret> {
        self.refresh_token.as_ref()
    }

    /// Some while a token is cached that has neither expired nor been rejected: a source may then
    /// answer [`Renewed::KeepCurrent`] instead of failing when its refresh fails temporarily.
    pub fn keep_current(&self) -> Option<KeepCurrent> {
        self.current_usable.then_some(KeepCurrent(()))
    }
}

/// A client's way of getting a token from its vendor: grant, request shape and reply parsing.
pub trait TokenSource<T = Secret>: Sync {
    /// Requests a token. Called with the cache locked, so at most once at a time per cache.
    fn fetch(&self, renewal: Renewal)
        -> impl Future<Output = Result<Renewed<T>, HttpError>> + Send;
}

impl<T, S: TokenSource<T>> TokenSource<T> for &S {
    fn fetch(
        &self,
        renewal: Renewal,
    ) -> impl Future<Output = Result<Renewed<T>, HttpError>> + Send {
        (**self).fetch(renewal)
    }
}

struct Cached<T> {
    token: T,
    refresh_token: Option<Secret>,
    refresh_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    generation: u64,
    /// The server answered 401 to this token: it must not be used again.
    rejected: bool,
}

impl<T: Clone> Cached<T> {
    fn bearer(&self) -> BearerToken<T> {
        BearerToken {
            token: self.token.clone(),
            generation: self.generation,
        }
    }
}

struct Slot<T> {
    cached: Option<Cached<T>>,
    /// Generations count per cache: a 401 is only ever matched against the same cache's tokens.
    last_generation: u64,
}

/// The cached token of one credential (one account, or one scope set of an account).
pub struct TokenCache<T = Secret> {
    slot: tokio::sync::Mutex<Slot<T>>,
    policy: RefreshPolicy,
    clock: Clock,
}

impl<T> fmt::Debug for TokenCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send> TokenCache<T> {
    /// An empty cache deciding expiry with `clock`.
    pub fn new(policy: RefreshPolicy, clock: Clock) -> Self {
        Self {
            slot: tokio::sync::Mutex::new(Slot {
                cached: None,
                last_generation: 0,
            }),
            policy,
            clock,
        }
    }

    /// Uses `clock` for expiry decisions from now on (tests and the sandbox drive time).
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The cached token, or a new one from `source` when none is cached, it was rejected, or it is
    /// due for replacement.
    pub async fn token<S: TokenSource<T>>(&self, source: &S) -> Result<BearerToken<T>, HttpError> {
        // Held across the fetch on purpose: concurrent callers wait for one token request.
        let mut slot = self.slot.lock().await;
        let now = (self.clock)();
        if let Some(cached) = slot
            .cached
            .as_ref()
            .filter(|cached| !cached.rejected && now < cached.refresh_at)
        {
            return Ok(cached.bearer());
        }
        let previous_refresh = slot
            .cached
            .as_ref()
            .and_then(|cached| cached.refresh_token.clone());
        let renewal = Renewal {
            refresh_token: previous_refresh.clone(),
            current_usable: slot
                .cached
                .as_ref()
                .is_some_and(|cached| !cached.rejected && now < cached.expires_at),
        };
        let issued = match source.fetch(renewal).await? {
            Renewed::Issued(issued) => issued,
            Renewed::KeepCurrent(KeepCurrent(())) => {
                // `keep_current` only grants this while a usable token is cached and the lock has
                // been held since; checked again so that a permission kept from an earlier fetch
                // can never bring back a rejected or expired token.
                if let Some(cached) = slot
                    .cached
                    .as_ref()
                    .filter(|cached| !cached.rejected && now < cached.expires_at)
                {
                    return Ok(cached.bearer());
                }
                return Err(HttpError::InvalidRequest(
                    "the token source kept a token that is no longer usable".to_owned(),
                ));
            }
        };
        let to_chrono = |duration: Duration| {
            let duration = chrono::Duration::from_std(duration).unwrap_or_default();
            now.checked_add_signed(duration)
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        slot.last_generation += 1;
        let cached = Cached {
            refresh_at: to_chrono(self.policy.refresh_after(issued.lifetime)),
            expires_at: to_chrono(issued.lifetime),
            // A refresh answer without a new refresh token leaves the old one usable.
            refresh_token: issued.refresh_token.or(previous_refresh),
            token: issued.token,
            generation: slot.last_generation,
            rejected: false,
        };
        let bearer = cached.bearer();
        slot.cached = Some(cached);
        Ok(bearer)
    }

    /// Marks `token` as refused by the server (a 401), so the next [`Self::token`] fetches anew.
    ///
    /// Nothing happens when the cache already holds a newer token: many tasks may report the same
    /// 401, and only the first must cause a refresh. The refresh token is kept.
    pub async fn reject(&self, token: &BearerToken<T>) {
        let mut slot = self.slot.lock().await;
        if let Some(cached) = slot
            .cached
            .as_mut()
            .filter(|cached| cached.generation == token.generation)
        {
            cached.rejected = true;
        }
    }

    /// Drops the cached token and refresh token (e.g. after the credentials were rotated).
    pub async fn forget(&self) {
        self.slot.lock().await.cached = None;
    }
}

/// An [`Authorizer`] sending the token of `cache` as `Authorization: Bearer …`, fetched from
/// `source` when needed; a 401 rejects it, so the request is repeated once with a new token.
pub struct BearerAuth<'a, S> {
    cache: &'a TokenCache,
    source: S,
}

impl<'a, S: TokenSource + Send> BearerAuth<'a, S> {
    pub fn new(cache: &'a TokenCache, source: S) -> Self {
        Self { cache, source }
    }
}

impl<S: TokenSource + Send> Authorizer for BearerAuth<'_, S> {
    type Credential = BearerToken;

    async fn credential(&self) -> Result<BearerToken, HttpError> {
        self.cache.token(&self.source).await
    }

    fn apply(&self, request: RequestBuilder, credential: &BearerToken) -> RequestBuilder {
        request.bearer_auth(credential.token().expose())
    }

    async fn reject(&self, credential: &BearerToken) {
        self.cache.reject(credential).await;
    }
}

/// Whether a reply's `token_type` may be sent as a bearer token (absent counts as bearer).
pub fn is_bearer_type(token_type: Option<&str>) -> bool {
    token_type.is_none_or(|kind| kind.eq_ignore_ascii_case("bearer"))
}

/// Reads the JSON reply of a credential endpoint (token or login) into `R`.
///
/// Nothing of the body reaches an error: it holds credentials. `what` names the reply in the
/// errors ("token response": "token response body interrupted"); `shape` says what was expected
/// ("token response is not {access_token, expires_in, …}") and is followed by serde's message,
/// which names the field, never its value, for the token types of the clients.
pub async fn read_credential_reply<R: DeserializeOwned>(
    response: Response,
    path: &str,
    what: &str,
    shape: &str,
) -> Result<R, HttpError> {
    let body = response.bytes().await.map_err(|_| HttpError::Transient {
        method: Method::POST,
        path: path.to_owned(),
        attempts: 1,
        reason: format!("{what} body interrupted"),
    })?;
    serde_json::from_slice(&body).map_err(|error| {
        HttpError::protocol(
            &Method::POST,
            path,
            format!("{shape}: {error}"),
            BodyExcerpt::withheld(),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};

    use super::*;

    /// A clock the tests move by hand.
    #[derive(Clone)]
    struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

    impl ManualClock {
        fn new() -> Self {
            Self(Arc::new(Mutex::new(
                DateTime::parse_from_rfc3339("2025-03-01T09:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            )))
        }

        fn clock(&self) -> Clock {
            let now = self.0.clone();
            Arc::new(move || *now.lock().unwrap_or_else(PoisonError::into_inner))
        }

        fn advance(&self, seconds: i64) {
            *self.0.lock().unwrap() += chrono::Duration::seconds(seconds);
        }
    }

    /// What the fake source answers next.
    #[derive(Clone, Copy)]
    enum Answer {
        Token,
        /// Fails with a 5xx-like transient error.
        Fail,
        /// Fails, but asks to keep the current token when the cache allows it.
        FailKeepingCurrent,
    }

    /// A source issuing `tok-1`, `tok-2`, … valid for `lifetime` seconds, with refresh tokens
    /// `rt-1`, … when `refresh_tokens` is set; it records the refresh token it was handed.
    struct FakeSource {
        fetches: AtomicU32,
        lifetime: u64,
        refresh_tokens: bool,
        answer: Mutex<Answer>,
        seen_refresh: Mutex<Vec<Option<String>>>,
        delay: Duration,
    }

    impl FakeSource {
        fn new(lifetime: u64) -> Self {
            Self {
                fetches: AtomicU32::new(0),
                lifetime,
                refresh_tokens: false,
                answer: Mutex::new(Answer::Token),
                seen_refresh: Mutex::new(Vec::new()),
                delay: Duration::ZERO,
            }
        }

        fn answer(&self, answer: Answer) {
            *self.answer.lock().unwrap() = answer;
        }

        fn fetches(&self) -> u32 {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    impl TokenSource for FakeSource {
        async fn fetch(&self, renewal: Renewal) -> Result<Renewed, HttpError> {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            self.seen_refresh
                .lock()
                .unwrap()
                .push(renewal.refresh_token().map(|rt| rt.expose().to_owned()));
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let answer = *self.answer.lock().unwrap();
            let failure = HttpError::Transient {
                method: Method::POST,
                path: "/token".to_owned(),
                attempts: 1,
                reason: "503".to_owned(),
            };
            match answer {
                Answer::Token => {
                    let refresh = self.refresh_tokens.then(|| Secret::new(format!("rt-{n}")));
                    Ok(Issued::new(Secret::new(format!("tok-{n}")), self.lifetime)
                        .with_refresh_token(refresh)
                        .into())
                }
                Answer::Fail => Err(failure),
                Answer::FailKeepingCurrent => match renewal.keep_current() {
                    Some(keep) => Ok(Renewed::KeepCurrent(keep)),
                    None => Err(failure),
                },
            }
        }
    }

    fn cache(policy: RefreshPolicy, clock: &ManualClock) -> TokenCache {
        TokenCache::new(policy, clock.clock())
    }

    async fn token_text(cache: &TokenCache, source: &FakeSource) -> String {
        cache
            .token(source)
            .await
            .unwrap()
            .token()
            .expose()
            .to_owned()
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let clock = ManualClock::new();
        let cache = Arc::new(cache(
            RefreshPolicy::Margin(Duration::from_secs(60)),
            &clock,
        ));
        let source = Arc::new(FakeSource {
            delay: Duration::from_millis(50),
            ..FakeSource::new(3600)
        });
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (cache, source) = (cache.clone(), source.clone());
                tokio::spawn(async move { token_text(&cache, &source).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), "tok-1");
        }
        assert_eq!(source.fetches(), 1);
    }

    #[tokio::test]
    async fn refreshes_at_the_fraction_of_the_lifetime() {
        let clock = ManualClock::new();
        let cache = cache(RefreshPolicy::Fraction(0.8), &clock);
        let source = FakeSource::new(300);
        assert_eq!(token_text(&cache, &source).await, "tok-1");
        clock.advance(239);
        assert_eq!(token_text(&cache, &source).await, "tok-1", "before 80 %");
        clock.advance(1);
        assert_eq!(
            token_text(&cache, &source).await,
            "tok-2",
            "at 80 % of 300 s"
        );
        assert_eq!(source.fetches(), 2);
    }

    #[tokio::test]
    async fn refreshes_a_margin_before_expiry_capped_at_half_the_lifetime() {
        let clock = ManualClock::new();
        let cache = cache(RefreshPolicy::Margin(Duration::from_secs(60)), &clock);
        let source = FakeSource::new(3600);
        token_text(&cache, &source).await;
        clock.advance(3539);
        assert_eq!(token_text(&cache, &source).await, "tok-1");
        clock.advance(1);
        assert_eq!(token_text(&cache, &source).await, "tok-2");

        // A 100 s token with a 60 s margin is replaced at 50 s, not at 40 s.
        let short = FakeSource::new(100);
        let cache = TokenCache::new(
            RefreshPolicy::Margin(Duration::from_secs(60)),
            clock.clock(),
        );
        token_text(&cache, &short).await;
        clock.advance(49);
        assert_eq!(token_text(&cache, &short).await, "tok-1");
        clock.advance(1);
        assert_eq!(token_text(&cache, &short).await, "tok-2");
    }

    #[test]
    fn invalid_fractions_do_not_panic() {
        let lifetime = Duration::from_secs(300);
        assert_eq!(
            RefreshPolicy::Fraction(f64::NAN).refresh_after(lifetime),
            Duration::ZERO
        );
        assert_eq!(
            RefreshPolicy::Fraction(-1.0).refresh_after(lifetime),
            Duration::ZERO
        );
        assert_eq!(
            RefreshPolicy::Fraction(2.0).refresh_after(lifetime),
            lifetime
        );
        assert_eq!(
            RefreshPolicy::Margin(Duration::MAX).refresh_after(lifetime),
            Duration::from_secs(150)
        );
    }

    #[tokio::test]
    async fn a_rejected_token_is_replaced_exactly_once() {
        let clock = ManualClock::new();
        let cache = cache(RefreshPolicy::Margin(Duration::from_secs(60)), &clock);
        let source = FakeSource::new(3600);
        let first = cache.token(&source).await.unwrap();
        // Many tasks saw the same 401 for the same token: one refresh, not one per task.
        for _ in 0..5 {
            cache.reject(&first).await;
        }
        assert_eq!(token_text(&cache, &source).await, "tok-2");
        cache.reject(&first).await;
        assert_eq!(
            token_text(&cache, &source).await,
            "tok-2",
            "stale rejection"
        );
        assert_eq!(source.fetches(), 2);
    }

    #[tokio::test]
    async fn a_failed_fetch_caches_nothing() {
        let clock = ManualClock::new();
        let cache = cache(RefreshPolicy::Margin(Duration::from_secs(60)), &clock);
        let source = FakeSource::new(3600);
        source.answer(Answer::Fail);
        assert!(cache.token(&source).await.is_err());
        assert!(cache.token(&source).await.is_err(), "tried again");
        source.answer(Answer::Token);
        assert_eq!(token_text(&cache, &source).await, "tok-3");
        assert_eq!(source.fetches(), 3);

        // A failed replacement of an expired token does not bring the old one back either.
        clock.advance(3600);
        source.answer(Answer::Fail);
        assert!(cache.token(&source).await.is_err());
        source.answer(Answer::Token);
        assert_eq!(token_text(&cache, &source).await, "tok-5");
    }

    #[tokio::test]
    async fn refresh_tokens_are_handed_back_and_kept_across_rejections() {
        let clock = ManualClock::new();
        let cache = cache(RefreshPolicy::Margin(Duration::from_secs(60)), &clock);
        let source = FakeSource {
            refresh_tokens: true,
            ..FakeSource::new(3600)
        };
        let first = cache.token(&source).await.unwrap();
        cache.reject(&first).await;
        token_text(&cache, &source).await;
        clock.advance(3600);
        token_text(&cache, &source).await;
        cache.forget().await;
        token_text(&cache, &source).await;
        assert_eq!(
            *source.seen_refresh.lock().unwrap(),
            vec![None, Some("rt-1".to_owned()), Some("rt-2".to_owned()), None]
        );
    }

    #[tokio::test]
    async fn a_valid_token_may_be_kept_when_its_refresh_fails_but_never_a_rejected_one() {
        let clock = ManualClock::new();
        let cache = cache(RefreshPolicy::Fraction(0.8), &clock);
        let source = FakeSource::new(300);
        let first = cache.token(&source).await.unwrap();
        source.answer(Answer::FailKeepingCurrent);
        clock.advance(250);
        assert_eq!(token_text(&cache, &source).await, "tok-1", "still valid");
        clock.advance(50);
        assert!(cache.token(&source).await.is_err(), "expired");
        clock.advance(-100);
        cache.reject(&first).await;
        assert!(cache.token(&source).await.is_err(), "rejected");
    }

    #[tokio::test]
    async fn debug_never_shows_the_token() {
        let clock = ManualClock::new();
        let cache = cache(RefreshPolicy::Margin(Duration::from_secs(60)), &clock);
        let source = FakeSource::new(3600);
        let token = cache.token(&source).await.unwrap();
        let shown = format!("{token:?} {cache:?}");
        assert!(!shown.contains("tok-1"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");

        let header = BearerToken {
            token: reqwest::header::HeaderValue::from_static("bearer tok-9"),
            generation: 1,
        };
        assert!(!format!("{header:?}").contains("tok-9"));
    }

    #[test]
    fn token_types() {
        assert!(is_bearer_type(None));
        assert!(is_bearer_type(Some("Bearer")));
        assert!(is_bearer_type(Some("bearer")));
        assert!(!is_bearer_type(Some("mac")));
    }
}
