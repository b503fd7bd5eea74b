"""``tansaku submit``: run a campaign's saved plan as batch jobs that write shards.

- **array**: one job array; element ``i`` of ``N`` runs ``tansaku worker --select i/N`` on a task-list
  file and writes its own shard;
- **packed**: one allocation runs ``tansaku worker --workers <cores>`` on the whole list and stops
  taking tasks ``deadline_margin`` before its walltime ends, so a walltime kill loses nothing.

Submitted jobs are recorded in ``<output stem>.jobs.json`` next to the store (the scheduler, job id,
mode, task-list file, number of array elements). ``--resume`` submits only the tasks neither stored,
nor in a shard, nor covered by a job (or array element) still queued or running; ``tansaku collect``
merges the shards into the store. Scripts run the same Python (``sys.executable -m tansaku``) with the
same ``PYTHONPATH`` as the submitting shell.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tansaku.hpc.jobs import ACTIVE_STATES, UNKNOWN, JobSpec, SchedulerError
from tansaku.hpc.render import render_script
from tansaku.hpc.schedulers import combine, element_index, get_scheduler, poll_elements, submit_script, write_script
from tansaku.workflows.campaign import Campaign
from tansaku.workflows.machine import SchedulerSettings
from tansaku.workflows.worker import TaskListError, read_task_list, select

MODES = ("array", "packed")
JOBS_SUFFIX = ".jobs.json"
JOBS_FORMAT = "tansaku-jobs"


class SubmitError(ValueError):
    """A submission that cannot be made; the message says why (one line)."""


@dataclass(frozen=True)
class SubmittedJob:
    """One submitted batch job (a whole job array counts as one)."""

    job_id: str
    scheduler: str
    mode: str
    elements: int  # array elements (1 for a packed job)
    task_list: str  # file with the job's task ids, one per line
    script: str
    shard: str  # shard file pattern ({array_index} for arrays)
    submitted: float  # Unix time
    tasks: int


@dataclass
class JobStatus:
    job: SubmittedJob
    state: str
    elements: dict[int, str] = field(default_factory=dict)  # array index -> state, as the scheduler knows it


def jobs_path(campaign: Campaign) -> Path:
    """``<output stem>.jobs.json`` next to the store."""
    return campaign.output.with_name(campaign.output.stem + JOBS_SUFFIX)


def jobs_dir(campaign: Campaign) -> Path:
    """Task lists, job scripts and (by default) logs of the campaign's submissions."""
    return campaign.output.with_name(campaign.output.stem + ".jobs")


