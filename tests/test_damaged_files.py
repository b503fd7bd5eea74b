"""Damaged, truncated, foreign and inconsistent results files: a clear error naming the file, never a
hang (HDF5's SWMR reader would retry a bad checksum for ever) and never a wrong count; and a lock file
that cannot be turned against the user (a planted symlink or hard link is refused, nothing is written)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from tansaku.results import Store, StoreError, open_for_reading, read_table
from tansaku.results.record import STATUS_OK, Record

REPO = Path(__file__).resolve().parents[1]
N_RECORDS = 40


def _record(k: int) -> Record:
    n = 1 + k % 4
    return Record(task_id=f"task{k:05d}", candidate_id=f"c{k}", kind="candidate", label=f"Cu{n} #{k}",
                  formula=f"Cu{n}", prototype="fcc", parent="", calculator="emt", stage="relax", status=STATUS_OK,
                  numbers=np.full(n, 29), positions=np.arange(3 * n, dtype=float).reshape(n, 3) * 0.5,
                  cell=np.eye(3) * 3.6, energy=-0.1 * k, energy_per_atom=-0.1 * k / n, converged=True)


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.h5"
    with Store.open(path, campaign_text="[campaign]\nname = 'x'\n") as store:
        for start in range(0, N_RECORDS, 8):
            store.append([_record(k) for k in range(start, start + 8)])
    return path


def _cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "tansaku", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.6, 0.9, 0.99])
def test_truncated_file_is_an_error_not_a_hang(store_file: Path, tmp_path: Path, fraction: float) -> None:
    data = store_file.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(StoreError, match="cut.h5.*(truncated|damaged)"):
        read_table(cut)


def test_a_live_writers_unfinished_extension_is_not_called_truncated(store_file: Path, tmp_path: Path) -> None:
    """A reader polling a run that has just started can find the superblock announcing bytes the writer
    has not written yet (the CI kill test hit it once): with the writer's lock held by a live process the
    size probe lets the SWMR open go on; once the holder is dead, the same file is reported truncated."""
    from tansaku.results.lock import WriterLock, writer_alive
    from tansaku.results.read import _check_not_truncated

    cut = tmp_path / "cut.h5"
    cut.write_bytes(store_file.read_bytes()[:-2000])
    with pytest.raises(StoreError, match="cut.h5.*truncated"):
        _check_not_truncated(cut)
    lock = WriterLock(cut)
    lock.acquire()  # this (live) process holds the writer lock: its line names our pid and host
    try:
        assert writer_alive(cut)
        _check_not_truncated(cut)
    finally:
        lock.release()
    assert not writer_alive(cut)  # released: the lock file is emptied
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    Path(f"{cut}.lock").write_text(f"{dead.stdout.strip()} on {os.uname().nodename}\n")  # a killed writer's line
    assert not writer_alive(cut)
    with pytest.raises(StoreError, match="cut.h5.*truncated"):
        _check_not_truncated(cut)


def test_corrupted_bytes_are_an_error(store_file: Path, tmp_path: Path) -> None:
    data = bytearray(store_file.read_bytes())
    rng = np.random.default_rng(1)
    bad = tmp_path / "bad.h5"
    for offset in rng.integers(100, len(data) - 100, size=6):
        damaged = bytearray(data)
        damaged[offset:offset + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        bad.write_bytes(bytes(damaged))
        try:  # flipped bytes inside compressed data may still read: then the rows must be the real ones
            table = read_table(bad, columns=["task_id"])
        except StoreError as exc:
            assert "bad.h5" in str(exc)
        else:
            assert len(table) == N_RECORDS


@pytest.mark.parametrize("committed", [-5, N_RECORDS + 1, 10**9])
def test_inconsistent_committed_count_is_detected(store_file: Path, committed: int) -> None:
    with h5py.File(store_file, "r+") as f:
        f["committed"][0] = committed
    with pytest.raises(StoreError, match=f"/committed says {committed} rows"):
        read_table(store_file)


def test_not_hdf5_foreign_hdf5_directory_missing(tmp_path: Path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(3)
    for path, message in ((text, "not HDF5"), (foreign, "not a tansaku results store"),
                          (tmp_path, "is a directory"), (tmp_path / "missing.h5", "does not exist")):
        with pytest.raises(StoreError, match=message):
            open_for_reading(path)


def test_cli_commands_on_a_truncated_file_exit_cleanly(store_file: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.h5"
    cut.write_bytes(store_file.read_bytes()[: store_file.stat().st_size // 2])
    for args in (("status", cut), ("show", cut, "task0"), ("query", cut), ("rank", cut)):
        result = _cli(*args)
        assert result.returncode != 0, args
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert "cut.h5" in result.stderr and "truncated" in result.stderr, (args, result.stderr)


def test_writer_refuses_a_damaged_file_and_leaves_it_as_it_was(store_file: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.h5"
    cut.write_bytes(store_file.read_bytes()[:5000])
    before = cut.read_bytes()
    with pytest.raises(StoreError, match="cut.h5"):
        Store.open(cut)
    assert cut.read_bytes() == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_planted_lock_link_is_refused_and_its_target_untouched(tmp_path: Path, link: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    store = tmp_path / "out.h5"
    lock = tmp_path / "out.h5.lock"
    (os.symlink if link == "symlink" else os.link)(victim, lock)
    with pytest.raises(StoreError, match="lock file"):
        Store.open(store)
    assert victim.read_text() == "precious"
    assert not store.exists()


def test_lock_and_store_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        with Store.open(tmp_path / "private.h5") as s:
            s.append([_record(1)])
    finally:
        os.umask(old)
    for name in ("private.h5", "private.h5.lock"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, name


def test_damaged_copy_keeps_the_original_readable(store_file: Path, tmp_path: Path) -> None:
    """Reading a damaged copy must not disturb anything else: the original still reads in full."""
    shutil.copy(store_file, tmp_path / "copy.h5")
    with open(tmp_path / "copy.h5", "r+b") as f:
        f.truncate(3000)
    with pytest.raises(StoreError):
        read_table(tmp_path / "copy.h5")
    assert len(read_table(store_file)) == N_RECORDS
