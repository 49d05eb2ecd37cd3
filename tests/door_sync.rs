//! Door-access sync against the Kisi, Salto KS and Brivo simulators: the examples reconciled
//! through the real clients, every rule of the integration guides checked at the vendor.

use std::path::PathBuf;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use flexgate::api::access_group_binding::{AccessGroupBinding, BindingMode, GroupRef};
use flexgate::api::conditions::Reason;
use flexgate::api::{Vendor, ACKNOWLEDGE_REVOCATION};
use flexgate::engine::BindingKey;
use flexgate::manifests;
use flexgate::officernd::collection::Collection;
use flexgate::operator::binding::BindingResult;
use flexgate::operator::objects::Objects;
use flexgate::operator::runner::{reconcile_all, record_statuses, ClientCache};
use flexgate::sandbox::faults::Route;
use flexgate::sandbox::{demo_start, Sandbox};

struct World {
    sandbox: Sandbox,
    objects: Objects,
    clients: ClientCache,
}

impl World {
    async fn new() -> Self {
        let sandbox = Sandbox::start_demo().await.unwrap();
        let (documents, problems) = manifests::load(&[PathBuf::from("examples")]);
        assert!(problems.is_empty());
        let mut objects = Objects::from_documents(&documents).unwrap();
        let untouched = sandbox.connect(&mut objects);
        assert!(
            untouched.iter().all(|u| u.contains("Essensys")),
            "{untouched:?}"
        );
        World {
            sandbox,
            objects,
            clients: ClientCache::default(),
        }
    }

    async fn sync_at(&mut self, at: DateTime<Utc>) -> Vec<(BindingKey, BindingResult)> {
        self.sandbox.clock.set(at);
        let clock = self.sandbox.clock.clock();
        let pass = reconcile_all(&self.objects, at, &mut self.clients, &clock).await;
        // Statuses stay with the objects, as in a cluster (the revocation guard reads them).
        record_statuses(&mut self.objects, &pass, at);
        pass.results
    }

    fn members(&self, vendor: Vendor, group: &str) -> Vec<String> {
        self.sandbox.group_members(vendor, group)
    }

    fn binding_mut(&mut self, name: &str) -> &mut AccessGroupBinding {
        self.objects
            .bindings
            .iter_mut()
            .find(|b| b.metadata.name.as_deref() == Some(name))
            .unwrap()
    }

    fn writes(&self) -> (u64, u64, usize) {
        (
            self.sandbox.kisi.write_calls(),
            self.sandbox.salto_ks.write_calls(),
            self.sandbox.brivo.write_calls().len(),
        )
    }
}

fn at(minutes: i64) -> DateTime<Utc> {
    demo_start() + Duration::minutes(minutes)
}

fn result<'a>(results: &'a [(BindingKey, BindingResult)], name: &str) -> &'a BindingResult {
    &results.iter().find(|(k, _)| k.name == name).unwrap().1
}

fn assert_all_synced(results: &[(BindingKey, BindingResult)]) {
    for (key, result) in results {
        assert_eq!(
            result.outcome.reason,
            Reason::Synced,
            "{key}: {}",
            result.outcome.message
        );
    }
}

const BUILDING: [&str; 3] = [
    "bob.stone@example.com",
    "cyd.park@example.com",
    "dee.moss@example.com",
];

