"""Processes a run starts end with it: a ``kill -9`` of the coordinator of a ``pool`` run leaves no pool worker,
forkserver or task sandbox alive; sandboxes are forked from single-threaded workers (and started as a fresh
interpreter elsewhere), and both kinds are killed at the task timeout. Real processes, real EMT tasks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from conftest import subprocess_env
from tansaku.calculators import Runtime
from tansaku.hpc.orphans import fork_safe, process_name
from tansaku.workflows import sandbox
from tansaku.workflows.campaign import parse_campaign
from tansaku.workflows.plan import make_plan
from tansaku.workflows.sandbox import SANDBOX_NAME, RetryPolicy, TaskGuard, close_sandbox

CAMPAIGN = """
[campaign]
name = "orphans"
output = "{output}"
[calculator]
name = "emt"
[relax]
fmax = 0.001
[execution]
executor = "pool"
workers = 2
task_timeout = 600
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = ["Cu", "Au", "Pd", "Ag"] }}
supercell = [2, 2, 1]
include_parent = false
[[prototypes.variants]]
substitute = {{ "4a" = {{ Au = 2 }} }}
[[prototypes.variants]]
substitute = {{ "4a" = {{ Pd = 3 }} }}
"""


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_kill_9_of_a_pool_coordinator_leaves_no_worker_or_sandbox(tmp_path: Path) -> None:
    toml = tmp_path / "orphans.toml"
    toml.write_text(CAMPAIGN.format(output=tmp_path / "orphans.h5"))
    run = subprocess.Popen([sys.executable, "-m", "tansaku", "run", str(toml), "--no-progress"],
                           env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        coordinator = psutil.Process(run.pid)
        deadline = time.monotonic() + 240
        tree: list[psutil.Process] = []
        while time.monotonic() < deadline and run.poll() is None:  # until both workers run a task in a sandbox
            tree = coordinator.children(recursive=True)
            if sum(process_name(p.pid) == SANDBOX_NAME for p in tree) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"no two sandboxes appeared (run ended: {run.poll()})")
        assert len(tree) >= 5  # the forkserver, two pool workers, their two sandboxes
        run.send_signal(signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(p) for p in tree):
            time.sleep(0.1)
        survivors = [f"{p.pid} {process_name(p.pid)}" for p in tree if _alive(p)]
        assert not survivors, f"processes outlived the killed coordinator: {survivors}"
    finally:
        for p in psutil.Process().children(recursive=True):  # never leave this test's processes behind
            if p.pid == run.pid or run.pid in {a.pid for a in _ancestors(p)}:
                p.kill()


def _ancestors(p: psutil.Process) -> list[psutil.Process]:
    try:
        return p.parents()
    except psutil.NoSuchProcess:
        return []


def _spin_and_ok_tasks(tmp_path: Path):
    text = f"""
[campaign]
name = "spin"
output = "{tmp_path / 'spin.h5'}"
[calculator]
name = "emt-fast"
[references]
elements = "none"
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Cu" }}
cellpar = [0.5, 0.5, 0.5, 90, 90, 90]   # 0.5 Å: the neighbour search never ends
min_distance = 0
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Ni" }}
"""
    tasks = make_plan(parse_campaign(text, source="spin.toml")).tasks
    return sorted(tasks, key=lambda t: not t.label.startswith("Cu"))  # the spinning one first


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_forked_or_spawned_sandbox_is_killed_at_the_timeout(tmp_path, monkeypatch, method) -> None:
    monkeypatch.setattr(sandbox, "START_METHOD", method)
    close_sandbox()
    spin, ok = _spin_and_ok_tasks(tmp_path)
    guard = TaskGuard(Runtime(), timeout=8, retry=RetryPolicy(max=0))
    try:
        record = guard(ok)  # starts the sandbox (a spawned one imports for seconds: not the task's time)
        box = sandbox._sandbox().proc
        assert record.status == "ok" and process_name(box.pid) == SANDBOX_NAME
        assert type(box).__name__ == ("_Forked" if method == "fork" else "Popen")
        start = time.monotonic()
        record = guard(spin)
        assert time.monotonic() - start < 60
        assert record.status == "failed" and record.error.startswith("timeout after 8 s")
        assert json.loads(record.history)[-1]["failure"] == "timeout"
        assert not psutil.pid_exists(box.pid) or psutil.Process(box.pid).status() == psutil.STATUS_ZOMBIE
        assert guard(ok).status == "ok"  # a fresh sandbox runs the next task
    finally:
        close_sandbox()


def test_fork_safe_needs_one_thread_and_no_openmp_runtime() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not fork_safe()  # another Python thread could hold a lock the child would inherit
    finally:
        stop.set()
        thread.join()
    code = ("import sys; from tansaku.hpc.orphans import fork_safe; import tansaku.workflows.run_task; "
            "print(fork_safe()); import torch; torch.ones(4).sum(); print(fork_safe())")
    done = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.split() == ["True", "False"], done.stderr  # a pool worker may fork; after torch, not
