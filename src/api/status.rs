//! Status pieces shared by the three kinds: counts, the capped problem list, sync bookkeeping.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// At most this many problems are kept in a status, so status stays small at any scale; the
/// remainder is counted in `problemsOmitted`.
pub const MAX_PROBLEMS: usize = 50;

/// How many people or entities are in each state after the last sync.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// People (or entities) that OfficeRnD entitles and flexgate identified at the vendor.
    #[serde(default)]
    pub matched: u32,
    /// People who currently hold the access this object manages.
    #[serde(default)]
    pub granted: u32,
    /// Grants and revokes computed but not yet applied (always the full diff in mode Plan).
    #[serde(default)]
    pub pending: u32,
    /// People or entities that could not be matched (no email, no vendor user, ambiguous name).
    #[serde(default)]
    pub unmatched: u32,
    /// Members or entities whose last sync failed.
    #[serde(default)]
    pub errors: u32,
}

/// One specific, actionable problem with a member or an entity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// What the problem is about, e.g. `member ann@example.com` or `group OFFICERND_Lobby`.
    #[schemars(length(max = 256))]
    pub subject: String,
    /// What is wrong and what to do about it.
    #[schemars(length(max = 1024))]
    pub message: String,
}

/// Caps a problem list at [`MAX_PROBLEMS`], returning the kept problems and how many were dropped.
pub fn cap_problems(mut problems: Vec<Problem>) -> (Vec<Problem>, u32) {
    problems.sort_by(|a, b| a.subject.cmp(&b.subject).then(a.message.cmp(&b.message)));
    problems.dedup();
    let omitted = problems.len().saturating_sub(MAX_PROBLEMS);
    problems.truncate(MAX_PROBLEMS);
    (problems, u32::try_from(omitted).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_capped_and_counted() {
        let many = (0..75)
            .map(|i| Problem {
                subject: format!("member m{i:03}@example.com"),
                message: "no vendor user".into(),
            })
            .collect();
        let (kept, omitted) = cap_problems(many);
        assert_eq!(kept.len(), MAX_PROBLEMS);
        assert_eq!(omitted, 25);
        assert_eq!(kept[0].subject, "member m000@example.com");
    }
}