#[tokio::test]
async fn managed_groups_follow_officernd_and_nothing_else_is_touched() {
    let mut world = World::new().await;
    let results = world.sync_at(at(0)).await;
    assert_all_synced(&results);

    // Managed groups hold exactly the entitled people; the person added by hand is removed.
    assert_eq!(
        world.members(Vendor::Kisi, "OFFICERND_Lobby"),
        [
            "ann.lee@example.com",
            "fay.quinn@example.com",
            "ivy.roe@example.com"
        ]
    );
    assert_eq!(
        world.members(Vendor::Kisi, "OFFICERND_Office 101"),
        ["cyd.park@example.com", "dee.moss@example.com"]
    );
    assert_eq!(
        world.members(Vendor::SaltoKS, "OFFICERND_Floor 1"),
        BUILDING
    );
    assert_eq!(
        world.members(Vendor::Brivo, "OFFICERND_London Building"),
        BUILDING
    );
    assert!(world
        .members(Vendor::Brivo, "OFFICERND_Elephant Room")
        .is_empty());
    // Groups no binding names are never modified.
    assert_eq!(
        world.members(Vendor::Kisi, "Cleaners"),
        ["carl@cleaning.example"]
    );
    assert_eq!(
        world.members(Vendor::SaltoKS, "Staff"),
        ["sam.staff@example.com"]
    );
    assert_eq!(
        world.members(Vendor::Brivo, "VIP Guests"),
        ["vera@vip.example"]
    );
    // Accounts are never deleted: the intruder lost the group, not the account.
    assert!(world
        .sandbox
        .kisi
        .users()
        .iter()
        .any(|u| u.email == "mallory@example.net"));
    // Existing accounts are matched by email case-insensitively: no duplicate for Ann.
    let anns = world
        .sandbox
        .kisi
        .users()
        .iter()
        .filter(|u| u.email.eq_ignore_ascii_case("ann.lee@example.com"))
        .count();
    assert_eq!(anns, 1);
    // People without an email are never created.
    assert!(world.sandbox.kisi.users().iter().all(|u| !u
        .name
        .as_deref()
        .unwrap_or_default()
        .contains("Eli")));

    // A second sync with nothing changed makes no write call at any vendor.
    let before = world.writes();
    let results = world.sync_at(at(1)).await;
    assert_all_synced(&results);
    assert_eq!(world.writes(), before, "an unchanged sync must not write");
}

#[tokio::test]
async fn booking_windows_and_membership_ends_reach_the_doors() {
    let mut world = World::new().await;
    world.sync_at(at(0)).await;
    let room = "OFFICERND_Elephant Room";
    world.sync_at(at(105)).await;
    assert_eq!(
        world.members(Vendor::Brivo, room),
        [
            "cyd.park@example.com",
            "dee.moss@example.com",
            "zoe.guest@example.org"
        ]
    );
    world.sync_at(at(185)).await;
    assert!(world.members(Vendor::Brivo, room).is_empty());
    // Fay's membership ends on the 23rd; from midnight London time she is out of the lobby.
    world.sync_at(at(16 * 60)).await;
    assert!(!world
        .members(Vendor::Kisi, "OFFICERND_Lobby")
        .contains(&"fay.quinn@example.com".to_owned()));
}

#[tokio::test]
async fn vendor_specific_rules_hold() {
    let mut world = World::new().await;
    world.sync_at(at(0)).await;
    // Salto KS: a user is invited by email when first added to the site.
    for email in BUILDING {
        assert!(
            world.sandbox.salto_ks.invited(email),
            "{email} was not invited to Salto KS"
        );
    }
    // Brivo: users carry the OfficeRnD id as externalId; BrandedApp mobile passes send no Brivo email.
    let users = world.sandbox.brivo.users();
    let bob = users
        .iter()
        .find(|u| u.to_string().contains("bob.stone@example.com"))
        .unwrap();
    assert!(
        bob["externalId"].as_str().is_some_and(|id| id.len() == 24),
        "{bob}"
    );
    assert!(bob.get("customFields").is_none() || bob["customFields"].is_array());
    assert!(
        world.sandbox.brivo.emails_sent().is_empty(),
        "{:?}",
        world.sandbox.brivo.emails_sent()
    );
    // Kisi, notification policy KisiDefault: people whose account flexgate created hear once;
    // Ann, who already had an account, is not notified.
    let notified = world.sandbox.kisi.notified_emails();
    assert!(notified.iter().any(|e| e == "fay.quinn@example.com"));
    assert!(!notified
        .iter()
        .any(|e| e.eq_ignore_ascii_case("ann.lee@example.com")));
    assert_eq!(
        notified
            .iter()
            .filter(|e| *e == "cyd.park@example.com")
            .count(),
        1
    );
    // A restarted operator (new clients, nothing remembered) tells nobody again.
    world.clients = ClientCache::default();
    assert_all_synced(&world.sync_at(at(1)).await);
    assert_eq!(world.sandbox.kisi.notified_emails(), notified);
}

