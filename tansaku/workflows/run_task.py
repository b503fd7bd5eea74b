"""Run one task on a worker and turn the outcome into a Record (never raises)."""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tansaku.calculators import RelaxResult, Runtime, get_calculator, get_spec
from tansaku.calculators.batch import relax_batch
from tansaku.calculators.context import RunContext
from tansaku.calculators.handlers import HandledFailure, relax_with_handlers
from tansaku.results.record import STATUS_FAILED, STATUS_OK, Record
from tansaku.workflows.tasks import CALCULATION_ANISOTROPY, CALCULATION_RELAX, Task, calculator_identity, task_settings

TASK_LOG_VARIABLE = "TANSAKU_TASK_LOG"  # if set, each task start is appended to this file (audit/debug)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _log_start(task: Task) -> None:
    path = os.environ.get(TASK_LOG_VARIABLE)
    if path:
        with open(path, "a") as log:
            log.write(f"{task.task_id} {worker_name()} {time.time():.3f}\n")


def _base_record(task: Task, status: str) -> Record:
    settings_id, settings = task_settings(task)
    return Record(
        task_id=task.task_id, candidate_id=task.candidate_id, kind=task.kind, label=task.label,
        formula=task.formula, prototype=task.prototype, parent=task.parent, calculator=task.calculator,
        stage=task.stage, stage_name=task.stage_name, source_task_id=task.source_task_id,
        configuration=task.configuration, calculation=task.calculation, status=status,
        numbers=task.atoms.numbers.copy(),
        positions=task.atoms.positions.copy(), cell=np.asarray(task.atoms.cell).copy(),
        pbc=task.atoms.pbc.copy(), worker=worker_name(), finished_at=time.time(), settings_id=settings_id,
        settings=settings)


def failed_record(task: Task, error: str) -> Record:
    """A record that stores why ``task`` failed (initial structure kept)."""
    record = _base_record(task, STATUS_FAILED)
    record.error = error
    return record


def _identity(task: Task) -> str:
    try:
        identity = calculator_identity(task.calculator, task.params)
        if task.calculation != CALCULATION_RELAX:
            identity[task.calculation] = dict(task.calculation_params)
        return json.dumps(identity, sort_keys=True, default=str)
    except Exception:  # an unknown calculator: the failure itself says why
        return ""


def run_task(task: Task, runtime: Runtime | None = None) -> Record:
    """Relax ``task.atoms`` with the task's calculator; failures become failed records.

    ``runtime`` (command, cores, device, scratch, retries, timeout; never part of the task id) comes
    from the campaign's ``[calculator.runtime]``; executors pass it with functools.partial. File-based
    (DFT) calculators get a fresh instance and the scratch directory ``<scratch>/<task_id>``, kept when
    the task fails, deleted/kept/archived on success (``runtime.on_success``). Failures the handlers
    recognise are corrected and retried (handlers.py); the history goes into the record.
    """
    _log_start(task)
    start = time.perf_counter()
    runtime = runtime or Runtime()
    context = None
    try:
        spec = get_spec(task.calculator)
        context = RunContext.for_task(runtime, task.task_id) if spec.file_based else \
            RunContext(runtime, runtime.scratch_root / task.task_id)
        if task.calculation == CALCULATION_ANISOTROPY:
            return _anisotropy_record(task, context, spec, start)
        atoms = task.atoms
        if task.params.get("spin") is False and atoms.get_initial_magnetic_moments().any():
            atoms = atoms.copy()  # a spin-paired calculation must not start from moments (GPAW refuses)
            atoms.set_initial_magnetic_moments(None)
        with context.threads(dft=spec.file_based):
            result, attempts = relax_with_handlers(
                atoms, lambda params, ctx: get_calculator(task.calculator, params, ctx), task.params, context,
                task.relax, uses_initial_magmoms=spec.uses_initial_magmoms and task.params.get("spin", True),
                relax_cell=task.relax.relax_cell and task.relax_cell, checkpoint=spec.file_based,
                native_relax=spec.native_relax if task.params.get("relax_driver") == "native" else None,
                moments=spec.magnetic)
    except Exception as exc:  # a failing task must not stop the campaign
        if isinstance(exc, HandledFailure):
            record = failed_record(task, str(exc))
            record.history = exc.attempts.history_json()
        else:
            last = traceback.extract_tb(exc.__traceback__)[-1]
            record = failed_record(task, f"{type(exc).__name__}: {exc} (at {os.path.basename(last.filename)}:"
                                         f"{last.lineno})")
        if context is not None and spec.file_based:
            record.error += f" [scratch kept: {context.directory}]"
        record.params = _identity(task)
        record.wall_time = time.perf_counter() - start
        return record
    record = _ok_record(task, result, attempts.history_json())
    if spec.file_based:
        try:
            context.finish(ok=True)
        except OSError:  # the result is good; a scratch directory that cannot be removed is not a failure
            pass
    record.wall_time = time.perf_counter() - start
    return record


def _anisotropy_record(task: Task, context: RunContext, spec, start: float) -> Record:
    """K1 of the task's fixed structure (calculators.anisotropy); exceptions go to run_task's handler."""
    from tansaku.calculators.anisotropy import compute_anisotropy

    with context.threads(dft=spec.file_based):
        result = compute_anisotropy(task.atoms, task.calculator, task.params, context, task.calculation_params)
    record = _base_record(task, STATUS_OK)
    record.energy, record.energy_per_atom = result.energy, result.energy / len(task.atoms)
    record.magmoms, record.magmom_total = result.magmoms, result.magmom_total
    record.volume, record.steps, record.converged = float(task.atoms.get_volume()), 0, True
    record.k1_fine, record.k1_coarse = result.k1_fine, result.k1_coarse
    record.params, record.scf_iterations = _identity(task), result.scf_iterations
    context.finish(ok=True)
    record.wall_time = time.perf_counter() - start
    return record


