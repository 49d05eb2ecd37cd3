"""Reference timing: RapidFuzz cdist with Levenshtein.normalized_similarity on two name files.

Usage: python3 rapidfuzz_cdist.py LEFT_FILE RIGHT_FILE
Prints wall time of the cdist call and the process's peak RSS.
"""
import resource
import sys
import time

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein


def read_names(path):
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def main():
    left, right = read_names(sys.argv[1]), read_names(sys.argv[2])
    started = time.perf_counter()
    scores = process.cdist(left, right, scorer=Levenshtein.normalized_similarity, workers=1)
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"rapidfuzz cdist {len(left)} x {len(right)}: {elapsed:.3f} s wall, "
        f"matrix {scores.nbytes // 1024} KiB, peak RSS {peak_kib} KiB"
    )


if __name__ == "__main__":
    main()
