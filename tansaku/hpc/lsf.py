"""IBM Spectrum LSF: job id from ``bsub < script``, states from ``bjobs -a -w``.

Not runnable on the development machine: tests parse captured outputs (tests/data/lsf_*). ``bjobs``
shows finished jobs for CLEAN_PERIOD (1 h by default); a job killed with ``bkill`` shows ``EXIT``, like
a failed one (the plain listing does not tell them apart).
"""

from __future__ import annotations

import re

from tansaku.hpc.jobs import DONE, FAILED, PENDING, RUNNING, UNKNOWN, SchedulerError

SUBMIT = ("bsub",)  # the script is given on standard input so that bsub reads its #BSUB lines

# STAT column (LSF "About job states")
STATES = {"PEND": PENDING, "PROV": PENDING, "PSUSP": PENDING, "WAIT": PENDING,
          "RUN": RUNNING, "USUSP": RUNNING, "SSUSP": RUNNING,
          "DONE": DONE, "EXIT": FAILED, "UNKWN": UNKNOWN, "ZOMBI": UNKNOWN}


def parse_submit(output: str) -> str:
    """``Job <1234> is submitted to queue <normal>.`` (or ``to default queue``)."""
    match = re.search(r"Job <(\d+)> is submitted", output)
    if not match:
        raise SchedulerError(f"bsub: cannot read a job id from its output {output.strip()!r}")
    return match.group(1)


def poll_command(job_ids: list[str]) -> list[str]:
    return ["bjobs", "-a", "-w", *job_ids]


def parse_poll(output: str) -> list[tuple[str, str, str]]:
    """``(job id, element id, state)`` per line of ``bjobs -a -w``; array elements are ``1234[3]``.

    Columns: JOBID USER STAT QUEUE FROM_HOST EXEC_HOST JOB_NAME SUBMIT_TIME (3 words); EXEC_HOST is
    empty for pending jobs, and parallel jobs continue their host list on lines of one word.
    """
    rows = []
    for line in output.splitlines():
        words = line.split()
        if len(words) < 8 or not words[0].isdigit():
            continue
        job, native, name = words[0], words[2], words[-4]
        index = re.search(r"\[(\d+)\]$", name)
        rows.append((job, f"{job}[{index.group(1)}]" if index else job, STATES.get(native, UNKNOWN)))
    return rows


def unknown_jobs_error(stderr: str) -> bool:
    return "is not found" in stderr


def cancel_command(job_ids: list[str]) -> list[str]:
    return ["bkill", *job_ids]
