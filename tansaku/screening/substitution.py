"""Substitutions and interstitials on a decorated cell, enumerated as symmetry-distinct orderings."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers

VACANCY = 0  # atomic number used for empty interstitial sites ("X" in ASE)


@dataclass(frozen=True)
class Occupation:
    """``amount`` sites of the target get ``element``: a count, or a share when ``fraction``."""

    element: str
    amount: float
    fraction: bool

    def text(self) -> str:
        if self.fraction and self.amount == 1.0:
            return self.element
        if self.fraction:
            return f"{self.element}{self.amount:g}"
        return f"{self.element}{int(self.amount)}"


@dataclass(frozen=True)
class Substitution:
    """Change the occupation of some sites.

    ``target`` is a site label (a Wyckoff orbit such as ``"8i"``) or an element symbol (all
    sites holding that element). Interstitial substitutions fill empty interstitial sites.
    """

    target: str
    occupations: tuple[Occupation, ...]
    interstitial: bool = False

    def text(self) -> str:
        prefix = "+" if self.interstitial else ""
        return prefix + self.target + ":" + ",".join(o.text() for o in self.occupations)


@dataclass(frozen=True)
class Variant:
    """A set of substitutions applied together to a parent structure."""

    substitutions: tuple[Substitution, ...]

    @property
    def name(self) -> str:
        return " ".join(s.text() for s in self.substitutions)


class SubstitutionError(ValueError):
    """A variant that cannot be applied to its parent (bad target, unrepresentable fraction...)."""


@dataclass(frozen=True)
class _Slot:
    """Resolved substitution: the site indices it acts on and how many sites get each element."""

    sites: np.ndarray
    counts: tuple[tuple[int, int], ...]  # (atomic number, number of sites)


def _select_sites(sub: Substitution, numbers: np.ndarray, labels: np.ndarray,
                  interstitial_labels: set[str]) -> np.ndarray:
    label_set = set(labels.tolist())
    if sub.target in label_set:
        if sub.interstitial and sub.target not in interstitial_labels:
            raise SubstitutionError(f"site {sub.target!r} is a host site, not an interstitial site "
                                    f"(interstitial sites: {sorted(interstitial_labels) or 'none'})")
        if not sub.interstitial and sub.target in interstitial_labels:
            raise SubstitutionError(f"site {sub.target!r} is an interstitial site: list it under 'interstitial'")
        return np.flatnonzero(labels == sub.target)
    if not sub.interstitial and sub.target in atomic_numbers:
        sites = np.flatnonzero(numbers == atomic_numbers[sub.target])
        if len(sites) == 0:
            raise SubstitutionError(f"element {sub.target!r} is not in the parent structure")
        return sites
    kind = "interstitial site" if sub.interstitial else "site or element"
    choices = sorted(interstitial_labels) if sub.interstitial else sorted(label_set - interstitial_labels)
    raise SubstitutionError(f"unknown {kind} {sub.target!r} (sites: {', '.join(choices) or 'none'})")


def _resolve(sub: Substitution, sites: np.ndarray, cell_text: str) -> _Slot:
    counts = []
    for occ in sub.occupations:
        if occ.element not in atomic_numbers or occ.element == "X":
            raise SubstitutionError(f"unknown element {occ.element!r} in {sub.text()}")
        exact = occ.amount * len(sites) if occ.fraction else occ.amount
        count = int(round(exact))
        if abs(exact - count) > 1e-6 or count < 0:
            raise SubstitutionError(
                f"{sub.text()}: {occ.amount:g} of the {len(sites)} {sub.target} sites in the {cell_text} "
                f"cell is {exact:g} sites, not a whole number; choose a fraction or supercell that makes it one")
        counts.append((atomic_numbers[occ.element], count))
    if sum(c for _, c in counts) > len(sites):
        raise SubstitutionError(f"{sub.text()} asks for {sum(c for _, c in counts)} sites "
                                f"but the {cell_text} cell has only {len(sites)} {sub.target} sites")
    return _Slot(sites=sites, counts=tuple(counts))


def _multinomial(n: int, counts: Sequence[int]) -> int:
    total, left = 1, n
    for c in counts:
        total *= math.comb(left, c)
        left -= c
    return total


def _slot_assignments(slot: _Slot) -> Iterator[list[tuple[np.ndarray, int]]]:
    """Every way of placing the slot's species on its sites: lists of (site indices, atomic number)."""

    def place(remaining: tuple[int, ...], counts: tuple[tuple[int, int], ...]):
        if not counts:
            yield []
            return
        z, k = counts[0]
        for chosen in itertools.combinations(remaining, k):
            rest = tuple(i for i in remaining if i not in set(chosen))
            for tail in place(rest, counts[1:]):
                yield [(np.array(chosen, dtype=np.int64), z), *tail]

    yield from place(tuple(slot.sites.tolist()), slot.counts)


