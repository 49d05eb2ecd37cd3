//! The decisions of the entity sync of one site, pure: from the read state (the essensys
//! [`SiteState`], the OfficeRnD [`LocationView`], the frozen [`Matching`]) to the writes of each
//! step (floors, spaces, company occupiers, individual occupiers, standard contracts, users, Wi-Fi
//! invitations), each object linked by `externalRef` = OfficeRnD id, created when missing and
//! overwritten from OfficeRnD when changed in essensys. [`super::apply`] makes the writes.
//!
//! The steps depend on each other only through [`Links`] (a space names the essensys floor made
//! or linked by the floor step), so each step is planned from the state and the links the steps
//! before it left. A failed write is counted and reported, and the pass goes on: the next
//! reconcile picks up exactly what is missing (creates carry `externalRef`, so a create that did
//! reach essensys is found, never duplicated).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::try_join;

use crate::api::site_mapping::{Matching, Override};
use crate::api::status::Problem;
use crate::matching::canonical_email;
use crate::officernd::model::{Member, Resource};
use crate::vendors::essensys::model::{
    Contract, ContractKind, Floor, FloorUpdate, NewContract, NewFloor, NewOccupier, NewSpace,
    NewUser, Occupier, OccupierKind, OccupierUpdate, Site, SiteService, Space, SpaceUpdate, User,
    UserUpdate,
};
use crate::vendors::essensys::{EssensysApi, EssensysError};

pub use super::apply::EntityPass;
use super::proposal::{plan_entities, EntityPlan, Named};
use super::{
    company_name, floor_name, is_bookable, member_name, mobile_number, resource_name, split_name,
    LocationView,
};

/// Everything of one essensys site the sync compares against, read in one go.
#[derive(Debug, Clone)]
pub struct SiteState {
    pub site: Site,
    pub floors: Vec<Floor>,
    pub spaces: Vec<Space>,
    pub occupiers: Vec<Occupier>,
    pub contracts: Vec<Contract>,
    pub users: Vec<User>,
}

impl SiteState {
    /// Reads the site's floors, spaces, occupiers, contracts and users (all or nothing).
    pub async fn read<A: EssensysApi>(api: &A, site: Site) -> Result<Self, EssensysError> {
        let (floors, spaces, occupiers, contracts, users) = try_join!(
            api.list_floors(&site.id),
            api.list_spaces(&site.id),
            api.list_occupiers(&site.id),
            api.list_contracts(&site.id),
            api.list_users(&site.id),
        )?;
        Ok(Self {
            site,
            floors,
            spaces,
            occupiers,
            contracts,
            users,
        })
    }

    /// The seed's "no existing records (floors, spaces, or occupiers)".
    pub fn is_empty(&self) -> bool {
        self.floors.is_empty() && self.spaces.is_empty() && self.occupiers.is_empty()
    }

    pub fn floor_names(&self) -> Vec<Named> {
        self.floors
            .iter()
            .map(|f| Named {
                id: f.id.clone(),
                name: f.name.clone(),
            })
            .collect()
    }

    pub fn space_names(&self) -> Vec<Named> {
        self.spaces
            .iter()
            .map(|s| Named {
                id: s.id.clone(),
                name: s.name.clone(),
            })
            .collect()
    }

    /// Company occupiers (individual ones are people, never matched to companies by name).
    pub fn company_occupier_names(&self) -> Vec<Named> {
        self.occupiers
            .iter()
            .filter(|o| o.kind == OccupierKind::Company)
            .map(|o| Named {
                id: o.id.clone(),
                name: o.name.clone(),
            })
            .collect()
    }
}

/// OfficeRnD id → essensys id, for everything in sync after the entity pass.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// Floor id → essensys floor id.
    pub floors: HashMap<String, String>,
    /// Resource id → essensys space id.
    pub spaces: HashMap<String, String>,
    /// Company id, or member id for an individual occupier → essensys occupier id.
    pub occupiers: HashMap<String, String>,
    /// Member id → essensys user id.
    pub users: HashMap<String, String>,
    /// The member's occupier key (company id or member id) by member id.
    pub member_occupier: HashMap<String, String>,
}

