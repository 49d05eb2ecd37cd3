//! Name matching for site mapping: OfficeRnD floors → essensys floors, resources → spaces,
//! companies → occupiers by name similarity, and members → users by exact email.
//!
//! # How names are paired
//! 1. Explicit [`Override`]s are applied first and take their names out of automatic matching.
//! 2. Every remaining name is normalised ([`normalize`]) and identical normalised names are scored
//!    once. The score of two names is the normalised Levenshtein similarity of their normalised
//!    forms ([`similarity`]); names whose identifiers (numbers and single letters) differ score 0, so
//!    `Room 1` never pairs with `Room 10`, nor `Floor 2` with `Floor 12`, nor `Room A` with
//!    `Room B`, even if the exact counterpart is missing.
//! 3. Pairs scoring at least `threshold` (*strong* pairs) form a sparse graph; the one-to-one
//!    assignment with the best total score is chosen on it (maximum-weight bipartite matching).
//! 4. A chosen pair is accepted only if it was chosen clearly, by at least `margin` and by more
//!    than nothing (a tie is never resolved automatically, so input order does not matter):
//!    - its *regret* — the optimal total minus the optimal total without this pair — is at least
//!      `margin`: a close alternative assignment makes it ambiguous (for components above 64 left
//!      names, the gap to the best other strong pair of either name is used instead);
//!    - its score beats every *weak* pair of either name (scoring in `[threshold - margin,
//!      threshold)`) by at least `margin`, so a runner-up just under the threshold counts too.
//! 5. A left name without an accepted pair is *ambiguous* if it still has a free candidate scoring
//!    at least `threshold` (its free candidates down to `threshold - margin` are listed, best
//!    first, for a manual choice); otherwise it is *unmatched*.

mod assignment;
mod email;
mod normalize;
mod score;

use std::collections::HashMap;

use assignment::{assign, WeightedEdge, SCALE};
pub use email::{canonical_email, match_emails, EmailMatchError, EmailMatchReport, Person};
pub use normalize::{normalize, NormalizedName, ABBREVIATIONS, LEGAL_FORMS, NUMBER_WORDS};
pub use score::name_similarity;

/// Default minimum score for an automatic pair.
pub const DEFAULT_THRESHOLD: f64 = 0.8;
/// Default lead a pair needs over the runner-up of either name (about one edit in a 15-letter
/// name).
pub const DEFAULT_MARGIN: f64 = 0.05;

/// Tuning and manual decisions for [`match_names`].
#[derive(Debug, Clone, PartialEq)]
pub struct MatchOptions {
    /// Minimum score for an automatic pair, in `(0, 1]`.
    pub threshold: f64,
    /// Minimum lead over the runner-up, in `[0, threshold)`.
    pub margin: f64,
    /// Manual decisions; they always win.
    pub overrides: Vec<Override>,
}

impl Default for MatchOptions {
    fn default() -> Self {
        MatchOptions {
            threshold: DEFAULT_THRESHOLD,
            margin: DEFAULT_MARGIN,
            overrides: Vec::new(),
        }
    }
}

/// A manual decision for one left name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub left: String,
    pub target: OverrideTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverrideTarget {
    /// Pair with this right name.
    Right(String),
    /// Leave the left name unmapped ("Do not map").
    DoNotMap,
}

/// How a pair was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedVia {
    Automatic,
    Override,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub left: String,
    pub right: String,
    /// [`similarity`] of the two names (also reported for overrides).
    pub score: f64,
    pub via: MatchedVia,
}

/// A left name that needs a manual choice among `candidates` (best first).
#[derive(Debug, Clone, PartialEq)]
pub struct Ambiguity {
    pub left: String,
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub right: String,
    pub score: f64,
}

/// Outcome of [`match_names`]. Every list follows the input order of its side.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatchResult {
    pub pairs: Vec<Pair>,
    /// Left names with no usable candidate.
    pub unmatched_left: Vec<String>,
    /// Right names in no pair (including those offered as ambiguous candidates).
    pub unmatched_right: Vec<String>,
    pub ambiguous: Vec<Ambiguity>,
    /// Left names overridden with [`OverrideTarget::DoNotMap`].
    pub do_not_map: Vec<String>,
}

