"""Permanent-magnet and supply-risk properties, vectorised over records.

Inputs are the ``(N, E)`` composition matrix over ``elements``
(:func:`tansaku.screening.elements.composition_matrix`), cell volumes (Å³) and total cell moments (μB).

Constants (SI): ``MU_B`` = 9.2740100783e-24 J/T (CODATA 2018), ``MU_0`` = 4π×10⁻⁷ T·m/A (the classical
exact value; CODATA 2018 differs by 5.5e-10 relative), ``AMU`` = 1.66053906660e-27 kg (CODATA 2018),
1 Å³ = 1e-30 m³.  Hence μ0Ms [T] = 11.654 × m[μB] / V[Å³] and (BH)max ≤ (μ0Ms)²/(4μ0) =
198.94 × (μ0Ms[T])² kJ/m³.  Masses: ``ase.data.atomic_masses`` (IUPAC 2016).

Data shipped with pymatgen (read once, no network):

* ``pymatgen/analysis/hhi_data.csv``: Herfindahl–Hirschman index of production and of reserves per
  element (Gaultois et al., Chem. Mater. 25, 2911 (2013), from USGS data).  As
  ``pymatgen.analysis.hhi.HHIModel.get_hhi`` the index of a compound is the **mass-fraction-weighted**
  mean of the elemental indices (scale 0–10000).  NaN if an element has no value (e.g. H, noble gases
  other than He, Tc).
* ``pymatgen/analysis/costdb_elements.csv``: element prices in USD/kg, mostly Wolfram Alpha and
  Wikipedia, September 2013 (Ba 2019; H, He, Ne, Ar, Kr, Tc 2020).  Compound cost = mass-fraction
  weighted mean (raw materials only, no processing), as ``pymatgen.analysis.cost.CostAnalyzer`` for
  a compound made from its elements.  NaN if an element has no price.  Some values are questionable
  (Fe 0.03 USD/kg, Ne 660 000 USD/kg): use for ranking, not for costing.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from math import pi
from pathlib import Path

import numpy as np

from tansaku.screening.elements import (
    MOMENT_TRANSITION_METALS,
    RARE_EARTHS,
    atomic_masses,
    element_mask,
)

MU_B = 9.2740100783e-24  # J/T, Bohr magneton (CODATA 2018)
MU_0 = 4e-7 * pi  # T·m/A, vacuum permeability
AMU = 1.66053906660e-27  # kg, atomic mass unit (CODATA 2018)
ANGSTROM3 = 1e-30  # m³
K_B_EV = 8.617333262e-5  # eV/K, Boltzmann constant (CODATA 2018, exact)
EV = 1.602176634e-19  # J (exact)


def mu0_ms_tesla(magmom_total_muB, volume_A3) -> np.ndarray:
    """Saturation polarisation μ0Ms [T] = μ0 m μB / V (= 11.654 m[μB] / V[Å³]); sign of m kept."""
    m = np.asarray(magmom_total_muB, dtype=float)
    v = np.asarray(volume_A3, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return MU_0 * m * MU_B / (v * ANGSTROM3)


def kappa(k1_MJ_m3, mu0_ms_T) -> np.ndarray:
    """Magnetic hardness κ = sqrt(K1 / (μ0 Ms²)) (dimensionless; a hard magnet has κ > 1).

    K1 in MJ/m³, μ0Ms in T, so μ0 Ms² = (μ0Ms)² / μ0 in J/m³ and κ = sqrt(K1·μ0) / μ0Ms.  Easy-plane or
    zero anisotropy (K1 <= 0) gives κ = 0 (no uniaxial hardness); NaN where K1 or μ0Ms is unknown or
    μ0Ms <= 0.  Coey, IEEE Trans. Magn. 47, 4671 (2011): Nd2Fe14B (K1 4.9 MJ/m³, 1.61 T) κ = 1.54.
    """
    k1 = np.asarray(k1_MJ_m3, dtype=float) * 1e6
    j = np.asarray(mu0_ms_T, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(j > 0, np.sqrt(np.clip(k1, 0.0, None) * MU_0) / j, np.nan)


def mu0_ha_tesla(k1_MJ_m3, mu0_ms_T) -> np.ndarray:
    """Anisotropy field μ0Ha = 2 K1 / Ms in T (K1 in MJ/m³, Ms = μ0Ms / μ0 in A/m), i.e. 2 μ0 K1 / μ0Ms.

    Negative for easy-plane K1; NaN where K1 or μ0Ms is unknown or μ0Ms <= 0.  Coey (2011): Nd2Fe14B 7.6 T.
    """
    k1 = np.asarray(k1_MJ_m3, dtype=float) * 1e6
    j = np.asarray(mu0_ms_T, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(j > 0, 2.0 * MU_0 * k1 / j, np.nan)


def k1_mj_m3(delta_e_eV, volume_A3) -> np.ndarray:
    """Uniaxial anisotropy constant K1 [MJ/m³] = ΔE / V from the energy difference ΔE = E(in-plane) −
    E(along c) of one cell (eV) and its volume (Å³): E(θ) = K1 V sin²θ to lowest order; K1 > 0 = easy axis c."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(delta_e_eV, dtype=float) * EV / (np.asarray(volume_A3, dtype=float) * ANGSTROM3) / 1e6


