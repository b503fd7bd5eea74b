"""The numba EMT (``emt-fast``) gives ASE's EMT energies, forces and stress; its neighbour list is ASE's."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.neighborlist import neighbor_list

from tansaku.calculators import get_calculator
from tansaku.calculators.emt_fast import PARAMETERS, RC_LIST, EMTFast
from tansaku.screening.neighbors import neighbor_pairs

METALS = ["Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt"]
ALL = list(PARAMETERS)  # the 7 metals and H, C, N, O


def alloy(n_cells, elements, seed, pbc=True, strain=0.03, rattle=0.08, a=3.9):
    """Random fcc-based alloy of ``elements``: strained (random 3x3), rattled, ``4*prod(n_cells)`` atoms."""
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(n_cells)
    atoms.symbols = rng.choice(elements, len(atoms))
    atoms.set_cell(atoms.cell @ (np.eye(3) + strain * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.positions += rattle * rng.standard_normal(atoms.positions.shape)
    atoms.pbc = pbc
    return atoms


def assert_same_as_ase(atoms):
    ref, fast = atoms.copy(), atoms.copy()
    ref.calc, fast.calc = EMT(), EMTFast()
    n = len(atoms)
    assert abs(fast.get_potential_energy() - ref.get_potential_energy()) / n < 1e-9
    assert np.abs(fast.get_potential_energies() - ref.get_potential_energies()).max() < 1e-9
    assert np.abs(fast.get_forces() - ref.get_forces()).max() < 1e-8
    if atoms.cell.rank == 3:
        assert np.abs(fast.get_stress() - ref.get_stress()).max() < 1e-9  # eV/Å^3


@pytest.mark.parametrize("element", ALL)
def test_every_element_alone_periodic_strained_rattled(element):
    atoms = alloy((1, 1, 1), [element], seed=1, a=2.6 if element in "HCNO" else 3.9)
    assert_same_as_ase(atoms)


@pytest.mark.parametrize("seed", range(3))
def test_random_alloys_of_all_elements(seed):
    assert_same_as_ase(alloy((2, 2, 2), ALL, seed=seed))  # 32 atoms, every element present
    assert_same_as_ase(alloy((3, 2, 2), METALS, seed=seed + 10, strain=0.06))


@pytest.mark.parametrize("pbc", [False, (True, False, False), (True, True, False), (False, True, True)])
def test_clusters_slabs_and_wires(pbc):
    atoms = alloy((2, 2, 2), METALS, seed=3, pbc=pbc)
    assert_same_as_ase(atoms)


def test_molecule_without_cell_single_atom_and_isolated_atoms():
    cluster = alloy((2, 2, 1), METALS, seed=4, pbc=False)
    cluster.cell = np.zeros((3, 3))
    assert_same_as_ase(cluster)
    assert_same_as_ase(Atoms("Cu", pbc=False))
    assert_same_as_ase(Atoms("CuNi", positions=[[0, 0, 0], [0, 0, 12.0]], pbc=False))  # no neighbours: -E0 each
    assert_same_as_ase(Atoms("AuPt", positions=[[0, 0, 0], [0, 0, 2.7]], pbc=False))


def test_tiny_and_skewed_periodic_cells_use_many_images():
    assert_same_as_ase(bulk("Cu"))  # 1-atom primitive fcc cell, far smaller than the cutoff
    one = bulk("Pt", "fcc", a=3.95)
    one.set_cell(one.cell @ np.array([[1.0, 0.1, 0.0], [0.0, 1.05, 0.2], [0.1, 0.0, 0.97]]), scale_atoms=True)
    assert_same_as_ase(one)
    sheared = alloy((1, 1, 3), METALS, seed=5)
    sheared.set_cell(sheared.cell + np.array([[0, 0, 0], [2.5, 0, 0], [1.0, 1.5, 0]]), scale_atoms=False)
    assert_same_as_ase(sheared)
    outside = alloy((2, 1, 1), METALS, seed=6)
    outside.positions += 7.3 * np.array([1.0, -2.0, 3.0])  # atoms outside the cell: wrapped internally
    assert_same_as_ase(outside)


def test_256_atoms_and_the_registry_name():
    atoms = alloy((4, 4, 4), METALS, seed=7)
    assert_same_as_ase(atoms)
    calc = get_calculator("emt-fast")
    assert isinstance(calc, EMTFast)


@pytest.mark.slow
@pytest.mark.parametrize("shape, pbc", [((8, 8, 8), True), ((8, 8, 8), False), ((10, 10, 5), (True, True, False))])
def test_large_cells_up_to_2000_atoms(shape, pbc):
    assert_same_as_ase(alloy(shape, ALL, seed=8, pbc=pbc, strain=0.02))


@pytest.mark.parametrize("pbc", [True, (True, False, True), False])
def test_neighbour_list_matches_ase(pbc):
    """Half list of emt_fast vs ASE's neighbor_list (full list) on a small triclinic cell."""
    atoms = alloy((1, 2, 1), ["Cu"], seed=9, pbc=pbc, strain=0.1)
    atoms.set_cell(atoms.cell + np.array([[0, 0, 0], [1.2, 0, 0], [0.0, 0.7, 0]]), scale_atoms=True)
    i, j, d = neighbor_pairs(atoms, RC_LIST)
    ours = sorted([(a, b, *np.round(v, 8)) for a, b, v in zip(i, j, d)]
                  + [(b, a, *np.round(-v, 8)) for a, b, v in zip(i, j, d)])
    ri, rj, rd = neighbor_list("ijD", atoms, RC_LIST)
    theirs = sorted((a, b, *np.round(v, 8)) for a, b, v in zip(ri, rj, rd))
    assert len(ours) == len(theirs) > 0
    assert np.allclose(np.array(ours, float), np.array(theirs, float), atol=1e-7)


def test_relaxation_follows_ase_emt():
    """A few FIRE steps take the same path with both (forces agree at every step)."""
    from ase.optimize import FIRE

    start = alloy((2, 2, 2), METALS, seed=11)
    paths = []
    for calc in (EMT(), EMTFast()):
        atoms = start.copy()
        atoms.calc = calc
        FIRE(atoms, logfile=None).run(fmax=0.05, steps=15)
        paths.append(atoms.positions.copy())
    assert np.abs(paths[0] - paths[1]).max() < 1e-8


def test_workers_load_the_compiled_kernels_from_the_cache():
    """cache=True: a second fresh process finds every kernel in numba's cache and compiles nothing."""
    import os
    import subprocess
    import sys

    script = (
        "from ase.build import bulk\n"
        "from tansaku.calculators import emt_fast\n"
        "from tansaku.screening import neighbors\n"
        "atoms = bulk('Cu', cubic=True) * (2, 2, 2)\n"
        "atoms.calc = emt_fast.EMTFast()\n"
        "atoms.get_forces()\n"
        "kernels = (emt_fast.emt_kernel, neighbors.half_neighbor_list)\n"
        "print(sum(len(k.stats.cache_misses) for k in kernels), sum(len(k.stats.cache_hits) for k in kernels))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(2):  # the first run may compile and write the cache
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
    misses, hits = map(int, result.stdout.split())
    assert misses == 0 and hits == 2


def test_unsupported_element_is_named():
    atoms = bulk("Fe", cubic=True)
    atoms.calc = EMTFast()
    with pytest.raises(NotImplementedError, match="No EMT-potential for Fe"):
        atoms.get_potential_energy()
