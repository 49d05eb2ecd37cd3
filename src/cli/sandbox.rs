//! `flexgate sandbox`: starts the built-in simulators, prints their endpoints and credentials,
//! optionally writes the examples rewired to them, and serves until interrupted.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::CliError;
use crate::manifests;
use crate::officernd::simulator::Simulator;
use crate::operator::objects::Objects;
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
    /// Write the manifests of --examples, rewired to the sandbox (endpoints and credentials),
    /// to this folder, ready for `flexgate plan --manifests` or `flexgate run --manifests`.
    #[arg(long)]
    pub write_manifests: Option<PathBuf>,
    /// The manifests to rewire with --write-manifests.
    #[arg(long, default_value = "examples")]
    pub examples: PathBuf,
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
        let (documents, problems) = manifests::load(std::slice::from_ref(&args.examples));
        if let Some(problem) = problems.first() {
            eprintln!("{}: {}", problem.file.display(), problem.message);
            return Ok(ExitCode::FAILURE);
        }
        let mut objects = Objects::from_documents(&documents).map_err(std::io::Error::other)?;
        for note in sandbox.connect(&mut objects) {
            writeln!(out, "  note: {note}")?;
        }
        std::fs::create_dir_all(folder)?;
        let file = folder.join("flexgate-sandbox.yaml");
        std::fs::write(&file, to_yaml(&objects)?)?;
        writeln!(
            out,
            "  wrote {} (the examples, pointed at this sandbox)",
            file.display()
        )?;
    }
    writeln!(out, "serving until interrupted (Ctrl-C)")?;
    drop(out);
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}

fn to_yaml(objects: &Objects) -> Result<String, CliError> {
    let mut out = String::new();
    let mut push = |value: serde_json::Value| -> Result<(), CliError> {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&value)?);
        Ok(())
    };
    for secret in objects.secrets.values() {
        let mut value = serde_json::to_value(secret).map_err(std::io::Error::other)?;
        value["apiVersion"] = "v1".into();
        value["kind"] = "Secret".into();
        push(value)?;
    }
    for connection in &objects.connections {
        push(serde_json::to_value(connection).map_err(std::io::Error::other)?)?;
    }
    for binding in &objects.bindings {
        push(serde_json::to_value(binding).map_err(std::io::Error::other)?)?;
    }
    for mapping in &objects.site_mappings {
        push(serde_json::to_value(mapping).map_err(std::io::Error::other)?)?;
    }
    Ok(out)
}
