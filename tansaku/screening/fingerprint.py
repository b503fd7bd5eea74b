"""Structure fingerprints that decide which pairs StructureMatcher must compare (dedup at scale).

For each site i, each species B and each width η in :data:`ETAS`, the site sum is
G_i(B, η) = Σ_j∈B exp(-η (r_ij/ℓ)²)·f_c(r_ij/ℓ), with ℓ = (V/N)^(1/3) the length per atom and f_c a
cosine cutoff at :data:`CUTOFF` ℓ (a Behler-Parrinello G2-style radial descriptor, by species). The
fingerprint is the mean and the standard deviation of G_i over the sites of each species A:

- invariant under permutations of the atoms, translations, rotations, the structure's symmetry
  operations and supercells (a mean per site over a species does not change when cells repeat);
- invariant under isotropic scaling (distances in units of ℓ), as StructureMatcher with
  ``scale=True`` is;
- continuous under strain: structures a strain of relative size ε apart differ by O(ε) in every
  component, so near-duplicates are compared as long as ε stays below the tolerance.

Matching structures therefore have (nearly) equal fingerprints; distinct orderings of one lattice
usually differ because the species of neighbours differ.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tansaku.screening.neighbors import neighbor_pairs

ETAS = np.array([0.5, 1.0, 2.0, 4.0])  # widths of the Gaussians, in units of 1/ℓ²
CUTOFF = 2.5  # radius of the cosine cutoff, in units of ℓ = (V/N)^(1/3): ~ third-neighbour shell of fcc


@njit(cache=True)
def _radial_sums(species, n_species, pi, pj, pd, scale, cutoff, etas):
    """(n_sites, n_species, n_etas): Σ over neighbours j of each species of exp(-η x²) f_c(x), x = r/ℓ."""
    out = np.zeros((species.shape[0], n_species, etas.shape[0]))
    for p in range(pi.shape[0]):
        x = math.sqrt(pd[p, 0] ** 2 + pd[p, 1] ** 2 + pd[p, 2] ** 2) / scale
        if x >= cutoff:
            continue
        fc = 0.5 * (math.cos(math.pi * x / cutoff) + 1.0)
        i, j = pi[p], pj[p]
        for e in range(etas.shape[0]):
            g = math.exp(-etas[e] * x * x) * fc
            out[i, species[j], e] += g
            out[j, species[i], e] += g
    return out


def fingerprint(atoms) -> np.ndarray:
    """Flat vector: means then standard deviations, (A, B, η) each; species by atomic number; see the module doc.

    Structures without a 3-D cell use ℓ = 1 Å (no scale invariance: molecules are not scaled).
    """
    numbers = np.asarray(atoms.numbers)
    elements, species = np.unique(numbers, return_inverse=True)
    n = len(numbers)
    scale = (atoms.get_volume() / n) ** (1.0 / 3.0) if atoms.cell.rank == 3 and n else 1.0
    pi, pj, pd = neighbor_pairs(atoms, CUTOFF * scale)
    species = species.astype(np.int64)
    sums = _radial_sums(species, len(elements), pi, pj, pd, scale, CUTOFF, ETAS)
    return _mean_and_spread(species, len(elements), sums)


@njit(cache=True)
def _mean_and_spread(species, n_species, sums):
    """Mean and standard deviation of the site sums over the sites of each species, flattened."""
    n_eta = sums.shape[2]
    total = np.zeros((n_species, n_species, n_eta))
    square = np.zeros((n_species, n_species, n_eta))
    count = np.zeros(n_species)
    for i in range(species.shape[0]):
        a = species[i]
        count[a] += 1.0
        for b in range(n_species):
            for e in range(n_eta):
                total[a, b, e] += sums[i, b, e]
                square[a, b, e] += sums[i, b, e] ** 2
    out = np.empty(2 * n_species * n_species * n_eta)
    k = 0
    half = n_species * n_species * n_eta
    for a in range(n_species):
        for b in range(n_species):
            for e in range(n_eta):
                mean = total[a, b, e] / count[a]
                out[k] = mean
                out[half + k] = math.sqrt(max(square[a, b, e] / count[a] - mean * mean, 0.0))
                k += 1
    return out


def near_pairs(values: np.ndarray, group: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) in the same group whose fingerprints differ by at most ``tol`` in every component.

    ``values`` (n, d) fingerprints padded to one length, ``group`` (n,) an integer key that must be equal
    (composition). Sort by group, then by the component with the largest spread, and sweep: the cost is
    ~ n log n + the number of same-group pairs within ``tol`` of each other in that component.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    if len(values) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    best = int(np.argmax(values.max(axis=0) - values.min(axis=0)))
    order = np.lexsort((values[:, best], group)).astype(np.int64)
    return _sweep(values, np.asarray(group, np.int64), order, best, tol)


@njit(cache=True)
def _sweep(values, group, order, best, tol):
    n, d = values.shape
    out_i = []
    out_j = []
    for a in range(n):
        ia = order[a]
        for b in range(a + 1, n):
            ib = order[b]
            if group[ib] != group[ia] or values[ib, best] - values[ia, best] > tol:
                break
            close = True
            for k in range(d):
                if abs(values[ia, k] - values[ib, k]) > tol:
                    close = False
                    break
            if close:
                out_i.append(min(ia, ib))
                out_j.append(max(ia, ib))
    return np.array(out_i, np.int64), np.array(out_j, np.int64)
