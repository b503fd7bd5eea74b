"""Tasks: one relaxation of one structure with one calculator, identified by content."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ase import Atoms

from tansaku.calculators import RelaxSettings, get_spec
from tansaku.screening.candidate import Candidate
from tansaku.screening.identity import canonical_order, canonical_structure_bytes, short_hash
from tansaku.screening.magnetic_configurations import MagneticConfiguration

STAGE_RELAX = "relax"
CALCULATION_RELAX = "relax"  # relax the structure (the default)
CALCULATION_ANISOTROPY = "anisotropy"  # magnetocrystalline anisotropy K1 with spin-orbit (calculators.anisotropy)
CALCULATIONS = (CALCULATION_RELAX, CALCULATION_ANISOTROPY)


@dataclass
class Task:
    """Everything a worker needs to compute one record; small and picklable."""

    task_id: str
    candidate_id: str
    kind: str
    label: str
    formula: str
    prototype: str
    parent: str
    atoms: Atoms
    calculator: str
    params: Mapping[str, Any] = field(default_factory=dict)
    relax: RelaxSettings = field(default_factory=RelaxSettings)
    relax_cell: bool = True
    stage: str = STAGE_RELAX  # the relaxation mode (not the funnel stage)
    stage_name: str = ""  # the funnel stage (campaign.stages); "" = the first stage of a store written before funnels
    source_task_id: str = ""  # the previous stage's task this one starts from ("" in the first stage)
    # the named starting magnetic configuration (screening.magnetic_configurations: "fm", "re-anti", "ud:...",
    # "ud:...@2x1x1" in a supercell), "" for calculators that take no initial moments; its initial moments (and
    # the supercell, for those) are in ``atoms``
    configuration: str = ""
    calculation: str = CALCULATION_RELAX  # what run_task computes (CALCULATIONS)
    calculation_params: Mapping[str, Any] = field(default_factory=dict)  # e.g. anisotropy k-spacings


def calculator_identity(calculator: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """What a task's calculator is, as stored with each record: name, identity parameters, code version."""
    return {"calculator": calculator, "params": dict(params), "version": get_spec(calculator).version()}


def task_settings(task: Task) -> tuple[str, str]:
    """(settings_id, settings JSON) of the settings that produce ``task``'s record: the funnel stage name,
    the relaxation mode (``Task.stage``), calculator name, identity parameters, code version and relaxation
    settings; stored once per distinct value in the store's /settings table, the id with every record.
    ("", "") for a calculator unknown here."""
    try:
        version = get_spec(task.calculator).version()
    except Exception:  # noqa: BLE001 - an unknown calculator: its failed record says why
        return "", ""
    settings = {"stage": task.stage_name, "mode": task.stage, "calculator": task.calculator,
                "params": dict(task.params), "version": version,
                "relax": {**task.relax.as_dict(), "relax_cell": task.relax.relax_cell and task.relax_cell}}
    if task.calculation != CALCULATION_RELAX:  # e.g. anisotropy: its own parameters (k-spacings)
        settings["calculation"] = {"name": task.calculation, "params": dict(task.calculation_params)}
    text = json.dumps(settings, sort_keys=True, default=str)
    return _settings_hash(text), text


@functools.lru_cache(maxsize=256)
def _settings_hash(text: str) -> str:
    return short_hash(text)


def _rounded_moments(atoms: Atoms, order: Any = slice(None)) -> list[float]:
    """The initial moments (μB) to 1e-3, in ``order``: what of a start enters a task id."""
    return [round(float(m), 3) for m in atoms.get_initial_magnetic_moments()[order]]


