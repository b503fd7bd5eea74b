"""Detached workers, shards, collect and status with real EMT relaxations, real processes and HDF5 files.

Covers: a worker whose deadline is too short ends cleanly and a second one finishes the rest; SIGTERM
to the worker's process group mid-run keeps every finished record and stores nothing as failed;
collect is idempotent (twice, a failed row then an ok one, overlap with the store, a shard being
written, a damaged shard); status and pending_task_ids count against the saved plan.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hpc_campaigns import small, write_campaign

from tansaku.results import Store, read_columns
from tansaku.results.record import STATUS_FAILED, STATUS_OK
from tansaku.workflows.campaign import load_campaign
from tansaku.workflows.collect import collect, shards_dir
from tansaku.workflows.executors import serial_executor
from tansaku.workflows.planfile import PlanError, ensure_plan, load_tasks, plan_path
from tansaku.workflows.run_task import TASK_LOG_VARIABLE, failed_record, run_task
from tansaku.workflows.status import campaign_status, pending_task_ids
from tansaku.workflows.worker import TaskListError, parse_select, read_task_list, run_worker, select

SLOW_SECONDS = 2.0


def slow_run(task):
    """run_task, then a pause counted in the task's wall time (a task that takes SLOW_SECONDS or more)."""
    start = time.perf_counter()
    record = run_task(task)
    time.sleep(SLOW_SECONDS)
    record.wall_time = time.perf_counter() - start
    return record


def ids_in(path: Path) -> list[str]:
    return list(read_columns(path, ["task_id"])["task_id"]) if path.exists() else []


def test_task_list_and_select(tmp_path):
    listing = tmp_path / "ids.txt"
    listing.write_text("a\n\n# comment\nb  # note\nc\nd\ne\n")
    ids = read_task_list(listing)
    assert ids == ["a", "b", "c", "d", "e"]
    assert select(ids, parse_select("1/2")) == ["b", "d"] and select(ids, parse_select("0/1")) == ids
    for bad in ("2/2", "x", "1/0", "-1/3"):
        with pytest.raises(TaskListError, match="--select"):
            parse_select(bad)
    with pytest.raises(TaskListError, match="missing.txt: cannot read"):
        read_task_list(tmp_path / "missing.txt")


def test_worker_needs_the_saved_plan(tmp_path):
    campaign = small(tmp_path)
    with pytest.raises(PlanError, match="no saved plan"):
        run_worker(campaign, [], tmp_path / "s.h5")


