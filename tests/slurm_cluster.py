"""The local SLURM cluster for tests (started by scripts/slurm-up.sh): a session fixture that skips,
with the reason, when no SLURM answers, unless the environment variable CI is set (then it fails)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

SETUP_HINT = "start one as root with: bash scripts/slurm-up.sh"


def slurm_problem() -> str | None:
    """Why the local SLURM cannot be used, or None when ``sinfo`` shows an idle/mixed/allocated node."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "SLURM commands (sinfo, sbatch) are not installed"
    try:
        result = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer in 20 s"
    if result.returncode != 0:
        return f"sinfo failed: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}"
    states = result.stdout.split()
    if not any(s.rstrip("*~#") in ("idle", "mixed", "allocated", "completing") for s in states):
        return f"no usable SLURM node (sinfo states: {' '.join(states) or 'none'})"
    return None


@pytest.fixture(scope="session")
def slurm() -> str:
    """The partition to submit to; skips (fails under CI) when no SLURM is reachable."""
    problem = slurm_problem()
    if problem:
        message = f"no local SLURM: {problem}; {SETUP_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return "debug"


@pytest.fixture()
def slurm_jobs():
    """Job ids a test submits; whatever is still queued or running at its end (a failed test) is cancelled."""
    jobs: list[str] = []
    yield jobs
    if jobs:
        subprocess.run(["scancel", *jobs], capture_output=True, timeout=30, check=False)


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Poll ``predicate()`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
