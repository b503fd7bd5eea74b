"""Issue 11 item 7, ranking at scale, side by side (``python -m benchmarks rank``).

    python benchmarks/bench_rank.py [--quick] [--big]

- **hull**: formation energies and E_above_hull of candidates in the quaternary Sm-Fe-Co-Ti (random
  compositions of 26-atom cells, made-up energies), ``screening.stability.stability`` (pymatgen's
  PhaseDiagram on the lowest row of each composition, then one vectorised facet search) vs pymatgen
  alone (a PhaseDiagram on every row, ``get_e_above_hull`` per row) on a subset, same values asserted;
  then ``stability`` on 10^6 rows, with pymatgen's time extrapolated linearly from the subset (it grows
  at least linearly; not run: it would take hours), and the table says so.
- **Pareto**: fronts 0-4 of random 4-objective points, tansaku's numba non-dominated sort
  (``screening/pareto.py``) vs a blocked numpy dominance filter (tansaku's earlier implementation, kept
  here only for the comparison) on 10^4 (and 10^5) rows, same fronts asserted; then the numba sort on
  10^6 rows, the numpy filter extrapolated linearly from 10^5 (a lower bound), and the table says so.

``--quick``: smaller subsets and the large case at 10^5 rows (``--big`` forces 10^6 rows).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: this checkout's tansaku and benchmarks package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._table import Row, side_by_side, timed  # noqa: E402
from tansaku.screening.rank import pareto_ranks  # noqa: E402

ELEMENTS = ["Sm", "Fe", "Co", "Ti"]
MU = np.array([-4.7, -8.4, -7.1, -7.9])  # eV/atom of the elemental references (made up)
FRONTS = 5


# ---------------------------------------------------------------------------------------------- hull

def quaternary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows (composition counts over ELEMENTS, total energies in eV): one elemental reference of
    each element, then random compositions of 8-20-atom cells with formation energies in [-0.35, 0.15)
    eV/atom (~9,400 distinct reduced compositions at 10^6 rows)."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(rng.integers(8, 21, n), rng.dirichlet(np.full(4, 0.7), n))
    counts[:4] = 2 * np.eye(4, dtype=np.int64)
    natoms = counts.sum(axis=1)
    formation = rng.uniform(-0.35, 0.15, n)
    formation[:4] = 0.0
    return counts.astype(np.int64), counts @ MU + formation * natoms


def _stability(counts: np.ndarray, energies: np.ndarray) -> np.ndarray:
    from tansaku.screening.stability import stability

    n = len(energies)
    return stability(ELEMENTS, counts, energies, ["emt"] * n, [f"r{i}" for i in range(n)]).e_above_hull


def _pymatgen(counts: np.ndarray, energies: np.ndarray) -> np.ndarray:
    """pymatgen alone: a PhaseDiagram of every row, then E_above_hull row by row."""
    from pymatgen.analysis.phase_diagram import PhaseDiagram
    from pymatgen.core import Composition
    from pymatgen.entries.computed_entries import ComputedEntry

    entries = [ComputedEntry(Composition(dict(zip(ELEMENTS, c.tolist()))), float(e)) for c, e in zip(counts, energies)]
    pd = PhaseDiagram(entries)
    return np.array([pd.get_e_above_hull(e, allow_negative=True) for e in entries])


def _hull_rows(repeats: int, quick: bool, big: int) -> list[Row]:
    m = 500 if quick else 2_000
    counts, energies = quaternary(m)
    assert np.allclose(_stability(counts, energies), _pymatgen(counts, energies), atol=1e-6, rtol=0)
    base, fast = side_by_side(lambda: _pymatgen(counts, energies), lambda: _stability(counts, energies), repeats)
    rows = [Row("rank", f"hull: {m:,} rows, quaternary Sm-Fe-Co-Ti", "pymatgen PhaseDiagram", "stability()",
                base, fast, "same E_above_hull (1e-6 eV/atom)")]
    counts, energies = quaternary(big, seed=1)
    compositions = len(np.unique(counts // np.gcd.reduce(counts, axis=1)[:, None], axis=0))
    times = [timed(lambda: _stability(counts, energies)) for _ in range(max(1, repeats // 2))]
    per_row = float(np.median(base)) / m
    rows.append(Row("rank", f"hull: {big:,} rows ({compositions:,} compositions)", "pymatgen (extrapolated)",
                    "stability()", [per_row * big] * len(times), times,
                    f"pymatgen = t({m:,}) x {big // m}, not run"))
    return rows


# -------------------------------------------------------------------------------------------- Pareto

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
    """Rows of the first Pareto front: rows by increasing sum, blocks of ``block`` rows pruning every
    later row with a vectorised dominance test (tansaku's earlier implementation)."""
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


def _pareto_rows(repeats: int, quick: bool, big: int) -> list[Row]:
    rng = np.random.default_rng(0)
    pareto_ranks(rng.random((100, 4)))  # JIT (cached on disk after the first run), not timed
    rows, per_row, m = [], 0.0, 0
    for m in (10_000,) if quick else (10_000, 100_000):
        points = rng.random((m, 4))
        assert np.array_equal(pareto_ranks(points, FRONTS), numpy_ranks(points, FRONTS)), "fronts differ"
        base, fast = side_by_side(lambda: numpy_ranks(points, FRONTS), lambda: pareto_ranks(points, FRONTS),  # noqa: B023
                                  repeats)
        rows.append(Row("rank", f"Pareto fronts 0-4: {m:,} rows x 4 objectives", "numpy blocked filter",
                        "numba ENS-SS", base, fast, f"same fronts; front 0: {int((pareto_ranks(points, 1) == 0).sum())} rows"))
        per_row = float(np.median(base)) / m
    points = rng.random((big, 4))
    times = [timed(lambda: pareto_ranks(points, FRONTS)) for _ in range(max(1, repeats // 2))]
    front0 = int((pareto_ranks(points, 1) == 0).sum())
    rows.append(Row("rank", f"Pareto fronts 0-4: {big:,} rows x 4 objectives", "numpy (extrapolated)", "numba ENS-SS",
                    [per_row * big] * len(times), times,
                    f"numpy = t({m:,}) x {big // m} (a lower bound), not run; front 0: {front0} rows"))
    return rows


def run(repeats: int = 3, quick: bool = False) -> list[Row]:
    big = 1_000_000 if (not quick or "--big" in sys.argv) else 100_000
    return _hull_rows(repeats, quick, big) + _pareto_rows(repeats, quick, big)


if __name__ == "__main__":
    import os

    from benchmarks._table import render

    print(render(run(1 if "--quick" in sys.argv else 3, "--quick" in sys.argv), os.cpu_count() or 1))
