"""SLURM: job id from ``sbatch --parsable``, states from ``squeue`` / ``scontrol -o show job``.

No accounting database is assumed (``sacct`` is not used): finished jobs stay visible to squeue and
scontrol for ``MinJobAge`` seconds (default 300), after which they are ``unknown``.
"""

from __future__ import annotations

import re

from tansaku.hpc.jobs import CANCELLED, DONE, FAILED, PENDING, RUNNING, UNKNOWN, SchedulerError

SUBMIT = ("sbatch", "--parsable")
ARRAY_INDEX_VARIABLE = "SLURM_ARRAY_TASK_ID"

# squeue/scontrol JobState -> common state (sources: squeue(1) "JOB STATE CODES")
STATES = {
    "PENDING": PENDING, "CONFIGURING": PENDING, "REQUEUED": PENDING, "REQUEUE_HOLD": PENDING,
    "REQUEUE_FED": PENDING, "RESV_DEL_HOLD": PENDING, "SPECIAL_EXIT": PENDING, "RESIZING": RUNNING,
    "RUNNING": RUNNING, "COMPLETING": RUNNING, "STAGE_OUT": RUNNING, "SIGNALING": RUNNING,
    "SUSPENDED": RUNNING, "STOPPED": RUNNING,
    "COMPLETED": DONE,
    "CANCELLED": CANCELLED, "REVOKED": CANCELLED,
    "FAILED": FAILED, "TIMEOUT": FAILED, "NODE_FAIL": FAILED, "OUT_OF_MEMORY": FAILED, "BOOT_FAIL": FAILED,
    "DEADLINE": FAILED, "PREEMPTED": FAILED,
}


def state(native: str) -> str:
    # scontrol may add flags ("CANCELLED by 0"); squeue prints the bare name
    return STATES.get(native.split()[0].upper() if native.strip() else "", UNKNOWN)


def parse_submit(output: str) -> str:
    """``sbatch --parsable`` prints ``JOBID`` or ``JOBID;CLUSTER``."""
    line = output.strip().splitlines()[-1] if output.strip() else ""
    match = re.fullmatch(r"(\d+)(;\S+)?", line.strip())
    if not match:
        raise SchedulerError(f"sbatch: cannot read a job id from its output {output.strip()!r}")
    return match.group(1)


def poll_command(job_ids: list[str]) -> list[str]:
    """One line per job and per array element (``-r``), finished ones included while SLURM keeps them."""
    return ["squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(job_ids)}", "--format=%i|%T"]


def parse_poll(output: str) -> list[tuple[str, str, str]]:
    """``(job id, element id, state)`` per line of ``squeue ... --format=%i|%T``: ``("124", "124_0", "done")``."""
    rows = []
    for line in output.splitlines():
        if "|" in line:
            element, _, native = line.strip().partition("|")
            rows.append((element.split("_")[0], element, state(native)))
    return rows


def unknown_jobs_error(stderr: str) -> bool:
    """squeue exits 1 with this message when none of the ids is known (any more)."""
    return "Invalid job id" in stderr


def parse_scontrol(output: str) -> list[dict[str, str]]:
    """Records of ``scontrol -o show job`` (one line per job, ``Key=Value`` separated by spaces).

    Values never contain ``=`` except in a few free-text fields at the end of the line (Command,
    WorkDir, StdOut...), which are read up to the next `` Key=``.
    """
    records = []
    for line in output.splitlines():
        if "=" not in line:
            continue
        pairs = re.findall(r"(?:^|\s)([A-Za-z][A-Za-z0-9/:_]*)=(.*?)(?=\s+[A-Za-z][A-Za-z0-9/:_]*=|\s*$)", line)
        records.append({key: value for key, value in pairs})
    return records


def scontrol_states(output: str) -> dict[str, str]:
    """``{"123": "running", "124_0": "done"}`` from ``scontrol -o show job``; pending array ranges
    (ArrayTaskId=1-5) are expanded to their elements."""
    states = {}
    for record in parse_scontrol(output):
        common = state(record.get("JobState", ""))
        array_job, task = record.get("ArrayJobId"), record.get("ArrayTaskId")
        if not array_job or not task:
            states[record.get("JobId", "?")] = common
            continue
        for index in expand_indices(task):
            states[f"{array_job}_{index}"] = common
    return states


def expand_indices(text: str) -> list[int]:
    """``"0,3-5"`` or ``"1-9:2%4"`` -> the indices (SLURM array task id lists)."""
    indices = []
    for part in text.split("%")[0].split(","):
        first, dash, rest = part.partition("-")
        if dash:
            last, _, step = rest.partition(":")
            indices.extend(range(int(first), int(last) + 1, int(step or 1)))
        elif first.isdigit():
            indices.append(int(first))
    return indices


def cancel_command(job_ids: list[str]) -> list[str]:
    return ["scancel", *job_ids]
