//! The operator's shared OfficeRnD picture (`operator::orgs`): read whole once, webhooks applied in
//! place without reading OfficeRnD again, only the bindings a change can affect chosen, late or
//! unreadable deliveries handled safely, and changes applied during a background read kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flexgate::api::conditions::Reason;
use flexgate::engine::Index;
use flexgate::manifests;
use flexgate::officernd::collection::Collection;
use flexgate::officernd::refresh::ReadPolicy;
use flexgate::officernd::webhooks::{parse_event, WebhookEvent};
use flexgate::operator::connection::{self, MemberCount};
use flexgate::operator::desired::engine_binding;
use flexgate::operator::objects::Objects;
use flexgate::operator::orgs::{Applied, OrgCache, OrgView};
use flexgate::sandbox::faults::Route;
use flexgate::sandbox::Sandbox;
use kube::ResourceExt;
use serde_json::{json, Value};

const NS: &str = "default";
const HOUR: Duration = Duration::from_secs(3600);

struct World {
    sandbox: Sandbox,
    objects: Objects,
    cache: OrgCache,
}

impl World {
    async fn new() -> Self {
        Self::with_policy(ReadPolicy::default()).await
    }

    async fn with_policy(policy: ReadPolicy) -> Self {
        let sandbox = Sandbox::start_demo().await.unwrap();
        let (documents, problems) = manifests::load(&[PathBuf::from("examples")]);
        assert!(problems.is_empty());
        let mut objects = Objects::from_documents(&documents).unwrap();
        sandbox.connect(&mut objects);
        let cache = OrgCache::new(sandbox.clock.clock()).with_policy(policy);
        World {
            sandbox,
            objects,
            cache,
        }
    }

    async fn view(&self, max_age: Duration) -> OrgView {
        self.cache
            .view(&self.objects, NS, "officernd", max_age)
            .await
            .unwrap()
    }

    fn officernd_requests(&self) -> u64 {
        self.sandbox
            .officernd
            .faults()
            .request_counts()
            .values()
            .sum()
    }

    /// The names of the example bindings a change with these touches may affect.
    fn affected(&self, applied: &Applied) -> Vec<String> {
        let Applied::Touched(touched, view) = applied else {
            panic!("expected the change to be applied in place");
        };
        let bindings: Vec<_> = self
            .objects
            .bindings
            .iter()
            .map(|b| engine_binding(b, &self.objects, &view.index).unwrap())
            .collect();
        view.index
            .affected_bindings(&bindings, touched)
            .into_iter()
            .map(|position| bindings[position].key.name.clone())
            .collect()
    }

    /// Puts `object` into OfficeRnD, as the change a delivery then announces.
    fn officernd_has(&self, collection: Collection, object: &Value) {
        self.sandbox
            .officernd
            .upsert(collection, object.clone())
            .unwrap();
    }

    fn membership(&self, name: &str) -> Value {
        self.sandbox
            .officernd
            .list(Collection::Memberships)
            .into_iter()
            .find(|m| m["name"] == name)
            .unwrap()
    }
}

fn event(event_type: &str, object: Value, created_at: &str) -> WebhookEvent {
    let body = json!({
        "event": format!("evt-{created_at}"),
        "eventType": event_type,
        "data": {"object": object},
        "createdAt": created_at,
    });
    parse_event(body.to_string().as_bytes()).unwrap()
}

fn has_membership(index: &Index, id: &str) -> bool {
    index.membership(id).is_some()
}

/// Hal (no plan in the demo) gets a Hot Desk membership, as OfficeRnD would send it.
fn hal_hot_desk(world: &World) -> Value {
    let mut hal = world.membership("Ann - Hot Desk");
    hal["_id"] = json!("3e3b500000000000000000aa");
    hal["name"] = json!("Hal - Hot Desk");
    hal["member"] = json!("3e3be0000000000000000017");
    hal.as_object_mut().unwrap().remove("company");
    hal
}

