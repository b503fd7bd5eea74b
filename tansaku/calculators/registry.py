"""Registry: calculator name -> factory of an ASE calculator, with the elements it supports.

Calculators shipped with tansaku register themselves (builtin.py, dft.py). Third-party packages declare
theirs in the ``tansaku.calculators`` entry-point group (value: a ``CalculatorSpec`` or a function returning
one); ``get_spec`` loads them lazily in whichever process asks (coordinator, Dask worker, MPI rank, batch
job), so a calculator never exists in one process only.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ase.calculators.calculator import Calculator
from ase.data import chemical_symbols

from tansaku.calculators.context import RunContext

# Elements of the Materials Project trajectory set (MPtrj) that CHGNet and 7net-0 were trained on:
# H..Bi (Z 1-83) and Ac..Pu (Z 89-94).
MPTRJ_ELEMENTS = frozenset(chemical_symbols[1:84] + chemical_symbols[89:95])


ENTRY_POINT_GROUP = "tansaku.calculators"

# What a calculator's magnetic moments mean (CalculatorSpec.moments):
MOMENTS_SIGNED = "signed"  # collinear spin-polarised DFT: signed site moments, total = their sum
MOMENTS_MAGNITUDE = "magnitude"  # unsigned magnitudes (CHGNet): their sum only bounds |total| from above
MOMENTS_NONE = "none"  # no moments
MOMENT_KINDS = (MOMENTS_SIGNED, MOMENTS_MAGNITUDE, MOMENTS_NONE)


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
    # file-based codes (DFT): a fresh instance per task, built with the task's RunContext (``context=``)
    file_based: bool = False
    # Runtime fields handed to the factory as keyword arguments (e.g. "device" for ML models)
    runtime_keys: tuple[str, ...] = ()
    # named sets of identity parameters (presets.py); the "preset" parameter picks one
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # the code's own version (pw.x, VASP); default: the version of ``package``
    version_fn: Callable[[], str] | None = None
    # the code's own relaxation (QE vc-relax), used when the identity parameter relax_driver = "native":
    # native_relax(atoms, calculator, RelaxSettings, relax_cell) -> RelaxResult
    native_relax: Callable[..., Any] | None = None
    # what the moments mean (MOMENT_KINDS): signed (collinear DFT), magnitude (unsigned, CHGNet) or none
    moments: str = MOMENTS_NONE
    # what its results cannot say, shown beside every property it produced (report, `tansaku show`)
    caveat: str = ""
    # which energies its energies can be compared with (energy_scale_of): "pbe", "pbe+u" (DFT with that
    # functional), "chgnet-mptrj", "emt", ...; a function of the resolved identity parameters where the
    # functional is a parameter (DFT); "" = its own scale, named after the calculator
    energy_scale: str | Callable[[Mapping[str, Any]], str] = ""
    # checks the values of the resolved parameters, raising CalculatorConfigError (e.g. presets.check_dft_params)
    check: Callable[[Mapping[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        if self.moments not in MOMENT_KINDS:
            raise CalculatorConfigError(f"calculator {self.name!r}: moments must be one of "
                                        f"{', '.join(MOMENT_KINDS)}, got {self.moments!r}")

    def resolve_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Defaults, then the chosen preset, then ``params``; unknown or missing parameters are errors.

        The result is the calculator's identity: it enters the task id and is stored with each record.
        """
        params = dict(params or {})
        if self.presets:
            preset = params.get("preset", self.defaults.get("preset"))
            if preset not in self.presets:
                raise CalculatorConfigError(f"calculator {self.name!r}: unknown preset {preset!r}; "
                                            f"presets: {', '.join(self.presets)}")
            params = {**self.presets[preset], **params}
        unknown = sorted(set(params) - set(self.defaults) - set(self.required))
        if unknown:
            accepted = sorted(set(self.defaults) | set(self.required)) or ["none"]
            raise CalculatorConfigError(f"calculator {self.name!r}: unknown parameter(s) {unknown}; "
                                        f"accepted: {', '.join(accepted)}")
        driver = params.get("relax_driver", self.defaults.get("relax_driver", "ase"))
        if driver not in ("ase", "native") or (driver == "native" and self.native_relax is None):
            choices = "ase, native" if self.native_relax else "ase"
            raise CalculatorConfigError(f"calculator {self.name!r}: relax_driver {driver!r} not available; "
                                        f"choose {choices}")
        missing = [key for key in self.required if key not in params]
        if missing:
            raise CalculatorConfigError(f"calculator {self.name!r}: missing required parameter(s) {missing}")
        resolved = {**self.defaults, **params}
        if self.check is not None:
            try:
                self.check(resolved)
            except CalculatorConfigError as exc:
                raise CalculatorConfigError(f"calculator {self.name!r}: {exc}") from None
        return resolved

    def energy_scale_of(self, params: Mapping[str, Any] | None = None) -> str:
        """The energy scale of this calculator's energies with identity ``params`` (e.g. stored with a
        record): energies of different scales never share a hull, and Materials Project references only
        mix with "pbe" / "pbe+u" (``tansaku.screening.references``)."""
        if callable(self.energy_scale):
            return self.energy_scale({**self.defaults, **dict(params or {})})
        return self.energy_scale or self.name

    def version(self) -> str:
        """The code's version, looked up once per process (it enters every task id)."""
        return _code_version(self.version_fn) if self.version_fn else package_version(self.package)


