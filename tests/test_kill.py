"""kill -9 of `tansaku run` at random moments: the file stays readable, nothing stored is lost or recomputed.

Also checks that `tansaku status` and plain h5py (SWMR) read the file while a campaign writes it.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from tansaku.results import read_columns
from tansaku.workflows.campaign import parse_campaign
from tansaku.workflows.plan import make_plan
from tansaku.workflows.run_task import TASK_LOG_VARIABLE

CAMPAIGN = """
[campaign]
name = "kill-test"
output = "{output}"
[calculator]
name = "emt"
[relax]
fmax = 0.005
steps = 500
[execution]
executor = "{executor}"
workers = 2
batch_size = 1
flush_seconds = 0.0
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Cu" }}
supercell = [2, 2, 1]
include_parent = false
[[prototypes.variants]]
substitute = {{ "4a" = {{ Au = 2 }} }}
[[prototypes.variants]]
substitute = {{ "4a" = {{ Pd = 3 }} }}
[[prototypes.variants]]
substitute = {{ "4a" = {{ Ni = 2, Pt = 1 }} }}
"""


def stored_ids(path: Path) -> set[str]:
    return set(read_columns(path, ["task_id"])["task_id"]) if path.exists() else set()


def start_run(campaign_file: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tansaku", "run", str(campaign_file), "--no-progress"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_records(path: Path, at_least: int, process: subprocess.Popen, timeout: float = 120) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = stored_ids(path) if path.exists() else set()
        if len(ids) >= at_least:
            return ids
        if process.poll() is not None:
            pytest.fail(f"run ended early ({process.returncode}):\n{process.stdout.read()}")
        time.sleep(0.05)
    pytest.fail("no progress")


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "dask"])
def test_kill_9_then_resume_loses_and_recomputes_nothing_stored(tmp_path, executor):
    output = tmp_path / "kill.h5"
    campaign_file = tmp_path / "kill.toml"
    campaign_file.write_text(CAMPAIGN.format(output=output, executor=executor))
    n_tasks = len(make_plan(parse_campaign(campaign_file.read_text())).tasks)
    log = tmp_path / "tasks.log"
    env = {**os.environ, TASK_LOG_VARIABLE: str(log)}
    rng = random.Random(7)
    reported: set[str] = set()
    for round_ in range(3):
        process = start_run(campaign_file, env)
        seen = wait_for_records(output, len(reported) + 2, process)
        if round_ == 0:  # readers work while the campaign writes
            status = subprocess.run([sys.executable, "-m", "tansaku", "status", str(output)],
                                    capture_output=True, text=True, timeout=120)
            assert status.returncode == 0, status.stderr
            assert "records" in status.stdout and "ok" in status.stdout
            with h5py.File(output, "r", swmr=True) as f:
                assert f["committed"][0] >= 2
            assert process.poll() is None, "the run should still be writing"
        time.sleep(rng.uniform(0.0, 0.4))
        reported = stored_ids(output) | seen  # everything a reader has seen stored
        process.kill()
        process.wait()
        after = stored_ids(output)
        assert reported <= after, "a record reported stored was lost by kill -9"
        reported = after
    assert len(reported) < n_tasks, "campaign finished before the last kill; make tasks slower"
    starts_before = len(log.read_text().splitlines())
    final = subprocess.run([sys.executable, "-m", "tansaku", "run", str(campaign_file), "--no-progress"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout + final.stderr
    restarted = [line.split()[0] for line in log.read_text().splitlines()[starts_before:]]
    assert not set(restarted) & reported, "a stored task was computed again"
    assert set(restarted) == set(read_columns(output, ["task_id"])["task_id"]) - reported
    cols = read_columns(output, ["task_id", "status"])
    assert len(cols["task_id"]) == len(set(cols["task_id"])) == n_tasks
    assert (cols["status"] == "ok").all()
