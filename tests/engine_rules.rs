//! One test per access rule and edge case from the seeds (Salto KS 002, Brivo 003, Kisi 001).

mod common;

use chrono::Duration;
use common::*;
use flexgate::engine::{evaluate, explain, Engine, Grant, Source};
use serde_json::json;

// ----- Plan ---------------------------------------------------------------------------------------------

#[test]
fn plan_grants_from_the_first_instant_of_the_start_day() {
    let index = org(
        json!({"memberships": [personal("m1", "ann", "hot", "2026-03-02T00:00:00.000Z", None)]}),
    );
    let bindings = [binding("hot", Source::Plan(name("Hot Desk")))];
    assert!(people(
        &evaluate(&index, &bindings, t("2026-03-01T23:59:59Z")),
        "hot"
    )
    .is_empty());
    let at_start = evaluate(&index, &bindings, t("2026-03-02T00:00:00Z"));
    assert_eq!(people(&at_start, "hot"), vec![member("ann")]);
    let entitlement = &at_start.groups[&group("hot")][&member("ann")];
    assert_eq!(entitlement.email, "ann@example.com");
    assert_eq!(entitlement.ends_at, None, "open-ended membership");
}

#[test]
fn plan_access_lasts_through_the_whole_end_day_across_the_london_spring_change() {
    // 2026-03-29 is the day London moves to BST: it ends at 23:00 UTC.
    let index = org(json!({"memberships": [personal("m1", "ann", "hot",
        "2026-03-02T00:00:00.000Z", Some("2026-03-29T00:00:00.000Z"))]}));
    let bindings = [binding("hot", Source::Plan(id("hot")))];
    let last_second = evaluate(&index, &bindings, t("2026-03-29T22:59:59Z"));
    assert_eq!(people(&last_second, "hot"), vec![member("ann")]);
    assert_eq!(last_second.next_change_at, Some(t("2026-03-29T23:00:00Z")));
    assert_eq!(
        last_second.groups[&group("hot")][&member("ann")].ends_at,
        Some(t("2026-03-29T23:00:00Z"))
    );
    assert!(people(
        &evaluate(&index, &bindings, t("2026-03-29T23:00:00Z")),
        "hot"
    )
    .is_empty());
}

#[test]
fn day_granular_dates_follow_the_location_time_zone() {
    // New York (UTC-4 in summer): the start is a local midnight written in UTC, the end a UTC-midnight date.
    let mut membership = personal(
        "m1",
        "ann",
        "hot",
        "2026-06-01T04:00:00.000Z",
        Some("2026-06-30T00:00:00.000Z"),
    );
    membership["location"] = json!("nyc");
    let index = org(json!({"memberships": [membership]}));
    let bindings = [binding("hot", Source::Plan(id("hot")))];
    let granted = |at: &str| !people(&evaluate(&index, &bindings, t(at)), "hot").is_empty();
    assert!(!granted("2026-06-01T03:59:59Z"));
    assert!(granted("2026-06-01T04:00:00Z"));
    assert!(granted("2026-07-01T03:59:59Z"), "still June 30 in New York");
    assert!(!granted("2026-07-01T04:00:00Z"));
}

#[test]
fn not_approved_membership_grants_nothing() {
    let mut membership = personal("m1", "ann", "hot", "2026-01-01T00:00:00.000Z", None);
    membership["status"] = json!("not_approved");
    let index = org(json!({"memberships": [membership]}));
    let evaluation = evaluate(
        &index,
        &[binding("hot", Source::Plan(id("hot")))],
        t("2026-03-10T12:00:00Z"),
    );
    assert!(people(&evaluation, "hot").is_empty());
}

/// More members of Acme, one per status the whole-team rule must get right: drop-in, lead, contact,
/// none at all, a status this version does not know, and not approved.
fn whole_team() -> serde_json::Value {
    json!([
        {"_id": "ida", "name": "Ida", "email": "ida@example.com", "company": "acme", "status": "drop-in"},
        {"_id": "lee", "name": "Lee", "email": "lee@example.com", "company": "acme", "status": "lead"},
        {"_id": "con", "name": "Con", "email": "con@example.com", "company": "acme", "status": "contact"},
        {"_id": "kim", "name": "Kim", "email": "kim@example.com", "company": "acme"},
        {"_id": "odd", "name": "Odd", "email": "odd@example.com", "company": "acme", "status": "sabbatical"},
        {"_id": "nat", "name": "Nat", "email": "nat@example.com", "company": "acme", "status": "not_approved"},
        {"_id": "nol", "name": "Nol", "email": "  ", "company": "acme", "status": "drop-in"}
    ])
}

/// Everyone in Acme whom the guides do not bar: all but Cid (former), Dan and Nol (no email), Nat (not
/// approved).
fn acme_team() -> Vec<flexgate::engine::PersonId> {
    let mut team: Vec<_> = ["ann", "bob", "con", "eve", "ida", "kim", "lee", "odd"]
        .into_iter()
        .map(member)
        .collect();
    team.sort();
    team
}

#[test]
fn company_membership_without_member_grants_the_whole_team_but_the_barred() {
    let index = org(json!({
        "members": whole_team(),
        "memberships": [{"_id": "cm", "isPersonal": false, "status": "approved",
            "company": "acme", "plan": "hot", "startDate": "2026-01-01T00:00:00.000Z"}]
    }));
    let evaluation = evaluate(
        &index,
        &[binding("hot", Source::Plan(id("hot")))],
        t("2026-03-10T12:00:00Z"),
    );
    // Seeds 002/003: "access will be granted to the whole team": the drop-in, pending, lead, contact and
    // status-less members too. Cid is former, Nat not approved, Dan and Nol have no email; Fay and Gus
    // are not in Acme.
    assert_eq!(people(&evaluation, "hot"), acme_team());
    let ida = &evaluation.groups[&group("hot")][&member("ida")];
    assert_eq!(ida.email, "ida@example.com");
    assert_eq!(
        ida.reasons[0].grant,
        Grant::Membership {
            membership: "cm".into(),
            plan: "hot".into(),
            company: Some("acme".into())
        }
    );
    // The members without an email are reported; the former and not approved ones are not problems.
    let problems = problem_texts(&evaluation);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems
        .iter()
        .any(|p| p.contains("member dan (Dan) has no email")));
    assert!(problems
        .iter()
        .any(|p| p.contains("member nol (Nol) has no email")));
}

