"""The one filter grammar of tansaku: ``COLUMN OP VALUE`` parsed into a Filter (no eval), and the mask
of a parsed filter over a column of values.

Used by ``tansaku query --where`` (results/query.py, over stored HDF5 columns), by the ranking's hard
filters (screening/rank.py, over derived columns) and so by campaign ``[ranking].filters`` and
``tansaku rank --filter``: one parser and one evaluation, hence the same errors everywhere. A neutral
leaf module (it imports nothing from tansaku but constants), so every layer may use it::

    e_above_hull <= 0.05          numbers: < <= > >= == != (ints, floats, 1e-3, -2, inf; not nan)
    prototype == ThMn12           text: == != (quotes optional for one word, "..." or '...' with spaces)
    label ~ sm2co17               text contains, ignoring case
    prototype in ThMn12,"Th2Zn17" any of a comma-separated list (text, numbers or true/false)
    converged == true             booleans: == != in (true/false, yes/no, 1/0)
    elements has Sm,Co            the structure contains every listed element (also: elements ⊇ Sm,Co)
    elements within Sm,Fe,Co,N    it contains no other element            (also: elements ⊆ Sm,Fe,Co,N)
    elements !has Sm              it contains none of the listed elements

Missing numbers (NaN) never match, whatever the operator (also ``!=``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase.data import atomic_numbers

__all__ = ["Filter", "FilterError", "QueryError", "column_mask", "parse_filter", "unknown_column_error"]

ELEMENTS = "elements"

NUMBER_OPS = ("<", "<=", ">", ">=")
EQUALITY_OPS = ("==", "!=")
ELEMENT_OPS = ("has", "within", "!has")
OPS = NUMBER_OPS + EQUALITY_OPS + ("~", "in") + ELEMENT_OPS
OP_ALIASES = {"⊇": "has", "⊆": "within"}
OPS_TEXT = "< <= > >= == != ~ in, and for elements: has (⊇) within (⊆) !has"

_COLUMN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)")
_OP = re.compile(r"\s*(!?[A-Za-z]+|[<>=!~⊇⊆]+|\S)")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf(?:inity)?", re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?\d+")
_NAN = re.compile(r"[+-]?nan", re.IGNORECASE)
_QUOTED = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*""")
BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


class FilterError(ValueError):
    """A filter, sort or column request that cannot be understood; the message names the piece."""


QueryError = FilterError  # the name queries have always used

@dataclass(frozen=True)
class Filter:
    """One parsed filter. ``value``: a number for < <= > >=; the text for == != ~ (converted to the
    column's type when the query runs); a tuple of texts for ``in``; a tuple of element symbols for
    has / within / !has. Numbers and booleans given directly (e.g. ``Filter("mu0_ms", ">=", 1.5)``)
    work as well."""

    column: str
    op: str
    value: object
    text: str = field(default="", compare=False, repr=False)  # the source text, for messages

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise FilterError(f'bad operator "{self.op}" in filter on {self.column}: operators are {OPS_TEXT}')

    def describe(self) -> str:
        return self.text or str(self)

    def __str__(self) -> str:
        """The filter as text that parses back to it (the source text when it was parsed)."""
        if self.text:
            return self.text
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        shown = [f"{v:g}" if isinstance(v, float) else _quoted(str(v)) for v in values]
        return f"{self.column} {self.op} {','.join(shown)}"


def _quoted(text: str) -> str:
    return text if text and re.fullmatch(r"[^\s,\"']+", text) else '"' + re.sub(r'(["\\])', r"\\\1", text) + '"'


def filter_error(problem: str, flt: Filter | str, detail: str = "") -> FilterError:
    text = flt if isinstance(flt, str) else flt.describe()
    return FilterError(f'{problem} in filter "{text}"' + (f": {detail}" if detail else ""))


def _unquote(s: str) -> str:
    return re.sub(r"\\(.)", r"\1", s)


