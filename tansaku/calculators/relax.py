"""Relax a structure with an ASE calculator and report what screening needs.

With a ``directory`` (a task's scratch directory) every step is checkpointed: the trajectory goes to
``relax.traj`` and the latest structure to ``checkpoint.json`` (written atomically), so a relaxation
that was killed (SIGKILL, walltime, node failure) and is run again continues from its last step; its
step count includes the steps done before. The optimizer's internal state (FIRE velocities, BFGS
Hessian) starts afresh from that structure.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from ase.optimize import BFGS, FIRE, LBFGS

from tansaku.calculators.cell_filter import FastFrechetCellFilter
from tansaku.calculators.errors import CodeTimeout, UnphysicalResult

OPTIMIZERS = {"FIRE": FIRE, "BFGS": BFGS, "LBFGS": LBFGS}
MAX_FORCE = 100.0  # eV/Å: larger forces mean an exploding structure or a broken calculation
CHECKPOINT = "checkpoint.json"
TRAJECTORY = "relax.traj"


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
    scf_iterations: int = -1  # summed over the relaxation's calculations (-1: the code does not say)
    resumed_from: int = 0  # steps taken before this run (from the checkpoint)


def _max_force(forces: np.ndarray) -> float:
    """The largest force norm (eV/Å; 0 for no atoms)."""
    return float(np.sqrt((np.asarray(forces) ** 2).sum(axis=1)).max(initial=0.0))


def default_magmoms(atoms: Atoms) -> np.ndarray:
    """tansaku's starting moments (μB, ``START_MOMENTS``) per site: the FM start."""
    from tansaku.screening.magnetic_configurations import default_start_moments

    return default_start_moments(atoms.get_chemical_symbols())


def _magnetic_moments(calc: Calculator, atoms: Atoms, request: bool = True) -> tuple[np.ndarray | None, float]:
    """The moments the calculation gave; ``request``: ask for them when the results lack them (a code
    that reports them on request). Asking a calculator that has none (ASE's EMT lists ``magmoms`` but never
    sets them) repeats the whole calculation first, so callers that know pass False."""
    magmoms = calc.results.get("magmoms")
    if magmoms is None and request and "magmoms" in calc.implemented_properties:
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


def check_physical(atoms: Atoms) -> None:
    """Raise UnphysicalResult for a NaN/infinite energy, force or stress, or forces beyond MAX_FORCE."""
    results = atoms.calc.results if atoms.calc is not None else {}
    for key in ("energy", "forces", "stress"):
        value = results.get(key)
        if value is not None and not np.all(np.isfinite(value)):
            raise UnphysicalResult(f"{key} is not finite")
    forces = results.get("forces")
    if forces is not None and len(forces):
        largest = float(np.sqrt((np.asarray(forces) ** 2).sum(axis=1)).max())
        if largest > MAX_FORCE:
            raise UnphysicalResult(f"force of {largest:.3g} eV/Å exceeds {MAX_FORCE:g} eV/Å")


def read_checkpoint(directory: Path) -> dict | None:
    """The last checkpoint of a relaxation in ``directory`` (None if there is none)."""
    try:
        return json.loads((Path(directory) / CHECKPOINT).read_text())
    except (OSError, ValueError):
        return None


def _write_checkpoint(directory: Path, atoms: Atoms, step: int, scf: int) -> None:
    data = {"step": step, "positions": atoms.positions.tolist(), "cell": np.asarray(atoms.cell).tolist(),
            "numbers": atoms.numbers.tolist(), "scf_iterations": scf,
            "energy": float(atoms.calc.results.get("energy", np.nan)) if atoms.calc else None}
    tmp = Path(directory) / (CHECKPOINT + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, Path(directory) / CHECKPOINT)


def clear_checkpoint(directory: Path) -> None:
    """Forget a relaxation's progress (the next run starts from the initial structure)."""
    for name in (CHECKPOINT, TRAJECTORY):
        (Path(directory) / name).unlink(missing_ok=True)