def tc_mean_field(delta_e_disordered_eV) -> np.ndarray:
    """Mean-field Curie temperature [K]: k_B Tc = (2/3) ΔE, ΔE = E(disordered) − E(FM) per magnetic atom (eV).

    Classical Heisenberg model E = −Σ_{i≠j} J_ij e_i·e_j (unit spins, pairs counted twice): FM has −J_0 per
    atom (J_0 = Σ_j J_0j), the disordered state 0, so ΔE = J_0 and the mean-field k_B Tc = (2/3) J_0
    (Liechtenstein et al., JMMM 67, 65 (1987); Pajda et al., PRB 64, 174402 (2001): 1414 K for bcc Fe
    against 1044 K measured).  Mean field ignores spin waves and short-range order: it **overestimates**
    Tc (bcc Fe by ~35 %, and more where moments shrink in the disordered state).
    NaN where ΔE is unknown; ΔE <= 0 (FM not the ground state) gives 0.
    """
    d = np.asarray(delta_e_disordered_eV, dtype=float)
    return np.where(np.isfinite(d), np.clip(d, 0.0, None) * 2.0 / 3.0 / K_B_EV, np.nan)


def bh_max_bound_kj_m3(mu0_ms_T) -> np.ndarray:
    """Upper bound of the energy product, (μ0Ms)² / (4 μ0), in kJ/m³ (= 198.94 × μ0Ms[T]²)."""
    j = np.asarray(mu0_ms_T, dtype=float)
    return j**2 / (4 * MU_0) / 1e3


@lru_cache(1)
def _pymatgen_analysis_dir() -> Path:
    from pymatgen.analysis import hhi

    return Path(hhi.__file__).parent


@lru_cache(1)
def hhi_table() -> dict[str, tuple[float, float]]:
    """symbol -> (HHI production, HHI reserve) from pymatgen's ``analysis/hhi_data.csv``."""
    table: dict[str, tuple[float, float]] = {}
    with open(_pymatgen_analysis_dir() / "hhi_data.csv", encoding="utf-8") as fh:
        for line in fh:
            if line.strip() and not line.startswith("#"):
                symbol, production, reserve = line.strip().split(",")
                table[symbol] = float(production), float(reserve)
    return table


@lru_cache(1)
def price_table() -> dict[str, float]:
    """symbol -> price in USD/kg from pymatgen's ``analysis/costdb_elements.csv`` (2013, some 2019–20)."""
    table: dict[str, float] = {}
    with open(_pymatgen_analysis_dir() / "costdb_elements.csv", encoding="utf-8") as fh:
        for row in csv.reader(fh, quotechar="|"):
            if row and row[0].strip():
                table[row[0].strip()] = float(row[1])
    return table


