"""Two funnel stages compared: Spearman from its textbook formula, energy differences and top-N moves by hand."""

import numpy as np
import pandas as pd
import pytest

from tansaku.report.stages import compare_stages, comparison_html


def funnel_table() -> tuple[pd.DataFrame, np.ndarray]:
    """Stage a ranks candidates c0..c5; stage b has c0..c3 (c1 failed the ranking there), a reference and
    a candidate b only has; energies chosen so the differences are easy to check."""
    rows = [  # stage, candidate_id, kind, rank, formation_energy, e_above_hull
        ("a", "c0", "candidate", 1, -0.30, 0.00), ("a", "c1", "candidate", 2, -0.20, 0.01),
        ("a", "c2", "candidate", 3, -0.10, 0.02), ("a", "c3", "candidate", 4, -0.05, 0.03),
        ("a", "c4", "candidate", 5, 0.00, 0.04), ("a", "c5", "candidate", -1, np.nan, np.nan),
        ("a", "Fe", "reference", -1, 0.0, 0.0),
        ("b", "c0", "candidate", 3, -0.20, 0.05), ("b", "c1", "candidate", -1, -0.1, 0.5),
        ("b", "c2", "candidate", 1, -0.40, 0.00), ("b", "c3", "candidate", 2, -0.15, 0.01),
        ("b", "Fe", "reference", -1, 0.0, 0.0), ("b", "c9", "candidate", 4, -0.5, 0.0),
    ]
    table = pd.DataFrame(rows, columns=["stage", "candidate_id", "kind", "rank", "formation_energy", "e_above_hull"])
    table["label"] = table["candidate_id"].str.upper()
    return table.drop(columns="stage"), table["stage"].to_numpy()


def test_comparison_by_hand():
    table, stages = funnel_table()
    c = compare_stages(table, stages, "a", "b", top=2)
    assert c.common == 3  # c0, c2, c3: ranked in both
    # ranks a: (1, 3, 4) -> (1, 2, 3); b: (3, 1, 2); d = (-2, 1, 1): rho = 1 - 6 * 6 / (3 * 8)
    assert c.spearman == pytest.approx(1 - 6 * 6 / (3 * (9 - 1)))
    fe = {e.column: e for e in c.energies}
    diff = np.array([-0.20 + 0.30, -0.40 + 0.10, -0.15 + 0.05])
    assert fe["formation_energy"].mean_abs == pytest.approx(np.abs(diff).mean())
    assert fe["formation_energy"].max_abs == pytest.approx(0.3) and fe["formation_energy"].mean == pytest.approx(diff.mean())
    assert fe["e_above_hull"].n == 3 and fe["e_above_hull"].max_abs == pytest.approx(0.05)
    assert (c.moved_in, c.moved_out) == (["C3"], ["C0"])  # top 2: a {c0, c2}, b {c2, c3}
    assert c.table["label"].tolist() == ["C2", "C3", "C0"] and c.table["rank_b"].tolist() == [1, 2, 3]
    assert "Spearman rank correlation -0.500" in "\n".join(c.lines())
    assert "a &rarr; b" in comparison_html([c], {"a": "a/index.html"}, "t")
    # default N: half of the common candidates, rounded up
    assert compare_stages(table, stages, "a", "b").top == 2


def test_too_few_common_candidates_give_no_correlation():
    table, stages = funnel_table()
    keep = ~((stages == "b") & table["candidate_id"].isin(["c2", "c3"]).to_numpy())
    c = compare_stages(table[keep], stages[keep], "a", "b")
    assert c.common == 1 and np.isnan(c.spearman) and "n/a" in c.lines()[0]
