"""Calculators: a registry of ASE calculator factories, and relaxation."""

from tansaku.calculators import builtin as _builtin  # noqa: F401  (registers emt, chgnet, sevenn)
from tansaku.calculators import dft as _dft  # noqa: F401  (registers gpaw, espresso, vasp)
from tansaku.calculators.context import RunContext, Runtime
from tansaku.calculators.registry import (
    CalculatorConfigError,
    CalculatorSpec,
    calculator_names,
    get_calculator,
    get_spec,
    register,
    unsupported_elements,
)
from tansaku.calculators.relax import RelaxResult, RelaxSettings, relax

__all__ = [
    "CalculatorConfigError", "CalculatorSpec", "RelaxResult", "RunContext", "Runtime", "RelaxSettings", "calculator_names",
    "get_calculator", "get_spec", "register", "relax", "unsupported_elements",
]
