"""Formation energies and energies above the convex hull (pymatgen PhaseDiagram), for many records.

Stability is computed, not assumed: the hull is built from the campaign's own relaxed energies
(elemental references, competing phases and candidates alike) with one calculator, or from the
campaign's rows plus reference entries read from a file (e.g. Materials Project GGA entries) when the
caller says those are at the same level of theory.  All energies are eV; results are eV/atom.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedEntry

from tansaku.screening.elements import chemical_system
from tansaku.screening.hull import ON_HULL_TOL

# pymatgen's tolerances: a decomposition amount below this is dropped, a point this far outside a
# facet (in barycentric coordinates) still counts as inside it.
_AMOUNT_TOL = PhaseDiagram.numerical_tol  # 1e-8
_FACET_TOL = PhaseDiagram.numerical_tol / 10
_ZERO_SNAP = 1e-10  # eV/atom: |e_above_hull| below this (float noise) is reported as exactly 0


@dataclass
class StabilityResult:
    """Per-row results, aligned with the input rows (NaN / "" where not computable)."""

    formation_energy: np.ndarray  # eV/atom, relative to the hull's elemental references
    e_above_hull: np.ndarray  # eV/atom; may be < 0 only for rows left out of the hull (is_reference)
    decomposition: list[str]  # "0.667 Sm2Fe17 + 0.333 Fe" (atom fractions); the formula itself on the hull
    chemical_system: str  # "Co-Fe-N-Sm-Ti" ("" when no row has an energy)


def stability(elements: list[str], counts: np.ndarray, energies: np.ndarray, calculators: Sequence[str],
              entry_ids: Sequence[str], is_reference: np.ndarray | None = None,
              reference_entries: Sequence[ComputedEntry] | None = None) -> StabilityResult:
    """Formation energy, energy above hull and decomposition of every row.

    ``counts`` is the ``(N, E)`` composition matrix over ``elements``
    (:func:`tansaku.screening.elements.composition_matrix`), ``energies`` total energies per cell (eV),
    ``calculators`` the calculator name per row, ``entry_ids`` an id per row (kept on the hull entries).

    * Rows with a NaN energy (failed tasks) or no atoms get NaN / "" and do not enter the hull.
    * All other rows enter the hull: elemental references, competing phases and candidates alike.
      They must come from one calculator: mixing energies of different calculators raises ValueError.
    * ``reference_entries`` (e.g. from :func:`load_reference_entries` or
      :func:`mp_elemental_references`) *replace* the campaign's references: rows flagged
      ``is_reference`` are then left out of the hull (they still get results, measured against it,
      possibly negative e_above_hull).  Entries with elements outside the chemical system of the rows
      are ignored.  Their energies (``entry.energy``, i.e. with any corrections) must be from the same
      level of theory as the rows' energies; that is the caller's responsibility and is not checked.
    * Every element of the chemical system needs an elemental entry, else ValueError.

    The hull equals pymatgen's ``PhaseDiagram`` on all these entries (pymatgen's own facet search,
    vectorised); ``e_above_hull`` may be negative for rows not in the hull, as with
    ``get_decomp_and_e_above_hull(entry, allow_negative=True)``.  ``formation_energy`` is relative to
    the lowest-energy elemental entry of each element in the hull.

    Cost: rows are grouped by reduced composition (vectorised); pymatgen objects are made only per
    unique composition, and the PhaseDiagram only gets the lowest-energy row of each composition with a
    negative formation energy (the others cannot be on the hull).  The facet search is one matrix
    product of (unique compositions) x (facets) x (elements)² flops instead of a Python loop per row.
    Measured (one core, 5 elements): 10^6 rows over 700 compositions 1 s; over 11 600 compositions
    4 s, mostly pymatgen building the PhaseDiagram (~0.5 ms per composition below the elements).
    """
    counts = np.asarray(counts, dtype=np.int64)
    energies = np.asarray(energies, dtype=float).reshape(-1)
    n_rows = energies.size
    if counts.shape != (n_rows, len(elements)):
        raise ValueError(f"counts has shape {counts.shape}, expected ({n_rows}, {len(elements)})")
    calculators = np.asarray(calculators).reshape(-1)
    entry_ids = np.asarray(entry_ids).reshape(-1)
    for name, column in (("calculators", calculators), ("entry_ids", entry_ids)):
        if column.size != n_rows:
            raise ValueError(f"{name} has {column.size} values, expected {n_rows}")
    if is_reference is None:
        is_reference = np.zeros(n_rows, dtype=bool)
    is_reference = np.asarray(is_reference, dtype=bool).reshape(-1)
    if is_reference.size != n_rows:
        raise ValueError(f"is_reference has {is_reference.size} values, expected {n_rows}")

    natoms = counts.sum(axis=1)
    valid = np.isfinite(energies) & (natoms > 0)
    names = calculators[valid]
    if names.size and (names != names[0]).any():
        used = sorted(set(map(str, names.tolist())))
        raise ValueError(f"energies from calculators {', '.join(used)} cannot share one hull; "
                         "select one calculator")

    formation = np.full(n_rows, np.nan)
    e_above = np.full(n_rows, np.nan)
    if not valid.any():
        return StabilityResult(formation, e_above, [""] * n_rows, "")

    present = counts[valid].any(axis=0)
    system = [s for s, p in zip(elements, present) if p]
    rows = np.flatnonzero(valid)
    sub = counts[rows][:, present]  # (M, S)
    epa = energies[rows] / natoms[rows]
    reduced = sub // np.gcd.reduce(sub, axis=1)[:, None]
    unique, group = _unique_rows(reduced)
    in_hull = np.ones(rows.size, bool) if reference_entries is None else ~is_reference[rows]

    # Lowest energy per atom of each composition among the rows that enter the hull.
    hull_rows = np.flatnonzero(in_hull)
    order = hull_rows[np.lexsort((epa[hull_rows], group[hull_rows]))]
    first = np.ones(order.size, bool)
    first[1:] = group[order][1:] != group[order][:-1]
    reps = order[first]  # indices into rows, one per composition present in the hull rows

    extra = _entries_in_system(reference_entries or [], set(system))
    mu = _elemental_minima(system, unique, group, epa, reps, extra)
    # Only compositions with a negative formation energy (plus the elements) can be on the hull;
    # pymatgen drops the rest itself, so leaving them out gives the same hull, faster.
    rep_fraction = sub[reps] / natoms[rows][reps][:, None]
    rep_formation = epa[reps] - rep_fraction @ mu
    elemental = (sub[reps] > 0).sum(axis=1) == 1
    keep = reps[elemental | (rep_formation < 1e-6)]
    entries = [ComputedEntry(Composition(dict(zip(system, sub[i].tolist()))), float(energies[rows[i]]),
                             entry_id=str(entry_ids[rows[i]])) for i in keep]
    pd = PhaseDiagram(entries + extra)

    pd_order = [system.index(str(el)) for el in pd.elements]
    mu_pd = np.array([pd.el_refs[el].energy_per_atom for el in pd.elements])
    mu = np.empty(len(system))
    mu[pd_order] = mu_pd
    formation[rows] = (energies[rows] - sub @ mu) / natoms[rows]

    fractions = unique[:, pd_order] / unique.sum(axis=1)[:, None]
    hull_energy, vertices, amounts = _hull(pd, fractions)
    e_row = epa - hull_energy[group]
    e_row[np.abs(e_row) < _ZERO_SNAP] = 0.0
    e_above[rows] = e_row

    formulas = [Composition(dict(zip(system, u.tolist()))).reduced_formula for u in unique]
    phase_names = [e.composition.reduced_formula for e in pd.qhull_entries]
    texts, single = [], np.zeros(len(unique), bool)
    for u in range(len(unique)):
        parts = sorted(((a, phase_names[v]) for v, a in zip(vertices[u], amounts[u]) if abs(a) > _AMOUNT_TOL),
                       key=lambda p: (-p[0], p[1]))
        single[u] = len(parts) == 1 and parts[0][1] == formulas[u]
        texts.append(" + ".join(f"{a:.3f} {f}" for a, f in parts))
    on_hull = single[group] & (np.abs(e_row) <= ON_HULL_TOL)
    text = np.where(on_hull, np.array(formulas, dtype=object)[group], np.array(texts, dtype=object)[group])
    all_text = np.full(n_rows, "", dtype=object)
    all_text[rows] = text
    return StabilityResult(formation, e_above, all_text.tolist(), chemical_system(system))


def _unique_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of a non-negative int matrix and the group of each row (fast path: one int64 key)."""
    base = matrix.max(axis=0).astype(object) + 1  # Python ints: no overflow while checking the range
    size = 1
    for b in base:
        size *= int(b)
    if size >= 2**62:
        unique, group = np.unique(matrix, axis=0, return_inverse=True)
        return unique, group.reshape(-1)
    weights = np.cumprod(np.r_[base[1:].astype(np.int64), 1][::-1])[::-1]  # mixed radix, lexicographic
    _, first, group = np.unique(matrix @ weights, return_index=True, return_inverse=True)
    return matrix[first], group.reshape(-1)


