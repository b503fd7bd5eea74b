"""Relax a structure with an ASE calculator and report what screening needs."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from ase.filters import FrechetCellFilter
from ase.optimize import BFGS, FIRE, LBFGS

OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS, "LBFGS": LBFGS}


@dataclass(frozen=True)
class RelaxSettings:
    """Relaxation settings; they enter task ids, so changing them makes new tasks."""

    optimizer: str = "FIRE"
    fmax: float = 0.05  # eV/Å (and eV/Å³-scaled stress via the cell filter)
    steps: int = 300
    relax_cell: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not self.fmax > 0:
            raise ValueError(f"fmax must be > 0, got {self.fmax}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RelaxResult:
    """Final structure and observables of one relaxation."""

    atoms: Atoms
    energy: float
    fmax: float
    stress: np.ndarray  # Voigt, eV/Å³ (NaN if unavailable)
    magmoms: np.ndarray | None
    magmom_total: float
    steps: int
    converged: bool
    wall_time: float


def default_magmoms(atoms: Atoms) -> np.ndarray:
    """pymatgen's default starting moments (μB) per site, 0.6 for unlisted elements."""
    from pymatgen.analysis.magnetism.analyzer import DEFAULT_MAGMOMS

    return np.array([float(DEFAULT_MAGMOMS.get(s, 0.6)) for s in atoms.get_chemical_symbols()])


def _magnetic_moments(calc: Calculator, atoms: Atoms) -> tuple[np.ndarray | None, float]:
    magmoms = calc.results.get("magmoms")
    if magmoms is None and "magmoms" in calc.implemented_properties:
        try:
            magmoms = calc.get_magnetic_moments(atoms)
        except (PropertyNotImplementedError, NotImplementedError):
            magmoms = None
    if magmoms is None:
        return None, float("nan")
    magmoms = np.asarray(magmoms, dtype=float).reshape(-1)
    total = calc.results.get("magmom")
    return magmoms, float(total) if total is not None else float(magmoms.sum())


def _stress(atoms: Atoms) -> np.ndarray:
    if not atoms.pbc.all():
        return np.full(6, np.nan)
    try:
        return np.asarray(atoms.get_stress(voigt=True), dtype=float)
    except (PropertyNotImplementedError, NotImplementedError):
        return np.full(6, np.nan)


def relax(atoms: Atoms, calc: Calculator, settings: RelaxSettings = RelaxSettings(),
          uses_initial_magmoms: bool = False, relax_cell: bool | None = None) -> RelaxResult:
    """Relax a copy of ``atoms``; the cell too when ``settings.relax_cell`` (FrechetCellFilter).

    ``relax_cell`` overrides the settings (e.g. False for a molecule in a box).
    """
    start = time.perf_counter()
    atoms = atoms.copy()
    if uses_initial_magmoms and not atoms.get_initial_magnetic_moments().any():
        atoms.set_initial_magnetic_moments(default_magmoms(atoms))
    atoms.calc = calc
    cell = settings.relax_cell if relax_cell is None else relax_cell
    target = FrechetCellFilter(atoms) if cell else atoms
    optimizer = OPTIMIZERS[settings.optimizer](target, logfile=None)
    converged = bool(optimizer.run(fmax=settings.fmax, steps=settings.steps))
    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    magmoms, magmom_total = _magnetic_moments(calc, atoms)
    result_atoms = atoms.copy()  # detached from the calculator
    return RelaxResult(
        atoms=result_atoms, energy=energy,
        fmax=float(np.sqrt((forces**2).sum(axis=1)).max()) if len(atoms) else 0.0,
        stress=_stress(atoms), magmoms=magmoms, magmom_total=magmom_total,
        steps=int(optimizer.nsteps), converged=converged, wall_time=time.perf_counter() - start)
