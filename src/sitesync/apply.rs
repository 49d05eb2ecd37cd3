//! The I/O of a site sync: [`SiteWrites`], the one trait the passes speak (the writes on both
//! sides, and the few reads a pass makes once it has started), implemented over the essensys and
//! OfficeRnD clients by [`SiteClients`]; and the two passes that carry out the plans of
//! [`super::entities`] and [`super::bookings`] step by step, tallying every outcome.
//!
//! A failed write is counted and reported per entity, and the pass goes on; only a booking list
//! that cannot be read stops the booking pass (nothing is cancelled on a partial picture).

use std::collections::{HashMap, HashSet};
use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::site_mapping::Matching;
use crate::api::status::Problem;
use crate::officernd::{OfficeRndClient, OfficeRndError};
use crate::vendors::essensys::model::{
    Booking, BookingFilter, BookingUpdate, Contract, Floor, FloorUpdate, InvitationStatus,
    NewBooking, NewContract, NewFloor, NewOccupier, NewSpace, NewUser, Occupier, OccupierUpdate,
    Space, SpaceUpdate, User, UserUpdate, WifiInvitation,
};
use crate::vendors::essensys::{EssensysApi, EssensysError};

use super::bookings::{self, MirrorStep, TapStep};
use super::entities::{self, Links, Op, SiteState, StepPlan};
use super::summary::{SyncSummary, Tally};
use super::LocationView;

