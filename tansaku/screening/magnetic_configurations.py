"""Collinear starting configurations of the magnetic moments, one DFT task each.

A spin-polarised DFT calculation converges to the magnetic state nearest its starting moments, so the
ground state of a candidate is only found by starting from several.  Modes (campaign ``[magnetism]
configurations``):

* ``"fm"``: all moments parallel, the magnitudes of :data:`START_MOMENTS`
  (:func:`default_start_moments`).
* ``"fm+re-antiparallel"``: FM plus, where the cell holds both, rare-earth (4f) moments antiparallel to the
  3d transition-metal sublattice (``"re-anti"``): the ground state of heavy rare earths with Fe/Co
  (GdCo5, Tb2Fe17), and the spin arrangement of light ones (Sm, Nd: spin antiparallel, the larger orbital
  moment makes the 4f *total* moment parallel).
* ``"enumerate"``: FM, ``re-anti`` and the collinear up/down assignments of the magnetic sites, up to a
  global flip and the space-group operations of the cell (spglib; cheap for the small cells this is meant
  for), AFM-like first (smallest net moment), capped by ``max_configurations`` in all.  Cells with more
  than :data:`MAX_ENUMERATED_SITES` magnetic sites are not enumerated (2^n grows too fast): they get FM and
  ``re-anti`` only, and the caller is told so.  With a ``supercell`` (e.g. (2, 1, 1)) the up/down patterns
  are those of that supercell of the cell (named ``ud:uudd@2x1x1``), while FM and ``re-anti`` stay in the
  cell itself: a cell with one magnetic site (2-atom L10 FePt) gets an antiparallel state, and a 2-site
  cell (B2 FeCo) one with half its nearest-neighbour bonds flipped (the stand-in for the disordered state
  of the Curie-temperature estimate) instead of the all-bonds-flipped one.

Magnetic sites are the atoms of :data:`MAGNETIC_ELEMENTS` (3d V..Ni and the open-4f lanthanides Ce..Yb);
the others (Pt, N, B, ...) keep their default (small, positive) start: their moment is induced.  The start
moments of every configuration, FM included, enter its task id: a change of :data:`START_MOMENTS` makes
new tasks, never silently reuses results started elsewhere.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from tansaku.screening.elements import _symbols

CONFIGURATION_MODES = ("fm", "fm+re-antiparallel", "enumerate")
FM = "fm"
RE_ANTIPARALLEL = "re-anti"
MAX_ENUMERATED_SITES = 12  # 2^11 = 2048 assignments up to a global flip: still instant to reduce
TM_3D_MAGNETIC: frozenset[str] = frozenset({"V", "Cr", "Mn", "Fe", "Co", "Ni"})
RE_4F_MAGNETIC: frozenset[str] = _symbols("Ce", "Yb")
MAGNETIC_ELEMENTS: frozenset[str] = TM_3D_MAGNETIC | RE_4F_MAGNETIC


@dataclass(frozen=True)
class MagneticConfiguration:
    """One starting configuration: its name (``fm``, ``re-anti``, ``ud:uddu`` over the magnetic sites in
    atom order) and the initial moments (μB) of every atom."""

    name: str
    magmoms: tuple[float, ...]  # per atom of the cell repeated ``repeat`` times (Atoms.repeat's atom order)
    repeat: tuple[int, int, int] = (1, 1, 1)

    def atoms(self, atoms: Atoms) -> Atoms:
        """A copy of ``atoms`` (the cell the configuration was made for) repeated to this configuration's
        cell, with its initial moments."""
        out = atoms.repeat(self.repeat) if self.repeat != (1, 1, 1) else atoms.copy()
        out.set_initial_magnetic_moments(self.magmoms)
        return out


def magnetic_sites(atoms: Atoms) -> np.ndarray:
    """Indices of the atoms whose element is in :data:`MAGNETIC_ELEMENTS`."""
    return np.array([i for i, s in enumerate(atoms.get_chemical_symbols()) if s in MAGNETIC_ELEMENTS], dtype=int)


# Starting moments (μB) of spin-polarised DFT, chosen near the moments these atoms carry in metals:
# 3d about 1.2-1.3x the elemental moments (bcc Fe 2.22, hcp Co 1.72, fcc Ni 0.62 μB; Mn 2.4-4.3 μB in MnAl /
# MnPt), 4f the Hund's-rule spin moment 2S of the R3+ ion (Sm 4f5: 5 μB; Gd 4f7: 7 μB; Eu, divalent
# in metals, 4f7: 7 μB).
# pymatgen's defaults (Fe, Co, Ni, Mn 5 μB, made for high-spin oxides in VASP) sent GPAW to non-magnetic
# solutions here: B2 FeCo from 5 μB ended at -15.639 eV with no moment, from 2.5 μB ferromagnetic at
# -16.787 eV (docs/magnetism.md).
START_MOMENTS: dict[str, float] = {
    "V": 1.5, "Cr": 2.5, "Mn": 3.5, "Fe": 2.8, "Co": 2.0, "Ni": 0.8,
    "Ce": 1.0, "Pr": 2.0, "Nd": 3.0, "Pm": 4.0, "Sm": 5.0, "Eu": 7.0, "Gd": 7.0, "Tb": 6.0, "Dy": 5.0,
    "Ho": 4.0, "Er": 3.0, "Tm": 2.0, "Yb": 1.0,
}
INDUCED_START_MOMENT = 0.6  # μB, every other element (pymatgen's default for unlisted ones)


def default_start_moments(symbols: list[str]) -> np.ndarray:
    """The FM start of a spin-polarised DFT task: :data:`START_MOMENTS` per site (μB), 0.6 μB for other
    elements (their moment is induced)."""
    return np.array([START_MOMENTS.get(s, INDUCED_START_MOMENT) for s in symbols], dtype=float)


def _start_magnitudes(atoms: Atoms) -> np.ndarray:
    return np.abs(default_start_moments(atoms.get_chemical_symbols()))


def site_permutations(atoms: Atoms, symprec: float = 1e-3) -> np.ndarray:
    """(n_ops, natoms) permutations of the atoms under the cell's space-group operations (spglib):
    row k maps atom i to atom ``perm[k, i]``.  Only the identity if spglib finds no symmetry."""
    import warnings

    import spglib

    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():  # spglib 2.x warns about its error-handling mode on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            data = spglib.get_symmetry(cell, symprec=symprec)
        except Exception:  # noqa: BLE001 - spglib's new error mode raises where the old one returned None
            data = None
    frac = atoms.get_scaled_positions()
    perms = []
    for rotation, translation in zip(data["rotations"], data["translations"]) if data else []:
        moved = frac @ rotation.T + translation
        diff = moved[:, None, :] - frac[None, :, :]
        diff -= np.round(diff)
        dist = np.linalg.norm(diff @ atoms.cell.array, axis=2)
        target = dist.argmin(axis=1)
        if np.allclose(dist[np.arange(len(atoms)), target], 0, atol=10 * symprec + 1e-6) \
                and len(set(target)) == len(atoms):
            perms.append(target)
    return np.array(perms or [np.arange(len(atoms))], dtype=int)


def _canonical(signs: np.ndarray, sites: np.ndarray, perms: np.ndarray) -> tuple[int, ...]:
    """The smallest of the sign patterns (over ``sites``) equivalent to ``signs`` under the permutations
    and a global flip."""
    best = None
    for perm in perms:
        moved = np.ones(int(perms.shape[1]), dtype=int)
        moved[perm[sites]] = signs
        for flip in (1, -1):
            pattern = tuple(int(v) for v in flip * moved[sites])
            if best is None or pattern < best:
                best = pattern
    return best  # type: ignore[return-value]


def enumerate_collinear(atoms: Atoms, sites: np.ndarray) -> list[np.ndarray]:
    """Symmetry-distinct up/down sign patterns (+1/-1 per magnetic site) other than FM, up to a global flip,
    sorted by |net sign sum| (AFM-like first) then pattern."""
    perms = site_permutations(atoms)
    seen: dict[tuple[int, ...], np.ndarray] = {}
    for tail in itertools.product((1, -1), repeat=len(sites) - 1):
        signs = np.array((1, *tail), dtype=int)
        if (signs == 1).all():
            continue
        key = _canonical(signs, sites, perms)
        seen.setdefault(key, signs)
    return sorted(seen.values(), key=lambda s: (abs(int(s.sum())), tuple(-s)))


def magnetic_configurations(atoms: Atoms, mode: str = FM, max_configurations: int = 8,
                            supercell: tuple[int, int, int] = (1, 1, 1)) -> list[MagneticConfiguration]:
    """The starting configurations of ``atoms`` for ``mode`` (:data:`CONFIGURATION_MODES`), FM first,
    at most ``max_configurations`` (>= 1).  ``supercell``: the cell in which ``enumerate`` builds its
    up/down patterns (FM and ``re-anti`` stay in ``atoms``).  A cell without two magnetic sites (in the
    supercell, for ``enumerate``) has FM only."""
    if mode not in CONFIGURATION_MODES:
        raise ValueError(f"unknown magnetic configuration mode {mode!r}; choose {', '.join(CONFIGURATION_MODES)}")
    magnitudes = _start_magnitudes(atoms)
    out = [MagneticConfiguration(FM, tuple(float(m) for m in magnitudes))]
    if mode == FM:
        return out
    symbols = np.array(atoms.get_chemical_symbols())
    is_re = np.isin(symbols, sorted(RE_4F_MAGNETIC))
    is_tm = np.isin(symbols, sorted(TM_3D_MAGNETIC))
    if is_re.any() and is_tm.any():
        out.append(MagneticConfiguration(RE_ANTIPARALLEL, tuple(float(m) for m in np.where(is_re, -magnitudes,
                                                                                             magnitudes))))
    repeat = tuple(int(n) for n in supercell)
    cell = atoms.repeat(repeat) if repeat != (1, 1, 1) else atoms
    sites = magnetic_sites(cell)
    if mode == "enumerate" and 2 <= len(sites) <= MAX_ENUMERATED_SITES:
        copies = len(cell) // len(atoms)
        known = {tuple(np.tile(c.magmoms, copies).tolist()) for c in out}  # FM and re-anti, in the supercell
        suffix = "" if repeat == (1, 1, 1) else "@" + "x".join(map(str, repeat))
        site_set = set(sites.tolist())
        for signs in enumerate_collinear(cell, sites):
            if len(out) >= max_configurations:
                break
            magmoms = np.tile(magnitudes, copies)
            magmoms[sites] *= signs
            magmoms = tuple(float(m) for m in magmoms)
            flipped = tuple(-m if i in site_set else m for i, m in enumerate(magmoms))
            if magmoms in known or flipped in known:
                continue
            out.append(MagneticConfiguration("ud:" + "".join("u" if s > 0 else "d" for s in signs) + suffix,
                                             magmoms, repeat))
    return out[:max_configurations]


def too_many_sites(atoms: Atoms, supercell: tuple[int, int, int] = (1, 1, 1)) -> bool:
    """True when ``enumerate`` falls back to FM and ``re-anti`` for this cell (too many magnetic sites in
    the ``supercell`` of it)."""
    return len(magnetic_sites(atoms)) * int(np.prod(supercell)) > MAX_ENUMERATED_SITES


def moment_signs(magmoms: np.ndarray, tolerance: float = 0.1) -> np.ndarray:
    """+1 / -1 per site, 0 where |m| < ``tolerance`` μB (no moment to align)."""
    m = np.asarray(magmoms, dtype=float)
    return np.where(np.abs(m) < tolerance, 0, np.sign(m)).astype(int)


def flipped_bond_fraction(atoms: Atoms, reference_magmoms, magmoms, shell_tolerance: float = 0.1) -> float:
    """Fraction of nearest-neighbour pairs of magnetic sites whose relative alignment differs between two
    collinear states of one cell (e.g. a configuration and the ground state): 1 for the B2 antiferromagnet of
    bcc Fe against FM, 1/2 for a state as disordered as a random one (nearest neighbours only).  The sites
    are those of magnetic elements that carry a moment in both states (a Ni whose moment vanishes between
    antiparallel Mn neighbours is left out, and the Mn–Mn pairs count); pairs are those within
    (1 + ``shell_tolerance``) of the shortest distance between such sites, periodic images included.
    NaN when no pair is left."""
    from ase.neighborlist import neighbor_list

    ref, now = moment_signs(reference_magmoms), moment_signs(magmoms)
    sites = magnetic_sites(atoms)
    sites = sites[(ref[sites] != 0) & (now[sites] != 0)] if len(sites) else sites
    if len(sites) == 0:
        return float("nan")
    cutoff = 1.5 * (atoms.get_volume() / len(atoms)) ** (1 / 3) * 2
    i, j, d = neighbor_list("ijd", atoms, cutoff)
    magnetic = np.isin(i, sites) & np.isin(j, sites)
    i, j, d = i[magnetic], j[magnetic], d[magnetic]
    if not len(d):
        return float("nan")
    shell = d <= d.min() * (1 + shell_tolerance)
    i, j = i[shell], j[shell]
    return float(np.mean(ref[i] * ref[j] != now[i] * now[j]))
