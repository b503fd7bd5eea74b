"""Failures a DFT calculation can end in, each recognised by the error handlers (handlers.py).

They are raised by tansaku's own code (process runner, output parsers, relaxation checks), never
inferred from free-form text after the fact, so the handler that reacts to one is unambiguous.
``kind`` names the failure in a record's history.
"""

from __future__ import annotations


class CalculationFailure(RuntimeError):
    """Base class of the recognised failures."""

    kind = "error"

    def __init_subclass__(cls, kind: str = "error", **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = kind


class SCFNotConverged(CalculationFailure, kind="scf_unconverged"):
    """The self-consistent field did not converge within the iteration limit."""


class CodeTimeout(CalculationFailure, kind="timeout"):
    """The code (or a relaxation between steps) ran past the runtime's ``timeout``."""


class CodeCrashed(CalculationFailure, kind="crashed"):
    """The executable exited with a non-zero status or was killed by a signal."""


class ExecutableNotFound(CalculationFailure, kind="executable_not_found"):
    """The launch command's executable does not exist: no correction can help."""


class UnphysicalResult(CalculationFailure, kind="unphysical"):
    """A NaN/infinite energy, force or stress, or forces beyond ``MAX_FORCE`` (an exploding structure)."""
