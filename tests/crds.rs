//! The generated CRDs: crds/ and the Helm chart hold exactly what `flexgate crd` prints, every
//! field is documented for `kubectl explain`, and every CEL rule compiles within budget.

use flexgate::api::crd;
use serde_json::Value;

const REGENERATE: &str = "regenerate with: cargo run -- crd > crds/flexgate.yaml && cp crds/flexgate.yaml charts/flexgate/crds/flexgate.yaml";

#[test]
fn crds_folder_is_up_to_date() {
    let generated = crd::all_yaml().unwrap();
    let committed = std::fs::read_to_string("crds/flexgate.yaml").unwrap_or_default();
    assert!(
        generated == committed,
        "crds/flexgate.yaml is stale; {REGENERATE}"
    );
}

#[test]
fn helm_chart_ships_the_same_crds() {
    let generated = crd::all_yaml().unwrap();
    let chart = std::fs::read_to_string("charts/flexgate/crds/flexgate.yaml").unwrap_or_default();
    assert!(
        generated == chart,
        "charts/flexgate/crds/flexgate.yaml is stale; {REGENERATE}"
    );
}

fn undocumented(schema: &Value, path: &str, missing: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let child_path = format!("{path}.{name}");
            if child
                .get("description")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                missing.push(child_path.clone());
            }
            undocumented(child, &child_path, missing);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(items, &format!("{path}[]"), missing);
    }
}

#[test]
fn every_field_has_a_description() {
    for kind in ["VendorConnection", "AccessGroupBinding", "SiteMapping"] {
        let schema = crd::schema_for(kind).unwrap();
        let mut missing = Vec::new();
        undocumented(&schema, kind, &mut missing);
        assert!(
            missing.is_empty(),
            "fields without a description: {missing:?}"
        );
    }
}

fn rules(schema: &Value, out: &mut Vec<(String, bool)>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(list)) = map.get("x-kubernetes-validations") {
                for rule in list {
                    let text = rule.get("rule").and_then(Value::as_str).unwrap_or_default();
                    let has_message = rule
                        .get("message")
                        .and_then(Value::as_str)
                        .is_some_and(|m| !m.is_empty());
                    out.push((text.to_owned(), has_message));
                }
            }
            map.values().for_each(|v| rules(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| rules(v, out)),
        _ => {}
    }
}

#[test]
fn cel_rules_compile_and_carry_messages() {
    let mut total = 0;
    for kind in ["VendorConnection", "AccessGroupBinding", "SiteMapping"] {
        let schema = crd::schema_for(kind).unwrap();
        let compiled = kube::core::cel::compile_schema(&schema);
        assert!(
            !compiled.has_errors(),
            "{kind}: {:?}",
            compiled.compilation_errors()
        );
        let mut found = Vec::new();
        rules(&schema, &mut found);
        total += found.len();
        let silent: Vec<&String> = found
            .iter()
            .filter(|(_, has)| !has)
            .map(|(rule, _)| rule)
            .collect();
        assert!(
            silent.is_empty(),
            "{kind}: rules without a message: {silent:?}"
        );
    }
    assert!(
        total >= 15,
        "expected the exactly-one-of and immutability rules, found {total}"
    );
}

#[test]
fn schemas_are_structural_enough_for_the_apiserver() {
    // Structural schemas: every node has a type (or preserves unknown fields), no $ref, and
    // conditions merge by type under server-side apply.
    fn check(schema: &Value, path: &str, problems: &mut Vec<String>) {
        let Some(map) = schema.as_object() else {
            return;
        };
        if map.contains_key("$ref") || map.contains_key("allOf") || map.contains_key("oneOf") {
            problems.push(format!("{path}: $ref or junctor"));
        }
        let typed = map.contains_key("type")
            || map.get("x-kubernetes-int-or-string").is_some()
            || map.get("x-kubernetes-preserve-unknown-fields").is_some();
        if !typed {
            problems.push(format!("{path}: no type"));
        }
        if let Some(properties) = map.get("properties").and_then(Value::as_object) {
            for (name, child) in properties {
                check(child, &format!("{path}.{name}"), problems);
            }
        }
        if let Some(items) = map.get("items") {
            check(items, &format!("{path}[]"), problems);
        }
    }
    for kind in ["VendorConnection", "AccessGroupBinding", "SiteMapping"] {
        let schema = crd::schema_for(kind).unwrap();
        let mut problems = Vec::new();
        check(&schema, kind, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let conditions = schema
            .pointer("/properties/status/properties/conditions")
            .unwrap();
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(
            conditions["x-kubernetes-list-map-keys"],
            serde_json::json!(["type"]),
            "{kind}"
        );
    }
}

#[test]
fn crds_have_names_categories_columns_and_status() {
    for crd in crd::all() {
        let names = &crd.spec.names;
        assert_eq!(crd.spec.group, "flexgate.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            names.categories.as_deref(),
            Some(&["flexgate".to_owned()][..])
        );
        assert_eq!(names.short_names.as_ref().map(Vec::len), Some(1));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some());
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        for column in ["Ready", "Reason", "Last Sync", "Age"] {
            assert!(
                columns.contains(&column),
                "{}: missing column {column}",
                names.kind
            );
        }
    }
}
