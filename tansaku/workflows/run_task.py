"""Run one task on a worker and turn the outcome into a Record (never raises)."""

from __future__ import annotations

import os
import socket
import time
import traceback

import numpy as np

from tansaku.calculators import get_calculator, get_spec, relax
from tansaku.results.record import STATUS_FAILED, STATUS_OK, Record
from tansaku.workflows.tasks import Task

TASK_LOG_VARIABLE = "TANSAKU_TASK_LOG"  # if set, each task start is appended to this file (audit/debug)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _log_start(task: Task) -> None:
    path = os.environ.get(TASK_LOG_VARIABLE)
    if path:
        with open(path, "a") as log:
            log.write(f"{task.task_id} {worker_name()} {time.time():.3f}\n")


def _base_record(task: Task, status: str) -> Record:
    return Record(
        task_id=task.task_id, candidate_id=task.candidate_id, kind=task.kind, label=task.label,
        formula=task.formula, prototype=task.prototype, parent=task.parent, calculator=task.calculator,
        stage=task.stage, status=status, numbers=task.atoms.numbers.copy(),
        positions=task.atoms.positions.copy(), cell=np.asarray(task.atoms.cell).copy(),
        pbc=task.atoms.pbc.copy(), worker=worker_name(), finished_at=time.time())


def failed_record(task: Task, error: str) -> Record:
    """A record that stores why ``task`` failed (initial structure kept)."""
    record = _base_record(task, STATUS_FAILED)
    record.error = error
    return record


def run_task(task: Task) -> Record:
    """Relax ``task.atoms`` with the task's calculator; failures become failed records."""
    _log_start(task)
    start = time.perf_counter()
    try:
        spec = get_spec(task.calculator)
        calc = get_calculator(task.calculator, task.params)
        result = relax(task.atoms, calc, task.relax, uses_initial_magmoms=spec.uses_initial_magmoms,
                       relax_cell=task.relax.relax_cell and task.relax_cell)
    except Exception as exc:  # a failing task must not stop the campaign
        last = traceback.extract_tb(exc.__traceback__)[-1]
        record = failed_record(task, f"{type(exc).__name__}: {exc} (at {os.path.basename(last.filename)}:"
                                     f"{last.lineno})")
        record.wall_time = time.perf_counter() - start
        return record
    record = _base_record(task, STATUS_OK)
    final = result.atoms
    record.numbers, record.positions = final.numbers.copy(), final.positions.copy()
    record.cell, record.pbc = np.asarray(final.cell).copy(), final.pbc.copy()
    record.magmoms = result.magmoms
    record.energy = result.energy
    record.energy_per_atom = result.energy / len(final)
    record.fmax, record.stress, record.volume = result.fmax, result.stress, float(final.get_volume())
    record.magmom_total, record.steps, record.converged = result.magmom_total, result.steps, result.converged
    record.wall_time = time.perf_counter() - start
    return record