/// What a planned write does to its essensys object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<U, N> {
    /// Overwrite a linked object that drifted from OfficeRnD (tallied `corrected`).
    Correct { id: String, update: U },
    /// Link an existing object matched by name, giving it `externalRef` (tallied `linked`).
    Link { id: String, update: U },
    /// Create the object (tallied `created`). A user is created only when no user holds the
    /// email at another site, which is looked up just before.
    Create(N),
}

/// One planned essensys write of the entity sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write<U, N> {
    /// The OfficeRnD key the written object is linked to once written (floor, resource, company
    /// or member id).
    pub key: String,
    /// Who it is about, for problems (e.g. `floor Level 1`).
    pub subject: String,
    pub op: Op<U, N>,
}

/// The decisions of one entity step, from the read state alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan<U, N> {
    /// Links in place before any write (OfficeRnD key → essensys id).
    pub linked: Vec<(String, String)>,
    /// Objects already as OfficeRnD says.
    pub unchanged: u32,
    /// Objects left alone on purpose (doNotMap, ambiguous, no occupier...).
    pub skipped: u32,
    /// The writes, in the order they are made.
    pub writes: Vec<Write<U, N>>,
    /// What planning found wrong.
    pub problems: Vec<Problem>,
}

impl<U, N> Default for StepPlan<U, N> {
    fn default() -> Self {
        Self {
            linked: Vec::new(),
            unchanged: 0,
            skipped: 0,
            writes: Vec::new(),
            problems: Vec::new(),
        }
    }
}

impl<U, N> StepPlan<U, N> {
    fn write(&mut self, key: &str, subject: String, op: Op<U, N>) {
        self.writes.push(Write {
            key: key.to_owned(),
            subject,
            op,
        });
    }
}

pub type FloorPlan = StepPlan<FloorUpdate, NewFloor>;
pub type SpacePlan = StepPlan<SpaceUpdate, NewSpace>;
pub type OccupierPlan = StepPlan<OccupierUpdate, NewOccupier>;

/// The user step: the writes, and the users of this site each member keeps whatever their
/// writes do (a failed correction leaves the user as it was, still in sync for invitations).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPlan {
    pub step: StepPlan<UserUpdate, NewUser>,
    /// Member id → the user already at this site.
    pub existing: HashMap<String, User>,
}

/// Standard contracts to create, by occupier key (company or member id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContractPlan {
    pub unchanged: u32,
    pub creates: Vec<(String, NewContract)>,
}

/// Matches the still unlinked OfficeRnD objects of one kind by name; an override that cannot be
/// applied skips them all, reported.
fn match_unlinked(
    kind: &'static str,
    left: &[Named],
    right: &[Named],
    overrides: &[Override],
    threshold: f64,
    problems: &mut Vec<Problem>,
) -> EntityPlan {
    match plan_entities(kind, left, right, overrides, threshold, false) {
        Ok(plan) => plan,
        Err(error) => {
            problems.push(Problem {
                subject: format!("matching {kind}"),
                message: format!("{error}; unlinked {kind} are skipped"),
            });
            EntityPlan {
                ambiguous: left.iter().map(|n| (n.id.clone(), Vec::new())).collect(),
                ..EntityPlan::default()
            }
        }
    }
}

fn skipped(plan: &EntityPlan) -> u32 {
    u32::try_from(plan.ambiguous.len() + plan.do_not_map.len()).unwrap_or(u32::MAX)
}

