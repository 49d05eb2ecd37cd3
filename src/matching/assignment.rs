//! Maximum-weight one-to-one assignment over a sparse bipartite graph of candidate pairs, and how
//! clearly each assigned pair was chosen (its *regret*).
//!
//! The graph is split into connected components, each solved on its own:
//! - Exact solver: the Hungarian method with Dijkstra on the sparse graph (successive shortest
//!   augmenting paths with potentials). Every left node has a private "stay unassigned" option of
//!   weight 0, so the total weight is maximised without forcing anyone into a pair.
//! - Regret of an assigned pair: optimal total minus the optimal total without that pair, i.e. what
//!   the best alternative assignment loses. Computed exactly by re-solving components of up to
//!   [`EXACT_REGRET_MAX_LEFTS`] left nodes; in larger components it is approximated by the local
//!   gap `weight - best other weight of either node`.
//! - Fallback: a component where `left nodes × edges` exceeds [`EXACT_WORK_LIMIT`] (which bounds
//!   the exact solver's worst case) is assigned greedily by descending weight, a ½-approximation,
//!   with local-gap regrets. Real name lists practically never produce one at useful thresholds.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Fixed-point scale for weights: integer arithmetic keeps ties exact and potentials drift-free.
pub(crate) const SCALE: i64 = 1_000_000_000;

/// Above this `left nodes × edges` product a component is matched greedily (see module docs).
pub(crate) const EXACT_WORK_LIMIT: usize = 200_000_000;

/// Largest component (in left nodes) whose regrets are computed exactly by re-solving.
pub(crate) const EXACT_REGRET_MAX_LEFTS: usize = 64;

const NONE: usize = usize::MAX;

/// A candidate pair with weight in `(0, SCALE]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WeightedEdge {
    pub left: usize,
    pub right: usize,
    pub weight: i64,
}

/// A pair chosen by [`assign`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Assigned {
    pub left: usize,
    pub right: usize,
    pub weight: i64,
    /// How much the best assignment without this pair loses (see module docs); 0 for a tie.
    pub regret: i64,
}

/// Maximum-weight one-to-one assignment of `edges`, sorted by left node.
pub(crate) fn assign(
    left_count: usize,
    right_count: usize,
    edges: &[WeightedEdge],
) -> Vec<Assigned> {
    let mut assigned = Vec::new();
    for component in split_components(left_count, right_count, edges) {
        assigned.extend(solve_component(&component));
    }
    assigned.sort_unstable_by_key(|a| a.left);
    assigned
}

/// A connected component with compact local indices and the global indices they stand for.
struct Component {
    lefts: Vec<usize>,
    rights: Vec<usize>,
    edges: Vec<WeightedEdge>,
}

fn split_components(
    left_count: usize,
    right_count: usize,
    edges: &[WeightedEdge],
) -> Vec<Component> {
    let mut parent: Vec<usize> = (0..left_count + right_count).collect();
    fn root(parent: &mut [usize], mut node: usize) -> usize {
        while parent[node] != node {
            parent[node] = parent[parent[node]];
            node = parent[node];
        }
        node
    }
    for edge in edges {
        let a = root(&mut parent, edge.left);
        let b = root(&mut parent, left_count + edge.right);
        parent[a] = b;
    }
    let mut component_of_root = vec![NONE; left_count + right_count];
    let mut local_index = vec![NONE; left_count + right_count];
    let mut components: Vec<Component> = Vec::new();
    for edge in edges {
        let r = root(&mut parent, edge.left);
        if component_of_root[r] == NONE {
            component_of_root[r] = components.len();
            components.push(Component {
                lefts: Vec::new(),
                rights: Vec::new(),
                edges: Vec::new(),
            });
        }
        let component = &mut components[component_of_root[r]];
        let mut local = |node: usize, list: &mut Vec<usize>, global: usize| {
            if local_index[node] == NONE {
                local_index[node] = list.len();
                list.push(global);
            }
            local_index[node]
        };
        let left = local(edge.left, &mut component.lefts, edge.left);
        let right = local(left_count + edge.right, &mut component.rights, edge.right);
        component.edges.push(WeightedEdge {
            left,
            right,
            weight: edge.weight,
        });
    }
    components
}

