//! Kisi door access: the API client ([`KisiClient`], a [`crate::vendors::DoorVendor`]), the wire
//! facts and guesses it relies on ([`wire`]), and an in-process simulator of the same endpoints.

pub mod client;
pub mod simulator;
pub mod wire;

pub use crate::api::vendor_connection::KisiNotificationPolicy;
pub use client::{KisiClient, KisiConfig, KisiConfigError};
