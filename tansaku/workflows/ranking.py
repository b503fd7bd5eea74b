"""Turn stored records into answers: stability, properties and ranking, stored as derived columns."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from tansaku.constants import KIND_CANDIDATE, KIND_REFERENCE, STATUS_OK
from tansaku.results import read_columns
from tansaku.calculators.registry import MOMENTS_MAGNITUDE, MOMENTS_NONE, MOMENTS_SIGNED, moment_semantics
from tansaku.results.atoms import per_row_abs_sum, read_atom_column, read_atom_numbers
from tansaku.results.derived import write_derived
from tansaku.screening.elements import composition_matrix
from tansaku.screening.magnetic_order import magnetic_order
from tansaku.screening.properties import magnet_properties
from tansaku.screening.rank import RankingSpec, rank
from tansaku.screening.stability import load_reference_entries, stability
from tansaku.workflows.campaign import CampaignError, Ranking, parse_campaign, parse_ranking_table

RECORD_INPUTS = ("task_id", "kind", "status", "calculator", "energy", "volume", "magmom_total", "converged")
# objective -> the upper-bound column that stands in for it when the ranked calculator's moments are unsigned
UPPER_BOUNDS = {"mu0_ms": "mu0_ms_upper", "bh_max": "bh_max_upper"}


class RankingError(ValueError):
    """Results that cannot be ranked as asked (no records, ambiguous calculator, missing reference)."""


def stored_ranking_settings(path: str | os.PathLike) -> tuple[Ranking, str | None]:
    """The [ranking] settings and calculator of the current campaign stored in the results file (defaults
    when the file holds no campaign text).

    RankingError (one line) when the stored campaign cannot be read here, e.g. because this process does
    not know its calculator (a plug-in not installed): ranking with default objectives instead would
    silently give a different answer.
    """
    from tansaku.results.tables import current_campaign_text

    text = current_campaign_text(path)
    if not text:
        return Ranking(), None
    try:
        campaign = parse_campaign(text, source=f"{path} (stored campaign)")
    except CampaignError as exc:
        raise RankingError(f"cannot read the ranking settings of the campaign stored in the file: {exc}") from None
    return campaign.ranking, campaign.calculator.name


def choose_calculator(calculators: np.ndarray, ok: np.ndarray, wanted: str | None) -> str:
    """The calculator whose records are ranked: ``wanted``, else the only one with ok records."""
    present = sorted(set(map(str, calculators[ok])))
    if wanted is not None:
        if wanted not in present:
            raise RankingError(f"no ok records of calculator {wanted!r}; present: {', '.join(present) or 'none'}")
        return wanted
    if len(present) != 1:
        raise RankingError(f"ok records of several calculators ({', '.join(present) or 'none'}); "
                           f"choose one (--calculator): energies of different calculators never share a hull")
    return present[0]


def compute_ranking(path: str | os.PathLike, spec: RankingSpec, calculator: str | None = None,
                    reference_entries: Path | None = None, include_unconverged: bool = False,
                    allow_mixed_energy_scales: bool = False) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Derived columns (stability, properties, ranking) for every committed row, and their metadata.

    Policy: a relaxation that did not converge (``converged`` false: step limit reached) is neither put
    on the hull nor ranked unless ``include_unconverged``; the derived column ``unconverged`` flags
    those rows and the metadata counts them, so a report can say what was left out.

    ``reference_entries`` (Materials Project entries) are used only with a calculator of a PBE energy
    scale, with MaterialsProject2020Compatibility applied to them and to the ranked rows
    (:mod:`tansaku.screening.energy_scales`); for another scale RankingError, unless
    ``allow_mixed_energy_scales`` forces it (the metadata ``mixed_energy_scales`` then says so).
    """
    cols = read_columns(path, list(RECORD_INPUTS))
    if len(cols["task_id"]) == 0:
        raise RankingError(f"{path} holds no records")
    ok = cols["status"] == STATUS_OK
    chosen = choose_calculator(cols["calculator"], ok, calculator)
    elements, counts = composition_matrix(*read_atom_numbers(path))
    unconverged = ok & ~cols["converged"].astype(bool)
    on_hull_rows = ok & (cols["calculator"] == chosen) & (~unconverged | include_unconverged)
    energies = np.where(on_hull_rows, cols["energy"], np.nan)
    entries, scale_meta = None, {}
    if reference_entries:
        entries, energies, scale_meta = with_mp_references(path, on_hull_rows, chosen, energies, elements, counts,
                                                           reference_entries, allow_mixed_energy_scales)
    try:
        hull = stability(elements, counts, energies, cols["calculator"], cols["task_id"],
                         is_reference=cols["kind"] == KIND_REFERENCE, reference_entries=entries)
    except ValueError as exc:
        raise RankingError(str(exc)) from None
    moments = moment_kinds(cols["calculator"])
    magmom_total = np.where(moments == MOMENTS_NONE, np.nan, cols["magmom_total"])
    site_moments, start, natoms = read_atom_column(path, "magmoms")
    derived: dict[str, np.ndarray] = {
        "formation_energy": hull.formation_energy, "e_above_hull": hull.e_above_hull,
        "decomposition": np.asarray(hull.decomposition, dtype=str),
        **magnet_properties(elements, counts, cols["volume"], magmom_total, signed=moments == MOMENTS_SIGNED,
                            magmom_abs_sum=per_row_abs_sum(site_moments, start, natoms)),
        "magnetic_order": magnetic_orders(path, ok & (moments == MOMENTS_SIGNED), site_moments, start, natoms),
        "unconverged": unconverged,
    }
    eligible = on_hull_rows & (cols["kind"] == KIND_CANDIDATE)
    spec, magnetisation = with_magnetisation_bounds(spec, derived, eligible, chosen, moment_semantics(chosen)[0])
    spec, skipped = without_empty_objectives(spec, derived, eligible)
    try:
        ranking = rank(derived, spec, eligible=eligible, composition=(elements, counts))
    except KeyError as exc:
        raise RankingError(str(exc.args[0])) from None
    derived.update(ranking.as_columns())
    meta = {"calculator": chosen, "chemical_system": hull.chemical_system,
            "settings": json.dumps(asdict(spec)), "skipped_objectives": ",".join(skipped),
            "magnetisation": magnetisation,
            "reference_entries": str(reference_entries) if reference_entries else "campaign references",
            "unconverged": f"{int(unconverged.sum())} unconverged relaxation(s) "
                           + ("included" if include_unconverged else "excluded from the hull and the ranking"),
            **scale_meta}
    return derived, meta


