//! Unit tests of the site sync's planning, from small fixtures and no server: what each step of
//! the entity sync and of the booking mirror decides to write for a given read state.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use crate::api::site_mapping::{Matching, Override};
use crate::officernd::model::{self as ornd};
use crate::vendors::essensys::model::{
    Booking, BookingSource, BookingStatus, BookingUpdate, Contract, ContractKind, Floor,
    FloorUpdate, NewFloor, NewOccupier, NewSpace, OccupierKind, Site, SiteService, Space,
    SpaceUpdate, User, UserUpdate,
};

use super::bookings::{self, MirrorStep, TapStep, MARKER_PROPERTY};
use super::entities::{self, Links, Op, SiteState, Write};
use super::LocationView;

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// The OfficeRnD side: one location and its objects.
struct Officernd {
    location: ornd::Location,
    floors: Vec<ornd::Floor>,
    resources: Vec<ornd::Resource>,
    companies: Vec<ornd::Company>,
    members: Vec<ornd::Member>,
    bookings: Vec<ornd::Booking>,
}

impl Officernd {
    fn new() -> Self {
        Self {
            location: from(json!({"_id": "loc", "name": "HQ", "timezone": "Europe/London"})),
            floors: Vec::new(),
            resources: Vec::new(),
            companies: Vec::new(),
            members: Vec::new(),
            bookings: Vec::new(),
        }
    }

    fn view(&self) -> LocationView<'_> {
        LocationView {
            location: &self.location,
            floors: self.floors.iter().collect(),
            resources: self.resources.iter().collect(),
            companies: self.companies.iter().collect(),
            members: self.members.iter().collect(),
            bookings: self.bookings.iter().collect(),
        }
    }
}

fn ornd_floor(id: &str, name: &str) -> ornd::Floor {
    from(json!({"_id": id, "name": name, "location": "loc"}))
}

fn ornd_resource(id: &str, name: &str, kind: &str, floor: &str) -> ornd::Resource {
    from(json!({"_id": id, "name": name, "type": kind, "location": "loc", "floor": floor}))
}

fn ornd_member(id: &str, name: &str, email: Option<&str>, company: Option<&str>) -> ornd::Member {
    from(json!({
        "_id": id, "name": name, "email": email, "company": company, "location": "loc",
        "status": "active", "phone": "+44 7700 900123",
    }))
}

fn site(services: &[SiteService]) -> SiteState {
    SiteState {
        site: Site {
            id: "site".into(),
            name: "Site".into(),
            services: services.to_vec(),
            time_zone: None,
        },
        floors: Vec::new(),
        spaces: Vec::new(),
        occupiers: Vec::new(),
        contracts: Vec::new(),
        users: Vec::new(),
    }
}

fn ess_floor(id: &str, name: &str, external_ref: Option<&str>) -> Floor {
    Floor {
        id: id.into(),
        site_id: "site".into(),
        name: name.into(),
        external_ref: external_ref.map(Into::into),
    }
}

fn matching() -> Matching {
    from(json!({}))
}

fn write<U, N>(key: &str, subject: &str, op: Op<U, N>) -> Write<U, N> {
    Write {
        key: key.into(),
        subject: subject.into(),
        op,
    }
}

#[test]
fn floors_drifted_are_corrected_matched_are_linked_and_the_rest_created() {
    let mut ornd = Officernd::new();
    ornd.floors = vec![
        ornd_floor("f1", "Level 1"),
        ornd_floor("f2", "Level 2"),
        ornd_floor("f3", "Roof"),
        ornd_floor("f4", "Basement"),
    ];
    let mut state = site(&[]);
    state.floors = vec![
        ess_floor("e1", "Level one (old)", Some("f1")),
        ess_floor("e2", "Level 2", None),
        ess_floor("e4", "Basement", Some("f4")),
    ];

    let plan = entities::plan_floors(&ornd.view(), &state, &matching());

    assert_eq!(
        plan.linked,
        vec![("f1".into(), "e1".into()), ("f4".into(), "e4".into())]
    );
    assert_eq!((plan.unchanged, plan.skipped), (1, 0));
    assert_eq!(
        plan.writes,
        vec![
            write(
                "f1",
                "floor Level 1",
                Op::Correct {
                    id: "e1".into(),
                    update: FloorUpdate {
                        name: Some("Level 1".into()),
                        external_ref: None
                    }
                }
            ),
            write(
                "f2",
                "floor Level 2",
                Op::Link {
                    id: "e2".into(),
                    update: FloorUpdate {
                        name: Some("Level 2".into()),
                        external_ref: Some("f2".into())
                    }
                }
            ),
            write(
                "f3",
                "floor Roof",
                Op::Create(NewFloor {
                    name: "Roof".into(),
                    external_ref: Some("f3".into())
                })
            ),
        ]
    );
    assert!(plan.problems.is_empty());
}

