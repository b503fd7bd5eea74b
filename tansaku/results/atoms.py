"""Bulk access to the ragged atom arrays (for composition-level analysis of every record)."""

from __future__ import annotations

import numpy as np

from tansaku.results.read import Source, _dataset, _reading, committed_rows
from tansaku.results.schema import ATOMS, RECORDS


def read_atom_numbers(source: Source) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(numbers of all stored atoms, atom_start per committed row, natoms per committed row)."""
    return read_atom_column(source, "numbers")


def read_atom_column(source: Source, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(``/atoms/<name>`` of all stored atoms, e.g. numbers or magmoms (μB, NaN where none); atom_start and
    natoms per committed row)."""
    with _reading(source) as f:
        n = committed_rows(f)
        start = _dataset(f, f"{RECORDS}/atom_start")[:n]
        count = _dataset(f, f"{RECORDS}/natoms")[:n]
        end = int((start + count).max()) if n else 0
        return _dataset(f, f"{ATOMS}/{name}")[:end], start, count


def per_row_abs_sum(values: np.ndarray, start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Σ|value| over each row's atoms (NaN if any of them is NaN; 0 for a row without atoms)."""
    count = np.asarray(count, dtype=np.int64)
    rows = np.repeat(np.arange(len(count)), count)
    first = np.cumsum(count) - count
    index = np.arange(int(count.sum())) - np.repeat(first, count) + np.repeat(np.asarray(start, np.int64), count)
    return np.bincount(rows, weights=np.abs(np.asarray(values, dtype=float)[index]), minlength=len(count))