#[test]
fn company_membership_without_member_grants_every_non_barred_member_of_the_base_company() {
    let index = org(
        json!({"memberships": [{"_id": "cm", "isPersonal": false, "status": "approved",
        "company": "acme", "plan": "hot", "startDate": "2026-01-01T00:00:00.000Z"}]}),
    );
    let evaluation = evaluate(
        &index,
        &[binding("hot", Source::Plan(id("hot")))],
        t("2026-03-10T12:00:00Z"),
    );
    // Ann and Bob are active, Eve is pending; Cid is former, Dan has no email; Fay and Gus are elsewhere.
    assert_eq!(
        people(&evaluation, "hot"),
        vec![member("ann"), member("bob"), member("eve")]
    );
    let reason = &evaluation.groups[&group("hot")][&member("bob")].reasons[0];
    assert_eq!(
        reason.grant,
        Grant::Membership {
            membership: "cm".into(),
            plan: "hot".into(),
            company: Some("acme".into())
        }
    );
    assert!(problem_texts(&evaluation)
        .iter()
        .any(|p| p.contains("member dan (Dan) has no email")));
}

#[test]
fn former_member_never_gets_access() {
    let index = org(
        json!({"memberships": [personal("m1", "cid", "hot", "2026-01-01T00:00:00.000Z", None)]}),
    );
    let evaluation = evaluate(
        &index,
        &[binding("hot", Source::Plan(id("hot")))],
        t("2026-03-10T12:00:00Z"),
    );
    assert!(people(&evaluation, "hot").is_empty());
}

#[test]
fn member_without_email_is_reported_and_not_granted() {
    let index = org(
        json!({"memberships": [personal("m1", "dan", "hot", "2026-01-01T00:00:00.000Z", None)]}),
    );
    let evaluation = evaluate(
        &index,
        &[binding("hot", Source::Plan(id("hot")))],
        t("2026-03-10T12:00:00Z"),
    );
    assert!(people(&evaluation, "hot").is_empty());
    assert_eq!(
        problem_texts(&evaluation),
        vec![
            "binding default/hot: member dan (Dan) has no email, so cannot be given access"
                .to_owned()
        ]
    );
}

#[test]
fn overlapping_memberships_give_two_reasons_and_the_later_end() {
    let index = org(json!({"memberships": [
        personal("m1", "ann", "hot", "2026-01-01T00:00:00.000Z", Some("2026-03-31T00:00:00.000Z")),
        personal("m2", "ann", "hot", "2026-03-15T00:00:00.000Z", Some("2026-06-30T00:00:00.000Z"))
    ]}));
    let bindings = [binding("hot", Source::Plan(id("hot")))];
    let evaluation = evaluate(&index, &bindings, t("2026-03-20T12:00:00Z"));
    let entitlement = &evaluation.groups[&group("hot")][&member("ann")];
    assert_eq!(entitlement.reasons.len(), 2);
    assert_eq!(
        entitlement.ends_at,
        Some(t("2026-06-30T23:00:00Z")),
        "end of June 30 in BST"
    );
    // The first membership's end changes the reasons, not the people.
    assert_eq!(evaluation.next_change_at, Some(t("2026-03-31T23:00:00Z")));
    let later = evaluate(&index, &bindings, t("2026-04-01T12:00:00Z"));
    assert_eq!(people(&later, "hot"), vec![member("ann")]);
}

#[test]
fn member_moving_company_moves_their_company_access() {
    let index = org(
        json!({"memberships": [{"_id": "cm", "isPersonal": false, "status": "approved",
        "company": "globex", "plan": "hot", "startDate": "2026-01-01T00:00:00.000Z"}]}),
    );
    let at = t("2026-03-10T12:00:00Z");
    let mut engine = Engine::new(index, vec![binding("hot", Source::Plan(id("hot")))], at);
    assert_eq!(
        engine
            .group(&group("hot"))
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec![member("gus")]
    );
    let mut ann = engine.index().member("ann").cloned().expect("ann exists");
    ann.company = Some("globex".to_owned());
    let recomputed = engine.update(|index| index.upsert_member(ann));
    assert!(recomputed.changed_groups.contains(&group("hot")));
    assert_eq!(
        engine
            .group(&group("hot"))
            .keys()
            .cloned()
            .collect::<Vec<_>>(),
        vec![member("ann"), member("gus")]
    );
    assert_eq!(
        engine.evaluation(),
        evaluate(engine.index(), engine.bindings(), at)
    );
}

// ----- References -----------------------------------------------------------------------------------------

#[test]
fn ambiguous_name_is_reported_and_grants_nothing() {
    let index = org(
        json!({"memberships": [personal("m1", "ann", "po1", "2026-01-01T00:00:00.000Z", None)]}),
    );
    let evaluation = evaluate(
        &index,
        &[binding("po", Source::Plan(name("Private Office")))],
        t("2026-03-10T12:00:00Z"),
    );
    assert!(people(&evaluation, "po").is_empty());
    assert!(
        evaluation.groups.contains_key(&group("po")),
        "the group is still listed, empty"
    );
    assert_eq!(
        problem_texts(&evaluation),
        vec!["binding default/po: plan 'Private Office' matches 2 plans: ids po1, po2".to_owned()]
    );
}

