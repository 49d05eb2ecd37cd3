//! Makes every managed vendor group equal the engine's desired members: resolve the bound
//! groups, diff, check the guards, apply with minimal writes, and report per person.
//!
//! Managed groups are authoritative (people added by hand are removed); groups no binding names
//! are never touched; vendor accounts are never deleted; one failing person never blocks the
//! others. The guard in [`guard`] keeps a suspicious sync from revoking anyone.

pub mod guard;
pub mod notify;
pub mod plan;

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};

use crate::api::access_group_binding::GroupRef;
use crate::vendors::{DoorVendor, VendorError, VendorGroup};
pub use guard::{Exposure, SnapshotHealth, Standing, Verdict};
pub use plan::{canonical_email, GroupPlan, Person, PlannedGroup};

/// How many vendor writes run at once; the per-account token bucket paces them anyway.
const WRITE_CONCURRENCY: usize = 4;

/// Why a bound group cannot be managed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No vendor group has this id or name.
    #[error(
        "no vendor group with {0}; check the group exists at the vendor and is spelled exactly"
    )]
    NotFound(GroupRef),
    /// Several vendor groups have this name.
    #[error("{count} vendor groups are named {name:?}; name the group by id instead")]
    Ambiguous {
        /// The shared name.
        name: String,
        /// How many groups carry it.
        count: usize,
    },
    /// The group lacks the connection's managed-group prefix.
    #[error("group {name:?} does not start with the managed-group prefix {prefix:?}; flexgate removes everyone it does not entitle from managed groups, so it refuses to manage a group that may be hand-managed (rename the group at the vendor, or fix the binding)")]
    Unmanaged {
        /// The group's name.
        name: String,
        /// The required prefix.
        prefix: String,
    },
}

/// Finds the vendor groups a binding names, refusing any without the required prefix.
pub fn resolve_groups(
    references: &[GroupRef],
    available: &[VendorGroup],
    required_prefix: Option<&str>,
) -> Result<Vec<VendorGroup>, Vec<ResolveError>> {
    let mut resolved = Vec::new();
    let mut errors = Vec::new();
    for reference in references {
        let found: Vec<&VendorGroup> = match (&reference.id, &reference.name) {
            (Some(id), _) => available.iter().filter(|g| &g.id == id).collect(),
            (None, Some(name)) => available.iter().filter(|g| &g.name == name).collect(),
            (None, None) => Vec::new(),
        };
        match found.as_slice() {
            [] => errors.push(ResolveError::NotFound(reference.clone())),
            [group] => match required_prefix {
                Some(prefix) if !group.name.starts_with(prefix) => {
                    errors.push(ResolveError::Unmanaged {
                        name: group.name.clone(),
                        prefix: prefix.to_owned(),
                    })
                }
                _ => resolved.push((*group).clone()),
            },
            several => errors.push(ResolveError::Ambiguous {
                name: reference.name.clone().unwrap_or_default(),
                count: several.len(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(errors)
    }
}

/// Whether a sync writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Apply the changes at the vendor.
    Apply,
    /// Compute and report the changes; write nothing.
    Plan,
}

/// One managed group and the people who should be in it (the union over every binding that
/// names the group).
#[derive(Debug, Clone)]
pub struct DesiredGroup {
    /// The resolved vendor group.
    pub group: VendorGroup,
    /// Everyone entitled to it now.
    pub people: Vec<Person>,
}

/// Everything one sync needs.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The managed groups to converge.
    pub groups: Vec<DesiredGroup>,
    /// Apply or only plan.
    pub mode: Mode,
    /// Whether the OfficeRnD data behind `groups` is complete.
    pub snapshot: SnapshotHealth,
    /// The mass-revocation threshold.
    pub max_revocation_percent: u32,
    /// The blocked plan id a person acknowledged, if any.
    pub acknowledged_plan: Option<String>,
}

/// A person or group whose change failed; the others went ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Who or what, e.g. `member ann@example.com`.
    pub subject: String,
    /// What went wrong.
    pub message: String,
    /// Whether retrying later may help.
    pub retryable: bool,
}

/// What a sync found and did.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// Each group with its plan.
    pub groups: Vec<PlannedGroup>,
    /// The guard's verdict on the revocations.
    pub verdict: Verdict,
    /// Users created.
    pub created_users: u32,
    /// Grants applied.
    pub applied_grants: u32,
    /// Revocations applied.
    pub applied_revokes: u32,
    /// Per-person failures.
    pub failures: Vec<Failure>,
    /// Per-person problems found while matching (not failures of the vendor).
    pub problems: Vec<(String, String)>,
}