/// Floors: linked ones corrected when renamed, unlinked ones matched by name and linked, the rest
/// created.
pub fn plan_floors(view: &LocationView<'_>, state: &SiteState, matching: &Matching) -> FloorPlan {
    let mut step = FloorPlan::default();
    let by_ref: HashMap<&str, &Floor> = state
        .floors
        .iter()
        .filter_map(|f| Some((f.external_ref.as_deref()?, f)))
        .collect();
    let mut unlinked = Vec::new();
    for floor in &view.floors {
        let name = floor_name(floor);
        let Some(existing) = by_ref.get(floor.id.as_str()) else {
            unlinked.push(Named {
                id: floor.id.clone(),
                name,
            });
            continue;
        };
        step.linked.push((floor.id.clone(), existing.id.clone()));
        if existing.name == name {
            step.unchanged += 1;
            continue;
        }
        let update = FloorUpdate {
            name: Some(name.clone()),
            external_ref: None,
        };
        let id = existing.id.clone();
        step.write(
            &floor.id,
            format!("floor {name}"),
            Op::Correct { id, update },
        );
    }
    let candidates: Vec<Named> = state
        .floors
        .iter()
        .filter(|f| f.external_ref.is_none())
        .map(|f| Named {
            id: f.id.clone(),
            name: f.name.clone(),
        })
        .collect();
    let plan = match_unlinked(
        "floors",
        &unlinked,
        &candidates,
        &matching.floors,
        matching.threshold,
        &mut step.problems,
    );
    let name_of = |id: &str| {
        unlinked
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.name.clone())
            .unwrap_or_default()
    };
    for (orid, essid, _) in &plan.pairs {
        let update = FloorUpdate {
            name: Some(name_of(orid)),
            external_ref: Some(orid.clone()),
        };
        let id = essid.clone();
        step.write(
            orid,
            format!("floor {}", name_of(orid)),
            Op::Link { id, update },
        );
    }
    for orid in &plan.unmatched {
        let new = NewFloor {
            name: name_of(orid),
            external_ref: Some(orid.clone()),
        };
        step.write(orid, format!("floor {}", new.name), Op::Create(new));
    }
    step.skipped += skipped(&plan);
    step
}

/// Spaces: name, floor and bookability kept as OfficeRnD says; `floors` are the floor links
/// after the floor step.
pub fn plan_spaces(
    view: &LocationView<'_>,
    state: &SiteState,
    matching: &Matching,
    floors: &HashMap<String, String>,
) -> SpacePlan {
    let mut step = SpacePlan::default();
    let floor_of =
        |resource: &Resource| resource.floor.as_ref().and_then(|f| floors.get(f)).cloned();
    let by_ref: HashMap<&str, &Space> = state
        .spaces
        .iter()
        .filter_map(|s| Some((s.external_ref.as_deref()?, s)))
        .collect();
    let mut unlinked = Vec::new();
    for resource in &view.resources {
        let name = resource_name(resource);
        let bookable = is_bookable(resource);
        let Some(existing) = by_ref.get(resource.id.as_str()) else {
            unlinked.push(Named {
                id: resource.id.clone(),
                name,
            });
            continue;
        };
        step.linked.push((resource.id.clone(), existing.id.clone()));
        let update = SpaceUpdate {
            name: (existing.name != name).then(|| name.clone()),
            floor_id: floor_of(resource).filter(|f| existing.floor_id.as_ref() != Some(f)),
            bookable: (existing.bookable != bookable).then_some(bookable),
            ..SpaceUpdate::default()
        };
        if update == SpaceUpdate::default() {
            step.unchanged += 1;
            continue;
        }
        let id = existing.id.clone();
        step.write(
            &resource.id,
            format!("resource {name}"),
            Op::Correct { id, update },
        );
    }
    let candidates: Vec<Named> = state
        .spaces
        .iter()
        .filter(|s| s.external_ref.is_none())
        .map(|s| Named {
            id: s.id.clone(),
            name: s.name.clone(),
        })
        .collect();
    let plan = match_unlinked(
        "resources",
        &unlinked,
        &candidates,
        &matching.resources,
        matching.threshold,
        &mut step.problems,
    );
    for (orid, essid, _) in &plan.pairs {
        let Some(resource) = view.resource(orid) else {
            continue;
        };
        let update = SpaceUpdate {
            name: Some(resource_name(resource)),
            floor_id: floor_of(resource),
            bookable: Some(is_bookable(resource)),
            capacity: None,
            external_ref: Some(orid.clone()),
        };
        let id = essid.clone();
        step.write(
            orid,
            format!("resource {}", resource_name(resource)),
            Op::Link { id, update },
        );
    }
    for orid in &plan.unmatched {
        let Some(resource) = view.resource(orid) else {
            continue;
        };
        let new = NewSpace {
            floor_id: floor_of(resource),
            name: resource_name(resource),
            bookable: is_bookable(resource),
            capacity: None,
            external_ref: Some(orid.clone()),
        };
        step.write(orid, format!("resource {}", new.name), Op::Create(new));
    }
    step.skipped += skipped(&plan);
    step
}

