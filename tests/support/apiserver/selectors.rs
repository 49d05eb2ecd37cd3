//! Label and field selector parsing/matching of the API stand-in (the subset kube-rs and kubectl send).

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// One requirement of a field selector: dotted path, `true` for `=`/`==`, `false` for `!=`, value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub path: String,
    pub equals: bool,
    pub value: String,
}

/// Splits on commas that are not inside parentheses.
fn split_terms(selector: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in selector.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    terms.push(current);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

pub fn parse_label_selector(selector: &str) -> Result<Vec<LabelRequirement>, String> {
    split_terms(selector)
        .into_iter()
        .map(|term| {
            if let Some(key) = term.strip_prefix('!') {
                return Ok(LabelRequirement::NotExists(key.trim().to_string()));
            }
            if let Some(open) = term.find('(') {
                let close = term.rfind(')').ok_or(format!("unclosed '(' in {term:?}"))?;
                let values = term[open + 1..close]
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                let mut words = term[..open].split_whitespace();
                let key = words
                    .next()
                    .ok_or(format!("missing key in {term:?}"))?
                    .to_string();
                return match words.next() {
                    Some("in") => Ok(LabelRequirement::In(key, values)),
                    Some("notin") => Ok(LabelRequirement::NotIn(key, values)),
                    other => Err(format!("unsupported set operator {other:?} in {term:?}")),
                };
            }
            if let Some((k, v)) = term.split_once("!=") {
                return Ok(LabelRequirement::NotEquals(
                    k.trim().into(),
                    v.trim().into(),
                ));
            }
            if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                return Ok(LabelRequirement::Equals(k.trim().into(), v.trim().into()));
            }
            if term.contains(['<', '>']) {
                return Err(format!("unsupported label selector operator in {term:?}"));
            }
            Ok(LabelRequirement::Exists(term))
        })
        .collect()
}

pub fn labels_match(requirements: &[LabelRequirement], object: &Value) -> bool {
    let label = |key: &str| {
        object
            .pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    };
    requirements.iter().all(|r| match r {
        LabelRequirement::Equals(k, v) => label(k) == Some(v.as_str()),
        LabelRequirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
        LabelRequirement::Exists(k) => label(k).is_some(),
        LabelRequirement::NotExists(k) => label(k).is_none(),
        LabelRequirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
        LabelRequirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
    })
}

pub fn parse_field_selector(selector: &str) -> Result<Vec<FieldRequirement>, String> {
    split_terms(selector)
        .into_iter()
        .map(|term| {
            let (path, equals, value) = if let Some((k, v)) = term.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, true, v)
            } else {
                return Err(format!("field selector term {term:?} has no operator"));
            };
            Ok(FieldRequirement {
                path: path.trim().into(),
                equals,
                value: value.trim().into(),
            })
        })
        .collect()
}

/// Any dotted path to a scalar is accepted (the real server only allows a per-kind list such as
/// `metadata.name`, `metadata.namespace`, `type` for Secrets, `involvedObject.*` for core Events).
pub fn fields_match(requirements: &[FieldRequirement], object: &Value) -> bool {
    requirements.iter().all(|r| {
        let pointer = format!("/{}", r.path.replace('.', "/"));
        let actual = match object.pointer(&pointer) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        (actual == r.value) == r.equals
    })
}
