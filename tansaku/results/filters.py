"""The filter grammar of queries: ``COLUMN OP VALUE`` parsed into a Filter (no eval).

See tansaku.results.query for the grammar and how filters select rows.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from ase.data import atomic_numbers

__all__ = ["Filter", "QueryError", "parse_filter"]

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


class QueryError(ValueError):
    """A filter, sort or column request that cannot be understood; the message names the piece."""


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

    def describe(self) -> str:
        return self.text or f"{self.column} {self.op} {self.value}"


def filter_error(problem: str, flt: Filter | str, detail: str = "") -> QueryError:
    text = flt if isinstance(flt, str) else flt.describe()
    return QueryError(f'{problem} in filter "{text}"' + (f": {detail}" if detail else ""))


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
        raise QueryError(f"a filter is text like 'e_above_hull <= 0.05', got {text!r}")
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