#[test]
fn missing_object_is_reported() {
    let index = org(json!({}));
    let evaluation = evaluate(
        &index,
        &[binding("f", Source::Floor(id("x")))],
        t("2026-03-10T12:00:00Z"),
    );
    assert_eq!(
        problem_texts(&evaluation),
        vec!["binding default/f: floor id x not found".to_owned()]
    );
}

// ----- Location / Floor / AssignableResource ------------------------------------------------------------------

#[test]
fn assignments_grant_by_location_floor_and_resource_within_their_dates() {
    let index = org(json!({
        "memberships": [personal("m1", "ann", "ded", "2026-01-01T00:00:00.000Z", None)],
        "assignments": [{"_id": "a1", "resource": "desk4", "membership": "m1",
            "startDate": "2026-02-01T00:00:00.000Z", "endDate": "2026-02-28T00:00:00.000Z"}]
    }));
    let bindings = [
        binding("london", Source::Location(name("London"))),
        binding("floor1", Source::Floor(name("Floor 1"))),
        binding("floor2", Source::Floor(name("Floor 2"))),
        binding("desk4", Source::AssignableResource(name("Desk 4"))),
    ];
    let during = evaluate(&index, &bindings, t("2026-02-15T12:00:00Z"));
    for group_name in ["london", "floor1", "desk4"] {
        assert_eq!(
            people(&during, group_name),
            vec![member("ann")],
            "{group_name}"
        );
    }
    assert!(people(&during, "floor2").is_empty());
    assert!(people(
        &evaluate(&index, &bindings, t("2026-01-31T23:59:59Z")),
        "desk4"
    )
    .is_empty());
    assert!(people(
        &evaluate(&index, &bindings, t("2026-03-01T00:00:00Z")),
        "desk4"
    )
    .is_empty());
}

#[test]
fn company_membership_assigned_to_an_office_grants_the_team() {
    let index = org(json!({
        "memberships": [{"_id": "cm", "isPersonal": false, "status": "approved", "company": "acme",
            "plan": "po1", "startDate": "2026-01-01T00:00:00.000Z"}],
        "assignments": [{"_id": "a1", "resource": "office9", "membership": "cm"}]
    }));
    let evaluation = evaluate(
        &index,
        &[binding("o", Source::AssignableResource(id("office9")))],
        t("2026-03-10T12:00:00Z"),
    );
    assert_eq!(
        people(&evaluation, "o"),
        vec![member("ann"), member("bob"), member("eve")]
    );
}

#[test]
fn a_company_office_and_its_location_and_floor_grant_drop_in_team_members() {
    let index = org(json!({
        "members": whole_team(),
        "memberships": [{"_id": "cm", "isPersonal": false, "status": "approved", "company": "acme",
            "plan": "po1", "startDate": "2026-01-01T00:00:00.000Z"}],
        "assignments": [{"_id": "a1", "resource": "desk4", "membership": "cm"}]
    }));
    let bindings = [
        binding("desk", Source::AssignableResource(id("desk4"))),
        binding("floor", Source::Floor(id("f1"))),
        binding("london", Source::Location(id("lon"))),
    ];
    let evaluation = evaluate(&index, &bindings, t("2026-03-10T12:00:00Z"));
    for name in ["desk", "floor", "london"] {
        assert_eq!(people(&evaluation, name), acme_team(), "{name}");
    }
    assert!(matches!(
        &evaluation.groups[&group("london")][&member("ida")].reasons[0].grant,
        Grant::Assignment { company: Some(company), .. } if &**company == "acme"
    ));
}

// ----- Bookings -------------------------------------------------------------------------------------------------

fn meeting(id: &str, start: &str, end: &str) -> serde_json::Value {
    json!({"_id": id, "resource": "room", "member": "ann", "members": ["bob"], "visitors": ["v1", "v2"],
        "start": start, "end": end, "title": "Planning", "timezone": "Europe/London"})
}

#[test]
fn booking_grants_booker_teammates_and_guests_from_grant_before_until_revoke_after() {
    let index = org(
        json!({"bookings": [meeting("b1", "2026-03-10T10:00:00.000Z", "2026-03-10T11:00:00.000Z")]}),
    );
    let mut room = binding("room", Source::BookableResource(name("Room A")));
    room.grant_before = Duration::minutes(15);
    room.revoke_after = Duration::minutes(10);
    room.include_guests = true;
    let bindings = [room];
    let before = evaluate(&index, &bindings, t("2026-03-10T09:44:59Z"));
    assert!(people(&before, "room").is_empty());
    assert_eq!(before.next_change_at, Some(t("2026-03-10T09:45:00Z")));
    let opened = evaluate(&index, &bindings, t("2026-03-10T09:45:00Z"));
    assert_eq!(
        people(&opened, "room"),
        vec![member("ann"), member("bob"), guest("v1")]
    );
    assert_eq!(opened.next_change_at, Some(t("2026-03-10T11:10:00Z")));
    assert!(problem_texts(&opened)
        .iter()
        .any(|p| p.contains("guest v2 (Nomail) has no email")));
    assert_eq!(
        people(
            &evaluate(&index, &bindings, t("2026-03-10T11:09:59Z")),
            "room"
        )
        .len(),
        3
    );
    assert!(people(
        &evaluate(&index, &bindings, t("2026-03-10T11:10:00Z")),
        "room"
    )
    .is_empty());
}

