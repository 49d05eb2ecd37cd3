//! OfficeRnD Flex (API v2): client, shared collection catalogue and webhook verification (the
//! simulator is `crate::sandbox::officernd`).
//!
//! The typed models live in `model.rs` (owned separately); everything here is generic over
//! `serde::de::DeserializeOwned` so it works with those models or with `serde_json::Value`.

pub mod client;
pub mod collection;
pub mod model;
pub mod refresh;
pub mod snapshot;
pub mod webhooks;
pub mod wire;

use chrono::{DateTime, Utc};

pub use client::{OfficeRndClient, OfficeRndConfig, OfficeRndError};
pub use collection::{Access, Collection, CollectionSet, Feature};

pub use crate::clock::{system_clock, Clock};

/// OfficeRnD's timestamp format: ISO-8601 UTC with milliseconds, e.g. `2025-01-01T00:00:00.000Z`.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
