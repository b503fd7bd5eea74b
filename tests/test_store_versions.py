"""Schema versions: version 3 (ragged text, Blosc) read by plain h5py + hdf5plugin as documented; version-2
files (gzip) and version-1 files (written by a frozen plain-h5py writer, tests/v1_store.py) read, queried,
appended in their own layout, crash-safe, and upgraded only on request; a newer version is refused with a
clear error; ragged text helpers."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from synthetic import record_differences, synthetic_record
from v1_store import as_stored_in_v1, write_v1_store

from tansaku.results import (
    SCHEMA_VERSION,
    Store,
    StoreError,
    iter_records,
    read_columns,
    read_record,
    read_table,
    write_derived,
)
from tansaku.results.query import query, to_structures
from tansaku.results.ragged import from_bytes, from_fixed, to_fixed
from tansaku.results.recover import write_new_file
from tansaku.results.schema import new_file_attrs
from tansaku.results.store import upgrade

REPO = Path(__file__).resolve().parents[1]


def _records(ks, status="ok", **kw):
    return [synthetic_record(k, status, **kw) for k in ks]


def _version(path: Path) -> int:
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        return int(f.attrs["schema_version"])


def _cli(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "tansaku", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


def _new_store(path: Path, version: int) -> Path:
    """An empty store of schema ``version`` (2 or 3) at ``path``, as tansaku writes it."""
    write_new_file(path, new_file_attrs("", version=version))
    return path


def _codecs(path: Path) -> set[str]:
    """The compression of the datasets of /records, /atoms and /text: "gzip" (shuffle + deflate) or "blosc"
    (the text tables /settings and /campaigns are small and always gzipped)."""
    names = {h5py.h5z.FILTER_DEFLATE: "gzip", h5py.h5z.FILTER_SHUFFLE: "gzip", 32001: "blosc"}
    found = set()
    with h5py.File(path, "r", swmr=True, locking=False) as f:
        for group in ("records", "atoms", "text"):
            for ds in f[group].values():
                dcpl = ds.id.get_create_plist()
                found |= {names.get(dcpl.get_filter(i)[0], "other") for i in range(dcpl.get_nfilters())}
    return found


def _assert_stored(path: Path, expected) -> None:
    stored = list(iter_records(path))
    assert [r.task_id for r in stored] == [r.task_id for r in expected]
    for s, e in zip(stored, expected):
        assert record_differences(s, e) == [], s.task_id


# ------------------------------------------------------------------------------------ versions 3 and 2

def test_version_3_reads_with_plain_h5py_as_documented(tmp_path):
    """The recipe of docs/hdf5_schema.md, without tansaku (h5py + hdf5plugin), gives back every stored value."""
    import hdf5plugin  # noqa: F401  (the recipe's first line: registers Blosc)

    path = tmp_path / "v3.h5"
    expected = _records(range(40)) + _records(range(40, 50), "failed")
    expected[3] = dataclasses.replace(expected[3], params='{"calculator": "gpaw", "ecut": 500}' * 40,
                                      history="ü" * 3000)  # long: cut to the column's width
    with Store.open(path) as store:
        store.append(expected[:7])
        store.append(expected[7:])
    assert _version(path) == SCHEMA_VERSION == 3
    assert _codecs(path) == {"blosc"}  # Blosc (LZ4 + shuffle) only

    with h5py.File(path, "r", swmr=True) as f:
        n = int(f["committed"][0])
        rec = f["records"]

        def text(name):
            span, buf = rec[name][:n], f["text"][name]
            data = buf[: span[:, 1].max()].tobytes() if n else b""
            return [data[a:b].decode("utf-8") for a, b in span]

        cols = {k: (text(k) if k in f["text"] else rec[k][:n]) for k in rec if rec[k].attrs.get("text") or rec[k].ndim == 1}
        i = 5
        s, m = rec["atom_start"][i], rec["natoms"][i]
        numbers, positions = f["atoms/numbers"][s:s + m], f["atoms/positions"][s:s + m]
    assert n == 50 and {"task_id", "label", "params", "error"} <= set(cols)
    assert cols["task_id"] == [r.task_id for r in expected]
    assert cols["label"][1] == "Fe₂Co-1 α✓ é"
    assert [s.decode() for s in cols["status"]] == [r.status for r in expected]
    assert len(cols["params"][3].encode()) <= 1024 and cols["params"][3].endswith("…")
    assert np.array_equal(cols["energy"], [r.energy for r in expected], equal_nan=True)
    assert np.array_equal(numbers, expected[5].numbers) and np.array_equal(positions, expected[5].positions)
    _assert_stored(path, [dataclasses.replace(r, params=cols["params"][3], history=cols["history"][3]) if k == 3
                          else r for k, r in enumerate(expected)])


@pytest.mark.parametrize("version", [2, 3])
def test_ragged_versions_rewrite_failed_rows_in_their_own_layout(tmp_path, version):
    path = _new_store(tmp_path / "v.h5", version)
    with Store.open(path) as store:
        store.append(_records(range(6), "failed", natoms=2))
        store.append(_records([2, 4], natoms=9) + _records([6]))  # rewritten in place: new atoms and text
    table = read_table(path)
    assert _version(path) == version and _codecs(path) == {2: {"gzip"}, 3: {"blosc"}}[version]
    assert list(table["status"]) == ["failed", "failed", "ok", "failed", "ok", "failed", "ok"]
    _assert_stored(path, [synthetic_record(k, "failed", natoms=2) if k % 2 or k == 0 else synthetic_record(k, natoms=9)
                          for k in range(6)] + [synthetic_record(6)])


def test_version_2_is_read_appended_in_its_own_layout_and_upgraded(tmp_path):
    """A version-2 file (gzip) stays version 2 when appended to and rewritten (a changed campaign text,
    crash recovery); ``upgrade`` makes it version 3 (Blosc) with the same records and ranking."""
    path = _new_store(tmp_path / "v2.h5", 2)
    expected = _records(range(300), natoms=26) + _records(range(300, 310), "failed")
    with Store.open(path) as store:
        store.append(expected[:200])
        store.append(expected[200:])
    with Store.open(path, campaign_text="[campaign]\nname = 'changed'\n") as store:
        store.append(_records([305]))  # a failed row rewritten in place
    expected[305] = synthetic_record(305)
    assert _version(path) == 2 and _codecs(path) == {"gzip"}
    _assert_stored(path, expected)
    write_derived(path, {"score": np.arange(310.0)})
    hits = query(path, where=["prototype == B2", "score < 100"], sort="-score", limit=3, columns=["label"])
    assert list(hits.index) == [r for r in range(100) if expected[r].prototype == "B2"][::-1][:3]
    assert upgrade(path) == (2, 3, 310)
    assert _version(path) == 3 and _codecs(path) == {"blosc"}
    _assert_stored(path, expected)
    assert list(read_columns(path, ["score"])["score"]) == list(np.arange(310.0))


def test_version_3_reads_through_hdf5_plugin_path_alone(tmp_path):
    """What h5dump and C programs do (docs/hdf5_schema.md): HDF5 loads Blosc from HDF5_PLUGIN_PATH, here
    in an h5py that never imports hdf5plugin."""
    import hdf5plugin

    path = tmp_path / "v3.h5"
    with Store.open(path) as store:
        store.append(_records(range(5)))
    code = ("import sys, h5py; f = h5py.File(sys.argv[1], 'r'); assert 'hdf5plugin' not in sys.modules; "
            "a, b = f['records/label'][3]; print(f['text/label'][a:b].tobytes().decode())")
    env = {**os.environ, "HDF5_PLUGIN_PATH": hdf5plugin.PLUGIN_PATH}
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == synthetic_record(3).label, out.stderr
    env.pop("HDF5_PLUGIN_PATH")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode != 0  # without the plugin the compressed datasets cannot be read


def test_version_3_without_hdf5plugin_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "v3.h5"
    with Store.open(path) as store:
        store.append(_records(range(3)))
    monkeypatch.setitem(sys.modules, "hdf5plugin", None)  # as if it were not installed
    with pytest.raises(StoreError, match="Blosc: install the hdf5plugin package"):
        read_table(path)
    with pytest.raises(StoreError, match="Blosc: install the hdf5plugin package"):
        Store.open(tmp_path / "new.h5")


def test_damaged_text_spans_are_an_error(tmp_path):
    path = tmp_path / "v2.h5"
    with Store.open(path) as store:
        store.append(_records(range(8)))
    with h5py.File(path, "r+") as f:
        f["records/label"][3] = [10**9, 10**9 + 5]
    with pytest.raises(StoreError, match="v2.h5: damaged: /records/label points outside /text/label"):
        read_table(path)
    with pytest.raises(StoreError, match="v2.h5: damaged"):
        query(path, where=["energy < 0"], columns=["label"])


def test_committed_beyond_the_written_rows_is_detected(tmp_path):
    path = tmp_path / "v2.h5"
    with Store.open(path) as store:
        store.append(_records(range(8)))
    with h5py.File(path, "r+") as f:  # a version-2 writer extends its datasets ahead of the rows it wrote
        f["records/task_id"].resize(64, axis=0)
        f["committed"][0] = 20
    with pytest.raises(StoreError, match="/committed says 20 rows but row 19 was never written"):
        read_table(path)


def test_top_rows_read_only_their_text(tmp_path):
    """Point reads of a few scattered rows give the same values as whole-column reads."""
    path = tmp_path / "v2.h5"
    expected = _records(range(3000), natoms=2)
    with Store.open(path) as store:
        for a in range(0, 3000, 500):
            store.append(expected[a:a + 500])
    write_derived(path, {"score": np.arange(3000.0)[::-1]})
    top = query(path, sort="score", limit=5, columns=["label", "worker", "params", "energy", "kind"])
    assert list(top.index) == [2999, 2998, 2997, 2996, 2995]
    assert list(top["label"]) == [expected[i].label for i in top.index]
    assert list(top["worker"]) == [expected[i].worker for i in top.index]
    assert list(top["kind"]) == [expected[i].kind for i in top.index]
    some = query(path, where=['label ~ "-17 α"'], columns=["task_id"])
    assert list(some["task_id"]) == [r.task_id for r in expected if "-17 α" in r.label]


# ---------------------------------------------------------------------------------------------- version 1

@pytest.fixture
def v1_file(tmp_path) -> tuple[Path, list]:
    path = tmp_path / "v1.h5"
    expected = [as_stored_in_v1(r) for r in _records(range(30)) + _records(range(30, 36), "failed")]
    write_v1_store(path, expected, campaign="[campaign]\nname = 'old'\n")
    return path, expected


def test_version_1_is_read_by_every_reader(v1_file):
    path, expected = v1_file
    _assert_stored(path, expected)
    assert read_table(path)["label"][1] == "Fe₂Co-1 α✓ é"
    fields, atoms = read_record(path, expected[4].task_id)
    assert fields["formula"] == expected[4].formula and len(atoms) == expected[4].natoms
    hits = query(path, where=["prototype == B2", "status == ok"], sort="-energy", limit=3)
    assert list(hits["task_id"]) == [r.task_id for r in expected if r.prototype == "B2" and r.status == "ok"][:3]
    assert len(to_structures(path, [expected[7].task_id])[0]) == expected[7].natoms
    later = query(path, sort="energy", limit=2, columns=["stage_name", "k1_fine"])  # columns the file predates
    assert list(later["stage_name"]) == ["", ""] and np.isnan(later["k1_fine"]).all()
    for command in (("status", path), ("query", path, "--where", "energy < -1"), ("show", path, "t000000004")):
        result = _cli(*command)
        assert result.returncode == 0, (command, result.stderr)


def test_version_1_is_appended_in_its_own_layout(v1_file):
    path, expected = v1_file
    with Store.open(path, campaign_text="[campaign]\nname = 'changed'\n") as store:  # a rewrite: still v1
        store.append(_records(range(36, 40)) + [synthetic_record(31)])  # new rows + a failed row rewritten
        store.append(_records(range(40, 50)))
    assert _version(path) == 1
    with h5py.File(path, "r") as f:
        assert "text" not in f and f["records/label"].dtype == np.dtype("S128")
    expected = expected[:31] + [synthetic_record(31)] + expected[32:] + _records(range(36, 50))
    _assert_stored(path, expected)


def test_upgrade_converts_version_1_and_keeps_the_ranking(v1_file):
    path, expected = v1_file
    write_derived(path, {"score": np.arange(36.0)})
    assert upgrade(path) == (1, 3, 36)
    assert _version(path) == 3 and _codecs(path) == {"blosc"}
    _assert_stored(path, expected)
    assert list(read_columns(path, ["score"])["score"]) == list(np.arange(36.0))  # the side file still applies
    assert upgrade(path) == (3, 3, 36)  # nothing to do
    with Store.open(path) as store:
        store.append(_records(range(36, 40)))
    _assert_stored(path, expected + _records(range(36, 40)))


def test_upgrade_command(v1_file):
    path, expected = v1_file
    result = _cli("upgrade", path)
    assert result.returncode == 0, result.stderr
    assert "from schema version 1 to 3" in result.stdout and _version(path) == 3
    assert "already" in _cli("upgrade", path).stdout
    _assert_stored(path, expected)
    missing = path.with_name("missing.h5")
    result = _cli("upgrade", missing)
    assert result.returncode != 0 and "missing.h5: does not exist" in result.stderr
    assert "Traceback" not in result.stderr and not list(path.parent.glob("missing*"))


def test_newer_schema_version_is_a_clear_error(v1_file, tmp_path):
    path, _ = v1_file
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    before = path.read_bytes()
    message = f"schema version {SCHEMA_VERSION + 1}, newer than this tansaku"
    with pytest.raises(StoreError, match=message):
        read_table(path)
    with pytest.raises(StoreError, match=message):
        Store.open(path)
    with pytest.raises(StoreError, match=message):
        upgrade(path)
    for command in (("status", path), ("query", path), ("upgrade", path)):
        result = _cli(*command)
        assert result.returncode != 0 and "Traceback" not in result.stderr, command
        assert "newer than this tansaku" in result.stderr, (command, result.stderr)
    assert path.read_bytes() == before


# ------------------------------------------------------------------------------------------- ragged text

def test_ragged_text_round_trips_against_python():
    rng = np.random.default_rng(3)
    words = ["", "a", "Fe₂Co", "x" * 70, "収束", "b\x00c"]
    values = [words[i].encode() for i in rng.integers(0, len(words), 200)]
    text = from_bytes(values)
    width = max(map(len, values))
    expected = np.array(values, dtype=f"S{width}")  # numpy's own fixed-width bytes (trailing NULs dropped)
    assert np.array_equal(text.fixed(width), expected)
    start = text.offsets
    assert list(to_fixed(text.data, start, start + text.lengths)) == list(expected)
    back = from_fixed(expected)
    assert [back.data[a:b].tobytes() for a, b in zip(back.offsets, back.offsets + back.lengths)] == \
        [v.rstrip(b"\x00") for v in values]
    order = rng.permutation(200)  # spans in any order, as after rewrites
    assert list(to_fixed(text.data, start[order], (start + text.lengths)[order])) == list(expected[order])
    with pytest.raises(ValueError, match="outside"):
        to_fixed(text.data, np.array([0]), np.array([len(text.data) + 1]))


def test_top_rows_without_a_full_sort_equal_the_full_sort():
    """query's partial selection of the top ``limit`` rows gives the full stable sort's first rows (ties in
    row order, NaN last), ascending and descending, floats and integers."""
    from tansaku.results.query import _order, _top

    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 200))
        values = rng.integers(0, 10, n).astype(float)
        values[rng.random(n) < 0.2] = np.nan
        if trial % 3 == 0:
            values = rng.integers(-5, 5, n)
        for descending in (False, True):
            for limit in (0, 1, 5, 50):
                top = _top(values, descending, limit)
                if top is not None:
                    assert list(top) == list(_order(values, descending)[:limit])


@pytest.mark.parametrize("version", [2, 3])
def test_compaction_of_a_ragged_file_in_the_writers_process(tmp_path, caplog, version):
    """Close compacts in the process that wrote the file (HDF5 shares the open file within a process);
    reading the text spans through a second, refreshed handle used to fail there ("duplicate key")."""
    path = _new_store(tmp_path / "v.h5", version)
    expected = _records(range(1024), natoms=26)
    store = Store.open(path)
    for a in range(0, 1024, 32):
        store.append(expected[a:a + 32])
    inode = path.stat().st_ino
    store.close(compact=True)
    assert "could not compact" not in caplog.text
    assert path.stat().st_ino != inode  # rewritten
    _assert_stored(path, expected)


def test_whole_chunks_compressed_by_the_writer_replace_what_hdf5_cached(tmp_path):
    """A large write compresses whole chunks itself (H5Dwrite_chunk) while HDF5 may still cache a dirty
    partial copy of one of them (rows of a failed append are written again): the new values win, and
    the chunks read back with plain h5py."""
    from tansaku.results.schema import Stored, _create_appendable
    from tansaku.results.writer import ColumnWriter

    path = tmp_path / "direct.h5"
    new = np.arange(3000).reshape(1500, 2)
    with h5py.File(path, "w", libver="latest") as f:
        _create_appendable(f, "a", Stored(np.dtype("<i8"), (2,), 512, 1))
        column = ColumnWriter(f["a"], grow=True, direct=True)
        column.write(0, np.full((100, 2), 7))  # a partial first chunk, dirty in HDF5's cache
        column.write(0, new)  # chunks 0 and 1 whole: compressed here and written directly
    with h5py.File(path, "r") as f:
        assert np.array_equal(f["a"][:1500], new) and f["a"].compression == "gzip"


def test_a_forked_child_appends_with_its_own_compression_threads(tmp_path):
    """The compression threads of a parent that appended are not inherited by a forked child (e.g. a
    packed job's worker processes): the child gets its own, instead of waiting for ever."""
    import multiprocessing

    with Store.open(_new_store(tmp_path / "parent.h5", 2)) as store:  # version 2: gzip in threads
        store.append(_records(range(600), natoms=26))  # whole chunks: the parent's threads start
    child = multiprocessing.get_context("fork").Process(target=_append_in_child, args=(tmp_path / "child.h5",))
    child.start()
    child.join(60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0
    _assert_stored(tmp_path / "child.h5", _records(range(600), natoms=26))


def _append_in_child(path: Path) -> None:
    with Store.open(_new_store(path, 2)) as store:
        store.append(_records(range(600), natoms=26))
