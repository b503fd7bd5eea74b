"""Remove candidates that are the same structure up to symmetry (pymatgen StructureMatcher).

Pairwise StructureMatcher within each composition costs ~1 ms per comparison, quadratic in the
group size. :func:`deduplicate` compares only pairs whose fingerprints
(:mod:`tansaku.screening.fingerprint`) are within ``tol`` of each other, and StructureMatcher
confirms each of those: on structures whose duplicates differ by symmetry, supercells, permutations,
isotropic scale or strains up to ~5 % (measured: a 5 % strain moves components by ≤ 0.05,
a 10 % one by up to 0.13) it keeps exactly what :func:`deduplicate_pairwise` keeps, in
the same order, with ~one StructureMatcher call per near pair instead of per pair.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor

from tansaku.screening.candidate import Candidate

FINGERPRINT_TOL = 0.1  # max difference per fingerprint component; a 5 % strain moves components by ≤ 0.05


def deduplicate(candidates: Sequence[Candidate], tol: float = FINGERPRINT_TOL) -> tuple[list[Candidate], int]:
    """Keep the first of each set of equivalent candidates; return (kept, number removed).

    Only candidates with the same composition and fingerprints within ``tol`` are compared, and never
    two orderings from the same origin (variant enumeration already made those distinct). A candidate
    is removed when StructureMatcher matches it with an earlier kept one.
    """
    from tansaku.screening.fingerprint import fingerprint, near_pairs

    unique, removed, seen_ids = [], 0, set()
    for cand in candidates:  # the same id is the same structure: no fingerprint needed
        if cand.id in seen_ids:
            removed += 1
            continue
        seen_ids.add(cand.id)
        unique.append(cand)
    keys = [composition_key(cand.atoms.numbers) for cand in unique]
    group_of = {key: k for k, key in enumerate(dict.fromkeys(keys))}
    groups = np.array([group_of[key] for key in keys], np.int64)
    compared = _groups_with_comparisons(groups, [cand.origin for cand in unique])
    prints = {row: fingerprint(unique[row].atoms) for row in range(len(unique)) if compared[groups[row]]}
    width = max((len(p) for p in prints.values()), default=0)
    values = np.zeros((len(unique), width))
    for row, p in prints.items():
        values[row, :len(p)] = p
    rows = np.array(sorted(prints), np.int64)
    first, second = near_pairs(values[rows], groups[rows], tol)
    first, second = rows[first], rows[second]
    earlier: dict[int, list[int]] = defaultdict(list)
    for i, j in sorted(zip(first.tolist(), second.tolist())):
        earlier[j].append(i)
    matcher = StructureMatcher()
    structures: dict[int, object] = {}

    def structure(k: int):
        if k not in structures:
            structures[k] = AseAtomsAdaptor.get_structure(unique[k].atoms)
        return structures[k]

    kept_index: set[int] = set()
    kept: list[Candidate] = []
    for j, cand in enumerate(unique):
        duplicate = any(i in kept_index and (not cand.origin or unique[i].origin != cand.origin)
                        and matcher.fit(structure(j), structure(i)) for i in earlier.get(j, ()))
        if duplicate:
            removed += 1
            continue
        kept_index.add(j)
        kept.append(cand)
    return kept, removed


def composition_key(numbers: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Reduced composition as ((Z, count / gcd), ...): equal exactly when the reduced formulas are."""
    elements, counts = np.unique(np.asarray(numbers), return_counts=True)
    divisor = math.gcd(*counts.tolist()) if len(counts) else 1
    return tuple(zip(elements.tolist(), (counts // divisor).tolist()))


def _groups_with_comparisons(groups: np.ndarray, origins: Sequence[str]) -> np.ndarray:
    """Per group: whether two of its members may be compared (not all one variant's orderings)."""
    origins_of: dict[int, set[str]] = defaultdict(set)
    size = np.bincount(groups, minlength=int(groups.max(initial=-1)) + 1)
    compared = size > 1
    for group, origin in zip(groups.tolist(), origins):
        origins_of[group].add(origin)
    for group, seen in origins_of.items():
        if len(seen) == 1 and "" not in seen:  # one variant's orderings are distinct by construction
            compared[group] = False
    return compared


def deduplicate_pairwise(candidates: Sequence[Candidate]) -> tuple[list[Candidate], int]:
    """Reference: StructureMatcher against every earlier kept candidate of the same composition."""
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
