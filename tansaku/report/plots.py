"""Figures of a screening report: convex hull, Pareto front, rare-earth content vs magnetisation.

Each ``*_plot`` function takes the report table (one row per record, see :mod:`tansaku.results.report`),
writes one PNG and returns a :class:`Figure` with its caption and alt text, or, when the data it needs is
missing (no formation energies, no magnetic moments, ...), writes nothing and returns the reason. Figures
are drawn on their own Agg canvas, never through pyplot, so the caller's matplotlib backend and global
state are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

DPI = 150
FIGSIZE = (8.0, 5.4)  # inches: 1200 x 810 px at 150 dpi
ON_HULL_TOL = 1e-6  # eV/atom: e_above_hull below this is on the hull
MAX_HULL_LABELS = 30
MAX_PARETO_LABELS = 25
LANDMARK_MIN_MS = 0.3  # T: references / competing phases shown beside the candidates in re_vs_ms.png ...
LANDMARK_MAX_RE_WT = 60.0  # ... if at least this magnetic and at most this rare-earth rich

# marker and legend text of each record kind
KIND_STYLE = {"candidate": ("o", "candidate"), "reference": ("s", "elemental reference"),
              "competing": ("^", "competing phase")}
OTHER_KIND_STYLE = ("D", "other")


@dataclass
class Figure:
    """One figure of the report: ``path`` is None when it was skipped, and ``note`` then says why."""

    name: str  # file name, e.g. "hull.png"
    title: str
    path: Path | None = None
    caption: str = ""
    alt: str = ""
    note: str = ""


# ----------------------------------------------------------------------------------------------- columns

def num(table: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float (NaN where missing or not a number; all NaN if the column is absent)."""
    if column not in table.columns:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def text(table: pd.DataFrame, column: str, default: str = "") -> np.ndarray:
    """A column as str (``default`` where missing)."""
    if column not in table.columns:
        return np.full(len(table), default, dtype=object)
    return np.array([default if is_missing(v) else str(v) for v in table[column]], dtype=object)


def flag(table: pd.DataFrame, column: str, default: bool = False) -> np.ndarray:
    """A column as bool (``default`` where missing; NaN/None count as False)."""
    if column not in table.columns:
        return np.full(len(table), default, dtype=bool)
    return np.array([False if is_missing(v) else bool(v) for v in table[column]], dtype=bool)


def is_missing(value) -> bool:
    """None, NaN or pd.NA (a cell with no value)."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # array-like cell
        return False


def ok_mask(table: pd.DataFrame) -> np.ndarray:
    """Rows of successful records (every row if there is no status column)."""
    if "status" not in table.columns:
        return np.ones(len(table), dtype=bool)
    return text(table, "status") == "ok"


def kinds(table: pd.DataFrame) -> np.ndarray:
    return text(table, "kind", default="candidate")


# ----------------------------------------------------------------------------------------------- helpers

def mathtext_formula(formula: str) -> str:
    """``Sm2Fe17N3`` -> ``Sm$_{2}$Fe$_{17}$N$_{3}$`` for matplotlib labels."""
    return re.sub(r"(?<=[A-Za-z)])(\d+(?:\.\d+)?)", r"$_{\1}$", formula.replace("$", r"\$"))


def _new_figure() -> MplFigure:
    fig = MplFigure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: MplFigure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, facecolor="white", metadata={"Software": None})


def _ehull_norm(ehull: np.ndarray) -> tuple[Normalize, str]:
    """Colour scale of E_above_hull: 0 .. 95th percentile (at least 10 meV/atom); 'max' if clipped."""
    finite = ehull[np.isfinite(ehull)]
    top = max(float(np.percentile(finite, 95)) if len(finite) else 0.1, 0.01)
    extend = "max" if len(finite) and finite.max() > top * (1 + 1e-9) else "neither"
    return Normalize(vmin=0.0, vmax=top), extend


def _crowding(n: int) -> float:
    """Marker-size factor: 1 up to 400 points, shrinking to 0.3 for tens of thousands."""
    return float(np.clip(np.sqrt(400.0 / max(n, 1)), 0.3, 1.0))


def _ehull_cmap():
    return matplotlib.colormaps["viridis"].with_extremes(bad="0.75")


def _kind_legend_handles(present: Sequence[str]) -> list[Line2D]:
    handles = []
    for kind in present:
        marker, name = KIND_STYLE.get(kind, OTHER_KIND_STYLE)
        handles.append(Line2D([], [], ls="", marker=marker, color="0.45", markersize=7, label=name))
    return handles


def _order_kinds(values: np.ndarray) -> list[str]:
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


def _compositions(formulas: Sequence[str]) -> list:
    from pymatgen.core import Composition

    parsed = {}
    for formula in set(formulas):  # a campaign has many records per formula: parse each once
        try:
            parsed[formula] = Composition(formula) if formula else None
        except Exception:  # noqa: BLE001 - any unparsable formula is simply left out of the hull plot
            parsed[formula] = None
    return [parsed[formula] for formula in formulas]


def _electronegativity_key(element):
    x = element.X
    return (x if np.isfinite(x) else np.inf, element.symbol)


def lower_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points on the lower convex hull of (x, y), sorted by x (monotone chain)."""
    order = np.lexsort((y, x))
    hull: list[int] = []
    for i in order:
        if hull and x[hull[-1]] == x[i]:
            continue  # same x: the lower point came first
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a])
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(int(i))
    return np.array(hull, dtype=np.int64)


