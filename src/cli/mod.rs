//! The `flexgate` subcommands: argument parsing and dispatch; each command lives in its own file.

mod crd;
mod demo;
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
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Crd => crd::run(),
        Command::Validate(args) => validate::run(&args),
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
    /// The CRDs could not be rendered.
    #[error("cannot render the CRDs as YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}
