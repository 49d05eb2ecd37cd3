//! Reconciles one SiteMapping without knowing where it came from (a cluster or a folder): read
//! the essensys site, then follow the lifecycle rules of [`crate::sitesync::lifecycle`] (propose
//! and wait for approval, save the mapping frozen, provision an empty site once), then sync the
//! site from OfficeRnD ([`crate::sitesync`]); the result becomes status and Events. The saved
//! mapping lives in `status.savedMapping`, the one-time provisioning in `status.provisionedTime`.
//! The host-independent pipeline around it (suspension, the status shape, Events, metrics) is
//! `reconcile::site_mapping`.

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::api::conditions::Reason;
use crate::api::site_mapping::{MappingProposal, SiteMapping, SiteMappingStatus};
use crate::api::status::{cap_problems, Counts, Problem};
use crate::api::Vendor;
use crate::clock::Clock;
use crate::officernd::model::Snapshot;
use crate::officernd::{snapshot, OfficeRndClient};
use crate::sitesync::apply::SiteClients;
use crate::sitesync::bookings::BookingPass;
use crate::sitesync::entities::{EntityPass, SiteState};
use crate::sitesync::lifecycle::{self, Approval, Provisioning};
use crate::sitesync::proposal::{fingerprint, propose, Proposal};
use crate::sitesync::{LocationView, SyncSummary};
use crate::vendors::essensys::model::{Site, SiteService};
use crate::vendors::essensys::{EssensysApi, EssensysError};

use super::objects::Objects;
use super::reconcile::errors::{essensys_reason, location_reason, officernd_reason};
use super::reconcile::{instant, reasons, BuildError, Stop};
use super::status::{conditions, Outcome};
use super::{clients, credentials};

pub use crate::sitesync::lifecycle::SavedMapping;
/// The Event reason emitted when an approved mapping is saved.
pub const MAPPING_SAVED: &str = reasons::MAPPING_SAVED;

/// An Event to emit for this reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteMappingEvent {
    /// `MappingSaved`, `SiteProvisioned`, `SyncStarted` or `SyncCompleted` (see
    /// [`reasons`]).
    pub reason: &'static str,
    /// A Warning Event (some entities failed) instead of a Normal one.
    pub warning: bool,
    pub message: String,
}

/// What reconciling a SiteMapping found and did, ready to become its status and Events.
#[derive(Debug, Clone)]
pub struct SiteMappingResult {
    /// Ready / Reconciling / Stalled.
    pub outcome: Outcome,
    /// The proposal (before approval) or the saved mapping (after).
    pub proposal: Option<MappingProposal>,
    /// Set once the mapping is saved.
    pub saved: Option<SavedMapping>,
    /// When the one-time provisioning of an empty site ran.
    pub provisioned_time: Option<DateTime<Utc>>,
    /// Services detected on the site (`Wifi`, `Elumo`).
    pub services: Vec<String>,
    /// Before approval: matched pairs + members matched, unmatched and ambiguous names. After a
    /// sync: `matched` = floors, spaces, occupiers and users in sync, `granted` = users in sync,
    /// `unmatched` = entities skipped (doNotMap, ambiguous, no email), `errors` = failed writes.
    pub counts: Counts,
    /// Problems (capped at 50) and how many were left out.
    pub problems: (Vec<Problem>, u32),
    /// When the site was last synced.
    pub last_sync_time: Option<DateTime<Utc>>,
    /// What this reconcile's sync did (None when it did not sync).
    pub summary: Option<SyncSummary>,
    /// Events to emit.
    pub events: Vec<SiteMappingEvent>,
}

impl SiteMappingResult {
    /// A result that keeps everything `previous` recorded (proposal, saved mapping, provisioning,
    /// services, counts, problems, last sync) with a new outcome.
    pub fn carry(previous: Option<&SiteMappingStatus>, outcome: Outcome) -> Self {
        let previous = previous.cloned().unwrap_or_default();
        Self {
            saved: saved_mapping(&previous),
            outcome,
            proposal: previous.proposal,
            provisioned_time: previous.provisioned_time.as_ref().map(from_time),
            services: previous.services,
            counts: previous.counts,
            problems: (previous.problems, previous.problems_omitted.unwrap_or(0)),
            last_sync_time: previous.last_sync_time.as_ref().map(from_time),
            summary: None,
            events: Vec::new(),
        }
    }

