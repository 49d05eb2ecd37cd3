//! SiteMapping end to end against the sandbox's OfficeRnD and essensys simulators, through the
//! real clients: the proposal and approval, the sync of floors, spaces, occupiers, contracts,
//! users, Wi-Fi invitations and bookings, idempotence, drift, tap-to-book, empty-site
//! provisioning, the frozen mapping and faults.

use std::collections::HashSet;
use std::path::PathBuf;

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use flexgate::api::conditions::Reason;
use flexgate::api::site_mapping::{Override, SiteMapping, SiteMappingStatus};
use flexgate::manifests;
use flexgate::officernd::Collection;
use flexgate::operator::objects::Objects;
use flexgate::operator::site_mapping::{run, SiteMappingResult};
use flexgate::sandbox::essensys::{Entity, FloorSeed, SiteSeed};
use flexgate::sandbox::faults::Route;
use flexgate::sandbox::{demo_start, Sandbox, ESSENSYS_LONDON_SITE, ESSENSYS_PARIS_SITE};
use flexgate::sitesync::bookings::MARKER_PROPERTY;
use flexgate::vendors::essensys::model::{
    BookingSource, BookingStatus, OccupierKind, Site, SiteService,
};

const ACME: &str = "c0000000000000000000000e";
const ELEPHANT: &str = "7e5000a00000000000000008";
const PHONE_BOOTH: &str = "7e5000a00000000000000009";
const BOARD_MEETING: &str = "b00000000000000000000024";
const ANN: &str = "3e3be0000000000000000010";
const BOB: &str = "3e3be0000000000000000011";

struct World {
    sandbox: Sandbox,
    objects: Objects,
    status: Option<SiteMappingStatus>,
    mapping: String,
}

impl World {
    /// The sandbox with the examples loaded and pointed at it; reconciles SiteMapping `mapping`.
    async fn new(mapping: &str) -> Self {
        let sandbox = Sandbox::start_demo().await.unwrap();
        let (documents, problems) = manifests::load(&[PathBuf::from("examples")]);
        assert!(problems.is_empty(), "{problems:?}");
        let mut objects = Objects::from_documents(&documents).unwrap();
        let untouched = sandbox.connect(&mut objects);
        assert!(untouched.is_empty(), "{untouched:?}");
        // The examples keep the cautious default rate; the simulators do not need it.
        for connection in &mut objects.connections {
            connection.spec.requests_per_second = Some(1000);
        }
        World {
            sandbox,
            objects,
            status: None,
            mapping: mapping.to_owned(),
        }
    }

    /// A second SiteMapping from `London`'s, for another location and site.
    fn add_mapping(&mut self, name: &str, location: &str, site: &str) {
        let mut mapping = self.mapping().clone();
        mapping.metadata.name = Some(name.to_owned());
        mapping.spec.location.name = Some(location.to_owned());
        mapping.spec.site = site.to_owned();
        mapping.spec.matching = Default::default();
        mapping.spec.approved = false;
        self.objects.site_mappings.push(mapping);
        self.mapping = name.to_owned();
    }

    fn mapping(&self) -> &SiteMapping {
        self.objects
            .site_mappings
            .iter()
            .find(|m| m.metadata.name.as_deref() == Some(self.mapping.as_str()))
            .unwrap()
    }

    fn mapping_mut(&mut self) -> &mut SiteMapping {
        let name = self.mapping.clone();
        self.objects
            .site_mappings
            .iter_mut()
            .find(|m| m.metadata.name.as_deref() == Some(name.as_str()))
            .unwrap()
    }

    async fn reconcile(&mut self) -> SiteMappingResult {
        let at = self.sandbox.clock.now();
        let clock = self.sandbox.clock.clock();
        let mapping = self.mapping().clone();
        let result = run(
            &mapping,
            &self.objects,
            at,
            self.status.as_ref(),
            &clock,
            None,
        )
        .await;
        self.status = Some(result.status(Some(1), at, self.status.as_ref()));
        result
    }

    async fn approve_and_sync(&mut self) -> SiteMappingResult {
        self.mapping_mut().spec.approved = true;
        let result = self.reconcile().await;
        assert_eq!(
            result.outcome.reason,
            Reason::Synced,
            "{}",
            result.outcome.message
        );
        result
    }

