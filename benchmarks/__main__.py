"""Run the side-by-side benchmarks and print one table of ratios.

    python -m benchmarks                 # all items, default repeats
    python -m benchmarks emt enumeration # some items
    python -m benchmarks --quick         # fewer repeats and cases (a smoke run, ~1 min)
    python -m benchmarks --repeats 7

Each item is a ``benchmarks/bench_<item>.py`` module with ``run(repeats, quick) -> list[Row]``; its
baseline and fast path are timed back to back in every repeat, and the table shows the median and
the range of the per-repeat ratios, with the machine's core count. The older stand-alone scripts
(bench_store_write, bench_query, bench_executors) still run on their own.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

ITEMS = {  # issue 11 item -> module
    "emt": "benchmarks.bench_emt",
    "dedup": "benchmarks.bench_dedup",
    "enumeration": "benchmarks.bench_enumeration",
    "store": "benchmarks.bench_store",
    "ml_batch": "benchmarks.bench_ml_batch",
    "engine": "benchmarks.bench_engine",
    "rank": "benchmarks.bench_rank",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("items", nargs="*", metavar="ITEM", help=f"which benchmarks ({', '.join(ITEMS)}); default all")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per case (default 5)")
    parser.add_argument("--quick", action="store_true", help="one repeat, small cases only")
    args = parser.parse_args(argv)
    unknown = [item for item in args.items if item not in ITEMS]
    if unknown:
        parser.error(f"unknown item(s) {', '.join(unknown)}; choose from {', '.join(ITEMS)}")
    from benchmarks._table import render

    rows = []
    for item in args.items or list(ITEMS):
        start = time.perf_counter()
        module = importlib.import_module(ITEMS[item])
        rows.extend(module.run(repeats=1 if args.quick else args.repeats, quick=args.quick))
        print(f"[{item}: {time.perf_counter() - start:.0f} s]", file=sys.stderr, flush=True)
    print(render(rows, os.cpu_count() or 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