#[tokio::test]
async fn a_webhook_is_applied_in_place_and_chooses_only_the_bindings_it_can_affect() {
    let world = World::new().await;
    let first = world.view(HOUR).await;
    let after_first_read = world.officernd_requests();
    assert!(after_first_read > 10, "the first view reads whole");
    let again = world.view(HOUR).await;
    assert_eq!(
        world.officernd_requests(),
        after_first_read,
        "a fresh picture is served without reading OfficeRnD"
    );
    assert!(std::sync::Arc::ptr_eq(&first.index, &again.index));

    // A membership: the delivery names it; it is read from OfficeRnD with its assignments.
    let hal = hal_hot_desk(&world);
    world.officernd_has(Collection::Memberships, &hal);
    let applied = world
        .cache
        .apply(
            NS,
            "officernd",
            &event("membership.created", hal, "2026-11-23T08:00:00Z"),
        )
        .await;
    assert_eq!(world.affected(&applied), vec!["hot-desk-lobby"]);
    assert_eq!(world.officernd_requests(), after_first_read + 2);
    let view = world.view(HOUR).await;
    assert!(has_membership(&view.index, "3e3b500000000000000000aa"));
    assert!(
        !has_membership(&first.index, "3e3b500000000000000000aa"),
        "a picture handed out earlier never changes under its reader"
    );

    // A booking of a room no binding names changes nobody's access.
    let booking = json!({
        "_id": "b000000000000000000000f1",
        "resource": "7e5000a00000000000000009",
        "location": "10ca71000000000000000001",
        "start": "2026-11-23T12:00:00.000Z",
        "end": "2026-11-23T13:00:00.000Z",
        "member": "3e3be0000000000000000012",
        "isCancelled": false,
        "isTentative": false
    });
    world.officernd_has(Collection::Bookings, &booking);
    let applied = world
        .cache
        .apply(
            NS,
            "officernd",
            &event("booking.created", booking.clone(), "2026-11-23T08:00:01Z"),
        )
        .await;
    assert!(world.affected(&applied).is_empty());
    // The same booking moved to the Elephant room reaches its binding only.
    let mut moved = booking;
    moved["resource"] = json!("7e5000a00000000000000008");
    world.officernd_has(Collection::Bookings, &moved);
    let applied = world
        .cache
        .apply(
            NS,
            "officernd",
            &event("booking.updated", moved, "2026-11-23T08:00:02Z"),
        )
        .await;
    assert_eq!(world.affected(&applied), vec!["elephant-meeting-room"]);
    assert_eq!(
        world.officernd_requests(),
        after_first_read + 4,
        "each delivery costs one read of what it names (and a membership its assignments)"
    );

    // An event flexgate does not read changes nothing.
    let applied = world
        .cache
        .apply(
            NS,
            "officernd",
            &event(
                "invoice.created",
                json!({"_id": "1a0000000000000000000001"}),
                "2026-11-23T08:00:03Z",
            ),
        )
        .await;
    assert!(matches!(applied, Applied::Nothing));
}

#[tokio::test]
async fn a_late_delivery_never_replaces_a_newer_state() {
    let world = World::new().await;
    world.view(HOUR).await;
    let hal = hal_hot_desk(&world);
    world.officernd_has(Collection::Memberships, &hal);
    let applied = world
        .cache
        .apply(
            NS,
            "officernd",
            &event("membership.created", hal.clone(), "2026-11-23T08:00:10Z"),
        )
        .await;
    assert!(matches!(applied, Applied::Touched(..)));
    world
        .sandbox
        .officernd
        .remove(Collection::Memberships, "3e3b500000000000000000aa");
    let removed = world
        .cache
        .apply(
            NS,
            "officernd",
            &event("membership.removed", hal.clone(), "2026-11-23T08:00:20Z"),
        )
        .await;
    assert!(matches!(removed, Applied::Touched(..)));
    // The creation is redelivered after the removal: ignored.
    let late = world
        .cache
        .apply(
            NS,
            "officernd",
            &event("membership.created", hal, "2026-11-23T08:00:10Z"),
        )
        .await;
    assert!(matches!(late, Applied::Nothing));
    let view = world.view(HOUR).await;
    assert!(!has_membership(&view.index, "3e3b500000000000000000aa"));
}

