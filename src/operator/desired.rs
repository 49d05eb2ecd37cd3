//! Turns AccessGroupBindings into the access engine's inputs: resolved references, parsed
//! durations, the connection's location scope, and one engine group key per vendor group.

use chrono::Duration;
use kube::ResourceExt;

use crate::api::access_group_binding::{AccessGroupBinding, GroupRef, ObjectSelector};
use crate::api::conditions::Reason;
use crate::api::{duration, Vendor};
use crate::engine::calendar::MAX_BOOKING_MARGIN;
use crate::engine::{Binding, BindingKey, GroupKey, Index, ObjectRef, Source};

use super::objects::Objects;

/// The engine's key for a vendor group named by a binding: the connection as `namespace/name`
/// and the group as `id:<id>` or `name:<name>`, so two bindings naming the same group by the
/// same reference share one desired set.
pub fn group_key(namespace: &str, connection: &str, group: &GroupRef) -> GroupKey {
    let group = match (&group.id, &group.name) {
        (Some(id), _) => format!("id:{id}"),
        (None, Some(name)) => format!("name:{name}"),
        (None, None) => String::new(),
    };
    GroupKey {
        connection: format!("{namespace}/{connection}"),
        group,
    }
}

/// The binding's key in the engine.
pub fn binding_key(binding: &AccessGroupBinding) -> BindingKey {
    BindingKey {
        namespace: binding.namespace().unwrap_or_default(),
        name: binding.name_any(),
    }
}

/// Why a binding cannot be mapped onto the engine: the condition reason and a message a person
/// can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Unmapped {
    /// `ReferenceNotFound`, `AmbiguousReference` or `InvalidSpec`.
    pub reason: Reason,
    /// What is wrong and what to do.
    pub message: String,
}

impl Unmapped {
    fn missing(message: impl Into<String>) -> Self {
        Self {
            reason: Reason::ReferenceNotFound,
            message: message.into(),
        }
    }

