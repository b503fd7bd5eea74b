"""numba EMT (``emt-fast``) vs ASE's EMT and asap3's C++ EMT, side by side in one run.

    python benchmarks/bench_emt.py [REPEATS]

Single points (energy, forces, stress) on fresh 500-atom random fcc alloys (a new structure every
call, one calculator reused, as in a screening worker), a 2,048-atom one, and a 32-atom relaxation
with its optimizer (where ASE's own Python per step bounds the gain). asap3 is optional
(benchmark only): build it with ``scripts/bench/asap3.sh``; its default cutoff differs from ASE's, so
its energies differ by ~meV/atom and only its speed is compared.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
from ase.build import bulk
from threadpoolctl import threadpool_limits

from benchmarks._table import Row, side_by_side

METALS = ["Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt"]


def alloys(repeat: tuple[int, int, int], count: int, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        atoms = bulk("Cu", "fcc", a=3.8, cubic=True).repeat(repeat)
        atoms.symbols = rng.choice(METALS, len(atoms))
        atoms.rattle(0.05, seed=k)
        out.append(atoms)
    return out


def single_points(calc, structures):
    pool = itertools.cycle(structures)

    def call():
        atoms = next(pool).copy()
        atoms.calc = calc
        atoms.get_potential_energy()
        atoms.get_forces()
        atoms.get_stress()
    return call


def relaxation(make_calc, structures, steps: int = 60):
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    pool = itertools.cycle(structures)

    def call():
        atoms = next(pool).copy()
        atoms.calc = make_calc()
        with threadpool_limits(limits=1):  # the cell filter's 3x3 scipy calls: BLAS threads only add contention
            FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-6, steps=steps)
    return call


def run(repeats: int = 5, quick: bool = False) -> list[Row]:
    from ase.calculators.emt import EMT

    from tansaku.calculators.emt_fast import EMTFast

    rows = []
    small = alloys((5, 5, 5), 8)  # 500 atoms
    fast = single_points(EMTFast(), small)
    fast()  # load the compiled kernels (cache=True: no compilation after the first run on a machine)
    base, quick_s = side_by_side(single_points(EMT(), small), fast, repeats, inner=1 if quick else 3, fast_inner=15)
    rows.append(Row("1 emt", "500-atom single point", "ASE EMT", "emt-fast", base, quick_s, "target >= 30x"))
    try:
        from asap3 import EMT as AsapEMT
    except ImportError:
        rows.append(Row("1 emt", "500-atom single point", "asap3 EMT", "emt-fast", [float("nan")], [1.0],
                        "asap3 not installed (scripts/bench/asap3.sh)"))
    else:
        asap = single_points(AsapEMT(), small)
        asap()
        base, fast_s = side_by_side(asap, fast, repeats, inner=5 if quick else 15)
        rows.append(Row("1 emt", "500-atom single point", "asap3 EMT (C++)", "emt-fast", base, fast_s,
                        "target >= 0.67x (within 1.5x of asap3)"))
    relax_set = alloys((2, 2, 2), 4, seed=1)  # 32 atoms, as in a screening campaign
    base, fast_s = side_by_side(relaxation(EMT, relax_set), relaxation(EMTFast, relax_set), repeats)
    rows.append(Row("1 emt", "32-atom relaxation (FIRE + cell)", "ASE EMT", "emt-fast", base, fast_s,
                    "60 steps of FIRE on FrechetCellFilter: ASE's optimizer overhead included"))
    if not quick:
        big = alloys((8, 8, 8), 3)  # 2,048 atoms; distinct structures (an unchanged one is not recomputed)
        base, fast_s = side_by_side(single_points(EMT(), big), single_points(EMTFast(), big), max(2, repeats // 2),
                                    fast_inner=9)
        rows.append(Row("1 emt", "2,048-atom single point", "ASE EMT", "emt-fast", base, fast_s))
    return rows


if __name__ == "__main__":
    import os

    from benchmarks._table import render

    print(render(run(int(sys.argv[1]) if len(sys.argv) > 1 else 5), os.cpu_count() or 1))
