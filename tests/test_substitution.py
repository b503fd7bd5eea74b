"""Symmetry-distinct substitutions, interstitials, dedup and candidate identity."""

import itertools
import math

import numpy as np
import pytest
from burnside import burnside
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.io.ase import AseAtomsAdaptor

from tansaku.screening.generate import Decoration, generate, generate_from
from tansaku.screening.identity import structure_id
from tansaku.screening.prototypes import build, get_prototype
from tansaku.screening.substitution import (
    Occupation,
    Substitution,
    SubstitutionError,
    Variant,
    distinct_orderings,
)
from tansaku.screening.symmetry import site_permutations, site_types


def sub(target, element, amount=1.0, fraction=True, interstitial=False):
    return Substitution(target, (Occupation(element, amount, fraction),), interstitial)


def thmn12_parent():
    atoms, labels = build(get_prototype("ThMn12"), with_interstitials=True)
    perms = site_permutations(atoms, site_types([f"{l}:{z}" for l, z in zip(labels, atoms.numbers)]))
    return atoms, labels, perms


def test_permutations_are_symmetries_of_the_cell():
    atoms, labels, perms = thmn12_parent()
    assert len(perms) == 32  # I4/mmm: 16 point operations x 2 centring translations
    for perm in perms:
        assert sorted(perm) == list(range(len(atoms)))
        assert (labels[perm] == labels).all()  # every operation keeps each Wyckoff orbit


def test_two_of_eight_8i_orderings_match_structure_matcher_classes():
    atoms, labels, perms = thmn12_parent()
    got = distinct_orderings(atoms.numbers, labels, {"2b"}, Variant((sub("8i", "Co", 2, False),)), perms)
    sites = np.flatnonzero(labels == "8i")
    structures = []
    for chosen in itertools.combinations(sites, 2):
        trial = atoms.copy()
        trial.numbers[list(chosen)] = 27
        structures.append(AseAtomsAdaptor.get_structure(trial[trial.numbers != 0]))
    classes = StructureMatcher().group_structures(structures)
    assert len(got) == len(classes)
    assert all((g[sites] == 27).sum() == 2 for g in got)


def test_fraction_of_element_counts_agree_with_burnside():
    atoms, labels, perms = thmn12_parent()
    fe = np.flatnonzero(atoms.numbers == 26)
    fe_perms = np.array([[np.searchsorted(fe, p[i]) for i in fe] for p in perms])
    got = distinct_orderings(atoms.numbers, labels, {"2b"}, Variant((sub("Fe", "Co", 0.25),)), perms)
    assert len(got) == burnside(fe_perms, (6,))
    assert len(got) < math.comb(24, 6) / 10


def test_full_substitution_and_interstitial_compositions():
    decoration = Decoration("ThMn12", sites={"2a": ("Nd",)}, include_parent=True, variants=(
        Variant((sub("8i", "Co"),)), Variant((sub("2b", "N", interstitial=True),))))
    parent, full_co, nitride = generate_from(decoration)
    assert parent.atoms.get_chemical_formula() == "Fe24Nd2"
    assert full_co.atoms.get_chemical_formula() == "Co8Fe16Nd2"
    assert nitride.atoms.get_chemical_formula() == "Fe24N2Nd2"
    assert full_co.parent == nitride.parent == parent.id
    assert "8i:Co" in full_co.label and "ThMn12" in full_co.label


@pytest.mark.parametrize("variant, message", [
    (Variant((sub("Fe", "Co", 0.2),)), "4.8 sites, not a whole number"),
    (Variant((sub("8x", "Co"),)), "unknown site or element '8x'"),
    (Variant((sub("8i", "Co", 2, False), sub("Fe", "Ti", 1, False))), "already changed"),
    (Variant((sub("2b", "N"),)), "interstitial site"),
    (Variant((sub("8i", "N", interstitial=True),)), "host site"),
    (Variant((sub("8i", "Co", 9, False),)), "only 8 8i sites"),
])
def test_bad_variants_name_the_problem(variant, message):
    atoms, labels, perms = thmn12_parent()
    with pytest.raises(SubstitutionError, match=message):
        distinct_orderings(atoms.numbers, labels, {"2b"}, variant, perms)


def test_too_many_orderings_is_refused_before_enumerating():
    decoration = Decoration("ThMn12", supercell=(1, 1, 2), max_orderings=1000,
                            variants=(Variant((sub("Fe", "Co", 0.25),)),))
    with pytest.raises(SubstitutionError, match=r"prototypes\[0\]\.variants\[0\].*orderings in the 1x1x2 cell"):
        generate([decoration])


def test_dedup_removes_equivalent_decorations_and_counts_them():
    # L10 AB and BA are the same structure shifted by (1/2,1/2,1/2): only one of each pair survives
    decoration = Decoration("L10", sites={"1a": ("Cu", "Au"), "1d": ("Cu", "Au")}, distinct_elements=True)
    result = generate([decoration])
    assert result.generated == 2 and result.duplicates == 1 and len(result.candidates) == 1


def test_candidate_ids_are_stable_and_independent_of_atom_order():
    decoration = Decoration("CaCu5", variants=(Variant((sub("3g", "Fe", 1, False),)),))
    first = [c.id for c in generate_from(decoration)]
    second = [c.id for c in generate_from(decoration)]
    assert first == second and len(set(first)) == len(first)
    cand = generate_from(decoration)[1]
    assert structure_id(cand.atoms[::-1]) == cand.id
