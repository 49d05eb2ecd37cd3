//! `flexgate plan` and `flexgate explain`: evaluate manifests against OfficeRnD (the sandbox or
//! a real organization) and print who would be in every vendor group, or why one person is or is
//! not. Neither ever writes to a vendor.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::CliError;
use crate::engine::{self, BookingRole, Entitlement, Grant, PersonId, Reason, SharedId, Source};
use crate::manifests;
use crate::operator::context::{self, Context};
use crate::operator::objects::Objects;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Human-readable table.
    Table,
    /// The stable JSON form documented in the README.
    Json,
}

/// Arguments of `flexgate plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Folder (or file) of manifests: VendorConnections, their Secrets, AccessGroupBindings.
    #[arg(long)]
    pub manifests: PathBuf,
    /// The instant to evaluate at (RFC 3339); default now.
    #[arg(long)]
    pub at: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Arguments of `flexgate explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// Folder (or file) of manifests.
    #[arg(long)]
    pub manifests: PathBuf,
    /// The person's email (matched case-insensitively, members and booking guests).
    #[arg(long)]
    pub person: String,
    /// The instant to evaluate at (RFC 3339); default now.
    #[arg(long)]
    pub at: Option<DateTime<Utc>>,
}

/// The JSON form of `flexgate plan`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// The instant evaluated.
    pub at: String,
    /// The earliest later instant at which any group changes, if known.
    pub next_change_at: Option<String>,
    /// Every bound vendor group with its desired members, sorted by email.
    pub groups: Vec<GroupReport>,
    /// Problems found (references, people without email, unreadable connections).
    pub problems: Vec<String>,
}

/// One vendor group.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GroupReport {
    /// Namespace of the vendor connection.
    pub namespace: String,
    /// Name of the vendor connection.
    pub vendor_connection: String,
    /// The group as the bindings name it (`id:<id>` or `name:<name>`).
    pub group: String,
    /// Desired members.
    pub members: Vec<MemberReport>,
}

/// One person in a group.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MemberReport {
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// The OfficeRnD member id; null for booking guests.
    pub officernd_member_id: Option<String>,
    /// The OfficeRnD visitor id, for booking guests only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub officernd_visitor_id: Option<String>,
    /// Every reason.
    pub reasons: Vec<ReasonReport>,
}

/// Why a person is in a group.
#[derive(Debug, Serialize, PartialEq)]
pub struct ReasonReport {
    /// The binding, `namespace/name`.
    pub binding: String,
    /// The binding's source, e.g. `plan 'Hot Desk'`.
    pub source: String,
    /// The OfficeRnD object that entitles, e.g. `membership 3e3b… (whole company c000…)`.
    pub via: String,
    /// When this reason ends, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Describes a binding source for people.
pub fn describe_source(source: &Source) -> String {
    match source {
        Source::Plan(r) => format!("plan {r}"),
        Source::Location(r) => format!("location {r}"),
        Source::Floor(r) => format!("floor {r}"),
        Source::AssignableResource(r) => format!("assignable resource {r}"),
        Source::BookableResource(r) => format!("bookable resource {r}"),
        Source::DayPasses(None) => "day passes".to_owned(),
        Source::DayPasses(Some(r)) => format!("day passes in location {r}"),
    }
}

/// Describes the OfficeRnD object behind a grant.
pub fn describe_grant(grant: &Grant) -> String {
    let company = |c: &Option<SharedId>| {
        c.as_ref()
            .map(|c| format!(" (whole company {c})"))
            .unwrap_or_default()
    };
    match grant {
        Grant::Membership {
            membership,
            company: c,
            ..
        } => format!("membership {membership}{}", company(c)),
        Grant::Assignment {
            assignment,
            membership,
            company: c,
            ..
        } => {
            format!(
                "assignment {assignment} of membership {membership}{}",
                company(c)
            )
        }
        Grant::Booking {
            booking,
            occurrence_start,
            role,
            ..
        } => format!(
            "booking {booking} at {} as {}",
            timestamp(*occurrence_start),
            match role {
                BookingRole::Booker => "booker",
                BookingRole::Teammate => "teammate",
                BookingRole::Guest => "guest",
            }
        ),
        Grant::DayPass {
            pass,
            remaining,
            company: c,
        } => {
            format!("day pass set {pass} ({remaining} left){}", company(c))
        }
    }
}

fn reason_report(reason: &Reason) -> ReasonReport {
    ReasonReport {
        binding: reason.binding.to_string(),
        source: describe_source(&reason.source),
        via: describe_grant(&reason.grant),
        until: reason.ends_at.map(timestamp),
    }
}

fn member_report(entitlement: &Entitlement) -> MemberReport {
    let (member, visitor) = match &entitlement.person {
        PersonId::Member(id) => (Some(id.to_string()), None),
        PersonId::Guest(id) => (None, Some(id.to_string())),
    };
    MemberReport {
        email: entitlement.email.clone(),
        name: entitlement.name.clone(),
        officernd_member_id: member,
        officernd_visitor_id: visitor,
        reasons: entitlement.reasons.iter().map(reason_report).collect(),
    }
}

async fn contexts(manifests: &PathBuf) -> Result<(Objects, Vec<Context>, Vec<String>), String> {
    let (documents, load_problems) = manifests::load(std::slice::from_ref(manifests));
    let findings = manifests::validate(&documents, &[]);
    if !load_problems.is_empty() || !findings.is_empty() {
        let mut lines: Vec<String> = load_problems
            .iter()
            .map(|p| format!("{}: {}", p.file.display(), p.message))
            .collect();
        lines.extend(findings.iter().map(ToString::to_string));
        return Err(format!(
            "the manifests are not valid (run flexgate validate):\n{}",
            lines.join("\n")
        ));
    }
    let objects = Objects::from_documents(&documents).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let mut ready = Vec::new();
    for result in context::build_all(&objects).await {
        match result {
            Ok(context) => {
                problems.extend(
                    context
                        .binding_errors
                        .iter()
                        .map(|(key, error)| format!("binding {key}: {error}")),
                );
                ready.push(context);
            }
            Err((officernd, keys, error)) => problems.push(format!(
                "OfficeRnD connection {officernd} (used by {}): {error}",
                keys.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    Ok((objects, ready, problems))
}

/// Evaluates every context at `at` into the plan report.
pub fn plan_report(
    contexts: &[Context],
    mut problems: Vec<String>,
    at: DateTime<Utc>,
) -> PlanReport {
    let mut groups = Vec::new();
    let mut next_change: Option<DateTime<Utc>> = None;
    for context in contexts {
        let evaluation = engine::evaluate(&context.index, &context.bindings, at);
        next_change = match (next_change, evaluation.next_change_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        problems.extend(evaluation.problems.iter().map(ToString::to_string));
        for (key, members) in &evaluation.groups {
            let (namespace, connection) = key
                .connection
                .split_once('/')
                .unwrap_or(("", &key.connection));
            let mut members: Vec<MemberReport> = members.values().map(member_report).collect();
            members.sort_by(|a, b| a.email.cmp(&b.email).then(a.name.cmp(&b.name)));
            groups.push(GroupReport {
                namespace: namespace.to_owned(),
                vendor_connection: connection.to_owned(),
                group: key.group.clone(),
                members,
            });
        }
    }
    PlanReport {
        at: timestamp(at),
        next_change_at: next_change.map(timestamp),
        groups,
        problems,
    }
}

pub(super) fn run_plan(args: &PlanArgs) -> Result<ExitCode, CliError> {
    let runtime = super::runtime()?;
    let at = args.at.unwrap_or_else(Utc::now);
    let (_, contexts, problems) = match runtime.block_on(contexts(&args.manifests)) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("{message}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let report = plan_report(&contexts, problems, at);
    let mut out = std::io::stdout().lock();
    match args.output {
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?
        )?,
        Output::Table => print_plan_table(&report, &mut out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the plan as a table.
pub fn print_plan_table(report: &PlanReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "Desired access at {} (next change: {})",
        report.at,
        report.next_change_at.as_deref().unwrap_or("none")
    )?;
    for group in &report.groups {
        writeln!(
            out,
            "\n{}/{} group {} ({} people)",
            group.namespace,
            group.vendor_connection,
            group.group,
            group.members.len()
        )?;
        for member in &group.members {
            let reasons: Vec<String> = member
                .reasons
                .iter()
                .map(|r| format!("{} via {}", r.binding, r.via))
                .collect();
            writeln!(
                out,
                "  {:<32} {:<20} {}",
                member.email,
                member.name,
                reasons.join("; ")
            )?;
        }
    }
    if !report.problems.is_empty() {
        writeln!(out, "\nProblems:")?;
        for problem in &report.problems {
            writeln!(out, "  {problem}")?;
        }
    }
    Ok(())
}

pub(super) fn run_explain(args: &ExplainArgs) -> Result<ExitCode, CliError> {
    let runtime = super::runtime()?;
    let at = args.at.unwrap_or_else(Utc::now);
    let (_, contexts, problems) = match runtime.block_on(contexts(&args.manifests)) {
        Ok(found) => found,
        Err(message) => {
            eprintln!("{message}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = std::io::stdout().lock();
    write_explanation(&contexts, &args.person, at, &mut out)?;
    for problem in problems {
        writeln!(out, "problem: {problem}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes, for one person, every bound group they are in and why, and every one they are not in
/// and why not.
pub fn write_explanation(
    contexts: &[Context],
    email: &str,
    at: DateTime<Utc>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "{email} at {}", timestamp(at))?;
    let mut known = false;
    for context in contexts {
        let explanation = engine::explain(&context.index, &context.bindings, at, email);
        known |= !explanation.people.is_empty();
        for (group, verdict) in &explanation.groups {
            let state = if verdict.granted { "IN    " } else { "NOT IN" };
            writeln!(out, "  {state} {} group {}", group.connection, group.group)?;
            for binding in &verdict.bindings {
                for reason in &binding.reasons {
                    writeln!(
                        out,
                        "         {}: {} via {}",
                        binding.binding,
                        describe_source(&reason.source),
                        describe_grant(&reason.grant)
                    )?;
                }
                for message in &binding.messages {
                    writeln!(out, "         {}: {message}", binding.binding)?;
                }
            }
        }
    }
    if !known {
        writeln!(out, "  no OfficeRnD member or booking guest has this email")?;
    }
    Ok(())
}
