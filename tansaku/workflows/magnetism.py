"""Magnetic ground states, Curie-temperature estimates and K1 over stored records (derived columns),
and the anisotropy (K1) task of one relaxed structure.

A candidate computed from several starting magnetic configurations (campaign ``[magnetism]``) has one
record per configuration; its **ground state** is the lowest-energy one, and only that row is ranked.
The energy differences are kept: ``delta_e_config`` on every configuration row, ``delta_e_afm`` and
``tc_mean_field`` on the ground-state row.  K1 comes from anisotropy records (``calculation`` =
"anisotropy") of the same candidate and calculator and is put on its ground-state row.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from tansaku.screening.magnetic_configurations import (
    MAGNETIC_ELEMENTS,
    flipped_bond_fraction,
)
from tansaku.screening.properties import tc_mean_field
from tansaku.workflows.tasks import CALCULATION_ANISOTROPY, Task, next_stage_task

MAGNETISM_INPUTS = ("candidate_id", "stage", "configuration", "calculation", "k1_fine", "k1_coarse")
# derived columns added by magnetic_columns, with their meaning (units) for the docs and the report
MAGNETISM_COLUMNS = {
    "ground_state": "the row is its candidate's lowest-energy magnetic configuration (only those are ranked)",
    "delta_e_config": "eV per magnetic atom above the candidate's magnetic ground state",
    "delta_e_afm": "eV per magnetic atom from the ground state to the lowest other magnetic configuration",
    "tc_mean_field": "K, mean-field Curie-temperature estimate (2/3)ΔE_dis/k_B (overestimates)",
    "k1": "MJ/m³, magnetocrystalline anisotropy with spin-orbit (finer k-mesh)",
    "k1_kpoint_delta": "MJ/m³, K1(finer k-mesh) − K1(coarser): the k-point convergence of K1",
    "k1_mev_fu": "meV per formula unit, the same K1",
}


def _groups(keys: list[tuple]) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = {}
    for row, key in enumerate(keys):
        out.setdefault(key, []).append(row)
    return out


def magnetic_columns(path: str | os.PathLike, cols: Mapping[str, np.ndarray], relaxed: np.ndarray,
                     site_moments: np.ndarray, start: np.ndarray, natoms: np.ndarray, numbers: np.ndarray,
                     formula_units: np.ndarray) -> dict[str, np.ndarray]:
    """The MAGNETISM_COLUMNS of every row.  ``relaxed``: ok relaxation rows of the ranked calculator
    (configuration rows are grouped among them by candidate and stage); ``numbers``: /atoms/numbers."""
    from ase.data import chemical_symbols

    from tansaku.results import open_for_reading
    from tansaku.results.read import record_at

    n = len(relaxed)
    out = {"ground_state": relaxed.copy(), "delta_e_config": np.full(n, np.nan), "delta_e_afm": np.full(n, np.nan),
           "tc_mean_field": np.full(n, np.nan), "k1": np.full(n, np.nan), "k1_kpoint_delta": np.full(n, np.nan),
           "k1_mev_fu": np.full(n, np.nan)}
    configured = relaxed & (cols["configuration"] != "")
    energy = np.asarray(cols["energy"], dtype=float)
    magnetic = np.isin(np.array(chemical_symbols)[numbers], sorted(MAGNETIC_ELEMENTS)) if len(numbers) else \
        np.zeros(0, bool)
    rows = np.flatnonzero(configured)
    groups = _groups([(cols["candidate_id"][r], cols["stage"][r]) for r in rows])

    def moments(row: int) -> np.ndarray:
        return site_moments[start[row]:start[row] + natoms[row]]

    def magnetic_atoms(row: int) -> int:
        return int(magnetic[start[row]:start[row] + natoms[row]].sum()) or int(natoms[row])

    with open_for_reading(path) as f:
        def flipped_fraction(row: int, ground: int) -> float:
            """f between two states, on the larger cell: a supercell configuration (Atoms.repeat's atom
            order: the cell's atoms block after block) against the cell's state repeated, or two of one cell."""
            big, small = (row, ground) if natoms[row] >= natoms[ground] else (ground, row)
            reference = np.tile(moments(small), int(natoms[big] // natoms[small]))
            return flipped_bond_fraction(record_at(f, big)[1], reference, moments(big))

        for members in groups.values():
            members = [int(rows[i]) for i in members]
            # energies per magnetic atom, each row in its own cell (FM in the cell, patterns in a supercell)
            per_site = {r: energy[r] / magnetic_atoms(r) for r in members}
            ground = min(members, key=lambda r: per_site[r])
            for r in members:
                out["ground_state"][r] = r == ground
                out["delta_e_config"][r] = per_site[r] - per_site[ground]
            others = [r for r in members if r != ground and max(natoms[r], natoms[ground])
                      % min(natoms[r], natoms[ground]) == 0]
            if not others:
                continue
            flipped = {r: flipped_fraction(r, ground) for r in others}
            distinct = [r for r in others if np.isfinite(flipped[r]) and flipped[r] > 0]
            if not distinct:
                continue  # every start converged back to the ground state
            out["delta_e_afm"][ground] = min(out["delta_e_config"][r] for r in distinct)
            # the most disordered-like state (nearest-neighbour flipped fraction nearest 1/2), lowest energy first;
            # Heisenberg nearest neighbours: ΔE(config) = 2 f ΔE(disordered)
            best = min(distinct, key=lambda r: (abs(flipped[r] - 0.5), out["delta_e_config"][r]))
            out["tc_mean_field"][ground] = tc_mean_field(out["delta_e_config"][best] / (2 * flipped[best]))
    _k1_onto_ground_states(cols, out, relaxed, formula_units)
    return out


def _k1_onto_ground_states(cols: Mapping[str, np.ndarray], out: dict[str, np.ndarray], relaxed: np.ndarray,
                           formula_units: np.ndarray) -> None:
    """K1 of the anisotropy rows (ok, same calculator) onto their candidate's ground-state rows."""
    aniso = (cols["calculation"] == CALCULATION_ANISOTROPY) & np.isfinite(np.asarray(cols["k1_fine"], float))
    if not aniso.any():
        return
    by_candidate = {cols["candidate_id"][r]: r for r in np.flatnonzero(aniso)}  # the last one stored wins
    volume = np.asarray(cols["volume"], dtype=float)
    for r in np.flatnonzero(relaxed & out["ground_state"]):
        source = by_candidate.get(cols["candidate_id"][r])
        if source is None:
            continue
        k1 = float(cols["k1_fine"][source])
        out["k1"][r] = k1
        out["k1_kpoint_delta"][r] = k1 - float(cols["k1_coarse"][source])
        # MJ/m³ × V[Å³] → meV: 1 MJ/m³ × 1 Å³ = 1e6 J/m³ × 1e-30 m³ = 1e-24 J = 6.2415e-3 meV
        out["k1_mev_fu"][r] = k1 * volume[source] * 1e-24 / 1.602176634e-22 / formula_units[source]
    for r in np.flatnonzero(aniso):
        out["ground_state"][r] = False


def anisotropy_task(source: Task, atoms, calculator: str, params: Mapping[str, Any], settings: Mapping[str, Any],
                    stage_name: str = CALCULATION_ANISOTROPY) -> Task:
    """The K1 task of one relaxed structure outside a funnel stage: ``atoms`` (the final structure of
    ``source``'s record) with its final moments as the collinear start; checked ``settings``."""
    from tansaku.calculators import RelaxSettings
    from tansaku.calculators.anisotropy import check_settings

    return next_stage_task(source, atoms, calculator, params, RelaxSettings(steps=0), stage_name,
                           calculation=CALCULATION_ANISOTROPY, calculation_params=check_settings(calculator, settings))
