"""Funnel selection rules against a brute-force selection (plain Python loops) on synthetic ranked records."""

import numpy as np
import pytest

from tansaku.filters import parse_filter
from tansaku.workflows.campaign import Selection
from tansaku.workflows.selection import select_rows


def synthetic_columns(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Ranked rows of two stages: kinds, statuses, convergence, ranks (unique among ranked rows, -1 for
    rows failing the ranking filters), e_above_hull with NaN, Pareto flags and a formation energy."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["candidate", "reference", "competing"], n, p=[0.8, 0.15, 0.05])
    status = rng.choice(["ok", "failed"], n, p=[0.9, 0.1])
    converged = rng.random(n) < 0.85
    rank = np.full(n, -1)
    ranked = np.flatnonzero((kind == "candidate") & (status == "ok") & converged & (rng.random(n) < 0.8))
    rank[ranked] = rng.permutation(len(ranked)) + 1
    e = rng.exponential(0.1, n)
    e[rng.random(n) < 0.1] = np.nan
    columns = {"kind": kind, "status": status, "converged": converged, "rank": rank, "e_above_hull": e,
               "on_pareto": rng.random(n) < 0.3, "formation_energy": rng.normal(0, 0.3, n),
               "label": np.array([f"c{i}" for i in range(n)])}
    return columns, rng.random(n) < 0.7  # the previous stage's rows


def brute_force(columns, rows, rule: Selection, single_point: bool) -> np.ndarray:
    n = len(rows)
    eligible = [bool(rows[i] and columns["kind"][i] == "candidate" and columns["status"][i] == "ok"
                     and (columns["converged"][i] or single_point)) for i in range(n)]
    by_rank = sorted((columns["rank"][i], i) for i in range(n) if eligible[i] and columns["rank"][i] > 0)
    top = {i for _, i in by_rank[:rule.top]} if rule.top else set(range(n))
    expected = np.zeros(n, bool)
    for i in range(n):
        if not rows[i] or columns["status"][i] != "ok":
            continue
        if columns["kind"][i] != "candidate":
            expected[i] = True  # references and competing phases are always carried
            continue
        keep = eligible[i] and i in top
        if rule.e_above_hull_max is not None:
            keep = keep and columns["e_above_hull"][i] <= rule.e_above_hull_max  # NaN compares False
        if rule.pareto:
            keep = keep and bool(columns["on_pareto"][i])
        for flt in rule.filters:
            assert flt.column == "formation_energy" and flt.op == "<="
            keep = keep and columns["formation_energy"][i] <= flt.value
        expected[i] = keep
    return expected


RULES = {
    "top": Selection(top=7),
    "top more than ranked": Selection(top=10_000),
    "hull": Selection(e_above_hull_max=0.05),
    "pareto": Selection(pareto=True),
    "filter": Selection(filters=(parse_filter("formation_energy <= 0"),)),
    "all four": Selection(top=40, e_above_hull_max=0.2, pareto=True, filters=(parse_filter("formation_energy <= 0.1"),)),
    "top and hull": Selection(top=15, e_above_hull_max=0.08),
}


@pytest.mark.parametrize("single_point", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(RULES))
def test_selection_equals_brute_force(name, seed, single_point):
    columns, rows = synthetic_columns(400, seed)
    rule = RULES[name]
    result = select_rows(columns, rows, rule, single_point=single_point, stage="dft")
    expected = brute_force(columns, rows, rule, single_point)
    assert np.array_equal(result.selected, expected)
    assert result.count == int(expected.sum()) and 0 < result.count < rows.sum()
    # every row of the previous stage says why; rows outside it say nothing
    assert all(r.startswith("dft: ") for r in result.reason[rows]) and not any(result.reason[~rows])
    candidate = columns["kind"] == "candidate"
    for i in np.flatnonzero(rows & candidate):
        assert result.reason[i].startswith("dft: selected: ") == bool(expected[i]), result.reason[i]
    for i in np.flatnonzero(rows & ~candidate & expected):
        assert "carried" in result.reason[i]


def test_reasons_name_the_failing_rule():
    columns = {"kind": np.array(["candidate"] * 4), "status": np.array(["ok", "ok", "ok", "failed"]),
               "converged": np.array([True, True, False, True]), "rank": np.array([1, 2, -1, -1]),
               "e_above_hull": np.array([0.0, 0.3, 0.0, np.nan]), "on_pareto": np.array([True, False, True, False])}
    result = select_rows(columns, np.ones(4, bool), Selection(top=1, e_above_hull_max=0.1))
    assert result.reason.tolist() == [
        "selected: rank 1 in top 1; e_above_hull 0 <= 0.1",
        "not selected: rank 2 not in top 1; e_above_hull 0.3 > 0.1",
        "not selected: relaxation not converged",
        "not selected: the task failed"]