impl SyncReport {
    /// Grants and revokes planned but not applied (all of them in mode Plan or when blocked).
    pub fn pending(&self) -> u32 {
        let planned: usize = self
            .groups
            .iter()
            .map(|g| g.plan.grants.len() + g.plan.revokes.len())
            .sum();
        u32::try_from(planned)
            .unwrap_or(u32::MAX)
            .saturating_sub(self.applied_grants + self.applied_revokes)
    }
}

/// Lists, plans, guards and (in mode Apply) applies, knowing nothing outside the synced groups:
/// the guard then counts every revoked person as losing all access (the strictest reading).
pub async fn run<V: DoorVendor>(
    vendor: &V,
    request: &SyncRequest,
) -> Result<SyncReport, VendorError> {
    run_with_standing(vendor, request, Standing::default).await
}

/// Lists, plans, guards and (in mode Apply) applies. Fails as a whole only when the vendor
/// cannot be read, in which case nothing was written. `standing` tells the guard who keeps
/// access outside the synced groups; it is asked only when the sync would revoke someone (it
/// may be costly) and dropped before any write.
pub async fn run_with_standing<V: DoorVendor>(
    vendor: &V,
    request: &SyncRequest,
    standing: impl FnOnce() -> Standing,
) -> Result<SyncReport, VendorError> {
    let users = vendor.list_users().await?;
    let index = plan::UserIndex::new(&users);
    let mut groups = Vec::with_capacity(request.groups.len());
    let mut current_members = Vec::with_capacity(request.groups.len());
    for desired in &request.groups {
        let members = vendor.list_group_members(&desired.group).await?;
        let mut plan = plan::plan_group(&desired.people, &members, &index, &users);
        reopen_blocked_members(vendor, &desired.people, &members, &index, &mut plan);
        groups.push(PlannedGroup {
            group: desired.group.clone(),
            plan,
        });
        current_members.push(members);
    }
    // `standing` is moved into this block so whatever it holds (an OfficeRnD picture) is
    // released before the writes, whether or not it was asked.
    let exposure = {
        let standing = standing;
        if groups.iter().any(|g| !g.plan.revokes.is_empty()) {
            let current = current_members
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            let desired: Vec<&Person> = request.groups.iter().flat_map(|g| &g.people).collect();
            guard::exposure(&groups, &desired, &current, &index, &standing())
        } else {
            Exposure::default()
        }
    };
    let verdict = guard::check(
        &groups,
        &exposure,
        request.max_revocation_percent,
        &request.snapshot,
        request.acknowledged_plan.as_deref(),
    );
    let problems = groups
        .iter()
        .flat_map(|g| g.plan.problems.iter().cloned())
        .collect();
    let mut report = SyncReport {
        groups,
        verdict,
        created_users: 0,
        applied_grants: 0,
        applied_revokes: 0,
        failures: Vec::new(),
        problems,
    };
    for grant in report.groups.iter().flat_map(|g| &g.plan.grants) {
        if let Some(reason) = grant
            .user_id
            .as_deref()
            .and_then(|id| vendor.access_blocked(id))
        {
            push_blocked(&mut report.failures, &grant.person.email, &reason);
        }
    }
    if request.mode == Mode::Apply {
        apply(vendor, &mut report).await;
    }
    Ok(report)
}

/// A desired person already in the group whose vendor user can open no door (Salto KS: suspended
/// for lack of a seat) is not "kept": their grant stays planned, so they are never counted as
/// granted, and the sync reports them. Being in the group they keep their place, so access
/// returns by itself once the vendor lifts the block.
fn reopen_blocked_members<V: DoorVendor>(
    vendor: &V,
    desired: &[Person],
    members: &[String],
    index: &plan::UserIndex<'_>,
    plan: &mut GroupPlan,
) {
    let mut seen = std::collections::BTreeSet::new();
    for person in desired {
        if !seen.insert(person.officernd_id.as_str()) {
            continue;
        }
        let plan::Lookup::Found(user) = index.find(person) else {
            continue;
        };
        if members.contains(&user.id) && vendor.access_blocked(&user.id).is_some() {
            plan.kept = plan.kept.saturating_sub(1);
            plan.grants.push(plan::Grant {
                person: person.clone(),
                user_id: Some(user.id.clone()),
            });
        }
    }
}