    fn ambiguous(message: impl Into<String>) -> Self {
        Self {
            reason: Reason::AmbiguousReference,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self {
            reason: Reason::InvalidSpec,
            message: message.into(),
        }
    }
}

/// Maps one binding onto the engine. Fails with a message a person can act on when the spec
/// references a connection that does not exist or is of the wrong vendor, or carries a value
/// out of range.
pub fn engine_binding(
    binding: &AccessGroupBinding,
    objects: &Objects,
    index: &Index,
) -> Result<Binding, Unmapped> {
    let namespace = binding.namespace().unwrap_or_default();
    let spec = &binding.spec;
    let officernd = objects
        .connection(&namespace, &spec.officernd_ref.name)
        .ok_or_else(|| {
            Unmapped::missing(format!(
                "VendorConnection {namespace}/{} (officerndRef) not found",
                spec.officernd_ref.name
            ))
        })?;
    if officernd.spec.vendor != Vendor::OfficeRnD {
        return Err(Unmapped::invalid(format!(
            "officerndRef {} is a {} connection; it must be an OfficeRnD one",
            spec.officernd_ref.name, officernd.spec.vendor
        )));
    }
    let vendor = objects
        .connection(&namespace, &spec.vendor_ref.name)
        .ok_or_else(|| {
            Unmapped::missing(format!(
                "VendorConnection {namespace}/{} (vendorRef) not found",
                spec.vendor_ref.name
            ))
        })?;
    if !vendor.spec.vendor.is_door_access() {
        return Err(Unmapped::invalid(format!(
            "vendorRef {} is a {} connection; AccessGroupBindings manage door-access groups (Kisi, SaltoKS, Brivo)",
            spec.vendor_ref.name, vendor.spec.vendor
        )));
    }
    let grant_before = booking_margin("grantBefore", &spec.grant_before)?;
    let revoke_after = booking_margin("revokeAfter", &spec.revoke_after)?;
    let location_scope = vendor
        .spec
        .salto_ks
        .as_ref()
        .filter(|s| !s.locations.is_empty())
        .map(|s| {
            s.locations
                .iter()
                .map(|l| object_ref(l))
                .collect::<Vec<_>>()
        });

    let source = &spec.source;
    let engine_source = if let Some(plan) = &source.plan {
        Source::Plan(selector_ref(plan)?)
    } else if let Some(location) = &source.location {
        Source::Location(selector_ref(location)?)
    } else if let Some(floor) = &source.floor {
        Source::Floor(located(floor, index, |index| {
            index
                .floors()
                .map(|f| (f.id.as_str(), f.name.as_deref(), f.location.as_deref()))
                .collect()
        })?)
    } else if let Some(resource) = &source.assignable_resource {
        Source::AssignableResource(located(resource, index, resources)?)
    } else if let Some(resource) = &source.bookable_resource {
        Source::BookableResource(located(resource, index, resources)?)
    } else if let Some(passes) = &source.day_passes {
        // The binding's own location narrows the connection's scope, never replaces it: the engine
        // grants pass sets lying in both and reports a location outside the scope.
        Source::DayPasses(passes.location.as_deref().map(object_ref))
    } else {
        return Err(Unmapped::invalid(
            "spec.source names nothing; set exactly one source",
        ));
    };
    Ok(Binding {
        key: binding_key(binding),
        source: engine_source,
        groups: spec
            .groups
            .iter()
            .map(|g| group_key(&namespace, &spec.vendor_ref.name, g))
            .collect(),
        grant_before,
        revoke_after,
        include_guests: spec.include_guests,
        location_scope,
        require_active_membership: vendor.spec.vendor == Vendor::SaltoKS,
    })
}

/// A booking margin, at most [`MAX_BOOKING_MARGIN`]: access opening days before a booking is
/// a typo, not a policy, and the CRD refuses it too.
fn booking_margin(field: &str, text: &str) -> Result<Duration, Unmapped> {
    let too_long = || {
        Unmapped::invalid(format!(
            "spec.{field}: {text:?} is longer than 24h; a booking grants access at most a day before it starts or after it ends"
        ))
    };
    let parsed =
        duration::parse(text).map_err(|e| Unmapped::invalid(format!("spec.{field}: {e}")))?;
    let margin = Duration::from_std(parsed).map_err(|_| too_long())?;
    if margin > MAX_BOOKING_MARGIN {
        return Err(too_long());
    }
    Ok(margin)
}

/// OfficeRnD ids are 24 hex characters; anything else is a name.
fn object_ref(text: &str) -> ObjectRef {
    if text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        ObjectRef::Id(text.to_owned())
    } else {
        ObjectRef::Name(text.to_owned())
    }
}

fn resources(index: &Index) -> Vec<(&str, Option<&str>, Option<&str>)> {
    index
        .resources()
        .map(|r| (r.id.as_str(), r.name.as_deref(), r.location.as_deref()))
        .collect()
}

/// Resolves a floor or resource named by name within a location (`selector.location`, an id or
/// exact location name) to its id. Without a location, the name goes to the engine as is, which
/// reports ambiguity itself.
fn located<'s>(
    selector: &ObjectSelector,
    index: &'s Index,
    candidates: impl Fn(&'s Index) -> Vec<(&'s str, Option<&'s str>, Option<&'s str>)>,
) -> Result<ObjectRef, Unmapped> {
    let (Some(name), Some(location)) = (&selector.name, &selector.location) else {
        return selector_ref(selector);
    };
    let location_ids: Vec<&str> = index
        .locations()
        .filter(|l| l.id == *location || l.name.as_deref() == Some(location.as_str()))
        .map(|l| l.id.as_str())
        .collect();
    if location_ids.is_empty() {
        return Err(Unmapped::missing(format!(
            "location {location:?} not found in OfficeRnD"
        )));
    }
    let matches: Vec<&str> = candidates(index)
        .into_iter()
        .filter(|(_, n, l)| {
            *n == Some(name.as_str()) && l.is_some_and(|l| location_ids.contains(&l))
        })
        .map(|(id, _, _)| id)
        .collect();
    match matches.as_slice() {
        [id] => Ok(ObjectRef::Id((*id).to_owned())),
        [] => Err(Unmapped::missing(format!(
            "{name:?} not found in location {location:?}"
        ))),
        several => Err(Unmapped::ambiguous(format!(
            "{name:?} matches {} objects in location {location:?} (ids {}); name it by id",
            several.len(),
            several.join(", ")
        ))),
    }
}

