//! The AccessGroupBinding pipeline: dereference (suspension, the vendor connection), build (the
//! door client and the OfficeRnD picture, through the host), apply (the engine for the bindings
//! sharing one of its groups, then the door sync; `operator::binding`), report (status, Events,
//! metrics, requeue). Both hosts run exactly this.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::conditions::Reason;
use crate::api::RECONCILE_REQUESTED_AT;
use crate::api::{AccessGroupBinding, AccessGroupBindingStatus, VendorConnection};
use crate::vendors::DoorVendor;

use super::super::binding::{self as core, BindingResult};
use super::super::clients::DoorClient;
use super::super::context::Context;
use super::super::desired::binding_key;
use super::super::door_cache::{CachedDoor, DirectoryCache};
use super::super::objects::Objects;
use super::super::telemetry;
use super::{
    actions, reasons, stamp, sync_interval, BuildError, Host, Metric, Notice, Picture, Reconciled,
    Requeue, Stop, BINDING_KIND,
};

/// Dereference and validate: the binding's vendor connection, or why nothing may be read (the
/// binding or either connection suspended, the vendor connection missing).
pub fn dereference<'a>(
    binding: &AccessGroupBinding,
    objects: &'a Objects,
) -> Result<&'a VendorConnection, Stop> {
    let namespace = binding.namespace().unwrap_or_default();
    if binding.spec.suspend {
        return Err(Stop::Suspended);
    }
    for name in [
        &binding.spec.officernd_ref.name,
        &binding.spec.vendor_ref.name,
    ] {
        if objects
            .connection(&namespace, name)
            .is_some_and(|c| c.spec.suspend)
        {
            return Err(Stop::ConnectionSuspended {
                namespace,
                name: name.clone(),
            });
        }
    }
    objects
        .connection(&namespace, &binding.spec.vendor_ref.name)
        .ok_or_else(|| Stop::ConnectionNotFound {
            namespace,
            name: binding.spec.vendor_ref.name.clone(),
            field: "vendorRef",
        })
}

/// What the build stage hands to apply.
pub struct Built {
    /// The door client of the vendor connection.
    pub door: Arc<DoorClient>,
    /// Its directory cache.
    pub directory: Arc<DirectoryCache>,
    /// The picture of the binding's OfficeRnD organization.
    pub picture: Picture,
}

/// Build: the door client, then the OfficeRnD picture (a refused vendor account reads nothing).
pub async fn build<H: Host>(
    host: &H,
    objects: &Objects,
    binding: &AccessGroupBinding,
) -> Result<Built, BuildError> {
    let namespace = binding.namespace().unwrap_or_default();
    let (door, directory) = host.door(objects, &namespace, &binding.spec.vendor_ref.name)?;
    let picture = host
        .picture(objects, &namespace, &binding.spec.officernd_ref.name)
        .await?;
    Ok(Built {
        door,
        directory,
        picture,
    })
}

/// Apply: reconciles `binding` against `picture`. The bindings that share its OfficeRnD and
/// vendor connections are mapped onto the engine, those naming one of its groups are evaluated
/// (so a group named by several bindings gets their union), and the binding syncs through
/// `vendor`. With `deleting`, the binding is left out of the evaluation and the sync removes
/// exactly the access it alone granted. Bindings on the same vendor connection that read another
/// OfficeRnD connection are not part of the union (an unusual set-up).
pub async fn apply<V: DoorVendor>(
    objects: &Objects,
    binding: &AccessGroupBinding,
    picture: &Picture,
    at: DateTime<Utc>,
    vendor: &V,
    deleting: bool,
) -> BindingResult {
    let namespace = binding.namespace().unwrap_or_default();
    let key = binding_key(binding);
    let related = |other: &AccessGroupBinding| {
        other.namespace().as_deref() == Some(namespace.as_str())
            && other.spec.officernd_ref == binding.spec.officernd_ref
            && other.spec.vendor_ref == binding.spec.vendor_ref
            && binding_key(other) != key
    };
    let mut scoped = Objects {
        connections: objects.connections.clone(),
        bindings: objects
            .bindings
            .iter()
            .filter(|b| related(b))
            .cloned()
            .collect(),
        site_mappings: Vec::new(),
        secrets: objects.secrets.clone(),
    };
    // The binding itself is always part of the set; when deleting, it is left out of the
    // evaluation only.
    scoped.bindings.push(binding.clone());
    let mapped: Vec<&AccessGroupBinding> = scoped.bindings.iter().collect();
    let context = Context::new(
        format!("{namespace}/{}", binding.spec.officernd_ref.name),
        picture.index.clone(),
        picture.members,
        &scoped,
        &mapped,
    );
    if !deleting {
        if let Some((_, error)) = context.binding_errors.iter().find(|(k, _)| *k == key) {
            return BindingResult::not_ready(error.reason, error.message.clone());
        }
    }
    let entitlements = context.entitlements(at);
    drop(context);
    core::reconcile(binding, &scoped, entitlements, vendor, deleting).await
}

