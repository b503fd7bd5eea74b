"""Relax many small cells together: one batched model call per optimizer step for all of them.

The per-structure path (relax.py) runs one ASE optimizer loop per structure, so an ML model is called
once per structure per step with a batch of one graph. ``relax_batch`` keeps each structure's own ASE
optimizer and cell filter (FIRE/BFGS/LBFGS on ``FastFrechetCellFilter``, exactly as ``relax``), but drives
them step by step itself: every step it evaluates all structures still relaxing in **one** model call
(CHGNet: one graph batch through ``CHGNet.predict_structure``; SevenNet: one collated graph batch
through its model), hands each its energy, forces, stress
and moments through a ``SinglePointCalculator``, and lets each optimizer take its step. The optimizers'
arithmetic is ASE's own, so the relaxed energies equal the per-structure path's up to the model's
batch-vs-single float noise (tests/test_ml_batch.py).

Relaxations are "in flight": at most ``batch_size`` relax at once, and a converged one is replaced by
the next waiting structure, so the batch stays full. The model runs on the runtime's ``device``
(``"cuda"`` where a GPU exists): the calculator is built by ``get_calculator`` with the runtime, and
the batch evaluator uses that model as it is.

Calculators without a batch evaluator (EMT, DFT) are evaluated one structure at a time inside the
same driver: same results, no gain; file-based (DFT) codes are refused (they have their own
checkpointed per-task path).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from tansaku.calculators.cell_filter import FastFrechetCellFilter
from tansaku.calculators.context import RunContext, Runtime
from tansaku.calculators.registry import CalculatorConfigError, get_calculator, get_spec
from tansaku.calculators.relax import (
    OPTIMIZERS,
    RelaxResult,
    RelaxSettings,
    _magnetic_moments,
    _stress,
    check_physical,
    default_magmoms,
)

# results of one structure: ASE names and units (energy eV, forces eV/Å, stress Voigt eV/Å³, magmoms μB)
Results = dict[str, Any]
BatchEvaluator = Callable[[Sequence[Atoms]], list[Results]]


def chgnet_batch_evaluator(calc: Calculator) -> BatchEvaluator:
    """One CHGNet graph batch for a list of structures, converted as ``CHGNetCalculator.calculate`` does
    (energy per atom x atoms, stress in GPa x the calculator's ``stress_weight``)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    model, stress_weight = calc.model, calc.stress_weight

    def evaluate(structures: Sequence[Atoms]) -> list[Results]:
        converted = [AseAtomsAdaptor.get_structure(atoms) for atoms in structures]
        predicted = model.predict_structure(converted, task="efsm", batch_size=max(1, len(converted)))
        if isinstance(predicted, dict):  # chgnet returns a bare dict for a single structure
            predicted = [predicted]
        out = []
        for atoms, p in zip(structures, predicted):
            factor = len(atoms) if model.is_intensive else 1
            energy = float(p["e"]) * factor
            stress = np.asarray(p["s"], dtype=float) * stress_weight
            if stress.shape == (3, 3):  # CHGNet gives the full tensor; ASE wants Voigt (xx yy zz yz xz xy)
                stress = full_3x3_to_voigt_6_stress(stress)
            out.append({"energy": energy, "free_energy": energy, "forces": np.asarray(p["f"], dtype=float),
                        "stress": stress, "magmoms": np.asarray(p["m"], dtype=float).reshape(-1)})
        return out
    return evaluate


def sevenn_batch_evaluator(calc: Calculator) -> BatchEvaluator:
    """One SevenNet graph batch (torch_geometric ``Collater``, as sevenn's own torch-sim model does) for a
    list of structures, converted as ``SevenNetCalculator.output_to_results`` does (stress: minus the
    model's, Voigt order xx yy zz yz xz xy, eV/Å³). The model is the calculator's, on its device; it is
    switched to batch mode for the call only (the calculator's single-structure path needs it off)."""
    import sevenn._keys as key
    import torch
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph
    from torch_geometric.loader.dataloader import Collater

    model, cutoff, device, modal = calc.model, calc.cutoff, calc.device, calc.modal
    collate = Collater([], follow_batch=None, exclude_keys=None)

    def evaluate(structures: Sequence[Atoms]) -> list[Results]:
        graphs = []
        for atoms in structures:
            calc.set_atoms(atoms)  # an element the model does not know: a clear error for this structure
            graph = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, cutoff, with_shift=False))
            if modal:
                graph[key.DATA_MODALITY] = modal
            graphs.append(graph)
        batch = collate(graphs).to(device)
        model.set_is_batch_data(True)
        try:
            output = model(batch)
        finally:
            model.set_is_batch_data(False)
        counts = [len(atoms) for atoms in structures]
        energies = output[key.PRED_TOTAL_ENERGY].detach().cpu().numpy().reshape(-1)
        forces = torch.split(output[key.PRED_FORCE].detach().cpu(), counts)
        stresses = -output[key.PRED_STRESS].detach().cpu().numpy().reshape(-1, 6)[:, [0, 1, 2, 4, 5, 3]]
        return [{"energy": float(e), "free_energy": float(e), "forces": f.numpy().astype(float),
                 "stress": s.astype(float)} for e, f, s in zip(energies, forces, stresses)]
    return evaluate


