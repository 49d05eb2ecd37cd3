//! The mass-revocation guard: a sync that would remove too many people at once, or that rests
//! on an empty or partial OfficeRnD snapshot, removes nobody until a person acknowledges it.

use sha2::{Digest, Sha256};

use super::plan::PlannedGroup;

/// Removing this many people or fewer from a group is never treated as a mass revocation, so a
/// meeting-room booking ending (which empties a small group) is not blocked.
pub const ALWAYS_ALLOWED_REVOCATIONS: usize = 3;

/// The state of the OfficeRnD data a sync was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotHealth {
    /// Every collection was read completely; `members` people were listed.
    Complete {
        /// How many members the snapshot holds.
        members: usize,
    },
    /// Something could not be read (why); revoking on such data could lock out everyone.
    Partial(String),
}

/// Whether the revocations of a sync may be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Apply everything.
    Allowed,
    /// Apply the grants only. `plan_id` identifies exactly this set of revocations: naming it in
    /// the acknowledgement annotation allows it, and only it, on the next sync.
    Blocked {
        /// Short stable id of the blocked revocations.
        plan_id: String,
        /// What a person needs to know to decide.
        reason: String,
    },
}

/// Checks the planned revocations of one sync against the guard.
pub fn check(
    plans: &[PlannedGroup],
    max_revocation_percent: u32,
    snapshot: &SnapshotHealth,
    acknowledged_plan: Option<&str>,
) -> Verdict {
    let total_revokes: usize = plans.iter().map(|p| p.plan.revokes.len()).sum();
    if total_revokes == 0 {
        return Verdict::Allowed;
    }
    let reason = match snapshot {
        SnapshotHealth::Partial(why) => Some(format!(
            "the OfficeRnD data is incomplete ({why}); revoking {total_revokes} people on partial data could lock out members who are entitled"
        )),
        SnapshotHealth::Complete { members: 0 } => Some(format!(
            "OfficeRnD returned no members at all; revoking {total_revokes} people on an empty snapshot would lock out everyone"
        )),
        SnapshotHealth::Complete { .. } => plans.iter().find_map(|planned| {
            let revokes = planned.plan.revokes.len();
            let size = planned.plan.current_size as usize;
            let over = revokes > ALWAYS_ALLOWED_REVOCATIONS
                && revokes * 100 > size * max_revocation_percent as usize;
            over.then(|| {
                format!(
                    "removing {revokes} of {size} people from group {:?} at once exceeds maxRevocationPercent ({max_revocation_percent}%)",
                    planned.group.name
                )
            })
        }),
    };
    let Some(reason) = reason else {
        return Verdict::Allowed;
    };
    let plan_id = plan_id(plans);
    if acknowledged_plan == Some(plan_id.as_str()) {
        return Verdict::Allowed;
    }
    Verdict::Blocked { plan_id, reason }
}

/// A short id for the exact set of revocations (groups and user ids, order-independent).
pub fn plan_id(plans: &[PlannedGroup]) -> String {
    let mut entries: Vec<(String, String)> = plans
        .iter()
        .flat_map(|p| {
            p.plan
                .revokes
                .iter()
                .map(move |r| (p.group.id.clone(), r.user_id.clone()))
        })
        .collect();
    entries.sort();
    let mut hasher = Sha256::new();
    for (group, user) in entries {
        hasher.update(group.as_bytes());
        hasher.update([0]);
        hasher.update(user.as_bytes());
        hasher.update([1]);
    }
    hex::encode(&hasher.finalize()[..6])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::{GroupPlan, Revoke};
    use crate::vendors::VendorGroup;

    fn planned(size: u32, revokes: usize) -> PlannedGroup {
        PlannedGroup {
            group: VendorGroup {
                id: "g1".into(),
                name: "OFFICERND_Lobby".into(),
            },
            plan: GroupPlan {
                current_size: size,
                revokes: (0..revokes)
                    .map(|i| Revoke {
                        user_id: format!("u{i}"),
                        label: format!("u{i}"),
                    })
                    .collect(),
                ..GroupPlan::default()
            },
        }
    }

    const HEALTHY: SnapshotHealth = SnapshotHealth::Complete { members: 500 };

    #[test]
    fn small_removals_pass() {
        assert_eq!(
            check(&[planned(2, 2)], 20, &HEALTHY, None),
            Verdict::Allowed
        );
        assert_eq!(
            check(&[planned(100, 20)], 20, &HEALTHY, None),
            Verdict::Allowed
        );
    }

    #[test]
    fn large_removals_are_blocked_until_that_exact_plan_is_acknowledged() {
        let plans = [planned(100, 21)];
        let Verdict::Blocked { plan_id, reason } = check(&plans, 20, &HEALTHY, None) else {
            panic!("21% of 100 must be blocked at 20%");
        };
        assert!(reason.contains("removing 21 of 100"), "{reason}");
        assert_eq!(
            check(&plans, 20, &HEALTHY, Some(&plan_id)),
            Verdict::Allowed
        );
        assert!(
            matches!(
                check(&[planned(100, 22)], 20, &HEALTHY, Some(&plan_id)),
                Verdict::Blocked { .. }
            ),
            "an old acknowledgement must not allow a different plan"
        );
    }

    #[test]
    fn partial_or_empty_snapshots_never_revoke() {
        assert!(matches!(
            check(
                &[planned(100, 1)],
                100,
                &SnapshotHealth::Partial("members: 503".into()),
                None
            ),
            Verdict::Blocked { .. }
        ));
        assert!(matches!(
            check(
                &[planned(100, 1)],
                100,
                &SnapshotHealth::Complete { members: 0 },
                None
            ),
            Verdict::Blocked { .. }
        ));
        assert_eq!(
            check(
                &[planned(100, 0)],
                0,
                &SnapshotHealth::Partial("x".into()),
                None
            ),
            Verdict::Allowed
        );
    }
}
