//! `flexgate run`: in a cluster, the operator (`operator::controller`); with `--manifests DIR`,
//! the folder host (`operator::runner`) over the same reconcile pipelines. The folder mode reads
//! the manifests (and re-reads them when they change), checks every connection and reconciles
//! every binding and SiteMapping, writes each object's status to stdout or a file (Events go to
//! stderr), and wakes up at the next booking or membership boundary, at the shortest
//! syncInterval, or when the files change. With `--once` it makes one pass, for CI pipelines.
//!
//! Statuses (a SiteMapping's saved mapping and provisioning record among them) live in memory
//! only: across passes and edits they carry over, but a restart proposes and (with
//! `approved: true`) saves the mapping again.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration as StdDuration, SystemTime};

use chrono::Utc;
use serde_json::json;

use super::CliError;
use crate::clock::system_clock;
use crate::manifests;
use crate::operator::controller::{self, RunOptions};
use crate::operator::objects::Objects;
use crate::operator::runner::{self, ClientCache};
use crate::operator::telemetry;

/// Arguments of `flexgate run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run on a folder of manifests instead of a cluster.
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// With --manifests: write the statuses (YAML) to this file instead of stdout; it is
    /// replaced atomically after every pass.
    #[arg(long)]
    pub status_out: Option<PathBuf>,
    /// With --manifests: make one pass and exit (0 when every object is Ready).
    #[arg(long)]
    pub once: bool,
    /// In a cluster: where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "FLEXGATE_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: std::net::SocketAddr,
    /// In a cluster: where OfficeRnD webhooks are received (POST /webhooks/officernd).
    #[arg(long, env = "FLEXGATE_WEBHOOK_ADDR", default_value = "0.0.0.0:8081")]
    pub webhook_addr: std::net::SocketAddr,
    /// In a cluster: hold the Lease `flexgate-leader` (in POD_NAMESPACE) before writing, so two
    /// replicas never both write.
    #[arg(long, env = "FLEXGATE_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// In a cluster: watch one namespace only (default: all).
    #[arg(long, env = "FLEXGATE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Log format.
    #[arg(long, env = "FLEXGATE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, with the current tracing spans.
    Json,
    /// Human-readable lines.
    Text,
}

pub(super) fn run(args: &RunArgs) -> Result<ExitCode, CliError> {
    match &args.manifests {
        Some(folder) => super::runtime()?.block_on(run_on_folder(folder, args)),
        None => super::runtime()?.block_on(run_in_cluster(args)),
    }
}

/// Runs the controllers against the cluster named by the in-cluster config or KUBECONFIG.
async fn run_in_cluster(args: &RunArgs) -> Result<ExitCode, CliError> {
    if let Err(error) = telemetry::init_logging(args.log_format == LogFormat::Json) {
        eprintln!("cannot set up logging: {error}");
        return Ok(ExitCode::FAILURE);
    }
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            eprintln!(
                "cannot reach a Kubernetes API server (in-cluster config or KUBECONFIG): {error}"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let identity =
        std::env::var("POD_NAME").unwrap_or_else(|_| format!("flexgate-{}", std::process::id()));
    let mut options = RunOptions::new(identity);
    options.namespace = args.namespace.clone();
    options.http_addr = args.http_addr;
    options.webhook_addr = Some(args.webhook_addr);
    options.leader_election = args.leader_election;
    options.lease_namespace =
        std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".to_owned());
    // Kubernetes stops pods with SIGTERM; a person at a terminal with Ctrl-C.
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    match controller::run(client, options, shutdown).await {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn load(folder: &Path) -> Result<Objects, String> {
    let (documents, problems) = manifests::load(&[folder.to_owned()]);
    let findings = manifests::validate(&documents, &[]);
    let mut lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {}", p.file.display(), p.message))
        .collect();
    lines.extend(findings.iter().map(ToString::to_string));
    if !lines.is_empty() {
        return Err(lines.join("\n"));
    }
    Objects::from_documents(&documents).map_err(|e| e.to_string())
}

/// The newest modification time under `folder`, to notice edits.
fn fingerprint(folder: &Path) -> Option<SystemTime> {
    fn newest(path: &Path, best: &mut Option<SystemTime>) {
        if let Ok(meta) = std::fs::metadata(path) {
            if let Ok(modified) = meta.modified() {
                *best = (*best).max(Some(modified));
            }
            if meta.is_dir() {
                if let Ok(entries) = std::fs::read_dir(path) {
                    for entry in entries.flatten() {
                        newest(&entry.path(), best);
                    }
                }
            }
        }
    }
    let mut best = None;
    newest(folder, &mut best);
    best
}

async fn run_on_folder(folder: &Path, args: &RunArgs) -> Result<ExitCode, CliError> {
    let clock = system_clock();
    let mut clients = ClientCache::default();
    let mut objects = match load(folder) {
        Ok(objects) => objects,
        Err(problems) => {
            eprintln!("the manifests are not valid:\n{problems}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut seen = fingerprint(folder);
    loop {
        let now = Utc::now();
        let pass = runner::pass(&mut objects, now, &mut clients, &clock).await;
        let mut documents = Vec::new();
        tell(&pass.connections, &mut documents);
        tell(&pass.bindings, &mut documents);
        tell(&pass.site_mappings, &mut documents);
        write_statuses(&documents, args.status_out.as_deref())?;
        if args.once {
            return Ok(if pass.all_ready() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }

        let deadline = tokio::time::Instant::now() + pass.next_pass_in(Utc::now());
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                _ = tokio::time::sleep_until(deadline) => break,
                _ = tokio::time::sleep(StdDuration::from_secs(2)) => {
                    let now_seen = fingerprint(folder);
                    if now_seen != seen {
                        seen = now_seen;
                        match load(folder) {
                            Ok(mut fresh) => {
                                // Statuses live with the objects here; an edit keeps them.
                                runner::carry_statuses(&mut fresh, &objects);
                                objects = fresh;
                                break;
                            }
                            Err(problems) => eprintln!("the edited manifests are not valid; keeping the previous ones:\n{problems}"),
                        }
                    }
                }
            }
        }
    }
}

/// Adds each object's status document and writes its Events to stderr (where a cluster would
/// publish them).
fn tell<S: serde::Serialize>(done: &[runner::Done<S>], documents: &mut Vec<serde_json::Value>) {
    for object in done {
        for event in object.events() {
            eprintln!(
                "{} {}/{}: {}{}: {}",
                object.kind,
                object.namespace,
                object.name,
                if event.warning { "Warning " } else { "" },
                event.reason,
                event.note
            );
        }
        documents.push(json!({
            "apiVersion": crate::api::API_VERSION, "kind": object.kind,
            "metadata": {"namespace": object.namespace, "name": object.name},
            "status": object.reconciled.status,
        }));
    }
}

fn write_statuses(documents: &[serde_json::Value], file: Option<&Path>) -> Result<(), CliError> {
    let mut text = String::new();
    for document in documents {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(document)?);
    }
    match file {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
        Some(path) => {
            let partial = path.with_extension("partial");
            std::fs::write(&partial, text)?;
            std::fs::rename(&partial, path)?;
        }
    }
    Ok(())
}
