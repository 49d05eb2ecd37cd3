//! One watch per kind, shared by every controller that reads the kind: the watch's events
//! reduced to the changes that matter (a predicate over each object, so our own status writes
//! pass nowhere) and the deletions, handed to each subscribed controller through a bounded
//! channel of its own.
//!
//! Why not kube-runtime's own shared streams (`reflector::store_shared`, `ReflectHandle`):
//! - their dispatcher (`Writer::dispatch_event`) passes on `Apply` and the re-list, never
//!   `Delete`, and the bindings and SiteMappings of a deleted VendorConnection (and everything
//!   reading a deleted Secret) must reconcile to report what is missing;
//! - a `ReflectHandle` resolves each broadcast reference in the store when it is read, and
//!   returns `Pending` without arranging a wake-up when the object has left the store meanwhile
//!   (created and deleted in quick succession, a namespace being deleted). A controller polls
//!   its trigger streams through a `SelectAll`, which never polls a stream again until that
//!   stream's own waker fires, so that subscriber would stop for good, the broadcast buffer
//!   would fill, and the one watch of the kind would stop for every controller.
//!
//! Here each subscriber gets the object itself (an `Arc`), a deletion as well as a change, so
//! nothing has to be looked up late and nothing is lost; the controllers take these streams
//! through `Controller::for_shared_stream` and `watches_shared_stream`.
//!
//! What else this decides:
//! - Objects of a (re-)list are handed on when the list is complete (`InitDone`), after the
//!   reflector has swapped its store: a trigger never names an object the cache lacks.
//! - An object gone when the watch re-lists (deleted while the watch was down) is handed on as
//!   a deletion, which `touched_objects` would never say.
//! - The predicate's memory is keyed by name and uid, so an object deleted and created again
//!   under its name always passes, and deleted objects are forgotten.
//! - Backpressure as kube's dispatcher has it: a full subscriber holds the watch. Every
//!   subscriber must therefore be polled (a controller that is not run must not subscribe),
//!   and the fan-out stops with the operator's stop signal, so a controller that stopped
//!   taking triggers during shutdown never holds it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::Resource;

/// What a shared watch hands on.
#[derive(Debug)]
pub(super) enum Change<K> {
    /// A new object, or one whose predicate hash moved.
    Applied(Arc<K>),
    /// The object as last seen before it was deleted.
    Deleted(Arc<K>),
}

/// How much a subscriber may lag before it holds the watch.
const BUFFER: usize = 256;

/// The subscribers of one watch, gathered before it runs.
pub(super) struct FanOut<K> {
    subscribers: Vec<(mpsc::Sender<Arc<K>>, bool)>,
}

impl<K> FanOut<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    pub(super) fn new() -> Self {
        Self {
            subscribers: Vec::new(),
        }
    }

    /// The changed objects of the kind, for one controller's main stream.
    pub(super) fn changed(&mut self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        self.subscribe(false)
    }

    /// The changed and the deleted objects of the kind, for a controller whose objects depend
    /// on them.
    pub(super) fn changed_or_deleted(&mut self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        self.subscribe(true)
    }

    fn subscribe(&mut self, deletions: bool) -> mpsc::Receiver<Arc<K>> {
        let (tx, rx) = mpsc::channel(BUFFER);
        self.subscribers.push((tx, deletions));
        rx
    }

    /// Drives the watch (`events`, already reflected into the store its readers share) and
    /// hands each change to the subscribers; ends when the watch does. `kind` names it in logs.
    pub(super) async fn run(
        mut self,
        events: impl Stream<Item = watcher::Result<watcher::Event<K>>> + Send,
        predicate: impl Fn(&K) -> Option<u64> + Send,
        kind: &'static str,
    ) {
        let changes = changes(events, predicate);
        futures::pin_mut!(changes);
        while let Some(change) = changes.next().await {
            let (object, deletion) = match change {
                Ok(Change::Applied(object)) => (object, false),
                Ok(Change::Deleted(object)) => (object, true),
                Err(error) => {
                    // The watcher retries with backoff; the caches keep their last state.
                    tracing::debug!(%error, kind, "watch");
                    continue;
                }
            };
            for (subscriber, deletions) in &mut self.subscribers {
                if deletion && !*deletions {
                    continue;
                }
                // A subscriber whose controller has stopped is gone; the others still listen.
                let _ = subscriber.send(object.clone()).await;
            }
        }
    }
}