@functools.cache
def _code_version(version_fn: Callable[[], str]) -> str:
    return version_fn()


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


def _load_entry_point(entry: metadata.EntryPoint) -> CalculatorSpec:
    try:
        loaded = entry.load()
        spec = loaded if isinstance(loaded, CalculatorSpec) else loaded()
    except Exception as exc:  # a broken plug-in must not take the others down; say which one and why
        raise CalculatorConfigError(f"calculator {entry.name!r} (entry point {entry.value!r} of "
                                    f"{ENTRY_POINT_GROUP!r}) failed to load: {type(exc).__name__}: {exc}") from None
    if not isinstance(spec, CalculatorSpec) or spec.name != entry.name:
        raise CalculatorConfigError(f"entry point {entry.value!r} of {ENTRY_POINT_GROUP!r} must give a "
                                    f"CalculatorSpec named {entry.name!r}, got {spec!r}")
    return register(spec)


def _entry_points(name: str | None = None) -> list[metadata.EntryPoint]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return [e for e in found if name is None or e.name == name]


def get_spec(name: str) -> CalculatorSpec:
    """The calculator ``name``: registered in this process, or found through its entry point."""
    spec = _REGISTRY.get(name)
    if spec is not None:
        return spec
    for entry in _entry_points(name):
        return _load_entry_point(entry)
    raise CalculatorConfigError(f"unknown calculator {name!r}; known: {', '.join(calculator_names())}")


def calculator_names() -> list[str]:
    """Registered calculators and those that entry points offer (not loaded)."""
    return sorted(set(_REGISTRY) | {e.name for e in _entry_points()})


def unsupported_elements(name: str, symbols: Iterable[str]) -> list[str]:
    """Elements among ``symbols`` that calculator ``name`` cannot handle, sorted."""
    return sorted(set(symbols) - get_spec(name).elements)


@functools.lru_cache(maxsize=8)
def _cached(name: str, params_json: str) -> Calculator:
    spec = get_spec(name)
    return spec.factory(**json.loads(params_json))


def get_calculator(name: str, params: Mapping[str, Any] | None = None, context: RunContext | None = None) -> Calculator:
    """The calculator for (name, identity params) in ``context`` (default: default runtime).

    File-based calculators (DFT) are built fresh for each call with the context (scratch directory,
    command, cores); the others are created once per process and then reused (ML models load once),
    with the runtime fields they ask for (e.g. device).
    """
    spec = get_spec(name)
    resolved = spec.resolve_params(params)
    if spec.file_based:
        return spec.factory(**resolved, context=context or RunContext())
    runtime = (context or RunContext()).runtime
    resolved.update({key: getattr(runtime, key) for key in spec.runtime_keys})
    return _cached(name, json.dumps(resolved, sort_keys=True))


UNKNOWN_CALCULATOR_CAVEAT = ("calculator not known to this installation: its moments are treated as magnitudes "
                             "(upper bound only)")


def moment_semantics(name: str) -> tuple[str, str]:
    """(moments, caveat) of calculator ``name``, for code that reads stored results.

    Ranking and reports work from the calculator *name* stored with each record, looked up here: the
    specs of tansaku's own calculators are registered without importing their packages, so this works in
    a process where CHGNet or GPAW is not installed. A name that is not registered and has no entry point
    here (a plug-in missing from this installation) gets the safe reading: moments are magnitudes, so
    μ0Ms is only an upper bound. An empty name (no calculator) has no moments.
    """
    if not name:
        return MOMENTS_NONE, ""
    try:
        spec = get_spec(name)
    except CalculatorConfigError:
        return MOMENTS_MAGNITUDE, UNKNOWN_CALCULATOR_CAVEAT
    return spec.moments, spec.caveat
