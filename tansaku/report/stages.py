"""Two funnel stages side by side: rank correlation, energy differences, who moved in and out of the top N.

Each stage is ranked on its own hull (workflows/ranking.py ``rank_stages``); this compares the two
rankings over the candidates ranked in both (candidate ids are kept across stages). Spearman's rank
correlation is scipy's ``spearmanr`` over the two stages' ``rank`` values; energy differences are
(later - earlier) per candidate in eV/atom.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tansaku.constants import KIND_CANDIDATE

ENERGIES = ("formation_energy", "e_above_hull")  # eV/atom


@dataclass
class EnergyDifference:
    column: str
    n: int  # candidates with a finite value in both stages
    mean_abs: float  # eV/atom
    max_abs: float  # eV/atom
    mean: float  # eV/atom, later - earlier


@dataclass
class StageComparison:
    earlier: str
    later: str
    common: int  # candidates ranked in both stages
    spearman: float  # NaN with fewer than two common candidates
    top: int  # N of "top N"
    moved_in: list[str] = field(default_factory=list)  # labels in the later top N, not in the earlier one
    moved_out: list[str] = field(default_factory=list)  # labels in the earlier top N, not in the later one
    energies: list[EnergyDifference] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # per common candidate, side by side

    def lines(self) -> list[str]:
        """The comparison as plain text lines (printed by `tansaku run` and `tansaku report`)."""
        rho = "n/a" if not np.isfinite(self.spearman) else f"{self.spearman:+.3f}"
        out = [f"stage {self.earlier} -> {self.later}: {self.common} candidates ranked in both; "
               f"Spearman rank correlation {rho}"]
        for e in self.energies:
            out.append(f"  {e.column} ({self.later} - {self.earlier}, eV/atom, {e.n} candidates): "
                       f"mean |diff| {e.mean_abs:.4f}, max |diff| {e.max_abs:.4f}, mean {e.mean:+.4f}")
        out.append(f"  top {self.top}: moved in {', '.join(self.moved_in) or 'none'}; "
                   f"moved out {', '.join(self.moved_out) or 'none'}")
        return out


def _stage_rows(table: pd.DataFrame, stages: np.ndarray, name: str) -> pd.DataFrame:
    rows = table[(stages == name) & (table["kind"].astype(str) == KIND_CANDIDATE)]
    rows = rows[rows["rank"] > 0] if "rank" in rows else rows.iloc[:0]
    return rows.drop_duplicates("candidate_id").set_index("candidate_id")


def compare_stages(table: pd.DataFrame, stages: np.ndarray, earlier: str, later: str,
                   top: int | None = None) -> StageComparison:
    """Compare stage ``earlier`` with ``later`` over the rows of ``table`` (records + derived columns);
    ``stages`` gives each row's stage name. ``top`` is the N of "moved in/out of the top N", taken over the
    candidates ranked in both stages (default: half of them, rounded up: with all of them nobody could move)."""
    from scipy.stats import spearmanr

    a, b = _stage_rows(table, stages, earlier), _stage_rows(table, stages, later)
    common = a.index.intersection(b.index)
    a, b = a.loc[common], b.loc[common]
    rho = float("nan")
    if len(common) >= 2:
        rho = float(spearmanr(a["rank"].to_numpy(), b["rank"].to_numpy()).statistic)
    side = pd.DataFrame({"label": b["label"].astype(str), f"rank_{earlier}": a["rank"], f"rank_{later}": b["rank"]},
                        index=common)
    energies = []
    for column in ENERGIES:
        if column not in a or column not in b:
            continue
        x, y = a[column].to_numpy(float), b[column].to_numpy(float)
        side[f"{column}_{earlier}"], side[f"{column}_{later}"] = x, y
        diff = (y - x)[np.isfinite(x) & np.isfinite(y)]
        if len(diff):
            energies.append(EnergyDifference(column, len(diff), float(np.abs(diff).mean()),
                                             float(np.abs(diff).max()), float(diff.mean())))
    n = min(top, len(common)) if top else (len(common) + 1) // 2
    top_a = set(a["rank"].sort_values(kind="stable").index[:n])
    top_b = set(b["rank"].sort_values(kind="stable").index[:n])
    labels = side["label"]
    return StageComparison(
        earlier=earlier, later=later, common=len(common), spearman=rho, top=n,
        moved_in=sorted(labels[list(top_b - top_a)]), moved_out=sorted(labels[list(top_a - top_b)]),
        energies=energies, table=side.sort_values(f"rank_{later}").reset_index(drop=True))


def comparison_html(comparisons: list[StageComparison], links: dict[str, str], title: str) -> str:
    """A small HTML page: links to each stage's report and every comparison with its side-by-side table."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
             f"<h1>{html.escape(title)}</h1>", "<h2>Stages</h2><ul>"]
    parts += [f"<li><a href='{html.escape(href)}'>{html.escape(name)}</a></li>" for name, href in links.items()]
    parts.append("</ul>")
    for c in comparisons:
        parts.append(f"<h2>{html.escape(c.earlier)} &rarr; {html.escape(c.later)}</h2>")
        parts.append("<pre>" + html.escape("\n".join(c.lines())) + "</pre>")
        parts.append(c.table.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep=""))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_comparison(comparisons: list[StageComparison], links: dict[str, str], outdir: str | Path,
                     title: str) -> Path:
    """Write ``outdir/index.html`` (``comparison_html``) atomically; return its path."""
    index = Path(outdir) / "index.html"
    tmp = index.with_name(index.name + ".tmp")
    tmp.write_text(comparison_html(comparisons, links, title), encoding="utf-8")
    tmp.replace(index)
    return index
