"""Executors: given tasks, yield records as they complete.

Every executor follows one contract: ``execute(tasks) -> Iterator[Record | None]``. ``None`` is a
heartbeat, yielded at least every ``heartbeat`` seconds while nothing completes, so the caller can
write finished records on time even while long tasks run. A task that raises, or whose worker dies,
comes back as a failed record; the executor never stops early because of one task.

A unit of work is a ``Task`` (``run(task) -> Record``) or, when the runtime batches ML relaxations, a
``TaskBatch`` (``run(batch) -> list[Record]``, see ``run_task.work_units``): every executor hands units
to its workers and yields one record per task either way; a failed or lost batch fails its tasks.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tansaku.hpc.threads import worker_environment
from tansaku.results.record import Record
from tansaku.workflows.run_task import TaskBatch, failed_record, run_task
from tansaku.workflows.tasks import Task

Work = Task | TaskBatch
TaskRunner = Callable[[Work], Record | list[Record]]


def _records(result: Record | list[Record]) -> list[Record]:
    """The records of one unit's result (a batch's list, or one task's record)."""
    return result if isinstance(result, list) else [result]


def _failed(work: Work, error: str) -> list[Record]:
    """Failed records for every task of a unit that raised or whose worker died."""
    return [failed_record(task, error) for task in (work.tasks if isinstance(work, TaskBatch) else (work,))]


class Executor(Protocol):
    def __call__(self, tasks: Iterable[Work]) -> Iterator[Record | None]: ...


def serial_executor(run: TaskRunner = run_task, heartbeat: float = 1.0, threads_per_task: int | None = None) -> Executor:
    """Run tasks one after another in a background thread of this process (no extra processes).

    ``threads_per_task``: pin this process's BLAS/OpenMP/torch pools to that many threads (None: leave them).
    """

    def execute(tasks: Iterable[Work]) -> Iterator[Record | None]:
        if threads_per_task:
            _pin_worker_threads(threads_per_task)
        results: queue.Queue = queue.Queue(maxsize=64)
        stop = threading.Event()
        consumed = threading.Event()
        done = object()

        def work() -> None:
            for task in tasks:
                if stop.is_set():
                    break
                try:
                    results.put(_records(run(task)))
                except BaseException as exc:  # run_task never raises; a custom runner might
                    results.put(_failed(task, f"{type(exc).__name__}: {exc}"))
                # take the next task only once the caller has seen this record: what the caller learns
                # from it (e.g. a worker's task-time estimate against its deadline) decides the next task
                consumed.wait()
                consumed.clear()
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
                yield from item
                consumed.set()
        finally:
            stop.set()
            consumed.set()

    return execute


def _pin_worker_threads(threads: int = 1) -> None:
    from tansaku.hpc.threads import pin_threads

    pin_threads(threads)


def dask_executor(workers: int, run: TaskRunner = run_task, address: str | None = None,
                  heartbeat: float = 1.0, in_flight_per_worker: int = 4, threads_per_task: int = 1,
                  dashboard: bool = False, dashboard_port: int = 8787) -> Executor:
    """Run tasks on Dask: a LocalCluster started and stopped here (default) or the scheduler at ``address``.

    At most ``in_flight_per_worker * workers`` tasks are submitted at a time, so campaigns of 10^6
    tasks do not flood the scheduler. Each worker process runs one task at a time with BLAS/torch
    pinned to ``threads_per_task`` threads. The LocalCluster's dashboard is off unless ``dashboard``,
    and then bound to 127.0.0.1:``dashboard_port`` only (reach it through an SSH tunnel).
    """

    def execute(tasks: Iterable[Work]) -> Iterator[Record | None]:
        import dask
        from distributed import Client, LocalCluster, wait
        from distributed.diagnostics.plugin import WorkerPlugin

        class PinThreads(WorkerPlugin):
            def setup(self, worker) -> None:  # noqa: ANN001 - dask's signature
                _pin_worker_threads(threads_per_task)

        cluster = None
        if address is None:
            # Our own worker environment replaces dask's default, whose MALLOC_TRIM_THRESHOLD_ makes
            # glibc mmap/munmap every large tensor: measured 2x slower CHGNet relaxations, half in the kernel.
            with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environment(threads_per_task)}):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1",
                                       dashboard_address=f"127.0.0.1:{dashboard_port}" if dashboard else None,
                                       silence_logs=40)
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
                        records = _records(future.result())
                    except Exception as exc:  # worker died (KilledWorker) or the runner raised
                        records = _failed(task, f"{type(exc).__name__}: {exc}")
                    future.release()
                    yield from records
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    return execute


