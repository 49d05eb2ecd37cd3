//! `flexgate validate`: offline checks of manifests, one line per problem, non-zero exit on any.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;
use crate::manifests;

/// Arguments of `flexgate validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files or folders (searched recursively for .yaml, .yml and .json).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,

    /// The currently applied versions (files or folders): objects found there with the same
    /// kind, namespace and name are checked as updates, so immutable fields and approved
    /// SiteMappings are enforced, e.g. `--previous <(git show main:deploy/flexgate.yaml)`.
    #[arg(long, value_name = "PATH")]
    pub previous: Vec<PathBuf>,
}

pub(super) fn run(args: &ValidateArgs) -> Result<ExitCode, CliError> {
    let outcome = check(&args.paths, &args.previous);
    let mut out = std::io::stdout().lock();
    for line in &outcome.lines {
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "{} object(s) checked in {} file(s): {} problem(s)",
        outcome.objects, outcome.files, outcome.problems
    )?;
    Ok(if outcome.problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What `validate` found.
pub(crate) struct Outcome {
    pub lines: Vec<String>,
    pub objects: usize,
    pub files: usize,
    pub problems: usize,
}

pub(crate) fn check(paths: &[PathBuf], previous: &[PathBuf]) -> Outcome {
    let (documents, load_problems) = manifests::load(paths);
    let (previous_documents, previous_problems) = manifests::load(previous);
    let findings = manifests::validate(&documents, &previous_documents);
    let mut lines: Vec<String> = load_problems
        .iter()
        .chain(&previous_problems)
        .map(|p| format!("{}: {}", p.file.display(), p.message))
        .collect();
    lines.extend(findings.iter().map(ToString::to_string));
    let mut files: Vec<&PathBuf> = documents.iter().map(|d| &d.file).collect();
    files.dedup();
    Outcome {
        problems: lines.len(),
        lines,
        objects: documents.len(),
        files: files.len(),
    }
}
