//! Reconciles one AccessGroupBinding without knowing where it came from (a cluster or a folder):
//! resolve its vendor groups, gather the union of everyone entitled to them by any binding,
//! sync, and describe the result as status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::access_group_binding::{
    AccessGroupBinding, AccessGroupBindingStatus, BindingMode, PlannedChanges, ResolvedGroup,
};
use crate::api::conditions::Reason;
use crate::api::status::{cap_problems, Counts, Problem};
use crate::api::ACKNOWLEDGE_REVOCATION;
use crate::engine::{self, Entitlement, Evaluation, Index, PersonId};
use crate::sync::{
    self, DesiredGroup, Mode, Person, SnapshotHealth, Standing, SyncRequest, Verdict,
};
use crate::vendors::{DoorVendor, VendorError, VendorGroup};

use super::deadline;
use super::desired::{binding_key, group_key};
use super::objects::Objects;
use super::reconcile::errors::{resolve_reason, vendor_reason};
use super::status::Outcome;

/// What reconciling a binding found and did, ready to become its status.
#[derive(Debug, Clone)]
pub struct BindingResult {
    /// Ready / Reconciling / Stalled.
    pub outcome: Outcome,
    /// The vendor groups resolved.
    pub resolved_groups: Vec<ResolvedGroup>,
    /// Counts.
    pub counts: Counts,
    /// Planned but unapplied changes (mode Plan, or blocked revocations).
    pub planned: Option<PlannedChanges>,
    /// Problems (capped at 50) and how many were left out.
    pub problems: (Vec<Problem>, u32),
    /// People added and removed by this sync, for Events.
    pub applied: (u32, u32),
    /// The next instant at which the access of this binding's groups changes by time alone
    /// (`None` when nothing is due, or when the engine was not reached).
    pub next_change_at: Option<DateTime<Utc>>,
}

/// What the engine needs to answer for the bindings of one OfficeRnD organization: its indexed
/// picture, every binding that reads from it, and the instant. A reconcile evaluates only the
/// bindings that share a vendor group with the one it syncs.
pub struct Entitlements {
    /// The indexed snapshot; released before any vendor call.
    pub index: Arc<Index>,
    /// Every binding of the OfficeRnD connection, mapped onto the engine.
    pub bindings: Vec<engine::Binding>,
    /// Bindings of the connection that could not be mapped, with why.
    pub unmapped: Vec<(engine::BindingKey, super::desired::Unmapped)>,
    /// Members in the snapshot (for the empty-snapshot guard).
    pub members: usize,
    /// The instant to evaluate at.
    pub at: DateTime<Utc>,
}

impl BindingResult {
    /// The status this result describes, given the status it replaces. Counts and resolved
    /// groups are kept from `previous` when the vendor was not reached (they would otherwise drop
    /// to zero on a transient failure); `lastSyncTime` moves only when a sync that reached the
    /// vendor changed people or the status, so an idle resync rewrites nothing.
    pub fn to_status(
        &self,
        previous: &AccessGroupBindingStatus,
        generation: Option<i64>,
        handled_request: Option<String>,
        next_change: Option<Time>,
        now: Time,
    ) -> AccessGroupBindingStatus {
        let reached_vendor = matches!(
            self.outcome.reason,
            Reason::Synced
                | Reason::PartialFailure
                | Reason::Planned
                | Reason::MassRevocationBlocked
        );
        let mut next = AccessGroupBindingStatus {
            observed_generation: generation,
            conditions: super::status::conditions(
                &self.outcome,
                generation,
                now.clone(),
                &previous.conditions,
            ),
            last_sync_time: previous.last_sync_time.clone(),
            last_handled_reconcile_at: handled_request,
            next_change_time: next_change,
            resolved_groups: if reached_vendor {
                self.resolved_groups.clone()
            } else {
                previous.resolved_groups.clone()
            },
            counts: if reached_vendor {
                self.counts.clone()
            } else {
                previous.counts.clone()
            },
            planned: self.planned.clone(),
            problems: self.problems.0.clone(),
            problems_omitted: (self.problems.1 > 0).then_some(self.problems.1),
        };
        let applied = self.applied.0 + self.applied.1 > 0;
        if reached_vendor && (applied || next != *previous || previous.last_sync_time.is_none()) {
            next.last_sync_time = Some(now);
        }
        next
    }

