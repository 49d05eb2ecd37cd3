//! Property tests over random small organisations: several bindings form a union; the answer (groups and
//! problems) is constant between an instant and its `next_change_at`; the incremental engine agrees with a
//! full evaluation.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use common::{binding, group, id, t};
use flexgate::engine::{evaluate, Binding, Engine, Entitlement, GroupKey, Index, PersonId, Source};
use flexgate::officernd::model::Snapshot;
use proptest::prelude::*;
use serde_json::{json, Value};

/// A tiny deterministic generator (xorshift) so one proptest seed describes a whole organisation.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const ORIGIN: &str = "2026-03-20T00:00:00Z";

fn day(dice: &mut Dice) -> String {
    let offset = dice.below(40) as i64 - 20;
    (t(ORIGIN) + Duration::days(offset))
        .format("%Y-%m-%dT00:00:00.000Z")
        .to_string()
}

fn instant(dice: &mut Dice, spread_days: i64) -> DateTime<Utc> {
    let minutes = dice.below((spread_days * 2 * 24 * 60) as u64) as i64 - spread_days * 24 * 60;
    t(ORIGIN) + Duration::minutes(minutes)
}

fn random_index(dice: &mut Dice) -> Index {
    let statuses = ["active", "active", "active", "former", "pending"];
    let companies = ["c0", "c1"];
    let mut members = Vec::new();
    for n in 0..6 {
        let mut member = json!({"_id": format!("u{n}"), "name": format!("User {n}"), "status": dice.pick(&statuses)});
        if dice.chance(90) {
            member["email"] = json!(format!("u{n}@example.com"));
        }
        if dice.chance(70) {
            member["company"] = json!(dice.pick(&companies));
        }
        members.push(member);
    }
    let member_ids = ["u0", "u1", "u2", "u3", "u4", "u5"];
    let mut memberships = Vec::new();
    for n in 0..dice.below(7) {
        let mut membership = json!({"_id": format!("m{n}"), "plan": dice.pick(&["p0", "p1"]),
            "status": if dice.chance(85) { "approved" } else { "not_approved" },
            "location": dice.pick(&["lon", "nyc"]), "startDate": day(dice)});
        if dice.chance(30) {
            membership["company"] = json!(dice.pick(&companies));
        } else {
            membership["member"] = json!(dice.pick(&member_ids));
        }
        if dice.chance(60) {
            membership["endDate"] = json!(day(dice));
        }
        memberships.push(membership);
    }
    let mut assignments = Vec::new();
    for n in 0..dice.below(4) {
        let mut assignment = json!({"_id": format!("a{n}"), "resource": dice.pick(&["d0", "d1"]),
            "membership": format!("m{}", dice.below(6))});
        if dice.chance(50) {
            assignment["startDate"] = json!(day(dice));
        }
        if dice.chance(50) {
            assignment["endDate"] = json!(day(dice));
        }
        assignments.push(assignment);
    }
    let mut bookings = Vec::new();
    for n in 0..dice.below(7) {
        let start = instant(dice, 15);
        let end = start + Duration::minutes(30 * (1 + dice.below(8) as i64));
        let mut booking = json!({"_id": format!("b{n}"), "resource": dice.pick(&["r0", "r1"]),
            "member": dice.pick(&member_ids), "start": start, "end": end, "timezone": "Europe/London",
            "isCancelled": dice.chance(10), "isTentative": dice.chance(10)});
        if dice.chance(40) {
            booking["members"] = json!([dice.pick(&member_ids)]);
        }
        if dice.chance(40) {
            booking["visitors"] = json!([dice.pick(&["v0", "v1"])]);
        }
        if dice.chance(30) {
            let rule = dice.pick(&["FREQ=DAILY;COUNT=5", "FREQ=WEEKLY", "FREQ=DAILY;INTERVAL=2"]);
            booking["recurrence"] = json!({"rrule": rule, "exdates": [start + Duration::days(2)]});
        }
        bookings.push(booking);
    }
    let mut passes = Vec::new();
    for n in 0..dice.below(3) {
        let mut pass = json!({"_id": format!("s{n}"), "count": dice.below(4), "usedCount": dice.below(3),
            "validFrom": day(dice)});
        if dice.chance(50) {
            pass["member"] = json!(dice.pick(&member_ids));
            pass["isPersonal"] = json!(true);
        } else {
            pass["company"] = json!(dice.pick(&companies));
            pass["isPersonal"] = json!(false);
        }
        if dice.chance(60) {
            pass["validTo"] = json!(day(dice));
        }
        passes.push(pass);
    }
    let snapshot: Value = json!({
        "locations": [{"_id": "lon", "name": "London", "timezone": "Europe/London"},
                      {"_id": "nyc", "name": "New York", "timezone": "America/New_York"}],
        "plans": [{"_id": "p0", "name": "Hot Desk"}, {"_id": "p1", "name": "Office"}],
        "floors": [{"_id": "f0", "name": "Ground", "location": "lon"}],
        "resources": [{"_id": "r0", "name": "Room 0", "location": "lon", "floor": "f0"},
                      {"_id": "r1", "name": "Room 1", "location": "nyc"},
                      {"_id": "d0", "name": "Desk 0", "location": "lon", "floor": "f0"},
                      {"_id": "d1", "name": "Desk 1", "location": "nyc"}],
        "companies": [{"_id": "c0", "name": "C0", "location": "lon"}, {"_id": "c1", "name": "C1", "location": "nyc"}],
        "members": members,
        "visitors": [{"_id": "v0", "name": "V0", "email": "v0@example.org"}, {"_id": "v1", "name": "V1"}],
        "memberships": memberships, "assignments": assignments, "bookings": bookings, "passes": passes
    });
    let snapshot: Snapshot =
        serde_json::from_value(snapshot).expect("generated seed file is valid");
    Index::build(snapshot)
}

