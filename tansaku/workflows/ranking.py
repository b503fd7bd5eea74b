"""Turn stored records into answers: stability, properties and ranking, stored as derived columns."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
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
from tansaku.workflows.campaign import Campaign, CampaignError, Ranking, Stage, parse_campaign, parse_ranking_table
from tansaku.workflows.magnetism import MAGNETISM_INPUTS, magnetic_columns
from tansaku.workflows.tasks import CALCULATION_ANISOTROPY

RECORD_INPUTS = ("task_id", "kind", "status", "calculator", "energy", "volume", "magmom_total", "converged",
                 *MAGNETISM_INPUTS)
# objective -> the upper-bound column that stands in for it when the ranked calculator's moments are unsigned
UPPER_BOUNDS = {"mu0_ms": "mu0_ms_upper", "bh_max": "bh_max_upper"}


class RankingError(ValueError):
    """Results that cannot be ranked as asked (no records, ambiguous calculator, missing reference)."""


def stored_campaign(path: str | os.PathLike) -> Campaign | None:
    """The current campaign stored in the results file (None when the file holds no campaign text).

    RankingError (one line) when the stored campaign cannot be read here, e.g. because this process does
    not know its calculator (a plug-in not installed): ranking with default objectives instead would
    silently give a different answer.
    """
    from tansaku.results.tables import current_campaign_text

    text = current_campaign_text(path)
    if not text:
        return None
    try:
        return parse_campaign(text, source=f"{path} (stored campaign)")
    except CampaignError as exc:
        raise RankingError(f"cannot read the ranking settings of the campaign stored in the file: {exc}") from None


def stored_ranking_settings(path: str | os.PathLike) -> tuple[Ranking, str | None]:
    """The [ranking] settings and calculator of the campaign stored in the results file (defaults when
    there is none); RankingError when it cannot be read (``stored_campaign``)."""
    campaign = stored_campaign(path)
    if campaign is None:
        return Ranking(), None
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
                    rows: np.ndarray | None = None,
                    allow_mixed_energy_scales: bool = False) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Derived columns (stability, properties, ranking) for every committed row, and their metadata.

    Policy: a relaxation that did not converge (``converged`` false: step limit reached) is neither put
    on the hull nor ranked unless ``include_unconverged``; the derived column ``unconverged`` flags
    those rows and the metadata counts them, so a report can say what was left out. ``rows`` (bool
    mask, e.g. one funnel stage's rows) limits the hull and the ranking to those rows.

    ``reference_entries`` (Materials Project entries) are used only with a calculator of a PBE energy
    scale, with MaterialsProject2020Compatibility applied to them and to the ranked rows
    (:mod:`tansaku.screening.energy_scales`); for another scale RankingError, unless
    ``allow_mixed_energy_scales`` forces it (the metadata ``mixed_energy_scales`` then says so).
    """
    cols = read_columns(path, list(RECORD_INPUTS))
    if len(cols["task_id"]) == 0:
        raise RankingError(f"{path} holds no records")
    ok = cols["status"] == STATUS_OK
    if rows is not None:
        ok = ok & rows
    chosen = choose_calculator(cols["calculator"], ok, calculator)
    numbers, atom_start, natoms = read_atom_numbers(path)
    elements, counts = composition_matrix(numbers, atom_start, natoms)
    unconverged = ok & ~cols["converged"].astype(bool)
    relaxation = cols["calculation"] != CALCULATION_ANISOTROPY  # K1 rows: no relaxation, not on the hull
    on_hull_rows = ok & relaxation & (cols["calculator"] == chosen) & (~unconverged | include_unconverged)
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
    formula_units = np.gcd.reduce(counts.astype(np.int64), axis=1).clip(1).astype(float)
    magnetism = magnetic_columns(path, cols, on_hull_rows, site_moments, start, natoms, numbers, formula_units)
    derived: dict[str, np.ndarray] = {
        "formation_energy": hull.formation_energy, "e_above_hull": hull.e_above_hull,
        "decomposition": np.asarray(hull.decomposition, dtype=str),
        **magnet_properties(elements, counts, cols["volume"], magmom_total, signed=moments == MOMENTS_SIGNED,
                            magmom_abs_sum=per_row_abs_sum(site_moments, start, natoms), k1=magnetism["k1"]),
        **magnetism,
        "magnetic_order": magnetic_orders(path, ok & (moments == MOMENTS_SIGNED), site_moments, start, natoms),
        "unconverged": unconverged,
    }
    eligible = on_hull_rows & (cols["kind"] == KIND_CANDIDATE) & magnetism["ground_state"]
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
            "unconverged": (f"{int(unconverged.sum())} row(s) with forces above fmax (single points, or "
                            f"relaxations that reached the step limit) included" if include_unconverged else
                            f"{int(unconverged.sum())} unconverged relaxation(s) excluded from the hull and the ranking"),
            **scale_meta}
    return derived, meta


