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
from tansaku.results.atoms import read_atom_numbers
from tansaku.results.derived import write_derived
from tansaku.screening.elements import composition_matrix
from tansaku.screening.properties import magnet_properties
from tansaku.screening.rank import RankingSpec, rank
from tansaku.screening.stability import load_reference_entries, stability
from tansaku.workflows.campaign import CampaignError, Ranking, parse_campaign, parse_ranking_table

RECORD_INPUTS = ("task_id", "kind", "status", "calculator", "energy", "volume", "magmom_total", "converged")


class RankingError(ValueError):
    """Results that cannot be ranked as asked (no records, ambiguous calculator, missing reference)."""


def stored_ranking_settings(path: str | os.PathLike) -> tuple[Ranking, str | None]:
    """The [ranking] settings and calculator of the campaign stored in the results file."""
    from tansaku.results import open_for_reading

    with open_for_reading(path) as f:
        text = f.attrs.get("campaign", "")
    if not text:
        return Ranking(), None
    try:
        campaign = parse_campaign(text, source=f"{path} (stored campaign)")
    except CampaignError:
        return Ranking(), None
    return campaign.ranking, campaign.calculator.name


def choose_calculator(calculators: np.ndarray, ok: np.ndarray, wanted: str | None) -> str:
    """The calculator whose records are ranked: ``wanted``, else the only one with ok records."""
    present = sorted(set(calculators[ok]))
    if wanted is not None:
        if wanted not in present:
            raise RankingError(f"no ok records of calculator {wanted!r}; present: {', '.join(present) or 'none'}")
        return wanted
    if len(present) != 1:
        raise RankingError(f"ok records of several calculators ({', '.join(present) or 'none'}); "
                           f"choose one (--calculator): energies of different calculators never share a hull")
    return present[0]


def compute_ranking(path: str | os.PathLike, spec: RankingSpec, calculator: str | None = None,
                    reference_entries: Path | None = None,
                    include_unconverged: bool = False) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Derived columns (stability, properties, ranking) for every committed row, and their metadata.

    Policy: a relaxation that did not converge (``converged`` false: step limit reached) is neither put
    on the hull nor ranked unless ``include_unconverged``; the derived column ``unconverged`` flags
    those rows and the metadata counts them, so a report can say what was left out.
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
    entries = load_reference_entries(reference_entries) if reference_entries else None
    try:
        hull = stability(elements, counts, energies, cols["calculator"], cols["task_id"],
                         is_reference=cols["kind"] == KIND_REFERENCE, reference_entries=entries)
    except ValueError as exc:
        raise RankingError(str(exc)) from None
    derived: dict[str, np.ndarray] = {
        "formation_energy": hull.formation_energy, "e_above_hull": hull.e_above_hull,
        "decomposition": np.asarray(hull.decomposition, dtype=str),
        **magnet_properties(elements, counts, cols["volume"], cols["magmom_total"]),
        "unconverged": unconverged,
    }
    eligible = on_hull_rows & (cols["kind"] == KIND_CANDIDATE)
    spec, skipped = without_empty_objectives(spec, derived, eligible)
    try:
        ranking = rank(derived, spec, eligible=eligible, composition=(elements, counts))
    except KeyError as exc:
        raise RankingError(str(exc.args[0])) from None
    derived.update(ranking.as_columns())
    meta = {"calculator": chosen, "chemical_system": hull.chemical_system,
            "settings": json.dumps(asdict(spec)), "skipped_objectives": ",".join(skipped),
            "reference_entries": str(reference_entries) if reference_entries else "campaign references",
            "unconverged": f"{int(unconverged.sum())} unconverged relaxation(s) "
                           + ("included" if include_unconverged else "excluded from the hull and the ranking")}
    return derived, meta


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
    stored, stored_calculator = stored_ranking_settings(path)
    ranking = ranking or stored
    derived, meta = compute_ranking(path, ranking.spec, calculator or stored_calculator, ranking.reference_entries)
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
                           reference_entries: Path | None) -> Ranking:
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
    return Ranking(parsed.spec, entries)
