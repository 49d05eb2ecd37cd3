//! Test fixtures: a small hand-written organisation (seed-file JSON) and binding builders.

#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use flexgate::engine::{
    Binding, BindingKey, Evaluation, GroupKey, Index, ObjectRef, PersonId, Source,
};
use flexgate::officernd::model::Snapshot;
use serde_json::{json, Value};

pub fn t(text: &str) -> DateTime<Utc> {
    text.parse().expect("valid instant")
}

/// London, New York and Paris; plans (two named "Private Office"); a floor, a desk, a meeting room and an
/// office; companies Acme (London) and Globex; members with every status that matters.
pub fn base() -> Value {
    json!({
        "locations": [
            {"_id": "lon", "name": "London", "timezone": "Europe/London", "isOpen": true},
            {"_id": "nyc", "name": "New York", "timezone": "America/New_York"},
            {"_id": "par", "name": "Paris", "timezone": "Europe/Paris"}
        ],
        "plans": [
            {"_id": "hot", "name": "Hot Desk"},
            {"_id": "ded", "name": "Dedicated Desk"},
            {"_id": "po1", "name": "Private Office"},
            {"_id": "po2", "name": "Private Office"}
        ],
        "floors": [
            {"_id": "f1", "name": "Floor 1", "floor": "1", "location": "lon"},
            {"_id": "f2", "name": "Floor 2", "floor": "2", "location": "lon"}
        ],
        "resources": [
            {"_id": "desk4", "name": "Desk 4", "type": "desk", "location": "lon", "floor": "f1"},
            {"_id": "desk5", "name": "Desk 5", "type": "desk", "location": "lon", "floor": "f2"},
            {"_id": "room", "name": "Room A", "type": "meeting_room", "location": "lon", "floor": "f1"},
            {"_id": "office9", "name": "Office 9", "type": "team_room", "location": "nyc"}
        ],
        "companies": [
            {"_id": "acme", "name": "Acme", "location": "lon", "status": "active"},
            {"_id": "globex", "name": "Globex", "location": "par", "status": "active"}
        ],
        "members": [
            {"_id": "ann", "name": "Ann", "email": "ann@example.com", "company": "acme", "status": "active", "location": "lon"},
            {"_id": "bob", "name": "Bob", "email": "Bob@Example.com ", "company": "acme", "status": "active"},
            {"_id": "cid", "name": "Cid", "email": "cid@example.com", "company": "acme", "status": "former"},
            {"_id": "dan", "name": "Dan", "company": "acme", "status": "active"},
            {"_id": "eve", "name": "Eve", "email": "eve@example.com", "company": "acme", "status": "pending"},
            {"_id": "fay", "name": "Fay", "email": "fay@example.com", "status": "active", "location": "par"},
            {"_id": "gus", "name": "Gus", "email": "gus@example.com", "company": "globex", "status": "active"}
        ],
        "visitors": [
            {"_id": "v1", "name": "Vic", "email": "vic@example.org"},
            {"_id": "v2", "name": "Nomail"}
        ]
    })
}

/// The base organisation with `extra`'s lists appended.
pub fn org(extra: Value) -> Index {
    let mut value = base();
    if let (Some(target), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
        for (key, items) in extra {
            let list = target.entry(key.clone()).or_insert_with(|| json!([]));
            if let (Some(list), Some(items)) = (list.as_array_mut(), items.as_array()) {
                list.extend(items.iter().cloned());
            }
        }
    }
    let snapshot: Snapshot = serde_json::from_value(value).expect("valid seed file");
    Index::build(snapshot)
}

pub fn group(name: &str) -> GroupKey {
    GroupKey {
        connection: "kisi-main".to_owned(),
        group: name.to_owned(),
    }
}

/// A binding named `name` mapping `source` to the group of the same name.
pub fn binding(name: &str, source: Source) -> Binding {
    Binding {
        key: BindingKey {
            namespace: "default".to_owned(),
            name: name.to_owned(),
        },
        source,
        groups: vec![group(name)],
        grant_before: Duration::zero(),
        revoke_after: Duration::zero(),
        include_guests: false,
        location_scope: None,
        require_active_membership: false,
    }
}

pub fn id(text: &str) -> ObjectRef {
    ObjectRef::Id(text.to_owned())
}

pub fn name(text: &str) -> ObjectRef {
    ObjectRef::Name(text.to_owned())
}

pub fn member(id: &str) -> PersonId {
    PersonId::Member(id.into())
}

pub fn guest(id: &str) -> PersonId {
    PersonId::Guest(id.into())
}

/// The people in a group, sorted.
pub fn people(evaluation: &Evaluation, group_name: &str) -> Vec<PersonId> {
    evaluation
        .groups
        .get(&group(group_name))
        .map(|members| members.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn problem_texts(evaluation: &Evaluation) -> Vec<String> {
    evaluation
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// An approved personal membership.
pub fn personal(id: &str, member: &str, plan: &str, start: &str, end: Option<&str>) -> Value {
    let mut value = json!({"_id": id, "isPersonal": true, "status": "approved", "member": member,
        "plan": plan, "location": "lon", "startDate": start});
    if let Some(end) = end {
        value["endDate"] = json!(end);
    }
    value
}
