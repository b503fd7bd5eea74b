"""`tansaku submit` on the real local SLURM (scripts/slurm-up.sh): a job array with elements cancelled
mid-run, a packed job whose walltime is too short, `submit --resume` and `collect`; every task ends
stored exactly once, with the records of `tansaku run` (same task ids, energies to 1e-8). Slow: real
EMT relaxations in real batch jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from slurm_cluster import slurm, slurm_jobs, wait_for  # noqa: F401  (fixtures, used by name)

from tansaku.hpc.jobs import ACTIVE_STATES, DONE
from tansaku.hpc.schedulers import cancel, poll_elements
from tansaku.results import read_columns
from tansaku.workflows.campaign import load_campaign
from tansaku.workflows.planfile import read_task_ids
from tansaku.workflows.submit import job_statuses, read_jobs

pytestmark = [pytest.mark.usefixtures("slurm"), pytest.mark.slow, pytest.mark.timeout(600)]

# 36 tasks of 32-atom cells (about 1-2 s each with EMT)
CAMPAIGN = """
[campaign]
name = "submit-test"
output = "{folder}/{name}.h5"
[calculator]
name = "emt"
[relax]
fmax = 0.01
steps = 400
[execution]
executor = "serial"
batch_size = 2
flush_seconds = 0.5
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = ["Cu", "Ni", "Pd", "Ag", "Pt"] }}
supercell = [2, 2, 2]
include_parent = false
[[prototypes.variants]]
substitute = {{ "4a" = {{ Au = 1 }} }}
[[prototypes.variants]]
substitute = {{ "4a" = {{ Au = 2 }} }}
[scheduler]
name = "slurm"
queue = "debug"
memory = "700M"
{scheduler}
"""


def tansaku(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The real command line, run as a user would (same Python, PYTHONPATH inherited)."""
    result = subprocess.run([sys.executable, "-m", "tansaku", *args], cwd=folder, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "COLUMNS": "200"})
    if check and result.returncode != 0:
        raise AssertionError(f"tansaku {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def write(folder: Path, name: str, scheduler: str = "") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(CAMPAIGN.format(folder=folder, name=name, scheduler=scheduler))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, float]:
    """Energies by task id from `tansaku run` of the same campaign (serial, in one process)."""
    folder = tmp_path_factory.mktemp("reference")
    tansaku(folder, "run", str(write(folder, "ref")), "--no-progress")
    cols = read_columns(folder / "ref.h5", ["task_id", "energy", "status"])
    assert (cols["status"] == "ok").all()
    return dict(zip(cols["task_id"].tolist(), cols["energy"].tolist()))


def wait_until_idle(campaign, timeout: float = 400) -> None:
    wait_for(lambda: all(s.state not in ACTIVE_STATES for s in job_statuses(read_jobs(campaign))), timeout,
             interval=1.0, what="the campaign's jobs to end")


def check_store(campaign, reference: dict[str, float]) -> None:
    """Every planned task stored exactly once, ok, with the energy of `tansaku run`."""
    cols = read_columns(campaign.output, ["task_id", "energy", "status"])
    ids = cols["task_id"].tolist()
    assert len(ids) == len(set(ids)), "a task is stored twice"
    assert sorted(ids) == sorted(read_task_ids(Path(str(campaign.output).replace(".h5", ".plan.h5"))))
    assert sorted(ids) == sorted(reference)
    assert (cols["status"] == "ok").all()
    got = dict(zip(ids, cols["energy"].tolist()))
    np.testing.assert_allclose([got[t] for t in reference], list(reference.values()), rtol=0, atol=1e-8)


def test_job_array_with_cancelled_elements_resumes_and_collects(tmp_path: Path, reference,
                                                                slurm_jobs: list[str]) -> None:
    path = write(tmp_path, "array", "tasks_per_element = 4\nwalltime = \"10m\"")
    campaign = load_campaign(path)
    dry = tansaku(tmp_path, "submit", path.name, "--dry-run")
    assert "#SBATCH --array=0-8" in dry.stdout and not read_jobs(campaign)
    first = tansaku(tmp_path, "submit", path.name, "--scheduler", "slurm")
    assert "array of 9 elements, 36 tasks" in first.stderr
    [job] = read_jobs(campaign)
    slurm_jobs.append(job.job_id)
    # cancel one element while it runs (some of its tasks may be in its shard) and two still queued
    running = wait_for(lambda: [e for j, e, s in poll_elements("slurm", [job.job_id]) if s == "running"], 120,
                       what="a running array element")
    cancel("slurm", [running[0], f"{job.job_id}_7", f"{job.job_id}_8"])
    again = tansaku(tmp_path, "submit", path.name, check=False)
    assert again.returncode == 2 and "use --resume" in again.stderr
    resumed = tansaku(tmp_path, "submit", path.name, "--resume")
    assert "submitted slurm job" in resumed.stderr
    jobs = read_jobs(campaign)
    slurm_jobs.append(jobs[-1].job_id)
    assert len(jobs) == 2 and 0 < jobs[1].tasks <= 12  # only the cancelled elements' unfinished tasks
    wait_until_idle(campaign)
    status = tansaku(tmp_path, "status", path.name)
    assert "0 pending" in status.stdout and "batch jobs" in status.stdout
    nothing = tansaku(tmp_path, "submit", path.name, "--resume")
    assert "nothing to submit" in nothing.stderr
    tansaku(tmp_path, "collect", path.name)
    tansaku(tmp_path, "collect", path.name)  # idempotent
    check_store(campaign, reference)
    assert json.loads((tmp_path / "array.jobs.json").read_text())["jobs"][0]["job_id"] == job.job_id


def test_packed_job_with_short_walltime_ends_cleanly_and_resume_finishes(tmp_path: Path, reference,
                                                                          slurm_jobs: list[str]) -> None:
    # one core and about 15 s of the walltime for tasks: too short for all 36 even on a fast machine (a quiet
    # run here did all 36 in 9.4 s on two cores), long enough for some even under load
    path = write(tmp_path, "packed", 'cores = 1\nwalltime = "35s"\ndeadline_margin = "20s"\ntask_seconds = 2')
    campaign = load_campaign(path)
    tansaku(tmp_path, "submit", path.name, "--mode", "packed")
    slurm_jobs.extend(j.job_id for j in read_jobs(campaign))
    wait_until_idle(campaign, timeout=120)
    [first] = job_statuses(read_jobs(campaign))
    assert first.state == DONE  # ended by itself before the walltime: not TIMEOUT, not cancelled
    log = next((tmp_path / "packed.jobs" / "logs").glob("*.out")).read_text()
    assert "not run (deadline near)" in log, log
    status = tansaku(tmp_path, "status", path.name).stdout
    pending = int(status.split(" pending")[0].rsplit(" ", 1)[-1])
    assert 0 < pending < 36, status
    # the resume gets enough time: everything else runs, nothing twice
    resumed = tansaku(tmp_path, "submit", path.name, "--mode", "packed", "--resume", "--machine",
                      str(_machine(tmp_path)))
    assert f"{pending} tasks pending" in resumed.stderr
    slurm_jobs.extend(j.job_id for j in read_jobs(campaign))
    wait_until_idle(campaign)
    tansaku(tmp_path, "collect", path.name)
    check_store(campaign, reference)


def _machine(folder: Path) -> Path:
    machine = folder / "cluster.toml"
    machine.write_text('[scheduler]\nname = "slurm"\nqueue = "debug"\ncores = 2\nmemory = "1G"\nwalltime = "10m"\n')
    return machine
