"""Crystal prototypes for magnet screening, built from Wyckoff data with ``ase.spacegroup.crystal``.

Each :class:`Prototype` holds one default decoration (elements, cell and free parameters from the
literature, see ``source``).  :func:`build` returns the conventional cell for any decoration, with
interstitial sites as ghost atoms (symbol ``"X"``, atomic number 0) unless a campaign fills them,
plus the site label of every atom.  Site labels are Wyckoff multiplicity + letter ("8i"), with a
trailing number where a Wyckoff position is used twice ("6c1", "6c2").

Data sources are given per prototype; /work/shared/reference/prototypes.md collects the magnet ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.spacegroup import crystal

GHOST = "X"  # ase symbol with atomic number 0, used for empty interstitial sites


@dataclass(frozen=True)
class Site:
    """One Wyckoff orbit of a prototype."""

    label: str  # unique within the prototype, e.g. "8i", "6c1"
    wyckoff: str  # multiplicity + letter, e.g. "6c"
    position: tuple[float, float, float]  # representative fractional coordinates
    element: str  # default occupant (for interstitials: the element usually put there)
    interstitial: bool = False  # empty unless a campaign fills it

    @property
    def multiplicity(self) -> int:
        """Number of atoms of this orbit in the conventional cell."""
        return int(self.wyckoff.rstrip("abcdefghijklmnopqrstuvwxyz"))


@dataclass(frozen=True)
class Prototype:
    """A crystal prototype: space group, default cell and decorated Wyckoff sites."""

    name: str
    spacegroup: int
    setting: int  # ase crystal setting (1: default; hexagonal axes for R-3m)
    cellpar: tuple[float, ...]  # a, b, c, alpha, beta, gamma of the default decoration
    sites: tuple[Site, ...]
    source: str

    def site(self, label: str) -> Site:
        """The site called ``label``; ValueError naming the valid labels otherwise."""
        for s in self.sites:
            if s.label == label:
                return s
        raise ValueError(
            f"prototype {self.name} has no site {label!r}; valid sites: {', '.join(self.labels())}"
        )

    def labels(self) -> list[str]:
        """All site labels, host sites first in definition order."""
        return [s.label for s in self.sites]

    def host_sites(self) -> tuple[Site, ...]:
        """Sites occupied in the default structure."""
        return tuple(s for s in self.sites if not s.interstitial)

    def interstitial_sites(self) -> tuple[Site, ...]:
        """Sites that are empty unless filled by a campaign."""
        return tuple(s for s in self.sites if s.interstitial)


def _site(label: str, position: Sequence[float], element: str, interstitial: bool = False) -> Site:
    """Site whose Wyckoff symbol is the label without its disambiguating trailing digits."""
    x, y, z = (float(v) for v in position)
    return Site(label, label.rstrip("0123456789"), (x, y, z), element, interstitial)


def _cubic(a: float) -> tuple[float, ...]:
    return (a, a, a, 90.0, 90.0, 90.0)


def _tetragonal(a: float, c: float) -> tuple[float, ...]:
    return (a, a, c, 90.0, 90.0, 90.0)


def _hexagonal(a: float, c: float) -> tuple[float, ...]:
    return (a, a, c, 90.0, 90.0, 120.0)


_PROTOTYPES: tuple[Prototype, ...] = (
    Prototype(
        "ThMn12", 139, 1, _tetragonal(8.59, 4.804),
        (_site("2a", (0, 0, 0), "Sm"), _site("8f", (0.25, 0.25, 0.25), "Fe"),
         _site("8i", (0.352, 0, 0), "Fe"), _site("8j", (0.278, 0.5, 0), "Fe"),
         _site("2b", (0, 0, 0.5), "N", interstitial=True)),
        "SmFe12 (I4/mmm), COD 1525023; N interstitial on 2b as in SmFe12N/ThMn12-type nitrides",
    ),
    Prototype(
        "CaCu5", 191, 1, _hexagonal(4.99, 3.97),
        (_site("1a", (0, 0, 0), "Sm"), _site("2c", (1 / 3, 2 / 3, 0), "Co"),
         _site("3g", (0.5, 0, 0.5), "Co")),
        "SmCo5 (P6/mmm), a 4.99, c 3.97 (literature, approx.)",
    ),
    Prototype(
        "Th2Zn17", 166, 1, _hexagonal(8.55, 12.44),
        (_site("6c1", (0, 0, 0.343), "Sm"), _site("6c2", (0, 0, 0.099), "Fe"),
         _site("9d", (0.5, 0, 0.5), "Fe"), _site("18f", (0.283, 0, 0), "Fe"),
         _site("18h", (0.5043, -0.5043, 0.1527), "Fe"),
         _site("9e", (0.5, 0, 0), "N", interstitial=True)),
        "R-3m hexagonal axes; free parameters from Nd2(Co,Ir)17, COD 1524537; cell of Sm2Fe17 "
        "(a 8.55, c 12.44, literature approx.); N on 9e as in Sm2Fe17N3",
    ),
    Prototype(
        "Th2Ni17", 194, 1, _hexagonal(8.48, 8.27),
        (_site("2b", (0, 0, 0.25), "Y"), _site("2d", (1 / 3, 2 / 3, 0.75), "Y"),
         _site("4f", (1 / 3, 2 / 3, 0.106), "Fe"), _site("6g", (0.5, 0, 0), "Fe"),
         _site("12j", (0.333, 0.96, 0.25), "Fe"), _site("12k", (0.167, 0.334, 0.984), "Fe"),
         _site("6h", (0.84, 0.68, 0.25), "N", interstitial=True)),
        "P63/mmc, AFLOW A17B2_hP38_194_fgjk_bc (ICSD 105410) with R on 2b + 2d; free parameters "
        "approx. (4f z 0.106, 12j (0.333, 0.96, 1/4), 12k x 0.167 z 0.984); cell of Y2Fe17 "
        "(a 8.48, c 8.27, literature approx.); N on 6h (x, 2x, 1/4), x 0.84, the octahedral "
        "site with 2 R neighbours (analogue of 9e in Th2Zn17), as in R2Fe17N3 nitrides",
    ),
    Prototype(
        "Nd2Fe14B", 136, 1, _tetragonal(8.80, 12.20),
        (_site("4f", (0.268, 0.268, 0), "Nd"), _site("4g1", (0.14, -0.14, 0), "Nd"),
         _site("16k1", (0.223, 0.567, 0.127), "Fe"), _site("16k2", (0.037, 0.360, 0.176), "Fe"),
         _site("8j1", (0.098, 0.098, 0.204), "Fe"), _site("8j2", (0.317, 0.317, 0.246), "Fe"),
         _site("4e", (0, 0, 0.386), "Fe"), _site("4c", (0, 0.5, 0), "Fe"),
         _site("4g2", (0.371, -0.371, 0), "B")),
        "Nd2Fe14B (P42/mnm), Herbst-type parameters, a 8.80, c 12.20",
    ),
    Prototype(
        "L10", 123, 1, _tetragonal(2.53, 3.58),
        (_site("1a", (0, 0, 0), "Fe"), _site("1d", (0.5, 0.5, 0.5), "Ni")),
        "FeNi (tetrataenite), P4/mmm 2-atom cell, a 2.53, c 3.58 (literature, approx.)",
    ),
    Prototype(
        "L12", 221, 1, _cubic(3.75),
        (_site("1a", (0, 0, 0), "Au"), _site("3c", (0, 0.5, 0.5), "Cu")),
        "Cu3Au (Pm-3m), a 3.75 (textbook)",
    ),
    Prototype(
        "B2", 221, 1, _cubic(2.91),
        (_site("1a", (0, 0, 0), "Fe"), _site("1b", (0.5, 0.5, 0.5), "Al")),
        "FeAl, CsCl type (Pm-3m), a 2.91 (textbook)",
    ),
    Prototype(
        "NiAs", 194, 1, _hexagonal(4.29, 6.12),
        (_site("2a", (0, 0, 0), "Mn"), _site("2c", (1 / 3, 2 / 3, 0.25), "Bi")),
        "MnBi (P63/mmc), a 4.29, c 6.12 (literature, approx.)",
    ),
    Prototype(
        "C15", 227, 1, _cubic(7.41),
        (_site("8a", (0, 0, 0), "Sm"), _site("16d", (0.625, 0.625, 0.625), "Fe")),
        "SmFe2, cubic Laves MgCu2 type (Fd-3m, origin choice 1), a 7.41 (textbook)",
    ),
    Prototype(
        "PuNi3", 166, 1, _hexagonal(5.19, 24.9),
        (_site("3a", (0, 0, 0), "Sm"), _site("6c1", (0, 0, 0.1414), "Sm"),
         _site("3b", (0, 0, 0.5), "Fe"), _site("6c2", (0, 0, 0.3336), "Fe"),
         _site("18h", (0.5002, -0.5002, 0.0829), "Fe")),
        "SmFe3, PuNi3 type (R-3m, hexagonal axes); free parameters of PuNi3 "
        "(Cromer & Olsen 1959); cell a 5.19, c 24.9 (literature, approx.)",
    ),
    Prototype(
        "C14", 194, 1, _hexagonal(4.785, 7.799),
        (_site("4f", (1 / 3, 2 / 3, 0.063), "Ti"), _site("2a", (0, 0, 0), "Fe"),
         _site("6h", (-0.17, -0.34, 0.25), "Fe")),
        "Fe2Ti, hexagonal Laves MgZn2 type (P63/mmc), a 4.785, c 7.799, Ti 4f z 0.063, "
        "Fe 6h x -0.17 (textbook)",
    ),
    Prototype("fcc", 225, 1, _cubic(3.61), (_site("4a", (0, 0, 0), "Cu"),), "Cu, a 3.61 (textbook)"),
    Prototype("bcc", 229, 1, _cubic(2.87), (_site("2a", (0, 0, 0), "Fe"),), "Fe, a 2.87 (textbook)"),
    Prototype(
        "hcp", 194, 1, _hexagonal(2.507, 4.07), (_site("2c", (1 / 3, 2 / 3, 0.25), "Co"),),
        "Co, a 2.507, c 4.07 (textbook)",
    ),
)

_BY_NAME: dict[str, Prototype] = {p.name.lower(): p for p in _PROTOTYPES}
_ALIASES: dict[str, str] = {
    "mgcu2": "C15", "mgzn2": "C14", "cu3au": "L12", "cscl": "B2", "1:12": "ThMn12", "1:5": "CaCu5",
    "2:14:1": "Nd2Fe14B",
}


def prototype_names() -> list[str]:
    """Canonical names of all prototypes."""
    return [p.name for p in _PROTOTYPES]


def get_prototype(name: str) -> Prototype:
    """Prototype by name (case-insensitive; a few aliases such as "MgCu2" for C15)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key).lower()
    if key not in _BY_NAME:
        raise ValueError(f"unknown prototype {name!r}; known: {', '.join(prototype_names())}")
    return _BY_NAME[key]


