//! Access-engine benchmark: a generated organisation (50,000 members, 5,000 companies, 60,000 memberships,
//! 500 resources, 300,000 bookings, 500 bindings); prints index build, full evaluation (with next change),
//! single-change recompute times and peak RSS. Target: full evaluation within 300 ms and 300 MB, one change
//! within 5 ms. `FLEXGATE_BENCH_QUICK=1` runs at 1/50 scale.

use std::time::{Duration as Elapsed, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use flexgate::engine::{evaluate, Binding, BindingKey, Engine, GroupKey, Index, ObjectRef, Source};
use flexgate::officernd::model::{
    Assignment, Booking, Company, Floor, Location, Member, MemberStatus, Membership,
    MembershipStatus, Pass, Plan, Recurrence, Resource, Snapshot, Visitor,
};

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

struct Scale {
    members: usize,
    companies: usize,
    memberships: usize,
    resources: usize,
    bookings: usize,
    bindings: usize,
}

const LOCATIONS: usize = 10;
const FLOORS_PER_LOCATION: usize = 3;
const PLANS: usize = 20;
const ZONES: [&str; 4] = [
    "Europe/London",
    "America/New_York",
    "Europe/Paris",
    "Asia/Singapore",
];

fn oid(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>22}")
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 20, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

fn day_offset(rng: &mut Rng, spread_days: usize) -> DateTime<Utc> {
    let today = now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc();
    today + Duration::days(rng.below(2 * spread_days) as i64 - spread_days as i64)
}

fn generate(scale: &Scale, rng: &mut Rng) -> Snapshot {
    let locations = (0..LOCATIONS)
        .map(|n| Location {
            id: oid("l", n),
            name: Some(format!("Location {n}")),
            timezone: Some(ZONES[n % ZONES.len()].to_owned()),
            is_open: true,
            is_public: true,
        })
        .collect();
    let floors = (0..LOCATIONS * FLOORS_PER_LOCATION)
        .map(|n| Floor {
            id: oid("f", n),
            name: Some(format!("Floor {n}")),
            floor: Some((n % FLOORS_PER_LOCATION).to_string()),
            location: Some(oid("l", n / FLOORS_PER_LOCATION)),
        })
        .collect();
    let plans = (0..PLANS)
        .map(|n| Plan {
            id: oid("p", n),
            name: Some(format!("Plan {n}")),
            code: None,
            plan_type: None,
            locations: Vec::new(),
        })
        .collect();
    let assignable = scale.resources * 2 / 5;
    let resources = (0..scale.resources)
        .map(|n| {
            let floor = n % (LOCATIONS * FLOORS_PER_LOCATION);
            Resource {
                id: oid("r", n),
                name: Some(format!("Resource {n}")),
                resource_type: Some(
                    if n < assignable {
                        "desk"
                    } else {
                        "meeting_room"
                    }
                    .to_owned(),
                ),
                location: Some(oid("l", floor / FLOORS_PER_LOCATION)),
                floor: Some(oid("f", floor)),
            }
        })
        .collect();
    let companies = (0..scale.companies)
        .map(|n| Company {
            id: oid("c", n),
            name: Some(format!("Company {n}")),
            email: None,
            location: Some(oid("l", n % LOCATIONS)),
            status: None,
            start_date: None,
        })
        .collect();
    let members = (0..scale.members)
        .map(|n| Member {
            id: oid("m", n),
            name: Some(format!("Member {n}")),
            email: (!rng.chance(2)).then(|| format!("member{n}@example.com")),
            phone: None,
            location: Some(oid("l", n % LOCATIONS)),
            company: rng.chance(80).then(|| oid("c", n % scale.companies)),
            status: Some(match rng.below(20) {
                0 | 1 => MemberStatus::Former,
                2 => MemberStatus::Pending,
                _ => MemberStatus::Active,
            }),
            start_date: None,
            is_billing_person: false,
            is_contact_person: false,
        })
        .collect();
    let memberships: Vec<Membership> = (0..scale.memberships)
        .map(|n| {
            let company_wide = n % 6 == 0;
            Membership {
                id: oid("s", n),
                name: None,
                is_personal: Some(!company_wide),
                status: Some(if rng.chance(95) {
                    MembershipStatus::Approved
                } else {
                    MembershipStatus::NotApproved
                }),
                location: Some(oid("l", rng.below(LOCATIONS))),
                plan: Some(oid("p", rng.below(PLANS))),
                company: Some(oid("c", rng.below(scale.companies))),
                member: (!company_wide).then(|| oid("m", rng.below(scale.members))),
                start_date: Some(day_offset(rng, 700)),
                end_date: rng.chance(50).then(|| day_offset(rng, 365)),
            }
        })
        .collect();
    let assignments = (0..scale.memberships / 3)
        .map(|n| Assignment {
            id: oid("a", n),
            resource: Some(oid("r", rng.below(assignable))),
            membership: Some(oid("s", rng.below(scale.memberships))),
            start_date: rng.chance(30).then(|| day_offset(rng, 200)),
            end_date: rng.chance(30).then(|| day_offset(rng, 200)),
        })
        .collect();
    let visitors = (0..scale.members / 10)
        .map(|n| Visitor {
            id: oid("v", n),
            name: Some(format!("Visitor {n}")),
            email: Some(format!("visitor{n}@example.org")),
            phone: None,
            company: None,
            member: None,
            location: None,
        })
        .collect::<Vec<_>>();
    let bookings = (0..scale.bookings)
        .map(|n| {
            let start =
                now() - Duration::days(60) + Duration::minutes(30 * rng.below(120 * 48) as i64);
            let recurring = rng.chance(2);
            Booking {
                id: oid("b", n),
                timezone: None,
                start: Some(start),
                end: Some(start + Duration::minutes(30 * (1 + rng.below(8)) as i64)),
                recurrence: recurring.then(|| {
                    Box::new(Recurrence {
                        rrule: Some(format!("FREQ=WEEKLY;COUNT={}", 5 + rng.below(20))),
                        exdates: vec![start + Duration::weeks(1)],
                    })
                }),
                location: None,
                company: None,
                member: Some(oid("m", rng.below(scale.members))),
                resource: Some(oid(
                    "r",
                    assignable + rng.below(scale.resources - assignable),
                )),
                members: if rng.chance(30) {
                    vec![oid("m", rng.below(scale.members))].into()
                } else {
                    Box::default()
                },
                visitors: if rng.chance(10) {
                    vec![oid("v", rng.below(visitors.len()))].into()
                } else {
                    Box::default()
                },
                is_cancelled: rng.chance(3),
                is_tentative: false,
                title: None,
            }
        })
        .collect();
    let passes = (0..scale.members / 10)
        .map(|n| {
            let personal = rng.chance(80);
            Pass {
                id: oid("d", n),
                count: Some(10),
                used_count: Some(rng.below(11) as u32),
                interval_length: None,
                start_date: None,
                end_date: None,
                renew_date: None,
                valid_from: Some(day_offset(rng, 30)),
                valid_to: Some(day_offset(rng, 60)),
                company: (!personal).then(|| oid("c", rng.below(scale.companies))),
                member: personal.then(|| oid("m", rng.below(scale.members))),
                is_personal: Some(personal),
                membership: None,
                status: None,
                resource_type: None,
            }
        })
        .collect();
    Snapshot {
        members,
        companies,
        memberships,
        plans,
        locations,
        floors,
        resources,
        assignments,
        bookings,
        passes,
        visitors,
    }
}

/// 4% plans, 2% locations, 6% floors, 28% assignable and 56% bookable resources, 4% day passes.
fn generate_bindings(scale: &Scale, rng: &mut Rng) -> Vec<Binding> {
    let assignable = scale.resources * 2 / 5;
    (0..scale.bindings)
        .map(|n| {
            let source = match n % 50 {
                0 | 1 => Source::Plan(ObjectRef::Name(format!("Plan {}", rng.below(PLANS)))),
                2 => Source::Location(ObjectRef::Id(oid("l", rng.below(LOCATIONS)))),
                3..=5 => Source::Floor(ObjectRef::Id(oid(
                    "f",
                    rng.below(LOCATIONS * FLOORS_PER_LOCATION),
                ))),
                6..=19 => {
                    Source::AssignableResource(ObjectRef::Id(oid("r", rng.below(assignable))))
                }
                20..=47 => Source::BookableResource(ObjectRef::Id(oid(
                    "r",
                    assignable + rng.below(scale.resources - assignable),
                ))),
                _ => Source::DayPasses(None),
            };
            Binding {
                key: BindingKey {
                    namespace: format!("site-{}", n % 3),
                    name: format!("binding-{n}"),
                },
                source,
                groups: vec![GroupKey {
                    connection: format!("connection-{}", n % 3),
                    group: format!("group-{}", n % (scale.bindings * 3 / 5).max(1)),
                }],
                grant_before: Duration::minutes(15),
                revoke_after: Duration::minutes(15),
                include_guests: true,
                location_scope: None,
                require_active_membership: n % 3 == 0,
            }
        })
        .collect()
}

fn peak_rss_mib() -> String {
    status_mib("VmHWM:")
}

fn rss_mib() -> String {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or_else(
            || "unknown".to_owned(),
            |kib| format!("{:.1} MiB", kib / 1024.0),
        )
}

fn ms(elapsed: Elapsed) -> String {
    format!("{:.3} ms", elapsed.as_secs_f64() * 1000.0)
}

fn main() {
    let quick = std::env::var("FLEXGATE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let divisor = if quick { 50 } else { 1 };
    let scale = Scale {
        members: 50_000 / divisor,
        companies: 5_000 / divisor,
        memberships: 60_000 / divisor,
        resources: 500 / divisor.min(10),
        bookings: 300_000 / divisor,
        bindings: 500 / divisor.min(10),
    };
    let mut rng = Rng(0x5EED_F1E7_6A7E);
    let started = Instant::now();
    let snapshot = generate(&scale, &mut rng);
    let bindings = generate_bindings(&scale, &mut rng);
    println!(
        "scale: {} members, {} companies, {} memberships, {} resources, {} bookings, {} bindings{}",
        scale.members,
        scale.companies,
        scale.memberships,
        scale.resources,
        scale.bookings,
        scale.bindings,
        if quick { " (quick)" } else { "" }
    );
    println!(
        "generate:              {} (RSS {})",
        ms(started.elapsed()),
        rss_mib()
    );

    let started = Instant::now();
    let index = Index::build(snapshot);
    println!(
        "index build:           {} (RSS {}, peak so far {})",
        ms(started.elapsed()),
        rss_mib(),
        peak_rss_mib()
    );

    let at = now();
    let started = Instant::now();
    let evaluation = evaluate(&index, &bindings, at);
    let full = started.elapsed();
    let granted: usize = evaluation.groups.values().map(|group| group.len()).sum();
    println!(
        "full evaluation:       {} ({} groups, {} grants, {} problems, next change {:?}; RSS {}, peak so far {})",
        ms(full),
        evaluation.groups.len(),
        granted,
        evaluation.problems.len(),
        evaluation.next_change_at,
        rss_mib(),
        peak_rss_mib()
    );
    drop(evaluation);
    // For profilers: repeat the full evaluation so it dominates the samples.
    let repeat: usize = std::env::var("FLEXGATE_BENCH_REPEAT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for _ in 0..repeat.min(15) {
        let started = Instant::now();
        let evaluation = evaluate(&index, &bindings, at);
        println!(
            "full evaluation again: {} ({} groups)",
            ms(started.elapsed()),
            evaluation.groups.len()
        );
    }
    if std::env::var("FLEXGATE_BENCH_PROFILE").is_ok() {
        profile_by_source(&index, &bindings, at);
    }

    let started = Instant::now();
    let mut engine = Engine::new(index, bindings, at);
    println!(
        "engine (per-binding):  {} (RSS {}, peak so far {})",
        ms(started.elapsed()),
        rss_mib(),
        peak_rss_mib()
    );
    let started = Instant::now();
    let next = engine.next_change_at();
    println!(
        "next change:           {} ({next:?})",
        ms(started.elapsed())
    );

    // One changed booking on a bound meeting room.
    let bound_room = engine
        .bindings()
        .iter()
        .find_map(|binding| match &binding.source {
            Source::BookableResource(ObjectRef::Id(room)) => Some(room.clone()),
            _ => None,
        });
    let changed_booking = bound_room.as_ref().map(|room| Booking {
        id: oid("b", 1),
        timezone: None,
        start: Some(at - Duration::minutes(10)),
        end: Some(at + Duration::minutes(50)),
        recurrence: None,
        location: None,
        company: None,
        member: Some(oid("m", 7)),
        resource: Some(room.clone()),
        members: Box::default(),
        visitors: Box::default(),
        is_cancelled: false,
        is_tentative: false,
        title: None,
    });
    if let Some(booking) = changed_booking {
        let started = Instant::now();
        let recomputed = engine.update(|index| index.upsert_booking(booking));
        let groups: usize = recomputed
            .changed_groups
            .iter()
            .map(|g| engine.group(g).len())
            .sum();
        println!(
            "one booking changed:   {} ({} bindings re-evaluated, {} groups changed, {groups} grants re-read)",
            ms(started.elapsed()),
            recomputed.bindings.len(),
            recomputed.changed_groups.len()
        );
    }

    // One changed membership on a bound plan.
    let changed_membership =
        engine
            .index()
            .membership(&oid("s", 1))
            .cloned()
            .map(|mut membership| {
                membership.end_date = Some(at - Duration::days(1));
                membership
            });
    if let Some(membership) = changed_membership {
        let original = engine.index().membership(&membership.id).cloned();
        let started = Instant::now();
        let recomputed = engine.update(|index| index.upsert_membership(membership.clone()));
        println!(
            "one membership changed: {} ({} bindings re-evaluated, {} groups changed)",
            ms(started.elapsed()),
            recomputed.bindings.len(),
            recomputed.changed_groups.len()
        );
        // For profilers: flip the membership back and forth.
        for round in 0..repeat {
            let version = if round % 2 == 0 {
                original.clone()
            } else {
                Some(membership.clone())
            };
            if let Some(version) = version {
                let started = Instant::now();
                engine.update(|index| index.upsert_membership(version));
                if round % 50 == 0 {
                    println!("membership again:      {}", ms(started.elapsed()));
                }
            }
        }
    }

    if let Some(next) = next {
        let started = Instant::now();
        let recomputed = engine.advance_to(next);
        println!(
            "advance to next change: {} ({} bindings re-evaluated)",
            ms(started.elapsed()),
            recomputed.bindings.len()
        );
    }
    println!("peak RSS (VmHWM):      {}", peak_rss_mib());
}

#[allow(dead_code)]
fn profile_by_source(index: &Index, bindings: &[Binding], at: DateTime<Utc>) {
    let mut totals: std::collections::BTreeMap<&str, (Elapsed, usize)> = Default::default();
    for binding in bindings {
        let kind = match binding.source {
            Source::Plan(_) => "plan",
            Source::Location(_) => "location",
            Source::Floor(_) => "floor",
            Source::AssignableResource(_) => "assignable",
            Source::BookableResource(_) => "bookable",
            Source::DayPasses(_) => "day passes",
        };
        let started = Instant::now();
        let _ = flexgate::engine::evaluate_binding(index, binding, at);
        let entry = totals.entry(kind).or_default();
        entry.0 += started.elapsed();
        entry.1 += 1;
    }
    for (kind, (elapsed, count)) in totals {
        println!("  {kind:<12} {count:>4} bindings {}", ms(elapsed));
    }
}
