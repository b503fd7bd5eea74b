"""The HDF5 results store on real files: round trips, batches, rewrites, refusals, SWMR, the writer lock."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from tansaku import __version__
from tansaku.results import (
    SCHEMA_VERSION,
    RecordNotFoundError,
    Store,
    StoreError,
    StoreLockedError,
    committed_rows,
    count_by,
    iter_records,
    open_for_reading,
    read_columns,
    read_record,
    read_table,
)
from tansaku.results.schema import RECORD_COLUMN_BY_NAME, encode_str
from tansaku.results.tables import campaign_history, current_campaign_text
from conftest import spawn
from synthetic import record_differences, synthetic_record



def _records(ks, status="ok"):
    return [synthetic_record(k, status) for k in ks]


def _shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with open_for_reading(path) as f:
        shapes = {}
        f.visititems(lambda name, obj: shapes.__setitem__(name, obj.shape) if isinstance(obj, h5py.Dataset) else None)
        return shapes


def test_round_trip_all_fields(tmp_path):
    path = tmp_path / "r.h5"
    expected = [synthetic_record(k, "failed" if k % 4 == 1 else "ok") for k in range(30)]
    expected.append(synthetic_record(30, natoms=0))  # an empty structure is stored too
    with Store.open(path, campaign_text="name = 'round trip'") as store:
        store.append(expected)
        assert len(store) == 31
    stored = list(iter_records(path))
    assert [r.task_id for r in stored] == [r.task_id for r in expected]
    for s, e in zip(stored, expected):
        assert record_differences(s, e) == [], s.task_id
    assert stored[0].magmoms is None and np.isnan(stored[1].magmoms[0])  # absent vs partly NaN
    assert stored[1].label == "Fe₂Co-1 α✓ é"
    assert len(expected[29].error.encode()) > 512 and stored[29].error.endswith("…")
    assert len(stored[29].error.encode()) <= 512


def test_error_truncation_keeps_whole_characters():
    column = RECORD_COLUMN_BY_NAME["error"]
    for text in ("é" * 300, "x" + "収" * 200, "a" * 600):
        raw = encode_str(text, column)
        assert len(raw) <= 512
        assert raw.decode("utf-8").endswith("…")  # strict decode: no broken character
    assert encode_str("short é", column) == "short é".encode()
    with pytest.raises(ValueError, match="longer than the 96 bytes"):
        encode_str("t" * 97, RECORD_COLUMN_BY_NAME["task_id"])


def test_read_columns_table_and_record(tmp_path):
    path = tmp_path / "r.h5"
    with Store.open(path) as store:
        store.append(_records(range(12)))
    cols = read_columns(path, ["label", "energy", "cell"])
    assert list(cols) == ["label", "energy", "cell"]
    assert cols["label"][3] == "Fe₂Co-3 α✓ é" and cols["cell"].shape == (12, 3, 3)
    assert np.array_equal(cols["energy"], -0.25 * np.arange(12))
    table = read_table(path)
    assert len(table) == 12 and table.loc[5, "task_id"] == "t000000005" and table.loc[5, "natoms"] == 6
    assert "atom_start" not in table and "stress" not in table
    assert list(read_table(path, columns=["status", "kind"]).columns) == ["status", "kind"]
    assert count_by(path, "kind") == {"candidate": 4, "reference": 4, "competing": 4}

    fields, atoms = read_record(path, "t000000004")
    expected = synthetic_record(4)
    assert fields["row"] == 4 and fields["label"] == expected.label and fields["natoms"] == 5
    assert np.allclose(atoms.positions, expected.positions) and np.allclose(atoms.cell, expected.cell)
    assert list(atoms.pbc) == list(expected.pbc) and list(atoms.numbers) == list(expected.numbers)
    assert np.allclose(atoms.get_initial_magnetic_moments(), expected.magmoms)
    assert atoms.get_potential_energy() == pytest.approx(-1.0)
    with pytest.raises(RecordNotFoundError, match="ambiguous"):
        read_record(path, "t0000000")
    with pytest.raises(RecordNotFoundError, match="no stored task_id"):
        read_record(path, "nope")


def test_unique_prefix_and_candidate_lookup(tmp_path):
    path = tmp_path / "r.h5"
    with Store.open(path) as store:
        store.append(_records([7, 8, 15]))  # candidate ids cand-3, cand-4, cand-7
    assert read_record(path, "t000000015")[0]["row"] == 2
    assert read_record(path, "t00000001")[0]["task_id"] == "t000000015"  # the only id with that prefix
    assert read_record(path, "cand-4")[0]["task_id"] == "t000000008"
    with pytest.raises(RecordNotFoundError, match="3 task_ids match"):
        read_record(path, "t")


def test_append_in_batches_and_reopen(tmp_path):
    path = tmp_path / "b.h5"
    k = 0
    for sizes in ([1, 5], [], [17, 1, 3]):
        with Store.open(path) as store:
            for size in sizes:
                store.append(_records(range(k, k + size)))
                k += size
                assert len(store) == k
            store.append([])
            assert len(store.statuses()) == k
    assert [r.task_id for r in iter_records(path)] == [f"t{i:09d}" for i in range(k)]
    for s in iter_records(path, range(20, 27), block=3):
        assert record_differences(s, synthetic_record(int(s.task_id[1:]))) == []


def test_failed_rows_are_rewritten_in_place(tmp_path):
    path = tmp_path / "f.h5"
    with Store.open(path) as store:
        store.append(_records([0]) + [synthetic_record(1, "failed")] + _records([2]))
        store.append([synthetic_record(3, "failed", natoms=2)] + _records([4]))
        assert store.statuses()["t000000003"] == "failed"
    start_before = read_columns(path, ["atom_start"])["atom_start"]
    with Store.open(path) as store:
        store.append([synthetic_record(3, natoms=6), synthetic_record(5), synthetic_record(1)])
        assert len(store) == 6 and store.statuses()["t000000003"] == "ok" == store.statuses()["t000000001"]
        store.append(_records([6]))  # atoms appended after a rewrite must not clobber it
    cols = read_columns(path, ["task_id", "status", "atom_start", "natoms"])
    assert list(cols["task_id"]) == [f"t{i:09d}" for i in range(7)]
    assert cols["status"][3] == "ok" and cols["natoms"][3] == 6
    assert cols["atom_start"][3] > start_before.max()  # pointed at newly appended atoms
    stored = list(iter_records(path))
    assert record_differences(stored[3], synthetic_record(3, natoms=6)) == []
    for i in (0, 1, 2, 4, 5, 6):
        assert record_differences(stored[i], synthetic_record(i)) == [], i


def test_failed_row_can_fail_again(tmp_path):
    path = tmp_path / "f.h5"
    with Store.open(path) as store:
        store.append([synthetic_record(1, "failed")])
        store.append([synthetic_record(1, "failed", natoms=3)])
        assert len(store) == 1 and store.statuses() == {"t000000001": "failed"}
    assert read_columns(path, ["natoms"])["natoms"].tolist() == [3]


def test_duplicate_ok_row_refused(tmp_path):
    path = tmp_path / "d.h5"
    with Store.open(path) as store:
        store.append(_records(range(3)))
        shapes = _shapes(path)
        with pytest.raises(ValueError, match="t000000001.*already stored with status 'ok'"):
            store.append(_records([5, 1]))
        with pytest.raises(ValueError, match="twice in the same batch"):
            store.append(_records([6, 6]))
        assert len(store) == 3 and "t000000005" not in store
        assert _shapes(path) == shapes
        store.append(_records([5]))
    assert read_columns(path, ["task_id"])["task_id"].tolist() == ["t000000000", "t000000001", "t000000002",
                                                                   "t000000005"]


BAD = {
    "positions": lambda r: dataclasses.replace(r, positions=r.positions[:, :2]),
    "numbers": lambda r: dataclasses.replace(r, numbers=np.stack([r.numbers, r.numbers])),
    "cell": lambda r: dataclasses.replace(r, cell=np.ones(3)),
    "pbc": lambda r: dataclasses.replace(r, pbc=np.ones(2, bool)),
    "magmoms": lambda r: dataclasses.replace(r, magmoms=np.zeros(r.natoms + 1)),
    "stress": lambda r: dataclasses.replace(r, stress=np.zeros((3, 3))),
    "status": lambda r: dataclasses.replace(r, status="done"),
    "label": lambda r: dataclasses.replace(r, label="é" * 100),
    "steps": lambda r: dataclasses.replace(r, steps=2.5),
    "energy": lambda r: dataclasses.replace(r, energy="low"),
    "kind": lambda r: dataclasses.replace(r, kind=None),
}


@pytest.mark.parametrize("field", list(BAD))
def test_bad_record_rejected_and_file_unchanged(tmp_path, field):
    path = tmp_path / "bad.h5"
    with Store.open(path) as store:
        store.append(_records(range(4)) + [synthetic_record(4, "failed")])
        before, shapes = read_columns(path), _shapes(path)
        batch = [synthetic_record(10), BAD[field](synthetic_record(11)), synthetic_record(4)]
        with pytest.raises(ValueError, match=rf"'t000000011'.*'{field}'"):
            store.append(batch)
        assert len(store) == 5 and "t000000010" not in store and store.statuses()["t000000004"] == "failed"
        assert _shapes(path) == shapes  # nothing was even written beyond the committed rows
        after = read_columns(path)
        for name in before:
            assert np.array_equal(before[name], after[name], equal_nan=before[name].dtype.kind == "f"), name
        store.append([synthetic_record(10)])  # still usable
        assert len(store) == 6


def test_attributes_and_campaign_update(tmp_path):
    path = tmp_path / "a.h5"
    with Store.open(path, campaign_text="name = 'one'") as store:
        store.append(_records(range(3)))
    with open_for_reading(path) as f:
        attrs = dict(f.attrs)
    assert attrs["schema_version"] == SCHEMA_VERSION and attrs["tansaku_version"] == __version__
    assert attrs["campaign"] == "name = 'one'" and attrs["created"].startswith("20")
    with Store.open(path) as store:  # no text: keep the stored one
        assert len(store) == 3
    inode = path.stat().st_ino
    with Store.open(path, campaign_text="name = 'two' # 改") as store:
        store.append(_records([3]))
    assert path.stat().st_ino == inode  # a new campaign text is an entry of /campaigns, not a rewrite
    assert current_campaign_text(path) == "name = 'two' # 改"
    assert [e.text for e in campaign_history(path)] == ["name = 'one'", "name = 'two' # 改"]
    with h5py.File(path, "r") as f:  # a cleanly closed file opens without swmr too
        assert f.attrs["campaign"] == "name = 'one'" and f.attrs["created"] == attrs["created"]
        assert f["committed"][0] == 4
    assert [r.task_id for r in iter_records(path)] == [f"t{i:09d}" for i in range(4)]


def test_not_a_store(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f["x"] = [1]
    with pytest.raises(StoreError, match="not a tansaku results store"):
        read_columns(path)
    with pytest.raises(StoreError, match="not a tansaku results store"):
        Store.open(path)


WRITER = """
import sys, time
from tansaku.results import Store
from synthetic import synthetic_record
with Store.open(sys.argv[1]) as store:
    for b in range(int(sys.argv[2])):
        store.append([synthetic_record(2 * b), synthetic_record(2 * b + 1)])
        if b == 0:
            print("started", flush=True)
        time.sleep(0.002)