# ------------------------------------------------------------------------------------------------- hull

def _hull_scatter(ax, x, ef, ehull, kind, present, norm, cmap, on_hull, scale: float = 1.0):
    """Records by kind (marker) coloured by E_hull, on-hull ones ringed; returns a mappable for a colorbar."""
    ax.axhline(0.0, color="0.6", lw=0.8, ls=":", zorder=1)
    mappable = None
    for k in present:
        m = kind == k
        marker = KIND_STYLE.get(k, OTHER_KIND_STYLE)[0]
        size = (30 if k == "candidate" else 55) * scale
        sc = ax.scatter(x[m], ef[m], c=ehull[m], cmap=cmap, norm=norm, marker=marker, s=size,
                        edgecolors="0.25", linewidths=0.4 * scale, alpha=0.9, zorder=3, plotnonfinite=True)
        if mappable is None:
            mappable = sc
    if on_hull.any():
        ax.scatter(x[on_hull], ef[on_hull], s=130 * scale, facecolors="none", edgecolors="crimson",
                   linewidths=1.4 * max(scale, 0.7), zorder=4)
    return mappable


def _zoom_window(x: np.ndarray, y: np.ndarray, focus: np.ndarray, crowded: float = 0.4):
    """((x0, x1), (y0, y1)) around the ``focus`` points and whatever shares their composition range, or
    None when they already fill more than ``crowded`` of the full range in both directions."""
    if not focus.any() or len(x) < 2:
        return None
    fx = x[focus]
    lo, hi = float(fx.min()), float(fx.max())
    lo = min(lo, 0.0)  # keep the RE-free end (Fe, Co, Fe2Ti, ...) in view
    near = (x >= lo - 1e-9) & (x <= hi + 1e-9)
    ylo, yhi = min(float(y[near].min()), 0.0), max(float(y[near].max()), 0.0)
    xspan, yspan = float(np.ptp(x)), float(np.ptp(y))
    if (xspan <= 0 or hi - lo > crowded * xspan) and (yspan <= 0 or yhi - ylo > crowded * yspan):
        return None
    xpad = max(0.08 * (hi - lo), 0.01)
    ypad = max(0.1 * (yhi - ylo), 0.01)
    return (lo - xpad, hi + xpad), (ylo - ypad, yhi + ypad)


