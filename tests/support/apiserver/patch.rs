//! Patch algorithms of the API stand-in: RFC 7386 merge patch, RFC 6902 JSON patch and an approximation
//! of server-side apply merging (maps merged recursively, `x-kubernetes-list-type: map` lists merged by key).

use serde_json::{Map, Value};

/// How a list field is merged by server-side apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// The whole list is replaced by the applied one (`x-kubernetes-list-type: atomic`, the default).
    Atomic,
    /// Items are matched by the given key fields and merged (`x-kubernetes-list-type: map`).
    Map(Vec<String>),
    /// Scalar items are unioned (`x-kubernetes-list-type: set`).
    Set,
}

/// RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Server-side apply approximation: like a merge patch, except lists whose type (looked up by the field path,
/// array positions omitted) is `Map` are merged item by item on their key fields and `Set` lists are unioned.
/// Fields the same field manager applied earlier but omits now are NOT removed (real SSA would remove them).
pub fn apply_merge(
    target: &mut Value,
    applied: &Value,
    path: &mut Vec<String>,
    list_type: &dyn Fn(&[String]) -> ListType,
) {
    match (target, applied) {
        (Value::Object(target_map), Value::Object(applied_map)) => {
            for (key, value) in applied_map {
                if value.is_null() {
                    target_map.remove(key);
                    continue;
                }
                path.push(key.clone());
                match target_map.get_mut(key) {
                    Some(existing) => apply_merge(existing, value, path, list_type),
                    None => {
                        target_map.insert(key.clone(), strip_nulls(value));
                    }
                }
                path.pop();
            }
        }
        (Value::Array(target_items), Value::Array(applied_items)) => match list_type(path) {
            ListType::Atomic => *target_items = applied_items.iter().map(strip_nulls).collect(),
            ListType::Set => {
                for item in applied_items {
                    if !target_items.contains(item) {
                        target_items.push(item.clone());
                    }
                }
            }
            ListType::Map(keys) => {
                for item in applied_items {
                    let found = target_items
                        .iter_mut()
                        .find(|existing| keys.iter().all(|k| existing.get(k) == item.get(k)));
                    match found {
                        Some(existing) => apply_merge(existing, item, path, list_type),
                        None => target_items.push(strip_nulls(item)),
                    }
                }
            }
        },
        (target, applied) => *target = strip_nulls(applied),
    }
}

fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

/// RFC 6902 JSON patch (add, remove, replace, move, copy, test). Like the Kubernetes apiserver
/// (evanphx/json-patch), `test` treats a missing path as equal to `null`.
pub fn json_patch(target: &mut Value, operations: &Value) -> Result<(), String> {
    let Value::Array(operations) = operations else {
        return Err("a JSON patch must be an array of operations".into());
    };
    for operation in operations {
        let op = operation
            .get("op")
            .and_then(Value::as_str)
            .ok_or("operation without \"op\"")?;
        let path = operation
            .get("path")
            .and_then(Value::as_str)
            .ok_or("operation without \"path\"")?;
        let tokens = parse_pointer(path)?;
        let value = || {
            operation
                .get("value")
                .cloned()
                .ok_or(format!("{op} operation without \"value\""))
        };
        let from = || -> Result<Vec<String>, String> {
            parse_pointer(
                operation
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or(format!("{op} without \"from\""))?,
            )
        };
        match op {
            "add" => add(target, &tokens, value()?)?,
            "remove" => {
                remove(target, &tokens)?;
            }
            "replace" => {
                let slot = resolve_mut(target, &tokens)
                    .ok_or(format!("replace: path {path} does not exist"))?;
                *slot = value()?;
            }
            "move" => {
                let moved = remove(target, &from()?)?;
                add(target, &tokens, moved)?;
            }
            "copy" => {
                let copied = resolve(target, &from()?)
                    .cloned()
                    .ok_or("copy: \"from\" does not exist")?;
                add(target, &tokens, copied)?;
            }
            "test" => {
                let expected = value()?;
                let actual = resolve(target, &tokens).cloned().unwrap_or(Value::Null);
                if actual != expected {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("unsupported JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("JSON pointer {pointer:?} must start with '/'"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn resolve<'a>(value: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens
        .iter()
        .try_fold(value, |current, token| match current {
            Value::Object(map) => map.get(token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

fn resolve_mut<'a>(value: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens
        .iter()
        .try_fold(value, |current, token| match current {
            Value::Object(map) => map.get_mut(token),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        })
}

fn add(target: &mut Value, tokens: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_tokens)) = tokens.split_last() else {
        *target = value;
        return Ok(());
    };
    let parent = resolve_mut(target, parent_tokens).ok_or("add: parent path does not exist")?;
    match parent {
        Value::Object(map) => {
            map.insert(last.clone(), value);
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
            } else {
                let index = last
                    .parse::<usize>()
                    .map_err(|_| format!("add: bad array index {last}"))?;
                if index > items.len() {
                    return Err(format!("add: array index {index} out of bounds"));
                }
                items.insert(index, value);
            }
        }
        _ => return Err("add: parent is not a container".into()),
    }
    Ok(())
}

fn remove(target: &mut Value, tokens: &[String]) -> Result<Value, String> {
    let (last, parent_tokens) = tokens
        .split_last()
        .ok_or("remove: cannot remove the root")?;
    let parent = resolve_mut(target, parent_tokens).ok_or("remove: parent path does not exist")?;
    match parent {
        Value::Object(map) => map
            .remove(last)
            .ok_or(format!("remove: {last} does not exist")),
        Value::Array(items) => {
            let index = last
                .parse::<usize>()
                .map_err(|_| format!("remove: bad array index {last}"))?;
            if index >= items.len() {
                return Err(format!("remove: array index {index} out of bounds"));
            }
            Ok(items.remove(index))
        }
        _ => Err("remove: parent is not a container".into()),
    }
}
