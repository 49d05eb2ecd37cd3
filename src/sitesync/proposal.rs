//! The proposed mapping of a location to a site: floors, resources and companies matched by name
//! (the matcher, with the spec's threshold and overrides), members matched to users by exact
//! email (a count and the problems, never the individual matches), and the fingerprint that says
//! which matching settings an approved mapping was saved with.

use std::collections::{BTreeMap, HashSet};

use sha2::{Digest, Sha256};

use crate::api::site_mapping::{
    AmbiguousName, EntityMatches, MappingProposal, MatchedPair, Matching, Override, SiteMappingSpec,
};
use crate::api::status::Problem;
use crate::matching::MatchedVia;
use crate::matching::{
    self, match_emails, EmailMatchError, MatchOptions, OverrideTarget, Person, DEFAULT_MARGIN,
};
use crate::vendors::essensys::model::User;

use super::{company_name, floor_name, resource_name, LocationView};

/// Entries kept per list in a proposal (totals stay exact).
pub const MAX_LISTED: usize = 50;
/// Candidates kept per ambiguous name.
pub const MAX_CANDIDATES: usize = 5;

/// One object on either side: its id and the name it is matched by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// The decision for every OfficeRnD object of one kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityPlan {
    /// (OfficeRnD id, essensys id, score).
    pub pairs: Vec<(String, String, f64)>,
    /// OfficeRnD ids with no essensys counterpart: created by the sync.
    pub unmatched: Vec<String>,
    /// OfficeRnD ids with several close candidates (their essensys names): skipped.
    pub ambiguous: Vec<(String, Vec<String>)>,
    /// OfficeRnD ids overridden with `doNotMap`: skipped.
    pub do_not_map: Vec<String>,
    /// Names that occur more than once on one side, so they cannot be matched by name.
    pub duplicate_names: Vec<String>,
}

/// Why the spec's overrides cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProposalError {
    #[error("spec.matching.{kind}: {source}")]
    Matching {
        kind: &'static str,
        #[source]
        source: matching::MatchError,
    },
}