def _items(text: str, whole: str, split: bool) -> tuple[list[str], bool]:
    """The values of a filter: one (``split`` False) or a comma-separated list; and whether any was
    quoted. Bare values are single words (no spaces); quoted ones may hold anything."""
    items, quoted, pos = [], False, 0
    while True:
        m = _QUOTED.match(text, pos)
        if m:
            items.append(_unquote(m.group(1) if m.group(1) is not None else m.group(2)))
            quoted, pos = True, m.end()
        else:
            end = text.find(",", pos) if split else -1
            item = (text[pos:] if end < 0 else text[pos:end]).strip()
            if not item:
                raise filter_error("missing value" if not items and end < 0 else "empty item in a list", whole)
            if item[0] in "\"'":
                raise filter_error(f"unclosed quote in {item}", whole)
            if re.search(r"\s", item):
                raise filter_error(f'value "{item}" has spaces: put it in quotes ("...")', whole)
            items.append(item)
            pos = len(text) if end < 0 else end
        if pos >= len(text):
            return items, quoted
        if not split or text[pos] != ",":
            raise filter_error(f'unexpected "{text[pos:].strip()}" after the value', whole)
        pos += 1


def read_number(token: str, whole: str | Filter) -> int | float:
    if _NAN.fullmatch(token):
        raise filter_error("NaN cannot be compared with (missing values never match a filter)", whole)
    if not _NUMBER.fullmatch(token):
        raise filter_error(f'could not read number "{token}"', whole)
    return int(token) if _INTEGER.fullmatch(token) else float(token)


def _element_symbols(items: list[str], whole: str) -> tuple[str, ...]:
    for sym in items:
        if sym not in atomic_numbers:
            hint = sym.capitalize() if sym.capitalize() in atomic_numbers else None
            hint = hint or next(iter(difflib.get_close_matches(sym, list(atomic_numbers)[1:119], 1)), None)
            raise filter_error(f'unknown element "{sym}"', whole, f"did you mean {hint}?" if hint else "")
    return tuple(dict.fromkeys(items))


def parse_filter(text: str) -> Filter:
    """Parse one filter ``COLUMN OP VALUE``; QueryError names the problem and the text."""
    if not isinstance(text, str):
        raise FilterError(f"a filter is text like 'e_above_hull <= 0.05', got {text!r}")
    whole = text.strip()
    m = _COLUMN.match(text)
    if not m:
        raise filter_error("a filter starts with a column name (letters, digits, _)", whole)
    column, pos = m.group(1), m.end()
    m = _OP.match(text, pos)
    if not m:
        raise filter_error(f"missing operator after {column}", whole, f"operators are {OPS_TEXT}")
    op = m.group(1).lower() if m.group(1)[-1].isalpha() else m.group(1)
    op = OP_ALIASES.get(op, op)
    if op not in OPS:
        hint = "did you mean ==? " if op in ("=", "===") else ""
        raise filter_error(f'bad operator "{m.group(1)}"', whole, f"{hint}operators are {OPS_TEXT}")
    rest = text[m.end():]
    if (column == ELEMENTS) != (op in ELEMENT_OPS):
        if column == ELEMENTS:
            raise filter_error(f'"{ELEMENTS}" takes has (⊇), within (⊆) or !has, not {op}', whole)
        raise filter_error(f'"{op}" applies to elements only (e.g. "elements {op} Sm,Co")', whole)

    if op in ELEMENT_OPS:
        symbols = [s for s in re.split(r"[,\s]+", rest) if s]
        if not symbols:
            raise filter_error("missing element symbols", whole)
        return Filter(column, op, _element_symbols(symbols, whole), whole)
    items, quoted = _items(rest, whole, split=op == "in")
    if op in NUMBER_OPS:
        if quoted:
            raise filter_error(f'{op} compares numbers, not text "{items[0]}"', whole)
        return Filter(column, op, read_number(items[0], whole), whole)
    return Filter(column, op, tuple(items) if op == "in" else items[0], whole)


def unknown_column_error(name: str, known: Sequence[str], flt: Filter | None = None, what: str = "column",
                         listing: str = "") -> FilterError:
    """``unknown column "mu0ms" in filter "mu0ms >= 1": did you mean mu0_ms? columns are ...``; ``listing``
    replaces the default "columns are ..." tail."""
    close = difflib.get_close_matches(name, list(known), 3, 0.6)
    detail = (f"did you mean {' or '.join(close)}? " if close else "") + (listing or f"columns are {', '.join(known)}")
    problem = f'unknown {what} "{name}"'
    return filter_error(problem, flt, detail) if flt is not None else FilterError(f"{problem}: {detail}")


# ------------------------------------------------------------------------------------------- evaluation

_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
            "==": np.equal, "!=": np.not_equal}


