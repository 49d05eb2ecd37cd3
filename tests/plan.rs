//! `flexgate plan` and `explain` end to end: the examples evaluated against the sandbox's
//! OfficeRnD simulator with the demo data, through the real client.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use flexgate::cli::plan::{plan_report, write_explanation, PlanReport};
use flexgate::manifests;
use flexgate::operator::context::{build_all, Context};
use flexgate::operator::objects::Objects;
use flexgate::sandbox::{demo_start, Sandbox};

async fn demo_contexts() -> (Sandbox, Vec<Context>, Vec<String>) {
    let sandbox = Sandbox::start_demo().await.unwrap();
    let (documents, problems) = manifests::load(&[PathBuf::from("examples")]);
    assert!(problems.is_empty());
    let mut objects = Objects::from_documents(&documents).unwrap();
    sandbox.connect(&mut objects);
    let mut contexts = Vec::new();
    let mut errors = Vec::new();
    for result in build_all(&objects).await {
        match result {
            Ok(context) => {
                errors.extend(
                    context
                        .binding_errors
                        .iter()
                        .map(|(k, e)| format!("{k}: {e}")),
                );
                contexts.push(context);
            }
            Err((officernd, _, error)) => errors.push(format!("{officernd}: {error}")),
        }
    }
    (sandbox, contexts, errors)
}

fn members(report: &PlanReport, group: &str) -> Vec<String> {
    report
        .groups
        .iter()
        .filter(|g| g.group == group)
        .flat_map(|g| g.members.iter().map(|m| m.email.clone()))
        .collect()
}

fn at(offset_minutes: i64) -> DateTime<Utc> {
    demo_start() + Duration::minutes(offset_minutes)
}

#[tokio::test]
async fn demo_plan_follows_every_source_kind() {
    let (_sandbox, contexts, errors) = demo_contexts().await;
    assert!(errors.is_empty(), "{errors:?}");
    let report = plan_report(&contexts, Vec::new(), at(0));

    // Plan (Hot Desk) and day passes share the Lobby group: a union. Gus is a former member,
    // Ivy's membership is not approved but she holds day passes, Bob's passes are used up.
    assert_eq!(
        members(&report, "name:OFFICERND_Lobby"),
        [
            "ann.lee@example.com",
            "fay.quinn@example.com",
            "ivy.roe@example.com"
        ]
    );
    // A company membership without a member grants the whole team; Eli has no email.
    assert_eq!(
        members(&report, "name:OFFICERND_Office 101"),
        ["cyd.park@example.com", "dee.moss@example.com"]
    );
    assert!(
        report.problems.iter().any(|p| p.contains("has no email")),
        "{:?}",
        report.problems
    );
    // Location and floor: everyone assigned to a desk or office there.
    let building = [
        "bob.stone@example.com",
        "cyd.park@example.com",
        "dee.moss@example.com",
    ];
    assert_eq!(members(&report, "name:OFFICERND_London Building"), building);
    assert_eq!(members(&report, "name:OFFICERND_Floor 1"), building);
    // The meeting room is empty until the booking window opens.
    assert!(members(&report, "name:OFFICERND_Elephant Room").is_empty());
    assert_eq!(
        report.next_change_at.as_deref(),
        Some("2026-11-23T09:45:00Z")
    );
}

#[tokio::test]
async fn booking_window_opens_and_closes_and_a_membership_ends() {
    let (_sandbox, contexts, _) = demo_contexts().await;
    let room = "name:OFFICERND_Elephant Room";
    // Booking 10:00-11:00, grantBefore 15m, revokeAfter 5m; the guest comes with the booker.
    let party = [
        "cyd.park@example.com",
        "dee.moss@example.com",
        "zoe.guest@example.org",
    ];
    assert!(
        members(&plan_report(&contexts, vec![], at(104)), room).is_empty(),
        "09:44 is too early"
    );
    assert_eq!(
        members(&plan_report(&contexts, vec![], at(105)), room),
        party
    );
    assert_eq!(
        members(&plan_report(&contexts, vec![], at(184)), room),
        party,
        "11:04 is within revokeAfter"
    );
    assert!(members(&plan_report(&contexts, vec![], at(185)), room).is_empty());
    // Fay's membership ends 2026-11-23: access lasts through that day (London time), not after.
    let lobby = "name:OFFICERND_Lobby";
    assert!(
        members(&plan_report(&contexts, vec![], at(15 * 60 + 59)), lobby)
            .contains(&"fay.quinn@example.com".to_owned())
    );
    assert!(
        !members(&plan_report(&contexts, vec![], at(16 * 60)), lobby)
            .contains(&"fay.quinn@example.com".to_owned())
    );
}

#[tokio::test]
async fn explain_answers_the_front_desk() {
    let (_sandbox, contexts, _) = demo_contexts().await;
    let mut out = Vec::new();
    write_explanation(
        &contexts,
        "FAY.QUINN@example.com",
        at(24 * 60 + 60),
        &mut out,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("NOT IN default/kisi group name:OFFICERND_Lobby"),
        "{text}"
    );
    assert!(text.contains("ended 2026-11-23"), "{text}");

    let mut out = Vec::new();
    write_explanation(&contexts, "gus.hart@example.com", at(0), &mut out).unwrap();
    assert!(String::from_utf8(out).unwrap().contains("former member"));

    let mut out = Vec::new();
    write_explanation(&contexts, "nobody@example.com", at(0), &mut out).unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("no OfficeRnD member or booking guest has this email"));
}

#[tokio::test]
async fn plan_json_has_the_documented_shape() {
    let (_sandbox, contexts, _) = demo_contexts().await;
    let report = plan_report(&contexts, vec![], at(105));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["at"], "2026-11-23T09:45:00Z");
    let group = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "name:OFFICERND_Elephant Room")
        .unwrap();
    assert_eq!(group["namespace"], "default");
    assert_eq!(group["vendorConnection"], "brivo");
    let member = &group["members"][0];
    assert_eq!(member["email"], "cyd.park@example.com");
    assert!(member["officerndMemberId"].is_string());
    assert_eq!(
        member["reasons"][0]["binding"],
        "default/elephant-meeting-room"
    );
    assert!(member["reasons"][0]["source"]
        .as_str()
        .unwrap()
        .starts_with("bookable resource"));
    let guest = &group["members"][2];
    assert!(guest["officerndMemberId"].is_null());
    assert!(guest["officerndVisitorId"].is_string());
}
