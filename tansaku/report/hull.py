"""The hull figure (hull.png): formation energy vs composition of every ok record, with the convex hull.

Four steps, one function each: :func:`hull_points` chooses the records and the composition axis,
:func:`_draw` draws them (an overview beside a zoom when the candidates crowd one corner),
:func:`_label_stable_phases` names the on-hull points in view, :func:`_caption` says what was drawn.
"On the hull" is :func:`tansaku.screening.hull.is_on_hull` of the stored E_above_hull, the same
test the ranking uses; a binary without that column falls back to the geometric lower hull.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from tansaku.constants import KIND_CANDIDATE
from tansaku.report.columns import kinds, num, ok_mask, text
from tansaku.report.plots import (
    Figure,
    crowding,
    ehull_cmap,
    ehull_norm,
    kind_legend_handles,
    kind_marker,
    mathtext_formula,
    new_figure,
    order_kinds,
    place_labels,
    save,
)
from tansaku.screening.hull import ON_HULL_TOL, is_on_hull, lower_hull

MAX_HULL_LABELS = 30
ON_HULL_TEXT = f"E_hull ≤ {ON_HULL_TOL:g} eV/atom"
ENERGY_LABEL = r"formation energy $E_\mathrm{f}$ (eV/atom)"


@dataclass(frozen=True)
class HullAxis:
    """The composition axis of the figure."""

    label: str  # axis label (mathtext)
    text: str  # the same in words, for the caption
    space: str  # the chemical space, e.g. "Sm–Co"
    binary: bool  # a two-element system: x is an exact composition and the hull a line


@dataclass
class HullPoints:
    """The records the figure places, one entry each (successful, with a formation energy and an x)."""

    rows: np.ndarray  # rows of the table
    x: np.ndarray  # composition coordinate (see axis)
    formation_energy: np.ndarray  # eV/atom
    e_above_hull: np.ndarray  # eV/atom, NaN where unknown
    kind: np.ndarray
    formula: np.ndarray
    on_hull: np.ndarray  # bool
    axis: HullAxis
    unplaced: int  # ok records with a formation energy left out (no usable formula or x)

    @property
    def have_ehull(self) -> bool:
        return bool(np.isfinite(self.e_above_hull).any())


# --------------------------------------------------------------------------------------------- points

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


def composition_axis(comps: list, re_fraction: np.ndarray) -> tuple[np.ndarray, HullAxis]:
    """x of each composition: the fraction of the second element of a binary, else the rare-earth atomic
    fraction, else (no rare earth at all, e.g. an EMT alloy campaign) each compound's minority fraction."""
    elements = sorted({el for c in comps for el in c.elements}, key=_electronegativity_key)
    space = "–".join(el.symbol for el in elements)
    if len(elements) == 2:
        first, second = elements
        x = np.array([c.get_atomic_fraction(second) for c in comps])
        return x, HullAxis(f"atomic fraction x of {second} in {first}$_{{1-x}}${second}$_x$",
                           f"the atomic fraction of {second} in the {space} binary", space, True)
    if np.isfinite(re_fraction).any() and np.nanmax(re_fraction) > 0:
        return re_fraction, HullAxis("rare-earth atomic fraction", "the rare-earth atomic fraction", space, False)
    x = np.array([min(c.get_atomic_fraction(el) for el in c.elements) if len(c.elements) > 1 else 0.0
                  for c in comps])
    return x, HullAxis("atomic fraction of the minority element",
                       "the atomic fraction of each compound's minority element (no rare earth in this set)",
                       space, False)


def on_hull_mask(x: np.ndarray, formation_energy: np.ndarray, e_above_hull: np.ndarray, binary: bool) -> np.ndarray:
    """On the hull by the stored E_above_hull; without it, a binary's lower hull at E_f <= 0; else none."""
    if np.isfinite(e_above_hull).any():
        return is_on_hull(e_above_hull)
    mask = np.zeros(len(x), dtype=bool)
    if binary:
        mask[lower_hull(x, formation_energy)] = True
        mask &= formation_energy <= 1e-12  # a hull vertex above zero formation energy is not a stable phase
    return mask


