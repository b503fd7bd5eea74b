"""Stored rows as structures: ase.Atoms or pymatgen Structure, looked up in bulk by task_id."""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from tansaku.results.read import Source, _reading, committed_rows, find_row, read_record_column, record_at

KINDS = ("ase", "pymatgen")


def rows_of(source: Source, keys: Iterable[str]) -> list[int]:
    """The row of each key: an exact task_id (found with one read of the task_id column), else what
    ``find_row`` accepts (unique task_id prefix, candidate_id). RecordNotFoundError otherwise."""
    keys = list(keys)
    with _reading(source) as f:
        n = committed_rows(f)
        ids = read_record_column(f, "task_id", slice(0, n), n)
        wanted = [k.encode("utf-8") for k in keys]
        if len(wanted) <= 64:  # a vectorised comparison per key
            hits = [np.flatnonzero(ids == b) for b in wanted]
            found = [int(h[0]) if len(h) else -1 for h in hits]
        else:  # one sort, then binary searches
            order = np.argsort(ids, kind="stable")
            pos = np.minimum(np.searchsorted(ids, np.array(wanted), sorter=order), max(n - 1, 0))
            found = [int(order[p]) if n and ids[order[p]] == b else -1 for b, p in zip(wanted, pos.tolist())]
        return [row if row >= 0 else find_row(f, key) for key, row in zip(keys, found)]


def to_structures(path: Source | os.PathLike, task_ids: Iterable[str], kind: str = "ase") -> list:
    """The stored final structures of ``task_ids`` (or unique prefixes / candidate ids), in that order:
    ase.Atoms as ``read_record`` builds them (cell, pbc, magmoms, energy...), or pymatgen Structures
    (via AseAtomsAdaptor)."""
    if kind not in KINDS:
        raise ValueError(f"structure kind {kind!r}: use one of {', '.join(KINDS)}")
    if isinstance(task_ids, str):
        task_ids = [task_ids]
    with _reading(path) as f:
        atoms = [record_at(f, row)[1] for row in rows_of(f, task_ids)]
    if kind == "ase":
        return atoms
    from pymatgen.io.ase import AseAtomsAdaptor

    return [AseAtomsAdaptor.get_structure(a) for a in atoms]