#[tokio::test]
async fn a_group_without_the_managed_prefix_is_refused_and_left_alone() {
    let mut world = World::new().await;
    world.binding_mut("office-101").spec.groups = vec![GroupRef {
        id: None,
        name: Some("Cleaners".into()),
    }];
    let results = world.sync_at(at(0)).await;
    let refused = result(&results, "office-101");
    assert_eq!(
        refused.outcome.reason,
        Reason::UnmanagedGroup,
        "{}",
        refused.outcome.message
    );
    assert!(refused.outcome.message.contains("OFFICERND_"));
    assert_eq!(
        world.members(Vendor::Kisi, "Cleaners"),
        ["carl@cleaning.example"]
    );
}

#[tokio::test]
async fn mass_revocation_is_blocked_until_acknowledged() {
    let mut world = World::new().await;
    world.sync_at(at(0)).await;
    // Someone fills the managed lobby group by hand: removing them all would exceed 20%.
    let lobby = world.sandbox.group_id(Vendor::Kisi, "OFFICERND_Lobby");
    for i in 0..6 {
        let id = world
            .sandbox
            .kisi
            .add_user(&format!("Hand Added {i}"), &format!("hand{i}@example.net"))
            .unwrap();
        world
            .sandbox
            .kisi
            .dashboard_add_to_group(&id, &lobby)
            .unwrap();
    }
    let results = world.sync_at(at(1)).await;
    let blocked = result(&results, "hot-desk-lobby");
    assert_eq!(
        blocked.outcome.reason,
        Reason::MassRevocationBlocked,
        "{}",
        blocked.outcome.message
    );
    assert_eq!(
        world.members(Vendor::Kisi, "OFFICERND_Lobby").len(),
        9,
        "nobody may be removed"
    );
    let plan_id = blocked
        .outcome
        .message
        .split(&format!("{ACKNOWLEDGE_REVOCATION}="))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    for name in ["hot-desk-lobby", "day-passes"] {
        world
            .binding_mut(name)
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(ACKNOWLEDGE_REVOCATION.into(), plan_id.clone());
    }
    let results = world.sync_at(at(2)).await;
    assert_eq!(
        result(&results, "hot-desk-lobby").outcome.reason,
        Reason::Synced
    );
    assert_eq!(world.members(Vendor::Kisi, "OFFICERND_Lobby").len(), 3);
}

/// Every managed group (vendor, name) of the demo, with its members.
fn managed_groups(world: &World) -> Vec<(Vendor, &'static str, Vec<String>)> {
    [
        (Vendor::Kisi, "OFFICERND_Lobby"),
        (Vendor::Kisi, "OFFICERND_Office 101"),
        (Vendor::SaltoKS, "OFFICERND_Floor 1"),
        (Vendor::Brivo, "OFFICERND_London Building"),
        (Vendor::Brivo, "OFFICERND_Elephant Room"),
    ]
    .into_iter()
    .map(|(vendor, group)| (vendor, group, world.members(vendor, group)))
    .collect()
}

