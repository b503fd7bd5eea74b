"""Magnetocrystalline anisotropy K1 with spin–orbit coupling: GPAW's non-self-consistent spin–orbit.

Method (GPAW, ``gpaw.spinorbit.soc_eigenstates``; Olsen, PRB 94, 235106 (2016) for the approach): a
collinear spin-polarised SCF on the fixed structure, then the spin–orbit Hamiltonian is added to the
Kohn–Sham eigenstates for a magnetisation along c and along an in-plane direction (a, made perpendicular
to c), and the occupied band energies are compared (force theorem):

    ΔE = E_band(in-plane) − E_band(along c)   per cell (eV);  K1 = ΔE / V  (MJ/m³; K1 > 0: easy axis c)

The difference is a few meV per cell or less, so it needs dense k-point meshes: the calculation is done at
two k-spacings and both values are returned (their difference is the convergence estimate).  Smearing
affects it too: the ``smearing`` setting (default 0.05 eV) replaces the calculator's for this property.

What DFT can say here (docs/magnetism.md): the anisotropy of the 3d (and 4d/5d, e.g. Pt) sublattices is
meaningful; the single-ion anisotropy of 4f shells (Sm, Nd, Dy, Tb) needs a crystal-field treatment that
plain DFT (4f in the core, or 4f bands in GGA) does not give, so K1 of such compounds is not trustworthy.

Only GPAW is supported (QE/VASP would need noncollinear self-consistent runs: not implemented).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from tansaku.calculators.context import RunContext
from tansaku.calculators.registry import CalculatorConfigError, get_calculator
from tansaku.screening.properties import k1_mj_m3

ANISOTROPY_CALCULATORS = ("gpaw",)
DEFAULT_KSPACINGS = (0.2, 0.14)  # 1/Å, coarse then fine
DEFAULT_SMEARING = 0.05  # eV


@dataclass(frozen=True)
class AnisotropyResult:
    """K1 of one structure at each k-spacing; energy and moments of the collinear SCF on the finest mesh."""

    kspacings: tuple[float, ...]  # 1/Å, as computed (coarse first)
    delta_e: tuple[float, ...]  # eV per cell, E(in-plane) − E(along c), per k-spacing
    k1: tuple[float, ...]  # MJ/m³, per k-spacing
    energy: float  # eV, collinear SCF on the finest mesh
    magmoms: np.ndarray | None
    magmom_total: float
    scf_iterations: int
    wall_time: float  # s

    @property
    def k1_fine(self) -> float:
        return self.k1[-1]

    @property
    def k1_coarse(self) -> float:
        return self.k1[0]


def angles(direction: np.ndarray) -> tuple[float, float]:
    """(θ, φ) in degrees of a Cartesian direction: θ from z, φ from x in the xy plane (GPAW's convention)."""
    x, y, z = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
    return float(np.degrees(np.arccos(np.clip(z, -1, 1)))), float(np.degrees(np.arctan2(y, x)))


def axis_directions(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along c and in the basal plane (a with its c component removed)."""
    a, _, c = atoms.cell.array
    c_hat = c / np.linalg.norm(c)
    plane = a - (a @ c_hat) * c_hat
    return c_hat, plane / np.linalg.norm(plane)


def soc_anisotropy(calc: Any, atoms: Atoms) -> float:
    """E_band(in-plane) − E_band(along c) in eV per cell from a converged collinear GPAW calculation."""
    from gpaw.spinorbit import soc_eigenstates

    energies = []
    for direction in axis_directions(atoms):
        theta, phi = angles(direction)
        energies.append(soc_eigenstates(calc, theta=theta, phi=phi).calculate_band_energy())
    return float(energies[1] - energies[0])


def check_settings(calculator: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The anisotropy settings with defaults filled in; ValueError (one line) for bad ones."""
    if calculator not in ANISOTROPY_CALCULATORS:
        raise CalculatorConfigError(f"anisotropy (K1 with spin-orbit) needs calculator "
                                    f"{' or '.join(ANISOTROPY_CALCULATORS)}, not {calculator!r}")
    unknown = sorted(set(settings) - {"kspacings", "smearing"})
    if unknown:
        raise CalculatorConfigError(f"anisotropy: unknown setting(s) {unknown}; accepted: kspacings, smearing")
    kspacings = tuple(float(k) for k in settings.get("kspacings", DEFAULT_KSPACINGS))
    if not kspacings or any(k <= 0 for k in kspacings):
        raise CalculatorConfigError(f"anisotropy: kspacings must be positive (1/Å), got {list(kspacings)}")
    smearing = float(settings.get("smearing", DEFAULT_SMEARING))
    if smearing <= 0:
        raise CalculatorConfigError(f"anisotropy: smearing must be > 0 eV, got {smearing}")
    return {"kspacings": sorted(kspacings, reverse=True), "smearing": smearing}


def compute_anisotropy(atoms: Atoms, calculator: str, params: Mapping[str, Any], context: RunContext,
                       settings: Mapping[str, Any] | None = None) -> AnisotropyResult:
    """K1 of ``atoms`` (fixed; its initial moments are the collinear start, e.g. the ground state's final
    moments) at each of ``settings["kspacings"]`` (coarse first), with calculator ``params`` otherwise."""
    start = time.perf_counter()
    checked = check_settings(calculator, settings or {})
    if not atoms.get_initial_magnetic_moments().any():
        raise CalculatorConfigError("anisotropy: the structure has no initial magnetic moments "
                                    "(start from a spin-polarised ground state)")
    deltas, energy, scf, calc = [], float("nan"), 0, None
    for kspacing in checked["kspacings"]:
        calc = get_calculator(calculator, {**params, "kspacing": kspacing, "smearing": checked["smearing"],
                                           "spin": True}, context)
        work = atoms.copy()
        work.calc = calc
        energy = float(work.get_potential_energy())
        scf += int(calc.results.get("scf_iterations", 0))
        deltas.append(soc_anisotropy(calc, work))
    magmoms = np.asarray(calc.get_magnetic_moments(), dtype=float)
    volume = atoms.get_volume()
    return AnisotropyResult(
        kspacings=tuple(checked["kspacings"]), delta_e=tuple(deltas),
        k1=tuple(float(k1_mj_m3(d, volume)) for d in deltas), energy=energy, magmoms=magmoms,
        magmom_total=float(calc.get_magnetic_moment()), scf_iterations=scf, wall_time=time.perf_counter() - start)

