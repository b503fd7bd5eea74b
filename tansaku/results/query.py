"""Selecting rows of a results file with tansaku's one filter grammar (no eval, no pandas.query): filters
like ``e_above_hull <= 0.05``, ``label ~ sm2co17`` or ``elements has Sm,Co`` are parsed and evaluated
by tansaku/filters.py (the grammar is listed there); several filters are ANDed.

A filter's column is any one-value-per-row record column or derived column. Missing numbers (NaN) never match,
whatever the operator (also ``!=``). Derived columns read their padding for rows appended after the
ranking (NaN, -1, False or "": see derived.py).

Masks are vectorised over whole columns; only the columns the filters, the sort and the output need are
read, and output columns only at the selected rows.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import h5py
import numpy as np
from ase.data import atomic_numbers

from tansaku.filters import (
    ELEMENTS,
    Filter,
    QueryError,
    column_mask,
    filter_error,
    parse_filter,
    unknown_column_error,
)
from tansaku.results.read import (
    Source,
    _dataset,
    _reading,
    committed_rows,
    load_derived,
    read_padded,
    read_record_column,
)
from tansaku.results.schema import ATOMS, RECORD_COLUMN_BY_NAME, RECORDS, STATUS_COLUMN, layout_of
from tansaku.results.structures import to_structures

if TYPE_CHECKING:
    import pandas

__all__ = ["DEFAULT_COLUMNS", "Filter", "QueryError", "format_table", "parse_filter", "query", "to_structures"]

DEFAULT_COLUMNS = ("task_id", "label", "formula", "status")
ID_COLUMNS = ("task_id", "label")


# ---------------------------------------------------------------------------------------------- columns


class _Columns:
    """The one-value-per-row columns of an open store (record columns win over derived ones)."""

    def __init__(self, f: h5py.File) -> None:
        self.f = f
        self.n = committed_rows(f)
        self._derived = load_derived(f).columns
        self.derived = [k for k in self._derived if k not in RECORD_COLUMN_BY_NAME]
        stored = set(self.f[RECORDS])
        # every one-value-per-row column: an optional one the file predates reads as its fill value
        self.records = [c.name for c in RECORD_COLUMN_BY_NAME.values() if not c.shape]
        self._stored = (layout_of(f), stored)  # looked up once per query, not once per column read
        self._cache: dict[str, np.ndarray] = {}
        self._handles: dict[str, h5py.Dataset] = {}

    @property
    def names(self) -> list[str]:
        return self.records + self.derived

    def check(self, name: str, what: str, flt: Filter | None = None) -> str:
        if name in self.records or name in self.derived:
            return name
        if name in RECORD_COLUMN_BY_NAME:
            problem = f'"{name}" holds several values per row and cannot be used here'
            raise filter_error(problem, flt) if flt is not None else QueryError(problem)
        listing = f"columns are {', '.join(self.records)}"
        listing += f"; derived columns {', '.join(self.derived)}" if self.derived else "; no derived columns"
        raise unknown_column_error(name, self.names, flt, what, listing)

    def dataset(self, name: str) -> h5py.Dataset:
        """The dataset at a path such as "atoms/numbers", opened once per query.

        One handle per dataset: with HDF5 2.0 / h5py 3.16, refreshing a SWMR reader's dataset while another
        handle to it is open makes reads through both return the first chunk over and over (h5py #2803).
        """
        if name not in self._handles:
            self._handles[name] = _dataset(self.f, name)
        return self._handles[name]

    def kind(self, name: str) -> str:
        """'S' text, 'b' boolean, 'i' integer, 'f' float."""
        dtype = RECORD_COLUMN_BY_NAME[name].dtype if name in self.records else self._derived[name].dtype
        return {"u": "i", "O": "S"}.get(dtype.kind, dtype.kind)

    def full(self, name: str) -> np.ndarray:
        """All committed rows of ``name`` (text as raw UTF-8 bytes), read once per query."""
        if name not in self._cache:
            if name in self.records:
                self._cache[name] = read_record_column(self.f, name, slice(0, self.n), self.n, *self._stored)
            else:
                self._cache[name] = read_padded(self._derived[name], slice(0, self.n), self.n)
        return self._cache[name]

    def at(self, name: str, rows: np.ndarray) -> np.ndarray:
        """``name`` at ``rows`` (sorted, unique): only the chunks they touch when they touch few."""
        if name in self._cache or name not in self.records or not len(rows):
            return self.full(name)[rows]
        return read_record_column(self.f, name, rows, self.n, *self._stored)


# ------------------------------------------------------------------------------------------------ masks


def _column_mask(cols: _Columns, flt: Filter) -> np.ndarray:
    name = cols.check(flt.column, "column", flt)
    return column_mask(cols.full(name), flt, name)


class _Elements:
    """Per-row element tests over the ragged /atoms/numbers, vectorised: a cumulative count of matching
    atoms gives each row's count as ``cum[start + natoms] - cum[start]`` (rows may point anywhere)."""

    def __init__(self, cols: _Columns) -> None:
        n = cols.n
        self.start = cols.full("atom_start").astype(np.int64)
        self.end = self.start + cols.full("natoms")
        last = int(self.end.max()) if n else 0
        self.numbers = cols.dataset(f"{ATOMS}/numbers")[:last]

    def count(self, atom_mask: np.ndarray) -> np.ndarray:
        cum = np.zeros(len(atom_mask) + 1, np.int64)
        np.cumsum(atom_mask, out=cum[1:])
        return cum[self.end] - cum[self.start]

    def mask(self, flt: Filter) -> np.ndarray:
        zs = []
        for sym in flt.value if not isinstance(flt.value, str) else (flt.value,):
            if sym not in atomic_numbers:
                raise filter_error(f'unknown element "{sym}"', flt)
            zs.append(atomic_numbers[sym])
        if flt.op == "has":
            out = np.ones(len(self.start), bool)
            for z in zs:
                out &= self.count(self.numbers == z) > 0
            return out
        inside = np.isin(self.numbers, zs)
        if flt.op == "within":
            return self.count(~inside) == 0
        return self.count(inside) == 0  # !has


# ------------------------------------------------------------------------------------------------ query


def _parse_sort(sort: str | None, descending: bool) -> tuple[str | None, bool]:
    if sort is None:
        return None, descending
    sort = sort.strip()
    if sort.startswith("-"):
        return sort[1:].strip(), True
    if sort.startswith("+"):
        sort = sort[1:].strip()
    return sort, descending


def _order(values: np.ndarray, descending: bool) -> np.ndarray:
    """A stable ordering of ``values`` (ties keep row order), missing values (NaN) last either way."""
    _, inverse = np.unique(values, return_inverse=True)
    key = inverse.astype(np.int64).ravel()
    if descending:
        key = -key
    if values.dtype.kind == "f":
        key[np.isnan(values)] = np.iinfo(np.int64).max
    return np.argsort(key, kind="stable")


def _top(values: np.ndarray, descending: bool, limit: int | None) -> np.ndarray | None:
    """The first ``limit`` positions of ``_order(values, descending)`` without sorting every value (a
    partition finds the candidates, ties included; only they are sorted), for numeric columns; None
    where the full order is needed (no limit, text, or fewer numbers than ``limit``)."""
    if limit is None or limit >= len(values) or values.dtype.kind not in "iuf":
        return None
    key = values.astype(np.float64)
    if descending:
        key = -key
    finite = ~np.isnan(key)
    numbers = key[finite]
    if len(numbers) <= limit:
        return None
    kth = np.partition(numbers, limit - 1)[limit - 1] if limit else -np.inf
    candidates = np.flatnonzero(finite & (key <= kth))
    return candidates[_order(values[candidates], descending)][:limit]


def _output_columns(cols: _Columns, filters: list[Filter], sort: str | None,
                    columns: Sequence[str] | None, ids: bool) -> list[str]:
    if columns is None:
        wanted = list(DEFAULT_COLUMNS) + [f.column for f in filters if f.column != ELEMENTS]
        wanted += [sort] if sort else []
        wanted += cols.derived
    else:
        if isinstance(columns, str):
            columns = [c.strip() for c in columns.split(",") if c.strip()]
        wanted = (list(ID_COLUMNS) if ids else []) + [cols.check(c, "output column") for c in columns]
    return list(dict.fromkeys(wanted))


def query(path: Source, where: Sequence[str | Filter] = (), sort: str | None = None, descending: bool = False,
          limit: int | None = None, columns: Sequence[str] | None = None, ids: bool = True) -> pandas.DataFrame:
    """The committed rows matching every filter of ``where`` (texts or Filters), as a DataFrame indexed
    by row number.

    ``sort``: a column name, "-name" (or ``descending=True``) for largest first; missing values last, ties
    in row order. ``limit``: at most this many rows (after sorting). ``columns``: the output columns
    (task_id and label are kept first unless ``ids=False``); by default task_id, label, formula, status,
    the filtered and sorted columns and every derived column. Text is decoded to str.
    """
    import pandas as pd

    if isinstance(where, (str, Filter)):
        where = [where]
    filters = [w if isinstance(w, Filter) else parse_filter(w) for w in where]
    sort, descending = _parse_sort(sort, descending)
    if limit is not None and (not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 0):
        raise QueryError(f"limit must be a whole number >= 0, got {limit!r}")

    with _reading(path) as f:
        cols = _Columns(f)
        if sort is not None:
            cols.check(sort, "sort column")
        out_names = _output_columns(cols, filters, sort, columns, ids)
        for flt in filters:  # report a bad column before reading anything
            if flt.column != ELEMENTS:
                cols.check(flt.column, "column", flt)
        if STATUS_COLUMN in out_names or any(flt.column == STATUS_COLUMN for flt in filters):
            cols.full(STATUS_COLUMN)  # status first: a row being rewritten meanwhile reads "failed"

        mask = np.ones(cols.n, bool)
        elements = None
        for flt in sorted(filters, key=lambda flt: flt.column == ELEMENTS):
            if flt.column == ELEMENTS:
                elements = elements or _Elements(cols)
                mask &= elements.mask(flt)
            else:
                mask &= _column_mask(cols, flt)
        rows = np.flatnonzero(mask)

        if sort is not None:
            values = cols.at(sort, rows)
            top = _top(values, descending, limit)
            rows = rows[_order(values, descending) if top is None else top]
        if limit is not None:
            rows = rows[:limit]
        order = np.argsort(rows, kind="stable")  # read in row order, put back in the output order
        ascending = rows[order]
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        data = {}
        for name in out_names:
            values = cols.at(name, ascending)[back]
            data[name] = np.char.decode(values, "utf-8") if values.dtype.kind == "S" else values
    df = pd.DataFrame(data, index=pd.Index(rows, name="row"), columns=out_names)
    return df


# ----------------------------------------------------------------------------------------------- output


def _cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def format_table(df: pandas.DataFrame, fmt: str = "table") -> str:
    """``df`` as text: "table" (aligned columns, numbers right-aligned), "csv" or "json" (a list of
    records; NaN and infinities as null). The row index is not included (task_id identifies a row)."""
    if fmt == "csv":
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        return buf.getvalue()
    if fmt == "json":
        records = []
        columns = {c: df[c].tolist() for c in df.columns}
        for i in range(len(df)):
            rec = {}
            for c, values in columns.items():
                v = values[i]
                rec[str(c)] = None if isinstance(v, float) and not math.isfinite(v) else v
            records.append(rec)
        return json.dumps(records, ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    if fmt != "table":
        raise QueryError(f'unknown output format "{fmt}": use table, csv or json')
    header = [str(c) for c in df.columns]
    cells = [[_cell(v) for v in df[c].tolist()] for c in df.columns]
    numeric = [df[c].dtype.kind in "iuf" for c in df.columns]
    widths = [max([len(h), *map(len, col)]) for h, col in zip(header, cells)]

    def line(parts: list[str]) -> str:
        return "  ".join(p.rjust(w) if num else p.ljust(w) for p, w, num in zip(parts, widths, numeric)).rstrip()

    lines = [line(header), line(["-" * w for w in widths])]
    lines += [line([col[i] for col in cells]) for i in range(len(df))]
    return "\n".join(lines) + "\n"