/// Everything a site sync does to the outside world once the state is read, bound to one
/// essensys site.
pub trait SiteWrites: Sync {
    fn create_floor(
        &self,
        floor: &NewFloor,
    ) -> impl Future<Output = Result<Floor, EssensysError>> + Send;
    fn update_floor(
        &self,
        id: &str,
        update: &FloorUpdate,
    ) -> impl Future<Output = Result<Floor, EssensysError>> + Send;
    fn create_space(
        &self,
        space: &NewSpace,
    ) -> impl Future<Output = Result<Space, EssensysError>> + Send;
    fn update_space(
        &self,
        id: &str,
        update: &SpaceUpdate,
    ) -> impl Future<Output = Result<Space, EssensysError>> + Send;
    fn create_occupier(
        &self,
        occupier: &NewOccupier,
    ) -> impl Future<Output = Result<Occupier, EssensysError>> + Send;
    fn update_occupier(
        &self,
        id: &str,
        update: &OccupierUpdate,
    ) -> impl Future<Output = Result<Occupier, EssensysError>> + Send;
    fn create_contract(
        &self,
        contract: &NewContract,
    ) -> impl Future<Output = Result<Contract, EssensysError>> + Send;
    /// The user holding `email` anywhere on the Platform, asked just before creating a user.
    fn find_user_by_email(
        &self,
        email: &str,
    ) -> impl Future<Output = Result<Option<User>, EssensysError>> + Send;
    fn create_user(
        &self,
        user: &NewUser,
    ) -> impl Future<Output = Result<User, EssensysError>> + Send;
    fn update_user(
        &self,
        id: &str,
        update: &UserUpdate,
    ) -> impl Future<Output = Result<User, EssensysError>> + Send;
    fn send_wifi_invitation(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<WifiInvitation, EssensysError>> + Send;

    fn list_bookings(
        &self,
        filter: &BookingFilter,
    ) -> impl Future<Output = Result<Vec<Booking>, EssensysError>> + Send;
    fn list_tap_to_book_bookings(
        &self,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<Booking>, EssensysError>> + Send;
    fn create_booking(
        &self,
        booking: &NewBooking,
    ) -> impl Future<Output = Result<Booking, EssensysError>> + Send;
    fn update_booking(
        &self,
        id: &str,
        update: &BookingUpdate,
    ) -> impl Future<Output = Result<Booking, EssensysError>> + Send;
    fn cancel_booking(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Booking, EssensysError>> + Send;

    /// Every OfficeRnD booking (to find those carrying our tap-to-book marker).
    fn officernd_bookings(&self)
        -> impl Future<Output = Result<Vec<Value>, OfficeRndError>> + Send;
    /// Creates a booking in OfficeRnD; the answer is the created booking.
    fn create_officernd_booking(
        &self,
        body: &Value,
    ) -> impl Future<Output = Result<Value, OfficeRndError>> + Send;
}

/// [`SiteWrites`] over the essensys client (on one site) and the OfficeRnD client.
pub struct SiteClients<'a, A> {
    pub essensys: &'a A,
    pub officernd: &'a OfficeRndClient,
    pub site_id: &'a str,
}

impl<A: EssensysApi> SiteWrites for SiteClients<'_, A> {
    async fn create_floor(&self, floor: &NewFloor) -> Result<Floor, EssensysError> {
        self.essensys.create_floor(self.site_id, floor).await
    }
    async fn update_floor(&self, id: &str, update: &FloorUpdate) -> Result<Floor, EssensysError> {
        self.essensys.update_floor(self.site_id, id, update).await
    }
    async fn create_space(&self, space: &NewSpace) -> Result<Space, EssensysError> {
        self.essensys.create_space(self.site_id, space).await
    }
    async fn update_space(&self, id: &str, update: &SpaceUpdate) -> Result<Space, EssensysError> {
        self.essensys.update_space(self.site_id, id, update).await
    }
    async fn create_occupier(&self, occupier: &NewOccupier) -> Result<Occupier, EssensysError> {
        self.essensys.create_occupier(self.site_id, occupier).await
    }
    async fn update_occupier(
        &self,
        id: &str,
        update: &OccupierUpdate,
    ) -> Result<Occupier, EssensysError> {
        self.essensys
            .update_occupier(self.site_id, id, update)
            .await
    }
    async fn create_contract(&self, contract: &NewContract) -> Result<Contract, EssensysError> {
        self.essensys.create_contract(self.site_id, contract).await
    }
    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, EssensysError> {
        self.essensys.find_user_by_email(email).await
    }
    async fn create_user(&self, user: &NewUser) -> Result<User, EssensysError> {
        self.essensys.create_user(self.site_id, user).await
    }
    async fn update_user(&self, id: &str, update: &UserUpdate) -> Result<User, EssensysError> {
        self.essensys.update_user(self.site_id, id, update).await
    }
    async fn send_wifi_invitation(&self, user_id: &str) -> Result<WifiInvitation, EssensysError> {
        self.essensys
            .send_wifi_invitation(self.site_id, user_id)
            .await
    }
    async fn list_bookings(&self, filter: &BookingFilter) -> Result<Vec<Booking>, EssensysError> {
        self.essensys.list_bookings(self.site_id, filter).await
    }
    async fn list_tap_to_book_bookings(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<Booking>, EssensysError> {
        self.essensys
            .list_tap_to_book_bookings(self.site_id, since)
            .await
    }
    async fn create_booking(&self, booking: &NewBooking) -> Result<Booking, EssensysError> {
        self.essensys.create_booking(self.site_id, booking).await
    }
    async fn update_booking(
        &self,
        id: &str,
        update: &BookingUpdate,
    ) -> Result<Booking, EssensysError> {
        self.essensys.update_booking(self.site_id, id, update).await
    }
    async fn cancel_booking(&self, id: &str) -> Result<Booking, EssensysError> {
        self.essensys.cancel_booking(self.site_id, id).await
    }
    async fn officernd_bookings(&self) -> Result<Vec<Value>, OfficeRndError> {
        self.officernd.list_bookings(None, None).await
    }
    async fn create_officernd_booking(&self, body: &Value) -> Result<Value, OfficeRndError> {
        self.officernd.create_booking(body).await
    }
}

/// One pass of the entity sync: each step planned from the state and the links so far, then
/// written; the tallies, problems and links are what it leaves.
pub struct EntityPass<'a, W> {
    pub writes: &'a W,
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

/// Which link map a step fills.
#[derive(Clone, Copy)]
enum LinkKind {
    Floors,
    Spaces,
    Occupiers,
}

impl<'a, W: SiteWrites> EntityPass<'a, W> {
    pub fn new(
        writes: &'a W,
        view: &'a LocationView<'a>,
        state: &'a SiteState,
        matching: &'a Matching,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            writes,
            view,
            state,
            matching,
            at,
            summary: SyncSummary::default(),
            problems: Vec::new(),
            links: Links::default(),
        }
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

    fn link_map(&mut self, kind: LinkKind) -> &mut HashMap<String, String> {
        match kind {
            LinkKind::Floors => &mut self.links.floors,
            LinkKind::Spaces => &mut self.links.spaces,
            LinkKind::Occupiers => &mut self.links.occupiers,
        }
    }

    fn failed(&mut self, kind: Kind, subject: String, error: &EssensysError) {
        self.tally(kind).failed += 1;
        self.problems.push(Problem {
            subject,
            message: format!("{error}; retried on the next sync"),
        });
    }

    /// Takes a step plan's counts, problems and standing links; returns its writes.
    fn begin<U, N>(
        &mut self,
        kind: Kind,
        links: LinkKind,
        plan: StepPlan<U, N>,
    ) -> Vec<entities::Write<U, N>> {
        let tally = self.tally(kind);
        tally.unchanged += plan.unchanged;
        tally.skipped += plan.skipped;
        self.problems.extend(plan.problems);
        self.link_map(links).extend(plan.linked);
        plan.writes
    }

    /// Tallies one write's outcome; a link or create links its key to the object written.
    fn record<U, N>(
        &mut self,
        kind: Kind,
        links: LinkKind,
        write: entities::Write<U, N>,
        written: Result<String, EssensysError>,
    ) {
        match (written, write.op) {
            (Err(error), _) => self.failed(kind, write.subject, &error),
            (Ok(_), Op::Correct { .. }) => self.tally(kind).corrected += 1,
            (Ok(id), Op::Link { .. }) => {
                self.tally(kind).linked += 1;
                self.link_map(links).insert(write.key, id);
            }
            (Ok(id), Op::Create(_)) => {
                self.tally(kind).created += 1;
                self.link_map(links).insert(write.key, id);
            }
        }
    }

    /// Runs every entity step in order; `invite` sends Wi-Fi invitations where the site has
    /// essensys Wi-Fi.
    pub async fn run(&mut self, invite: bool) {
        let (view, state, matching) = (self.view, self.state, self.matching);

        let plan = entities::plan_floors(view, state, matching);
        for write in self.begin(Kind::Floor, LinkKind::Floors, plan) {
            let written = match &write.op {
                Op::Correct { id, update } | Op::Link { id, update } => {
                    self.writes.update_floor(id, update).await
                }
                Op::Create(new) => self.writes.create_floor(new).await,
            };
            self.record(Kind::Floor, LinkKind::Floors, write, written.map(|f| f.id));
        }

        let plan = entities::plan_spaces(view, state, matching, &self.links.floors);
        for write in self.begin(Kind::Space, LinkKind::Spaces, plan) {
            let written = match &write.op {
                Op::Correct { id, update } | Op::Link { id, update } => {
                    self.writes.update_space(id, update).await
                }
                Op::Create(new) => self.writes.create_space(new).await,
            };
            self.record(Kind::Space, LinkKind::Spaces, write, written.map(|s| s.id));
        }

        let companies = entities::plan_company_occupiers(view, state, matching);
        self.occupiers(companies).await;
        let (individuals, member_occupier) = entities::plan_individual_occupiers(view, state);
        self.links.member_occupier = member_occupier;
        self.occupiers(individuals).await;

        self.contracts().await;
        let users = self.users().await;
        if invite
            && state
                .site
                .offers(crate::vendors::essensys::model::SiteService::Wifi)
        {
            self.invitations(&users).await;
        }
    }

    async fn occupiers(&mut self, plan: entities::OccupierPlan) {
        for write in self.begin(Kind::Occupier, LinkKind::Occupiers, plan) {
            let written = match &write.op {
                Op::Correct { id, update } | Op::Link { id, update } => {
                    self.writes.update_occupier(id, update).await
                }
                Op::Create(new) => self.writes.create_occupier(new).await,
            };
            self.record(
                Kind::Occupier,
                LinkKind::Occupiers,
                write,
                written.map(|o| o.id),
            );
        }
    }

    async fn contracts(&mut self) {
        let plan = entities::plan_contracts(self.state, &self.links.occupiers, self.at);
        self.summary.contracts.unchanged += plan.unchanged;
        for (_, new) in plan.creates {
            match self.writes.create_contract(&new).await {
                Ok(_) => self.summary.contracts.created += 1,
                Err(e) if e.code() == Some("contract_exists") => {
                    self.summary.contracts.unchanged += 1
                }
                Err(e) => self.failed(Kind::Contract, format!("occupier {}", new.occupier_id), &e),
            }
        }
    }

    /// Writes the users; returns the users now in sync by member.
    async fn users(&mut self) -> HashMap<String, User> {
        let plan = entities::plan_users(self.view, self.state, &self.links);
        let mut synced = plan.existing;
        let step = plan.step;
        self.summary.users.unchanged += step.unchanged;
        self.summary.users.skipped += step.skipped;
        self.problems.extend(step.problems);
        for write in step.writes {
            let (id, update, linking) = match write.op {
                Op::Correct { id, update } => (id, update, false),
                Op::Link { id, update } => (id, update, true),
                Op::Create(new) => {
                    self.create_user(write.key, write.subject, new, &mut synced)
                        .await;
                    continue;
                }
            };
            match self.writes.update_user(&id, &update).await {
                Ok(user) => {
                    if linking {
                        self.summary.users.linked += 1;
                    } else {
                        self.summary.users.corrected += 1;
                    }
                    synced.insert(write.key, user);
                }
                // The user stays as it was, still in sync for its invitation.
                Err(e) => self.failed(Kind::User, write.subject, &e),
            }
        }
        for (member, user) in &synced {
            self.links.users.insert(member.clone(), user.id.clone());
        }
        synced
    }

    /// Creates a member's user, unless a user at another site holds the email (emails are unique
    /// across the Platform): that is reported, not created.
    async fn create_user(
        &mut self,
        member: String,
        subject: String,
        new: NewUser,
        synced: &mut HashMap<String, User>,
    ) {
        match self.writes.find_user_by_email(&new.email).await {
            Ok(None) => match self.writes.create_user(&new).await {
                Ok(user) => {
                    self.summary.users.created += 1;
                    synced.insert(member, user);
                }
                Err(e) => self.failed(Kind::User, subject, &e),
            },
            Ok(Some(elsewhere)) => {
                self.summary.users.skipped += 1;
                self.problems.push(Problem {
                    subject,
                    message: format!("essensys user {} already holds this email at another site (emails are unique across the Platform); give that user's occupier a contract here or change the email", elsewhere.id),
                });
            }
            Err(e) => self.failed(Kind::User, subject, &e),
        }
    }

    async fn invitations(&mut self, users: &HashMap<String, User>) {
        for user in entities::plan_invitations(users) {
            match self.writes.send_wifi_invitation(&user.id).await {
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

/// The booking pass: reads the essensys bookings, plans and makes the tap-to-book back-sync, then
/// plans and makes the mirror.
pub struct BookingPass<'a, W> {
    pub writes: &'a W,
    pub view: &'a LocationView<'a>,
    pub links: &'a Links,
    pub at: DateTime<Utc>,
    /// Tap-to-book bookings created before this (the approval of the mapping) are ignored.
    pub taps_since: DateTime<Utc>,
}

/// Why a booking pass stopped before changing anything: a list it compares against could not be
/// read (nothing is cancelled or created on a partial picture).
#[derive(Debug, thiserror::Error)]
pub enum BookingsNotSynced {
    /// The essensys bookings could not be listed.
    #[error("bookings not synced: {0}")]
    Essensys(#[source] EssensysError),
    /// The OfficeRnD bookings (to find those we created from taps) could not be read.
    #[error("tap-to-book bookings not synced: reading OfficeRnD bookings failed: {0}")]
    OfficeRnd(#[source] OfficeRndError),
}

impl<W: SiteWrites> BookingPass<'_, W> {
    /// Runs the tap-to-book back-sync, then the mirror. A list that cannot be read stops the pass
    /// (nothing is cancelled on a partial picture) and is returned as an error.
    pub async fn run(
        &self,
        summary: &mut SyncSummary,
        problems: &mut Vec<Problem>,
    ) -> Result<(), BookingsNotSynced> {
        let current = self
            .writes
            .list_bookings(&bookings::current_window(self.at))
            .await
            .map_err(BookingsNotSynced::Essensys)?;
        let taps = self
            .writes
            .list_tap_to_book_bookings(self.taps_since)
            .await
            .map_err(BookingsNotSynced::Essensys)?;
        let fresh = self.back_sync(&taps, summary, problems).await?;
        self.mirror(&current, &fresh, summary, problems).await;
        Ok(())
    }

    /// Creates unlinked tap-to-book bookings in OfficeRnD; returns the OfficeRnD ids created or
    /// recovered in this pass (not yet in the snapshot the mirror compares with).
    async fn back_sync(
        &self,
        taps: &[Booking],
        summary: &mut SyncSummary,
        problems: &mut Vec<Problem>,
    ) -> Result<HashSet<String>, BookingsNotSynced> {
        let mut fresh = HashSet::new();
        let unlinked = bookings::unlinked_taps(taps);
        if unlinked.is_empty() {
            return Ok(fresh);
        }
        let all = self
            .writes
            .officernd_bookings()
            .await
            .map_err(BookingsNotSynced::OfficeRnd)?;
        let marked = bookings::marked_bookings(&all);
        for step in bookings::plan_back_sync(&unlinked, &marked, self.view, self.links) {
            let (tap_id, officernd_id) = match step {
                TapStep::Skip(problem) => {
                    summary.bookings.skipped += 1;
                    problems.push(problem);
                    continue;
                }
                TapStep::Link {
                    tap_id,
                    officernd_id,
                } => (tap_id, officernd_id),
                TapStep::Create { tap_id, body } => {
                    let subject = format!("tap-to-book booking {tap_id}");
                    let created = match self.writes.create_officernd_booking(&body).await {
                        Ok(created) => created,
                        Err(e) => {
                            summary.bookings.failed += 1;
                            problems.push(Problem {
                                subject,
                                message: format!(
                                    "not created in OfficeRnD: {e}; retried on the next sync"
                                ),
                            });
                            continue;
                        }
                    };
                    let Some(id) = created.get("_id").and_then(Value::as_str) else {
                        summary.bookings.failed += 1;
                        problems.push(Problem {
                            subject,
                            message: "OfficeRnD answered the booking create without an _id; check the OfficeRnD calendar before the next sync".to_owned(),
                        });
                        continue;
                    };
                    summary.officernd_bookings_created += 1;
                    (tap_id, id.to_owned())
                }
            };
            fresh.insert(officernd_id.clone());
            let update = BookingUpdate {
                external_ref: Some(officernd_id),
                ..BookingUpdate::default()
            };
            match self.writes.update_booking(&tap_id, &update).await {
                Ok(_) => summary.bookings.linked += 1,
                Err(e) => {
                    summary.bookings.failed += 1;
                    problems.push(Problem {
                        subject: format!("tap-to-book booking {tap_id}"),
                        message: format!("created in OfficeRnD but not linked in essensys: {e}; linked on the next sync (never created twice)"),
                    });
                }
            }
        }
        Ok(fresh)
    }

    async fn mirror(
        &self,
        current: &[Booking],
        fresh: &HashSet<String>,
        summary: &mut SyncSummary,
        problems: &mut Vec<Problem>,
    ) {
        let plan = bookings::plan_mirror(self.view, self.links, current, fresh, self.at);
        problems.extend(plan.problems);
        for step in plan.steps {
            match step {
                MirrorStep::Unchanged => summary.bookings.unchanged += 1,
                MirrorStep::Update {
                    booking_id,
                    update,
                    label,
                } => match self.writes.update_booking(&booking_id, &update).await {
                    Ok(_) => summary.bookings.corrected += 1,
                    Err(e) => {
                        summary.bookings.failed += 1;
                        problems.push(Problem {
                            subject: format!("booking {label}"),
                            message: format!(
                                "not updated in essensys: {e}; retried on the next sync"
                            ),
                        });
                    }
                },
                MirrorStep::CancelledCopy { label } => {
                    summary.bookings.skipped += 1;
                    problems.push(Problem {
                        subject: format!("booking {label}"),
                        message: "its essensys copy was cancelled and a cancelled booking cannot be restored; book it again in OfficeRnD".to_owned(),
                    });
                }
                MirrorStep::Create { new, label } => match self.writes.create_booking(&new).await {
                    Ok(_) => summary.bookings.created += 1,
                    Err(e) => {
                        summary.bookings.failed += 1;
                        problems.push(Problem {
                            subject: format!("booking {label}"),
                            message: format!(
                                "not mirrored to essensys: {e}; retried on the next sync"
                            ),
                        });
                    }
                },
                MirrorStep::Cancel {
                    booking_id,
                    reference,
                } => match self.writes.cancel_booking(&booking_id).await {
                    Ok(_) => summary.bookings_cancelled += 1,
                    Err(e) => {
                        summary.bookings.failed += 1;
                        problems.push(Problem {
                            subject: format!("booking {reference}"),
                            message: format!("cancelled or moved in OfficeRnD but not cancelled in essensys: {e}; retried on the next sync"),
                        });
                    }
                },
            }
        }
    }
}
