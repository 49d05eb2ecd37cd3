//! The host-independent reconcile pipelines, one per kind (`binding`, `connection`,
//! `site_mapping`), in the stages of the stackable operators: dereference the references,
//! validate, build the clients and the OfficeRnD picture, apply (engine and sync), report. Each
//! takes a [`Host`] (where clients and the OfficeRnD picture come from) and returns one
//! [`Reconciled`]: the status to keep, the Events, the metrics and when to come back. The cluster
//! controller (`controller.rs` and its `cluster_*` files) and the folder runner (`runner.rs`,
//! `flexgate run --manifests`) are thin hosts over it, so every rule (suspension, the status
//! shape, `lastSyncTime`, whole-second timestamps) is decided here once.
//!
//! The dereference, validate and report stages are pure functions of their inputs and are unit
//! tested beside the code; only build and apply reach a vendor, through the host.

pub mod binding;
pub mod connection;
pub mod errors;
pub mod site_mapping;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::vendor_connection::{VendorConnection, DEFAULT_SYNC_INTERVAL};
use crate::clock::Clock;
use crate::engine::Index;
use crate::officernd::OfficeRndClient;

use super::clients::DoorClient;
use super::connection::MemberCount;
use super::door_cache::DirectoryCache;
use super::objects::Objects;
use super::status::Outcome;
use super::telemetry::Metrics;
pub use errors::{BuildError, Stop};

/// The kind names, as metrics and logs label them.
pub const BINDING_KIND: &str = "AccessGroupBinding";
/// See [`BINDING_KIND`].
pub const CONNECTION_KIND: &str = "VendorConnection";
/// See [`BINDING_KIND`].
pub const SITE_MAPPING_KIND: &str = "SiteMapping";

/// Event reasons flexgate emits besides the condition reasons (a Warning Event carries the Ready
/// reason of the status it accompanies).
pub mod reasons {
    /// A binding sync changed people at the vendor.
    pub const SYNCED: &str = "Synced";
    /// A deleted binding's access was revoked.
    pub const REVOKED: &str = "Revoked";
    /// A deleted binding's access was left in place.
    pub const ORPHANED: &str = "Orphaned";
    /// A deleted binding could not revoke within the deletion timeout.
    pub const DELETION_TIMED_OUT: &str = "DeletionTimedOut";
    /// An approved SiteMapping was saved (frozen from then on).
    pub const MAPPING_SAVED: &str = "MappingSaved";
    /// The one-time provisioning of an empty essensys site ran.
    pub const SITE_PROVISIONED: &str = "SiteProvisioned";
    /// The first sync of a SiteMapping started.
    pub const SYNC_STARTED: &str = "SyncStarted";
    /// A SiteMapping sync wrote something, failed somewhere, or was the first.
    pub const SYNC_COMPLETED: &str = "SyncCompleted";
}

/// Event actions (what flexgate was doing when it emitted the Event).
pub mod actions {
    /// Syncing a binding or a SiteMapping.
    pub const SYNC: &str = "Sync";
    /// Checking a connection.
    pub const CHECK: &str = "Check";
    /// Cleaning up a deleted binding.
    pub const DELETE: &str = "Delete";
}

/// The OfficeRnD picture a binding is evaluated against: the indexed organization and how many
/// members it holds (for the empty-snapshot guard).
#[derive(Clone)]
pub struct Picture {
    /// The indexed snapshot.
    pub index: Arc<Index>,
    /// Members in the snapshot.
    pub members: usize,
}

/// Where a pipeline gets what lives outside the objects: vendor clients, the OfficeRnD picture,
/// the clock. The cluster controller shares these across reconciles (one picture per
/// organization, one client per vendor account); the folder runner reads each organization once
/// per pass.
pub trait Host: Sync {
    /// The clock clients and simulators use (status times come from the pipeline's `at`).
    fn clock(&self) -> &Clock;

    /// The door client of the VendorConnection `namespace/name` and its directory cache.
    fn door(
        &self,
        objects: &Objects,
        namespace: &str,
        name: &str,
    ) -> Result<(Arc<DoorClient>, Arc<DirectoryCache>), BuildError>;

    /// The picture of the OfficeRnD organization of the connection `namespace/name`.
    fn picture(
        &self,
        objects: &Objects,
        namespace: &str,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Picture, BuildError>> + Send;

    /// The OfficeRnD client to read `namespace/name` with, when the host shares one (one token
    /// and one rate limit per organization); `None` builds a fresh one.
    fn officernd(&self, objects: &Objects, namespace: &str, name: &str) -> Option<OfficeRndClient>;

    /// How a check of `connection` learns the member count of its organization.
    fn member_count(&self, connection: &VendorConnection) -> MemberCount;

    /// Up to when the picture of the OfficeRnD connection `connection` holds bookings, when the
    /// host holds one (`None`: not read yet, or no binding reads bookings).
    fn booking_horizon(&self, connection: &VendorConnection) -> Option<DateTime<Utc>> {
        let _ = connection;
        None
    }
}

/// An Event to emit, decided by a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Warning instead of Normal.
    pub warning: bool,
    /// The Event reason.
    pub reason: String,
    /// The Event action.
    pub action: &'static str,
    /// The note, within the API's 1 kB limit.
    pub note: String,
}

impl Notice {
    /// A Normal Event.
    pub fn normal(reason: &str, action: &'static str, note: &str) -> Self {
        Self {
            warning: false,
            reason: reason.to_owned(),
            action,
            note: event_note(note),
        }
    }

    /// A Warning Event saying why `outcome` is not ready.
    pub fn warning(outcome: &Outcome, action: &'static str) -> Self {
        Self {
            warning: true,
            reason: outcome.reason.as_str().to_owned(),
            action,
            note: event_note(&outcome.message),
        }
    }
}