    fn site(&self, name: &str) -> Site {
        self.sandbox
            .essensys
            .sites()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    /// Every essensys API write so far.
    fn essensys_writes(&self) -> u64 {
        [
            Entity::Floor,
            Entity::Space,
            Entity::Occupier,
            Entity::Contract,
            Entity::User,
            Entity::Booking,
        ]
        .into_iter()
        .map(|e| self.sandbox.essensys.writes(e))
        .sum::<u64>()
            + self.sandbox.essensys.wifi_invitations().len() as u64
    }

    fn officernd_bookings(&self) -> Vec<Value> {
        self.sandbox.officernd.list(Collection::Bookings)
    }

    fn condition(&self, type_: &str) -> (String, String) {
        let status = self.status.as_ref().unwrap();
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        (c.status.clone(), c.reason.clone())
    }
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    let mut names: Vec<String> = items.iter().map(|i| name(i).to_owned()).collect();
    names.sort();
    names
}

fn assert_unique_refs<'a>(what: &str, refs: impl Iterator<Item = Option<&'a String>>) {
    let mut seen = HashSet::new();
    for reference in refs.flatten() {
        assert!(seen.insert(reference.clone()), "{what}: {reference} twice");
    }
}

#[tokio::test]
async fn proposal_matches_names_and_emails_and_waits_without_writing() {
    let mut world = World::new("london").await;
    let bookings_before = world.officernd_bookings().len();
    let result = world.reconcile().await;

    assert_eq!(result.outcome.reason, Reason::AwaitingApproval);
    assert!(!result.outcome.ready);
    assert!(result.outcome.message.contains("status.proposal"));
    assert!(result.outcome.message.contains("approved: true"));
    assert_eq!(
        world.condition("Ready"),
        ("False".into(), "AwaitingApproval".into())
    );
    assert_eq!(world.condition("Stalled").0, "False");
    assert_eq!(world.condition("Reconciling").0, "False");

    let proposal = result.proposal.clone().unwrap();
    let pairs = |m: &flexgate::api::site_mapping::EntityMatches| {
        let mut p: Vec<(String, String)> = m
            .matched
            .iter()
            .map(|p| (p.officernd.clone(), p.essensys.clone()))
            .collect();
        p.sort();
        p
    };
    // Ordinals and number words: "Floor 1" is "1st Floor", "Floor 2" is "Second Floor".
    assert_eq!(
        pairs(&proposal.floors),
        [
            ("Floor 1".to_string(), "1st Floor".to_string()),
            ("Floor 2".to_string(), "Second Floor".to_string())
        ]
    );
    // "No." and punctuation are noise; the override pairs Elephant; doNotMap wins over the
    // perfect automatic match "Phone Booth 09".
    assert_eq!(
        pairs(&proposal.resources),
        [
            ("Desk 12".to_string(), "Desk-12".to_string()),
            (
                "Elephant".to_string(),
                "Meeting Room 3 (Elephant)".to_string()
            ),
            ("Office 101".to_string(), "Office No. 101".to_string()),
        ]
    );
    assert!(proposal.resources.unmatched.is_empty());
    // Case and legal forms: "Acme Ltd" is "ACME Limited".
    assert_eq!(
        pairs(&proposal.companies),
        [("Acme Ltd".to_string(), "ACME Limited".to_string())]
    );
    assert!(proposal.companies.matched[0].score > 0.99);
    // Cyd's user exists under a differently-cased email; the rest have none yet; Eli has no email.
    assert_eq!(proposal.members_matched, 1);
    let problems = &result.problems.0;
    assert!(problems
        .iter()
        .any(|p| p.message.contains("no email address")
            && p.message.contains("3e3be0000000000000000014")));
    assert_eq!(
        problems
            .iter()
            .filter(|p| p.message.contains("no essensys user has this email"))
            .count(),
        5,
        "{problems:?}"
    );
    assert!(!problems.iter().any(|p| p.subject.contains("cyd.park")));
    assert_eq!(result.services, ["Elumo", "Wifi"]);

    // Waiting writes nothing, on either side.
    assert_eq!(world.essensys_writes(), 0);
    assert_eq!(world.officernd_bookings().len(), bookings_before);
    let again = world.reconcile().await;
    assert_eq!(again.outcome.reason, Reason::AwaitingApproval);
    assert_eq!(world.essensys_writes(), 0);
    assert!(again.events.is_empty());
}

