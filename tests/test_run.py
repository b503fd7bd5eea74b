"""End-to-end campaigns with real EMT relaxations, a real Dask LocalCluster and real HDF5 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT

from tansaku.calculators import CalculatorSpec
from tansaku.results import read_columns, read_record
from tansaku.workflows.campaign import parse_campaign
from tansaku.workflows.executors import serial_executor
from tansaku.workflows.plan import make_plan
from tansaku.workflows.runner import run_campaign

SMALL = """
[campaign]
name = "small"
output = "{output}"
[calculator]
name = "{calculator}"
[relax]
fmax = 0.02
[execution]
executor = "{executor}"
workers = 2
batch_size = 4
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = ["Cu", "Au", "Pt"], "3c" = ["Cu", "Ni"] }}
distinct_elements = true
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Cu" }}
supercell = [2, 1, 1]
include_parent = false
[[prototypes.variants]]
substitute = {{ "4a" = {{ Au = 2 }} }}
"""


def small_campaign(tmp_path: Path, executor: str = "serial", calculator: str = "emt", name: str = "small.h5"):
    text = SMALL.format(output=tmp_path / name, executor=executor, calculator=calculator)
    return parse_campaign(text, source="small.toml")


def test_serial_campaign_stores_one_converged_record_per_task(tmp_path):
    campaign = small_campaign(tmp_path)
    plan = make_plan(campaign)
    summary = run_campaign(campaign, show_progress=False)
    cols = read_columns(campaign.output)
    assert summary.ok == len(plan.tasks) == len(cols["task_id"])
    assert sorted(cols["task_id"]) == sorted(t.task_id for t in plan.tasks)
    assert (cols["status"] == "ok").all() and cols["converged"].all()
    assert (cols["fmax"] < 0.02).all()
    assert set(cols["kind"]) == {"candidate", "reference"}
    # the stored energy is the EMT energy of the stored structure
    fields, atoms = read_record(campaign.output, cols["task_id"][-1])
    atoms.calc = EMT()
    assert atoms.get_potential_energy() == pytest.approx(fields["energy"], abs=1e-6)
    assert fields["energy_per_atom"] == pytest.approx(fields["energy"] / len(atoms))


def test_rerun_resumes_without_recomputing(tmp_path):
    campaign = small_campaign(tmp_path)
    first = run_campaign(campaign, show_progress=False)
    again = run_campaign(campaign, show_progress=False)
    assert first.ran == first.tasks and again.ran == 0 and again.already_stored == first.tasks
    assert len(read_columns(campaign.output, ["task_id"])["task_id"]) == first.tasks


def test_dask_local_cluster_gives_the_serial_results(tmp_path):
    serial = small_campaign(tmp_path, "serial", name="serial.h5")
    parallel = small_campaign(tmp_path, "dask", name="dask.h5")
    run_campaign(serial, show_progress=False)
    summary = run_campaign(parallel, show_progress=False)
    a, b = read_columns(serial.output), read_columns(parallel.output)
    order_a, order_b = np.argsort(a["task_id"]), np.argsort(b["task_id"])
    assert (a["task_id"][order_a] == b["task_id"][order_b]).all()
    np.testing.assert_allclose(a["energy"][order_a], b["energy"][order_b], atol=1e-8)
    workers = {w for w in b["worker"]}
    assert summary.ok == summary.tasks and len(workers) == 2  # two worker processes shared the work


class _FailsOnGold(EMT):
    """EMT that raises for gold-containing cells: a real calculator error inside a real relaxation."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        if atoms is not None and "Au" in atoms.get_chemical_symbols():
            raise RuntimeError("gold is not allowed in this test")
        super().calculate(atoms, properties, system_changes)


def test_failed_tasks_are_stored_and_rerun_only_when_asked(tmp_path, calculator_registry):
    calculator_registry(CalculatorSpec(name="emt-no-gold", factory=_FailsOnGold,
                            elements=frozenset({"Cu", "Ni", "Au", "Pt"}), package="ase"))
    campaign = small_campaign(tmp_path, calculator="emt-no-gold")
    summary = run_campaign(campaign, show_progress=False)
    cols = read_columns(campaign.output)
    gold = np.array(["Au" in label for label in cols["label"]])
    assert summary.failed == gold.sum() > 0 and summary.ok == (~gold).sum() > 0
    assert (cols["status"][gold] == "failed").all()
    assert all("gold is not allowed" in e for e in cols["error"][gold])
    assert run_campaign(campaign, show_progress=False).ran == 0
    rerun = run_campaign(campaign, rerun_failed=True, show_progress=False)
    assert rerun.ran == gold.sum()
    assert len(read_columns(campaign.output, ["task_id"])["task_id"]) == len(cols["task_id"])  # rows rewritten


def test_heartbeats_flush_finished_records_while_a_long_task_runs(tmp_path):
    import time

    from tansaku.results import Store
    from tansaku.workflows.run_task import run_task
    from tansaku.workflows.runner import RunSummary, _BatchWriter

    tasks = make_plan(small_campaign(tmp_path)).tasks[:3]

    def slow_run(task):
        record = run_task(task)
        time.sleep(0.5)  # a long task: the previous record must not wait for it
        return record

    stored_when_record_arrived = []
    with Store.open(tmp_path / "heartbeat.h5") as store:
        writer = _BatchWriter(store, RunSummary(), batch_size=1000, flush_seconds=0.1)
        for item in serial_executor(run=slow_run, heartbeat=0.02)(iter(tasks)):
            if item is not None:
                stored_when_record_arrived.append(len(store))
            writer.add(item)
        writer.flush()
        assert len(store) == 3
    # the batch never filled, yet each record was stored before the next one finished
    assert stored_when_record_arrived == [0, 1, 2]


def test_dask_executor_turns_a_task_error_into_a_failed_record_and_goes_on(tmp_path):
    from tansaku.workflows.executors import dask_executor

    tasks = make_plan(small_campaign(tmp_path)).tasks[:3]
    # len(task) raises TypeError inside the worker: a real exception crossing the Dask boundary
    records = [r for r in dask_executor(workers=1, run=len)(iter(tasks)) if r is not None]
    assert sorted(r.task_id for r in records) == sorted(t.task_id for t in tasks)
    assert all(r.status == "failed" and "TypeError" in r.error for r in records)
