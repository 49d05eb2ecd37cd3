//! Offline validation of flexgate manifests: metadata, structure, unknown fields and CEL rules,
//! checked against the same generated schema a real kube-apiserver uses, with the same verdict
//! (`tests/e2e/invalid.rs` compares both on every corpus file).
//!
//! Order follows the apiserver: `null`s are pruned where the schema is not nullable, schema
//! defaults are applied, then the structural schema (types, enums, patterns, bounds, required
//! fields), then the `x-kubernetes-validations` CEL rules, including transition rules
//! (`oldSelf`) when a previous version of the object is given. Unknown fields are errors, as
//! the apiserver's strict field validation (kubectl's default) makes them. Beyond the server,
//! an object defined twice in the manifests is reported: the server sees one object at a time.

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
    let before = findings.len();
    check_metadata(doc, findings);

    let mut full = doc.value.clone();
    drop_nulls(&kind_schema.schema, &mut full);
    // The apiserver decodes strictly, status included, so an unknown field there is refused too.
    unknown_fields(&kind_schema.schema, &full, "", doc, findings);
    // The status subresource ignores status values on create and update: not the author's.
    let object = prepared(&kind_schema.schema, &full);
    for error in kind_schema.structure.iter_errors(&object) {
        let (field, message) = describe_schema_error(&error);
        findings.push(finding(doc, &field, message));
    }
    if findings.len() > before {
        // CEL rules assume a well-typed object; reporting their failures too would only add noise.
        return;
    }

    let old = object_key(doc)
        .and_then(|key| previous.get(&key))
        .map(|old| {
            let mut old = old.value.clone();
            drop_nulls(&kind_schema.schema, &mut old);
            prepared(&kind_schema.schema, &old)
        });
    if let Err(errors) = validate_compiled(&kind_schema.rules, &object, old.as_ref()) {
        for error in errors.into_vec() {
            findings.push(finding(doc, &error.field_path, error.message.clone()));
        }
    }
}

/// The object without its status, with the schema defaults applied: what the apiserver checks.
fn prepared(schema: &Value, object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    kube::core::cel::apply_defaults(schema, &object)
}

