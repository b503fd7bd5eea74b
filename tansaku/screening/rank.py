"""Ranking: hard filters, Pareto fronts and a weighted score over chosen objectives (vectorised)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tansaku.filters import ELEMENTS, Filter, column_mask, composition_mask, filter_error

Criterion = Filter  # a hard filter ``column op value`` (e.g. e_above_hull <= 0.1): tansaku's one filter grammar


@dataclass(frozen=True)
class Objective:
    """One column to minimise or maximise, with its weight in the score."""

    column: str
    direction: str = "min"  # "min" | "max"
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.direction not in ("min", "max"):
            raise ValueError(f"objective {self.column}: direction must be 'min' or 'max', got {self.direction!r}")
        if not self.weight >= 0:
            raise ValueError(f"objective {self.column}: weight must be >= 0, got {self.weight}")


DEFAULT_OBJECTIVES = (Objective("e_above_hull", "min"), Objective("mu0_ms", "max"),
                      Objective("re_mass_fraction", "min"), Objective("hhi_production", "min"))


@dataclass(frozen=True)
class RankingSpec:
    objectives: tuple[Objective, ...] = DEFAULT_OBJECTIVES
    filters: tuple[Filter, ...] = ()  # parsed with tansaku.filters.parse_filter
    max_fronts: int = 5  # Pareto fronts numbered 0..max_fronts-1; deeper rows get max_fronts

    def columns(self) -> list[str]:
        return list(dict.fromkeys([o.column for o in self.objectives] + [c.column for c in self.filters]))


@dataclass
class Ranking:
    """Per-row ranking results, aligned with the input rows."""

    passes_filters: np.ndarray  # bool: eligible, finite objectives and every filter true
    pareto_rank: np.ndarray  # int: 0 = Pareto front, -1 = not ranked
    on_pareto: np.ndarray  # bool
    score: np.ndarray  # float in [0, 1], 1 = best on every objective; NaN = not ranked
    rank: np.ndarray  # int: 1 = best score; -1 = not ranked

    def as_columns(self) -> dict[str, np.ndarray]:
        return {"passes_filters": self.passes_filters, "pareto_rank": self.pareto_rank,
                "on_pareto": self.on_pareto, "score": self.score, "rank": self.rank}


def _column(columns: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    try:
        return np.asarray(columns[name], dtype=float)
    except KeyError:
        raise KeyError(f"ranking needs column {name!r}, which is not available "
                       f"(available: {', '.join(sorted(columns))})") from None


def filter_mask(columns: Mapping[str, np.ndarray], filters: Sequence[Filter], n: int,
                composition: tuple[Sequence[str], np.ndarray] | None = None) -> np.ndarray:
    """Rows satisfying every filter (NaN never satisfies one), evaluated as queries evaluate them;
    element filters (``elements !has Nd``) need the rows' ``composition`` = (symbols, counts (n, E))."""
    mask = np.ones(n, dtype=bool)
    for flt in filters:
        if flt.column == ELEMENTS:
            if composition is None:
                raise filter_error("an element filter needs the compositions of the rows", flt)
            mask &= composition_mask(*composition, flt)
            continue
        if flt.column not in columns:
            _column(columns, flt.column)  # KeyError naming the column
        mask &= column_mask(np.asarray(columns[flt.column]), flt)
    return mask


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Indices of the Pareto-optimal rows of ``points`` (all objectives minimised), ascending."""
    return np.flatnonzero(pareto_ranks(points, max_fronts=1) == 0)


def pareto_ranks(points: np.ndarray, max_fronts: int = 5) -> np.ndarray:
    """Front index of each row (0 = Pareto front); rows beyond ``max_fronts`` fronts get ``max_fronts``.

    Efficient non-dominated sorting in numba (screening/pareto.py): 10^6 rows, fronts 0-4, in seconds.
    """
    from tansaku.screening.pareto import front_indices  # numba: imported when a ranking is computed

    return front_indices(points, max_fronts)


def weighted_score(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of min-max normalised objectives (minimised), as 1 = best, 0 = worst."""
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    goodness = 1.0 - (points - low) / span
    return goodness @ weights / weights.sum() if weights.sum() > 0 else np.zeros(len(points))


def rank(columns: Mapping[str, np.ndarray], spec: RankingSpec, eligible: np.ndarray,
         composition: tuple[Sequence[str], np.ndarray] | None = None) -> Ranking:
    """Filter, Pareto-sort and score the ``eligible`` rows (e.g. ok candidates) of ``columns``;
    ``composition`` (symbols, counts) serves element filters."""
    n = len(eligible)
    values = np.column_stack([_column(columns, o.column) for o in spec.objectives]) if spec.objectives \
        else np.zeros((n, 0))
    signs = np.array([1.0 if o.direction == "min" else -1.0 for o in spec.objectives])
    passes = eligible & filter_mask(columns, spec.filters, n, composition) & np.isfinite(values).all(axis=1)
    rows = np.flatnonzero(passes)
    pareto = np.full(n, -1, dtype=np.int64)
    score = np.full(n, np.nan)
    ranking = np.full(n, -1, dtype=np.int64)
    if len(rows):
        points = values[rows] * signs
        pareto[rows] = pareto_ranks(points, spec.max_fronts)
        score[rows] = weighted_score(points, np.array([o.weight for o in spec.objectives]))
        order = rows[np.lexsort((pareto[rows], -score[rows]))]  # best score first, front breaks ties
        ranking[order] = np.arange(1, len(order) + 1)
    return Ranking(passes_filters=passes, pareto_rank=pareto, on_pareto=pareto == 0, score=score, rank=ranking)