fn random_bindings(dice: &mut Dice) -> Vec<Binding> {
    let mut bindings = Vec::new();
    for n in 0..(1 + dice.below(5)) {
        let source = match dice.below(7) {
            0 => Source::Plan(id(dice.pick(&["p0", "p1"]))),
            1 => Source::Location(id(dice.pick(&["lon", "nyc"]))),
            2 => Source::Floor(id("f0")),
            3 => Source::AssignableResource(id(dice.pick(&["d0", "d1"]))),
            4 | 5 => Source::BookableResource(id(dice.pick(&["r0", "r1"]))),
            _ => Source::DayPasses,
        };
        let mut bound = binding(&format!("b{n}"), source);
        bound.groups = vec![group(dice.pick(&["g0", "g1", "g2"]))];
        bound.grant_before = Duration::minutes(15 * dice.below(4) as i64);
        bound.revoke_after = Duration::minutes(15 * dice.below(4) as i64);
        bound.include_guests = dice.chance(50);
        bound.require_active_membership = dice.chance(30);
        if dice.chance(25) {
            bound.location_scope = Some(vec![id("lon")]);
        }
        bindings.push(bound);
    }
    bindings
}

/// The union rule, stated independently: every person granted by any binding of a group, with all reasons.
fn union_of(
    parts: &[BTreeMap<GroupKey, BTreeMap<PersonId, Entitlement>>],
) -> BTreeMap<GroupKey, BTreeMap<PersonId, Entitlement>> {
    let mut union: BTreeMap<GroupKey, BTreeMap<PersonId, Entitlement>> = BTreeMap::new();
    for part in parts {
        for (group, people) in part {
            let into = union.entry(group.clone()).or_default();
            for (person, entitlement) in people {
                let merged = into.entry(person.clone()).or_insert_with(|| Entitlement {
                    reasons: Vec::new(),
                    ..entitlement.clone()
                });
                merged.reasons.extend(entitlement.reasons.iter().cloned());
                merged.reasons.sort();
                merged.reasons.dedup();
                let open_ended = merged.reasons.iter().any(|r| r.ends_at.is_none());
                merged.ends_at = if open_ended {
                    None
                } else {
                    merged.reasons.iter().filter_map(|r| r.ends_at).max()
                };
            }
        }
    }
    union
}

/// 128 cases by default; `PROPTEST_CASES` asks for more (an explicit case count would otherwise ignore it).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn bindings_together_are_the_union_of_bindings_alone(seed in 1u64..u64::MAX) {
        let mut dice = Dice(seed);
        let index = random_index(&mut dice);
        let bindings = random_bindings(&mut dice);
        let at = instant(&mut dice, 20);
        let together = evaluate(&index, &bindings, at);
        let alone: Vec<_> = bindings
            .iter()
            .map(|b| evaluate(&index, std::slice::from_ref(b), at).groups)
            .collect();
        prop_assert_eq!(together.groups, union_of(&alone));
    }

    #[test]
    fn the_answer_is_constant_until_next_change_at(seed in 1u64..u64::MAX) {
        let mut dice = Dice(seed);
        let index = random_index(&mut dice);
        let bindings = random_bindings(&mut dice);
        let at = instant(&mut dice, 20);
        let evaluation = evaluate(&index, &bindings, at);
        let horizon = evaluation.next_change_at.unwrap_or(at + Duration::days(60));
        prop_assert!(horizon > at);
        let span = (horizon - at).num_seconds().max(1) as u64;
        let samples = [0, span / 3, span / 2, span.saturating_sub(1)]
            .into_iter()
            .chain((0..4).map(|_| dice.below(span)));
        for offset in samples {
            let later = at + Duration::seconds(offset as i64);
            if later >= horizon {
                continue;
            }
            let then = evaluate(&index, &bindings, later);
            prop_assert_eq!(&then.groups, &evaluation.groups, "at {}", later);
            prop_assert_eq!(&then.problems, &evaluation.problems, "at {}", later);
        }
    }

    #[test]
    fn the_incremental_engine_matches_a_full_evaluation(seed in 1u64..u64::MAX) {
        incremental_engine_matches_a_full_evaluation(seed)?;
    }

    #[test]
    fn the_incremental_engine_matches_a_full_evaluation_under_any_change(seed in 1u64..u64::MAX) {
        incremental_engine_matches_under_any_change(seed)?;
    }
}

