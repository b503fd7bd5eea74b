"""The ``dask-jobqueue`` executor: Dask workers started as batch jobs (SLURM/PBS/Torque/LSF) from the
``[scheduler]`` settings, scaled adaptively between ``[scheduler.jobqueue]`` minimum_jobs and
maximum_jobs; the coordinator (``tansaku run``) keeps writing the store as with the local Dask executor.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from tansaku.hpc.jobs import JobSpec
from tansaku.hpc.threads import worker_environment
from tansaku.results.record import Record
from tansaku.workflows.campaign import CampaignError
from tansaku.workflows.executors import Executor, TaskRunner, dask_executor
from tansaku.workflows.machine import SchedulerSettings, load_machine
from tansaku.workflows.run_task import run_task
from tansaku.workflows.tasks import Task


def worker_job(settings: SchedulerSettings, log_dir: Path) -> JobSpec:
    """One Dask job: ``settings.cores`` cores, this Python's PYTHONPATH, BLAS/OpenMP pinned to 1 thread."""
    environment = {**worker_environment(1), **settings.environment}
    if os.environ.get("PYTHONPATH"):
        environment.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
    return JobSpec(name="tansaku-dask", command=("dask", "worker"), nodes=1, cpus_per_task=settings.cores,
                   memory_mb=settings.memory_mb, walltime=settings.walltime, queue=settings.queue,
                   account=settings.account, directives=settings.directives, setup=settings.setup,
                   environment=environment, log_dir=str(settings.log_dir or log_dir))


def jobqueue_executor(settings: SchedulerSettings | str | Path | None, run: TaskRunner = run_task,
                      log_dir: Path | None = None) -> Executor:
    """Run tasks on a dask-jobqueue cluster started here and closed when the tasks are done.

    ``settings``: the campaign's [scheduler] settings or a machine profile file; logs go to the
    settings' ``log_dir``, else ``log_dir``, else ``./dask-jobqueue-logs``."""
    from tansaku.hpc.jobqueue import make_cluster

    if isinstance(settings, str | Path):
        settings = load_machine(settings)
    if settings is None:
        raise CampaignError("executor 'dask-jobqueue' needs a [scheduler] table in the campaign or "
                            "[execution] machine = \"cluster.toml\" (a machine profile file)")
    log_dir = log_dir or Path("dask-jobqueue-logs")

    def execute(tasks: Iterable[Task]) -> Iterator[Record | None]:
        queue = settings.jobqueue
        processes = queue.processes or settings.cores
        cluster = make_cluster(settings.name, worker_job(settings, log_dir), minimum_jobs=queue.minimum_jobs,
                               maximum_jobs=queue.maximum_jobs, processes=processes, interface=queue.interface)
        try:
            yield from dask_executor(queue.maximum_jobs * processes, run=run, address=cluster)(tasks)
        finally:
            cluster.close()

    return execute