def _pool_initializer(threads: int) -> None:
    """In each pool process: BLAS/torch pinned; SIGINT and SIGTERM ignored (the parent decides when the
    pool stops: a batch system signals the whole process group, and a task killed that way must not be
    stored as failed); SIGKILL when the forkserver, its parent, ends. The forkserver ends when the last
    holder of its "alive" pipe closes it; multiprocessing hands that pipe to every worker too (so that a
    worker may start processes of its own through it), which kept the forkserver, and so the workers, alive
    after a ``kill -9`` of the coordinator. Each worker closes its copy: the coordinator's death then ends
    the forkserver, the workers (PR_SET_PDEATHSIG) and their task sandboxes (which die with the workers)."""
    import signal
    from multiprocessing import forkserver

    from tansaku.hpc.orphans import die_with_parent

    server = forkserver._forkserver
    if getattr(server, "_forkserver_alive_fd", None) is not None:
        os.close(server._forkserver_alive_fd)
        server._forkserver_alive_fd = None
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _pin_worker_threads(threads)


POOL_PRELOAD = ["tansaku.hpc.pool_signals", "tansaku.workflows.run_task"]


def _forkserver_context():
    """The forkserver context of pool workers, its server started now (it imports tansaku once, in the
    background, while this process goes on: each worker is then forked from it ready to run)."""
    import multiprocessing
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    # the forkserver imports tansaku once (each worker is forked from it) and ignores SIGTERM/SIGINT
    context.set_forkserver_preload(POOL_PRELOAD)
    forkserver.ensure_running()
    return context


def pool_executor(workers: int, run: TaskRunner = run_task, heartbeat: float = 1.0,
                  threads_per_task: int = 1, queued: int = 1) -> Executor:
    """Run tasks on ``workers`` local processes (``concurrent.futures``, forkserver start).

    The executor of ``tansaku run`` with ``executor = "pool"`` and of a packed batch job (``tansaku worker
    --workers N``): it starts in well under a second (one forkserver imports tansaku once, each worker is
    forked from it; the forkserver starts when this executor is made, so its imports overlap whatever the
    caller does before running tasks), needs no scheduler, ports or dashboard. ``queued`` tasks per worker
    wait in the pool's queue beyond those running, so a worker that finishes one starts the next without
    waiting for this process; 0 hands a task out only when a process frees up (a deadline then decides
    each new task: ``tansaku worker``). When a process dies the pool is restarted and the tasks that were
    in flight run again one at a time: the one that kills its process alone is failed, the others are
    unharmed. Closing the iterator early kills the processes (their tasks are abandoned, not recorded).
    """
    context = _forkserver_context()

    def start():
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_pool_initializer,
                                   initargs=(threads_per_task,))

    def stop(pool, kill: bool) -> None:
        if kill:
            # by pid: the processes are the forkserver's children, and once a batch system's SIGTERM has
            # ended the forkserver, multiprocessing believes them dead and its own kill() does nothing
            for pid in list(getattr(pool, "_processes", None) or {}):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        pool.shutdown(wait=True, cancel_futures=True)

    def execute(tasks: Iterable[Work]) -> Iterator[Record | None]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        pool = start()
        pending: dict = {}
        suspects: deque[Work] = deque()  # in flight when a process died: re-run one at a time
        isolated = False  # the task in flight is a suspect running alone
        task_iter = iter(tasks)
        exhausted = finished = False
        try:
            while True:
                if suspects:
                    if not pending:
                        task = suspects.popleft()
                        pending[pool.submit(run, task)] = task
                        isolated = True
                else:
                    isolated = False
                    while not exhausted and len(pending) < workers * (1 + queued):
                        task = next(task_iter, None)
                        if task is None:
                            exhausted = True
                            break
                        pending[pool.submit(run, task)] = task
                if not pending:
                    finished = True
                    return
                done, _ = wait(list(pending), timeout=heartbeat, return_when=FIRST_COMPLETED)
                if not done:
                    yield None
                    continue
                broken = False
                for future in done:
                    task = pending.pop(future)
                    records: list[Record] = []
                    try:
                        records = _records(future.result())
                    except BrokenProcessPool as exc:
                        broken = True
                        if isolated and isinstance(task, TaskBatch) and len(task.tasks) > 1:
                            # a batch died alone: its tasks run again one by one to find the one that kills
                            suspects.extend(TaskBatch((t,)) for t in task.tasks)
                        elif isolated:  # it died alone: this task kills its process
                            records = _failed(task, f"worker process died running this task ({exc})")
                        else:
                            suspects.append(task)
                    except Exception as exc:  # the runner raised (run_task never does)
                        records = _failed(task, f"{type(exc).__name__}: {exc}")
                    yield from records
                if broken:
                    suspects.extend(pending.values())
                    pending.clear()
                    stop(pool, kill=True)
                    pool = start()
        finally:
            stop(pool, kill=not finished)

    return execute


