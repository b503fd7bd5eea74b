"""HTML report of ranked screening results (tansaku.report): figures, page contents, and the page
as a real browser (Debian's Chromium via Playwright) renders it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from tansaku.report import write_report
from tansaku.report.hull import hull_plot
from tansaku.report.plots import pareto_plot
from tansaku.screening.hull import ON_HULL_TOL
from tansaku.screening.rank import Objective, RankingSpec, rank

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
FIGURES = ("hull.png", "pareto.png", "re_vs_ms.png")

# rough per-element data for a plausible table: chemical potential (eV/atom), volume (Å^3/atom),
# moment (μB/atom), HHI production, HHI reserve, price (USD/kg)
ELEMENTS = {
    "Sm": (-4.70, 33.0, -0.30, 9500, 3100, 14.0), "Fe": (-8.30, 11.8, 2.20, 2400, 1400, 0.4),
    "Co": (-7.10, 11.1, 1.60, 3100, 2700, 33.0), "Ti": (-7.80, 17.0, -0.60, 1100, 1600, 11.0),
    "N": (-8.30, 5.5, -0.05, 1300, 500, 0.4), "Cu": (-3.50, 11.8, 0.0, 1600, 1500, 8.0),
    "Ni": (-5.50, 10.9, 0.0, 1000, 1500, 16.0), "Pd": (-5.20, 14.7, 0.0, 3200, 8000, 50000.0),
    "Au": (-3.20, 17.0, 0.0, 1100, 1000, 60000.0),
}

# (formula, prototype, kind, variant text, formation-energy target in eV/atom; None = failed)
SM_CO = [
    ("Sm", "hcp", "reference", "", 0.0), ("Co", "hcp", "reference", "", 0.0),
    ("SmCo2", "C15", "competing", "", -0.160), ("SmCo3", "PuNi3", "competing", "", -0.140),
    ("Sm2Co7", "Ce2Ni7", "competing", "", -0.128), ("SmCo5", "CaCu5", "competing", "", -0.120),
    ("Sm2Co17", "Th2Zn17", "competing", "", -0.085),
    ("SmCo5", "CaCu5", "candidate", "", -0.118), ("SmCo7", "TbCu7", "candidate", "", -0.080),
    ("Sm2Co17", "Th2Ni17", "candidate", "", -0.079), ("SmCo12", "ThMn12", "candidate", "", 0.020),
    ("SmCo11", "ThMn12", "candidate", "2a:Sm→Co #1/1", None), ("Sm2Co7", "Ce2Ni7", "candidate", "", -0.126),
]
SM_FE_CO_TI_N = [
    ("Sm", "hcp", "reference", "", 0.0), ("Fe", "bcc", "reference", "", 0.0), ("Co", "hcp", "reference", "", 0.0),
    ("Ti", "hcp", "reference", "", 0.0), ("N", "N2", "reference", "", 0.0),
    ("SmCo5", "CaCu5", "competing", "", -0.120), ("Sm2Fe17", "Th2Zn17", "competing", "", -0.050),
    ("Fe2Ti", "C14", "competing", "", -0.280), ("SmN", "NaCl", "competing", "", -1.250),
    ("Sm2Co17", "Th2Zn17", "competing", "", -0.085), ("Fe4N", "Fe4N", "competing", "", -0.020),
    ("SmFe12", "ThMn12", "candidate", "", 0.015),
    ("SmTiFe11", "ThMn12", "candidate", "8i:Ti1 #1/3", -0.075), ("SmTiFe11", "ThMn12", "candidate", "8i:Ti1 #2/3", -0.070),
    ("SmTiFe11", "ThMn12", "candidate", "8i:Ti1 #3/3", -0.062),
    ("SmTi2Fe10", "ThMn12", "candidate", "8i:Ti2 #1/5", -0.110), ("SmTi2Fe10", "ThMn12", "candidate", "8i:Ti2 #2/5", -0.100),
    ("SmTi2Fe10", "ThMn12", "candidate", "8i:Ti2 #3/5", -0.090), ("SmTi2Fe10", "ThMn12", "candidate", "8i:Ti2 #4/5", None),
    ("SmFe11Co", "ThMn12", "candidate", "8f:Co1 #1/2", -0.010), ("SmFe10Co2", "ThMn12", "candidate", "Fe:Co0.17 #1/4", -0.020),
    ("SmFe10Co2", "ThMn12", "candidate", "Fe:Co0.17 #2/4", -0.015), ("SmFe9Co3", "ThMn12", "candidate", "Fe:Co0.25 #1/4", -0.030),
    ("SmFe9Co3", "ThMn12", "candidate", "Fe:Co0.25 #2/4", None), ("SmFe8Co4", "ThMn12", "candidate", "8f:Co #1/1", -0.040),
    ("SmFe12N", "ThMn12", "candidate", "2b:N", -0.090), ("SmTiFe11N", "ThMn12", "candidate", "8i:Ti1 2b:N #1/3", -0.140),
    ("SmTiFe11N", "ThMn12", "candidate", "8i:Ti1 2b:N #2/3", -0.130),
    ("SmTiFe11N", "ThMn12", "candidate", "8i:Ti1 2b:N #3/3", None),
    ("Sm2Fe17N3", "Th2Zn17", "candidate", "9e:N", -0.200), ("Sm2Fe17", "Th2Zn17", "candidate", "", -0.048),
]
CU_NI_PD_AU = [
    ("Cu", "fcc", "reference", "", 0.0), ("Ni", "fcc", "reference", "", 0.0), ("Pd", "fcc", "reference", "", 0.0),
    ("Au", "fcc", "reference", "", 0.0), ("Cu3Au", "L12", "candidate", "", -0.050), ("CuAu", "L10", "candidate", "", -0.060),
    ("CuAu3", "L12", "candidate", "", -0.030), ("Ni3Pd", "L12", "candidate", "", -0.010),
    ("NiPd", "L10", "candidate", "", 0.005), ("Cu3Pd", "L12", "candidate", "", -0.080),
    ("CuPd", "L10", "candidate", "", -0.090), ("Ni3Au", "L12", "candidate", "", 0.060),
    ("Cu31Pd", "fcc", "candidate", "4a:Pd1", -0.008), ("Cu15Pd", "fcc", "candidate", "4a:Pd2", None),
]


def make_table(system, calculator: str = "chgnet", magnetic: bool = True) -> pd.DataFrame:
    """A table as `tansaku rank` would give: records plus stability, property and ranking columns,
    computed consistently (pymatgen PhaseDiagram, μ0Ms = 11.654 m/V, ...)."""
    rows = []
    for k, (formula, prototype, kind, variant, e_form) in enumerate(system):
        comp = Composition(formula)
        cell = comp * (2 if prototype == "ThMn12" else 1)
        natoms = int(cell.num_atoms)
        ok = e_form is not None
        energy = sum(ELEMENTS[el.symbol][0] * comp.get_atomic_fraction(el) for el in comp) + (e_form or 0.0)
        volume = sum(ELEMENTS[el.symbol][1] * n for el, n in cell.items()) * (1.0 + 0.004 * (k % 5))
        moment = sum(ELEMENTS[el.symbol][2] * n for el, n in cell.items()) * (1.0 - 0.01 * (k % 4))
        rows.append(dict(
            task_id=f"{k:04d}{formula.lower():0>12.12}", formula=comp.reduced_formula, prototype=prototype,
            label=" ".join(p for p in (formula, prototype, variant) if p), kind=kind,
            status="ok" if ok else "failed", calculator=calculator,
            energy_per_atom=energy if ok else np.nan,
            magmom_total=moment if ok and magnetic else np.nan, volume=volume if ok else np.nan, natoms=natoms))
    table = pd.DataFrame(rows)
    # one successful candidate without moments (e.g. an unconverged spin state) in a magnetic campaign
    if magnetic:
        table.loc[table.index[table.label.str.contains("Fe9Co3.*#1/4|SmCo7")], "magmom_total"] = np.nan

    ok = table.status == "ok"
    entries = {i: PDEntry(Composition(table.formula[i]), table.energy_per_atom[i] * Composition(table.formula[i]).num_atoms)
               for i in table.index[ok]}
    diagram = PhaseDiagram(list(entries.values()))
    for column in ("formation_energy", "e_above_hull", "mu0_ms", "bh_max", "moment_per_fu", "re_atomic_fraction",
                   "re_mass_fraction", "hhi_production", "hhi_reserve", "cost_per_kg", "density"):
        table[column] = np.nan
    table["decomposition"] = ""
    for i, entry in entries.items():
        comp = entry.composition
        decomp, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        table.loc[i, "formation_energy"] = diagram.get_form_energy_per_atom(entry)
        table.loc[i, "e_above_hull"] = max(e_hull, 0.0)
        table.loc[i, "decomposition"] = " + ".join(sorted(e.composition.reduced_formula for e in decomp))
        weights = {el.symbol: comp.get_wt_fraction(el) for el in comp}
        table.loc[i, "re_atomic_fraction"] = comp.get_atomic_fraction("Sm") if "Sm" in comp else 0.0
        table.loc[i, "re_mass_fraction"] = weights.get("Sm", 0.0)
        table.loc[i, "hhi_production"] = sum(ELEMENTS[el][3] * w for el, w in weights.items())
        table.loc[i, "hhi_reserve"] = sum(ELEMENTS[el][4] * w for el, w in weights.items())
        table.loc[i, "cost_per_kg"] = sum(ELEMENTS[el][5] * w for el, w in weights.items())
        cell_mass = comp.weight * table.natoms[i] / comp.num_atoms
        table.loc[i, "density"] = float(cell_mass) * 1.66054 / table.volume[i]
    table["mu0_ms"] = 11.654 * table.magmom_total / table.volume
    table["bh_max"] = 198.9 * table.mu0_ms**2
    table["moment_per_fu"] = table.magmom_total * table.formula.map(lambda f: Composition(f).num_atoms) / table.natoms
    return rank_table(table)


def rank_table(table: pd.DataFrame, max_e_hull: float = 0.1) -> pd.DataFrame:
    """Filters, Pareto front and weighted score of the default objectives (as screening.rank does)."""
    objectives = [("e_above_hull", 1.0), ("mu0_ms", -1.0), ("re_mass_fraction", 1.0), ("hhi_production", 1.0)]
    points = np.column_stack([table[c].to_numpy(float) * s for c, s in objectives])
    eligible = (table.status == "ok").to_numpy() & (table.kind == "candidate").to_numpy()
    passes = eligible & np.isfinite(points).all(axis=1) & (table.e_above_hull.to_numpy() <= max_e_hull)
    rows = np.flatnonzero(passes)
    on_front = np.zeros(len(table), bool)
    score = np.full(len(table), np.nan)
    rank = np.full(len(table), -1)
    if len(rows):
        p = points[rows]
        dominated = [(np.all(p <= p[i], axis=1) & np.any(p < p[i], axis=1)).any() for i in range(len(rows))]
        on_front[rows] = ~np.array(dominated)
        span = np.where(np.ptp(p, axis=0) > 0, np.ptp(p, axis=0), 1.0)
        score[rows] = (1.0 - (p - p.min(axis=0)) / span).mean(axis=1)
        rank[rows[np.argsort(-score[rows], kind="stable")]] = np.arange(1, len(rows) + 1)
    table["passes_filters"] = passes
    table["on_pareto"] = on_front
    table["pareto_rank"] = np.where(passes, np.where(on_front, 0, 1), -1)
    table["score"] = score
    table["rank"] = rank
    return table


def emt_table() -> pd.DataFrame:
    """An EMT alloy campaign: no magnetic moments, no rare earth, and some property columns absent."""
    table = make_table(CU_NI_PD_AU, calculator="emt", magnetic=False)
    return table.drop(columns=["bh_max", "moment_per_fu"])


def assert_valid_png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 10_000, f"{path} missing or too small"
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 500 and image.shape[1] > 800, image.shape
    rgb = image[..., :3]
    assert rgb.var() > 1e-3, f"{path.name} is blank (pixel variance {rgb.var():.2g})"
    assert (rgb.min(axis=2) < 0.9).mean() > 0.02, f"{path.name} is almost all white"
    return image


def ranked_candidates(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["rank"] >= 1)].sort_values("rank")


# ------------------------------------------------------------------------------------ report contents

def test_binary_report_has_three_figures_and_ranked_table(tmp_path):
    table = make_table(SM_CO)
    index = write_report(table, tmp_path / "report", "Sm–Co binary")
    assert index == tmp_path / "report" / "index.html"
    for name in FIGURES:
        assert_valid_png(tmp_path / "report" / name)
    page = index.read_text(encoding="utf-8")
    ranked = ranked_candidates(table)
    assert len(ranked) >= 3
    assert page.count("<tr>") == 1 + len(ranked)  # header row + one per ranked candidate
    assert 'id="count-records"><dt>records</dt><dd>13<' in page
    assert 'id="count-failed"><dt>failed</dt><dd>1<' in page
    on_hull = int(((table.status == "ok") & (table.e_above_hull < 1e-6)).sum())
    assert f'id="count-on-hull"><dt>on the convex hull</dt><dd>{on_hull} ' in page
    assert "SmCo<sub>5</sub>" in page
    assert "Skipped" not in page


def test_table_is_limited_to_top_and_ordered_by_rank(tmp_path):
    table = make_table(SM_FE_CO_TI_N).sample(frac=1.0, random_state=3)  # row order must not matter
    index = write_report(table, tmp_path, "low-RE magnets", top=5)
    page = index.read_text(encoding="utf-8")
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    ranks = [int(r) for r in re.findall(r'<tr><td class="num">(\d+)</td>', body)]
    assert ranks == [1, 2, 3, 4, 5]
    assert f"Top 5 of {len(ranked_candidates(table))} ranked candidates" in page


def test_text_is_escaped_and_page_is_self_contained(tmp_path):
    table = make_table(SM_CO)
    best = ranked_candidates(table).index[0]
    table.loc[best, "label"] = '<script>alert("x")</script> & <b>bold</b>'
    table.loc[best, "decomposition"] = "SmCo5 <+> Co's"
    index = write_report(table, tmp_path, 'Title with <tags> & "quotes"')
    page = index.read_text(encoding="utf-8")
    assert "<script" not in page.lower() and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "SmCo<sub>5</sub> &lt;+&gt; Co&#x27;s" in page
    assert "<title>Title with &lt;tags&gt; &amp; &quot;quotes&quot;</title>" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "http" not in page.split("<body>")[1].lower()
    assert sorted(re.findall(r'<img src="([^"]+)"', page)) == sorted(FIGURES)
    assert all(re.search(rf'<img src="{f}" alt="[^"]{{20,}}" width="\d+" height="\d+">', page) for f in FIGURES)


def test_emt_campaign_without_magnetic_data(tmp_path):
    table = emt_table()
    assert table.mu0_ms.isna().all() and (table["rank"] == -1).all()
    (tmp_path / "pareto.png").write_bytes(b"stale figure from an earlier report")
    index = write_report(table, tmp_path, "EMT alloys")
    assert_valid_png(tmp_path / "hull.png")
    assert not (tmp_path / "pareto.png").exists() and not (tmp_path / "re_vs_ms.png").exists()
    page = index.read_text(encoding="utf-8")
    assert page.count("<img ") == 1
    assert page.count("Skipped: no candidate has a magnetisation μ0Ms (calculator: emt)") == 1
    assert page.count("Skipped: no record has a magnetisation μ0Ms (calculator: emt)") == 1
    # nothing is ranked without μ0Ms: the most stable candidates are listed instead, with the reason
    assert "No candidate is ranked: no candidate has a value of the objective μ0Ms" in page
    ok_candidates = table[(table.status == "ok") & (table.kind == "candidate")]
    assert page.count("<tr>") == 1 + len(ok_candidates)
    first_row = page.split("<tbody>")[1].split("</tr>")[0]
    most_stable = ok_candidates.sort_values(["e_above_hull", "formation_energy"]).label.iloc[0]
    assert most_stable == "CuPd L10" and most_stable in first_row
    assert "Not available for these candidates, so not shown: μ0Ms, (BH)max" in page


def test_degenerate_tables_still_give_a_report(tmp_path):
    empty = write_report(pd.DataFrame(), tmp_path / "empty", "nothing yet").read_text(encoding="utf-8")
    assert "There is no successful candidate to show." in empty and empty.count("Skipped:") == 3
    records_only = make_table(SM_FE_CO_TI_N)[["task_id", "label", "formula", "prototype", "kind", "status",
                                                "calculator", "energy_per_atom", "magmom_total", "volume", "natoms"]]
    page = write_report(records_only, tmp_path / "raw", "before ranking").read_text(encoding="utf-8")
    assert "Skipped: no successful record has a formation energy" in page
    assert "the table has no rank column" in page
    all_failed = make_table(SM_CO).assign(status="failed")
    page = write_report(all_failed, tmp_path / "failed", "all failed").read_text(encoding="utf-8")
    assert page.count("Skipped:") == 3


def test_binary_hull_without_e_above_hull_uses_the_geometric_hull(tmp_path):
    """Without E_hull the figure computes the binary's lower hull itself: it must be pymatgen's."""
    table = make_table(SM_CO).drop(columns=["e_above_hull"])
    write_report(table, tmp_path, "no E_hull")
    assert_valid_png(tmp_path / "hull.png")
    figure = hull_plot(table, tmp_path / "again.png")
    drawn = figure.data
    ok = table[table.status == "ok"]
    entries = [PDEntry(Composition(f), e * Composition(f).num_atoms) for f, e in zip(ok.formula, ok.energy_per_atom)]
    diagram = PhaseDiagram(entries)
    stable = {(round(e.composition.get_atomic_fraction("Co"), 9), round(diagram.get_form_energy_per_atom(e), 9))
              for e in diagram.stable_entries}
    line = {(round(x, 9), round(y, 9)) for x, y in drawn["hull_line"]}
    assert stable <= line and len(stable) >= 4  # Sm, Co and at least two compounds
    # a vertex pymatgen leaves out must lie on its hull all the same (SmCo3 sits on the SmCo2-SmCo5 line)
    e_hull = {(round(e.composition.get_atomic_fraction("Co"), 9), round(diagram.get_form_energy_per_atom(e), 9)):
              diagram.get_e_above_hull(e) for e in entries}
    assert all(e_hull[vertex] < 1e-9 for vertex in line)
    on_hull = set(table.formula.to_numpy()[drawn["rows"][drawn["on_hull"]]])
    assert on_hull == {e.composition.reduced_formula for e in entries
                       if diagram.get_e_above_hull(e) < 1e-9 and diagram.get_form_energy_per_atom(e) <= 0}
    np.testing.assert_allclose(drawn["x"], [Composition(f).get_atomic_fraction("Co")
                                            for f in table.formula.to_numpy()[drawn["rows"]]])


def test_hull_figure_rings_the_records_the_ranking_calls_on_the_hull(tmp_path):
    """With E_hull stored, "on the hull" is screening's test (one tolerance for the ranking and the report)."""
    table = make_table(SM_FE_CO_TI_N)
    table.loc[table.formula == "SmCo5", "e_above_hull"] = 5e-9  # float noise on a stable phase: still on the hull
    figure = hull_plot(table, tmp_path / "hull.png")
    rows, on_hull = figure.data["rows"], figure.data["on_hull"]
    ehull = table.e_above_hull.to_numpy()
    expected = np.flatnonzero((table.status == "ok").to_numpy() & (ehull <= ON_HULL_TOL))
    assert sorted(rows[on_hull]) == sorted(expected) and "SmCo5" in set(table.formula[rows[on_hull]])
    assert len(figure.data["hull_line"]) == 0  # five elements: no line in this projection
    assert f"{len(expected)} records are on the hull" in figure.caption