#[tokio::test]
async fn every_membership_vanishing_is_held_although_each_group_loses_few() {
    let mut world = World::new().await;
    world.sync_at(at(0)).await;
    let before = managed_groups(&world);
    assert!(before.iter().all(|(_, _, people)| people.len() <= 3));
    // Every membership disappears at OfficeRnD (a bad import, a wrong organization).
    let officernd = &world.sandbox.officernd;
    for membership in officernd.list(Collection::Memberships) {
        let id = membership["_id"].as_str().unwrap().to_owned();
        officernd.remove(Collection::Memberships, &id);
    }
    let results = world.sync_at(at(1)).await;
    assert_eq!(
        managed_groups(&world),
        before,
        "nobody may lose access: {results:#?}"
    );
    let held: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.outcome.reason == Reason::MassRevocationBlocked)
        .map(|(key, _)| key.name.as_str())
        .collect();
    for name in [
        "hot-desk-lobby",
        "office-101",
        "london-floor-1",
        "london-building",
    ] {
        assert!(held.contains(&name), "{name} must be held: {held:?}");
    }
    let message = &result(&results, "london-building").outcome.message;
    assert!(
        message.contains("3 of the 3 people with managed access on this vendor connection"),
        "{message}"
    );
}

#[tokio::test]
async fn plan_mode_reports_and_writes_nothing() {
    let mut world = World::new().await;
    for binding in &mut world.objects.bindings {
        binding.spec.mode = BindingMode::Plan;
    }
    let results = world.sync_at(at(0)).await;
    assert_eq!(world.writes(), (0, 0, 0));
    let lobby = result(&results, "hot-desk-lobby");
    assert_eq!(lobby.outcome.reason, Reason::Planned);
    assert!(
        lobby.outcome.message.contains("would grant 3 and revoke 1"),
        "{}",
        lobby.outcome.message
    );
    assert_eq!(
        lobby.planned.as_ref().map(|p| (p.grants, p.revokes)),
        Some((3, 1))
    );
}

#[tokio::test]
async fn faults_end_in_exactly_the_desired_state_without_duplicates() {
    let mut world = World::new().await;
    for faults in [
        world.sandbox.kisi.faults(),
        world.sandbox.salto_ks.faults(),
        world.sandbox.brivo.faults(),
    ] {
        faults.random_status(Route::any(), 0.15, StatusCode::BAD_GATEWAY);
        faults.inject_429(Route::any(), 3, 1);
    }
    let mut synced = false;
    for attempt in 0..12 {
        let results = world.sync_at(at(attempt)).await;
        if results
            .iter()
            .all(|(_, r)| r.outcome.reason == Reason::Synced)
        {
            synced = true;
            break;
        }
    }
    assert!(synced, "never converged under faults");
    for faults in [
        world.sandbox.kisi.faults(),
        world.sandbox.salto_ks.faults(),
        world.sandbox.brivo.faults(),
    ] {
        faults.clear();
        assert!(faults.injected() > 0);
    }
    assert_eq!(
        world.members(Vendor::Kisi, "OFFICERND_Lobby"),
        [
            "ann.lee@example.com",
            "fay.quinn@example.com",
            "ivy.roe@example.com"
        ]
    );
    assert_eq!(
        world.members(Vendor::SaltoKS, "OFFICERND_Floor 1"),
        BUILDING
    );
    assert_eq!(
        world.members(Vendor::Brivo, "OFFICERND_London Building"),
        BUILDING
    );
    let mut kisi_emails: Vec<String> = world
        .sandbox
        .kisi
        .users()
        .iter()
        .map(|u| u.email.to_ascii_lowercase())
        .collect();
    let total = kisi_emails.len();
    kisi_emails.sort();
    kisi_emails.dedup();
    assert_eq!(kisi_emails.len(), total, "a Kisi user was created twice");
    let mut salto: Vec<String> = world
        .sandbox
        .salto_ks
        .users()
        .iter()
        .filter_map(|u| u.email.clone())
        .collect();
    let total = salto.len();
    salto.sort();
    salto.dedup();
    assert_eq!(salto.len(), total, "a Salto KS user was created twice");
    let brivo = world.sandbox.brivo.users();
    let mut external: Vec<String> = brivo
        .iter()
        .filter_map(|u| u["externalId"].as_str().map(str::to_owned))
        .collect();
    let total = external.len();
    external.sort();
    external.dedup();
    assert_eq!(external.len(), total, "a Brivo user was created twice");
}
