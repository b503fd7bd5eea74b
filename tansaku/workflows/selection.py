"""Selection rules of a funnel stage, applied to the previous stage's ranked rows (data, not code).

A rule (``campaign.Selection``) has up to four keys, AND-ed: ``top`` (the N best by rank), ``e_above_hull_max``
(eV/atom), ``pareto`` (on the Pareto front) and ``filter`` (tansaku's one filter grammar). Only ok,
converged candidate rows are eligible (a single-point stage's rows count as converged: they never "converge");
elemental references and competing phases that finished ok are always carried (every stage has its own
references). Every row of the previous stage gets a reason, stored next to the ranking
(derived columns ``selected`` and ``selection_reason``), so a user sees why a candidate did or did not
go on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tansaku.constants import KIND_CANDIDATE, STATUS_OK
from tansaku.screening.rank import filter_mask
from tansaku.workflows.campaign import Selection

COLUMNS = ("kind", "status", "converged", "rank", "e_above_hull", "on_pareto")  # what select_rows reads


@dataclass
class SelectionResult:
    """Per row: ``selected`` (enters the next stage) and ``reason`` ("" for rows outside the stage)."""

    selected: np.ndarray  # bool
    reason: np.ndarray  # str

    @property
    def count(self) -> int:
        return int(self.selected.sum())


def top_mask(rank: np.ndarray, eligible: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` eligible rows of smallest positive rank (ties by row order); rank <= 0 = unranked."""
    ranked = np.flatnonzero(eligible & (rank > 0))
    best = ranked[np.argsort(rank[ranked], kind="stable")[:n]]
    mask = np.zeros(len(rank), bool)
    mask[best] = True
    return mask


def select_rows(columns: Mapping[str, np.ndarray], rows: np.ndarray, rule: Selection, single_point: bool = False,
                composition: tuple[Sequence[str], np.ndarray] | None = None, stage: str = "") -> SelectionResult:
    """Apply ``rule`` to the ``rows`` (bool mask) of the previous stage; ``columns`` hold the record and
    derived columns of every row (``COLUMNS`` and those the filters name); ``composition`` = (symbols,
    counts) for ``elements`` filters. ``stage`` (the next stage's name) prefixes the reasons."""
    n = len(rows)
    rows = np.asarray(rows, bool)
    kind, status = np.asarray(columns["kind"]).astype(str), np.asarray(columns["status"]).astype(str)
    ok = rows & (status == STATUS_OK)
    converged = np.asarray(columns["converged"], bool) | single_point
    candidate = kind == KIND_CANDIDATE
    eligible = ok & candidate & converged
    rank = np.asarray(columns["rank"], np.int64) if "rank" in columns else np.full(n, -1)
    tests: list[tuple[np.ndarray, list[str]]] = []  # (passes, reason per row) of each rule
    if rule.top:
        passes = top_mask(rank, eligible, rule.top)
        tests.append((passes, [f"rank {r} {'in' if p else 'not in'} top {rule.top}" if r > 0 else
                               "unranked (fails the ranking filters)" for r, p in zip(rank.tolist(), passes)]))
    if rule.e_above_hull_max is not None:
        e = np.asarray(columns["e_above_hull"], float)
        with np.errstate(invalid="ignore"):
            passes = e <= rule.e_above_hull_max
        tests.append((passes, [f"e_above_hull {v:.4g} {'<=' if p else '>'} {rule.e_above_hull_max:g}"
                               if np.isfinite(v) else "no e_above_hull" for v, p in zip(e.tolist(), passes)]))
    if rule.pareto:
        passes = np.asarray(columns["on_pareto"], bool)
        tests.append((passes, ["on the Pareto front" if p else "not on the Pareto front" for p in passes]))
    for flt in rule.filters:
        passes = filter_mask(columns, [flt], n, composition)
        tests.append((passes, [str(flt) if p else f"not {flt}" for p in passes]))
    selected = eligible.copy()
    for passes, _ in tests:
        selected &= passes
    carried = ok & ~candidate
    prefix = f"{stage}: " if stage else ""
    reason = np.full(n, "", dtype=object)
    for i in np.flatnonzero(rows):
        if carried[i]:
            reason[i] = f"{prefix}carried ({kind[i]}: every stage has its own references)"
        elif status[i] != STATUS_OK:
            reason[i] = f"{prefix}not selected: the task failed"
        elif not converged[i]:
            reason[i] = f"{prefix}not selected: relaxation not converged"
        elif selected[i]:
            reason[i] = f"{prefix}selected: " + "; ".join(r[i] for _, r in tests)
        else:
            reason[i] = f"{prefix}not selected: " + "; ".join(r[i] for p, r in tests if not p[i])
    return SelectionResult(selected | carried, reason.astype(str))
