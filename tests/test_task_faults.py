"""Faults inside tasks: a task that never returns is killed at its timeout (also numba code), a task whose
process dies or runs out of memory is a failed record with the reason, retries follow the policy, and the
campaign goes on. Real sandbox processes, real EMT relaxations, real HDF5 files."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT

from tansaku.calculators import CalculatorSpec, Runtime
from tansaku.results import read_columns
from tansaku.workflows.campaign import CampaignError, parse_campaign
from tansaku.workflows.plan import make_plan
from tansaku.workflows.runner import run_campaign
from tansaku.workflows.sandbox import RetryPolicy, TaskGuard, close_sandbox, failure_kind

SPIN = """
[campaign]
name = "spin"
output = "{output}"
[calculator]
name = "emt-fast"
[execution]
executor = "serial"
task_timeout = {timeout}
[references]
elements = "none"
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Cu" }}
cellpar = [0.5, 0.5, 0.5, 90, 90, 90]   # 0.5 Å: the neighbour search never ends
min_distance = 0                        # (the campaign check would refuse it before any work)
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Ni" }}
"""


def test_a_task_that_never_returns_is_killed_and_the_campaign_goes_on(tmp_path: Path) -> None:
    campaign = parse_campaign(SPIN.format(output=tmp_path / "spin.h5", timeout=15), source="spin.toml")
    start = time.monotonic()
    summary = run_campaign(campaign, show_progress=False)
    assert time.monotonic() - start < 120
    cols = read_columns(campaign.output, ["label", "status", "error", "history", "converged"])
    by_label = {label.split()[0]: i for i, label in enumerate(cols["label"])}
    cu, ni = by_label["Cu"], by_label["Ni"]
    assert cols["status"][cu] == "failed" and cols["error"][cu].startswith("timeout after 15 s")
    assert json.loads(cols["history"][cu])[-1]["failure"] == "timeout"
    assert cols["status"][ni] == "ok" and cols["converged"][ni]
    assert summary.failed == 1 and summary.ok == 1


class _Suicide(EMT):
    """EMT whose process dies (as under the kernel's OOM killer) for gold-containing cells."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        if atoms is not None and "Au" in atoms.get_chemical_symbols():
            os.kill(os.getpid(), signal.SIGKILL)
        super().calculate(atoms, properties, system_changes)


class _Hungry(EMT):
    """EMT that runs out of memory for gold-containing cells."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        if atoms is not None and "Au" in atoms.get_chemical_symbols():
            raise MemoryError("Unable to allocate 23.0 GiB for an array")
        super().calculate(atoms, properties, system_changes)


class _NaN(EMT):
    """EMT that returns a NaN energy for gold-containing cells."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        if "Au" in self.atoms.get_chemical_symbols():
            self.results["energy"] = float("nan")


def _tasks(tmp_path: Path, calculator: str):
    text = f"""
[campaign]
name = "faults"
output = "{tmp_path / 'f.h5'}"
[calculator]
name = "{calculator}"
[references]
elements = "none"
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = ["Cu", "Au"] }}
"""
    tasks = make_plan(parse_campaign(text)).tasks
    return sorted(tasks, key=lambda t: "Au" in t.label)  # Cu first, then Au


@pytest.mark.parametrize("factory, reason, kind", [
    (_Suicide, "killed: the task's process was killed by signal SIGKILL (out of memory?", "killed"),
    (_Hungry, "MemoryError: Unable to allocate 23.0 GiB", "memory"),
    (_NaN, "UnphysicalResult: energy is not finite", "unphysical"),
])
def test_a_dying_or_broken_task_is_a_failed_record_with_its_reason(tmp_path, calculator_registry, factory,
                                                                   reason, kind) -> None:
    calculator_registry(CalculatorSpec(name="faulty-emt", factory=factory, elements=frozenset({"Cu", "Au"}),
                                       package="ase"))
    cu, au = _tasks(tmp_path, "faulty-emt")
    guard = TaskGuard(Runtime(max_retries=0), timeout=60, retry=RetryPolicy(max=0))
    failed = guard(au)
    assert failed.status == "failed" and failed.error.startswith(reason), failed.error
    assert failure_kind(failed) == kind
    ok = guard(cu)  # the next task runs (in a fresh sandbox when the last one died)
    assert ok.status == "ok" and np.isfinite(ok.energy)


class _FailsOnce(EMT):
    """Dies the first time it sees gold (a marker file remembers it across processes), then works."""

    marker = ""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        marker = Path(os.environ["TANSAKU_TEST_MARKER"])
        if atoms is not None and "Au" in atoms.get_chemical_symbols() and not marker.exists():
            marker.write_text("died once")
            os.kill(os.getpid(), signal.SIGKILL)
        super().calculate(atoms, properties, system_changes)


def test_retry_policy_runs_a_killed_task_again_and_keeps_the_history(tmp_path, calculator_registry,
                                                                      monkeypatch) -> None:
    monkeypatch.setenv("TANSAKU_TEST_MARKER", str(tmp_path / "marker"))
    close_sandbox()  # the next sandbox starts with this environment
    calculator_registry(CalculatorSpec(name="flaky-emt", factory=_FailsOnce, elements=frozenset({"Cu", "Au"}),
                                       package="ase"))
    _, au = _tasks(tmp_path, "flaky-emt")
    record = TaskGuard(Runtime(), timeout=60, retry=RetryPolicy(max=1, on=("killed",)))(au)
    assert record.status == "ok"
    history = json.loads(record.history)
    assert history[0]["failure"] == "killed" and history[0]["correction"] == {"retry": True}
    (tmp_path / "marker").unlink()
    record = TaskGuard(Runtime(), timeout=60, retry=RetryPolicy(max=0))(au)  # no retries: stored as failed
    assert record.status == "failed" and failure_kind(record) == "killed"


def test_retry_and_timeout_settings_are_validated() -> None:
    base = "[campaign]\nname='x'\n[calculator]\nname='emt'\n[[prototypes]]\nprototype='fcc'\nsites={'4a'='Cu'}\n"
    campaign = parse_campaign(base + "[execution]\ntask_timeout = 60\nretry = { max = 2, on = ['timeout'] }\n")
    assert campaign.execution.task_timeout == 60 and campaign.execution.retry == RetryPolicy(2, ("timeout",))
    for bad, message in [("task_timeout = -1", "execution.task_timeout: must be >= 0"),
                         ("task_timeout = nan", "execution.task_timeout: expected a finite number"),
                         ("retry = { max = -1 }", "execution.retry.max: must be >= 0"),
                         ("retry = { on = ['oom'] }", "execution.retry.on[0]: unknown failure kind 'oom'"),
                         ("retry = { tries = 2 }", "execution.retry.tries: unknown key")]:
        with pytest.raises(CampaignError, match=bad and message.replace("[", r"\[").replace("]", r"\]")):
            parse_campaign(base + f"[execution]\n{bad}\n")


def test_a_batch_runs_in_the_sandbox_with_the_timeout_of_its_tasks(tmp_path: Path) -> None:
    from tansaku.workflows.run_task import TaskBatch

    campaign = parse_campaign(SPIN.format(output=tmp_path / "spin.h5", timeout=4), source="spin.toml")
    tasks = make_plan(campaign).tasks
    guard = TaskGuard(Runtime(batch_size=2), timeout=4, retry=RetryPolicy(max=1, on=("killed",)))
    start = time.monotonic()
    records = guard(TaskBatch(tuple(tasks)))  # the spinning Cu cell takes the batch with it at 2 x 4 s
    assert 8 <= time.monotonic() - start < 60
    assert [r.status for r in records] == ["failed", "failed"]
    assert all(r.error.startswith("timeout after 8 s: the batch of 2 tasks was killed") for r in records)
    assert all(failure_kind(r) == "timeout" for r in records)


def test_a_batch_whose_sandbox_dies_runs_again_task_by_task(tmp_path, calculator_registry) -> None:
    from tansaku.workflows.run_task import TaskBatch

    calculator_registry(CalculatorSpec(name="faulty-emt", factory=_Suicide, elements=frozenset({"Cu", "Au"}),
                                       package="ase"))
    cu, au = _tasks(tmp_path, "faulty-emt")
    records = TaskGuard(Runtime(batch_size=2), timeout=60)(TaskBatch((cu, au)))  # default policy: killed, once
    by_label = {r.label.split()[0]: r for r in records}
    assert [r.task_id for r in records] == [cu.task_id, au.task_id]
    ok, dead = by_label[cu.label.split()[0]], by_label[au.label.split()[0]]
    assert ok.status == "ok" and np.isfinite(ok.energy)
    assert json.loads(ok.history)[0]["correction"] == {"retry": "alone"}  # the batch's death is in its history
    assert dead.status == "failed" and failure_kind(dead) == "killed"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_forked_or_spawned_sandbox_is_killed_at_the_timeout(tmp_path, monkeypatch, method) -> None:
    from tansaku.hpc.orphans import process_name
    from tansaku.workflows import sandbox

    monkeypatch.setattr(sandbox, "START_METHOD", method)
    close_sandbox()
    tasks = make_plan(parse_campaign(SPIN.format(output=tmp_path / "spin.h5", timeout=4), source="spin.toml")).tasks
    spin, ok = sorted(tasks, key=lambda t: not t.label.startswith("Cu"))  # the spinning Cu cell first
    guard = TaskGuard(Runtime(), timeout=4, retry=RetryPolicy(max=0))
    try:
        record = guard(ok)  # starts the sandbox (a spawned one imports for seconds: not the task's time)
        box = sandbox._sandbox().proc
        assert record.status == "ok" and process_name(box.pid) == sandbox.SANDBOX_NAME
        assert type(box).__name__ == ("_Forked" if method == "fork" else "Popen")
        start = time.monotonic()
        record = guard(spin)
        assert time.monotonic() - start < 60
        assert record.status == "failed" and record.error.startswith("timeout after 4 s: the task was killed")
        assert process_name(box.pid) in ("", sandbox.SANDBOX_NAME) and box.poll() is not None  # killed, reaped
        assert guard(ok).status == "ok"  # a fresh sandbox runs the next task
    finally:
        close_sandbox()
