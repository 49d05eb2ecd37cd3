//! Salto KS (Connect API): the door-vendor client for one site (its simulator is
//! [`crate::sandbox::salto_ks`]).
//!
//! Salto KS keeps two ids per person: the site-user id (a person's row in one site) and the
//! platform `user.id` (their global identity). Access-group membership takes the platform id, so
//! [`crate::vendors::VendorUser::id`] is always the platform id here.

pub mod client;
pub mod wire;

pub use client::{ConsistencyRetry, SaltoKsClient, SaltoKsConfig, SaltoKsConfigError, SaltoKsSite};

pub use crate::clock::{system_clock, Clock};
