//! Offline validation of flexgate manifests: structure, unknown fields and CEL rules, checked
//! against the same generated schema a real kube-apiserver would use.
//!
//! Order follows the apiserver: schema defaults are applied, then the structural schema (types,
//! enums, patterns, bounds, required fields), then the `x-kubernetes-validations` CEL rules,
//! including transition rules (`oldSelf`) when a previous version of the object is given.
//! Unknown fields, which the apiserver would silently prune, are reported as errors because they
//! are almost always typos that would otherwise change nothing.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;

use kube::core::cel::{compile_schema, validate_compiled, CompiledSchema};
use serde_json::Value;

use super::load::Document;
use crate::api::{self, crd};

/// One problem in one object, located precisely enough to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The manifest file.
    pub file: PathBuf,
    /// The object, e.g. `AccessGroupBinding default/hot-desk`.
    pub object: String,
    /// The field path, e.g. `spec.source`; empty for the whole object.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.object)?;
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

const KINDS: [&str; 3] = ["VendorConnection", "AccessGroupBinding", "SiteMapping"];

/// The compiled checks for one kind.
struct KindSchema {
    schema: Value,
    structure: jsonschema::Validator,
    rules: CompiledSchema,
}

/// Validates every flexgate object in `documents`. Objects of other API groups (Secrets, say) are
/// left to their own tools. Objects in `previous` with the same kind, namespace and name are
/// treated as the version being updated, so transition rules (immutable fields, the frozen
/// approved SiteMapping) are checked too.
pub fn validate(documents: &[Document], previous: &[Document]) -> Vec<Finding> {
    let schemas = match compile_schemas() {
        Ok(schemas) => schemas,
        Err(message) => {
            return vec![Finding {
                file: PathBuf::new(),
                object: "(flexgate itself)".to_owned(),
                field: String::new(),
                message,
            }]
        }
    };
    let previous_by_key: HashMap<(String, String, String), &Document> = previous
        .iter()
        .filter_map(|doc| Some((object_key(doc)?, doc)))
        .collect();

    let mut findings = Vec::new();
    let mut seen: BTreeMap<(String, String, String), PathBuf> = BTreeMap::new();
    for doc in documents {
        let before = findings.len();
        check_document(doc, &schemas, &previous_by_key, &mut findings);
        if findings.len() > before {
            continue;
        }
        if let Some(key) = object_key(doc) {
            if let Some(first) = seen.get(&key) {
                findings.push(finding(
                    doc,
                    "",
                    format!("defined twice (also in {})", first.display()),
                ));
            } else {
                seen.insert(key, doc.file.clone());
            }
        }
    }
    findings
}

fn compile_schemas() -> Result<HashMap<&'static str, KindSchema>, String> {
    let mut schemas = HashMap::new();
    for kind in KINDS {
        let schema =
            crd::schema_for(kind).ok_or_else(|| format!("no schema generated for {kind}"))?;
        let structure = jsonschema::validator_for(&schema)
            .map_err(|error| format!("the {kind} schema does not compile: {error}"))?;
        let rules = compile_schema(&schema);
        if rules.has_errors() {
            return Err(format!(
                "the {kind} CEL rules do not compile: {:?}",
                rules.compilation_errors()
            ));
        }
        schemas.insert(
            kind,
            KindSchema {
                schema,
                structure,
                rules,
            },
        );
    }
    Ok(schemas)
}

fn object_key(doc: &Document) -> Option<(String, String, String)> {
    Some((
        doc.kind()?.to_owned(),
        doc.namespace().to_owned(),
        doc.name()?.to_owned(),
    ))
}

