"""Orbit-canonical enumeration vs generate-all-then-reduce, side by side in one run.

    python benchmarks/bench_enumeration.py [REPEATS]

SmFe12 (ThMn12 type) with a quarter of the 24 Fe sites -> Co: 134,596 placements, 5,069 orderings,
with both methods (the same orderings in the same order are asserted). Then the orbit-canonical
path alone on 20.6 million (6 Co + 2 Ti on 24 Fe) and 12.3 million placements (6 Co on the 48 Fe of
the 1x1x2 cell), with peak memory: the old path would hold a set of |G| x orderings byte strings
and visit every placement, so it is not run there.
"""

from __future__ import annotations

import math
import sys
import tracemalloc

import numpy as np

from benchmarks._table import Row, side_by_side, timed
from tansaku.screening.prototypes import build, get_prototype
from tansaku.screening.substitution import (
    Occupation,
    Substitution,
    Variant,
    _orderings_by_images,
    _resolve,
    _select_sites,
    distinct_orderings,
)
from tansaku.screening.symmetry import site_permutations, site_types


def smfe12(supercell=(1, 1, 1)):
    atoms, labels = build(get_prototype("ThMn12"), {"2a": "Sm"}, with_interstitials=True)
    atoms = atoms.repeat(supercell)
    labels = np.tile(labels, int(np.prod(supercell)))
    perms = site_permutations(atoms, site_types([f"{l}:{z}" for l, z in zip(labels, atoms.numbers)]))
    return atoms, labels, perms


def variant(*occupations):
    return Variant((Substitution("Fe", tuple(Occupation(e, k, False) for e, k in occupations)),))


def run(repeats: int = 3, quick: bool = False) -> list[Row]:
    atoms, labels, perms = smfe12()
    v = variant(("Co", 6))
    slots = [_resolve(s, _select_sites(s, atoms.numbers, labels, {"2b"}), "1x1x1") for s in v.substitutions]
    fast = lambda: distinct_orderings(atoms.numbers, labels, {"2b"}, v, perms)
    old = lambda: _orderings_by_images(atoms.numbers, slots, perms)
    got, want = fast(), old()
    assert len(got) == len(want) == 5069 and all(np.array_equal(a, b) for a, b in zip(got, want))
    base, fast_s = side_by_side(old, fast, 1 if quick else repeats)
    rows = [Row("3 enumerate", "SmFe12 Fe->Co 6/24: 134,596 placements", "all, then reduce", "orbit-canonical",
                base, fast_s, "5,069 orderings, same order")]
    for supercell, occupations in (((1, 1, 1), (("Co", 6), ("Ti", 2))), ((1, 1, 2), (("Co", 6),))):
        atoms, labels, perms = smfe12(supercell)
        v = variant(*occupations)
        n_fe = int((atoms.numbers == 26).sum())
        raw = math.prod(math.comb(n_fe - sum(k for _, k in occupations[:i]), k) for i, (_, k) in enumerate(occupations))
        def call(atoms=atoms, labels=labels, v=v, perms=perms):
            return distinct_orderings(atoms.numbers, labels, {"2b"}, v, perms, max_orderings=10**8)
        times = [timed(call) for _ in range(1 if quick else repeats)]
        tracemalloc.start()  # a separate run: tracing slows allocation
        count = len(call())
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        output = count * len(atoms) * atoms.numbers.itemsize / 2**20
        rate = sorted(raw / t / 1e6 for t in times)
        rows.append(Row("3 enumerate", f"SmFe12 {'x'.join(map(str, supercell))} Fe->{v.name.split(':')[1]}: "
                        f"{raw / 1e6:.1f}M placements", "(not run)", "orbit-canonical", [], times,
                        f"{count:,} orderings; {rate[len(rate) // 2]:.1f}M placements/s; peak Python memory "
                        f"{peak:.0f} MiB (the orderings themselves: {output:.0f} MiB)"))
    return rows


if __name__ == "__main__":
    import os

    from benchmarks._table import render

    print(render(run(int(sys.argv[1]) if len(sys.argv) > 1 else 3), os.cpu_count() or 1))