def _as_number(value: object, flt: Filter) -> float:
    if isinstance(value, (bool, np.bool_)):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        if math.isnan(value):
            raise filter_error("NaN cannot be compared with (missing values never match a filter)", flt)
        return value
    return read_number(str(value), flt)


def _as_bool(value: object, flt: Filter, column: str) -> bool:
    if isinstance(value, (bool, np.bool_, int, np.integer)) and value in (0, 1):
        return bool(value)
    b = BOOLS.get(str(value).strip().lower())
    if b is None:
        raise filter_error(f'"{column}" is true/false: could not read "{value}" as a boolean', flt)
    return b


def _contains(values: np.ndarray, needle: str) -> np.ndarray:
    """Case-insensitive substring test over str or UTF-8 byte strings."""
    if values.dtype.kind == "U":
        return np.char.find(np.char.lower(values), needle.lower()) >= 0
    if needle.isascii():  # UTF-8 multi-byte sequences never contain ASCII bytes: compare bytes directly
        return np.char.find(np.char.lower(values), needle.lower().encode()) >= 0
    text = np.char.decode(values, "utf-8")
    return np.char.find(np.char.lower(text), needle.lower()) >= 0


def value_kind(values: np.ndarray) -> str:
    """'S' text (str or UTF-8 bytes), 'b' boolean, 'i' integer, 'f' float."""
    kind = values.dtype.kind
    return {"u": "i", "O": "S", "U": "S"}.get(kind, kind)


def column_mask(values: np.ndarray, flt: Filter, name: str | None = None) -> np.ndarray:
    """Rows of the one-value-per-row column ``values`` (numbers, booleans, str or UTF-8 bytes) that
    satisfy ``flt`` (not an element filter); FilterError when the operator does not suit the column."""
    name = name or flt.column
    kind = value_kind(values)
    op, value = flt.op, flt.value
    if op in ELEMENT_OPS:
        raise filter_error(f'"{op}" applies to elements only (e.g. "elements {op} Sm,Co")', flt)
    if kind == "S":
        if op in NUMBER_OPS:
            raise filter_error(f'"{name}" is text: {op} compares numbers (use == != ~ or in)', flt)
        if values.dtype.kind == "O":  # Python str or bytes objects (e.g. variable-length HDF5 strings)
            values = values.astype(bytes if len(values) and isinstance(values[0], bytes) else str)
        if op == "~":
            return _contains(values, str(value))
        texts = [str(t) for t in (value if op == "in" else (value,))]
        wanted = np.array(texts if values.dtype.kind == "U" else [t.encode("utf-8") for t in texts])
        return np.isin(values, wanted) if op == "in" else _COMPARE[op](values, wanted[0])
    if op == "~":
        raise filter_error(f'"{name}" is not text: ~ searches text', flt)
    if kind == "b":
        if op in NUMBER_OPS:
            raise filter_error(f'"{name}" is true/false: use == != or in', flt)
        if op == "in":
            return np.isin(values, [_as_bool(v, flt, name) for v in value])
        return _COMPARE[op](values, _as_bool(value, flt, name))
    with np.errstate(invalid="ignore"):
        if op == "in":
            mask = np.isin(values, np.array([_as_number(v, flt) for v in value], dtype=float))
        else:
            mask = _COMPARE[op](values, _as_number(value, flt))
    if kind == "f" and op in ("!=", "in"):
        mask &= ~np.isnan(values)
    return mask


def composition_mask(symbols: Sequence[str], counts: np.ndarray, flt: Filter) -> np.ndarray:
    """Rows of a composition matrix (``counts[i, j]`` atoms of ``symbols[j]`` in row i) that satisfy the
    element filter ``flt`` (has / within / !has); the ranking's form of what queries test on stored atoms."""
    if flt.op not in ELEMENT_OPS:
        raise filter_error(f'"{ELEMENTS}" takes has (⊇), within (⊆) or !has, not {flt.op}', flt)
    listed = set(flt.value if not isinstance(flt.value, str) else (flt.value,))
    present = np.asarray(counts) > 0
    inside = np.array([s in listed for s in symbols], dtype=bool)
    if flt.op == "has":
        if not listed <= set(symbols):
            return np.zeros(len(present), dtype=bool)
        return present[:, inside].all(axis=1)
    if flt.op == "within":
        return ~present[:, ~inside].any(axis=1)
    return ~present[:, inside].any(axis=1)  # !has