/// A metric a pipeline records.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// A finished reconcile of `kind` with this Ready reason (or `Deleted`).
    Reconciled(&'static str, String),
    /// An error of `kind` in this category.
    Error(&'static str, &'static str),
    /// A vendor call: vendor, verb, status.
    VendorCall(String, &'static str, String),
    /// People granted and revoked at a vendor.
    AccessChanged(String, u32, u32),
    /// A scheduled change (a booking window, a membership end) reached the doors this many
    /// seconds after it was due (the host uses its own measure when a webhook triggered it).
    ScheduledChangeLate(f64),
}

/// Records `metrics` in `registry`; `triggered`, when a webhook asked for this reconcile, is how
/// long ago (it replaces the scheduled lateness in the change-latency histogram).
pub fn record(registry: &Metrics, metrics: &[Metric], triggered: Option<Duration>) {
    let mut changed = false;
    for metric in metrics {
        match metric {
            Metric::Reconciled(kind, reason) => registry.reconciled(kind, reason),
            Metric::Error(kind, category) => registry.error(kind, category),
            Metric::VendorCall(vendor, verb, status) => registry.vendor_call(vendor, verb, status),
            Metric::AccessChanged(vendor, granted, revoked) => {
                changed |= granted + revoked > 0;
                registry.access_changed(vendor, *granted, *revoked);
            }
            Metric::ScheduledChangeLate(late) => {
                if triggered.is_none() {
                    registry.change_latency(*late);
                }
            }
        }
    }
    if let (true, Some(since)) = (changed, triggered) {
        registry.change_latency(since.as_secs_f64());
    }
}

/// When to reconcile again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requeue {
    /// Work remains that is retried with backoff.
    pub retry: bool,
    /// Otherwise the resync interval (the connection's `syncInterval`).
    pub resync: Duration,
    /// The next instant access changes by time alone (sooner than the resync when due first).
    pub next_change_at: Option<DateTime<Utc>>,
}

impl Requeue {
    /// The delay from `now`: `backoff` after a failure, else `resync` (the host may jitter it),
    /// either cut short just after the next change. Measured from when the reconcile returns,
    /// so the sync's own duration never delays a change.
    pub fn delay(
        &self,
        backoff: impl FnOnce() -> Duration,
        resync: impl FnOnce(Duration) -> Duration,
        now: DateTime<Utc>,
    ) -> Duration {
        let delay = if self.retry {
            backoff()
        } else {
            resync(self.resync)
        };
        until_next_change(delay, self.next_change_at, now)
    }
}

/// `delay`, or less when access changes by time alone sooner (then just after that instant, so
/// the change lands well within a second).
pub fn until_next_change(
    delay: Duration,
    next_change_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Duration {
    let Some(next) = next_change_at else {
        return delay;
    };
    let until = (next - at).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(50);
    delay.min(until)
}

/// Everything one reconcile decided: what the host writes, emits, records and schedules.
#[derive(Debug, Clone)]
pub struct Reconciled<S> {
    /// The object's whole new status.
    pub status: S,
    /// Ready / Reconciling / Stalled, for logs and exit codes.
    pub outcome: Outcome,
    /// Events to emit in any case.
    pub events: Vec<Notice>,
    /// Events to emit only when the host wrote the status (so a failure that stays the same is
    /// told once, not on every retry).
    pub on_change: Vec<Notice>,
    /// Metrics to record.
    pub metrics: Vec<Metric>,
    /// When to come back.
    pub requeue: Requeue,
}

/// A connection's `syncInterval` (the default when it is missing).
pub fn sync_interval(connection: Option<&VendorConnection>) -> Duration {
    connection.map_or(DEFAULT_SYNC_INTERVAL, |c| c.spec.sync_interval())
}

/// `at` without its sub-second part: the API server stores whole seconds, so a status written
/// and read back compares equal. Every pipeline starts from such an instant.
pub fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// `at` as a status timestamp, in whole seconds (see [`whole_seconds`]).
pub fn stamp(at: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(at.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// A status timestamp as an instant.
pub fn instant(time: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.0.as_millisecond()).unwrap_or_default()
}

/// An Event note within the API's 1 kB limit.
pub fn event_note(message: &str) -> String {
    let mut note = message.to_owned();
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    note
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_reconcile_comes_at_the_next_change_when_it_is_sooner_than_the_resync() {
        let now = fixtures::at("2026-03-02T10:00:00Z");
        let requeue = Requeue {
            retry: false,
            resync: Duration::from_secs(300),
            next_change_at: Some(fixtures::at("2026-03-02T10:01:00Z")),
        };
        let delay = requeue.delay(|| Duration::from_secs(5), |d| d, now);
        assert_eq!(delay, Duration::from_millis(60_050));
        let later = Requeue {
            next_change_at: Some(fixtures::at("2026-03-02T11:00:00Z")),
            ..requeue
        };
        assert_eq!(
            later.delay(|| Duration::ZERO, |d| d, now),
            Duration::from_secs(300)
        );
        let failing = Requeue {
            retry: true,
            ..later
        };
        assert_eq!(
            failing.delay(|| Duration::from_secs(5), |d| d, now),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn status_times_are_whole_seconds() {
        let at = fixtures::at("2026-03-02T10:00:00.789Z");
        assert_eq!(whole_seconds(at), fixtures::at("2026-03-02T10:00:00Z"));
        assert_eq!(instant(&stamp(at)), fixtures::at("2026-03-02T10:00:00Z"));
    }

    #[test]
    fn an_event_note_fits_the_api_limit_without_splitting_a_character() {
        let long = "é".repeat(700);
        let note = event_note(&long);
        assert!(note.len() <= 1000);
        assert!(note.chars().all(|c| c == 'é'));
    }
}
