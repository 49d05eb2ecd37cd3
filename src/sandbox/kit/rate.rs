//! Server-side rate limits a simulator can switch on: which requests are admitted. How a refusal
//! looks (429 with or without `Retry-After`, a gateway's 403) is each vendor's wire fact.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

/// How requests are counted against the per-second limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The requests admitted in the last second, whenever they came (a refused one is not counted).
    Sliding,
    /// Whole seconds from the first request of each: every request counts, refused ones too.
    Fixed,
}

/// A per-second limit; without one every request is admitted.
#[derive(Debug, Clone)]
pub struct RateLimit {
    window: Window,
    limit: Option<u32>,
    admitted: VecDeque<Instant>,
    fixed: Option<(Instant, u32)>,
}

impl RateLimit {
    pub fn new(window: Window, per_second: Option<u32>) -> Self {
        Self {
            window,
            limit: per_second,
            admitted: VecDeque::new(),
            fixed: None,
        }
    }

    /// Changes the limit (`None`: off) and forgets the requests counted so far.
    pub fn set(&mut self, per_second: Option<u32>) {
        self.limit = per_second;
        self.admitted.clear();
        self.fixed = None;
    }

    /// Admits a request arriving at `now`, or says how long until the window has room again
    /// (at least a whole second for a fixed window, the time until the oldest request leaves a
    /// sliding one).
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        match self.window {
            Window::Sliding => {
                while self
                    .admitted
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= SECOND)
                {
                    self.admitted.pop_front();
                }
                if self.admitted.len() >= limit as usize {
                    let oldest = self.admitted.front().copied().unwrap_or(now);
                    return Err(SECOND.saturating_sub(now.duration_since(oldest)));
                }
                self.admitted.push_back(now);
                Ok(())
            }
            Window::Fixed => {
                let (started, count) = match self.fixed {
                    Some((started, count)) if now.duration_since(started) < SECOND => {
                        (started, count)
                    }
                    _ => (now, 0),
                };
                let count = count + 1;
                self.fixed = Some((started, count));
                if count > limit {
                    let left = SECOND.saturating_sub(now.duration_since(started));
                    Err(left.max(SECOND))
                } else {
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_counts_admitted_requests_of_the_last_second() {
        let start = Instant::now();
        let mut limit = RateLimit::new(Window::Sliding, Some(2));
        assert!(limit.admit(start).is_ok());
        assert!(limit.admit(start + Duration::from_millis(400)).is_ok());
        let wait = limit.admit(start + Duration::from_millis(500)).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limit.admit(start + Duration::from_millis(1000)).is_ok());
        limit.set(None);
        assert!((0..10).all(|_| limit.admit(start).is_ok()));
    }

    #[test]
    fn fixed_window_counts_refusals_and_restarts_each_second() {
        let start = Instant::now();
        let mut limit = RateLimit::new(Window::Fixed, Some(1));
        assert!(limit.admit(start).is_ok());
        assert_eq!(
            limit.admit(start + Duration::from_millis(300)),
            Err(Duration::from_secs(1))
        );
        assert!(limit.admit(start + Duration::from_millis(1000)).is_ok());
        limit.set(Some(1));
        assert!(limit.admit(start + Duration::from_millis(1100)).is_ok());
    }
}
