//! `flexgate crd`: prints every CRD as one YAML stream.

use std::io::Write;
use std::process::ExitCode;

use super::CliError;

pub(super) fn run() -> Result<ExitCode, CliError> {
    let yaml = crate::api::crd::all_yaml()?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
