"""The single writer of a results file: batched, crash-safe appends in SWMR mode.

Commit protocol (docs/hdf5_schema.md): a batch's atoms and rows are written beyond the committed end
and flushed, then ``/committed`` is raised and flushed again. Readers only look at rows [0, committed),
so a kill at any moment leaves every committed row intact; rows beyond it are overwritten later.
A stored "failed" row is rewritten in place: its new atoms (and, in schema version 2, its text) go to the
end of their datasets, its columns are written and flushed with the status column last, so until the
rewrite is complete the row reads "failed". Where rows, atoms and text go is writer.Writer's job, in the
file's own schema version; ``upgrade`` converts a version-1 file.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import h5py
import numpy as np
from h5py import h5f, h5p

from tansaku.results.derived import remove_derived, remove_stale_derived_temporary
from tansaku.results.errors import StoreError
from tansaku.results.lock import WriterLock
from tansaku.results.pack import Batch, concat, pack
from tansaku.results.read import check_schema, committed_rows, damaged, open_for_reading, read_columns
from tansaku.results.record import STATUS_FAILED, STATUS_OK, Record
from tansaku.results.recover import (
    is_crashed_writer_error,
    remove_stale_temporaries,
    rewrite,
    write_new_file,
)
from tansaku.results.schema import (
    CAMPAIGNS_TABLE,
    COMMITTED,
    SCHEMA_VERSION,
    SETTINGS_TABLE,
    STATUS_COLUMN,
    TABLE_TEXT,
    TextTable,
    missing_optional_columns,
    missing_tables,
    new_file_attrs,
)
from tansaku.results.tables import committed_entries, current_entry, read_entries, text_key
from tansaku.results.writer import ColumnWriter, Writer

log = logging.getLogger(__name__)

COMPACT_SLACK = 1 << 20  # bytes of leaked space always tolerated at close
# While open, a store is compacted (closed, rewritten, reopened, under the same lock) once its file is
# more than BLOAT_FACTOR times its live data + BLOAT_SLACK: small appends leak tens of kB each (SWMR
# never reuses the space of rewritten chunks), so a long campaign of one-record appends would otherwise
# grow the file by GBs before close compacts it. Each compaction copies the live data once; the next
# comes after the leak again exceeds (BLOAT_FACTOR - 1) x live + BLOAT_SLACK, so the copies cost at most
# ~1/(BLOAT_FACTOR - 1) of the bytes written.
BLOAT_FACTOR = 4
BLOAT_SLACK = 64 << 20
WRITER_CHUNK_CACHE = 64 * 1024  # bytes of HDF5 chunk cache per dataset of the writer


def _open_swmr_writer(path: Path) -> h5py.File:
    """Open ``path`` read-write directly in SWMR mode (never in a non-SWMR write session).

    HDF5's own file locking is off: readers holding the file open would otherwise block the writer,
    and the single writer is guaranteed by WriterLock instead. The access flags match those of
    ``open_for_reading``, so a reader in the writer's own process can share the open file.
    """
    fapl = h5p.create(h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5f.LIBVER_LATEST, h5f.LIBVER_LATEST)
    fapl.set_file_locking(False, False)
    # chunk cache 64 kB per dataset (HDF5's default 1 MB filled up as a campaign grew: +70 MB of writer RSS
    # over 40k records, benchmarks/bench_load.py); appends only touch the last ~4 kB chunk of each column
    fapl.set_cache(0, 521, WRITER_CHUNK_CACHE, 0.75)
    fid = h5f.open(os.fsencode(path), h5f.ACC_RDWR | h5f.ACC_SWMR_WRITE, fapl=fapl)
    return h5py.File(fid)


class _TableWriter:
    """Appends entries to one text table (schema.TextTable) of the open store, in SWMR mode: ``write``
    puts entries beyond the committed ones, ``commit`` raises the counter (the caller flushes between)."""

    def __init__(self, h5: h5py.File, table: TextTable) -> None:
        group = h5[table.name]
        self.cols = {c.name: ColumnWriter(group[c.name]) for c in table.columns}
        self.text = ColumnWriter(group[TABLE_TEXT.name])
        self.counter = group[COMMITTED]
        self.entries = read_entries(h5, table)
        self.n = committed_entries(h5, table)
        self.end = max((int(s + n) for s, n in zip(self.cols["start"].ds[:self.n], self.cols["length"].ds[:self.n])),
                       default=0)
        self.row = {e.key: i for i, e in enumerate(self.entries)}

    def write(self, entries: Sequence[tuple[str, str, dict[str, float]]]) -> None:
        """Write ``(key, text, extra columns)`` entries (keys not stored yet) after the committed ones."""
        raw = [text.encode("utf-8") for _, text, _ in entries]
        lengths = np.array([len(r) for r in raw], np.int64)
        starts = self.end + np.cumsum(lengths) - lengths
        self.text.write(self.end, np.frombuffer(b"".join(raw), np.uint8))
        values = {"key": np.array([k.encode("utf-8") for k, _, _ in entries], dtype=self.cols["key"].dtype),
                  "start": starts, "length": lengths}
        for name in self.cols:
            if name not in values:
                values[name] = np.array([extra[name] for _, _, extra in entries], float)
        for name, col in self.cols.items():
            col.write(self.n, values[name])
        for i, (key, _, _) in enumerate(entries):
            self.row[key] = self.n + i
        self.n += len(entries)
        self.end += int(lengths.sum())

    def commit(self) -> None:
        self.counter[0] = self.n


class Store:
    """The writer of one results file; open it with ``Store.open`` (a context manager)."""

    def __init__(self, path: Path, h5: h5py.File, lock: WriterLock) -> None:
        self.path = path
        self._lock = lock
        self._n = committed_rows(h5)
        self._attach(h5, self._n)
        self._compact_at = self._bloat_limit()
        cols = read_columns(h5, ["task_id", STATUS_COLUMN])
        # The index: every committed task_id, and the rows of the failed ones (the only rows a later append
        # may rewrite). A set and a small dict cost far less per appended record than a dict of every row.
        self._ids: set[str] = set(cols["task_id"].tolist())
        self._failed: dict[str, int] = {
            t: row for row, (t, s) in enumerate(zip(cols["task_id"].tolist(), cols[STATUS_COLUMN].tolist()))
            if s != STATUS_OK
        }

    def _attach(self, h5: h5py.File, n: int) -> None:
        """Use the open file ``h5`` (``n`` committed rows): its counter, settings table and datasets."""
        self._f = h5
        self._committed = h5[COMMITTED]
        self._settings = _TableWriter(h5, SETTINGS_TABLE)
        self._writer = Writer(h5, n)
        self._rec = self._writer.rec

    def _bloat_limit(self) -> int:
        """File size beyond which the open store is compacted (see BLOAT_FACTOR)."""
        return BLOAT_FACTOR * self._writer.storage_size() + BLOAT_SLACK

    def _compact_if_bloated(self) -> None:
        """Compact the open store when its file has grown past the limit: close it (a clean file), rewrite
        it by the atomic copy of crash recovery and reopen it, keeping the writer lock throughout. A kill
        at any moment leaves the old file or the compacted one, every committed row in both."""
        try:
            size = self.path.stat().st_size
        except OSError:  # moved or deleted under the writer: it goes on writing the file it has open
            return
        if size <= self._compact_at:
            return
        if size > self._bloat_limit():
            self._f.close()
            try:
                rewrite(self.path)
            except (OSError, StoreError) as e:  # the file is intact, only larger than needed
                log.warning("could not compact %s: %s", self.path, e)
            self._attach(_open_swmr_writer(self.path), self._n)
        self._compact_at = max(self._bloat_limit(), self.path.stat().st_size + BLOAT_SLACK // 4)

    @classmethod
    def open(cls, path: str | os.PathLike, campaign_text: str | None = None) -> Store:
        """Create ``path`` or reopen it for appending, recovering it first if a writer was killed.

        ``campaign_text`` (the campaign TOML) is stored as the ``campaign`` attribute; when it differs
        from the stored one, the file is rewritten with the new text (an atomic copy). Raises
        StoreLockedError if another process is writing the file.
        """
        path = Path(path)
        lock = WriterLock(path)
        lock.acquire()
        try:
            remove_stale_temporaries(path)
            remove_stale_derived_temporary(path)
            if not path.exists():
                remove_derived(path)  # a ranking of an earlier store of this name does not apply
                write_new_file(path, new_file_attrs(campaign_text or ""))
            try:
                h5 = _open_swmr_writer(path)
            except OSError as e:
                if not is_crashed_writer_error(e):
                    raise damaged(path, e) from None
                log.warning("%s was left open by a killed writer: recovering its committed rows", path)
                rewrite(path)
                h5 = _open_swmr_writer(path)
            try:
                check_schema(h5)
                if missing_optional_columns(h5) or missing_tables(h5):  # written before those existed: add them
                    h5.close()
                    rewrite(path)
                    h5 = _open_swmr_writer(path)
                store = cls(path, h5, lock)
                if campaign_text is not None:
                    store._use_campaign(campaign_text)
                return store
            except BaseException:
                h5.close()
                raise
        except BaseException:
            lock.release()
            raise

    def _use_campaign(self, text: str) -> None:
        """Make ``text`` the current campaign: appended to /campaigns if new, else its last_used raised
        (nothing is written when it is already the current one)."""
        key, now = text_key(text), time.time()
        table = _TableWriter(self._f, CAMPAIGNS_TABLE)
        current = current_entry(table.entries)
        if current is not None and current.key == key:
            return
        if key in table.row:
            table.cols["last_used"].ds[table.row[key]] = now
        else:
            table.write([(key, text, {"first_used": now, "last_used": now})])
            self._f.flush()
            table.commit()
        self._f.flush()

    def _new_settings(self, batch: Batch) -> list[tuple[str, str, dict[str, float]]]:
        """(settings_id, settings JSON, {}) of the batch's settings not in /settings yet."""
        return [(k, v, {}) for k, v in batch.settings.items() if k not in self._settings.row]

    def append(self, records: Sequence[Record]) -> None:
        """Write and commit ``records`` as one batch; all or nothing.

        A task_id stored as "failed" is rewritten in place; one stored as "ok" raises ValueError, as does
        any invalid record (naming its task_id and field) -- in both cases before anything is written.
        """
        self._check_open()
        self.append_packed(pack(records))

    def append_packed(self, batch: Batch | Sequence[Batch]) -> None:
        """``append`` of records already validated and packed by ``tansaku.results.pack.pack`` (so that
        packing can happen elsewhere, e.g. while the previous batch is written). A sequence of batches
        (e.g. those queued while the previous commit was written) is committed as one batch: a commit
        costs ~60 dataset writes and two flushes whatever its size."""
        self._check_open()
        self._compact_if_bloated()  # between commits: what the earlier appends leaked
        if not isinstance(batch, Batch):
            batch = concat(batch)
        new, redo, redo_rows = [], [], []
        ids = batch.task_ids
        fresh = self._ids.isdisjoint(ids)  # the usual case, without a Python step per record
        for i, tid in enumerate(() if fresh else ids):
            if tid not in self._ids:
                new.append(i)
            elif tid in self._failed:
                redo.append(i)
                redo_rows.append(self._failed[tid])
            else:
                raise ValueError(f"task {tid!r} is already stored with status 'ok'; skip it")
        if fresh:
            new = range(len(ids))
        if not len(batch):
            return
        settings = self._new_settings(batch)
        if settings:  # entries before the rows that point at them (committed by their own counter first)
            self._settings.write(settings)
            self._f.flush()
            self._settings.commit()

        rows = self._writer.place(batch)
        n0, k = self._n, len(new)
        if k:
            self._writer.write_rows(n0, rows if k == len(batch) else {n: v[new] for n, v in rows.items()})
        if redo:
            self._f.flush()  # the new atoms exist before any committed row points at them
            order = np.argsort(redo_rows)
            where, take = np.asarray(redo_rows)[order], np.asarray(redo)[order]
            for name, col in self._rec.items():
                if name != STATUS_COLUMN:
                    col.ds[where] = rows[name][take]
        self._f.flush()
        if redo:
            self._rec[STATUS_COLUMN].ds[where] = rows[STATUS_COLUMN][take]
        self._committed[0] = n0 + k
        self._f.flush()

        self._n = n0 + k
        self._ids.update(ids)
        failed = np.flatnonzero(rows[STATUS_COLUMN] != STATUS_OK.encode()).tolist()
        if fresh:
            self._failed.update((ids[i], n0 + i) for i in failed)
            return
        at = {i: n0 + j for j, i in enumerate(new)} | dict(zip(redo, redo_rows))
        for i in redo:
            self._failed.pop(ids[i])  # rewritten as ok, or as failed again (put back below)
        self._failed.update((ids[i], at[i]) for i in failed)

    def statuses(self) -> dict[str, str]:
        """task_id -> status ("ok" | "failed") of every committed row, for resuming a campaign."""
        return dict.fromkeys(self._ids, STATUS_OK) | dict.fromkeys(self._failed, STATUS_FAILED)

    def __len__(self) -> int:
        return self._n

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._ids

    @property
    def closed(self) -> bool:
        return not self._lock.held

    def close(self, compact: bool | None = None) -> None:
        """Close the file (clearing its open-for-write flag) and release the writer lock.

        ``compact``: rewrite the file without the space SWMR appends leaked (see schema.CHUNK_BYTES);
        by default only when the file is more than twice its live data (+ 1 MiB).
        """
        if self.closed:
            return
        try:
            live = self._writer.storage_size()
            self._f.close()
            if compact or (compact is None and self.path.stat().st_size > 2 * live + COMPACT_SLACK):
                try:
                    rewrite(self.path)
                except (OSError, StoreError) as e:  # the file is intact, only larger than needed
                    log.warning("could not compact %s: %s", self.path, e)
        finally:
            self._lock.release()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"store {self.path} is closed")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def upgrade(path: str | os.PathLike) -> tuple[int, int, int]:
    """Rewrite the store at ``path`` in the current schema version (``SCHEMA_VERSION``), by the same
    atomic copy as crash recovery, under the writer lock (StoreLockedError while a run writes it); the
    side file of derived columns still applies. Returns (old version, new version, rows). A store already
    in the current version is left as it is."""
    path = Path(path)
    open_for_reading(path).close()  # a missing, damaged or newer file: its error, before any lock file
    lock = WriterLock(path)
    lock.acquire()
    try:
        remove_stale_temporaries(path)
        with open_for_reading(path) as f:
            version, rows = int(f.attrs["schema_version"]), committed_rows(f)
        if version != SCHEMA_VERSION:
            rows = rewrite(path, {"schema_version": SCHEMA_VERSION})
        return version, SCHEMA_VERSION, rows
    finally:
        lock.release()
