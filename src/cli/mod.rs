//! The `flexgate` subcommands: argument parsing and dispatch; each command lives in its own file.

mod crd;
mod demo;
pub mod match_cmd;
pub mod plan;
mod run;
mod sandbox;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Door access and Wi-Fi provisioning for flexible workspaces, following OfficeRnD.
#[derive(Debug, Parser)]
#[command(name = "flexgate", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the demo: the built-in sandbox with demo data and the examples/ manifests.
    Demo(demo::DemoArgs),
    /// Print the CustomResourceDefinitions as YAML (the content of crds/flexgate.yaml).
    Crd,
    /// Check manifests offline against the CRD schemas and their CEL rules.
    Validate(validate::ValidateArgs),
    /// Run the reconcilers: in the cluster, or on a folder of manifests with --manifests.
    Run(run::RunArgs),
    /// Print, for every vendor group, who OfficeRnD entitles now (or --at) and why. Never writes.
    Plan(plan::PlanArgs),
    /// Explain why one person is or is not in each bound group (the front-desk question).
    Explain(plan::ExplainArgs),
    /// Start the built-in simulators (OfficeRnD, Kisi, Salto KS, Brivo, essensys) and print how to
    /// reach them.
    Sandbox(sandbox::SandboxArgs),
    /// Match two lists of names one-to-one by normalised Levenshtein similarity.
    Match(match_cmd::MatchArgs),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Crd => crd::run(),
        Command::Validate(args) => validate::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Plan(args) => plan::run_plan(&args),
        Command::Explain(args) => plan::run_explain(&args),
        Command::Sandbox(args) => sandbox::run(&args),
        Command::Match(args) => match_cmd::run(&args, &mut std::io::stdout().lock())
            .map(|()| ExitCode::SUCCESS)
            .map_err(CliError::from),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

/// A multi-threaded runtime for the commands that talk to APIs (two workers: the machines are
/// small and the work is I/O-bound).
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Errors that end a command before it could do its work (as opposed to findings it reports).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Writing the output failed (e.g. a closed pipe).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// `flexgate match` failed (unreadable file, duplicate name, bad threshold).
    #[error(transparent)]
    Match(#[from] match_cmd::MatchCommandError),
    /// The CRDs could not be rendered.
    #[error("cannot render the CRDs as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}