def test_pareto_figure_draws_the_objectives_the_ranking_used(tmp_path):
    """An EMT campaign ranked by stability and density gets a Pareto figure of those two objectives."""
    table = emt_table()
    objectives = (Objective("e_above_hull", "min"), Objective("density", "max"))
    columns = {c: table[c].to_numpy(float) for c in ("e_above_hull", "density")}
    eligible = (table.status == "ok").to_numpy() & (table.kind == "candidate").to_numpy()
    for name, values in rank(columns, RankingSpec(objectives), eligible).as_columns().items():
        table[name] = values
    index = write_report(table, tmp_path, "EMT alloys", objectives=objectives)
    assert_valid_png(tmp_path / "pareto.png")
    page = index.read_text(encoding="utf-8")
    assert page.count("Skipped:") == 1 and "Skipped: no record has a magnetisation" in page  # RE vs Ms only
    figure = pareto_plot(table, tmp_path / "again.png", [("e_above_hull", "min"), ("density", "max")])
    data = figure.data
    assert (data["y_column"], data["x_column"]) == ("e_above_hull", "density")
    assert sorted(data["rows"][data["front"]]) == sorted(np.flatnonzero(table.on_pareto.to_numpy()))
    np.testing.assert_allclose(data["x"], table.density.to_numpy()[data["rows"]])
    assert "lower right is better" in figure.caption
    with_ms = pareto_plot(table, tmp_path / "ms.png", [("e_above_hull", "min"), ("mu0_ms", "max")])
    assert with_ms.path is None and "no candidate has a magnetisation μ0Ms (calculator: emt)" in with_ms.note


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="direction must be 'min' or 'max'"):
        write_report(make_table(SM_CO), tmp_path, "x", objectives=[("mu0_ms", "up")])
    with pytest.raises(ValueError, match="top must be a non-negative integer"):
        write_report(make_table(SM_CO), tmp_path, "x", top=-1)


