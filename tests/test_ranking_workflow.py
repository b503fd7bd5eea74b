"""Ranking stored results end to end: hull equals pymatgen's, ranking stored, rank/query/report commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.entries.computed_entries import ComputedEntry

from conftest import tansaku
from tansaku.results import read_columns, read_table
from tansaku.workflows.campaign import parse_campaign
from tansaku.screening.rank import RankingSpec
from tansaku.workflows.ranking import RankingError, compute_ranking, rank_results
from tansaku.workflows.runner import run_campaign

CAMPAIGN = """
[campaign]
name = "cuau"
output = "{output}"
[calculator]
name = "{calculator}"
[relax]
fmax = 0.02
[execution]
executor = "serial"
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = ["Cu", "Au", "Pd"], "3c" = ["Cu", "Au", "Pd"] }}
distinct_elements = true
[[prototypes]]
prototype = "L10"
sites = {{ "1a" = ["Cu", "Au"], "1d" = ["Au", "Pd"] }}
distinct_elements = true
[[competing]]
prototype = "B2"
sites = {{ "1a" = "Cu", "1b" = "Au" }}
[ranking]
objectives = {{ e_above_hull = "min", formation_energy = "min" }}
filters = ["e_above_hull <= 0.2"]
"""


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranking")
    campaign = parse_campaign(CAMPAIGN.format(output=tmp / "cuau.h5", calculator="emt"))
    run_campaign(campaign, show_progress=False)
    table = rank_results(campaign.output)
    return campaign, table


def test_hull_matches_pymatgen_phase_diagram(ranked):
    campaign, _ = ranked
    table = read_table(campaign.output)
    entries = [ComputedEntry(formula_from_row(campaign.output, i), row.energy, entry_id=row.task_id)
               for i, row in enumerate(table.itertuples())]
    diagram = PhaseDiagram(entries)
    for entry, row in zip(entries, table.itertuples()):
        assert row.e_above_hull == pytest.approx(diagram.get_e_above_hull(entry), abs=1e-6)
        assert row.formation_energy == pytest.approx(diagram.get_form_energy_per_atom(entry), abs=1e-6)
    assert (table["e_above_hull"] >= -1e-9).all() and (table["e_above_hull"] < 1e-6).any()


def formula_from_row(path, row):
    from tansaku.results import read_record

    task_id = read_columns(path, ["task_id"])["task_id"][row]
    return read_record(path, task_id)[1].get_chemical_formula()


def test_ranking_is_stored_and_orders_candidates(ranked):
    campaign, table = ranked
    stored = read_table(campaign.output)
    for column in ("e_above_hull", "formation_energy", "on_pareto", "score", "rank", "passes_filters"):
        assert column in stored
    candidates = stored[(stored["kind"] == "candidate")]
    ranked_rows = candidates[candidates["rank"] > 0].sort_values("rank")
    assert (ranked_rows["e_above_hull"] <= 0.2).all()
    assert (stored.loc[stored["kind"] != "candidate", "rank"] == -1).all()  # references are never ranked
    assert list(table["task_id"][: len(ranked_rows)]) == list(ranked_rows["task_id"])
    assert np.all(np.diff(ranked_rows["score"].to_numpy()) <= 1e-12)  # best score first


def test_rank_command_recomputes_with_new_weights_and_filters(ranked, tmp_path):
    campaign, _ = ranked
    result = tansaku("rank", campaign.output, "--objective", "formation_energy:min:1", "--filter",
                     "e_above_hull <= 0.05", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stored = read_table(campaign.output)
    passing = stored[stored["rank"] > 0]
    assert (passing["e_above_hull"] <= 0.05).all()
    best = passing.sort_values("rank").iloc[0]
    assert best["formation_energy"] == passing["formation_energy"].min()
    assert best["label"] in result.stdout
    show = tansaku("show", campaign.output, best["task_id"], cwd=tmp_path)
    assert show.returncode == 0 and "e_above_hull" in show.stdout and "rank" in show.stdout
    bad = tansaku("rank", campaign.output, "--objective", "nonsense:min", cwd=tmp_path)
    assert bad.returncode == 2 and "unknown column 'nonsense'" in bad.stderr


def test_rank_command_takes_element_filters_of_the_query_grammar(ranked, tmp_path):
    campaign, _ = ranked
    result = tansaku("rank", campaign.output, "--filter", "elements !has Pd", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stored = read_table(campaign.output)
    ranked_ids = set(stored.task_id[stored["rank"] > 0])
    with_pd = set(tansaku_query_ids(campaign.output, "elements has Pd", tmp_path))
    assert ranked_ids and not ranked_ids & with_pd and with_pd
    bad = tansaku("rank", campaign.output, "--filter", "elements has Xx", cwd=tmp_path)
    assert bad.returncode == 2 and 'unknown element "Xx" in filter "elements has Xx"' in bad.stderr


def tansaku_query_ids(path, where: str, cwd) -> list[str]:
    result = tansaku("query", path, "--where", where, "--columns", "task_id", "--format", "json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [row["task_id"] for row in json.loads(result.stdout)]


def test_query_command_filters_sorts_and_exports(ranked, tmp_path):
    campaign, _ = ranked
    result = tansaku("query", campaign.output, "--where", "kind == candidate", "--where", "elements has Au",
                     "--sort", "formation_energy", "--columns", "task_id,label,formation_energy",
                     "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all("Au" in row["label"] for row in rows)
    energies = [row["formation_energy"] for row in rows]
    assert energies == sorted(energies)
    bad = tansaku("query", campaign.output, "--where", "formation_energy <= 0.1x", cwd=tmp_path)
    assert bad.returncode == 2 and "0.1x" in bad.stderr and "Traceback" not in bad.stderr


def test_report_command_writes_html_and_plots(ranked, tmp_path):
    """The report follows the stored ranking: its Pareto figure draws the objectives last ranked by (an EMT
    campaign ranked by E_hull and E_f gets one), and says why there is none after a one-objective ranking."""
    campaign, _ = ranked
    for objectives, pareto in ((["e_above_hull:min", "formation_energy:min"], True), (["formation_energy:min"], False)):
        rank = tansaku("rank", campaign.output, *(f"--objective={o}" for o in objectives), cwd=tmp_path)
        assert rank.returncode == 0, rank.stderr
        result = tansaku("report", campaign.output, "-o", tmp_path / "report", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        html = (tmp_path / "report" / "index.html").read_text()
        assert "<table" in html and (tmp_path / "report" / "hull.png").stat().st_size > 1000
        assert (tmp_path / "report" / "pareto.png").exists() == pareto
        if pareto:
            assert "E_hull vs E_f for the" in html and "ranking objectives: minimise E_hull, minimise E_f" in html
        else:
            assert "Skipped: a Pareto front needs two ranking objectives or more (the ranking used: E_f)" in html


def test_energies_of_two_calculators_never_share_a_hull(tmp_path, calculator_registry):
    from tansaku.calculators import CalculatorSpec
    from tansaku.calculators.builtin import EMT_ELEMENTS, make_emt

    calculator_registry(CalculatorSpec(name="emt-copy", factory=make_emt, elements=EMT_ELEMENTS, package="ase"))
    output = tmp_path / "mixed.h5"
    for calculator in ("emt", "emt-copy"):
        run_campaign(parse_campaign(CAMPAIGN.format(output=output, calculator=calculator)), show_progress=False)
    with pytest.raises(RankingError, match="several calculators.*emt, emt-copy.*never share a hull"):
        compute_ranking(output, RankingSpec(), calculator=None)
    derived, meta = compute_ranking(output, RankingSpec(), calculator="emt")  # one chosen: only its rows
    cols = read_columns(output, ["calculator"])
    assert meta["calculator"] == "emt"
    assert np.isnan(derived["e_above_hull"][cols["calculator"] == "emt-copy"]).all()
    assert np.isfinite(derived["e_above_hull"][cols["calculator"] == "emt"]).all()


def test_objectives_without_values_are_skipped_not_fatal(ranked):
    campaign, _ = ranked
    derived, meta = compute_ranking(campaign.output, RankingSpec())  # default objectives include mu0_ms
    assert meta["skipped_objectives"] == "mu0_ms"  # EMT gives no magnetic moments
    assert (derived["rank"] > 0).any()


def test_rerun_with_other_settings_ranks_only_the_current_records(tmp_path):
    """Changing fmax and running again adds records under new task ids; the ranking uses only the records
    of the current settings (each candidate once), says how many it left out, and switching back ranks
    the first records again without recomputing."""
    output = tmp_path / "cuau.h5"
    first = parse_campaign(CAMPAIGN.format(output=output, calculator="emt"))
    run_campaign(first, show_progress=False)
    candidates = int((read_columns(output, ["kind"])["kind"] == "candidate").sum())
    second = parse_campaign(CAMPAIGN.format(output=output, calculator="emt").replace("fmax = 0.02", "fmax = 0.03"))
    run_campaign(second, show_progress=False)
    stored = read_columns(output, ["task_id", "kind"])
    assert int((stored["kind"] == "candidate").sum()) == 2 * candidates  # both runs' records are kept

    table = rank_results(output, campaign=second)
    ranked = table[table["rank"] > 0]
    assert ranked["candidate_id"].is_unique and len(ranked) > 0
    newer = set(stored["task_id"][len(stored["task_id"]) // 2:].tolist())
    assert set(ranked["task_id"]) <= newer
    assert np.isnan(table.loc[~table["task_id"].isin(newer), "e_above_hull"]).all()
    from tansaku.results.derived import derived_attrs

    assert derived_attrs(output)["superseded"].startswith(f"{len(stored['task_id']) // 2} row(s) computed with earlier")

    table = rank_results(output, campaign=first)  # back to the first settings: their records, no new run
    ranked = table[table["rank"] > 0]
    assert ranked["candidate_id"].is_unique and not set(ranked["task_id"]) & newer