def placements(numbers: np.ndarray, labels: Sequence[str], interstitial_labels: set[str], variant: Variant,
               cell_text: str = "given") -> tuple[list[_Slot], int]:
    """The variant's resolved slots and its number of raw placements (a product of multinomials, exact;
    no placement is built)."""
    numbers = np.asarray(numbers)
    labels = np.asarray(labels, dtype=str)
    slots, used = [], np.zeros(len(numbers), bool)
    for sub in variant.substitutions:
        sites = _select_sites(sub, numbers, labels, interstitial_labels)
        if used[sites].any():
            raise SubstitutionError(f"{sub.text()} targets sites already changed by another substitution")
        used[sites] = True
        slots.append(_resolve(sub, sites, cell_text))
    return slots, math.prod(_multinomial(len(s.sites), [c for _, c in s.counts]) for s in slots)


def check_orderings(variant: Variant, total: int, n_ops: int, max_orderings: int, cell_text: str) -> int:
    """At least ``ceil(total / n_ops)`` distinct orderings (every orbit has at most ``n_ops`` members; Burnside);
    SubstitutionError when that exceeds ``max_orderings``. ``n_ops`` may be an upper bound of the group order
    (e.g. 48 x sites, before the group is known): the check then comes before anything is allocated."""
    at_least = -(-total // n_ops)
    if at_least > max_orderings:
        raise SubstitutionError(
            f"variant '{variant.name}' has {_count(total)} placements, at least {_count(at_least)} distinct orderings "
            f"in the {cell_text} cell, more than max_orderings = {max_orderings:,}; "
            f"use a smaller cell or fewer substituted sites")
    return at_least


def _count(n: int) -> str:
    """An exact count for people: 1,234,567, or 5.77e+63 when it is long (no float: it may overflow)."""
    digits = str(n)
    return f"{n:,}" if len(digits) <= 15 else f"{digits[0]}.{digits[1:3]}e+{len(digits) - 1}"


def distinct_orderings(numbers: np.ndarray, labels: Sequence[str], interstitial_labels: set[str],
                       variant: Variant, permutations: np.ndarray, cell_text: str = "given",
                       max_orderings: int = 200_000) -> list[np.ndarray]:
    """Atomic numbers per site (0 = empty) for every symmetry-distinct ordering of ``variant``.

    ``permutations`` are the parent's symmetry operations as site permutations
    (see :func:`tansaku.screening.symmetry.site_permutations`). Orderings related by one of them
    are the same structure, so one representative of each orbit is returned, in a stable order:
    the orbit's first member in the order of ``itertools.combinations`` over the sites of each
    substitution, species by species (the order of the occupations), substitution by substitution.

    Generation is orbit-canonical (:mod:`tansaku.screening.orderly`): placements are visited in
    that order with lexicographic-minimum pruning under the symmetry group, so time and memory
    follow the number of distinct orderings, not the number of raw placements. ``max_orderings``
    bounds the distinct orderings; the refusal comes before any enumeration, from the lower bound
    placements / group order.
    """
    slots, total = placements(numbers, labels, interstitial_labels, variant, cell_text)
    numbers = np.asarray(numbers)
    n_ops = len(np.unique(np.asarray(permutations), axis=0))
    at_least = check_orderings(variant, total, n_ops, max_orderings, cell_text)
    if _injective(slots, numbers):
        from tansaku.screening.orderly import canonical_orderings

        blocks = [(slot.sites, z, k) for slot in slots for z, k in slot.counts if k > 0]
        return canonical_orderings(numbers, blocks, permutations, expected=at_least)
    return _orderings_by_images(numbers, slots, permutations)


def _injective(slots: Sequence[_Slot], numbers: np.ndarray) -> bool:
    """Whether the atomic numbers tell which species of which slot chose each site.

    Not so when an occupation repeats an element, or names the element already on the sites
    ("Fe: Fe 0.5"): then different placements give the same structure, and the image-set path
    (which compares atomic numbers) is used instead.
    """
    for slot in slots:
        species = [z for z, k in slot.counts if k > 0]
        if len(set(species)) < len(species) or set(species) & set(numbers[slot.sites].tolist()):
            return False
    return True


def _orderings_by_images(numbers: np.ndarray, slots: Sequence[_Slot], permutations: np.ndarray) -> list[np.ndarray]:
    """Reference path: every placement, skipping those already seen as an image of a kept one."""
    inverse = np.argsort(permutations, axis=1)
    seen: set[bytes] = set()
    distinct: list[np.ndarray] = []
    for combo in itertools.product(*(_slot_assignments(s) for s in slots)):
        config = numbers.copy()  # sites not chosen for any species keep their element
        for assignment in combo:
            for sites, z in assignment:
                config[sites] = z
        key = config.tobytes()
        if key in seen:
            continue
        distinct.append(config)
        seen.update(image.tobytes() for image in config[inverse])
    return distinct