/// Company occupiers: linked ones corrected (name, email), unlinked ones matched by name among
/// the unlinked company occupiers, the rest created.
pub fn plan_company_occupiers(
    view: &LocationView<'_>,
    state: &SiteState,
    matching: &Matching,
) -> OccupierPlan {
    let mut step = OccupierPlan::default();
    let by_ref = occupiers_by_ref(state);
    let mut unlinked = Vec::new();
    for company in &view.companies {
        let name = company_name(company);
        let email = usable_email(company.email.as_deref());
        let Some(existing) = by_ref.get(company.id.as_str()) else {
            unlinked.push(Named {
                id: company.id.clone(),
                name,
            });
            continue;
        };
        step.linked.push((company.id.clone(), existing.id.clone()));
        correct_occupier(&mut step, &company.id, existing, &name, email, "company");
    }
    let candidates = Named::unlinked_company_occupiers(state);
    let plan = match_unlinked(
        "companies",
        &unlinked,
        &candidates,
        &matching.companies,
        matching.threshold,
        &mut step.problems,
    );
    for (orid, essid, _) in &plan.pairs {
        let Some(company) = view.company(orid) else {
            continue;
        };
        let update = OccupierUpdate {
            name: Some(company_name(company)),
            email: usable_email(company.email.as_deref()),
            external_ref: Some(orid.clone()),
        };
        let id = essid.clone();
        step.write(
            orid,
            format!("company {}", company_name(company)),
            Op::Link { id, update },
        );
    }
    for orid in &plan.unmatched {
        let Some(company) = view.company(orid) else {
            continue;
        };
        let new = NewOccupier {
            name: company_name(company),
            kind: OccupierKind::Company,
            email: usable_email(company.email.as_deref()),
            external_ref: Some(orid.clone()),
        };
        step.write(orid, format!("company {}", new.name), Op::Create(new));
    }
    step.skipped += skipped(&plan);
    step
}

fn occupiers_by_ref(state: &SiteState) -> HashMap<&str, &Occupier> {
    state
        .occupiers
        .iter()
        .filter_map(|o| Some((o.external_ref.as_deref()?, o)))
        .collect()
}

fn correct_occupier(
    step: &mut OccupierPlan,
    key: &str,
    existing: &Occupier,
    name: &str,
    email: Option<String>,
    what: &str,
) {
    let update = occupier_drift(existing, name, email);
    if update == OccupierUpdate::default() {
        step.unchanged += 1;
        return;
    }
    let id = existing.id.clone();
    step.write(key, format!("{what} {name}"), Op::Correct { id, update });
}

