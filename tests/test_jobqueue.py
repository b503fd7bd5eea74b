"""dask-jobqueue clusters built from our job description: the options for every scheduler, and a real
SLURMCluster on the local SLURM (scripts/slurm-up.sh) running a small Dask computation."""

from __future__ import annotations

from pathlib import Path

import pytest
from slurm_cluster import slurm  # noqa: F401  (session fixture, used by name)

from tansaku.hpc.jobqueue import cluster_options, make_cluster
from tansaku.hpc.jobs import JobSpec

SLURM = pytest.mark.usefixtures("slurm")
pytest.importorskip("dask_jobqueue", reason="pip install dask-jobqueue (tansaku[hpc])")


def _job(**overrides) -> JobSpec:
    settings = {"name": "tansaku-dask", "command": ("dask", "worker"), "cpus_per_task": 2, "memory_mb": 1024,
                "walltime": 600, "queue": "debug", "account": "proj", "directives": ("--qos=low",),
                "setup": ("module load x",), "environment": {"OMP_NUM_THREADS": "1"}}
    settings.update(overrides)
    return JobSpec(**settings)


def test_cluster_options_for_each_scheduler() -> None:
    slurm_options = cluster_options("slurm", _job(), processes=2, interface="lo")
    assert slurm_options == {"cores": 2, "processes": 2, "memory": "1024MiB", "job_name": "tansaku-dask",
                             "queue": "debug", "job_extra_directives": ["--qos=low"],
                             "job_script_prologue": ["module load x", "export OMP_NUM_THREADS=1"],
                             "interface": "lo", "walltime": "00:10:00", "account": "proj"}
    lsf_options = cluster_options("lsf", _job(memory_mb=None))
    assert lsf_options["project"] == "proj" and lsf_options["walltime"] == "00:10" and lsf_options["use_stdin"]
    assert lsf_options["memory"] == "4096MiB" and lsf_options["processes"] == 2
    assert cluster_options("torque", _job())["resource_spec"] == "nodes=1:ppn=2"
    with pytest.raises(ValueError, match="unknown scheduler"):
        cluster_options("condor", _job())


def test_job_scripts_of_every_cluster_class_render() -> None:
    import dask_jobqueue  # noqa: F401

    for scheduler, directive in (("slurm", "#SBATCH"), ("pbs", "#PBS"), ("lsf", "#BSUB")):
        cluster = make_cluster(scheduler, _job(), maximum_jobs=0)
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
        assert directive in script and "module load x" in script and "--nthreads 1" in script.replace("=", " ")


@SLURM
@pytest.mark.timeout(240)
def test_slurm_cluster_runs_a_dask_computation(tmp_path: Path) -> None:
    from distributed import Client

    job = _job(queue="debug", account=None, directives=(), setup=(), memory_mb=1000, walltime=300,
               log_dir=str(tmp_path / "logs"))
    cluster = make_cluster("slurm", job, minimum_jobs=1, maximum_jobs=1, processes=2, interface="lo")
    try:
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            assert sum(client.gather(client.map(lambda x: x * x, range(100)))) == 328350
            hosts = client.run(lambda: __import__("os").environ.get("SLURM_JOB_ID"))
            assert len(hosts) == 2 and all(job_id and job_id.isdigit() for job_id in hosts.values())
    finally:
        cluster.close()


EMT_CAMPAIGN = """
[campaign]
name = "jq"
output = "{output}"
[calculator]
name = "emt"
[relax]
fmax = 0.05
[execution]
executor = "dask-jobqueue"
batch_size = 2
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = ["Cu", "Au"], "3c" = ["Cu", "Ni"] }}
distinct_elements = true
[scheduler]
name = "slurm"
queue = "debug"
cores = 2
memory = "1500M"
walltime = "10m"
log_dir = "{logs}"
[scheduler.jobqueue]
maximum_jobs = 1
interface = "lo"
"""


@SLURM
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_emt_campaign_on_a_slurm_cluster_matches_a_serial_run(tmp_path: Path) -> None:
    """A real dask-jobqueue SLURMCluster runs a small EMT campaign; the coordinator writes the store."""
    import numpy as np

    from tansaku.results import read_columns
    from tansaku.workflows.campaign import parse_campaign
    from tansaku.workflows.plan import make_plan
    from tansaku.workflows.runner import execute_plan, run_campaign

    campaign = parse_campaign(EMT_CAMPAIGN.format(output=tmp_path / "jq.h5", logs=tmp_path / "logs"), source="jq.toml")
    plan = make_plan(campaign)
    summary = execute_plan(plan, campaign, show_progress=False)  # executor from [execution], [scheduler]
    assert summary.ok == len(plan.tasks) >= 4 and summary.failed == 0
    text = EMT_CAMPAIGN.format(output=tmp_path / "serial.h5", logs=tmp_path / "logs")
    reference = parse_campaign(text.replace("dask-jobqueue", "serial"), source="jq.toml")
    run_campaign(reference, show_progress=False)
    got, want = read_columns(campaign.output), read_columns(reference.output)
    order_got, order_want = np.argsort(got["task_id"]), np.argsort(want["task_id"])
    assert list(got["task_id"][order_got]) == list(want["task_id"][order_want])
    np.testing.assert_allclose(got["energy"][order_got], want["energy"][order_want], rtol=0, atol=1e-8)