#[test]
fn extreme_margins_and_instants_never_overflow_and_margins_are_held_to_a_day() {
    // A far-future booking next to a normal one: instants at the edge of the calendar must not
    // bring the evaluation (or `explain`) down.
    let index = org(json!({"bookings": [
        meeting("b1", "2026-03-10T10:00:00.000Z", "2026-03-10T11:00:00.000Z"),
        meeting("b2", "+262000-01-01T00:00:00Z", "+262142-12-31T00:00:00Z"),
    ]}));
    let mut room = binding("room", Source::BookableResource(name("Room A")));
    room.grant_before = Duration::MAX;
    room.revoke_after = Duration::MAX;
    let bindings = [room];
    // Held to 24 hours: a day and a minute before the start, nobody yet; a day before, the booker.
    let early = evaluate(&index, &bindings, t("2026-03-09T09:59:00Z"));
    assert!(people(&early, "room").is_empty());
    assert_eq!(early.next_change_at, Some(t("2026-03-09T10:00:00Z")));
    let opened = evaluate(&index, &bindings, t("2026-03-09T10:00:00Z"));
    assert_eq!(people(&opened, "room"), vec![member("ann"), member("bob")]);
    let closed = evaluate(&index, &bindings, t("2026-03-11T11:00:00Z"));
    assert!(people(&closed, "room").is_empty());
    let mut negative = binding("room", Source::BookableResource(name("Room A")));
    negative.grant_before = Duration::MIN;
    negative.revoke_after = Duration::MIN;
    let during = evaluate(&index, &[negative.clone()], t("2026-03-10T10:30:00Z"));
    assert_eq!(people(&during, "room"), vec![member("ann"), member("bob")]);
    let explained = explain(
        &index,
        &bindings,
        t("2026-03-10T10:30:00Z"),
        "ann@example.com",
    );
    assert_eq!(explained.people, vec![member("ann")]);
}

#[test]
fn guests_are_granted_only_when_the_binding_includes_them() {
    let index = org(
        json!({"bookings": [meeting("b1", "2026-03-10T10:00:00.000Z", "2026-03-10T11:00:00.000Z")]}),
    );
    let evaluation = evaluate(
        &index,
        &[binding("room", Source::BookableResource(id("room")))],
        t("2026-03-10T10:30:00Z"),
    );
    assert_eq!(
        people(&evaluation, "room"),
        vec![member("ann"), member("bob")]
    );
}

#[test]
fn cancelled_and_tentative_bookings_grant_nothing() {
    let mut cancelled = meeting("b1", "2026-03-10T10:00:00.000Z", "2026-03-10T11:00:00.000Z");
    cancelled["isCancelled"] = json!(true);
    let mut tentative = meeting("b2", "2026-03-10T10:00:00.000Z", "2026-03-10T11:00:00.000Z");
    tentative["isTentative"] = json!(true);
    let index = org(json!({"bookings": [cancelled, tentative]}));
    let evaluation = evaluate(
        &index,
        &[binding("room", Source::BookableResource(id("room")))],
        t("2026-03-10T10:30:00Z"),
    );
    assert!(people(&evaluation, "room").is_empty());
    assert_eq!(evaluation.next_change_at, None);
}

#[test]
fn recurring_booking_skips_exception_dates_and_points_to_the_next_occurrence() {
    let mut series = meeting("s1", "2026-03-02T10:00:00.000Z", "2026-03-02T11:00:00.000Z");
    series["recurrence"] =
        json!({"rrule": "FREQ=DAILY;COUNT=10", "exdates": ["2026-03-04T10:00:00.000Z"]});
    let index = org(json!({"bookings": [series]}));
    let bindings = [binding("room", Source::BookableResource(id("room")))];
    let on_day_two = evaluate(&index, &bindings, t("2026-03-03T10:30:00Z"));
    assert_eq!(
        people(&on_day_two, "room"),
        vec![member("ann"), member("bob")]
    );
    let exception_day = evaluate(&index, &bindings, t("2026-03-04T10:30:00Z"));
    assert!(people(&exception_day, "room").is_empty());
    assert_eq!(
        exception_day.next_change_at,
        Some(t("2026-03-05T10:00:00Z"))
    );
    assert!(
        people(
            &evaluate(&index, &bindings, t("2026-03-12T10:30:00Z")),
            "room"
        )
        .is_empty(),
        "COUNT=10 ended"
    );
}

#[test]
fn weekly_booking_stays_at_local_time_across_the_london_spring_change() {
    let mut series = meeting("s1", "2026-03-23T09:00:00.000Z", "2026-03-23T10:00:00.000Z");
    series["recurrence"] = json!({"rrule": "RRULE:FREQ=WEEKLY"});
    let index = org(json!({"bookings": [series]}));
    let bindings = [binding("room", Source::BookableResource(id("room")))];
    // 09:00 London on 2026-03-30 is 08:00 UTC (BST).
    assert_eq!(
        people(
            &evaluate(&index, &bindings, t("2026-03-30T08:30:00Z")),
            "room"
        )
        .len(),
        2
    );
    assert!(people(
        &evaluate(&index, &bindings, t("2026-03-30T09:30:00Z")),
        "room"
    )
    .is_empty());
}

// ----- Day passes -------------------------------------------------------------------------------------------------