def hull_plot(table: pd.DataFrame, path: Path) -> Figure:
    """Formation energy vs composition of every ok record, with the convex hull."""
    figure = Figure(name=path.name, title="Formation energy and convex hull")
    ef_all = num(table, "formation_energy")
    selected = ok_mask(table) & np.isfinite(ef_all)
    if not selected.any():
        figure.note = ("Skipped: no successful record has a formation energy "
                       "(the stability step has not been run, or every record failed).")
        return figure
    comps = _compositions(text(table, "formula")[selected])
    parsed = np.array([c is not None for c in comps])
    rows = np.flatnonzero(selected)[parsed]
    comps = [c for c in comps if c is not None]
    if not len(rows):
        figure.note = "Skipped: no formula of a successful record could be parsed."
        return figure
    unparsed = int((~parsed).sum())

    ef = ef_all[rows]
    ehull = num(table, "e_above_hull")[rows]
    kind = kinds(table)[rows]
    formula = text(table, "formula")[rows]
    elements = sorted({el for c in comps for el in c.elements}, key=_electronegativity_key)
    have_ehull = bool(np.isfinite(ehull).any())

    binary = len(elements) == 2
    if binary:
        first, second = elements
        x = np.array([c.get_atomic_fraction(second) for c in comps])
        xlabel = f"atomic fraction x of {second} in {first}$_{{1-x}}${second}$_x$"
        space = f"{first}–{second}"
    else:
        re_frac = num(table, "re_atomic_fraction")[rows]
        if np.isfinite(re_frac).any() and np.nanmax(re_frac) > 0:
            x = re_frac
            xlabel = "rare-earth atomic fraction"
            xtext = "the rare-earth atomic fraction"
        else:  # no rare earth at all (e.g. an EMT alloy campaign): the solute content is the next best axis
            x = np.array([min(c.get_atomic_fraction(el) for el in c.elements) if len(c.elements) > 1 else 0.0
                          for c in comps])
            xlabel = "atomic fraction of the minority element"
            xtext = "the atomic fraction of each compound's minority element (no rare earth in this set)"
        space = "–".join(el.symbol for el in elements)
    keep = np.isfinite(x)
    x, ef, ehull, kind, formula = x[keep], ef[keep], ehull[keep], kind[keep], formula[keep]
    unplaced = unparsed + int((~keep).sum())  # no formula, or no rare-earth fraction to place them by

    if have_ehull:
        on_hull = np.isfinite(ehull) & (ehull < ON_HULL_TOL)
    elif binary:  # no e_above_hull column: the geometric lower hull of the binary
        on_hull = np.zeros(len(x), dtype=bool)
        on_hull[lower_hull(x, ef)] = True
        on_hull &= ef <= 1e-12  # a hull vertex above zero formation energy is not a stable phase
    else:
        on_hull = np.zeros(len(x), dtype=bool)

    norm, extend = _ehull_norm(ehull)
    cmap = _ehull_cmap()
    present = _order_kinds(kind)
    window = None if binary else _zoom_window(x, ef, kind == "candidate")
    fig = _new_figure()
    if window is None:
        ax = fig.add_subplot()
    else:  # candidates crowded in a corner of the full range: an overview beside a zoom on them
        overview, ax = fig.subplots(1, 2, width_ratios=[1, 2.3])
        _hull_scatter(overview, x, ef, ehull, kind, present, norm, cmap, on_hull, scale=0.5 * _crowding(len(x)))
        (x0, x1), (y0, y1) = window
        overview.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=1.0, ec="0.3", zorder=5))
        overview.set_title("all records", fontsize=9)
        overview.set_xlabel(xlabel, fontsize=8)
        overview.set_ylabel(r"formation energy $E_\mathrm{f}$ (eV/atom)")
        overview.tick_params(labelsize=8)
        overview.grid(True, color="0.92", zorder=0)
        overview.margins(0.08)
    mappable = _hull_scatter(ax, x, ef, ehull, kind, present, norm, cmap, on_hull, scale=_crowding(len(x)))
    handles = _kind_legend_handles(present)
    if on_hull.any():
        handles.append(Line2D([], [], ls="", marker="o", markersize=10, markerfacecolor="none",
                              markeredgecolor="crimson", markeredgewidth=1.4, label="on the hull"))
    if binary and on_hull.any():
        hx, hy = x[on_hull], ef[on_hull]
        vertices = sorted({xi: min(hy[hx == xi]) for xi in hx}.items())
        ax.plot([v[0] for v in vertices], [v[1] for v in vertices], color="crimson", lw=1.3, zorder=2)
        handles.append(Line2D([], [], color="crimson", lw=1.3, label="convex hull"))
    if have_ehull and mappable is not None:
        cbar = fig.colorbar(mappable, ax=ax, extend=extend, pad=0.01)
        cbar.set_label(r"$E_\mathrm{hull}$ (eV/atom)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"formation energy $E_\mathrm{f}$ (eV/atom)")
    if window is None:
        ax.set_title(f"Formation energy vs composition ({space}, {len(x)} records)", fontsize=11)
        ax.margins(x=0.06, y=0.1)
        visible = np.ones(len(x), dtype=bool)
    else:
        fig.suptitle(f"Formation energy vs composition ({space}, {len(x)} records)", fontsize=11)
        ax.set_title("around the candidates (dashed box on the left)", fontsize=9)
        (x0, x1), (y0, y1) = window
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        visible = (x >= x0) & (x <= x1) & (ef >= y0) & (ef <= y1)
    ax.grid(True, color="0.92", zorder=0)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)

    # label the stable phases in view once per (formula, x), most stable first
    label_rows = {}
    shown_on_hull = on_hull & visible
    for i in np.flatnonzero(shown_on_hull)[np.argsort(ef[shown_on_hull])]:
        label_rows.setdefault((formula[i], round(float(x[i]), 6)), i)
    chosen = list(label_rows.values())
    place_labels(fig, ax, x[chosen], ef[chosen], [mathtext_formula(formula[i]) for i in chosen],
                 max_labels=MAX_HULL_LABELS, avoid=np.column_stack([x, ef]))
    _save(fig, path)

    n_on = int(on_hull.sum())
    if binary:
        composition = f"the atomic fraction of {second} in the {space} binary"
        hull_text = ("The line is the lower convex hull through the on-hull points"
                     + (" (E_hull < 1 µeV/atom)." if have_ehull else
                        " (computed from these points: no E_hull column)."))
    else:
        composition = xtext
        hull_text = ("The multi-component hull cannot be drawn in this projection; on-hull points "
                     "(E_hull < 1 µeV/atom) are ringed." if have_ehull else
                     "No E_hull values, so no points are marked as on the hull.")
    if window is not None:
        hidden = sorted(set(formula[~visible]))
        hull_text += (f" Left: all records; right: the region of the candidates, where "
                      f"{len(hidden)} compositions lie outside ({', '.join(hidden[:12])}"
                      f"{', ...' if len(hidden) > 12 else ''}).")
    figure.path = path
    figure.caption = (f"Formation energy of the {len(x)} successful records vs {composition}. "
                      f"{hull_text} Colour: energy above the hull; circles are candidates, squares elemental "
                      f"references, triangles competing phases. {n_on} records are on the hull"
                      + (" (those in the zoomed view labelled where there is room)." if window is not None else "")
                      + ("" if window is not None else
                         f" (the first {MAX_HULL_LABELS} distinct ones labelled)." if len(chosen) > MAX_HULL_LABELS
                         else ", labelled by formula where there is room.")
                      + (f" {unplaced} records without a usable formula or composition value are not shown."
                         if unplaced else ""))
    figure.alt = (f"Scatter plot of formation energy in eV per atom against {xlabel.split(' in ')[0]} "
                  f"for {len(x)} records in the {space} system, {n_on} of them on the convex hull.")
    return figure