def build(
    prototype: Prototype,
    occupants: Mapping[str, str] | None = None,
    cellpar: Sequence[float] | None = None,
    with_interstitials: bool = True,
) -> tuple[Atoms, np.ndarray]:
    """Conventional cell of ``prototype`` and the site label of every atom.

    ``occupants`` maps site labels to elements; host sites not named keep their default element.
    Interstitial sites named in ``occupants`` are always filled; the others are added as ghost
    atoms ("X") when ``with_interstitials`` and left out otherwise.  "X" is also accepted as an
    occupant (an explicitly empty site).  ``cellpar`` (a, b, c, alpha, beta, gamma) replaces the
    default cell; fractional coordinates are kept.
    """
    occupants = dict(occupants or {})
    valid = set(prototype.labels())
    unknown = sorted(set(occupants) - valid)
    if unknown:
        raise ValueError(
            f"prototype {prototype.name} has no site(s) {', '.join(map(repr, unknown))}; "
            f"valid sites: {', '.join(prototype.labels())}"
        )
    bad = sorted({el for el in occupants.values() if el not in chemical_symbols})
    if bad:
        raise ValueError(
            f"unknown element(s) {', '.join(map(repr, bad))} in occupants for {prototype.name}"
        )
    cellpar = tuple(prototype.cellpar if cellpar is None else (float(v) for v in cellpar))
    if len(cellpar) != 6:
        raise ValueError(f"cellpar must be (a, b, c, alpha, beta, gamma), got {cellpar}")

    sites = [
        s for s in prototype.sites
        if not s.interstitial or s.label in occupants or with_interstitials
    ]
    symbols = [occupants.get(s.label, GHOST if s.interstitial else s.element) for s in sites]
    atoms = crystal(
        symbols, [s.position for s in sites], spacegroup=prototype.spacegroup,
        setting=prototype.setting, cellpar=cellpar, onduplicates="error",
    )
    labels = np.array([sites[k].label for k in atoms.arrays["spacegroup_kinds"]])
    atoms.info = {"prototype": prototype.name}  # drop ase's Spacegroup object: plain, serialisable info
    return atoms, labels