def stage_energy_scale(path: str | os.PathLike, rows: np.ndarray, calculator: str) -> tuple[str, dict]:
    """The energy scale of ``calculator``'s energies in ``rows`` and their identity parameters, from the
    settings that produced them (/settings, else the ``params`` column); RankingError when the calculator
    is unknown here or the rows have several scales (e.g. PBE and LDA runs of one code)."""
    from tansaku.calculators.registry import CalculatorConfigError, get_spec
    from tansaku.results.tables import settings_table

    try:
        spec = get_spec(calculator)
    except CalculatorConfigError as exc:
        raise RankingError(f"cannot tell the energy scale of calculator {calculator!r}: {exc}") from None
    stored = read_columns(path, ["settings_id", "params"])
    settings = settings_table(path)
    scales: dict[str, dict] = {}
    for sid, identity in set(zip(stored["settings_id"][rows].tolist(), stored["params"][rows].tolist())):
        try:
            params = json.loads(settings[sid])["params"] if sid in settings else json.loads(identity)["params"]
        except (ValueError, KeyError, TypeError):  # a record without stored parameters: the defaults
            params = {}
        scales[spec.energy_scale_of(params)] = params
    if len(scales) > 1:
        raise RankingError(f"records of calculator {calculator!r} have several energy scales "
                           f"({', '.join(sorted(scales))}): they cannot share a hull")
    scale, params = next(iter(scales.items())) if scales else (spec.energy_scale_of({}), {})
    return scale, params


