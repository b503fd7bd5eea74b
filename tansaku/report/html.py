"""HTML report of ranked screening results: counts, the top candidates and three figures.

``write_report(table, outdir, title)`` writes ``outdir/index.html`` with ``hull.png``, ``pareto.png`` and
``re_vs_ms.png`` beside it. The page is static: inline CSS, no JavaScript, no external URL, every text
HTML-escaped; it opens from the file system in any browser and can be copied or archived as a folder.

``table`` has one row per stored record (task_id, label, formula, prototype, kind, status, calculator,
energy_per_atom, magmom_total, volume, natoms) plus the derived columns of the stability, property and
ranking steps (formation_energy, e_above_hull, decomposition, mu0_ms, bh_max, moment_per_fu, moment_per_tm,
re_atomic_fraction, re_mass_fraction, hhi_production, hhi_reserve, cost_per_kg, density, on_pareto,
pareto_rank, score, passes_filters, rank). Any of them may be absent or all NaN (an EMT campaign has no
magnetic moments): a figure that cannot be drawn is replaced by a note saying why, a table column with no
value is left out and named in a note.
"""

from __future__ import annotations

import html
import json
import os
import re
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tansaku import __version__
from tansaku.constants import KIND_CANDIDATE, STATUS_FAILED
from tansaku.report import hull, plots
from tansaku.report.columns import (
    Column,
    column_info,
    flag,
    header,
    is_missing,
    kinds,
    num,
    objectives_text,
    ok_mask,
    text,
)
from tansaku.report.plots import Figure
from tansaku.report.sources import K1_4F_CAVEAT, has_4f_elements, property_caveats, sources
from tansaku.results.derived import derived_attrs
from tansaku.screening.hull import is_on_hull
from tansaku.screening.rank import DEFAULT_OBJECTIVES

FIGURE_NAMES = ("hull.png", "pareto.png", "re_vs_ms.png")


TABLE_COLUMNS = ("rank", "label", "formula", "e_above_hull", "formation_energy", "mu0_ms", "mu0_ms_upper",
                 "magnetic_order", "configuration", "k1", "k1_kpoint_delta", "kappa", "mu0_ha", "tc_mean_field",
                 "bh_max", "re_mass_fraction", "hhi_production", "cost_per_kg", "score", "decomposition")
