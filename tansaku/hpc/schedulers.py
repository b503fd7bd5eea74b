"""Submit, poll and cancel batch jobs: one registry entry per scheduler (slurm, pbs, torque, lsf).

Every command is an argument list run without a shell. ``poll`` returns one common state per job
(``hpc.jobs.STATES``), combining the elements of a job array: running while any element runs,
pending while any waits, done when all are done, else failed or cancelled.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tansaku.hpc import lsf, pbs, slurm
from tansaku.hpc.jobs import CANCELLED, DONE, FAILED, PENDING, RUNNING, UNKNOWN, JobSpec, SchedulerError
from tansaku.hpc.render import render_script

COMMAND_TIMEOUT = 60.0  # seconds; a scheduler that does not answer in a minute is reported, not waited for


@dataclass(frozen=True)
class Scheduler:
    name: str
    template: str  # template file stem in hpc/templates (or the user's template_dir)
    submit: tuple[str, ...]
    script_on_stdin: bool  # bsub reads #BSUB lines only from standard input
    parse_submit: Callable[[str], str]
    poll_command: Callable[[list[str]], list[str]]
    parse_poll: Callable[[str], list[tuple[str, str, str]]]
    unknown_jobs_error: Callable[[str], bool]
    cancel_command: Callable[[list[str]], list[str]]


SCHEDULERS = {
    "slurm": Scheduler("slurm", "slurm", slurm.SUBMIT, False, slurm.parse_submit, slurm.poll_command,
                       slurm.parse_poll, slurm.unknown_jobs_error, slurm.cancel_command),
    "pbs": Scheduler("pbs", "pbs", pbs.SUBMIT, False, pbs.parse_submit, pbs.poll_command, pbs.parse_poll,
                     pbs.unknown_jobs_error, pbs.cancel_command),
    "torque": Scheduler("torque", "torque", pbs.SUBMIT, False, pbs.parse_submit,
                        lambda ids: pbs.poll_command(ids, torque=True), pbs.parse_poll, pbs.unknown_jobs_error,
                        pbs.cancel_command),
    "lsf": Scheduler("lsf", "lsf", lsf.SUBMIT, True, lsf.parse_submit, lsf.poll_command, lsf.parse_poll,
                     lsf.unknown_jobs_error, lsf.cancel_command),
}


def get_scheduler(name: str) -> Scheduler:
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; choose {', '.join(SCHEDULERS)}") from None


def _run(command: Sequence[str], stdin_path: Path | None = None) -> subprocess.CompletedProcess:
    try:
        if stdin_path is not None:
            with open(stdin_path, "rb") as stdin:
                return subprocess.run(list(command), stdin=stdin, capture_output=True, text=True,
                                      timeout=COMMAND_TIMEOUT, check=False)
        return subprocess.run(list(command), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)
    except FileNotFoundError:
        raise SchedulerError(f"{command[0]}: command not found (is this a {command[0]} cluster login node?)") \
            from None
    except subprocess.TimeoutExpired:
        raise SchedulerError(f"{' '.join(command)}: no answer in {COMMAND_TIMEOUT:.0f} s") from None


def write_script(job: JobSpec, scheduler: str, path: Path, template_dir: str | Path | None = None) -> Path:
    """Render ``job`` for ``scheduler`` into ``path`` (made executable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_script(job, get_scheduler(scheduler).template, template_dir))
    path.chmod(0o755)
    return path


def submit_script(scheduler: str, path: Path, extra: Sequence[str] = ()) -> str:
    """Submit a job script; returns the scheduler's job id."""
    entry = get_scheduler(scheduler)
    if entry.script_on_stdin:
        result = _run([*entry.submit, *extra], stdin_path=path)
    else:
        result = _run([*entry.submit, *extra, str(path)])
    if result.returncode != 0:
        raise SchedulerError(f"{entry.submit[0]} {path}: {(result.stderr or result.stdout).strip()}")
    return entry.parse_submit(result.stdout)


def submit(job: JobSpec, scheduler: str, script: Path, template_dir: str | Path | None = None) -> str:
    """Render ``job`` into ``script`` and submit it; returns the job id. Creates ``job.log_dir``
    (schedulers do not, and a job whose log file cannot be opened fails to launch)."""
    if job.log_dir:
        Path(job.log_dir).mkdir(parents=True, exist_ok=True)
    return submit_script(scheduler, write_script(job, scheduler, script, template_dir))


def combine(states: Sequence[str]) -> str:
    """One state for the elements of a job array."""
    if not states:
        return UNKNOWN
    for state in (RUNNING, PENDING):
        if state in states:
            return state
    if all(s == DONE for s in states):
        return DONE
    for state in (FAILED, CANCELLED):
        if state in states:
            return state
    return UNKNOWN


def poll_elements(scheduler: str, job_ids: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(job id, element id, state)`` of every job and array element the scheduler still knows."""
    if not job_ids:
        return []
    entry = get_scheduler(scheduler)
    result = _run(entry.poll_command(list(job_ids)))
    if result.returncode != 0 and not entry.unknown_jobs_error(result.stderr):
        raise SchedulerError(f"{' '.join(entry.poll_command(list(job_ids)))}: {result.stderr.strip()}")
    return entry.parse_poll(result.stdout)


def poll(scheduler: str, job_ids: Sequence[str]) -> dict[str, str]:
    """The common state of each job (``unknown`` once the scheduler has forgotten it)."""
    by_job: dict[str, list[str]] = {job: [] for job in job_ids}
    for job, _, state in poll_elements(scheduler, job_ids):
        if job in by_job:
            by_job[job].append(state)
    return {job: combine(states) for job, states in by_job.items()}


def cancel(scheduler: str, job_ids: Sequence[str]) -> None:
    """Cancel jobs (all elements of an array job)."""
    if not job_ids:
        return
    entry = get_scheduler(scheduler)
    result = _run(entry.cancel_command(list(job_ids)))
    if result.returncode != 0 and not entry.unknown_jobs_error(result.stderr):
        raise SchedulerError(f"{' '.join(entry.cancel_command(list(job_ids)))}: {result.stderr.strip()}")


def element_index(scheduler: str, element: str) -> int | None:
    """The 0-based array index of an element id (``123_4``, ``123[4].server``, LSF's 1-based ``123[5]``),
    as the job script's ``{array_index}`` sees it; None for a job that is not an array element."""
    match = re.search(r"_(\d+)$", element) if scheduler == "slurm" else re.search(r"\[(\d+)\]", element)
    if not match:
        return None
    return int(match.group(1)) - (1 if scheduler == "lsf" else 0)