def hull_points(table: pd.DataFrame) -> HullPoints | str:
    """The records to draw and their composition axis, or a "Skipped: ..." note saying what is missing."""
    ef_all = num(table, "formation_energy")
    selected = ok_mask(table) & np.isfinite(ef_all)
    if not selected.any():
        return ("Skipped: no successful record has a formation energy "
                "(the stability step has not been run, or every record failed).")
    comps = _compositions(text(table, "formula")[selected])
    parsed = np.array([c is not None for c in comps])
    rows = np.flatnonzero(selected)[parsed]
    if not len(rows):
        return "Skipped: no formula of a successful record could be parsed."
    x, axis = composition_axis([c for c in comps if c is not None], num(table, "re_atomic_fraction")[rows])
    keep = np.isfinite(x)
    rows, x = rows[keep], x[keep]
    ef, ehull = ef_all[rows], num(table, "e_above_hull")[rows]
    return HullPoints(rows=rows, x=x, formation_energy=ef, e_above_hull=ehull, kind=kinds(table)[rows],
                      formula=text(table, "formula")[rows], on_hull=on_hull_mask(x, ef, ehull, axis.binary),
                      axis=axis, unplaced=int((~parsed).sum() + (~keep).sum()))


def hull_line(points: HullPoints) -> np.ndarray:
    """(k, 2) vertices (x, E_f) of a binary's hull line through its on-hull points, by x; empty otherwise."""
    if not points.axis.binary or not points.on_hull.any():
        return np.empty((0, 2))
    hx, hy = points.x[points.on_hull], points.formation_energy[points.on_hull]
    return np.array(sorted({xi: min(hy[hx == xi]) for xi in hx}.items()), dtype=float)


# ---------------------------------------------------------------------------------------------- drawing

def _scatter(ax, p: HullPoints, present, norm, cmap, scale: float = 1.0):
    """Records by kind (marker) coloured by E_hull, on-hull ones ringed; returns a mappable for a colorbar."""
    ax.axhline(0.0, color="0.6", lw=0.8, ls=":", zorder=1)
    mappable = None
    for k in present:
        m = p.kind == k
        size = (30 if k == KIND_CANDIDATE else 55) * scale
        sc = ax.scatter(p.x[m], p.formation_energy[m], c=p.e_above_hull[m], cmap=cmap, norm=norm,
                        marker=kind_marker(k), s=size, edgecolors="0.25", linewidths=0.4 * scale, alpha=0.9,
                        zorder=3, plotnonfinite=True)
        if mappable is None:
            mappable = sc
    if p.on_hull.any():
        ax.scatter(p.x[p.on_hull], p.formation_energy[p.on_hull], s=130 * scale, facecolors="none",
                   edgecolors="crimson", linewidths=1.4 * max(scale, 0.7), zorder=4)
    return mappable


def zoom_window(x: np.ndarray, y: np.ndarray, focus: np.ndarray, crowded: float = 0.4):
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


def _overview(fig: MplFigure, overview, p: HullPoints, window, present, norm, cmap) -> None:
    """The left panel of a zoomed figure: every record, the zoomed region as a dashed box."""
    _scatter(overview, p, present, norm, cmap, scale=0.5 * crowding(len(p.x)))
    (x0, x1), (y0, y1) = window
    overview.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", lw=1.0, ec="0.3", zorder=5))
    overview.set_title("all records", fontsize=9)
    overview.set_xlabel(p.axis.label, fontsize=8)
    overview.set_ylabel(ENERGY_LABEL)
    overview.tick_params(labelsize=8)
    overview.grid(True, color="0.92", zorder=0)
    overview.margins(0.08)


def _draw(p: HullPoints, line: np.ndarray, window) -> tuple[MplFigure, object, np.ndarray]:
    """The figure, its main axes and which points are in view there."""
    norm, extend = ehull_norm(p.e_above_hull)
    cmap = ehull_cmap()
    present = order_kinds(p.kind)
    fig = new_figure()
    if window is None:
        ax = fig.add_subplot()
    else:  # candidates crowded in a corner of the full range: an overview beside a zoom on them
        overview, ax = fig.subplots(1, 2, width_ratios=[1, 2.3])
        _overview(fig, overview, p, window, present, norm, cmap)
    mappable = _scatter(ax, p, present, norm, cmap, scale=crowding(len(p.x)))
    handles = kind_legend_handles(present)
    if p.on_hull.any():
        handles.append(Line2D([], [], ls="", marker="o", markersize=10, markerfacecolor="none",
                              markeredgecolor="crimson", markeredgewidth=1.4, label="on the hull"))
    if len(line):
        ax.plot(line[:, 0], line[:, 1], color="crimson", lw=1.3, zorder=2)
        handles.append(Line2D([], [], color="crimson", lw=1.3, label="convex hull"))
    if p.have_ehull and mappable is not None:
        fig.colorbar(mappable, ax=ax, extend=extend, pad=0.01).set_label(r"$E_\mathrm{hull}$ (eV/atom)")
    ax.set_xlabel(p.axis.label)
    ax.set_ylabel(ENERGY_LABEL)
    title = f"Formation energy vs composition ({p.axis.space}, {len(p.x)} records)"
    if window is None:
        ax.set_title(title, fontsize=11)
        ax.margins(x=0.06, y=0.1)
        visible = np.ones(len(p.x), dtype=bool)
    else:
        fig.suptitle(title, fontsize=11)
        ax.set_title("around the candidates (dashed box on the left)", fontsize=9)
        (x0, x1), (y0, y1) = window
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        visible = (p.x >= x0) & (p.x <= x1) & (p.formation_energy >= y0) & (p.formation_energy <= y1)
    ax.grid(True, color="0.92", zorder=0)
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.9)
    return fig, ax, visible


