"""Composition-matrix speed: screening.elements.composition_matrix (vectorised) vs a loop over records.

    python benchmarks/bench_composition.py [N_RECORDS]

Both run on the same ragged atomic numbers (26 atoms per record, Sm-Fe-Co-Ti-N) in one process and must
give the same matrix; the loop is timed on a tenth of the records and scaled (it is linear in them).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tansaku.screening.elements import composition_matrix  # noqa: E402


def loop_counts(numbers: np.ndarray, start: np.ndarray, natoms: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Reference: one np.bincount per record."""
    counts = np.zeros((len(start), len(z)), np.int64)
    for i, (a, k) in enumerate(zip(start, natoms)):
        counts[i] = np.bincount(numbers[a:a + k], minlength=z.max() + 1)[z]
    return counts


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    per = 26
    rng = np.random.default_rng(1)
    numbers = rng.choice(np.array([7, 22, 26, 27, 62], np.uint8), size=n * per)
    natoms = np.full(n, per, np.int32)
    start = np.arange(n, dtype=np.int64) * per
    t0 = time.perf_counter()
    symbols, counts = composition_matrix(numbers, start, natoms)
    t1 = time.perf_counter()
    m = max(n // 10, 1)
    reference = loop_counts(numbers, start[:m], natoms[:m], np.array([7, 22, 26, 27, 62]))
    t2 = time.perf_counter()
    assert np.array_equal(counts[:m], reference)
    loop = (t2 - t1) * n / m
    print(f"{'records':>9s} {'vectorised s':>13s} {'loop s (scaled)':>16s} {'speed-up':>9s}")
    print(f"{n:9d} {t1 - t0:13.3f} {loop:16.2f} {loop / (t1 - t0):8.1f}x")


if __name__ == "__main__":
    main()
