"""Every prototype builds with the right atom count, space group, Wyckoff multiplicities and distances."""

from collections import Counter

import numpy as np
import pytest
import spglib
from ase.neighborlist import neighbor_list

from tansaku.screening.prototypes import Prototype, build, get_prototype, prototype_names

# name -> (host atoms, interstitial atoms) in the conventional cell
EXPECTED_COUNTS = {
    "ThMn12": (26, 2), "CaCu5": (6, 0), "Th2Zn17": (57, 9), "Th2Ni17": (38, 6), "Nd2Fe14B": (68, 0),
    "L10": (2, 0), "L12": (4, 0), "B2": (2, 0), "NiAs": (4, 0), "C15": (24, 0), "PuNi3": (36, 0),
    "C14": (12, 0), "fcc": (4, 0), "bcc": (2, 0), "hcp": (2, 0),
}
pytestmark = pytest.mark.filterwarnings("ignore:Set OLD_ERROR_HANDLING:DeprecationWarning")  # spglib 2.5+
GHOST_NUMBER = 999  # spglib species for ghost interstitials, distinct from every element


def spacegroup_number(atoms) -> int:
    numbers = np.where(atoms.numbers == 0, GHOST_NUMBER, atoms.numbers)
    symbol = spglib.get_spacegroup((atoms.cell[:], atoms.get_scaled_positions(), numbers), symprec=1e-3)
    return int(symbol.split("(")[1].rstrip(")"))


def shortest_distance(atoms, between=None) -> float:
    """Shortest distance including periodic images, optionally only from atoms in mask ``between``."""
    i, j, d = neighbor_list("ijd", atoms, 6.0)
    if between is not None:
        keep = between[i] & ~between[j]
        d = d[keep]
    return float(d.min())


def test_prototype_list_matches_expectations():
    assert sorted(prototype_names()) == sorted(EXPECTED_COUNTS)


@pytest.fixture(params=sorted(EXPECTED_COUNTS))
def prototype(request) -> Prototype:
    return get_prototype(request.param)


def test_atom_counts(prototype):
    hosts, interstitials = EXPECTED_COUNTS[prototype.name]
    atoms, labels = build(prototype, with_interstitials=False)
    assert len(atoms) == len(labels) == hosts
    atoms, labels = build(prototype)
    assert len(atoms) == len(labels) == hosts + interstitials
    assert (atoms.numbers == 0).sum() == interstitials
    assert set(atoms.get_chemical_symbols()) == {s.element for s in prototype.host_sites()} | (
        {"X"} if interstitials else set())


def test_spacegroup(prototype):
    atoms, _ = build(prototype)
    assert spacegroup_number(atoms[atoms.numbers > 0]) == prototype.spacegroup
    assert spacegroup_number(atoms) == prototype.spacegroup  # ghosts fill whole orbits


def test_shortest_distances(prototype):
    atoms, _ = build(prototype)
    ghosts = atoms.numbers == 0
    assert shortest_distance(atoms[~ghosts]) > 2.0
    if ghosts.any():
        assert shortest_distance(atoms, between=ghosts) > 1.5  # interstitial to host


def test_site_multiplicities(prototype):
    _, labels = build(prototype)
    counts = Counter(labels.tolist())
    assert counts == {s.label: s.multiplicity for s in prototype.sites}


def test_sites_are_consistent(prototype):
    labels = [s.label for s in prototype.sites]
    assert len(labels) == len(set(labels))
    for site in prototype.sites:
        assert site.label.startswith(site.wyckoff)
        assert prototype.site(site.label) is site
    assert prototype.host_sites() + prototype.interstitial_sites() == tuple(
        sorted(prototype.sites, key=lambda s: s.interstitial))
    assert len(prototype.cellpar) == 6 and prototype.source


def test_decorated_build_puts_elements_on_sites():
    atoms, labels = build(get_prototype("ThMn12"), {"2a": "Nd", "8i": "Co"})
    symbols = np.array(atoms.get_chemical_symbols())
    assert set(symbols[labels == "2a"]) == {"Nd"}
    assert set(symbols[labels == "8i"]) == {"Co"}
    assert set(symbols[(labels == "8f") | (labels == "8j")]) == {"Fe"}
    assert set(symbols[labels == "2b"]) == {"X"}


def test_filled_interstitials_and_ghosts():
    proto = get_prototype("Th2Zn17")
    atoms, labels = build(proto, {"9e": "N"}, with_interstitials=False)
    assert atoms.get_chemical_symbols().count("N") == 9 and (labels == "9e").sum() == 9
    atoms, labels = build(proto, with_interstitials=False)
    assert "9e" not in labels and 0 not in atoms.numbers


def test_cellpar_override_keeps_fractional_positions():
    proto = get_prototype("CaCu5")
    ref, _ = build(proto)
    scaled, _ = build(proto, cellpar=[5.2, 5.2, 4.1, 90, 90, 120])
    assert np.allclose(scaled.cell.cellpar(), [5.2, 5.2, 4.1, 90, 90, 120])
    assert np.allclose(scaled.get_scaled_positions(), ref.get_scaled_positions())


@pytest.mark.parametrize("query, name", [("thmn12", "ThMn12"), ("ND2FE14B", "Nd2Fe14B"), ("MgCu2", "C15"),
                                         (" l10 ", "L10"), ("HCP", "hcp")])
def test_lookup_is_case_insensitive(query, name):
    assert get_prototype(query).name == name


def test_unknown_prototype_names_it():
    with pytest.raises(ValueError, match="Nd3Fe29.*ThMn12"):
        get_prototype("Nd3Fe29")


def test_unknown_site_names_it():
    proto = get_prototype("ThMn12")
    with pytest.raises(ValueError, match="'8k'.*8i"):
        proto.site("8k")
    with pytest.raises(ValueError, match="'8k'.*ThMn12|ThMn12.*'8k'"):
        build(proto, {"8k": "Co"})


def test_unknown_element_names_it():
    with pytest.raises(ValueError, match="'Xy'"):
        build(get_prototype("CaCu5"), {"1a": "Xy"})


def test_bad_cellpar():
    with pytest.raises(ValueError, match="cellpar"):
        build(get_prototype("bcc"), cellpar=[2.9])
