"""Tasks: one relaxation of one structure with one calculator, identified by content."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ase import Atoms

from tansaku.calculators import RelaxSettings, get_spec
from tansaku.screening.candidate import Candidate
from tansaku.screening.identity import canonical_structure_bytes, short_hash

STAGE_RELAX = "relax"


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
    stage: str = STAGE_RELAX


def calculator_identity(calculator: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """What a task's calculator is, as stored with each record: name, identity parameters, code version."""
    return {"calculator": calculator, "params": dict(params), "version": get_spec(calculator).version()}


def task_id_for(atoms: Atoms, calculator: str, params: Mapping[str, Any], relax: RelaxSettings,
                relax_cell: bool, stage: str) -> str:
    """Hash of structure + calculator (name, parameters, package version) + stage settings."""
    settings = {**relax.as_dict(), "relax_cell": relax.relax_cell and relax_cell}
    return short_hash(canonical_structure_bytes(atoms), calculator, dict(params),
                      get_spec(calculator).version(), settings, stage)


def make_task(candidate: Candidate, calculator: str, params: Mapping[str, Any], relax: RelaxSettings,
              stage: str = STAGE_RELAX) -> Task:
    """The task that relaxes ``candidate``; molecules in a box keep their cell."""
    relax_cell = not candidate.atoms.info.get("molecule", False)
    return Task(
        task_id=task_id_for(candidate.atoms, calculator, params, relax, relax_cell, stage),
        candidate_id=candidate.id, kind=candidate.kind, label=candidate.label, formula=candidate.formula,
        prototype=candidate.prototype, parent=candidate.parent, atoms=candidate.atoms,
        calculator=calculator, params=dict(params), relax=relax, relax_cell=relax_cell, stage=stage)