# ---------------------------------------------------------------------------------------------------
# The registry: each executor's name, [execution] options and factory. The campaign parser validates
# [execution] against it (key-path errors), the CLI takes its names and overrides from it.


@dataclass(frozen=True)
class ExecutorOption:
    """One [execution] option of an executor: its type, default, smallest allowed value and meaning."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    help: str = ""
    maximum: float | None = None


@dataclass(frozen=True)
class ExecutorSpec:
    """An executor: ``factory(options, run)`` builds it from the validated ``options`` (defaults filled)."""

    name: str
    factory: Callable[[Mapping[str, Any], TaskRunner], Executor]
    options: tuple[ExecutorOption, ...] = ()
    description: str = ""
    parallel: bool = True  # runs several tasks at once (has a ``workers`` option or ranks)
    uses_scheduler: bool = False  # factory(options, run, scheduler): gets the campaign's [scheduler] settings
    prepare: Callable[[], object] | None = None  # cheap start-up begun before planning (prepare_executor)

    def option_names(self) -> list[str]:
        return [o.name for o in self.options]


WORKERS = ExecutorOption("workers", int, 0, 0, "worker processes; 0 = one per core", maximum=4096)
THREADS = ExecutorOption("threads_per_task", int, 1, 1,
                         "BLAS/OpenMP/torch threads of each task (ML potentials: 1; DFT: the cores per task)",
                         maximum=4096)
_EXECUTORS: dict[str, ExecutorSpec] = {}


def register_executor(spec: ExecutorSpec) -> ExecutorSpec:
    """Add (or replace) an executor in the registry."""
    _EXECUTORS[spec.name] = spec
    return spec


def executor_names() -> list[str]:
    return list(_EXECUTORS)


def get_executor_spec(name: str) -> ExecutorSpec:
    try:
        return _EXECUTORS[name]
    except KeyError:
        raise ValueError(f"unknown executor {name!r}; choose {', '.join(_EXECUTORS)}") from None


def n_workers(options: Mapping[str, Any]) -> int:
    """The ``workers`` option with 0 meaning one per core."""
    return int(options.get("workers") or os.cpu_count() or 1)


def prepare_executor(name: str) -> None:
    """Begin the executor's start-up that needs no tasks (the pool's forkserver and its imports), so that
    it runs in the background while the campaign is planned; a no-op for executors without one."""
    spec = _EXECUTORS.get(name)
    if spec is not None and spec.prepare is not None:
        spec.prepare()


def make_executor(name: str, options: Mapping[str, Any] | None = None, run: TaskRunner = run_task,
                  scheduler: Any = None) -> Executor:
    """The executor called ``name`` with ``options`` (validated [execution] options; missing ones default);
    ``scheduler``: the campaign's [scheduler] settings, for executors that start batch jobs."""
    spec = get_executor_spec(name)
    resolved = {o.name: o.default for o in spec.options}
    resolved.update(options or {})
    return spec.factory(resolved, run, scheduler) if spec.uses_scheduler else spec.factory(resolved, run)


register_executor(ExecutorSpec(
    "serial", lambda o, run: serial_executor(run, threads_per_task=o["threads_per_task"]), (THREADS,),
    "one task at a time, in this process", parallel=False))
register_executor(ExecutorSpec(
    "dask", lambda o, run: dask_executor(n_workers(o), run, address=o["address"] or None,
                                         threads_per_task=o["threads_per_task"], dashboard=o["dashboard"],
                                         dashboard_port=o["dashboard_port"]),
    (WORKERS, THREADS,
     ExecutorOption("address", str, "", None, "scheduler of a running Dask cluster (tcp://host:8786); "
                                              "empty: start a LocalCluster"),
     ExecutorOption("dashboard", bool, False, None, "serve the LocalCluster's dashboard (on 127.0.0.1 only)"),
     ExecutorOption("dashboard_port", int, 8787, 1, "port of that dashboard", maximum=65535)),
    "Dask: a LocalCluster started and stopped by tansaku, or an existing scheduler"))