ALWAYS_SHOWN = ("rank", "label", "formula")
# shown where they have a value, never listed as missing (only some calculators or stages give them)
OPTIONAL_COLUMNS = ("mu0_ms_upper", "magnetic_order", "configuration", "k1", "k1_kpoint_delta", "kappa", "mu0_ha",
                    "tc_mean_field")

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d2329; background: #fafbfc; margin: 0; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #d8dee4; }
p.meta { color: #57606a; margin: 0 0 16px; font-size: 0.92em; }
.counts { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; padding: 0; }
.counts div { background: #fff; border: 1px solid #d8dee4; border-radius: 6px; padding: 8px 14px; min-width: 118px; }
.counts dt { font-size: 0.8em; color: #57606a; }
.counts dd { margin: 0; font-size: 1.35em; font-weight: 600; font-variant-numeric: tabular-nums; }
.note { background: #fff8e1; border-left: 4px solid #e0a800; padding: 8px 12px; margin: 10px 0; border-radius: 3px; }
.table-wrap { overflow-x: auto; background: #fff; border: 1px solid #d8dee4; border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 0.88em; }
th, td { padding: 5px 7px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; }
th { background: #f3f5f7; font-weight: 600; vertical-align: bottom; }
th .unit { display: block; font-weight: 400; color: #57606a; font-size: 0.9em; }
th .dir { color: #0a7d38; font-weight: 400; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.na { color: #8c959f; text-align: center; }
td.label { min-width: 11em; }
td.formula { white-space: nowrap; }
td.decomposition { color: #444c56; font-size: 0.95em; min-width: 9em; }
tbody tr:nth-child(even) { background: #f8fafb; }
tbody tr:hover { background: #eef4fb; }
figure { margin: 18px 0 28px; background: #fff; border: 1px solid #d8dee4; border-radius: 6px; padding: 12px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: #444c56; font-size: 0.9em; margin-top: 8px; }
figcaption strong { color: #1d2329; }
footer { margin-top: 36px; color: #8c959f; font-size: 0.8em; }
"""


def write_report(table: pd.DataFrame, outdir: str | Path, title: str,
                 objectives: Sequence[tuple[str, str]] | None = None, top: int = 50,
                 warnings_shown: Sequence[str] = ()) -> Path:
    """Write ``outdir/index.html`` and its PNG figures for a table of ranked records; return the HTML path.

    ``objectives`` are the ranking's ``(column, "min" | "max")`` pairs (or objects with ``column`` and
    ``direction``, such as :class:`tansaku.screening.rank.Objective`; default: screening's
    DEFAULT_OBJECTIVES, :func:`objectives_used` gives those of a ranked file); they are named in the report,
    their table columns are marked and always shown, and the Pareto figure plots two of them. ``top``
    limits the ranked table to the best ``top`` candidates. ``warnings_shown`` are sentences shown at the
    top of the page (e.g. the ranking's forced mix of energy scales, :func:`ranking_warnings`).
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"write_report: table must be a pandas DataFrame, got {type(table).__name__}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 0:
        raise ValueError(f"write_report: top must be a non-negative integer, got {top!r}")
    objectives = _objectives(DEFAULT_OBJECTIVES if objectives is None else objectives)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    table = table.reset_index(drop=True)

    figures = []
    makers = {"hull.png": lambda p: hull.hull_plot(table, p),
              "pareto.png": lambda p: plots.pareto_plot(table, p, objectives),
              "re_vs_ms.png": lambda p: plots.re_vs_ms_plot(table, p)}
    for name in FIGURE_NAMES:
        path = outdir / name
        path.unlink(missing_ok=True)  # a figure skipped this time must not leave last run's PNG behind
        try:
            figure = makers[name](path)
        except Exception as exc:  # noqa: BLE001 - one bad figure must not cost the whole report
            warnings.warn(f"write_report: {name} failed: {type(exc).__name__}: {exc}", RuntimeWarning,
                          stacklevel=2)
            path.unlink(missing_ok=True)
            figure = Figure(name=name, title=name, note=f"Skipped: the figure could not be drawn "
                                                        f"({type(exc).__name__}: {exc}).")
        figures.append(figure)

    page = _page(table, title, objectives, top, figures, outdir, warnings_shown)
    index = outdir / "index.html"
    tmp = index.with_name(index.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(index)
    return index


def _objectives(objectives) -> list[tuple[str, str]]:
    out = []
    for item in objectives:
        column, direction = ((item.column, item.direction) if hasattr(item, "column") else tuple(item)[:2])
        if direction not in ("min", "max"):
            raise ValueError(f"write_report: objective {column!r}: direction must be 'min' or 'max', "
                             f"got {direction!r}")
        out.append((str(column), direction))
    return out


def objectives_used(path: str | os.PathLike) -> list[tuple[str, str]] | None:
    """The (column, direction) objectives the stored ranking of a results file used (objectives without
    values, e.g. μ0Ms of a non-magnetic calculator, already left out), or None before any ranking."""
    return objectives_of(derived_attrs(path).get("settings", ""))


def objectives_of(settings: str) -> list[tuple[str, str]] | None:
    """The (column, direction) objectives of a stored ranking's ``settings`` JSON (None when empty); for a
    funnel, each stage's metadata (attribute ``stages``) has its own ``settings``."""
    if not settings:
        return None
    return [(o["column"], o["direction"]) for o in json.loads(settings).get("objectives", [])]


# ------------------------------------------------------------------------------------------------ page

def _e(value) -> str:
    return html.escape(str(value), quote=True)


def formula_html(formula: str) -> str:
    """``Sm2Fe17N3`` -> ``Sm<sub>2</sub>Fe<sub>17</sub>N<sub>3</sub>``, everything else escaped."""
    # split before escaping (entities hold digits: &#x27;); only counts right after an element or ")" are
    # subscripts, so amounts in a decomposition like "0.4 Fe + 0.6 SmCo5" stay as they are
    parts = re.split(r"(?<=[A-Za-z)])(\d+(?:\.\d+)?)", str(formula))
    return "".join(f"<sub>{p}</sub>" if k % 2 else _e(p) for k, p in enumerate(parts))


def ranking_warnings(path: str | os.PathLike) -> list[str]:
    """What the stored ranking of a results file must be read with: a forced mix of energy scales."""
    mixed = derived_attrs(path).get("mixed_energy_scales", "")
    return [mixed] if mixed else []


def _page(table: pd.DataFrame, title: str, objectives, top: int, figures: list[Figure], outdir: Path,
          warnings_shown: Sequence[str] = ()) -> str:
    ok = ok_mask(table)
    calculators = sorted(set(text(table, "calculator")[ok]) - {""})
    meta = f"{len(table)} records"
    if calculators:
        meta += f" · calculator{'s' if len(calculators) > 1 else ''}: {', '.join(calculators)}"
    if objectives:
        meta += " · ranking objectives: " + objectives_text(objectives)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">{_e(meta)}</p>',
        *(f'<p class="note caveat"><strong>Warning:</strong> {_e(w)}</p>' for w in warnings_shown),
        '<section id="summary">',
        "<h2>Summary</h2>",
        _counts_html(table),
        "</section>",
        '<section id="candidates">',
        _table_html(table, objectives, top),
        "</section>",
        '<section id="sources">',
        "<h2>Sources</h2>",
        _sources_html(table),
        "</section>",
        '<section id="figures">',
        "<h2>Figures</h2>",
        *(_figure_html(figure, outdir) for figure in figures),
        "</section>",
        f"<footer>Generated by tansaku {_e(__version__)}.</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _sources_html(table: pd.DataFrame) -> str:
    """One line per (calculator, stage) of the successful records: which properties it gave, and a caveat
    line where it cannot say something (ML potentials)."""
    ok = ok_mask(table)
    stage = text(table, "stage_name")
    stage = np.where(stage != "", stage, text(table, "stage"))  # the funnel stage, else the relaxation mode
    found = sources(text(table, "calculator")[ok], stage[ok])
    if not found:
        return '<p class="meta">No successful record.</p>'
    lines = []
    for source in found:
        lines.append(f'<p class="source">{_e(source.text())}</p>')
        if source.caveat:
            lines.append(f'<p class="note caveat">Caveat ({_e(source.calculator)}): {_e(source.caveat)}.</p>')
    with_k1 = ok & np.isfinite(num(table, "k1"))
    if with_k1.any():
        lines.append(f'<p class="note caveat">{_e(property_caveats()["k1"])}.</p>')
        f_shell = [str(v) for v in text(table, "label")[with_k1 & has_4f_elements(table)]]
        if f_shell:
            lines.append(f'<p class="note caveat">Caveat (K1 of {_e(", ".join(f_shell[:10]))}): '
                         f'{_e(K1_4F_CAVEAT)}.</p>')
    if (ok & np.isfinite(num(table, "tc_mean_field"))).any():
        lines.append(f'<p class="note caveat">{_e(property_caveats()["tc_mean_field"])}.</p>')
    return "\n".join(lines)


def _counts_html(table: pd.DataFrame) -> str:
    ok = ok_mask(table)
    status = text(table, "status")
    candidate = kinds(table) == KIND_CANDIDATE
    ehull = num(table, "e_above_hull")
    on_hull = ok & is_on_hull(ehull)
    have_hull = bool(np.isfinite(ehull).any())

    def count_of(column: str, mask: np.ndarray):
        return int(mask.sum()) if column in table.columns else None

    items = [
        ("records", "records", len(table), ""),
        ("ok", "ok", int(ok.sum()), ""),
        ("failed", "failed", int((status == STATUS_FAILED).sum()) if "status" in table.columns else None, ""),
        ("candidates", "candidates", int(candidate.sum()), f"{int((candidate & ok).sum())} ok"),
        ("on-hull", "on the convex hull", int(on_hull.sum()) if have_hull else None,
         f"{int((on_hull & candidate).sum())} candidates" if have_hull else ""),
        ("pareto", "on the Pareto front", count_of("on_pareto", flag(table, "on_pareto") & candidate), ""),
        ("passing", "passing filters", count_of("passes_filters", flag(table, "passes_filters") & candidate), ""),
    ]
    rows = []
    for key, name, value, detail in items:
        shown = "—" if value is None else f"{value:,}"
        hint = ' title="not computed"' if value is None else ""
        small = f' <small>({_e(detail)})</small>' if detail else ""
        rows.append(f'<div id="count-{key}"><dt>{_e(name)}</dt><dd{hint}>{_e(shown)}{small}</dd></div>')
    return '<dl class="counts">\n' + "\n".join(rows) + "\n</dl>"


def _table_html(table: pd.DataFrame, objectives, top: int) -> str:
    """The ranked table: heading, notes, header row and one row per chosen candidate."""
    rows, heading, notes = _chosen_rows(table, objectives, top)
    shown, empty = _shown_columns(table, rows, objectives)
    if empty and len(rows):
        notes.append(f"Not available for these candidates, so not shown: {', '.join(map(header, empty))}.")
    parts = [f"<h2>{_e(heading)}</h2>"]
    parts += [f'<p class="note">{_e(n)}</p>' for n in notes]
    if len(rows):
        parts.append('<p class="meta">↓ / ↑: ranking objective, minimised / maximised. '
                     'RE: rare earth; HHI: Herfindahl–Hirschman index of supply concentration '
                     '(0–10,000, lower is safer); cost: raw elements only.</p>')
    parts.append('<div class="table-wrap"><table id="ranking">')
    parts.append("<thead><tr>" + "".join(_header_cell(c, dict(objectives)) for c in shown) + "</tr></thead>")
    parts.append("<tbody>\n" + "\n".join(_row_html(table, i, shown) for i in rows) + "\n</tbody>")
    parts.append("</table></div>")
    return "\n".join(parts)


def _chosen_rows(table: pd.DataFrame, objectives, top: int) -> tuple[np.ndarray, str, list[str]]:
    """The rows to list (the best ``top`` ranked candidates; with none ranked, the most stable ones), the
    heading and notes saying why."""
    candidates = ok_mask(table) & (kinds(table) == KIND_CANDIDATE)
    rank = num(table, "rank")
    ranked = np.flatnonzero(candidates & np.isfinite(rank) & (rank >= 1))
    if len(ranked):
        rows = ranked[np.argsort(rank[ranked], kind="stable")][:top]
        return rows, f"Top {len(rows)} of {len(ranked)} ranked candidates", []
    # nothing ranked (e.g. an objective is missing for every candidate): show the most stable ones
    pool = np.flatnonzero(candidates)
    ehull, eform = num(table, "e_above_hull")[pool], num(table, "formation_energy")[pool]
    finite = lambda v: np.where(np.isfinite(v), v, np.inf)  # noqa: E731 - unknown values last
    rows = pool[np.lexsort((finite(eform), finite(ehull)))][:top]
    if len(pool):
        note = (f"No candidate is ranked{_unranked_reason(table, candidates, objectives)}. Shown instead: the "
                f"{len(rows)} most stable successful candidates, by energy above the hull.")
    else:
        note = "There is no successful candidate to show."
    return rows, f"Candidates ({len(rows)} of {len(pool)}, none ranked)", [note]


def _shown_columns(table: pd.DataFrame, rows: np.ndarray, objectives) -> tuple[list[str], list[str]]:
    """The default columns plus every objective's, split into those with a value in ``rows`` and those
    without (left out)."""
    wanted = list(TABLE_COLUMNS)
    for column, _ in objectives:  # an objective outside the default columns still gets its column
        if column not in wanted:
            wanted.insert(wanted.index("score"), column)
    shown, empty = [], []
    for column in wanted:
        values = table[column].iloc[rows] if column in table.columns and len(rows) else None
        has_value = values is not None and values.map(lambda v: not is_missing(v) and str(v) != "").any()
        if column in ALWAYS_SHOWN or has_value:
            shown.append(column)
        elif column not in OPTIONAL_COLUMNS:
            empty.append(column)
    return shown, empty


def _header_cell(column: str, direction: dict[str, str]) -> str:
    info = column_info(column)
    cls = ' class="num"' if info.fmt else ""
    label = info.html_header or _e(info.header)
    if column in direction:
        arrow, word = ("↓", "minimised") if direction[column] == "min" else ("↑", "maximised")
        label += f' <span class="dir" title="objective: {word}">{arrow}</span>'
    unit = f'<span class="unit">{_e(info.unit)}</span>' if info.unit else '<span class="unit">&nbsp;</span>'
    return f'<th scope="col"{cls}>{label}{unit}</th>'


def _row_html(table: pd.DataFrame, i: int, shown: list[str]) -> str:
    cells = [_cell(c, column_info(c), table[c].iloc[i] if c in table.columns else None) for c in shown]
    return "<tr>" + "".join(cells) + "</tr>"


def _unranked_reason(table: pd.DataFrame, candidates: np.ndarray, objectives) -> str:
    if "rank" not in table.columns:
        return " (the table has no rank column: the ranking step has not been run)"
    missing = [c for c, _ in objectives if not np.isfinite(num(table, c)[candidates]).any()]
    if missing:
        names = ", ".join(map(header, missing))
        return f": no candidate has a value of the objective{'s' if len(missing) > 1 else ''} {names}"
    return " (none passes the filters with every objective known)"


def _cell(column: str, info: Column, value) -> str:
    if is_missing(value) or (info.fmt is None and str(value) == ""):
        return '<td class="na">—</td>'
    if info.fmt is not None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"<td>{_e(value)}</td>"
        if not np.isfinite(number) or (column == "rank" and number < 1):
            return '<td class="na">—</td>'
        return f'<td class="num">{_e(info.fmt(number))}</td>'
    if column in ("formula", "decomposition"):
        return f'<td class="{column}">{formula_html(str(value))}</td>'
    return f'<td class="{_e(column)}">{_e(value)}</td>'


def _figure_html(figure: Figure, outdir: Path) -> str:
    head = f'<figure id="fig-{_e(Path(figure.name).stem)}">'
    if figure.path is None:
        return (f'{head}<figcaption><strong>{_e(figure.title)}.</strong></figcaption>'
                f'<p class="note">{_e(figure.note)}</p></figure>')
    size = _png_size(figure.path)
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    src = figure.path.relative_to(outdir).as_posix() if figure.path.is_relative_to(outdir) else figure.name
    return (f'{head}<img src="{_e(src)}" alt="{_e(figure.alt)}"{dims}>'
            f"<figcaption><strong>{_e(figure.title)}.</strong> {_e(figure.caption)}</figcaption></figure>")


def _png_size(path: Path) -> tuple[int, int] | None:
    """Pixel size from a PNG's IHDR chunk (lets the browser lay out the page before images load)."""
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])
