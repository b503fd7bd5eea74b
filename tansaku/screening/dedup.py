"""Remove candidates that are the same structure up to symmetry (pymatgen StructureMatcher)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor

from tansaku.screening.candidate import Candidate


def deduplicate(candidates: Sequence[Candidate]) -> tuple[list[Candidate], int]:
    """Keep the first of each set of equivalent candidates; return (kept, number removed).

    Only candidates with the same composition are compared, and never two orderings from the same
    origin (variant enumeration already made those distinct), so the cost stays near-linear for
    large enumerations.
    """
    matcher = StructureMatcher()
    kept: list[Candidate] = []
    seen_ids: set[str] = set()
    groups: dict[str, list[tuple[Candidate, object]]] = defaultdict(list)
    removed = 0
    for cand in candidates:
        if cand.id in seen_ids:
            removed += 1
            continue
        key = cand.formula
        structure = AseAtomsAdaptor.get_structure(cand.atoms)
        duplicate = any((not cand.origin or other.origin != cand.origin) and matcher.fit(structure, other_structure)
                        for other, other_structure in groups[key])
        if duplicate:
            removed += 1
            continue
        groups[key].append((cand, structure))
        seen_ids.add(cand.id)
        kept.append(cand)
    return kept, removed
