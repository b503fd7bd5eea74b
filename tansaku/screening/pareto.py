"""Pareto fronts by efficient non-dominated sorting (ENS-SS), compiled with numba.

Zhang et al., "An efficient approach to non-dominated sorting for evolutionary multi-objective
optimization", IEEE Trans. Evol. Comput. 19, 201 (2015): visit the points in lexicographic order (a
dominator always comes first) and put each one in the first front none of whose members dominates it.
Only the first ``max_fronts`` fronts are built; the rest get ``max_fronts``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _dominates(points: np.ndarray, j: int, i: int) -> bool:
    """Whether row ``j`` dominates row ``i`` (all objectives minimised)."""
    strictly = False
    for c in range(points.shape[1]):
        if points[j, c] > points[i, c]:
            return False
        if points[j, c] < points[i, c]:
            strictly = True
    return strictly


@njit(cache=True)
def _sorted_front_indices(points: np.ndarray, max_fronts: int) -> np.ndarray:
    """Front of each row of ``points``, which are in lexicographic order."""
    n = points.shape[0]
    fronts = np.full(n, max_fronts, np.int64)
    members = np.empty((max_fronts, n), np.int64)
    sizes = np.zeros(max_fronts, np.int64)
    for i in range(n):
        for f in range(max_fronts):
            dominated = False
            for k in range(sizes[f] - 1, -1, -1):  # the latest members are the likeliest dominators
                if _dominates(points, members[f, k], i):
                    dominated = True
                    break
            if not dominated:
                fronts[i] = f
                members[f, sizes[f]] = i
                sizes[f] += 1
                break
    return fronts


def front_indices(points: np.ndarray, max_fronts: int = 5) -> np.ndarray:
    """Front index of each row of ``points`` (N, M), all objectives minimised: 0 = Pareto front; rows
    beyond the first ``max_fronts`` fronts get ``max_fronts``. Points must be finite."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"points must be an (N, M) array, got shape {points.shape}")
    if len(points) == 0 or max_fronts < 1:
        return np.full(len(points), max(max_fronts, 0), np.int64)
    order = np.lexsort(points.T[::-1]) if points.shape[1] else np.arange(len(points))
    fronts = np.empty(len(points), np.int64)
    fronts[order] = _sorted_front_indices(points[order], max_fronts)
    return fronts
