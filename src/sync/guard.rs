//! The mass-revocation guard: a sync that would take all managed access away from too many of
//! the people who have any on a vendor connection, or that rests on an empty or partial
//! OfficeRnD snapshot, removes nobody until a person acknowledges it.
//!
//! The guard counts people, not group rows: someone removed from a meeting-room group who keeps
//! the lobby loses nothing that matters here, and someone whose booking, membership or pass
//! simply ran out (the rules entitled them at the last sync, by today's OfficeRnD data) is
//! expected to go. What is left is access vanishing because the data vanished, which is what a
//! bad import, a wrong organization or an API returning nothing looks like.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::plan::{Lookup, Person, PlannedGroup, UserIndex};

/// How many of the people counted by the guard its message names.
const NAMED_IN_MESSAGE: usize = 5;

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

/// What the guard must know from outside the synced groups to count people rather than rows.
/// The default knows nothing, which is the strictest: every revoked person counts.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// People the rules entitle now to the connection's other managed groups: they keep access.
    pub entitled_elsewhere: Vec<Person>,
    /// People the rules entitled to the synced groups at the last sync that changed them, by
    /// today's OfficeRnD data: if they go now, the clock explains it.
    pub entitled_at_last_sync: Vec<Person>,
}

/// Who a sync would leave without any managed access on the vendor connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Labels of the people who lose all managed access and whose loss the clock does not
    /// explain (sorted).
    pub losing_all: Vec<String>,
    /// People who lose all managed access because their time ran out (not held).
    pub expired: usize,
    /// People with managed access on the connection, now or by this sync: everyone in the
    /// synced groups and everyone the rules entitle to any managed group of the connection.
    pub with_access: usize,
}