def _weighted(weights: np.ndarray, counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``weights @ values`` per row, NaN for rows containing an element whose value is NaN."""
    known = np.isfinite(values)
    out = weights @ np.where(known, values, 0.0)
    if not known.all():
        out[(counts[:, ~known] > 0).any(axis=1)] = np.nan
    return out


def magnet_properties(elements: list[str], counts: np.ndarray, volume: np.ndarray,
                      magmom_total: np.ndarray, signed: np.ndarray | bool = True,
                      magmom_abs_sum: np.ndarray | None = None,
                      k1: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Magnet and supply properties of every row (float arrays of length N).

    ``signed`` (bool per row, or one bool for all) says whether the row's moments are signed (collinear
    DFT) or unsigned magnitudes (CHGNet: the calculator's ``moments`` in the registry).
    ``magmom_abs_sum`` is Σ|m_i| over the sites of each row (μB; default |m|); ``k1`` the uniaxial
    anisotropy constant in MJ/m³ (default: unknown, NaN).

    Keys and units:

    * ``mu0_ms`` (T): μ0Ms = 11.654 |m| / V, with ``|m|`` the magnitude of the total cell moment
      (a spin-flipped solution is the same magnet).  Only for signed moments: NaN for magnitudes, whose
      sum is no magnetisation (a ferrimagnet's sublattices do not add).
    * ``mu0_ms_upper`` (T): upper bound 11.654 max(|m|, Σ|m_i|) / V, for signed and unsigned moments alike
      (the value a ferrimagnet would have if all its moments were parallel).
    * ``bh_max`` (kJ/m³): upper bound (μ0Ms)² / (4μ0) of the energy product, from ``mu0_ms``;
      ``bh_max_upper`` the same from ``mu0_ms_upper``.
    * ``kappa``: hardness sqrt(K1 / (μ0 Ms²)) (:func:`kappa`); ``mu0_ha`` (T): anisotropy field 2K1/Ms
      (:func:`mu0_ha_tesla`); both from ``mu0_ms``, NaN without K1.
    * ``moment_per_fu`` (μB per reduced formula unit): |m| / gcd(counts), e.g. Sm2Fe24 -> per SmFe12.
      For unsigned moments |m| is the stored total, the sum of magnitudes (so is ``moment_per_tm``).
    * ``moment_per_tm`` (μB per transition-metal atom): |m| / number of d-block atoms other than Sc
      and Y (:data:`~tansaku.screening.elements.MOMENT_TRANSITION_METALS`); the *whole* cell moment
      (rare-earth and interstitial contributions included) per T atom.  NaN without such atoms.
    * ``re_atomic_fraction``, ``re_mass_fraction``: share of Sc, Y, La..Lu by atoms and by mass.
    * ``hhi_production``, ``hhi_reserve``: mass-weighted Herfindahl–Hirschman indices (0–10000).
    * ``cost_per_kg`` (USD/kg): mass-weighted element prices.
    * ``density`` (g/cm³).

    NaN moments (calculators without moments, failed tasks) give NaN in the four moment columns;
    a non-positive volume gives NaN where the value needs it; rows without atoms are NaN throughout.
    """
    counts = np.asarray(counts, dtype=float)
    n_rows = counts.shape[0]
    if counts.ndim != 2 or counts.shape[1] != len(elements):
        raise ValueError(f"counts has shape {counts.shape}, expected (N, {len(elements)})")
    volume = np.asarray(volume, dtype=float).reshape(-1)
    moment = np.abs(np.asarray(magmom_total, dtype=float).reshape(-1))
    signed = np.broadcast_to(np.asarray(signed, dtype=bool), (n_rows,))
    abs_sum = moment if magmom_abs_sum is None else np.asarray(magmom_abs_sum, dtype=float).reshape(-1)
    k1 = np.full(n_rows, np.nan) if k1 is None else np.asarray(k1, dtype=float).reshape(-1)
    for name, column in (("volume", volume), ("magmom_total", moment), ("magmom_abs_sum", abs_sum), ("k1", k1)):
        if column.size != n_rows:
            raise ValueError(f"{name} has {column.size} values, expected {n_rows}")
    volume = np.where(volume > 0, volume, np.nan)

    masses = atomic_masses(elements)
    natoms = counts.sum(axis=1)
    row_mass = counts @ masses  # amu per cell
    with np.errstate(divide="ignore", invalid="ignore"):
        mass_fraction = counts * masses / row_mass[:, None]  # (N, E), NaN rows for empty cells
        atom_fraction = counts / natoms[:, None]
        formula_units = np.gcd.reduce(counts.astype(np.int64), axis=1).astype(float)
        n_tm = counts @ element_mask(elements, MOMENT_TRANSITION_METALS)
        re = element_mask(elements, RARE_EARTHS)
        mu0_ms = np.where(signed, mu0_ms_tesla(moment, volume), np.nan)
        mu0_ms_upper = mu0_ms_tesla(np.where(np.isnan(moment), np.nan, np.fmax(moment, np.abs(abs_sum))), volume)
        hhi = hhi_table()
        hhi_p = np.array([hhi.get(s, (np.nan, np.nan))[0] for s in elements])
        hhi_r = np.array([hhi.get(s, (np.nan, np.nan))[1] for s in elements])
        prices = np.array([price_table().get(s, np.nan) for s in elements])
        columns = {
            "mu0_ms": mu0_ms,
            "mu0_ms_upper": mu0_ms_upper,
            "bh_max": bh_max_bound_kj_m3(mu0_ms),
            "bh_max_upper": bh_max_bound_kj_m3(mu0_ms_upper),
            "kappa": kappa(k1, mu0_ms),
            "mu0_ha": mu0_ha_tesla(k1, mu0_ms),
            "moment_per_fu": np.where(formula_units > 0, moment / formula_units, np.nan),
            "moment_per_tm": np.where(n_tm > 0, moment / n_tm, np.nan),
            "re_atomic_fraction": atom_fraction[:, re].sum(axis=1),
            "re_mass_fraction": mass_fraction[:, re].sum(axis=1),
            "hhi_production": _weighted(mass_fraction, counts, hhi_p),
            "hhi_reserve": _weighted(mass_fraction, counts, hhi_r),
            "cost_per_kg": _weighted(mass_fraction, counts, prices),
            "density": row_mass * AMU * 1e3 / (volume * 1e-24),  # g / cm³ (1 Å³ = 1e-24 cm³)
        }
    empty = natoms == 0
    for values in columns.values():
        values[empty] = np.nan
    return columns
