"""Side-by-side timing: each repeat times the baseline and the fast path back to back, ratios per repeat.

These machines are noisy (shared cores): only ratios measured within one repeat are compared, and
the table shows their median and range over the repeats, never a lone absolute time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One line of the table: ``fast`` vs ``baseline`` on ``case``; times in seconds per call.

    An empty ``baseline_s`` is a row without a baseline (the fast path alone, e.g. where the baseline
    cannot run): the speed-up column then stays empty and ``note`` says what was measured.
    """

    item: str
    case: str
    baseline: str
    fast: str
    baseline_s: list[float]
    fast_s: list[float]
    note: str = ""

    @property
    def ratios(self) -> list[float]:
        return [b / f for b, f in zip(self.baseline_s, self.fast_s)]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(baseline: Callable[[], object], fast: Callable[[], object], repeats: int,
                 inner: int = 1, fast_inner: int | None = None) -> tuple[list[float], list[float]]:
    """Per repeat: the median of ``inner`` calls of the baseline, then of ``fast_inner`` (default ``inner``)
    calls of the fast path, back to back so that both see the same load. A fast path of a few ms gets
    more calls so that its median is not one scheduling hiccup of a shared core."""
    base_s, fast_s = [], []
    for _ in range(repeats):
        base_s.append(statistics.median(timed(baseline) for _ in range(inner)))
        fast_s.append(statistics.median(timed(fast) for _ in range(fast_inner or inner)))
    return base_s, fast_s


def _seconds(values: list[float]) -> str:
    m = statistics.median(values)
    return f"{m * 1e3:.3g} ms" if m < 1 else f"{m:.3g} s"


def render(rows: list[Row], cores: int) -> str:
    header = ["item", "case", "baseline", "median", "fast path", "median", "speed-up (median [min-max])", "note"]
    lines = [header]
    for row in rows:
        r = row.ratios
        ratio = f"{statistics.median(r):.2f}x [{min(r):.2f}-{max(r):.2f}] n={len(r)}" if r else "-"
        base = _seconds(row.baseline_s) if row.baseline_s else "-"
        lines.append([row.item, row.case, row.baseline, base, row.fast, _seconds(row.fast_s), ratio, row.note])
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
    out = [f"cores: {cores}   (speed-up = baseline time / fast time, measured back to back per repeat)"]
    for k, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
