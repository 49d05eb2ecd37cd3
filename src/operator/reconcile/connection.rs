//! The VendorConnection pipeline: dereference (suspension), check the credentials at the vendor
//! and what the account holds (`operator::connection::check`, through the host's member count),
//! report (status, a Warning when it changed for the worse, metrics, requeue).

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::conditions::Reason;
use crate::api::vendor_connection::{AccountSummary, VendorConnection, VendorConnectionStatus};
use crate::api::RECONCILE_REQUESTED_AT;

use super::super::connection::{self as check, ConnectionResult};
use super::super::objects::Objects;
use super::super::status::Outcome;
use super::super::telemetry;
use super::{
    actions, stamp, sync_interval, Host, Metric, Notice, Reconciled, Requeue, Stop, CONNECTION_KIND,
};

/// Dereference: a suspended connection makes no call.
pub fn dereference(connection: &VendorConnection) -> Result<(), Stop> {
    if connection.spec.suspend {
        Err(Stop::Suspended)
    } else {
        Ok(())
    }
}

/// The status a check leads to: the account summary kept when the check could not read one,
/// the booking horizon of the host's picture (the last known one while the host holds none),
/// `lastSyncTime` moved only when a successful check changed something, times in whole seconds.
pub fn status(
    connection: &VendorConnection,
    outcome: &Outcome,
    account: Option<AccountSummary>,
    booking_horizon: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> VendorConnectionStatus {
    let previous = connection.status.clone().unwrap_or_default();
    let generation = connection.metadata.generation;
    let mut next = VendorConnectionStatus {
        observed_generation: generation,
        conditions: check::status_conditions(
            connection,
            outcome,
            generation,
            stamp(at),
            &previous.conditions,
        ),
        last_sync_time: previous.last_sync_time.clone(),
        last_handled_reconcile_at: connection
            .annotations()
            .get(RECONCILE_REQUESTED_AT)
            .cloned(),
        account: account.or_else(|| previous.account.clone()),
        counts: previous.counts.clone(),
        problems: previous.problems.clone(),
        problems_omitted: previous.problems_omitted,
        booking_horizon: booking_horizon
            .map(stamp)
            .or_else(|| previous.booking_horizon.clone()),
    };
    if outcome.ready && (next != previous || previous.last_sync_time.is_none()) {
        next.last_sync_time = Some(stamp(at));
    }
    next
}

/// Report: status, Events, metrics and requeue of a check that found `result`.
pub fn report(
    connection: &VendorConnection,
    result: ConnectionResult,
    checked: bool,
    booking_horizon: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Reconciled<VendorConnectionStatus> {
    let outcome = result.outcome;
    let status = status(connection, &outcome, result.account, booking_horizon, at);
    let mut metrics = Vec::new();
    if checked {
        let call = if outcome.ready {
            "ok"
        } else {
            outcome.reason.as_str()
        };
        metrics.push(Metric::VendorCall(
            connection.spec.vendor.as_str().to_owned(),
            "check",
            call.to_owned(),
        ));
    }
    metrics.push(Metric::Reconciled(
        CONNECTION_KIND,
        outcome.reason.as_str().to_owned(),
    ));
    if !outcome.ready {
        metrics.push(Metric::Error(
            CONNECTION_KIND,
            telemetry::category(outcome.reason),
        ));
    }
    let on_change = if !outcome.ready && outcome.reason != Reason::Suspended {
        vec![Notice::warning(&outcome, actions::CHECK)]
    } else {
        Vec::new()
    };
    Reconciled {
        status,
        requeue: Requeue {
            retry: outcome.retrying,
            resync: sync_interval(Some(connection)),
            next_change_at: None,
        },
        outcome,
        events: Vec::new(),
        on_change,
        metrics,
    }
}

/// The whole pipeline for one connection at `at`. `objects` holds its Secret and the bindings
/// and SiteMappings of its namespace (the OfficeRnD scopes asked for follow what reads through
/// it).
pub async fn reconcile<H: Host>(
    host: &H,
    objects: &Objects,
    connection: &VendorConnection,
    at: DateTime<Utc>,
) -> Reconciled<VendorConnectionStatus> {
    match dereference(connection) {
        Err(stop) => report(
            connection,
            ConnectionResult {
                outcome: stop.outcome(),
                account: None,
            },
            false,
            None,
            at,
        ),
        Ok(()) => {
            let result = Box::pin(check::check(
                connection,
                objects,
                host.clock(),
                host.member_count(connection),
            ))
            .await;
            report(
                connection,
                result,
                true,
                host.booking_horizon(connection),
                at,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::{find, READY, RECONCILING};
    use crate::operator::reconcile::fixtures::{at, connection};

    fn accepted() -> ConnectionResult {
        ConnectionResult {
            outcome: Outcome::ready(Reason::Synced, "credentials accepted: 4 groups, 12 users"),
            account: Some(AccountSummary {
                groups: Some(4),
                sites: None,
                people: Some(12),
            }),
        }
    }

    #[test]
    fn a_first_successful_check_stamps_the_sync_time_and_echoes_the_request() {
        let mut kisi = connection("kisi", "Kisi", "s");
        kisi.annotations_mut()
            .insert(RECONCILE_REQUESTED_AT.into(), "2026-11-23T08:00:01Z".into());
        let reconciled = report(
            &kisi,
            accepted(),
            true,
            None,
            at("2026-11-23T09:00:00.700Z"),
        );
        let status = &reconciled.status;
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(status.account, accepted().account);
        assert_eq!(
            status.last_sync_time,
            Some(stamp(at("2026-11-23T09:00:00Z"))),
            "whole seconds, as the API server stores them"
        );
        assert_eq!(
            status.last_handled_reconcile_at.as_deref(),
            Some("2026-11-23T08:00:01Z")
        );
        let ready = find(&status.conditions, READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Synced")
        );
        assert!(reconciled.metrics.contains(&Metric::VendorCall(
            "Kisi".into(),
            "check",
            "ok".into()
        )));
    }

    #[test]
    fn an_unchanged_check_keeps_the_sync_time_and_a_failed_one_keeps_the_account() {
        let mut kisi = connection("kisi", "Kisi", "s");
        let first = report(&kisi, accepted(), true, None, at("2026-11-23T09:00:00Z")).status;
        kisi.status = Some(first.clone());
        let again = report(&kisi, accepted(), true, None, at("2026-11-23T09:15:00Z"));
        assert_eq!(again.status, first, "an idle check changes nothing");

        let refused = ConnectionResult {
            outcome: Outcome::not_ready(Reason::CredentialsInvalid, "the API key was refused"),
            account: None,
        };
        let failed = report(&kisi, refused, true, None, at("2026-11-23T09:30:00Z"));
        assert_eq!(
            failed.status.account,
            accepted().account,
            "the last known account stays"
        );
        assert_eq!(failed.status.last_sync_time, first.last_sync_time);
        let ready = find(&failed.status.conditions, READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "CredentialsInvalid")
        );
        assert_eq!(
            ready.last_transition_time,
            stamp(at("2026-11-23T09:30:00Z"))
        );
        assert_eq!(
            failed.on_change.len(),
            1,
            "a Warning when the status changes"
        );
    }

    #[test]
    fn a_suspended_connection_makes_no_call_and_is_not_a_problem() {
        let mut kisi = connection("kisi", "Kisi", "s");
        kisi.spec.suspend = true;
        let stop = dereference(&kisi).expect_err("suspended");
        let reconciled = report(
            &kisi,
            ConnectionResult {
                outcome: stop.outcome(),
                account: None,
            },
            false,
            None,
            at("2026-11-23T09:00:00Z"),
        );
        let ready = find(&reconciled.status.conditions, READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Suspended")
        );
        let reconciling = find(&reconciled.status.conditions, RECONCILING).expect("Reconciling");
        assert_eq!(reconciling.status, "False");
        assert!(reconciled.on_change.is_empty());
        assert!(!reconciled
            .metrics
            .iter()
            .any(|m| matches!(m, Metric::VendorCall(..))));
        assert!(!reconciled.requeue.retry);
    }

    #[test]
    fn the_booking_horizon_follows_the_picture_and_outlives_a_restart() {
        let mut officernd = connection("officernd", "OfficeRnD", "s");
        let horizon = at("2026-12-01T08:00:00.250Z");
        let first = report(
            &officernd,
            accepted(),
            true,
            Some(horizon),
            at("2026-11-23T09:00:00Z"),
        )
        .status;
        assert_eq!(
            first.booking_horizon,
            Some(stamp(horizon)),
            "shown in whole seconds"
        );
        officernd.status = Some(first.clone());
        let moved = at("2026-12-02T08:00:00Z");
        let later = report(
            &officernd,
            accepted(),
            true,
            Some(moved),
            at("2026-11-24T09:00:00Z"),
        );
        assert_eq!(later.status.booking_horizon, Some(stamp(moved)));
        officernd.status = Some(later.status.clone());
        let restarted = report(
            &officernd,
            accepted(),
            true,
            None,
            at("2026-11-24T09:15:00Z"),
        );
        assert_eq!(
            restarted.status.booking_horizon,
            Some(stamp(moved)),
            "a host that has not read the organization yet keeps the last known horizon"
        );
    }
}
