"""The HDF5 layout of a results store: dataset names, dtypes, shapes, units, and its creation.

See docs/hdf5_schema.md for the reader-facing description. Any change here that alters what is on
disk must bump ``SCHEMA_VERSION``.

Three versions exist. Version 1 stores every text column fixed-width (NUL-padded) and every dataset in
4 kB shuffled+gzipped chunks. Version 2 stores text columns as one UTF-8 byte buffer per column
(``/text/<name>``) plus a ``[start, stop)`` span per row (``/records/<name>``), keeps one-value-per-row
numbers (and ``status``) unfiltered in 32 kB chunks, and compresses the rest (atoms, spans, buffers,
cells...) with shuffle + gzip level 1 in larger chunks. Version 3 (written by default) has version 2's
datasets, compressed by Blosc (LZ4 + byte shuffle; the hdf5plugin package registers the filter) in
chunks 2-4x larger. A file stays in its version (read, appended and rewritten in its own layout) until
``upgrade`` (store.py).
"""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import dataclass

import h5py
import numpy as np

SCHEMA_VERSION = 3  # what new stores are written in
VERSIONS = (1, 2, 3)  # what this code reads and appends to

RECORDS = "records"  # group: one dataset per per-record column, first axis = row
ATOMS = "atoms"  # group: concatenated per-atom arrays, first axis = atom
TEXT = "text"  # group (version 2): the UTF-8 bytes of each ragged text column, concatenated
COMMITTED = "committed"  # (1,) int64: rows [0, committed) are valid; everything beyond is garbage

COMPRESSION_LEVEL = 4
MIN_CHUNK_ROWS = 16
# Target uncompressed chunk size. In SWMR mode HDF5 never reuses freed file space, so each flush leaks
# the previous copy of every rewritten (compressed, partly filled) last chunk: small chunks keep that
# leak small (~6 kB per append on this schema); Store.close compacts a file that leaked much.
CHUNK_BYTES = 4096

ELLIPSIS = "…"