#[test]
fn day_passes_grant_while_valid_and_not_used_up() {
    let index = org(json!({"passes": [
        {"_id": "p1", "member": "ann", "isPersonal": true, "count": 5, "usedCount": 2, "status": "valid",
         "validFrom": "2026-03-01T00:00:00.000Z", "validTo": "2026-03-31T00:00:00.000Z"},
        {"_id": "p2", "member": "fay", "isPersonal": true, "count": 5, "usedCount": 5,
         "validFrom": "2026-03-01T00:00:00.000Z", "validTo": "2026-03-31T00:00:00.000Z"}
    ]}));
    let bindings = [binding("dp", Source::DayPasses(None))];
    let evaluation = evaluate(&index, &bindings, t("2026-03-10T12:00:00Z"));
    assert_eq!(
        people(&evaluation, "dp"),
        vec![member("ann")],
        "Fay's passes are used up"
    );
    let reason = &evaluation.groups[&group("dp")][&member("ann")].reasons[0];
    assert!(matches!(reason.grant, Grant::DayPass { remaining: 3, .. }));
    assert_eq!(
        evaluation.next_change_at,
        Some(t("2026-03-31T23:00:00Z")),
        "validity ends with March 31 (BST)"
    );
    assert!(people(
        &evaluate(&index, &bindings, t("2026-04-01T00:00:00Z")),
        "dp"
    )
    .is_empty());
}

#[test]
fn using_the_last_pass_revokes_access() {
    let index = org(
        json!({"passes": [{"_id": "p1", "member": "ann", "isPersonal": true, "count": 1,
        "usedCount": 0, "validFrom": "2026-03-01T00:00:00.000Z"}]}),
    );
    let at = t("2026-03-10T12:00:00Z");
    let mut engine = Engine::new(index, vec![binding("dp", Source::DayPasses(None))], at);
    assert_eq!(engine.group(&group("dp")).len(), 1);
    let mut pass = engine.index().pass("p1").cloned().expect("pass exists");
    pass.used_count = Some(1);
    let recomputed = engine.update(|index| index.upsert_pass(pass));
    assert!(recomputed.changed_groups.contains(&group("dp")));
    assert!(engine.group(&group("dp")).is_empty());
}

#[test]
fn company_pass_set_grants_the_whole_team_drop_in_members_included() {
    let index = org(json!({
        "members": whole_team(),
        "passes": [{"_id": "p1", "company": "acme", "isPersonal": false, "count": "10",
            "usedCount": 3, "startDate": "2026-03-01T00:00:00.000Z", "endDate": "2026-03-31T00:00:00.000Z"}]
    }));
    let evaluation = evaluate(
        &index,
        &[binding("dp", Source::DayPasses(None))],
        t("2026-03-10T12:00:00Z"),
    );
    // Seeds 001/002/003: "every member or team that has day passes".
    assert_eq!(people(&evaluation, "dp"), acme_team());
    assert_eq!(
        evaluation.groups[&group("dp")][&member("ida")].reasons[0].grant,
        Grant::DayPass {
            pass: "p1".into(),
            remaining: 7,
            company: Some("acme".into())
        }
    );
    // Used up: nobody, drop-in or not.
    let mut index = index;
    let mut pass = index.pass("p1").cloned().expect("pass exists");
    pass.used_count = Some(10);
    index.upsert_pass(pass);
    let evaluation = evaluate(
        &index,
        &[binding("dp", Source::DayPasses(None))],
        t("2026-03-10T12:00:00Z"),
    );
    assert!(people(&evaluation, "dp").is_empty());
}

#[test]
fn a_status_change_of_a_team_member_reevaluates_the_company_grants() {
    let index = org(json!({
        "members": whole_team(),
        "memberships": [{"_id": "cm", "isPersonal": false, "status": "approved", "company": "acme",
            "plan": "hot", "startDate": "2026-01-01T00:00:00.000Z"}],
        "assignments": [{"_id": "a1", "resource": "desk4", "membership": "cm"}],
        "passes": [{"_id": "p1", "company": "acme", "isPersonal": false, "count": 10, "usedCount": 0}]
    }));
    let bindings = vec![
        binding("hot", Source::Plan(id("hot"))),
        binding("desk", Source::AssignableResource(id("desk4"))),
        binding("dp", Source::DayPasses(None)),
        binding("room", Source::BookableResource(id("room"))),
    ];
    let at = t("2026-03-10T12:00:00Z");
    let mut engine = Engine::new(index, bindings, at);
    let team_groups = [group("desk"), group("dp"), group("hot")];
    let has_ida =
        |engine: &Engine, name: &str| engine.group(&group(name)).contains_key(&member("ida"));
    for (status, granted) in [
        ("active", true),
        ("former", false),
        ("drop-in", true),
        ("not_approved", false),
        ("lead", true),
        ("drop-in", true),
    ] {
        let was = has_ida(&engine, "hot");
        let mut ida = engine.index().member("ida").cloned().expect("ida exists");
        ida.status = serde_json::from_value(json!(status)).expect("a status");
        let recomputed = engine.update(|index| index.upsert_member(ida));
        for name in ["hot", "desk", "dp"] {
            assert_eq!(has_ida(&engine, name), granted, "{status}: {name}");
        }
        if was != granted {
            assert_eq!(
                recomputed.changed_groups.into_iter().collect::<Vec<_>>(),
                team_groups,
                "{status}"
            );
        }
        assert_eq!(
            engine.evaluation(),
            evaluate(engine.index(), engine.bindings(), at),
            "{status}"
        );
    }
    // Losing the email is a bar like the others, and a problem while the team's grants run.
    let mut ida = engine.index().member("ida").cloned().expect("ida exists");
    ida.email = None;
    engine.update(|index| index.upsert_member(ida));
    assert!(!has_ida(&engine, "dp"));
    assert!(problem_texts(&engine.evaluation())
        .iter()
        .any(|p| p.contains("member ida (Ida) has no email")));
    assert_eq!(
        engine.evaluation(),
        evaluate(engine.index(), engine.bindings(), at)
    );
}

// ----- Union, scope, Salto KS gate -----------------------------------------------------------------------------

