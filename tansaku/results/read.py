"""Reading a results store: committed rows only, safe while a writer appends (SWMR)."""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
from h5py import h5f, h5p, h5s

from tansaku.results.errors import RecordNotFoundError, StoreError
from tansaku.results.lock import writer_alive
from tansaku.results.ragged import to_fixed
from tansaku.results.record import STATUS_OK, Record
from tansaku.results.schema import (
    ATOMS,
    COMMITTED,
    RECORD_COLUMN_BY_NAME,
    RECORD_COLUMNS,
    RECORDS,
    SCALAR_COLUMNS,
    SCHEMA_VERSION,
    STATUS_COLUMN,
    STRING_COLUMNS,
    TEXT,
    VERSIONS,
    Layout,
    layout_of,
    require_filters,
)

if TYPE_CHECKING:
    import ase
    import pandas

Source = str | os.PathLike | h5py.File

DERIVED = "derived"  # group: derived columns (tansaku.results.derived), one entry per row for its first rows
DERIVED_SUFFIX = ".derived.h5"  # the side file holding /derived (see derived_path)


# HDF5 retries a metadata read that fails its checksum (a SWMR reader can catch a writer mid-flush),
# doubling its sleep each time: its SWMR default of 100 attempts sleeps for ever on a damaged file.
# 30 attempts wait about 1 s in all (measured), far longer than any flush of a live writer.
SWMR_READ_ATTEMPTS = 30


@functools.cache
def _set_metadata_read_attempts() -> Callable[[int, int], int] | None:
    """``H5Pset_metadata_read_attempts`` of the HDF5 library h5py is linked to (h5py does not wrap it)."""
    try:
        function = ctypes.CDLL(h5p.__file__).H5Pset_metadata_read_attempts  # found among h5p's dependencies
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = [ctypes.c_int64, ctypes.c_uint], ctypes.c_int
    return function


def _reader_access() -> h5p.PropFAID:
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_file_locking(False, False)
    setter = _set_metadata_read_attempts()
    if setter is not None:
        setter(fapl.id, SWMR_READ_ATTEMPTS)
    return fapl


def open_for_reading(path: str | os.PathLike) -> h5py.File:
    """Open a store read-only in SWMR mode (works while a writer runs and after a writer crashed).

    HDF5 file locking is off, as in the writer: the store's single writer is guarded by its own lock
    file, and a reader holding the file open must not stop a writer from starting. Metadata reads are
    retried for about a second, not for ever, so a truncated or damaged file raises StoreError.
    """
    if not os.path.isfile(path):
        what = "is a directory" if os.path.isdir(path) else "does not exist"
        raise StoreError(f"{os.fspath(path)}: {what}, not a tansaku results store")
    _check_not_truncated(path)
    try:
        fid = h5f.open(os.fsencode(path), h5f.ACC_RDONLY | h5f.ACC_SWMR_READ, fapl=_reader_access())
    except (OSError, RuntimeError) as exc:
        raise damaged(path, exc) from None
    f = h5py.File(fid)
    try:
        check_schema(f)
    except BaseException as exc:
        f.close()
        if is_hdf5_failure(exc):
            raise damaged(path, exc) from None
        raise
    return f


def _check_not_truncated(path: str | os.PathLike) -> None:
    """HDF5 compares a file's size with the end of its allocated space only when it opens it without
    SWMR: probe that way (a file a writer has open refuses such an open, which is fine), so that a
    truncated file is reported as such before anything else is read from it.

    While a live writer extends the file, its superblock can briefly announce more bytes than the file
    has yet (seen in the kill test: stored_eof 40437, eof 38344, a reader polling a run that had just
    started): that is not a truncated file, and the SWMR open that follows reads it as usual."""
    try:
        h5f.open(os.fsencode(path), h5f.ACC_RDONLY, fapl=_reader_access()).close()
    except (OSError, RuntimeError) as exc:
        if "truncated file" in str(exc) and not writer_alive(path):
            raise damaged(path, exc) from None


