//! Retry policy: which failures are retried, how long to wait, and when to give up.
//!
//! Rules: 429 is always retried after `Retry-After` (seconds or HTTP-date; a default when absent) because
//! the server refused before doing anything. 5xx and timeouts are retried with jittered exponential
//! backoff only for idempotent requests; connect errors always (nothing reached the server). Other 4xx
//! are never retried. Every call is bounded by an attempt count and a total time budget: a wait that
//! would overrun the budget is not started, the error is returned at once instead.
//!
//! Some vendors throttle with another status than 429 (Brivo's Mashery proxy answers `403` with
//! "Account Over Queries Per Second Limit"). A client that knows its vendor installs a
//! [`ThrottleClassifier`]: it sees each refused reply (status, headers, body) and says whether it is
//! throttling; everything it does not claim keeps the rules above, so a real 403 stays final. No
//! classifier is installed by default: no vendor's 403 becomes retryable by accident.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try again (if the budget allows).
    RetryAfter(Duration),
    /// Return the failure to the caller.
    GiveUp,
}

/// A vendor's reading of a refused reply that the generic rules would treat as final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// A per-second limit: slow down and try again shortly. Retried like a 429, whatever the
    /// method (the gateway refused before the request reached the service).
    PerSecond,
    /// A quota over a longer period is used up: retrying within this call cannot help. Not
    /// retried; reported as [`super::HttpError::RateLimited`] (retry later), never as a refusal.
    Quota,
}

/// Says whether a refused reply (`status`, `headers`, `body`) is throttling. Called for 4xx replies
/// other than 429; `None` leaves the reply to the generic rules.
pub type ThrottleClassifier = fn(StatusCode, &HeaderMap, &[u8]) -> Option<Throttle>;

/// Bounds and timings of the retry loop in [`super::ResilientClient`].
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles per attempt.
    pub base_delay: Duration,
    /// Upper bound of one backoff wait (not of a server-requested `Retry-After`).
    pub max_delay: Duration,
    /// Total time one call may take, waits included; a wait that would exceed it is not started.
    pub max_total: Duration,
    /// Wait after a 429 without a usable `Retry-After` header.
    pub default_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_total: Duration::from_secs(60),
            // Two seconds is what an existing OfficeRnD client assumes; no vendor documents a default.
            default_retry_after: Duration::from_secs(2),
        }
    }
}

/// Transport failure classes, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkFailure {
    /// The connection was never established: the request cannot have been processed.
    Connect,
    /// No complete answer in time: the request may have been processed.
    Timeout,
    /// The connection broke while sending or receiving: the request may have been processed.
    Interrupted,
    /// A local problem (building the request, redirect loop, decoding): retrying changes nothing.
    Local,
}

