"""kill -9 of `tansaku run` at random moments: the file stays readable, nothing stored is lost or recomputed.

The moments are set by progress (records stored), not by time, so the campaign is unfinished at every
kill on any machine. Also checks that `tansaku status` and plain h5py (SWMR) read the file while a campaign writes it.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import h5py
import pytest

from conftest import start_tansaku, subprocess_env, tansaku
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
fmax = 0.02
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
"""


def stored_ids(path: Path) -> set[str]:
    return set(read_columns(path, ["task_id"])["task_id"]) if path.exists() else set()


def run_until_stored(path: Path, at_least: int, process: subprocess.Popen, timeout: float = 120) -> set[str]:
    """Wait until ``at_least`` records are stored, then freeze the run (SIGSTOP, wherever it is, maybe in
    the middle of an append) and return the ids a reader sees stored: none can be added until it is
    killed. Progress, not time, decides the moment, so the campaign is mid-way on any machine."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(stored_ids(path)) >= at_least:
            process.send_signal(signal.SIGSTOP)
            return stored_ids(path)
        if process.poll() is not None:
            pytest.fail(f"run ended early ({process.returncode}):\n{process.stdout.read()}")
        time.sleep(0.005)
    pytest.fail("no progress")


def readers_work_while_it_writes(output: Path, process: subprocess.Popen) -> None:
    """`tansaku status` and plain h5py (SWMR) read the file of a run that holds it open for writing."""
    status = tansaku("status", output, timeout=120)
    assert status.returncode == 0, status.stderr
    assert "records" in status.stdout and "ok" in status.stdout
    with h5py.File(output, "r", swmr=True) as f:
        assert f["committed"][0] >= 1
    assert process.poll() is None, "the run should still be writing"


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["serial", "dask"])
def test_kill_9_then_resume_loses_and_recomputes_nothing_stored(tmp_path, executor):
    output = tmp_path / "kill.h5"
    campaign_file = tmp_path / "kill.toml"
    campaign_file.write_text(CAMPAIGN.format(output=output, executor=executor))
    n_tasks = len(make_plan(parse_campaign(campaign_file.read_text())).tasks)
    log = tmp_path / "tasks.log"
    env = subprocess_env(**{TASK_LOG_VARIABLE: str(log)})
    rng = random.Random(7)
    reported: set[str] = set()
    for round_ in range(3):
        process = start_tansaku("run", campaign_file, "--no-progress", env=env)
        if round_ == 0:  # readers work on the file the (frozen) run holds open for writing mid-campaign
            run_until_stored(output, 1, process)
            readers_work_while_it_writes(output, process)
            process.send_signal(signal.SIGCONT)
        frozen = run_until_stored(output, len(reported) + rng.randint(1, 3), process)
        assert len(frozen) < n_tasks, f"round {round_}: the campaign must be unfinished when it is killed"
        process.kill()  # kill -9 of the frozen run
        process.wait()
        after = stored_ids(output)
        assert frozen <= after, "a record reported stored was lost by kill -9"
        reported = after
    assert len(reported) < n_tasks
    starts_before = len(log.read_text().splitlines())
    final = tansaku("run", campaign_file, "--no-progress", env=env, timeout=600)
    assert final.returncode == 0, final.stdout + final.stderr
    restarted = [line.split()[0] for line in log.read_text().splitlines()[starts_before:]]
    assert not set(restarted) & reported, "a stored task was computed again"
    assert set(restarted) == set(read_columns(output, ["task_id"])["task_id"]) - reported
    cols = read_columns(output, ["task_id", "status"])
    assert len(cols["task_id"]) == len(set(cols["task_id"])) == n_tasks
    assert (cols["status"] == "ok").all()
