"""Orbit-canonical enumeration: same orderings, in the same order, as keep-first-of-each-orbit; Burnside counts."""

import itertools
import math

import numpy as np
import pytest
from burnside import burnside

from tansaku.screening.orderly import orbit_representatives
from tansaku.screening.prototypes import build, get_prototype
from tansaku.screening.substitution import (
    Occupation,
    Substitution,
    SubstitutionError,
    Variant,
    _orderings_by_images,
    _resolve,
    _select_sites,
    distinct_orderings,
)
from tansaku.screening.symmetry import site_permutations, site_types


def parent(prototype, sites=None, supercell=(1, 1, 1)):
    atoms, labels = build(get_prototype(prototype), sites or {}, with_interstitials=True)
    atoms = atoms.repeat(supercell)
    labels = np.tile(labels, int(np.prod(supercell)))
    perms = site_permutations(atoms, site_types([f"{l}:{z}" for l, z in zip(labels, atoms.numbers)]))
    interstitial = {s.label for s in get_prototype(prototype).interstitial_sites()}
    return atoms, labels, perms, interstitial


def subst(target, *occupations, interstitial=False):
    return Substitution(target, tuple(Occupation(e, a, isinstance(a, float)) for e, a in occupations), interstitial)


CASES = [
    ("ThMn12", {"2a": "Sm"}, (1, 1, 1), Variant((subst("Fe", ("Co", 0.25)),))),
    ("ThMn12", {"2a": "Sm"}, (1, 1, 1), Variant((subst("Fe", ("Co", 2), ("Ti", 2)),))),
    ("ThMn12", {"2a": "Nd"}, (1, 1, 1), Variant((subst("8i", ("Co", 2)), subst("8j", ("Ti", 1), ("V", 1)),
                                                 subst("2b", ("N", 1), interstitial=True)))),
    ("CaCu5", {}, (2, 1, 1), Variant((subst("Co", ("Fe", 3), ("Ni", 1)),))),
    ("fcc", {"4a": "Cu"}, (2, 2, 1), Variant((subst("Cu", ("Au", 4), ("Pd", 2)),))),
    ("L12", {"1a": "Ni", "3c": "Al"}, (2, 1, 1), Variant((subst("Al", ("Ti", 2)), subst("Ni", ("Co", 1))))),
]


def reference(atoms, labels, perms, interstitial, variant):
    slots = [_resolve(s, _select_sites(s, atoms.numbers, labels, interstitial), "test") for s in variant.substitutions]
    return _orderings_by_images(atoms.numbers, slots, perms)


@pytest.mark.parametrize("prototype, sites, supercell, variant", CASES)
def test_same_orderings_in_the_same_order_as_keep_first_of_each_orbit(prototype, sites, supercell, variant):
    atoms, labels, perms, interstitial = parent(prototype, sites, supercell)
    got = distinct_orderings(atoms.numbers, labels, interstitial, variant, perms, max_orderings=10**6)
    want = reference(atoms, labels, perms, interstitial, variant)
    assert len(got) == len(want) > 1
    assert all(np.array_equal(g, w) for g, w in zip(got, want))


def test_repeated_species_fall_back_to_the_image_path():
    atoms, labels, perms, interstitial = parent("ThMn12", {"2a": "Sm"})
    variant = Variant((subst("8i", ("Fe", 2), ("Co", 2)),))  # Fe on Fe sites: placements collapse
    got = distinct_orderings(atoms.numbers, labels, interstitial, variant, perms)
    plain = distinct_orderings(atoms.numbers, labels, interstitial, Variant((subst("8i", ("Co", 2)),)), perms)
    assert len(got) == len(plain)


def restricted(perms, sites):
    position = {s: i for i, s in enumerate(sites)}
    return np.array([[position[p[s]] for s in sites] for p in perms])


@pytest.mark.parametrize("counts", [(6,), (3, 2), (4, 2, 1), (12,), (6, 2)])
def test_counts_agree_with_burnside_on_smfe12(counts):
    atoms, _, perms, _ = parent("ThMn12", {"2a": "Sm"})
    fe = np.flatnonzero(atoms.numbers == 26)
    blocks = [(fe, z, k) for z, k in zip((27, 22, 23), counts)]
    members, _, _ = orbit_representatives(blocks, perms)
    assert len(members) == burnside(restricted(perms, fe), counts)


def test_counts_agree_with_brute_force_orbits():
    """Every placement, its orbit as a set of images: the number of distinct orbits."""
    atoms, _, perms, _ = parent("fcc", {"4a": "Cu"}, (2, 1, 1))
    sites = np.arange(len(atoms))
    local = restricted(perms, sites)
    inverse = np.argsort(local, axis=1)
    orbits = set()
    for first in itertools.combinations(sites, 3):
        for second in itertools.combinations([s for s in sites if s not in first], 2):
            config = np.zeros(len(sites), np.int64)
            config[list(first)], config[list(second)] = 1, 2
            orbits.add(min(image.tobytes() for image in config[inverse]))
    members, _, _ = orbit_representatives([(sites, 1, 3), (sites, 2, 2)], perms)
    assert len(members) == len(orbits) == burnside(local, (3, 2))


def test_twenty_million_placements_enumerated_without_storing_them():
    """SmFe12 with 6 Co and 2 Ti on the 24 Fe sites: 20.6 million placements, Burnside's orbit count."""
    atoms, _, perms, _ = parent("ThMn12", {"2a": "Sm"})
    fe = np.flatnonzero(atoms.numbers == 26)
    assert math.comb(24, 6) * math.comb(18, 2) > 2 * 10**7
    members, _, _ = orbit_representatives([(fe, 27, 6), (fe, 22, 2)], perms)
    assert len(members) == burnside(restricted(perms, fe), (6, 2))


def test_max_orderings_bounds_distinct_orderings_not_placements():
    atoms, labels, perms, interstitial = parent("ThMn12", {"2a": "Sm"})
    variant = Variant((subst("Fe", ("Co", 0.25)),))  # 134,596 placements, 5,069 orderings, 32 operations
    assert len(distinct_orderings(atoms.numbers, labels, interstitial, variant, perms, max_orderings=5000)) == 5069
    with pytest.raises(SubstitutionError, match="134,596 placements, at least 4,207 distinct orderings"):
        distinct_orderings(atoms.numbers, labels, interstitial, variant, perms, max_orderings=4000)
