"""The Candidate: one structure to be relaxed and ranked."""

from __future__ import annotations

from dataclasses import dataclass, field

from ase import Atoms
from pymatgen.core import Composition

from tansaku.constants import KIND_CANDIDATE
from tansaku.screening.identity import structure_id


def reduced_formula(formula: str) -> str:
    """Reduced formula without pymatgen's brackets: SmTi2Fe10 rather than Sm(TiFe5)2 (pymatgen's element order)."""
    reduced = Composition(formula).reduced_composition
    ordered = sorted(reduced.items(), key=lambda item: item[0].X)
    return "".join(f"{el}{int(n) if n != 1 else ''}" for el, n in ordered)


@dataclass
class Candidate:
    """A generated structure with a stable id, a readable label and its parent's id."""

    atoms: Atoms
    prototype: str
    changes: str = ""  # e.g. "8i:Co2 #3/5"; empty for a decorated parent
    parent: str = ""  # id of the structure it was derived from ("" for a parent)
    kind: str = KIND_CANDIDATE  # KIND_CANDIDATE | KIND_REFERENCE | KIND_COMPETING (tansaku.constants)
    origin: str = ""  # variant that produced it (orderings of one origin are distinct); "" = unique
    id: str = field(init=False)

    def __post_init__(self) -> None:
        self.id = structure_id(self.atoms)

    @property
    def formula(self) -> str:
        return reduced_formula(self.atoms.get_chemical_formula())

    @property
    def elements(self) -> set[str]:
        return set(self.atoms.get_chemical_symbols())

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.formula, self.prototype, self.changes) if part)
