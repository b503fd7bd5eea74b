"""Elemental reference structures for formation energies and convex hulls.

:func:`elemental_reference` returns the ground-state structure of an element as a fresh
``ase.Atoms`` (primitive cell where possible) with initial magnetic moments set:

* periodic solids from ASE's reference states (``ase.build.bulk``), e.g. bcc Fe, hcp Co/Ti/Nd,
  fcc Ni, rhombohedral Sm and A7 As/Sb/Bi.  La, Pr and Nd are dhcp in nature; ASE (and we) use hcp.
  C is diamond (graphite lies slightly lower but needs van der Waals forces for its c axis);
* hand-made cells from Wyckoff data where ASE has no usable solid: alpha-B12, black P, alpha-S8
  (32 atoms), alpha-Ga, trigonal Se and Te; diamond alpha-Sn (the 0 K phase; ASE gives beta-Sn);
* documented approximations: Mn as non-magnetic fcc (alpha-Mn has 58 atoms and non-collinear
  order; NM fcc lies roughly 0.1 eV/atom above it in DFT, so use reference energies from a file when Mn
  formation energies matter); Pm (no ASE data) as hcp with the dhcp a and c/2;
* molecules for H, N, O, F, Cl, Br, I (dimer at its experimental bond length) and single atoms for
  the noble gases, centred in a periodic 10 Å cubic box with ``atoms.info["molecule"] = True``:
  relax the atoms, never the cell.  The lattice (van der Waals) energy of solid Br2/I2 is neglected.

Elements beyond Bi are supported only where ASE's reference state is a simple solid (Po, Ac, Th);
other symbols raise ValueError.  Initial moments: Fe 2.2, Co 1.6, Ni 0.6 (ferromagnets), O 1.0 (triplet O2); all others 0, including
the 4f elements, whose treatment (4f in core or valence) depends on the calculator.
"""

from __future__ import annotations

from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, reference_states
from ase.spacegroup import crystal

BOX = 10.0  # Å, edge of the cubic box around molecules

MAGMOMS: dict[str, float] = {"Fe": 2.2, "Co": 1.6, "Ni": 0.6, "O": 1.0}

# Experimental bond lengths of diatomic molecules (Å), NIST CCCBDB.
_DIMERS: dict[str, float] = {
    "H": 0.741, "N": 1.098, "O": 1.208, "F": 1.412, "Cl": 1.988, "Br": 2.281, "I": 2.666,
}
_NOBLE = {"He", "Ne", "Ar", "Kr", "Xe", "Rn"}

# symbol -> (space group, setting, cellpar, Wyckoff representatives); built as primitive cells.
_CRYSTALS: dict[str, tuple[int, int, tuple[float, ...], list[tuple[float, float, float]]]] = {
    # Literature Wyckoff data, each checked against known bond lengths (B 1.67-2.02, P 2.22/2.24,
    # S 2.05 in S8 rings, Ga 2.48 dimer, Se 2.37, Te 2.84 Å).
    # alpha-B, R-3m hexagonal axes, 2 x 18h (after Will & Kiefer 2001): 12-atom icosahedral cell
    "B": (166, 1, (4.908, 4.908, 12.567, 90, 90, 120),
          [(0.11886, -0.11886, 0.89133), (0.19686, -0.19686, 0.02432)]),
    # black P, Cmce 8f (Brown & Rundqvist 1965)
    "P": (64, 1, (3.3136, 10.478, 4.3763, 90, 90, 90), [(0, 0.10168, 0.08056)]),
    # alpha-S8, Fddd origin choice 2, 4 x 32h (Rettig & Trotter 1987)
    "S": (70, 2, (10.4646, 12.8660, 24.4860, 90, 90, 90),
          [(0.8554, 0.9526, 0.9516), (0.7844, 0.0301, 0.0763),
           (0.7069, 0.9795, 0.0040), (0.7862, 0.9073, 0.1290)]),
    # alpha-Ga, Cmce 8f (Sharma & Donohue 1962)
    "Ga": (64, 1, (4.5192, 7.6586, 4.5258, 90, 90, 90), [(0, 0.1549, 0.0810)]),
    # trigonal Se and Te, P3121 3a (Cherin & Unger 1967; Adenis et al. 1989)
    "Se": (152, 1, (4.366, 4.366, 4.954, 90, 90, 120), [(0.2254, 0, 1 / 3)]),
    "Te": (152, 1, (4.457, 4.457, 5.929, 90, 90, 120), [(0.2636, 0, 1 / 3)]),
}

# symbol -> ase.build.bulk arguments, where ASE's reference state is missing or not the 0 K phase.
_BULK: dict[str, dict[str, object]] = {
    "Mn": {"crystalstructure": "fcc", "a": 3.60},
    "Sn": {"crystalstructure": "diamond", "a": 6.489},
    "Pm": {"crystalstructure": "hcp", "a": 3.65, "c": 5.83},
}
# ASE reference symmetries that ase.build.bulk turns into a faithful solid (the others lack a basis).
_ASE_SOLIDS = {"fcc", "bcc", "hcp", "diamond", "sc", "bct", "rhombohedral"}


def _ase_symmetry(symbol: str) -> str | None:
    """Symmetry of ASE's reference state for ``symbol`` (None if ASE has none)."""
    return (reference_states[atomic_numbers[symbol]] or {}).get("symmetry")


def _in_box(symbol: str) -> Atoms:
    """Dimer (or single noble-gas atom) centred in a periodic cubic box."""
    d = _DIMERS.get(symbol)
    positions = [(0.0, 0.0, 0.0)] if d is None else [(0.0, 0.0, 0.0), (0.0, 0.0, d)]
    atoms = Atoms([symbol] * len(positions), positions=positions, cell=[BOX] * 3, pbc=True)
    atoms.center()
    return atoms


def elemental_reference(symbol: str) -> Atoms:
    """Ground-state (or documented approximate) structure of an element with initial moments."""
    if symbol not in atomic_numbers or symbol == "X":
        raise ValueError(f"unknown element {symbol!r}")
    molecule = symbol in _DIMERS or symbol in _NOBLE
    if molecule:
        atoms = _in_box(symbol)
    elif symbol in _CRYSTALS:
        spacegroup, setting, cellpar, basis = _CRYSTALS[symbol]
        atoms = crystal([symbol] * len(basis), basis, spacegroup=spacegroup, setting=setting,
                        cellpar=cellpar, primitive_cell=True)
        atoms.info.clear()  # drop ase's Spacegroup object: callers get plain Atoms
    elif symbol in _BULK or _ase_symmetry(symbol) in _ASE_SOLIDS:
        atoms = bulk(symbol, **_BULK.get(symbol, {}))
    else:
        raise ValueError(f"no reference structure for element {symbol!r}")
    atoms.set_initial_magnetic_moments([MAGMOMS.get(symbol, 0.0)] * len(atoms))
    atoms.info["molecule"] = molecule
    return atoms
