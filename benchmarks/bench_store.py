"""Issue 11 item 6, the store at scale: appends and ranking, side by side (``python -m benchmarks store``).

- append: the same synthetic 26-atom records (tests/synthetic.py) written with ``Store.append`` in
  batches of 256 into a fresh file, packed record by record (``pack_records``, the path before
  ``pack_fast``) vs column by column (``pack_fast``, what ``pack`` uses for batches of 8 and more);
- rank: storing two derived columns for a store of those records, by copying the whole store with
  them (what ``write_derived`` did before the side file: HDF5 object copy of every dataset plus the new
  /derived group, fsync, replace) vs ``write_derived`` writing only the side file ``<store>.derived.h5``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's tansaku; tests/synthetic.py

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._table import Row, side_by_side  # noqa: E402
from synthetic import synthetic_record  # noqa: E402
from tansaku.results import Store, write_derived  # noqa: E402
from tansaku.results import pack as packing  # noqa: E402
from tansaku.results.atomic import fsync_path  # noqa: E402
from tansaku.results.read import committed_rows, open_for_reading  # noqa: E402

BATCH = 256


def _append(path: Path, records: list, fast: bool) -> None:
    for p in (path, Path(f"{path}.derived.h5")):
        p.unlink(missing_ok=True)
    saved = packing.FAST_BATCH
    packing.FAST_BATCH = saved if fast else len(records) + 1
    try:
        with Store.open(path, campaign_text="benchmark") as store:
            for a in range(0, len(records), BATCH):
                store.append(records[a : a + BATCH])
    finally:
        packing.FAST_BATCH = saved


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


def run(repeats: int, quick: bool) -> list[Row]:
    n = 4_000 if quick else 20_000
    records = [synthetic_record(k, natoms=26) for k in range(n)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.h5"
        base, fast = side_by_side(lambda: _append(path, records, False), lambda: _append(path, records, True),
                                  repeats)
        rows.append(Row("store", f"append {n} x 26-atom records, batch {BATCH}", "record by record",
                        "pack_fast", base, fast,
                        f"records/s fast: {n / sorted(fast)[len(fast) // 2]:.0f}, "
                        f"{path.stat().st_size / n:.0f} B/record"))
        rng = np.random.default_rng(0)
        columns = {"e_above_hull": rng.exponential(0.3, n), "rank": np.arange(n)}
        base, fast = side_by_side(lambda: _copy_with_derived(path, columns),
                                  lambda: write_derived(path, columns), repeats)
        rows.append(Row("store", f"rank: store 2 derived columns of {n} rows", "copy of the store",
                        "side file", base, fast, "the side file's cost does not grow with the records' size"))
    return rows
