"""Writing a store file from scratch, atomically: for creation, crash recovery and attribute changes.

A writer killed while in SWMR mode leaves the file flagged "open for write": HDF5 then refuses to open it
for writing (or to read it without ``swmr=True``). Its committed rows are intact and readable with
``swmr=True``, so recovery copies them into ``<name>.recover.tmp``, fsyncs it and ``os.replace``\\ s it
over the original, which is never modified before the complete copy exists.

Callers must hold the store's WriterLock (see lock.py): replacing a file under a live writer loses data.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np

from tansaku.results.atomic import CREATE_SUFFIX, RECOVER_SUFFIX, fsync_path
from tansaku.results.derived import copy_derived
from tansaku.results.errors import StoreError
from tansaku.results.read import atoms_end, committed_rows, open_for_reading
from tansaku.results.schema import ATOM_COLUMNS, ATOMS, COMMITTED, RECORD_COLUMNS, RECORDS, create_layout

log = logging.getLogger(__name__)

COPY_BLOCK = 1 << 16  # rows or atoms copied per read/write


def is_crashed_writer_error(exc: OSError) -> bool:
    """Whether HDF5 refused to open a file because its consistency flags say a writer has it open."""
    return "already open for write" in str(exc)


def _copy(src: h5py.Dataset, dst: h5py.Dataset, n: int) -> None:
    dst.resize(n, axis=0)
    for a in range(0, n, COPY_BLOCK):
        b = min(a + COPY_BLOCK, n)
        dst[a:b] = src[a:b]


def _copy_committed(src: h5py.File, dst: h5py.File) -> int:
    n = committed_rows(src)
    m = atoms_end(src, n)
    for group, columns, count in ((RECORDS, RECORD_COLUMNS, n), (ATOMS, ATOM_COLUMNS, m)):
        for c in columns:
            if c.optional and c.name not in src[group]:  # a file from before the column existed
                dst[f"{group}/{c.name}"].resize(count, axis=0)
                if count:
                    dst[f"{group}/{c.name}"][:] = np.full(count, c.fill, dtype=c.dtype)
                continue
            ds = src[f"{group}/{c.name}"]
            if ds.shape[0] < count:
                raise StoreError(f"{src.filename}: {group}/{c.name} has {ds.shape[0]} entries, {count} committed")
            _copy(ds, dst[f"{group}/{c.name}"], count)
    dst[COMMITTED][0] = n
    return n


def write_new_file(path: Path, attrs: dict[str, object], source: h5py.File | None = None,
                   suffix: str = CREATE_SUFFIX) -> int:
    """Build a store at ``path`` + ``suffix`` (with the committed rows of ``source``), then replace ``path``.

    Returns the number of rows written.
    """
    tmp = path.with_name(path.name + suffix)
    tmp.unlink(missing_ok=True)
    with h5py.File(tmp, "w", libver="latest") as dst:
        create_layout(dst, attrs)
        n = 0
        if source is not None:
            n = _copy_committed(source, dst)
            copy_derived(source, dst)  # a ranking survives recovery, compaction and campaign changes
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)
    return n


def rewrite(path: Path, attrs_update: dict[str, object] | None = None) -> int:
    """Replace ``path`` by a clean copy of its committed rows (attributes updated); returns rows kept.

    Works on a file left open-for-write by a killed writer. The caller must hold the WriterLock.
    """
    with open_for_reading(path) as src:
        attrs = {**src.attrs, **(attrs_update or {})}
        n = write_new_file(path, attrs, src, RECOVER_SUFFIX)
    log.info("rewrote %s: %d committed rows kept", path, n)
    return n


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files a killed creation/recovery left next to ``path`` (hold the lock)."""
    for suffix in (RECOVER_SUFFIX, CREATE_SUFFIX):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
