"""Dask workers in batch jobs: a dask-jobqueue cluster (SLURMCluster, PBSCluster, LSFCluster) built
from the same job description as our own job scripts, scaled adaptively between job-count bounds.

The job's command is not used: dask-jobqueue writes the worker command itself. ``pip install
dask-jobqueue`` (in tansaku's ``hpc`` extra).
"""

from __future__ import annotations

import shlex
from typing import Any

from tansaku.hpc.jobs import JobSpec, format_hms

CLUSTER_CLASSES = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "torque": "PBSCluster", "lsf": "LSFCluster"}
DEFAULT_MEMORY_PER_PROCESS_MB = 2048  # dask-jobqueue requires a memory request


def cluster_options(scheduler: str, job: JobSpec, processes: int = 0, interface: str | None = None) -> dict[str, Any]:
    """Keyword arguments of the dask-jobqueue cluster class for ``job`` (one Dask job = one batch job
    with ``job.total_cpus`` cores, ``processes`` worker processes (default: one per core), each one thread)."""
    if scheduler not in CLUSTER_CLASSES:
        raise ValueError(f"unknown scheduler {scheduler!r} for dask-jobqueue; choose {', '.join(CLUSTER_CLASSES)}")
    processes = processes or job.total_cpus
    memory_mb = job.memory_mb or DEFAULT_MEMORY_PER_PROCESS_MB * processes
    prologue = [*job.setup, *(f"export {name}={shlex.quote(value)}" for name, value in job.environment.items())]
    options: dict[str, Any] = {
        "cores": job.total_cpus, "processes": processes, "memory": f"{memory_mb}MiB", "job_name": job.name,
        "queue": job.queue, "job_extra_directives": list(job.directives), "job_script_prologue": prologue,
        "log_directory": job.log_dir, "interface": interface}
    if job.walltime:
        options["walltime"] = format_hms(job.walltime)[:-3] if scheduler == "lsf" else format_hms(job.walltime)
    if job.account:
        options["project" if scheduler == "lsf" else "account"] = job.account
    if scheduler == "lsf":
        options["use_stdin"] = True
    if scheduler == "torque":
        options["resource_spec"] = f"nodes=1:ppn={job.total_cpus}"
    return {key: value for key, value in options.items() if value is not None}


def make_cluster(scheduler: str, job: JobSpec, minimum_jobs: int = 0, maximum_jobs: int = 1, processes: int = 0,
                 interface: str | None = None):
    """A dask-jobqueue cluster for ``job`` that adapts between ``minimum_jobs`` and ``maximum_jobs`` jobs."""
    try:
        import dask_jobqueue
    except ImportError:
        raise ImportError("the dask-jobqueue executor needs dask-jobqueue: pip install dask-jobqueue "
                          "(or pip install 'tansaku[hpc]')") from None
    cluster_class = getattr(dask_jobqueue, CLUSTER_CLASSES[scheduler])
    cluster = cluster_class(**cluster_options(scheduler, job, processes, interface))
    cluster.adapt(minimum_jobs=minimum_jobs, maximum_jobs=maximum_jobs)
    return cluster