def _comparable(settings: Mapping) -> str:
    """Calculator parameters and relaxation settings as comparable text (what makes a row current)."""
    relax = {k: v for k, v in dict(settings.get("relax", {})).items() if k != "relax_cell"}
    return json.dumps({"params": settings.get("params", {}), "relax": relax}, sort_keys=True, default=str)


def current_rows(path: str | os.PathLike, rows: np.ndarray, stage: Stage) -> np.ndarray:
    """The ``rows`` computed with ``stage``'s current calculator parameters and relaxation settings.

    Changing them (another ecut, fmax, ...) and running again makes new task ids: the records of the
    earlier settings stay in the file, and ranking them too would put each candidate on the hull twice.
    Rows with no stored settings (files from before /settings) and rows of other calculators count as
    current (the calculator filter and the energy-scale check deal with those).
    """
    from tansaku.results.tables import settings_table

    wanted = _comparable({"params": dict(stage.calculator.params), "relax": stage.relax.as_dict()})
    settings_ids = read_columns(path, ["settings_id"])["settings_id"]
    settings = settings_table(path)
    current = rows.copy()
    for sid in set(settings_ids[rows].tolist()) & {key for key, text in settings.items() if text}:
        entry = json.loads(settings[sid])
        if entry.get("calculator") == stage.calculator.name and "calculation" not in entry \
                and _comparable(entry) != wanted:
            current &= settings_ids != sid
    return current


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


def stage_of_rows(path: str | os.PathLike, campaign: Campaign) -> np.ndarray:
    """The funnel stage of every committed row (rows written before funnels existed: the first stage)."""
    names = np.asarray(read_columns(path, ["stage_name"])["stage_name"]).astype(str)
    return np.where(names == "", campaign.stage_name, names)


# record columns a selection filter may name besides the derived ones
SELECTION_RECORD_COLUMNS = ("kind", "status", "converged", "label", "formula", "prototype", "calculator",
                            "energy_per_atom", "volume", "magmom_total")


