//! Similarity score between normalised names, and the pruned all-pairs search for candidate pairs.
//!
//! `sim(a, b) = 1 - lev(a, b) / max(len(a), len(b))`, lengths in Unicode scalar values, `lev` the
//! uniform-cost Levenshtein distance; two empty strings score 1. This is exactly RapidFuzz's
//! `Levenshtein.normalized_similarity`. The score of two names is
//! `max(sim(text_a, text_b), sim(sorted_a, sorted_b))` over their normalised forms (the second term
//! forgives reordered words), and 0 when their identifiers (numbers, single letters) differ or either name normalises to nothing.

use std::collections::HashMap;

use rapidfuzz::distance::levenshtein;

use super::normalize::NormalizedName;

/// Tolerance for turning a similarity cutoff into an edit budget (guards `0.2 * 10 = 1.999...`).
const EPSILON: f64 = 1e-9;

/// Score of two normalised names as defined in the module documentation.
pub fn name_similarity(a: &NormalizedName, b: &NormalizedName) -> f64 {
    if a.text.is_empty() || b.text.is_empty() || a.identifiers != b.identifiers {
        return 0.0;
    }
    let plain = levenshtein::normalized_similarity(a.text.chars(), b.text.chars());
    let reordered =
        levenshtein::normalized_similarity(a.sorted_text.chars(), b.sorted_text.chars());
    plain.max(reordered)
}

/// A pair of positions in the two input slices of [`scored_pairs`] with its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ScoredPair {
    pub left: usize,
    pub right: usize,
    pub score: f64,
}

/// A name prepared for repeated comparison.
struct Prepared {
    text: Vec<char>,
    /// `None` when the sorted form equals `text`, which saves the second comparison.
    sorted: Option<Vec<char>>,
}

impl Prepared {
    fn new(name: &NormalizedName) -> Self {
        let text: Vec<char> = name.text.chars().collect();
        let sorted = (name.sorted_text != name.text).then(|| name.sorted_text.chars().collect());
        Prepared { text, sorted }
    }

    fn sorted_or_text(&self) -> &[char] {
        self.sorted.as_deref().unwrap_or(&self.text)
    }
}

/// What the scan over a bucket reads per right name: small and contiguous, so it stays in cache.
#[derive(Clone, Copy)]
struct Summary {
    /// Character histogram folded into 32 buckets (all zero for names over 255 characters, which
    /// keeps the bound below valid without overflow).
    bag: [u8; 32],
    len: u32,
    index: u32,
}

impl Summary {
    fn new(prepared: &Prepared, index: usize) -> Self {
        let mut bag = [0u8; 32];
        if prepared.text.len() <= usize::from(u8::MAX) {
            for &c in &prepared.text {
                bag[(c as usize) % 32] += 1;
            }
        }
        Summary {
            bag,
            len: prepared.text.len() as u32,
            index: index as u32,
        }
    }

    /// Bag distance `max(|A \ B|, |B \ A|)` of the bucketed character multisets, computed as
    /// `(sum |a_i - b_i| + |len_a - len_b|) / 2`. Never more than the Levenshtein distance: one
    /// edit changes each side of the multiset difference by at most one.
    fn bag_distance(&self, other: &Summary) -> u32 {
        let differences: u32 = self
            .bag
            .iter()
            .zip(&other.bag)
            .map(|(&a, &b)| u32::from(a.abs_diff(b)))
            .sum();
        (differences + self.len.abs_diff(other.len)) / 2
    }
}