/// Which input list a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Left,
    Right,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Left => "left",
            Side::Right => "right",
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MatchError {
    #[error("threshold {0} is outside (0, 1]; use e.g. 0.8")]
    InvalidThreshold(f64),
    #[error("margin {margin} must be at least 0 and below the threshold {threshold}")]
    InvalidMargin { margin: f64, threshold: f64 },
    #[error("the {side} list contains {name:?} more than once; names must be unique")]
    DuplicateName { side: Side, name: String },
    #[error("override for {0:?}: no such name in the left list")]
    UnknownOverrideLeft(String),
    #[error("override {left:?} -> {right:?}: no such name in the right list")]
    UnknownOverrideRight { left: String, right: String },
    #[error("{0:?} has more than one override; keep one")]
    RepeatedOverride(String),
    #[error("overrides {first:?} and {second:?} both map to {right:?}; a name can be mapped once")]
    OverrideTargetTaken {
        right: String,
        first: String,
        second: String,
    },
}

/// Score of two raw names: see the module documentation and [`name_similarity`].
pub fn similarity(a: &str, b: &str) -> f64 {
    name_similarity(&normalize(a), &normalize(b))
}

/// Pairs `left` names with `right` names one-to-one, as described in the module documentation.
pub fn match_names<L: AsRef<str>, R: AsRef<str>>(
    left: &[L],
    right: &[R],
    options: &MatchOptions,
) -> Result<MatchResult, MatchError> {
    let left: Vec<&str> = left.iter().map(AsRef::as_ref).collect();
    let right: Vec<&str> = right.iter().map(AsRef::as_ref).collect();
    validate_options(options)?;
    let left_index = index_unique(&left, Side::Left)?;
    let right_index = index_unique(&right, Side::Right)?;

    // Overrides: `decided_*` marks names taken out of automatic matching.
    let mut decided_left = vec![false; left.len()];
    let mut decided_right = vec![false; right.len()];
    let mut override_pairs: Vec<(usize, Pair)> = Vec::new();
    let mut override_owner: HashMap<usize, &str> = HashMap::new();
    for rule in &options.overrides {
        let &l = left_index
            .get(rule.left.as_str())
            .ok_or_else(|| MatchError::UnknownOverrideLeft(rule.left.clone()))?;
        if std::mem::replace(&mut decided_left[l], true) {
            return Err(MatchError::RepeatedOverride(rule.left.clone()));
        }
        let OverrideTarget::Right(target) = &rule.target else {
            continue;
        };
        let &r =
            right_index
                .get(target.as_str())
                .ok_or_else(|| MatchError::UnknownOverrideRight {
                    left: rule.left.clone(),
                    right: target.clone(),
                })?;
        if let Some(first) = override_owner.insert(r, &rule.left) {
            return Err(MatchError::OverrideTargetTaken {
                right: target.clone(),
                first: first.to_owned(),
                second: rule.left.clone(),
            });
        }
        decided_right[r] = true;
        override_pairs.push((
            l,
            Pair {
                left: rule.left.clone(),
                right: target.clone(),
                score: similarity(&rule.left, target),
                via: MatchedVia::Override,
            },
        ));
    }

    let near = near_edges(&left, &right, &decided_left, &decided_right, options);
    let threshold = to_weight(options.threshold);
    let margin = to_weight(options.margin);
    let strong: Vec<WeightedEdge> = near
        .iter()
        .filter(|e| e.weight >= threshold)
        .copied()
        .collect();
    let mut best_weak_of_left = vec![0; left.len()];
    let mut best_weak_of_right = vec![0; right.len()];
    for edge in near.iter().filter(|e| e.weight < threshold) {
        best_weak_of_left[edge.left] = best_weak_of_left[edge.left].max(edge.weight);
        best_weak_of_right[edge.right] = best_weak_of_right[edge.right].max(edge.weight);
    }
    let mut accepted: Vec<Option<(usize, i64)>> = vec![None; left.len()];
    for pair in assign(left.len(), right.len(), &strong) {
        let weak_rival = best_weak_of_left[pair.left].max(best_weak_of_right[pair.right]);
        let lead = pair.regret.min(pair.weight - weak_rival);
        if lead > 0 && lead >= margin {
            accepted[pair.left] = Some((pair.right, pair.weight));
            decided_right[pair.right] = true;
        }
    }

    let mut candidates: Vec<Vec<(usize, i64)>> = vec![Vec::new(); left.len()];
    for edge in &near {
        if accepted[edge.left].is_none() && !decided_right[edge.right] {
            candidates[edge.left].push((edge.right, edge.weight));
        }
    }

    let mut result = MatchResult::default();
    override_pairs.sort_unstable_by_key(|(index, _)| *index);
    let mut override_pairs = override_pairs.into_iter().peekable();
    for (l, name) in left.iter().enumerate() {
        if let Some((_, pair)) = override_pairs.next_if(|(index, _)| *index == l) {
            result.pairs.push(pair);
        } else if decided_left[l] {
            result.do_not_map.push(name.to_string());
        } else if let Some((r, weight)) = accepted[l] {
            result.pairs.push(Pair {
                left: name.to_string(),
                right: right[r].to_owned(),
                score: from_weight(weight),
                via: MatchedVia::Automatic,
            });
        } else if candidates[l].iter().any(|&(_, weight)| weight >= threshold) {
            let mut list = std::mem::take(&mut candidates[l]);
            list.sort_unstable_by_key(|&(r, weight)| (std::cmp::Reverse(weight), r));
            result.ambiguous.push(Ambiguity {
                left: name.to_string(),
                candidates: list
                    .into_iter()
                    .map(|(r, weight)| Candidate {
                        right: right[r].to_owned(),
                        score: from_weight(weight),
                    })
                    .collect(),
            });
        } else {
            result.unmatched_left.push(name.to_string());
        }
    }
    result.unmatched_right = right
        .iter()
        .zip(&decided_right)
        .filter(|(_, &decided)| !decided)
        .map(|(name, _)| name.to_string())
        .collect();
    Ok(result)
}