    /// The status for this result: kstatus conditions (transition times kept from `previous`),
    /// the saved mapping once saved; times in whole seconds.
    pub fn status(
        &self,
        generation: Option<i64>,
        now: DateTime<Utc>,
        previous: Option<&SiteMappingStatus>,
    ) -> SiteMappingStatus {
        let previous_conditions = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
        let all = conditions(&self.outcome, generation, to_time(now), previous_conditions);
        SiteMappingStatus {
            observed_generation: generation,
            conditions: all,
            last_sync_time: self.last_sync_time.map(to_time),
            last_handled_reconcile_at: previous.and_then(|p| p.last_handled_reconcile_at.clone()),
            proposal: self.proposal.clone(),
            saved_mapping: self.saved.as_ref().map(|saved| {
                crate::api::site_mapping::SavedMapping {
                    fingerprint: saved.fingerprint.clone(),
                    time: to_time(saved.at),
                }
            }),
            provisioned_time: self.provisioned_time.map(to_time),
            services: self.services.clone(),
            counts: self.counts.clone(),
            problems: self.problems.0.clone(),
            problems_omitted: (self.problems.1 > 0).then_some(self.problems.1),
        }
    }
}

/// The saved mapping recorded in `status`, if any.
pub fn saved_mapping(status: &SiteMappingStatus) -> Option<SavedMapping> {
    status.saved_mapping.as_ref().map(|saved| SavedMapping {
        at: from_time(&saved.time),
        fingerprint: saved.fingerprint.clone(),
    })
}

fn to_time(at: DateTime<Utc>) -> Time {
    super::reconcile::stamp(at)
}

fn from_time(time: &Time) -> DateTime<Utc> {
    instant(time)
}

/// Outcomes that wait for a person without being failures: not retried, not stalled.
fn waiting(reason: Reason, message: String) -> Outcome {
    Outcome {
        ready: false,
        reason,
        message,
        retrying: false,
    }
}

fn essensys_failure(
    previous: Option<&SiteMappingStatus>,
    error: &EssensysError,
) -> SiteMappingResult {
    SiteMappingResult::carry(
        previous,
        Outcome::not_ready(
            essensys_reason(error),
            format!("nothing was changed: {error}"),
        ),
    )
}