def task_id_for(atoms: Atoms, calculator: str, params: Mapping[str, Any], relax: RelaxSettings,
                relax_cell: bool, stage: str, configuration: str = "", calculation: str = CALCULATION_RELAX,
                calculation_params: Mapping[str, Any] | None = None) -> str:
    """Hash of structure + calculator (name, parameters, package version) + stage settings.

    A starting magnetic configuration (FM included) adds its name and initial moments (μB, per atom in
    canonical order): a task started elsewhere is another task.  A calculation other than a relaxation
    adds its name and parameters.
    """
    settings = {**relax.as_dict(), "relax_cell": relax.relax_cell and relax_cell}
    extra: list[Any] = []
    if configuration:
        order = canonical_order(atoms)
        extra += [configuration, _rounded_moments(atoms, order)]
    if calculation != CALCULATION_RELAX:
        extra += [calculation, dict(calculation_params or {})]
    return short_hash(canonical_structure_bytes(atoms), calculator, dict(params),
                      get_spec(calculator).version(), settings, stage, *extra)


def stage_task_id(source_task_id: str, calculator: str, params: Mapping[str, Any], relax: RelaxSettings,
                  relax_cell: bool, stage: str, stage_name: str, *extra: Any) -> str:
    """Task id of a later funnel stage: hash of the source task id + the stage's calculator (name,
    parameters, package version), relaxation settings and stage name. Never the (relaxed, floating-point)
    coordinates it starts from, so a resumed funnel finds its tasks again."""
    settings = {**relax.as_dict(), "relax_cell": relax.relax_cell and relax_cell}
    return short_hash("funnel-stage", source_task_id, calculator, dict(params), get_spec(calculator).version(),
                      settings, stage, stage_name, *extra)


def make_task(candidate: Candidate, calculator: str, params: Mapping[str, Any], relax: RelaxSettings,
              stage: str = STAGE_RELAX, stage_name: str = "",
              configuration: MagneticConfiguration | None = None) -> Task:
    """The first-stage task that relaxes ``candidate`` (from ``configuration``'s initial moments when
    given); molecules in a box keep their cell.

    ``stage_name`` (the funnel stage) does not enter the task id: a single-stage campaign's ids are
    those it had before funnels existed, and renaming the first stage recomputes nothing."""
    relax_cell = not candidate.atoms.info.get("molecule", False)
    atoms, name = candidate.atoms, ""
    if configuration is not None:  # its moments, in its cell (a supercell for some enumerated patterns)
        atoms, name = configuration.atoms(candidate.atoms), configuration.name
    return Task(
        task_id=task_id_for(atoms, calculator, params, relax, relax_cell, stage, name),
        candidate_id=candidate.id, kind=candidate.kind, label=candidate.label, formula=candidate.formula,
        prototype=candidate.prototype, parent=candidate.parent, atoms=atoms,
        calculator=calculator, params=dict(params), relax=relax, relax_cell=relax_cell, stage=stage,
        stage_name=stage_name, configuration=name)


def next_stage_task(source: Task, atoms: Atoms, calculator: str, params: Mapping[str, Any], relax: RelaxSettings,
                    stage_name: str, configuration: MagneticConfiguration | None = None,
                    calculation: str = CALCULATION_RELAX, calculation_params: Mapping[str, Any] | None = None) -> Task:
    """The task of funnel stage ``stage_name`` that continues ``source`` from ``atoms`` (its relaxed
    structure): same candidate id, label and kind, ``source_task_id`` = the source's task id.

    With ``configuration`` it starts from that configuration's moments (its name and moments in the task
    id); ``calculation`` other than a relaxation (anisotropy) adds its name and parameters to the id."""
    name = "" if configuration is None else configuration.name
    extra: list[Any] = []
    if configuration is not None:
        atoms = configuration.atoms(atoms)
        extra += [name, _rounded_moments(atoms)]
    if calculation != CALCULATION_RELAX:
        extra += [calculation, dict(calculation_params or {})]
    return Task(
        task_id=stage_task_id(source.task_id, calculator, params, relax, source.relax_cell, source.stage, stage_name,
                              *extra),
        candidate_id=source.candidate_id, kind=source.kind, label=source.label, formula=source.formula,
        prototype=source.prototype, parent=source.parent, atoms=atoms, calculator=calculator, params=dict(params),
        relax=relax, relax_cell=source.relax_cell, stage=source.stage, stage_name=stage_name,
        source_task_id=source.task_id, configuration=name or source.configuration, calculation=calculation,
        calculation_params=dict(calculation_params or {}))


