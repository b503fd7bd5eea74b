"""Pareto-front speed: tansaku's blocked non-dominated filter vs a plain one-row-at-a-time cull.

    python benchmarks/bench_rank.py

Both are run on the same random 4-objective points in one process and must give the same front.
"""

from __future__ import annotations

import time

import numpy as np

from tansaku.screening.rank import non_dominated


def simple_cull(points: np.ndarray) -> np.ndarray:
    """Reference: visit rows by increasing sum, keep those no kept row dominates."""
    front: list[int] = []
    for i in np.argsort(points.sum(axis=1), kind="stable"):
        kept = points[front]
        if not front or not np.any(np.all(kept <= points[i], axis=1) & np.any(kept < points[i], axis=1)):
            front.append(int(i))
    return np.sort(np.array(front))


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"{'rows':>8s} {'front':>6s} {'blocked s':>10s} {'simple s':>9s} {'speed-up':>9s}")
    for n in (10_000, 100_000):
        points = rng.random((n, 4))
        t0 = time.perf_counter()
        fast = non_dominated(points)
        t1 = time.perf_counter()
        slow = simple_cull(points)
        t2 = time.perf_counter()
        assert np.array_equal(fast, slow)
        print(f"{n:8d} {len(fast):6d} {t1 - t0:10.3f} {t2 - t1:9.3f} {(t2 - t1) / (t1 - t0):8.1f}x")


if __name__ == "__main__":
    main()
