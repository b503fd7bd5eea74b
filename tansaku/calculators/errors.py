"""Failures a DFT calculation can end in, each recognised by the error handlers (handlers.py).

They are raised by tansaku's own code (process runner, output parsers, relaxation checks), never
inferred from free-form text after the fact, so the handler that reacts to one is unambiguous.
"""

from __future__ import annotations


class CalculationFailure(RuntimeError):
    """Base class: ``kind`` names the failure in a record's history."""

    kind = "error"


class SCFNotConverged(CalculationFailure):
    """The self-consistent field did not converge within the iteration limit."""

    kind = "scf_unconverged"


class CodeTimeout(CalculationFailure):
    """The code (or a relaxation between steps) ran past the runtime's ``timeout``."""

    kind = "timeout"


class CodeCrashed(CalculationFailure):
    """The executable exited with a non-zero status or was killed by a signal."""

    kind = "crashed"


class ExecutableNotFound(CalculationFailure):
    """The launch command's executable does not exist: no correction can help."""

    kind = "executable_not_found"


class UnphysicalResult(CalculationFailure):
    """A NaN/infinite energy, force or stress, or forces beyond ``MAX_FORCE`` (an exploding structure)."""

    kind = "unphysical"
