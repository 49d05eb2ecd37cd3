//! Server-side fault injection and request accounting for every vendor simulator (axum middleware).
//!
//! A [`Faults`] handle is shared between a simulator's router (via [`Faults::layer`]) and the test or
//! sandbox driving it: add [`FaultRule`]s (N × 429 with `Retry-After`, N × 5xx, latency, a random error
//! rate, each optionally only after the first K matching requests) and read per-route request and
//! response-status counts. Routes are keyed `"METHOD /path"` (path without query).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Which requests a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    method: Option<Method>,
    path: PathMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathMatch {
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
}

impl Route {
    /// Every request.
    pub fn any() -> Self {
        Self {
            method: None,
            path: PathMatch::Any,
        }
    }

    /// Requests whose path is exactly `path`.
    pub fn path(path: impl Into<String>) -> Self {
        Self {
            method: None,
            path: PathMatch::Exact(path.into()),
        }
    }

    /// Requests whose path starts with `prefix`.
    pub fn path_prefix(prefix: impl Into<String>) -> Self {
        Self {
            method: None,
            path: PathMatch::Prefix(prefix.into()),
        }
    }

    /// Requests whose path ends with `suffix` (e.g. `/members` for any organization).
    pub fn path_suffix(suffix: impl Into<String>) -> Self {
        Self {
            method: None,
            path: PathMatch::Suffix(suffix.into()),
        }
    }

    /// Restricts the route to one method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    pub fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method.as_ref().is_some_and(|wanted| wanted != method) {
            return false;
        }
        match &self.path {
            PathMatch::Any => true,
            PathMatch::Exact(exact) => path == exact,
            PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()),
            PathMatch::Suffix(suffix) => path.ends_with(suffix.as_str()),
        }
    }
}

/// The `Retry-After` header of an injected 429.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    /// Sent as an IMF-fixdate HTTP-date.
    HttpDate(DateTime<Utc>),
    /// No header at all.
    Omitted,
}

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with the given `Retry-After`.
    TooManyRequests(RetryAfter),
    /// This status with `body`, or a NestJS-style `{statusCode, message, error}` body when `None`.
    Status {
        status: StatusCode,
        body: Option<Value>,
    },
    /// Delay before the request is handled (combines with a later status fault).
    Latency(Duration),
    /// The request is handled at once and its answer delayed: a client that gives up first
    /// never learns that its write landed (a lost response).
    SlowAnswer(Duration),
}

/// A fault applied to matching requests, optionally only some of them.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    route: Route,
    fault: Fault,
    skip_first: u64,
    remaining: Option<u64>,
    probability: f64,
    matched: u64,
}

impl FaultRule {
    /// Applies to every matching request until limited with [`Self::times`].
    pub fn new(route: Route, fault: Fault) -> Self {
        Self {
            route,
            fault,
            skip_first: 0,
            remaining: None,
            probability: 1.0,
            matched: 0,
        }
    }

    /// Fires at most `count` times, then stays inert.
    pub fn times(mut self, count: u64) -> Self {
        self.remaining = Some(count);
        self
    }

    /// Lets the first `count` matching requests through untouched (e.g. fail page 2 of a list).
    pub fn after(mut self, count: u64) -> Self {
        self.skip_first = count;
        self
    }

    /// Fires for each eligible request with this probability (0.0 ..= 1.0), from a seeded generator.
    pub fn with_probability(mut self, probability: f64) -> Self {
        self.probability = if probability.is_nan() {
            0.0
        } else {
            probability.clamp(0.0, 1.0)
        };
        self
    }
}

#[derive(Debug)]
struct FaultState {
    rules: Vec<FaultRule>,
    requests: BTreeMap<String, u64>,
    responses: BTreeMap<(String, u16), u64>,
    injected: u64,
    rng: fastrand::Rng,
}

/// Shared fault configuration and counters. Clones share state.
#[derive(Debug, Clone)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::with_seed(0x5eed)
    }
}

