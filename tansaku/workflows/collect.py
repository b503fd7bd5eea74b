"""Merge shard files (written by detached workers) into the campaign store, idempotently by task id.

Shards live in ``<output stem>.shards/`` next to the store by default (``shards_dir``); each is a normal
results store with one writer. Merging a record:

- task id not in the store: appended;
- stored "ok": skipped (collecting twice, or a task run twice, changes nothing and is no error);
- stored "failed" and the shard's record is "ok": the row is replaced (a newer ok result wins);
  a failed record never replaces anything.

A shard still being written (its writer lock is held) or left by a killed writer is read up to its
committed rows; a damaged one is skipped. Either is reported, and collecting later picks up the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tansaku.results import Store, StoreError, StoreLockedError, iter_records
from tansaku.results.lock import WriterLock
from tansaku.results.read import committed_rows, open_for_reading
from tansaku.results.record import STATUS_OK, Record
from tansaku.results.tables import settings_table

SHARDS_SUFFIX = ".shards"
BATCH = 256


def shards_dir(output: Path) -> Path:
    """The default folder of a store's shards: ``<output stem>.shards/`` next to it."""
    return output.with_name(output.stem + SHARDS_SUFFIX)


def shard_files(folder: Path) -> list[Path]:
    """The shard stores in ``folder`` (``*.h5``, sorted by name; lock and temporary files left out)."""
    return sorted(p for p in folder.glob("*.h5") if p.is_file()) if folder.is_dir() else []


def being_written(path: Path) -> bool:
    """Whether a live process holds the shard's writer lock."""
    lock = WriterLock(path)
    try:
        lock.acquire()
    except StoreLockedError:
        return True
    except OSError:
        return False  # read-only folder: nobody can be writing there through tansaku
    lock.release()
    return False


@dataclass
class ShardReport:
    path: str
    rows: int = 0  # committed rows read
    added: int = 0
    replaced: int = 0  # failed rows in the store replaced by ok records
    skipped: int = 0  # already stored ok (or failed in both)
    note: str = ""  # "being written", "damaged: ..."


@dataclass
class CollectSummary:
    shards: list[ShardReport] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(s.added for s in self.shards)

    @property
    def replaced(self) -> int:
        return sum(s.replaced for s in self.shards)

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.shards)


def collect(output: Path, folder: Path | None = None, campaign_text: str | None = None) -> CollectSummary:
    """Merge every shard of ``folder`` (default ``shards_dir(output)``) into the store ``output``."""
    folder = shards_dir(output) if folder is None else folder
    summary = CollectSummary()
    output.parent.mkdir(parents=True, exist_ok=True)
    with Store.open(output, campaign_text=campaign_text) as store:
        statuses = store.statuses()
        for path in shard_files(folder):
            report = ShardReport(str(path))
            summary.shards.append(report)
            if path.resolve() == output.resolve():
                report.note = "is the store itself: skipped"
                continue
            if being_written(path):
                report.note = "being written: read up to its committed rows"
            try:
                _merge(store, statuses, path, report)
            except (StoreError, OSError, KeyError, ValueError, IndexError, RuntimeError) as exc:
                report.note = f"damaged, {report.rows} rows read before the error: {exc}"
    return summary


def _merge(store: Store, statuses: dict[str, str], path: Path, report: ShardReport) -> None:
    with open_for_reading(path) as f:
        n = committed_rows(f)
        settings = settings_table(f)  # merged by key: the store adds the entries it lacks with the records
        batch: dict[str, Record] = {}
        for record in iter_records(f, range(n)):
            report.rows += 1
            record.settings = settings.get(record.settings_id, "")
            stored = statuses.get(record.task_id)
            pending = batch.get(record.task_id)
            if stored == STATUS_OK or (stored is not None and record.status != STATUS_OK) or (
                    pending is not None and (pending.status == STATUS_OK or record.status != STATUS_OK)):
                report.skipped += 1
                continue
            if pending is None and stored is None:
                report.added += 1
            else:
                report.replaced += stored is not None and pending is None
            batch[record.task_id] = record
            if len(batch) >= BATCH:
                _append(store, statuses, batch)
        _append(store, statuses, batch)


def _append(store: Store, statuses: dict[str, str], batch: dict[str, Record]) -> None:
    if batch:
        store.append(list(batch.values()))
        statuses.update({tid: r.status for tid, r in batch.items()})
        batch.clear()