def test_deadline_too_short_ends_cleanly_and_a_second_worker_finishes(tmp_path):
    campaign = small(tmp_path)
    plan, _ = ensure_plan(campaign)
    ids = [t.task_id for t in plan.tasks][:4]
    shard = shards_dir(campaign.output) / "a.h5"
    # the first task starts (no estimate yet: prior 0); once it took >= 2 s, 3 s left is too little
    first = run_worker(campaign, ids, shard, deadline=time.time() + 3.0, prior_seconds=0.0, margin_seconds=0.0,
                       executor=serial_executor(slow_run))
    assert first.ran == 1 and first.held_back == len(ids) - 1 and not first.terminated
    assert ids_in(shard) == ids[:1]
    # a deadline already too close runs nothing (through the CLI: exit 0)
    cli = subprocess.run([sys.executable, "-m", "tansaku", "worker", str(tmp_path / "small.toml"), "--shard",
                          str(shard), "--deadline", str(time.time() + 10), "--task-seconds", "60"],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0 and "ran 0" in cli.stderr and "not run (deadline near)" in cli.stderr
    second = run_worker(campaign, ids, shard)
    assert second.already_stored == 1 and second.ran == len(ids) - 1 and second.failed == 0
    assert sorted(ids_in(shard)) == sorted(ids)


def test_sigterm_mid_run_keeps_every_finished_record(tmp_path):
    campaign_file = write_campaign(tmp_path, batch_size=64)  # records wait in memory: SIGTERM must flush them
    campaign = load_campaign(campaign_file)
    plan, _ = ensure_plan(campaign)
    shard = tmp_path / "shards" / "packed.h5"
    log = tmp_path / "starts.log"
    env = {**os.environ, TASK_LOG_VARIABLE: str(log)}
    # a packed job: a pool of 2 processes; SLURM signals the whole process group, so do we
    worker = subprocess.Popen([sys.executable, "-m", "tansaku", "worker", str(campaign_file), "--shard", str(shard),
                               "--workers", "2"], env=env, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    deadline = time.time() + 240
    while (not log.exists() or len(log.read_text().splitlines()) < 5) and worker.poll() is None:
        assert time.time() < deadline, "the worker started too few tasks"
        time.sleep(0.02)
    os.killpg(worker.pid, signal.SIGTERM)
    _, stderr = worker.communicate(timeout=120)  # also waits for the pool's processes (they hold stderr)
    assert worker.returncode == 0, stderr
    ran = int(re.search(r"ran (\d+)", stderr).group(1))
    assert "stopped by SIGTERM" in stderr and 3 <= ran < len(plan.tasks)
    stored = read_columns(shard, ["task_id", "status"])
    assert len(stored["task_id"]) == ran and (stored["status"] == STATUS_OK).all()  # none stored as failed
    # resuming the same shard runs only the rest
    rest = run_worker(campaign, [t.task_id for t in plan.tasks], shard, workers=2)
    assert rest.already_stored == ran and rest.ran == len(plan.tasks) - ran and rest.failed == 0
    assert sorted(ids_in(shard)) == sorted(t.task_id for t in plan.tasks)


def test_collect_is_idempotent_and_status_counts(tmp_path):
    campaign = small(tmp_path)
    plan, _ = ensure_plan(campaign)
    tasks = plan.tasks
    ids = [t.task_id for t in tasks]
    folder = shards_dir(campaign.output)
    n = len(tasks)
    assert n >= 10
    # the store: tasks 0-2 ok, task 3 failed
    run_worker(campaign, ids[:3], campaign.output)
    with Store.open(campaign.output) as store:
        store.append([failed_record(tasks[3], "RuntimeError: SCF did not converge")])
    # shard a: tasks 2-5 ok (2 overlaps the store, 3 replaces its failed row), 6 failed
    run_worker(campaign, ids[2:6], folder / "a.h5")
    with Store.open(folder / "a.h5") as store:
        store.append([failed_record(tasks[6], "boom")])
    # shard b (merged after a): task 6 ok (replaces a's failed row within one collect)
    run_worker(campaign, ids[6:7], folder / "b.h5")
    # shard c: still being written (its writer holds it open): task 7 committed
    (folder / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)  # a damaged shard

    status = campaign_status(campaign)
    assert (status.total, status.done, status.failed, status.pending) == (n, 7, 0, n - 7)
    assert status.in_shards == 4 and status.stored == 4 and len(status.unreadable_shards) == 1
    assert pending_task_ids(campaign) == ids[7:]

    with Store.open(folder / "c.h5", campaign_text=campaign.text) as writing:
        writing.append([run_task(tasks[7])])
        summary = collect(campaign.output, campaign_text=campaign.text)
    reports = {Path(r.path).name: r for r in summary.shards}
    assert (reports["a.h5"].added, reports["a.h5"].replaced, reports["a.h5"].skipped) == (3, 1, 1)
    assert (reports["b.h5"].added, reports["b.h5"].replaced) == (0, 1)
    assert reports["c.h5"].added == 1 and "being written" in reports["c.h5"].note
    assert "damaged" in reports["junk.h5"].note
    stored = read_columns(campaign.output, ["task_id", "status"])
    assert sorted(stored["task_id"]) == sorted(ids[:8])  # every task once
    assert (stored["status"] == STATUS_OK).all()

    again = collect(campaign.output, campaign_text=campaign.text)
    assert again.added == again.replaced == 0 and again.skipped == 7  # every shard row (5 + 1 + 1)
    assert sorted(read_columns(campaign.output, ["task_id"])["task_id"]) == sorted(ids[:8])
    status = campaign_status(campaign)
    assert (status.done, status.failed, status.pending, status.in_shards) == (8, 0, n - 8, 0)

    # a task failed everywhere counts as failed, and is pending only when asked for
    with Store.open(folder / "d.h5") as store:
        store.append([failed_record(tasks[9], "boom")])
    status = campaign_status(campaign)
    assert status.failed == 1 and ids[9] not in pending_task_ids(campaign)
    assert ids[9] in pending_task_ids(campaign, include_failed=True)


def test_cli_worker_collect_status_match_run(tmp_path):
    """A job array of two elements through the CLI, collected, gives the records `tansaku run` gives."""
    campaign_file = write_campaign(tmp_path)
    tansaku = [sys.executable, "-m", "tansaku"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*tansaku, *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done

    cli("plan", str(campaign_file))
    listing = tmp_path / "all.txt"
    listing.write_text("\n".join(t.task_id for t in load_tasks(tmp_path / "small.plan.h5")) + "\n")
    for i in range(2):
        cli("worker", str(campaign_file), "--task-list", str(listing), "--select", f"{i}/2",
            "--shard", str(tmp_path / "small.shards" / f"array-{i}.h5"))
    assert "pending" in cli("status", str(campaign_file)).stdout
    cli("collect", str(campaign_file))
    status = cli("status", str(tmp_path / "small.h5")).stdout
    assert re.search(r"(\d+) tasks: \1 done, 0 failed, 0 pending", status), status
    collected = read_columns(tmp_path / "small.h5")
    # the same campaign through `tansaku run` (serial) gives the same records
    other = tmp_path / "run"
    other.mkdir()
    run_file = write_campaign(other)
    cli("run", str(run_file), "--no-progress")
    ran = read_columns(other / "small.h5")
    a, b = (sorted(zip(c["task_id"], c["energy"], c["status"])) for c in (collected, ran))
    assert [x[0] for x in a] == [x[0] for x in b] and [x[2] for x in a] == [x[2] for x in b]
    assert all(abs(x[1] - y[1]) < 1e-8 for x, y in zip(a, b))
    assert plan_path(load_campaign(campaign_file)).exists()
    assert not (read_columns(tmp_path / "small.h5", ["status"])["status"] == STATUS_FAILED).any()