/// Reconciles `mapping` at `at`: `snapshot` is a complete OfficeRnD read, `essensys` and
/// `officernd` the clients of the two referenced connections, `previous` the current status.
pub async fn reconcile<A: EssensysApi>(
    mapping: &SiteMapping,
    objects: &Objects,
    snapshot: &Snapshot,
    essensys: &A,
    officernd: &OfficeRndClient,
    at: DateTime<Utc>,
    previous: Option<&SiteMappingStatus>,
) -> SiteMappingResult {
    let spec = &mapping.spec;
    if spec.suspend {
        return SiteMappingResult::carry(
            previous,
            waiting(
                Reason::Suspended,
                "spec.suspend is true: nothing is read or written".to_owned(),
            ),
        );
    }
    if let Err(stop) = check_connections(mapping, objects) {
        return SiteMappingResult::carry(previous, stop.outcome());
    }
    let saved = previous.and_then(saved_mapping);
    let current_fingerprint = fingerprint(spec);
    if let Some(saved) = &saved {
        if let Err(changed) = lifecycle::check_frozen(saved, spec.approved, &current_fingerprint) {
            return SiteMappingResult::carry(
                previous,
                Outcome::not_ready(Reason::FrozenMappingChanged, changed.to_string()),
            );
        }
    }
    let view = match LocationView::select(snapshot, &spec.location) {
        Ok(view) => view,
        Err(error) => {
            return SiteMappingResult::carry(
                previous,
                Outcome::not_ready(location_reason(&error), error.to_string()),
            );
        }
    };
    let sites = match essensys.list_sites().await {
        Ok(sites) => sites,
        Err(error) => return essensys_failure(previous, &error),
    };
    let site = match find_site(&sites, &spec.site) {
        Ok(site) => site.clone(),
        Err(refused) => return SiteMappingResult::carry(previous, refused),
    };
    let services = service_names(&site);
    let state = match SiteState::read(essensys, site).await {
        Ok(state) => state,
        Err(error) => return essensys_failure(previous, &error),
    };

    let mut result = SiteMappingResult::carry(previous, Outcome::ready(Reason::Synced, ""));
    result.services = services;
    if saved.is_none() {
        let proposal = match propose(
            &view,
            &spec.matching,
            &state.floor_names(),
            &state.space_names(),
            &state.company_occupier_names(),
            &state.users,
        ) {
            Ok(proposal) => proposal,
            Err(error) => {
                let mut result = SiteMappingResult::carry(
                    previous,
                    Outcome::not_ready(
                        Reason::InvalidSpec,
                        format!("{error}; nothing was proposed or written"),
                    ),
                );
                result.services = service_names(&state.site);
                return result;
            }
        };
        result.counts = proposal_counts(&proposal);
        result.problems = cap_problems(proposal.problems.clone());
        result.proposal = Some(proposal.status.clone());
        let summary = proposal_summary(&proposal.status);
        let decision =
            lifecycle::approval(spec.approved, state.is_empty(), spec.provision_empty_site);
        if decision == Approval::AwaitApproval {
            let empty_note = if state.is_empty() {
                format!(" The essensys site {:?} is empty: approving with provisionEmptySite: true creates all floors, resources and companies of {:?} in essensys, once; this cannot be undone.", state.site.name, view.name())
            } else {
                String::new()
            };
            result.outcome = waiting(
                Reason::AwaitingApproval,
                format!(
                    "proposed mapping of {:?} to {:?}: {summary}. Review status.proposal (add spec.matching overrides for what is unmatched or ambiguous), then set spec.approved: true to save it; saved mappings are frozen.{empty_note}",
                    view.name(),
                    state.site.name
                ),
            );
            return result;
        }
        if decision == Approval::RefuseEmptySite {
            result.outcome = Outcome::not_ready(
                Reason::InvalidSpec,
                format!(
                    "the essensys site {:?} has no floors, spaces or occupiers and provisionEmptySite is false, so nothing was saved or created. If it is a new site, delete and recreate this SiteMapping with provisionEmptySite: true (creates all floors, resources and companies of {:?} once, irreversibly); otherwise set the site up in essensys first",
                    state.site.name,
                    view.name()
                ),
            );
            return result;
        }
        result.saved = Some(SavedMapping {
            at,
            fingerprint: current_fingerprint,
        });
        result.events.push(SiteMappingEvent {
            reason: MAPPING_SAVED,
            warning: false,
            message: format!(
                "mapping of {:?} to {:?} saved: {summary}",
                view.name(),
                state.site.name
            ),
        });
    }

    let rule = lifecycle::provisioning(
        state.is_empty(),
        result.provisioned_time,
        spec.provision_empty_site,
    );
    let provisioning = rule == Provisioning::Provision;
    match rule {
        Provisioning::AlreadyProvisioned(when) => {
            result.outcome = Outcome::not_ready(
                Reason::InvalidSpec,
                format!(
                    "the essensys site {:?} was provisioned on {} and is empty again; provisioning runs once and never twice, so nothing was created. Restore the site in essensys, or delete and recreate this SiteMapping",
                    state.site.name,
                    when.to_rfc3339()
                ),
            );
            return result;
        }
        Provisioning::NotAllowed => {
            result.outcome = Outcome::not_ready(
                Reason::InvalidSpec,
                format!(
                    "the essensys site {:?} has no floors, spaces or occupiers any more and provisionEmptySite is false, so nothing was created; set the site up in essensys again",
                    state.site.name
                ),
            );
            return result;
        }
        Provisioning::NotNeeded | Provisioning::Provision => {}
    }

    let first_sync = result.last_sync_time.is_none();
    if first_sync {
        result.events.push(SiteMappingEvent {
            reason: reasons::SYNC_STARTED,
            warning: false,
            message: format!(
                "sync of {:?} to {:?} started{}",
                view.name(),
                state.site.name,
                if provisioning {
                    " (one-time provisioning of the empty site)"
                } else {
                    ""
                }
            ),
        });
    }
    let writes = SiteClients {
        essensys,
        officernd,
        site_id: &state.site.id,
    };
    let mut pass = EntityPass::new(&writes, &view, &state, &spec.matching, at);
    pass.run(spec.sync.auto_send_wifi_invitations).await;
    let EntityPass {
        mut summary,
        mut problems,
        links,
        ..
    } = pass;
    if spec.sync.sync_calendar_bookings && state.site.offers(SiteService::Elumo) {
        let bookings = BookingPass {
            writes: &writes,
            view: &view,
            links: &links,
            at,
            taps_since: lifecycle::taps_since(result.saved.as_ref(), at),
        };
        if let Err(error) = bookings.run(&mut summary, &mut problems).await {
            summary.bookings.failed += 1;
            problems.push(Problem {
                subject: format!("site {}", state.site.name),
                message: error.to_string(),
            });
        }
    }
    if lifecycle::provisioned(rule, summary.created()) {
        summary.provisioned = true;
        result.provisioned_time = Some(at);
        result.events.push(SiteMappingEvent {
            reason: reasons::SITE_PROVISIONED,
            warning: false,
            message: format!(
                "the empty essensys site {:?} was provisioned from {:?} (once; it never runs again): {} floors, {} spaces, {} occupiers created",
                state.site.name,
                view.name(),
                summary.floors.created,
                summary.spaces.created,
                summary.occupiers.created
            ),
        });
    }

    let skipped: u32 = summary.tallies().iter().map(|(_, t)| t.skipped).sum();
    result.counts = Counts {
        matched: summary.floors.in_sync()
            + summary.spaces.in_sync()
            + summary.occupiers.in_sync()
            + summary.users.in_sync(),
        granted: summary.users.in_sync(),
        pending: 0,
        unmatched: skipped,
        errors: summary.failed(),
    };
    result.problems = cap_problems(problems);
    let failed = summary.failed();
    result.last_sync_time =
        lifecycle::last_sync_time(result.last_sync_time, at, summary.writes(), failed);
    result.outcome = if failed > 0 {
        Outcome::not_ready(
            Reason::PartialFailure,
            format!(
                "{failed} writes failed (see problems); the rest was synced and failed ones are retried: {summary}"
            ),
        )
    } else {
        Outcome::ready(
            Reason::Synced,
            format!(
                "{:?} synced to {:?}: {} writes, {} drift corrected (details in the SyncCompleted event)",
                view.name(),
                state.site.name,
                summary.writes(),
                summary.drift_corrected()
            ),
        )
    };
    if lifecycle::worth_an_event(first_sync, summary.writes(), failed) {
        result.events.push(SiteMappingEvent {
            reason: reasons::SYNC_COMPLETED,
            warning: failed > 0,
            message: format!(
                "sync of {:?} to {:?} completed: {summary}",
                view.name(),
                state.site.name
            ),
        });
    }
    result.summary = Some(summary);
    result
}

