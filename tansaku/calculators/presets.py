"""DFT presets, defined here and nowhere else: named sets of identity parameters per code.

A campaign picks one with ``params = { preset = "screening" }`` (the default) and may override single
keys; the resolved parameters (preset name and every value) enter the task id and are stored with each
record (column ``params``), so a campaign's results are consistent and say how they were made.

Parameters shared by every DFT code (units as in the rest of tansaku):

=============  ======  =====================================================================
``xc``                 exchange-correlation functional (``PBE``)
``ecut``       eV      plane-wave cutoff of the wavefunctions
``kspacing``   1/Å     largest spacing between k-points, as VASP's KSPACING: a Γ-centred grid of
                       N_i = max(1, ceil(2π |b_i| / kspacing)) points, b_i the reciprocal vectors (no 2π)
``smearing``   eV      smearing width
``smearing_type``      ``marzari-vanderbilt`` | ``fermi-dirac`` | ``gaussian`` | ``methfessel-paxton``
``spin``               spin-polarised, starting from the structure's initial moments (tansaku's
                       START_MOMENTS when it has none: Fe 2.8, Co 2.0, Ni 0.8, Sm 5 μB, ...)
``mixing_beta``        density mixing fraction
``max_scf``            SCF iteration limit (a calculation that reaches it has not converged)
``extra_bands``        fraction of bands added to the code's default (0.2 = 20 % more)
``scf_tol``    eV      SCF energy convergence
=============  ======  =====================================================================

GPAW also takes ``setups`` (default ``"paw"``) and ``scf_density`` (its density criterion, electrons per
valence electron, default GPAW's own 1e-4).

The ``screening`` presets follow common high-throughput practice: 400 eV (GPAW, plane waves), 40 Ry
(QE with the SSSP-like pslibrary pseudopotentials Debian ships), 520 eV (VASP, as the Materials Project)
and k-spacings of 0.2-0.25 1/Å with 0.1 eV Marzari-Vanderbilt smearing for metals. ``fast`` is for
tests and examples on a laptop (energies a few 10 meV/atom off, moments within ~0.1 μB);
``accurate`` for final numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

Preset = dict[str, Any]

COMMON: Preset = {"xc": "PBE", "smearing_type": "marzari-vanderbilt", "smearing": 0.1, "spin": True,
                  "mixing_beta": 0.3, "max_scf": 100, "extra_bands": 0.0}

PRESETS: dict[str, dict[str, Preset]] = {
    "gpaw": {
        "fast": {**COMMON, "ecut": 300.0, "kspacing": 0.4, "scf_tol": 1e-4},
        "screening": {**COMMON, "ecut": 400.0, "kspacing": 0.25, "scf_tol": 5e-5},
        "accurate": {**COMMON, "ecut": 600.0, "kspacing": 0.15, "smearing": 0.05, "scf_tol": 1e-6},
    },
    "espresso": {
        "fast": {**COMMON, "ecut": 408.0, "kspacing": 0.4, "scf_tol": 1e-4},  # 30 Ry
        "screening": {**COMMON, "ecut": 544.0, "kspacing": 0.25, "scf_tol": 1e-5},  # 40 Ry
        "accurate": {**COMMON, "ecut": 816.0, "kspacing": 0.15, "smearing": 0.05, "scf_tol": 1e-7},  # 60 Ry
    },
    "vasp": {
        "fast": {**COMMON, "ecut": 400.0, "kspacing": 0.4, "scf_tol": 1e-4},
        "screening": {**COMMON, "ecut": 520.0, "kspacing": 0.22, "scf_tol": 1e-5},
        "accurate": {**COMMON, "ecut": 600.0, "kspacing": 0.15, "smearing": 0.05, "scf_tol": 1e-6},
    },
}


def preset_defaults(code: str, preset: str = "screening") -> Preset:
    """Every accepted shared parameter of ``code`` with its value in ``preset`` (plus the preset's name)."""
    return {"preset": preset, **PRESETS[code][preset]}


# (lowest, highest, lowest allowed itself) of the numeric parameters; an integer where the bound is one
_RANGES: dict[str, tuple[float, float, bool]] = {
    "ecut": (0.0, math.inf, False), "kspacing": (0.0, math.inf, False), "smearing": (0.0, math.inf, True),
    "mixing_beta": (0.0, 1.0, False), "max_scf": (1, math.inf, True), "extra_bands": (0.0, math.inf, True),
    "scf_tol": (0.0, math.inf, False), "scf_density": (0.0, math.inf, False),
}


def check_dft_params(params: Mapping[str, Any]) -> None:
    """Refuse a numeric DFT parameter that is not a finite number in its range (a negative cutoff, a NaN
    tolerance, mixing above 1), naming the parameter and its value, before any task is planned."""
    from tansaku.calculators.registry import CalculatorConfigError

    for key, (low, high, low_ok) in _RANGES.items():
        if key not in params:
            continue
        value = params[key]
        integer = isinstance(low, int)
        if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) \
                or not math.isfinite(value) or value < low or (value == low and not low_ok) or value > high:
            bound = f">= {low}" if low_ok else f"> {low}"
            limit = f" and <= {high:g}" if math.isfinite(high) else ""
            kind = "an integer" if integer else "a number"
            raise CalculatorConfigError(f"{key} must be {kind} {bound}{limit}, got {value!r}")
