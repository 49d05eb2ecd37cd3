//! Loads YAML manifests (multi-document files, folders searched recursively) as JSON values.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One YAML document of a manifest file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file it came from.
    pub file: PathBuf,
    /// Its position in the file, from 0 (documents separated by `---`).
    pub index: usize,
    /// The document as JSON.
    pub value: serde_json::Value,
}

impl Document {
    /// `apiVersion` of the document, if it has one.
    pub fn api_version(&self) -> Option<&str> {
        self.value.get("apiVersion").and_then(|v| v.as_str())
    }

    /// `kind` of the document, if it has one.
    pub fn kind(&self) -> Option<&str> {
        self.value.get("kind").and_then(|v| v.as_str())
    }

    /// `metadata.name`, if set.
    pub fn name(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
    }

    /// `metadata.namespace`, or `default` as kubectl would apply it.
    pub fn namespace(&self) -> &str {
        self.value
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str())
            .unwrap_or("default")
    }

    /// A short human label such as `AccessGroupBinding default/hot-desk`.
    pub fn label(&self) -> String {
        let kind = self.kind().unwrap_or("(no kind)");
        match self.name() {
            Some(name) => format!("{kind} {}/{name}", self.namespace()),
            None => format!("{kind} (document {} without metadata.name)", self.index + 1),
        }
    }
}

/// A file that could not be read or parsed; its documents are not validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// The file.
    pub file: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Loads every `.yaml`/`.yml`/`.json` file named or found (recursively, sorted) under `paths`.
/// Empty documents are skipped. Returns the documents and the files that could not be loaded.
pub fn load(paths: &[PathBuf]) -> (Vec<Document>, Vec<LoadProblem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        collect_files(path, &mut files, &mut problems);
    }
    let mut documents = Vec::new();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => match parse_documents(&file, &text) {
                Ok(docs) => documents.extend(docs),
                Err(message) => problems.push(LoadProblem { file, message }),
            },
            Err(error) => problems.push(LoadProblem {
                file,
                message: format!("cannot read: {error}"),
            }),
        }
    }
    (documents, problems)
}

/// The documents of one manifest text (multi-document YAML), as [`load`] reads a file; for
/// manifests that are not on disk, such as the examples built into the binary.
pub fn parse(file: &Path, text: &str) -> Result<Vec<Document>, LoadProblem> {
    parse_documents(file, text).map_err(|message| LoadProblem {
        file: file.to_owned(),
        message,
    })
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<LoadProblem>) {
    if path.is_dir() {
        let entries = match std::fs::read_dir(path) {
            Ok(entries) => entries,
            Err(error) => {
                problems.push(LoadProblem {
                    file: path.to_owned(),
                    message: format!("cannot list folder: {error}"),
                });
                return;
            }
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for child in children {
            if child.is_dir() || is_manifest(&child) {
                collect_files(&child, files, problems);
            }
        }
    } else if path.exists() {
        files.push(path.to_owned());
    } else {
        problems.push(LoadProblem {
            file: path.to_owned(),
            message: "no such file or folder".to_owned(),
        });
    }
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn parse_documents(file: &Path, text: &str) -> Result<Vec<Document>, String> {
    let mut documents = Vec::new();
    for (index, deserializer) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(deserializer)
            .map_err(|error| format!("document {}: not valid YAML: {error}", index + 1))?;
        if value.is_null() {
            continue;
        }
        if !value.is_object() {
            return Err(format!(
                "document {}: expected a Kubernetes object (a mapping), found {}",
                index + 1,
                type_name(&value)
            ));
        }
        documents.push(Document {
            file: file.to_owned(),
            index,
            value,
        });
    }
    Ok(documents)
}

fn type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_multi_document_files_and_skips_empty_documents() {
        let docs = parse_documents(
            Path::new("x.yaml"),
            "---\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\n---\nkind: B\nmetadata: {name: b, namespace: ops}\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].label(), "Secret default/a");
        assert_eq!(docs[1].label(), "B ops/b");
        assert_eq!(docs[1].index, 2);
    }

    #[test]
    fn reports_yaml_errors_with_document_number() {
        let error = parse_documents(Path::new("x.yaml"), "a: 1\n---\nb: [unclosed\n").unwrap_err();
        assert!(error.starts_with("document 2: not valid YAML"), "{error}");
        let error = parse_documents(Path::new("x.yaml"), "- a\n- b\n").unwrap_err();
        assert!(error.contains("found a list"), "{error}");
    }
}
