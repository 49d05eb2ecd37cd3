//! `flexgate validate` against the real kube-apiserver: every file of `tests/invalid/`,
//! `tests/valid/` and `examples/` gets the same verdict from both, and where both refuse, they
//! name the same field.
//!
//! The server's verdict, per file, in a namespace of its own (each object is placed there,
//! whatever `namespace:` it carries):
//! - every document is sent as kubectl sends it on `kubectl apply --dry-run=server` of a new
//!   object: a create with `dryRun=All` and `fieldValidation=Strict` (kubectl's default
//!   `--validate=strict`, so unknown fields are refused as they are for a person);
//! - for `NAME.yaml` with `NAME.previous.yaml` beside it, the previous version is created for
//!   real first, then `NAME.yaml` is sent as an update of it (a dry-run replace at the stored
//!   resourceVersion), so the CRDs' transition rules run;
//! - a kind or apiVersion the server does not serve is refused by discovery, as kubectl refuses
//!   it ("no matches for kind"); a file that is not YAML never reaches a server: kubectl refuses
//!   it while parsing, and so does this test (serde_yaml, not flexgate's loader).
//!
//! What is compared when both refuse: every field path a finding of `flexgate validate` names
//! (`spec.groups[0]`, `metadata.name`, ...) must be named by the server too, either as the
//! `field` of a cause in its `Status` (the 422 `Invalid` answer) or, for answers without causes
//! (strict decoding's 400 `unknown field "spec.sorce"`, discovery's refusals), inside its
//! message, where Go's JSON decoder calls `metadata.annotations` `ObjectMeta.annotations`. The
//! server may name more fields than flexgate does (flexgate stops before the CEL rules once the
//! structure is wrong; the server reports both), and the words differ, so only fields are
//! compared.
//!
//! A corpus file may say `# offline-only: <why>` for a check no server can make because it
//! sees one object at a time (the same object defined twice, where `kubectl apply` silently
//! lets the later definition win). For such a file the test requires the server to accept it
//! and flexgate to refuse it, so the mark cannot hide a disagreement.

use std::path::{Path, PathBuf};

use flexgate::manifests;
use kube::api::{DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind, Request, Status};
use kube::{Client, Resource};
use serde::Deserialize;
use serde_json::Value;

use crate::support::{admin_client, create_namespace, install_crds, kubeconfig};

/// One reason to refuse a file: the fields it names (empty when it names none) and its words.
#[derive(Debug, Clone)]
struct Refusal {
    fields: Vec<String>,
    message: String,
}

/// What one side said about one file: accepted when there is no refusal.
type Verdict = Vec<Refusal>;

