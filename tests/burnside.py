"""Orbit counts by Burnside's lemma, the independent reference of the enumeration tests (not a test module)."""

from collections import Counter


def cycle_lengths(perm):
    seen, cycles = set(), []
    for start in range(len(perm)):
        if start in seen:
            continue
        length, i = 0, start
        while i not in seen:
            seen.add(i)
            i = perm[i]
            length += 1
        cycles.append(length)
    return cycles


def colourings_fixed(perm, counts):
    """Colourings with exactly counts[c] sites of colour c (rest uncoloured) that perm leaves unchanged."""
    ways = Counter({tuple(0 for _ in counts): 1})
    for c in cycle_lengths(perm):  # each cycle takes one colour, or none
        nxt = Counter()
        for used, w in ways.items():
            nxt[used] += w
            for k in range(len(counts)):
                bumped = list(used)
                bumped[k] += c
                if bumped[k] <= counts[k]:
                    nxt[tuple(bumped)] += w
        ways = nxt
    return ways[tuple(counts)]


def burnside(perms, counts):
    """Number of orbits of placements with ``counts`` atoms of each species under the group ``perms``."""
    return sum(colourings_fixed(p, counts) for p in perms) // len(perms)
