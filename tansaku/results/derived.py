"""Derived columns: values computed from the records after a run (stability, properties, ranking).

They live in ``/derived/<name>`` of a side file ``<store>.derived.h5`` beside the store, one entry per
record row, for the first ``rows`` rows (an attribute of ``/derived``). Records appended after the
ranking have no derived values: readers pad them (NaN for floats, -1 for integers, False for booleans,
"" for strings). See docs/hdf5_schema.md. Stores ranked before the side file existed hold ``/derived``
inside the store file; readers still read it there when there is no side file.

``write_derived`` replaces the side file atomically, under the store's WriterLock: a kill at any moment
leaves the old ranking or the new one, and the store file itself is never rewritten (at 10^6 records a
copy of it costs GBs).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from tansaku.results.atomic import fsync_path
from tansaku.results.lock import WriterLock
from tansaku.results.read import (
    DERIVED,
    committed_rows,
    derived_columns,
    derived_path,
    load_derived,
    open_for_reading,
    store_identity,
)
from tansaku.results.schema import RECORD_COLUMN_BY_NAME

__all__ = ["DERIVED", "RESERVED_NAMES", "copy_derived", "derived_attrs", "derived_columns", "derived_path",
           "remove_derived", "write_derived"]

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # what a query can name (tansaku.results.query)
RESERVED_NAMES = frozenset({"elements", "row"})  # pseudo-columns of queries
RESERVED_ATTRS = frozenset({"rows", "computed", "store_id"})
CHUNK_BYTES = 1 << 18  # derived columns are written once and read whole: large chunks read fastest
SIDE_TMP_SUFFIX = ".tmp"  # <store>.derived.h5.tmp: the side file being written (the next writer deletes it)


def _as_column(name: str, values: object, n: int) -> np.ndarray:
    """``values`` as a 1-D array HDF5 stores well (fixed-length UTF-8 bytes for text); ValueError naming
    the column if it has the wrong length or a type that is not float, int, bool or str."""
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"derived column {name!r}: expected one value per row (1-D), got shape {a.shape}")
    if len(a) != n:
        raise ValueError(f"derived column {name!r} has {len(a)} values; the store has {n} committed rows")
    kind = a.dtype.kind
    if kind == "f":
        return a.astype(np.float32 if a.dtype.itemsize <= 4 else np.float64)
    if kind == "b":
        return a
    if kind == "i":
        return a
    if kind == "u":
        if a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError(f"derived column {name!r}: unsigned values too large for int64")
        return a.astype(np.int64)
    if kind == "O" and all(isinstance(v, str) for v in a.tolist()):
        a = a.astype(str)
        kind = "U"
    if kind == "U":
        raw = np.char.encode(a, "utf-8") if a.size else np.zeros(0, "S1")
        width = max(1, raw.dtype.itemsize)
        return raw.astype(h5py.string_dtype("utf-8", width))
    raise ValueError(
        f"derived column {name!r}: dtype {a.dtype} not supported (float, int, bool or str values)"
    )


def _check_columns(columns: Mapping[str, object], n: int) -> dict[str, np.ndarray]:
    out = {}
    for name, values in columns.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(f"derived column name {name!r}: use letters, digits and _ (not starting with a digit)")
        if name in RECORD_COLUMN_BY_NAME or name in RESERVED_NAMES:
            raise ValueError(f"derived column name {name!r} is taken by a record column or a query keyword")
        out[name] = _as_column(name, values, n)
    return out


def _create(group: h5py.Group, name: str, data: np.ndarray) -> None:
    """Chunked, extendable. Floats (rarely compressible) are stored unfiltered, which reads ~10x faster
    than gzip; integers, booleans and text are shuffled + gzipped (level 1: they shrink as much as at 4
    and read faster)."""
    rows = max(1, min(len(data), CHUNK_BYTES // data.dtype.itemsize))
    filters = {} if data.dtype.kind == "f" else {"shuffle": True, "compression": "gzip", "compression_opts": 1}
    group.create_dataset(name, data=data, chunks=(rows,), maxshape=(None,), **filters)


def copy_derived(src: h5py.File, dst: h5py.File) -> None:
    """Copy ``/derived`` (datasets and attributes, as stored) from ``src`` to ``dst`` if it has one.

    For code that rebuilds a store file from its committed rows (recover.py: recovery, compaction,
    campaign changes), so that the derived columns survive the rewrite.
    """
    if DERIVED in src:
        src.copy(src[DERIVED], dst, DERIVED)


def write_derived(path: str | os.PathLike, columns: Mapping[str, object],
                  attrs: Mapping[str, str] | None = None) -> None:
    """Replace the derived columns of the store at ``path`` with ``columns`` (name -> one value per
    committed row) and the string attributes ``attrs`` (plus ``rows``, ``computed`` and ``store_id``).

    They go to the side file ``<name>.derived.h5`` (``derived_path``), never into the store itself, so
    ranking costs the size of the derived columns, not a copy of the records. Takes the store's
    WriterLock (StoreLockedError while a run writes the file), writes ``<side>.tmp``, fsyncs it and
    replaces the side file with it: a kill at any moment leaves the old ranking or the new one, and the
    store file is never touched. ValueError names a column of the wrong length or type, or a name that
    clashes with a record column.
    """
    path = Path(path)
    attrs = dict(attrs or {})
    for key, value in attrs.items():
        if key in RESERVED_ATTRS or not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"derived attribute {key!r}: keys other than rows/computed/store_id, str values only")
    lock = WriterLock(path)
    lock.acquire()
    try:
        side = derived_path(path)
        tmp = side.with_name(side.name + SIDE_TMP_SUFFIX)
        tmp.unlink(missing_ok=True)
        with open_for_reading(path) as src:
            n = committed_rows(src)
            created = store_identity(src)
        data = _check_columns(columns, n)
        try:
            with h5py.File(tmp, "w", libver="latest", locking=False) as dst:
                group = dst.create_group(DERIVED, track_order=True)
                for name, values in data.items():
                    _create(group, name, values)
                group.attrs["rows"] = np.int64(n)
                group.attrs["computed"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
                group.attrs["store_id"] = created
                for key, value in attrs.items():
                    group.attrs[key] = value
            fsync_path(tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, side)
        fsync_path(path.parent)
    finally:
        lock.release()


def remove_derived(path: str | os.PathLike) -> None:
    """Delete the side file of derived columns (and a temporary one) of ``path``; hold its WriterLock.

    For a store being created anew: a ranking left by an earlier store of the same name must not apply.
    """
    side = derived_path(path)
    side.with_name(side.name + SIDE_TMP_SUFFIX).unlink(missing_ok=True)
    side.unlink(missing_ok=True)


def remove_stale_derived_temporary(path: str | os.PathLike) -> None:
    """Delete a temporary side file a killed ``write_derived`` left behind (hold the WriterLock)."""
    side = derived_path(path)
    side.with_name(side.name + SIDE_TMP_SUFFIX).unlink(missing_ok=True)


def derived_attrs(path: str | os.PathLike) -> dict[str, str]:
    """The string attributes stored with the derived columns (calculator, settings, ...); {} if none."""
    with open_for_reading(path) as f:
        return {k: str(v) for k, v in load_derived(f).attrs.items()}
