"""A test-only calculator that cannot handle gold, and a FireTask that registers it in a rocket's process.

``rlaunch`` runs Fireworks in its own process, which knows only the calculators tansaku registers on
import. A Firework whose task list starts with ``RegisterNoGold`` (FireWorks loads it by its module name,
so this folder must be on the rocket's PYTHONPATH) has ``emt-no-gold`` available for the tansaku task after it.
"""

from __future__ import annotations

from ase.calculators.emt import EMT
from fireworks.core.firework import FiretaskBase
from fireworks.utilities.fw_utilities import explicit_serialize

from tansaku.calculators import CalculatorSpec, register

NAME = "emt-no-gold"
MESSAGE = "gold is not allowed in this test"


class NoGoldEMT(EMT):
    """EMT that raises for cells with gold: a real calculator error inside a real relaxation."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        if atoms is not None and "Au" in atoms.get_chemical_symbols():
            raise RuntimeError(MESSAGE)
        super().calculate(atoms, properties, system_changes)


def register_no_gold() -> None:
    register(CalculatorSpec(name=NAME, factory=NoGoldEMT, elements=frozenset({"Cu", "Ni", "Au", "Pt"}),
                            package="ase"))


@explicit_serialize
class RegisterNoGold(FiretaskBase):
    """Register ``emt-no-gold`` in this process (put it before the tansaku FireTask)."""

    def run_task(self, fw_spec):
        register_no_gold()