# ----------------------------------------------------------------------------------------------- pareto

def _no_magnetisation_note(table: pd.DataFrame, rows: np.ndarray, what: str) -> str:
    ms = num(table, "mu0_ms")[rows]
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
    rows = np.flatnonzero(base & np.isfinite(num(table, "mu0_ms")) & np.isfinite(other))
    if not note and not len(rows):
        note = f"Skipped: no {what} has both {other_name} and a magnetisation μ0Ms."
    return rows, note


def pareto_plot(table: pd.DataFrame, path: Path, objectives: str = "") -> Figure:
    """E_above_hull vs μ0Ms of the candidates, Pareto front highlighted, filtered-out ones faded;
    ``objectives`` describes the ranking objectives in the caption ("minimise E_hull, maximise μ0Ms, ...")."""
    figure = Figure(name=path.name, title="Stability vs magnetisation (Pareto front)")
    candidates = ok_mask(table) & (kinds(table) == "candidate")
    ms, eh = num(table, "mu0_ms"), num(table, "e_above_hull")
    rows, figure.note = _rows_with_ms(table, candidates, "candidate", eh, "an energy above the hull",
                                      "no candidate has an energy above the hull (the stability step has not been run)")
    if figure.note:
        return figure

    x, y = ms[rows], eh[rows]
    has_filter = "passes_filters" in table.columns
    passes = flag(table, "passes_filters", default=True)[rows]
    front = flag(table, "on_pareto")[rows] & passes
    rank = num(table, "rank")[rows]
    formula = text(table, "formula")[rows]
    label = text(table, "label")[rows]

    fig = _new_figure()
    ax = fig.add_subplot()
    handles = []
    size = _crowding(len(rows))
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
    ax.set_xlabel(r"saturation magnetisation $\mu_0M_\mathrm{s}$ (T)")
    ax.set_ylabel(r"energy above the hull $E_\mathrm{hull}$ (eV/atom)")
    ax.set_title(f"Candidates: stability vs magnetisation ({len(rows)} candidates)", fontsize=11)
    ax.grid(True, color="0.92", zorder=0)
    ax.margins(x=0.08, y=0.12)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9, title="better: lower right ↘",
              title_fontsize=8)

    idx = np.flatnonzero(front)
    idx = idx[np.lexsort((y[idx], np.where(rank[idx] >= 1, rank[idx], np.inf)))]  # best rank first
    names = [mathtext_formula(formula[i] or label[i]) + (f" (#{int(rank[i])})" if rank[i] >= 1 else "")
             for i in idx]
    place_labels(fig, ax, x[idx], y[idx], names, max_labels=MAX_PARETO_LABELS, avoid=np.column_stack([x, y]))
    _save(fig, path)

    n_front, n_faded = int(front.sum()), int(faded.sum())
    figure.path = path
    figure.caption = (f"Energy above the hull vs μ0Ms for the {len(rows)} successful candidates with both "
                      f"values; lower right is better. Stars: the {n_front} candidates on the Pareto front, "
                      + (f"the {MAX_PARETO_LABELS} best-ranked labelled by formula and rank where there is room"
                         if n_front > MAX_PARETO_LABELS else "labelled by formula and rank where there is room")
                      + (f". The front is computed over all objectives ({objectives}), so a front point "
                         f"need not look optimal in this two-objective projection" if objectives else "")
                      + (f". Faded: {n_faded} candidates that fail the filters." if has_filter and n_faded
                         else "."))
    figure.alt = (f"Scatter plot of energy above the hull in eV per atom against saturation magnetisation "
                  f"in tesla for {len(rows)} candidates, {n_front} of them on the Pareto front.")
    return figure


