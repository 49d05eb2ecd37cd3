//! Member → user matching by exact email, as the essensys mapping screen reports it: a count of
//! matched members plus the problems to fix, never the individual matches.
//!
//! Emails are compared by their identity ([`crate::identity::canonical_email`]: trimmed, Unicode
//! lower-case, NFC), the same one the engine and the door sync use (essensys uses the email as the
//! user's unique identifier).

use std::collections::{HashMap, HashSet};

/// A person on either side: OfficeRnD member or essensys user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub email: Option<String>,
}

/// A problem that prevents members from being matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailMatchError {
    #[error("member {member_id} has no email address; add one in OfficeRnD so it can be matched")]
    MemberWithoutEmail { member_id: String },
    #[error(
        "members {member_ids:?} share the email {email}; each member needs its own email in OfficeRnD"
    )]
    DuplicateMemberEmail {
        email: String,
        member_ids: Vec<String>,
    },
    #[error(
        "essensys users {user_ids:?} share the email {email}; remove the duplicate user in essensys"
    )]
    DuplicateUserEmail {
        email: String,
        user_ids: Vec<String>,
    },
    #[error("member {member_id} ({email}) has no essensys user with that email")]
    NoUserWithEmail { member_id: String, email: String },
}

/// Outcome of [`match_emails`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailMatchReport {
    /// Members matched to exactly one user.
    pub matched: usize,
    /// Problems, in member order (duplicate-user problems at the first member that hits them).
    pub errors: Vec<EmailMatchError>,
}

pub use crate::identity::canonical_email;

/// Matches each member to the user with the same canonical email.
///
/// A member is matched only when its email is unique among members and among users. Users without
/// an email, and users no member points at, are not errors (essensys may hold other users).
pub fn match_emails(members: &[Person], users: &[Person]) -> EmailMatchReport {
    let mut users_by_email: HashMap<String, Vec<&str>> = HashMap::new();
    for user in users {
        if let Some(email) = user.email.as_deref().and_then(canonical_email) {
            users_by_email.entry(email).or_default().push(&user.id);
        }
    }
    let mut members_by_email: HashMap<String, Vec<&str>> = HashMap::new();
    let member_emails: Vec<Option<String>> = members
        .iter()
        .map(|m| m.email.as_deref().and_then(canonical_email))
        .collect();
    for (member, email) in members.iter().zip(&member_emails) {
        if let Some(email) = email {
            members_by_email
                .entry(email.clone())
                .or_default()
                .push(&member.id);
        }
    }

    let mut report = EmailMatchReport::default();
    let mut reported_emails: HashSet<&str> = HashSet::new();
    for (member, email) in members.iter().zip(&member_emails) {
        let Some(email) = email else {
            report.errors.push(EmailMatchError::MemberWithoutEmail {
                member_id: member.id.clone(),
            });
            continue;
        };
        let owners = members_by_email
            .get(email)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let users = users_by_email
            .get(email)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if owners.len() > 1 {
            if reported_emails.insert(email) {
                report.errors.push(EmailMatchError::DuplicateMemberEmail {
                    email: email.clone(),
                    member_ids: owners.iter().map(|id| id.to_string()).collect(),
                });
            }
        } else if users.len() > 1 {
            if reported_emails.insert(email) {
                report.errors.push(EmailMatchError::DuplicateUserEmail {
                    email: email.clone(),
                    user_ids: users.iter().map(|id| id.to_string()).collect(),
                });
            }
        } else if users.is_empty() {
            report.errors.push(EmailMatchError::NoUserWithEmail {
                member_id: member.id.clone(),
                email: email.clone(),
            });
        } else {
            report.matched += 1;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(id: &str, email: &str) -> Person {
        Person {
            id: id.into(),
            email: Some(email.into()),
        }
    }

    #[test]
    fn non_ascii_members_match_users_whatever_their_case_spaces_or_composition() {
        let members = [
            person("m1", " ÉVA@Bücher.DE "),
            person("m2", "ДМИТРИЙ@ПОЧТА.РФ"),
            person("m3", "rene\u{301}@cafe\u{301}.fr"),
            person("m4", "ÅSA@example.se"),
            person("m5", "åsa@EXAMPLE.se\t"),
        ];
        let users = [
            person("u1", "éva@bücher.de"),
            person("u2", "\u{a0}дмитрий@почта.рф"),
            person("u3", "REN\u{c9}@CAF\u{c9}.FR"),
        ];
        let report = match_emails(&members, &users);
        assert_eq!(report.matched, 3, "{report:?}");
        // Two spellings of one address among members are one address used twice.
        assert_eq!(
            report.errors,
            vec![EmailMatchError::DuplicateMemberEmail {
                email: "åsa@example.se".into(),
                member_ids: vec!["m4".into(), "m5".into()],
            }]
        );
    }
}