#[tokio::test]
async fn near_names_are_not_confused_and_ambiguity_and_overrides_are_reported() {
    let mut world = World::new("london").await;
    let officernd = &world.sandbox.officernd;
    officernd
        .upsert(
            Collection::Locations,
            json!({"_id": "10ca710000000000000000aa", "name": "Hub", "timezone": "Europe/London"}),
        )
        .unwrap();
    for (id, name) in [
        ("7e5000a000000000000000a1", "Room 1"),
        ("7e5000a000000000000000a2", "Meeting Room A"),
        ("7e5000a000000000000000a3", "Conf Rm B"),
        ("7e5000a000000000000000a4", "Studio 7"),
    ] {
        officernd
            .upsert(
                Collection::Resources,
                json!({"_id": id, "name": name, "type": "meeting_room", "location": "10ca710000000000000000aa"}),
            )
            .unwrap();
    }
    world
        .sandbox
        .essensys
        .seed_site(&SiteSeed {
            name: "Hub Site".into(),
            services: vec![SiteService::Elumo],
            floors: vec![FloorSeed {
                name: "Ground".into(),
                spaces: [
                    "Room 10",
                    "Meeting Room A.",
                    "Mtg Room A",
                    "Conference Room B",
                ]
                .iter()
                .map(|s| (s.to_string(), true))
                .collect(),
            }],
            occupiers: vec![],
        })
        .unwrap();
    world.add_mapping("hub", "Hub", "Hub Site");
    let result = world.reconcile().await;
    assert_eq!(
        result.outcome.reason,
        Reason::AwaitingApproval,
        "{}",
        result.outcome.message
    );
    let resources = result.proposal.unwrap().resources;
    assert_eq!(resources.matched_count, 1);
    assert_eq!(resources.matched[0].officernd, "Conf Rm B");
    assert_eq!(resources.matched[0].essensys, "Conference Room B");
    // "Room 1" is never "Room 10"; "Studio 7" has nothing close.
    let mut unmatched = resources.unmatched.clone();
    unmatched.sort();
    assert_eq!(unmatched, ["Room 1", "Studio 7"]);
    assert_eq!(resources.ambiguous.len(), 1);
    assert_eq!(resources.ambiguous[0].officernd, "Meeting Room A");
    let mut candidates = resources.ambiguous[0].candidates.clone();
    candidates.sort();
    assert_eq!(candidates, ["Meeting Room A.", "Mtg Room A"]);
    assert_eq!(result.counts.unmatched, 3);

    // An override settles the ambiguity, doNotMap takes a name out.
    world.mapping_mut().spec.matching.resources = vec![
        Override {
            officernd: "Meeting Room A".into(),
            essensys: Some("Mtg Room A".into()),
            do_not_map: false,
        },
        Override {
            officernd: "Conf Rm B".into(),
            essensys: None,
            do_not_map: true,
        },
    ];
    let result = world.reconcile().await;
    let resources = result.proposal.unwrap().resources;
    assert!(resources.ambiguous.is_empty());
    assert_eq!(resources.matched_count, 1);
    assert_eq!(resources.matched[0].officernd, "Meeting Room A");
    assert_eq!(resources.matched[0].essensys, "Mtg Room A");
    assert!(!resources.unmatched.contains(&"Conf Rm B".to_string()));

    // An override naming something that does not exist is the person's to fix.
    world.mapping_mut().spec.matching.resources = vec![Override {
        officernd: "Meeting Room Z".into(),
        essensys: Some("Mtg Room A".into()),
        do_not_map: false,
    }];
    let result = world.reconcile().await;
    assert_eq!(result.outcome.reason, Reason::InvalidSpec);
    assert!(result.outcome.message.contains("Meeting Room Z"));
    assert_eq!(world.condition("Stalled").0, "True");
    assert_eq!(world.essensys_writes(), 0);
}