#[tokio::test]
async fn an_unreadable_object_is_not_guessed_at_the_organization_is_read_whole() {
    let world = World::new().await;
    world.view(HOUR).await;
    let before = world.officernd_requests();
    let mut broken = hal_hot_desk(&world);
    broken["startDate"] = json!(42);
    world.officernd_has(Collection::Memberships, &broken);
    let applied = world
        .cache
        .apply(
            NS,
            "officernd",
            &event("membership.updated", broken, "2026-11-23T08:00:00Z"),
        )
        .await;
    assert!(
        matches!(&applied, Applied::Everything(why) if why.contains("membership")),
        "every binding of the organization is reconciled"
    );
    // A whole read of that broken data fails whole (never a partial picture); once OfficeRnD
    // serves readable data again, it succeeds.
    world
        .sandbox
        .officernd
        .remove(Collection::Memberships, "3e3b500000000000000000aa");
    let view = world.view(HOUR).await;
    assert!(
        world.officernd_requests() > before + 10,
        "the next evaluation reads OfficeRnD whole"
    );
    assert!(!has_membership(&view.index, "3e3b500000000000000000aa"));
    // Nothing cached for another connection: everything there is reconciled.
    assert!(matches!(
        world
            .cache
            .apply(
                NS,
                "other",
                &event(
                    "member.updated",
                    json!({"_id": "3e3be0000000000000000017"}),
                    "2026-11-23T08:00:00Z"
                )
            )
            .await,
        Applied::Everything(_)
    ));
}

#[tokio::test]
async fn changes_applied_during_a_background_read_survive_it() {
    // A complete read is due a second after the previous one.
    let world = World::with_policy(ReadPolicy {
        complete_every: chrono::Duration::seconds(1),
        ..ReadPolicy::default()
    })
    .await;
    let first = world.view(HOUR).await;
    // Slow OfficeRnD down so the background read is still running when the webhook arrives.
    world
        .sandbox
        .officernd
        .faults()
        .add_latency(Route::any(), Duration::from_millis(150));
    world.sandbox.clock.advance(chrono::Duration::seconds(1));
    let served = world.view(HOUR).await;
    assert!(
        std::sync::Arc::ptr_eq(&served.index, &first.index),
        "an old picture keeps serving while it is read again"
    );
    // In OfficeRnD only while the delivery is read, then gone again (the background read,
    // slowed down, lists memberships later): it survives only if replayed.
    let hal = hal_hot_desk(&world);
    world.officernd_has(Collection::Memberships, &hal);
    let applied = world
        .cache
        .apply(
            NS,
            "officernd",
            &event("membership.created", hal, "2026-11-23T08:00:00Z"),
        )
        .await;
    assert!(matches!(applied, Applied::Touched(..)));
    world
        .sandbox
        .officernd
        .remove(Collection::Memberships, "3e3b500000000000000000aa");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let refreshed = loop {
        let view = world.view(HOUR).await;
        if view.read_at != first.read_at || std::time::Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        !std::sync::Arc::ptr_eq(&refreshed.index, &first.index),
        "the background read replaced the picture"
    );
    assert!(has_membership(&refreshed.index, "3e3b500000000000000000aa"));
}

/// A delivery is a hint: whoever holds the webhook secret can sign one, so what it claims is
/// never applied; the object it names is read from OfficeRnD.
#[tokio::test]
async fn a_signed_delivery_claiming_what_officernd_does_not_say_changes_nothing() {
    let world = World::new().await;
    world.view(HOUR).await;
    // "Hal's Hot Desk membership is approved", says the delivery; OfficeRnD has no such thing.
    let forged = hal_hot_desk(&world);
    world
        .cache
        .apply(
            NS,
            "officernd",
            &event("membership.created", forged, "2026-11-23T08:00:00Z"),
        )
        .await;
    let view = world.view(HOUR).await;
    assert!(
        !has_membership(&view.index, "3e3b500000000000000000aa"),
        "the claimed membership was applied"
    );
    // The delivery's copy of a real membership, made approved, is not believed either.
    let mut ann = world.membership("Ann - Hot Desk");
    let id = ann["_id"].as_str().unwrap().to_owned();
    world
        .sandbox
        .officernd
        .upsert(Collection::Memberships, {
            let mut pending = ann.clone();
            pending["status"] = json!("not_approved");
            pending
        })
        .unwrap();
    ann["status"] = json!("approved");
    world
        .cache
        .apply(
            NS,
            "officernd",
            &event("membership.updated", ann, "2026-11-23T08:00:01Z"),
        )
        .await;
    let view = world.view(HOUR).await;
    let stored = view.index.membership(&id).expect("Ann's membership");
    assert_ne!(
        format!("{:?}", stored.status).to_lowercase(),
        "some(approved)",
        "the delivery's status was believed over OfficeRnD's"
    );
}