/// A corpus file and the verdicts of both sides.
struct Case {
    file: PathBuf,
    previous: Option<PathBuf>,
    offline_only: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_and_validate_agree_on_every_invalid_manifest() {
    let Some(path) = kubeconfig() else {
        return;
    };
    let client = admin_client(&path).await;
    install_crds(&client).await;

    let cases = corpus(Path::new("tests/invalid"));
    assert!(cases.len() >= 30, "the corpus shrank to {}", cases.len());
    let mut disagreements = Vec::new();
    let mut offline_only = Vec::new();
    let mut agreements = Vec::new();
    for case in &cases {
        let offline = offline_verdict(&case.file, case.previous.as_deref());
        let server = server_verdict(&client, &case.file, case.previous.as_deref()).await;
        let label = match &case.previous {
            Some(previous) => format!(
                "{} (an update of {})",
                case.file.display(),
                previous.display()
            ),
            None => case.file.display().to_string(),
        };
        if let Some(why) = &case.offline_only {
            if offline.is_empty() || !server.is_empty() {
                disagreements.push(describe(
                    &label,
                    &format!(
                        "marked offline-only ({why}): the server must accept it and validate refuse it"
                    ),
                    &offline,
                    &server,
                ));
            } else {
                offline_only.push(format!("{label}: {why}"));
            }
            continue;
        }
        match disagreement(&offline, &server) {
            Some(problem) => disagreements.push(describe(&label, &problem, &offline, &server)),
            None => agreements.push(format!("{label}: {}", agreement(&offline, &server))),
        }
    }
    println!(
        "agreed:\n  {}\noffline-only:\n  {}",
        agreements.join("\n  "),
        offline_only.join("\n  ")
    );
    assert!(
        disagreements.is_empty(),
        "the kube-apiserver and `flexgate validate` disagree on {} of {} files:\n\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_and_validate_accept_the_examples_and_the_valid_edge_cases() {
    let Some(path) = kubeconfig() else {
        return;
    };
    let client = admin_client(&path).await;
    install_crds(&client).await;

    let mut files = Vec::new();
    for folder in ["examples", "tests/valid"] {
        let before = files.len();
        files.extend(
            std::fs::read_dir(folder)
                .unwrap_or_else(|error| panic!("{folder} is not readable: {error}"))
                .map(|entry| entry.expect("folder entry").path())
                .filter(|path| path.extension().is_some_and(|e| e == "yaml")),
        );
        assert!(files.len() > before, "{folder} holds no manifests");
    }
    files.sort();
    let mut refused = Vec::new();
    for file in &files {
        let offline = offline_verdict(file, None);
        let server = server_verdict(&client, file, None).await;
        if !offline.is_empty() || !server.is_empty() {
            refused.push(describe(
                &file.display().to_string(),
                "must be accepted by both",
                &offline,
                &server,
            ));
        }
    }
    assert!(refused.is_empty(), "{}", refused.join("\n\n"));
}

/// The corpus cases: every `NAME.yaml` that is not itself a previous version.
fn corpus(folder: &Path) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .expect("the corpus is readable")
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "yaml")
                && !path.to_string_lossy().ends_with(".previous.yaml")
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let previous = file.with_extension("previous.yaml");
            let text = std::fs::read_to_string(&file).expect("corpus file readable");
            let offline_only = text
                .lines()
                .find_map(|line| line.strip_prefix("# offline-only: "))
                .map(str::to_owned);
            Case {
                previous: previous.exists().then_some(previous),
                file,
                offline_only,
            }
        })
        .collect()
}

/// `flexgate validate FILE [--previous PREVIOUS]`, through the library function behind it.
fn offline_verdict(file: &Path, previous: Option<&Path>) -> Verdict {
    let (documents, problems) = manifests::load(&[file.to_owned()]);
    let previous: Vec<PathBuf> = previous.map(Path::to_owned).into_iter().collect();
    let (old, old_problems) = manifests::load(&previous);
    assert!(
        old_problems.is_empty(),
        "previous versions must load: {old_problems:?}"
    );
    let mut verdict: Verdict = problems
        .iter()
        .map(|problem| Refusal {
            fields: vec![],
            message: problem.message.clone(),
        })
        .collect();
    verdict.extend(
        manifests::validate(&documents, &old)
            .into_iter()
            .map(|finding| Refusal {
                fields: if finding.field.is_empty() {
                    vec![]
                } else {
                    vec![finding.field.clone()]
                },
                message: finding.to_string(),
            }),
    );
    verdict
}

/// The kube-apiserver's verdict on `file`, in a fresh namespace (deleted afterwards).
async fn server_verdict(client: &Client, file: &Path, previous: Option<&Path>) -> Verdict {
    let test = format!(
        "invalid-{}",
        file.file_stem().and_then(|s| s.to_str()).unwrap_or("file")
    );
    let namespace = create_namespace(client, &test).await;
    let verdict = server_verdict_in(client, &namespace, file, previous).await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    let _ = namespaces
        .delete(&namespace, &kube::api::DeleteParams::default())
        .await;
    verdict
}