def task_to_dict(task: Task) -> dict[str, Any]:
    """The JSON form of a task (plain types only); ``task_from_dict`` inverts it exactly.

    Positions and cell are in Å, initial magnetic moments in μB (``null`` when the atoms carry none).
    """
    atoms = task.atoms
    magmoms = atoms.get_initial_magnetic_moments() if atoms.has("initial_magmoms") else None
    return {
        "task_id": task.task_id, "candidate_id": task.candidate_id, "kind": task.kind, "label": task.label,
        "formula": task.formula, "prototype": task.prototype, "parent": task.parent,
        "calculator": task.calculator, "params": dict(task.params), "relax": task.relax.as_dict(),
        "relax_cell": task.relax_cell, "stage": task.stage, "stage_name": task.stage_name,
        "source_task_id": task.source_task_id, "configuration": task.configuration,
        "calculation": task.calculation, "calculation_params": dict(task.calculation_params),
        "atoms": {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
                  "cell": atoms.cell.array.tolist(), "pbc": atoms.pbc.tolist(),
                  "magmoms": None if magmoms is None else magmoms.tolist(), "info": plain_info(atoms.info)},
    }


def plain_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``atoms.info`` that JSON keeps exactly (str, bool, int, float); others are dropped
    (e.g. ase's Spacegroup object, which no calculator reads)."""
    return {k: v for k, v in info.items() if isinstance(k, str) and isinstance(v, str | bool | int | float)}


def atoms_from_arrays(numbers, positions, cell, pbc, magmoms=None, info: Mapping[str, Any] | None = None) -> Atoms:
    """An Atoms from stored arrays (the plan file's and the JSON form's layout)."""
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
    if magmoms is not None:
        atoms.set_initial_magnetic_moments(magmoms)
    if info:
        atoms.info.update(info)
    return atoms


def task_from_dict(data: Mapping[str, Any]) -> Task:
    """The task of a ``task_to_dict`` dictionary (e.g. read back from JSON)."""
    a = data["atoms"]
    atoms = atoms_from_arrays(a["numbers"], a["positions"], a["cell"], a["pbc"], a.get("magmoms"), a.get("info"))
    return Task(task_id=data["task_id"], candidate_id=data["candidate_id"], kind=data["kind"], label=data["label"],
                formula=data["formula"], prototype=data["prototype"], parent=data["parent"], atoms=atoms,
                calculator=data["calculator"], params=dict(data["params"]), relax=RelaxSettings(**data["relax"]),
                relax_cell=bool(data["relax_cell"]), stage=data["stage"], stage_name=data.get("stage_name", ""),
                source_task_id=data.get("source_task_id", ""), configuration=data.get("configuration", ""),
                calculation=data.get("calculation", CALCULATION_RELAX),
                calculation_params=dict(data.get("calculation_params", {})))


def tasks_equal(a: Task, b: Task) -> bool:
    """Field-by-field equality, atoms included (numbers, positions, cell, pbc, initial moments, info)."""
    import numpy as np

    plain = [f for f in Task.__dataclass_fields__ if f != "atoms"]
    if any(getattr(a, f) != getattr(b, f) for f in plain):
        return False
    x, y = a.atoms, b.atoms
    return (len(x) == len(y) and np.array_equal(x.numbers, y.numbers) and np.array_equal(x.positions, y.positions)
            and np.array_equal(x.cell.array, y.cell.array) and np.array_equal(x.pbc, y.pbc)
            and np.array_equal(x.get_initial_magnetic_moments(), y.get_initial_magnetic_moments())
            and plain_info(x.info) == plain_info(y.info))
