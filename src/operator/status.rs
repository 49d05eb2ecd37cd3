//! Builds kstatus conditions (Ready, Reconciling, Stalled) from what a reconcile found, with
//! messages a person can act on. Unchanged conditions keep their transition time.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::conditions::{condition, Reason, READY, RECONCILING, STALLED};

/// The outcome of one reconcile, as conditions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the object is in its desired state.
    pub ready: bool,
    /// Why.
    pub reason: Reason,
    /// What happened and, when not ready, what to do.
    pub message: String,
    /// Whether work remains that the controller will retry by itself.
    pub retrying: bool,
}

impl Outcome {
    /// Everything holds.
    pub fn ready(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            ready: true,
            reason,
            message: message.into(),
            retrying: false,
        }
    }

    /// Not ready; whether a person must act follows from the reason.
    pub fn not_ready(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            ready: false,
            retrying: !reason.needs_a_person(),
            reason,
            message: message.into(),
        }
    }
}

/// The three conditions for `outcome`, keeping transition times from `previous`.
pub fn conditions(
    outcome: &Outcome,
    generation: Option<i64>,
    now: Time,
    previous: &[Condition],
) -> Vec<Condition> {
    let stalled = !outcome.ready && outcome.reason.needs_a_person();
    let reconciling_reason = if outcome.retrying {
        outcome.reason
    } else {
        Reason::Synced
    };
    let reconciling_message = if outcome.retrying {
        format!("retrying: {}", outcome.message)
    } else {
        String::new()
    };
    let stalled_message = if stalled {
        outcome.message.clone()
    } else {
        String::new()
    };
    vec![
        condition(
            READY,
            outcome.ready,
            outcome.reason,
            outcome.message.clone(),
            generation,
            now.clone(),
            previous,
        ),
        condition(
            RECONCILING,
            outcome.retrying,
            reconciling_reason,
            reconciling_message,
            generation,
            now.clone(),
            previous,
        ),
        condition(
            STALLED,
            stalled,
            if stalled {
                outcome.reason
            } else {
                Reason::Synced
            },
            stalled_message,
            generation,
            now,
            previous,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn now() -> Time {
        Time(Timestamp::from_second(1_800_000_000).unwrap())
    }

    #[test]
    fn a_person_must_act_means_stalled() {
        let found = conditions(
            &Outcome::not_ready(Reason::MassRevocationBlocked, "blocked"),
            Some(3),
            now(),
            &[],
        );
        let by_type = |t: &str| found.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(by_type(READY).status, "False");
        assert_eq!(by_type(STALLED).status, "True");
        assert_eq!(by_type(STALLED).reason, "MassRevocationBlocked");
        assert_eq!(by_type(RECONCILING).status, "False");
        assert_eq!(by_type(READY).observed_generation, Some(3));
    }

    #[test]
    fn transient_failures_are_reconciling_not_stalled() {
        let found = conditions(
            &Outcome::not_ready(Reason::VendorUnreachable, "503"),
            None,
            now(),
            &[],
        );
        assert!(found
            .iter()
            .any(|c| c.type_ == RECONCILING && c.status == "True"));
        assert!(found
            .iter()
            .any(|c| c.type_ == STALLED && c.status == "False"));
    }
}