def is_hdf5_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is HDF5 failing to read the file (h5py raises these as OSError, RuntimeError or a
    KeyError whose message starts with "Unable to"), as opposed to a caller's mistake."""
    if isinstance(exc, KeyError):
        return str(exc.args[0] if exc.args else "").startswith("Unable to")
    return isinstance(exc, OSError | RuntimeError)


def damaged(path: str | os.PathLike, exc: BaseException) -> StoreError:
    """The error for a file HDF5 cannot read (not HDF5, truncated, corrupted), naming the file."""
    text = str(exc.args[0]) if exc.args else str(exc)
    reason = text.split("(", 1)[-1].rstrip(")") if "(" in text else text
    return StoreError(f"{os.fspath(path)}: not a readable HDF5 results file (truncated, damaged or not HDF5: "
                      f"{reason.strip() or type(exc).__name__})")


def check_schema(f: h5py.File) -> None:
    """Raise StoreError unless ``f`` is a store of a schema version this code understands."""
    version = f.attrs.get("schema_version")
    if version is None or COMMITTED not in f or RECORDS not in f:
        raise StoreError(f"{f.filename} is not a tansaku results store")
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise StoreError(f"{f.filename}: damaged: schema_version attribute {version!r} is not a number") from None
    if version > SCHEMA_VERSION:
        raise StoreError(f"{f.filename} has schema version {version}, newer than this tansaku "
                         f"(it reads versions {', '.join(map(str, VERSIONS))}): upgrade tansaku to read it")
    if version not in VERSIONS:
        raise StoreError(f"{f.filename} has schema version {version}; this tansaku reads versions "
                         f"{', '.join(map(str, VERSIONS))}")
    if version >= 3:
        require_filters()
    if any(c.name not in f.get(TEXT, {}) for c in layout_of(f).ragged_columns() if c.name in f[RECORDS]):
        raise StoreError(f"{f.filename}: damaged: a text column of schema version {version} lacks its /{TEXT} buffer")


@contextmanager
def _reading(source: Source) -> Iterator[h5py.File]:
    if isinstance(source, h5py.File):
        yield source
        return
    f = open_for_reading(source)
    try:
        yield f
    except (OSError, RuntimeError, KeyError) as exc:
        if is_hdf5_failure(exc):  # HDF5 could not read a part of the file: say which file
            raise damaged(source, exc) from None
        raise
    finally:
        f.close()


def _dataset(f: h5py.File, name: str) -> h5py.Dataset:
    ds = f[name]
    if f.swmr_mode and f.mode == "r":
        ds.refresh()  # see the writer's latest flush, not what this handle cached
    return ds


def committed_rows(f: h5py.File) -> int:
    """The number of committed rows of an open store (re-read from disk in SWMR mode), checked against
    the length of the columns, so a damaged counter is an error and never a wrong count."""
    n = int(_dataset(f, COMMITTED)[0])
    ids = _dataset(f, f"{RECORDS}/task_id")
    rows = ids.shape[0]
    if not 0 <= n <= rows:
        raise StoreError(f"{f.filename}: damaged: /committed says {n} rows but the columns hold {rows}")
    if n and layout_of(f).ragged(RECORD_COLUMN_BY_NAME["task_id"]):  # versions 2 and 3 extend datasets ahead
        start, stop = read_points(ids, np.array([n - 1]))[0]
        if stop <= start:  # a task_id is never empty: row n - 1 was never written
            raise StoreError(f"{f.filename}: damaged: /committed says {n} rows but row {n - 1} was never written")
    return n


def atoms_end(f: h5py.File, n: int) -> int:
    """One past the last atom used by rows [0, n): atoms beyond it are free to overwrite."""
    if n == 0:
        return 0
    start = _dataset(f, f"{RECORDS}/atom_start")[:n]
    count = _dataset(f, f"{RECORDS}/natoms")[:n]
    return int((start + count).max())


