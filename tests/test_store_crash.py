"""kill -9 a writer at random moments: every record it reported committed must survive, intact.

Run as a script, this file is the writer: it appends synthetic records in batches of 1-5 (some stored
"failed" first and rewritten "ok" in a later batch) and prints the committed row count after each
append. Row i always holds task t{i:09d}: new tasks are numbered in order, rewrites keep their row.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tansaku.results import SCHEMA_VERSION, Store, iter_records, open_for_reading, read_columns
from tansaku.results.recover import write_new_file
from tansaku.results.schema import new_file_attrs
from tansaku.results.tables import campaign_history, settings_table
from conftest import subprocess_env
from synthetic import record_differences, synthetic_record

REPO = Path(__file__).resolve().parents[1]
ROUNDS = 8


def with_settings(record, stored: bool = False):
    """The record with a settings id shared by three tasks (new /settings entries in many appends); as read
    back (``stored``) it has no settings text (that lives in /settings)."""
    k = int(record.task_id[1:])
    record.settings_id = f"s{k // 3:06d}"
    record.settings = "" if stored else settings_text(record.settings_id)
    return record


def settings_text(settings_id: str) -> str:
    return json.dumps({"stage": "crash", "id": settings_id})


def first_status(k: int) -> str:
    return "failed" if k % 4 == 1 else "ok"


def failed_version(k: int):
    return synthetic_record(k, "failed", natoms=1 + (k + 3) % 7)  # other natoms: a rewrite moves atoms


def writer(path: str, seed: int) -> None:
    import tansaku.results.store as store_module

    if seed % 4 == 1:  # compact while open as soon as the file is twice its live data: kills land in compactions
        store_module.BLOAT_FACTOR, store_module.BLOAT_SLACK = 2, 0
    rng = random.Random(seed)
    store = Store.open(path, campaign_text=f"crash test seed {seed}")
    k = len(store)
    pending = sorted(int(t[1:]) for t, s in store.statuses().items() if s == "failed")
    while True:
        batch = [synthetic_record(pending.pop(0))] if pending and rng.random() < 0.5 else []
        for _ in range(rng.randint(1, 5) - len(batch)):
            batch.append(synthetic_record(k) if first_status(k) == "ok" else failed_version(k))
            if first_status(k) == "failed":
                pending.append(k)
            k += 1
        store.append([with_settings(r) for r in batch])
        print(len(store), flush=True)


def check(path: Path, reported: int) -> int:
    """The committed rows: at least ``reported``, row i = task i, ok rows exact, failed rows readable."""
    with open_for_reading(path) as f:
        stored = list(iter_records(f))
        settings = settings_table(f)
    assert len(stored) >= reported
    for rec in stored:  # a committed row never points at a settings entry that is not committed
        assert settings[rec.settings_id] == settings_text(rec.settings_id), rec.task_id
    for i, rec in enumerate(stored):
        assert rec.task_id == f"t{i:09d}"
        if i < reported and first_status(i) == "ok":
            assert rec.status == "ok"
        if rec.status == "ok":
            expected = with_settings(synthetic_record(i), stored=True)
            assert record_differences(rec, expected) == [], (i, record_differences(rec, expected))
        else:
            # a rewrite killed before its status was written: each value is the old or the new one
            # (the structure may pair the new atom_start with the old natoms: only its shape is checked)
            neither = (set(record_differences(rec, with_settings(failed_version(i), stored=True)))
                       & set(record_differences(rec, with_settings(synthetic_record(i), stored=True))))
            assert not neither - {"numbers", "positions", "magmoms"}, (i, neither)
            assert rec.numbers.shape == (len(rec.positions),) and rec.positions.shape[1] == 3
    return len(stored)


def last_reported(out: Path) -> int | None:
    lines = out.read_text().split("\n")[:-1]  # only complete lines: the last may be cut by the kill
    return int(lines[-1]) if lines else None


@pytest.mark.parametrize("version", [3, 2, 1])
def test_kill_writer_at_random_moments(tmp_path, version):
    """Schema version 3 (new stores), and versions 2 and 1 (older stores keep being appended in their
    layout)."""
    path = tmp_path / "crash.h5"
    rng = random.Random(20261128 + version)
    env = subprocess_env()
    reported = 0
    if version != SCHEMA_VERSION:
        write_new_file(path, new_file_attrs("", version=version))
    for round_ in range(ROUNDS if version == SCHEMA_VERSION else ROUNDS // 2):
        out = tmp_path / f"out{round_}.txt"
        with open(out, "w") as stdout:
            proc = subprocess.Popen([sys.executable, __file__, str(path), str(round_)], stdout=stdout, env=env)
        deadline = time.monotonic() + 20
        if round_ % 3 != 2:  # wait until it writes; every third round the kill may land during startup/recovery
            while last_reported(out) is None and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        assert proc.wait() == -9
        reported = max(reported, last_reported(out) or 0)
        n = check(path, reported) if path.exists() else 0
        if round_ % 2 == 0:  # recover here; on odd rounds the next writer recovers the file itself
            with Store.open(path) as store:
                assert len(store) == n >= reported
            assert check(path, reported) == n
    assert reported >= 40 or version != SCHEMA_VERSION and reported >= 20, "the writer hardly wrote anything"
    with Store.open(path) as store:
        store.close()
    statuses = read_columns(path, ["status"])["status"]
    assert len(statuses) >= reported and np.isin(statuses, ["ok", "failed"]).all()
    texts = [e.text for e in campaign_history(path)]  # each writer's text, kept whole (kills at open included)
    assert texts and len(set(texts)) == len(texts) and set(texts) <= {f"crash test seed {r}" for r in range(ROUNDS)}
    assert not list(tmp_path.glob("*.tmp"))
    with open_for_reading(path) as f:
        assert int(f.attrs["schema_version"]) == version


if __name__ == "__main__":
    writer(sys.argv[1], int(sys.argv[2]))
