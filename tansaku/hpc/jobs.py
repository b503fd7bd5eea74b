"""One batch job described once, for every scheduler; job states; walltime and memory units.

Knows nothing of materials or tasks: the command is an argument list, written into the job script
with shell quoting, never a shell string built from data. Two placeholders may appear inside its
arguments and are replaced by the script's own shell variables (see ``hpc.render``):

- ``{array_index}``: this element's index in a job array (0 for a single job);
- ``{job_end}`` or ``{job_end-N}``: the Unix time (s) at which the walltime runs out, minus N seconds
  (the job's start time, taken when the script starts, plus the walltime).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# the small common set of job states every scheduler's own states map onto
PENDING, RUNNING, DONE, FAILED, CANCELLED, UNKNOWN = "pending", "running", "done", "failed", "cancelled", "unknown"
STATES = (PENDING, RUNNING, DONE, FAILED, CANCELLED, UNKNOWN)
ACTIVE_STATES = (PENDING, RUNNING)


class SchedulerError(RuntimeError):
    """A scheduler command failed or answered something we cannot read; the message says which."""


@dataclass(frozen=True)
class JobSpec:
    """A batch job, rendered to SLURM, PBS/Torque or LSF by ``hpc.render``.

    ``memory_mb`` is per node (MiB); ``walltime`` in seconds; ``queue`` is SLURM's partition;
    ``array`` an index range such as ``"0-9"`` or ``"0-99%10"`` (at most 10 at a time; SLURM only);
    ``directives`` are extra scheduler options written after the generated ones (``"--qos=debug"``
    for SLURM, ``"-l place=scatter"`` for PBS, ``"-R span[hosts=1]"`` for LSF); ``setup`` lines
    (``module load ...``, ``source env.sh``) run before the command; ``environment`` is exported.
    Logs go to ``log_dir`` (scheduler-native file names with job id and array index).
    """

    name: str
    command: tuple[str, ...]
    nodes: int = 1
    ntasks: int = 1
    cpus_per_task: int = 1
    memory_mb: int | None = None
    walltime: int | None = None
    queue: str | None = None
    account: str | None = None
    array: str | None = None
    directives: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    log_dir: str | None = None
    working_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("a job needs a command")
        if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,64}", self.name):
            raise ValueError(f"job name {self.name!r}: use at most 64 letters, digits and _.+-")
        for key in ("nodes", "ntasks", "cpus_per_task"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.array is not None and not ARRAY_PATTERN.fullmatch(self.array):
            raise ValueError(f"array {self.array!r}: expected a range like 0-9, 0-99%10 or 1,3,5")
        texts = [self.name, self.queue, self.account, self.array, self.log_dir, self.working_dir,
                 *self.command, *self.directives, *self.setup, *self.environment.values()]
        if any(text is not None and ("\n" in text or "\r" in text) for text in texts):
            raise ValueError(f"job {self.name!r}: line breaks are not allowed in job settings or arguments")
        for name in self.environment:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"environment variable name {name!r} is not valid in a shell")

    @property
    def total_cpus(self) -> int:
        return self.ntasks * self.cpus_per_task


ARRAY_PATTERN = re.compile(r"\d+(-\d+(:\d+)?)?(,\d+(-\d+(:\d+)?)?)*(%\d+)?")


def array_size(array: str) -> int:
    """Number of elements of an array range (``"0-9"`` -> 10, ``"1,3,5-7"`` -> 5, ``"0-8:2"`` -> 5)."""
    total = 0
    for part in array.split("%")[0].split(","):
        if "-" in part:
            first, _, rest = part.partition("-")
            last, _, step = rest.partition(":")
            total += len(range(int(first), int(last) + 1, int(step or 1)))
        else:
            total += 1
    return total


_WALLTIME_SUFFIX = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$")
_SUFFIX_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_walltime(text: str) -> int:
    """Seconds in a walltime: ``"HH:MM:SS"``, ``"MM:SS"``, ``"D-HH[:MM[:SS]]"`` (SLURM's forms) or
    ``"90s"``, ``"30m"``, ``"2h"``, ``"1.5d"``. A bare number is minutes, as in SLURM's ``--time``."""
    match = _WALLTIME_SUFFIX.match(text)
    if match:
        return round(float(match.group(1)) * _SUFFIX_SECONDS[match.group(2)])
    days, clock = 0, text.strip()
    if "-" in clock:
        day_text, _, clock = clock.partition("-")
        if not day_text.isdigit():
            raise ValueError(f"walltime {text!r}: expected HH:MM:SS, D-HH:MM:SS or e.g. 30m, 2h")
        days = int(day_text)
    parts = clock.split(":")
    if not clock or len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"walltime {text!r}: expected HH:MM:SS, D-HH:MM:SS or e.g. 30m, 2h")
    numbers = [int(p) for p in parts]
    if days:  # D-HH, D-HH:MM, D-HH:MM:SS
        numbers += [0] * (3 - len(numbers))
        hours, minutes, seconds = numbers
    elif len(numbers) == 3:
        hours, minutes, seconds = numbers
    elif len(numbers) == 2:
        hours, minutes, seconds = 0, *numbers
    else:
        hours, minutes, seconds = 0, numbers[0], 0
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"walltime {text!r} must be longer than 0 s")
    return total


def format_hms(seconds: int) -> str:
    """``HH:MM:SS`` with unbounded hours (PBS ``walltime``; SLURM also reads it)."""
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


def format_slurm_time(seconds: int) -> str:
    """SLURM ``--time``: ``HH:MM:SS`` below a day, ``D-HH:MM:SS`` above."""
    days, rest = divmod(int(seconds), 86400)
    return f"{days}-{format_hms(rest)}" if days else format_hms(rest)


def format_lsf_time(seconds: int) -> str:
    """LSF ``-W``: ``[HH:]MM``, rounded up to whole minutes."""
    minutes = -(-int(seconds) // 60)
    return f"{minutes // 60}:{minutes % 60:02d}" if minutes >= 60 else str(minutes)


_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|[kmgt]i?b?)?\s*$")
_MEMORY_MB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def parse_memory(text: str | int) -> int:
    """MiB in ``"4G"``, ``"4GB"``, ``"4GiB"``, ``"500M"``, ``"2048"`` (MiB), rounded up; powers of 1024."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise ValueError(f"memory {text!r} must be > 0 MiB")
        return text
    match = _MEMORY.match(str(text))
    if not match:
        raise ValueError(f"memory {text!r}: expected e.g. 4G, 500M or a number of MiB")
    unit = (match.group(2) or "m")[0].lower()
    mib = -(-float(match.group(1)) * _MEMORY_MB[unit] // 1)
    if mib <= 0:
        raise ValueError(f"memory {text!r} must be > 0")
    return int(mib)
