//! The SiteMapping pipeline: dereference (the mapping or either connection suspended, the
//! connections present and of the right vendors), build and apply (the clients, the OfficeRnD
//! read, the lifecycle and the site sync: `operator::site_mapping`), report (status with the
//! reconcile request echoed and whole-second times, the lifecycle's Events, a Warning when the
//! status changed for the worse, metrics, requeue at the essensys connection's `syncInterval`).

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::conditions::Reason;
use crate::api::{SiteMapping, SiteMappingStatus, RECONCILE_REQUESTED_AT};

use super::super::objects::Objects;
use super::super::site_mapping::{self as core, SiteMappingResult};
use super::super::telemetry;
use super::{
    actions, sync_interval, whole_seconds, Host, Metric, Notice, Reconciled, Requeue, Stop,
    SITE_MAPPING_KIND,
};

/// Dereference and validate: nothing is read while the mapping or either of its connections is
/// suspended, or while a connection is missing or of the wrong vendor.
pub fn dereference(mapping: &SiteMapping, objects: &Objects) -> Result<(), Stop> {
    let namespace = mapping.namespace().unwrap_or_default();
    if mapping.spec.suspend {
        return Err(Stop::Suspended);
    }
    if let Some(name) = [
        &mapping.spec.officernd_ref.name,
        &mapping.spec.essensys_ref.name,
    ]
    .into_iter()
    .find(|name| {
        objects
            .connection(&namespace, name)
            .is_some_and(|c| c.spec.suspend)
    }) {
        return Err(Stop::ConnectionSuspended {
            namespace,
            name: name.clone(),
        });
    }
    core::check_connections(mapping, objects)
}

/// Report: the status, Events, metrics and requeue of `result`, reached at `at` (whole seconds)
/// for `mapping` (whose status is the one it replaces).
pub fn report(
    mapping: &SiteMapping,
    objects: &Objects,
    result: &SiteMappingResult,
    at: DateTime<Utc>,
) -> Reconciled<SiteMappingStatus> {
    let previous = mapping.status.as_ref();
    let mut status = result.status(mapping.metadata.generation, at, previous);
    status.last_handled_reconcile_at = mapping.annotations().get(RECONCILE_REQUESTED_AT).cloned();
    let outcome = &result.outcome;
    let events = result
        .events
        .iter()
        .map(|event| Notice {
            warning: event.warning,
            ..Notice::normal(event.reason, actions::SYNC, &event.message)
        })
        .collect();
    // Waiting for a person, or failures the problems and the SyncCompleted Event already tell.
    let quiet = matches!(
        outcome.reason,
        Reason::Suspended | Reason::AwaitingApproval | Reason::PartialFailure
    );
    let on_change = if !outcome.ready && !quiet {
        vec![Notice::warning(outcome, actions::SYNC)]
    } else {
        Vec::new()
    };
    let mut metrics = Vec::new();
    if result.summary.is_some() {
        metrics.push(Metric::VendorCall("essensys".into(), "sync", "ok".into()));
    } else if matches!(
        outcome.reason,
        Reason::CredentialsInvalid | Reason::VendorUnreachable
    ) {
        metrics.push(Metric::VendorCall(
            "essensys".into(),
            "sync",
            outcome.reason.as_str().to_owned(),
        ));
    }
    metrics.push(Metric::Reconciled(
        SITE_MAPPING_KIND,
        outcome.reason.as_str().to_owned(),
    ));
    if !outcome.ready && !matches!(outcome.reason, Reason::Suspended | Reason::AwaitingApproval) {
        metrics.push(Metric::Error(
            SITE_MAPPING_KIND,
            telemetry::category(outcome.reason),
        ));
    }
    let namespace = mapping.namespace().unwrap_or_default();
    Reconciled {
        status,
        outcome: outcome.clone(),
        events,
        on_change,
        metrics,
        // The essensys connection's syncInterval: the side written to, as a binding follows its
        // vendor connection.
        requeue: Requeue {
            retry: outcome.retrying,
            resync: sync_interval(objects.connection(&namespace, &mapping.spec.essensys_ref.name)),
            next_change_at: None,
        },
    }
}