# ------------------------------------------------------------------------------------ in a real browser

@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                   "(pip install playwright; the browser comes from apt: chromium)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        yield browser
        browser.close()


def open_page(browser, index: Path):
    """Open the report; return the page and the lists of outside requests and console/page errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside, errors = [], []
    page.on("request", lambda r: None if r.url.startswith("file://") else outside.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(index.as_uri(), wait_until="load")
    return page, outside, errors


@pytest.mark.timeout(180)
@pytest.mark.parametrize("system", ["multi", "binary"])
def test_report_renders_in_chromium(browser, tmp_path, system):
    table = make_table(SM_FE_CO_TI_N if system == "multi" else SM_CO)
    top = 12
    index = write_report(table, tmp_path / "report", f"Screening report ({system})", top=top)
    ranked = ranked_candidates(table)
    page, outside, errors = open_page(browser, index)
    try:
        assert page.title() == f"Screening report ({system})"
        rows = page.locator("table#ranking tbody tr")
        assert rows.count() == min(top, len(ranked))
        assert rows.first.locator("td.label").inner_text() == ranked.label.iloc[0]
        assert rows.first.locator("td").first.inner_text() == "1"
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => ({src: e.getAttribute('src'), complete: e.complete, "
                   "width: e.naturalWidth, height: e.naturalHeight, shown: e.getBoundingClientRect().width}))")
        assert sorted(i["src"] for i in images) == sorted(FIGURES)
        for image in images:
            assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
            assert 600 < image["shown"] <= 1240, image  # scaled into the page, not overflowing it
        # the page fits the window: only the table may scroll sideways, inside its own box
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert page.locator("#count-records dd").inner_text() == f"{len(table):,}"
        assert not outside, f"the report fetched outside resources: {outside}"
        assert not errors, errors
        shot = tmp_path / f"report-{system}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert_valid_png(shot)
    finally:
        page.close()


@pytest.mark.timeout(120)
def test_emt_report_renders_in_chromium(browser, tmp_path):
    index = write_report(emt_table(), tmp_path, "EMT alloys")
    page, outside, errors = open_page(browser, index)
    try:
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        assert images and all(complete and width > 0 for complete, width in images)
        assert page.locator("figure .note").count() == 2
        assert page.locator("table#ranking tbody tr").count() > 0
        assert not outside and not errors
        page.screenshot(path=str(tmp_path / "report-emt.png"), full_page=True)
    finally:
        page.close()



def test_report_leaves_pyplot_alone():
    """Figures are drawn on their own canvas: importing and using the report never loads pyplot (which
    would take over the caller's backend); imports in general are held by test_layering.py."""
    code = ("import sys, tansaku.report, tansaku.report.hull; "
            "bad = [m for m in ('matplotlib.pyplot',) if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
