"""Registry: calculator name -> factory of an ASE calculator, with the elements it supports."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ase.calculators.calculator import Calculator
from ase.data import chemical_symbols

# Elements of the Materials Project trajectory set (MPtrj) that CHGNet and 7net-0 were trained on:
# H..Bi (Z 1-83) and Ac..Pu (Z 89-94).
MPTRJ_ELEMENTS = frozenset(chemical_symbols[1:84] + chemical_symbols[89:95])


class CalculatorConfigError(ValueError):
    """Unknown calculator, unknown or missing parameter."""


@dataclass(frozen=True)
class CalculatorSpec:
    """What tansaku knows about one calculator."""

    name: str
    factory: Callable[..., Calculator]
    elements: frozenset[str]
    package: str  # distribution whose version enters task ids
    magnetic: bool = False  # predicts magnetic moments
    uses_initial_magmoms: bool = False  # needs starting moments (spin-polarised DFT)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # every accepted parameter
    required: tuple[str, ...] = ()
    description: str = ""

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with ``params``; unknown or missing parameters are errors."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults) - set(self.required))
        if unknown:
            accepted = sorted(set(self.defaults) | set(self.required)) or ["none"]
            raise CalculatorConfigError(f"calculator {self.name!r}: unknown parameter(s) {unknown}; "
                                        f"accepted: {', '.join(accepted)}")
        missing = [key for key in self.required if key not in params]
        if missing:
            raise CalculatorConfigError(f"calculator {self.name!r}: missing required parameter(s) {missing}")
        return {**self.defaults, **params}

    def version(self) -> str:
        """The installed version of ``package``, looked up once per process (it enters every task id)."""
        return package_version(self.package)


@functools.cache
def package_version(package: str) -> str:
    """Installed version of a distribution, cached: planning 10^6 tasks must not read metadata 10^6 times."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not-installed"


_REGISTRY: dict[str, CalculatorSpec] = {}


def register(spec: CalculatorSpec) -> CalculatorSpec:
    """Add (or replace) a calculator in the registry."""
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> CalculatorSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise CalculatorConfigError(f"unknown calculator {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def calculator_names() -> list[str]:
    return sorted(_REGISTRY)


def unsupported_elements(name: str, symbols: Iterable[str]) -> list[str]:
    """Elements among ``symbols`` that calculator ``name`` cannot handle, sorted."""
    return sorted(set(symbols) - get_spec(name).elements)


@functools.lru_cache(maxsize=8)
def _cached(name: str, params_json: str) -> Calculator:
    spec = get_spec(name)
    return spec.factory(**json.loads(params_json))


def get_calculator(name: str, params: Mapping[str, Any] | None = None) -> Calculator:
    """The calculator for (name, params), created once per process and then reused (ML models load once)."""
    resolved = get_spec(name).resolve_params(params)
    return _cached(name, json.dumps(resolved, sort_keys=True))
