"""Content hashes that identify structures independently of how they were made."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from ase import Atoms

HASH_LENGTH = 16  # hex characters (64 bits): collisions negligible for 10^6-10^7 items


def short_hash(*parts: Any) -> str:
    """A stable hex digest of JSON-serialisable parts (bytes are hashed as-is)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:HASH_LENGTH]


def _canonical_frac(atoms: Atoms, decimals: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    numbers = atoms.get_atomic_numbers().astype(np.int64)
    frac = np.round(atoms.get_scaled_positions(wrap=True), decimals) % 1.0
    frac = np.round(frac, decimals)
    return numbers, frac, np.lexsort((frac[:, 2], frac[:, 1], frac[:, 0], numbers))


def canonical_order(atoms: Atoms, decimals: int = 5) -> np.ndarray:
    """The atom order of :func:`canonical_structure_bytes` (species, then fractional position)."""
    return _canonical_frac(atoms, decimals)[2]


def canonical_structure_bytes(atoms: Atoms, decimals: int = 5) -> bytes:
    """Cell, pbc and atoms (sorted by species then fractional position), rounded, as bytes.

    Two Atoms objects with the same atoms listed in a different order give the same bytes.
    """
    numbers, frac, order = _canonical_frac(atoms, decimals)
    cell = np.round(np.asarray(atoms.cell), decimals - 1)
    # +0.0 turns -0.0 into 0.0 so that signed zeros do not change the hash
    return b"".join(
        [
            (cell + 0.0).astype(np.float64).tobytes(),
            np.asarray(atoms.pbc, dtype=np.int8).tobytes(),
            numbers[order].tobytes(),
            (frac[order] + 0.0).astype(np.float64).tobytes(),
        ]
    )


def structure_id(atoms: Atoms) -> str:
    """Stable id of a structure: hash of its canonical form."""
    return short_hash(canonical_structure_bytes(atoms))
