"""Reading the report table: one column as float, str or bool, whatever is missing or absent.

The report table has one row per stored record plus the derived columns of the ranking (see
:mod:`tansaku.report.html`); any column may be absent or empty, so every figure and the page read
columns through these functions instead of indexing the DataFrame directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tansaku.constants import KIND_CANDIDATE, STATUS_OK


def num(table: pd.DataFrame, column: str) -> np.ndarray:
    """A column as float (NaN where missing or not a number; all NaN if the column is absent)."""
    if column not in table.columns:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def text(table: pd.DataFrame, column: str, default: str = "") -> np.ndarray:
    """A column as str (``default`` where missing)."""
    if column not in table.columns:
        return np.full(len(table), default, dtype=object)
    return np.array([default if is_missing(v) else str(v) for v in table[column]], dtype=object)


def flag(table: pd.DataFrame, column: str, default: bool = False) -> np.ndarray:
    """A column as bool (``default`` where missing; NaN/None count as False)."""
    if column not in table.columns:
        return np.full(len(table), default, dtype=bool)
    return np.array([False if is_missing(v) else bool(v) for v in table[column]], dtype=bool)


def is_missing(value) -> bool:
    """None, NaN or pd.NA (a cell with no value)."""
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):  # array-like cell
        return False


def ok_mask(table: pd.DataFrame) -> np.ndarray:
    """Rows of successful records (every row if there is no status column)."""
    if "status" not in table.columns:
        return np.ones(len(table), dtype=bool)
    return text(table, "status") == STATUS_OK


def kinds(table: pd.DataFrame) -> np.ndarray:
    """The record kind of each row (a table without the column holds candidates)."""
    return text(table, "kind", default=KIND_CANDIDATE)


# ------------------------------------------------------------------------------------- how columns show

@dataclass(frozen=True)
class Column:
    """How a column is shown: header, unit, a formatter of one finite value (None: a text column), the
    header with HTML markup (already escaped) and a figure axis label (matplotlib mathtext)."""

    header: str
    unit: str = ""
    fmt: Callable[[float], str] | None = None
    html_header: str = ""  # defaults to the escaped header
    axis: str = ""  # defaults to the header


def _fixed(digits: int, scale: float = 1.0) -> Callable[[float], str]:
    return lambda v: f"{v * scale:,.{digits}f}"


def _money(v: float) -> str:
    """Prices from cents to thousands of USD: three significant figures, at most two decimals."""
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


COLUMNS: dict[str, Column] = {
    "rank": Column("Rank", fmt=lambda v: f"{int(v)}"),
    "label": Column("Label"),
    "formula": Column("Formula"),
    "prototype": Column("Prototype"),
    "e_above_hull": Column("E_hull", "eV/atom", _fixed(3), "E<sub>hull</sub>",
                           r"energy above the hull $E_\mathrm{hull}$"),
    "formation_energy": Column("E_f", "eV/atom", _fixed(3), "E<sub>f</sub>", r"formation energy $E_\mathrm{f}$"),
    "mu0_ms": Column("μ0Ms", "T", _fixed(2), "μ<sub>0</sub>M<sub>s</sub>",
                     r"saturation magnetisation $\mu_0M_\mathrm{s}$"),
    "mu0_ms_upper": Column("μ0Ms upper bound", "T", _fixed(2), "μ<sub>0</sub>M<sub>s</sub> upper bound",
                           r"upper bound of $\mu_0M_\mathrm{s}$ (unsigned moments)"),
    "magnetic_order": Column("Order"),
    "configuration": Column("Configuration"),
    "k1": Column("K1", "MJ/m³", _fixed(2), "K<sub>1</sub>", r"anisotropy $K_1$"),
    "k1_kpoint_delta": Column("ΔK1 (k-mesh)", "MJ/m³", _fixed(2), "ΔK<sub>1</sub> (k-mesh)",
                              r"$K_1$ change between k-meshes"),
    "k1_mev_fu": Column("K1", "meV/f.u.", _fixed(2), "K<sub>1</sub>", r"anisotropy $K_1$ per formula unit"),
    "tc_mean_field": Column("Tc (mean field)", "K", _fixed(0), "T<sub>C</sub> (mean field)",
                            r"mean-field $T_\mathrm{C}$ estimate"),
    "delta_e_afm": Column("ΔE (next magnetic state)", "eV/magnetic atom", _fixed(3)),
    "kappa": Column("κ", "", _fixed(2), "κ", r"hardness $\kappa$"),
    "mu0_ha": Column("μ0Ha", "T", _fixed(1), "μ<sub>0</sub>H<sub>a</sub>", r"anisotropy field $\mu_0H_\mathrm{a}$"),
    "bh_max": Column("(BH)max", "kJ/m³", _fixed(0), "(BH)<sub>max</sub>", r"$(BH)_\mathrm{max}$ upper bound"),
    "moment_per_fu": Column("Moment", "μB/f.u.", _fixed(2), "Moment", "moment per formula unit"),
    "moment_per_tm": Column("Moment per TM", "μB", _fixed(2), "", "moment per transition-metal atom"),
    "re_atomic_fraction": Column("RE atomic fraction", "at%", _fixed(1, 100.0), "", "rare-earth atomic fraction"),
    "re_mass_fraction": Column("RE mass fraction", "wt%", _fixed(1, 100.0), "", "rare-earth mass fraction"),
    "hhi_production": Column("HHI production", "", _fixed(0)),
    "hhi_reserve": Column("HHI reserve", "", _fixed(0)),
    "cost_per_kg": Column("Raw-material cost", "USD/kg", _money),
    "density": Column("Density", "g/cm³", _fixed(2), "", "density"),
    "score": Column("Score", "", _fixed(3)),
    "decomposition": Column("Decomposition"),
}


def column_info(column: str) -> Column:
    """How ``column`` is shown; an unknown column is a number with three decimals under its own name."""
    return COLUMNS.get(column, Column(column, fmt=_fixed(3)))


def header(column: str) -> str:
    return column_info(column).header


def axis_label(column: str) -> str:
    """``energy above the hull $E_\\mathrm{hull}$ (eV/atom)``; percentages for the fractions shown in %."""
    info = column_info(column)
    unit = info.unit
    return f"{info.axis or info.header}" + (f" ({unit})" if unit else "")


def axis_values(column: str, values: np.ndarray) -> np.ndarray:
    """Values in the unit of :func:`axis_label` (fractions shown in % are scaled by 100)."""
    return values * 100.0 if column_info(column).unit in ("at%", "wt%") else values


def objectives_text(objectives) -> str:
    """``minimise E_hull, maximise μ0Ms`` for (column, "min" | "max") pairs."""
    return ", ".join(f"{'minimise' if d == 'min' else 'maximise'} {header(c)}" for c, d in objectives)
