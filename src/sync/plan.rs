//! The pure part of a sync: match people to vendor users and diff each managed group.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::vendors::{NewUser, VendorGroup, VendorUser};

/// Someone OfficeRnD entitles to a group.
pub type Person = NewUser;

/// How people are recognised among existing vendor users.
#[derive(Debug, Default)]
pub struct UserIndex<'a> {
    by_external_id: HashMap<&'a str, &'a VendorUser>,
    by_email: HashMap<String, Vec<&'a VendorUser>>,
}

/// People and vendor users are the same person when their emails' identities are equal (one
/// definition for the whole crate: trimmed, Unicode lower-case, NFC).
pub use crate::identity::canonical_email;

impl<'a> UserIndex<'a> {
    /// Indexes vendor users by external id (the OfficeRnD id we stored on creation) and email.
    pub fn new(users: &'a [VendorUser]) -> Self {
        let mut index = UserIndex::default();
        for user in users {
            if let Some(external_id) = user.external_id.as_deref().filter(|id| !id.is_empty()) {
                index.by_external_id.insert(external_id, user);
            }
            if let Some(email) = user.email.as_deref().and_then(canonical_email) {
                index.by_email.entry(email).or_default().push(user);
            }
        }
        index
    }

    /// Finds the vendor user for a person: by the OfficeRnD id stored on the user first (so an
    /// email changed later in OfficeRnD still finds the same account), then by email,
    /// case-insensitively. Several users with the same email is an ambiguity, not a match.
    pub fn find(&self, person: &Person) -> Lookup<'a> {
        if let Some(user) = self.by_external_id.get(person.officernd_id.as_str()) {
            return Lookup::Found(user);
        }
        let Some(email) = canonical_email(&person.email) else {
            return Lookup::Missing;
        };
        match self.by_email.get(&email).map(Vec::as_slice) {
            None | Some([]) => Lookup::Missing,
            Some([user]) => Lookup::Found(user),
            Some(several) => Lookup::Ambiguous(several.len()),
        }
    }
}

/// Result of looking a person up among vendor users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Exactly one vendor user is this person.
    Found(&'a VendorUser),
    /// No vendor user yet: one will be created.
    Missing,
    /// Several vendor users share the person's email; nobody is granted until resolved.
    Ambiguous(usize),
}

/// One person to add to a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The person.
    pub person: Person,
    /// The existing vendor user id, or `None` when the user must be created first.
    pub user_id: Option<String>,
}

/// One vendor user to remove from a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Revoke {
    /// The vendor user id.
    pub user_id: String,
    /// Who it is, for reports (email or name as the vendor holds it).
    pub label: String,
}

/// The changes that make one managed group equal to its desired members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPlan {
    /// Desired people already identified at the vendor (whether or not in the group yet).
    pub matched: u32,
    /// Desired people already in the group.
    pub kept: u32,
    /// People to add (creating their user first when needed).
    pub grants: Vec<Grant>,
    /// Users to remove: everyone in the group whom no binding entitles, including people added
    /// by hand in the vendor's dashboard (managed groups are authoritative).
    pub revokes: Vec<Revoke>,
    /// People who could not be matched, with why (ambiguous email...).
    pub problems: Vec<(String, String)>,
    /// Members matched by OfficeRnD id whose vendor email differs from OfficeRnD's. Emails are
    /// not pushed after creation (per the integration guides), so a person must update them.
    pub email_mismatches: Vec<(String, String)>,
    /// Current group size before the change.
    pub current_size: u32,
}

/// Diffs one group: `desired` people from the engine against `current_members` (vendor user ids).
pub fn plan_group(
    desired: &[Person],
    current_members: &[String],
    users: &UserIndex<'_>,
    all_users: &[VendorUser],
) -> GroupPlan {
    let current: BTreeSet<&str> = current_members.iter().map(String::as_str).collect();
    let mut plan = GroupPlan {
        current_size: u32::try_from(current.len()).unwrap_or(u32::MAX),
        ..GroupPlan::default()
    };
    let mut wanted_ids: BTreeSet<&str> = BTreeSet::new();
    let mut seen_people: BTreeSet<&str> = BTreeSet::new();
    for person in desired {
        if !seen_people.insert(person.officernd_id.as_str()) {
            continue;
        }
        match users.find(person) {
            Lookup::Found(user) => {
                plan.matched += 1;
                wanted_ids.insert(user.id.as_str());
                if let Some(vendor_email) = &user.email {
                    if canonical_email(vendor_email) != canonical_email(&person.email) {
                        plan.email_mismatches.push((person.email.clone(), vendor_email.clone()));
                    }
                }
                if current.contains(user.id.as_str()) {
                    plan.kept += 1;
                } else {
                    plan.grants.push(Grant {
                        person: person.clone(),
                        user_id: Some(user.id.clone()),
                    });
                }
            }
            Lookup::Missing => plan.grants.push(Grant {
                person: person.clone(),
                user_id: None,
            }),
            Lookup::Ambiguous(count) => plan.problems.push((
                format!("member {}", person.email),
                format!("{count} vendor users share this email; merge them at the vendor so flexgate can tell who it is"),
            )),
        }
    }
    let labels: BTreeMap<&str, &VendorUser> =
        all_users.iter().map(|u| (u.id.as_str(), u)).collect();
    for member in current {
        if !wanted_ids.contains(member) {
            let label = labels
                .get(member)
                .map(|u| u.email.clone().unwrap_or_else(|| u.name.clone()))
                .unwrap_or_else(|| format!("user {member}"));
            plan.revokes.push(Revoke {
                user_id: member.to_owned(),
                label,
            });
        }
    }
    plan
}

