"""Neighbour pairs of a periodic or finite structure, each pair once, with a numba cell list.

Shared by the numba EMT (:mod:`tansaku.calculators.emt_fast`) and the dedup fingerprints
(:mod:`tansaku.screening.fingerprint`). Lengths in Å.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _neighbour_bin(c, n_bins, periodic):
    """(bin index, image shift) of bin ``c`` along one direction; bin -1 when outside a free direction."""
    if periodic:
        shift = c // n_bins
        return c - shift * n_bins, shift
    if c < 0 or c >= n_bins:
        return -1, 0
    return c, 0


@njit(cache=True)
def half_neighbor_list(frac: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float,
                       pi: np.ndarray, pj: np.ndarray, pd: np.ndarray) -> int:
    """Every pair closer than ``cutoff`` once: (i, j, d) with d = r_j + shift·cell - r_i, |d| < cutoff.

    Pairs are written into the caller's buffers ``pi``, ``pj`` (int64) and ``pd`` (m, 3); returns the
    number of pairs, or -1 when the buffers are too small (call again with larger ones).

    ``frac`` are fractional coordinates (wrapped into [0, 1) along periodic directions), ``cell`` a
    full-rank (3, 3) matrix (ASE's ``cell.complete()``), ``pbc`` three booleans. Bins are fractional
    slabs at least cutoff/2 thick; a periodic direction thinner than that gets one bin scanned
    over as many images as the cutoff reaches. A pair of an atom with its own image is kept once.
    """
    n = frac.shape[0]
    inv_heights = np.empty(3)
    for k in range(3):  # 1 / height of the cell across direction k = |row k of inverse(cell).T|
        a, b = cell[(k + 1) % 3], cell[(k + 2) % 3]
        cx = a[1] * b[2] - a[2] * b[1]
        cy = a[2] * b[0] - a[0] * b[2]
        cz = a[0] * b[1] - a[1] * b[0]
        vol = abs(cx * cell[k, 0] + cy * cell[k, 1] + cz * cell[k, 2])
        inv_heights[k] = math.sqrt(cx * cx + cy * cy + cz * cz) / vol
    lo = np.zeros(3)
    span = np.ones(3)
    for k in range(3):
        if not pbc[k]:  # free direction: bins cover the atoms' extent
            lo[k] = frac[:, k].min() if n else 0.0
            span[k] = max(frac[:, k].max() - lo[k], 1e-12) if n else 1.0
    nb = np.empty(3, np.int64)
    reach = np.empty(3, np.int64)
    for k in range(3):
        length = span[k] / inv_heights[k]  # Å across the binned range
        nb[k] = max(1, min(int(2.0 * length / cutoff), 4 * max(n, 1)))
        reach[k] = math.ceil(cutoff * inv_heights[k] * nb[k] / span[k] - 1e-12)
        if not pbc[k]:
            reach[k] = min(reach[k], nb[k] - 1)
    n_bins = nb[0] * nb[1] * nb[2]
    bin_of = np.empty(n, np.int64)
    for i in range(n):
        flat = 0
        for k in range(3):
            b = int((frac[i, k] - lo[k]) / span[k] * nb[k])
            b = min(max(b, 0), nb[k] - 1)
            flat = flat * nb[k] + b
        bin_of[i] = flat
    start = np.zeros(n_bins + 1, np.int64)
    for i in range(n):
        start[bin_of[i] + 1] += 1
    for b in range(n_bins):
        start[b + 1] += start[b]
    order = np.empty(n, np.int64)
    fill = start[:-1].copy()
    for i in range(n):
        order[fill[bin_of[i]]] = i
        fill[bin_of[i]] += 1
    pos = frac @ cell
    sx_ = np.empty(n)  # positions in bin order, so that a bin's atoms are contiguous
    sy_ = np.empty(n)
    sz_ = np.empty(n)
    for slot in range(n):
        sx_[slot] = pos[order[slot], 0]
        sy_[slot] = pos[order[slot], 1]
        sz_[slot] = pos[order[slot], 2]
    cut2 = cutoff * cutoff
    capacity = pi.shape[0]
    count = 0
    # Half stencil: pair (i, j) seen from i's bin at offset o is seen from j's bin at -o, so only
    # lexicographically positive offsets are visited, plus j after i inside the same bin and image.
    for b0 in range(nb[0]):
        for b1 in range(nb[1]):
            for b2 in range(nb[2]):
                home = (b0 * nb[1] + b1) * nb[2] + b2
                for o0 in range(reach[0] + 1):
                    c0, s0 = _neighbour_bin(b0 + o0, nb[0], pbc[0])
                    if c0 < 0:
                        continue
                    for o1 in range(-reach[1] if o0 > 0 else 0, reach[1] + 1):
                        c1, s1 = _neighbour_bin(b1 + o1, nb[1], pbc[1])
                        if c1 < 0:
                            continue
                        for o2 in range(-reach[2] if (o0 > 0 or o1 > 0) else 0, reach[2] + 1):
                            c2, s2 = _neighbour_bin(b2 + o2, nb[2], pbc[2])
                            if c2 < 0:
                                continue
                            same = o0 == 0 and o1 == 0 and o2 == 0
                            tx = s0 * cell[0, 0] + s1 * cell[1, 0] + s2 * cell[2, 0]
                            ty = s0 * cell[0, 1] + s1 * cell[1, 1] + s2 * cell[2, 1]
                            tz = s0 * cell[0, 2] + s1 * cell[1, 2] + s2 * cell[2, 2]
                            flat = (c0 * nb[1] + c1) * nb[2] + c2
                            for si in range(start[home], start[home + 1]):
                                i = order[si]
                                ox = tx - sx_[si]
                                oy = ty - sy_[si]
                                oz = tz - sz_[si]
                                for sj in range(si + 1 if same else start[flat], start[flat + 1]):
                                    dx = sx_[sj] + ox
                                    dy = sy_[sj] + oy
                                    dz = sz_[sj] + oz
                                    if dx * dx + dy * dy + dz * dz < cut2:
                                        if count == capacity:
                                            return -1
                                        pi[count] = i
                                        pj[count] = order[sj]
                                        pd[count, 0] = dx
                                        pd[count, 1] = dy
                                        pd[count, 2] = dz
                                        count += 1
    return count


def fractional(atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractional coordinates in the completed cell, wrapped along periodic directions."""
    cell = np.asarray(atoms.cell.complete(), dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=np.bool_)
    frac = np.linalg.solve(cell.T, np.asarray(atoms.positions, dtype=np.float64).T).T
    frac[:, pbc] -= np.floor(frac[:, pbc])
    frac[:, pbc] = np.where(frac[:, pbc] >= 1.0, 0.0, frac[:, pbc])  # -1e-17 wraps to 1.0
    return np.ascontiguousarray(frac), cell, pbc


class PairBuffers:
    """Reusable output arrays of :func:`half_neighbor_list` (a relaxation reuses them every step)."""

    def __init__(self, capacity: int = 0) -> None:
        self.resize(capacity)

    def resize(self, capacity: int) -> None:
        self.pi = np.empty(capacity, np.int64)
        self.pj = np.empty(capacity, np.int64)
        self.pd = np.empty((capacity, 3))


def neighbor_pairs(atoms, cutoff: float, buffers: PairBuffers | None = None):
    """(i, j, d): each pair of ``atoms`` closer than ``cutoff`` [Å] once, d = r_j - r_i (with the image shift)."""
    frac, cell, pbc = fractional(atoms)
    buffers = buffers or PairBuffers()
    if buffers.pi.shape[0] < 16 * len(atoms):
        buffers.resize(48 * len(atoms) + 64)  # ~ dense fcc metal at the EMT cutoff, half list
    while (count := half_neighbor_list(frac, cell, pbc, cutoff, buffers.pi, buffers.pj, buffers.pd)) < 0:
        buffers.resize(2 * buffers.pi.shape[0])
    return buffers.pi[:count], buffers.pj[:count], buffers.pd[:count]


