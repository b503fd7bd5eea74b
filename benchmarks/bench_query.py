"""Query speed on a large results file, against plain h5py + numpy reads of the same datasets.

    python benchmarks/bench_query.py [--records 1000000] [--file /tmp/tansaku_bench_query_1000000.h5] [--repeat 5]

Builds (once; cached at --file, rebuilt when missing, of another size or of an older schema version) a
store of synthetic 26-atom records (tests/synthetic.py, written by Store.append_packed in big batches)
with derived columns ``e_above_hull`` and ``mu0_ms`` (write_derived, in the side file), then times
queries:

- cold: in a new process, so the file is opened and every dataset read for the first time (the
  operating system's page cache is warm: this measures tansaku + HDF5, not the disk);
- warm: the best of --repeat calls in this process.

Each figure is shown next to baselines in plain h5py + numpy (+ hdf5plugin, as docs/hdf5_schema.md
shows): one reads the datasets the filters use (derived columns from the side file) and computes the
mask (no output); the other also reads the output text columns of the hits.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's tansaku; tests/synthetic.py

import h5py  # noqa: E402
import hdf5plugin  # noqa: E402,F401  (registers Blosc, which schema version 3 uses)
import numpy as np  # noqa: E402

from tansaku.results import SCHEMA_VERSION, Store, committed_rows, derived_columns, open_for_reading  # noqa: E402
from tansaku.results.derived import write_derived  # noqa: E402
from synthetic import synthetic_batch  # noqa: E402

BATCH = 50_000
SEED = 20261201
TWO_FILTERS = ["e_above_hull <= 0.05", "mu0_ms >= 1.5"]
ELEMENTS = ["elements has Fe,Co"]  # Z 26 and 27
OUTPUT = ["task_id", "label", "formula", "status"]  # read for the hits by the "same output" baseline
# name: (query keywords, baseline filter)
QUERIES = {
    "two filters": (dict(where=TWO_FILTERS), "two"),
    "two filters, row numbers only": (dict(where=TWO_FILTERS, columns=[], ids=False), "two"),
    "two filters, top 50 by mu0_ms": (dict(where=TWO_FILTERS, sort="-mu0_ms", limit=50), "two"),
    "elements has Fe,Co": (dict(where=ELEMENTS), "elements"),
    "elements has Fe,Co, row numbers only": (dict(where=ELEMENTS, columns=[], ids=False), "elements"),
    "elements + e_above_hull, top 50": (dict(where=ELEMENTS + ["e_above_hull <= 0.05"], sort="e_above_hull",
                                             limit=50), "elements"),
}


def derived_values(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    e_hull = rng.exponential(0.3, n)
    e_hull[rng.random(n) < 0.02] = np.nan  # rows that could not be placed on the hull
    return {"e_above_hull": e_hull, "mu0_ms": np.clip(rng.normal(0.8, 0.4, n), 0, None)}


def build(path: Path, n: int) -> None:
    """Write ``n`` synthetic records (26 atoms) in batches, then the derived columns."""
    for p in (path, path.with_name(path.name + ".lock")):
        p.unlink(missing_ok=True)
    t = time.perf_counter()
    with Store.open(path, campaign_text="query benchmark") as store:
        for a in range(0, n, BATCH):
            store.append_packed(synthetic_batch(a, min(a + BATCH, n)))
            print(f"\r  {min(a + BATCH, n)} records written", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    write_derived(path, derived_values(n), {"settings": json.dumps({"benchmark": True})})
    print(f"  built {path} in {time.perf_counter() - t:.0f} s ({path.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)


def cached(path: Path, n: int) -> bool:
    try:
        with open_for_reading(path) as f:
            return committed_rows(f) == n and {"e_above_hull", "mu0_ms"} <= set(derived_columns(f)) \
                and int(f.attrs["schema_version"]) == SCHEMA_VERSION
    except (OSError, Exception):  # missing, or a broken file from an interrupted build
        return False


def _two_filters(f: h5py.File, n: int) -> np.ndarray:
    with h5py.File(f"{f.filename}.derived.h5", "r", locking=False) as side:  # the ranking's side file
        e, m = side["derived/e_above_hull"][:n], side["derived/mu0_ms"][:n]
    return np.flatnonzero((e <= 0.05) & (m >= 1.5))


def _text(f: h5py.File, name: str, n: int, rows: np.ndarray) -> list[str]:
    """Text column ``name`` at ``rows``: fixed-width bytes (status, kind) or [start, stop) spans into
    /text/<name>, as docs/hdf5_schema.md reads them."""
    values = f[f"records/{name}"][:n][rows]
    if name not in f["text"]:
        return np.char.decode(values, "utf-8").tolist()
    data = f["text"][name][: int(values[:, 1].max())].tobytes() if len(values) else b""
    return [data[a:b].decode("utf-8") for a, b in values]


def _elements(f: h5py.File, n: int) -> np.ndarray:
    start, count = f["records/atom_start"][:n], f["records/natoms"][:n]
    numbers = f["atoms/numbers"][: int((start + count).max())]
    end = start + count
    hit = np.ones(n, bool)
    for z in (26, 27):
        cs = np.concatenate([[0], np.cumsum(numbers == z)])
        hit &= cs[end] > cs[start]
    return np.flatnonzero(hit)


FILTERS = {"two": _two_filters, "elements": _elements}


def baseline(path: Path, which: str, output: bool) -> int:
    """Plain h5py + numpy: the filter columns, a mask; with ``output``, also the OUTPUT columns of the
    hits, read the way docs/hdf5_schema.md shows (whole columns, then indexed) and decoded."""
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        n = int(f["committed"][0])
        rows = FILTERS[which](f, n)
        if output:
            for name in OUTPUT:
                _text(f, name, n, rows)
        return len(rows)


def run_one(path: Path, name: str) -> tuple[float, int]:
    from tansaku.results.query import query

    t = time.perf_counter()
    rows = len(query(path, **QUERIES[name][0]))
    return time.perf_counter() - t, rows


def run_baseline(path: Path, name: str, output: bool = False) -> tuple[float, int]:
    t = time.perf_counter()
    rows = baseline(path, QUERIES[name][1], output)
    return time.perf_counter() - t, rows


def run_baseline_output(path: Path, name: str) -> tuple[float, int]:
    return run_baseline(path, name, output=True)


def cold(path: Path, what: str, name: str) -> tuple[float, int]:
    """Time one call in a fresh interpreter (imports done before the clock starts)."""
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); sys.argv = ['x']\n"
        f"import benchmarks.bench_query as b, tansaku.results.query, pandas\n"
        f"from pathlib import Path\n"
        f"print(*b.{what}(Path({str(path)!r}), {name!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    seconds, rows = out.stdout.split()
    return float(seconds), int(rows)


def warm(path: Path, what: str, name: str, repeat: int) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(repeat):
        seconds, rows = globals()[what](path, name)
        best = min(best, seconds)
    return best, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--file", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    path = args.file or Path(f"/tmp/tansaku_bench_query_{args.records}.h5")
    if not cached(path, args.records):
        build(path, args.records)

    print(f"{args.records} records, {path.stat().st_size / 1e6:.0f} MB: {path}")
    print(f"{'query':<38} {'mode':<5} {'rows':>6} {'tansaku s':>9} {'h5py filter s':>13} {'ratio':>6}"
          f" {'h5py +output s':>14} {'ratio':>6}")
    for name, (kw, _) in QUERIES.items():
        plain = kw.get("columns") == [] or kw.get("limit") is not None
        for mode in ("cold", "warm"):
            time_it = (lambda what: cold(path, what, name)) if mode == "cold" else \
                (lambda what: warm(path, what, name, args.repeat))
            (q, rows), (b, _) = time_it("run_one"), time_it("run_baseline")
            line = f"{name:<38} {mode:<5} {rows:>6} {q:>9.3f} {b:>13.3f} {q / b:>6.1f}"
            if not plain:
                o, _ = time_it("run_baseline_output")
                line += f" {o:>14.3f} {q / o:>6.2f}"
            print(line, flush=True)
    print("h5py filter: opens the file, reads only the columns the filters use, numpy mask (no output);")
    print("h5py +output: also reads task_id, label, formula, status of the hits (whole columns, then indexed).")
    print("tansaku reads status, the filter columns, and the output columns of the hits (point reads when sparse)")
    print("into a DataFrame: by default task_id, label, formula, status and every derived column.")


if __name__ == "__main__":
    main()
