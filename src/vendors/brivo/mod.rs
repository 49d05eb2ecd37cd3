//! Brivo Access (formerly OnAir): the [`crate::vendors::DoorVendor`] client over the Brivo REST API v1,
//! the wire facts both sides share, and an in-process simulator of the endpoints the sync uses.

pub mod client;
pub mod simulator;
pub mod wire;

pub use client::{BrivoClient, BrivoConfig, BrivoConfigError, InvitationOutcome};

pub use crate::clock::{system_clock, Clock};

pub use crate::api::vendor_connection::BrivoMobilePassTarget;
