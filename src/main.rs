//! The `flexgate` binary: parses the command line and hands over to [`flexgate::cli`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = flexgate::cli::Cli::parse();
    flexgate::cli::run(cli)
}