/// Matches `left` (OfficeRnD) to `right` (essensys) by name with `overrides`.
///
/// Overrides may name either side by name or by id. With `strict`, an override naming something
/// absent is an error (the proposal: the person must fix the spec); without it such overrides are
/// dropped (the sync after approval, where linked objects have left both lists). Names occurring
/// more than once on a side are taken out of name matching: duplicate OfficeRnD names count as
/// unmatched (they are created), duplicate essensys names are no candidates.
pub fn plan_entities(
    kind: &'static str,
    left: &[Named],
    right: &[Named],
    overrides: &[Override],
    threshold: f64,
    strict: bool,
) -> Result<EntityPlan, ProposalError> {
    let mut plan = EntityPlan::default();
    let left_dupes = duplicates(left);
    let right_dupes = duplicates(right);
    plan.duplicate_names = left_dupes.iter().chain(&right_dupes).cloned().collect();
    plan.duplicate_names.sort();
    plan.duplicate_names.dedup();
    let left_unique: Vec<&Named> = left
        .iter()
        .filter(|n| !left_dupes.contains(&n.name))
        .collect();
    let right_unique: Vec<&Named> = right
        .iter()
        .filter(|n| !right_dupes.contains(&n.name))
        .collect();
    let resolve = |side: &[&Named], text: &str| -> Option<String> {
        side.iter()
            .find(|n| n.name == text)
            .or_else(|| side.iter().find(|n| n.id == text))
            .map(|n| n.name.clone())
    };
    // Duplicated names cannot be told apart by an override either: they stay out of matching.
    let mut rules = Vec::new();
    for rule in overrides {
        let Some(left_name) = resolve(&left_unique, &rule.officernd) else {
            if strict
                && !left
                    .iter()
                    .any(|n| n.name == rule.officernd || n.id == rule.officernd)
            {
                return Err(ProposalError::Matching {
                    kind,
                    source: matching::MatchError::UnknownOverrideLeft(rule.officernd.clone()),
                });
            }
            continue;
        };
        let target = if rule.do_not_map {
            OverrideTarget::DoNotMap
        } else {
            let wanted = rule.essensys.clone().unwrap_or_default();
            match resolve(&right_unique, &wanted) {
                Some(right_name) => OverrideTarget::Right(right_name),
                None if strict => {
                    return Err(ProposalError::Matching {
                        kind,
                        source: matching::MatchError::UnknownOverrideRight {
                            left: rule.officernd.clone(),
                            right: wanted,
                        },
                    })
                }
                None => continue,
            }
        };
        rules.push(matching::Override {
            left: left_name,
            target,
        });
    }
    let options = MatchOptions {
        threshold,
        margin: DEFAULT_MARGIN.min(threshold / 2.0),
        overrides: rules,
    };
    let left_names: Vec<&str> = left_unique.iter().map(|n| n.name.as_str()).collect();
    let right_names: Vec<&str> = right_unique.iter().map(|n| n.name.as_str()).collect();
    let result = matching::match_names(&left_names, &right_names, &options)
        .map_err(|source| ProposalError::Matching { kind, source })?;
    let left_id = |name: &str| {
        left_unique
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.id.clone())
            .unwrap_or_default()
    };
    let right_id = |name: &str| {
        right_unique
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.id.clone())
            .unwrap_or_default()
    };
    plan.pairs = result
        .pairs
        .iter()
        .map(|p| {
            // A person chose this pair: report it as certain (the status field's contract).
            let score = if p.via == MatchedVia::Override {
                1.0
            } else {
                p.score
            };
            (left_id(&p.left), right_id(&p.right), score)
        })
        .collect();
    plan.unmatched = result.unmatched_left.iter().map(|n| left_id(n)).collect();
    plan.unmatched.extend(
        left.iter()
            .filter(|n| left_dupes.contains(&n.name))
            .map(|n| n.id.clone()),
    );
    plan.ambiguous = result
        .ambiguous
        .iter()
        .map(|a| {
            (
                left_id(&a.left),
                a.candidates.iter().map(|c| c.right.clone()).collect(),
            )
        })
        .collect();
    plan.do_not_map = result.do_not_map.iter().map(|n| left_id(n)).collect();
    Ok(plan)
}

fn duplicates(names: &[Named]) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut twice = HashSet::new();
    for named in names {
        if !seen.insert(named.name.as_str()) {
            twice.insert(named.name.clone());
        }
    }
    twice
}

/// The plan as status shows it (lists capped at [`MAX_LISTED`]).
pub fn entity_matches(plan: &EntityPlan, left: &[Named], right: &[Named]) -> EntityMatches {
    let left_name = |id: &str| name_of(left, id);
    let right_name = |id: &str| name_of(right, id);
    EntityMatches {
        matched_count: u32::try_from(plan.pairs.len()).unwrap_or(u32::MAX),
        matched: plan
            .pairs
            .iter()
            .take(MAX_LISTED)
            .map(|(l, r, score)| MatchedPair {
                officernd: left_name(l),
                essensys: right_name(r),
                score: (score * 1000.0).round() / 1000.0,
            })
            .collect(),
        unmatched: plan
            .unmatched
            .iter()
            .take(MAX_LISTED)
            .map(|id| left_name(id))
            .collect(),
        ambiguous: plan
            .ambiguous
            .iter()
            .take(MAX_LISTED)
            .map(|(id, candidates)| AmbiguousName {
                officernd: left_name(id),
                candidates: candidates.iter().take(MAX_CANDIDATES).cloned().collect(),
            })
            .collect(),
    }
}

fn name_of(side: &[Named], id: &str) -> String {
    side.iter()
        .find(|n| n.id == id)
        .map(|n| n.name.clone())
        .unwrap_or_else(|| id.to_owned())
}

