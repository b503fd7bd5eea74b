"""Hull geometry that needs no pymatgen: the on-the-hull test and a binary's lower convex hull.

stability.py computes E_above_hull with pymatgen's PhaseDiagram; this is the light part that the
ranking's results, the report's counts and its hull figure share (importing pymatgen's phase diagram
module also loads matplotlib.pyplot, which a report must not).
"""

from __future__ import annotations

import numpy as np

ON_HULL_TOL = 1e-8  # eV/atom: rows this close to the hull (at a hull vertex) are "on the hull"


def is_on_hull(e_above_hull: np.ndarray) -> np.ndarray:
    """Rows on the convex hull by their stored energy above it: finite and at most ON_HULL_TOL (eV/atom).

    The one definition the ranking, the report's counts and its hull figure share."""
    e = np.asarray(e_above_hull, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(e) & (e <= ON_HULL_TOL)


def lower_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points on the lower convex hull of (x, y), sorted by x (Andrew's monotone chain).

    For a binary A(1-x)B(x) with y the formation energy, the vertices at y <= 0 are its stable phases."""
    order = np.lexsort((y, x))
    hull: list[int] = []
    for i in order:
        if hull and x[hull[-1]] == x[i]:
            continue  # same x: the lower point came first
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a])
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(int(i))
    return np.array(hull, dtype=np.int64)
