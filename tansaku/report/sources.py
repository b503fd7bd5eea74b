"""Where each property comes from (calculator, stage) and what that source cannot say.

Every stored property of a record (energy, structure, moments, and what is derived from them: hull
distance, μ0Ms, κ ...) comes from the record's calculator at the record's funnel stage.  The meaning of
its moments and its caveat come from the calculator registry by *name*
(:func:`tansaku.calculators.registry.moment_semantics`), so this works where the calculator is not
installed.  Used by the HTML report and ``tansaku show``.
"""

from __future__ import annotations

from dataclasses import dataclass

from tansaku.calculators.registry import MOMENTS_MAGNITUDE, MOMENTS_SIGNED, moment_semantics

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
