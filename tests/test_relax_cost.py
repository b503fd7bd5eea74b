"""A relaxation computes each structure once: no calculation beyond the optimizer's own."""

from __future__ import annotations

import numpy as np
from ase.build import bulk
from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT

from tansaku.calculators import RelaxSettings, get_spec, relax
from tansaku.screening.candidate import Candidate
from tansaku.workflows.run_task import run_task
from tansaku.workflows.tasks import make_task


class CountingEMT(EMT):
    calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):  # noqa: ANN001
        CountingEMT.calls += 1
        super().calculate(atoms, list(properties), system_changes)


class MomentsOnRequest(EMT):
    """A code that reports its moments only when asked for them (as some DFT interfaces do)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):  # noqa: ANN001
        if "magmoms" in properties and not system_changes and self.results:
            self.results["magmoms"] = np.full(len(atoms), 0.5)
            return
        super().calculate(atoms, list(properties), system_changes)


def _strained_alloy():
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True)
    atoms.symbols[0] = "Au"
    atoms.rattle(0.03, seed=3)
    return atoms


def test_emt_is_called_once_per_step_and_once_at_the_start():
    CountingEMT.calls = 0
    result = relax(_strained_alloy(), CountingEMT(), RelaxSettings(fmax=0.01), moments=False)
    assert result.converged and result.steps > 3
    assert CountingEMT.calls == result.steps + 1


def test_run_task_adds_no_calculation_for_a_calculator_without_moments(monkeypatch):
    from ase.calculators import emt as ase_emt

    original = ase_emt.EMT.calculate
    calls = []

    def counting(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ase_emt.EMT, "calculate", counting)
    task = make_task(Candidate(_strained_alloy(), "CuAu3"), "emt", get_spec("emt").resolve_params({}),
                     RelaxSettings(fmax=0.01))
    record = run_task(task)
    assert record.status == "ok", record.error
    assert len(calls) == record.steps + 1
    assert record.magmoms is None


def test_moments_reported_only_on_request_are_still_asked_for():
    result = relax(_strained_alloy(), MomentsOnRequest(), RelaxSettings(fmax=0.05))
    assert result.magmoms is not None and np.allclose(result.magmoms, 0.5) and result.magmom_total == 2.0
    skipped = relax(_strained_alloy(), MomentsOnRequest(), RelaxSettings(fmax=0.05), moments=False)
    assert skipped.magmoms is None
