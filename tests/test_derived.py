"""Derived columns (/derived) on real store files: round trip, padding, the writer lock, kill -9, errors."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tansaku.results import (
    Store,
    StoreLockedError,
    derived_columns,
    iter_records,
    open_for_reading,
    read_columns,
    read_table,
    write_derived,
)
from tansaku.results.derived import copy_derived, derived_attrs, derived_path
from conftest import spawn
from synthetic import record_differences, synthetic_record



def _status(k: int) -> str:
    return "failed" if k % 5 == 2 else "ok"


def _store(path: Path, ks, campaign: str | None = "derived test") -> None:
    with Store.open(path, campaign_text=campaign) as store:
        store.append([synthetic_record(k, _status(k)) for k in ks])


def _columns(n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    k = np.arange(n)
    return {
        "e_above_hull": np.where(k % 6 == 0, np.nan, 0.01 * k + shift),
        "rank": (n - k).astype(np.int64),
        "on_hull": k % 3 == 0,
        "decomposition": np.array([f"Sm{i}Co₅ + Fe" if i % 4 else "" for i in range(n)]),
        "mu0_ms": np.linspace(0.5, 2.0, n, dtype=np.float32),
        "count": np.arange(n, dtype=np.uint16),
    }


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def test_round_trip_with_a_store_written_file(tmp_path):
    path = tmp_path / "r.h5"
    _store(path, range(40))
    with open_for_reading(path) as f:
        file_attrs = dict(f.attrs)
    inode, mtime = path.stat().st_ino, path.stat().st_mtime_ns
    cols = _columns(40)
    write_derived(path, cols, {"settings": '{"max_e_above_hull": 0.1}', "calculator": "emt"})

    assert derived_columns(path) == list(cols)  # in the order written
    back = read_columns(path, list(cols))
    for name, values in cols.items():
        assert _same(back[name], np.asarray(values, dtype=back[name].dtype)), name
    assert back["decomposition"][1] == "Sm1Co₅ + Fe" and back["rank"].dtype == np.int64
    assert back["count"].dtype == np.int64 and back["mu0_ms"].dtype == np.float32

    with open_for_reading(path) as f:
        assert dict(f.attrs) == file_attrs and "derived" not in f  # the store itself is untouched
    assert path.stat().st_ino == inode and path.stat().st_mtime_ns == mtime
    with h5py.File(derived_path(path), "r") as side:  # the side file beside it
        group = side["derived"]
        assert group.attrs["rows"] == 40 and group.attrs["computed"].startswith("20")
        assert group.attrs["settings"] == '{"max_e_above_hull": 0.1}' and group.attrs["calculator"] == "emt"
        assert group.attrs["store_id"] == file_attrs["store_id"]
        assert group["decomposition"].dtype.kind == "S"  # fixed-length UTF-8 like the record strings
        assert h5py.check_string_dtype(group["decomposition"].dtype).encoding == "utf-8"
    for i, rec in enumerate(iter_records(path)):  # the records were copied untouched
        assert record_differences(rec, synthetic_record(i, _status(i))) == [], i

    table = read_table(path)
    assert list(table.columns[-len(cols):]) == list(cols) and "energy" in table and "cell" not in table
    assert table.loc[7, "decomposition"] == "Sm7Co₅ + Fe" and table.loc[7, "task_id"] == "t000000007"
    assert list(read_table(path, ["rank", "status"]).columns) == ["rank", "status"]
    assert set(cols) <= set(read_columns(path))  # all columns by default
    with pytest.raises(KeyError, match="derived columns"):
        read_columns(path, ["nope"])

    write_derived(path, {"score": np.ones(40)})  # replaces the whole group
    assert derived_columns(path) == ["score"]
    assert "settings" not in derived_attrs(path)


def test_rows_appended_after_ranking_are_padded(tmp_path):
    path = tmp_path / "p.h5"
    _store(path, range(10))
    write_derived(path, _columns(10))
    with Store.open(path) as store:  # the copy is a normal store: reopen and append in SWMR mode
        store.append([synthetic_record(k) for k in range(10, 14)])
        during = read_columns(path, ["task_id", "e_above_hull"])  # a reader while the writer has it open
        assert len(during["task_id"]) == 14 and np.isnan(during["e_above_hull"][10:]).all()
    cols = read_columns(path, ["task_id", *_columns(1)])
    assert len(cols["task_id"]) == 14
    assert np.isnan(cols["e_above_hull"][10:]).all() and np.isnan(cols["mu0_ms"][10:]).all()
    assert cols["rank"][10:].tolist() == [-1] * 4 and cols["count"][10:].tolist() == [-1] * 4
    assert cols["on_hull"][10:].tolist() == [False] * 4
    assert cols["decomposition"][10:].tolist() == [""] * 4
    assert cols["rank"][:10].tolist() == list(range(10, 0, -1))
    table = read_table(path)
    assert len(table) == 14 and table.loc[12, "rank"] == -1
    assert [r.task_id for r in iter_records(path)] == [f"t{k:09d}" for k in range(14)]
    assert derived_attrs(path)["rows"] == "10"
    with pytest.raises(ValueError, match="14 committed rows"):
        write_derived(path, _columns(10))
    write_derived(path, _columns(14))
    assert read_columns(path, ["rank"])["rank"][-1] == 1


HOLDER = """
import sys
from tansaku.results import Store
from synthetic import synthetic_record
store = Store.open(sys.argv[1])
store.append([synthetic_record(2)])
print("ready", flush=True)
sys.stdin.read()
"""


def test_refused_while_a_store_writes(tmp_path):
    path = tmp_path / "l.h5"
    _store(path, range(2))
    with Store.open(path):
        with pytest.raises(StoreLockedError, match="being written"):
            write_derived(path, _columns(2))
    proc = spawn(HOLDER, path, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match=rf"pid {proc.pid}\b"):
            write_derived(path, _columns(3))
        assert derived_columns(path) == []
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the killed writer left the file flagged open-for-write: ranking it does not touch it (the next
    # Store.open recovers it), and its committed rows read as before
    write_derived(path, _columns(3))
    with open_for_reading(path) as f:
        assert f["committed"][0] == 3
    assert derived_attrs(path)["rows"] == "3"
    assert [r.task_id for r in iter_records(path)] == ["t000000000", "t000000001", "t000000002"]
    with Store.open(path) as store:
        store.append([synthetic_record(3)])
    assert derived_columns(path) == list(_columns(1))


def test_wrong_columns_are_refused_and_the_file_is_untouched(tmp_path):
    path = tmp_path / "w.h5"
    _store(path, range(5))
    write_derived(path, {"a": np.arange(5.0)})
    inode = path.stat().st_ino
    bad = [
        ({"a": np.arange(5.0), "short": np.arange(4.0)}, r"'short' has 4 values; the store has 5 committed rows"),
        ({"long": np.arange(6)}, r"'long' has 6 values"),
        ({"grid": np.zeros((5, 2))}, r"'grid': expected one value per row"),
        ({"z": np.zeros(5, complex)}, r"'z': dtype complex128 not supported"),
        ({"mixed": np.array([1, "a", 2.0, None, 3], dtype=object)}, r"'mixed': dtype object not supported"),
        ({"energy": np.arange(5.0)}, r"'energy' is taken"),
        ({"elements": np.arange(5.0)}, r"'elements' is taken"),
        ({"two words": np.arange(5.0)}, r"'two words': use letters"),
        ({"a/b": np.arange(5.0)}, r"'a/b': use letters"),
    ]
    for columns, message in bad:
        with pytest.raises(ValueError, match=message):
            write_derived(path, columns)
    with pytest.raises(ValueError, match="rows"):
        write_derived(path, {"b": np.arange(5.0)}, {"rows": "7"})
    assert path.stat().st_ino == inode and derived_columns(path) == ["a"]
    assert not path.with_name(path.name + ".recover.tmp").exists()
    write_derived(path, {})  # an empty group is fine
    assert derived_columns(path) == []


def test_empty_store(tmp_path):
    path = tmp_path / "e.h5"
    _store(path, [])
    write_derived(path, {"x": np.zeros(0), "s": np.array([], dtype=str)})
    assert derived_columns(path) == ["x", "s"]
    assert read_columns(path, ["x", "s"])["s"].shape == (0,)
    assert len(read_table(path)) == 0


KILLED = """
import sys, numpy as np
from tansaku.results.derived import write_derived
path, n, gen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
while True:
    k = np.arange(n)
    text = np.char.add(str(gen) + "-", k.astype(str))
    write_derived(path, {"gen": np.full(n, gen), "value": k * 1.0 + gen, "text": text}, {"generation": str(gen)})
    print(gen, flush=True)
    gen += 1