fn solve_component(component: &Component) -> Vec<Assigned> {
    let (left_count, right_count) = (component.lefts.len(), component.rights.len());
    let edges = &component.edges;
    let exact = left_count.saturating_mul(edges.len()) <= EXACT_WORK_LIMIT;
    let matching = if exact {
        Hungarian::solve(left_count, right_count, edges)
    } else {
        greedy(left_count, right_count, edges)
    };
    let total: i64 = matching.iter().map(|&(_, w)| w).sum();
    let regret_of = |left: usize, right: usize, weight: i64| -> i64 {
        if exact && left_count <= EXACT_REGRET_MAX_LEFTS {
            let without: Vec<WeightedEdge> = edges
                .iter()
                .filter(|e| (e.left, e.right) != (left, right))
                .copied()
                .collect();
            let best_without: i64 = Hungarian::solve(left_count, right_count, &without)
                .iter()
                .map(|&(_, w)| w)
                .sum();
            total - best_without
        } else {
            let rival = edges
                .iter()
                .filter(|e| (e.left == left) != (e.right == right))
                .map(|e| e.weight)
                .max()
                .unwrap_or(0);
            weight - rival
        }
    };
    matching
        .iter()
        .enumerate()
        .filter(|(_, &(right, _))| right != NONE)
        .map(|(left, &(right, weight))| Assigned {
            left: component.lefts[left],
            right: component.rights[right],
            weight,
            regret: regret_of(left, right, weight),
        })
        .collect()
}

/// Greedy by descending weight; returns `(right or NONE, weight)` per left.
fn greedy(left_count: usize, right_count: usize, edges: &[WeightedEdge]) -> Vec<(usize, i64)> {
    let mut sorted = edges.to_vec();
    sorted.sort_unstable_by_key(|e| (Reverse(e.weight), e.left, e.right));
    let mut matching = vec![(NONE, 0); left_count];
    let mut right_taken = vec![false; right_count];
    for edge in sorted {
        if matching[edge.left].0 == NONE && !right_taken[edge.right] {
            matching[edge.left] = (edge.right, edge.weight);
            right_taken[edge.right] = true;
        }
    }
    matching
}

/// Minimises total cost `SCALE - weight` with every left node assigned either to a real right
/// node or to its private dummy right node (`right_count + left`, cost `SCALE`, i.e. weight 0).
/// Invariant: reduced costs `cost - left_potential - right_potential` are never negative, and are
/// zero on assigned edges.
struct Hungarian {
    adjacency: Vec<Vec<(usize, i64)>>,
    right_count: usize,
    left_potential: Vec<i64>,
    right_potential: Vec<i64>,
    match_of_left: Vec<usize>,
    match_of_right: Vec<usize>,
    // Per-search scratch space, reset through the `touched_*` lists.
    right_distance: Vec<i64>,
    right_parent: Vec<usize>,
    right_settled: Vec<bool>,
    left_distance: Vec<i64>,
    touched_rights: Vec<usize>,
    tree_lefts: Vec<usize>,
}

impl Hungarian {
    /// Optimal assignment: `(right or NONE, weight)` per left.
    fn solve(left_count: usize, right_count: usize, edges: &[WeightedEdge]) -> Vec<(usize, i64)> {
        let mut solver = Hungarian::new(left_count, right_count, edges);
        for left in 0..left_count {
            solver.augment_from(left);
        }
        (0..left_count)
            .map(|left| {
                let right = solver.match_of_left[left];
                let cost = solver.adjacency[left].iter().find(|&&(r, _)| r == right);
                match cost {
                    Some(&(_, cost)) if right < right_count => (right, SCALE - cost),
                    _ => (NONE, 0),
                }
            })
            .collect()
    }

    fn new(left_count: usize, right_count: usize, edges: &[WeightedEdge]) -> Self {
        let mut adjacency = vec![Vec::new(); left_count];
        for edge in edges {
            adjacency[edge.left].push((edge.right, SCALE - edge.weight));
        }
        let all_rights = right_count + left_count;
        Hungarian {
            adjacency,
            right_count,
            left_potential: vec![0; left_count],
            right_potential: vec![0; all_rights],
            match_of_left: vec![NONE; left_count],
            match_of_right: vec![NONE; all_rights],
            right_distance: vec![i64::MAX; all_rights],
            right_parent: vec![NONE; all_rights],
            right_settled: vec![false; all_rights],
            left_distance: vec![0; left_count],
            touched_rights: Vec::new(),
            tree_lefts: Vec::new(),
        }
    }

    /// Assigns `source` via a shortest augmenting path (Dijkstra on reduced costs).
    fn augment_from(&mut self, source: usize) {
        let mut heap = BinaryHeap::new();
        self.left_distance[source] = 0;
        self.tree_lefts.push(source);
        self.relax(source, &mut heap);

        let (end, end_distance) = loop {
            let Some(Reverse((distance, right))) = heap.pop() else {
                // Unreachable: the source's dummy is always free. Leave `source` unassigned.
                self.reset_scratch();
                return;
            };
            if self.right_settled[right] {
                continue;
            }
            self.right_settled[right] = true;
            let owner = self.match_of_right[right];
            if owner == NONE {
                break (right, distance);
            }
            self.left_distance[owner] = distance;
            self.tree_lefts.push(owner);
            self.relax(owner, &mut heap);
        };

        for &left in &self.tree_lefts {
            self.left_potential[left] += end_distance - self.left_distance[left];
        }
        for &right in &self.touched_rights {
            if self.right_settled[right] {
                self.right_potential[right] -= end_distance - self.right_distance[right];
            }
        }

        let mut right = end;
        loop {
            let left = self.right_parent[right];
            let previous = self.match_of_left[left];
            self.match_of_left[left] = right;
            self.match_of_right[right] = left;
            if left == source {
                break;
            }
            right = previous;
        }
        self.reset_scratch();
    }

