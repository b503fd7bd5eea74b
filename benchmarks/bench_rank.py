"""Pareto-front speed: tansaku's numba non-dominated sort vs the previous blocked numpy filter.

    python benchmarks/bench_rank.py [--big]

Both run on the same random 4-objective points in one process and must give the same fronts. The
reference is tansaku's earlier implementation (rows by increasing sum, blocks of 256 rows pruning every
later row with a vectorised dominance test), kept here only for the comparison. ``--big`` adds 10^6
rows (fronts 0-4; the numpy reference is extrapolated there, not run: it would take minutes).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from tansaku.screening.rank import pareto_ranks


def _dominated_by(front: np.ndarray, points: np.ndarray, chunk_elements: int = 1 << 22) -> np.ndarray:
    mask = np.zeros(len(points), dtype=bool)
    if not len(front) or not len(points):
        return mask
    step = max(1, chunk_elements // (len(front) * points.shape[1]))
    for lo in range(0, len(points), step):
        block = points[lo:lo + step, None, :]
        mask[lo:lo + step] = np.any(np.all(front <= block, axis=2) & np.any(front < block, axis=2), axis=1)
    return mask


def numpy_front(points: np.ndarray, block: int = 256) -> np.ndarray:
    remaining = np.argsort(points.sum(axis=1), kind="stable")
    front = []
    while len(remaining):
        head, remaining = remaining[:block], remaining[block:]
        head = head[~_dominated_by(points[head], points[head])]
        front.append(head)
        remaining = remaining[~_dominated_by(points[head], points[remaining])]
    return np.sort(np.concatenate(front))


def numpy_ranks(points: np.ndarray, max_fronts: int) -> np.ndarray:
    ranks = np.full(len(points), max_fronts, dtype=np.int64)
    remaining = np.arange(len(points))
    for index in range(max_fronts):
        front = remaining[numpy_front(points[remaining])]
        ranks[front] = index
        remaining = np.setdiff1d(remaining, front, assume_unique=True)
    return ranks


def main() -> None:
    rng = np.random.default_rng(0)
    pareto_ranks(rng.random((100, 4)))  # JIT (cached on disk after the first run)
    sizes = [10_000, 100_000] + ([1_000_000] if "--big" in sys.argv else [])
    print(f"{'rows':>9s} {'front 0':>8s} {'numba s':>8s} {'numpy s':>8s} {'speed-up':>9s}   (fronts 0-4, 4 objectives)")
    per_row = None
    for n in sizes:
        points = rng.random((n, 4))
        t0 = time.perf_counter()
        fast = pareto_ranks(points, 5)
        t1 = time.perf_counter()
        if n <= 100_000:
            slow = numpy_ranks(points, 5)
            reference = time.perf_counter() - t1
            assert np.array_equal(fast, slow), "numba and numpy fronts differ"
            per_row = reference / n
            note = ""
        else:  # grows at least linearly: a lower bound
            reference, note = per_row * n, " (numpy extrapolated, >=)"
        print(f"{n:9d} {int((fast == 0).sum()):8d} {t1 - t0:8.3f} {reference:8.2f} {reference / (t1 - t0):8.1f}x{note}")


if __name__ == "__main__":
    main()
