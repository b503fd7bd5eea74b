"""Batched relaxation (calculators/batch.py): same results as the per-structure path, failures isolated.

The driver is tested on ASE EMT (fast, default suite): it must reproduce ``relax`` exactly, since the
optimizer arithmetic is ASE's own. CHGNet's real graph batch is tested on small cells (``ml``) and on
SmFe12 cells (``slow``): batched and single-graph model calls differ only by float noise, so the
relaxed energies agree far inside what the force tolerance allows.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from hpc_campaigns import small
from synthetic import smfe12_cells

from tansaku.calculators import (
    RelaxSettings,
    RunContext,
    Runtime,
    get_calculator,
    relax,
)
from tansaku.calculators.batch import batch_evaluator, relax_batch
from tansaku.calculators.errors import UnphysicalResult
from tansaku.calculators.registry import CalculatorConfigError
from tansaku.results import read_table
from tansaku.results.record import STATUS_FAILED, STATUS_OK
from tansaku.workflows.executors import make_executor
from tansaku.workflows.plan import make_plan
from tansaku.workflows.run_task import (
    TaskBatch,
    run_batch,
    run_task,
    run_tasks,
    work_units,
)
from tansaku.workflows.runner import execute_plan
from tansaku.workflows.tasks import Task


def alloys(count: int, seed: int = 0) -> list[Atoms]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 1, 1))
        atoms.symbols = rng.choice(["Cu", "Ni", "Al", "Ag"], len(atoms))
        atoms.rattle(0.05, seed=k)
        out.append(atoms)
    return out


def test_batched_driver_reproduces_the_per_structure_relaxation():
    structures, settings = alloys(3), RelaxSettings(fmax=0.05, steps=150)
    batched = relax_batch(structures, "emt", settings=settings, batch_size=2)  # in flight: 2, then 1
    for atoms, got in zip(structures, batched):
        want = relax(atoms, get_calculator("emt"), settings)
        assert got.converged == want.converged and got.steps == want.steps
        assert got.energy == pytest.approx(want.energy, abs=1e-9)
        np.testing.assert_allclose(got.atoms.cell, want.atoms.cell, atol=1e-9)
        np.testing.assert_allclose(got.atoms.positions, want.atoms.positions, atol=1e-9)
        assert got.fmax == pytest.approx(want.fmax, abs=1e-9) and np.allclose(got.stress, want.stress)
    assert batched[0].atoms is not structures[0] and structures[0].calc is None  # inputs untouched


def test_step_limit_and_fixed_cell_follow_the_settings():
    structures = alloys(2, seed=3)
    for got, atoms in zip(relax_batch(structures, "emt", settings=RelaxSettings(fmax=1e-6, steps=4),
                                      relax_cell=False), structures):
        assert got.steps == 4 and not got.converged
        np.testing.assert_allclose(got.atoms.cell, atoms.cell)


def test_one_exploding_structure_fails_alone():
    structures = alloys(3)
    crushed = structures[1]
    crushed.positions[1] = crushed.positions[0] + [0.3, 0, 0]  # 0.3 Å apart: forces far beyond MAX_FORCE
    results = relax_batch(structures, "emt", settings=RelaxSettings(steps=50))
    assert isinstance(results[1], UnphysicalResult)
    assert results[0].converged and results[2].converged


def _task(atoms: Atoms, k: int, calculator: str = "emt") -> Task:
    return Task(task_id=f"t{k}", candidate_id=f"c{k}", kind="candidate", label=f"alloy {k}",
                formula=atoms.get_chemical_formula(), prototype="fcc", parent="", atoms=atoms,
                calculator=calculator, relax=RelaxSettings(fmax=0.02, steps=150))


def test_run_tasks_batches_ml_like_tasks_into_the_same_records_as_run_task():
    tasks = [_task(atoms, k) for k, atoms in enumerate(alloys(4))] + [_task(alloys(1)[0], 9, "no-such-code")]
    batched = run_tasks(tasks, Runtime(batch_size=8))
    single = [run_task(task) for task in tasks]
    for got, want in zip(batched[:4], single[:4]):
        assert got.status == want.status == STATUS_OK and got.task_id == want.task_id
        assert got.energy == pytest.approx(want.energy, abs=1e-9) and got.steps == want.steps
        np.testing.assert_allclose(got.positions, want.positions, atol=1e-9)
    assert batched[4].status == STATUS_FAILED and "no-such-code" in batched[4].error


def test_runtime_rejects_a_negative_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        Runtime(batch_size=-1)


def _same_as_per_structure(structures: list[Atoms], settings: RelaxSettings, name: str = "chgnet") -> None:
    batched = relax_batch(structures, name, settings=settings)
    calc = get_calculator(name)
    for atoms, got in zip(structures, batched):
        want = relax(atoms, calc, settings)
        # converged is judged on the cell filter's generalised forces; the stored fmax is the atomic one
        assert got.converged and want.converged and got.fmax < 2 * settings.fmax
        # a force residual below fmax bounds the energy error of either minimum far below 1 meV/atom;
        # batch vs single graph differs by float32 noise only
        assert abs(got.energy - want.energy) / len(atoms) < 1e-3
        if got.magmoms is None:  # SevenNet predicts no moments
            continue
        # two minima within the force tolerance: total moments agree to 0.01 μB per atom (0.05 at least)
        assert got.magmom_total == pytest.approx(want.magmom_total, abs=max(0.05, 0.01 * len(atoms)))


def test_work_units_split_ml_tasks_evenly_over_the_workers_and_leave_the_rest_alone():
    emt = [_task(atoms, k) for k, atoms in enumerate(alloys(6))]
    dft = dataclasses.replace(emt[0], task_id="dft", calculator="gpaw")  # file-based: never batched
    tasks = [emt[0], dft, *emt[1:]]
    assert work_units(tasks, Runtime(), 2) == tasks  # no batch size: every task alone
    units = work_units(tasks, Runtime(batch_size=64), 2)
    assert [type(u).__name__ for u in units] == ["TaskBatch", "TaskBatch", "Task"]  # where the group began
    assert [t.task_id for t in units[0].tasks + units[1].tasks] == [t.task_id for t in emt]
    assert [len(u.tasks) for u in units[:2]] == [3, 3] and units[2] is dft  # two workers: two batches of three
    many = [dataclasses.replace(emt[0], task_id=f"t{k}") for k in range(200)]
    assert [len(u.tasks) for u in work_units(many, Runtime(batch_size=64), 2)] == [50] * 4
    assert [len(u.tasks) for u in work_units(many[:64], Runtime(batch_size=64), 2)] == [32, 32]
    assert [len(u.tasks) for u in work_units(many[:10], Runtime(batch_size=4), 1)] == [4, 3, 3]
    assert TaskBatch(tuple(many[:3])).task_id == "t0+2"


@pytest.mark.slow
def test_a_campaign_with_batch_size_relaxes_in_batches_on_pool_workers(tmp_path):
    """[calculator.runtime] batch_size: each pool worker relaxes its batch together; the records are those
    of the per-task path, one per structure, and a structure that explodes is stored failed while the rest
    of its batch is stored relaxed."""
    batched = small(tmp_path, "batched", extra="[calculator.runtime]\nbatch_size = 16\n")
    batched = dataclasses.replace(batched, execution=batched.execution.with_overrides(executor="pool", workers=2))
    plan = make_plan(batched)
    bad = next(k for k, task in enumerate(plan.tasks) if len(task.atoms) > 2)
    crushed = plan.tasks[bad].atoms.copy()
    crushed.positions[1] = crushed.positions[0] + [0.3, 0, 0]  # 0.3 Å apart: forces far beyond MAX_FORCE
    plan.tasks[bad] = dataclasses.replace(plan.tasks[bad], atoms=crushed)
    summary = execute_plan(plan, batched, show_progress=False)
    assert summary.ran == len(plan.tasks) and summary.failed == 1

    single = small(tmp_path, "single")
    execute_plan(plan, single, show_progress=False)
    got, want = (read_table(c.output).set_index("task_id") for c in (batched, single))
    # a batch's records share its worker and wall time (the batch's time / its size): two batches of a group
    # split over two workers; the per-task path gives every task its own wall time
    assert len(set(zip(got.worker, got.wall_time))) == 2
    assert len(set(want.wall_time)) == len(want)
    assert sorted(got.index) == sorted(want.index) == sorted(t.task_id for t in plan.tasks)
    failed = got.loc[plan.tasks[bad].task_id]
    assert failed.status == STATUS_FAILED and "UnphysicalResult" in failed.error
    ok = [t.task_id for t in plan.tasks if t.task_id != plan.tasks[bad].task_id]
    assert (got.loc[ok, "status"] == STATUS_OK).all()
    np.testing.assert_allclose(got.loc[ok, "energy"], want.loc[ok, "energy"], atol=1e-9)
    assert (got.loc[ok, "steps"] == want.loc[ok, "steps"]).all()


def crash_in_batch(batch):
    """Kill the worker process whenever one task is in the batch (a segfaulting model); relax the rest."""
    if any(t.label.startswith("Cu3Au L12") for t in batch.tasks):
        os._exit(3)
    return run_batch(batch)


def test_a_batch_whose_process_dies_is_rerun_task_by_task(tmp_path):
    tasks = make_plan(small(tmp_path)).tasks
    units = work_units(tasks, Runtime(batch_size=64), 2)
    assert len(units) == 2
    records = [r for r in make_executor("pool", {"workers": 2}, run=crash_in_batch)(units) if r is not None]
    by_label = {r.label: r for r in records}
    assert sorted(r.task_id for r in records) == sorted(t.task_id for t in tasks)
    assert by_label["Cu3Au L12"].status == STATUS_FAILED and "died" in by_label["Cu3Au L12"].error
    assert sum(r.status == STATUS_OK for r in records) == len(tasks) - 1


def test_a_gpu_asked_for_where_torch_sees_none_is_a_clear_error_per_task():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU (test_batched_relaxation_on_cuda runs instead)")
    from tansaku.calculators.builtin import torch_device

    assert torch_device("cpu") == "cpu"
    for device, message in [("cuda", "sees no CUDA GPU"), ("cuda:1", "sees no CUDA GPU"),
                            ("gpu", "expected cpu, cuda, cuda:N or mps"), ("cpu:0", "expected cpu")]:
        with pytest.raises(CalculatorConfigError, match=f"runtime device '{device}': .*{message}"):
            torch_device(device)
    task = _task(bulk("Ni", "fcc", a=3.5), 0, "chgnet")
    records = run_tasks([task, dataclasses.replace(task, task_id="t1")], Runtime(device="cuda", batch_size=8))
    assert [r.status for r in records] == [STATUS_FAILED] * 2
    assert all("runtime device 'cuda'" in r.error and "\n" not in r.error for r in records)


@pytest.mark.ml
@pytest.mark.parametrize("name", ["chgnet", "sevenn"])
def test_graph_batch_gives_the_single_structure_results(name):
    """One batched model call = the calculator's own call per structure (float32 noise), mixed sizes."""
    pytest.importorskip(name)
    structures = [bulk("Fe", "bcc", a=2.9), bulk("Ni", "fcc", a=3.4).repeat((2, 1, 1)), bulk("Cu", "fcc", a=3.6)]
    structures[1].symbols[1] = "Co"
    for atoms in structures:
        atoms.rattle(0.03, seed=1)
    calc = get_calculator(name)
    for atoms, got in zip(structures, batch_evaluator(name, calc)(structures)):
        work = atoms.copy()
        work.calc = calc
        assert got["energy"] == pytest.approx(work.get_potential_energy(), abs=1e-4 * len(atoms))
        np.testing.assert_allclose(got["forces"], work.get_forces(), atol=1e-4)
        np.testing.assert_allclose(got["stress"], work.get_stress(), atol=1e-5)


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="no CUDA GPU on this machine")
@pytest.mark.ml
@pytest.mark.parametrize("name", ["chgnet", "sevenn"])
def test_batched_relaxation_on_cuda(name):
    """device = "cuda": the model runs on the GPU (batched), with the CPU path's relaxed energies."""
    pytest.importorskip(name)
    structures = [bulk("Fe", "bcc", a=2.9), bulk("Ni", "fcc", a=3.4)]
    settings = RelaxSettings(fmax=0.05, steps=200)
    on_gpu = relax_batch(structures, name, settings=settings, runtime=Runtime(device="cuda"))
    on_cpu = relax_batch(structures, name, settings=settings, runtime=Runtime(device="cpu"))
    model = get_calculator(name, None, RunContext(Runtime(device="cuda"))).model
    assert next(model.parameters()).device.type == "cuda"
    for gpu, cpu, atoms in zip(on_gpu, on_cpu, structures):
        assert gpu.converged and abs(gpu.energy - cpu.energy) / len(atoms) < 1e-3


@pytest.mark.ml
@pytest.mark.parametrize("name", ["chgnet", "sevenn"])
def test_graph_batch_relaxes_like_the_per_structure_path(name):
    pytest.importorskip(name)
    structures = [bulk("Fe", "bcc", a=2.9), bulk("Ni", "fcc", a=3.4), bulk("Cu", "fcc", a=3.7)]
    for atoms in structures:
        atoms.rattle(0.02, seed=1)
    _same_as_per_structure(structures, RelaxSettings(fmax=0.05, steps=200), name)


@pytest.mark.ml
@pytest.mark.slow
def test_chgnet_graph_batch_on_smfe12_cells():
    pytest.importorskip("chgnet")
    _same_as_per_structure(smfe12_cells(2, seed=1), RelaxSettings(fmax=0.05, steps=300))
