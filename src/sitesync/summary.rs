//! What one site sync did, per entity: created, linked (an existing essensys object matched and
//! given its `externalRef`), drift corrected (overwritten from OfficeRnD), unchanged, skipped and
//! failed; plus bookings cancelled, Wi-Fi invitations sent and bookings created in OfficeRnD.

use std::fmt;

/// The tally for one kind of entity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Created in essensys.
    pub created: u32,
    /// Existing essensys objects linked to their OfficeRnD counterpart (first sync).
    pub linked: u32,
    /// Linked objects changed in essensys and overwritten from OfficeRnD.
    pub corrected: u32,
    /// Already as OfficeRnD says.
    pub unchanged: u32,
    /// Left alone on purpose (doNotMap, ambiguous, no email, ...).
    pub skipped: u32,
    /// Writes that failed (retried on the next reconcile).
    pub failed: u32,
}

impl Tally {
    /// Writes this tally made.
    pub fn writes(&self) -> u32 {
        self.created + self.linked + self.corrected
    }

    /// Objects that are in sync after this pass.
    pub fn in_sync(&self) -> u32 {
        self.created + self.linked + self.corrected + self.unchanged
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in sync ({} created, {} linked, {} corrected), {} skipped, {} failed",
            self.in_sync(),
            self.created,
            self.linked,
            self.corrected,
            self.skipped,
            self.failed
        )
    }
}

/// Everything one sync pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncSummary {
    pub floors: Tally,
    pub spaces: Tally,
    /// Company and individual occupiers.
    pub occupiers: Tally,
    pub contracts: Tally,
    pub users: Tally,
    /// Bookings mirrored to the essensys calendar (and tap-to-book bookings linked back).
    pub bookings: Tally,
    /// Mirrored bookings cancelled in essensys because they were cancelled, moved or deleted in
    /// OfficeRnD.
    pub bookings_cancelled: u32,
    /// Wi-Fi invitations sent in this pass.
    pub wifi_invitations_sent: u32,
    /// Tap-to-book bookings created in OfficeRnD in this pass.
    pub officernd_bookings_created: u32,
    /// Whether this pass ran the one-time provisioning of an empty site.
    pub provisioned: bool,
}

impl SyncSummary {
    /// Every write this pass made, on both sides.
    pub fn writes(&self) -> u32 {
        self.tallies().iter().map(|(_, t)| t.writes()).sum::<u32>()
            + self.bookings_cancelled
            + self.wifi_invitations_sent
            + self.officernd_bookings_created
    }

    /// Objects changed in essensys by hand and overwritten from OfficeRnD.
    pub fn drift_corrected(&self) -> u32 {
        self.tallies().iter().map(|(_, t)| t.corrected).sum()
    }

    /// Writes that failed.
    pub fn failed(&self) -> u32 {
        self.tallies().iter().map(|(_, t)| t.failed).sum()
    }

    /// Objects created in essensys.
    pub fn created(&self) -> u32 {
        self.tallies().iter().map(|(_, t)| t.created).sum()
    }

    pub fn tallies(&self) -> [(&'static str, Tally); 6] {
        [
            ("floors", self.floors),
            ("spaces", self.spaces),
            ("occupiers", self.occupiers),
            ("contracts", self.contracts),
            ("users", self.users),
            ("bookings", self.bookings),
        ]
    }
}

impl fmt::Display for SyncSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, tally) in self.tallies() {
            write!(f, "{name}: {tally}; ")?;
        }
        write!(
            f,
            "bookings cancelled: {}; Wi-Fi invitations sent: {}; tap-to-book bookings created in OfficeRnD: {}; {} writes, {} drift corrected, {} failed",
            self.bookings_cancelled,
            self.wifi_invitations_sent,
            self.officernd_bookings_created,
            self.writes(),
            self.drift_corrected(),
            self.failed()
        )
    }
}