def _label_stable_phases(fig: MplFigure, ax, p: HullPoints, visible: np.ndarray) -> int:
    """Label the on-hull points in view once per (formula, x), most stable first; returns how many
    distinct ones there were."""
    label_rows: dict[tuple[str, float], int] = {}
    shown = p.on_hull & visible
    for i in np.flatnonzero(shown)[np.argsort(p.formation_energy[shown])]:
        label_rows.setdefault((p.formula[i], round(float(p.x[i]), 6)), i)
    chosen = list(label_rows.values())
    place_labels(fig, ax, p.x[chosen], p.formation_energy[chosen], [mathtext_formula(p.formula[i]) for i in chosen],
                 max_labels=MAX_HULL_LABELS, avoid=np.column_stack([p.x, p.formation_energy]))
    return len(chosen)


def _caption(p: HullPoints, window, visible: np.ndarray, n_labels: int) -> str:
    if p.axis.binary:
        hull_text = ("The line is the lower convex hull through the on-hull points"
                     + (f" ({ON_HULL_TEXT})." if p.have_ehull else " (computed from these points: no E_hull column)."))
    else:
        hull_text = (f"The multi-component hull cannot be drawn in this projection; on-hull points ({ON_HULL_TEXT}) "
                     "are ringed." if p.have_ehull else "No E_hull values, so no points are marked as on the hull.")
    if window is not None:
        hidden = sorted(set(p.formula[~visible]))
        hull_text += (f" Left: all records; right: the region of the candidates, where "
                      f"{len(hidden)} compositions lie outside ({', '.join(hidden[:12])}"
                      f"{', ...' if len(hidden) > 12 else ''}).")
    if window is not None:
        labels = " (those in the zoomed view labelled where there is room)."
    elif n_labels > MAX_HULL_LABELS:
        labels = f" (the first {MAX_HULL_LABELS} distinct ones labelled)."
    else:
        labels = ", labelled by formula where there is room."
    return (f"Formation energy of the {len(p.x)} successful records vs {p.axis.text}. {hull_text} Colour: energy "
            f"above the hull; circles are candidates, squares elemental references, triangles competing phases. "
            f"{int(p.on_hull.sum())} records are on the hull{labels}"
            + (f" {p.unplaced} records without a usable formula or composition value are not shown."
               if p.unplaced else ""))


def hull_plot(table: pd.DataFrame, path: Path) -> Figure:
    """Formation energy vs composition of every ok record, with the convex hull; ``Figure.data`` holds
    what was drawn: x, formation_energy, on_hull (per point, in table-row order ``rows``) and hull_line."""
    figure = Figure(name=path.name, title="Formation energy and convex hull")
    points = hull_points(table)
    if isinstance(points, str):
        figure.note = points
        return figure
    line = hull_line(points)
    window = None if points.axis.binary else zoom_window(points.x, points.formation_energy,
                                                          points.kind == KIND_CANDIDATE)
    fig, ax, visible = _draw(points, line, window)
    n_labels = _label_stable_phases(fig, ax, points, visible)
    save(fig, path)
    figure.path = path
    figure.caption = _caption(points, window, visible, n_labels)
    figure.alt = (f"Scatter plot of formation energy in eV per atom against {points.axis.label.split(' in ')[0]} "
                  f"for {len(points.x)} records in the {points.axis.space} system, {int(points.on_hull.sum())} of "
                  f"them on the convex hull.")
    figure.data = {"rows": points.rows, "x": points.x, "formation_energy": points.formation_energy,
                   "on_hull": points.on_hull, "hull_line": line}
    return figure