def with_mp_references(path: str | os.PathLike, rows: np.ndarray, calculator: str,
                       energies: np.ndarray, elements: list[str], counts: np.ndarray, reference_file: Path,
                       allow_mixed: bool) -> tuple[list, np.ndarray, dict[str, str]]:
    """Materials Project reference entries (MP2020-corrected) and the rows' energies (corrected too when
    their energy scale is PBE), with metadata saying what was done; RankingError when the scales do not
    mix and ``allow_mixed`` does not force it, or the file cannot be read."""
    from tansaku.screening.energy_scales import (
        MixedEnergyScalesError,
        check_reference_scale,
        mp2020_references,
        mp2020_row_corrections,
    )

    scale, params = stage_energy_scale(path, rows, calculator)
    try:
        warning = check_reference_scale(calculator, scale, reference_file, allow_mixed)
        entries, dropped = mp2020_references(load_reference_entries(reference_file))
    except (MixedEnergyScalesError, ValueError, OSError) as exc:
        raise RankingError(str(exc)) from None
    meta = {"energy_scale": scale, "mixed_energy_scales": warning}
    done = f"MaterialsProject2020Compatibility applied to {len(entries)} reference entries"
    if dropped:
        done += f" ({len(dropped)} rejected by it and left out: {'; '.join(dropped[:3])})"
    if not warning:
        correction = mp2020_row_corrections(elements, counts, calculator, scale, params.get("hubbard_u"))
        rejected = int((rows & ~np.isfinite(correction)).sum())
        energies = energies + np.where(rows, correction, 0.0)
        done += (f" and to the {int(rows.sum())} rows of {calculator} (run_type {'GGA+U' if scale == 'pbe+u' else 'GGA'}"
                 f", no POTCAR check)" + (f"; {rejected} rows it rejects left off the hull" if rejected else ""))
    else:
        done += f"; the energies of {calculator} are not corrected"
    meta["reference_corrections"] = done
    return entries, energies, meta


def moment_kinds(calculators: np.ndarray) -> np.ndarray:
    """What each row's moments mean (registry ``moments`` of its stored calculator name: signed,
    magnitude or none; see :func:`tansaku.calculators.registry.moment_semantics`)."""
    names, inverse = np.unique(np.asarray(calculators, dtype=str), return_inverse=True)
    return np.array([moment_semantics(n)[0] for n in names], dtype=object)[inverse].astype(str)


def magnetic_orders(path: str | os.PathLike, rows: np.ndarray, site_moments: np.ndarray, start: np.ndarray,
                    natoms: np.ndarray) -> np.ndarray:
    """FM / FiM / AFM / NM of the ``rows`` (signed moments only; :mod:`tansaku.screening.magnetic_order`),
    "" elsewhere.  Reads the structures of those rows only (DFT records: few)."""
    from tansaku.results import open_for_reading
    from tansaku.results.read import record_at

    out = np.full(len(rows), "", dtype=object)
    chosen = np.flatnonzero(rows)
    if len(chosen):
        with open_for_reading(path) as f:
            for row in chosen:
                atoms = record_at(f, int(row))[1]
                out[row] = magnetic_order(atoms, site_moments[start[row]:start[row] + natoms[row]])
    return out.astype(str)