/// The OfficeRnD side of each kind, as matched.
pub fn officernd_floors(view: &LocationView<'_>) -> Vec<Named> {
    view.floors
        .iter()
        .map(|f| Named {
            id: f.id.clone(),
            name: floor_name(f),
        })
        .collect()
}

pub fn officernd_resources(view: &LocationView<'_>) -> Vec<Named> {
    view.resources
        .iter()
        .map(|r| Named {
            id: r.id.clone(),
            name: resource_name(r),
        })
        .collect()
}

pub fn officernd_companies(view: &LocationView<'_>) -> Vec<Named> {
    view.companies
        .iter()
        .map(|c| Named {
            id: c.id.clone(),
            name: company_name(c),
        })
        .collect()
}

/// Members matched to the site's users by exact email, and the problems found.
pub fn member_matches(view: &LocationView<'_>, users: &[User]) -> (u32, Vec<Problem>) {
    let members: Vec<Person> = view
        .members
        .iter()
        .map(|m| Person {
            id: m.id.clone(),
            email: m.email.clone(),
        })
        .collect();
    let users: Vec<Person> = users
        .iter()
        .map(|u| Person {
            id: u.id.clone(),
            email: Some(u.email.clone()),
        })
        .collect();
    let report = match_emails(&members, &users);
    let names: BTreeMap<&str, String> = view
        .members
        .iter()
        .map(|m| (m.id.as_str(), super::member_name(m)))
        .collect();
    let label = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let problems = report
        .errors
        .iter()
        .map(|error| match error {
            EmailMatchError::MemberWithoutEmail { member_id } => Problem {
                subject: format!("member {}", label(member_id)),
                message: format!("member {member_id} has no email address, so it cannot become an essensys user (email is the unique identifier); add one in OfficeRnD"),
            },
            EmailMatchError::DuplicateMemberEmail { email, member_ids } => Problem {
                subject: format!("member {email}"),
                message: format!("members {} share this email; each member needs its own email in OfficeRnD, none of them is synced until then", member_ids.join(", ")),
            },
            EmailMatchError::DuplicateUserEmail { email, user_ids } => Problem {
                subject: format!("member {email}"),
                message: format!("essensys users {} share this email; remove the duplicate user in essensys", user_ids.join(", ")),
            },
            EmailMatchError::NoUserWithEmail { member_id, email } => Problem {
                subject: format!("member {email}"),
                message: format!("no essensys user has this email yet; the sync will create one for member {}", label(member_id)),
            },
        })
        .collect();
    (u32::try_from(report.matched).unwrap_or(u32::MAX), problems)
}

/// The three entity plans of a proposal and the proposal as status shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub floors: EntityPlan,
    pub resources: EntityPlan,
    pub companies: EntityPlan,
    pub status: MappingProposal,
    /// Member email problems and duplicate-name notes.
    pub problems: Vec<Problem>,
}