fn collection_requests(world: &World, collection: Collection) -> u64 {
    world
        .sandbox
        .officernd
        .faults()
        .requests_matching(&Route::path(
            world.sandbox.officernd.collection_path(collection),
        ))
}

/// Issue #12: the picture reads (and asks scopes for) only the collections its bindings need;
/// a binding of a new kind makes it read the organization again with what that one needs.
#[tokio::test]
async fn the_picture_reads_only_what_the_bindings_need() {
    let mut world = World::new().await;
    world
        .objects
        .bindings
        .retain(|b| b.name_any() == "hot-desk-lobby");

    let plan_only = world.view(HOUR).await;

    assert!(plan_only.reads.contains(Collection::Plans));
    for unread in [
        Collection::Bookings,
        Collection::Passes,
        Collection::Visitors,
        Collection::Assignments,
        Collection::Floors,
    ] {
        assert!(!plan_only.reads.contains(unread), "{unread} read");
        assert_eq!(collection_requests(&world, unread), 0, "{unread} listed");
    }

    let (documents, _) = manifests::load(&[PathBuf::from("examples")]);
    let all = Objects::from_documents(&documents).unwrap();
    world.objects.bindings = all.bindings;
    let everything = world.view(HOUR).await;

    assert!(
        !std::sync::Arc::ptr_eq(&everything.index, &plan_only.index),
        "bindings needing more made the picture be read again"
    );
    for read in [
        Collection::Bookings,
        Collection::Passes,
        Collection::Visitors,
        Collection::Floors,
    ] {
        assert!(everything.reads.contains(read), "{read} not read");
        assert!(collection_requests(&world, read) > 0, "{read} not listed");
    }
}

/// A delivery about a collection no binding reads changes nothing and reads nothing (the
/// application may not even be granted its scope).
#[tokio::test]
async fn a_delivery_about_a_collection_no_binding_reads_is_ignored() {
    let mut world = World::new().await;
    world
        .objects
        .bindings
        .retain(|b| b.name_any() == "hot-desk-lobby");
    world.view(HOUR).await;
    let before = world.officernd_requests();
    let booking = world.sandbox.officernd.list(Collection::Bookings)[0].clone();

    let applied = world
        .cache
        .apply(
            NS,
            "officernd",
            &event("booking.updated", booking, "2026-11-23T08:00:00Z"),
        )
        .await;

    assert!(matches!(applied, Applied::Nothing));
    assert_eq!(world.officernd_requests(), before);
}

/// An application without the day-passes scope: the organization cannot be read for a day-pass
/// binding, and the failure names the scope and what needs it (CredentialsInvalid).
#[tokio::test]
async fn a_refused_scope_is_named_in_the_read_failure() {
    let world = World::new().await;
    let granted: Vec<String> = flexgate::sandbox::officernd::known_scopes()
        .into_iter()
        .filter(|scope| scope != "flex.space.passes.read")
        .collect();
    world.sandbox.officernd.set_granted_scopes(Some(granted));

    let failure = world
        .cache
        .view(&world.objects, NS, "officernd", HOUR)
        .await
        .err()
        .expect("the read fails");

    assert_eq!(failure.reason(), Reason::CredentialsInvalid);
    let message = failure.to_string();
    assert!(message.contains("flex.space.passes.read"), "{message}");
    assert!(message.contains("source.dayPasses"), "{message}");
}

