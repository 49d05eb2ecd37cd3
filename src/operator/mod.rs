//! The reconcilers and everything they need that is not the engine or a vendor client: reading
//! objects and credentials, mapping bindings onto the engine, status, events, leases, metrics.

pub mod binding;
pub mod clients;
mod cluster;
mod cluster_binding;
mod cluster_connection;
mod cluster_site_mapping;
pub mod connection;
pub mod context;
pub mod controller;
pub mod credentials;
pub mod deadline;
pub mod desired;
pub mod door_cache;
mod fan_out;
pub mod finalizer;
pub mod leader;
pub mod objects;
pub mod orgs;
pub mod reconcile;
pub mod runner;
pub mod server;
pub mod site_mapping;
pub mod status;
pub mod status_writer;
pub mod telemetry;
mod watches;
pub mod webhook_keys;
