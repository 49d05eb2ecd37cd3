//! The SiteMapping lifecycle rules, pure: when a proposal waits for approval, when an approved
//! mapping is saved (and frozen from then on), when an empty essensys site may be provisioned
//! (once, never twice), how far back tap-to-book bookings are looked for, when a sync is worth
//! an Event, when `lastSyncTime` moves, and what a spec change waiting for a running sync says.
//! The SiteMapping reconcile (`operator::site_mapping`) reads the site and OfficeRnD and
//! follows these decisions; nothing here performs I/O.
//!
//! # Lifecycle
//! 1. **Proposal** (`approved: false`): floors, resources and companies are matched by name,
//!    members by email; `status.proposal` shows it, Ready is False with reason
//!    `AwaitingApproval`. Nothing is written anywhere.
//! 2. **Saved** (`approved: true`): the proposal is recorded in `status.savedMapping` (when, and
//!    the fingerprint of the matching settings and `provisionEmptySite` it was saved with) and
//!    never recomputed; a spec whose fingerprint differs, or that is no longer approved, is
//!    refused with `FrozenMappingChanged` and nothing is done (the CEL rule prevents such edits
//!    in a cluster; a manifest folder or an old API server may not).
//! 3. **Empty site**: a site without floors, spaces or occupiers is created from OfficeRnD only
//!    with `provisionEmptySite: true`, once, recorded in `status.provisionedTime`; a provisioned
//!    site found empty again is never provisioned twice.
//! 4. **Sync** (every reconcile after saving).

use chrono::{DateTime, Duration, Utc};

/// How far back tap-to-book bookings are looked for when the save time is unknown.
pub const TAP_LOOKBACK_DAYS: i64 = 1;

/// When the mapping was saved and the fingerprint of what it was saved with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMapping {
    /// When it was saved.
    pub at: DateTime<Utc>,
    /// The fingerprint of the frozen settings.
    pub fingerprint: String,
}

/// A saved mapping's frozen settings changed (or its approval was withdrawn): nothing is done
/// until they are restored or the SiteMapping is recreated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this mapping was saved on {} with matching fingerprint {}, but the spec now has {current}{}: approved, matching and provisionEmptySite are frozen, so nothing was done; restore them, or delete and recreate the SiteMapping to map the site again",
    .saved.at.to_rfc3339(),
    .saved.fingerprint,
    if *.approved { "" } else { " and approved: false" }
)]
pub struct FrozenChanged {
    /// The saved mapping.
    pub saved: SavedMapping,
    /// Whether the spec is still approved.
    pub approved: bool,
    /// The spec's fingerprint now.
    pub current: String,
}

/// Whether a saved mapping still holds for the spec.
pub fn check_frozen(
    saved: &SavedMapping,
    approved: bool,
    current: &str,
) -> Result<(), FrozenChanged> {
    if approved && saved.fingerprint == current {
        return Ok(());
    }
    Err(FrozenChanged {
        saved: saved.clone(),
        approved,
        current: current.to_owned(),
    })
}

/// What happens to a mapping that is not saved yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// Not approved: the proposal is shown and waits for a person.
    AwaitApproval,
    /// Approved, but the site is empty and provisioning was not asked for: nothing is saved.
    RefuseEmptySite,
    /// Approved: save the proposal now (frozen from then on).
    Save,
}

/// The rule for a mapping that is not saved yet.
pub fn approval(approved: bool, site_empty: bool, provision_empty_site: bool) -> Approval {
    if !approved {
        Approval::AwaitApproval
    } else if site_empty && !provision_empty_site {
        Approval::RefuseEmptySite
    } else {
        Approval::Save
    }
}

/// Whether this sync provisions the site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// The site has content: an ordinary sync.
    NotNeeded,
    /// The site is empty and may be provisioned now (once).
    Provision,
    /// The site was provisioned on this date and is empty again: never twice.
    AlreadyProvisioned(DateTime<Utc>),
    /// The site became empty and provisioning is not allowed.
    NotAllowed,
}

/// The rule for a saved mapping's site.
pub fn provisioning(
    site_empty: bool,
    provisioned: Option<DateTime<Utc>>,
    provision_empty_site: bool,
) -> Provisioning {
    match (site_empty, provisioned) {
        (false, _) => Provisioning::NotNeeded,
        (true, Some(when)) => Provisioning::AlreadyProvisioned(when),
        (true, None) if provision_empty_site => Provisioning::Provision,
        (true, None) => Provisioning::NotAllowed,
    }
}