    /// A result that changed nothing, for a reason found before any vendor call.
    pub fn not_ready(reason: Reason, message: String) -> Self {
        Self::failed(reason, message)
    }

    /// A result that changed nothing, with the outcome a pipeline stage decided.
    pub fn stopped(outcome: Outcome) -> Self {
        Self {
            outcome,
            ..Self::failed(Reason::Synced, String::new())
        }
    }

    fn failed(reason: Reason, message: String) -> Self {
        Self {
            outcome: Outcome::not_ready(reason, message),
            resolved_groups: Vec::new(),
            counts: Counts::default(),
            planned: None,
            problems: (Vec::new(), 0),
            applied: (0, 0),
            next_change_at: None,
        }
    }
}

/// Converts an engine entitlement into the person a vendor sync creates or finds.
pub fn person(index: &Index, entitlement: &Entitlement) -> Person {
    let phone = match &entitlement.person {
        PersonId::Member(id) => index.member(id).and_then(|m| m.phone.clone()),
        PersonId::Guest(id) => index.visitor(id).and_then(|v| v.phone.clone()),
    };
    let (first, last) = match entitlement.name.trim().rsplit_once(' ') {
        Some((first, last)) => (first.trim().to_owned(), last.trim().to_owned()),
        None => (entitlement.name.trim().to_owned(), String::new()),
    };
    let officernd_id = match &entitlement.person {
        PersonId::Member(id) => id.to_string(),
        PersonId::Guest(id) => format!("visitor:{id}"),
    };
    Person {
        officernd_id,
        first_name: if first.is_empty() {
            entitlement.email.clone()
        } else {
            first
        },
        last_name: last,
        email: entitlement.email.trim().to_owned(),
        phone,
    }
}

/// Reconciles `binding` against `vendor`: every vendor group it names gets the union of what the
/// bindings naming that group (on the same vendor connection, whichever way they name it)
/// entitle. When the binding is being deleted with policy Revoke, it is left out of the
/// evaluation, so the sync removes exactly the access this binding alone granted.
///
/// The whole sync has a deadline ([`SYNC_DEADLINE`]): a vendor that answers slowly enough never
/// to time out a single request must not hold this binding (and, through the per-account slot,
/// every binding of the account) for ever. Stopping a sync between two writes loses nothing:
/// every sync starts from what the vendor says and converges from any point.
pub async fn reconcile<V: DoorVendor>(
    binding: &AccessGroupBinding,
    objects: &Objects,
    entitlements: Entitlements,
    vendor: &V,
    deleting: bool,
) -> BindingResult {
    let sync = reconcile_now(binding, objects, entitlements, vendor, deleting);
    match deadline::within(SYNC_DEADLINE, "the sync with the vendor", sync).await {
        Ok(result) => result,
        Err(exceeded) => BindingResult::failed(Reason::VendorUnreachable, exceeded.to_string()),
    }
}

/// The longest a binding sync may take, reads and writes together.
pub const SYNC_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