/// Reports a person the vendor holds unable to open doors, once however many groups they are in.
fn push_blocked(failures: &mut Vec<Failure>, email: &str, reason: &str) {
    let subject = format!("member {email}");
    if failures.iter().any(|failure| failure.subject == subject) {
        return;
    }
    failures.push(Failure {
        subject,
        message: format!("not granted: {reason}"),
        retryable: false,
    });
}

async fn apply<V: DoorVendor>(vendor: &V, report: &mut SyncReport) {
    // Create each missing person once, even when they are granted several groups.
    let mut to_create: BTreeMap<String, Person> = BTreeMap::new();
    for grant in report.groups.iter().flat_map(|g| &g.plan.grants) {
        if grant.user_id.is_none() {
            to_create
                .entry(grant.person.officernd_id.clone())
                .or_insert_with(|| grant.person.clone());
        }
    }
    let created: Vec<(String, Result<String, VendorError>)> = stream::iter(to_create.into_values())
        .map(|person| async move {
            let result = vendor.create_user(&person).await.map(|user| user.id);
            (person.officernd_id, result)
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await;
    let mut new_ids = BTreeMap::new();
    for (officernd_id, result) in created {
        match result {
            Ok(user_id) => {
                report.created_users += 1;
                new_ids.insert(officernd_id, user_id);
            }
            Err(error) => {
                let email = report
                    .groups
                    .iter()
                    .flat_map(|g| &g.plan.grants)
                    .find(|g| g.person.officernd_id == officernd_id)
                    .map(|g| g.person.email.clone())
                    .unwrap_or(officernd_id);
                report.failures.push(failure(
                    format!("member {email}"),
                    "creating the vendor user",
                    &error,
                ));
            }
        }
    }

    let grants: Vec<notify::PendingGrant> = report
        .groups
        .iter()
        .flat_map(|g| {
            let new_ids = &new_ids;
            g.plan.grants.iter().filter_map(move |grant| {
                let (user_id, created_now) = match &grant.user_id {
                    Some(id) => (id.clone(), false),
                    None => (new_ids.get(&grant.person.officernd_id)?.clone(), true),
                };
                Some(notify::PendingGrant {
                    group: g.group.clone(),
                    user_id,
                    email: grant.person.email.clone(),
                    created_now,
                })
            })
        })
        .collect();
    // Never add someone who can open no door (e.g. a Salto KS user created suspended because the
    // seats are used up): they are reported, not counted as granted.
    let grants: Vec<notify::PendingGrant> = grants
        .into_iter()
        .filter(|grant| match vendor.access_blocked(&grant.user_id) {
            Some(reason) => {
                push_blocked(&mut report.failures, &grant.email, &reason);
                false
            }
            None => true,
        })
        .collect();
    let granted: Vec<Vec<(notify::PendingGrant, Result<(), VendorError>)>> =
        stream::iter(notify::jobs(vendor.grant_notices(), grants))
            .map(|job| notify::run(vendor, job))
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
    for (grant, result) in granted.into_iter().flatten() {
        match result {
            Ok(()) => report.applied_grants += 1,
            Err(error) => report.failures.push(failure(
                format!("member {}", grant.email),
                &format!("adding to group {:?}", grant.group.name),
                &error,
            )),
        }
    }

    if report.verdict != Verdict::Allowed {
        return;
    }
    let revokes: Vec<(VendorGroup, String, String)> = report
        .groups
        .iter()
        .flat_map(|g| {
            g.plan
                .revokes
                .iter()
                .map(move |r| (g.group.clone(), r.user_id.clone(), r.label.clone()))
        })
        .collect();
    let revoked: Vec<Result<(), Failure>> = stream::iter(revokes)
        .map(|(group, user_id, label)| async move {
            vendor
                .remove_from_group(&user_id, &group)
                .await
                .map_err(|error| {
                    failure(
                        format!("user {label}"),
                        &format!("removing from group {:?}", group.name),
                        &error,
                    )
                })
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await;
    for result in revoked {
        match result {
            Ok(()) => report.applied_revokes += 1,
            Err(failure) => report.failures.push(failure),
        }
    }
}

fn failure(subject: String, action: &str, error: &VendorError) -> Failure {
    Failure {
        subject,
        message: format!("{action} failed: {error}"),
        retryable: error.is_retryable_later(),
    }
}