/// The VendorConnection check asks for the scopes of everything reading through the connection,
/// and names what is wrong: a refused scope (CredentialsInvalid, with what needs it), a slug that
/// names no organization (ReferenceNotFound, at once).
#[tokio::test]
async fn the_connection_check_names_a_refused_scope_and_a_wrong_slug() {
    let mut world = World::new().await;
    let clock = world.sandbox.clock.clock();
    let check = |objects: &Objects| {
        let connection = objects.connection(NS, "officernd").unwrap().clone();
        let objects = objects.clone();
        let clock = clock.clone();
        async move {
            connection::check(&connection, &objects, &clock, MemberCount::Known(None))
                .await
                .outcome
        }
    };

    // Only a plan binding: the app needs nothing but its five read scopes.
    world
        .objects
        .bindings
        .retain(|b| b.name_any() == "hot-desk-lobby");
    world.objects.site_mappings.clear();
    world.sandbox.officernd.set_granted_scopes(Some(
        [
            "flex.community.members.read",
            "flex.community.companies.read",
            "flex.community.memberships.read",
            "flex.space.locations.read",
            "flex.billing.plans.read",
        ]
        .map(str::to_owned)
        .to_vec(),
    ));
    let minimal = check(&world.objects).await;
    assert!(minimal.ready, "{minimal:?}");

    // A day-pass binding on the same connection: its scope is missing, and named.
    let (documents, _) = manifests::load(&[PathBuf::from("examples")]);
    let all = Objects::from_documents(&documents).unwrap();
    world.objects.bindings.extend(
        all.bindings
            .into_iter()
            .filter(|b| b.name_any() == "day-passes"),
    );
    let refused = check(&world.objects).await;
    assert!(!refused.ready);
    assert_eq!(refused.reason, Reason::CredentialsInvalid);
    assert!(
        refused.message.contains("flex.space.passes.read")
            && refused.message.contains("source.dayPasses")
            && !refused.message.contains("flex.community.visitors.read"),
        "{}",
        refused.message
    );

    // A slug naming no organization: final, not an outage.
    world.sandbox.officernd.set_granted_scopes(None);
    for connection in &mut world.objects.connections {
        if let Some(settings) = connection.spec.officernd.as_mut() {
            settings.organization = "no-such-org".into();
        }
    }
    let wrong = check(&world.objects).await;
    assert!(!wrong.ready);
    assert_eq!(wrong.reason, Reason::ReferenceNotFound);
    assert!(!wrong.retrying);
    assert!(wrong.message.contains("no-such-org"), "{}", wrong.message);
}

/// Whether the example binding `name` grants the member `member` in `view` at the sandbox's now.
fn grants(world: &World, view: &OrgView, name: &str, member: &str) -> bool {
    let binding = world
        .objects
        .bindings
        .iter()
        .find(|b| b.name_any() == name)
        .unwrap();
    let binding = engine_binding(binding, &world.objects, &view.index).unwrap();
    flexgate::engine::evaluate_binding(&view.index, &binding, world.sandbox.clock.now())
        .grants
        .keys()
        .any(|person| person.to_string() == format!("member {member}"))
}

const IVY: &str = "3e3be0000000000000000018";
const BOB: &str = "3e3be0000000000000000011";
const SYNC_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Issue #14: changes made at OfficeRnD without any webhook (a pass used up, a desk assigned,
/// which has no webhook at all) reach the picture, and so the doors, at the next incremental read
/// (`syncInterval` after the previous read), in a few requests rather than a complete read.
#[tokio::test]
async fn changes_without_a_webhook_arrive_with_the_next_incremental_read() {
    let world = World::new().await;
    let first = world.view(SYNC_INTERVAL).await;
    let after_first_read = world.officernd_requests();
    assert!(
        grants(&world, &first, "day-passes", IVY),
        "Ivy holds a valid day pass"
    );
    assert!(!grants(&world, &first, "office-101", BOB));

    // Ivy uses her last passes; Office 101 is assigned to Bob's membership. No delivery at all.
    world.sandbox.clock.advance(chrono::Duration::minutes(1));
    let mut pass = world
        .sandbox
        .officernd
        .get(Collection::Passes, "9a5500000000000000000027")
        .unwrap();
    pass["usedCount"] = json!(5);
    pass["status"] = json!("used");
    world.officernd_has(Collection::Passes, &pass);
    world.officernd_has(
        Collection::Assignments,
        &json!({
            "_id": "a550000000000000000000aa",
            "resource": "7e5000a00000000000000006",
            "membership": "3e3b5000000000000000001b",
            "startDate": "2026-01-01T00:00:00.000Z",
        }),
    );

    // Within syncInterval the picture is served as it is.
    let unchanged = world.view(SYNC_INTERVAL).await;
    assert!(std::sync::Arc::ptr_eq(&unchanged.index, &first.index));
    assert_eq!(world.officernd_requests(), after_first_read);

    // syncInterval after the first read: one incremental read.
    let memberships_listed = collection_requests(&world, Collection::Memberships);
    world.sandbox.clock.advance(chrono::Duration::minutes(15));
    let view = world.view(SYNC_INTERVAL).await;

    assert!(
        !grants(&world, &view, "day-passes", IVY),
        "the used-up pass still grants"
    );
    assert!(
        grants(&world, &view, "office-101", BOB),
        "the new assignment does not grant"
    );
    assert_eq!(view.read_at, first.read_at, "no complete read happened");
    let incremental = world.officernd_requests() - after_first_read;
    assert!(
        incremental <= 12,
        "an incremental read of the example bindings' 11 collections took {incremental} requests"
    );
    assert_eq!(
        count_requests(&world, Collection::Assignments),
        2,
        "the complete read and this resync each asked the assignments count once"
    );
    assert_eq!(
        collection_requests(&world, Collection::Memberships),
        memberships_listed,
        "memberships (no modifiedAt filter) were listed again although their count did not move"
    );

    // Nothing changed since: the next incremental read finds nothing and touches nothing.
    world.sandbox.clock.advance(chrono::Duration::minutes(15));
    let quiet = world.view(SYNC_INTERVAL).await;
    assert!(grants(&world, &quiet, "office-101", BOB));
}