def _fill_like(values: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(values)
    kind = a.dtype.kind
    if kind == "f":
        return np.full(n, np.nan, a.dtype)
    if kind in "iu":
        return np.full(n, -1, np.int64)
    if kind == "b":
        return np.zeros(n, bool)
    return np.full(n, "", dtype=object)


def rank_stages(path: str | os.PathLike, campaign: Campaign,
                rankings: Mapping[str, Ranking] | None = None) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Derived columns of a funnel's results: each stage ranked against its own rows only (its own
    references, its own hull: never one hull across stages), then each later stage's ``select`` rule
    applied to the previous stage's rows (derived ``selected`` and ``selection_reason``).

    ``rankings`` (stage name -> Ranking) replaces a stage's ranking settings (default: the campaign's).
    Stages without ok records yet are left out (their rows get no derived values). The attributes are
    those of the last ranked stage (so single-stage readers keep working) plus ``stages``: JSON of
    every stage's metadata (calculator, settings, ... or ``error``). RankingError when no stage ranks.
    """
    from tansaku.workflows.selection import select_rows

    stage_names = stage_of_rows(path, campaign)
    n = len(stage_names)
    merged: dict[str, np.ndarray] = {}
    metas: dict[str, dict[str, str]] = {}
    ranked: list[str] = []
    current_of: dict[str, np.ndarray] = {}  # stage -> its rows of the current settings
    for stage in campaign.stages:
        stage_rows = stage_names == stage.name
        rows = current_rows(path, stage_rows, stage) if stage.kind != "anisotropy" else stage_rows
        ranking = (rankings or {}).get(stage.name, stage.ranking)
        if not rows.any():
            metas[stage.name] = {"error": "no records yet"}
            continue
        if stage.kind == "anisotropy":  # K1 rows are not relaxations: no hull; their K1 lands on the source rows
            metas[stage.name] = {"error": "anisotropy stage: not ranked (its K1 is on the previous stage's "
                                          "ground-state rows)"}
            continue
        try:
            derived, meta = compute_ranking(path, ranking.spec, stage.calculator.name, ranking.reference_entries,
                                            include_unconverged=stage.single_point, rows=rows,
                                            allow_mixed_energy_scales=ranking.allow_mixed_energy_scales)
        except RankingError as exc:
            metas[stage.name] = {"error": str(exc)}
            continue
        for name, values in derived.items():
            column = merged.setdefault(name, _fill_like(values, n))
            column[rows] = np.asarray(values)[rows]
        metas[stage.name] = {**meta, "stage": stage.name, "stage_rows": str(int(rows.sum())),
                             **_superseded_meta(stage_rows, rows)}
        current_of[stage.name] = rows
        ranked.append(stage.name)
    if not ranked:
        problems = "; ".join(f"{name}: {m['error']}" for name, m in metas.items())
        raise RankingError(f"no stage could be ranked ({problems})")
    columns = {**read_columns(path, list(SELECTION_RECORD_COLUMNS)), **merged}
    composition = composition_matrix(*read_atom_numbers(path))
    selected, reason = np.zeros(n, bool), np.full(n, "", dtype=object)
    for previous, stage in zip(campaign.stages, campaign.stages[1:]):
        if previous.name not in ranked:
            continue
        rows = current_of[previous.name]
        try:
            result = select_rows(columns, rows, stage.select, previous.single_point, composition, stage=stage.name)
        except (KeyError, ValueError) as exc:
            raise RankingError(f"stage {stage.name!r} select: {exc.args[0] if exc.args else exc}") from None
        selected[rows], reason[rows] = result.selected[rows], result.reason[rows]
        reason[(stage_names == previous.name) & ~rows] = f"{stage.name}: not selected: {SUPERSEDED}"
        chosen = result.selected & rows
        candidates = int((chosen & (np.asarray(columns["kind"]).astype(str) == KIND_CANDIDATE)).sum())
        metas[previous.name]["selected_for"] = (f"{stage.name}: {candidates} candidates ({stage.select.describe()}) "
                                                f"+ {int(chosen.sum()) - candidates} references carried")
    merged["selected"], merged["selection_reason"] = selected, reason.astype(str)
    merged = {name: (values.astype(str) if values.dtype == object else values) for name, values in merged.items()}
    attrs = {**metas[ranked[-1]], "stages": json.dumps(metas)}
    return merged, attrs


SUPERSEDED = "computed with earlier calculator or relaxation settings (superseded)"


def _superseded_meta(stage_rows: np.ndarray, current: np.ndarray) -> dict[str, str]:
    left_out = int((stage_rows & ~current).sum())
    return {"superseded": f"{left_out} row(s) {SUPERSEDED}: not ranked"} if left_out else {}


def stage_metadata(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """Per-stage ranking metadata stored by ``rank_stages`` ({} for a single-stage ranking)."""
    from tansaku.results.derived import derived_attrs

    text = derived_attrs(path).get("stages", "")
    return json.loads(text) if text else {}


def rank_funnel(path: str | os.PathLike, campaign: Campaign, ranking: Ranking | None = None,
                stage: str | None = None) -> pd.DataFrame:
    """Rank every stage of a funnel's results and store the ranking; ``ranking`` (e.g. command-line
    overrides) replaces the settings of ``stage`` (None: of every stage). Returns ``ranked_table``."""
    if stage is not None:
        try:
            campaign.stage(stage)
        except ValueError as exc:
            raise RankingError(str(exc)) from None
    rankings = {s.name: ranking for s in campaign.stages if stage in (None, s.name)} if ranking else None
    derived, meta = rank_stages(path, campaign, rankings)
    write_derived(path, derived, meta)
    return ranked_table(path)


def rank_results(path: str | os.PathLike, ranking: Ranking | None = None, calculator: str | None = None,
                 stage: str | None = None, campaign: Campaign | None = None) -> pd.DataFrame:
    """Compute the ranking of a results file, store it as derived columns, return the ranked candidates.

    A funnel (the given or stored campaign has ``[[stages]]``) is ranked stage by stage (``rank_funnel``).
    """
    campaign = campaign or stored_campaign(path)
    if campaign is not None and campaign.is_funnel:
        return rank_funnel(path, campaign, ranking, stage)
    if stage is not None:
        raise RankingError(f"--stage {stage}: {path} holds a single-stage campaign")
    stored, stored_calculator = (campaign.ranking, campaign.calculator.name) if campaign else (Ranking(), None)
    ranking = ranking or stored
    single_point = campaign is not None and campaign.relax.steps == 0  # as a funnel's single-point stage
    every = np.ones(len(read_columns(path, ["task_id"])["task_id"]), bool)
    rows = current_rows(path, every, campaign.stages[0]) if campaign is not None else None
    derived, meta = compute_ranking(path, ranking.spec, calculator or stored_calculator, ranking.reference_entries,
                                    allow_mixed_energy_scales=ranking.allow_mixed_energy_scales,
                                    include_unconverged=single_point, rows=rows)
    if rows is not None:
        meta = {**meta, **_superseded_meta(every, rows)}
    write_derived(path, derived, meta)
    return ranked_table(path)


def ranked_table(path: str | os.PathLike) -> pd.DataFrame:
    """Records with their derived columns, ranked candidates first (best rank first)."""
    from tansaku.results import read_table

    table = read_table(path)
    if "rank" not in table:
        return table
    return by_rank(table).reset_index(drop=True)


def by_rank(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``table`` ranked first (best rank first), then the unranked ones in their order."""
    order = np.where(table["rank"] > 0, table["rank"], np.iinfo(np.int64).max)
    return table.iloc[np.argsort(order, kind="stable")]


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
