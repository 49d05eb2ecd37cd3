//! `flexgate demo`: the README's first command. Starts the sandbox with demo data, runs the
//! reconcilers on examples/ against it, prints a `kubectl get`-like table of every object's
//! status and every vendor group's members, then advances the sandbox clock to show a booking
//! granting and revoking access and a membership ending.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use kube::ResourceExt;

use super::CliError;
use crate::api::Vendor;
use crate::manifests;
use crate::operator::objects::Objects;
use crate::operator::runner::{reconcile_all, record_statuses, ClientCache, FolderHost, Pass};
use crate::operator::{connection, reconcile};
use crate::sandbox::{demo_start, Sandbox};

/// Arguments of `flexgate demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder of manifests to run the demo on (default: the examples built into the binary,
    /// the same files as `examples/`, so the demo runs from any folder).
    #[arg(long)]
    pub manifests: Option<PathBuf>,
}

pub(super) fn run(args: &DemoArgs) -> Result<ExitCode, CliError> {
    super::runtime()?.block_on(demo(args))
}

/// The moments the demo stops at, and what each shows.
fn chapters() -> Vec<(DateTime<Utc>, &'static str)> {
    let start = demo_start();
    vec![
        (start, "first sync: managed groups follow OfficeRnD; the person added by hand to OFFICERND_Lobby is removed"),
        (start + Duration::minutes(105), "09:45, 15 minutes before the board meeting: the booker, a teammate and the guest get the Elephant Room"),
        (start + Duration::minutes(185), "11:05, the meeting ended 5 minutes ago (revokeAfter): the Elephant Room is closed again"),
        (start + Duration::hours(16), "midnight in London: Fay's Hot Desk membership ended yesterday, so she leaves the lobby"),
    ]
}