def relax(atoms: Atoms, calc: Calculator, settings: RelaxSettings = RelaxSettings(),
          uses_initial_magmoms: bool = False, relax_cell: bool | None = None, directory: Path | None = None,
          timeout: float = 0.0, maxstep: float | None = None, moments: bool = True) -> RelaxResult:
    """Relax a copy of ``atoms``; the cell too when ``settings.relax_cell`` (ASE's FrechetCellFilter
    variables and forces, computed by cell_filter.FastFrechetCellFilter).

    ``relax_cell`` overrides the settings (e.g. False for a molecule in a box). ``directory``: checkpoint
    every step there and continue from an existing checkpoint. ``timeout`` (s, 0 = none) is checked
    after every step (CodeTimeout); ``maxstep`` (Å) overrides the optimizer's largest step; ``moments``:
    ask the calculator for magnetic moments it did not report (False for one that predicts none). Every
    calculation is checked for unphysical results (UnphysicalResult).
    """
    start = time.perf_counter()
    atoms = atoms.copy()
    if uses_initial_magmoms and not atoms.get_initial_magnetic_moments().any():
        atoms.set_initial_magnetic_moments(default_magmoms(atoms))
    done, scf_before = 0, 0
    checkpoint = read_checkpoint(directory) if directory is not None else None
    if checkpoint is not None and checkpoint["numbers"] == atoms.numbers.tolist():
        atoms.positions = np.array(checkpoint["positions"])
        atoms.set_cell(np.array(checkpoint["cell"]), scale_atoms=False)
        done, scf_before = int(checkpoint["step"]), max(0, int(checkpoint.get("scf_iterations", 0)))
    atoms.calc = calc
    cell = settings.relax_cell if relax_cell is None else relax_cell
    target = FastFrechetCellFilter(atoms) if cell else atoms
    kwargs = {"maxstep": maxstep} if maxstep else {}
    optimizer = OPTIMIZERS[settings.optimizer](target, logfile=None, **kwargs)
    scf = {"sum": scf_before, "known": scf_before > 0}
    trajectory = None
    if directory is not None:
        from ase.io import Trajectory

        trajectory = Trajectory(str(Path(directory) / TRAJECTORY), "a", atoms)

    def after_step() -> None:
        check_physical(atoms)
        iterations = calc.results.get("scf_iterations")
        if iterations is not None and iterations >= 0:
            scf["sum"] += int(iterations)
            scf["known"] = True
        if directory is not None:
            trajectory.write()
            _write_checkpoint(directory, atoms, done + optimizer.nsteps, scf["sum"])
        if timeout and time.perf_counter() - start > timeout:
            raise CodeTimeout(f"relaxation ran past the {timeout:g} s timeout after "
                              f"{done + optimizer.nsteps} steps (continues from its checkpoint)")

    optimizer.attach(after_step, interval=1)
    budget = max(0, settings.steps - done)
    try:
        converged = bool(optimizer.run(fmax=settings.fmax, steps=budget))
        if budget == 0:  # a single point (or a finished budget): ASE's run says False without looking
            converged = _max_force(target.get_forces()) <= settings.fmax
    finally:
        if trajectory is not None:
            trajectory.close()
    energy = float(atoms.get_potential_energy())
    check_physical(atoms)
    forces = atoms.get_forces()
    magmoms, magmom_total = _magnetic_moments(calc, atoms, request=moments)
    result_atoms = atoms.copy()  # detached from the calculator
    return RelaxResult(
        atoms=result_atoms, energy=energy,
        fmax=_max_force(forces),
        stress=_stress(atoms), magmoms=magmoms, magmom_total=magmom_total,
        steps=done + int(optimizer.nsteps), converged=converged, wall_time=time.perf_counter() - start,
        scf_iterations=scf["sum"] if scf["known"] else -1, resumed_from=done)