def with_magnetisation_bounds(spec: RankingSpec, columns: dict[str, np.ndarray], eligible: np.ndarray,
                              calculator: str, moments: str) -> tuple[RankingSpec, str]:
    """The spec with μ0Ms objectives replaced by their upper bounds where the ranked calculator's moments
    are magnitudes only, and a sentence saying which magnetisation the ranking uses (stored as metadata)."""
    asked = [o.column for o in spec.objectives if o.column in UPPER_BOUNDS]
    if moments == MOMENTS_SIGNED:
        return spec, f"mu0_ms: signed moments of {calculator} (collinear DFT)"
    if moments != MOMENTS_MAGNITUDE:
        return spec, f"none: {calculator} gives no magnetic moments"
    replaced = tuple(dataclasses.replace(o, column=UPPER_BOUNDS[o.column])
                     if o.column in UPPER_BOUNDS and not np.isfinite(columns[o.column][eligible]).any() else o
                     for o in spec.objectives)
    used = ", ".join(UPPER_BOUNDS[c] for c in asked) or "mu0_ms_upper"
    return (dataclasses.replace(spec, objectives=replaced),
            f"{used}: upper bound from the unsigned moment magnitudes of {calculator} "
            f"(mu0_ms left empty: a ferrimagnet's sublattices would be added, not subtracted)")


def without_empty_objectives(spec: RankingSpec, columns: dict[str, np.ndarray],
                             eligible: np.ndarray) -> tuple[RankingSpec, list[str]]:
    """Drop objectives with no value for any eligible row (e.g. mu0_ms from a non-magnetic calculator)."""
    empty = [o.column for o in spec.objectives
             if o.column in columns and not np.isfinite(np.asarray(columns[o.column], float)[eligible]).any()]
    kept = tuple(o for o in spec.objectives if o.column not in empty)
    if not kept:
        return spec, []  # nothing left to rank by: keep the spec and let nothing pass
    return dataclasses.replace(spec, objectives=kept), empty


def rank_results(path: str | os.PathLike, ranking: Ranking | None = None, calculator: str | None = None) -> pd.DataFrame:
    """Compute the ranking of a results file, store it as derived columns, return the ranked candidates."""
    if ranking is None or calculator is None:
        stored, stored_calculator = stored_ranking_settings(path)
        ranking = ranking or stored
    else:
        stored_calculator = None
    derived, meta = compute_ranking(path, ranking.spec, calculator or stored_calculator, ranking.reference_entries,
                                    allow_mixed_energy_scales=ranking.allow_mixed_energy_scales)
    write_derived(path, derived, meta)
    return ranked_table(path)


def ranked_table(path: str | os.PathLike) -> pd.DataFrame:
    """Records with their derived columns, ranked candidates first (best rank first)."""
    from tansaku.results import read_table

    table = read_table(path)
    if "rank" not in table:
        return table
    order = np.where(table["rank"] > 0, table["rank"], np.iinfo(np.int64).max)
    return table.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def ranking_with_overrides(stored: Ranking, objectives: list[str] | None, filters: list[str] | None,
                           reference_entries: Path | None, allow_mixed_energy_scales: bool = False) -> Ranking:
    """Stored settings with command-line overrides: objectives ``COLUMN:min|max[:WEIGHT]``, filters."""
    table: dict = {}
    if objectives:
        table["objectives"], table["weights"] = {}, {}
        for text in objectives:
            parts = text.split(":")
            if len(parts) not in (2, 3):
                raise CampaignError(f"--objective: expected COLUMN:min|max[:WEIGHT], got {text!r}")
            table["objectives"][parts[0]] = parts[1]
            if len(parts) == 3:
                try:
                    table["weights"][parts[0]] = float(parts[2])
                except ValueError:
                    raise CampaignError(f"--objective: could not read weight {parts[2]!r} in {text!r}") from None
    else:
        table["objectives"] = {o.column: o.direction for o in stored.spec.objectives}
        table["weights"] = {o.column: o.weight for o in stored.spec.objectives}
    table["filters"] = list(filters) if filters is not None else [str(c) for c in stored.spec.filters]
    table["max_fronts"] = stored.spec.max_fronts
    parsed = parse_ranking_table(table, source="command line")
    entries = reference_entries or stored.reference_entries
    return Ranking(parsed.spec, entries, allow_mixed_energy_scales or stored.allow_mixed_energy_scales)
