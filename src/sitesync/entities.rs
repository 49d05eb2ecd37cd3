//! The entity sync of one site: floors, spaces, company occupiers, individual occupiers, standard
//! contracts, users and Wi-Fi invitations, each linked by `externalRef` = OfficeRnD id, created
//! when missing and overwritten from OfficeRnD when changed in essensys.
//!
//! A failed write is counted and reported, and the pass goes on: the next reconcile picks up
//! exactly what is missing (creates carry `externalRef`, so a create that did reach essensys is
//! found, never duplicated).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use futures::try_join;

use crate::api::site_mapping::Matching;
use crate::api::status::Problem;
use crate::matching::canonical_email;
use crate::officernd::model::Member;
use crate::vendors::essensys::model::{
    Contract, ContractKind, Floor, FloorUpdate, InvitationStatus, NewContract, NewFloor,
    NewOccupier, NewSpace, NewUser, Occupier, OccupierKind, OccupierUpdate, Site, SiteService,
    Space, SpaceUpdate, User, UserUpdate,
};
use crate::vendors::essensys::{EssensysApi, EssensysError};

use super::proposal::{plan_entities, EntityPlan, Named};
use super::summary::{SyncSummary, Tally};
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

/// One pass of the entity sync: the site, the location, what was found and what was done.
pub struct EntityPass<'a, A> {
    pub api: &'a A,
    pub view: &'a LocationView<'a>,
    pub state: &'a SiteState,
    pub matching: &'a Matching,
    pub at: DateTime<Utc>,
    pub summary: SyncSummary,
    pub problems: Vec<Problem>,
    pub links: Links,
}

#[derive(Clone, Copy)]
enum Kind {
    Floor,
    Space,
    Occupier,
    Contract,
    User,
}

