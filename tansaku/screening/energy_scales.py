"""Which reference energies can be mixed with a calculator's energies, and Materials Project corrections.

A hull built from energies of two different scales is meaningless (a CHGNet or EMT energy against a
Materials Project GGA reference can change the sign of a formation energy). Each calculator declares its
``energy_scale`` (``CalculatorSpec.energy_scale_of``: "pbe", "pbe+u" for DFT with PBE, "chgnet-mptrj",
"emt", ...). Materials Project references (a file of ComputedEntry, :func:`load_reference_entries`) are
GGA/GGA+U (PBE) energies and mix only with the ``MP_SCALES``; both sides then get pymatgen's
MaterialsProject2020Compatibility corrections:

* the references with MP's own checks (``check_potcar=True``: they are MP's VASP runs, and their
  ``parameters`` carry run_type, hubbards and potcar_spec as the MP API gives them); entries the scheme
  rejects are dropped and listed;
* the stage's own energies (GPAW, QE, VASP run by tansaku) with ``parameters = {"run_type": "GGA"
  (or "GGA+U" for "pbe+u"), "hubbards": {element: U} (from the ``hubbard_u`` parameter, else {}),
  "software": <calculator name>}`` and ``check_potcar=False``: GPAW's PAW setups and QE's
  pseudopotentials are not VASP POTCARs (pymatgen checks POTCARs only for software "vasp", and tansaku
  does not store POTCAR titles), so the POTCAR check cannot apply; mixing them with MP at all accepts
  the difference between PAW datasets (typically tens of meV/atom, which is why MP references are a
  convenience, not a substitute for references relaxed with the same calculator). The corrections are
  composition-based: each composition gets one ComputedEntry without structure, so O is corrected as
  an oxide unless the formula is one of pymatgen's listed peroxides/superoxides/ozonides. A composition
  the scheme rejects (e.g. a GGA Fe oxide, which MP computes with +U) gets NaN and stays off the hull.

With any other scale the references are refused (:class:`MixedEnergyScalesError`) unless the caller
forces the mix; the references then get MP's corrections and the stage's energies none.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedEntry

MP_SCALES = {"pbe": "GGA", "pbe+u": "GGA+U"}  # energy scale -> MP run_type it mixes with
MP_REFERENCES = "Materials Project GGA/GGA+U (PBE)"


class MixedEnergyScalesError(ValueError):
    """Reference energies of another scale than the calculator's, not forced."""


def check_reference_scale(calculator: str, scale: str, reference_file: str | Path, allow_mixed: bool) -> str:
    """"" when Materials Project references from ``reference_file`` mix with ``calculator``'s energies of
    energy scale ``scale``; a warning sentence when they do not but ``allow_mixed`` forces it; else
    MixedEnergyScalesError naming the calculator and the file."""
    if scale in MP_SCALES:
        return ""
    what = (f"reference entries {reference_file} are {MP_REFERENCES} energies and calculator {calculator!r} "
            f"gives {scale!r} energies")
    if not allow_mixed:
        raise MixedEnergyScalesError(
            f"{what}: they cannot share a hull (formation energies and e_above_hull would be meaningless); use "
            f"references relaxed with the same calculator (leave reference_entries out), or force it with "
            f"[ranking] allow_mixed_energy_scales = true")
    return f"MIXED ENERGY SCALES (forced by allow_mixed_energy_scales): {what}; formation energies and " \
           f"e_above_hull are not physically meaningful"


def _compatibility(check_potcar: bool):
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=check_potcar)


def mp2020_references(entries: Sequence[ComputedEntry]) -> tuple[list[ComputedEntry], list[str]]:
    """Copies of ``entries`` with MaterialsProject2020Compatibility's corrections (existing ones replaced,
    POTCARs checked), and "entry_id: reason" of each entry the scheme rejects (left out)."""
    from pymatgen.entries.compatibility import CompatibilityError

    compat = _compatibility(check_potcar=True)
    kept, dropped = [], []
    for entry in entries:
        copy = entry.copy()
        copy.energy_adjustments = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                copy.energy_adjustments = compat.get_adjustments(copy)
        except (CompatibilityError, ValueError, KeyError) as exc:
            dropped.append(f"{entry.entry_id or entry.composition.reduced_formula}: {exc}")
            continue
        kept.append(copy)
    return kept, dropped


def mp2020_row_corrections(elements: Sequence[str], counts: np.ndarray, software: str, scale: str,
                           hubbards: Mapping[str, float] | None = None) -> np.ndarray:
    """MaterialsProject2020Compatibility's correction (eV per cell) of each row of the ``(N, E)``
    composition matrix ``counts`` over ``elements``, for energies of ``software`` at energy scale
    ``scale`` (one of MP_SCALES); NaN for a composition the scheme rejects, 0 for rows without atoms.
    Computed once per reduced composition (see the module docstring for the parameters passed)."""
    from pymatgen.entries.compatibility import CompatibilityError

    counts = np.asarray(counts, dtype=np.int64)
    natoms = counts.sum(axis=1)
    out = np.zeros(len(counts))
    rows = np.flatnonzero(natoms > 0)
    if not rows.size:
        return out
    sub = counts[rows]
    reduced = sub // np.gcd.reduce(sub, axis=1)[:, None]
    unique, group = np.unique(reduced, axis=0, return_inverse=True)
    compat = _compatibility(check_potcar=False)
    parameters = {"run_type": MP_SCALES[scale], "hubbards": dict(hubbards or {}), "software": software}
    per_atom = np.empty(len(unique))
    for u, amounts in enumerate(unique):
        composition = Composition({e: int(a) for e, a in zip(elements, amounts.tolist()) if a})
        entry = ComputedEntry(composition, 0.0, parameters=dict(parameters))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                per_atom[u] = sum(a.value for a in compat.get_adjustments(entry)) / composition.num_atoms
        except (CompatibilityError, ValueError) as exc:
            del exc
            per_atom[u] = np.nan
    out[rows] = per_atom[group.reshape(-1)] * natoms[rows]
    return out
