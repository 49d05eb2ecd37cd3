//! Per-account client-side rate limit: a token bucket shared by every task that talks to one account.
//!
//! Callers reserve a slot and sleep outside the lock, so waiting tasks are served in arrival order and the
//! lock is never held across an await.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A token bucket: `capacity` requests may go out at once, then `rate` per second.
///
/// Pure bookkeeping (no clock, no sleeping) so its arithmetic is testable without waiting.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    rate_per_second: f64,
    /// May go negative: reservations made by callers that are now waiting.
    tokens: f64,
    last_refill: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_second: f64, capacity: f64, now: Instant) -> Self {
        Self {
            capacity,
            rate_per_second,
            tokens: capacity,
            last_refill: now,
        }
    }

    /// Takes one token and returns how long the caller must wait before using it (zero if available now).
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_second).min(self.capacity);
        self.last_refill = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate_per_second)
        }
    }
}

/// A rate limit shared across tasks: clones share the same bucket.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    bucket: Arc<Mutex<TokenBucket>>,
}

impl RateLimiter {
    const MIN_RATE: f64 = 0.01;
    const MAX_RATE: f64 = 1_000_000.0;

    /// A limiter allowing `requests_per_second` on average, with a burst of the same size (at least 1).
    /// Values outside 0.01 ..= 1 000 000 (and NaN) are clamped into that range.
    pub fn new(requests_per_second: f64) -> Self {
        let rate = if requests_per_second.is_nan() {
            Self::MIN_RATE
        } else {
            requests_per_second.clamp(Self::MIN_RATE, Self::MAX_RATE)
        };
        Self::with_burst(rate, rate.max(1.0))
    }

    /// A limiter with an explicit burst size (at least 1).
    pub fn with_burst(requests_per_second: f64, burst: f64) -> Self {
        let rate = if requests_per_second.is_nan() {
            Self::MIN_RATE
        } else {
            requests_per_second.clamp(Self::MIN_RATE, Self::MAX_RATE)
        };
        let capacity = if burst.is_nan() { 1.0 } else { burst.max(1.0) };
        Self {
            bucket: Arc::new(Mutex::new(TokenBucket::new(rate, capacity, Instant::now()))),
        }
    }

    /// Waits until this caller may send one request.
    pub async fn acquire(&self) {
        let wait = self
            .bucket
            .lock()
            // The bucket holds plain numbers that are valid after any panic: keep using it.
            .unwrap_or_else(PoisonError::into_inner)
            .reserve(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 2.0, start);
        assert_eq!(bucket.reserve(start), Duration::ZERO);
        assert_eq!(bucket.reserve(start), Duration::ZERO);
        // Third request at the same instant waits one token's worth: 0.5 s at 2/s.
        assert_eq!(bucket.reserve(start), Duration::from_millis(500));
        // Fourth queues behind the third.
        assert_eq!(bucket.reserve(start), Duration::from_secs(1));
    }

    #[test]
    fn refill_is_capped_at_capacity() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 1.0, start);
        assert_eq!(bucket.reserve(start), Duration::ZERO);
        let much_later = start + Duration::from_secs(100);
        assert_eq!(bucket.reserve(much_later), Duration::ZERO);
        assert_eq!(bucket.reserve(much_later), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn clones_share_one_bucket() {
        let limiter = RateLimiter::with_burst(1.0, 1.0);
        let clone = limiter.clone();
        limiter.acquire().await;
        let wait = clone
            .bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reserve(Instant::now());
        assert!(
            wait > Duration::from_millis(500),
            "second caller must wait, got {wait:?}"
        );
    }
}