@dataclass(frozen=True)
class Column:
    """One dataset: ``dtype`` of an element, ``shape`` after the first (row or atom) axis."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...] = ()
    units: str = ""
    description: str = ""
    width: int = 0  # bytes, for fixed-length UTF-8 strings
    truncate: bool = False  # strings longer than ``width`` are cut (with "…") instead of rejected
    # Optional columns were added after schema version 1 was first written: files without them stay
    # valid (readers return ``fill`` for them; the writer adds them, filled, when it opens such a file).
    optional: bool = False

    @property
    def fill(self) -> object:
        """The value of an optional column in rows written before the column existed."""
        return {"f": np.nan, "i": -1, "b": False}.get(self.dtype.kind, b"")

    @property
    def row_bytes(self) -> int:
        return int(self.dtype.itemsize * int(np.prod(self.shape, dtype=np.int64)))

    @property
    def is_text(self) -> bool:
        return self.dtype.kind == "S"

    @property
    def chunk_rows(self) -> int:
        return _rows(CHUNK_BYTES, self.row_bytes)


def _rows(chunk_bytes: int, row_bytes: int) -> int:
    """Rows of ``row_bytes`` in a chunk of about ``chunk_bytes`` (a power of two, at least MIN_CHUNK_ROWS)."""
    rows = max(MIN_CHUNK_ROWS, chunk_bytes // max(1, row_bytes))
    return 1 << (rows.bit_length() - 1)


def _s(name: str, width: int, description: str, truncate: bool = False, optional: bool = False) -> Column:
    return Column(name, h5py.string_dtype("utf-8", width), (), "", description, width, truncate, optional)


def _f(name: str, units: str, description: str, shape: tuple[int, ...] = ()) -> Column:
    return Column(name, np.dtype("<f8"), shape, units, description)


STRING_COLUMNS: tuple[Column, ...] = (
    _s("task_id", 96, "content hash identifying the task; unique within a file"),
    _s("candidate_id", 96, "identifier of the candidate structure"),
    _s("kind", 16, "candidate | reference | competing"),
    _s("label", 128, "human-readable name"),
    _s("formula", 64, "chemical formula"),
    _s("prototype", 64, "structure prototype"),
    _s("parent", 128, "parent structure/candidate"),
    _s("calculator", 64, "calculator registry name"),
    _s("stage", 32, "relaxation mode of the task (relax)"),
    _s("status", 8, "ok | failed"),
    _s("error", 512, "error message of a failed task (cut to 512 bytes, ending in …)", truncate=True),
    _s("worker", 128, "host:pid that ran the task"),
    _s("params", 1024, "calculator identity as JSON: resolved parameters (preset included) and code version",
       truncate=True, optional=True),
    _s("history", 2048, "error-handler history as JSON: one entry per failed attempt (failure, error, "
       "correction applied); empty when the first attempt succeeded", truncate=True, optional=True),
    _s("configuration", 64, "starting magnetic configuration: fm | re-anti | ud:<u/d per magnetic site>; empty "
       "for calculators without initial moments", truncate=True, optional=True),
    _s("calculation", 16, "what the task computed: relax (empty in older files) | anisotropy", optional=True),
    _s("stage_name", 64, "funnel stage that produced the row ([campaign] stage or a [[stages]] name; empty in "
       "stores written before funnels: the first stage)", optional=True),
    _s("source_task_id", 96, "task id of the previous funnel stage's row this one started from (empty in the "
       "first stage)", optional=True),
    _s("settings_id", 64, "key of the entry of /settings holding the settings that produced the row "
       "(stage, calculator, identity parameters, code version, relaxation); empty if unknown", optional=True),
)
SCALAR_COLUMNS: tuple[Column, ...] = (
    _f("energy", "eV", "total energy of the final structure"),
    _f("energy_per_atom", "eV/atom", "energy / natoms"),
    _f("fmax", "eV/Å", "largest residual atomic force"),
    _f("volume", "Å^3", "cell volume"),
    _f("magmom_total", "μB", "total magnetic moment per cell"),
    Column("steps", np.dtype("<i4"), (), "", "optimizer steps (-1 unknown)"),
    Column("converged", np.dtype(bool), (), "", "relaxation converged"),
    _f("wall_time", "s", "wall time of the task"),
    _f("finished_at", "s", "unix time the task finished"),
    Column("scf_iterations", np.dtype("<i4"), (), "", "SCF iterations summed over the relaxation (-1 unknown)",
           optional=True),
    Column("k1_fine", np.dtype("<f8"), (), "MJ/m^3", "anisotropy K1 = (E(in-plane) - E(along c)) / V with "
           "spin-orbit, finer k-point mesh (anisotropy tasks)", optional=True),
    Column("k1_coarse", np.dtype("<f8"), (), "MJ/m^3", "the same on the coarser k-point mesh", optional=True),
)
ARRAY_COLUMNS: tuple[Column, ...] = (
    _f("stress", "eV/Å^3", "stress, Voigt order xx yy zz yz xz xy", (6,)),
    _f("cell", "Å", "cell vectors as rows", (3, 3)),
    Column("pbc", np.dtype(bool), (3,), "", "periodic boundary conditions"),
)
POINTER_COLUMNS: tuple[Column, ...] = (
    Column("atom_start", np.dtype("<i8"), (), "", "index of the row's first atom in /atoms/*"),
    Column("natoms", np.dtype("<i4"), (), "", "number of atoms of the row"),
)
RECORD_COLUMNS: tuple[Column, ...] = STRING_COLUMNS + SCALAR_COLUMNS + ARRAY_COLUMNS + POINTER_COLUMNS
ATOM_COLUMNS: tuple[Column, ...] = (
    Column("numbers", np.dtype("<i2"), (), "", "atomic numbers"),
    _f("positions", "Å", "Cartesian positions of the final structure", (3,)),
    _f("magmoms", "μB", "atomic magnetic moments, NaN where the calculator gives none"),
)

RECORD_COLUMN_BY_NAME = {c.name: c for c in RECORD_COLUMNS}
OPTIONAL_COLUMNS = tuple(c for c in RECORD_COLUMNS if c.optional)


def missing_optional_columns(f: h5py.File) -> list[Column]:
    """Optional record columns a store file (written before they existed) lacks."""
    return [c for c in OPTIONAL_COLUMNS if c.name not in f[RECORDS]]
ATOM_COLUMN_BY_NAME = {c.name: c for c in ATOM_COLUMNS}


@dataclass(frozen=True)
class TextTable:
    """An append-only keyed table of texts (a group): per entry a ``key``, the ``start`` and ``length`` of its
    UTF-8 text in ``<group>/text`` (uint8, concatenated), and ``extra`` columns; ``<group>/committed`` counts
    the valid entries. Written in SWMR mode like the records (entries first, then the counter)."""

    name: str
    description: str
    extra: tuple[Column, ...] = ()

    @property
    def columns(self) -> tuple[Column, ...]:
        return (*TABLE_ENTRY_COLUMNS, *self.extra)


TABLE_TEXT = Column("text", np.dtype("u1"), (), "", "UTF-8 bytes of every entry's text, concatenated")
TABLE_ENTRY_COLUMNS: tuple[Column, ...] = (
    Column("key", h5py.string_dtype("utf-8", 64), (), "", "the entry's key (a content hash)", 64),
    Column("start", np.dtype("<i8"), (), "", "index of the entry's first byte in text"),
    Column("length", np.dtype("<i8"), (), "", "number of bytes of the entry's text"),
)
SETTINGS_TABLE = TextTable(
    "settings", "settings that produced records, as JSON (stage, calculator, params, version, relax), keyed by "
                "their hash; records/settings_id points here")
CAMPAIGNS_TABLE = TextTable(
    "campaigns", "every distinct campaign text the file was run with, keyed by its SHA-256; the current one is "
                 "the entry with the largest last_used",
    (_f("first_used", "s", "unix time the text was first used"),
     _f("last_used", "s", "unix time the text was last made the current one")))
TEXT_TABLES: tuple[TextTable, ...] = (SETTINGS_TABLE, CAMPAIGNS_TABLE)


def missing_tables(f: h5py.File) -> list[TextTable]:
    """Text tables a store file (written before they existed) lacks; readers treat them as empty."""
    return [t for t in TEXT_TABLES if t.name not in f]
STATUS_COLUMN = "status"


def encode_str(text: str, column: Column) -> bytes:
    """UTF-8 bytes of ``text`` fitting ``column.width``; cut on a character boundary if allowed.

    Raises ValueError when the text is too long for a column that does not truncate.
    """
    raw = text.encode("utf-8")
    if len(raw) <= column.width:
        return raw
    if not column.truncate:
        raise ValueError(f"{len(raw)} bytes in UTF-8, longer than the {column.width} bytes stored")
    mark = ELLIPSIS.encode("utf-8")
    cut = raw[: column.width - len(mark)].decode("utf-8", errors="ignore").encode("utf-8")
    return cut + mark


def new_file_attrs(campaign_text: str, version: int = SCHEMA_VERSION) -> dict[str, object]:
    """The file attributes of a freshly created store."""
    from tansaku import __version__

    return {
        "schema_version": version,
        "tansaku_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "campaign": campaign_text,
        "store_id": uuid.uuid4().hex,  # ties side files (derived columns) to this store, not to its name
    }


# ------------------------------------------------------------------------------------------- layouts

# Version 2. Unfiltered chunks are rewritten in place by a flush (no SWMR leak) and read fastest, so the
# queried one-value-per-row columns stay unfiltered; compressed chunks are rewritten elsewhere on each
# flush while partly filled, so they are sized to a few appends of a few hundred records.
V2_FIXED_TEXT = frozenset({"status", "kind"})  # short, from a closed set: fixed-width as in version 1
# Chunk sizes (uncompressed) are a compromise between reading a few scattered rows (a query's top
# rows: each touched chunk is read and inflated whole) and reading whole columns (per-chunk overhead).
V2_PLAIN_BYTES = 1 << 15  # unfiltered chunks of one-value-per-row columns
V2_SPAN_BYTES = 1 << 13  # compressed chunks of text spans (512 rows)
V2_PACKED_BYTES = 1 << 15  # compressed chunks of the other /records datasets (cell, stress, pbc, kind)
V2_TEXT_BYTES = 1 << 12  # compressed chunks of /text buffers
V2_ATOM_BYTES = 1 << 17  # compressed chunks of /atoms
V2_LEVEL = 1  # gzip level: as small as level 4 on these columns, ~2x faster to write
# Version 3: version 2's datasets and chunks, compressed by Blosc (LZ4 + byte shuffle) instead of
# shuffle + gzip: ~6x less CPU per stored byte (gzip was ~60 % of an append), files ~1.3x larger.
BLOSC = 32001  # HDF5 filter id of Blosc (registered by the hdf5plugin package; see require_filters)
BLOSC_LZ4 = 1  # Blosc's compressor code of LZ4
V3_LEVEL = 5  # Blosc level: as fast as level 1 with LZ4, smaller files
# LZ4 inflates a chunk in microseconds, so version 3 uses chunks 2-4x larger than version 2 (HDF5's cost
# per chunk, ~10 us, then dominates both appends and whole-column reads); a query's top rows still read
# only the chunks they are in. Measured at 10^6 records (benchmarks/bench_store.py).
V3_SPAN_BYTES = 1 << 15  # 2048 rows
V3_PACKED_BYTES = 1 << 16
V3_TEXT_BYTES = 1 << 14
V3_ATOM_BYTES = 1 << 18
SPAN = np.dtype("<i8")  # a ragged text value: [start, stop) in its /text buffer, shape (2,)


@dataclass(frozen=True)
class Stored:
    """How one dataset is stored: element dtype, shape after the first axis, chunk rows, compression
    level (0: unfiltered), whether bytes are shuffled first, and the codec ("gzip": HDF5's shuffle and
    deflate filters; "blosc": the Blosc filter with LZ4, shuffling inside Blosc)."""

    dtype: np.dtype
    shape: tuple[int, ...]
    chunk_rows: int
    level: int
    shuffle: bool = True
    codec: str = "gzip"


@dataclass(frozen=True)
class Layout:
    """The on-disk layout of one schema version (see the module docstring)."""

    version: int

    def ragged(self, c: Column) -> bool:
        """Whether text column ``c`` is a span into ``/text/<name>`` (else fixed-width bytes)."""
        return self.version >= 2 and c.is_text and c.name not in V2_FIXED_TEXT

    @property
    def codec(self) -> str:
        return "blosc" if self.version >= 3 else "gzip"

    @property
    def level(self) -> int:
        return V3_LEVEL if self.version >= 3 else V2_LEVEL

    def _bytes(self, v2: int, v3: int) -> int:
        return v3 if self.version >= 3 else v2

    def record(self, c: Column) -> Stored:
        if self.version == 1:
            return Stored(c.dtype, c.shape, c.chunk_rows, COMPRESSION_LEVEL)
        if self.ragged(c):
            return Stored(SPAN, (2,), _rows(self._bytes(V2_SPAN_BYTES, V3_SPAN_BYTES), 2 * SPAN.itemsize), self.level,
                          codec=self.codec)
        if not c.shape and c.name != "kind":
            return Stored(c.dtype, (), _rows(V2_PLAIN_BYTES, c.row_bytes), 0)
        return Stored(c.dtype, c.shape, _rows(self._bytes(V2_PACKED_BYTES, V3_PACKED_BYTES), c.row_bytes), self.level,
                      codec=self.codec)

    def atom(self, c: Column) -> Stored:
        if self.version == 1:
            return Stored(c.dtype, c.shape, c.chunk_rows, COMPRESSION_LEVEL)
        return Stored(c.dtype, c.shape, _rows(self._bytes(V2_ATOM_BYTES, V3_ATOM_BYTES), c.row_bytes), self.level,
                      codec=self.codec)

    def text(self) -> Stored:
        return Stored(np.dtype(np.uint8), (), self._bytes(V2_TEXT_BYTES, V3_TEXT_BYTES), self.level, shuffle=False,
                      codec=self.codec)

    def ragged_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in RECORD_COLUMNS if self.ragged(c))


LAYOUTS = {v: Layout(v) for v in VERSIONS}


def layout_of(f: h5py.File) -> Layout:
    """The layout of an open store whose version ``check_schema`` (read.py) accepted."""
    return LAYOUTS[int(f.attrs["schema_version"])]


def require_filters() -> None:
    """Register the Blosc filter of schema version 3 with HDF5 (the ``hdf5plugin`` package, imported
    here, lazily: versions 1 and 2 need only HDF5's own filters). Raises StoreError if it is missing."""
    try:
        import hdf5plugin  # noqa: F401  (importing it registers its filters)
    except ImportError:
        from tansaku.results.errors import StoreError

        raise StoreError("schema version 3 stores are compressed with Blosc: install the hdf5plugin package "
                         "(pip install hdf5plugin)") from None


def _create_appendable(group: h5py.Group, name: str, stored: Stored) -> h5py.Dataset:
    """An empty, extendable, chunked dataset, compressed unless ``stored.level`` is 0 (low-level API:
    h5py's create_dataset would pick its own chunk shape)."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_chunk((stored.chunk_rows, *stored.shape))
    if stored.level and stored.codec == "blosc":
        require_filters()
        # (4 values Blosc's set_local fills in: versions, element size, chunk bytes), level, shuffle, LZ4
        dcpl.set_filter(BLOSC, h5py.h5z.FLAG_MANDATORY,
                        (0, 0, 0, 0, stored.level, int(stored.shuffle), BLOSC_LZ4))
    elif stored.level:
        if stored.shuffle:
            dcpl.set_shuffle()
        dcpl.set_deflate(stored.level)
    space = h5py.h5s.create_simple((0, *stored.shape), (h5py.h5s.UNLIMITED, *stored.shape))
    tid = h5py.h5t.py_create(stored.dtype, logical=True)
    h5py.h5d.create(group.id, name.encode(), tid, space, dcpl=dcpl)
    return group[name]


def create_column(f: h5py.File, layout: Layout, group: str, c: Column) -> None:
    """Create the (empty) dataset(s) of column ``c`` of ``group`` (RECORDS or ATOMS) in ``f``: for a
    ragged text column also its ``/text`` buffer."""
    stored = layout.record(c) if group == RECORDS else layout.atom(c)
    ds = _create_appendable(f.require_group(group), c.name, stored)
    if c.units:
        ds.attrs["units"] = c.units
    ds.attrs["description"] = c.description
    if group == RECORDS and layout.ragged(c):
        ds.attrs["text"] = f"/{TEXT}/{c.name}"
        _create_appendable(f.require_group(TEXT), c.name, layout.text()).attrs["description"] = (
            f"UTF-8 bytes of column {c.name}, concatenated; row i is [start, stop) = /{RECORDS}/{c.name}[i]")


def _create_columns(group: h5py.Group, columns: tuple[Column, ...]) -> None:
    """The datasets of a text table (small: stored as in schema version 1, whatever the file's version)."""
    for c in columns:
        ds = _create_appendable(group, c.name, Stored(c.dtype, c.shape, c.chunk_rows, COMPRESSION_LEVEL))
        if c.units:
            ds.attrs["units"] = c.units
        ds.attrs["description"] = c.description


def create_layout(f: h5py.File, attrs: dict[str, object]) -> None:
    """Create every group and (empty) dataset of the schema version ``attrs["schema_version"]`` in ``f``
    and set the file ``attrs``."""
    layout = LAYOUTS[int(attrs["schema_version"])]
    for group, columns in ((RECORDS, RECORD_COLUMNS), (ATOMS, ATOM_COLUMNS)):
        f.create_group(group)
        for c in columns:
            create_column(f, layout, group, c)
    ds = f.create_dataset(COMMITTED, data=np.zeros(1, np.int64))
    ds.attrs["description"] = "number of committed rows; rows at or beyond it are not valid"
    for table in TEXT_TABLES:
        g = f.create_group(table.name)
        g.attrs["description"] = table.description
        _create_columns(g, (*table.columns, TABLE_TEXT))
        ds = g.create_dataset(COMMITTED, data=np.zeros(1, np.int64))
        ds.attrs["description"] = "number of valid entries; entries at or beyond it are not valid"
    for key, value in attrs.items():
        f.attrs[key] = value