/// Members without a company: an individual occupier each (seed: "created as both an individual
/// occupier and a user"). Members that cannot become users (no or shared email) get none and are
/// reported. Returns the plan and each syncable member's occupier key (its company id, else its
/// own id).
pub fn plan_individual_occupiers(
    view: &LocationView<'_>,
    state: &SiteState,
) -> (OccupierPlan, HashMap<String, String>) {
    let mut step = OccupierPlan::default();
    let mut member_occupier = HashMap::new();
    let by_ref = occupiers_by_ref(state);
    for member in syncable_members(view, &mut step.problems) {
        if let Some(company) = &member.company {
            member_occupier.insert(member.id.clone(), company.clone());
            continue;
        }
        member_occupier.insert(member.id.clone(), member.id.clone());
        let name = member_name(member);
        let email = usable_email(member.email.as_deref());
        match by_ref.get(member.id.as_str()) {
            Some(existing) => {
                step.linked.push((member.id.clone(), existing.id.clone()));
                correct_occupier(&mut step, &member.id, existing, &name, email, "member");
            }
            None => {
                let new = NewOccupier {
                    name: name.clone(),
                    kind: OccupierKind::Individual,
                    email,
                    external_ref: Some(member.id.clone()),
                };
                step.write(&member.id, format!("member {name}"), Op::Create(new));
            }
        }
    }
    (step, member_occupier)
}

/// A standard contract at this site for every occupier in sync (`occupiers`: the occupier links
/// after both occupier steps), starting on the day of the sync.
pub fn plan_contracts(
    state: &SiteState,
    occupiers: &HashMap<String, String>,
    at: DateTime<Utc>,
) -> ContractPlan {
    let covered: HashSet<&str> = state
        .contracts
        .iter()
        .filter(|c| c.kind == ContractKind::Standard)
        .map(|c| c.occupier_id.as_str())
        .collect();
    let mut wanted: Vec<(&String, &String)> = occupiers.iter().collect();
    wanted.sort();
    let mut plan = ContractPlan::default();
    for (key, occupier_id) in wanted {
        if covered.contains(occupier_id.as_str()) {
            plan.unchanged += 1;
            continue;
        }
        plan.creates.push((
            key.clone(),
            NewContract {
                occupier_id: occupier_id.clone(),
                kind: ContractKind::Standard,
                start_date: at.date_naive(),
                end_date: None,
                external_ref: Some(key.clone()),
            },
        ));
    }
    plan
}

/// A user per syncable member under its occupier (`links`: the occupier links and member
/// occupier keys after the occupier steps), matched by `externalRef`, else by email at this site;
/// a member found at neither is created (unless the email is held at another site).
pub fn plan_users(view: &LocationView<'_>, state: &SiteState, links: &Links) -> UserPlan {
    let mut plan = UserPlan::default();
    let step = &mut plan.step;
    let elumo = state.site.offers(SiteService::Elumo);
    let by_ref: HashMap<&str, &User> = state
        .users
        .iter()
        .filter_map(|u| Some((u.external_ref.as_deref()?, u)))
        .collect();
    let by_email: HashMap<String, &User> = state
        .users
        .iter()
        .filter_map(|u| Some((canonical_email(&u.email)?, u)))
        .collect();
    let mut members: Vec<(&Member, &String)> = links
        .member_occupier
        .iter()
        .filter_map(|(member, key)| Some((view.member(member)?, key)))
        .collect();
    members.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    for (member, occupier_key) in members {
        let label = member.email.clone().unwrap_or_else(|| member_name(member));
        let subject = format!("member {label}");
        let Some(occupier_id) = links.occupiers.get(occupier_key).cloned() else {
            step.skipped += 1;
            step.problems.push(Problem {
                subject,
                message: if *occupier_key == member.id {
                    "the individual occupier could not be created; retried on the next sync".to_owned()
                } else {
                    format!("company {occupier_key} is not mapped to an occupier (doNotMap, ambiguous or failed), so its members are not synced")
                },
            });
            continue;
        };
        let email = member
            .email
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let (first_name, last_name) = split_name(member);
        let mobile = match mobile_number(member.phone.as_deref()) {
            Ok(mobile) => Some(mobile),
            Err(why) => {
                if elumo {
                    step.problems.push(Problem {
                        subject: subject.clone(),
                        message: format!("{why}: unable to receive an elumo pass (the wallet pass needs SMS); add a mobile number in OfficeRnD"),
                    });
                }
                None
            }
        };
        let existing = match by_ref.get(member.id.as_str()) {
            Some(user) => Some((*user, true)),
            None => canonical_email(&email)
                .and_then(|e| by_email.get(&e))
                .map(|user| (*user, false)),
        };
        let Some((user, linked)) = existing else {
            let new = NewUser {
                occupier_id,
                email,
                first_name,
                last_name,
                mobile,
                external_ref: Some(member.id.clone()),
            };
            step.write(&member.id, subject, Op::Create(new));
            continue;
        };
        plan.existing.insert(member.id.clone(), user.clone());
        let update = UserUpdate {
            occupier_id: (user.occupier_id != occupier_id).then_some(occupier_id),
            email: (canonical_email(&user.email) != canonical_email(&email)).then(|| email.clone()),
            first_name: (user.first_name != first_name).then_some(first_name),
            last_name: (user.last_name != last_name).then_some(last_name),
            mobile: mobile.filter(|m| user.mobile.as_ref() != Some(m)),
            external_ref: (!linked).then(|| member.id.clone()),
        };
        if update == UserUpdate::default() {
            step.unchanged += 1;
            continue;
        }
        let id = user.id.clone();
        let op = if linked {
            Op::Correct { id, update }
        } else {
            Op::Link { id, update }
        };
        step.write(&member.id, subject, op);
    }
    plan
}

