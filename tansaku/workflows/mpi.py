"""The MPI executor: ``mpiexec -n N python -m tansaku run CAMPAIGN.toml --executor mpi``.

Rank 0 plans (or reuses the saved plan), hands tasks out through ``hpc.mpi``'s dynamic queue and is
the only writer of the store; ranks 1..N-1 run ``run_task`` on whatever they are given. With N ranks
there are N-1 task workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tansaku.results.record import Record
from tansaku.workflows.executors import Executor, TaskRunner
from tansaku.workflows.run_task import failed_record, run_task
from tansaku.workflows.tasks import Task


def mpi_executor(run: TaskRunner = run_task, heartbeat: float = 1.0, threads_per_task: int = 1) -> Executor:
    """Rank 0's side: tasks out to the worker ranks, records back as they complete."""
    from tansaku.hpc import mpi

    mpi.comm()  # a clear error now if mpi4py is missing

    def execute(tasks: Iterable[Task]) -> Iterator[Record | None]:
        for item in mpi.serve(tasks, heartbeat=heartbeat):
            if item is None:
                yield None
                continue
            task, result = item
            yield failed_record(task, f"MPI worker: {result.message}") if isinstance(result, mpi.RemoteError) \
                else result

    return execute


def mpi_worker(run: TaskRunner = run_task, threads_per_task: int = 1) -> int:
    """A worker rank's side: run tasks from rank 0 until it says stop; returns the number run."""
    from tansaku.hpc import mpi
    from tansaku.hpc.threads import pin_threads

    pin_threads(threads_per_task)
    return mpi.work(run)
