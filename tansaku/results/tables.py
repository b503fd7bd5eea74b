"""Reading the store's keyed text tables: ``/settings`` (which settings produced each record) and
``/campaigns`` (every campaign text the file was run with). Layout: ``schema.TextTable``; written by
``store.Store`` (SWMR appends) and copied by ``recover`` rewrites. Files that predate the tables read as
having empty ones."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import h5py
import numpy as np

from tansaku.results.read import Source, _dataset, _reading
from tansaku.results.schema import (
    CAMPAIGNS_TABLE,
    COMMITTED,
    SETTINGS_TABLE,
    TABLE_TEXT,
    TextTable,
)


@dataclass(frozen=True)
class TableEntry:
    key: str
    text: str
    extra: dict[str, float] = field(default_factory=dict)  # the table's extra columns (e.g. first_used)


def text_key(text: str) -> str:
    """The key of a campaign text: its SHA-256 (hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def committed_entries(f: h5py.File, table: TextTable) -> int:
    """The number of valid entries of ``table`` in the open store (0 when the file predates it)."""
    if table.name not in f:
        return 0
    return int(_dataset(f, f"{table.name}/{COMMITTED}")[0])


def read_entries(f: h5py.File, table: TextTable) -> list[TableEntry]:
    """The committed entries of ``table`` in an open store, in the order they were written."""
    n = committed_entries(f, table)
    if not n:
        return []
    cols = {c.name: _dataset(f, f"{table.name}/{c.name}")[:n] for c in table.columns}
    end = int((cols["start"] + cols["length"]).max())
    raw = _dataset(f, f"{table.name}/{TABLE_TEXT.name}")[:end].tobytes()
    keys = [k.decode("utf-8") if isinstance(k, bytes) else str(k) for k in cols["key"].tolist()]
    extras = [c.name for c in table.extra]
    return [TableEntry(keys[i], raw[int(cols["start"][i]):int(cols["start"][i] + cols["length"][i])].decode("utf-8"),
                       {name: float(cols[name][i]) for name in extras}) for i in range(n)]


def settings_table(source: Source) -> dict[str, str]:
    """settings_id -> the settings that produced records (JSON text), of the committed entries."""
    with _reading(source) as f:
        return {e.key: e.text for e in read_entries(f, SETTINGS_TABLE)}


def resolve_settings(source: Source, settings_id: str) -> dict | None:
    """The settings (parsed JSON) of ``settings_id``; None when it is empty or not in the table."""
    text = settings_table(source).get(settings_id) if settings_id else None
    return None if text is None else json.loads(text)


def campaign_history(source: Source) -> list[TableEntry]:
    """Every distinct campaign text the file was run with (``extra``: first_used, last_used, unix s), oldest
    first. A file from before ``/campaigns`` gives its ``campaign`` attribute as the only entry."""
    with _reading(source) as f:
        entries = read_entries(f, CAMPAIGNS_TABLE)
        if not entries and CAMPAIGNS_TABLE.name not in f:
            text = str(f.attrs.get("campaign", ""))
            entries = [TableEntry(text_key(text), text, {"first_used": np.nan, "last_used": np.nan})] if text else []
        return entries


def current_entry(entries: Iterable[TableEntry]) -> TableEntry | None:
    """The current campaign: the entry made current last (largest last_used; of equal ones the later)."""
    best = None
    for entry in entries:
        if best is None or not entry.extra.get("last_used", np.nan) < best.extra.get("last_used", np.nan):
            best = entry
    return best


def current_campaign_text(source: Source) -> str:
    """The campaign text the file was last run with ("" when none was stored)."""
    entry = current_entry(campaign_history(source))
    return "" if entry is None else entry.text