/// The whole pipeline for one SiteMapping at `now` (cut to whole seconds: the saved mapping's
/// time and the provisioning time are written into status).
pub async fn reconcile<H: Host>(
    host: &H,
    objects: &Objects,
    mapping: &SiteMapping,
    now: DateTime<Utc>,
) -> Reconciled<SiteMappingStatus> {
    let at = whole_seconds(now);
    let previous = mapping.status.as_ref();
    let result = match dereference(mapping, objects) {
        Err(stop) => SiteMappingResult::carry(previous, stop.outcome()),
        Ok(()) => {
            let namespace = mapping.namespace().unwrap_or_default();
            let shared = host.officernd(objects, &namespace, &mapping.spec.officernd_ref.name);
            // Boxed: the site sync is a large future.
            Box::pin(core::run(
                mapping,
                objects,
                at,
                previous,
                host.clock(),
                shared,
            ))
            .await
        }
    };
    report(mapping, objects, &result, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::{find, READY};
    use crate::operator::reconcile::fixtures::{at, mapping, objects};
    use crate::operator::reconcile::stamp;
    use crate::operator::site_mapping::SiteMappingEvent;
    use crate::operator::status::Outcome;
    use crate::sitesync::SyncSummary;

    #[test]
    fn nothing_is_read_while_the_mapping_or_a_connection_is_suspended() {
        let london = mapping("london", "officernd", "essensys");
        assert_eq!(dereference(&london, &objects(None)), Ok(()));
        let mut suspended = london.clone();
        suspended.spec.suspend = true;
        assert_eq!(
            dereference(&suspended, &objects(None)),
            Err(Stop::Suspended)
        );
        for name in ["officernd", "essensys"] {
            assert_eq!(
                dereference(&london, &objects(Some(name))),
                Err(Stop::ConnectionSuspended {
                    namespace: "doors".into(),
                    name: name.into()
                })
            );
        }
        let wrong = mapping("london", "officernd", "kisi");
        assert_eq!(
            dereference(&wrong, &objects(None)).map_err(|s| s.reason()),
            Err(Reason::InvalidSpec)
        );
    }

    #[test]
    fn an_idle_sync_keeps_the_status_and_a_sync_that_wrote_tells_it() {
        let mut london = mapping("london", "officernd", "essensys");
        london
            .annotations_mut()
            .insert(RECONCILE_REQUESTED_AT.into(), "2026-03-02T09:00:00Z".into());
        let first_at = at("2026-03-02T10:00:00Z");
        let mut synced = SiteMappingResult::carry(None, Outcome::ready(Reason::Synced, "synced"));
        synced.last_sync_time = Some(first_at);
        synced.summary = Some(SyncSummary::default());
        synced.events.push(SiteMappingEvent {
            reason: crate::operator::reconcile::reasons::SYNC_COMPLETED,
            warning: false,
            message: "sync completed".into(),
        });
        let first = report(&london, &objects(None), &synced, first_at);
        assert_eq!(first.status.last_sync_time, Some(stamp(first_at)));
        assert_eq!(
            first.status.last_handled_reconcile_at.as_deref(),
            Some("2026-03-02T09:00:00Z")
        );
        assert_eq!(first.events.len(), 1);
        assert_eq!(first.events[0].action, actions::SYNC);
        assert!(first.metrics.contains(&Metric::VendorCall(
            "essensys".into(),
            "sync",
            "ok".into()
        )));

        london.status = Some(first.status.clone());
        let idle = SiteMappingResult {
            events: Vec::new(),
            ..synced
        };
        let again = report(&london, &objects(None), &idle, at("2026-03-02T10:15:00Z"));
        assert_eq!(again.status, first.status, "an idle resync writes nothing");
        assert!(again.events.is_empty());
    }

    #[test]
    fn waiting_for_approval_or_a_suspension_is_not_a_warning() {
        let london = mapping("london", "officernd", "essensys");
        for outcome in [
            Stop::Suspended.outcome(),
            Outcome {
                ready: false,
                reason: Reason::AwaitingApproval,
                message: "review status.proposal".into(),
                retrying: false,
            },
        ] {
            let result = SiteMappingResult::carry(None, outcome);
            let reconciled = report(&london, &objects(None), &result, at("2026-03-02T10:00:00Z"));
            assert!(reconciled.on_change.is_empty());
            assert!(!reconciled.requeue.retry);
            assert!(!reconciled
                .metrics
                .iter()
                .any(|m| matches!(m, Metric::Error(..))));
        }
        let refused = SiteMappingResult::carry(
            None,
            Outcome::not_ready(Reason::CredentialsInvalid, "essensys refused the sign-in"),
        );
        let reconciled = report(
            &london,
            &objects(None),
            &refused,
            at("2026-03-02T10:00:00Z"),
        );
        assert_eq!(reconciled.on_change.len(), 1);
        let ready = find(&reconciled.status.conditions, READY).expect("Ready");
        assert_eq!(ready.reason, "CredentialsInvalid");
    }
}
