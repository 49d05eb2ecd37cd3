//! `flexgate match`: pairs the names of two files (one per line) and prints the pairs, the
//! unmatched and the ambiguous names as a table or as JSON.
//!
//! JSON shape (scores are similarities in `[0, 1]`, lists in input order, candidates best first):
//! `{"pairs": [{"left", "right", "score"}], "unmatchedLeft": [name], "unmatchedRight": [name],
//!   "ambiguous": [{"left", "candidates": [{"right", "score"}]}]}`

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::matching::{
    match_names, MatchError, MatchOptions, MatchResult, DEFAULT_MARGIN, DEFAULT_THRESHOLD,
};

#[derive(Debug, Clone, clap::Args)]
pub struct MatchArgs {
    /// File with the source names (e.g. OfficeRnD), one per line.
    #[arg(long, value_name = "FILE")]
    pub left: PathBuf,
    /// File with the target names (e.g. essensys), one per line.
    #[arg(long, value_name = "FILE")]
    pub right: PathBuf,
    /// Minimum similarity in (0, 1] for an automatic pair.
    #[arg(long, value_name = "X", default_value_t = DEFAULT_THRESHOLD)]
    pub threshold: f64,
    /// Lead a pair needs over the runner-up of either name, else it is ambiguous.
    #[arg(long, value_name = "X", default_value_t = DEFAULT_MARGIN)]
    pub margin: f64,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum MatchCommandError {
    #[error("cannot read names from {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: {name:?} appears on lines {first_line} and {line}; names must be unique, remove or rename one"
    )]
    DuplicateName {
        path: PathBuf,
        name: String,
        first_line: usize,
        line: usize,
    },
    #[error(transparent)]
    Matching(#[from] MatchError),
    #[error("cannot write the result: {0}")]
    Write(#[from] std::io::Error),
    #[error("cannot encode the result as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Runs the command, writing the report to `out`.
pub fn run(args: &MatchArgs, out: &mut dyn Write) -> Result<(), MatchCommandError> {
    let left = read_names(&args.left)?;
    let right = read_names(&args.right)?;
    let options = MatchOptions {
        threshold: args.threshold,
        margin: args.margin,
        overrides: Vec::new(),
    };
    let result = match_names(&left, &right, &options)?;
    match args.output {
        OutputFormat::Json => {
            serde_json::to_writer(&mut *out, &JsonReport::from(&result))?;
            writeln!(out)?;
        }
        OutputFormat::Table => write_table(&result, out)?,
    }
    Ok(())
}

/// One name per line, trimmed; blank lines skipped; a repeated name is an error.
fn read_names(path: &Path) -> Result<Vec<String>, MatchCommandError> {
    let text = std::fs::read_to_string(path).map_err(|source| MatchCommandError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut names = Vec::new();
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() {
            continue;
        }
        if let Some(&first_line) = first_seen.get(name) {
            return Err(MatchCommandError::DuplicateName {
                path: path.to_owned(),
                name: name.to_owned(),
                first_line,
                line: index + 1,
            });
        }
        first_seen.insert(name, index + 1);
        names.push(name.to_owned());
    }
    Ok(names)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    pairs: Vec<JsonPair<'a>>,
    unmatched_left: &'a [String],
    unmatched_right: &'a [String],
    ambiguous: Vec<JsonAmbiguity<'a>>,
}

#[derive(Serialize)]
struct JsonPair<'a> {
    left: &'a str,
    right: &'a str,
    score: f64,
}

#[derive(Serialize)]
struct JsonAmbiguity<'a> {
    left: &'a str,
    candidates: Vec<JsonCandidate<'a>>,
}

#[derive(Serialize)]
struct JsonCandidate<'a> {
    right: &'a str,
    score: f64,
}

impl<'a> From<&'a MatchResult> for JsonReport<'a> {
    fn from(result: &'a MatchResult) -> Self {
        JsonReport {
            pairs: result
                .pairs
                .iter()
                .map(|p| JsonPair {
                    left: &p.left,
                    right: &p.right,
                    score: p.score,
                })
                .collect(),
            unmatched_left: &result.unmatched_left,
            unmatched_right: &result.unmatched_right,
            ambiguous: result
                .ambiguous
                .iter()
                .map(|a| JsonAmbiguity {
                    left: &a.left,
                    candidates: a
                        .candidates
                        .iter()
                        .map(|c| JsonCandidate {
                            right: &c.right,
                            score: c.score,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn write_table(result: &MatchResult, out: &mut dyn Write) -> std::io::Result<()> {
    let width = result
        .pairs
        .iter()
        .map(|p| p.left.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(4, 48);
    writeln!(out, "PAIRS ({})", result.pairs.len())?;
    writeln!(out, "  SCORE  {:width$}  RIGHT", "LEFT")?;
    for pair in &result.pairs {
        writeln!(
            out,
            "  {:.3}  {:width$}  {}",
            pair.score, pair.left, pair.right
        )?;
    }
    writeln!(out, "\nUNMATCHED LEFT ({})", result.unmatched_left.len())?;
    for name in &result.unmatched_left {
        writeln!(out, "  {name}")?;
    }
    writeln!(out, "\nUNMATCHED RIGHT ({})", result.unmatched_right.len())?;
    for name in &result.unmatched_right {
        writeln!(out, "  {name}")?;
    }
    writeln!(out, "\nAMBIGUOUS ({})", result.ambiguous.len())?;
    for ambiguity in &result.ambiguous {
        writeln!(out, "  {}", ambiguity.left)?;
        for candidate in &ambiguity.candidates {
            writeln!(out, "    {:.3}  {}", candidate.score, candidate.right)?;
        }
    }
    Ok(())
}
