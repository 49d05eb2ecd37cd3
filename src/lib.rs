//! flexgate: door access and Wi-Fi provisioning for flexible workspaces, following OfficeRnD.
//!
//! See ARCHITECTURE.md for the map of modules.

pub mod api;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod http;
pub mod identity;
pub mod manifests;
pub mod matching;
pub mod officernd;
pub mod operator;
pub mod sandbox;
pub mod sitesync;
pub mod sync;
pub mod vendors;
