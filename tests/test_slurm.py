"""Real SLURM (the local single-node cluster of scripts/slurm-up.sh): submit a job array, poll it to
done, cancel a running job, and read states from squeue and scontrol."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from slurm_cluster import slurm, slurm_jobs, wait_for  # noqa: F401  (fixtures, used by name)

from tansaku.hpc import slurm as slurm_parse
from tansaku.hpc.jobs import CANCELLED, DONE, FAILED, JobSpec
from tansaku.hpc.schedulers import cancel, poll, poll_elements, submit

pytestmark = [pytest.mark.usefixtures("slurm"), pytest.mark.timeout(180)]


def test_job_array_runs_every_element_to_done(tmp_path: Path, slurm_jobs: list[str]) -> None:
    out = tmp_path / "out"
    job = JobSpec(name="tansaku-test-array", queue="debug", array="0-2", memory_mb=100, walltime=120,
                  log_dir=str(tmp_path / "logs"), working_dir=str(tmp_path),
                  command=("sh", "-c", 'echo "$1 $2" > "$3"', "sh", "element", "{array_index}",
                           str(out) + "-{array_index}"))
    job_id = submit(job, "slurm", tmp_path / "job.sh")
    slurm_jobs.append(job_id)
    assert job_id.isdigit()
    wait_for(lambda: poll("slurm", [job_id])[job_id] == DONE, 90, what=f"job array {job_id} done")
    elements = {element: state for _, element, state in poll_elements("slurm", [job_id])}
    assert elements == {f"{job_id}_{i}": DONE for i in range(3)}
    assert sorted(p.read_text() for p in tmp_path.glob("out-*")) == [f"element {i}\n" for i in range(3)]
    assert len(list((tmp_path / "logs").glob("tansaku-test-array-*_*.out"))) == 3


def test_cancel_a_running_job(tmp_path: Path, slurm_jobs: list[str]) -> None:
    started = tmp_path / "started"
    job = JobSpec(name="tansaku-test-cancel", queue="debug", memory_mb=100, walltime=300, working_dir=str(tmp_path),
                  log_dir=str(tmp_path), command=("sh", "-c", f"touch {started}; sleep 200"))
    job_id = submit(job, "slurm", tmp_path / "job.sh")
    slurm_jobs.append(job_id)
    wait_for(started.exists, 60, what="the job to start")
    assert poll("slurm", [job_id]) == {job_id: "running"}
    cancel("slurm", [job_id])
    wait_for(lambda: poll("slurm", [job_id])[job_id] == CANCELLED, 60, what=f"job {job_id} cancelled")


def test_failed_job_and_scontrol_agree(tmp_path: Path, slurm_jobs: list[str]) -> None:
    job = JobSpec(name="tansaku-test-fail", queue="debug", memory_mb=100, walltime=60, working_dir=str(tmp_path),
                  log_dir=str(tmp_path), command=("sh", "-c", "exit 3"))
    job_id = submit(job, "slurm", tmp_path / "job.sh")
    slurm_jobs.append(job_id)
    wait_for(lambda: poll("slurm", [job_id])[job_id] == FAILED, 60, what=f"job {job_id} failed")
    shown = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True)
    record = slurm_parse.parse_scontrol(shown.stdout)[0]
    assert record["JobId"] == job_id and record["JobState"] == "FAILED" and record["ExitCode"] == "3:0"
    assert slurm_parse.scontrol_states(shown.stdout) == {job_id: FAILED}


def test_forgotten_or_unknown_job_is_unknown() -> None:
    assert poll("slurm", ["999999"]) == {"999999": "unknown"}
