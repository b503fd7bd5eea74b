"""Writing rows into the datasets of an open store file, in the file's own schema version's layout.

``Writer`` places a batch's atoms and ragged text after the used part of their datasets and writes row
values; it neither flushes nor commits (the commit protocol is Store.append's, in store.py). Used by the
Store and by the conversion of a file to another schema version (recover.py).
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat

import h5py
import numpy as np
from h5py import h5s

from tansaku.results.pack import Batch
from tansaku.results.read import atoms_end, text_end
from tansaku.results.schema import (
    ATOM_COLUMNS,
    ATOMS,
    RECORD_COLUMNS,
    RECORDS,
    STRING_COLUMNS,
    TEXT,
    layout_of,
)

DIRECT_MIN_CHUNKS = 2  # a write covering at least this many whole chunks compresses them itself


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool() -> ThreadPoolExecutor:
    """Threads for zlib (which releases the GIL): whole chunks of a large append are compressed in parallel.
    One pool per process: a forked child does not inherit the parent's threads."""
    pid = os.getpid()
    if pid not in _POOLS:
        _POOLS.clear()
        _POOLS[pid] = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)),
                                         thread_name_prefix="tansaku-deflate")
    return _POOLS[pid]


def _deflate(chunk: np.ndarray, shuffle: bool, level: int) -> bytes:
    """``chunk`` as HDF5's shuffle + deflate filters store it (byte planes of the elements, then a zlib
    stream), so that it can be written with H5Dwrite_chunk and read back by any HDF5."""
    size = chunk.dtype.itemsize
    raw = np.ascontiguousarray(chunk.view(np.uint8).reshape(-1, size).T) if shuffle and size > 1 else chunk
    return zlib.compress(raw.tobytes() if isinstance(raw, np.ndarray) else raw, level)


class ColumnWriter:
    """A dataset written through the low-level API, its shape and dtype cached: h5py's ``ds[a:b] = v``
    and ``ds.shape`` cost ~0.1 ms of Python per call, most of a one-record append.

    With ``direct``, the whole chunks a write covers of a shuffled+gzipped dataset are compressed here, in
    threads, and written as they are (H5Dwrite_chunk): HDF5 would compress them one after the other in
    its flush. The partly covered chunks at either end go through HDF5 as usual.
    """

    def __init__(self, ds: h5py.Dataset, grow: bool = False, direct: bool = False) -> None:
        self.ds, self.length, self.tail, self.dtype = ds, ds.shape[0], ds.shape[1:], ds.dtype
        self.chunk = ds.chunks[0]
        self.grow = self.chunk if grow else 0
        dcpl = ds.id.get_create_plist()
        filters = {dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())}
        self.direct = direct and ds.compression == "gzip" and filters <= {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE}
        self.level, self.shuffle = (ds.compression_opts or 0), bool(ds.shuffle)
        self._space: h5s.SpaceID | None = None

    def write(self, start: int, values: np.ndarray) -> None:
        """Write ``values`` at rows [start, start + len(values)), extending the dataset if needed
        (with ``grow``, by at least a quarter and a chunk, so that most appends do not resize)."""
        if not len(values):
            return
        end = start + len(values)
        if self.length < end:  # it may be longer: rows left beyond the committed ones by a crash
            if self.grow:
                end = max(end, self.length + max(self.length // 4, self.grow))
            self.ds.id.set_extent((end, *self.tail))
            self.length = end
            self._space = None
        values = np.ascontiguousarray(values, dtype=self.dtype)
        c = self.chunk
        first, last = -(-start // c) * c, (start + len(values)) // c * c  # whole chunks: rows [first, last)
        if self.direct and last - first >= DIRECT_MIN_CHUNKS * c:
            self._hyperslab(start, values[: first - start])
            blocks = [values[a - start : a - start + c] for a in range(first, last, c)]
            for a, data in zip(range(first, last, c), _pool().map(_deflate, blocks, repeat(self.shuffle),
                                                                  repeat(self.level))):
                self.ds.id.write_direct_chunk((a,) + (0,) * len(self.tail), data)
            self._hyperslab(last, values[last - start :])
        else:
            self._hyperslab(start, values)

    def _hyperslab(self, start: int, values: np.ndarray) -> None:
        if not len(values):
            return
        if self._space is None:
            self._space = self.ds.id.get_space()  # the file's dataspace, kept until the next resize
        self._space.select_hyperslab((start,) + (0,) * len(self.tail), values.shape)
        self.ds.id.write(h5s.create_simple(values.shape), self._space, values)


class Writer:
    """The datasets of one open store file (in its own schema version's layout) and where their used
    part ends: places a batch's atoms and text, and writes rows. It neither flushes nor commits."""

    def __init__(self, h5: h5py.File, n: int, grow: bool | None = None) -> None:
        """``n``: the committed rows. ``grow``: extend datasets ahead of need (default: in version 2; a
        version-1 file keeps its exact extents)."""
        layout = layout_of(h5)
        grow = layout.version >= 2 if grow is None else grow
        direct = layout.version >= 2  # version 1 files are written by HDF5's filters alone, as they were
        self.rec = {c.name: ColumnWriter(h5[f"{RECORDS}/{c.name}"], grow, direct) for c in RECORD_COLUMNS}
        self.atoms = {c.name: ColumnWriter(h5[f"{ATOMS}/{c.name}"], grow, direct) for c in ATOM_COLUMNS}
        self.text = {c.name: ColumnWriter(h5[f"{TEXT}/{c.name}"], grow, direct) for c in layout.ragged_columns()}
        self.atoms_end = atoms_end(h5, n)
        self.text_end = {name: text_end(h5, name, n) for name in self.text}

    def place(self, batch: Batch) -> dict[str, np.ndarray]:
        """Write the batch's atoms and ragged text after the used ones; the values of every record column
        for the batch's rows (atom_start and text spans pointing at what was just written)."""
        counts = batch.rows["natoms"]
        a0 = self.atoms_end
        self.atoms_end = a0 + int(counts.sum())  # never hand these out again, even if the append fails
        for name, col in self.atoms.items():
            col.write(a0, batch.atoms[name])
        rows = {**batch.rows, "atom_start": a0 + np.cumsum(counts) - counts}
        for c in STRING_COLUMNS:
            text = batch.text[c.name]
            if c.name not in self.text:
                rows[c.name] = text.fixed(c.width).astype(c.dtype)  # carries the UTF-8 tag h5py needs
                continue
            t0 = self.text_end[c.name]
            self.text_end[c.name] = t0 + len(text.data)
            self.text[c.name].write(t0, text.data)
            start = t0 + text.offsets
            rows[c.name] = np.stack([start, start + text.lengths], axis=1)
        return rows

    def write_rows(self, start: int, rows: dict[str, np.ndarray]) -> None:
        for name, col in self.rec.items():
            col.write(start, rows[name])

    def storage_size(self) -> int:
        return sum(col.ds.id.get_storage_size() for part in (self.rec, self.atoms, self.text) for col in part.values())