#[tokio::test]
async fn approval_syncs_everything_once_and_a_second_sync_writes_nothing() {
    let mut world = World::new("london").await;
    world.reconcile().await;
    let result = world.approve_and_sync().await;
    let site = world.site(ESSENSYS_LONDON_SITE);
    let sim = &world.sandbox.essensys;

    // Saved: the proposal is kept as approved and status.savedMapping records it.
    let saved = world
        .status
        .as_ref()
        .unwrap()
        .saved_mapping
        .as_ref()
        .expect("savedMapping");
    assert!(
        saved.fingerprint.starts_with("sha256:"),
        "{}",
        saved.fingerprint
    );
    assert_eq!(result.proposal.as_ref().unwrap().members_matched, 1);
    let reasons: Vec<&str> = result.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["MappingSaved", "SyncStarted", "SyncCompleted"]);
    assert!(result.events[2].message.contains("users: 6 in sync"));

    // Floors and spaces: matched ones linked (and named as in OfficeRnD), the doNotMap one and
    // essensys-only ones left alone, nothing duplicated.
    let floors = sim.floors(&site.id);
    assert_eq!(names(&floors, |f| &f.name), ["Floor 1", "Floor 2"]);
    assert!(floors.iter().all(|f| f.external_ref.is_some()));
    let spaces = sim.spaces(&site.id);
    assert_eq!(
        names(&spaces, |s| &s.name),
        [
            "Boardroom",
            "Desk 12",
            "Elephant",
            "Office 101",
            "Phone Booth 09"
        ]
    );
    let elephant = spaces.iter().find(|s| s.name == "Elephant").unwrap();
    assert_eq!(elephant.external_ref.as_deref(), Some(ELEPHANT));
    assert!(elephant.bookable);
    let booth = spaces.iter().find(|s| s.name == "Phone Booth 09").unwrap();
    assert_eq!(booth.external_ref, None);
    assert!(!spaces
        .iter()
        .any(|s| s.external_ref.as_deref() == Some(PHONE_BOOTH)));

    // Occupiers: Acme linked, one individual occupier per member without a company.
    let occupiers = sim.occupiers(&site.id);
    let acme = occupiers
        .iter()
        .find(|o| o.external_ref.as_deref() == Some(ACME))
        .unwrap();
    assert_eq!(acme.name, "Acme Ltd");
    let individuals: Vec<&str> = occupiers
        .iter()
        .filter(|o| o.kind == OccupierKind::Individual)
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(individuals.len(), 4);
    for name in ["Ann Lee", "Bob Stone", "Fay Quinn", "Ivy Roe"] {
        assert!(individuals.contains(&name), "{individuals:?}");
    }
    assert!(occupiers.iter().any(|o| o.name == "Wayne Enterprises"));
    // A standard contract per synced occupier.
    let contracts = sim.contracts(&site.id);
    assert_eq!(contracts.len(), 5);
    for occupier in occupiers.iter().filter(|o| o.external_ref.is_some()) {
        assert!(contracts.iter().any(|c| c.occupier_id == occupier.id));
    }

    // Users: every active member with an email, under its occupier; Cyd's existing user linked
    // (not duplicated) and its mobile number overwritten from OfficeRnD.
    let users = sim.users();
    let mut emails: Vec<String> = users.iter().map(|u| u.email.to_lowercase()).collect();
    emails.sort();
    assert_eq!(
        emails,
        [
            "ann.lee@example.com",
            "bob.stone@example.com",
            "cyd.park@example.com",
            "dee.moss@example.com",
            "fay.quinn@example.com",
            "ivy.roe@example.com"
        ]
    );
    let cyd = users
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case("cyd.park@example.com"))
        .unwrap();
    assert_eq!(cyd.occupier_id, acme.id);
    assert_eq!(cyd.mobile.as_deref(), Some("+442079460003"));
    assert_eq!(
        cyd.external_ref.as_deref(),
        Some("3e3be0000000000000000012")
    );
    let ann = users
        .iter()
        .find(|u| u.external_ref.as_deref() == Some(ANN))
        .unwrap();
    let ann_occupier = occupiers.iter().find(|o| o.id == ann.occupier_id).unwrap();
    assert_eq!(ann_occupier.kind, OccupierKind::Individual);
    assert_eq!(ann_occupier.external_ref.as_deref(), Some(ANN));
    // Members without a mobile number are listed as unable to receive an elumo pass.
    let problems = &result.problems.0;
    for who in ["dee.moss@example.com", "ivy.roe@example.com"] {
        assert!(
            problems
                .iter()
                .any(|p| p.subject.contains(who) && p.message.contains("elumo pass")),
            "{problems:?}"
        );
    }
    assert!(problems
        .iter()
        .any(|p| p.message.contains("no email address")));

    // Wi-Fi invitations: one per synced user.
    assert_eq!(sim.wifi_invitations().len(), 6);
    // The future board meeting is mirrored; the cancelled call and the doNotMap booth are not.
    let bookings = sim.bookings(&site.id);
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    assert_eq!(bookings[0].external_ref.as_deref(), Some(BOARD_MEETING));
    assert_eq!(bookings[0].space_id, elephant.id);
    assert_eq!(bookings[0].user_id.as_deref(), Some(cyd.id.as_str()));
    assert_eq!(bookings[0].occupier_id.as_deref(), Some(acme.id.as_str()));
    assert_eq!(bookings[0].source, BookingSource::Officernd);

    let summary = result.summary.clone().unwrap();
    assert_eq!(summary.floors.linked, 2);
    assert_eq!(summary.spaces.linked, 3);
    assert_eq!(summary.occupiers.created, 4);
    assert_eq!(summary.users.created, 5);
    assert_eq!(summary.users.linked, 1);
    assert_eq!(summary.wifi_invitations_sent, 6);
    assert_eq!(result.counts.granted, 6);
    assert!(result.last_sync_time.is_some());

    // Second sync: nothing to do, nothing written, no Events.
    let writes = world.essensys_writes();
    let again = world.reconcile().await;
    assert_eq!(
        again.outcome.reason,
        Reason::Synced,
        "{}",
        again.outcome.message
    );
    assert_eq!(again.summary.as_ref().unwrap().writes(), 0);
    assert_eq!(world.essensys_writes(), writes);
    assert_eq!(world.sandbox.essensys.wifi_invitations().len(), 6);
    assert!(again.events.is_empty());
    assert_eq!(again.proposal, result.proposal);
}

