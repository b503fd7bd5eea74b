"""Run a campaign: plan, skip what is stored, execute, and append records in batches (one writer)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence, Sized
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tansaku.results import Store
from tansaku.results.record import STATUS_FAILED, STATUS_OK, Record
from tansaku.workflows.campaign import Campaign, Execution
from tansaku.workflows.executors import (
    Executor,
    get_executor_spec,
    make_executor,
    n_workers,
    prepare_executor,
)
from tansaku.workflows.plan import Plan
from tansaku.workflows.run_task import work_units
from tansaku.workflows.sandbox import task_runner
from tansaku.workflows.tasks import Task


@dataclass
class RunSummary:
    """What a run did; ``write_seconds`` is the time spent in HDF5 appends."""

    generated: int = 0
    duplicates: int = 0
    candidates: int = 0
    references: int = 0
    tasks: int = 0
    already_stored: int = 0
    ran: int = 0
    ok: int = 0
    failed: int = 0
    unconverged: int = 0  # ok records whose relaxation hit its step limit (kept off the hull and the ranking)
    records_written: int = 0
    write_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def records_per_second_written(self) -> float:
        return self.records_written / self.write_seconds if self.write_seconds else float("nan")


def tasks_to_run(tasks: Sequence[Task], statuses: dict[str, str], rerun_failed: bool) -> list[Task]:
    """Tasks not stored yet; failed ones too when ``rerun_failed``."""
    todo = []
    for task in tasks:
        status = statuses.get(task.task_id)
        if status is None or (status == STATUS_FAILED and rerun_failed):
            todo.append(task)
    return todo


def longest_first(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` by decreasing expected cost, the number of atoms (stable: plan order among equals). On W
    workers the last tasks handed out are then the shortest, so no worker runs on long after the others
    have finished (the tail of a parallel run is at most one short task)."""
    return sorted(tasks, key=lambda task: -len(task.atoms))


class _BatchWriter:
    """Buffers records and appends them when the batch is full or the oldest waited too long."""

    def __init__(self, store: Store, summary: RunSummary, batch_size: int, flush_seconds: float):
        self.store, self.summary = store, summary
        self.batch_size, self.flush_seconds = batch_size, flush_seconds
        self.buffer: list[Record] = []
        self.oldest = 0.0

    def add(self, record: Record | None) -> None:
        if record is not None:
            if not self.buffer:
                self.oldest = time.monotonic()
            self.buffer.append(record)
        if len(self.buffer) >= self.batch_size or (
                self.buffer and time.monotonic() - self.oldest >= self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        start = time.perf_counter()
        self.store.append(self.buffer)
        self.summary.write_seconds += time.perf_counter() - start
        self.summary.records_written += len(self.buffer)
        self.buffer = []


def _progress(console: Console, show: bool = True) -> Progress:
    """The progress bar; not shown: no display thread at all (rich redraws a live display 10 times a second,
    CPU taken from the workers on a small machine), shown: redrawn twice a second."""
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False), BarColumn(),  # the name is text, not markup
        TextColumn("{task.completed}/{task.total} done, {task.fields[failed]} failed, "
                   "{task.fields[rate]:.1f} tasks/min"), TimeElapsedColumn(),
        console=console, transient=False, disable=not show, refresh_per_second=2)


def execute_plan(plan: Plan, campaign: Campaign, executor: Executor | None = None, rerun_failed: bool = False,
                 console: Console | None = None, show_progress: bool = True) -> RunSummary:
    """Run the plan's unfinished tasks and store their records in the campaign's output file."""
    console = console or Console(stderr=True)
    summary = RunSummary(
        generated=plan.generated, duplicates=plan.duplicates, candidates=plan.candidates,
        references=plan.references, tasks=len(plan.tasks))
    start = time.perf_counter()
    campaign.output.parent.mkdir(parents=True, exist_ok=True)
    with Store.open(campaign.output, campaign_text=campaign.text) as store:
        todo = tasks_to_run(plan.tasks, store.statuses(), rerun_failed)
        summary.already_stored = len(plan.tasks) - len(todo)
        if todo:
            units: list = todo
            if executor is None:  # ours: ML tasks go out in batches when the runtime has a batch_size
                runtime = campaign.calculator.runtime
                units = work_units(longest_first(todo), runtime, _parallel_workers(campaign.execution))
                executor = make_executor(campaign.execution.executor, campaign.execution.options, task_runner(campaign),
                                         scheduler=campaign.scheduler)
            store_records(store, executor, units, summary, campaign.execution, campaign.name, console, show_progress,
                          total=len(todo), start=start)
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _parallel_workers(execution: Execution) -> int:
    """How many tasks the executor runs at once (what batches are split across)."""
    if not get_executor_spec(execution.executor).parallel:
        return 1
    return n_workers(execution.options) if "workers" in execution.options else 1


def store_records(store: Store, executor: Executor, tasks: Iterable[Task], summary: RunSummary,
                  execution: Execution, title: str, console: Console, show_progress: bool = True,
                  total: int | None = None, stop: Callable[[], bool] | None = None,
                  observe: Callable[[Record], None] | None = None, start: float | None = None) -> None:
    """Feed ``tasks`` to ``executor`` and append its records to ``store`` in batches (the one writer).

    ``tasks`` are the executor's units of work: tasks, or ``TaskBatch`` es of tasks (then give ``total``,
    the number of records to expect).

    ``stop()`` is asked after every record and heartbeat: True ends the run at once (tasks in flight
    are abandoned); ``observe(record)`` sees each record. Finished records are flushed in every case,
    also on Ctrl-C.
    """
    start = time.perf_counter() if start is None else start
    writer = _BatchWriter(store, summary, execution.batch_size, execution.flush_seconds)
    total = total if total is not None else (len(tasks) if isinstance(tasks, Sized) else None)
    records = executor(iter(tasks))
    with _progress(console, show_progress) as progress:
        bar = progress.add_task(title, total=total, failed=0, rate=0.0, visible=show_progress)
        try:
            for record in records:
                writer.add(record)
                if record is not None:
                    _count(summary, record)
                    if observe is not None:
                        observe(record)
                    minutes = (time.perf_counter() - start) / 60
                    progress.update(bar, advance=1, failed=summary.failed, rate=summary.ran / max(minutes, 1e-9))
                if stop is not None and stop():
                    break
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()  # stop the executor (and its workers) before the last write
            writer.flush()  # also on Ctrl-C: finished records are never dropped


def _count(summary: RunSummary, record: Record) -> None:
    summary.ran += 1
    if record.status == STATUS_OK:
        summary.ok += 1
        summary.unconverged += record.steps > 0 and not record.converged  # a single point has nothing to converge
    else:
        summary.failed += 1
        summary.failures.append(f"{record.task_id} {record.label}: {record.error}")


def run_campaign(campaign: Campaign, rerun_failed: bool = False, console: Console | None = None,
                 show_progress: bool = True) -> RunSummary:
    """Plan (or reuse the saved plan) and run a single-stage campaign; re-running it resumes (stored tasks
    are skipped). A funnel ([[stages]]) is run by ``tansaku.workflows.funnel.run_funnel`` (ValueError here)."""
    from tansaku.workflows.planfile import ensure_plan

    if campaign.is_funnel:
        raise ValueError(f"{campaign.source}: a funnel ([[stages]]) runs with tansaku.workflows.funnel.run_funnel")
    prepare_executor(campaign.execution.executor)  # e.g. the pool's forkserver imports while the plan is made
    plan, _ = ensure_plan(campaign)
    return execute_plan(plan, campaign, rerun_failed=rerun_failed, console=console, show_progress=show_progress)
