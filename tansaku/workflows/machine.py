"""Where and how batch jobs run: the ``[scheduler]`` table of a campaign or of a machine profile file.

A machine profile (``tansaku submit CAMPAIGN.toml --machine cluster.toml``) is a TOML file with the
same ``[scheduler]`` table; it replaces the campaign's. Nothing here enters a task id: moving a
campaign to another cluster recomputes nothing.

    [scheduler]
    name = "slurm"                 # slurm | pbs | torque | lsf
    queue = "debug"                # partition (SLURM) or queue
    account = "mat-123"
    walltime = "02:00:00"          # per job: HH:MM:SS, D-HH:MM:SS, 90m, 2h
    memory = "4G"                  # per job (per node)
    cores = 8                      # packed job: worker processes; array: cores per element
    nodes = 1
    tasks_per_element = 20         # array mode: about this many tasks per array element
    max_array_size = 1000          # never more array elements than this
    max_running = 0                # array elements running at once (0: no limit; SLURM's %N)
    deadline_margin = "5m"         # packed: stop taking tasks this long before the walltime ends
    task_seconds = 60              # expected time of one task until the first one has finished
    directives = ["--qos=normal"]  # extra scheduler options
    setup = ["module load python/3.11"]   # shell lines run before tansaku
    environment = { OMP_PROC_BIND = "false" }
    template_dir = "templates/"    # your own slurm.sh.j2 / pbs.sh.j2 / torque.sh.j2 / lsf.sh.j2
    log_dir = "logs/"              # job logs (default: next to the store, <store>.jobs/logs)
    [scheduler.jobqueue]           # the dask-jobqueue executor (adaptive Dask workers in batch jobs)
    minimum_jobs = 1               # 0 only with processes = 1 (see _jobqueue)
    maximum_jobs = 4
    processes = 2                  # Dask worker processes per job (default: cores)
    interface = "ib0"              # network interface of the workers (default: dask's choice)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from tansaku.hpc.jobs import parse_memory, parse_walltime
from tansaku.hpc.schedulers import SCHEDULERS
from tansaku.workflows.reader import CampaignError, _Reader


@dataclass(frozen=True)
class JobqueueSettings:
    minimum_jobs: int = 1
    maximum_jobs: int = 1
    processes: int = 0  # 0: one per core
    interface: str | None = None


@dataclass(frozen=True)
class SchedulerSettings:
    name: str = "slurm"
    queue: str | None = None
    account: str | None = None
    walltime: int = 3600  # seconds
    memory_mb: int | None = None
    cores: int = 1
    nodes: int = 1
    tasks_per_element: int = 20
    max_array_size: int = 1000
    max_running: int = 0
    deadline_margin: int = 300  # seconds
    task_seconds: float = 60.0
    directives: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    template_dir: Path | None = None
    log_dir: Path | None = None
    jobqueue: JobqueueSettings = field(default_factory=JobqueueSettings)


SCHEDULER_KEYS = {"name", "queue", "account", "walltime", "memory", "cores", "nodes", "tasks_per_element",
                  "max_array_size", "max_running", "deadline_margin", "task_seconds", "directives", "setup",
                  "environment", "template_dir", "log_dir", "jobqueue"}


def _positive(reader: _Reader, name: str, default: int, minimum: int = 1) -> int:
    value = reader.get(name, int, default=default)
    if value < minimum:
        raise reader.fail(reader.key(name), f"must be >= {minimum}, got {value}")
    return value


def _strings(reader: _Reader, name: str) -> tuple[str, ...]:
    values = reader.get(name, list, default=[])
    for i, value in enumerate(values):
        if not isinstance(value, str) or "\n" in value:
            raise reader.fail(f"{reader.key(name)}[{i}]", f"expected a one-line string, got {value!r}")
    return tuple(values)


def _seconds(reader: _Reader, name: str, default: int) -> int:
    text = reader.get(name, str, default=None)
    if text is None:
        return default
    try:
        return parse_walltime(text)
    except ValueError as exc:
        raise reader.fail(reader.key(name), str(exc)) from None


def _jobqueue(reader: _Reader, cores: int) -> JobqueueSettings:
    """Dask's adaptive target counts workers: with no worker yet it asks for one, so a starting job of
    several worker processes is "too many", cancelled and resubmitted in a loop (seen on the local
    SLURM). Scaling down to zero jobs is therefore allowed only with one process per job."""
    reader.check_keys({"minimum_jobs", "maximum_jobs", "processes", "interface"})
    minimum = _positive(reader, "minimum_jobs", 1, minimum=0)
    maximum = _positive(reader, "maximum_jobs", max(1, minimum))
    if maximum < minimum:
        raise reader.fail(reader.key("maximum_jobs"), f"must be >= minimum_jobs ({minimum}), got {maximum}")
    processes = _positive(reader, "processes", 0, minimum=0)
    if minimum == 0 and (processes or cores) > 1:
        raise reader.fail(reader.key("minimum_jobs"), f"0 needs processes = 1 (got {processes or cores} per job): "
                                                      "Dask would cancel and resubmit a starting job in a loop")
    return JobqueueSettings(minimum_jobs=minimum, maximum_jobs=maximum, processes=processes,
                            interface=reader.get("interface", str, default=None))


def parse_scheduler(reader: _Reader, base_dir: Path | None = None) -> SchedulerSettings:
    """Validate a ``[scheduler]`` table; relative directories are taken from ``base_dir``."""
    reader.check_keys(SCHEDULER_KEYS)
    name = reader.choice("name", list(SCHEDULERS), default="slurm")
    memory = reader.get("memory", (str, int), default=None)
    try:
        memory_mb = parse_memory(memory) if memory is not None else None
    except ValueError as exc:
        raise reader.fail(reader.key("memory"), str(exc)) from None
    environment = reader.get("environment", dict, default={})
    for key, value in environment.items():
        if not isinstance(value, str) or not key.isidentifier():
            raise reader.fail(reader.key(f"environment.{key}"), f"expected NAME = \"text\", got {value!r}")
    texts = {}
    for key in ("queue", "account"):
        texts[key] = reader.get(key, str, default=None)
        if texts[key] is not None and (not texts[key] or any(c.isspace() for c in texts[key])):
            raise reader.fail(reader.key(key), f"expected a name without spaces, got {texts[key]!r}")
    directories = {}
    for key in ("template_dir", "log_dir"):
        text = reader.get(key, str, default=None)
        directories[key] = None if text is None else (base_dir or Path.cwd()) / Path(text).expanduser()
    if directories["template_dir"] is not None and not directories["template_dir"].is_dir():
        raise reader.fail(reader.key("template_dir"), f"no such directory: {directories['template_dir']}")
    walltime = _seconds(reader, "walltime", 3600)
    margin = _seconds(reader, "deadline_margin", min(300, walltime // 10))
    if margin >= walltime:
        raise reader.fail(reader.key("deadline_margin"), f"must be shorter than the walltime ({walltime} s)")
    cores = _positive(reader, "cores", 1)
    task_seconds = reader.get("task_seconds", float, default=60.0)
    if task_seconds <= 0:
        raise reader.fail(reader.key("task_seconds"), f"must be > 0, got {task_seconds}")
    return SchedulerSettings(
        name=name, **texts, walltime=walltime, memory_mb=memory_mb,
        cores=cores, nodes=_positive(reader, "nodes", 1),
        tasks_per_element=_positive(reader, "tasks_per_element", 20),
        max_array_size=_positive(reader, "max_array_size", 1000),
        max_running=_positive(reader, "max_running", 0, minimum=0), deadline_margin=margin, task_seconds=task_seconds,
        directives=_strings(reader, "directives"), setup=_strings(reader, "setup"),
        environment=dict(environment), **directories, jobqueue=_jobqueue(reader.sub("jobqueue"), cores))


def load_machine(path: str | Path) -> SchedulerSettings:
    """The ``[scheduler]`` table of a machine profile file (relative paths: from the file's directory)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise CampaignError(f"{path}: cannot read machine file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{path}: invalid TOML: {exc}") from None
    root = _Reader(data, "", str(path))
    root.check_keys({"scheduler"})
    return parse_scheduler(root.sub("scheduler", required=True), base_dir=path.parent.resolve())


def scheduler_settings(campaign_scheduler: SchedulerSettings | None, machine: str | Path | None,
                       name: str | None) -> SchedulerSettings:
    """The settings a submission uses: the machine file's, else the campaign's, else defaults;
    ``name`` (``--scheduler``) overrides the scheduler kind."""
    settings = load_machine(machine) if machine else campaign_scheduler or SchedulerSettings()
    if name is not None:
        if name not in SCHEDULERS:
            raise CampaignError(f"--scheduler: unknown scheduler {name!r}; choose {', '.join(SCHEDULERS)}")
        settings = replace(settings, name=name)
    return settings

