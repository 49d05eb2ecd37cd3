//! One shared, indexed OfficeRnD picture per OfficeRnD connection: read completely once (bookings
//! in a window up to a horizon ahead), kept current by verified webhooks and, every `syncInterval`,
//! by an incremental read of what changed since the previous one (`officernd::refresh`: a few
//! requests instead of thousands), read completely again in the background once a day (what an
//! incremental read cannot see: deletions without a webhook), and at once when a change could not
//! be applied.
//!
//! Every binding reconcile evaluates against this picture, so a webhook costs no OfficeRnD read
//! (at most one, for a membership's assignments), one OfficeRnD client keeps one token and one
//! rate limit per organization, and 500 bindings hold one index instead of one each.
//!
//! An incremental read runs in the reconcile that finds the picture older than `syncInterval`
//! (the others wait for it, a few seconds): that reconcile, and every one after it, sees the
//! changes. It is all-or-nothing like every read: when it fails, the picture stays as it was (older,
//! never partial) and the next reconcile asks again from the same point.
//!
//! Why the in-place updates are safe:
//! - a webhook's `data.object` is the object after the change, signed by OfficeRnD; an object
//!   that does not parse is never guessed at: the picture is marked stale and read whole before
//!   the next evaluation, and every binding of the organization is reconciled;
//! - deliveries can arrive late or out of order, so each object remembers the `createdAt` of the
//!   newest event applied to it, and an older event for it is ignored;
//! - changes applied while a background read runs are replayed, in order, on the new picture,
//!   so a read that started before a change never undoes it;
//! - assignments have no webhooks (vendor-apis.md §1.6): a membership event re-reads that
//!   membership's assignments; an incremental read re-reads them all when their count moved or
//!   hourly (`officernd::refresh` says how stale that leaves them).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::engine::{Index, Touched};
use crate::http::HttpError;
use crate::officernd::client::OfficeRndError;
use crate::officernd::collection::{Collection, CollectionSet};
use crate::officernd::model::{Assignment, Booking, Company, Member, Membership, Pass};
use crate::officernd::refresh::{self, Changes, Held, ReadMark, ReadPolicy};
use crate::officernd::webhooks::{AffectedObject, WebhookEvent};
use crate::officernd::OfficeRndClient;

use super::context::{self, ReadFailure};
use super::objects::Objects;

/// How long the newest event time of an object is remembered. Deliveries signed more than five
/// minutes ago are refused, so two deliveries about one object arrive within minutes of each
/// other.
const EVENT_MEMORY: chrono::Duration = chrono::Duration::minutes(15);

/// The longest an incremental read may take (reconciles of the organization that find the
/// picture old wait for it): far more than the few requests it normally is, and enough for the
/// memberships read whole when their count moved (60,000 are 1,200 requests, 4 minutes at 5/s),
/// so only a throttling or failing server reaches it.
const INCREMENTAL_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// The shared pictures, by OfficeRnD connection.
pub struct OrgCache {
    clock: Clock,
    policy: ReadPolicy,
    orgs: Mutex<HashMap<(String, String), Arc<Org>>>,
    reads_announced: Option<mpsc::UnboundedSender<(String, String)>>,
}

