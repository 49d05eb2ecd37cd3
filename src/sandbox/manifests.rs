//! The manifests the sandbox writes: the examples built into the binary (the files of
//! `examples/`, the one source), pointed at the simulators, rendered without a namespace so
//! `kubectl apply -n NS -f DIR` places them, and the commands to try them on a cluster.

use std::collections::BTreeSet;
use std::path::Path;

use kube::ResourceExt;
use serde_json::Value;

use crate::manifests::{self, Document};
use crate::operator::objects::Objects;

/// Every file of `examples/` as (file name, content), built in so the sandbox works from any
/// folder. A test fails when a file is added to `examples/` and not here.
pub const EXAMPLES: [(&str, &str); 7] = [
    (
        "00-officernd.yaml",
        include_str!("../../examples/00-officernd.yaml"),
    ),
    ("01-kisi.yaml", include_str!("../../examples/01-kisi.yaml")),
    (
        "02-salto-ks.yaml",
        include_str!("../../examples/02-salto-ks.yaml"),
    ),
    (
        "03-brivo.yaml",
        include_str!("../../examples/03-brivo.yaml"),
    ),
    (
        "04-essensys.yaml",
        include_str!("../../examples/04-essensys.yaml"),
    ),
    (
        "10-bindings.yaml",
        include_str!("../../examples/10-bindings.yaml"),
    ),
    (
        "20-site-mapping.yaml",
        include_str!("../../examples/20-site-mapping.yaml"),
    ),
];

/// The namespace the printed commands use.
pub const TRY_NAMESPACE: &str = "flexgate-sandbox";

/// Why the manifests could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ManifestsError {
    /// A manifest could not be parsed.
    #[error("{0}")]
    Load(String),
    /// The manifests span several namespaces, which one namespace-free set cannot keep apart.
    #[error("the manifests are in several namespaces ({0}); the sandbox writes one set without a namespace, for `kubectl apply -n NS`")]
    Namespaces(String),
    /// An object could not be rendered.
    #[error("cannot render the manifests: {0}")]
    Render(String),
}

/// The built-in examples as documents, each named `examples/<file>`.
pub fn example_documents() -> Result<Vec<Document>, ManifestsError> {
    let mut documents = Vec::new();
    for (name, text) in EXAMPLES {
        let file = Path::new("examples").join(name);
        let parsed = manifests::parse(&file, text).map_err(|problem| {
            ManifestsError::Load(format!("{}: {}", file.display(), problem.message))
        })?;
        documents.extend(parsed);
    }
    Ok(documents)
}

/// `objects` as one YAML stream: the Secrets, connections, bindings and SiteMappings, in the order
/// they are needed, with no `namespace:` (so `kubectl apply -n NS -f` puts them in NS) and no
/// status. Objects of several namespaces are refused rather than merged into one.
pub fn render(objects: &Objects) -> Result<String, ManifestsError> {
    let namespaces: BTreeSet<String> = objects
        .secrets
        .keys()
        .map(|(namespace, _)| namespace.clone())
        .chain(objects.connections.iter().filter_map(|o| o.namespace()))
        .chain(objects.bindings.iter().filter_map(|o| o.namespace()))
        .chain(objects.site_mappings.iter().filter_map(|o| o.namespace()))
        .collect();
    if namespaces.len() > 1 {
        return Err(ManifestsError::Namespaces(
            namespaces.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    let render = |error: serde_json::Error| ManifestsError::Render(error.to_string());
    let mut values = Vec::new();
    for secret in objects.secrets.values() {
        let mut value = serde_json::to_value(secret).map_err(render)?;
        value["apiVersion"] = "v1".into();
        value["kind"] = "Secret".into();
        values.push(value);
    }
    for connection in &objects.connections {
        values.push(serde_json::to_value(connection).map_err(render)?);
    }
    for binding in &objects.bindings {
        values.push(serde_json::to_value(binding).map_err(render)?);
    }
    for mapping in &objects.site_mappings {
        values.push(serde_json::to_value(mapping).map_err(render)?);
    }
    let mut out = String::new();
    for mut value in values {
        if let Some(object) = value.as_object_mut() {
            object.remove("status");
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.remove("namespace");
            }
        }
        out.push_str("---\n");
        out.push_str(
            &serde_yaml::to_string(&value).map_err(|e| ManifestsError::Render(e.to_string()))?,
        );
    }
    Ok(out)
}

/// The commands that try the written manifests on a cluster: the CRDs, a namespace, the
/// manifests, the operator run here (the simulators listen on 127.0.0.1 only), what to watch,
/// and the SiteMapping approval.
pub fn try_on_cluster(folder: &Path, objects: &Objects) -> Vec<String> {
    let folder = folder.display();
    let ns = TRY_NAMESPACE;
    let mut lines = vec![
        "flexgate crd | kubectl apply --server-side -f -".to_owned(),
        format!("kubectl create namespace {ns}"),
        format!("kubectl apply -n {ns} -f {folder}"),
        format!(
            "flexgate run --namespace {ns} --leader-election false --http-addr 127.0.0.1:8080 --webhook-addr 127.0.0.1:8081 --log-format text"
        ),
        format!("kubectl get vendorconnections,accessgroupbindings,sitemappings -n {ns}"),
    ];
    for mapping in &objects.site_mappings {
        lines.push(format!(
            "kubectl patch sitemapping {} -n {ns} --type merge -p '{{\"spec\":{{\"approved\":true}}}}'",
            mapping.name_any()
        ));
    }
    lines.push(format!(
        "kubectl get events -n {ns} --field-selector type=Warning"
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_examples_is_built_in() {
        let mut on_disk: Vec<String> = std::fs::read_dir("examples")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
            .collect();
        on_disk.sort();
        let built_in: Vec<&str> = EXAMPLES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, built_in);
    }

    #[test]
    fn renders_without_namespace_or_status() {
        let documents = example_documents().unwrap();
        let objects = Objects::from_documents(&documents).unwrap();
        let yaml = render(&objects).unwrap();
        assert!(!yaml.contains("namespace:"), "{yaml}");
        assert!(!yaml.contains("status:"), "{yaml}");
        let reread = manifests::parse(Path::new("x.yaml"), &yaml).unwrap();
        assert_eq!(reread.len(), documents.len());
    }

    #[test]
    fn refuses_to_merge_namespaces() {
        let mut documents = example_documents().unwrap();
        documents[0].value["metadata"]["namespace"] = "ops".into();
        let objects = Objects::from_documents(&documents).unwrap();
        let error = render(&objects).unwrap_err().to_string();
        assert!(error.contains("default, ops"), "{error}");
    }
}
