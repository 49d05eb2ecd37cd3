//! Condition types and reasons: the vocabulary every flexgate status speaks (kstatus conventions).
//!
//! `Ready` is present from the first reconcile. `Reconciling` is True while work is in flight,
//! `Stalled` is True when progress needs a person (bad credentials, a blocked mass revocation,
//! an ambiguous reference). Reasons are CamelCase and stable: alerts and Argo CD health checks
//! match on them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The object is in its desired state.
pub const READY: &str = "Ready";
/// The controller is working towards the desired state.
pub const RECONCILING: &str = "Reconciling";
/// The controller cannot make progress without a person acting.
pub const STALLED: &str = "Stalled";
/// VendorConnection of a vendor whose API contract is flexgate's own design, not the vendor's
/// published one (essensys): True, with what to confirm. Informational: Ready is not affected.
pub const CONTRACT_PROVISIONAL: &str = "ContractProvisional";

/// Why a condition has its status. Each reason's doc says when it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Everything the spec asks for holds at the vendor.
    Synced,
    /// Mode `Plan`: the changes were computed and reported, nothing was written.
    Planned,
    /// A sync is running.
    Progressing,
    /// The object is suspended by `spec.suspend`.
    Suspended,
    /// The Secret or the keys it names are missing.
    SecretNotFound,
    /// The vendor refused the credentials.
    CredentialsInvalid,
    /// The vendor could not be reached or kept failing; retried with backoff.
    VendorUnreachable,
    /// A referenced VendorConnection, OfficeRnD object or vendor group does not exist.
    ReferenceNotFound,
    /// A name in the spec matches several objects; use an id instead.
    AmbiguousReference,
    /// The spec is valid for the schema but cannot be acted on (e.g. wrong vendor kind).
    InvalidSpec,
    /// A bound vendor group lacks the connection's required managed-group prefix.
    UnmanagedGroup,
    /// A sync would take all managed access away from more than `maxRevocationPercent` of the
    /// people with access on the vendor connection, or rests on an empty or partial OfficeRnD
    /// snapshot, so nobody was removed.
    MassRevocationBlocked,
    /// SiteMapping: the proposed mapping waits for `approved: true`.
    AwaitingApproval,
    /// SiteMapping: the approved mapping was edited; approved mappings are frozen.
    FrozenMappingChanged,
    /// Some members or entities failed; the others were synced.
    PartialFailure,
    /// The object is being deleted and its access revoked.
    Deleting,
    /// `ContractProvisional`: the vendor publishes no API reference; flexgate's client follows a
    /// contract of its own design that must be confirmed with the vendor.
    NoPublishedApi,
}

impl Reason {
    /// The reason as written in a condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::Planned => "Planned",
            Reason::Progressing => "Progressing",
            Reason::Suspended => "Suspended",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::CredentialsInvalid => "CredentialsInvalid",
            Reason::VendorUnreachable => "VendorUnreachable",
            Reason::ReferenceNotFound => "ReferenceNotFound",
            Reason::AmbiguousReference => "AmbiguousReference",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::UnmanagedGroup => "UnmanagedGroup",
            Reason::MassRevocationBlocked => "MassRevocationBlocked",
            Reason::AwaitingApproval => "AwaitingApproval",
            Reason::FrozenMappingChanged => "FrozenMappingChanged",
            Reason::PartialFailure => "PartialFailure",
            Reason::Deleting => "Deleting",
            Reason::NoPublishedApi => "NoPublishedApi",
        }
    }

    /// Whether this reason means a person must act (kstatus `Stalled`).
    pub fn needs_a_person(self) -> bool {
        matches!(
            self,
            Reason::SecretNotFound
                | Reason::CredentialsInvalid
                | Reason::ReferenceNotFound
                | Reason::AmbiguousReference
                | Reason::InvalidSpec
                | Reason::UnmanagedGroup
                | Reason::MassRevocationBlocked
                | Reason::FrozenMappingChanged
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Builds a condition; `lastTransitionTime` is kept from `previous` when the status is unchanged,
/// so rewriting the same condition never churns the object.
pub fn condition(
    type_: &str,
    status: bool,
    reason: Reason,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
    previous: &[Condition],
) -> Condition {
    let status = if status { "True" } else { "False" }.to_owned();
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(now);
    Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.as_str().to_owned(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let t0 = Time(Timestamp::from_second(1_000).unwrap());
        let t1 = Time(Timestamp::from_second(2_000).unwrap());
        let first = condition(READY, true, Reason::Synced, "ok", Some(1), t0.clone(), &[]);
        let again = condition(
            READY,
            true,
            Reason::Synced,
            "ok",
            Some(2),
            t1.clone(),
            std::slice::from_ref(&first),
        );
        assert_eq!(again.last_transition_time, t0);
        let flipped = condition(
            READY,
            false,
            Reason::VendorUnreachable,
            "down",
            Some(2),
            t1.clone(),
            &[first],
        );
        assert_eq!(flipped.last_transition_time, t1);
    }

    #[test]
    fn stalled_reasons_are_the_ones_a_person_fixes() {
        assert!(Reason::CredentialsInvalid.needs_a_person());
        assert!(Reason::MassRevocationBlocked.needs_a_person());
        assert!(!Reason::VendorUnreachable.needs_a_person());
        assert!(!Reason::Progressing.needs_a_person());
    }
}
