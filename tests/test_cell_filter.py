"""tansaku's cell filter against ASE's FrechetCellFilter (the reference) and scipy's logm."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE
from scipy.linalg import logm

from tansaku.calculators.cell_filter import FastFrechetCellFilter, logm3


def _real_log_exists(matrix: np.ndarray) -> bool:
    eigenvalues = np.linalg.eigvals(matrix)
    return not np.any((np.abs(eigenvalues.imag) < 1e-9) & (eigenvalues.real <= 0))


@pytest.mark.parametrize("scale", [1e-4, 0.02, 0.1, 0.3, 0.8])
def test_logm3_equals_scipys_logm(scale):
    rng = np.random.default_rng(int(scale * 1e4))
    checked = 0
    for _ in range(200):
        matrix = np.eye(3) + scale * rng.standard_normal((3, 3))
        if not _real_log_exists(matrix):
            continue
        reference = logm(matrix).real
        assert np.abs(logm3(matrix) - reference).max() <= 1e-12 * max(1.0, np.abs(reference).max())
        checked += 1
    assert checked > 100


def test_logm3_of_a_rotation_and_a_large_stretch():
    angle = 2.5  # rad: close to a half-turn, many square roots
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    assert np.allclose(logm3(rotation), [[0, -angle, 0], [angle, 0, 0], [0, 0, 0]], atol=1e-12)
    assert np.allclose(logm3(np.diag([3.0, 0.5, 1.0])), np.diag(np.log([3.0, 0.5, 1.0])), atol=1e-13)


def test_logm3_refuses_a_matrix_without_a_real_logarithm():
    with pytest.raises(ValueError, match="negative real axis"):
        logm3(np.diag([-1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="finite 3x3"):
        logm3(np.full((3, 3), np.nan))


def _strained_alloy(seed: int, repeat=(2, 2, 1)):
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
    atoms.symbols[rng.choice(len(atoms), len(atoms) // 3, replace=False)] = "Pt"
    atoms.rattle(0.05, seed=seed)
    atoms.set_cell(atoms.cell @ (np.eye(3) + 0.05 * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.calc = EMT()
    return atoms, rng


@pytest.mark.parametrize("options", [{}, {"mask": [1, 1, 1, 0, 0, 0]}, {"scalar_pressure": 0.01},
                                     {"exp_cell_factor": 3.0}, {"hydrostatic_strain": True},
                                     {"constant_volume": True}])
@pytest.mark.parametrize("seed", range(4))
def test_forces_stress_and_variables_equal_ases_filter(seed, options):
    atoms, rng = _strained_alloy(seed)
    reference, fast = FrechetCellFilter(atoms, **options), FastFrechetCellFilter(atoms, **options)
    # deform after making the filters: F != I, as in a relaxation
    atoms.set_cell(atoms.cell @ (np.eye(3) + 0.04 * rng.standard_normal((3, 3))), scale_atoms=True)
    expected = reference.get_forces()
    assert np.abs(fast.get_forces() - expected).max() <= 1e-10
    assert np.abs(fast.stress - reference.stress).max() <= 1e-12
    assert np.abs(fast.get_positions() - reference.get_positions()).max() <= 1e-10
    if "mask" in options:  # a mask fixes strain components: no round trip (ASE's behaviour too)
        return
    # set_positions is ASE's own: the round trip through the variables restores the structure
    before = atoms.positions.copy(), atoms.cell.array.copy()
    fast.set_positions(fast.get_positions())
    assert np.allclose(atoms.positions, before[0], atol=1e-10) and np.allclose(atoms.cell.array, before[1], atol=1e-10)


def test_the_gradient_is_computed_once_per_state_and_handed_out_as_copies(monkeypatch):
    atoms, _ = _strained_alloy(7)
    fast = FastFrechetCellFilter(atoms)
    calls = []
    original = FastFrechetCellFilter._gradient
    monkeypatch.setattr(FastFrechetCellFilter, "_gradient", lambda self, f, s: calls.append(1) or original(self, f, s))
    first = fast.get_forces()
    first[:] = 0.0  # a caller that changes its copy must not change the memo
    second = fast.get_forces()
    assert len(calls) == 1 and np.abs(second).max() > 0
    atoms.positions[0] += 0.01  # a new state: computed again
    third = fast.get_forces()
    assert len(calls) == 2 and not np.allclose(third, second)


@pytest.mark.parametrize("optimizer", [FIRE, BFGS])
def test_relaxations_follow_ases_path(optimizer):
    for seed in range(3):
        atoms, _ = _strained_alloy(seed, repeat=(2, 1, 1))
        runs = []
        for cell_filter in (FrechetCellFilter, FastFrechetCellFilter):
            copy = atoms.copy()
            copy.calc = EMT()
            relaxation = optimizer(cell_filter(copy), logfile=None)
            converged = relaxation.run(fmax=0.01, steps=400)
            runs.append((converged, relaxation.nsteps, copy.get_potential_energy() / len(copy), copy.cell.cellpar()))
        (ok_ase, steps_ase, e_ase, cell_ase), (ok_fast, steps_fast, e_fast, cell_fast) = runs
        assert ok_ase and ok_fast
        assert abs(steps_fast - steps_ase) <= 2
        assert abs(e_fast - e_ase) <= 1e-8
        assert np.allclose(cell_fast, cell_ase, atol=1e-4)
