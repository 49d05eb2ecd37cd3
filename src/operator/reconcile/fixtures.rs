//! Fixture builders for the pipeline tests: objects as a person would write them, in namespace
//! `doors`, generation 1.

use chrono::{DateTime, Utc};

use crate::api::{AccessGroupBinding, SiteMapping, VendorConnection};
use crate::operator::objects::Objects;

/// An instant from RFC 3339 text.
pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("an instant")
}

/// A VendorConnection `name` of `vendor` reading the Secret `secret`.
pub fn connection(name: &str, vendor: &str, secret: &str) -> VendorConnection {
    let mut connection: VendorConnection = serde_yaml::from_str(&format!(
        "apiVersion: flexgate.dev/v1alpha1
kind: VendorConnection
metadata: {{name: {name}, namespace: doors, generation: 1}}
spec:
  vendor: {vendor}
  credentialsSecretRef: {{name: {secret}}}
"
    ))
    .expect("a connection fixture");
    if vendor == "OfficeRnD" {
        connection.spec.officernd =
            serde_yaml::from_str("organization: example").expect("OfficeRnD settings");
    }
    if vendor == "Essensys" {
        connection.spec.essensys =
            serde_yaml::from_str("platformUrl: https://example.essensys.tech")
                .expect("essensys settings");
    }
    connection
}

/// A binding `name` of the Hot Desk plan to the group `OFFICERND_Lobby`.
pub fn binding(name: &str, officernd: &str, vendor: &str) -> AccessGroupBinding {
    serde_yaml::from_str(&format!(
        "apiVersion: flexgate.dev/v1alpha1
kind: AccessGroupBinding
metadata: {{name: {name}, namespace: doors, generation: 1}}
spec:
  officerndRef: {{name: {officernd}}}
  vendorRef: {{name: {vendor}}}
  source: {{plan: {{name: Hot Desk}}}}
  groups: [{{name: OFFICERND_Lobby}}]
"
    ))
    .expect("a binding fixture")
}

/// A SiteMapping `name` of the London location to the essensys site `London`.
pub fn mapping(name: &str, officernd: &str, essensys: &str) -> SiteMapping {
    serde_yaml::from_str(&format!(
        "apiVersion: flexgate.dev/v1alpha1
kind: SiteMapping
metadata: {{name: {name}, namespace: doors, generation: 1}}
spec:
  officerndRef: {{name: {officernd}}}
  essensysRef: {{name: {essensys}}}
  location: {{name: London}}
  site: London
"
    ))
    .expect("a SiteMapping fixture")
}

/// The connections `officernd` (OfficeRnD), `kisi` (Kisi) and `essensys` (Essensys), none
/// suspended but `suspended`.
pub fn objects(suspended: Option<&str>) -> Objects {
    Objects {
        connections: [
            ("officernd", "OfficeRnD"),
            ("kisi", "Kisi"),
            ("essensys", "Essensys"),
        ]
        .into_iter()
        .map(|(name, vendor)| {
            let mut c = connection(name, vendor, &format!("{name}-credentials"));
            c.spec.suspend = suspended == Some(name);
            c
        })
        .collect(),
        ..Default::default()
    }
}