/// Removes `null` fields as the apiserver treats them: a field that is not `nullable` is pruned
/// before defaulting (so its default applies); a `nullable` one is kept but reads as absent to
/// the CEL rules. A nullable field that is also required keeps its null.
fn drop_nulls(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            map.retain(|key, child| {
                let Some(child_schema) = properties.and_then(|p| p.get(key)).or(additional) else {
                    return true;
                };
                let nullable = child_schema.get("nullable") == Some(&Value::Bool(true));
                !(child.is_null() && !(nullable && required.contains(&key.as_str())))
            });
            for (key, child) in map.iter_mut() {
                if let Some(child_schema) = properties.and_then(|p| p.get(key)).or(additional) {
                    drop_nulls(child_schema, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    drop_nulls(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

/// The `ObjectMeta` fields a manifest may carry; the apiserver refuses any other (strict decoding).
const METADATA_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// The object metadata, checked as the apiserver's `ObjectMeta` validation checks it: its name,
/// namespace, labels, annotations and finalizers, the types of its fields and no unknown ones.
fn check_metadata(doc: &Document, findings: &mut Vec<Finding>) {
    let metadata = match doc.value.get("metadata") {
        None | Some(Value::Null) => {
            findings.push(finding(doc, "metadata.name", "is required".to_owned()));
            return;
        }
        Some(Value::Object(metadata)) => metadata,
        Some(other) => {
            findings.push(finding(
                doc,
                "metadata",
                format!("{other} is not of type \"object\""),
            ));
            return;
        }
    };
    let mut problem = |field: &str, message: String| {
        findings.push(finding(doc, &format!("metadata.{field}"), message));
    };
    for (key, value) in metadata {
        if !METADATA_FIELDS.contains(&key.as_str()) {
            problem(
                key,
                format!(
                    "unknown field {key:?}; known fields here: {}",
                    METADATA_FIELDS.join(", ")
                ),
            );
            continue;
        }
        let expected = match key.as_str() {
            "generation" | "deletionGracePeriodSeconds" => "integer",
            "labels" | "annotations" => "object",
            "ownerReferences" | "finalizers" | "managedFields" => "array",
            _ => "string",
        };
        let fits = match expected {
            "integer" => value.is_i64(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            _ => value.is_string(),
        };
        if !fits && !value.is_null() {
            problem(key, format!("{value} is not of type {expected:?}"));
        }
    }
    match doc.name() {
        None => problem("name", "is required".to_owned()),
        Some(name) if !is_dns_subdomain(name) => problem(
            "name",
            format!("{name:?} must be a lowercase DNS subdomain (letters, digits, '-' and '.', at most 253 characters)"),
        ),
        Some(_) => {}
    }
    if let Some(namespace) = metadata.get("namespace").and_then(Value::as_str) {
        if !is_dns_label(namespace) {
            problem(
                "namespace",
                format!("{namespace:?} must be a lowercase DNS label (letters, digits and '-', at most 63 characters)"),
            );
        }
    }
    for (field, map) in ["labels", "annotations"]
        .into_iter()
        .filter_map(|field| Some((field, metadata.get(field)?.as_object()?)))
    {
        let mut size = 0;
        for (key, value) in map {
            let Some(value) = value.as_str() else {
                problem(
                    field,
                    format!("the value of {key:?} must be a string, not {value}"),
                );
                continue;
            };
            size += key.len() + value.len();
            let checked_key = if field == "annotations" {
                key.to_ascii_lowercase()
            } else {
                key.clone()
            };
            if let Err(why) = qualified_name(&checked_key) {
                problem(
                    field,
                    format!("key {key:?} is not a valid {field} key: {why}"),
                );
            }
            if field == "labels" && !is_label_value(value) {
                problem(
                    field,
                    format!("{value:?} (of {key:?}) is not a valid label value: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"),
                );
            }
        }
        if field == "annotations" && size > ANNOTATIONS_LIMIT {
            problem(
                field,
                format!("{size} bytes in total; at most {ANNOTATIONS_LIMIT} are allowed"),
            );
        }
    }
    if let Some(finalizers) = metadata.get("finalizers").and_then(Value::as_array) {
        for finalizer in finalizers {
            match finalizer.as_str().map(qualified_name) {
                Some(Ok(())) => {}
                Some(Err(why)) => problem(
                    "finalizers",
                    format!("{finalizer} is not a valid finalizer name: {why}"),
                ),
                None => problem(
                    "finalizers",
                    format!("{finalizer} is not of type \"string\""),
                ),
            }
        }
    }
}

/// The apiserver's limit on the total size of an object's annotations (keys and values).
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// A Kubernetes qualified name, `[prefix/]name`: a name part of at most 63 alphanumerics, '-',
/// '_' or '.' starting and ending with an alphanumeric, an optional DNS-subdomain prefix.
fn qualified_name(key: &str) -> Result<(), &'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if prefix.is_some_and(|prefix| !is_dns_subdomain(prefix)) {
        return Err("its prefix must be a lowercase DNS subdomain");
    }
    if name.is_empty() || name.len() > 63 || !is_label_value(name) || name.contains('/') {
        return Err("the name part must be 1 to 63 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric");
    }
    Ok(())
}

/// A label value: empty, or at most 63 alphanumerics, '-', '_' or '.', starting and ending with
/// an alphanumeric.
fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && is_dns_subdomain(name)
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

/// The field and message of a schema error. A missing field is named itself, not its parent,
/// as the apiserver names it (`spec.groups: Required value`).
fn describe_schema_error(error: &jsonschema::ValidationError<'_>) -> (String, String) {
    use jsonschema::error::ValidationErrorKind as Kind;
    let field = json_pointer_to_path(&error.instance_path().to_string());
    match error.kind() {
        Kind::Pattern { pattern } if pattern == api::duration::DURATION_PATTERN => (
            field,
            format!("{} {}", error.instance(), api::duration::DURATION_HINT),
        ),
        Kind::Required { property } => match property.as_str() {
            Some(property) if field.is_empty() => (property.to_owned(), "is required".to_owned()),
            Some(property) => (format!("{field}.{property}"), "is required".to_owned()),
            None => (field, error.to_string()),
        },
        _ => (field, error.to_string()),
    }
}

/// Reports fields the schema does not know (refused by strict field validation).
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

    fn findings_for(yaml: &str) -> Vec<String> {
        let value: Value = serde_yaml::from_str(yaml).unwrap();
        let doc = Document {
            file: PathBuf::from("x.yaml"),
            index: 0,
            value,
        };
        validate(&[doc], &[])
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect()
    }

    const KISI: &str =
        "apiVersion: flexgate.dev/v1alpha1\nkind: VendorConnection\nmetadata:\n  name: kisi\n";

    #[test]
    fn nulls_are_pruned_or_read_as_absent_as_the_apiserver_does() {
        let spec = "spec:\n  vendor: Brivo\n  credentialsSecretRef: {name: b}\n  endpoint: null\n  syncInterval: null\n  kisi: null\n";
        assert_eq!(findings_for(&format!("{KISI}{spec}")), Vec::<String>::new());
        // A required field that is null is missing, not mistyped.
        let spec = "spec:\n  vendor: Kisi\n  credentialsSecretRef: null\n";
        assert_eq!(
            findings_for(&format!("{KISI}{spec}")),
            ["spec.credentialsSecretRef: is required"]
        );
        let mut value = serde_json::json!({"a": null, "b": null, "c": {"d": null}});
        let schema = serde_json::json!({"properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "nullable": true},
            "c": {"type": "object", "properties": {"d": {"type": "string"}}}
        }});
        drop_nulls(&schema, &mut value);
        assert_eq!(value, serde_json::json!({"c": {}}));
    }

    #[test]
    fn metadata_is_checked_as_object_meta() {
        let spec = "spec:\n  vendor: Kisi\n  credentialsSecretRef: {name: k}\n";
        let with = |metadata: &str| findings_for(&format!("{KISI}{metadata}{spec}"));
        assert_eq!(
            with("  labels: {app.kubernetes.io/name: flexgate, empty: \"\"}\n  annotations: {Example.com/Note: any text at all}\n  finalizers: [example.com/keep]\n"),
            Vec::<String>::new()
        );
        let found = with("  labelz: {}\n");
        assert!(
            found[0].starts_with("metadata.labelz: unknown field"),
            "{found:?}"
        );
        let found = with("  labels: {\"-bad\": x}\n");
        assert!(
            found[0].starts_with("metadata.labels: key \"-bad\""),
            "{found:?}"
        );
        let found = with("  labels: {a: \"no spaces\"}\n");
        assert!(found[0].contains("not a valid label value"), "{found:?}");
        let found = with("  annotations: {a: 1}\n");
        assert!(found[0].contains("must be a string"), "{found:?}");
        let found = with("  namespace: Ops_Team\n");
        assert!(found[0].starts_with("metadata.namespace:"), "{found:?}");
        let found = with("  generation: first\n");
        assert!(found[0].contains("is not of type \"integer\""), "{found:?}");
        let found = findings_for(&format!("{KISI}{spec}status:\n  ready: true\n"));
        assert!(
            found[0].starts_with("status.ready: unknown field"),
            "{found:?}"
        );
    }

    #[test]
    fn qualified_names() {
        assert!(qualified_name("example.com/keep").is_ok());
        assert!(qualified_name("keep_it.1").is_ok());
        assert!(qualified_name("Example.com/keep").is_err());
        assert!(qualified_name("a/b/c").is_err());
        assert!(qualified_name(&"x".repeat(64)).is_err());
        assert!(qualified_name("").is_err());
    }

    #[test]
    fn dns_subdomains() {
        assert!(is_dns_subdomain("hot-desk.london"));
        assert!(!is_dns_subdomain("Hot_Desk"));
        assert!(!is_dns_subdomain("-x"));
    }
}