    fn relax(&mut self, left: usize, heap: &mut BinaryHeap<Reverse<(i64, usize)>>) {
        let base = self.left_distance[left] - self.left_potential[left];
        let dummy = (self.right_count + left, SCALE);
        for index in 0..=self.adjacency[left].len() {
            let (right, cost) = self.adjacency[left].get(index).copied().unwrap_or(dummy);
            if self.right_settled[right] {
                continue;
            }
            let distance = base + cost - self.right_potential[right];
            if distance < self.right_distance[right] {
                if self.right_distance[right] == i64::MAX {
                    self.touched_rights.push(right);
                }
                self.right_distance[right] = distance;
                self.right_parent[right] = left;
                heap.push(Reverse((distance, right)));
            }
        }
    }

    fn reset_scratch(&mut self) {
        for &right in &self.touched_rights {
            self.right_distance[right] = i64::MAX;
            self.right_settled[right] = false;
            self.right_parent[right] = NONE;
        }
        self.touched_rights.clear();
        self.tree_lefts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(left: usize, right: usize, weight: i64) -> WeightedEdge {
        WeightedEdge {
            left,
            right,
            weight,
        }
    }

    /// Exhaustive optimum for tiny graphs.
    fn brute_force_best(left_count: usize, right_count: usize, edges: &[WeightedEdge]) -> i64 {
        fn go(left: usize, n: usize, used: &mut Vec<bool>, w: &[Vec<Option<i64>>]) -> i64 {
            if left == n {
                return 0;
            }
            let mut best = go(left + 1, n, used, w);
            for right in 0..used.len() {
                if let (false, Some(weight)) = (used[right], w[left][right]) {
                    used[right] = true;
                    best = best.max(weight + go(left + 1, n, used, w));
                    used[right] = false;
                }
            }
            best
        }
        let mut weights = vec![vec![None; right_count]; left_count];
        for e in edges {
            weights[e.left][e.right] = Some(e.weight);
        }
        go(0, left_count, &mut vec![false; right_count], &weights)
    }

    fn weights(assigned: &[Assigned]) -> i64 {
        assigned.iter().map(|a| a.weight).sum()
    }

    #[test]
    fn prefers_best_total_over_greedy() {
        // Greedy would take (0,0)=900 and strand left 1; the optimum is the cross.
        let edges = [edge(0, 0, 900), edge(0, 1, 850), edge(1, 0, 850)];
        let assigned = assign(2, 2, &edges);
        let pairs: Vec<_> = assigned.iter().map(|a| (a.left, a.right)).collect();
        assert_eq!(pairs, [(0, 1), (1, 0)]);
        // Without (0,1) the best is (0,0) alone: 900 instead of 1700.
        assert_eq!(assigned[0].regret, 800);
    }

    #[test]
    fn tie_has_zero_regret() {
        let assigned = assign(1, 2, &[edge(0, 0, 900), edge(0, 1, 900)]);
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].regret, 0);
    }

    #[test]
    fn matches_brute_force_on_pseudo_random_graphs() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let left_count = (next() % 6) as usize + 1;
            let right_count = (next() % 6) as usize + 1;
            let mut edges = Vec::new();
            for l in 0..left_count {
                for r in 0..right_count {
                    if next() % 3 == 0 {
                        edges.push(edge(l, r, (next() % 1000) as i64 + 1));
                    }
                }
            }
            let assigned = assign(left_count, right_count, &edges);
            let mut seen = vec![false; right_count];
            for a in &assigned {
                assert!(!seen[a.right], "right {} assigned twice", a.right);
                seen[a.right] = true;
                let without: Vec<_> = edges
                    .iter()
                    .filter(|e| (e.left, e.right) != (a.left, a.right))
                    .copied()
                    .collect();
                let best = brute_force_best(left_count, right_count, &edges);
                assert_eq!(
                    a.regret,
                    best - brute_force_best(left_count, right_count, &without)
                );
            }
            assert_eq!(
                weights(&assigned),
                brute_force_best(left_count, right_count, &edges)
            );
        }
    }
}