#[test]
fn two_bindings_on_one_group_form_a_union_with_all_reasons() {
    let index = org(json!({
        "memberships": [personal("m1", "ann", "hot", "2026-01-01T00:00:00.000Z", None)],
        "passes": [{"_id": "p1", "member": "ann", "count": 5, "usedCount": 0},
                   {"_id": "p2", "member": "fay", "count": 5, "usedCount": 0}]
    }));
    let mut plan = binding("plan", Source::Plan(id("hot")));
    let mut passes = binding("passes", Source::DayPasses(None));
    plan.groups = vec![group("front-door")];
    passes.groups = vec![group("front-door")];
    let evaluation = evaluate(&index, &[plan, passes], t("2026-03-10T12:00:00Z"));
    assert_eq!(
        people(&evaluation, "front-door"),
        vec![member("ann"), member("fay")]
    );
    assert_eq!(
        evaluation.groups[&group("front-door")][&member("ann")]
            .reasons
            .len(),
        2
    );
}

#[test]
fn location_scope_limits_a_binding_to_its_locations() {
    let mut paris = personal("m2", "fay", "hot", "2026-01-01T00:00:00.000Z", None);
    paris["location"] = json!("par");
    let index = org(
        json!({"memberships": [personal("m1", "ann", "hot", "2026-01-01T00:00:00.000Z", None), paris]}),
    );
    let mut scoped = binding("hot", Source::Plan(id("hot")));
    scoped.location_scope = Some(vec![name("London")]);
    let evaluation = evaluate(&index, &[scoped], t("2026-03-10T12:00:00Z"));
    assert_eq!(people(&evaluation, "hot"), vec![member("ann")]);

    let mut office = binding("office", Source::AssignableResource(id("office9")));
    office.location_scope = Some(vec![id("lon")]);
    let evaluation = evaluate(&index, &[office], t("2026-03-10T12:00:00Z"));
    assert_eq!(
        problem_texts(&evaluation),
        vec![
            "binding default/office: resource office9 is outside the connection's locations"
                .to_owned()
        ]
    );
}

#[test]
fn a_day_pass_location_and_the_connection_scope_intersect() {
    // Pass sets in London (Ann's own location) and Paris (Fay's; Globex's for Gus, a drop-in member).
    let index = org(json!({
        "members": [{"_id": "hal", "name": "Hal", "email": "hal@example.com", "company": "globex",
            "status": "drop-in"}],
        "passes": [
            {"_id": "p1", "member": "ann", "isPersonal": true, "count": 5, "usedCount": 0},
            {"_id": "p2", "member": "fay", "isPersonal": true, "count": 5, "usedCount": 0},
            {"_id": "p3", "company": "globex", "isPersonal": false, "count": 5, "usedCount": 0}
        ]
    }));
    let at = t("2026-03-10T12:00:00Z");
    let passes = |scope: Option<Vec<flexgate::engine::ObjectRef>>, location| {
        let mut bound = binding("dp", Source::DayPasses(location));
        bound.location_scope = scope;
        evaluate(&index, &[bound], at)
    };
    let paris_team = vec![member("fay"), member("gus"), member("hal")];

    // A London-only connection and a Paris binding: nobody, and the binding says why (the binding's
    // location used to replace the connection's scope, granting Paris through a London-only account).
    let empty = passes(Some(vec![name("London")]), Some(name("Paris")));
    assert!(people(&empty, "dp").is_empty());
    assert_eq!(
        problem_texts(&empty),
        vec!["binding default/dp: day-pass location par is outside the connection's locations"]
    );
    assert_eq!(empty.next_change_at, None);

    // Both name London: London only.
    let london = passes(Some(vec![id("lon")]), Some(name("London")));
    assert_eq!(people(&london, "dp"), vec![member("ann")]);
    assert!(london.problems.is_empty());
    // A wider connection: the binding's location narrows it.
    let narrowed = passes(Some(vec![name("London"), name("Paris")]), Some(id("par")));
    assert_eq!(people(&narrowed, "dp"), paris_team);
    // Either alone.
    assert_eq!(people(&passes(None, Some(name("Paris"))), "dp"), paris_team);
    assert_eq!(
        people(&passes(Some(vec![name("Paris")]), None), "dp"),
        paris_team
    );
    let mut everyone = paris_team.clone();
    everyone.insert(0, member("ann"));
    assert_eq!(people(&passes(None, None), "dp"), everyone);
    // A location that does not exist is a problem, not "everywhere".
    let unknown = passes(None, Some(name("Atlantis")));
    assert!(people(&unknown, "dp").is_empty());
    assert_eq!(
        problem_texts(&unknown),
        vec!["binding default/dp: location 'Atlantis' not found"]
    );

    // explain says the same to the front desk.
    let mut bound = binding("dp", Source::DayPasses(Some(name("Paris"))));
    bound.location_scope = Some(vec![name("London")]);
    let explanation = explain(&index, &[bound], at, "fay@example.com");
    let verdict = &explanation.groups[&group("dp")];
    assert!(!verdict.granted);
    assert_eq!(
        verdict.bindings[0].messages[0],
        "this binding's day-pass location Paris is outside the connection's locations, so it grants nobody"
    );
    let explanation = explain(
        &index,
        &[binding("dp", Source::DayPasses(Some(name("Paris"))))],
        at,
        "ann@example.com",
    );
    assert!(explanation.groups[&group("dp")].bindings[0]
        .messages
        .contains(&"day passes are for London, not this binding's location Paris".to_owned()));
}

