"""Executors: given tasks, yield records as they complete.

Every executor follows one contract: ``execute(tasks) -> Iterator[Record | None]``. ``None`` is a
heartbeat, yielded at least every ``heartbeat`` seconds while nothing completes, so the caller can
write finished records on time even while long tasks run. A task that raises, or whose worker dies,
comes back as a failed record; the executor never stops early because of one task.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from tansaku.hpc.threads import worker_environment
from tansaku.results.record import Record
from tansaku.workflows.run_task import failed_record, run_task
from tansaku.workflows.tasks import Task

TaskRunner = Callable[[Task], Record]


class Executor(Protocol):
    def __call__(self, tasks: Iterable[Task]) -> Iterator[Record | None]: ...


def serial_executor(run: TaskRunner = run_task, heartbeat: float = 1.0) -> Executor:
    """Run tasks one after another in a background thread of this process (no extra processes)."""

    def execute(tasks: Iterable[Task]) -> Iterator[Record | None]:
        results: queue.Queue = queue.Queue(maxsize=64)
        stop = threading.Event()
        done = object()

        def work() -> None:
            for task in tasks:
                if stop.is_set():
                    break
                try:
                    results.put(run(task))
                except BaseException as exc:  # run_task never raises; a custom runner might
                    results.put(failed_record(task, f"{type(exc).__name__}: {exc}"))
            results.put(done)

        thread = threading.Thread(target=work, name="tansaku-serial", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    item = results.get(timeout=heartbeat)
                except queue.Empty:
                    yield None
                    continue
                if item is done:
                    return
                yield item
        finally:
            stop.set()

    return execute


def _pin_worker_threads() -> None:
    from tansaku.hpc.threads import pin_threads

    pin_threads(1)


def dask_executor(workers: int, run: TaskRunner = run_task, address: str | None = None,
                  heartbeat: float = 1.0, in_flight_per_worker: int = 4) -> Executor:
    """Run tasks on Dask: a LocalCluster started and stopped here (default) or ``address``.

    At most ``in_flight_per_worker * workers`` tasks are submitted at a time, so campaigns of 10^6
    tasks do not flood the scheduler. Each worker process is one thread with BLAS/torch pinned to 1.
    """

    def execute(tasks: Iterable[Task]) -> Iterator[Record | None]:
        import dask
        from distributed import Client, LocalCluster, wait
        from distributed.diagnostics.plugin import WorkerPlugin

        class PinThreads(WorkerPlugin):
            def setup(self, worker) -> None:  # noqa: ANN001 - dask's signature
                _pin_worker_threads()

        cluster = None
        if address is None:
            # Our own worker environment replaces dask's default, whose MALLOC_TRIM_THRESHOLD_ makes
            # glibc mmap/munmap every large tensor: measured 2x slower CHGNet relaxations, half in the kernel.
            with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environment(1)}):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=40)
        client = Client(cluster if cluster is not None else address)
        try:
            client.register_plugin(PinThreads(), name="tansaku-pin-threads")
            limit = max(1, workers * in_flight_per_worker)
            pending: dict = {}
            task_iter = iter(tasks)
            exhausted = False
            while True:
                while not exhausted and len(pending) < limit:
                    task = next(task_iter, None)
                    if task is None:
                        exhausted = True
                        break
                    future = client.submit(run, task, key=f"relax-{task.task_id}", pure=False)
                    pending[future] = task
                if not pending:
                    return
                try:
                    finished, _ = wait(list(pending), timeout=heartbeat, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    yield None
                    continue
                for future in finished:
                    task = pending.pop(future)
                    try:
                        yield future.result()
                    except Exception as exc:  # worker died (KilledWorker) or the runner raised
                        yield failed_record(task, f"{type(exc).__name__}: {exc}")
                    future.release()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    return execute


def make_executor(name: str, workers: int, run: TaskRunner = run_task) -> Executor:
    """The executor called ``name`` in campaign files; ``run`` runs one task (e.g. run_task with the
    campaign's runtime bound by functools.partial)."""
    if name == "serial":
        return serial_executor(run)
    if name == "dask":
        return dask_executor(workers, run)
    raise ValueError(f"unknown executor {name!r}")