/// The managed group a plan is for, with its plan.
#[derive(Debug, Clone)]
pub struct PlannedGroup {
    /// The vendor group.
    pub group: VendorGroup,
    /// Its changes.
    pub plan: GroupPlan,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, email: &str, external: Option<&str>) -> VendorUser {
        VendorUser {
            id: id.into(),
            email: Some(email.into()),
            external_id: external.map(Into::into),
            name: email.into(),
        }
    }

    fn person(id: &str, email: &str) -> Person {
        Person {
            officernd_id: id.into(),
            first_name: "A".into(),
            last_name: "B".into(),
            email: email.into(),
            phone: None,
        }
    }

    #[test]
    fn matches_by_email_case_insensitively_and_by_external_id_first() {
        let users = vec![
            user("1", "Ann@Example.com", None),
            user("2", "old@example.com", Some("m2")),
        ];
        let index = UserIndex::new(&users);
        assert_eq!(
            index.find(&person("m1", " ann@example.COM ")),
            Lookup::Found(&users[0])
        );
        assert_eq!(
            index.find(&person("m2", "new@example.com")),
            Lookup::Found(&users[1])
        );
        assert_eq!(
            index.find(&person("m3", "zed@example.com")),
            Lookup::Missing
        );
    }

    #[test]
    fn non_ascii_emails_match_whatever_their_case_spaces_or_composition() {
        // The vendor holds what was typed at creation; OfficeRnD may hold another spelling of
        // the same address: upper case, spaces around it, a decomposed accent.
        let users = vec![
            user("1", "ÉVA.Ñúñez@Bücher.de", None),
            user("2", "дмитрий@почта.рф", None),
            user("3", "rene\u{301}@cafe\u{301}.fr", Some("m3")),
        ];
        let index = UserIndex::new(&users);
        assert_eq!(
            index.find(&person("m1", "  éva.ñúñez@BÜCHER.DE ")),
            Lookup::Found(&users[0])
        );
        assert_eq!(
            index.find(&person("m2", "\u{a0}ДМИТРИЙ@ПОЧТА.РФ")),
            Lookup::Found(&users[1])
        );
        assert_eq!(
            index.find(&person("m9", "eva.nunez@bucher.de")),
            Lookup::Missing,
            "a letter without its accent is another address"
        );
        assert_eq!(index.find(&person("m8", "   ")), Lookup::Missing);
        // Matched by id with the same address spelled differently: not an email change.
        let plan = plan_group(
            &[
                person("m1", "ÉVA.ÑÚÑEZ@bücher.de"),
                person("m3", "REN\u{e9}@CAF\u{e9}.FR"),
            ],
            &["1".into(), "3".into()],
            &index,
            &users,
        );
        assert_eq!(plan.kept, 2);
        assert!(plan.email_mismatches.is_empty(), "{plan:?}");
    }

    #[test]
    fn diff_adds_missing_and_removes_everyone_not_entitled() {
        let users = vec![
            user("1", "ann@example.com", None),
            user("2", "bob@example.com", None),
            user("9", "cleaner@example.com", None),
        ];
        let index = UserIndex::new(&users);
        let desired = vec![
            person("m1", "ann@example.com"),
            person("m2", "bob@example.com"),
            person("m3", "cy@example.com"),
        ];
        let plan = plan_group(&desired, &["1".into(), "9".into()], &index, &users);
        assert_eq!(plan.kept, 1);
        assert_eq!(plan.matched, 2);
        let granted: Vec<_> = plan
            .grants
            .iter()
            .map(|g| (g.person.email.as_str(), g.user_id.as_deref()))
            .collect();
        assert_eq!(
            granted,
            vec![("bob@example.com", Some("2")), ("cy@example.com", None)]
        );
        assert_eq!(
            plan.revokes,
            vec![Revoke {
                user_id: "9".into(),
                label: "cleaner@example.com".into()
            }]
        );
    }

    #[test]
    fn nothing_to_do_when_in_sync() {
        let users = vec![user("1", "ann@example.com", None)];
        let index = UserIndex::new(&users);
        let plan = plan_group(
            &[person("m1", "ann@example.com")],
            &["1".into()],
            &index,
            &users,
        );
        assert!(plan.grants.is_empty() && plan.revokes.is_empty());
    }

    #[test]
    fn duplicate_vendor_emails_are_reported_not_guessed() {
        let users = vec![
            user("1", "ann@example.com", None),
            user("2", "ANN@example.com", None),
        ];
        let index = UserIndex::new(&users);
        let plan = plan_group(&[person("m1", "ann@example.com")], &[], &index, &users);
        assert!(plan.grants.is_empty());
        assert_eq!(plan.problems.len(), 1);
        assert!(plan.problems[0]
            .1
            .contains("2 vendor users share this email"));
    }

    #[test]
    fn email_changed_in_officernd_is_reported_when_matched_by_id() {
        let users = vec![user("7", "old@example.com", Some("m1"))];
        let index = UserIndex::new(&users);
        let plan = plan_group(
            &[person("m1", "new@example.com")],
            &["7".into()],
            &index,
            &users,
        );
        assert_eq!(plan.kept, 1);
        assert_eq!(
            plan.email_mismatches,
            vec![("new@example.com".into(), "old@example.com".into())]
        );
    }
}