def _ok_record(task: Task, result: RelaxResult, history: str) -> Record:
    record = _base_record(task, STATUS_OK)
    final = result.atoms
    record.numbers, record.positions = final.numbers.copy(), final.positions.copy()
    record.cell, record.pbc = np.asarray(final.cell).copy(), final.pbc.copy()
    record.magmoms = result.magmoms
    record.energy = result.energy
    record.energy_per_atom = result.energy / len(final)
    record.fmax, record.stress, record.volume = result.fmax, result.stress, float(final.get_volume())
    record.magmom_total, record.steps, record.converged = result.magmom_total, result.steps, result.converged
    record.params, record.history, record.scf_iterations = _identity(task), history, result.scf_iterations
    return record


def _batch_key(task: Task, runtime: Runtime) -> tuple | None:
    """Tasks with the same key may share one batched relaxation; None: the task runs alone (no batch
    size, a file-based (DFT) calculator, or an unknown calculator, which ``run_task`` reports)."""
    try:
        if runtime.batch_size <= 1 or get_spec(task.calculator).file_based:
            return None
    except Exception:  # noqa: BLE001 - an unknown calculator: run_task says why
        return None
    return task.calculator, _identity(task), task.relax, task.relax.relax_cell and task.relax_cell


def run_tasks(tasks: list[Task], runtime: Runtime | None = None) -> list[Record]:
    """Run a list of tasks on one worker (never raises); records in input order.

    With ``runtime.batch_size`` > 1, tasks of a non-file-based (ML) calculator that share calculator,
    parameters and relaxation settings are relaxed together, one batched model call per step
    (``tansaku.calculators.batch.relax_batch``); the others, and all tasks without a batch size, go
    through ``run_task`` one by one. Batched relaxations skip the failure handlers (ML models have no
    correctable failures); a structure that fails becomes a failed record without stopping the others.
    """
    runtime = runtime or Runtime()
    records: list[Record | None] = [None] * len(tasks)
    groups: dict[tuple, list[int]] = {}
    for i, task in enumerate(tasks):
        key = _batch_key(task, runtime)
        if key is None:
            records[i] = run_task(task, runtime)
        else:
            groups.setdefault(key, []).append(i)
    for (name, _, settings, relax_cell), members in groups.items():
        start = time.perf_counter()
        for i in members:
            _log_start(tasks[i])
        try:
            results = relax_batch([tasks[i].atoms for i in members], name, tasks[members[0]].params, settings,
                                  runtime, relax_cell=relax_cell)
        except Exception as exc:  # noqa: BLE001 - the whole group failed (model does not load): each task says why
            results = [exc] * len(members)
        share = (time.perf_counter() - start) / len(members)  # each structure's part of the batch's time
        for i, result in zip(members, results):
            if isinstance(result, Exception):
                records[i] = failed_record(tasks[i], f"{type(result).__name__}: {result} (batched relaxation)")
                records[i].params = _identity(tasks[i])
            else:
                records[i] = _ok_record(tasks[i], result, "")
            records[i].wall_time = share
    return records  # type: ignore[return-value]


@dataclass(frozen=True)
class TaskBatch:
    """Tasks that one worker runs together with ``run_tasks`` (an executor's unit of work when the
    runtime has a ``batch_size``); ``task_id`` names the batch (its first task's id and its size)."""

    tasks: tuple[Task, ...]

    @property
    def task_id(self) -> str:
        return f"{self.tasks[0].task_id}+{len(self.tasks) - 1}"


def run_batch(batch: TaskBatch, runtime: Runtime | None = None) -> list[Record]:
    """The executor-side runner of a ``TaskBatch``: its records, one per task (never raises)."""
    return run_tasks(list(batch.tasks), runtime)


def work_units(tasks: Sequence[Task], runtime: Runtime, workers: int = 1) -> list[Task | TaskBatch]:
    """What an executor hands to its workers: tasks that can share a batched relaxation (``_batch_key``)
    grouped into ``TaskBatch`` es, every other task alone, in plan order (a batch where its first task was).

    A group of n tasks is cut into equal batches (sizes differ by one at most) of at most ``runtime.batch_size``, their number a
    multiple of ``workers`` so that no worker idles while another relaxes a full batch (e.g. 64 tasks,
    batch_size 64, 2 workers: two batches of 32; 200 tasks: four of 50). Without a batch size every
    task is its own unit.
    """
    if runtime.batch_size <= 1:
        return list(tasks)
    units: list[Task | TaskBatch | list[Task]] = []
    groups: dict[tuple, list[Task]] = {}
    for task in tasks:
        key = _batch_key(task, runtime)
        if key is None:
            units.append(task)
        elif key not in groups:
            groups[key] = [task]
            units.append(groups[key])  # the group's place; filled below
        else:
            groups[key].append(task)
    out: list[Task | TaskBatch] = []
    workers = max(1, workers)
    for unit in units:
        if not isinstance(unit, list):
            out.append(unit)
            continue
        batches = -(-len(unit) // runtime.batch_size)
        batches = min(len(unit), -(-batches // workers) * workers)
        size, extra = divmod(len(unit), batches)  # the first ``extra`` batches take one task more
        start = 0
        for k in range(batches):
            end = start + size + (k < extra)
            out.append(TaskBatch(tuple(unit[start:end])))
            start = end
    return out