#[test]
fn require_active_membership_holds_back_bookers_without_a_running_membership() {
    let index = org(json!({
        "memberships": [personal("m1", "ann", "hot", "2026-03-11T00:00:00.000Z", None)],
        "bookings": [meeting("b1", "2026-03-10T10:00:00.000Z", "2026-03-12T11:00:00.000Z")]
    }));
    let mut room = binding("room", Source::BookableResource(id("room")));
    room.require_active_membership = true;
    room.include_guests = true;
    let bindings = [room];
    let before = evaluate(&index, &bindings, t("2026-03-10T12:00:00Z"));
    // Bob has no membership at all; the guest is exempt; Ann's membership starts tomorrow.
    assert_eq!(people(&before, "room"), vec![guest("v1")]);
    assert_eq!(before.next_change_at, Some(t("2026-03-11T00:00:00Z")));
    let after = evaluate(&index, &bindings, t("2026-03-11T00:00:00Z"));
    assert_eq!(people(&after, "room"), vec![member("ann"), guest("v1")]);
}

// ----- Incremental -------------------------------------------------------------------------------------------

#[test]
fn a_changed_booking_reevaluates_only_bindings_on_its_resource() {
    let index = org(
        json!({"memberships": [personal("m1", "ann", "hot", "2026-01-01T00:00:00.000Z", None)]}),
    );
    let bindings = vec![
        binding("hot", Source::Plan(id("hot"))),
        binding("room", Source::BookableResource(id("room"))),
        binding("dp", Source::DayPasses(None)),
    ];
    let at = t("2026-03-10T10:30:00Z");
    let mut engine = Engine::new(index, bindings, at);
    let booking = serde_json::from_value(meeting(
        "b1",
        "2026-03-10T10:00:00.000Z",
        "2026-03-10T11:00:00.000Z",
    ))
    .expect("valid booking");
    let recomputed = engine.update(|index| index.upsert_booking(booking));
    assert_eq!(
        recomputed
            .bindings
            .iter()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>(),
        vec!["room"]
    );
    assert_eq!(
        recomputed.changed_groups.into_iter().collect::<Vec<_>>(),
        vec![group("room")]
    );
    assert_eq!(
        engine.evaluation(),
        evaluate(engine.index(), engine.bindings(), at)
    );
    let recomputed = engine.update(|index| index.remove_booking("b1"));
    assert!(recomputed.changed_groups.contains(&group("room")));
    assert!(engine.group(&group("room")).is_empty());
}

#[test]
fn advancing_time_reevaluates_only_due_bindings() {
    let index = org(json!({
        "memberships": [personal("m1", "ann", "hot", "2026-01-01T00:00:00.000Z", None)],
        "bookings": [meeting("b1", "2026-03-10T10:00:00.000Z", "2026-03-10T11:00:00.000Z")]
    }));
    let bindings = vec![
        binding("hot", Source::Plan(id("hot"))),
        binding("room", Source::BookableResource(id("room"))),
    ];
    let mut engine = Engine::new(index, bindings, t("2026-03-10T09:00:00Z"));
    let next = engine.next_change_at().expect("the booking starts");
    assert_eq!(next, t("2026-03-10T10:00:00Z"));
    let recomputed = engine.advance_to(next);
    assert_eq!(
        recomputed
            .bindings
            .iter()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>(),
        vec!["room"]
    );
    assert_eq!(
        engine.evaluation(),
        evaluate(engine.index(), engine.bindings(), next)
    );
}

// ----- Explain --------------------------------------------------------------------------------------------------

#[test]
fn explain_says_why_and_why_not() {
    let mut not_approved = personal("m3", "ann", "po1", "2026-01-01T00:00:00.000Z", None);
    not_approved["status"] = json!("not_approved");
    let index = org(json!({
        "memberships": [
            personal("m1", "ann", "hot", "2026-01-01T00:00:00.000Z", Some("2026-03-01T00:00:00.000Z")),
            personal("m2", "ann", "ded", "2026-12-01T00:00:00.000Z", None),
            not_approved
        ],
        "bookings": [meeting("b1", "2026-03-10T11:10:00.000Z", "2026-03-10T12:00:00.000Z")],
        "passes": [{"_id": "p1", "member": "ann", "count": 2, "usedCount": 2}]
    }));
    let mut room = binding("room", Source::BookableResource(id("room")));
    room.grant_before = Duration::minutes(10);
    let bindings = [
        binding("hot", Source::Plan(id("hot"))),
        binding("ded", Source::Plan(id("ded"))),
        binding("po", Source::Plan(id("po1"))),
        room,
        binding("dp", Source::DayPasses(None)),
    ];
    let explanation = explain(
        &index,
        &bindings,
        t("2026-03-10T10:30:00Z"),
        "ANN@example.com",
    );
    let messages = |group_name: &str| -> Vec<String> {
        let group = &explanation.groups[&group(group_name)];
        assert!(!group.granted, "{group_name}");
        group
            .bindings
            .iter()
            .flat_map(|b| b.messages.clone())
            .collect()
    };
    assert_eq!(
        messages("hot"),
        vec!["membership on Hot Desk ended 2026-03-01"]
    );
    assert_eq!(
        messages("ded"),
        vec!["membership on Dedicated Desk starts 2026-12-01"]
    );
    assert_eq!(
        messages("po"),
        vec!["membership on Private Office: membership not approved"]
    );
    assert_eq!(
        messages("room"),
        vec!["booking 'Planning' starts in 40 minutes; access opens 10 minutes before"]
    );
    assert_eq!(messages("dp"), vec!["day passes used up"]);
}

#[test]
fn explain_reports_former_members_and_missing_emails() {
    let index = org(
        json!({"memberships": [personal("m1", "cid", "hot", "2026-01-01T00:00:00.000Z", None)]}),
    );
    let bindings = [binding("hot", Source::Plan(id("hot")))];
    let explanation = explain(
        &index,
        &bindings,
        t("2026-03-10T10:30:00Z"),
        "cid@example.com",
    );
    let verdict = &explanation.groups[&group("hot")].bindings[0];
    assert!(verdict.reasons.is_empty());
    assert_eq!(verdict.messages[0], "former member");
    let unknown = explain(
        &index,
        &bindings,
        t("2026-03-10T10:30:00Z"),
        "nobody@example.com",
    );
    assert_eq!(
        unknown.groups[&group("hot")].bindings[0].messages,
        vec!["no member or guest has this email"]
    );
}

