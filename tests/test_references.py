"""Elemental reference structures: one element only, sane distances, molecules in boxes, moments."""

import numpy as np
import pytest
from ase.data import chemical_symbols
from ase.neighborlist import neighbor_list

from tansaku.screening.references import BOX, elemental_reference

NOBLE = {"He", "Ne", "Ar", "Kr", "Xe"}
ELEMENTS = [s for s in chemical_symbols[1:84] if s not in NOBLE]


@pytest.mark.parametrize("symbol", ELEMENTS)
def test_reference_is_a_sane_elemental_structure(symbol):
    atoms = elemental_reference(symbol)
    assert set(atoms.get_chemical_symbols()) == {symbol}
    assert atoms.pbc.all() and atoms.cell.volume > 0
    d = neighbor_list("d", atoms, 6.0)
    assert d.min() > 0.7
    assert isinstance(atoms.info["molecule"], bool)
    assert atoms.get_initial_magnetic_moments().shape == (len(atoms),)


def test_nitrogen_is_a_dimer_in_a_box():
    atoms = elemental_reference("N")
    assert len(atoms) == 2 and atoms.info["molecule"]
    assert atoms.get_distance(0, 1) == pytest.approx(1.1, abs=0.02)
    assert np.allclose(atoms.cell.cellpar(), [BOX, BOX, BOX, 90, 90, 90])
    assert np.allclose(atoms.positions.mean(axis=0), [BOX / 2] * 3)


def test_iron_is_ferromagnetic_bcc():
    atoms = elemental_reference("Fe")
    assert len(atoms) in (1, 2) and not atoms.info["molecule"]
    assert atoms.cell.get_bravais_lattice().name == "BCC"
    assert (atoms.get_initial_magnetic_moments() > 0).all()


@pytest.mark.parametrize("symbol, moment", [("Co", 1.6), ("Ni", 0.6), ("O", 1.0), ("Cu", 0.0), ("Nd", 0.0)])
def test_initial_moments(symbol, moment):
    assert np.allclose(elemental_reference(symbol).get_initial_magnetic_moments(), moment)


@pytest.mark.parametrize("symbol, natoms", [("B", 12), ("Ga", 4), ("P", 4), ("S", 32), ("Se", 3), ("Sm", 3),
                                            ("Co", 2), ("Mn", 1), ("Bi", 2)])
def test_hand_made_and_ase_cells(symbol, natoms):
    assert len(elemental_reference(symbol)) == natoms


def test_noble_gas_is_a_single_atom_in_a_box():
    atoms = elemental_reference("Ar")
    assert len(atoms) == 1 and atoms.info["molecule"]


def test_references_are_fresh_copies():
    elemental_reference("Fe").positions += 1.0
    assert np.allclose(elemental_reference("Fe").positions, 0.0)


@pytest.mark.parametrize("symbol", ["Xx", "X", "fe", "", "U"])
def test_unknown_or_unsupported_symbol(symbol):
    with pytest.raises(ValueError, match=repr(symbol)):
        elemental_reference(symbol)