def read_jobs(campaign: Campaign) -> list[SubmittedJob]:
    path = jobs_path(campaign)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        if data.get("format") != JOBS_FORMAT:
            raise ValueError(f"not a {JOBS_FORMAT} file")
        return [SubmittedJob(**job) for job in data["jobs"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SubmitError(f"{path}: cannot read the campaign's jobs file: {exc}") from None


def _write_jobs(path: Path, jobs: Sequence[SubmittedJob]) -> None:
    """Replace the jobs file atomically (a crash leaves the old or the new file, never half of one)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        json.dump({"format": JOBS_FORMAT, "version": 1, "jobs": [asdict(j) for j in jobs]}, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def job_statuses(jobs: Sequence[SubmittedJob]) -> list[JobStatus]:
    """The scheduler's view of each recorded job; a job it no longer knows is ``unknown``."""
    statuses = []
    for scheduler in sorted({j.scheduler for j in jobs}):
        mine = [j for j in jobs if j.scheduler == scheduler]
        rows = poll_elements(scheduler, [j.job_id for j in mine])
        for job in mine:
            elements: dict[int, str] = {}
            states = []
            for job_id, element, state in rows:
                if job_id != job.job_id:
                    continue
                index = element_index(scheduler, element)
                if index is not None:
                    elements[index] = state
                states.append(state)
            statuses.append(JobStatus(job, combine(states) if states else UNKNOWN, elements))
    return statuses


def covered_task_ids(statuses: Sequence[JobStatus]) -> set[str]:
    """Task ids that queued or running jobs (or array elements) will still run."""
    covered: set[str] = set()
    for status in statuses:
        if status.state not in ACTIVE_STATES:
            continue
        try:
            ids = read_task_list(status.job.task_list)
        except TaskListError as exc:
            raise SubmitError(str(exc)) from None
        if status.job.mode == "packed" or not status.elements:
            covered.update(ids)
            continue
        for index, state in status.elements.items():
            if state in ACTIVE_STATES:
                covered.update(select(ids, (index, status.job.elements)))
    return covered


def worker_command(campaign_file: Path, task_list: Path, shard: str, workers: int, select_arg: str | None,
                   deadline: str | None, task_seconds: float) -> tuple[str, ...]:
    """``tansaku worker`` run by this Python (``sys.executable -m tansaku``); ``workers`` 1 runs the
    tasks in the worker process itself (no pool)."""
    command = [sys.executable, "-m", "tansaku", "worker", str(campaign_file), "--task-list", str(task_list),
               "--shard", shard, "--workers", str(workers if workers > 1 else 0), "--task-seconds", f"{task_seconds:g}"]
    if select_arg:
        command += ["--select", select_arg]
    if deadline:
        command += ["--deadline", deadline]
    return tuple(command)


def job_spec(campaign: Campaign, campaign_file: Path, settings: SchedulerSettings, mode: str, task_list: Path,
             elements: int, shard: str, name: str) -> JobSpec:
    """The batch job of one submission."""
    environment = dict(settings.environment)
    if os.environ.get("PYTHONPATH"):
        environment.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
    if mode == "array":
        array = f"0-{elements - 1}" + (f"%{settings.max_running}" if settings.max_running else "")
        command = worker_command(campaign_file, task_list, shard, settings.cores, f"{{array_index}}/{elements}", None,
                                 settings.task_seconds)
    else:
        array = None
        command = worker_command(campaign_file, task_list, shard, settings.cores, None,
                                 f"{{job_end-{settings.deadline_margin}}}", settings.task_seconds)
    return JobSpec(
        name=name, command=command, nodes=settings.nodes, ntasks=1, cpus_per_task=settings.cores,
        memory_mb=settings.memory_mb, walltime=settings.walltime, queue=settings.queue, account=settings.account,
        array=array, directives=settings.directives, setup=settings.setup, environment=environment,
        log_dir=str(settings.log_dir or jobs_dir(campaign) / "logs"), working_dir=os.getcwd())


@dataclass
class Submission:
    """What ``submit`` did (or would do, with ``dry_run``)."""

    pending: int  # tasks neither stored nor in a shard
    covered: int  # of those, already covered by queued/running jobs
    submitted: int  # tasks in the new job
    job: SubmittedJob | None = None
    script_text: str = ""


def array_elements(settings: SchedulerSettings, tasks: int) -> int:
    return max(1, min(settings.max_array_size, math.ceil(tasks / settings.tasks_per_element)))


def submit_campaign(campaign: Campaign, campaign_file: Path, settings: SchedulerSettings, pending: Sequence[str],
                    shard_dir: Path, mode: str = "array", resume: bool = False, dry_run: bool = False) -> Submission:
    """Submit the ``pending`` task ids (in plan order) as one job array or one packed job.

    Without ``resume`` a campaign that already has recorded jobs is refused (submitting again would run
    tasks twice); with it, tasks covered by queued or running jobs are left out.
    """
    if mode not in MODES:
        raise SubmitError(f"--mode: unknown mode {mode!r}; choose {', '.join(MODES)}")
    get_scheduler(settings.name)
    jobs = read_jobs(campaign)
    if jobs and not resume:
        raise SubmitError(f"{campaign.name}: {len(jobs)} job(s) already submitted (see {jobs_path(campaign)}); "
                          f"use --resume to submit only what is neither stored, in a shard, nor queued/running")
    try:
        covered = covered_task_ids(job_statuses(jobs)) if jobs else set()
    except SchedulerError as exc:
        raise SubmitError(str(exc)) from None
    todo = [task_id for task_id in pending if task_id not in covered]
    result = Submission(pending=len(pending), covered=len(pending) - len(todo), submitted=len(todo))
    if not todo:
        return result
    number = len(jobs) + 1
    directory = jobs_dir(campaign) / f"{number:03d}-{mode}"
    elements = array_elements(settings, len(todo)) if mode == "array" else 1
    shard = str(shard_dir / (f"{number:03d}-{{array_index}}.h5" if mode == "array" else f"{number:03d}-packed.h5"))
    name = f"tansaku-{_safe(campaign.name)}-{number:03d}"
    task_list = directory / "tasks.txt"
    spec = job_spec(campaign, campaign_file.resolve(), settings, mode, task_list, elements, shard, name)
    if dry_run:
        result.script_text = render_script(spec, get_scheduler(settings.name).template, settings.template_dir)
        return result
    directory.mkdir(parents=True, exist_ok=True)
    shard_dir.mkdir(parents=True, exist_ok=True)
    Path(spec.log_dir).mkdir(parents=True, exist_ok=True)
    task_list.write_text("".join(f"{t}\n" for t in todo))
    script = write_script(spec, settings.name, directory / "job.sh", settings.template_dir)
    try:
        job_id = submit_script(settings.name, script)
    except SchedulerError as exc:
        raise SubmitError(str(exc)) from None
    result.job = SubmittedJob(job_id=job_id, scheduler=settings.name, mode=mode, elements=elements,
                              task_list=str(task_list), script=str(script), shard=shard, submitted=time.time(),
                              tasks=len(todo))
    _write_jobs(jobs_path(campaign), [*jobs, result.job])
    return result


def _safe(name: str) -> str:
    text = "".join(c if c.isalnum() or c in "_.-" else "-" for c in name)
    return text[:40] or "campaign"