/// Report: the status, Events, metrics and requeue of `result`, reached at `at` for `binding`
/// (whose status is the one it replaces). `lastSyncTime` moves only when a sync that reached the
/// vendor changed people or the status; `nextChangeTime` is this binding's own next change.
pub fn report(
    binding: &AccessGroupBinding,
    vendor_connection: Option<&VendorConnection>,
    result: &BindingResult,
    at: DateTime<Utc>,
) -> Reconciled<AccessGroupBindingStatus> {
    let outcome = &result.outcome;
    let previous = binding.status.clone().unwrap_or_default();
    let status = result.to_status(
        &previous,
        binding.metadata.generation,
        binding.annotations().get(RECONCILE_REQUESTED_AT).cloned(),
        result.next_change_at.map(stamp),
        stamp(at),
    );
    let vendor = vendor_connection
        .map(|c| c.spec.vendor.as_str())
        .unwrap_or("unknown")
        .to_owned();
    let (granted, revoked) = result.applied;
    let mut metrics = Vec::new();
    let reached_vendor = matches!(
        outcome.reason,
        Reason::Synced | Reason::Planned | Reason::PartialFailure | Reason::MassRevocationBlocked
    );
    if reached_vendor
        || matches!(
            outcome.reason,
            Reason::CredentialsInvalid | Reason::VendorUnreachable
        )
    {
        let status = if reached_vendor {
            "ok"
        } else {
            outcome.reason.as_str()
        };
        metrics.push(Metric::VendorCall(
            vendor.clone(),
            "sync",
            status.to_owned(),
        ));
    }
    metrics.push(Metric::AccessChanged(vendor, granted, revoked));
    let mut events = Vec::new();
    if granted + revoked > 0 {
        if let Some(due) = previous.next_change_time.as_ref() {
            // A scheduled change (a booking window, a membership end): late by this much.
            let late = at.timestamp() - due.0.as_second();
            if (0..3600).contains(&late) {
                metrics.push(Metric::ScheduledChangeLate(late as f64));
            }
        }
        let groups = result
            .resolved_groups
            .iter()
            .map(|g| g.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        events.push(Notice::normal(
            reasons::SYNCED,
            actions::SYNC,
            &format!("granted {granted}, revoked {revoked} in {groups}"),
        ));
    }
    metrics.push(Metric::Reconciled(
        BINDING_KIND,
        outcome.reason.as_str().to_owned(),
    ));
    if !outcome.ready {
        metrics.push(Metric::Error(
            BINDING_KIND,
            telemetry::category(outcome.reason),
        ));
    }
    // A suspension is a person's decision, not a problem: no Warning.
    let on_change = if !outcome.ready && outcome.reason != Reason::Suspended {
        vec![Notice::warning(outcome, actions::SYNC)]
    } else {
        Vec::new()
    };
    Reconciled {
        status,
        outcome: outcome.clone(),
        events,
        on_change,
        metrics,
        requeue: Requeue {
            retry: outcome.retrying,
            resync: sync_interval(vendor_connection),
            next_change_at: result.next_change_at,
        },
    }
}

/// The whole pipeline for one binding at `at` (the engine's instant; status times are its whole
/// seconds). `objects` holds the binding's connections and Secrets and every binding of its
/// namespace (the union of a shared group and the revocation guard need them).
pub async fn reconcile<H: Host>(
    host: &H,
    objects: &Objects,
    binding: &AccessGroupBinding,
    at: DateTime<Utc>,
) -> (BindingResult, Reconciled<AccessGroupBindingStatus>) {
    let namespace = binding.namespace().unwrap_or_default();
    let result = match dereference(binding, objects) {
        Err(stop) => BindingResult::stopped(stop.outcome()),
        // Boxed: the engine and the sync make a large future, which would otherwise sit on the
        // stack of whoever awaits the pipeline.
        Ok(_) => match Box::pin(build(host, objects, binding)).await {
            Err(error) => BindingResult::stopped(error.outcome()),
            Ok(built) => {
                let door = CachedDoor::new(built.door.as_ref(), built.directory.as_ref());
                Box::pin(apply(objects, binding, &built.picture, at, &door, false)).await
            }
        },
    };
    let vendor_connection = objects.connection(&namespace, &binding.spec.vendor_ref.name);
    let reconciled = report(binding, vendor_connection, &result, at);
    (result, reconciled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::{find, READY, RECONCILING, STALLED};
    use crate::api::status::Counts;
    use crate::operator::reconcile::fixtures::{at, binding, objects};
    use crate::operator::status::Outcome;

    fn synced(granted: u32, revoked: u32) -> BindingResult {
        BindingResult {
            outcome: Outcome::ready(Reason::Synced, "2 people in \"OFFICERND_Lobby\""),
            resolved_groups: vec![crate::api::access_group_binding::ResolvedGroup {
                id: "g1".into(),
                name: "OFFICERND_Lobby".into(),
            }],
            counts: Counts {
                matched: 2,
                granted: 2,
                ..Counts::default()
            },
            planned: None,
            problems: (Vec::new(), 0),
            applied: (granted, revoked),
            next_change_at: None,
        }
    }

    #[test]
    fn suspension_of_the_binding_or_either_connection_stops_before_anything_is_read() {
        let lobby = binding("lobby", "officernd", "kisi");
        assert!(dereference(&lobby, &objects(None)).is_ok());

        let mut suspended = lobby.clone();
        suspended.spec.suspend = true;
        assert_eq!(
            dereference(&suspended, &objects(None)).err(),
            Some(Stop::Suspended)
        );
        for name in ["officernd", "kisi"] {
            let stop = dereference(&lobby, &objects(Some(name))).expect_err("suspended");
            assert_eq!(
                stop.to_string(),
                format!("VendorConnection doors/{name} is suspended: nothing is read or written")
            );
        }
        let elsewhere = binding("lobby", "officernd", "brivo");
        assert_eq!(
            dereference(&elsewhere, &objects(None)).err(),
            Some(Stop::ConnectionNotFound {
                namespace: "doors".into(),
                name: "brivo".into(),
                field: "vendorRef"
            })
        );
    }

    #[test]
    fn a_suspension_is_reported_quietly_and_not_retried() {
        let lobby = binding("lobby", "officernd", "kisi");
        let result = BindingResult::stopped(Stop::Suspended.outcome());
        let reconciled = report(&lobby, None, &result, at("2026-03-02T10:00:00Z"));
        let ready = find(&reconciled.status.conditions, READY).expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Suspended")
        );
        let reconciling = find(&reconciled.status.conditions, RECONCILING).expect("Reconciling");
        assert_eq!(reconciling.status, "False", "nothing to retry");
        let stalled = find(&reconciled.status.conditions, STALLED).expect("Stalled");
        assert_eq!(stalled.status, "False");
        assert!(
            reconciled.on_change.is_empty(),
            "no Warning for a person's decision"
        );
        assert!(!reconciled.requeue.retry);
        assert_eq!(reconciled.status.last_sync_time, None);
    }

    #[test]
    fn a_sync_that_changed_people_says_so_stamps_whole_seconds_and_counts_the_change() {
        let mut lobby = binding("lobby", "officernd", "kisi");
        lobby
            .annotations_mut()
            .insert(RECONCILE_REQUESTED_AT.into(), "2026-03-02T09:59:00Z".into());
        let kisi = fixtures_kisi();
        let reconciled = report(
            &lobby,
            Some(&kisi),
            &synced(2, 1),
            at("2026-03-02T10:00:00.900Z"),
        );
        assert_eq!(
            reconciled.status.last_sync_time,
            Some(stamp(at("2026-03-02T10:00:00Z")))
        );
        assert_eq!(reconciled.status.observed_generation, Some(1));
        assert_eq!(
            reconciled.status.last_handled_reconcile_at.as_deref(),
            Some("2026-03-02T09:59:00Z")
        );
        assert_eq!(
            reconciled.events,
            [Notice::normal(
                reasons::SYNCED,
                actions::SYNC,
                "granted 2, revoked 1 in OFFICERND_Lobby"
            )]
        );
        assert!(reconciled
            .metrics
            .contains(&Metric::AccessChanged("Kisi".into(), 2, 1)));
        assert!(reconciled.metrics.contains(&Metric::VendorCall(
            "Kisi".into(),
            "sync",
            "ok".into()
        )));
        assert_eq!(reconciled.requeue.resync, kisi.spec.sync_interval());
    }

    #[test]
    fn an_idle_resync_keeps_the_last_sync_time_and_emits_nothing() {
        let mut lobby = binding("lobby", "officernd", "kisi");
        let first = report(&lobby, None, &synced(2, 0), at("2026-03-02T10:00:00Z"));
        lobby.status = Some(first.status.clone());
        let again = report(&lobby, None, &synced(0, 0), at("2026-03-02T10:15:00Z"));
        assert_eq!(
            again.status, first.status,
            "nothing changed, nothing to write"
        );
        assert!(again.events.is_empty() && again.on_change.is_empty());
    }

    #[test]
    fn a_failure_keeps_what_the_vendor_last_said_and_warns_once_per_change() {
        let mut lobby = binding("lobby", "officernd", "kisi");
        let first = report(&lobby, None, &synced(2, 0), at("2026-03-02T10:00:00Z"));
        lobby.status = Some(first.status.clone());
        let outage = BindingResult::stopped(Outcome::not_ready(
            Reason::VendorUnreachable,
            "nothing was changed: 503",
        ));
        let failed = report(&lobby, None, &outage, at("2026-03-02T10:15:00Z"));
        assert_eq!(failed.status.counts, first.status.counts);
        assert_eq!(failed.status.resolved_groups, first.status.resolved_groups);
        assert_eq!(failed.status.last_sync_time, first.status.last_sync_time);
        assert_eq!(failed.on_change.len(), 1);
        assert!(failed.on_change[0].warning);
        assert_eq!(failed.on_change[0].reason, "VendorUnreachable");
        assert!(failed.requeue.retry, "retried with backoff");
        assert!(failed
            .metrics
            .contains(&Metric::Error(BINDING_KIND, "vendor")));
    }

    /// A host that counts what it is asked for: the door client from `clients` (built offline),
    /// the picture always failing as `picture` says.
    struct CountingHost {
        clients: std::sync::Mutex<crate::operator::runner::ClientCache>,
        clock: crate::clock::Clock,
        doors: std::sync::atomic::AtomicU32,
        pictures: std::sync::atomic::AtomicU32,
        picture: BuildError,
    }

    impl CountingHost {
        fn new(picture: BuildError) -> Self {
            Self {
                clients: Default::default(),
                clock: crate::clock::system_clock(),
                doors: Default::default(),
                pictures: Default::default(),
                picture,
            }
        }
    }

    impl Host for CountingHost {
        fn clock(&self) -> &crate::clock::Clock {
            &self.clock
        }

        fn door(
            &self,
            objects: &Objects,
            namespace: &str,
            name: &str,
        ) -> Result<(Arc<DoorClient>, Arc<DirectoryCache>), BuildError> {
            self.doors.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.clients.lock().expect("not poisoned").door_shared(
                objects,
                namespace,
                name,
                &self.clock,
            )
        }

        async fn picture(&self, _: &Objects, _: &str, _: &str) -> Result<Picture, BuildError> {
            self.pictures
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(self.picture.clone())
        }

        fn officernd(
            &self,
            _: &Objects,
            _: &str,
            _: &str,
        ) -> Option<crate::officernd::OfficeRndClient> {
            None
        }

        fn member_count(&self, _: &VendorConnection) -> crate::operator::connection::MemberCount {
            crate::operator::connection::MemberCount::Known(None)
        }
    }

    fn outage() -> BuildError {
        BuildError::OfficeRnd {
            connection: "doors/officernd".into(),
            source: crate::officernd::OfficeRndError::Http(crate::http::HttpError::Transient {
                method: reqwest::Method::GET,
                path: "/members".into(),
                attempts: 4,
                reason: "503 Service Unavailable".into(),
            })
            .into(),
        }
    }

    fn with_kisi_secret(mut objects: Objects) -> Objects {
        let secret: k8s_openapi::api::core::v1::Secret = serde_yaml::from_str(
            "metadata: {name: kisi-credentials, namespace: doors}\nstringData: {apiKey: not-a-real-key}",
        )
        .expect("a Secret");
        objects
            .secrets
            .insert(("doors".into(), "kisi-credentials".into()), secret);
        objects
    }

    #[tokio::test]
    async fn a_suspended_connection_asks_the_host_for_nothing() {
        let host = CountingHost::new(outage());
        let lobby = binding("lobby", "officernd", "kisi");
        let (result, reconciled) = reconcile(
            &host,
            &with_kisi_secret(objects(Some("kisi"))),
            &lobby,
            at("2026-03-02T10:00:00Z"),
        )
        .await;
        assert_eq!(result.outcome.reason, Reason::Suspended);
        assert_eq!(host.doors.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(host.pictures.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(!reconciled.requeue.retry);
    }

    #[tokio::test]
    async fn a_vendor_account_without_credentials_reads_no_officernd() {
        let host = CountingHost::new(outage());
        let lobby = binding("lobby", "officernd", "kisi");
        let (result, reconciled) =
            reconcile(&host, &objects(None), &lobby, at("2026-03-02T10:00:00Z")).await;
        assert_eq!(result.outcome.reason, Reason::SecretNotFound);
        assert!(
            result.outcome.message.contains("kisi-credentials"),
            "{}",
            result.outcome.message
        );
        assert_eq!(host.pictures.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(!reconciled.requeue.retry, "a person must add the Secret");
    }

    #[tokio::test]
    async fn an_officernd_outage_changes_nothing_and_is_retried() {
        let host = CountingHost::new(outage());
        let lobby = binding("lobby", "officernd", "kisi");
        let (result, reconciled) = reconcile(
            &host,
            &with_kisi_secret(objects(None)),
            &lobby,
            at("2026-03-02T10:00:00Z"),
        )
        .await;
        assert_eq!(result.outcome.reason, Reason::VendorUnreachable);
        assert_eq!(
            result.outcome.message,
            "OfficeRnD connection doors/officernd: reading OfficeRnD failed, nothing was evaluated: \
             OfficeRnD: GET /members: temporary failure after 4 attempt(s): 503 Service \
             Unavailable; retry later"
        );
        assert_eq!(result.applied, (0, 0));
        assert_eq!(host.doors.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(reconciled.requeue.retry);
        assert_eq!(reconciled.on_change.len(), 1);
    }

    fn fixtures_kisi() -> VendorConnection {
        let mut kisi = crate::operator::reconcile::fixtures::connection("kisi", "Kisi", "s");
        kisi.spec.sync_interval = "5m".into();
        kisi
    }
}