"""


def test_kill_during_write_derived_leaves_old_or_new(tmp_path):
    path = tmp_path / "k.h5"
    n = 3000
    with Store.open(path) as store:
        for a in range(0, n, 500):
            store.append([synthetic_record(k, natoms=6) for k in range(a, a + 500)])
    write_derived(path, {"gen": np.zeros(n, int), "value": np.arange(n) * 1.0,
                         "text": np.char.add("0-", np.arange(n).astype(str))}, {"generation": "0"})
    inode, size = path.stat().st_ino, path.stat().st_size
    rng = random.Random(20261202)
    gen, mid_copy = 1, 0
    rounds = 0
    while rounds < 6 or (mid_copy == 0 and rounds < 30):  # kills land at random points of the write loop
        out = tmp_path / f"out{rounds}"
        rounds += 1
        with open(out, "w") as stdout:
            proc = spawn(KILLED, path, n, gen, stdout=stdout)
            deadline = time.monotonic() + 120  # start-up (imports) takes seconds on a loaded machine
            while not out.read_text() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.25))  # then kill within a few writes
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        done = [int(x) for x in out.read_text().split("\n")[:-1]]
        last = done[-1] if done else gen - 1
        attrs = derived_attrs(path)  # readable, and one generation throughout
        stored = int(attrs["generation"])
        assert attrs["rows"] == str(n)
        assert path.stat().st_ino == inode and path.stat().st_size == size  # the store is never copied
        assert stored in (last, last + 1), (stored, last)
        cols = read_columns(path, ["gen", "value", "text", "task_id"])
        assert (cols["gen"] == stored).all()
        assert np.array_equal(cols["value"], np.arange(n) + stored)
        assert cols["text"][-1] == f"{stored}-{n - 1}"
        assert cols["task_id"][-1] == f"t{n - 1:09d}"
        mid_copy += Path(f"{derived_path(path)}.tmp").exists()  # killed while writing the side file
        gen = stored + 1
    assert gen > 3 and mid_copy > 0  # several replacements went through, and kills hit one half-built
    for i, rec in enumerate(iter_records(path)):
        if i % 97 == 0:
            assert record_differences(rec, synthetic_record(i, natoms=6)) == [], i
    with Store.open(path) as store:  # a temporary copy left by a kill is removed by the next writer
        store.append([synthetic_record(n)])
    assert not Path(f"{derived_path(path)}.tmp").exists()
    assert read_columns(path, ["gen"])["gen"][-1] == -1


def _legacy_group(path: Path) -> None:
    """/derived inside the store file, as write_derived stored it before the side file existed."""
    with h5py.File(path, "a", libver="latest", locking=False) as f:
        group = f.create_group("derived", track_order=True)
        group.create_dataset("z", data=np.arange(3.0), chunks=(3,), maxshape=(None,))
        group.create_dataset("y", data=np.arange(3), chunks=(3,), maxshape=(None,))
        group.attrs["rows"], group.attrs["settings"] = np.int64(3), "{}"


def test_copy_derived_for_rewrites(tmp_path):
    path, other = tmp_path / "a.h5", tmp_path / "b.h5"
    _store(path, range(3))
    _legacy_group(path)
    with open_for_reading(path) as src, h5py.File(other, "w") as dst:
        copy_derived(src, dst)
        assert list(dst["derived"]) == ["z", "y"] and dst["derived"].attrs["settings"] == "{}"


def test_legacy_in_file_group_is_read_until_a_side_file_replaces_it(tmp_path):
    path = tmp_path / "old.h5"
    _store(path, range(3))
    _legacy_group(path)
    assert derived_columns(path) == ["z", "y"] and derived_attrs(path)["settings"] == "{}"
    assert read_columns(path, ["y"])["y"].tolist() == [0, 1, 2]
    write_derived(path, {"w": np.arange(3.0) * 2})
    assert derived_columns(path) == ["w"] and "settings" not in derived_attrs(path)


def test_side_file_of_an_earlier_store_of_the_same_name_does_not_apply(tmp_path):
    path = tmp_path / "s.h5"
    _store(path, range(3))
    write_derived(path, {"w": np.arange(3.0)})
    side = derived_path(path).read_bytes()
    path.unlink()
    _store(path, range(2))  # a new store of that name: the old ranking is removed with it
    assert not derived_path(path).exists() and derived_columns(path) == []
    derived_path(path).write_bytes(side)  # even if it comes back (copied in by hand), it is ignored
    assert derived_columns(path) == [] and len(read_columns(path, ["task_id"])["task_id"]) == 2


def test_damaged_side_file_is_a_clear_error(tmp_path):
    from tansaku.results import StoreError

    path = tmp_path / "d.h5"
    _store(path, range(3))
    derived_path(path).write_bytes(b"not hdf5 at all")
    with pytest.raises(StoreError, match=r"d\.h5\.derived\.h5"):
        derived_columns(path)


def test_derived_columns_survive_a_store_rewrite(tmp_path):
    path = tmp_path / "c.h5"
    _store(path, range(3), campaign="one")
    write_derived(path, {"z": np.arange(3.0)})
    _store(path, [3], campaign="two")  # a changed campaign text rewrites the file
    assert derived_columns(path) == ["z"]