fn route_key(method: &Method, path: &str) -> String {
    format!("{method} {path}")
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    /// Random faults are drawn from a generator with this seed, so runs are reproducible.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(FaultState {
                rules: Vec::new(),
                requests: BTreeMap::new(),
                responses: BTreeMap::new(),
                injected: 0,
                rng: fastrand::Rng::with_seed(seed),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FaultState> {
        // Counters and rules stay meaningful after a panic elsewhere; keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn add(&self, rule: FaultRule) {
        self.lock().rules.push(rule);
    }

    /// The next `times` requests on `route` get 429 with `Retry-After: <seconds>`.
    pub fn inject_429(&self, route: Route, times: u64, retry_after_seconds: u64) {
        self.add(
            FaultRule::new(
                route,
                Fault::TooManyRequests(RetryAfter::Seconds(retry_after_seconds)),
            )
            .times(times),
        );
    }

    /// The next `times` requests on `route` get `status` (e.g. 500, 502, 503).
    pub fn inject_status(&self, route: Route, times: u64, status: StatusCode) {
        self.add(FaultRule::new(route, Fault::Status { status, body: None }).times(times));
    }

    /// Every request on `route` is delayed by `delay`.
    pub fn add_latency(&self, route: Route, delay: Duration) {
        self.add(FaultRule::new(route, Fault::Latency(delay)));
    }

    /// Each request on `route` gets `status` with `probability`.
    pub fn random_status(&self, route: Route, probability: f64, status: StatusCode) {
        self.add(
            FaultRule::new(route, Fault::Status { status, body: None })
                .with_probability(probability),
        );
    }

    /// Removes all rules (counters are kept).
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Zeroes all counters (rules are kept).
    pub fn reset_counts(&self) {
        let mut state = self.lock();
        state.requests.clear();
        state.responses.clear();
        state.injected = 0;
    }

    /// Requests received for `METHOD path`, injected faults included.
    pub fn requests(&self, method: &Method, path: &str) -> u64 {
        self.lock()
            .requests
            .get(&route_key(method, path))
            .copied()
            .unwrap_or(0)
    }

    /// Requests received on every path `route` matches.
    pub fn requests_matching(&self, route: &Route) -> u64 {
        self.lock()
            .requests
            .iter()
            .filter(|(key, _)| key_matches(route, key))
            .map(|(_, count)| count)
            .sum()
    }

    /// Responses with `status` on every path `route` matches.
    pub fn responses_matching(&self, route: &Route, status: StatusCode) -> u64 {
        self.lock()
            .responses
            .iter()
            .filter(|((key, code), _)| *code == status.as_u16() && key_matches(route, key))
            .map(|(_, count)| count)
            .sum()
    }

    /// Every `"METHOD /path"` seen, with its request count.
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.lock().requests.clone()
    }

    /// How many responses were produced by fault rules (latency not counted).
    pub fn injected(&self) -> u64 {
        self.lock().injected
    }

    /// Wraps `router` (all its routes) with fault injection and accounting.
    pub fn layer<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.layer(middleware::from_fn_with_state(self.clone(), inject_faults))
    }

    /// Counts the request and decides its fate: total delay, then maybe a replacement response.
    fn admit(&self, method: &Method, path: &str) -> (Duration, Duration, Option<Fault>) {
        let mut state = self.lock();
        *state.requests.entry(route_key(method, path)).or_default() += 1;
        let FaultState { rules, rng, .. } = &mut *state;
        let mut delay = Duration::ZERO;
        let mut answer_delay = Duration::ZERO;
        let mut outcome = None;
        for rule in rules
            .iter_mut()
            .filter(|rule| rule.route.matches(method, path))
        {
            rule.matched += 1;
            if rule.matched <= rule.skip_first || rule.remaining == Some(0) {
                continue;
            }
            if outcome.is_some() && !matches!(rule.fault, Fault::Latency(_) | Fault::SlowAnswer(_))
            {
                continue;
            }
            if rule.probability < 1.0 && rng.f64() >= rule.probability {
                continue;
            }
            if let Some(remaining) = rule.remaining.as_mut() {
                *remaining -= 1;
            }
            match &rule.fault {
                Fault::Latency(extra) => delay += *extra,
                Fault::SlowAnswer(extra) => answer_delay += *extra,
                other => outcome = Some(other.clone()),
            }
        }
        if outcome.is_some() {
            state.injected += 1;
        }
        (delay, answer_delay, outcome)
    }

    fn record_response(&self, method: &Method, path: &str, status: StatusCode) {
        *self
            .lock()
            .responses
            .entry((route_key(method, path), status.as_u16()))
            .or_default() += 1;
    }
}

