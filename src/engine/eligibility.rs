//! Who can never be granted, whatever they hold: the per-person bars (no usable email, a former or
//! unapproved member). Depends on the OfficeRnD model only, so both the index (which keeps each
//! member's bar current) and the access rules use it without depending on each other.

use crate::officernd::model::{Member, MemberStatus, Visitor};

/// Why a person can never be granted, whatever they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bar {
    /// Vendors identify people by email (seed essensys 000: "used as unique identifier").
    NoEmail,
    /// Status `former`: access is revoked "once their membership ends" (seeds 002, 003).
    Former,
    /// Member status `not_approved`.
    NotApproved,
}

/// The trimmed email of a person, if they have a usable one.
pub(crate) fn usable_email(email: Option<&str>) -> Option<&str> {
    email.map(str::trim).filter(|email| !email.is_empty())
}

pub(crate) fn member_bar(member: &Member) -> Option<Bar> {
    match member.status {
        Some(MemberStatus::Former) => Some(Bar::Former),
        Some(MemberStatus::NotApproved) => Some(Bar::NotApproved),
        _ if usable_email(member.email.as_deref()).is_none() => Some(Bar::NoEmail),
        _ => None,
    }
}

pub(crate) fn visitor_bar(visitor: &Visitor) -> Option<Bar> {
    usable_email(visitor.email.as_deref())
        .is_none()
        .then_some(Bar::NoEmail)
}
