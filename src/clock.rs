//! The injectable source of "now" shared by every client (token expiry) and simulator, so tests
//! and the sandbox can drive time.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// A source of "now".
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}