/// Provisioning is recorded (and announced) only when the sync created something.
pub fn provisioned(provisioning: Provisioning, created: u32) -> bool {
    provisioning == Provisioning::Provision && created > 0
}

/// Since when tap-to-book bookings are looked for: the save time, else a day back.
pub fn taps_since(saved: Option<&SavedMapping>, at: DateTime<Utc>) -> DateTime<Utc> {
    saved
        .map(|s| s.at)
        .unwrap_or(at - Duration::days(TAP_LOOKBACK_DAYS))
}

/// Whether a sync is told as a `SyncCompleted` Event: the first, or one that wrote or failed
/// something (an idle resync is not news).
pub fn worth_an_event(first_sync: bool, writes: u32, failed: u32) -> bool {
    first_sync || writes > 0 || failed > 0
}

/// `lastSyncTime` after a sync: moved to `at` when the sync wrote or failed something (or is the
/// first), else kept, so an idle resync rewrites no status.
pub fn last_sync_time(
    before: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
    writes: u32,
    failed: u32,
) -> Option<DateTime<Utc>> {
    match before {
        Some(before) if writes == 0 && failed == 0 => Some(before),
        _ => Some(at),
    }
}

/// The `Reconciling` note of a spec change waiting for a running sync (essensys: a site is not
/// reconfigured while a sync is in progress).
pub fn waiting_change(running: i64, wanted: i64) -> String {
    format!(
        "a sync of generation {running} is running; the change to generation {wanted} is applied when it ends"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("an instant")
    }

    fn saved() -> SavedMapping {
        SavedMapping {
            at: at("2026-03-01T10:00:00Z"),
            fingerprint: "abc".into(),
        }
    }

    #[test]
    fn a_saved_mapping_is_frozen_while_approved_with_the_same_settings() {
        assert_eq!(check_frozen(&saved(), true, "abc"), Ok(()));
        let changed = check_frozen(&saved(), true, "def").expect_err("changed");
        assert!(changed
            .to_string()
            .contains("fingerprint abc, but the spec now has def:"));
        let withdrawn = check_frozen(&saved(), false, "abc").expect_err("withdrawn");
        assert!(withdrawn.to_string().contains("and approved: false"));
    }

    #[test]
    fn a_proposal_is_saved_only_when_approved_and_an_empty_site_only_with_provisioning() {
        assert_eq!(approval(false, false, false), Approval::AwaitApproval);
        assert_eq!(approval(false, true, true), Approval::AwaitApproval);
        assert_eq!(approval(true, true, false), Approval::RefuseEmptySite);
        assert_eq!(approval(true, true, true), Approval::Save);
        assert_eq!(approval(true, false, false), Approval::Save);
    }

    #[test]
    fn an_empty_site_is_provisioned_once_and_never_twice() {
        assert_eq!(provisioning(false, None, true), Provisioning::NotNeeded);
        assert_eq!(provisioning(true, None, true), Provisioning::Provision);
        assert_eq!(provisioning(true, None, false), Provisioning::NotAllowed);
        let when = at("2026-03-01T10:00:00Z");
        assert_eq!(
            provisioning(true, Some(when), true),
            Provisioning::AlreadyProvisioned(when)
        );
        assert!(provisioned(Provisioning::Provision, 3));
        assert!(
            !provisioned(Provisioning::Provision, 0),
            "nothing created, nothing recorded"
        );
        assert!(!provisioned(Provisioning::NotNeeded, 3));
    }

    #[test]
    fn taps_are_looked_for_since_the_save_or_a_day_back() {
        let now = at("2026-03-02T10:00:00Z");
        assert_eq!(taps_since(Some(&saved()), now), saved().at);
        assert_eq!(taps_since(None, now), at("2026-03-01T10:00:00Z"));
    }

    #[test]
    fn an_idle_sync_keeps_its_time_and_tells_nothing() {
        let before = at("2026-03-01T10:00:00Z");
        let now = at("2026-03-02T10:00:00Z");
        assert_eq!(last_sync_time(Some(before), now, 0, 0), Some(before));
        assert_eq!(last_sync_time(Some(before), now, 2, 0), Some(now));
        assert_eq!(last_sync_time(Some(before), now, 0, 1), Some(now));
        assert_eq!(last_sync_time(None, now, 0, 0), Some(now), "the first sync");
        assert!(!worth_an_event(false, 0, 0));
        assert!(worth_an_event(true, 0, 0));
        assert!(worth_an_event(false, 1, 0));
    }

    #[test]
    fn a_waiting_change_names_both_generations() {
        assert_eq!(
            waiting_change(4, 5),
            "a sync of generation 4 is running; the change to generation 5 is applied when it ends"
        );
    }
}