def sequential_evaluator(calc: Calculator) -> BatchEvaluator:
    """The fallback: the calculator evaluates one structure after another (same results, no batching)."""

    def evaluate(structures: Sequence[Atoms]) -> list[Results]:
        out = []
        for atoms in structures:
            work = atoms.copy()
            work.calc = calc
            results = {"energy": work.get_potential_energy(), "forces": work.get_forces()}
            if work.pbc.all():
                results["stress"] = work.get_stress()
            if calc.results.get("magmoms") is not None:
                results["magmoms"] = calc.results["magmoms"]
            out.append(results)
        return out
    return evaluate


# calculator name -> builder of its batch evaluator from the (cached, device-placed) calculator
BATCH_EVALUATORS: dict[str, Callable[[Calculator], BatchEvaluator]] = {
    "chgnet": chgnet_batch_evaluator, "sevenn": sevenn_batch_evaluator}


def batch_evaluator(name: str, calc: Calculator) -> BatchEvaluator:
    """The batched evaluator of calculator ``name`` (sequential where the calculator has none)."""
    return BATCH_EVALUATORS.get(name, sequential_evaluator)(calc)


class _Relaxation:
    """One structure's relaxation: its atoms, cell filter and ASE optimizer, driven step by step."""

    def __init__(self, index: int, atoms: Atoms, settings: RelaxSettings, relax_cell: bool,
                 uses_initial_magmoms: bool) -> None:
        self.index, self.start = index, time.perf_counter()
        self.atoms = atoms.copy()
        if uses_initial_magmoms and not self.atoms.get_initial_magnetic_moments().any():
            self.atoms.set_initial_magnetic_moments(default_magmoms(self.atoms))
        self.target = FastFrechetCellFilter(self.atoms) if relax_cell else self.atoms
        self.optimizer = OPTIMIZERS[settings.optimizer](self.target, logfile=None)
        self.optimizer.fmax = settings.fmax

    def attach(self, results: Results) -> None:
        """Give the current structure its computed results (checked for unphysical values)."""
        known = {k: v for k, v in results.items() if k in ("energy", "free_energy", "forces", "stress", "magmoms")}
        self.atoms.calc = SinglePointCalculator(self.atoms, **known)
        check_physical(self.atoms)

    def result(self, converged: bool) -> RelaxResult:
        forces = self.atoms.get_forces()
        magmoms, magmom_total = _magnetic_moments(self.atoms.calc, self.atoms)
        return RelaxResult(
            atoms=self.atoms.copy(), energy=float(self.atoms.get_potential_energy()),
            fmax=float(np.sqrt((forces**2).sum(axis=1)).max()) if len(self.atoms) else 0.0,
            stress=_stress(self.atoms), magmoms=magmoms, magmom_total=magmom_total,
            steps=int(self.optimizer.nsteps), converged=converged,
            wall_time=time.perf_counter() - self.start)


def _evaluate(evaluate: BatchEvaluator, relaxing: list[_Relaxation]) -> list[Results | Exception]:
    """One batched call; if it fails, each structure alone, so that one bad cell fails only itself."""
    try:
        return list(evaluate([r.atoms for r in relaxing]))
    except Exception:  # noqa: BLE001 - isolate the structure that broke the batch
        out: list[Results | Exception] = []
        for r in relaxing:
            try:
                out.extend(evaluate([r.atoms]))
            except Exception as exc:  # noqa: BLE001 - reported as that structure's result
                out.append(exc)
        return out


def relax_batch(atoms_list: Sequence[Atoms], calculator_name: str, params: Mapping[str, Any] | None = None,
                settings: RelaxSettings = RelaxSettings(), runtime: Runtime | None = None,  # noqa: B008
                batch_size: int | None = None, relax_cell: bool | None = None) -> list[RelaxResult | Exception]:
    """Relax copies of ``atoms_list`` with ``batch_size`` of them (default: the runtime's ``batch_size``,
    else all) sharing one model call per step; results in input order.

    Each entry is the structure's ``RelaxResult`` as ``relax`` gives it, or the exception that stopped
    that structure (``UnphysicalResult``, a model error): one failure never stops the others.
    ``relax_cell`` overrides the settings as in ``relax``. Not for file-based (DFT) calculators.
    """
    spec = get_spec(calculator_name)
    if spec.file_based:
        raise CalculatorConfigError(f"calculator {calculator_name!r} runs files per task: relax it with relax(), "
                                    "not relax_batch")
    runtime = runtime or Runtime()
    calc = get_calculator(calculator_name, params, RunContext(runtime=runtime))
    evaluate = batch_evaluator(calculator_name, calc)
    size = batch_size or getattr(runtime, "batch_size", 0) or len(atoms_list) or 1
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    cell = settings.relax_cell if relax_cell is None else relax_cell
    waiting = deque(range(len(atoms_list)))
    results: list[RelaxResult | Exception | None] = [None] * len(atoms_list)
    relaxing: list[_Relaxation] = []
    while waiting or relaxing:
        while waiting and len(relaxing) < size:
            i = waiting.popleft()
            relaxing.append(_Relaxation(i, atoms_list[i], settings, cell, spec.uses_initial_magmoms))
        still = []
        for r, computed in zip(relaxing, _evaluate(evaluate, relaxing)):
            try:
                if isinstance(computed, Exception):
                    raise computed
                r.attach(computed)
                converged = bool(r.optimizer.converged())
                if converged or r.optimizer.nsteps >= settings.steps:
                    results[r.index] = r.result(converged)
                    continue
                r.optimizer.step()
                r.optimizer.nsteps += 1
                still.append(r)
            except Exception as exc:  # noqa: BLE001 - that structure's failure, the others go on
                results[r.index] = exc
        relaxing = still
    return results  # type: ignore[return-value]