/// The referenced connections exist and are of the right vendors.
pub fn check_connections(mapping: &SiteMapping, objects: &Objects) -> Result<(), Stop> {
    let namespace = mapping.namespace().unwrap_or_default();
    for (field, name, vendor) in [
        (
            "officerndRef",
            &mapping.spec.officernd_ref.name,
            Vendor::OfficeRnD,
        ),
        (
            "essensysRef",
            &mapping.spec.essensys_ref.name,
            Vendor::Essensys,
        ),
    ] {
        let connection =
            objects
                .connection(&namespace, name)
                .ok_or_else(|| Stop::ConnectionNotFound {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    field,
                })?;
        if connection.spec.vendor != vendor {
            return Err(Stop::WrongVendor {
                namespace: namespace.clone(),
                name: name.clone(),
                field,
                found: connection.spec.vendor.to_string(),
                wanted: vendor.to_string(),
            });
        }
    }
    Ok(())
}

/// The site `wanted` names: its id, else its exact name; else the outcome saying why not.
fn find_site<'a>(sites: &'a [Site], wanted: &str) -> Result<&'a Site, Outcome> {
    if let Some(site) = sites.iter().find(|s| s.id == wanted) {
        return Ok(site);
    }
    let named: Vec<&Site> = sites.iter().filter(|s| s.name == wanted).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(Outcome::not_ready(
            Reason::ReferenceNotFound,
            format!(
                "essensys has no site {wanted:?} visible to this Platform user (sites: {})",
                sites
                    .iter()
                    .map(|s| format!("{:?}", s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        many => Err(Outcome::not_ready(
            Reason::AmbiguousReference,
            format!(
                "{} essensys sites are named {wanted:?}; set spec.site to the id ({})",
                many.len(),
                many.iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn service_names(site: &Site) -> Vec<String> {
    let mut names: Vec<String> = site
        .services
        .iter()
        .filter_map(|s| match s {
            SiteService::Wifi => Some("Wifi".to_owned()),
            SiteService::Elumo => Some("Elumo".to_owned()),
            SiteService::Other => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn proposal_counts(proposal: &Proposal) -> Counts {
    let plans = [&proposal.floors, &proposal.resources, &proposal.companies];
    let total = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Counts {
        matched: plans.iter().map(|p| total(p.pairs.len())).sum::<u32>()
            + proposal.status.members_matched,
        granted: 0,
        pending: 0,
        unmatched: plans
            .iter()
            .map(|p| total(p.unmatched.len() + p.ambiguous.len()))
            .sum(),
        errors: 0,
    }
}

fn proposal_summary(proposal: &MappingProposal) -> String {
    let part = |name: &str, m: &crate::api::site_mapping::EntityMatches| {
        format!(
            "{name} {} matched, {} unmatched (created on sync), {} ambiguous",
            m.matched_count,
            m.unmatched.len(),
            m.ambiguous.len()
        )
    };
    format!(
        "{}; {}; {}; {} members matched by email",
        part("floors", &proposal.floors),
        part("resources", &proposal.resources),
        part("companies", &proposal.companies),
        proposal.members_matched
    )
}

/// Resolves the two connections of `mapping`, builds their clients, reads OfficeRnD and
/// reconciles: the whole reconcile for callers that hold only the objects (the runner, the CLI).
/// `shared_officernd`, when given, is the OfficeRnD client to use (the operator passes the one
/// its shared picture reads with, so one organization has one token and one rate limit).
pub async fn run(
    mapping: &SiteMapping,
    objects: &Objects,
    at: DateTime<Utc>,
    previous: Option<&SiteMappingStatus>,
    clock: &Clock,
    shared_officernd: Option<OfficeRndClient>,
) -> SiteMappingResult {
    let namespace = mapping.namespace().unwrap_or_default();
    if let Err(stop) = check_connections(mapping, objects) {
        return SiteMappingResult::carry(previous, stop.outcome());
    }
    let build = move || -> Result<(OfficeRndClient, crate::vendors::essensys::EssensysClient), BuildError> {
        let lookup = |name: &str, field: &'static str| {
            let connection = objects.connection(&namespace, name).ok_or_else(|| {
                Stop::ConnectionNotFound {
                    namespace: namespace.clone(),
                    name: name.to_owned(),
                    field,
                }
            })?;
            let secret = objects.secret(&namespace, &connection.spec.credentials_secret_ref.name);
            let credentials = credentials::read(connection, &namespace, secret)?;
            Ok::<_, BuildError>((connection, credentials))
        };
        let settings = |name: &str, source| BuildError::Settings {
            connection: format!("{namespace}/{name}"),
            source,
        };
        let officernd = match shared_officernd {
            Some(client) => client,
            None => {
                let name = &mapping.spec.officernd_ref.name;
                let (connection, creds) = lookup(name, "officerndRef")?;
                clients::officernd(connection, &creds).map_err(|e| settings(name, e))?
            }
        };
        let name = &mapping.spec.essensys_ref.name;
        let (connection, creds) = lookup(name, "essensysRef")?;
        let essensys =
            clients::essensys(connection, &creds, clock.clone()).map_err(|e| settings(name, e))?;
        Ok((officernd, essensys))
    };
    let (officernd, essensys) = match build() {
        Ok(clients) => clients,
        Err(error) => return SiteMappingResult::carry(previous, error.outcome()),
    };
    let reads = super::context::site_mapping_reads(mapping);
    let snapshot = match snapshot::fetch(&officernd, reads).await {
        Ok(snapshot) => snapshot,
        Err(error) => {
            return SiteMappingResult::carry(
                previous,
                Outcome::not_ready(
                    officernd_reason(&error),
                    format!("reading OfficeRnD failed, nothing was changed: {error}"),
                ),
            )
        }
    };
    reconcile(
        mapping, objects, &snapshot, &essensys, &officernd, at, previous,
    )
    .await
}
