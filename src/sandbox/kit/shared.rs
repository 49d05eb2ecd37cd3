//! What a simulator's handlers and its handle share: the settings fixed at start-up, the clock
//! ([`SimClock`]), and the mutable state behind one lock ([`Shared`]); and a running simulator as
//! its handle holds it ([`Running`]: the shared part, its faults and its server).

use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use chrono::{DateTime, Utc};

use super::server::{bind, Bound, Server};
use crate::clock::{system_clock, Clock};
use crate::sandbox::faults::Faults;

/// A simulator's source of "now": a [`Clock`] that start-up options can hold and still derive
/// `Debug` (a closure has none). `Default` is the wall clock; tests pass a
/// [`crate::clock::ManualClock`]'s `clock().into()`.
#[derive(Clone)]
pub struct SimClock(Clock);

impl SimClock {
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for SimClock {
    fn default() -> Self {
        Self(system_clock())
    }
}

impl From<Clock> for SimClock {
    fn from(clock: Clock) -> Self {
        Self(clock)
    }
}

impl std::fmt::Debug for SimClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimClock")
    }
}

/// A simulator's settings (`C`, read through `Deref`), clock, and state (`S`, behind [`Self::lock`]).
pub struct Shared<C, S> {
    config: C,
    clock: SimClock,
    state: Mutex<S>,
}

impl<C, S> Shared<C, S> {
    pub fn new(config: C, clock: impl Into<SimClock>, state: S) -> Arc<Self> {
        Arc::new(Self {
            config,
            clock: clock.into(),
            state: Mutex::new(state),
        })
    }

    /// The state. A panic in another handler leaves plain data that is still meaningful, so a
    /// poisoned lock keeps serving.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// "Now" on the simulator's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}

impl<C, S> Deref for Shared<C, S> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.config
    }
}

/// A running simulator: what its handle controls. Reads through `Deref` as its [`Shared`];
/// dropping it stops the server.
pub struct Running<C, S> {
    shared: Arc<Shared<C, S>>,
    faults: Faults,
    server: Server,
}

impl<C, S> Running<C, S> {
    /// Serves `router(shared)` behind `faults` on a fresh 127.0.0.1 port.
    pub async fn start(
        name: &'static str,
        shared: Arc<Shared<C, S>>,
        router: impl FnOnce(Arc<Shared<C, S>>) -> Router,
        faults: Faults,
    ) -> std::io::Result<Self> {
        Ok(Self::on(bind().await?, name, shared, router, faults))
    }

    /// Serves `router(shared)` behind `faults` on a port bound earlier (for a simulator whose
    /// settings name its own address).
    pub fn on(
        bound: Bound,
        name: &'static str,
        shared: Arc<Shared<C, S>>,
        router: impl FnOnce(Arc<Shared<C, S>>) -> Router,
        faults: Faults,
    ) -> Self {
        let server = bound.serve(name, router(Arc::clone(&shared)), &faults);
        Self {
            shared,
            faults,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// The fault injection and request counters wrapped around the simulator.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Stops the server (also done on drop).
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

impl<C, S> Deref for Running<C, S> {
    type Target = Shared<C, S>;

    fn deref(&self) -> &Shared<C, S> {
        &self.shared
    }
}

impl<C, S> std::fmt::Debug for Running<C, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn sim_clock_reads_the_clock_it_wraps_and_debug_names_it() {
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let manual = ManualClock::new(at);
        let clock = SimClock::from(manual.clock());
        manual.advance(chrono::Duration::seconds(5));
        assert_eq!(clock.now(), at + chrono::Duration::seconds(5));
        assert_eq!(format!("{clock:?}"), "SimClock");
    }
}