/// Issue #14: a deletion an incremental read cannot see (no webhook came) never grants access
/// beyond the next complete read, which replaces the picture whole.
#[tokio::test]
async fn a_deletion_without_a_webhook_grants_nothing_after_the_next_complete_read() {
    let policy = ReadPolicy {
        complete_every: chrono::Duration::hours(1),
        ..ReadPolicy::default()
    };
    let world = World::with_policy(policy).await;
    let first = world.view(SYNC_INTERVAL).await;
    assert!(grants(
        &world,
        &first,
        "office-101",
        "3e3be0000000000000000012"
    ));

    // Acme's Office 101 assignment and Ivy's pass set are deleted at OfficeRnD, silently.
    world
        .sandbox
        .officernd
        .remove(Collection::Assignments, "a55000000000000000000020")
        .unwrap();
    world
        .sandbox
        .officernd
        .remove(Collection::Passes, "9a5500000000000000000027")
        .unwrap();

    // The deletion moves the assignments total, so the incremental read re-reads them whole (the
    // deletion is seen at once), but a deleted pass set is not listed as modified: it is known to
    // grant until the complete read.
    world.sandbox.clock.advance(chrono::Duration::minutes(15));
    let incremental = world.view(SYNC_INTERVAL).await;
    assert!(!grants(
        &world,
        &incremental,
        "office-101",
        "3e3be0000000000000000012"
    ));
    assert!(
        incremental.index.pass("9a5500000000000000000027").is_some(),
        "an incremental read cannot see a deletion (this test shows the complete read does)"
    );

    // The complete read is due an hour after the previous one; it runs in the background.
    world.sandbox.clock.advance(chrono::Duration::minutes(46));
    world.view(SYNC_INTERVAL).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let complete = loop {
        let view = world.view(SYNC_INTERVAL).await;
        if view.read_at != first.read_at || std::time::Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(complete.read_at, first.read_at, "no complete read happened");
    assert!(complete.index.pass("9a5500000000000000000027").is_none());
    assert!(!grants(&world, &complete, "day-passes", IVY));
}

/// A page that keeps failing fails the incremental read whole: the picture stays exactly as it
/// was (never half a read), and the next reconcile asks again from the same point, so nothing
/// changed meanwhile is lost.
#[tokio::test]
async fn a_failed_incremental_read_changes_nothing_and_loses_nothing() {
    let world = World::new().await;
    let first = world.view(SYNC_INTERVAL).await;
    world.sandbox.clock.advance(chrono::Duration::minutes(1));
    let mut pass = world
        .sandbox
        .officernd
        .get(Collection::Passes, "9a5500000000000000000027")
        .unwrap();
    pass["usedCount"] = json!(5);
    pass["status"] = json!("used");
    world.officernd_has(Collection::Passes, &pass);
    // Passes are read after members: members arrive, then the passes list fails for good.
    let passes = Route::path(world.sandbox.officernd.collection_path(Collection::Passes));
    world.sandbox.officernd.faults().inject_status(
        passes,
        u64::MAX,
        reqwest::StatusCode::BAD_REQUEST,
    );

    world.sandbox.clock.advance(chrono::Duration::minutes(15));
    let failed = world.view(SYNC_INTERVAL).await;
    assert!(
        std::sync::Arc::ptr_eq(&failed.index, &first.index),
        "a failed incremental read changed the picture"
    );

    world.sandbox.officernd.faults().clear();
    world.sandbox.clock.advance(chrono::Duration::minutes(15));
    let recovered = world.view(SYNC_INTERVAL).await;
    assert!(!grants(&world, &recovered, "day-passes", IVY));
}

/// The picture holds bookings up to a horizon ahead (shown in status); it moves forward as time
/// passes, and a booking beyond it arrives when the horizon reaches it.
#[tokio::test]
async fn bookings_are_held_up_to_a_horizon_that_moves_with_time() {
    let world = World::new().await;
    let now = world.sandbox.clock.now();
    let far = |days: i64, id: &str| {
        let start = now + chrono::Duration::days(days);
        json!({
            "_id": id,
            "resource": "7e5000a00000000000000008",
            "location": "10ca71000000000000000001",
            "member": BOB,
            "start": flexgate::officernd::format_timestamp(start),
            "end": flexgate::officernd::format_timestamp(start + chrono::Duration::hours(1)),
            "isCancelled": false,
            "isTentative": false,
        })
    };
    world.officernd_has(Collection::Bookings, &far(10, "b000000000000000000000a1"));
    let first = world.view(SYNC_INTERVAL).await;
    let horizon = first.booking_horizon.expect("bookings are read");
    assert_eq!(horizon, now + ReadPolicy::default().ahead);
    assert!(
        first.index.booking("b000000000000000000000a1").is_none(),
        "beyond the horizon"
    );
    assert_eq!(world.cache.booking_horizon(NS, "officernd"), Some(horizon));

    // Two days on (incremental reads every syncInterval meanwhile, none needed here): the horizon
    // came closer than a week, so it is moved forward and the booking is read.
    world
        .sandbox
        .clock
        .advance(chrono::Duration::days(2) + chrono::Duration::hours(1));
    let later = world.view(SYNC_INTERVAL).await;
    assert!(later.booking_horizon.unwrap() > horizon);
    assert!(later.index.booking("b000000000000000000000a1").is_some());
}

/// Requests to the count route of `collection`.
fn count_requests(world: &World, collection: Collection) -> u64 {
    world
        .sandbox
        .officernd
        .faults()
        .requests_matching(&Route::path(format!(
            "{}/count",
            world.sandbox.officernd.collection_path(collection)
        )))
}

/// Acme's Office 101 assignment moved to Bob's membership at OfficeRnD, without a webhook: the
/// assignments total does not move, and no membership changed.
fn move_office_101_to_bob(world: &World) {
    let mut assignment = world
        .sandbox
        .officernd
        .get(Collection::Assignments, "a55000000000000000000020")
        .unwrap();
    assignment["membership"] = json!("3e3b5000000000000000001b");
    world.officernd_has(Collection::Assignments, &assignment);
}

const ACME_MEMBER: &str = "3e3be0000000000000000012";

/// Issue #14 target "a resync with nothing changed: at most one request per collection", for
/// assignments too: a quiet resync asks `/assignments/count` once and lists nothing.
#[tokio::test]
async fn a_quiet_resync_asks_assignments_once_the_count() {
    let world = World::new().await;
    let first = world.view(SYNC_INTERVAL).await;
    assert!(first.reads.contains(Collection::Assignments));
    let listed = collection_requests(&world, Collection::Assignments);
    let counted = count_requests(&world, Collection::Assignments);

    world.sandbox.clock.advance(chrono::Duration::minutes(15));
    let quiet = world.view(SYNC_INTERVAL).await;

    assert_eq!(quiet.read_at, first.read_at, "no complete read happened");
    assert_eq!(
        collection_requests(&world, Collection::Assignments),
        listed,
        "assignments were listed although their count did not move"
    );
    assert_eq!(count_requests(&world, Collection::Assignments), counted + 1);
}

/// An incremental read updates the held picture in place: nobody holding the previous one, the
/// index is not copied (a copy of a large organization's index is tens of megabytes, every
/// `syncInterval`).
#[tokio::test]
async fn an_incremental_read_updates_the_index_in_place() {
    let world = World::new().await;
    let first = world.view(SYNC_INTERVAL).await;
    let before = Arc::as_ptr(&first.index) as usize;
    let complete_read_at = first.read_at;
    drop(first);
    let counted = count_requests(&world, Collection::Assignments);

    world.sandbox.clock.advance(chrono::Duration::minutes(15));
    let fresh = world.view(SYNC_INTERVAL).await;

    assert_eq!(fresh.read_at, complete_read_at, "no complete read happened");
    assert_eq!(
        count_requests(&world, Collection::Assignments),
        counted + 1,
        "an incremental read happened"
    );
    assert_eq!(
        Arc::as_ptr(&fresh.index) as usize,
        before,
        "the incremental read copied the index instead of updating it"
    );
}

/// Issue #14: an existing assignment changed without moving the total (a desk given to another
/// membership) is not seen by the count; it reaches the doors with the whole assignments read
/// `assignments_every` after the last one, and not before.
#[tokio::test]
async fn a_moved_desk_arrives_with_the_hourly_assignments_read_and_not_before() {
    let world = World::new().await;
    let first = world.view(SYNC_INTERVAL).await;
    assert!(grants(&world, &first, "office-101", ACME_MEMBER));
    assert!(!grants(&world, &first, "office-101", BOB));
    world.sandbox.clock.advance(chrono::Duration::minutes(1));
    move_office_101_to_bob(&world);

    // +16, +31, +46 minutes: counted, unchanged, not listed.
    let listed = collection_requests(&world, Collection::Assignments);
    for _ in 0..3 {
        world.sandbox.clock.advance(chrono::Duration::minutes(15));
        let view = world.view(SYNC_INTERVAL).await;
        assert!(grants(&world, &view, "office-101", ACME_MEMBER));
        assert!(
            !grants(&world, &view, "office-101", BOB),
            "seen before the hour"
        );
    }
    assert_eq!(collection_requests(&world, Collection::Assignments), listed);

    // +61 minutes: `assignments_every` (1 hour) since the complete read: read whole.
    world.sandbox.clock.advance(chrono::Duration::minutes(15));
    let hourly = world.view(SYNC_INTERVAL).await;
    assert_eq!(hourly.read_at, first.read_at, "no complete read happened");
    assert!(grants(&world, &hourly, "office-101", BOB));
    assert!(!grants(&world, &hourly, "office-101", ACME_MEMBER));
    assert!(collection_requests(&world, Collection::Assignments) > listed);
}

/// When OfficeRnD refuses `/assignments/count`, assignments are read whole at every resync (as
/// before the count existed), so a moved desk arrives with the next resync; the refused count is
/// not asked again.
#[tokio::test]
async fn a_refused_assignments_count_reads_them_whole_at_every_resync() {
    let world = World::new().await;
    world.sandbox.officernd.refuse_count(
        Collection::Assignments,
        Some(reqwest::StatusCode::NOT_FOUND),
    );
    let first = world.view(SYNC_INTERVAL).await;
    assert!(grants(&world, &first, "office-101", ACME_MEMBER));
    let counted = count_requests(&world, Collection::Assignments);
    assert_eq!(counted, 1, "the complete read asks the count once");
    world.sandbox.clock.advance(chrono::Duration::minutes(1));
    move_office_101_to_bob(&world);

    world.sandbox.clock.advance(chrono::Duration::minutes(15));
    let listed = collection_requests(&world, Collection::Assignments);
    let view = world.view(SYNC_INTERVAL).await;

    assert_eq!(view.read_at, first.read_at, "no complete read happened");
    assert!(grants(&world, &view, "office-101", BOB));
    assert!(!grants(&world, &view, "office-101", ACME_MEMBER));
    assert!(collection_requests(&world, Collection::Assignments) > listed);
    assert_eq!(count_requests(&world, Collection::Assignments), counted);
}
