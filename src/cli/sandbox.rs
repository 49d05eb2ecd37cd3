//! `flexgate sandbox`: starts the built-in simulators, prints their endpoints and credentials,
//! optionally writes the built-in examples rewired to them (with the commands to try them on a
//! cluster), and serves until interrupted.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::CliError;
use crate::manifests;
use crate::operator::objects::Objects;
use crate::sandbox::manifests as written;
use crate::sandbox::officernd::Simulator;
use crate::sandbox::{demo_start, Sandbox};

/// Arguments of `flexgate sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// OfficeRnD seed file (JSON; see the README for the format). Default: the demo data.
    #[arg(long)]
    pub seed: Option<PathBuf>,
    /// Where the sandbox clock starts (RFC 3339). It moves only when a test or the demo moves it.
    #[arg(long)]
    pub start_at: Option<DateTime<Utc>>,
    /// Write the examples (built in), rewired to the sandbox (endpoints and credentials) and
    /// without a namespace, to this folder: for `kubectl apply -n NS -f`, `flexgate plan
    /// --manifests` or `flexgate run --manifests`.
    #[arg(long)]
    pub write_manifests: Option<PathBuf>,
    /// Rewire these manifests (files or folders) instead of the built-in examples.
    #[arg(long, value_name = "PATH")]
    pub examples: Option<PathBuf>,
}

pub(super) fn run(args: &SandboxArgs) -> Result<ExitCode, CliError> {
    let runtime = super::runtime()?;
    runtime.block_on(serve(args))
}

async fn serve(args: &SandboxArgs) -> Result<ExitCode, CliError> {
    let seed = match &args.seed {
        Some(path) => match Simulator::load_seed(path) {
            Ok(seed) => seed,
            Err(error) => {
                eprintln!("{error}");
                return Ok(ExitCode::FAILURE);
            }
        },
        None => serde_json::from_str(crate::sandbox::DEMO_SEED).map_err(std::io::Error::other)?,
    };
    let sandbox = match Sandbox::start(seed, args.start_at.unwrap_or_else(demo_start)).await {
        Ok(sandbox) => sandbox,
        Err(error) => {
            eprintln!("cannot start the sandbox: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "flexgate sandbox (clock at {})",
        sandbox.clock.now().to_rfc3339()
    )?;
    for line in sandbox.describe() {
        writeln!(out, "  {line}")?;
    }
    if let Some(folder) = &args.write_manifests {
        let documents = match &args.examples {
            Some(path) => {
                let (documents, problems) = manifests::load(std::slice::from_ref(path));
                if let Some(problem) = problems.first() {
                    eprintln!("{}: {}", problem.file.display(), problem.message);
                    return Ok(ExitCode::FAILURE);
                }
                documents
            }
            None => match written::example_documents() {
                Ok(documents) => documents,
                Err(error) => {
                    eprintln!("{error}");
                    return Ok(ExitCode::FAILURE);
                }
            },
        };
        let mut objects = Objects::from_documents(&documents).map_err(std::io::Error::other)?;
        for note in sandbox.connect(&mut objects) {
            writeln!(out, "  note: {note}")?;
        }
        let yaml = match written::render(&objects) {
            Ok(yaml) => yaml,
            Err(error) => {
                eprintln!("{error}");
                return Ok(ExitCode::FAILURE);
            }
        };
        std::fs::create_dir_all(folder)?;
        let file = folder.join("flexgate-sandbox.yaml");
        std::fs::write(&file, yaml)?;
        writeln!(
            out,
            "  wrote {} (the examples, pointed at this sandbox, no namespace)",
            file.display()
        )?;
        writeln!(
            out,
            "to try them on a Kubernetes cluster (the operator runs on this machine: the simulators listen on 127.0.0.1):"
        )?;
        for command in written::try_on_cluster(folder, &objects) {
            writeln!(out, "  {command}")?;
        }
    }
    writeln!(out, "serving until interrupted (Ctrl-C)")?;
    drop(out);
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}