#[test]
fn settings_that_cannot_apply_skip_every_unlinked_floor_and_say_so() {
    let mut ornd = Officernd::new();
    ornd.floors = vec![ornd_floor("f1", "Level 1"), ornd_floor("f2", "Level 2")];
    let mut matching = matching();
    let skip = Override {
        officernd: "Level 1".into(),
        essensys: None,
        do_not_map: true,
    };
    matching.floors = vec![skip.clone(), skip];

    let plan = entities::plan_floors(&ornd.view(), &site(&[]), &matching);

    assert!(plan.writes.is_empty(), "{:?}", plan.writes);
    assert_eq!(plan.skipped, 2);
    assert_eq!(plan.problems.len(), 1);
    assert_eq!(plan.problems[0].subject, "matching floors");
}

#[test]
fn do_not_map_floors_are_skipped_not_created() {
    let mut ornd = Officernd::new();
    ornd.floors = vec![ornd_floor("f1", "Level 1"), ornd_floor("f2", "Level 2")];
    let mut matching = matching();
    matching.floors = vec![Override {
        officernd: "Level 1".into(),
        essensys: None,
        do_not_map: true,
    }];

    let plan = entities::plan_floors(&ornd.view(), &site(&[]), &matching);

    assert_eq!(plan.skipped, 1);
    let keys: Vec<&str> = plan.writes.iter().map(|w| w.key.as_str()).collect();
    assert_eq!(keys, vec!["f2"]);
}

#[test]
fn spaces_follow_the_floor_links_the_floor_step_left() {
    let mut ornd = Officernd::new();
    ornd.resources = vec![
        ornd_resource("r1", "Elephant", "meeting_room", "f1"),
        ornd_resource("r2", "Office 7", "team_room", "f1"),
    ];
    let mut state = site(&[]);
    state.spaces = vec![Space {
        id: "s2".into(),
        site_id: "site".into(),
        floor_id: Some("e-old".into()),
        name: "Office 7".into(),
        bookable: true,
        capacity: None,
        external_ref: Some("r2".into()),
    }];
    // The floor step created f1 as e9 in this pass.
    let floors = HashMap::from([("f1".to_owned(), "e9".to_owned())]);

    let plan = entities::plan_spaces(&ornd.view(), &state, &matching(), &floors);

    assert_eq!(
        plan.writes,
        vec![
            write(
                "r2",
                "resource Office 7",
                Op::Correct {
                    id: "s2".into(),
                    update: SpaceUpdate {
                        floor_id: Some("e9".into()),
                        bookable: Some(false),
                        ..SpaceUpdate::default()
                    }
                }
            ),
            write(
                "r1",
                "resource Elephant",
                Op::Create(NewSpace {
                    floor_id: Some("e9".into()),
                    name: "Elephant".into(),
                    bookable: true,
                    capacity: None,
                    external_ref: Some("r1".into())
                })
            ),
        ]
    );
}

#[test]
fn members_without_a_company_get_an_occupier_and_unusable_ones_are_reported() {
    let mut ornd = Officernd::new();
    ornd.members = vec![
        ornd_member("m1", "Ann Lee", Some("ann@example.com"), None),
        ornd_member("m2", "Bo Park", Some("bo@example.com"), Some("c1")),
        ornd_member("m3", "No Mail", None, None),
        ornd_member("m4", "Twin One", Some("twin@example.com"), None),
        ornd_member("m5", "Twin Two", Some("TWIN@example.com"), None),
    ];

    let (plan, member_occupier) = entities::plan_individual_occupiers(&ornd.view(), &site(&[]));

    assert_eq!(
        member_occupier,
        HashMap::from([
            ("m1".to_owned(), "m1".to_owned()),
            ("m2".to_owned(), "c1".to_owned())
        ])
    );
    assert_eq!(
        plan.writes,
        vec![write(
            "m1",
            "member Ann Lee",
            Op::Create(NewOccupier {
                name: "Ann Lee".into(),
                kind: OccupierKind::Individual,
                email: Some("ann@example.com".into()),
                external_ref: Some("m1".into())
            })
        )]
    );
    let subjects: HashSet<&str> = plan.problems.iter().map(|p| p.subject.as_str()).collect();
    assert_eq!(
        subjects,
        HashSet::from(["member No Mail", "member twin@example.com"])
    );
}

