//! The `flexgate` subcommands: argument parsing and dispatch; each command lives in its own file.

mod crd;
mod demo;
pub mod match_cmd;
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
    /// Match two lists of names one-to-one by normalised Levenshtein similarity.
    Match(match_cmd::MatchArgs),
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Crd => crd::run(),
        Command::Validate(args) => validate::run(&args),
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