async fn demo(args: &DemoArgs) -> Result<ExitCode, CliError> {
    let mut out = std::io::stdout().lock();
    let (documents, load_problems) = match &args.manifests {
        Some(folder) => manifests::load(std::slice::from_ref(folder)),
        None => match crate::sandbox::manifests::example_documents() {
            Ok(documents) => (documents, Vec::new()),
            Err(error) => {
                writeln!(out, "{error}")?;
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    let source = args.manifests.as_ref().map_or_else(
        || "examples/ (built in)".to_owned(),
        |f| f.display().to_string(),
    );
    let findings = manifests::validate(&documents, &[]);
    if !load_problems.is_empty() || !findings.is_empty() {
        for problem in &load_problems {
            writeln!(out, "{}: {}", problem.file.display(), problem.message)?;
        }
        for finding in &findings {
            writeln!(out, "{finding}")?;
        }
        writeln!(
            out,
            "the manifests in {source} are not valid; nothing to demo"
        )?;
        return Ok(ExitCode::FAILURE);
    }
    let mut objects = Objects::from_documents(&documents).map_err(std::io::Error::other)?;
    let sandbox = match Sandbox::start_demo().await {
        Ok(sandbox) => sandbox,
        Err(error) => {
            writeln!(out, "cannot start the sandbox: {error}")?;
            return Ok(ExitCode::FAILURE);
        }
    };
    writeln!(
        out,
        "flexgate demo: {} manifests from {source}, validated offline",
        documents.len()
    )?;
    writeln!(
        out,
        "sandbox simulators on 127.0.0.1: OfficeRnD {}, Kisi {}, Salto KS {}, Brivo {}",
        sandbox.officernd.base_url,
        sandbox.kisi.base_url,
        sandbox.salto_ks.base_url,
        sandbox.brivo.base_url
    )?;
    for note in sandbox.connect(&mut objects) {
        writeln!(out, "note: {note}")?;
    }

    let clock = sandbox.clock.clock();
    writeln!(out, "\n$ kubectl get vendorconnections")?;
    writeln!(
        out,
        "{:<12} {:<10} {:<6} {:<20} MESSAGE",
        "NAME", "VENDOR", "READY", "REASON"
    )?;
    for vc in &objects.connections {
        let result =
            connection::check(vc, &objects, &clock, connection::MemberCount::ListAll).await;
        writeln!(
            out,
            "{:<12} {:<10} {:<6} {:<20} {}",
            vc.name_any(),
            vc.spec.vendor,
            if result.outcome.ready {
                "True"
            } else {
                "False"
            },
            result.outcome.reason,
            result.outcome.message
        )?;
    }

    let mut clients = ClientCache::default();
    let mut healthy = true;
    for (chapter, (at, what)) in chapters().into_iter().enumerate() {
        sandbox.clock.set(at);
        let pass = reconcile_all(&objects, at, &mut clients, &clock).await;
        record_statuses(&mut objects, &pass, at);
        writeln!(out, "\n=== {} — {what}", at.format("%Y-%m-%d %H:%M UTC"))?;
        print_bindings(&mut out, &pass)?;
        print_groups(&mut out, &sandbox)?;
        healthy &= pass.results.iter().all(|(_, r)| r.outcome.ready);
        if chapter == 1 {
            writeln!(
                out,
                "\n(a person reviews the SiteMapping proposal and sets approved: true)"
            )?;
            for mapping in &mut objects.site_mappings {
                mapping.spec.approved = true;
            }
        }
        writeln!(out, "$ kubectl get sitemappings")?;
        let host = FolderHost::new(&mut clients, &clock);
        for position in 0..objects.site_mappings.len() {
            let mapping = objects.site_mappings[position].clone();
            let name = mapping.name_any();
            let reconciled =
                reconcile::site_mapping::reconcile(&host, &objects, &mapping, at).await;
            let outcome = &reconciled.outcome;
            writeln!(
                out,
                "{:<12} {:<16} approved={:<5} {:<6} {:<16} {}",
                name,
                mapping.spec.site,
                mapping.spec.approved,
                if outcome.ready { "True" } else { "False" },
                outcome.reason,
                outcome.message
            )?;
            for event in &reconciled.events {
                writeln!(out, "  event {}: {}", event.reason, event.note)?;
            }
            if chapter == 0 {
                if let Some(proposal) = &reconciled.status.proposal {
                    for (kind, matches) in [
                        ("floors", &proposal.floors),
                        ("resources", &proposal.resources),
                        ("companies", &proposal.companies),
                    ] {
                        let pairs: Vec<String> = matches
                            .matched
                            .iter()
                            .map(|m| format!("{} -> {} ({:.2})", m.officernd, m.essensys, m.score))
                            .collect();
                        writeln!(out, "  proposal {kind}: {}", pairs.join(", "))?;
                    }
                    writeln!(
                        out,
                        "  proposal members matched by email: {}",
                        proposal.members_matched
                    )?;
                }
            }
            objects.site_mappings[position].status = Some(reconciled.status);
        }
    }
    writeln!(
        out,
        "\nEvery decision can be explained: flexgate sandbox --write-manifests sbx/, then\n\
         flexgate explain --manifests sbx/ --person fay.quinn@example.com --at 2026-11-24T00:00:00Z"
    )?;
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_bindings(out: &mut dyn Write, pass: &Pass) -> std::io::Result<()> {
    writeln!(out, "$ kubectl get accessgroupbindings")?;
    writeln!(
        out,
        "{:<24} {:<6} {:<10} {:>7} {:>7} {:>7} {:>6}  MESSAGE",
        "NAME", "READY", "REASON", "MATCHED", "GRANTED", "PENDING", "ERRORS"
    )?;
    for (key, result) in &pass.results {
        writeln!(
            out,
            "{:<24} {:<6} {:<10} {:>7} {:>7} {:>7} {:>6}  {}",
            key.name,
            if result.outcome.ready {
                "True"
            } else {
                "False"
            },
            result.outcome.reason,
            result.counts.matched,
            result.counts.granted,
            result.counts.pending,
            result.counts.errors,
            result.outcome.message
        )?;
        for problem in &result.problems.0 {
            writeln!(
                out,
                "{:<24} problem: {}: {}",
                "", problem.subject, problem.message
            )?;
        }
    }
    if let Some(next) = pass.next_change_at {
        writeln!(
            out,
            "next change by time alone: {}",
            next.format("%Y-%m-%d %H:%M UTC")
        )?;
    }
    Ok(())
}

fn print_groups(out: &mut dyn Write, sandbox: &Sandbox) -> std::io::Result<()> {
    writeln!(out, "vendor groups, as the simulators hold them now:")?;
    for (vendor, group) in sandbox.seeded_groups() {
        let managed = if group.starts_with("OFFICERND_") {
            ""
        } else {
            " (not managed: never touched)"
        };
        let members = sandbox.group_members(vendor, &group);
        let vendor = match vendor {
            Vendor::SaltoKS => "Salto KS".to_owned(),
            other => other.to_string(),
        };
        writeln!(
            out,
            "  {vendor:<9} {:<28} {}{managed}",
            group,
            if members.is_empty() {
                "(empty)".to_owned()
            } else {
                members.join(", ")
            }
        )?;
    }
    Ok(())
}