/// Counts the people a sync would leave without managed access. `desired` are the people the
/// synced groups should hold, `current` the vendor user ids in them now.
pub fn exposure(
    plans: &[PlannedGroup],
    desired: &[&Person],
    current: &BTreeSet<&str>,
    users: &UserIndex<'_>,
    standing: &Standing,
) -> Exposure {
    let found = |people: &mut dyn Iterator<Item = &Person>| -> BTreeSet<String> {
        people
            .filter_map(|person| match users.find(person) {
                Lookup::Found(user) => Some(user.id.clone()),
                Lookup::Missing | Lookup::Ambiguous(_) => None,
            })
            .collect()
    };
    let entitled: BTreeMap<&str, &Person> = desired
        .iter()
        .copied()
        .chain(standing.entitled_elsewhere.iter())
        .map(|person| (person.officernd_id.as_str(), person))
        .collect();
    // Entitled people the vendor does not know yet are about to get access: they belong to
    // the space the share is taken of, so the order in which bindings sync does not matter.
    let mut keeping = BTreeSet::new();
    let mut arriving = 0usize;
    for person in entitled.values() {
        match users.find(person) {
            Lookup::Found(user) => {
                keeping.insert(user.id.clone());
            }
            Lookup::Missing | Lookup::Ambiguous(_) => arriving += 1,
        }
    }
    let entitled_before = found(&mut standing.entitled_at_last_sync.iter());
    let mut losing_all = BTreeSet::new();
    let mut expired = BTreeSet::new();
    for revoke in plans.iter().flat_map(|p| &p.plan.revokes) {
        if keeping.contains(&revoke.user_id) {
            continue;
        }
        if entitled_before.contains(&revoke.user_id) {
            expired.insert(revoke.user_id.as_str());
        } else {
            losing_all.insert((revoke.user_id.as_str(), revoke.label.as_str()));
        }
    }
    let with_access = current
        .iter()
        .map(|id| (*id).to_owned())
        .chain(keeping)
        .collect::<BTreeSet<_>>()
        .len()
        + arriving;
    let mut labels: Vec<String> = losing_all
        .into_iter()
        .map(|(_, label)| label.to_owned())
        .collect();
    labels.sort();
    Exposure {
        losing_all: labels,
        expired: expired.len(),
        with_access,
    }
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

/// Checks the planned revocations of one sync against the guard: on a partial or empty snapshot
/// nobody is removed; otherwise the sync is held when more than `max_revocation_percent` of the
/// people with managed access on the connection would lose all of it for a reason other than
/// their time running out.
pub fn check(
    plans: &[PlannedGroup],
    exposure: &Exposure,
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
        SnapshotHealth::Complete { .. } => {
            let losing = exposure.losing_all.len();
            let over = losing > 0
                && losing * 100 > exposure.with_access * max_revocation_percent as usize;
            over.then(|| {
                let named = exposure
                    .losing_all
                    .iter()
                    .take(NAMED_IN_MESSAGE)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                let more = losing.saturating_sub(NAMED_IN_MESSAGE);
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                format!(
                    "{losing} of the {} people with managed access on this vendor connection (now or by this sync) would lose all of it in one sync ({named}{more}), more than maxRevocationPercent ({max_revocation_percent}%); their access did not run out, it is gone from OfficeRnD (people who keep another managed group, or whose booking, membership or pass ended, are not counted)",
                    exposure.with_access
                )
            })
        }
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
    use crate::vendors::{VendorGroup, VendorUser};

    /// Vendor users `u0`..`u{n}`, each with email `p{i}@example.com`.
    fn users(n: usize) -> Vec<VendorUser> {
        (0..n)
            .map(|i| VendorUser {
                id: format!("u{i}"),
                email: Some(format!("p{i}@example.com")),
                external_id: None,
                name: format!("Person {i}"),
            })
            .collect()
    }

    fn person(i: usize) -> Person {
        Person {
            officernd_id: format!("m{i}"),
            first_name: format!("Person {i}"),
            last_name: String::new(),
            email: format!("P{i}@Example.com"),
            phone: None,
        }
    }

    /// A group holding users `members`, of whom `revoked` are to be removed.
    fn planned(members: std::ops::Range<usize>, revoked: std::ops::Range<usize>) -> PlannedGroup {
        PlannedGroup {
            group: VendorGroup {
                id: "g1".into(),
                name: "OFFICERND_Room".into(),
            },
            plan: GroupPlan {
                current_size: members.len() as u32,
                revokes: revoked
                    .map(|i| Revoke {
                        user_id: format!("u{i}"),
                        label: format!("p{i}@example.com"),
                    })
                    .collect(),
                ..GroupPlan::default()
            },
        }
    }

    fn exposure_of(
        plan: &PlannedGroup,
        members: std::ops::Range<usize>,
        standing: &Standing,
        all: &[VendorUser],
    ) -> Exposure {
        let index = UserIndex::new(all);
        let ids: Vec<String> = members.map(|i| format!("u{i}")).collect();
        let current: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let kept: Vec<Person> = (0..plan.plan.current_size as usize)
            .filter(|i| {
                !plan
                    .plan
                    .revokes
                    .iter()
                    .any(|r| r.user_id == format!("u{i}"))
            })
            .map(person)
            .collect();
        let desired: Vec<&Person> = kept.iter().collect();
        exposure(
            std::slice::from_ref(plan),
            &desired,
            &current,
            &index,
            standing,
        )
    }

    const HEALTHY: SnapshotHealth = SnapshotHealth::Complete { members: 500 };

    #[test]
    fn a_small_space_emptied_at_once_is_held_without_any_small_group_exemption() {
        let all = users(3);
        let plan = planned(0..3, 0..3);
        let exposure = exposure_of(&plan, 0..3, &Standing::default(), &all);
        assert_eq!(exposure.losing_all.len(), 3);
        assert_eq!(exposure.with_access, 3);
        let Verdict::Blocked { reason, .. } = check(&[plan], &exposure, 20, &HEALTHY, None) else {
            panic!("3 of 3 people losing everything must be held");
        };
        assert!(reason.contains("3 of the 3 people"), "{reason}");
        assert!(reason.contains("p0@example.com"), "{reason}");
    }

    #[test]
    fn people_who_keep_another_managed_group_are_not_counted() {
        let all = users(3);
        let plan = planned(0..3, 0..3);
        let standing = Standing {
            entitled_elsewhere: (0..3).map(person).collect(),
            ..Standing::default()
        };
        let exposure = exposure_of(&plan, 0..3, &standing, &all);
        assert!(exposure.losing_all.is_empty(), "{exposure:?}");
        assert_eq!(
            check(&[plan], &exposure, 0, &HEALTHY, None),
            Verdict::Allowed
        );
    }

    #[test]
    fn people_whose_time_ran_out_are_not_counted() {
        let all = users(3);
        let plan = planned(0..3, 0..3);
        let standing = Standing {
            entitled_at_last_sync: (0..3).map(person).collect(),
            ..Standing::default()
        };
        let exposure = exposure_of(&plan, 0..3, &standing, &all);
        assert_eq!(exposure.expired, 3);
        assert!(exposure.losing_all.is_empty());
        assert_eq!(
            check(&[plan], &exposure, 0, &HEALTHY, None),
            Verdict::Allowed
        );
    }

    #[test]
    fn the_share_is_of_everyone_with_access_on_the_connection() {
        // 9 people vanish from a 9-person group, but 100 others keep their access elsewhere.
        let all = users(109);
        let plan = planned(0..9, 0..9);
        let standing = Standing {
            entitled_elsewhere: (9..109).map(person).collect(),
            ..Standing::default()
        };
        let exposure = exposure_of(&plan, 0..9, &standing, &all);
        assert_eq!((exposure.losing_all.len(), exposure.with_access), (9, 109));
        assert_eq!(
            check(std::slice::from_ref(&plan), &exposure, 20, &HEALTHY, None),
            Verdict::Allowed
        );
        assert!(matches!(
            check(&[plan], &exposure, 5, &HEALTHY, None),
            Verdict::Blocked { .. }
        ));
    }

    #[test]
    fn people_about_to_be_created_count_among_those_with_access() {
        // 3 users in the group, all revoked; 3 entitled people have no vendor user yet.
        let all = users(3);
        let plan = planned(0..3, 0..3);
        let standing = Standing {
            entitled_elsewhere: (10..13).map(person).collect(),
            ..Standing::default()
        };
        let exposure = exposure_of(&plan, 0..3, &standing, &all);
        assert_eq!((exposure.losing_all.len(), exposure.with_access), (3, 6));
        assert_eq!(
            check(std::slice::from_ref(&plan), &exposure, 50, &HEALTHY, None),
            Verdict::Allowed
        );
        assert!(matches!(
            check(&[plan], &exposure, 49, &HEALTHY, None),
            Verdict::Blocked { .. }
        ));
    }

    #[test]
    fn large_removals_are_blocked_until_that_exact_plan_is_acknowledged() {
        let all = users(100);
        let plans = [planned(0..100, 0..21)];
        let exposure = exposure_of(&plans[0], 0..100, &Standing::default(), &all);
        let Verdict::Blocked { plan_id, reason } = check(&plans, &exposure, 20, &HEALTHY, None)
        else {
            panic!("21% of 100 must be blocked at 20%");
        };
        assert!(reason.contains("21 of the 100 people"), "{reason}");
        assert!(reason.contains("and 16 more"), "{reason}");
        assert_eq!(
            check(&plans, &exposure, 20, &HEALTHY, Some(&plan_id)),
            Verdict::Allowed
        );
        let other = [planned(0..100, 0..22)];
        let exposure = exposure_of(&other[0], 0..100, &Standing::default(), &all);
        assert!(
            matches!(
                check(&other, &exposure, 20, &HEALTHY, Some(&plan_id)),
                Verdict::Blocked { .. }
            ),
            "an old acknowledgement must not allow a different plan"
        );
        let fewer = [planned(0..100, 0..20)];
        let exposure = exposure_of(&fewer[0], 0..100, &Standing::default(), &all);
        assert_eq!(
            check(&fewer, &exposure, 20, &HEALTHY, None),
            Verdict::Allowed
        );
    }

    #[test]
    fn partial_or_empty_snapshots_never_revoke() {
        let all = users(100);
        let plan = planned(0..100, 0..1);
        let standing = Standing {
            entitled_at_last_sync: vec![person(0)],
            ..Standing::default()
        };
        let exposure = exposure_of(&plan, 0..100, &standing, &all);
        let plans = [plan];
        assert!(matches!(
            check(
                &plans,
                &exposure,
                100,
                &SnapshotHealth::Partial("members: 503".into()),
                None
            ),
            Verdict::Blocked { .. }
        ));
        assert!(matches!(
            check(
                &plans,
                &exposure,
                100,
                &SnapshotHealth::Complete { members: 0 },
                None
            ),
            Verdict::Blocked { .. }
        ));
        let none = [planned(0..100, 0..0)];
        assert_eq!(
            check(
                &none,
                &Exposure::default(),
                0,
                &SnapshotHealth::Partial("x".into()),
                None
            ),
            Verdict::Allowed
        );
    }
}
