"""Fingerprint-bucketed dedup vs pairwise StructureMatcher, side by side in one run.

    python benchmarks/bench_dedup.py [REPEATS]

12,000 candidates: 100 compositions (A4 B4 C8 on a 16-site fcc cell, 7 metals) x 100 random
decorations, plus a symmetry-equivalent copy (translated, sites permuted, 2 % strain) of every
fifth. Pairwise StructureMatcher is quadratic in the number of kept structures per composition and
takes hours at this size, so it runs on subsets (m = 5 and 10 decorations of each of 10
compositions), the fast path runs on the same subsets (ratio measured side by side, same kept ids
asserted) and on the full set; the pairwise time of the full set is extrapolated as
t(m=10) x (100/10)^2 x (100 compositions / 10), and the table says so.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
from ase.build import bulk

from benchmarks._table import Row, side_by_side, timed
from tansaku.screening.candidate import Candidate
from tansaku.screening.dedup import deduplicate, deduplicate_pairwise

METALS = ["Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt"]


def candidate_set(n_compositions: int, per_composition: int, seed: int = 0) -> list[Candidate]:
    rng = np.random.default_rng(seed)
    base = bulk("Cu", "fcc", a=3.8, cubic=True).repeat((2, 2, 1))
    compositions = [(a, b, c) for a, b in itertools.combinations(METALS, 2) for c in METALS if c not in (a, b)]
    out = []
    for a, b, c in compositions[:n_compositions]:
        for k in range(per_composition):
            atoms = base.copy()
            atoms.symbols = rng.permutation([a] * 4 + [b] * 4 + [c] * 8)
            out.append(Candidate(atoms, "bench"))
            if k % 5 == 4:  # a duplicate: translated, permuted, strained by 2 %
                twin = atoms[rng.permutation(len(atoms))]
                twin.translate(rng.random(3) * 4)
                twin.wrap()
                twin.set_cell(twin.cell @ np.diag(1 + rng.uniform(-0.02, 0.02, 3)), scale_atoms=True)
                out.append(Candidate(twin, "bench"))
    return out


def run(repeats: int = 3, quick: bool = False) -> list[Row]:
    rows = []
    per_group = []
    for m in (5,) if quick else (5, 10):
        subset = candidate_set(10, m)
        fast, slow = deduplicate(subset), deduplicate_pairwise(subset)
        assert [c.id for c in fast[0]] == [c.id for c in slow[0]] and fast[1] == slow[1]
        base, fast_s = side_by_side(lambda: deduplicate_pairwise(subset), lambda: deduplicate(subset),  # noqa: B023
                                    1 if quick else repeats)
        rows.append(Row("2 dedup", f"{len(subset):,} structures (10 compositions x {m})", "pairwise StructureMatcher",
                        "fingerprint + matcher", base, fast_s, f"same {len(fast[0])} kept, {fast[1]} removed"))
        per_group.append((m, float(np.median(base))))
    full = candidate_set(100, 100)
    times = [timed(lambda: deduplicate(full)) for _ in range(1 if quick else max(1, repeats // 2))]
    m, t = per_group[-1]
    extrapolated = t * (100 / m) ** 2 * (100 / 10)
    kept, removed = deduplicate(full)
    rows.append(Row("2 dedup", f"{len(full):,} structures (100 compositions x 100)",
                    "pairwise (extrapolated)", "fingerprint + matcher", [extrapolated] * len(times), times,
                    f"pairwise = t(m={m}) x ({100}/{m})^2 x 10, not run; {len(kept):,} kept, {removed} removed"))
    return rows


if __name__ == "__main__":
    import os

    from benchmarks._table import render

    print(render(run(int(sys.argv[1]) if len(sys.argv) > 1 else 3), os.cpu_count() or 1))
