"""Candidates from a prototype: decorate its sites, then apply substitution/interstitial variants."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from pymatgen.core import Element

from tansaku.screening.candidate import Candidate
from tansaku.screening.dedup import deduplicate
from tansaku.screening.prototypes import Prototype, build, get_prototype
from tansaku.screening.substitution import (VACANCY, SubstitutionError, Variant, check_orderings,
                                            distinct_orderings, placements)
from tansaku.screening.symmetry import primitive_cell, site_permutations, site_types


MAX_ATOMS = 2000  # default bound on the sites of one structure (a task): generous for ML potentials
MIN_DISTANCE = 0.5  # Å: closer sites are a broken cell (H2's bond is 0.74 Å), refused before any relaxation
OPS_PER_SITE = 48  # a crystal's symmetry group has at most 48 point operations x (translations <= sites)


@dataclass(frozen=True)
class Decoration:
    """How to build parents from one prototype and which variants to derive from each."""

    prototype: str
    sites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # label -> element choices
    cellpar: tuple[float, ...] | None = None  # None: the prototype's, scaled to the elements
    supercell: tuple[int, int, int] = (1, 1, 1)
    variants: tuple[Variant, ...] = ()
    include_parent: bool = True
    distinct_elements: bool = False  # skip parents where two listed sites hold the same element
    primitive: bool = False  # reduce the conventional cell to the primitive one before the supercell
    max_orderings: int = 200_000
    max_atoms: int = MAX_ATOMS  # sites (atoms and interstitial sites) of one structure, checked before it is built
    min_distance: float = MIN_DISTANCE  # Å between any two sites (periodic images included); 0: no check


@dataclass
class Generation:
    """Generated candidates after deduplication, with the counts before and after."""

    candidates: list[Candidate]
    generated: int
    duplicates: int


def _atomic_volume(symbol: str) -> float:
    element = Element(symbol)
    radius = element.metallic_radius or element.atomic_radius or 1.5
    return float(radius) ** 3


def scaled_cellpar(prototype: Prototype, occupants: Mapping[str, str]) -> tuple[float, ...]:
    """Prototype lattice scaled isotropically by the change in summed atomic volumes of host sites."""
    hosts = prototype.host_sites()
    ref = sum(_atomic_volume(site.element) for site in hosts)
    new = sum(_atomic_volume(occupants.get(site.label, site.element)) for site in hosts)
    factor = (new / ref) ** (1.0 / 3.0)
    a, b, c, *angles = prototype.cellpar
    return (a * factor, b * factor, c * factor, *angles)


def parent_occupations(decoration: Decoration) -> Iterable[dict[str, str]]:
    """Every combination of the element choices listed per site."""
    labels = list(decoration.sites)
    for combo in itertools.product(*(decoration.sites[label] for label in labels)):
        if decoration.distinct_elements and len(set(combo)) < len(combo):
            continue
        yield dict(zip(labels, combo))


def _cell_text(supercell: Sequence[int]) -> str:
    return "x".join(str(n) for n in supercell)


def _without_vacancies(atoms: Atoms, numbers: np.ndarray) -> Atoms:
    result = atoms.copy()
    result.numbers = numbers
    return result[numbers != VACANCY]


def _check_distances(atoms: Atoms, minimum: float, name: str) -> None:
    """SubstitutionError when two sites (or a site and a periodic image) are closer than ``minimum`` Å."""
    if minimum <= 0:
        return
    from ase.neighborlist import neighbor_list

    first, second, distance = neighbor_list("ijd", atoms, minimum)
    if len(distance):
        k = int(np.argmin(distance))
        symbols = ["X" if z == VACANCY else s for z, s in zip(atoms.numbers, atoms.get_chemical_symbols())]
        raise SubstitutionError(
            f"cellpar: sites {first[k]} ({symbols[first[k]]}) and {second[k]} ({symbols[second[k]]}) of {name} are "
            f"{distance[k]:.3g} Å apart, closer than min_distance = {minimum:g} Å (a broken cell)")


def generate_from(decoration: Decoration) -> list[Candidate]:
    """All candidates of one decoration, before cross-variant deduplication."""
    prototype = get_prototype(decoration.prototype)
    interstitial_labels = {site.label for site in prototype.interstitial_sites()}
    candidates: list[Candidate] = []
    for occupants in parent_occupations(decoration):
        cellpar = decoration.cellpar or scaled_cellpar(prototype, occupants)
        atoms, labels = build(prototype, occupants, cellpar=cellpar, with_interstitials=True)
        if decoration.primitive:
            atoms, labels = primitive_cell(atoms, labels)
        _check_distances(atoms, decoration.min_distance, prototype.name)
        sites = len(atoms) * math.prod(decoration.supercell)  # exact, before anything of that size exists
        if sites > decoration.max_atoms:
            raise SubstitutionError(
                f"supercell: {_cell_text(decoration.supercell)} of {prototype.name} has {sites:,} sites, more than "
                f"max_atoms = {decoration.max_atoms:,} (atoms per task); use a smaller supercell or raise max_atoms")
        cell_text = _cell_text(decoration.supercell)
        for j, variant in enumerate(decoration.variants):  # bounded before the symmetry group is built
            try:
                base = np.tile(atoms.numbers, math.prod(decoration.supercell))
                _, total = placements(base, np.tile(labels, math.prod(decoration.supercell)), interstitial_labels,
                                      variant, cell_text)
                check_orderings(variant, total, OPS_PER_SITE * sites, decoration.max_orderings, cell_text)
            except SubstitutionError as exc:
                raise SubstitutionError(f"variants[{j}] ({variant.name}): {exc}") from None
        atoms = atoms.repeat(decoration.supercell)
        labels = np.tile(labels, int(np.prod(decoration.supercell)))
        numbers = atoms.numbers.copy()
        parent = Candidate(_without_vacancies(atoms, numbers), prototype.name)
        if decoration.include_parent:
            candidates.append(parent)
        if not decoration.variants:
            continue
        types = site_types([f"{label}:{z}" for label, z in zip(labels, numbers)])
        perms = site_permutations(atoms, types)
        for j, variant in enumerate(decoration.variants):
            try:
                orderings = distinct_orderings(numbers, labels, interstitial_labels, variant, perms,
                                               cell_text=_cell_text(decoration.supercell),
                                               max_orderings=decoration.max_orderings)
            except SubstitutionError as exc:
                raise SubstitutionError(f"variants[{j}] ({variant.name}) on {parent.label}: {exc}") from None
            origin = f"{parent.id}/{variant.name}"
            for index, config in enumerate(orderings, start=1):
                tag = variant.name if len(orderings) == 1 else f"{variant.name} #{index}/{len(orderings)}"
                candidates.append(Candidate(_without_vacancies(atoms, config), prototype.name,
                                            changes=tag, parent=parent.id, origin=origin))
    return candidates


def generate(decorations: Sequence[Decoration]) -> Generation:
    """Candidates of all decorations, duplicates (same structure up to symmetry) removed.

    A variant that cannot be applied raises SubstitutionError naming ``prototypes[i].variants[j]``.
    """
    generated: list[Candidate] = []
    for i, decoration in enumerate(decorations):
        try:
            generated.extend(generate_from(decoration))
        except SubstitutionError as exc:
            raise SubstitutionError(f"prototypes[{i}].{exc}") from None
    kept, removed = deduplicate(generated)
    return Generation(candidates=kept, generated=len(generated), duplicates=removed)
