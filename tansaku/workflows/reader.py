"""Typed access to TOML tables with key-path errors, shared by the campaign file and machine profiles."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


class CampaignError(ValueError):
    """A campaign file that cannot be run; the message names the file, key and problem."""


class _Reader:
    """Typed access to a TOML table that reports errors with their key path."""

    def __init__(self, table: Mapping[str, Any], path: str, source: str):
        self.table, self.path, self.source = table, path, source

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, key: str, problem: str) -> CampaignError:
        return CampaignError(f"{self.source}: {key}: {problem}")

    def check_keys(self, allowed: set[str]) -> None:
        for name in self.table:
            if name not in allowed:
                raise self.fail(self.key(name), f"unknown key; expected one of {', '.join(sorted(allowed))}")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ..., required: bool = False) -> Any:
        if name not in self.table:
            if required or default is ...:
                raise self.fail(self.key(name), "missing required key")
            return default
        value = self.table[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(self.key(name), f"expected {names}, got {type(value).__name__} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(self.key(name), f"expected a finite number, got {value!r}")
        return value

    def choice(self, name: str, choices: Sequence[str], default: str) -> str:
        value = self.get(name, str, default=default)
        if value not in choices:
            raise self.fail(self.key(name), f"unknown {name} {value!r}; choose {', '.join(choices)}")
        return value

    def sub(self, name: str, required: bool = False) -> _Reader:
        table = self.get(name, dict, default={}, required=required)
        return _Reader(table, self.key(name), self.source)

    def tables(self, name: str) -> list[_Reader]:
        items = self.get(name, list, default=[])
        readers = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise self.fail(f"{self.key(name)}[{i}]", f"expected a table, got {item!r}")
            readers.append(_Reader(item, f"{self.key(name)}[{i}]", self.source))
        return readers