/// The predicate's memory of one object.
struct Seen<K> {
    hash: Option<u64>,
    uid: Option<String>,
    object: Arc<K>,
}

/// During a (re-)list: the objects listed so far, and those that passed.
type Listing<K> = (HashSet<ObjectRef<K>>, Vec<Arc<K>>);

/// A watch's events reduced to what passes `predicate` (an object whose hash moved, or a new
/// one; `None` always passes) and every deletion, including those a re-list reveals. The
/// objects of a list are held until it is complete.
pub(super) fn changes<K>(
    events: impl Stream<Item = watcher::Result<watcher::Event<K>>>,
    predicate: impl Fn(&K) -> Option<u64>,
) -> impl Stream<Item = watcher::Result<Change<K>>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let mut seen: HashMap<ObjectRef<K>, Seen<K>> = HashMap::new();
    let mut listing: Option<Listing<K>> = None;
    events.flat_map(move |event| {
        let mut passed = Vec::new();
        match event {
            Ok(watcher::Event::Apply(object)) => {
                if let Some(object) = remember(&mut seen, &predicate, object) {
                    passed.push(Ok(Change::Applied(object)));
                }
            }
            Ok(watcher::Event::InitApply(object)) => {
                let key = ObjectRef::from_obj(&object);
                let changed = remember(&mut seen, &predicate, object);
                if let Some((listed, held)) = &mut listing {
                    listed.insert(key);
                    held.extend(changed);
                } else {
                    passed.extend(changed.map(|object| Ok(Change::Applied(object))));
                }
            }
            Ok(watcher::Event::Delete(object)) => {
                seen.remove(&ObjectRef::from_obj(&object));
                passed.push(Ok(Change::Deleted(Arc::new(object))));
            }
            Ok(watcher::Event::Init) => listing = Some((HashSet::new(), Vec::new())),
            Ok(watcher::Event::InitDone) => {
                let (listed, held) = listing.take().unwrap_or_default();
                let gone: Vec<ObjectRef<K>> = seen
                    .keys()
                    .filter(|key| !listed.contains(*key))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(last) = seen.remove(&key) {
                        passed.push(Ok(Change::Deleted(last.object)));
                    }
                }
                passed.extend(held.into_iter().map(|object| Ok(Change::Applied(object))));
            }
            Err(error) => passed.push(Err(error)),
        }
        futures::stream::iter(passed)
    })
}

/// Records `object` and returns it when it passes.
fn remember<K>(
    seen: &mut HashMap<ObjectRef<K>, Seen<K>>,
    predicate: &impl Fn(&K) -> Option<u64>,
    object: K,
) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    let hash = predicate(&object);
    let uid = object.meta().uid.clone();
    let object = Arc::new(object);
    let before = seen.insert(
        ObjectRef::from_obj(object.as_ref()),
        Seen {
            hash,
            uid: uid.clone(),
            object: object.clone(),
        },
    );
    let passes = match (before, hash) {
        (_, None) | (None, _) => true,
        (Some(before), Some(_)) => before.hash != hash || before.uid != uid,
    };
    passes.then_some(object)
}

/// The resource version: every change of the object passes (for kinds without a spec of ours,
/// such as the Secrets connections read).
pub(super) fn resource_version<K: Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let version = object.meta().resource_version.as_ref()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    version.hash(&mut hasher);
    Some(hasher.finish())
}

#[cfg(test)]
#[path = "fan_out_tests.rs"]
mod tests;