fn check_document(
    doc: &Document,
    schemas: &HashMap<&'static str, KindSchema>,
    previous: &HashMap<(String, String, String), &Document>,
    findings: &mut Vec<Finding>,
) {
    let Some(api_version) = doc.api_version() else {
        findings.push(finding(doc, "apiVersion", "is required".to_owned()));
        return;
    };
    let Some(kind) = doc.kind() else {
        findings.push(finding(doc, "kind", "is required".to_owned()));
        return;
    };
    let group = api_version
        .split_once('/')
        .map(|(group, _)| group)
        .unwrap_or("");
    if group != api::GROUP {
        return;
    }
    if api_version != api::API_VERSION {
        findings.push(finding(
            doc,
            "apiVersion",
            format!("{api_version} is not served; use {}", api::API_VERSION),
        ));
        return;
    }
    let Some(kind_schema) = schemas.get(kind) else {
        findings.push(finding(
            doc,
            "kind",
            format!(
                "{kind} is not a flexgate kind; expected one of {}",
                KINDS.join(", ")
            ),
        ));
        return;
    };
    check_metadata(doc, findings);

    // The status subresource ignores status on create and update, so it is not the author's.
    let mut object = doc.value.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    let object = kube::core::cel::apply_defaults(&kind_schema.schema, &object);

    let before = findings.len();
    for error in kind_schema.structure.iter_errors(&object) {
        let field = json_pointer_to_path(&error.instance_path().to_string());
        let message = describe_schema_error(&error);
        findings.push(finding(doc, &field, message));
    }
    unknown_fields(&kind_schema.schema, &object, "", doc, findings);
    if findings.len() > before {
        // CEL rules assume a well-typed object; reporting their failures too would only add noise.
        return;
    }

    let old = object_key(doc)
        .and_then(|key| previous.get(&key))
        .map(|old| kube::core::cel::apply_defaults(&kind_schema.schema, &old.value));
    if let Err(errors) = validate_compiled(&kind_schema.rules, &object, old.as_ref()) {
        for error in errors.into_vec() {
            findings.push(finding(doc, &error.field_path, error.message.clone()));
        }
    }
}

fn check_metadata(doc: &Document, findings: &mut Vec<Finding>) {
    match doc.name() {
        None => findings.push(finding(doc, "metadata.name", "is required".to_owned())),
        Some(name) if !is_dns_subdomain(name) => findings.push(finding(
            doc,
            "metadata.name",
            format!("{name:?} must be a lowercase DNS subdomain (letters, digits, '-' and '.', at most 253 characters)"),
        )),
        Some(_) => {}
    }
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn describe_schema_error(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as Kind;
    match error.kind() {
        Kind::Pattern { pattern } if pattern == api::duration::DURATION_PATTERN => {
            format!("{} {}", error.instance(), api::duration::DURATION_HINT)
        }
        Kind::Required { property } => {
            format!("{} is required", property.as_str().unwrap_or("a field"))
        }
        _ => error.to_string(),
    }
}

/// Reports fields the schema does not know (the apiserver would drop them silently).
fn unknown_fields(
    schema: &Value,
    value: &Value,
    path: &str,
    doc: &Document,
    findings: &mut Vec<Finding>,
) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                // The apiserver itself owns the top-level type and object metadata fields.
                if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(child_schema), _) | (None, Some(child_schema)) => {
                        unknown_fields(child_schema, child, &child_path, doc, findings)
                    }
                    (None, None) if properties.is_some() => {
                        let known: Vec<&str> = properties
                            .map(|p| p.keys().map(String::as_str).collect())
                            .unwrap_or_default();
                        findings.push(finding(
                            doc,
                            &child_path,
                            format!(
                                "unknown field {key:?}; known fields here: {}",
                                known.join(", ")
                            ),
                        ));
                    }
                    (None, None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    unknown_fields(
                        item_schema,
                        item,
                        &format!("{path}[{index}]"),
                        doc,
                        findings,
                    );
                }
            }
        }
        _ => {}
    }
}

/// `/spec/groups/0/name` becomes `spec.groups[0].name`.
fn json_pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment);
        }
    }
    path
}

fn finding(doc: &Document, field: &str, message: String) -> Finding {
    Finding {
        file: doc.file.clone(),
        object: doc.label(),
        field: field.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_dotted_paths() {
        assert_eq!(
            json_pointer_to_path("/spec/groups/0/name"),
            "spec.groups[0].name"
        );
        assert_eq!(json_pointer_to_path(""), "");
    }

    #[test]
    fn dns_subdomains() {
        assert!(is_dns_subdomain("hot-desk.london"));
        assert!(!is_dns_subdomain("Hot_Desk"));
        assert!(!is_dns_subdomain("-x"));
    }
}