async fn reconcile_now<V: DoorVendor>(
    binding: &AccessGroupBinding,
    objects: &Objects,
    entitlements: Entitlements,
    vendor: &V,
    deleting: bool,
) -> BindingResult {
    let namespace = binding.namespace().unwrap_or_default();
    let spec = &binding.spec;
    if spec.suspend && !deleting {
        return BindingResult {
            outcome: Outcome::not_ready(
                Reason::Suspended,
                "spec.suspend is true: nothing is read or written",
            ),
            ..BindingResult::failed(Reason::Suspended, String::new())
        };
    }
    let Some(connection) = objects.connection(&namespace, &spec.vendor_ref.name) else {
        return BindingResult::failed(
            Reason::ReferenceNotFound,
            format!(
                "VendorConnection {namespace}/{} (vendorRef) not found",
                spec.vendor_ref.name
            ),
        );
    };
    let available = match vendor.list_groups().await {
        Ok(groups) => groups,
        Err(error) => return vendor_failure(&error),
    };
    let prefix = connection.spec.managed_group_prefix.as_deref();
    let own_groups = match sync::resolve_groups(&spec.groups, &available, prefix) {
        Ok(groups) => groups,
        Err(errors) => {
            let reason = resolve_reason(&errors);
            let message = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return BindingResult::failed(reason, format!("nothing was written: {message}"));
        }
    };

    // The bindings on the same vendor connection that name one of these groups, whichever way
    // (id or name): each group gets their union.
    let own_key = binding_key(binding);
    let mut naming: Vec<(engine::GroupKey, String)> = Vec::new();
    let mut contributing = BTreeSet::new();
    for other in &objects.bindings {
        if other.namespace().as_deref() != Some(namespace.as_str())
            || other.spec.vendor_ref.name != spec.vendor_ref.name
        {
            continue;
        }
        for reference in &other.spec.groups {
            let Ok(resolved) =
                sync::resolve_groups(std::slice::from_ref(reference), &available, None)
            else {
                continue;
            };
            if own_groups.iter().any(|g| g.id == resolved[0].id) {
                naming.push((
                    group_key(&namespace, &spec.vendor_ref.name, reference),
                    resolved[0].id.clone(),
                ));
                contributing.insert(binding_key(other));
            }
        }
    }
    let Entitlements {
        index,
        bindings,
        unmapped,
        members: snapshot_members,
        at,
    } = entitlements;
    // A binding that shares a group but cannot be evaluated leaves the union unknown: writing
    // now could lock out the people only it entitles.
    if let Some((key, error)) = unmapped
        .iter()
        .find(|(key, _)| contributing.contains(key) && *key != own_key)
    {
        return BindingResult::failed(
            Reason::ReferenceNotFound,
            format!("binding {key} also manages these groups and cannot be evaluated ({error}); nothing was written until it is fixed"),
        );
    }
    let (evaluated, others): (Vec<engine::Binding>, Vec<engine::Binding>) = bindings
        .into_iter()
        .filter(|b| !(deleting && b.key == own_key))
        .partition(|b| contributing.contains(&b.key));
    let (evaluation, evaluated) = match evaluate_off_runtime(index.clone(), evaluated, at).await {
        Some(evaluated) => evaluated,
        None => {
            return BindingResult::failed(
                Reason::VendorUnreachable,
                "the operator is stopping; nothing was changed".to_owned(),
            )
        }
    };
    let mut desired: BTreeMap<String, BTreeMap<String, Person>> = own_groups
        .iter()
        .map(|g| (g.id.clone(), BTreeMap::new()))
        .collect();
    for (key, group_id) in &naming {
        let Some(people) = desired.get_mut(group_id) else {
            continue;
        };
        for entitlement in evaluation
            .groups
            .get(key)
            .into_iter()
            .flat_map(|g| g.values())
        {
            let person = person(&index, entitlement);
            people.entry(person.officernd_id.clone()).or_insert(person);
        }
    }
    let groups: Vec<DesiredGroup> = own_groups
        .iter()
        .map(|group| DesiredGroup {
            group: group.clone(),
            people: desired
                .remove(&group.id)
                .map(|p| p.into_values().collect())
                .unwrap_or_default(),
        })
        .collect();
    let standing = StandingQuery {
        index,
        connection: format!("{namespace}/{}", spec.vendor_ref.name),
        synced_keys: naming.iter().map(|(key, _)| key.clone()).collect(),
        contributing: evaluated,
        others,
        at,
        last_sync: last_sync_of(objects, &contributing),
    };

    let request = SyncRequest {
        groups,
        mode: if spec.mode == BindingMode::Plan {
            Mode::Plan
        } else {
            Mode::Apply
        },
        snapshot: SnapshotHealth::Complete {
            members: snapshot_members,
        },
        max_revocation_percent: spec.max_revocation_percent,
        // Deleting the binding is itself the person's decision to revoke what it granted.
        acknowledged_plan: if deleting {
            None
        } else {
            binding.annotations().get(ACKNOWLEDGE_REVOCATION).cloned()
        },
    };
    let request = if deleting {
        SyncRequest {
            max_revocation_percent: 100,
            ..request
        }
    } else {
        request
    };
    let report =
        match sync::run_with_standing(vendor, &request, || blocking(|| standing.answer())).await {
            Ok(report) => report,
            Err(error) => return vendor_failure(&error),
        };
    BindingResult {
        next_change_at: evaluation.next_change_at,
        ..summarize(binding, &evaluation, &own_groups, &report, request.mode)
    }
}