# ------------------------------------------------------------------------------------------ RE vs mu0Ms

def re_vs_ms_plot(table: pd.DataFrame, path: Path) -> Figure:
    """Rare-earth mass fraction vs μ0Ms of every ok record, coloured by E_above_hull."""
    figure = Figure(name=path.name, title="Rare-earth content vs magnetisation")
    ms, re_mass = num(table, "mu0_ms"), num(table, "re_mass_fraction")
    rows, figure.note = _rows_with_ms(table, ok_mask(table), "record", re_mass, "a rare-earth mass fraction",
                                      "no rare-earth mass fractions (the properties step has not been run)")
    if figure.note:
        return figure

    kind = kinds(table)[rows]
    x, y = ms[rows], 100.0 * re_mass[rows]
    # with candidates present, other records are landmarks only if magnetic and not RE-rich (Fe, Co, SmCo5,
    # Sm2Fe17, ...); elemental Sm, SmN or Ti would only squeeze the candidates into a corner
    landmark = (x >= LANDMARK_MIN_MS) & (y <= LANDMARK_MAX_RE_WT)
    keep = (kind == "candidate") | landmark if (kind == "candidate").any() else np.ones(len(rows), dtype=bool)
    left_out = sorted(set(text(table, "formula")[rows][~keep]))
    rows, kind, x, y = rows[keep], kind[keep], x[keep], y[keep]
    ehull = num(table, "e_above_hull")[rows]
    formula = text(table, "formula")[rows]
    front = flag(table, "on_pareto")[rows] & (kind == "candidate")

    fig = _new_figure()
    ax = fig.add_subplot()
    norm, extend = _ehull_norm(ehull)
    cmap = _ehull_cmap()
    present = _order_kinds(kind)
    size = _crowding(len(rows))
    mappable = None
    for k in present:
        m = kind == k
        marker = KIND_STYLE.get(k, OTHER_KIND_STYLE)[0]
        sc = ax.scatter(x[m], y[m], c=ehull[m], cmap=cmap, norm=norm, marker=marker,
                        s=(34 if k == "candidate" else 60) * size, edgecolors="0.25", linewidths=0.4, alpha=0.9, zorder=3,
                        plotnonfinite=True)
        if mappable is None:
            mappable = sc
    handles = _kind_legend_handles(present)
    if front.any():
        ax.scatter(x[front], y[front], s=130 * size, facecolors="none", edgecolors="crimson", linewidths=1.3,
                   zorder=4)
        handles.append(Line2D([], [], ls="", marker="o", markersize=10, markerfacecolor="none",
                              markeredgecolor="crimson", markeredgewidth=1.3, label="Pareto front"))
    if np.isfinite(ehull).any() and mappable is not None:
        cbar = fig.colorbar(mappable, ax=ax, extend=extend, pad=0.01)
        cbar.set_label(r"$E_\mathrm{hull}$ (eV/atom)")
    ax.set_xlabel(r"saturation magnetisation $\mu_0M_\mathrm{s}$ (T)")
    ax.set_ylabel("rare-earth mass fraction (wt%)")
    ax.set_title(f"Rare-earth content vs magnetisation ({len(rows)} records)", fontsize=11)
    ax.grid(True, color="0.92", zorder=0)
    ax.margins(x=0.08, y=0.1)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    # references and competing phases are the landmarks (Fe, SmCo5, Sm2Fe17, ...): label them
    landmarks = np.flatnonzero(kind != "candidate")
    seen: dict[str, int] = {}
    for i in landmarks[np.argsort(-x[landmarks])]:
        seen.setdefault(formula[i], i)
    chosen = list(seen.values())
    place_labels(fig, ax, x[chosen], y[chosen], [mathtext_formula(formula[i]) for i in chosen], max_labels=20,
                 avoid=np.column_stack([x, y]))
    _save(fig, path)

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
