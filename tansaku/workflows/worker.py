"""A detached worker: run listed tasks of the saved plan into its own shard file (``tansaku worker``).

What a job-array element or a packed batch job runs. It never plans: tasks come from the saved plan
(``planfile``), checked against the campaign. It skips tasks already in its shard (a re-submitted job
resumes), writes its shard as a normal results store (one writer), and stops cleanly:

- with a deadline (the job's end, unix seconds) it starts a task only while the time left exceeds the
  expected task time (the longest finished task so far, or ``prior_seconds`` before any finished) plus a
  margin for the last write; tasks in flight are finished, records flushed, and it returns normally;
- on SIGTERM (what SLURM, PBS and LSF send before killing a job) it stops at once: finished records are
  flushed, tasks in flight are abandoned (they stay pending for ``submit --resume``), never stored as failed.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from tansaku.results import Store
from tansaku.results.record import Record
from tansaku.workflows.campaign import Campaign
from tansaku.workflows.executors import Executor, make_executor, pool_executor
from tansaku.workflows.planfile import check_plan, load_tasks
from tansaku.workflows.sandbox import task_runner
from tansaku.workflows.runner import RunSummary, store_records, tasks_to_run
from tansaku.workflows.tasks import Task


class TaskListError(ValueError):
    """An unreadable task list or a bad ``--select``."""


def read_task_list(path: str | Path) -> list[str]:
    """Task ids, one per line (blank lines and ``#`` comments ignored)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise TaskListError(f"{path}: cannot read the task list: {exc.strerror}") from None
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def parse_select(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N: every N-th task starting at the I-th (job array element I of N)."""
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise TaskListError(f"--select: expected I/N (e.g. 3/10), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise TaskListError(f"--select: need 0 <= I < N, got {text!r}")
    return i, n


def select(ids: Sequence[str], spec: tuple[int, int] | None) -> list[str]:
    """The ids of one array element: every N-th starting at I (all of them without a spec)."""
    if spec is None:
        return list(ids)
    i, n = spec
    return list(ids[i::n])


@dataclass
class DeadlineGate:
    """Hands out tasks while there is time for them; learns the expected task time from finished ones.

    ``deadline``: unix seconds (None: no limit). A task starts only if
    ``deadline - now > expected + margin_seconds``, where expected is the longest wall time finished so far
    (``prior_seconds`` until one finishes). ``stop`` (an Event) ends the hand-out at once.
    """

    deadline: float | None = None
    prior_seconds: float = 60.0
    margin_seconds: float = 5.0
    stop: threading.Event = field(default_factory=threading.Event)
    wall_times: list[float] = field(default_factory=list)
    held_back: int = 0  # tasks not started because time ran out (or stop was set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expected(self) -> float:
        with self._lock:
            return max(self.wall_times) if self.wall_times else self.prior_seconds

    def may_start(self) -> bool:
        if self.stop.is_set():
            return False
        return self.deadline is None or self.deadline - time.time() > self.expected() + self.margin_seconds

    def observe(self, record: Record) -> None:
        if record.wall_time == record.wall_time:  # not NaN
            with self._lock:
                self.wall_times.append(float(record.wall_time))

    def gate(self, tasks: Sequence[Task]) -> Iterator[Task]:
        for k, task in enumerate(tasks):
            if not self.may_start():
                self.held_back = len(tasks) - k
                return
            yield task


@dataclass
class WorkerSummary(RunSummary):
    shard: str = ""
    listed: int = 0
    held_back: int = 0  # not started: the deadline was near or SIGTERM came
    terminated: bool = False  # stopped by SIGTERM


class _Terminate:
    """SIGTERM sets ``event`` while installed (main thread only; elsewhere a no-op)."""

    def __init__(self, event: threading.Event) -> None:
        self.event, self.previous = event, None

    def __enter__(self) -> _Terminate:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def run_worker(campaign: Campaign, task_ids: Iterable[str], shard: str | Path, workers: int = 0,
               deadline: float | None = None, prior_seconds: float = 60.0, margin_seconds: float = 5.0,
               rerun_failed: bool = False, executor: Executor | None = None, console: Console | None = None,
               show_progress: bool = False) -> WorkerSummary:
    """Run ``task_ids`` (from the campaign's saved plan) into the store file ``shard``.

    ``workers`` > 0 runs a local process pool of that size (the packed job), else tasks run one after
    another in this process. Raises PlanError for a missing/outdated plan or unknown ids.
    """
    console = console or Console(stderr=True)
    start = time.perf_counter()
    shard = Path(shard)
    ids = list(dict.fromkeys(task_ids))
    tasks = load_tasks(check_plan(campaign), ids)
    stages = {t.stage_name or campaign.stage_name for t in tasks}
    if campaign.is_funnel and len(stages) == 1:  # a funnel's stage runs with its own runtime and threads
        campaign = campaign.for_stage(stages.pop())
    summary = WorkerSummary(shard=str(shard), listed=len(ids), tasks=len(tasks))
    threads = int(campaign.execution.options.get("threads_per_task", 1))
    if executor is None:
        run = task_runner(campaign)
        # with a deadline a task is handed out only when a process frees up (queued = 0): the gate decides it
        executor = pool_executor(workers, run, threads_per_task=threads, queued=0 if deadline else 1) \
            if workers > 0 else make_executor("serial", {"threads_per_task": threads}, run)
    gate = DeadlineGate(deadline=deadline, prior_seconds=prior_seconds, margin_seconds=margin_seconds)
    shard.parent.mkdir(parents=True, exist_ok=True)
    with _Terminate(gate.stop), Store.open(shard, campaign_text=campaign.text) as store:
        todo = tasks_to_run(tasks, store.statuses(), rerun_failed)
        summary.already_stored = len(tasks) - len(todo)
        if todo and gate.may_start():
            store_records(store, executor, gate.gate(todo), summary, campaign.execution, f"worker {shard.name}",
                          console, show_progress, total=len(todo), stop=gate.stop.is_set, observe=gate.observe,
                          start=start)
        summary.terminated = gate.stop.is_set()
        summary.held_back = len(todo) - summary.ran
    summary.wall_seconds = time.perf_counter() - start
    return summary