#[test]
fn contracts_cover_every_occupier_in_sync_once() {
    let mut state = site(&[]);
    state.contracts = vec![Contract {
        id: "k1".into(),
        site_id: "site".into(),
        occupier_id: "o1".into(),
        kind: ContractKind::Standard,
        start_date: at().date_naive() - Duration::days(30),
        end_date: None,
        external_ref: Some("c1".into()),
    }];
    let occupiers = HashMap::from([
        ("c1".to_owned(), "o1".to_owned()),
        ("m1".to_owned(), "o2".to_owned()),
    ]);

    let plan = entities::plan_contracts(&state, &occupiers, at());

    assert_eq!(plan.unchanged, 1);
    assert_eq!(plan.creates.len(), 1);
    let (key, new) = &plan.creates[0];
    assert_eq!((key.as_str(), new.occupier_id.as_str()), ("m1", "o2"));
    assert_eq!(new.start_date, at().date_naive());
}

fn ess_user(id: &str, email: &str, occupier: &str, external_ref: Option<&str>) -> User {
    User {
        id: id.into(),
        occupier_id: occupier.into(),
        email: email.into(),
        first_name: "Bo".into(),
        last_name: "Park".into(),
        mobile: Some("+447700900123".into()),
        external_ref: external_ref.map(Into::into),
        wifi_invitation_sent_at: None,
    }
}

#[test]
fn users_are_linked_by_email_created_when_missing_and_skipped_without_an_occupier() {
    let mut ornd = Officernd::new();
    ornd.members = vec![
        ornd_member("m1", "Ann Lee", Some("ann@example.com"), None),
        ornd_member("m2", "Bo Park", Some("Bo@Example.com"), Some("c1")),
        ornd_member("m3", "Cy Moss", Some("cy@example.com"), Some("c2")),
    ];
    let mut state = site(&[SiteService::Elumo]);
    state.users = vec![ess_user("u2", "bo@example.com", "o1", None)];
    let links = Links {
        occupiers: HashMap::from([
            ("c1".to_owned(), "o1".to_owned()),
            ("m1".to_owned(), "o3".to_owned()),
        ]),
        member_occupier: HashMap::from([
            ("m1".to_owned(), "m1".to_owned()),
            ("m2".to_owned(), "c1".to_owned()),
            ("m3".to_owned(), "c2".to_owned()),
        ]),
        ..Links::default()
    };

    let plan = entities::plan_users(&ornd.view(), &state, &links);

    assert_eq!(plan.existing.keys().collect::<Vec<_>>(), vec!["m2"]);
    let step = plan.step;
    assert_eq!((step.unchanged, step.skipped), (0, 1));
    assert_eq!(step.writes.len(), 2);
    match &step.writes[0].op {
        Op::Create(new) => {
            assert_eq!(step.writes[0].key, "m1");
            assert_eq!(
                (new.occupier_id.as_str(), new.email.as_str()),
                ("o3", "ann@example.com")
            );
            assert_eq!(
                (new.first_name.as_str(), new.last_name.as_str()),
                ("Ann", "Lee")
            );
            assert_eq!(new.mobile.as_deref(), Some("+447700900123"));
        }
        other => panic!("m1 should be created: {other:?}"),
    }
    assert_eq!(
        step.writes[1],
        write(
            "m2",
            "member Bo@Example.com",
            Op::Link {
                id: "u2".into(),
                update: UserUpdate {
                    external_ref: Some("m2".into()),
                    ..UserUpdate::default()
                }
            }
        ),
        "the same address in another case is not an email change"
    );
    assert_eq!(step.problems.len(), 1);
    assert_eq!(step.problems[0].subject, "member cy@example.com");
    assert!(
        step.problems[0]
            .message
            .contains("company c2 is not mapped"),
        "{:?}",
        step.problems
    );
}

#[test]
fn invitations_go_to_users_never_invited_in_id_order() {
    let mut invited = ess_user("u1", "a@example.com", "o1", Some("m1"));
    invited.wifi_invitation_sent_at = Some(at());
    let users = HashMap::from([
        ("m1".to_owned(), invited),
        (
            "m3".to_owned(),
            ess_user("u3", "c@example.com", "o1", Some("m3")),
        ),
        (
            "m2".to_owned(),
            ess_user("u2", "b@example.com", "o1", Some("m2")),
        ),
    ]);
    let pending: Vec<&str> = entities::plan_invitations(&users)
        .iter()
        .map(|u| u.id.as_str())
        .collect();
    assert_eq!(pending, vec!["u2", "u3"]);
}

fn ess_booking(id: &str, space: &str, hours: (i64, i64), external_ref: Option<&str>) -> Booking {
    Booking {
        id: id.into(),
        site_id: "site".into(),
        space_id: space.into(),
        user_id: None,
        occupier_id: None,
        start: at() + Duration::hours(hours.0),
        end: at() + Duration::hours(hours.1),
        source: BookingSource::Officernd,
        status: BookingStatus::Confirmed,
        external_ref: external_ref.map(Into::into),
        created_at: at() - Duration::days(1),
        updated_at: at() - Duration::days(1),
    }
}

