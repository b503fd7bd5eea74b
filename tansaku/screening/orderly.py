"""Orbit-canonical (orderly) generation of site orderings under a permutation group, in numba.

A placement puts, block by block, ``k_b`` atoms of species ``z_b`` on free sites of the block's
slot (blocks of one slot share its sites). Its *key* is the concatenation, block after block, of the
block's 0/1 occupation over the slot's sites (ascending): ``itertools.combinations`` visits
placements by decreasing key. The representative of an orbit is its member with the largest key
(the first one ``itertools`` would meet), so the output equals "keep the first of each orbit" over
the full product of combinations, in the same order (Read 1978, "Every one a winner"; the classic
lexicographic-minimum pruning of orderly generation).

The search visits placements depth-first in that order and, after each site is chosen, compares
the already decided prefix of the key with its image under every group operation. When an image's
prefix is larger, no completion can be a representative, and the whole subtree is skipped. Time
therefore follows the number of distinct orderings times the group order, memory is the output plus
O(sites) - never the raw count of placements.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit


@njit(cache=True)
def _prefix_is_canonical(member, ginv, bstart, bend, b, p, complete, undecided):
    """False when some operation maps the decided key prefix onto a larger one.

    Blocks before ``b`` are complete; block ``b`` is decided up to position ``p`` (all of it when
    ``complete``). ``undecided[g]`` is True for operations whose image ties with the placement on
    the complete blocks (the caller keeps it per depth), so only block ``b`` is compared.
    """
    n_ops = ginv.shape[0]
    for g in range(n_ops):
        if not undecided[g]:
            continue
        last = bend[b] if complete else p + 1
        for a in range(bstart[b], last):  # earlier blocks are tied for an undecided operation
            src = ginv[g, a]
            if not complete and src > p:
                break  # the image's next value is not decided yet
            image = member[src] == b
            if image != (member[a] == b):
                if image:
                    return False
                break
    return True


@njit(cache=True)
def _settle(member, ginv, bstart, bend, b, undecided):
    """After block ``b`` completes: mark operations whose image is smaller on blocks 0..b as decided."""
    for g in range(ginv.shape[0]):
        if not undecided[g]:
            continue
        for a in range(bstart[b], bend[b]):  # blocks before b are tied (g is undecided)
            if (member[ginv[g, a]] == b) != (member[a] == b):
                undecided[g] = False  # the image is smaller here (a larger one was pruned)
                break


@njit(cache=True)
def _search(ginv, bstart, bend, bcount, out):
    """Fill ``out`` (rows: block index per active site, -1 = unchanged) with the representatives.

    Returns the number of representatives and the number of search nodes, or (-1, nodes) when
    ``out`` is too small.
    """
    n_act = ginv.shape[1]
    n_blocks = bstart.shape[0]
    n_choices = 0
    for b in range(n_blocks):
        n_choices += bcount[b]
    block_of = np.empty(n_choices, np.int64)
    first_of = np.empty(n_choices, np.int64)  # first choice index of the block
    m = 0
    for b in range(n_blocks):
        for _ in range(bcount[b]):
            block_of[m] = b
            first_of[m] = m - _
            m += 1
    member = np.full(n_act, -1, np.int64)
    chosen = np.full(n_choices, -1, np.int64)
    # undecided[d]: operations still tied after the blocks completed above depth d
    undecided = np.ones((n_choices + 1, ginv.shape[0]), np.bool_)
    count = 0
    nodes = 0
    if n_choices == 0:
        out[0, :] = -1
        return 1, 0
    m = 0
    while m >= 0:
        b = block_of[m]
        if chosen[m] >= 0:  # release the previous choice at this depth
            member[chosen[m]] = -1
            p = chosen[m] + 1
        elif m > first_of[m]:
            p = chosen[m - 1] + 1
        else:
            p = bstart[b]
        left = bcount[b] - (m - first_of[m])  # sites still to place in this block, this one included
        while p < bend[b] and member[p] >= 0:
            p += 1
        if p > bend[b] - left:
            chosen[m] = -1
            m -= 1
            continue
        chosen[m] = p
        member[p] = b
        nodes += 1
        complete = left == 1
        if not _prefix_is_canonical(member, ginv, bstart, bend, b, p, complete, undecided[m]):
            continue
        if m == n_choices - 1:
            if count == out.shape[0]:
                return -1, nodes
            out[count, :] = member
            count += 1
            continue
        undecided[m + 1, :] = undecided[m, :]
        if complete:
            _settle(member, ginv, bstart, bend, b, undecided[m + 1])
        m += 1
        chosen[m] = -1
    return count, nodes


def canonical_orderings(numbers: np.ndarray, blocks: Sequence[tuple[np.ndarray, int, int]],
                        permutations: np.ndarray, expected: int = 0) -> list[np.ndarray]:
    """One ordering per orbit: atomic numbers per site, in ``itertools`` first-member order.

    ``blocks`` are (slot sites ascending, atomic number, count) in key order; blocks of one slot
    pass the same sites and must be adjacent. ``permutations`` (n_ops, n_sites) map site i to
    perm[i] and must keep each slot's sites within the slot. Atomic numbers must tell the blocks
    apart (no species twice in a slot, none equal to the slot's own element): the caller checks.
    """
    members, act_sites, zs = orbit_representatives(blocks, permutations, expected)
    configs = np.tile(np.asarray(numbers), (len(members), 1))
    for b, z in enumerate(zs):
        rows, cols = np.nonzero(members == b)
        configs[rows, act_sites[cols]] = z
    return list(configs)  # rows are views of one array: no per-ordering allocation


def orbit_representatives(blocks: Sequence[tuple[np.ndarray, int, int]], permutations: np.ndarray,
                          expected: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows of block index per active site or -1, active site indices, atomic number per block)."""
    slot_of: dict[bytes, tuple[int, int]] = {}
    act_parts: list[np.ndarray] = []
    bstart, bend, bcount, zs = [], [], [], []
    offset = 0
    for sites, z, k in blocks:
        sites = np.asarray(sites, dtype=np.int64)
        key = sites.tobytes()
        if key not in slot_of:
            slot_of[key] = (offset, offset + len(sites))
            act_parts.append(sites)
            offset += len(sites)
        start, end = slot_of[key]
        bstart.append(start)
        bend.append(end)
        bcount.append(int(k))
        zs.append(int(z))
    act_sites = np.concatenate(act_parts) if act_parts else np.zeros(0, np.int64)
    perms = np.asarray(permutations, dtype=np.int64)
    position = np.full(perms.shape[1], -1, np.int64)
    position[act_sites] = np.arange(len(act_sites))
    inverse = np.argsort(perms, axis=1)  # image[i] = config[inverse[i]]
    ginv = np.ascontiguousarray(position[inverse[:, act_sites]])
    if (ginv < 0).any():
        raise ValueError("a symmetry operation moves a substituted site outside its set of sites")
    args = (ginv, np.array(bstart, np.int64), np.array(bend, np.int64), np.array(bcount, np.int64))
    capacity = max(2 * int(expected), 1024)
    while True:
        out = np.empty((capacity, len(act_sites)), np.int16)
        count, _ = _search(*args, out)
        if count >= 0:
            return out[:count], act_sites, np.array(zs, np.int64)
        capacity *= 4