def text_end(f: h5py.File, name: str, n: int) -> int:
    """One past the last byte of ``/text/<name>`` used by rows [0, n): bytes beyond it are free."""
    if n == 0:
        return 0
    # [:n] then [:, 1]: HDF5 2.0 can fail a strided selection ([:n, 1]) of a chunked dataset with
    # "can't insert duplicate key"
    return int(_dataset(f, f"{RECORDS}/{name}")[:n][:, 1].max())


POINT_READ_FRACTION = 0.5  # read a dataset whole when the selected rows touch more of its chunks


def _sparse(rows: np.ndarray, chunk: int, size: int) -> bool:
    """Whether sorted ``rows`` touch few enough chunks of a dataset of ``size`` rows for a point read."""
    touched = len(np.unique(rows // chunk))
    return touched <= POINT_READ_FRACTION * -(-size // chunk)


def read_points(ds: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """``ds[rows]`` for sorted, unique ``rows`` inside the dataset, in one HDF5 point selection (reads
    only the chunks the rows are in; h5py's fancy indexing costs a selection per row)."""
    tail = ds.shape[1:]
    values = np.empty((len(rows), *tail), ds.dtype)
    if len(rows):
        inner = np.indices(tail).reshape(len(tail), -1).T if tail else np.zeros((1, 0), np.int64)
        coords = np.hstack([np.repeat(rows, len(inner))[:, None], np.tile(inner, (len(rows), 1))])
        space = ds.id.get_space()
        space.select_elements(coords.astype(np.uint64))
        ds.id.read(h5s.create_simple(values.shape), space, values)
    return values


def _read_at(ds: h5py.Dataset, rows: slice | np.ndarray, n: int) -> np.ndarray:
    """``ds`` at a slice of, or at sorted unique indices into, its first ``n`` rows."""
    if isinstance(rows, slice):
        return ds[rows]
    if not len(rows):
        return np.zeros((0, *ds.shape[1:]), ds.dtype)
    chunk = (ds.chunks or (max(ds.shape[0], 1),))[0]
    if _sparse(rows, chunk, min(n, ds.shape[0])):
        return read_points(ds, rows)
    return ds[: int(rows[-1]) + 1][rows]


def read_text(f: h5py.File, name: str, spans: np.ndarray) -> np.ndarray:
    """The values of ragged text column ``name`` at ``spans`` ([start, stop) rows of ``/records/<name>``)
    as NUL-padded fixed-width bytes: the buffer's covering range in one read, or only its bytes (one point
    selection) when they are scattered over few of its chunks."""
    if not len(spans):
        return np.zeros(0, "S1")
    buf = _dataset(f, f"{TEXT}/{name}")
    start, stop = spans[:, 0], spans[:, 1]
    lo, hi = int(start.min()), int(stop.max())
    try:
        if lo < 0 or hi > buf.shape[0] or np.any(stop < start):
            raise ValueError("text spans outside their buffer")
        if len(spans) < 4096 and hi > lo:
            chunk = buf.chunks[0]
            touched = np.unique(np.concatenate([start // chunk, (stop - 1) // chunk]))
            if _sparse(touched * chunk, chunk, hi - lo):
                lengths = stop - start
                wanted = np.unique(np.repeat(start, lengths) + np.arange(int(lengths.sum()))
                                   - np.repeat(np.cumsum(lengths) - lengths, lengths))
                at = np.searchsorted(wanted, start)  # a value's bytes are consecutive in ``wanted``
                return to_fixed(read_points(buf, wanted), at, at + lengths)
        return to_fixed(buf[lo:hi] if hi > lo else np.zeros(0, np.uint8), start - lo, stop - lo)
    except ValueError:
        raise StoreError(f"{f.filename}: damaged: /{RECORDS}/{name} points outside /{TEXT}/{name} "
                         f"({buf.shape[0]} bytes)") from None


def read_record_column(f: h5py.File, name: str, rows: slice | np.ndarray, n: int,
                       layout: Layout | None = None, stored: Container[str] | None = None) -> np.ndarray:
    """Record column ``name`` at ``rows`` (a slice of the ``n`` committed rows, or sorted unique row
    numbers), as stored in schema version 1: text as NUL-padded UTF-8 bytes (not decoded). An optional
    column the file predates reads as its fill value. ``layout`` (``layout_of(f)``) and ``stored`` (the
    names in ``/records``) spare callers that read many columns looking them up each time."""
    column = RECORD_COLUMN_BY_NAME[name]
    if column.optional and name not in (f[RECORDS] if stored is None else stored):
        count = len(range(*rows.indices(n))) if isinstance(rows, slice) else len(rows)
        return np.full(count, column.fill, dtype=column.dtype)
    values = _read_at(_dataset(f, f"{RECORDS}/{name}"), rows, n)
    return read_text(f, name, values) if (layout or layout_of(f)).ragged(column) else values


def _decode(a: np.ndarray) -> np.ndarray:
    return np.char.decode(a, "utf-8") if a.dtype.kind == "S" else a


def derived_path(path: str | os.PathLike) -> Path:
    """The side file holding the derived columns of the store at ``path``: ``<name>.derived.h5``."""
    path = Path(path)
    return path.with_name(path.name + DERIVED_SUFFIX)


@dataclass(frozen=True)
class Derived:
    """The derived columns of a store, read whole (they are small: one value per row, a few columns)."""

    columns: dict[str, np.ndarray]  # name -> values of the first ``rows`` rows, in the order written
    attrs: dict[str, object]  # the attributes of /derived (rows, computed, settings, ...)


_NO_DERIVED = Derived({}, {})
_SIDE_CACHE: dict[tuple, Derived] = {}  # (side file, inode, mtime, size, store created) -> its contents


def _read_group(group: h5py.Group) -> Derived:
    return Derived({k: group[k][()] for k in group if isinstance(group[k], h5py.Dataset)}, dict(group.attrs))


def load_derived(f: h5py.File) -> Derived:
    """The derived columns of the open store ``f``: from its side file (``derived_path``) when that exists
    and belongs to this store (``store_identity``), else from a
    ``/derived`` group inside the file (files ranked before the side file existed), else none.

    The side file is replaced atomically (``write_derived``), so one read of it is one consistent ranking;
    it is cached by (path, inode, mtime, size). A damaged side file raises StoreError naming it.
    """
    side = derived_path(f.filename)
    try:
        st = os.stat(side)
    except FileNotFoundError:
        st = None
    if st is not None:
        created = store_identity(f)
        key = (str(side), st.st_ino, st.st_mtime_ns, st.st_size, created)
        hit = _SIDE_CACHE.get(key)
        if hit is None:
            try:
                with h5py.File(side, "r", locking=False) as g:
                    if DERIVED not in g:
                        raise StoreError(f"{side}: no /{DERIVED} group")
                    hit = _read_group(g[DERIVED])
            except (OSError, RuntimeError, KeyError) as exc:
                raise damaged(side, exc) from None
            if str(hit.attrs.get("store_id", "")) != created:
                hit = _NO_DERIVED  # left by another store of the same name (deleted and created anew)
            _SIDE_CACHE.clear()
            _SIDE_CACHE[key] = hit
        if hit is not _NO_DERIVED:
            return hit
    group = f.get(DERIVED)
    return _NO_DERIVED if group is None else _read_group(group)


def store_identity(f: h5py.File) -> str:
    """What ties a side file to its store: the ``store_id`` attribute (a random hex string set at
    creation), or ``created`` in files written before store_id existed."""
    return str(f.attrs.get("store_id", f.attrs.get("created", "")))


def derived_columns(source: Source) -> list[str]:
    """Names of the derived columns (in the order they were written), [] if none."""
    with _reading(source) as f:
        return list(load_derived(f).columns)


def derived_fill(dtype: np.dtype) -> object:
    """The value read for a row the derived columns do not cover (appended after they were written)."""
    return {"f": np.nan, "i": -1, "u": 0, "b": False, "S": b"", "U": ""}.get(dtype.kind, 0)


def _read_derived(f: h5py.File, name: str, rows: slice, n: int) -> np.ndarray:
    """Derived column ``name`` at ``rows`` of the ``n`` committed ones, padded beyond its rows."""
    return read_padded(load_derived(f).columns[name], rows, n)


def read_padded(ds: h5py.Dataset | np.ndarray, rows: slice, n: int) -> np.ndarray:
    """``ds[rows]`` of a derived column over ``n`` rows, padded where it ends before them."""
    start, stop, _ = rows.indices(n)
    stop = max(start, stop)
    have = min(stop, ds.shape[0])
    part = ds[start:have] if have > start else np.zeros(0, ds.dtype)
    if have - start < stop - start:
        pad = np.full(stop - max(have, start), derived_fill(ds.dtype), ds.dtype)
        part = np.concatenate([part, pad])
    return part


def _read_rows(f: h5py.File, names: Iterable[str], rows: slice) -> dict[str, np.ndarray]:
    """Columns ``names`` at ``rows``; status is read first, so a row rewritten meanwhile looks failed.

    Record columns win over derived columns of the same name (which write_derived refuses anyway).
    """
    names = list(names)
    unknown = [n for n in names if n not in RECORD_COLUMN_BY_NAME]
    derived = derived_columns(f) if unknown else []
    unknown = [n for n in unknown if n not in derived]
    if unknown:
        raise KeyError(
            f"unknown column(s) {unknown}; columns are {list(RECORD_COLUMN_BY_NAME)}"
            + (f", derived columns {derived}" if derived else "")
        )
    ordered = sorted(names, key=lambda n: n != STATUS_COLUMN)
    n = committed_rows(f)
    out = {k: _decode(read_record_column(f, k, rows, n) if k in RECORD_COLUMN_BY_NAME
                      else _read_derived(f, k, rows, n)) for k in ordered}
    return {k: out[k] for k in names}


def read_columns(source: Source, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Committed rows of the columns ``names``: record columns and derived columns (default: every record
    column, then every derived column); strings decoded to str, derived columns padded (see derived.py)."""
    with _reading(source) as f:
        n = committed_rows(f)
        if names is None:
            names = [c.name for c in RECORD_COLUMNS] + _extra_derived(f)
        return _read_rows(f, names, slice(0, n))


def _extra_derived(f: h5py.File) -> list[str]:
    return [k for k in derived_columns(f) if k not in RECORD_COLUMN_BY_NAME]


def read_table(source: Source, columns: Iterable[str] | None = None) -> pandas.DataFrame:
    """Committed rows as a DataFrame (index = row): ``columns`` (record or derived), or every
    one-value-per-row record column followed by every derived column."""
    import pandas as pd

    with _reading(source) as f:
        if columns is None:
            columns = [c.name for c in RECORD_COLUMNS if not c.shape and c.name != "atom_start"]
            columns += _extra_derived(f)
        return pd.DataFrame(read_columns(f, columns))


def count_by(source: Source, column: str) -> dict[object, int]:
    """How many committed rows have each value of ``column`` (e.g. "status"), most frequent first."""
    values, counts = np.unique(read_columns(source, [column])[column], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {values[i].item(): int(counts[i]) for i in order}


def find_row(source: Source, key: str) -> int:
    """The row whose task_id is ``key``, else the only row whose task_id starts with ``key`` or whose
    candidate_id is ``key``; RecordNotFoundError when there is none or more than one."""
    cols = read_columns(source, ["task_id", "candidate_id"])
    ids = cols["task_id"]
    exact = np.flatnonzero(ids == key)
    if len(exact):
        return int(exact[0])
    hits = np.flatnonzero(np.char.startswith(ids, key) | (cols["candidate_id"] == key)) if key else []
    if len(hits) == 1:
        return int(hits[0])
    if not len(hits):
        raise RecordNotFoundError(f"no stored task_id starts with {key!r} and no candidate_id is {key!r}")
    shown = ", ".join(ids[hits[:5]])
    more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
    raise RecordNotFoundError(f"{key!r} is ambiguous: {len(hits)} task_ids match ({shown}{more})")


def _records(cols: dict[str, np.ndarray], atoms: dict[str, np.ndarray], base: int) -> Iterator[Record]:
    start = cols["atom_start"] - base
    for i in range(len(start)):
        sl = slice(start[i], start[i] + cols["natoms"][i])
        magmoms = atoms["magmoms"][sl]
        fields = {c.name: cols[c.name][i].item() for c in STRING_COLUMNS + SCALAR_COLUMNS}
        yield Record(
            **fields,
            numbers=atoms["numbers"][sl].astype(int),
            positions=atoms["positions"][sl],
            cell=cols["cell"][i],
            pbc=cols["pbc"][i],
            stress=cols["stress"][i],
            magmoms=None if np.isnan(magmoms).all() else magmoms,
        )


def iter_records(source: Source, rows: range | None = None, block: int = 4096) -> Iterator[Record]:
    """Committed rows (all, or ``rows``) as Records; magmoms that are all NaN come back as None."""
    with _reading(source) as f:
        n = committed_rows(f)
        rows = range(n) if rows is None else rows
        if rows.step != 1 or rows.start < 0 or rows.stop > n:
            raise IndexError(f"rows {rows} outside the {n} committed rows (step must be 1)")
        names = [c.name for c in RECORD_COLUMNS]
        for a in range(rows.start, rows.stop, block):
            cols = _read_rows(f, names, slice(a, min(a + block, rows.stop)))
            lo = int(cols["atom_start"].min())
            hi = int((cols["atom_start"] + cols["natoms"]).max())
            atoms = {k: _dataset(f, f"{ATOMS}/{k}")[lo:hi] for k in ("numbers", "positions", "magmoms")}
            yield from _records(cols, atoms, lo)


def read_record(source: Source, key: str) -> tuple[dict[str, object], ase.Atoms]:
    """One stored row by task_id, unique task_id prefix or candidate_id (see ``find_row``): its fields
    as a dict, and its final structure.

    The Atoms carry pbc, cell, ``initial_magmoms`` (when stored), ``info`` with the string fields, and,
    for an ok row, a SinglePointCalculator with the stored energy, stress and magnetic moments.
    """
    with _reading(source) as f:
        return record_at(f, find_row(f, key))


def record_at(source: Source, row: int) -> tuple[dict[str, object], ase.Atoms]:
    """The fields and structure of committed row ``row``, as ``read_record`` returns them."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    with _reading(source) as f:
        (rec,) = iter_records(f, range(row, row + 1))
    fields = {k: v for k, v in vars(rec).items() if k not in ("numbers", "positions", "magmoms")}
    fields["row"] = row
    fields["natoms"] = rec.natoms
    atoms = Atoms(numbers=rec.numbers, positions=rec.positions, cell=rec.cell, pbc=rec.pbc)
    atoms.info.update({k: v for k, v in fields.items() if isinstance(v, str) and v})
    if rec.magmoms is not None:
        atoms.set_initial_magnetic_moments(rec.magmoms)
    if rec.status == STATUS_OK:
        results = {"energy": rec.energy, "stress": rec.stress, "magmom": rec.magmom_total}
        results = {k: v for k, v in results.items() if np.all(np.isfinite(v))}
        if rec.magmoms is not None:
            results["magmoms"] = rec.magmoms
        atoms.calc = SinglePointCalculator(atoms, **results)
    return fields, atoms