fn validate_options(options: &MatchOptions) -> Result<(), MatchError> {
    let MatchOptions {
        threshold, margin, ..
    } = *options;
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err(MatchError::InvalidThreshold(threshold));
    }
    if !(margin >= 0.0 && margin < threshold) {
        return Err(MatchError::InvalidMargin { margin, threshold });
    }
    Ok(())
}

fn index_unique<'a>(names: &[&'a str], side: Side) -> Result<HashMap<&'a str, usize>, MatchError> {
    let mut index = HashMap::with_capacity(names.len());
    for (position, &name) in names.iter().enumerate() {
        if index.insert(name, position).is_some() {
            return Err(MatchError::DuplicateName {
                side,
                name: name.to_owned(),
            });
        }
    }
    Ok(index)
}

/// All pairs of undecided names scoring at least `threshold - margin`, with integer weights.
/// Names that normalise identically are scored once and the pair expanded afterwards.
fn near_edges(
    left: &[&str],
    right: &[&str],
    decided_left: &[bool],
    decided_right: &[bool],
    options: &MatchOptions,
) -> Vec<WeightedEdge> {
    let (left_unique, left_members) = unique_normalized(left, decided_left);
    let (right_unique, right_members) = unique_normalized(right, decided_right);
    let cutoff = options.threshold - options.margin;
    let mut edges = Vec::new();
    for pair in score::scored_pairs(&left_unique, &right_unique, cutoff) {
        let weight = to_weight(pair.score);
        for &l in &left_members[pair.left] {
            for &r in &right_members[pair.right] {
                edges.push(WeightedEdge {
                    left: l,
                    right: r,
                    weight,
                });
            }
        }
    }
    edges.sort_unstable_by_key(|e| (e.left, e.right));
    edges
}

/// Distinct normalised forms of the undecided names, and which names share each form.
fn unique_normalized(names: &[&str], decided: &[bool]) -> (Vec<NormalizedName>, Vec<Vec<usize>>) {
    let mut position: HashMap<NormalizedName, usize> = HashMap::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (index, name) in names.iter().enumerate().filter(|(i, _)| !decided[*i]) {
        let slot = *position.entry(normalize(name)).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[slot].push(index);
    }
    let mut unique = vec![None; members.len()];
    for (name, slot) in position {
        unique[slot] = Some(name);
    }
    (unique.into_iter().flatten().collect(), members)
}

fn to_weight(score: f64) -> i64 {
    (score * SCALE as f64).round() as i64
}

fn from_weight(weight: i64) -> f64 {
    weight as f64 / SCALE as f64
}
