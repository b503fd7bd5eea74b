"""PBS Pro / OpenPBS and Torque: job id from ``qsub``, states from ``qstat -f`` (``-x``: finished jobs, PBS Pro).

Not runnable on the development machine: tests parse captured outputs (tests/data/pbs_*).
"""

from __future__ import annotations

import re

from tansaku.hpc.jobs import CANCELLED, DONE, FAILED, PENDING, RUNNING, UNKNOWN, SchedulerError

SUBMIT = ("qsub",)

# job_state letters (PBS Pro Reference Guide "Job States"; Torque qstat(1)); F/C/X are decided by exit status
STATES = {"Q": PENDING, "H": PENDING, "W": PENDING, "T": PENDING, "M": PENDING,
          "R": RUNNING, "E": RUNNING, "B": RUNNING, "S": RUNNING, "U": RUNNING}
FINISHED = ("F", "C", "X")
KILLED_BY_SIGNAL = {256 + 9, 256 + 15, 128 + 9, 128 + 15}  # qdel of a running job: SIGTERM, then SIGKILL


def parse_submit(output: str) -> str:
    """``qsub`` prints the job id: ``1234.server`` (``1234[].server`` for an array)."""
    line = output.strip().splitlines()[-1].strip() if output.strip() else ""
    if not re.fullmatch(r"\d+(\[\])?(\.[\w.-]+)?", line):
        raise SchedulerError(f"qsub: cannot read a job id from its output {output.strip()!r}")
    return line


def poll_command(job_ids: list[str], torque: bool = False) -> list[str]:
    return ["qstat", "-f", "-t", *job_ids] if torque else ["qstat", "-f", "-x", "-t", *job_ids]


def parse_qstat(output: str) -> list[dict[str, str]]:
    """Records of ``qstat -f``: ``Job Id: ...`` then ``key = value`` lines; continuation lines
    (long values wrapped by qstat) start with a tab and are joined to the previous value."""
    records: list[dict[str, str]] = []
    key = None
    for line in output.splitlines():
        if line.startswith("Job Id:"):
            records.append({"Job Id": line.split(":", 1)[1].strip()})
            key = None
        elif records and " = " in line and not line.startswith("\t"):
            key, _, value = line.strip().partition(" = ")
            records[-1][key] = value
        elif records and key and line.startswith("\t"):
            records[-1][key] += line.strip()
    return records


def state(record: dict[str, str]) -> str:
    letter = record.get("job_state", "")
    if letter in STATES:
        return STATES[letter]
    if letter not in FINISHED:
        return UNKNOWN
    exit_text = record.get("Exit_status", record.get("exit_status"))
    if exit_text is None:
        return CANCELLED  # finished without running: deleted while queued
    code = int(exit_text)
    if code == 0:
        return DONE
    return CANCELLED if code in KILLED_BY_SIGNAL else FAILED


def job_of(element: str) -> str:
    """The array job an element belongs to: ``1234[5].server`` -> ``1234[].server``."""
    return re.sub(r"\[\d+\]", "[]", element, count=1)


def parse_poll(output: str) -> list[tuple[str, str, str]]:
    """``(job id, element id, state)`` for every record of ``qstat -f``."""
    return [(job_of(r["Job Id"]), r["Job Id"], state(r)) for r in parse_qstat(output)]


def unknown_jobs_error(stderr: str) -> bool:
    return "Unknown Job Id" in stderr or "Job has finished" in stderr


def cancel_command(job_ids: list[str]) -> list[str]:
    return ["qdel", *job_ids]