impl NetworkFailure {
    pub fn classify(error: &reqwest::Error) -> Self {
        if error.is_connect() {
            Self::Connect
        } else if error.is_timeout() {
            Self::Timeout
        } else if error.is_request() || error.is_body() {
            Self::Interrupted
        } else {
            Self::Local
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries (each call makes exactly one attempt).
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Jittered exponential backoff before attempt `failed_attempt + 1`: half fixed, half random, so
    /// clients that failed together do not retry together.
    pub fn backoff(&self, failed_attempt: u32) -> Duration {
        let exponent = failed_attempt.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Decision after attempt number `failed_attempt` (1-based) got an HTTP error status.
    pub fn decide_status(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        idempotent: bool,
        failed_attempt: u32,
    ) -> RetryDecision {
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = parse_retry_after(headers, Utc::now()).unwrap_or(self.default_retry_after);
            return RetryDecision::RetryAfter(wait);
        }
        if status.is_server_error() && idempotent {
            let backoff = self.backoff(failed_attempt);
            // A 503 may say when to come back; never come back earlier than asked.
            let asked = parse_retry_after(headers, Utc::now()).unwrap_or_default();
            return RetryDecision::RetryAfter(backoff.max(asked));
        }
        RetryDecision::GiveUp
    }

    /// Decision after attempt number `failed_attempt` (1-based) was refused with a reply the
    /// vendor's [`ThrottleClassifier`] called throttling.
    ///
    /// Per-second throttling waits for `Retry-After` when the gateway sends one (never less), else
    /// for [`Self::default_retry_after`]; either way at least the jittered backoff of this attempt,
    /// so a gateway that keeps refusing is asked less and less often.
    pub fn decide_throttled(
        &self,
        throttle: Throttle,
        headers: &HeaderMap,
        failed_attempt: u32,
    ) -> RetryDecision {
        match throttle {
            Throttle::PerSecond => {
                let asked =
                    parse_retry_after(headers, Utc::now()).unwrap_or(self.default_retry_after);
                RetryDecision::RetryAfter(asked.max(self.backoff(failed_attempt)))
            }
            Throttle::Quota => RetryDecision::GiveUp,
        }
    }

    /// Decision after attempt number `failed_attempt` (1-based) failed below HTTP.
    pub fn decide_network(
        &self,
        failure: NetworkFailure,
        idempotent: bool,
        failed_attempt: u32,
    ) -> RetryDecision {
        match failure {
            NetworkFailure::Connect => RetryDecision::RetryAfter(self.backoff(failed_attempt)),
            NetworkFailure::Timeout | NetworkFailure::Interrupted if idempotent => {
                RetryDecision::RetryAfter(self.backoff(failed_attempt))
            }
            _ => RetryDecision::GiveUp,
        }
    }

    /// Whether another attempt may start after `attempts_made`, `elapsed` time and a wait of `delay`.
    pub fn allows(&self, attempts_made: u32, elapsed: Duration, delay: Duration) -> bool {
        attempts_made < self.max_attempts && elapsed.saturating_add(delay) <= self.max_total
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP-date in IMF-fixdate form
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, the only form RFC 9110 lets servers send). A date in the past
/// means "now"; anything unparseable (including the obsolete RFC 850 / asctime forms) is `None`, so the
/// caller falls back to its default wait.
pub fn parse_retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers_with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after(&headers_with_retry_after("7"), now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(
                &headers_with_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
                now
            ),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after(
                &headers_with_retry_after("Wed, 21 Oct 2015 07:00:00 GMT"),
                now
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(&headers_with_retry_after("soon"), now),
            None
        );
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn too_many_requests_is_retried_even_for_posts() {
        let policy = RetryPolicy::default();
        let decision = policy.decide_status(
            StatusCode::TOO_MANY_REQUESTS,
            &headers_with_retry_after("3"),
            false,
            1,
        );
        assert_eq!(decision, RetryDecision::RetryAfter(Duration::from_secs(3)));
        let without_header =
            policy.decide_status(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), false, 1);
        assert_eq!(
            without_header,
            RetryDecision::RetryAfter(policy.default_retry_after)
        );
    }

    #[test]
    fn server_errors_retry_only_when_idempotent_and_client_errors_never() {
        let policy = RetryPolicy::default();
        let none = HeaderMap::new();
        assert!(matches!(
            policy.decide_status(StatusCode::BAD_GATEWAY, &none, true, 1),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(
            policy.decide_status(StatusCode::BAD_GATEWAY, &none, false, 1),
            RetryDecision::GiveUp
        );
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::NOT_FOUND,
            StatusCode::CONFLICT,
            StatusCode::UNPROCESSABLE_ENTITY,
        ] {
            assert_eq!(
                policy.decide_status(status, &none, true, 1),
                RetryDecision::GiveUp,
                "{status}"
            );
        }
    }

    #[test]
    fn throttling_waits_and_grows_while_a_quota_gives_up() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(8),
            default_retry_after: Duration::from_millis(300),
            ..RetryPolicy::default()
        };
        let none = HeaderMap::new();
        let RetryDecision::RetryAfter(first) =
            policy.decide_throttled(Throttle::PerSecond, &none, 1)
        else {
            panic!("per-second throttling is retried");
        };
        assert_eq!(
            first,
            Duration::from_millis(300),
            "no header: the default wait"
        );
        let RetryDecision::RetryAfter(late) =
            policy.decide_throttled(Throttle::PerSecond, &none, 8)
        else {
            panic!("per-second throttling is retried");
        };
        assert!(late >= Duration::from_secs(4), "backoff grows: {late:?}");
        assert_eq!(
            policy.decide_throttled(Throttle::PerSecond, &headers_with_retry_after("2"), 1),
            RetryDecision::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            policy.decide_throttled(Throttle::Quota, &headers_with_retry_after("1"), 1),
            RetryDecision::GiveUp
        );
    }

    /// A server answering each connection with the next canned reply (then 200 `{}` forever);
    /// returns its URL and how many requests it served.
    async fn canned_server(
        replies: Vec<&'static str>,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let served = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = served.clone();
        tokio::spawn(async move {
            let mut replies = replies.into_iter();
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let reply = replies.next().unwrap_or(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        (url, served)
    }

    const OVER_QPS: &str = "HTTP/1.1 403 Forbidden\r\ncontent-type: text/xml\r\nx-mashery-error-code: ERR_403_DEVELOPER_OVER_QPS\r\ncontent-length: 27\r\nconnection: close\r\n\r\n<h1>Developer Over Qps</h1>";
    const DENIED: &str = "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: 67\r\nconnection: close\r\n\r\n{\"code\":403,\"message\":\"You are not allowed to perform that action\"}";

    fn over_qps(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Option<Throttle> {
        let marked = headers
            .get("x-mashery-error-code")
            .is_some_and(|code| code == "ERR_403_DEVELOPER_OVER_QPS");
        (status == StatusCode::FORBIDDEN && marked && body.starts_with(b"<h1>"))
            .then_some(Throttle::PerSecond)
    }

    fn quick(classifier: Option<ThrottleClassifier>) -> super::super::ResilientClient {
        let client =
            super::super::ResilientClient::new(reqwest::Client::new()).with_policy(RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(2),
                default_retry_after: Duration::from_millis(1),
                ..RetryPolicy::default()
            });
        match classifier {
            Some(classifier) => client.with_throttle_classifier(classifier),
            None => client,
        }
    }

    #[tokio::test]
    async fn a_classified_403_is_retried_even_for_posts_and_a_plain_403_stays_final() {
        let (url, served) = canned_server(vec![OVER_QPS, OVER_QPS]).await;
        let client = quick(Some(over_qps));
        client.send(|| client.http().post(&url)).await.unwrap();
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 3);

        let (url, served) = canned_server(vec![DENIED]).await;
        let error = client.send(|| client.http().get(&url)).await.unwrap_err();
        assert!(
            matches!(&error, super::super::HttpError::BadRequest { status: StatusCode::FORBIDDEN, message, .. } if message.contains("not allowed")),
            "{error:?}"
        );
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);

        // Without a classifier the same throttling reply is final: nothing changes for other vendors.
        let (url, served) = canned_server(vec![OVER_QPS]).await;
        let plain = quick(None);
        let error = plain.send(|| plain.http().get(&url)).await.unwrap_err();
        assert!(
            matches!(
                &error,
                super::super::HttpError::BadRequest {
                    status: StatusCode::FORBIDDEN,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn throttling_that_outlasts_the_budget_is_rate_limited_not_refused() {
        let (url, served) = canned_server(vec![OVER_QPS; 6]).await;
        let client = quick(Some(over_qps));
        let error = client.send(|| client.http().get(&url)).await.unwrap_err();
        assert!(
            matches!(error, super::super::HttpError::RateLimited { .. }),
            "{error:?}"
        );
        assert!(error.is_retryable_later());
        assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 4);
    }

    #[test]
    fn network_failures() {
        let policy = RetryPolicy::default();
        assert!(matches!(
            policy.decide_network(NetworkFailure::Connect, false, 1),
            RetryDecision::RetryAfter(_)
        ));
        assert!(matches!(
            policy.decide_network(NetworkFailure::Timeout, true, 1),
            RetryDecision::RetryAfter(_)
        ));
        assert_eq!(
            policy.decide_network(NetworkFailure::Timeout, false, 1),
            RetryDecision::GiveUp
        );
        assert_eq!(
            policy.decide_network(NetworkFailure::Local, true, 1),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = policy.backoff(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn budget_bounds_attempts_and_total_time() {
        let policy = RetryPolicy {
            max_attempts: 3,
            max_total: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        assert!(policy.allows(1, Duration::ZERO, Duration::from_secs(1)));
        assert!(!policy.allows(3, Duration::ZERO, Duration::ZERO));
        assert!(!policy.allows(1, Duration::from_secs(5), Duration::from_secs(6)));
        assert!(!RetryPolicy::no_retries().allows(1, Duration::ZERO, Duration::ZERO));
    }
}
