"""Write throughput of the HDF5 results store for several batch sizes, side by side.

    python benchmarks/bench_store_write.py [--records 20000] [--natoms 26] [--batch 1 16 256]

Each batch size writes the same synthetic records (natoms atoms each) into a fresh file with
``Store.append``; records/s counts append time only (records are built beforehand). File sizes are
taken before and after ``Store.close`` (which compacts a file bloated by small SWMR appends).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's tansaku; tests/synthetic.py

from tansaku.results import Store, read_columns  # noqa: E402
from synthetic import synthetic_record  # noqa: E402


def bench(path: Path, records: list, batch: int) -> tuple[float, int, float, int]:
    """Seconds in append, file size before close, seconds in close (compaction), size after close."""
    spent = 0.0
    store = Store.open(path, campaign_text="benchmark")
    for a in range(0, len(records), batch):
        chunk = records[a : a + batch]
        t = time.perf_counter()
        store.append(chunk)
        spent += time.perf_counter() - t
    open_size = path.stat().st_size
    t = time.perf_counter()
    store.close()
    closing = time.perf_counter() - t
    assert len(read_columns(path, ["task_id"])["task_id"]) == len(records)
    return spent, open_size, closing, path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--natoms", type=int, default=26)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()

    records = [synthetic_record(k, natoms=args.natoms) for k in range(args.records)]
    n = args.records
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for batch in args.batch:
            spent, open_size, closing, size = bench(Path(tmp) / f"bench_{batch}.h5", records, batch)
            rows.append((batch, n / spent, spent / -(-n // batch) * 1e3, open_size / n, closing, size / n))
    print(f"{n} records x {args.natoms} atoms, a fresh file per batch size")
    print(f"{'batch':>6} {'records/s':>10} {'ms/append':>10} {'B/record open':>14} {'close s':>8} {'B/record closed':>16}")
    for batch, rate, ms, open_per, closing, per in rows:
        print(f"{batch:>6} {rate:>10.0f} {ms:>10.2f} {open_per:>14.0f} {closing:>8.2f} {per:>16.0f}")
    print("B/record open: while the writer runs (SWMR leaks rewritten chunks); closed: after close,"
          " which compacts a file holding more than twice its live data")

if __name__ == "__main__":
    main()
