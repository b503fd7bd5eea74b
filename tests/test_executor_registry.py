"""The executor registry: [execution] options validated with key paths; the pool executor with real processes."""

from __future__ import annotations

import os

import pytest
from hpc_campaigns import small

from tansaku.results.record import STATUS_FAILED, STATUS_OK
from tansaku.workflows.campaign import CampaignError, parse_campaign
from tansaku.workflows.executors import executor_names, get_executor_spec, make_executor
from tansaku.workflows.plan import make_plan
from tansaku.workflows.run_task import failed_record, run_task

BASE = """
[campaign]
name = "x"
[calculator]
name = "emt"
[[prototypes]]
prototype = "fcc"
sites = { "4a" = "Cu" }
[execution]
"""


def execution(text: str):
    return parse_campaign(BASE + text, source="bad.toml").execution


@pytest.mark.parametrize("text, message", [
    ('executor = "spark"', r"bad\.toml: execution\.executor: unknown executor 'spark'; choose serial, dask, pool, mpi"),
    ('executor = "serial"\nadress = "tcp://x:8786"',
     r"execution\.adress: unknown key; executor 'serial' takes batch_size, executor, flush_seconds, "
     r"retry, task_timeout, threads_per_task \(other executors: address, dashboard, dashboard_port, workers\)"),
    ('executor = "pool"\nworkers = -1', r"execution\.workers: must be >= 0, got -1"),
    ('executor = "dask"\nthreads_per_task = 0', r"execution\.threads_per_task: must be >= 1, got 0"),
    ('executor = "dask"\ndashboard = "yes"', r"execution\.dashboard: expected bool, got str 'yes'"),
    ('executor = "dask"\naddress = 8786', r"execution\.address: expected str, got int 8786"),
    ('batch_size = 0', r"execution\.batch_size: must be >= 1 and <= 1,000,000, got 0"),
])
def test_execution_errors_name_the_key(text, message):
    with pytest.raises(CampaignError, match=message):
        execution(text)


def test_options_come_from_the_registry_with_defaults():
    assert executor_names()[:2] == ["serial", "dask"] and {"pool", "mpi"} <= set(executor_names())
    dask = execution('executor = "dask"\nworkers = 3\naddress = "tcp://127.0.0.1:8786"')
    assert dask.options == {"workers": 3, "threads_per_task": 1, "address": "tcp://127.0.0.1:8786",
                            "dashboard": False, "dashboard_port": 8787}
    assert execution('executor = "mpi"\nthreads_per_task = 4').options == {"threads_per_task": 4}
    # another executor's option is accepted and ignored (switching executor is one line)
    assert execution('executor = "serial"\nworkers = 2').options == {"threads_per_task": 1}
    # command-line overrides are validated the same way; options the new executor lacks are dropped
    assert dask.with_overrides(executor="serial", workers=2).options == {"threads_per_task": 1}
    with pytest.raises(CampaignError, match=r"execution\.workers: must be >= 0"):
        dask.with_overrides(workers=-2)
    assert get_executor_spec("pool").parallel and not get_executor_spec("serial").parallel


def report_threads(task):
    """A runner that reports the worker's BLAS thread limit and pinning variable instead of relaxing."""
    from threadpoolctl import threadpool_info

    limits = sorted({pool["num_threads"] for pool in threadpool_info()})
    return failed_record(task, f"{os.environ.get('OMP_NUM_THREADS')} {limits}")


def crash_on_second(task):
    """Kill the worker process for one task (a segfaulting calculator), relax the others for real."""
    if task.label.startswith("Cu3Au L12"):
        os._exit(3)
    return run_task(task)


def test_pool_executor_pins_threads_and_survives_a_dying_process(tmp_path):
    tasks = make_plan(small(tmp_path)).tasks[:6]
    records = [r for r in make_executor("pool", {"workers": 2, "threads_per_task": 2}, run=report_threads)(tasks)
               if r is not None]
    assert len(records) == 6 and {r.error.split()[0] for r in records} == {"2"}
    assert all(set(r.error.split(" ", 1)[1].strip("[]").split(", ")) <= {"2", ""} for r in records)

    tasks = make_plan(small(tmp_path)).tasks
    assert any(t.label.startswith("Cu3Au L12") for t in tasks)
    records = [r for r in make_executor("pool", {"workers": 2}, run=crash_on_second)(tasks) if r is not None]
    by_label = {r.label: r for r in records}
    assert len(records) == len(tasks)
    assert by_label["Cu3Au L12"].status == STATUS_FAILED and "died" in by_label["Cu3Au L12"].error
    assert sum(r.status == STATUS_OK for r in records) == len(tasks) - 1  # its neighbours in flight ran again


@pytest.mark.slow
def test_dask_executor_uses_an_existing_scheduler_address(tmp_path):
    from distributed import LocalCluster

    tasks = make_plan(small(tmp_path)).tasks[:3]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        executor = make_executor("dask", {"address": cluster.scheduler_address, "workers": 1})
        records = [r for r in executor(tasks) if r is not None]
        assert cluster.scheduler.workers  # the cluster tansaku did not start is still up: it used it, not its own
    assert sorted(r.task_id for r in records) == sorted(t.task_id for t in tasks)
    assert all(r.status == STATUS_OK for r in records)


def test_tasks_go_out_largest_first_and_the_pool_forkserver_starts_before_the_tasks(tmp_path):
    from multiprocessing import forkserver

    from tansaku.workflows.executors import POOL_PRELOAD, prepare_executor
    from tansaku.workflows.runner import longest_first

    tasks = make_plan(small(tmp_path)).tasks
    ordered = longest_first(tasks)
    sizes = [len(t.atoms) for t in ordered]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) > 1
    for size in set(sizes):  # stable: plan order among tasks of one size
        assert [t for t in ordered if len(t.atoms) == size] == [t for t in tasks if len(t.atoms) == size]

    prepare_executor("serial")  # nothing to prepare
    prepare_executor("pool")
    server = forkserver._forkserver
    assert server._forkserver_pid is not None and server._preload_modules == POOL_PRELOAD
