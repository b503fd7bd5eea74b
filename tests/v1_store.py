"""A frozen writer of schema-version-1 results files, in plain h5py, as docs/hdf5_schema.md describes
version 1 (and as tansaku wrote them before version 2): for compatibility tests that need a version-1
file made independently of tansaku's own writer (a test helper, not a binary blob)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

from tansaku.results.record import Record

# name -> bytes of the fixed-width UTF-8 text columns of version 1 (error, params, history are cut)
TEXT = {"task_id": 96, "candidate_id": 96, "kind": 16, "label": 128, "formula": 64, "prototype": 64,
        "parent": 128, "calculator": 64, "stage": 32, "status": 8, "error": 512, "worker": 128,
        "params": 1024, "history": 2048}
NUMBERS = {"energy": "<f8", "energy_per_atom": "<f8", "fmax": "<f8", "volume": "<f8", "magmom_total": "<f8",
           "steps": "<i4", "converged": "?", "wall_time": "<f8", "finished_at": "<f8", "scf_iterations": "<i4"}
ARRAYS = {"stress": ("<f8", (6,)), "cell": ("<f8", (3, 3)), "pbc": ("?", (3,))}


def _cut(text: str, width: int) -> bytes:
    raw = text.encode()
    if len(raw) <= width:
        return raw
    mark = "…".encode()
    return raw[: width - len(mark)].decode("utf-8", errors="ignore").encode() + mark


def _column(group: h5py.Group, name: str, data: np.ndarray) -> None:
    rows = max(16, 4096 // max(1, data[:1].nbytes))
    chunk = (1 << (rows.bit_length() - 1), *data.shape[1:])
    group.create_dataset(name, data=data, chunks=chunk, maxshape=(None, *data.shape[1:]), shuffle=True,
                         compression="gzip", compression_opts=4)


def as_stored_in_v1(record: Record) -> Record:
    """``record`` as read back from a file of this writer: optional columns added after it read as filled."""
    from tansaku.results.schema import OPTIONAL_COLUMNS

    missing = {c.name: c.fill.decode() if isinstance(c.fill, bytes) else c.fill
               for c in OPTIONAL_COLUMNS if c.name not in TEXT and c.name not in NUMBERS}
    return dataclasses.replace(record, **missing)


def write_v1_store(path: Path, records: list[Record], campaign: str = "") -> None:
    """Write ``records`` (distinct task ids) as a closed version-1 store at ``path``."""
    with h5py.File(path, "w", libver="latest") as f:
        rec, atoms = f.create_group("records"), f.create_group("atoms")
        for name, width in TEXT.items():
            values = [_cut(getattr(r, name), width) for r in records]
            _column(rec, name, np.array(values, dtype=h5py.string_dtype("utf-8", width)))
        for name, dtype in NUMBERS.items():
            _column(rec, name, np.array([getattr(r, name) for r in records], dtype=dtype))
        for name, (dtype, shape) in ARRAYS.items():
            _column(rec, name, np.array([getattr(r, name) for r in records], dtype=dtype).reshape(-1, *shape))
        natoms = np.array([len(r.numbers) for r in records], np.int32)
        _column(rec, "natoms", natoms)
        _column(rec, "atom_start", (np.cumsum(natoms) - natoms).astype(np.int64))
        _column(atoms, "numbers", np.concatenate([np.asarray(r.numbers, np.int16) for r in records]))
        _column(atoms, "positions", np.concatenate([np.asarray(r.positions, float) for r in records]))
        magmoms = [np.full(len(r.numbers), np.nan) if r.magmoms is None else r.magmoms for r in records]
        _column(atoms, "magmoms", np.concatenate(magmoms).astype(float))
        f.create_dataset("committed", data=np.array([len(records)], np.int64))
        f.attrs.update({"schema_version": 1, "tansaku_version": "0.1.0", "created": "2026-11-30T00:00:00+00:00",
                        "campaign": campaign, "store_id": "0123456789abcdef0123456789abcdef"})