fn key_matches(route: &Route, key: &str) -> bool {
    key.split_once(' ')
        .and_then(|(method, path)| Some((Method::from_bytes(method.as_bytes()).ok()?, path)))
        .is_some_and(|(method, path)| route.matches(&method, path))
}

async fn inject_faults(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (delay, answer_delay, fault) = faults.admit(&method, &path);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = match fault {
        None | Some(Fault::Latency(_) | Fault::SlowAnswer(_)) => {
            let response = next.run(request).await;
            if !answer_delay.is_zero() {
                tokio::time::sleep(answer_delay).await;
            }
            response
        }
        Some(Fault::TooManyRequests(retry_after)) => {
            let mut response = nest_error(StatusCode::TOO_MANY_REQUESTS, None);
            let header = match retry_after {
                RetryAfter::Seconds(seconds) => Some(seconds.to_string()),
                RetryAfter::HttpDate(at) => {
                    Some(at.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
                }
                RetryAfter::Omitted => None,
            };
            if let Some(value) = header.and_then(|text| HeaderValue::from_str(&text).ok()) {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
            response
        }
        Some(Fault::Status { status, body }) => nest_error(status, body),
    };
    faults.record_response(&method, &path, response.status());
    response
}

fn nest_error(status: StatusCode, body: Option<Value>) -> Response {
    let reason = status.canonical_reason().unwrap_or("Injected fault");
    let body = body.unwrap_or_else(
        || json!({"statusCode": status.as_u16(), "message": reason, "error": reason}),
    );
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_respect_skip_times_and_order() {
        let faults = Faults::new();
        faults.add(
            FaultRule::new(
                Route::path_suffix("/members").method(Method::GET),
                Fault::Status {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: None,
                },
            )
            .after(1)
            .times(2),
        );
        let outcomes: Vec<bool> = (0..5)
            .map(|_| {
                faults
                    .admit(&Method::GET, "/api/v2/organizations/o/members")
                    .2
                    .is_some()
            })
            .collect();
        assert_eq!(outcomes, vec![false, true, true, false, false]);
        assert!(faults
            .admit(&Method::POST, "/api/v2/organizations/o/members")
            .2
            .is_none());
        assert_eq!(
            faults.requests(&Method::GET, "/api/v2/organizations/o/members"),
            5
        );
        assert_eq!(faults.requests_matching(&Route::path_suffix("/members")), 6);
        assert_eq!(faults.injected(), 2);
    }

    #[test]
    fn latency_accumulates_and_combines_with_a_status() {
        let faults = Faults::new();
        faults.add_latency(Route::any(), Duration::from_millis(5));
        faults.inject_429(Route::any(), 1, 3);
        faults.add_latency(Route::any(), Duration::from_millis(7));
        let (delay, _, fault) = faults.admit(&Method::GET, "/x");
        assert_eq!(delay, Duration::from_millis(12));
        assert_eq!(fault, Some(Fault::TooManyRequests(RetryAfter::Seconds(3))));
        assert_eq!(faults.admit(&Method::GET, "/x").2, None);
    }

    #[test]
    fn random_rate_is_seeded_and_roughly_right() {
        let count_hits = || {
            let faults = Faults::with_seed(7);
            faults.random_status(Route::any(), 0.3, StatusCode::SERVICE_UNAVAILABLE);
            (0..1000)
                .filter(|_| faults.admit(&Method::GET, "/x").2.is_some())
                .count()
        };
        let hits = count_hits();
        assert_eq!(hits, count_hits(), "same seed, same faults");
        assert!((200..400).contains(&hits), "{hits} hits of 1000 at p=0.3");
    }
}