def _entries_in_system(entries: Sequence[ComputedEntry], system: set[str]) -> list[ComputedEntry]:
    """The entries whose elements all lie in ``system``."""
    return [e for e in entries if {str(el) for el in e.composition.elements} <= system]


def _elemental_minima(system: list[str], unique: np.ndarray, group: np.ndarray, epa: np.ndarray,
                      reps: np.ndarray, extra: Sequence[ComputedEntry]) -> np.ndarray:
    """Lowest energy per atom of each element of ``system`` (ValueError naming those without one)."""
    mu = np.full(len(system), np.inf)
    rep_comp = unique[group[reps]]
    single = (rep_comp > 0).sum(axis=1) == 1
    np.minimum.at(mu, rep_comp[single].argmax(axis=1), epa[reps][single])
    for entry in extra:
        if entry.composition.is_element:
            j = system.index(str(entry.composition.elements[0]))
            mu[j] = min(mu[j], entry.energy_per_atom)
    missing = sorted(s for s, m in zip(system, mu) if not np.isfinite(m))
    if missing:
        raise ValueError(f"no elemental reference for {', '.join(missing)}: every element of the chemical "
                         f"system {chemical_system(system)} needs an elemental reference (a relaxed element "
                         "with an energy from the same calculator, or reference entries)")
    return mu


