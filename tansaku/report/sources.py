"""Where each property comes from (calculator, stage) and what that source cannot say.

Every stored property of a record (energy, structure, moments, and what is derived from them: hull
distance, μ0Ms, κ ...) comes from the record's calculator at the record's funnel stage.  The meaning of
its moments and its caveat come from the calculator registry by *name*
(:func:`tansaku.calculators.registry.moment_semantics`), so this works where the calculator is not
installed.  Used by the HTML report and ``tansaku show``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from tansaku.calculators.registry import (
    MOMENTS_MAGNITUDE,
    MOMENTS_SIGNED,
    moment_semantics,
)

MOMENT_TEXT = {
    MOMENTS_SIGNED: "signed moments: μ0Ms and magnetic order",
    MOMENTS_MAGNITUDE: "unsigned moment magnitudes: μ0Ms upper bound only (mu0_ms_upper)",
}


@dataclass(frozen=True)
class Source:
    calculator: str
    stage: str
    moments: str  # registry MOMENT_KINDS
    caveat: str  # "" when there is nothing to say

    def text(self) -> str:
        """``chgnet, stage relax: energies and structures; unsigned moment magnitudes: ...``"""
        where = f"{self.calculator}, stage {self.stage}" if self.stage else self.calculator
        what = "energies and structures" + (f"; {MOMENT_TEXT[self.moments]}" if self.moments in MOMENT_TEXT
                                            else "; no magnetic moments")
        return f"{where}: {what}"


def source_of(calculator: str, stage: str = "") -> Source:
    moments, caveat = moment_semantics(calculator)
    return Source(calculator, stage, moments, caveat)


def sources(calculators, stages) -> list[Source]:
    """The distinct (calculator, stage) sources of some rows, sorted."""
    return [source_of(c, s) for c, s in sorted({(str(c), str(s)) for c, s in zip(calculators, stages) if str(c)})]


K1_4F_CAVEAT = ("4f single-ion anisotropy (Sm, Nd, Tb, Dy, ...) needs a crystal-field treatment that DFT with "
                "4f in the core or as GGA bands does not give: this K1 is the transition-metal part only")
F_SHELL_ELEMENTS = frozenset({"Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb"})


def property_caveats() -> dict[str, str]:
    """What a derived magnet property is and cannot say, by column (report, ``tansaku show``)."""
    return {
        "k1": "K1: DFT (GPAW) with non-self-consistent spin-orbit, E(in-plane) - E(along c) per volume; "
              "k1_kpoint_delta is its change between two k-meshes (docs/magnetism.md)",
        "tc_mean_field": "tc_mean_field: mean-field estimate (2/3)dE/k_B from collinear configurations; "
                         "it overestimates Tc (bcc Fe: 1352 K against 1043 K measured)",
    }


def has_4f_elements(table) -> np.ndarray:
    """Rows whose formula has an open-4f rare earth (their K1 lacks the 4f single-ion part)."""
    formulas = table["formula"] if "formula" in table.columns else [""] * len(table)
    return np.array([bool(F_SHELL_ELEMENTS & set(re.findall(r"[A-Z][a-z]?", str(f)))) for f in formulas], bool)


def record_caveats(fields: dict, derived: dict) -> list[str]:
    """Caveat lines for one record's magnet properties (``tansaku show``)."""
    lines = []
    k1 = derived.get("k1", fields.get("k1_fine"))
    if isinstance(k1, float) and math.isfinite(k1):
        lines.append(property_caveats()["k1"])
        if F_SHELL_ELEMENTS & set(re.findall(r"[A-Z][a-z]?", str(fields.get("formula", "")))):
            lines.append(K1_4F_CAVEAT)
    tc = derived.get("tc_mean_field")
    if isinstance(tc, float) and math.isfinite(tc):
        lines.append(property_caveats()["tc_mean_field"])
    return lines