fn selector_ref(selector: &ObjectSelector) -> Result<ObjectRef, Unmapped> {
    match (&selector.id, &selector.name) {
        (Some(id), _) => Ok(ObjectRef::Id(id.clone())),
        (None, Some(name)) => Ok(ObjectRef::Name(name.clone())),
        (None, None) => Err(Unmapped::invalid("set exactly one of id or name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::VendorConnection;
    use crate::officernd::model::Snapshot;

    fn objects() -> Objects {
        let connections: Vec<VendorConnection> = [
            (
                "officernd",
                "OfficeRnD",
                "\n  officernd: {organization: example}",
            ),
            ("kisi", "Kisi", ""),
            (
                "salto",
                "SaltoKS",
                "\n  saltoKs: {siteId: site-1, locations: [London]}",
            ),
        ]
        .into_iter()
        .map(|(name, vendor, extra)| {
            serde_yaml::from_str(&format!(
                "apiVersion: flexgate.dev/v1alpha1
kind: VendorConnection
metadata: {{name: {name}, namespace: doors}}
spec:
  vendor: {vendor}
  credentialsSecretRef: {{name: s}}{extra}
"
            ))
            .unwrap()
        })
        .collect();
        Objects {
            connections,
            ..Default::default()
        }
    }

    fn room(grant_before: &str, revoke_after: &str) -> AccessGroupBinding {
        serde_yaml::from_str(&format!(
            "apiVersion: flexgate.dev/v1alpha1
kind: AccessGroupBinding
metadata: {{name: room, namespace: doors}}
spec:
  officerndRef: {{name: officernd}}
  vendorRef: {{name: kisi}}
  source: {{bookableResource: {{name: Elephant}}}}
  groups: [{{name: OFFICERND_Elephant}}]
  grantBefore: {grant_before:?}
  revokeAfter: {revoke_after:?}
"
        ))
        .unwrap()
    }

    #[test]
    fn booking_margins_up_to_a_day_map_and_longer_ones_are_a_problem_on_the_binding() {
        let index = Index::build(Snapshot::default());
        let mapped = engine_binding(&room("24h", "90m"), &objects(), &index).unwrap();
        assert_eq!(mapped.grant_before, Duration::hours(24));
        assert_eq!(mapped.revoke_after, Duration::minutes(90));
        for (grant_before, revoke_after, field) in [
            ("24h1s", "0s", "grantBefore"),
            ("15m", "999999999h999999999h999999999h", "revokeAfter"),
        ] {
            let error =
                engine_binding(&room(grant_before, revoke_after), &objects(), &index).unwrap_err();
            assert_eq!(error.reason, Reason::InvalidSpec);
            assert!(
                error.message.starts_with(&format!("spec.{field}: ")),
                "{error}"
            );
            assert!(error.message.contains("longer than 24h"), "{error}");
        }
    }

    fn day_passes(vendor: &str, location: Option<&str>) -> AccessGroupBinding {
        let source = match location {
            Some(location) => format!("{{dayPasses: {{location: {location}}}}}"),
            None => "{dayPasses: {}}".to_owned(),
        };
        serde_yaml::from_str(&format!(
            "apiVersion: flexgate.dev/v1alpha1
kind: AccessGroupBinding
metadata: {{name: passes, namespace: doors}}
spec:
  officerndRef: {{name: officernd}}
  vendorRef: {{name: {vendor}}}
  source: {source}
  groups: [{{name: OFFICERND_Passes}}]
"
        ))
        .unwrap()
    }

    /// London and Paris, a pass holder in each (Pia a drop-in member).
    fn two_cities() -> Index {
        let snapshot: Snapshot = serde_json::from_value(serde_json::json!({
            "locations": [
                {"_id": "10ca71000000000000000001", "name": "London", "timezone": "Europe/London"},
                {"_id": "10ca71000000000000000002", "name": "Paris", "timezone": "Europe/Paris"}
            ],
            "members": [
                {"_id": "ann", "name": "Ann", "email": "ann@example.com", "status": "active",
                 "location": "10ca71000000000000000001"},
                {"_id": "pia", "name": "Pia", "email": "pia@example.com", "status": "drop-in",
                 "location": "10ca71000000000000000002"}
            ],
            // Salto KS grants day passes only to holders of a running membership (seed 002).
            "plans": [{"_id": "hot", "name": "Hot Desk"}],
            "memberships": [
                {"_id": "m1", "member": "ann", "plan": "hot", "status": "approved",
                 "startDate": "2026-01-01T00:00:00.000Z"},
                {"_id": "m2", "member": "pia", "plan": "hot", "status": "approved",
                 "startDate": "2026-01-01T00:00:00.000Z"}
            ],
            "passes": [
                {"_id": "p1", "member": "ann", "isPersonal": true, "count": 5, "usedCount": 0},
                {"_id": "p2", "member": "pia", "isPersonal": true, "count": 5, "usedCount": 0}
            ]
        }))
        .unwrap();
        Index::build(snapshot)
    }

    fn granted(binding: &AccessGroupBinding, index: &Index) -> (Vec<String>, Vec<String>) {
        let at = "2026-03-10T12:00:00Z".parse().unwrap();
        let mapped = engine_binding(binding, &objects(), index).unwrap();
        let evaluation = crate::engine::evaluate(index, &[mapped], at);
        let people = evaluation
            .groups
            .values()
            .flat_map(|members| members.values().map(|e| e.email.clone()))
            .collect();
        let problems = evaluation
            .problems
            .iter()
            .map(ToString::to_string)
            .collect();
        (people, problems)
    }

    #[test]
    fn a_day_pass_location_narrows_the_connection_scope_and_never_replaces_it() {
        let index = two_cities();
        // Salto KS is active for London only; the binding asks for Paris: nobody, and it says so
        // (before, Paris replaced the connection's scope and Pia was granted through a London-only
        // connection).
        let paris = day_passes("salto", Some("Paris"));
        let mapped = engine_binding(&paris, &objects(), &index).unwrap();
        assert_eq!(
            mapped.location_scope,
            Some(vec![ObjectRef::Name("London".into())])
        );
        assert_eq!(
            mapped.source,
            Source::DayPasses(Some(ObjectRef::Name("Paris".into())))
        );
        let (people, problems) = granted(&paris, &index);
        assert!(people.is_empty(), "{people:?}");
        assert_eq!(
            problems,
            ["binding doors/passes: day-pass location 10ca71000000000000000002 is outside the connection's locations"]
        );
        // Both say London: the London holder only.
        let (people, problems) = granted(&day_passes("salto", Some("London")), &index);
        assert_eq!(
            (people, problems),
            (vec!["ann@example.com".to_owned()], vec![])
        );
        // The connection's scope alone still applies; the binding's location alone too.
        let (people, _) = granted(&day_passes("salto", None), &index);
        assert_eq!(people, ["ann@example.com"]);
        let (people, _) = granted(&day_passes("kisi", Some("Paris")), &index);
        assert_eq!(people, ["pia@example.com"]);
        let (people, _) = granted(&day_passes("kisi", None), &index);
        assert_eq!(people, ["ann@example.com", "pia@example.com"]);
    }
}