/// One organization: its client (rebuilt when the connection or its Secret changes) and picture.
struct Org {
    /// The connection as (namespace, name).
    key: (String, String),
    label: String,
    /// Told the key after every whole read and every horizon move (the connection's status shows
    /// the member count and the booking horizon).
    reads_announced: Option<mpsc::UnboundedSender<(String, String)>>,
    fingerprint: u64,
    client: OfficeRndClient,
    clock: Clock,
    policy: ReadPolicy,
    state: tokio::sync::Mutex<OrgState>,
    /// Held while an incremental read runs (one at a time, without holding `state`).
    reading: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct OrgState {
    view: Option<OrgView>,
    /// Why the next evaluation needs a whole read first (a change that could not be applied).
    stale: Option<String>,
    /// Changes applied since the running background read started, replayed on its result.
    replay: Option<Vec<Change>>,
    /// The newest event time applied per object.
    applied: HashMap<(Collection, String), DateTime<Utc>>,
    /// What the bindings evaluated last needed read (the background read reads that).
    needs: CollectionSet,
    /// Where the picture's last read left off (what the next incremental read asks from).
    mark: Option<ReadMark>,
}

/// An immutable, indexed picture of one organization, shared by the reconciles that use it.
#[derive(Clone)]
pub struct OrgView {
    /// The indexed snapshot.
    pub index: Arc<Index>,
    /// Members in the picture (the empty-snapshot guard reads it).
    pub members: usize,
    /// When the complete read this picture rests on started.
    pub read_at: DateTime<Utc>,
    /// The collections it holds; only their scopes were asked for.
    pub reads: CollectionSet,
    /// Bookings are held up to this instant (`None`: bookings are not read); the engine's
    /// next-change instants stop there.
    pub booking_horizon: Option<DateTime<Utc>>,
}

/// What a webhook did to the picture.
pub enum Applied {
    /// Applied in place: the touches say which bindings may see a different answer in the
    /// picture that now holds the change.
    Touched(Touched, OrgView),
    /// Could not be applied in place (or nothing is cached yet): the next evaluation reads the
    /// organization whole, and every binding of it should be reconciled.
    Everything(String),
    /// Nothing the engine reads changed (an event about invoices, or a late duplicate).
    Nothing,
}

/// One change to the picture, kept so it can be replayed on a newer read.
#[derive(Debug, Clone)]
enum Change {
    Member(Member),
    Company(Company),
    Membership(Membership),
    Booking(Booking),
    Pass(Pass),
    /// What an incremental read found.
    Read(Arc<Changes>),
    Remove(Collection, String),
    Assignments {
        membership: String,
        assignments: Vec<Assignment>,
    },
}

impl Change {
    fn apply(&self, index: &mut Index) -> Touched {
        match self {
            Change::Member(member) => index.upsert_member(member.clone()),
            Change::Company(company) => index.upsert_company(company.clone()),
            Change::Membership(membership) => index.upsert_membership(membership.clone()),
            Change::Booking(booking) => index.upsert_booking(booking.clone()),
            Change::Pass(pass) => index.upsert_pass(pass.clone()),
            Change::Read(changes) => refresh::apply(index, changes),
            Change::Remove(collection, id) => match collection {
                Collection::Members => index.remove_member(id),
                Collection::Companies => index.remove_company(id),
                Collection::Memberships => index.remove_membership(id),
                Collection::Bookings => index.remove_booking(id),
                Collection::Passes => index.remove_pass(id),
                _ => Touched::default(),
            },
            Change::Assignments {
                membership,
                assignments,
            } => {
                let mut touched = Touched::default();
                for id in index.assignments_of_membership(membership) {
                    if !assignments.iter().any(|a| a.id == id) {
                        touched.merge(index.remove_assignment(&id));
                    }
                }
                for assignment in assignments {
                    if index.assignment(&assignment.id) != Some(assignment) {
                        touched.merge(index.upsert_assignment(assignment.clone()));
                    }
                }
                touched
            }
        }
    }
}

impl OrgCache {
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            policy: ReadPolicy::default(),
            orgs: Mutex::new(HashMap::new()),
            reads_announced: None,
        }
    }

    /// Reads by `policy` instead of the default (tests and benchmarks shorten the complete-read
    /// period).
    pub fn with_policy(mut self, policy: ReadPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sends the connection's (namespace, name) on `sender` after each whole read, and after an
    /// incremental read that moved the booking horizon.
    pub fn notify_reads(mut self, sender: mpsc::UnboundedSender<(String, String)>) -> Self {
        self.reads_announced = Some(sender);
        self
    }

    /// The current picture of the OfficeRnD connection `namespace/name`. Without a picture, or
    /// with a stale one, it reads the organization completely first (one read at a time per
    /// organization; concurrent callers wait for it). A picture whose last read is older than
    /// `max_age` is brought up to date by an incremental read first; once a complete read is due
    /// (daily), the picture is still returned while a complete read runs in the background.
    pub async fn view(
        &self,
        objects: &Objects,
        namespace: &str,
        name: &str,
        max_age: Duration,
    ) -> Result<OrgView, ReadFailure> {
        let org = self.org(objects, namespace, name)?;
        let needs = super::context::bindings_read(objects, namespace, name)
            .union(crate::officernd::Feature::DoorBindings.reads());
        let mut state = org.state.lock().await;
        state.needs = needs;
        let now = (self.clock)();
        if state.stale.is_none() {
            // A binding needing a collection the picture lacks (a new kind of source) reads anew.
            if let (Some(view), Some(mark)) = (
                state.view.clone().filter(|view| view.reads.covers(needs)),
                state.mark.clone(),
            ) {
                if mark.complete_due(now, &org.policy) && state.replay.is_none() {
                    state.replay = Some(Vec::new());
                    tokio::spawn(refresh_in_background(org.clone()));
                }
                // Incremental reads go on while a complete read runs: it takes long on a large
                // organization, and what they find is replayed on its result.
                let age = (now - mark.since).to_std().unwrap_or(Duration::ZERO);
                if age < max_age {
                    return Ok(view);
                }
                // Read without holding the picture: webhooks keep being applied meanwhile.
                drop(state);
                return Ok(org.read_changes(view, max_age).await);
            }
        }
        let why = match (&state.stale, &state.view) {
            (Some(why), _) => why.as_str(),
            (None, Some(_)) => "a binding needs collections the picture does not hold",
            (None, None) => "no picture yet",
        };
        tracing::info!(officernd = %org.label, %why, "reading OfficeRnD completely");
        let (view, mark) = read_complete(&org.client, needs, now, &org.policy).await?;
        state.view = Some(view.clone());
        state.mark = Some(mark);
        state.stale = None;
        org.announce_read();
        Ok(view)
    }

    /// Applies a verified webhook event of the connection `namespace/name` to its picture.
    pub async fn apply(&self, namespace: &str, name: &str, event: &WebhookEvent) -> Applied {
        let Some(own) = event.affected.first() else {
            return Applied::Nothing;
        };
        let Some(org) = self.cached(namespace, name) else {
            return Applied::Everything("nothing cached yet".to_owned());
        };
        let held = org.state.lock().await.view.as_ref().map(|view| view.reads);
        if held.is_some_and(|reads| !reads.contains(own.collection)) {
            // No binding reads this collection (and the application may lack its scope).
            return Applied::Nothing;
        }
        let client = org.client.reading(held.unwrap_or_default());
        let changes = match changes_of(&client, event).await {
            Ok(changes) => changes,
            Err(error) => {
                let why = error.to_string();
                let mut state = org.state.lock().await;
                tracing::warn!(officernd = %org.label, event = %event.event_type, %why, "could not apply an OfficeRnD change in place; reading the organization whole");
                state.stale = Some(why.clone());
                return Applied::Everything(why);
            }
        };
        let mut state = org.state.lock().await;
        let object = (own.collection, own.id.clone());
        if let Some(created) = event.created_at {
            if state
                .applied
                .get(&object)
                .is_some_and(|newest| created < *newest)
            {
                return Applied::Nothing;
            }
            let now = (org.clock)();
            state.applied.retain(|_, at| now - *at < EVENT_MEMORY);
            state.applied.insert(object, created);
        }
        let Some(view) = state.view.as_mut() else {
            return Applied::Everything("nothing cached yet".to_owned());
        };
        // Copy-on-write: reconciles holding the current picture keep it unchanged.
        let index = Arc::make_mut(&mut view.index);
        let mut touched = Touched::default();
        for change in &changes {
            touched.merge(change.apply(index));
        }
        view.members = index.member_count();
        let view = view.clone();
        if let Some(replay) = state.replay.as_mut() {
            replay.extend(changes);
        }
        Applied::Touched(touched, view)
    }

    /// The OfficeRnD client of the connection `namespace/name` (shared with its picture, so
    /// every reader of one organization shares one token and one rate limit).
    pub fn client(
        &self,
        objects: &Objects,
        namespace: &str,
        name: &str,
    ) -> Result<OfficeRndClient, ReadFailure> {
        Ok(self.org(objects, namespace, name)?.client.clone())
    }

    /// How many members the current picture of `namespace/name` holds, without reading it or
    /// waiting for a read in progress.
    pub fn members(&self, namespace: &str, name: &str) -> Option<usize> {
        let org = self.cached(namespace, name)?;
        let state = org.state.try_lock().ok()?;
        state.view.as_ref().map(|view| view.members)
    }

    /// Up to when the current picture of `namespace/name` holds bookings (`None`: no picture, or
    /// its bindings read no bookings), without reading it or waiting for a read in progress.
    pub fn booking_horizon(&self, namespace: &str, name: &str) -> Option<DateTime<Utc>> {
        let org = self.cached(namespace, name)?;
        let state = org.state.try_lock().ok()?;
        state.view.as_ref().and_then(|view| view.booking_horizon)
    }

    fn cached(&self, namespace: &str, name: &str) -> Option<Arc<Org>> {
        lock(&self.orgs)
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The organization of the connection, with a client built from its current credentials (a
    /// changed connection or Secret starts a new picture).
    fn org(&self, objects: &Objects, namespace: &str, name: &str) -> Result<Arc<Org>, ReadFailure> {
        let connection = context::officernd_connection(objects, namespace, name)?;
        let secret = objects.secret(namespace, &connection.spec.credentials_secret_ref.name);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        format!("{:?}", connection.spec).hash(&mut hasher);
        if let Some(secret) = secret {
            // The Secret's content is hashed, never kept or logged.
            format!("{:?}{:?}", secret.data, secret.string_data).hash(&mut hasher);
        }
        let fingerprint = hasher.finish();
        let key = (namespace.to_owned(), name.to_owned());
        // Looked up and created under one lock: two first reconciles must share one picture.
        let mut orgs = lock(&self.orgs);
        if let Some(org) = orgs.get(&key) {
            if org.fingerprint == fingerprint {
                return Ok(org.clone());
            }
        }
        let client = context::officernd_client(connection, namespace, secret)?;
        let org = Arc::new(Org {
            key: key.clone(),
            label: format!("{namespace}/{name}"),
            reads_announced: self.reads_announced.clone(),
            fingerprint,
            client,
            clock: self.clock.clone(),
            policy: self.policy,
            state: tokio::sync::Mutex::new(OrgState::default()),
            reading: tokio::sync::Mutex::new(()),
        });
        orgs.insert(key, org.clone());
        Ok(org)
    }
}

impl Org {
    fn announce_read(&self) {
        if let Some(sender) = &self.reads_announced {
            // Nobody listening (the controller stopped) is fine.
            let _ = sender.send(self.key.clone());
        }
    }

    /// Brings the picture up to date with an incremental read, one at a time per organization
    /// (reconciles arriving meanwhile wait for it, then find it fresh); webhooks are applied
    /// meanwhile, and an object a delivery changed after the read started keeps the delivery's
    /// state. On failure the picture stays as it was and the mark is kept, so the next reconcile
    /// asks again from the same point. `fallback` is what is returned when nothing could be read.
    ///
    /// The changes are applied to the held index in place (`Arc::make_mut`), so this read must
    /// hold no handle of its own on the picture by then: each one would make that a copy of
    /// the whole index. Only a reconcile still evaluating the previous picture forces one.
    async fn read_changes(&self, fallback: OrgView, max_age: Duration) -> OrgView {
        let _one_at_a_time = self.reading.lock().await;
        let (current, mark) = {
            let state = self.state.lock().await;
            match (state.view.clone(), state.mark.clone()) {
                (Some(current), Some(mark)) => (current, mark),
                _ => return fallback,
            }
        };
        drop(fallback);
        let started = (self.clock)();
        let age = (started - mark.since).to_std().unwrap_or(Duration::ZERO);
        if age < max_age {
            // Read by the reconcile this one waited for.
            return current;
        }
        let held = Held::of(&current.index);
        let read = super::deadline::within(
            INCREMENTAL_DEADLINE,
            "reading OfficeRnD changes",
            refresh::read_changes(&self.client, &mark, held, started, &self.policy),
        )
        .await;
        let (mut changes, next) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(error)) => {
                tracing::warn!(officernd = %self.label, %error, "the incremental OfficeRnD read failed; the picture stays as it was and is read again at the next reconcile");
                return current;
            }
            Err(exceeded) => {
                tracing::warn!(officernd = %self.label, error = %exceeded, "the incremental OfficeRnD read failed; the picture stays as it was");
                return current;
            }
        };
        let mut state = self.state.lock().await;
        if state
            .mark
            .as_ref()
            .is_some_and(|held| held.since > mark.since)
        {
            // A complete read landed meanwhile; this read is older than what it holds.
            return state.view.clone().unwrap_or(current);
        }
        let since = started - self.policy.overlap;
        let applied = &state.applied;
        changes.retain(|collection, id| {
            applied
                .get(&(collection, id.to_owned()))
                .is_none_or(|event| *event < since)
        });
        tracing::debug!(officernd = %self.label, objects = changes.objects(), "OfficeRnD read incrementally");
        state.mark = Some(next);
        let OrgState { view, replay, .. } = &mut *state;
        let Some(view) = view.as_mut() else {
            return current;
        };
        drop(current);
        let change = Change::Read(Arc::new(changes));
        let index = Arc::make_mut(&mut view.index);
        change.apply(index);
        view.members = index.member_count();
        let horizon_before = view.booking_horizon;
        view.booking_horizon = index.booking_horizon();
        if let Some(replay) = replay.as_mut() {
            replay.push(change);
        }
        let view = view.clone();
        drop(state);
        if view.booking_horizon != horizon_before {
            // The connection's status shows the horizon; it should not wait for its own resync.
            self.announce_read();
        }
        view
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The longest a complete read may take (see [`super::context::READ_DEADLINE`]).
const READ_DEADLINE: Duration = super::context::READ_DEADLINE;

/// Reads the collections `reads` completely (bookings in the policy's window) and indexes them;
/// fails whole, never with a partial picture.
async fn read_complete(
    client: &OfficeRndClient,
    reads: CollectionSet,
    started: DateTime<Utc>,
    policy: &ReadPolicy,
) -> Result<(OrgView, ReadMark), ReadFailure> {
    let (snapshot, mark) = super::deadline::within(
        READ_DEADLINE,
        "reading OfficeRnD completely",
        refresh::read_complete(client, reads, started, policy),
    )
    .await??;
    let members = snapshot.members.len();
    let indexed = mark.clone();
    // Indexing is CPU work: off the async workers.
    let index = tokio::task::spawn_blocking(move || refresh::index(snapshot, &indexed))
        .await
        .map_err(|e| ReadFailure::Indexing(e.to_string()))?;
    let view = OrgView {
        booking_horizon: index.booking_horizon(),
        index: Arc::new(index),
        members,
        read_at: started,
        reads: mark.reads,
    };
    Ok((view, mark))
}

/// The periodic complete read (deletions and what else incremental reads cannot see). The current
/// picture serves meanwhile; changes applied to it during the read are replayed on the result.
async fn refresh_in_background(org: Arc<Org>) {
    let started = (org.clock)();
    let needs = org.state.lock().await.needs;
    let result = read_complete(&org.client, needs, started, &org.policy).await;
    let mut state = org.state.lock().await;
    let replay = state.replay.take().unwrap_or_default();
    if state.view.as_ref().is_some_and(|v| v.read_at > started) {
        // A newer complete read (after a change that could not be applied) landed meanwhile.
        return;
    }
    match result {
        Ok((mut view, mut mark)) => {
            let index = Arc::make_mut(&mut view.index);
            for change in &replay {
                change.apply(index);
            }
            view.members = index.member_count();
            view.booking_horizon = index.booking_horizon();
            // An incremental read during this one may have moved the horizon further.
            if let (Some(window), Some(horizon)) = (mark.window.as_mut(), view.booking_horizon) {
                window.to = window.to.max(horizon);
            }
            if let Some(held) = &state.mark {
                mark.whole = mark.whole.union(held.whole);
            }
            tracing::debug!(officernd = %org.label, replayed = replay.len(), "OfficeRnD read completely");
            state.view = Some(view);
            state.mark = Some(mark);
            org.announce_read();
        }
        Err(error) => {
            // The current picture keeps serving; the next reconcile tries again.
            tracing::warn!(officernd = %org.label, %error, "the periodic complete OfficeRnD read failed");
        }
    }
}

/// The changes an event makes, read from its object (and, for memberships, the membership's
/// assignments, which have no events of their own).
/// What a verified delivery changes, as OfficeRnD says now. A delivery is a hint, never a fact:
/// whoever holds the webhook secret could sign one claiming a membership is approved, so the
/// object it names is read from the API and the delivery's own copy is ignored (an object the
/// API no longer has is removed, whatever the delivery says).
/// Why a webhook's change could not be applied in place (the picture is then read whole).
#[derive(Debug, thiserror::Error)]
enum InPlaceError {
    /// The changed object (or a membership's assignments) could not be read.
    #[error("reading {what} from OfficeRnD: {source}")]
    Read {
        /// What was read.
        what: String,
        /// Why it failed.
        #[source]
        source: OfficeRndError,
    },
    /// Events of this collection are not applied one by one.
    #[error("{0} events are not applied in place")]
    NotInPlace(Collection),
}

async fn changes_of(
    client: &OfficeRndClient,
    event: &WebhookEvent,
) -> Result<Vec<Change>, InPlaceError> {
    let Some(own) = event.affected.first() else {
        return Ok(Vec::new());
    };
    let what = |kind: &str| format!("{} {}: {kind}", event.event_type, own.id);
    let change = match own.collection {
        Collection::Members => current(client, own, &what("member"))
            .await?
            .map(Change::Member),
        Collection::Companies => current(client, own, &what("company"))
            .await?
            .map(Change::Company),
        Collection::Bookings => current(client, own, &what("booking"))
            .await?
            .map(Change::Booking),
        Collection::Passes => current(client, own, &what("pass")).await?.map(Change::Pass),
        Collection::Memberships => {
            let Some(membership) = current::<Membership>(client, own, &what("membership")).await?
            else {
                return Ok(vec![Change::Remove(own.collection, own.id.clone())]);
            };
            if !client.reads().contains(Collection::Assignments) {
                return Ok(vec![Change::Membership(membership)]);
            }
            let assignments = client
                .list_assignments_for_membership::<Assignment>(&membership.id)
                .await
                .map_err(|source| InPlaceError::Read {
                    what: format!("the assignments of membership {}", membership.id),
                    source,
                })?;
            return Ok(vec![
                Change::Membership(membership.clone()),
                Change::Assignments {
                    membership: membership.id,
                    assignments,
                },
            ]);
        }
        other => return Err(InPlaceError::NotInPlace(other)),
    };
    Ok(vec![change.unwrap_or_else(|| {
        Change::Remove(own.collection, own.id.clone())
    })])
}

/// The object `own` names, read from OfficeRnD now; `None` when OfficeRnD no longer has it.
async fn current<T: DeserializeOwned>(
    client: &OfficeRndClient,
    own: &AffectedObject,
    what: &str,
) -> Result<Option<T>, InPlaceError> {
    match client.get::<T>(own.collection, &own.id).await {
        Ok(object) => Ok(Some(object)),
        Err(OfficeRndError::Http(HttpError::NotFound { .. })) => Ok(None),
        Err(source) => Err(InPlaceError::Read {
            what: what.to_owned(),
            source,
        }),
    }
}
