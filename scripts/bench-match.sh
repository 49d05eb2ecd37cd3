#!/usr/bin/env bash
# Times `flexgate match` against RapidFuzz's cdist on the same 10,000 + 10,000 generated names.
#
#   scripts/bench-match.sh
#
# Env: MATCH_CMD (command taking --left/--right/--output; default: `flexgate match`, built here),
#      BENCH_DIR (where the name files and outputs go; default: a new temp dir),
#      FLEXGATE_BENCH_QUICK=1 (1,000 + 1,000 names).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_DIR=${BENCH_DIR:-$(mktemp -d)}
if [[ -z "${MATCH_CMD:-}" ]]; then
    cargo build --release --quiet --bin flexgate
    MATCH_CMD="target/release/flexgate match"
fi

echo "== in-process benchmark (also writes the name files to $BENCH_DIR)"
FLEXGATE_BENCH_NAMES_DIR="$BENCH_DIR" cargo bench --quiet --bench match

# Runs "$@" and prints wall time and peak RSS.
measure() {
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f "wall %e s, peak RSS %M KiB" "$@"
    else
        local start=$SECONDS
        "$@"
        echo "wall ~$((SECONDS - start)) s (install GNU time for peak RSS)" >&2
    fi
}

echo "== $MATCH_CMD --output json"
# shellcheck disable=SC2086 # MATCH_CMD may be "binary subcommand"
measure $MATCH_CMD --left "$BENCH_DIR/left.txt" --right "$BENCH_DIR/right.txt" --output json \
    >"$BENCH_DIR/match.json"
echo "output: $BENCH_DIR/match.json ($(wc -c <"$BENCH_DIR/match.json") bytes)"

echo "== RapidFuzz process.cdist(scorer=Levenshtein.normalized_similarity, workers=1)"
if ! python3 -c "import rapidfuzz, numpy" 2>/dev/null; then
    python3 -m pip install --quiet rapidfuzz numpy
fi
measure python3 scripts/rapidfuzz_cdist.py "$BENCH_DIR/left.txt" "$BENCH_DIR/right.txt"