#[test]
fn explain_lists_the_reasons_of_granted_groups() {
    let index = org(
        json!({"memberships": [personal("m1", "bob", "hot", "2026-01-01T00:00:00.000Z", None)]}),
    );
    let bindings = [binding("hot", Source::Plan(id("hot")))];
    let explanation = explain(
        &index,
        &bindings,
        t("2026-03-10T10:30:00Z"),
        "bob@example.com",
    );
    let group = &explanation.groups[&group("hot")];
    assert!(group.granted);
    assert_eq!(group.bindings[0].reasons.len(), 1);
    assert_eq!(
        group.bindings[0].messages,
        vec!["membership on Hot Desk is active"]
    );
}

#[test]
fn explain_tells_a_drop_in_member_they_are_covered_as_part_of_the_team() {
    let index = org(json!({
        "members": whole_team(),
        "memberships": [{"_id": "cm", "isPersonal": false, "status": "approved", "company": "acme",
            "plan": "hot", "startDate": "2026-01-01T00:00:00.000Z", "endDate": "2026-06-30T00:00:00.000Z"}],
        "passes": [{"_id": "p1", "company": "acme", "isPersonal": false, "count": 4, "usedCount": 1}]
    }));
    let bindings = [
        binding("hot", Source::Plan(id("hot"))),
        binding("dp", Source::DayPasses(None)),
    ];
    let at = t("2026-03-10T12:00:00Z");
    let explanation = explain(&index, &bindings, at, "IDA@example.com");
    let hot = &explanation.groups[&group("hot")];
    assert!(hot.granted);
    assert_eq!(
        hot.bindings[0].messages,
        vec!["membership on Hot Desk (whole team of Acme) is active through 2026-06-30"]
    );
    let dp = &explanation.groups[&group("dp")];
    assert!(dp.granted);
    assert_eq!(
        dp.bindings[0].messages,
        vec!["3 day passes left (company pass set of Acme, for the whole team)"]
    );
    // A barred teammate hears the bar, and no claim that the team rule left them out.
    let explanation = explain(&index, &bindings, at, "nat@example.com");
    let hot = &explanation.groups[&group("hot")];
    assert!(!hot.granted);
    assert_eq!(
        hot.bindings[0].messages,
        vec![
            "member not approved",
            "membership on Hot Desk (whole team of Acme) is active through 2026-06-30"
        ]
    );
}

// ----- Email identity ---------------------------------------------------------------------------------------------

#[test]
fn people_are_found_by_email_whatever_its_case_spaces_or_composition() {
    // "é" decomposed (e + combining acute) in OfficeRnD, typed composed and in capitals at the desk.
    let index = org(json!({
        "members": [
            {"_id": "eva", "name": "Éva", "email": " E\u{301}va.Ñúñez@Bücher.DE ", "status": "drop-in",
             "company": "acme"},
            {"_id": "dim", "name": "Дмитрий", "email": "ДМИТРИЙ@ПОЧТА.РФ", "status": "active"}
        ],
        "visitors": [{"_id": "v9", "name": "Ren", "email": "REN\u{c9}@CAF\u{c9}.fr"}],
        "memberships": [
            {"_id": "cm", "isPersonal": false, "status": "approved", "company": "acme", "plan": "hot",
             "startDate": "2026-01-01T00:00:00.000Z"},
            personal("m2", "dim", "hot", "2026-01-01T00:00:00.000Z", None)
        ]
    }));
    let bindings = [binding("hot", Source::Plan(id("hot")))];
    let at = t("2026-03-10T12:00:00Z");
    for typed in [
        "éva.ñúñez@bücher.de",
        "\u{a0}ÉVA.ÑÚÑEZ@BÜCHER.DE\t",
        "e\u{301}va.n\u{303}u\u{301}n\u{303}ez@bu\u{308}cher.de",
    ] {
        let explanation = explain(&index, &bindings, at, typed);
        assert_eq!(explanation.people, vec![member("eva")], "{typed:?}");
        assert!(explanation.groups[&group("hot")].granted, "{typed:?}");
    }
    let explanation = explain(&index, &bindings, at, "дмитрий@почта.рф");
    assert_eq!(explanation.people, vec![member("dim")]);
    let explanation = explain(&index, &bindings, at, " rené@café.FR ");
    assert_eq!(explanation.people, vec![guest("v9")]);
    // Another letter is another person; a blank query is nobody.
    assert!(explain(&index, &bindings, at, "eva.nunez@bucher.de")
        .people
        .is_empty());
    assert!(explain(&index, &bindings, at, "   ").people.is_empty());
    // The vendor gets the address as OfficeRnD holds it, trimmed.
    let evaluation = evaluate(&index, &bindings, at);
    assert_eq!(
        evaluation.groups[&group("hot")][&member("eva")].email,
        "E\u{301}va.Ñúñez@Bücher.DE"
    );
    // A change applied in place (as a webhook's is) re-keys the person by the same identity.
    let mut index = index;
    let mut dim = index.member("dim").cloned().expect("dim exists");
    dim.email = Some("  Дмитрий.Иванов@Почта.РФ".to_owned());
    index.upsert_member(dim);
    assert!(explain(&index, &bindings, at, "дмитрий@почта.рф")
        .people
        .is_empty());
    let explanation = explain(&index, &bindings, at, "ДМИТРИЙ.ИВАНОВ@ПОЧТА.РФ");
    assert_eq!(explanation.people, vec![member("dim")]);
}