fn ornd_booking(id: &str, resource: &str, hours: (i64, i64)) -> ornd::Booking {
    from(json!({
        "_id": id, "resource": resource, "title": id,
        "start": at() + Duration::hours(hours.0), "end": at() + Duration::hours(hours.1),
    }))
}

#[test]
fn the_mirror_updates_drift_creates_missing_copies_and_cancels_what_officernd_dropped() {
    let mut ornd = Officernd::new();
    ornd.bookings = vec![
        ornd_booking("b1", "r1", (1, 2)),
        ornd_booking("b2", "r1", (3, 4)),
        ornd_booking("b3", "r1", (5, 6)),
        ornd_booking("b4", "r1", (7, 8)),
        ornd_booking("b5", "r1", (-3, -2)),
    ];
    let links = Links {
        spaces: HashMap::from([("r1".to_owned(), "s1".to_owned())]),
        ..Links::default()
    };
    let mut cancelled = ess_booking("x3", "s1", (5, 6), Some("b3"));
    cancelled.status = BookingStatus::Cancelled;
    let mut by_hand = ess_booking("x8", "s1", (1, 2), Some("mine"));
    by_hand.source = BookingSource::Other;
    let current = vec![
        ess_booking("x1", "s1", (1, 3), Some("b1")),
        cancelled,
        ess_booking("x4", "s1", (7, 8), Some("b4")),
        ess_booking("x9", "s1", (9, 10), Some("gone")),
        by_hand,
    ];
    let fresh = HashSet::from(["b4".to_owned()]);

    let plan = bookings::plan_mirror(&ornd.view(), &links, &current, &fresh, at());

    assert!(plan.problems.is_empty());
    assert_eq!(plan.steps.len(), 4, "{:?}", plan.steps);
    assert_eq!(
        plan.steps[0],
        MirrorStep::Update {
            booking_id: "x1".into(),
            update: BookingUpdate {
                end: Some(at() + Duration::hours(2)),
                ..BookingUpdate::default()
            },
            label: "b1".into()
        }
    );
    match &plan.steps[1] {
        MirrorStep::Create { new, label } => {
            assert_eq!(label, "b2");
            assert_eq!(new.external_ref.as_deref(), Some("b2"));
            assert_eq!(new.space_id, "s1");
        }
        other => panic!("b2 should be created: {other:?}"),
    }
    assert_eq!(
        plan.steps[2],
        MirrorStep::CancelledCopy { label: "b3".into() }
    );
    assert_eq!(
        plan.steps[3],
        MirrorStep::Cancel {
            booking_id: "x9".into(),
            reference: "gone".into()
        },
        "the back-synced b4, the past b5 and the hand-made booking are left alone"
    );
}

#[test]
fn taps_are_linked_when_marked_created_when_placeable_and_skipped_otherwise() {
    let mut ornd = Officernd::new();
    ornd.members = vec![ornd_member(
        "m2",
        "Bo Park",
        Some("bo@example.com"),
        Some("c1"),
    )];
    let links = Links {
        spaces: HashMap::from([("r1".to_owned(), "s1".to_owned())]),
        users: HashMap::from([("m2".to_owned(), "u2".to_owned())]),
        ..Links::default()
    };
    let tap = |id: &str, space: &str| {
        let mut booking = ess_booking(id, space, (1, 2), None);
        booking.source = BookingSource::TapToBook;
        booking.user_id = Some("u2".into());
        booking
    };
    let mut linked = tap("t4", "s1");
    linked.external_ref = Some("done".into());
    let taps = vec![
        tap("t1", "s1"),
        tap("t2", "s1"),
        tap("t3", "s-unknown"),
        linked,
    ];
    let unlinked = bookings::unlinked_taps(&taps);
    assert_eq!(unlinked.len(), 3);
    let marked = bookings::marked_bookings(&[
        json!({"_id": "o1", "properties": {MARKER_PROPERTY: "t1"}}),
        json!({"_id": "o2", "properties": {}}),
    ]);

    let steps = bookings::plan_back_sync(&unlinked, &marked, &ornd.view(), &links);

    assert_eq!(
        steps[0],
        TapStep::Link {
            tap_id: "t1".into(),
            officernd_id: "o1".into()
        }
    );
    match &steps[1] {
        TapStep::Create { tap_id, body } => {
            assert_eq!(tap_id, "t2");
            assert_eq!(body["resource"], "r1");
            assert_eq!(body["member"], "m2");
            assert_eq!(body["company"], "c1");
            assert_eq!(body["timezone"], "Europe/London");
            assert_eq!(body["properties"][MARKER_PROPERTY], "t2");
        }
        other => panic!("t2 should be created: {other:?}"),
    }
    assert!(
        matches!(&steps[2], TapStep::Skip(problem) if problem.subject == "tap-to-book booking t3")
    );
}
