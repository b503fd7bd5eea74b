"""The saved plan: round trip of every task (atoms included), repeated ids merged, reuse of an unchanged plan."""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest
from hpc_campaigns import small

from tansaku.results import read_columns
from tansaku.workflows import planfile
from tansaku.workflows.campaign import Execution
from tansaku.workflows.plan import make_plan
from tansaku.workflows.planfile import (
    PlanError,
    check_plan,
    ensure_plan,
    load_plan,
    load_tasks,
    plan_path,
    read_task_ids,
    save_plan,
)
from tansaku.workflows.runner import run_campaign
from tansaku.workflows.tasks import task_from_dict, task_to_dict, tasks_equal


def test_saved_plan_round_trip_gives_equal_tasks(tmp_path):
    campaign = small(tmp_path)
    plan = make_plan(campaign)
    plan.tasks[0].atoms.info["note"] = "kept"
    path = save_plan(plan, tmp_path / "p.plan.h5", campaign.text)
    loaded = load_plan(path)
    assert len(loaded.tasks) == len(plan.tasks) > 8
    assert all(tasks_equal(a, b) for a, b in zip(plan.tasks, loaded.tasks))
    assert (loaded.generated, loaded.duplicates, loaded.candidates, loaded.references) == \
        (plan.generated, plan.duplicates, plan.candidates, plan.references)
    # the references carry initial magnetic moments and info; both survive
    ref = next(t for t in loaded.tasks if t.kind == "reference")
    original = next(t for t in plan.tasks if t.task_id == ref.task_id)
    assert np.array_equal(ref.atoms.get_initial_magnetic_moments(), original.atoms.get_initial_magnetic_moments())
    assert loaded.tasks[0].atoms.info["note"] == "kept"
    # a subset, in the order asked for
    ids = [plan.tasks[5].task_id, plan.tasks[1].task_id]
    assert [t.task_id for t in load_tasks(path, ids)] == ids
    assert tasks_equal(load_tasks(path, ids)[0], plan.tasks[5])
    assert read_task_ids(path) == [t.task_id for t in plan.tasks]
    # tasks_equal can fail: a moved atom is seen
    moved = load_tasks(path, ids[:1])[0]
    moved.atoms.positions[0, 0] += 1e-9
    assert not tasks_equal(moved, plan.tasks[5])
    with pytest.raises(PlanError, match="not in the plan: nope"):
        load_tasks(path, ["nope"])
    # readable with h5py alone
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "tansaku-plan" and f["tasks/task_id"].shape == (len(plan.tasks),)
        assert int(f["tasks/natoms"][:].sum()) == f["atoms/numbers"].shape[0]


def test_task_json_form_round_trips(tmp_path):
    plan = make_plan(small(tmp_path))
    for task in plan.tasks:
        assert tasks_equal(task_from_dict(json.loads(json.dumps(task_to_dict(task)))), task)


MERGED = """
[references]
elements = ["Cu", "Au", "Cu", "Ni", "Pt"]

[[competing]]
prototype = "L12"
sites = { "1a" = "Au", "3c" = "Cu" }
"""


def test_repeated_task_ids_are_merged_at_planning_and_stored_once(tmp_path):
    campaign = small(tmp_path, extra=MERGED)
    plan = make_plan(campaign)
    ids = [t.task_id for t in plan.tasks]
    assert len(ids) == len(set(ids))
    assert plan.merged == 2  # Cu listed twice; the competing Cu3Au L12 is a candidate too
    cu3au = [t for t in plan.tasks if t.label == "Cu3Au L12"]
    assert len(cu3au) == 1 and cu3au[0].kind == "candidate"  # the ranked kind is kept
    summary = run_campaign(campaign, show_progress=False)
    stored = read_columns(campaign.output, ["task_id", "status"])
    assert summary.failed == 0 and sorted(stored["task_id"]) == sorted(ids)


def test_unchanged_campaign_reuses_the_saved_plan(tmp_path, monkeypatch):
    campaign = small(tmp_path)
    plan, reused = ensure_plan(campaign)
    assert not reused and plan_path(campaign) == tmp_path / "small.plan.h5"

    def no_planning(_):
        raise AssertionError("planned again")

    monkeypatch.setattr(planfile, "make_plan", no_planning)
    again, reused = ensure_plan(campaign)
    assert reused and [t.task_id for t in again.tasks] == [t.task_id for t in plan.tasks]
    # execution settings are not planning inputs
    more_workers = dataclasses.replace(campaign, execution=Execution(executor="pool", options={"workers": 8}))
    assert ensure_plan(more_workers)[1]
    # a changed relaxation is: the saved plan is refused by workers and replaced by ensure_plan
    changed = dataclasses.replace(campaign, relax=dataclasses.replace(campaign.relax, fmax=0.03))
    with pytest.raises(PlanError, match="different version"):
        check_plan(changed)
    monkeypatch.undo()
    replanned, reused = ensure_plan(changed)
    assert not reused and set(t.task_id for t in replanned.tasks).isdisjoint(t.task_id for t in plan.tasks)
    assert check_plan(changed) == plan_path(campaign)


def test_missing_or_foreign_plan_file_is_a_clear_error(tmp_path):
    campaign = small(tmp_path)
    with pytest.raises(PlanError, match="no saved plan.*tansaku plan"):
        check_plan(campaign)
    plan_path(campaign).write_bytes(b"not hdf5")
    with pytest.raises(PlanError, match="cannot read the plan file"):
        check_plan(campaign)
    assert not ensure_plan(campaign)[1]  # a damaged plan is planned again