/// Applies three random changes (a booking, a membership, a member, or the passing of time) to an engine and
/// checks after each that its evaluation, problems included, equals a full evaluation.
fn incremental_engine_matches_a_full_evaluation(seed: u64) -> Result<(), TestCaseError> {
    let mut dice = Dice(seed);
    let index = random_index(&mut dice);
    let bindings = random_bindings(&mut dice);
    let at = instant(&mut dice, 20);
    let mut engine = Engine::new(index, bindings, at);
    for _ in 0..3 {
        match dice.below(4) {
            0 => {
                let Some(mut booking) = engine
                    .index()
                    .booking(&format!("b{}", dice.below(6)))
                    .cloned()
                else {
                    continue;
                };
                booking.start = booking
                    .start
                    .map(|s| s + Duration::hours(dice.below(48) as i64 - 24));
                booking.resource = Some(dice.pick(&["r0", "r1"]).to_owned());
                engine.update(|index| index.upsert_booking(booking));
            }
            1 => {
                let Some(mut membership) = engine
                    .index()
                    .membership(&format!("m{}", dice.below(6)))
                    .cloned()
                else {
                    continue;
                };
                membership.end_date = Some(t(&day(&mut dice)));
                membership.plan = Some(dice.pick(&["p0", "p1"]).to_owned());
                engine.update(|index| index.upsert_membership(membership));
            }
            2 => {
                let Some(mut member) = engine
                    .index()
                    .member(&format!("u{}", dice.below(6)))
                    .cloned()
                else {
                    continue;
                };
                member.company = Some(dice.pick(&["c0", "c1"]).to_owned());
                engine.update(|index| index.upsert_member(member));
            }
            _ => {
                let later = engine.at() + Duration::minutes(dice.below(3 * 24 * 60) as i64);
                engine.advance_to(later);
            }
        }
        let full = evaluate(engine.index(), engine.bindings(), engine.at());
        prop_assert_eq!(engine.evaluation(), full);
    }
    Ok(())
}

/// Regression (proptest seed 765012946235786342): a plan binding reported a member without email while their
/// membership ran, but the membership's end was not among the binding's `next_change_at` candidates, so
/// `advance_to` past the end kept the stale `NoEmail` problem.
#[test]
fn incremental_engine_regression_seed_765012946235786342() {
    if let Err(failure) = incremental_engine_matches_a_full_evaluation(765_012_946_235_786_342) {
        panic!("{failure}");
    }
}