/// Evaluates `bindings` at `at` on tokio's blocking pool: the evaluation is CPU-heavy (and
/// spreads over OS threads itself), so it must not hold an async worker thread that other
/// reconciles, watches and the webhook server need. `None` when the runtime is shutting down.
async fn evaluate_off_runtime(
    index: Arc<Index>,
    bindings: Vec<engine::Binding>,
    at: DateTime<Utc>,
) -> Option<(Evaluation, Vec<engine::Binding>)> {
    let evaluated = tokio::task::spawn_blocking(move || {
        let evaluation = engine::evaluate(&index, &bindings, at);
        (evaluation, bindings)
    })
    .await;
    match evaluated {
        Ok(evaluated) => Some(evaluated),
        Err(error) => match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => None,
        },
    }
}

/// Runs `work` (a synchronous evaluation the sync asks for lazily, from inside its async
/// loop) so that it does not hold an async worker: on a multi-threaded runtime the worker hands
/// its other tasks over first; elsewhere (a test's current-thread runtime) it just runs.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// What the guard asks when a sync would revoke someone: who keeps access through the vendor
/// connection's other groups now, and who the rules entitled to the synced groups at their last
/// sync (by today's data, so a person whose time ran out is told apart from a person whose
/// membership vanished). Evaluated only when asked; holds the picture until then.
struct StandingQuery {
    index: Arc<Index>,
    /// The vendor connection's key in the engine (`namespace/name`).
    connection: String,
    /// The engine keys of the synced groups (every way a binding names them).
    synced_keys: BTreeSet<engine::GroupKey>,
    contributing: Vec<engine::Binding>,
    /// The connection's bindings that name none of the synced groups.
    others: Vec<engine::Binding>,
    at: DateTime<Utc>,
    last_sync: Option<DateTime<Utc>>,
}

impl StandingQuery {
    fn answer(self) -> Standing {
        let people = |evaluation: &Evaluation, wanted: &dyn Fn(&engine::GroupKey) -> bool| {
            let mut people: BTreeMap<String, Person> = BTreeMap::new();
            for (_, entitlements) in evaluation.groups.iter().filter(|(key, _)| wanted(key)) {
                for entitlement in entitlements.values() {
                    let person = person(&self.index, entitlement);
                    people.entry(person.officernd_id.clone()).or_insert(person);
                }
            }
            people.into_values().collect::<Vec<_>>()
        };
        let elsewhere = engine::evaluate(&self.index, &self.others, self.at);
        let entitled_elsewhere = people(&elsewhere, &|key| {
            key.connection == self.connection && !self.synced_keys.contains(key)
        });
        let entitled_at_last_sync = match self.last_sync {
            Some(then) if then < self.at => {
                let before = engine::evaluate(&self.index, &self.contributing, then);
                people(&before, &|key| self.synced_keys.contains(key))
            }
            _ => Vec::new(),
        };
        Standing {
            entitled_elsewhere,
            entitled_at_last_sync,
        }
    }
}

/// The last sync that changed any of the groups: the latest `lastSyncTime` among the bindings
/// that manage them (each moves only when its sync changed people or status).
fn last_sync_of(
    objects: &Objects,
    contributing: &BTreeSet<engine::BindingKey>,
) -> Option<DateTime<Utc>> {
    objects
        .bindings
        .iter()
        .filter(|b| contributing.contains(&binding_key(b)))
        .filter_map(|b| b.status.as_ref()?.last_sync_time.as_ref())
        .map(super::reconcile::instant)
        .max()
}