/// The users in sync that were never sent a Wi-Fi invitation, by user id (sent once: the
/// Platform itself also refuses a second one).
pub fn plan_invitations(users: &HashMap<String, User>) -> Vec<&User> {
    let mut pending: Vec<&User> = users
        .values()
        .filter(|u| u.wifi_invitation_sent_at.is_none())
        .collect();
    pending.sort_by(|a, b| a.id.cmp(&b.id));
    pending
}

impl Named {
    fn unlinked_company_occupiers(state: &SiteState) -> Vec<Named> {
        state
            .occupiers
            .iter()
            .filter(|o| o.kind == OccupierKind::Company && o.external_ref.is_none())
            .map(|o| Named {
                id: o.id.clone(),
                name: o.name.clone(),
            })
            .collect()
    }
}

fn occupier_drift(existing: &Occupier, name: &str, email: Option<String>) -> OccupierUpdate {
    OccupierUpdate {
        name: (existing.name != name).then(|| name.to_owned()),
        email: email.filter(|e| existing.email.as_ref() != Some(e)),
        external_ref: None,
    }
}

/// An email essensys accepts (`local@domain.tld`, no spaces), trimmed; otherwise none is sent.
fn usable_email(email: Option<&str>) -> Option<String> {
    let email = email?.trim();
    let ok = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
    });
    ok.then(|| email.to_owned())
}

/// Members that can become users: with a usable, unshared email. The others are reported.
pub fn syncable_members<'a>(
    view: &LocationView<'a>,
    problems: &mut Vec<Problem>,
) -> Vec<&'a Member> {
    let mut owners: HashMap<String, Vec<&str>> = HashMap::new();
    for member in &view.members {
        if let Some(email) = member.email.as_deref().and_then(canonical_email) {
            owners.entry(email).or_default().push(&member.id);
        }
    }
    let mut syncable = Vec::new();
    for member in &view.members {
        let name = member_name(member);
        let Some(email) = member.email.as_deref().and_then(canonical_email) else {
            problems.push(Problem {
                subject: format!("member {name}"),
                message: format!("member {} has no email address, so it cannot become an essensys user (email is the unique identifier); add one in OfficeRnD", member.id),
            });
            continue;
        };
        if usable_email(Some(&email)).is_none() {
            problems.push(Problem {
                subject: format!("member {name}"),
                message: format!(
                    "{email:?} is not an email address essensys accepts; fix it in OfficeRnD"
                ),
            });
            continue;
        }
        let sharing = owners.get(&email).map(Vec::len).unwrap_or(0);
        if sharing > 1 {
            problems.push(Problem {
                subject: format!("member {email}"),
                message: format!("{sharing} members share this email; each member needs its own email in OfficeRnD, none of them is synced until then"),
            });
            continue;
        }
        syncable.push(*member);
    }
    syncable
}
