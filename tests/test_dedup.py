"""Fingerprint-bucketed dedup keeps exactly what pairwise StructureMatcher keeps, in the same order."""

import itertools

import numpy as np
import pytest
from ase.build import bulk

from tansaku.screening.candidate import Candidate
from tansaku.screening.dedup import deduplicate, deduplicate_pairwise
from tansaku.screening.fingerprint import fingerprint, near_pairs


def placements(base, k, element, limit=None):
    """Every way of putting ``k`` atoms of ``element`` on ``base`` (no symmetry reduction: many duplicates)."""
    out = []
    for chosen in itertools.islice(itertools.combinations(range(len(base)), k), limit):
        atoms = base.copy()
        atoms.symbols[list(chosen)] = element
        out.append(atoms)
    return out


def tricky_set(seed=0):
    """Duplicates by symmetry, supercells, permuted sites, translations, scale and small strains."""
    rng = np.random.default_rng(seed)
    fcc = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))  # 8 sites
    hcp = bulk("Co", "hcp", a=2.5, c=4.1).repeat((2, 2, 1))  # 8 sites, same compositions as fcc
    structures = placements(fcc, 3, "Au") + placements(hcp, 3, "Au") + placements(fcc, 2, "Ni")
    extra = []
    for index in rng.choice(len(structures), 40, replace=False):
        variant = structures[index].copy()
        kind = rng.integers(5)
        if kind == 0:
            variant = variant.repeat((1, 2, 1))
        elif kind == 1:
            variant = variant[rng.permutation(len(variant))]
        elif kind == 2:
            variant.translate(rng.random(3) * 3)
            variant.wrap()
        elif kind == 3:
            variant.set_cell(variant.cell * 1.07, scale_atoms=True)
        else:
            strain = np.eye(3) + np.diag(rng.uniform(-0.04, 0.04, 3))
            variant.set_cell(variant.cell @ strain, scale_atoms=True)
            variant.positions += rng.normal(0, 0.01, variant.positions.shape)
        extra.append(variant)
    return [Candidate(atoms, "test") for atoms in [*structures, *extra]]


def test_same_kept_candidates_as_pairwise_structure_matcher():
    candidates = tricky_set()
    fast, removed_fast = deduplicate(candidates)
    slow, removed_slow = deduplicate_pairwise(candidates)
    assert [c.id for c in fast] == [c.id for c in slow]
    assert removed_fast == removed_slow > 100
    assert len(fast) < 20


def test_orderings_of_one_origin_are_never_compared():
    base = bulk("Cu", "fcc", a=3.6, cubic=True)
    first, second = placements(base, 1, "Au", limit=2)  # equivalent by a translation
    same_origin = [Candidate(a, "test", origin="x") for a in (first, second)]
    assert len(deduplicate(same_origin)[0]) == len(deduplicate_pairwise(same_origin)[0]) == 2
    other_origin = [Candidate(first, "test", origin="x"), Candidate(second, "test", origin="y")]
    assert len(deduplicate(other_origin)[0]) == 1


def test_fingerprint_invariances_and_contrast():
    rng = np.random.default_rng(3)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 1))
    atoms.symbols = rng.choice(["Cu", "Au", "Ni"], len(atoms))
    ref = fingerprint(atoms)
    moved = atoms[rng.permutation(len(atoms))]
    moved.translate([0.3, 1.1, 0.7])
    moved.wrap()
    assert np.abs(fingerprint(moved) - ref).max() < 1e-10
    assert np.abs(fingerprint(atoms.repeat((1, 1, 3))) - ref).max() < 1e-10
    scaled = atoms.copy()
    scaled.set_cell(atoms.cell * 0.9, scale_atoms=True)
    assert np.abs(fingerprint(scaled) - ref).max() < 1e-10
    strained = atoms.copy()
    strained.set_cell(atoms.cell @ np.diag([1.05, 0.95, 1.0]), scale_atoms=True)
    assert 1e-3 < np.abs(fingerprint(strained) - ref).max() < 0.1
    other = atoms.copy()
    other.symbols = sorted(atoms.get_chemical_symbols())  # same composition, segregated
    assert np.abs(fingerprint(other) - ref).max() > 0.1


def test_near_pairs_is_the_brute_force_pair_set():
    rng = np.random.default_rng(5)
    values = rng.random((400, 6)) * 2
    group = rng.integers(0, 4, 400)
    i, j = near_pairs(values, group, 0.5)
    got = set(zip(i.tolist(), j.tolist()))
    diff = np.abs(values[:, None, :] - values[None, :, :]).max(axis=2)
    want = {(a, b) for a in range(400) for b in range(a + 1, 400) if group[a] == group[b] and diff[a, b] <= 0.5}
    assert got == want and len(want) > 10


@pytest.mark.slow
def test_same_kept_candidates_on_a_second_random_set():
    candidates = tricky_set(seed=1)
    assert [c.id for c in deduplicate(candidates)[0]] == [c.id for c in deduplicate_pairwise(candidates)[0]]


def test_composition_key_is_the_reduced_formula():
    from ase import Atoms

    from tansaku.screening.candidate import reduced_formula
    from tansaku.screening.dedup import composition_key

    formulas = ["Cu2Au2", "CuAu", "Cu3Au", "CuAu3", "Cu6Au2", "SmFe12", "Sm2Fe24", "Sm2Co6Fe18", "N2Sm2Fe24"]
    for a, b in itertools.product(formulas, repeat=2):
        same_key = composition_key(Atoms(a).numbers) == composition_key(Atoms(b).numbers)
        assert same_key == (reduced_formula(a) == reduced_formula(b))
