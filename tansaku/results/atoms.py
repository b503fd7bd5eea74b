"""Bulk access to the ragged atom arrays (for composition-level analysis of every record)."""

from __future__ import annotations

import numpy as np

from tansaku.results.read import Source, _dataset, _reading, committed_rows
from tansaku.results.schema import ATOMS, RECORDS


def read_atom_numbers(source: Source) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(numbers of all stored atoms, atom_start per committed row, natoms per committed row)."""
    with _reading(source) as f:
        n = committed_rows(f)
        start = _dataset(f, f"{RECORDS}/atom_start")[:n]
        count = _dataset(f, f"{RECORDS}/natoms")[:n]
        end = int((start + count).max()) if n else 0
        return _dataset(f, f"{ATOMS}/numbers")[:end], start, count