/// Every pair `(left[i], right[j])` whose [`name_similarity`] is at least `cutoff` (`0 < cutoff <= 1`).
///
/// All-pairs in effect, but only pairs that can reach the cutoff are compared:
/// - names are bucketed by their identifiers (different identifiers never match);
/// - `sim >= c` implies `|len_a - len_b| <= (1 - c) * max(len_a, len_b)`, so each left name only
///   scans the length window of its bucket (rights sorted by length);
/// - the bag distance (a lower bound of Levenshtein) rejects about 99% of the rest with one pass
///   over 32 bytes;
/// - survivors go to RapidFuzz's bit-parallel Levenshtein (Hyyrö 2003, pattern bit-vectors built
///   once per left name) with the edit budget as score cutoff, so it exits early too.
pub(crate) fn scored_pairs(
    left: &[NormalizedName],
    right: &[NormalizedName],
    cutoff: f64,
) -> Vec<ScoredPair> {
    let right_prepared: Vec<Prepared> = right.iter().map(Prepared::new).collect();
    let mut buckets: HashMap<&[String], Vec<Summary>> = HashMap::new();
    for (index, name) in right.iter().enumerate() {
        if !name.text.is_empty() {
            let summary = Summary::new(&right_prepared[index], index);
            buckets.entry(&name.identifiers).or_default().push(summary);
        }
    }
    for members in buckets.values_mut() {
        members.sort_by_key(|summary| summary.len);
    }
    let longest_name = right_prepared
        .iter()
        .map(|p| p.text.len())
        .max()
        .unwrap_or(0);
    let longest_name = longest_name.max(left.iter().map(|n| n.text.len()).max().unwrap_or(0));
    // Edit budget by the longer length: the most edits that still reach the cutoff.
    let budget_for: Vec<u32> = (0..=longest_name)
        .map(|len| ((1.0 - cutoff) * len as f64 + EPSILON).floor() as u32)
        .collect();

    let mut pairs = Vec::new();
    for (left_index, name) in left.iter().enumerate() {
        let Some(bucket) = buckets.get(name.identifiers.as_slice()) else {
            continue;
        };
        if name.text.is_empty() {
            continue;
        }
        let query = Prepared::new(name);
        let query_summary = Summary::new(&query, left_index);
        let len = query.text.len() as f64;
        let shortest = (len * cutoff - EPSILON).ceil() as u32;
        let longest = (len / cutoff + EPSILON).floor() as u32;
        let start = bucket.partition_point(|s| s.len < shortest);
        let end = bucket.partition_point(|s| s.len <= longest);

        let plain = levenshtein::BatchComparator::new(query.text.iter().copied());
        let mut reordered = None;
        for summary in &bucket[start..end] {
            let max_len = query_summary.len.max(summary.len);
            let budget = budget_for[max_len as usize];
            if query_summary.bag_distance(summary) > budget {
                continue;
            }
            let other = &right_prepared[summary.index as usize];
            let budget = budget as usize;
            let args = levenshtein::Args::default().score_cutoff(budget);
            let mut best = plain.distance_with_args(other.text.iter().copied(), &args);
            if best != Some(0) && (query.sorted.is_some() || other.sorted.is_some()) {
                let budget = best.map_or(budget, |d| d - 1);
                let comparator = reordered.get_or_insert_with(|| {
                    levenshtein::BatchComparator::new(query.sorted_or_text().iter().copied())
                });
                let args = levenshtein::Args::default().score_cutoff(budget);
                if let Some(d) =
                    comparator.distance_with_args(other.sorted_or_text().iter().copied(), &args)
                {
                    best = Some(d);
                }
            }
            if let Some(distance) = best {
                pairs.push(ScoredPair {
                    left: left_index,
                    right: summary.index as usize,
                    score: 1.0 - distance as f64 / f64::from(max_len),
                });
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::super::normalize::normalize;
    use super::*;

    fn names(list: &[&str]) -> Vec<NormalizedName> {
        list.iter().map(|n| normalize(n)).collect()
    }

    #[test]
    fn similarity_follows_documented_formula() {
        let score = name_similarity(&normalize("kitten"), &normalize("sitting"));
        assert!((score - (1.0 - 3.0 / 7.0)).abs() < 1e-12);
        assert_eq!(
            name_similarity(&normalize("Room 1"), &normalize("Room 10")),
            0.0
        );
        assert_eq!(
            name_similarity(&normalize("Blue Room"), &normalize("Room, Blue")),
            1.0
        );
        assert_eq!(name_similarity(&normalize("!!!"), &normalize("???")), 0.0);
    }

    #[test]
    fn pruned_search_equals_brute_force() {
        let left = names(&[
            "Meeting Room Blue",
            "Acme Ltd",
            "Floor 2",
            "Kitchen",
            "Zeta Labs",
            "Blue Room",
            "Café",
        ]);
        let right = names(&[
            "Mtg Rm Blue",
            "ACME",
            "2nd floor",
            "Kitchn",
            "Beta Labs",
            "Room Blue",
            "Cafe",
            "Acme Labs",
        ]);
        for cutoff in [0.5, 0.75, 0.8, 0.95, 1.0] {
            let fast = scored_pairs(&left, &right, cutoff);
            let mut slow = Vec::new();
            for (l, a) in left.iter().enumerate() {
                for (r, b) in right.iter().enumerate() {
                    let score = name_similarity(a, b);
                    if score >= cutoff - EPSILON {
                        slow.push((l, r));
                    }
                }
            }
            let mut fast_pairs: Vec<_> = fast.iter().map(|p| (p.left, p.right)).collect();
            fast_pairs.sort_unstable();
            assert_eq!(fast_pairs, slow, "cutoff {cutoff}");
            for p in &fast {
                let expected = name_similarity(&left[p.left], &right[p.right]);
                assert!((p.score - expected).abs() < 1e-12);
            }
        }
    }
}
