//! Brivo Access (formerly OnAir): the [`crate::vendors::DoorVendor`] client over the Brivo REST API v1,
//! and the wire facts it shares with its simulator ([`crate::sandbox::brivo`]).

pub mod client;
pub mod wire;

pub use client::{BrivoClient, BrivoConfig, BrivoConfigError, InvitationOutcome};

pub use crate::clock::{system_clock, Clock};

pub use crate::api::vendor_connection::BrivoMobilePassTarget;
