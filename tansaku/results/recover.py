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
from tansaku.results.read import atoms_end, committed_rows, open_for_reading, read_record_column
from tansaku.results.schema import (
    ARRAY_COLUMNS,
    ATOM_COLUMNS,
    ATOMS,
    CAMPAIGNS_TABLE,
    COMMITTED,
    RECORD_COLUMNS,
    RECORDS,
    SCALAR_COLUMNS,
    STRING_COLUMNS,
    TABLE_TEXT,
    TEXT,
    TEXT_TABLES,
    create_layout,
    layout_of,
)
from tansaku.results.tables import committed_entries, current_entry, read_entries, text_key

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
    """Copy the committed rows of ``src`` into the empty store ``dst``: verbatim when both have the same
    schema version, else row by row through the writer of ``dst``'s version (``_convert``)."""
    if layout_of(src) != layout_of(dst):
        n = _convert(src, dst)
        _copy_tables(src, dst)
        return n
    layout = layout_of(src)
    n = committed_rows(src)
    m = atoms_end(src, n)
    for group, columns, count in ((RECORDS, RECORD_COLUMNS, n), (ATOMS, ATOM_COLUMNS, m)):
        for c in columns:
            out = dst[f"{group}/{c.name}"]
            if c.optional and c.name not in src[group]:  # a file from before the column existed
                out.resize(count, axis=0)
                if count:  # text spans [0, 0) are "", as is a fixed-width b""
                    out[:] = np.zeros(out.shape, out.dtype) if layout.ragged(c) else np.full(count, c.fill, c.dtype)
                continue
            ds = src[f"{group}/{c.name}"]
            if ds.shape[0] < count:
                raise StoreError(f"{src.filename}: {group}/{c.name} has {ds.shape[0]} entries, {count} committed")
            _copy(ds, out, count)
            if group == RECORDS and layout.ragged(c):  # through the same handle: refreshing a second one
                end = int(ds[:count][:, 1].max()) if count else 0  # breaks SWMR reads (h5py #2803)
                _copy(src[f"{TEXT}/{c.name}"], dst[f"{TEXT}/{c.name}"], end)
    dst[COMMITTED][0] = n
    _copy_tables(src, dst)
    return n


def _convert(src: h5py.File, dst: h5py.File) -> int:
    """Copy the committed rows of ``src`` into ``dst`` of another schema version, COPY_BLOCK rows at a
    time: read as version 1 columns, packed into a Batch and placed by ``dst``'s Writer."""
    from tansaku.results.pack import Batch
    from tansaku.results.ragged import from_fixed
    from tansaku.results.writer import Writer

    n = committed_rows(src)
    writer = Writer(dst, 0, grow=False)
    for a in range(0, n, COPY_BLOCK):
        rows = slice(a, min(a + COPY_BLOCK, n))
        values = {c.name: read_record_column(src, c.name, rows, n) for c in RECORD_COLUMNS}
        start, count = values["atom_start"].astype(np.int64), values["natoms"].astype(np.int64)
        lo, hi = (int(start.min()), int((start + count).max())) if len(start) else (0, 0)
        index = np.repeat(start - lo, count) + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        atoms = {c.name: src[f"{ATOMS}/{c.name}"][lo:hi][index] for c in ATOM_COLUMNS}
        batch = Batch(
            task_ids=[],
            rows={c.name: values[c.name] for c in SCALAR_COLUMNS + ARRAY_COLUMNS} | {"natoms": values["natoms"]},
            atoms=atoms,
            text={c.name: from_fixed(values[c.name]) for c in STRING_COLUMNS},
        )
        writer.write_rows(rows.start, writer.place(batch))
    dst[COMMITTED][0] = n
    return n


def _copy_tables(src: h5py.File, dst: h5py.File) -> None:
    """Copy the committed entries of the text tables; a file from before /campaigns gets its ``campaign``
    attribute as the first entry (first used when the file was created)."""
    for table in TEXT_TABLES:
        group = dst[table.name]
        k = committed_entries(src, table)
        if k:
            for c in table.columns:
                _copy(src[f"{table.name}/{c.name}"], group[c.name], k)
            end = int((group["start"][:k] + group["length"][:k]).max())
            _copy(src[f"{table.name}/{TABLE_TEXT.name}"], group[TABLE_TEXT.name], end)
        elif table is CAMPAIGNS_TABLE and table.name not in src and src.attrs.get("campaign", ""):
            text = str(src.attrs["campaign"]).encode("utf-8")
            created = _unix_time(str(src.attrs.get("created", "")))
            for name, value in (("key", text_key(text.decode("utf-8"))), ("start", 0), ("length", len(text)),
                                ("first_used", created), ("last_used", created)):
                group[name].resize(1, axis=0)
                group[name][0] = value
            group[TABLE_TEXT.name].resize(len(text), axis=0)
            group[TABLE_TEXT.name][:] = np.frombuffer(text, np.uint8)
            k = 1
        group[COMMITTED][0] = k
    current = current_entry(read_entries(dst, CAMPAIGNS_TABLE))
    if current is not None:
        dst.attrs["campaign"] = current.text  # for readers that know only the attribute


def _unix_time(iso: str) -> float:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return float("nan")


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