#[tokio::test]
async fn drift_in_essensys_is_overwritten_from_officernd_and_counted() {
    let mut world = World::new("london").await;
    world.approve_and_sync().await;
    let sim = &world.sandbox.essensys;
    let site = world.site(ESSENSYS_LONDON_SITE);
    let elephant = sim
        .spaces(&site.id)
        .into_iter()
        .find(|s| s.external_ref.as_deref() == Some(ELEPHANT))
        .unwrap();
    let ann = sim
        .users()
        .into_iter()
        .find(|u| u.external_ref.as_deref() == Some(ANN))
        .unwrap();
    sim.rename_space(&elephant.id, "Hippo").unwrap();
    sim.set_user_mobile(&ann.id, Some("+447700900999")).unwrap();

    let result = world.reconcile().await;
    let summary = result.summary.unwrap();
    assert_eq!(summary.spaces.corrected, 1);
    assert_eq!(summary.users.corrected, 1);
    assert_eq!(summary.drift_corrected(), 2);
    assert_eq!(summary.writes(), 2);
    let sim = &world.sandbox.essensys;
    let space = sim
        .spaces(&site.id)
        .into_iter()
        .find(|s| s.id == elephant.id)
        .unwrap();
    assert_eq!(space.name, "Elephant");
    let user = sim.users().into_iter().find(|u| u.id == ann.id).unwrap();
    assert_eq!(user.mobile.as_deref(), Some("+442079460001"));
    assert_eq!(world.reconcile().await.summary.unwrap().writes(), 0);
}

