//! `flexgate demo`: the README's first command. Until the reconcilers land it validates the
//! examples/ manifests and prints what each object asks for, saying plainly what is not built.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;
use crate::manifests;

/// Arguments of `flexgate demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Folder of manifests to run the demo on.
    #[arg(long, default_value = "examples")]
    pub manifests: PathBuf,
}

pub(super) fn run(args: &DemoArgs) -> Result<ExitCode, CliError> {
    let mut out = std::io::stdout().lock();
    let (documents, load_problems) = manifests::load(std::slice::from_ref(&args.manifests));
    let findings = manifests::validate(&documents, &[]);
    for problem in &load_problems {
        writeln!(out, "{}: {}", problem.file.display(), problem.message)?;
    }
    for finding in &findings {
        writeln!(out, "{finding}")?;
    }
    if !load_problems.is_empty() || !findings.is_empty() {
        writeln!(
            out,
            "the manifests in {} are not valid; nothing to demo",
            args.manifests.display()
        )?;
        return Ok(ExitCode::FAILURE);
    }
    writeln!(
        out,
        "flexgate demo: {} manifests from {}\n",
        documents.len(),
        args.manifests.display()
    )?;
    writeln!(
        out,
        "{:<20} {:<28} {:<10} WHAT IT ASKS FOR",
        "KIND", "NAME", "VENDOR"
    )?;
    for doc in &documents {
        let (vendor, summary) = describe(doc);
        writeln!(
            out,
            "{:<20} {:<28} {:<10} {summary}",
            doc.kind().unwrap_or("-"),
            format!("{}/{}", doc.namespace(), doc.name().unwrap_or("-")),
            vendor
        )?;
    }
    writeln!(
        out,
        "\nAll manifests are valid. Not built yet: the sandbox simulators and the reconcilers, so\n\
         this demo cannot yet grant and revoke access; it shows the validated plan only."
    )?;
    Ok(ExitCode::SUCCESS)
}

fn describe(doc: &manifests::Document) -> (String, String) {
    let spec = doc.value.get("spec");
    let text = |pointer: &str| {
        spec.and_then(|s| s.pointer(pointer))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "-".to_owned())
    };
    match doc.kind() {
        Some("VendorConnection") => (
            text("/vendor"),
            format!(
                "credentials from Secret {}",
                text("/credentialsSecretRef/name")
            ),
        ),
        Some("AccessGroupBinding") => {
            let source = spec
                .and_then(|s| s.get("source"))
                .and_then(|s| s.as_object())
                .and_then(|s| s.iter().next())
                .map(|(kind, selector)| format!("{kind} {selector}"))
                .unwrap_or_else(|| "-".to_owned());
            let groups = spec
                .and_then(|s| s.get("groups"))
                .map(|g| g.to_string())
                .unwrap_or_default();
            (
                text("/vendorRef/name"),
                format!("{source} -> groups {groups}"),
            )
        }
        Some("SiteMapping") => (
            text("/essensysRef/name"),
            format!(
                "location {} -> essensys site {}",
                text("/location"),
                text("/site")
            ),
        ),
        Some(kind) => ("-".to_owned(), format!("{kind} (not a flexgate kind)")),
        None => ("-".to_owned(), "-".to_owned()),
    }
}