async fn server_verdict_in(
    client: &Client,
    namespace: &str,
    file: &Path,
    previous: Option<&Path>,
) -> Verdict {
    let documents = match yaml_documents(file) {
        Ok(documents) => documents,
        Err(message) => {
            return vec![Refusal {
                fields: vec![],
                message: format!("never sent: kubectl cannot parse it either: {message}"),
            }]
        }
    };
    let mut existing = Vec::new();
    if let Some(previous) = previous {
        let old = yaml_documents(previous)
            .unwrap_or_else(|error| panic!("{}: {error}", previous.display()));
        for document in old {
            let sent = send(client, namespace, document, Send::Create).await;
            assert!(
                sent.is_empty(),
                "the server refuses the previous version {}: {sent:?}",
                previous.display()
            );
        }
        existing = yaml_documents(previous)
            .unwrap_or_default()
            .iter()
            .filter_map(identity)
            .collect();
    }
    let mut verdict = Vec::new();
    for document in documents {
        let how = if identity(&document).is_some_and(|id| existing.contains(&id)) {
            Send::DryRunReplace
        } else {
            Send::DryRunCreate
        };
        verdict.extend(send(client, namespace, document, how).await);
    }
    verdict
}

/// The YAML documents of a file as kubectl reads them (empty documents skipped).
fn yaml_documents(file: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(file).map_err(|error| error.to_string())?;
    let mut documents = Vec::new();
    for deserializer in serde_yaml::Deserializer::from_str(&text) {
        let value = Value::deserialize(deserializer).map_err(|error| error.to_string())?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// (apiVersion, kind, name) of a document.
fn identity(document: &Value) -> Option<(String, String, String)> {
    Some((
        document.get("apiVersion")?.as_str()?.to_owned(),
        document.get("kind")?.as_str()?.to_owned(),
        document.pointer("/metadata/name")?.as_str()?.to_owned(),
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Send {
    /// A real create (the previous version of an update case).
    Create,
    /// `kubectl apply --dry-run=server` of a new object.
    DryRunCreate,
    /// The same for an object that exists: an update of the whole object.
    DryRunReplace,
}

/// Sends one document into `namespace`; the refusals (none when the server accepts it).
async fn send(client: &Client, namespace: &str, mut document: Value, how: Send) -> Verdict {
    let text = |key: &str| document.get(key).and_then(Value::as_str).map(str::to_owned);
    let (Some(api_version), Some(kind)) = (text("apiVersion"), text("kind")) else {
        return vec![Refusal {
            fields: vec!["apiVersion".to_owned(), "kind".to_owned()],
            message: "never sent: kubectl needs apiVersion and kind to choose the endpoint"
                .to_owned(),
        }];
    };
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let resource = match kube::discovery::pinned_kind(client, &gvk).await {
        Ok((resource, _)) => resource,
        Err(error) => return vec![unserved(client, &api_version, &kind, error).await],
    };
    document["metadata"]["namespace"] = Value::String(namespace.to_owned());
    let name = document
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let request = Request::new(DynamicObject::url_path(&resource, Some(namespace)));
    let dry_run = PostParams {
        dry_run: how != Send::Create,
        field_manager: Some("flexgate-e2e-invalid".to_owned()),
    };
    if how == Send::DryRunReplace {
        match current_version(client, &resource, namespace, &name).await {
            Ok(version) => document["metadata"]["resourceVersion"] = Value::String(version),
            Err(error) => panic!("the previous version of {kind} {name} is gone: {error}"),
        }
    }
    let body = serde_json::to_vec(&document).expect("a JSON document");
    let built = match how {
        Send::DryRunReplace => request.replace(&name, &dry_run, body),
        Send::Create | Send::DryRunCreate => request.create(&dry_run, body),
    };
    let mut http = built.expect("a request kube can build");
    // kube's PostParams cannot say it; kubectl sends it by default.
    let uri = format!("{}&fieldValidation=Strict", http.uri());
    *http.uri_mut() = uri.parse().expect("a valid URI");
    match client.request::<Value>(http).await {
        Ok(_) => vec![],
        Err(kube::Error::Api(status)) => vec![refusal(&status)],
        Err(error) => panic!("{kind} {name}: the request failed: {error}"),
    }
}

async fn current_version(
    client: &Client,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
) -> Result<String, kube::Error> {
    let api: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client.clone(), namespace, resource);
    let object = api.get(name).await?;
    Ok(object.metadata.resource_version.unwrap_or_default())
}

/// Discovery's refusal: `apiVersion` when the group/version is not served at all, else `kind`.
async fn unserved(client: &Client, api_version: &str, kind: &str, error: kube::Error) -> Refusal {
    let field = match client.list_api_group_resources(api_version).await {
        Ok(_) => "kind",
        Err(_) => "apiVersion",
    };
    Refusal {
        fields: vec![field.to_owned()],
        message: format!("no {kind} served in {api_version} ({field}): {error}"),
    }
}

/// The fields a server `Status` names: its causes' fields, `<nil>` (the object as a whole)
/// dropped.
fn refusal(status: &Status) -> Refusal {
    let causes = status
        .details
        .as_ref()
        .map(|details| details.causes.clone())
        .unwrap_or_default();
    Refusal {
        fields: causes
            .iter()
            .map(|cause| cause.field.trim_start_matches('.').to_owned())
            .filter(|field| !field.is_empty() && field != "<nil>")
            .collect(),
        message: format!("{} {}: {}", status.code, status.reason, status.message),
    }
}

/// Why the two verdicts disagree, if they do.
fn disagreement(offline: &Verdict, server: &Verdict) -> Option<String> {
    match (offline.is_empty(), server.is_empty()) {
        (true, true) => None,
        (false, true) => Some("validate refuses it, the server accepts it".to_owned()),
        (true, false) => Some("the server refuses it, validate accepts it".to_owned()),
        (false, false) => {
            let missing: Vec<&str> = offline
                .iter()
                .flat_map(|refusal| &refusal.fields)
                .filter(|field| !names(server, field))
                .map(String::as_str)
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "both refuse it, but the server does not name {}",
                    missing.join(", ")
                )
            })
        }
    }
}

/// What both said, when they agree: the fields compared.
fn agreement(offline: &Verdict, server: &Verdict) -> String {
    if offline.is_empty() {
        return "both accept".to_owned();
    }
    let fields = |verdict: &Verdict| {
        verdict
            .iter()
            .flat_map(|refusal| refusal.fields.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "both refuse; validate names [{}], the server [{}]",
        fields(offline),
        fields(server)
    )
}

/// Whether the server's refusals name `field`: as a cause's field or, for refusals without
/// causes, inside the message (where Go's JSON decoder calls `metadata.x` `ObjectMeta.x`).
fn names(server: &Verdict, field: &str) -> bool {
    let decoder = field
        .strip_prefix("metadata.")
        .map(|rest| format!("ObjectMeta.{rest}"));
    server.iter().any(|refusal| {
        refusal.fields.iter().any(|f| f == field)
            || (refusal.fields.is_empty()
                && (refusal.message.contains(field)
                    || decoder
                        .as_ref()
                        .is_some_and(|d| refusal.message.contains(d))))
    })
}

fn describe(label: &str, problem: &str, offline: &Verdict, server: &Verdict) -> String {
    let side = |verdict: &Verdict| {
        if verdict.is_empty() {
            "accepted".to_owned()
        } else {
            verdict
                .iter()
                .map(|refusal| {
                    format!(
                        "\n      [{}] {}",
                        refusal.fields.join(", "),
                        refusal.message.replace('\n', " ")
                    )
                })
                .collect()
        }
    };
    format!(
        "{label}: {problem}\n    validate:{}\n    server:  {}",
        side(offline),
        side(server)
    )
}
