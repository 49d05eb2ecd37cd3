//! The plumbing every simulator shares, so a vendor's file holds only that vendor's wire
//! behaviour: settings, clock and locked state shared by handlers and handle ([`shared`]),
//! serving a router on 127.0.0.1 ([`server`]), ids ([`ids`]), the credentials a simulator
//! accepts ([`credentials`]), reading credentials off requests and the tokens issued
//! ([`auth`]), query strings and paging windows ([`paging`]), server-side rate limits
//! ([`rate`]), the test controls over tokens and rate limits ([`controls`]), the record of write
//! calls ([`journal`]) and reply building blocks ([`reply`]). Fault injection is
//! [`super::faults`]; the controllable clock is [`crate::clock::ManualClock`].
//!
//! The kit knows no vendor: it imports neither `crate::vendors` nor a simulator, so every
//! simulator can depend on it without a cycle.

pub mod auth;
pub mod controls;
pub mod credentials;
pub mod ids;
pub mod journal;
pub mod paging;
pub mod rate;
pub mod reply;
pub mod server;
pub mod shared;

pub use controls::{RateControls, TokenControls};
pub use credentials::{Login, OAuthClient};
pub use server::{bind, Bound, Server};
pub use shared::{Running, Shared, SimClock};