#[tokio::test]
async fn tap_to_book_is_created_in_officernd_once_even_when_linking_fails() {
    let mut world = World::new("london").await;
    world.approve_and_sync().await;
    let site = world.site(ESSENSYS_LONDON_SITE);
    let sim = &world.sandbox.essensys;
    let elephant = sim
        .spaces(&site.id)
        .into_iter()
        .find(|s| s.external_ref.as_deref() == Some(ELEPHANT))
        .unwrap();
    let ann = sim
        .users()
        .into_iter()
        .find(|u| u.external_ref.as_deref() == Some(ANN))
        .unwrap();
    let before = world.officernd_bookings().len();
    let tap = sim
        .tap_to_book(
            &elephant.id,
            Some(&ann.id),
            demo_start() + Duration::minutes(6),
        )
        .unwrap();

    let result = world.reconcile().await;
    let summary = result.summary.unwrap();
    assert_eq!(summary.officernd_bookings_created, 1);
    let bookings = world.officernd_bookings();
    assert_eq!(bookings.len(), before + 1);
    let created = bookings
        .iter()
        .find(|b| b.pointer(&format!("/properties/{MARKER_PROPERTY}")) == Some(&json!(tap.id)))
        .unwrap();
    assert_eq!(created["resource"], ELEPHANT);
    assert_eq!(created["member"], ANN);
    let created_id = created["_id"].as_str().unwrap().to_owned();
    let stored = world
        .sandbox
        .essensys
        .bookings(&site.id)
        .into_iter()
        .find(|b| b.id == tap.id)
        .unwrap();
    assert_eq!(stored.external_ref.as_deref(), Some(created_id.as_str()));

    // The next sync sees the OfficeRnD booking and its essensys counterpart as one: no second
    // booking in OfficeRnD, no mirror of it in essensys, nothing written.
    let again = world.reconcile().await;
    assert_eq!(again.summary.unwrap().writes(), 0);
    assert_eq!(world.officernd_bookings().len(), before + 1);
    assert_eq!(world.sandbox.essensys.bookings(&site.id).len(), 2);

    // A second tap whose essensys link fails: created in OfficeRnD, linked on the next sync
    // through the marker, never created twice.
    let tap2 = world
        .sandbox
        .essensys
        .tap_to_book(
            &elephant.id,
            Some(&ann.id),
            demo_start() + Duration::minutes(20),
        )
        .unwrap();
    world.sandbox.essensys.faults().inject_status(
        Route::path(format!("/api/v1/sites/{}/bookings/{}", site.id, tap2.id))
            .method(Method::PATCH),
        10,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    let failed = world.reconcile().await;
    assert_eq!(failed.outcome.reason, Reason::PartialFailure);
    assert_eq!(world.officernd_bookings().len(), before + 2);
    world.sandbox.essensys.faults().clear();
    let healed = world.reconcile().await;
    assert_eq!(
        healed.outcome.reason,
        Reason::Synced,
        "{}",
        healed.outcome.message
    );
    let summary = healed.summary.unwrap();
    assert_eq!(summary.officernd_bookings_created, 0);
    assert_eq!(summary.bookings.linked, 1);
    assert_eq!(world.officernd_bookings().len(), before + 2);
    let linked = world
        .sandbox
        .essensys
        .bookings(&site.id)
        .into_iter()
        .find(|b| b.id == tap2.id)
        .unwrap();
    assert!(linked.external_ref.is_some());
    assert_eq!(world.reconcile().await.summary.unwrap().writes(), 0);
}

#[tokio::test]
async fn bookings_created_changed_and_cancelled_in_officernd_are_mirrored() {
    let mut world = World::new("london").await;
    world.approve_and_sync().await;
    let site = world.site(ESSENSYS_LONDON_SITE);
    let at = |h: i64| demo_start() + Duration::hours(h);
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let booking = world
        .sandbox
        .officernd
        .upsert(
            Collection::Bookings,
            json!({"resource": ELEPHANT, "location": "10ca71000000000000000001", "member": BOB,
                   "start": stamp(at(6)), "end": stamp(at(7)), "title": "Bob's call"}),
        )
        .unwrap();
    let id = booking["_id"].as_str().unwrap().to_owned();
    let result = world.reconcile().await;
    assert_eq!(result.summary.unwrap().bookings.created, 1);
    let mirrored = |world: &World| {
        world
            .sandbox
            .essensys
            .bookings(&site.id)
            .into_iter()
            .find(|b| b.external_ref.as_deref() == Some(id.as_str()))
            .unwrap()
    };
    let copy = mirrored(&world);
    assert_eq!((copy.start, copy.end), (at(6), at(7)));
    assert_eq!(copy.status, BookingStatus::Confirmed);

    // Moved in OfficeRnD: updated in essensys.
    let mut moved = booking.clone();
    moved["start"] = json!(stamp(at(8)));
    moved["end"] = json!(stamp(at(9)));
    world
        .sandbox
        .officernd
        .upsert(Collection::Bookings, moved.clone())
        .unwrap();
    let result = world.reconcile().await;
    assert_eq!(result.summary.unwrap().bookings.corrected, 1);
    let copy = mirrored(&world);
    assert_eq!((copy.start, copy.end), (at(8), at(9)));

    // Cancelled in OfficeRnD: cancelled in essensys, once.
    let mut cancelled = moved;
    cancelled["isCancelled"] = json!(true);
    world
        .sandbox
        .officernd
        .upsert(Collection::Bookings, cancelled)
        .unwrap();
    let result = world.reconcile().await;
    assert_eq!(result.summary.unwrap().bookings_cancelled, 1);
    assert_eq!(mirrored(&world).status, BookingStatus::Cancelled);
    assert_eq!(world.reconcile().await.summary.unwrap().writes(), 0);
}

#[tokio::test]
async fn an_empty_site_is_provisioned_only_when_asked_and_only_once() {
    let mut world = World::new("london").await;
    world.add_mapping("paris", "Paris", ESSENSYS_PARIS_SITE);
    world.mapping_mut().spec.sync.auto_send_wifi_invitations = true;
    let proposal = world.reconcile().await;
    assert_eq!(proposal.outcome.reason, Reason::AwaitingApproval);
    assert!(proposal.outcome.message.contains("is empty"));

    // Approved without provisionEmptySite: nothing saved, nothing created.
    world.mapping_mut().spec.approved = true;
    let refused = world.reconcile().await;
    assert_eq!(refused.outcome.reason, Reason::InvalidSpec);
    assert!(refused.outcome.message.contains("provisionEmptySite"));
    assert!(refused.saved.is_none());
    assert_eq!(world.essensys_writes(), 0);
    assert_eq!(world.condition("Stalled").0, "True");

    // Recreated with provisionEmptySite: everything created once, recorded.
    world.status = None;
    world.mapping_mut().spec.provision_empty_site = true;
    let provisioned = world.approve_and_sync().await;
    let when = provisioned.provisioned_time.unwrap();
    assert!(provisioned.summary.as_ref().unwrap().provisioned);
    assert!(provisioned
        .events
        .iter()
        .any(|e| e.reason == "SiteProvisioned"));
    let site = world.site(ESSENSYS_PARIS_SITE);
    let sim = &world.sandbox.essensys;
    assert_eq!(names(&sim.floors(&site.id), |f| &f.name), ["Floor 1"]);
    assert_eq!(names(&sim.spaces(&site.id), |s| &s.name), ["Atelier"]);
    assert_eq!(
        names(&sim.occupiers(&site.id), |o| &o.name),
        ["Globex Corporation"]
    );
    assert_eq!(sim.contracts(&site.id).len(), 1);
    assert!(sim
        .users()
        .iter()
        .any(|u| u.email == "hal.ives@example.com"));
    // Wi-Fi only: the invitation goes out, no elumo complaints, no bookings.
    assert_eq!(sim.wifi_invitations().len(), 1);
    assert!(!provisioned
        .problems
        .0
        .iter()
        .any(|p| p.message.contains("elumo")));
    assert_eq!(world.status.as_ref().unwrap().services, ["Wifi"]);

    // A second reconcile does not provision again.
    let writes = world.essensys_writes();
    let again = world.reconcile().await;
    assert_eq!(again.outcome.reason, Reason::Synced);
    assert_eq!(again.provisioned_time, Some(when));
    assert!(!again.summary.as_ref().unwrap().provisioned);
    assert_eq!(world.essensys_writes(), writes);

    // A provisioned mapping that finds its site empty again never provisions twice.
    world
        .sandbox
        .essensys
        .seed_site(&SiteSeed {
            name: "Emptied".into(),
            services: vec![SiteService::Wifi],
            ..SiteSeed::default()
        })
        .unwrap();
    world.mapping_mut().spec.site = "Emptied".into();
    let emptied = world.reconcile().await;
    assert_eq!(emptied.outcome.reason, Reason::InvalidSpec);
    assert!(emptied.outcome.message.contains("never twice"));
    assert_eq!(world.essensys_writes(), writes);
}

#[tokio::test]
async fn an_approved_mapping_is_frozen() {
    let mut world = World::new("london").await;
    let first = world.approve_and_sync().await;
    let writes = world.essensys_writes();
    world.mapping_mut().spec.matching.threshold = 0.6;
    let frozen = world.reconcile().await;
    assert_eq!(frozen.outcome.reason, Reason::FrozenMappingChanged);
    assert!(frozen.outcome.message.contains("frozen"));
    assert_eq!(
        world.condition("Stalled"),
        ("True".into(), "FrozenMappingChanged".into())
    );
    assert_eq!(frozen.proposal, first.proposal);
    assert_eq!(world.essensys_writes(), writes);

    // Un-approving is an edit of the frozen mapping too.
    world.mapping_mut().spec.matching.threshold = 0.8;
    world.mapping_mut().spec.approved = false;
    assert_eq!(
        world.reconcile().await.outcome.reason,
        Reason::FrozenMappingChanged
    );
    // Restored: syncing again, with nothing to do.
    world.mapping_mut().spec.approved = true;
    let restored = world.reconcile().await;
    assert_eq!(restored.outcome.reason, Reason::Synced);
    assert_eq!(world.essensys_writes(), writes);
}

#[tokio::test]
async fn a_503_burst_is_finished_by_the_next_reconcile_without_duplicates() {
    let mut world = World::new("london").await;
    world.reconcile().await;
    let site = world.site(ESSENSYS_LONDON_SITE);
    // Creates fail for a while (a POST is never repeated blindly: it could create twice).
    world.sandbox.essensys.faults().inject_status(
        Route::path_prefix(format!("/api/v1/sites/{}/", site.id)).method(Method::POST),
        4,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    world.mapping_mut().spec.approved = true;
    let failed = world.reconcile().await;
    assert_eq!(
        failed.outcome.reason,
        Reason::PartialFailure,
        "{}",
        failed.outcome.message
    );
    assert!(failed.counts.errors > 0);
    assert_eq!(world.condition("Reconciling").0, "True");
    assert_eq!(world.condition("Stalled").0, "False");

    let healed = world.reconcile().await;
    assert_eq!(
        healed.outcome.reason,
        Reason::Synced,
        "{}",
        healed.outcome.message
    );
    let sim = &world.sandbox.essensys;
    assert_eq!(sim.users().len(), 6);
    assert_eq!(sim.occupiers(&site.id).len(), 6);
    assert_eq!(sim.contracts(&site.id).len(), 5);
    assert_eq!(sim.bookings(&site.id).len(), 1);
    assert_eq!(sim.wifi_invitations().len(), 6);
    assert_unique_refs(
        "floors",
        sim.floors(&site.id).iter().map(|f| f.external_ref.as_ref()),
    );
    assert_unique_refs(
        "spaces",
        sim.spaces(&site.id).iter().map(|s| s.external_ref.as_ref()),
    );
    assert_unique_refs(
        "occupiers",
        sim.occupiers(&site.id)
            .iter()
            .map(|o| o.external_ref.as_ref()),
    );
    assert_unique_refs("users", sim.users().iter().map(|u| u.external_ref.as_ref()));

    // Lists failing beyond the retries: nothing is changed, the status says why, and the next
    // reconcile is clean.
    world.sandbox.essensys.faults().inject_status(
        Route::path_prefix("/api/v1/").method(Method::GET),
        50,
        StatusCode::SERVICE_UNAVAILABLE,
    );
    let writes = world.essensys_writes();
    let down = world.reconcile().await;
    assert_eq!(down.outcome.reason, Reason::VendorUnreachable);
    assert_eq!(world.essensys_writes(), writes);
    assert!(world.status.as_ref().unwrap().proposal.is_some());
    world.sandbox.essensys.faults().clear();
    let back = world.reconcile().await;
    assert_eq!(back.outcome.reason, Reason::Synced);
    assert_eq!(back.summary.unwrap().writes(), 0);
}
