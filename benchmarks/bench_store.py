"""Issue 11 item 6, the store at scale, side by side (``python -m benchmarks store``).

The same synthetic 26-atom records (tests/synthetic.py) are written by each variant into a fresh file;
only the append calls (and the closing compaction) are timed: records are generated between them,
untimed. Times are CPU seconds of this process (user + system, all its threads: ``time.process_time``),
not wall time: on a shared machine with a load of 10+ on 2 cores, wall time measures the other users.

- append: schema version 2 (ragged text, unfiltered numbers, shuffle + gzip-1) vs version 3 (the same
  datasets compressed by Blosc LZ4 + shuffle, in larger chunks), from Records (``Store.append``:
  validation and packing included) at batch 256 and 4096 on at most 10^5 records, and from packed
  batches (``Store.append_packed``: the store alone; ``synthetic_batch`` builds them column by column) at
  batch 4096 on all records; version 3 at batch 256 vs 65536 (the fixed cost of a commit); version 1
  (fixed-width text, 4 kB gzip-4 chunks) vs version 3 on at most 10^5 records;
- references: Parquet (pyarrow, if installed: the same packed columns as an Arrow table per batch, text
  as strings, per-atom arrays as lists) and ase.db (SQLite, one ``write`` per record in one transaction,
  on fewer records: its time is scaled to the same count);
- queries on the version-2 and version-3 files just written, with two derived columns: two filters
  (selection only: row numbers; and with the default output columns), and the top 50 by a derived
  column with every one-value-per-row column;
- rank: storing two derived columns by copying the whole store (what ranking did before the side file)
  vs ``write_derived`` writing only the side file.

Records: 10^5 by default, 10^4 with --quick; set TANSAKU_BENCH_STORE_RECORDS (e.g. 1000000) for more.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's tansaku; tests/synthetic.py

import h5py  # noqa: E402
import numpy as np  # noqa: E402
from synthetic import synthetic_batch, synthetic_record  # noqa: E402

from benchmarks._table import Row  # noqa: E402
from tansaku.results import Store, write_derived  # noqa: E402
from tansaku.results.atomic import fsync_path  # noqa: E402
from tansaku.results.pack import Batch, pack  # noqa: E402
from tansaku.results.schema import SCHEMA_VERSION  # noqa: E402
from tansaku.results.query import query  # noqa: E402
from tansaku.results.read import committed_rows, open_for_reading  # noqa: E402
from tansaku.results.recover import write_new_file  # noqa: E402
from tansaku.results.schema import RECORD_COLUMNS, new_file_attrs  # noqa: E402

NATOMS = 26
TWO_FILTERS = ["e_above_hull <= 0.05", "mu0_ms >= 1.5"]
ALL_COLUMNS = [c.name for c in RECORD_COLUMNS if not c.shape and c.name != "atom_start"]


def _records(a: int, b: int) -> list:
    return [synthetic_record(k, natoms=NATOMS) for k in range(a, b)]


def _fresh(path: Path, version: int) -> None:
    for p in (path, Path(f"{path}.derived.h5")):
        p.unlink(missing_ok=True)
    write_new_file(path, new_file_attrs("benchmark", version=version))


clock = time.process_time


def _append(path: Path, n: int, batch: int, version: int, packed: bool) -> float:
    """CPU seconds spent in append calls (and the closing compaction) writing ``n`` records in batches."""
    _fresh(path, version)
    spent = 0.0
    store = Store.open(path)
    for a in range(0, n, batch):
        if packed:
            data = synthetic_batch(a, min(a + batch, n), NATOMS)
            t = clock()
            store.append_packed(data)
        else:
            records = _records(a, min(a + batch, n))
            t = clock()
            store.append(records)
        spent += clock() - t
    t = clock()
    store.close()
    return spent + clock() - t


def _pair(baseline: Callable[[], float], fast: Callable[[], float], repeats: int) -> tuple[list[float], list[float]]:
    """``side_by_side`` for variants that time themselves (returning seconds), back to back per repeat."""
    base, quick = [], []
    for _ in range(repeats):
        base.append(baseline())
        quick.append(fast())
    return base, quick


def _cpu(fn: Callable[[], object], inner: int = 3) -> float:
    """Median CPU seconds of ``inner`` calls of ``fn``."""
    times = []
    for _ in range(inner):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times)


def _arrow(batch: Batch):
    import pyarrow as pa

    columns = {name: pa.array(values) for name, values in batch.rows.items() if values.ndim == 1}
    for name in ("stress", "cell", "pbc"):
        flat = batch.rows[name].reshape(len(batch), -1)
        columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])
    for name, text in batch.text.items():
        offsets = np.concatenate([[0], np.cumsum(text.lengths)]).astype(np.int32)
        columns[name] = pa.StringArray.from_buffers(len(text.lengths), pa.py_buffer(offsets),
                                                    pa.py_buffer(text.data.tobytes()))
    offsets = pa.array(np.concatenate([[0], np.cumsum(batch.rows["natoms"])]).astype(np.int32))
    for name, values in batch.atoms.items():
        flat = values if values.ndim == 1 else pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), 3)
        columns[name] = pa.ListArray.from_arrays(offsets, flat)
    return pa.table(columns)


def _parquet(path: Path, n: int, batch: int) -> float:
    import pyarrow.parquet as pq

    spent, writer = 0.0, None
    try:
        for a in range(0, n, batch):
            data = synthetic_batch(a, min(a + batch, n), NATOMS)
            t = clock()
            table = _arrow(data)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            spent += clock() - t
        t = clock()
        writer.close()
        return spent + clock() - t
    finally:
        if writer is not None and writer.is_open:
            writer.close()


def _ase_db(path: Path, n: int) -> float:
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.db import connect

    path.unlink(missing_ok=True)
    records = _records(0, n)
    t = clock()
    with connect(path) as db:
        for r in records:
            atoms = Atoms(numbers=r.numbers, positions=r.positions, cell=r.cell, pbc=r.pbc)
            atoms.calc = SinglePointCalculator(atoms, energy=r.energy, stress=r.stress)
            db.write(atoms, task_id=r.task_id, label=r.label, prototype=r.prototype, status=r.status,
                     residual_force=r.fmax, steps=r.steps, converged=r.converged)
    return clock() - t


def _copy_with_derived(path: Path, columns: dict[str, np.ndarray]) -> None:
    """The ranking write before the side file: a copy of the whole store with /derived, replacing it."""
    tmp = path.with_name(path.name + ".copy.tmp")
    with open_for_reading(path) as src, h5py.File(tmp, "w", libver="latest", locking=False) as dst:
        for key in src:
            if key != "derived":
                src.copy(src[key], dst, key)
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        group = dst.create_group("derived", track_order=True)
        for name, values in columns.items():
            group.create_dataset(name, data=values, chunks=(min(len(values), 1 << 15),), maxshape=(None,))
        group.attrs["rows"] = np.int64(committed_rows(src))
    fsync_path(tmp)
    os.replace(tmp, path)


def _derived(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261201)
    e_hull = rng.exponential(0.3, n)
    e_hull[rng.random(n) < 0.02] = np.nan
    return {"e_above_hull": e_hull, "mu0_ms": np.clip(rng.normal(0.8, 0.4, n), 0, None)}


def _rate(n: int, seconds: list[float]) -> str:
    return f"{n / statistics.median(seconds):,.0f} rec/s"


def _size(path: Path, n: int) -> str:
    return f"{path.stat().st_size / n:.0f} B/rec"


def run(repeats: int, quick: bool) -> list[Row]:
    n = int(os.environ.get("TANSAKU_BENCH_STORE_RECORDS", "0")) or (10_000 if quick else 100_000)
    m = min(n, 100_000)  # records built as Record objects (~0.1 ms each) or written by version 1
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        v1, v2, v3 = Path(tmp) / "v1.h5", Path(tmp) / "v2.h5", Path(tmp) / "v3.h5"
        files = {1: v1, 2: v2, 3: v3}

        def pair(case: str, count: int, old: int, batch: int, packed: bool, new_batch: int | None = None) -> None:
            new = SCHEMA_VERSION
            base, fast = _pair(lambda: _append(files[old], count, batch, old, packed),
                               lambda: _append(files[new], count, new_batch or batch, new, packed), repeats)
            label = f"batch {batch}" if new_batch is None else f"batch {batch} vs {new_batch}"
            rows.append(Row("store", f"append {count} x {NATOMS}-atom records, {case}, {label}",
                            f"schema v{old}" + (f", batch {batch}" if new_batch else ""),
                            f"schema v{new}" + (f", batch {new_batch}" if new_batch else ""), base, fast,
                            f"v{old} {_rate(count, base)} {_size(files[old], count)}; "
                            f"v{new} {_rate(count, fast)} {_size(files[new], count)}"))

        pair("from Records", m, 2, 256, False)
        pair("from Records", m, 2, 4096, False)
        pair("packed (store only)", m, 1, 4096, True)
        pair("packed (store only)", n, 3, 256, True, 65536)
        pair("packed (store only)", n, 2, 4096, True)

        try:
            import pyarrow  # noqa: F401
        except ImportError:
            pyarrow = None
        if pyarrow is not None:
            pq_path = Path(tmp) / "ref.parquet"
            _parquet(pq_path, 16, 16)  # pyarrow's one-off initialisation (~1 s), not timed
            base, fast = _pair(lambda: _parquet(pq_path, n, 4096), lambda: _append(v3, n, 4096, 3, True), repeats)
            rows.append(Row("store", f"append {n} packed records, batch 4096", "Parquet (pyarrow)", "schema v3", base,
                            fast, f"Parquet {_rate(n, base)} {_size(pq_path, n)}; v3 {_rate(n, fast)} {_size(v3, n)}"))
        k = min(n, 2_000)
        db_path = Path(tmp) / "ref.db"
        base, fast = _pair(lambda: _ase_db(db_path, k) * m / k, lambda: _append(v3, m, 256, 3, False), 1)
        rows.append(Row("store", f"append {m} records (ase.db: {k} in one transaction, scaled)", "ase.db (SQLite)",
                        "schema v3, batch 256", base, fast, f"ase.db {_rate(m, base)} {_size(db_path, k)}; "
                                                            f"v3 {_rate(m, fast)}"))

        for path in (v2, v3):  # the version-2 file of the last batch-4096 run, version 3 rewritten so, ranked
            if path == v3:
                _append(v3, n, 4096, 3, True)
            write_derived(path, _derived(n))

        def queries(case: str, **kw) -> None:
            base, fast = _pair(lambda: _cpu(lambda: query(v2, **kw)), lambda: _cpu(lambda: query(v3, **kw)), repeats)
            rows.append(Row("store", f"{case} ({n} records)", "schema v2", "schema v3", base, fast,
                            f"{len(query(v3, **kw))} rows"))

        queries("query: two filters, row numbers only", where=TWO_FILTERS, columns=[], ids=False)
        queries("query: two filters, default columns", where=TWO_FILTERS)
        queries("query: top 50 by e_above_hull, all columns", sort="e_above_hull", limit=50, columns=ALL_COLUMNS)

        columns = _derived(n)
        base, fast = _pair(lambda: _cpu(lambda: _copy_with_derived(v3, columns), 1),
                           lambda: _cpu(lambda: write_derived(v3, columns), 1), repeats)
        rows.append(Row("store", f"rank: store 2 derived columns of {n} rows", "copy of the store", "side file",
                        base, fast, "the side file's cost does not grow with the records' size"))
    return rows


def _main() -> None:
    from benchmarks._table import render

    print(render(run(int(os.environ.get("REPEATS", "1")), "--quick" in sys.argv), os.cpu_count() or 1))


if __name__ == "__main__":
    _main()