register_executor(ExecutorSpec(
    "pool", lambda o, run: pool_executor(n_workers(o), run, threads_per_task=o["threads_per_task"]),
    (WORKERS, THREADS), "local worker processes (no scheduler; what a packed batch job runs)",
    prepare=_forkserver_context))


def mpi_executor(run: TaskRunner = run_task, heartbeat: float = 1.0) -> Executor:
    """Rank 0's side of ``mpiexec -n N python -m tansaku run CAMPAIGN.toml --executor mpi``: tasks go out
    to ranks 1..N-1 through ``hpc.mpi``'s dynamic queue (whichever rank asks gets the next task), records
    come back as they complete and rank 0, the only writer, stores them. N ranks = N-1 task workers."""
    from tansaku.hpc import mpi

    mpi.comm()  # a clear error now if mpi4py is missing

    def execute(tasks: Iterable[Work]) -> Iterator[Record | None]:
        for item in mpi.serve(tasks, heartbeat=heartbeat):
            if item is None:
                yield None
                continue
            task, result = item
            yield from _failed(task, f"MPI worker: {result.message}") if isinstance(result, mpi.RemoteError) \
                else _records(result)

    return execute


def mpi_worker(run: TaskRunner = run_task, threads_per_task: int = 1) -> int:
    """A worker rank's side: run tasks from rank 0 until it says stop; returns the number run."""
    from tansaku.hpc import mpi

    _pin_worker_threads(threads_per_task)
    return mpi.work(run)


def _mpi_factory(options: Mapping[str, Any], run: TaskRunner) -> Executor:
    return mpi_executor(run)  # threads_per_task applies on the worker ranks (mpi_worker)


register_executor(ExecutorSpec(
    "mpi", _mpi_factory, (THREADS,),
    "under mpiexec: rank 0 plans and writes, the other ranks pull tasks from a queue (needs mpi4py)"))


def jobqueue_worker_job(settings: Any, log_dir: str):
    """One Dask job from ``[scheduler]`` settings (workflows.machine.SchedulerSettings): ``cores`` cores,
    this Python's PYTHONPATH, BLAS/OpenMP pinned to one thread per worker process."""
    from tansaku.hpc.jobs import JobSpec

    environment = {**worker_environment(1), **settings.environment}
    if os.environ.get("PYTHONPATH"):
        environment.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
    return JobSpec(name="tansaku-dask", command=("dask", "worker"), nodes=1, cpus_per_task=settings.cores,
                   memory_mb=settings.memory_mb, walltime=settings.walltime, queue=settings.queue,
                   account=settings.account, directives=settings.directives, setup=settings.setup,
                   environment=environment, log_dir=str(settings.log_dir or log_dir))


def jobqueue_executor(settings: Any, run: TaskRunner = run_task, log_dir: str = "dask-jobqueue-logs") -> Executor:
    """Dask workers started as batch jobs (dask-jobqueue) from ``[scheduler]`` settings, scaled adaptively
    between ``[scheduler.jobqueue]`` minimum_jobs and maximum_jobs; closed when the tasks are done. This
    process stays the one writer of the store, as with the local Dask executor."""
    if settings is None:
        raise ValueError("executor 'dask-jobqueue' needs a [scheduler] table in the campaign")

    def execute(tasks: Iterable[Work]) -> Iterator[Record | None]:
        from tansaku.hpc.jobqueue import make_cluster

        queue_settings = settings.jobqueue
        processes = queue_settings.processes or settings.cores
        cluster = make_cluster(settings.name, jobqueue_worker_job(settings, log_dir),
                               minimum_jobs=queue_settings.minimum_jobs, maximum_jobs=queue_settings.maximum_jobs,
                               processes=processes, interface=queue_settings.interface)
        try:
            yield from dask_executor(queue_settings.maximum_jobs * processes, run=run, address=cluster)(tasks)
        finally:
            cluster.close()

    return execute


register_executor(ExecutorSpec(
    "dask-jobqueue", lambda o, run, scheduler: jobqueue_executor(scheduler, run), (),
    "Dask workers in batch jobs (SLURM/PBS/Torque/LSF via dask-jobqueue) from the campaign's [scheduler], "
    "scaled adaptively; this process writes the store", uses_scheduler=True))