/// Proposes the mapping of `view` onto the site's floors, spaces, occupiers and users.
pub fn propose(
    view: &LocationView<'_>,
    matching: &Matching,
    floors: &[Named],
    spaces: &[Named],
    occupiers: &[Named],
    users: &[User],
) -> Result<Proposal, ProposalError> {
    let threshold = matching.threshold;
    let left_floors = officernd_floors(view);
    let left_resources = officernd_resources(view);
    let left_companies = officernd_companies(view);
    let floor_plan = plan_entities(
        "floors",
        &left_floors,
        floors,
        &matching.floors,
        threshold,
        true,
    )?;
    let resource_plan = plan_entities(
        "resources",
        &left_resources,
        spaces,
        &matching.resources,
        threshold,
        true,
    )?;
    let company_plan = plan_entities(
        "companies",
        &left_companies,
        occupiers,
        &matching.companies,
        threshold,
        true,
    )?;
    let (members_matched, mut problems) = member_matches(view, users);
    for (kind, plan) in [
        ("floor", &floor_plan),
        ("resource", &resource_plan),
        ("company", &company_plan),
    ] {
        for name in &plan.duplicate_names {
            problems.push(Problem {
                subject: format!("{kind} {name}"),
                message: format!("several {kind} objects on one side are named {name:?}, so they cannot be matched by name: such OfficeRnD objects are created in essensys, such essensys objects are left alone; rename one of them to match it"),
            });
        }
        for (id, candidates) in &plan.ambiguous {
            problems.push(Problem {
                subject: format!("{kind} {}", name_of_any(view, id)),
                message: format!("several essensys candidates ({}); add an override in spec.matching, it is skipped otherwise", candidates.join(", ")),
            });
        }
    }
    let status = MappingProposal {
        floors: entity_matches(&floor_plan, &left_floors, floors),
        resources: entity_matches(&resource_plan, &left_resources, spaces),
        companies: entity_matches(&company_plan, &left_companies, occupiers),
        members_matched,
    };
    Ok(Proposal {
        floors: floor_plan,
        resources: resource_plan,
        companies: company_plan,
        status,
        problems,
    })
}

fn name_of_any(view: &LocationView<'_>, id: &str) -> String {
    view.floors
        .iter()
        .find(|f| f.id == id)
        .map(|f| floor_name(f))
        .or_else(|| view.resource(id).map(resource_name))
        .or_else(|| view.company(id).map(company_name))
        .unwrap_or_else(|| id.to_owned())
}

/// A stable fingerprint of what an approved mapping freezes: the matching settings and
/// `provisionEmptySite`. `sha256:` and 16 hex digits.
pub fn fingerprint(spec: &SiteMappingSpec) -> String {
    let frozen = serde_json::json!({
        "matching": spec.matching,
        "provisionEmptySite": spec.provision_empty_site,
    });
    let digest = Sha256::digest(frozen.to_string().as_bytes());
    format!("sha256:{}", &hex::encode(digest)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(items: &[(&str, &str)]) -> Vec<Named> {
        items
            .iter()
            .map(|(id, name)| Named {
                id: id.to_string(),
                name: name.to_string(),
            })
            .collect()
    }

    #[test]
    fn overrides_by_id_and_lenient_mode_drop_vanished_names() {
        let left = named(&[("r1", "Elephant"), ("r2", "Room 1")]);
        let right = named(&[("s1", "Meeting Room 3 (Elephant)"), ("s2", "Room 10")]);
        let rules = vec![Override {
            officernd: "r1".into(),
            essensys: Some("s1".into()),
            do_not_map: false,
        }];
        let plan = plan_entities("resources", &left, &right, &rules, 0.8, true).unwrap();
        assert_eq!(plan.pairs.len(), 1);
        assert_eq!(
            (plan.pairs[0].0.as_str(), plan.pairs[0].1.as_str()),
            ("r1", "s1")
        );
        assert_eq!(plan.unmatched, vec!["r2".to_string()]);

        let gone = vec![Override {
            officernd: "Nope".into(),
            essensys: None,
            do_not_map: true,
        }];
        assert!(plan_entities("resources", &left, &right, &gone, 0.8, true).is_err());
        assert!(plan_entities("resources", &left, &right, &gone, 0.8, false).is_ok());
    }

    #[test]
    fn duplicate_names_are_left_out_of_matching() {
        let left = named(&[("a", "Desk 1"), ("b", "Desk 1"), ("c", "Desk 2")]);
        let right = named(&[("x", "Desk 1"), ("y", "Desk 2")]);
        let plan = plan_entities("resources", &left, &right, &[], 0.8, true).unwrap();
        assert_eq!(plan.pairs, vec![("c".into(), "y".into(), 1.0)]);
        assert_eq!(plan.unmatched, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(plan.duplicate_names, vec!["Desk 1".to_string()]);
    }
}
