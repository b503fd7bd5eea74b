"""Processes a run starts end with it: a ``kill -9`` of the coordinator of a ``pool`` run leaves no pool
worker, forkserver or task sandbox alive (real run, real processes; scripts/fault_injection.py makes the
same check after each of its coordinator kills, at random moments), and ``fork_safe`` tells a process that
may fork its sandbox from one that may not."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import subprocess_env
from tansaku.hpc.orphans import fork_safe, process_name
from tansaku.workflows.sandbox import SANDBOX_NAME

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fault_injection.py"


def _fault_injection():
    spec = importlib.util.spec_from_file_location("fault_injection", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_kill_9_of_a_pool_coordinator_leaves_no_worker_or_sandbox(tmp_path: Path) -> None:
    fi = _fault_injection()
    toml = tmp_path / "orphans.toml"
    toml.write_text(fi.CAMPAIGN.format(output=tmp_path / "orphans.h5", executor="pool").replace(
        "fmax = 0.02", "fmax = 0.0005"))  # tasks long enough to be caught running
    run = fi._start(toml)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and run.poll() is None:  # until both workers run a task in a sandbox
            below = fi.descendants(run.pid)
            if sum(process_name(p.pid) == SANDBOX_NAME for p in below) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"no two sandboxes appeared (run ended: {run.poll()})")
        assert len(below) >= 5  # the forkserver, two pool workers, their two sandboxes (and a resource tracker)
        run.send_signal(signal.SIGKILL)
        run.wait()
        left = fi.survivors(below, wait=15)
        assert not left, f"processes outlived the killed coordinator: {left}"
    finally:
        for p in fi.descendants(run.pid):
            p.kill()
        run.kill()
        run.wait()


def test_fork_safe_needs_one_thread_and_no_openmp_runtime() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not fork_safe()  # another Python thread could hold a lock the child would inherit
    finally:
        stop.set()
        thread.join()
    code = ("from tansaku.hpc.orphans import fork_safe; import tansaku.workflows.run_task; "
            "print(fork_safe()); import torch; torch.ones(4).sum(); print(fork_safe())")
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.stdout.split() == ["True", "False"], done.stderr  # a pool worker may fork; after torch, not