/// One random change of any kind the index accepts for people, memberships, assignments, bookings and
/// passes (upserts and removals), or a move of the instant in either direction.
fn random_change(engine: &mut Engine, dice: &mut Dice) {
    let member_ids = ["u0", "u1", "u2", "u3", "u4", "u5"];
    let membership_id = format!("m{}", dice.below(7));
    match dice.below(14) {
        0 => {
            let Some(mut member) = engine
                .index()
                .member(&format!("u{}", dice.below(6)))
                .cloned()
            else {
                return;
            };
            member.email = if dice.chance(50) {
                None
            } else {
                Some(format!("{}@example.net", member.id))
            };
            engine.update(|index| index.upsert_member(member));
        }
        1 => {
            let Some(mut member) = engine
                .index()
                .member(&format!("u{}", dice.below(6)))
                .cloned()
            else {
                return;
            };
            member.status = serde_json::from_value(json!(dice.pick(&[
                "active",
                "former",
                "pending",
                "not_approved"
            ])))
            .ok();
            member.company = if dice.chance(30) {
                None
            } else {
                Some(dice.pick(&["c0", "c1"]).to_owned())
            };
            engine.update(|index| index.upsert_member(member));
        }
        2 => {
            let id = format!("u{}", dice.below(6));
            engine.update(|index| index.remove_member(&id));
        }
        3 => {
            let Some(mut membership) = engine.index().membership(&membership_id).cloned() else {
                return;
            };
            membership.status =
                serde_json::from_value(json!(dice.pick(&["approved", "not_approved"]))).ok();
            membership.start_date = Some(t(&day(dice)));
            membership.end_date = if dice.chance(30) {
                None
            } else {
                Some(t(&day(dice)))
            };
            if dice.chance(30) {
                membership.member = None;
                membership.company = Some(dice.pick(&["c0", "c1"]).to_owned());
            } else if dice.chance(30) {
                membership.member = Some(dice.pick(&member_ids).to_owned());
            }
            engine.update(|index| index.upsert_membership(membership));
        }
        4 => {
            engine.update(|index| index.remove_membership(&membership_id));
        }
        5 => {
            let mut membership = json!({"_id": membership_id, "plan": dice.pick(&["p0", "p1"]), "status": "approved",
                "location": dice.pick(&["lon", "nyc"]), "startDate": day(dice), "endDate": day(dice)});
            if dice.chance(50) {
                membership["company"] = json!(dice.pick(&["c0", "c1"]));
            } else {
                membership["member"] = json!(dice.pick(&member_ids));
            }
            let membership = serde_json::from_value(membership).expect("valid membership");
            engine.update(|index| index.upsert_membership(membership));
        }
        6 => {
            let id = format!("a{}", dice.below(4));
            if dice.chance(40) {
                engine.update(|index| index.remove_assignment(&id));
            } else {
                let assignment = json!({"_id": id, "resource": dice.pick(&["d0", "d1"]),
                    "membership": format!("m{}", dice.below(7)), "startDate": day(dice)});
                let assignment = serde_json::from_value(assignment).expect("valid assignment");
                engine.update(|index| index.upsert_assignment(assignment));
            }
        }
        7 => {
            let Some(mut booking) = engine
                .index()
                .booking(&format!("b{}", dice.below(7)))
                .cloned()
            else {
                return;
            };
            booking.is_cancelled = dice.chance(30);
            booking.member = Some(dice.pick(&member_ids).to_owned());
            booking.members = if dice.chance(50) {
                [dice.pick(&member_ids).to_owned()].into()
            } else {
                Box::default()
            };
            booking.visitors = if dice.chance(50) {
                [dice.pick(&["v0", "v1"]).to_owned()].into()
            } else {
                Box::default()
            };
            engine.update(|index| index.upsert_booking(booking));
        }
        8 => {
            let id = format!("b{}", dice.below(7));
            engine.update(|index| index.remove_booking(&id));
        }
        9 => {
            let id = format!("s{}", dice.below(3));
            if dice.chance(30) {
                engine.update(|index| index.remove_pass(&id));
            } else {
                let mut pass = json!({"_id": id, "count": dice.below(4), "usedCount": dice.below(3),
                    "validFrom": day(dice), "validTo": day(dice)});
                if dice.chance(50) {
                    pass["member"] = json!(dice.pick(&member_ids));
                    pass["isPersonal"] = json!(true);
                } else {
                    pass["company"] = json!(dice.pick(&["c0", "c1"]));
                    pass["isPersonal"] = json!(false);
                }
                if dice.chance(30) {
                    pass["membership"] = json!(format!("m{}", dice.below(7)));
                }
                let pass = serde_json::from_value(pass).expect("valid pass");
                engine.update(|index| index.upsert_pass(pass));
            }
        }
        10 => {
            let Some(mut visitor) = engine.index().visitor(dice.pick(&["v0", "v1"])).cloned()
            else {
                return;
            };
            visitor.email = if visitor.email.is_some() {
                None
            } else {
                Some(format!("{}@example.org", visitor.id))
            };
            engine.update(|index| index.upsert_visitor(visitor));
        }
        11 => {
            let Some(mut company) = engine.index().company(dice.pick(&["c0", "c1"])).cloned()
            else {
                return;
            };
            company.location = Some(dice.pick(&["lon", "nyc"]).to_owned());
            engine.update(|index| index.upsert_company(company));
        }
        12 => {
            let earlier = engine.at() - Duration::minutes(dice.below(3 * 24 * 60) as i64);
            engine.advance_to(earlier);
        }
        _ => {
            let later = engine.at() + Duration::minutes(dice.below(3 * 24 * 60) as i64);
            engine.advance_to(later);
        }
    }
}

/// Like [`incremental_engine_matches_a_full_evaluation`], over every kind of change and more steps.
fn incremental_engine_matches_under_any_change(seed: u64) -> Result<(), TestCaseError> {
    let mut dice = Dice(seed);
    let index = random_index(&mut dice);
    let bindings = random_bindings(&mut dice);
    let at = instant(&mut dice, 20);
    let mut engine = Engine::new(index, bindings, at);
    for step in 0..6 {
        random_change(&mut engine, &mut dice);
        let full = evaluate(engine.index(), engine.bindings(), engine.at());
        prop_assert_eq!(engine.evaluation(), full, "after step {}", step);
    }
    Ok(())
}