def _hull(pd: PhaseDiagram, fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hull energy per atom, facet vertices (indices into ``pd.qhull_entries``) and their amounts.

    ``fractions`` (U, dim) are atomic fractions in ``pd.elements`` order.  Same algorithm as
    ``PhaseDiagram.get_decomposition``: the first facet (in ``pd.facets`` order) whose barycentric
    coordinates are all >= -1e-9, vectorised over compositions.  A point that numerically misses every
    facet gets the facet it is least outside of (pymatgen would raise).
    """
    n, dim = fractions.shape
    data = np.asarray(pd.qhull_data)
    if dim == 1:  # a single element: the hull is its lowest-energy entry
        ref = pd.qhull_entries.index(pd.el_refs[pd.elements[0]])
        return np.full(n, data[ref, -1]), np.full((n, 1), ref), np.ones((n, 1))
    facets = np.asarray(pd.facets, dtype=np.int64)  # (F, dim)
    n_facets = len(facets)
    aug = np.concatenate([data[facets, :-1], np.ones((n_facets, dim, 1))], axis=-1)  # (F, dim, dim)
    inverse = np.linalg.inv(aug).transpose(1, 0, 2).reshape(dim, n_facets * dim)
    points = np.concatenate([fractions[:, 1:], np.ones((n, 1))], axis=1)

    chosen = np.empty(n, dtype=np.int64)
    amounts = np.empty((n, dim))
    chunk = max(1, (1 << 22) // (n_facets * dim))
    for lo in range(0, n, chunk):
        bary = (points[lo: lo + chunk] @ inverse).reshape(-1, n_facets, dim)
        worst = bary.min(axis=2)
        inside = worst >= -_FACET_TOL
        best = np.where(inside.any(axis=1), inside.argmax(axis=1), worst.argmax(axis=1))
        chosen[lo: lo + chunk] = best
        amounts[lo: lo + chunk] = bary[np.arange(len(best)), best]
    vertices = facets[chosen]
    amounts = np.where(np.abs(amounts) > _AMOUNT_TOL, amounts, 0.0)
    return (amounts * data[vertices, -1]).sum(axis=1), vertices, amounts


# Modules a reference-entries file may name in "@module": the file is data, and monty's decoder would
# import whatever module the data names. Entries, their structures and energy adjustments live here.
TRUSTED_MODULE_PREFIXES = ("pymatgen.entries.", "pymatgen.core.")
TRUSTED_MODULES = frozenset({"numpy", "datetime", "builtins"})


def _untrusted_module(item: object) -> str | None:
    """The first ``@module`` inside ``item`` (nested dicts/lists) that is not a trusted pymatgen module."""
    stack = [item]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module = node.get("@module")
            if module is not None and not (module in TRUSTED_MODULES or (
                    isinstance(module, str) and module.startswith(TRUSTED_MODULE_PREFIXES))):
                return str(module)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def _read_json(path: Path) -> object:
    """JSON from ``path``, gzip- or bz2-compressed when the name says so."""
    import bz2
    import gzip

    opener = gzip.open if path.suffix == ".gz" else bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def load_reference_entries(path: str | os.PathLike) -> list[ComputedEntry]:
    """Read a JSON list of ComputedEntry / ComputedStructureEntry (written with monty's MontyEncoder).

    ``.json.gz`` / ``.json.bz2`` work too.  The file is data: only entries whose ``@module``/``@class``
    (and those of everything nested in them) name pymatgen's entry and core classes are decoded; no module
    named in the file is ever imported otherwise.  Any problem raises ValueError naming the file.
    """
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    classes = {"ComputedEntry": ComputedEntry, "ComputedStructureEntry": ComputedStructureEntry}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference entries file {path} does not exist")
    try:
        data = _read_json(path)
    except (ValueError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a JSON file of pymatgen entries ({exc})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of ComputedEntry objects, found {type(data).__name__}")
    if not data:
        raise ValueError(f"{path}: the list of reference entries is empty")
    entries = []
    for i, item in enumerate(data):
        kind = (item.get("@class") or "dict") if isinstance(item, dict) else type(item).__name__
        if kind not in classes or not str(item.get("@module", "")).startswith(TRUSTED_MODULE_PREFIXES):
            raise ValueError(f"{path}: item {i} is a {kind}, not a ComputedEntry "
                             "(write entries with monty's MontyEncoder / dumpfn so they carry @module/@class)")
        untrusted = _untrusted_module(item)
        if untrusted is not None:
            raise ValueError(f"{path}: item {i} names module {untrusted!r}; reference entries may only hold "
                             f"pymatgen entry and structure data (nothing named in the file is imported)")
        try:
            entries.append(classes[kind].from_dict(item))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: item {i} is not a valid {kind} ({type(exc).__name__}: {exc})") from None
    return entries


@lru_cache(1)
def _mp_elemental_entries() -> dict[str, ComputedEntry]:
    """Lowest-energy elemental entry per element in pymatgen's shipped calc_compounds.json.gz."""
    import gzip
    import warnings

    from monty.json import MontyDecoder
    from pymatgen.analysis import compatibility

    path = Path(compatibility.__file__).parent / "calc_compounds.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No Pauling electronegativity")  # noble gases
        entries = json.load(fh, cls=MontyDecoder)
    best: dict[str, ComputedEntry] = {}
    for entry in entries.values():
        comp = entry.composition
        if comp.is_element:
            symbol = str(comp.elements[0])
            if symbol not in best or entry.energy_per_atom < best[symbol].energy_per_atom:
                best[symbol] = entry
    return best


def mp_elemental_references(elements: Sequence[str]) -> list[ComputedEntry]:
    """Materials Project elemental entries (GGA-PBE, MP settings) shipped with pymatgen, for ``elements``.

    From ``pymatgen/analysis/compatibility/calc_compounds.json.gz`` (the fitting set of MP's energy
    corrections; one ground-state entry for each of 89 elements, e.g. mp-13 bcc Fe, mp-25 N2 — all
    plain GGA, no +U, no energy corrections).  Only meaningful as references for campaigns run with
    PBE at MP-compatible settings (PAW PBE, MP POTCARs, e.g. Sm_3 / Nd_3 with the 4f electrons in the
    core): never for ML-potential or EMT energies.  The returned entries are copies.
    ValueError names any element without an entry.
    """
    table = _mp_elemental_entries()
    missing = [s for s in elements if s not in table]
    if missing:
        raise ValueError(f"no Materials Project elemental entry shipped with pymatgen for {', '.join(missing)}")
    return [ComputedEntry.from_dict(table[s].as_dict()) for s in elements]