impl<'a, A: EssensysApi> EntityPass<'a, A> {
    pub fn new(
        api: &'a A,
        view: &'a LocationView<'a>,
        state: &'a SiteState,
        matching: &'a Matching,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            api,
            view,
            state,
            matching,
            at,
            summary: SyncSummary::default(),
            problems: Vec::new(),
            links: Links::default(),
        }
    }

    fn site_id(&self) -> &str {
        &self.state.site.id
    }

    fn tally(&mut self, kind: Kind) -> &mut Tally {
        match kind {
            Kind::Floor => &mut self.summary.floors,
            Kind::Space => &mut self.summary.spaces,
            Kind::Occupier => &mut self.summary.occupiers,
            Kind::Contract => &mut self.summary.contracts,
            Kind::User => &mut self.summary.users,
        }
    }

    fn failed(&mut self, kind: Kind, subject: String, error: &EssensysError) {
        self.tally(kind).failed += 1;
        self.problems.push(Problem {
            subject,
            message: format!("{error}; retried on the next sync"),
        });
    }

    fn plan(
        &mut self,
        kind: &'static str,
        left: &[Named],
        right: &[Named],
        overrides: &[crate::api::site_mapping::Override],
    ) -> EntityPlan {
        match plan_entities(kind, left, right, overrides, self.matching.threshold, false) {
            Ok(plan) => plan,
            Err(error) => {
                self.problems.push(Problem {
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

    /// Runs every entity step in order; `invite` sends Wi-Fi invitations where the site has
    /// essensys Wi-Fi.
    pub async fn run(&mut self, invite: bool) {
        self.floors().await;
        self.spaces().await;
        self.company_occupiers().await;
        self.individual_occupiers().await;
        self.contracts().await;
        let users = self.users().await;
        if invite && self.state.site.offers(SiteService::Wifi) {
            self.invitations(&users).await;
        }
    }

    async fn floors(&mut self) {
        let (view, state) = (self.view, self.state);
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
            self.links
                .floors
                .insert(floor.id.clone(), existing.id.clone());
            if existing.name == name {
                self.tally(Kind::Floor).unchanged += 1;
                continue;
            }
            let update = FloorUpdate {
                name: Some(name.clone()),
                external_ref: None,
            };
            match self
                .api
                .update_floor(self.site_id(), &existing.id, &update)
                .await
            {
                Ok(_) => self.tally(Kind::Floor).corrected += 1,
                Err(e) => self.failed(Kind::Floor, format!("floor {name}"), &e),
            }
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
        let overrides = self.matching.floors.clone();
        let plan = self.plan("floors", &unlinked, &candidates, &overrides);
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
            match self.api.update_floor(self.site_id(), essid, &update).await {
                Ok(floor) => {
                    self.tally(Kind::Floor).linked += 1;
                    self.links.floors.insert(orid.clone(), floor.id);
                }
                Err(e) => self.failed(Kind::Floor, format!("floor {}", name_of(orid)), &e),
            }
        }
        for orid in &plan.unmatched {
            let new = NewFloor {
                name: name_of(orid),
                external_ref: Some(orid.clone()),
            };
            match self.api.create_floor(self.site_id(), &new).await {
                Ok(floor) => {
                    self.tally(Kind::Floor).created += 1;
                    self.links.floors.insert(orid.clone(), floor.id);
                }
                Err(e) => self.failed(Kind::Floor, format!("floor {}", new.name), &e),
            }
        }
        self.tally(Kind::Floor).skipped += (plan.ambiguous.len() + plan.do_not_map.len()) as u32;
    }

    async fn spaces(&mut self) {
        let (view, state) = (self.view, self.state);
        let by_ref: HashMap<&str, &Space> = state
            .spaces
            .iter()
            .filter_map(|s| Some((s.external_ref.as_deref()?, s)))
            .collect();
        let mut unlinked = Vec::new();
        for resource in &view.resources {
            let name = resource_name(resource);
            let floor_id = resource
                .floor
                .as_ref()
                .and_then(|f| self.links.floors.get(f))
                .cloned();
            let bookable = is_bookable(resource);
            let Some(existing) = by_ref.get(resource.id.as_str()) else {
                unlinked.push(Named {
                    id: resource.id.clone(),
                    name,
                });
                continue;
            };
            self.links
                .spaces
                .insert(resource.id.clone(), existing.id.clone());
            let update = SpaceUpdate {
                name: (existing.name != name).then(|| name.clone()),
                floor_id: floor_id.filter(|f| existing.floor_id.as_ref() != Some(f)),
                bookable: (existing.bookable != bookable).then_some(bookable),
                ..SpaceUpdate::default()
            };
            if update == SpaceUpdate::default() {
                self.tally(Kind::Space).unchanged += 1;
                continue;
            }
            match self
                .api
                .update_space(self.site_id(), &existing.id, &update)
                .await
            {
                Ok(_) => self.tally(Kind::Space).corrected += 1,
                Err(e) => self.failed(Kind::Space, format!("resource {name}"), &e),
            }
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
        let overrides = self.matching.resources.clone();
        let plan = self.plan("resources", &unlinked, &candidates, &overrides);
        for (orid, essid, _) in &plan.pairs {
            let Some(resource) = view.resource(orid) else {
                continue;
            };
            let update = SpaceUpdate {
                name: Some(resource_name(resource)),
                floor_id: resource
                    .floor
                    .as_ref()
                    .and_then(|f| self.links.floors.get(f))
                    .cloned(),
                bookable: Some(is_bookable(resource)),
                capacity: None,
                external_ref: Some(orid.clone()),
            };
            match self.api.update_space(self.site_id(), essid, &update).await {
                Ok(space) => {
                    self.tally(Kind::Space).linked += 1;
                    self.links.spaces.insert(orid.clone(), space.id);
                }
                Err(e) => self.failed(
                    Kind::Space,
                    format!("resource {}", resource_name(resource)),
                    &e,
                ),
            }
        }
        for orid in &plan.unmatched {
            let Some(resource) = view.resource(orid) else {
                continue;
            };
            let new = NewSpace {
                floor_id: resource
                    .floor
                    .as_ref()
                    .and_then(|f| self.links.floors.get(f))
                    .cloned(),
                name: resource_name(resource),
                bookable: is_bookable(resource),
                capacity: None,
                external_ref: Some(orid.clone()),
            };
            match self.api.create_space(self.site_id(), &new).await {
                Ok(space) => {
                    self.tally(Kind::Space).created += 1;
                    self.links.spaces.insert(orid.clone(), space.id);
                }
                Err(e) => self.failed(Kind::Space, format!("resource {}", new.name), &e),
            }
        }
        self.tally(Kind::Space).skipped += (plan.ambiguous.len() + plan.do_not_map.len()) as u32;
    }

    async fn company_occupiers(&mut self) {
        let (view, state) = (self.view, self.state);
        let by_ref: HashMap<&str, &Occupier> = state
            .occupiers
            .iter()
            .filter_map(|o| Some((o.external_ref.as_deref()?, o)))
            .collect();
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
            self.links
                .occupiers
                .insert(company.id.clone(), existing.id.clone());
            let update = occupier_drift(existing, &name, email);
            self.correct_occupier(existing, update, format!("company {name}"))
                .await;
        }
        let candidates = Named::unlinked_company_occupiers(state);
        let overrides = self.matching.companies.clone();
        let plan = self.plan("companies", &unlinked, &candidates, &overrides);
        for (orid, essid, _) in &plan.pairs {
            let Some(company) = view.company(orid) else {
                continue;
            };
            let update = OccupierUpdate {
                name: Some(company_name(company)),
                email: usable_email(company.email.as_deref()),
                external_ref: Some(orid.clone()),
            };
            match self
                .api
                .update_occupier(self.site_id(), essid, &update)
                .await
            {
                Ok(occupier) => {
                    self.tally(Kind::Occupier).linked += 1;
                    self.links.occupiers.insert(orid.clone(), occupier.id);
                }
                Err(e) => self.failed(
                    Kind::Occupier,
                    format!("company {}", company_name(company)),
                    &e,
                ),
            }
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
            self.create_occupier(orid, new, format!("company {}", company_name(company)))
                .await;
        }
        self.tally(Kind::Occupier).skipped += (plan.ambiguous.len() + plan.do_not_map.len()) as u32;
    }

    async fn create_occupier(&mut self, key: &str, new: NewOccupier, subject: String) {
        match self.api.create_occupier(self.site_id(), &new).await {
            Ok(occupier) => {
                self.tally(Kind::Occupier).created += 1;
                self.links.occupiers.insert(key.to_owned(), occupier.id);
            }
            Err(e) => self.failed(Kind::Occupier, subject, &e),
        }
    }

    async fn correct_occupier(
        &mut self,
        existing: &Occupier,
        update: OccupierUpdate,
        subject: String,
    ) {
        if update == OccupierUpdate::default() {
            self.tally(Kind::Occupier).unchanged += 1;
            return;
        }
        match self
            .api
            .update_occupier(self.site_id(), &existing.id, &update)
            .await
        {
            Ok(_) => self.tally(Kind::Occupier).corrected += 1,
            Err(e) => self.failed(Kind::Occupier, subject, &e),
        }
    }

    /// Members without a company: an individual occupier each (seed: "created as both an
    /// individual occupier and a user"). Members that cannot become users (no or shared email)
    /// get none.
    async fn individual_occupiers(&mut self) {
        let (view, state) = (self.view, self.state);
        let by_ref: HashMap<&str, &Occupier> = state
            .occupiers
            .iter()
            .filter_map(|o| Some((o.external_ref.as_deref()?, o)))
            .collect();
        let syncable = syncable_members(view, &mut self.problems);
        for member in syncable {
            if let Some(company) = &member.company {
                self.links
                    .member_occupier
                    .insert(member.id.clone(), company.clone());
                continue;
            }
            self.links
                .member_occupier
                .insert(member.id.clone(), member.id.clone());
            let name = member_name(member);
            let email = usable_email(member.email.as_deref());
            match by_ref.get(member.id.as_str()) {
                Some(existing) => {
                    self.links
                        .occupiers
                        .insert(member.id.clone(), existing.id.clone());
                    let update = occupier_drift(existing, &name, email);
                    self.correct_occupier(existing, update, format!("member {name}"))
                        .await;
                }
                None => {
                    let new = NewOccupier {
                        name: name.clone(),
                        kind: OccupierKind::Individual,
                        email,
                        external_ref: Some(member.id.clone()),
                    };
                    self.create_occupier(&member.id, new, format!("member {name}"))
                        .await;
                }
            }
        }
    }

    /// A standard contract at this site for every occupier in sync.
    async fn contracts(&mut self) {
        let state = self.state;
        let covered: HashSet<&str> = state
            .contracts
            .iter()
            .filter(|c| c.kind == ContractKind::Standard)
            .map(|c| c.occupier_id.as_str())
            .collect();
        let mut wanted: Vec<(String, String)> = self
            .links
            .occupiers
            .iter()
            .map(|(key, id)| (key.clone(), id.clone()))
            .collect();
        wanted.sort();
        for (key, occupier_id) in wanted {
            if covered.contains(occupier_id.as_str()) {
                self.tally(Kind::Contract).unchanged += 1;
                continue;
            }
            let new = NewContract {
                occupier_id: occupier_id.clone(),
                kind: ContractKind::Standard,
                start_date: self.at.date_naive(),
                end_date: None,
                external_ref: Some(key.clone()),
            };
            match self.api.create_contract(self.site_id(), &new).await {
                Ok(_) => self.tally(Kind::Contract).created += 1,
                Err(e) if e.code() == Some("contract_exists") => {
                    self.tally(Kind::Contract).unchanged += 1
                }
                Err(e) => self.failed(Kind::Contract, format!("occupier {occupier_id}"), &e),
            }
        }
    }

    /// A user per syncable member under its occupier; returns the users now in sync by member.
    async fn users(&mut self) -> HashMap<String, User> {
        let (view, state) = (self.view, self.state);
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
        let mut synced = HashMap::new();
        let mut members: Vec<(&Member, String)> = self
            .links
            .member_occupier
            .iter()
            .filter_map(|(member, key)| Some((view.member(member)?, key.clone())))
            .collect();
        members.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        for (member, occupier_key) in members {
            let label = member.email.clone().unwrap_or_else(|| member_name(member));
            let Some(occupier_id) = self.links.occupiers.get(&occupier_key).cloned() else {
                self.tally(Kind::User).skipped += 1;
                self.problems.push(Problem {
                    subject: format!("member {label}"),
                    message: if occupier_key == member.id {
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
                        self.problems.push(Problem {
                            subject: format!("member {label}"),
                            message: format!("{why}: unable to receive an elumo pass (the wallet pass needs SMS); add a mobile number in OfficeRnD"),
                        });
                    }
                    None
                }
            };
            let existing = match by_ref.get(member.id.as_str()) {
                Some(user) => Some(((*user).clone(), true)),
                None => canonical_email(&email)
                    .and_then(|e| by_email.get(&e))
                    .map(|user| ((*user).clone(), false)),
            };
            let existing = match existing {
                Some(found) => Some(found),
                None => match self.api.find_user_by_email(&email).await {
                    Ok(None) => None,
                    Ok(Some(elsewhere)) => {
                        self.tally(Kind::User).skipped += 1;
                        self.problems.push(Problem {
                            subject: format!("member {label}"),
                            message: format!("essensys user {} already holds this email at another site (emails are unique across the Platform); give that user's occupier a contract here or change the email", elsewhere.id),
                        });
                        continue;
                    }
                    Err(e) => {
                        self.failed(Kind::User, format!("member {label}"), &e);
                        continue;
                    }
                },
            };
            match existing {
                Some((user, linked)) => {
                    let update = UserUpdate {
                        occupier_id: (user.occupier_id != occupier_id).then_some(occupier_id),
                        email: (canonical_email(&user.email) != canonical_email(&email))
                            .then(|| email.clone()),
                        first_name: (user.first_name != first_name).then_some(first_name),
                        last_name: (user.last_name != last_name).then_some(last_name),
                        mobile: mobile.filter(|m| user.mobile.as_ref() != Some(m)),
                        external_ref: (!linked).then(|| member.id.clone()),
                    };
                    if update == UserUpdate::default() {
                        self.tally(Kind::User).unchanged += 1;
                        synced.insert(member.id.clone(), user);
                        continue;
                    }
                    match self
                        .api
                        .update_user(self.site_id(), &user.id, &update)
                        .await
                    {
                        Ok(user) => {
                            let tally = self.tally(Kind::User);
                            if linked {
                                tally.corrected += 1;
                            } else {
                                tally.linked += 1;
                            }
                            synced.insert(member.id.clone(), user);
                        }
                        Err(e) => {
                            self.failed(Kind::User, format!("member {label}"), &e);
                            synced.insert(member.id.clone(), user);
                        }
                    }
                }
                None => {
                    let new = NewUser {
                        occupier_id,
                        email,
                        first_name,
                        last_name,
                        mobile,
                        external_ref: Some(member.id.clone()),
                    };
                    match self.api.create_user(self.site_id(), &new).await {
                        Ok(user) => {
                            self.tally(Kind::User).created += 1;
                            synced.insert(member.id.clone(), user);
                        }
                        Err(e) => self.failed(Kind::User, format!("member {label}"), &e),
                    }
                }
            }
        }
        for (member, user) in &synced {
            self.links.users.insert(member.clone(), user.id.clone());
        }
        synced
    }

    /// Each synced user's Wi-Fi invitation, once: users that were sent one are skipped, and the
    /// Platform itself refuses to send twice.
    async fn invitations(&mut self, users: &HashMap<String, User>) {
        let mut pending: Vec<&User> = users
            .values()
            .filter(|u| u.wifi_invitation_sent_at.is_none())
            .collect();
        pending.sort_by(|a, b| a.id.cmp(&b.id));
        for user in pending {
            match self
                .api
                .send_wifi_invitation(self.site_id(), &user.id)
                .await
            {
                Ok(invitation) if invitation.status == InvitationStatus::Sent => {
                    self.summary.wifi_invitations_sent += 1
                }
                Ok(_) => {}
                Err(e) => {
                    self.summary.users.failed += 1;
                    self.problems.push(Problem {
                        subject: format!("member {}", user.email),
                        message: format!(
                            "Wi-Fi invitation not sent: {e}; retried on the next sync"
                        ),
                    });
                }
            }
        }
    }
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
