//! Kisi door access: the API client ([`KisiClient`], a [`crate::vendors::DoorVendor`]), the wire
//! facts and guesses it relies on ([`wire`]); its simulator is [`crate::sandbox::kisi`].

pub mod client;
pub mod wire;

pub use crate::api::vendor_connection::KisiNotificationPolicy;
pub use client::{KisiClient, KisiConfig, KisiConfigError};
