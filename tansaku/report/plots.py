"""Figures of a screening report: the common canvas and styles, the Pareto front, rare earth vs μ0Ms.

Each ``*_plot`` function takes the report table (one row per record, see :mod:`tansaku.report.html`),
writes one PNG and returns a :class:`Figure` with its caption, alt text and the numbers it drew, or, when
the data it needs is missing (no formation energies, no magnetic moments, ...), writes nothing and returns
the reason. Figures are drawn on their own Agg canvas, never through pyplot, so the caller's matplotlib
backend and global state are left alone. The hull figure is in :mod:`tansaku.report.hull`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D

from tansaku.constants import KIND_CANDIDATE, KIND_COMPETING, KIND_REFERENCE
from tansaku.report.columns import (
    axis_label,
    axis_values,
    flag,
    header,
    kinds,
    num,
    objectives_text,
    ok_mask,
    text,
)

DPI = 150
FIGSIZE = (8.0, 5.4)  # inches: 1200 x 810 px at 150 dpi
MAX_PARETO_LABELS = 25
LANDMARK_MIN_MS = 0.3  # T: references / competing phases shown beside the candidates in re_vs_ms.png ...
LANDMARK_MAX_RE_WT = 60.0  # ... if at least this magnetic and at most this rare-earth rich

# marker and legend text of each record kind
KIND_STYLE = {KIND_CANDIDATE: ("o", "candidate"), KIND_REFERENCE: ("s", "elemental reference"),
              KIND_COMPETING: ("^", "competing phase")}
OTHER_KIND_STYLE = ("D", "other")


@dataclass
class Figure:
    """One figure of the report: ``path`` is None when it was skipped, and ``note`` then says why.
    ``data`` holds the numbers behind the drawing (the points, which are on the hull or the front)."""

    name: str  # file name, e.g. "hull.png"
    title: str
    path: Path | None = None
    caption: str = ""
    alt: str = ""
    note: str = ""
    data: dict[str, object] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- helpers

def mathtext_formula(formula: str) -> str:
    """``Sm2Fe17N3`` -> ``Sm$_{2}$Fe$_{17}$N$_{3}$`` for matplotlib labels."""
    return re.sub(r"(?<=[A-Za-z)])(\d+(?:\.\d+)?)", r"$_{\1}$", formula.replace("$", r"\$"))


def new_figure() -> MplFigure:
    fig = MplFigure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: MplFigure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, facecolor="white", metadata={"Software": None})


def ehull_norm(ehull: np.ndarray) -> tuple[Normalize, str]:
    """Colour scale of E_above_hull: 0 .. 95th percentile (at least 10 meV/atom); 'max' if clipped."""
    finite = ehull[np.isfinite(ehull)]
    top = max(float(np.percentile(finite, 95)) if len(finite) else 0.1, 0.01)
    extend = "max" if len(finite) and finite.max() > top * (1 + 1e-9) else "neither"
    return Normalize(vmin=0.0, vmax=top), extend


def crowding(n: int) -> float:
    """Marker-size factor: 1 up to 400 points, shrinking to 0.3 for tens of thousands."""
    return float(np.clip(np.sqrt(400.0 / max(n, 1)), 0.3, 1.0))


def ehull_cmap():
    return matplotlib.colormaps["viridis"].with_extremes(bad="0.75")


def kind_legend_handles(present: Sequence[str]) -> list[Line2D]:
    handles = []
    for kind in present:
        marker, name = KIND_STYLE.get(kind, OTHER_KIND_STYLE)
        handles.append(Line2D([], [], ls="", marker=marker, color="0.45", markersize=7, label=name))
    return handles


def kind_marker(kind: str) -> str:
    return KIND_STYLE.get(kind, OTHER_KIND_STYLE)[0]


def order_kinds(values: np.ndarray) -> list[str]:
    present = set(values)
    return [k for k in KIND_STYLE if k in present] + sorted(present - set(KIND_STYLE))


def place_labels(fig: MplFigure, ax, xs, ys, labels: Sequence[str], fontsize: float = 8.0,
                 max_labels: int | None = None, avoid=None) -> int:
    """Annotate points in order of importance. Each label takes the first of a few offsets where it stays
    inside the axes, overlaps no earlier label and, if possible, covers no data point of ``avoid`` (an
    (n, 2) array in data coordinates); a label with no such place is left out rather than drawn over
    another. Returns the number of labels drawn."""
    offsets = [(6, 6, "left", "bottom"), (6, -6, "left", "top"), (-6, 6, "right", "bottom"),
               (-6, -6, "right", "top"), (0, 10, "center", "bottom"), (0, -10, "center", "top"),
               (10, 0, "left", "center"), (-10, 0, "right", "center")]
    items = list(zip(xs, ys, labels))[: max_labels if max_labels is not None else None]
    if not items:
        return 0
    renderer = fig.canvas.get_renderer()
    fig.draw_without_rendering()  # fixes the layout and the axes limits before measuring
    axes_box = ax.get_window_extent(renderer)
    points = np.empty((0, 2))
    if avoid is not None and len(avoid):
        points = ax.transData.transform(np.asarray(avoid, dtype=float))
        points = points[np.isfinite(points).all(axis=1)]

    def annotate(x, y, label, offset):
        dx, dy, ha, va = offset
        ann = ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                          fontsize=fontsize, zorder=6,
                          bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))
        ann.set_in_layout(False)  # labels must not resize the axes when the layout runs again on save
        return ann

    placed = []
    for x, y, label in items:
        free, clear = None, None
        for offset in offsets:
            ann = annotate(x, y, label, offset)
            box = ann.get_window_extent(renderer)
            ann.remove()
            inside = (box.x0 >= axes_box.x0 and box.x1 <= axes_box.x1 and box.y0 >= axes_box.y0
                      and box.y1 <= axes_box.y1)
            if not inside or any(box.overlaps(other) for other in placed):
                continue
            free = free or (offset, box)
            covers = ((points[:, 0] > box.x0 - 2) & (points[:, 0] < box.x1 + 2)
                      & (points[:, 1] > box.y0 - 2) & (points[:, 1] < box.y1 + 2)).any()
            if not covers:
                clear = (offset, box)
                break
        choice = clear or free
        if choice is not None:
            annotate(x, y, label, choice[0])
            placed.append(choice[1])
    return len(placed)


# ----------------------------------------------------------------------------------------------- pareto

def magnetisation_column(table: pd.DataFrame) -> str:
    """``mu0_ms`` (signed moments), or its upper bound ``mu0_ms_upper`` where no record has the former
    (unsigned moments: CHGNet); the figure says which."""
    if not np.isfinite(num(table, "mu0_ms")).any() and np.isfinite(num(table, "mu0_ms_upper")).any():
        return "mu0_ms_upper"
    return "mu0_ms"


def _no_magnetisation_note(table: pd.DataFrame, rows: np.ndarray, what: str) -> str:
    ms = num(table, magnetisation_column(table))[rows]
    if not np.isfinite(ms).any():
        calcs = sorted(set(text(table, "calculator")[rows]) - {""})
        by = f" (calculator: {', '.join(calcs)})" if calcs else ""
        return (f"Skipped: no {what} has a magnetisation μ0Ms{by}; the calculator gives no magnetic "
                f"moments, or the properties step has not been run.")
    return ""


def _rows_with_ms(table: pd.DataFrame, base: np.ndarray, what: str, other: np.ndarray, other_name: str,
                  other_missing: str) -> tuple[np.ndarray, str]:
    """Rows of ``base`` with both μ0Ms and ``other``, or a "Skipped: ..." note saying what is missing."""
    if not base.any():
        return np.array([], dtype=np.int64), f"Skipped: there is no successful {what}."
    note = _no_magnetisation_note(table, base, what)
    if not note and not np.isfinite(other[base]).any():
        note = f"Skipped: {other_missing}."
    rows = np.flatnonzero(base & np.isfinite(num(table, magnetisation_column(table))) & np.isfinite(other))
    if not note and not len(rows):
        note = f"Skipped: no {what} has both {other_name} and a magnetisation μ0Ms."
    return rows, note


def pareto_axes(table: pd.DataFrame, candidates: np.ndarray,
                objectives: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], tuple[str, str]] | str:
    """The two ranking objectives the figure plots, as ((y column, direction), (x column, direction)): E_hull
    (else the first objective) upwards, against the first other objective whose values differ; or a
    "Skipped: ..." note when there are fewer than two objectives or one has no value for any candidate."""
    if not candidates.any():
        return "Skipped: there is no successful candidate."
    if len(objectives) < 2:
        named = ", ".join(header(c) for c, _ in objectives) or "none"
        return f"Skipped: a Pareto front needs two ranking objectives or more (the ranking used: {named})."
    for column, _ in objectives:
        if not np.isfinite(num(table, column)[candidates]).any():
            return (_no_magnetisation_note(table, candidates, "candidate") if column.startswith("mu0_ms") else
                    f"Skipped: no candidate has a value of the ranking objective {header(column)}.")
    y = next((o for o in objectives if o[0] == "e_above_hull"), objectives[0])
    others = [o for o in objectives if o != y]
    both = candidates & np.isfinite(num(table, y[0]))
    spread = [o for o in others if _varies(num(table, o[0])[both])]
    return y, (spread or others)[0]


def _varies(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return len(finite) > 1 and float(finite.max()) > float(finite.min())


def _better_corner(y_direction: str, x_direction: str) -> str:
    return f"{'lower' if y_direction == 'min' else 'upper'} {'right' if x_direction == 'max' else 'left'}"


def pareto_plot(table: pd.DataFrame, path: Path, objectives: Sequence[tuple[str, str]]) -> Figure:
    """Two of the ranking's ``objectives`` ((column, "min" | "max") pairs, those the ranking used) against
    each other for the candidates, the stored Pareto front highlighted, filtered-out ones faded.
    ``Figure.data``: rows, x_column, y_column, x, y and front (per point)."""
    figure = Figure(name=path.name, title="Pareto front of the ranking objectives")
    candidates = ok_mask(table) & (kinds(table) == KIND_CANDIDATE)
    axes = pareto_axes(table, candidates, objectives)
    if isinstance(axes, str):
        figure.note = axes
        return figure
    (ycol, ydir), (xcol, xdir) = axes
    xs, ys = num(table, xcol), num(table, ycol)
    rows = np.flatnonzero(candidates & np.isfinite(xs) & np.isfinite(ys))
    if not len(rows):
        figure.note = f"Skipped: no candidate has both {header(ycol)} and {header(xcol)}."
        return figure

    x, y = axis_values(xcol, xs[rows]), axis_values(ycol, ys[rows])
    has_filter = "passes_filters" in table.columns
    passes = flag(table, "passes_filters", default=True)[rows]
    front = flag(table, "on_pareto")[rows] & passes
    rank = num(table, "rank")[rows]
    formula = text(table, "formula")[rows]
    label = text(table, "label")[rows]
    better = _better_corner(ydir, xdir)

    fig = new_figure()
    ax = fig.add_subplot()
    handles = []
    size = crowding(len(rows))
    faded = ~passes
    if faded.any():
        ax.scatter(x[faded], y[faded], s=22 * size, color="0.6", alpha=0.35, edgecolors="none", zorder=2)
        handles.append(Line2D([], [], ls="", marker="o", color="0.6", alpha=0.5, label="filtered out"))
    rest = passes & ~front
    if rest.any():
        ax.scatter(x[rest], y[rest], s=28 * size, color="tab:blue", alpha=0.8, edgecolors="white", linewidths=0.4,
                   zorder=3)
        handles.append(Line2D([], [], ls="", marker="o", color="tab:blue",
                              label="passes filters" if has_filter else "candidate"))
    if front.any():
        ax.scatter(x[front], y[front], s=120 * size, marker="*", color="crimson", edgecolors="black", linewidths=0.5,
                   zorder=5)
        handles.append(Line2D([], [], ls="", marker="*", markersize=12, color="crimson",
                              markeredgecolor="black", markeredgewidth=0.5, label="Pareto front"))
    ax.set_xlabel(axis_label(xcol))
    ax.set_ylabel(axis_label(ycol))
    ax.set_title(f"Candidates: {header(ycol)} vs {header(xcol)} ({len(rows)} candidates)", fontsize=11)
    ax.grid(True, color="0.92", zorder=0)
    ax.margins(x=0.08, y=0.12)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9, title=f"better: {better}", title_fontsize=8)

    idx = np.flatnonzero(front)
    idx = idx[np.lexsort((y[idx], np.where(rank[idx] >= 1, rank[idx], np.inf)))]  # best rank first
    names = [mathtext_formula(formula[i] or label[i]) + (f" (#{int(rank[i])})" if rank[i] >= 1 else "")
             for i in idx]
    place_labels(fig, ax, x[idx], y[idx], names, max_labels=MAX_PARETO_LABELS, avoid=np.column_stack([x, y]))
    save(fig, path)

    n_front, n_faded = int(front.sum()), int(faded.sum())
    figure.path = path
    figure.caption = (f"{header(ycol)} vs {header(xcol)} for the {len(rows)} successful candidates with both "
                      f"values; {better} is better. Stars: the {n_front} candidates on the Pareto front, "
                      + (f"the {MAX_PARETO_LABELS} best-ranked labelled by formula and rank where there is room"
                         if n_front > MAX_PARETO_LABELS else "labelled by formula and rank where there is room")
                      + (f". The front is computed over all objectives ({objectives_text(objectives)}), so a front "
                         f"point need not look optimal in this two-objective projection" if len(objectives) > 2 else "")
                      + (f". Faded: {n_faded} candidates that fail the filters." if has_filter and n_faded
                         else "."))
    figure.alt = (f"Scatter plot of {axis_label(ycol)} against {axis_label(xcol)} for {len(rows)} candidates, "
                  f"{n_front} of them on the Pareto front.")
    figure.data = {"rows": rows, "x_column": xcol, "y_column": ycol, "x": x, "y": y, "front": front}
    return figure


# ------------------------------------------------------------------------------------------ RE vs mu0Ms

def re_vs_ms_plot(table: pd.DataFrame, path: Path) -> Figure:
    """Rare-earth mass fraction vs μ0Ms of every ok record, coloured by E_above_hull."""
    figure = Figure(name=path.name, title="Rare-earth content vs magnetisation")
    ms_column = magnetisation_column(table)
    ms, re_mass = num(table, ms_column), num(table, "re_mass_fraction")
    rows, figure.note = _rows_with_ms(table, ok_mask(table), "record", re_mass, "a rare-earth mass fraction",
                                      "no rare-earth mass fractions (the properties step has not been run)")
    if figure.note:
        return figure

    kind = kinds(table)[rows]
    x, y = ms[rows], 100.0 * re_mass[rows]
    # with candidates present, other records are landmarks only if magnetic and not RE-rich (Fe, Co, SmCo5,
    # Sm2Fe17, ...); elemental Sm, SmN or Ti would only squeeze the candidates into a corner
    landmark = (x >= LANDMARK_MIN_MS) & (y <= LANDMARK_MAX_RE_WT)
    keep = (kind == KIND_CANDIDATE) | landmark if (kind == KIND_CANDIDATE).any() else np.ones(len(rows), dtype=bool)
    left_out = sorted(set(text(table, "formula")[rows][~keep]))
    rows, kind, x, y = rows[keep], kind[keep], x[keep], y[keep]
    ehull = num(table, "e_above_hull")[rows]
    formula = text(table, "formula")[rows]
    front = flag(table, "on_pareto")[rows] & (kind == KIND_CANDIDATE)

    fig = new_figure()
    ax = fig.add_subplot()
    norm, extend = ehull_norm(ehull)
    cmap = ehull_cmap()
    present = order_kinds(kind)
    size = crowding(len(rows))
    mappable = None
    for k in present:
        m = kind == k
        sc = ax.scatter(x[m], y[m], c=ehull[m], cmap=cmap, norm=norm, marker=kind_marker(k),
                        s=(34 if k == KIND_CANDIDATE else 60) * size, edgecolors="0.25", linewidths=0.4, alpha=0.9,
                        zorder=3, plotnonfinite=True)
        if mappable is None:
            mappable = sc
    handles = kind_legend_handles(present)
    if front.any():
        ax.scatter(x[front], y[front], s=130 * size, facecolors="none", edgecolors="crimson", linewidths=1.3,
                   zorder=4)
        handles.append(Line2D([], [], ls="", marker="o", markersize=10, markerfacecolor="none",
                              markeredgecolor="crimson", markeredgewidth=1.3, label="Pareto front"))
    if np.isfinite(ehull).any() and mappable is not None:
        cbar = fig.colorbar(mappable, ax=ax, extend=extend, pad=0.01)
        cbar.set_label(r"$E_\mathrm{hull}$ (eV/atom)")
    ax.set_xlabel(axis_label(ms_column))
    ax.set_ylabel("rare-earth mass fraction (wt%)")
    ax.set_title(f"Rare-earth content vs magnetisation ({len(rows)} records)", fontsize=11)
    ax.grid(True, color="0.92", zorder=0)
    ax.margins(x=0.08, y=0.1)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    # references and competing phases are the landmarks (Fe, SmCo5, Sm2Fe17, ...): label them
    landmarks = np.flatnonzero(kind != KIND_CANDIDATE)
    seen: dict[str, int] = {}
    for i in landmarks[np.argsort(-x[landmarks])]:
        seen.setdefault(formula[i], i)
    chosen = list(seen.values())
    place_labels(fig, ax, x[chosen], y[chosen], [mathtext_formula(formula[i]) for i in chosen], max_labels=20,
                 avoid=np.column_stack([x, y]))
    save(fig, path)

    figure.path = path
    figure.caption = (f"Rare-earth mass fraction vs μ0Ms for the {len(rows)} successful records with both "
                      f"values, coloured by energy above the hull (grey: unknown); lower right means more "
                      f"magnetisation for less rare earth. Circles are candidates (ringed: Pareto front), "
                      f"squares elemental references and triangles competing phases (labelled by formula)."
                      + (f" Not shown, as weakly magnetic (μ0Ms < {LANDMARK_MIN_MS:g} T) or rare-earth rich "
                         f"(> {LANDMARK_MAX_RE_WT:g} wt%) references and competing phases: {', '.join(left_out)}."
                         if left_out else ""))
    figure.alt = (f"Scatter plot of rare-earth mass fraction in weight percent against saturation "
                  f"magnetisation in tesla for {len(rows)} records, coloured by energy above the hull.")
    return figure