"""


def test_reading_while_another_process_appends(tmp_path):
    path = tmp_path / "swmr.h5"
    with Store.open(path) as store:
        store.append(_records([0, 1]))
    early = open_for_reading(path)  # a reader holding the file must not block the writer
    proc = spawn(WRITER.replace("2 * b", "2 * b + 2"), path, 400, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "started"
        seen, last = [], 0
        while proc.poll() is None:
            cols = read_columns(path, ["task_id", "energy", "natoms"])
            n = len(cols["task_id"])
            assert n >= last
            assert cols["task_id"].tolist() == [f"t{i:09d}" for i in range(n)]
            assert np.array_equal(cols["energy"], -0.25 * np.arange(n))
            assert np.array_equal(cols["natoms"], 1 + np.arange(n) % 7)
            seen.append(n)
            last = n
            assert committed_rows(early) >= n  # the long-lived handle refreshes too
        assert proc.wait() == 0
        assert len(set(seen)) > 3, seen  # we really read while it was writing
        assert committed_rows(early) == 802
    finally:
        early.close()
        proc.kill()
    stored = list(iter_records(path))
    assert len(stored) == 802
    assert all(record_differences(s, synthetic_record(i)) == [] for i, s in enumerate(stored))


HOLDER = """
import sys
from tansaku.results import Store
from synthetic import synthetic_record
store = Store.open(sys.argv[1])
store.append([synthetic_record(0), synthetic_record(1)])
print("ready", flush=True)
sys.stdin.read()
"""


def test_second_writer_refused_then_crashed_writer_recovered(tmp_path):
    path = tmp_path / "lock.h5"
    proc = spawn(HOLDER, path, stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError, match=rf"being written by another process \(pid {proc.pid}\b"):
            Store.open(path)
        assert len(read_columns(path)["task_id"]) == 2  # readers are not blocked
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r+")  # the kill left the file flagged: HDF5 itself refuses it
    with Store.open(path, campaign_text="after crash") as store:  # lock free + flagged file => recovery
        assert store.statuses() == {"t000000000": "ok", "t000000001": "ok"}
        store.append(_records([2]))
        with pytest.raises(StoreLockedError):
            Store.open(path)  # a second Store in the same process is refused as well
    assert not path.with_name(path.name + ".recover.tmp").exists()
    with h5py.File(path, "r") as f:
        assert f["committed"][0] == 3
    assert current_campaign_text(path) == "after crash"


def test_close_compacts_a_file_bloated_by_small_appends(tmp_path):
    path = tmp_path / "c.h5"
    store = Store.open(path, campaign_text="compact me")
    for k in range(400):
        store.append([synthetic_record(k, natoms=8)])
    bloated = path.stat().st_size
    store.close()
    assert path.stat().st_size < bloated / 3
    stored = list(iter_records(path))
    assert len(stored) == 400
    assert all(record_differences(s, synthetic_record(i, natoms=8)) == [] for i, s in enumerate(stored))
    with open_for_reading(path) as f:
        assert f.attrs["campaign"] == "compact me"
    assert [e.text for e in campaign_history(path)] == ["compact me"]
    inode = path.stat().st_ino
    with Store.open(path) as store:
        store.append([synthetic_record(400)])
    assert path.stat().st_ino == inode  # a file without much leaked space is not rewritten on close


def test_pack_fast_equals_record_by_record_packing():
    """The column-by-column packing of large batches gives exactly the Batch of the per-record path."""
    from tansaku.results.pack import pack_fast, pack_records

    records = [synthetic_record(k, "failed" if k % 7 == 3 else "ok") for k in range(300)]
    records += [synthetic_record(k, natoms=26) for k in range(300, 320)]
    records[5] = dataclasses.replace(records[5], energy=np.float32(-1.5), steps=np.int64(7),
                                     converged=np.bool_(True), numbers=records[5].numbers.astype(np.uint8))
    records[6] = dataclasses.replace(records[6], numbers=np.zeros(0, int), positions=np.zeros((0, 3)),
                                     magmoms=None)
    slow, fast = pack_records(records), pack_fast(records)
    assert fast is not None and fast.task_ids == slow.task_ids
    for part in ("rows", "atoms"):
        a, b = getattr(slow, part), getattr(fast, part)
        assert a.keys() == b.keys()
        for name in a:
            assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
            assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name
    assert slow.text.keys() == fast.text.keys()
    for name, text in slow.text.items():
        assert np.array_equal(text.data, fast.text[name].data), name
        assert np.array_equal(text.lengths, fast.text[name].lengths), name
    # anything not plainly valid goes to the per-record path, which names the record and field
    bad = [dataclasses.replace(records[0], steps=1.5), dataclasses.replace(records[0], label=3),
           dataclasses.replace(records[0], stress=np.zeros(5)), dataclasses.replace(records[0], status="x"),
           dataclasses.replace(records[0], numbers=np.array([1, 200])), dataclasses.replace(records[0], kind="k" * 17)]
    for r in bad:
        assert pack_fast([r, *records[1:20]]) is None
    assert pack_fast(records[:10] + records[:1]) is None  # a task_id twice


def test_synthetic_batch_equals_packed_synthetic_records(tmp_path):
    """The benchmarks' column-by-column synthetic batches are exactly the packed synthetic records, and
    a store appended from them reads back those records."""
    from synthetic import synthetic_batch

    from tansaku.results.pack import pack

    for a, b, natoms in ((0, 300, 26), (1000, 1061, 1), (5, 6, 3)):
        fast, slow = synthetic_batch(a, b, natoms), pack([synthetic_record(k, natoms=natoms) for k in range(a, b)])
        assert fast.task_ids == slow.task_ids and fast.settings == slow.settings
        for part in ("rows", "atoms"):
            x, y = getattr(fast, part), getattr(slow, part)
            assert x.keys() == y.keys()
            for key in x:
                assert x[key].dtype == y[key].dtype and np.array_equal(x[key], y[key], equal_nan=True), (part, key)
        for key in slow.text:
            assert np.array_equal(fast.text[key].data, slow.text[key].data), key
            assert np.array_equal(fast.text[key].lengths, slow.text[key].lengths), key
    with Store.open(tmp_path / "s.h5") as store:
        store.append_packed(synthetic_batch(0, 40))
    assert [record_differences(r, synthetic_record(k, natoms=26)) for k, r in enumerate(iter_records(tmp_path / "s.h5"))] \
        == [[]] * 40


def test_the_writers_index_follows_failed_rows_through_mixed_batches(tmp_path):
    """New rows, failed rows rewritten as ok or as failed again, in one batch: the writer's index (the
    stored ids and the rows of the failed ones) says what the file says, also after reopening."""
    path = tmp_path / "i.h5"

    def failed(k):
        return synthetic_record(k, "failed", natoms=2)

    with Store.open(path) as store:
        store.append([failed(0), synthetic_record(1), failed(2), failed(3)])
        store.append([failed(3), synthetic_record(4), synthetic_record(2), failed(5)])  # 3 fails again
        assert store.statuses() == {"t000000000": "failed", "t000000001": "ok", "t000000002": "ok",
                                    "t000000003": "failed", "t000000004": "ok", "t000000005": "failed"}
        with pytest.raises(ValueError, match="t000000002.*already stored with status 'ok'"):
            store.append([synthetic_record(6), synthetic_record(2)])
        store.append([synthetic_record(3)])
        expected = store.statuses()
        assert len(store) == 6 and "t000000006" not in store and "t000000003" in store
    with Store.open(path) as store:
        assert store.statuses() == expected
        store.append([synthetic_record(0), synthetic_record(5), synthetic_record(6)])
    cols = read_columns(path, ["task_id", "status"])
    assert list(cols["task_id"]) == [f"t{k:09d}" for k in range(7)] and set(cols["status"]) == {"ok"}
    assert [record_differences(r, synthetic_record(k)) for k, r in enumerate(iter_records(path))] == [[]] * 7


def test_queued_batches_are_committed_as_one(tmp_path):
    """``append_packed`` of several packed batches: one commit with the records of all of them, in order
    (settings entries included); a task_id in two of them is refused before anything is written."""
    from tansaku.results.pack import pack
    from tansaku.results.tables import settings_table

    def with_settings(k, status="ok"):
        r = synthetic_record(k, status)
        r.settings_id, r.settings = f"s{k % 2}", f'{{"k": {k % 2}}}'
        return r

    path = tmp_path / "q.h5"
    batches = [pack([with_settings(k) for k in range(a, a + 5)]) for a in (0, 5, 10)]
    with Store.open(path) as store:
        store.append([with_settings(20, "failed")])
        with pytest.raises(ValueError, match="t000000003.*appears twice"):
            store.append_packed([batches[0], pack([synthetic_record(3)])])
        assert len(store) == 1
        store.append_packed(batches + [pack([with_settings(20)])])
        assert len(store) == 16 and store.statuses()["t000000020"] == "ok"
        store.append_packed([])
    expected = [20] + list(range(15))
    assert [r.task_id for r in iter_records(path)] == [f"t{k:09d}" for k in expected]
    for k, r in zip(expected, iter_records(path)):
        assert record_differences(r, with_settings(k)) == ["settings"], k  # the text lives in /settings
    assert settings_table(path) == {"s0": '{"k": 0}', "s1": '{"k": 1}'}


def test_a_bloated_store_is_compacted_while_open(tmp_path, monkeypatch):
    """Many small appends leak file space (SWMR); past BLOAT_FACTOR x live data + BLOAT_SLACK the writer
    compacts the file between two appends (a new inode), keeps every record and goes on appending; a
    reader sees every committed row before and after."""
    import tansaku.results.store as store_module
    from tansaku.results.recover import rewrite as store_module_rewrite

    monkeypatch.setattr(store_module, "BLOAT_FACTOR", 2)
    monkeypatch.setattr(store_module, "BLOAT_SLACK", 0)
    rewrites = []
    monkeypatch.setattr(store_module, "rewrite", lambda p: rewrites.append(len(store)) or store_module_rewrite(p))
    path = tmp_path / "bloat.h5"
    sizes = []
    with Store.open(path) as store:
        for k in range(0, 120, 2):
            store.append(_records([k, k + 1]))
            sizes.append(path.stat().st_size)
            assert len(read_columns(path, ["task_id"])["task_id"]) == k + 2
        assert len(store) == 120
    assert len([n for n in rewrites if n < 120]) > 2, rewrites  # while open, not only at close
    assert max(sizes) < 3 * min(sizes[10:])
    assert [record_differences(r, synthetic_record(k)) for k, r in enumerate(iter_records(path))] == [[]] * 120
