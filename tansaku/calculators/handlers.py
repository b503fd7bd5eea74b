"""Error handlers, custodian-style but transparent: a failure, a documented correction, a retry.

``relax_with_handlers`` relaxes a structure; when the calculation fails with a recognised failure
(errors.py) it applies the next correction for that failure and tries again, up to
``runtime.max_retries`` corrections. Every failure and correction goes into the history that is stored
with the record (column ``history``, JSON). The task keeps its id: corrections are how the requested
calculation was made to work, not a different calculation.

=====================  ===========================================================================
failure                corrections, in order (parameters as in presets.py)
=====================  ===========================================================================
``scf_unconverged``    1. ``mixing_beta`` × 0.5 and ``max_scf`` × 2 (gentler, longer SCF)
                       2. ``extra_bands`` + 0.3 and ``smearing`` × 2 (more empty states, smoother
                          occupations)
                       3. ``smearing_type`` → ``gaussian``, ``mixing_beta`` × 0.5 again
``timeout``            continue from the relaxation's checkpoint (the steps done are kept)
``crashed``            continue from the checkpoint (a killed or crashed process is retried)
``unphysical``         forget the checkpoint, halve the optimizer's largest step (``maxstep``) and
                       restart from the initial structure
``executable_not_found``, anything else: no correction; the task is stored as failed with the reason.
=====================  ===========================================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms

from tansaku.calculators.context import RunContext
from tansaku.calculators.errors import CalculationFailure, CodeCrashed, CodeTimeout, SCFNotConverged, UnphysicalResult
from tansaku.calculators.relax import RelaxResult, RelaxSettings, clear_checkpoint, default_magmoms, relax

DEFAULT_MAXSTEP = 0.2  # Å, ASE's default for FIRE/BFGS
ERROR_CHARS = 300  # of a failure's message kept in the history


def _scf_corrections(params: Mapping[str, Any], count: int) -> dict[str, Any] | None:
    if count == 0:
        return {"mixing_beta": params["mixing_beta"] * 0.5, "max_scf": int(params["max_scf"]) * 2}
    if count == 1:
        return {"extra_bands": round(params["extra_bands"] + 0.3, 6), "smearing": params["smearing"] * 2}
    if count == 2:
        return {"smearing_type": "gaussian", "mixing_beta": params["mixing_beta"] * 0.5}
    return None


@dataclass
class Attempts:
    """What the handlers did for one task: the corrected parameters and the history."""

    params: dict[str, Any]
    maxstep: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def history_json(self) -> str:
        return json.dumps(self.history, separators=(",", ":")) if self.history else ""


class HandledFailure(RuntimeError):
    """A task that still failed after the corrections (or had none); carries the history."""

    def __init__(self, message: str, attempts: Attempts):
        super().__init__(message)
        self.attempts = attempts


def correction(exc: BaseException, attempts: Attempts, directory: Path | None) -> dict[str, Any] | None:
    """The next correction for ``exc`` (applied to ``attempts``), or None when none is left/known."""
    kind = getattr(exc, "kind", None)
    count = attempts.counts.get(kind, 0) if kind else 0
    if isinstance(exc, SCFNotConverged):
        if "mixing_beta" not in attempts.params:
            return None
        changes = _scf_corrections(attempts.params, count)
        if changes is None:
            return None
        attempts.params.update(changes)
        return {"params": changes}
    if isinstance(exc, (CodeTimeout, CodeCrashed)):
        return {"continue_from_checkpoint": directory is not None}
    if isinstance(exc, UnphysicalResult):
        if count >= 2:
            return None
        attempts.maxstep = (attempts.maxstep or DEFAULT_MAXSTEP) * 0.5
        if directory is not None:
            clear_checkpoint(directory)
        return {"maxstep": attempts.maxstep, "restart_from_initial_structure": True}
    return None


def relax_with_handlers(atoms: Atoms, build: Callable[[Mapping[str, Any], RunContext], Any],
                        params: Mapping[str, Any], context: RunContext, settings: RelaxSettings,
                        uses_initial_magmoms: bool, relax_cell: bool, checkpoint: bool,
                        native_relax: Callable[..., RelaxResult] | None = None,
                        moments: bool = True) -> tuple[RelaxResult, Attempts]:
    """Relax ``atoms`` with the calculator ``build(params, context)`` makes, correcting failures.

    ``checkpoint``: relaxation progress goes to ``context.directory`` (file-based codes), so a rerun
    or a retry continues from the last step. ``native_relax``: the code relaxes by itself (QE vc-relax;
    no checkpoint: a retry starts again). ``moments``: see ``relax``. Raises HandledFailure when no
    correction is left.
    """
    attempts = Attempts(params=dict(params))
    directory = context.directory if checkpoint else None
    retries = context.runtime.max_retries
    while True:
        started = time.time()
        try:
            calc = build(attempts.params, context)
            if native_relax is not None:
                start = atoms.copy()
                if uses_initial_magmoms and not start.get_initial_magnetic_moments().any():
                    start.set_initial_magnetic_moments(default_magmoms(start))
                return native_relax(start, calc, settings, relax_cell), attempts
            result = relax(atoms, calc, settings, uses_initial_magmoms=uses_initial_magmoms,
                           relax_cell=relax_cell, directory=directory, timeout=context.runtime.timeout,
                           maxstep=attempts.maxstep, moments=moments)
            return result, attempts
        except Exception as exc:
            kind = exc.kind if isinstance(exc, CalculationFailure) else "error"
            entry: dict[str, Any] = {"attempt": len(attempts.history) + 1, "failure": kind,
                                     "error": f"{type(exc).__name__}: {exc}"[:ERROR_CHARS],
                                     "seconds": round(time.time() - started, 2)}
            if not attempts.history and not isinstance(exc, CalculationFailure):
                raise  # an unrecognised error on the first attempt: nothing to record beyond the error
            fix = correction(exc, attempts, directory) if len(attempts.history) < retries else None
            entry["correction"] = fix
            attempts.history.append(entry)
            if fix is None:
                if len(attempts.history) > retries:
                    reason = f"still failing after {retries} correction(s)"
                elif kind in ("scf_unconverged", "unphysical"):
                    reason = "no correction left"
                else:
                    reason = "not correctable"
                raise HandledFailure(f"{type(exc).__name__}: {exc} ({reason})", attempts) from exc
            attempts.counts[kind] = attempts.counts.get(kind, 0) + 1