fn vendor_failure(error: &VendorError) -> BindingResult {
    BindingResult::failed(
        vendor_reason(error),
        format!("nothing was changed: {error}"),
    )
}

fn summarize(
    binding: &AccessGroupBinding,
    evaluation: &Evaluation,
    groups: &[VendorGroup],
    report: &sync::SyncReport,
    mode: Mode,
) -> BindingResult {
    let key = binding_key(binding);
    let mut problems: Vec<Problem> = evaluation
        .problems
        .iter()
        .filter(|p| p.binding.as_ref() == Some(&key))
        .map(|p| Problem {
            subject: format!("binding {key}"),
            message: p.kind.to_string(),
        })
        .collect();
    problems.extend(report.problems.iter().map(|(subject, message)| Problem {
        subject: subject.clone(),
        message: message.clone(),
    }));
    problems.extend(report.failures.iter().map(|f| Problem {
        subject: f.subject.clone(),
        message: f.message.clone(),
    }));
    for group in &report.groups {
        for (officernd_email, vendor_email) in &group.plan.email_mismatches {
            problems.push(Problem {
                subject: format!("member {officernd_email}"),
                message: format!("the vendor holds email {vendor_email}; emails are not pushed after the first sync (as in the OfficeRnD integrations), update it at the vendor"),
            });
        }
    }
    let matched: u32 = report.groups.iter().map(|g| g.plan.matched).sum();
    let kept: u32 = report.groups.iter().map(|g| g.plan.kept).sum();
    let grants: u32 = report
        .groups
        .iter()
        .map(|g| g.plan.grants.len() as u32)
        .sum();
    let revokes: u32 = report
        .groups
        .iter()
        .map(|g| g.plan.revokes.len() as u32)
        .sum();
    let counts = Counts {
        matched,
        granted: kept + report.applied_grants,
        pending: report.pending(),
        unmatched: report.problems.len() as u32,
        errors: report.failures.len() as u32,
    };
    let group_names = groups
        .iter()
        .map(|g| format!("{:?}", g.name))
        .collect::<Vec<_>>()
        .join(", ");
    let outcome = match (&report.verdict, mode) {
        (_, Mode::Plan) => Outcome::ready(
            Reason::Planned,
            format!("mode Plan: would grant {grants} and revoke {revokes} in {group_names}; nothing was written"),
        ),
        (Verdict::Blocked { plan_id, reason }, Mode::Apply) => Outcome::not_ready(
            Reason::MassRevocationBlocked,
            format!(
                "{reason}; nobody was removed ({} granted). If this is intended, run: kubectl annotate accessgroupbinding {} {ACKNOWLEDGE_REVOCATION}={plan_id} --overwrite",
                report.applied_grants,
                binding.name_any()
            ),
        ),
        (Verdict::Allowed, Mode::Apply) if !report.failures.is_empty() => Outcome::not_ready(
            Reason::PartialFailure,
            format!(
                "{} of {} changes failed (see problems); the others were applied and failed ones are retried",
                report.failures.len(),
                grants + revokes
            ),
        ),
        (Verdict::Allowed, Mode::Apply) => Outcome::ready(
            Reason::Synced,
            format!(
                "{} people in {group_names}: {} granted, {} revoked in this sync",
                counts.granted, report.applied_grants, report.applied_revokes
            ),
        ),
    };
    let planned = (counts.pending > 0).then_some(PlannedChanges {
        grants: grants - report.applied_grants.min(grants),
        revokes: revokes - report.applied_revokes.min(revokes),
    });
    BindingResult {
        outcome,
        resolved_groups: groups
            .iter()
            .map(|g| ResolvedGroup {
                id: g.id.clone(),
                name: g.name.clone(),
            })
            .collect(),
        counts,
        planned,
        problems: cap_problems(problems),
        applied: (report.applied_grants, report.applied_revokes),
        next_change_at: None,
    }
}
