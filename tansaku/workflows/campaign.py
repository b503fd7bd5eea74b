"""The campaign file (TOML): parsed with tomllib, validated into typed objects.

Every error names the file, the key (e.g. ``prototypes[0].variants[1].substitute.8i``) and the problem.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase.data import atomic_numbers

from tansaku.calculators import CalculatorConfigError, RelaxSettings, Runtime, get_spec
from tansaku.calculators.context import LAUNCHERS, SCRATCH_POLICIES
from tansaku.calculators.relax import OPTIMIZERS
from tansaku.filters import ELEMENTS, Filter, FilterError, parse_filter, unknown_column_error
from tansaku.workflows.machine import parse_scheduler
from tansaku.workflows.reader import CampaignError, _Reader  # noqa: F401  (CampaignError: re-exported)
from tansaku.workflows.sandbox import DEFAULT_TASK_TIMEOUT, FAILURE_KINDS, RetryPolicy
from tansaku.screening.generate import MAX_ATOMS, MIN_DISTANCE, Decoration
from tansaku.screening.prototypes import get_prototype
from tansaku.screening.rank import DEFAULT_OBJECTIVES, Objective, RankingSpec
from tansaku.screening.substitution import Occupation, Substitution, Variant

# numeric columns a ranking may use: stored record columns and the derived ones `tansaku rank` computes
RANKABLE_COLUMNS = ("e_above_hull", "formation_energy", "mu0_ms", "mu0_ms_upper", "bh_max", "bh_max_upper",
                    "kappa", "mu0_ha", "k1", "k1_mev_fu", "tc_mean_field", "delta_e_afm", "moment_per_fu", "moment_per_tm",
                    "re_atomic_fraction", "re_mass_fraction", "hhi_production", "hhi_reserve", "cost_per_kg",
                    "density", "energy_per_atom", "magmom_total", "volume")

# what a [[stages]] select filter may name: rankable columns, the ranking's own, and text columns
SELECTABLE_COLUMNS = RANKABLE_COLUMNS + ("rank", "score", "on_pareto", "pareto_rank", "passes_filters",
                                         "magnetic_order", "label", "formula", "prototype", "calculator")


@dataclass(frozen=True)
class CalculatorChoice:
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)  # resolved (defaults filled in); identity
    runtime: Runtime = field(default_factory=Runtime)  # [calculator.runtime]: never in a task id


@dataclass(frozen=True)
class Execution:
    """[execution]: the executor (workflows.executors registry), its options, and how records are written."""

    executor: str = "dask"
    options: Mapping[str, Any] = field(default_factory=dict)  # the executor's options, defaults filled in
    batch_size: int = 32  # records per HDF5 append
    flush_seconds: float = 5.0  # longest time a finished record waits in memory
    task_timeout: float = DEFAULT_TASK_TIMEOUT  # s per task, a killable sandbox (workflows/sandbox.py); 0 = none
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # which failed tasks run again, how often

    @property
    def workers(self) -> int:
        """The ``workers`` option (0 = one per core; 0 also for executors without one)."""
        return int(self.options.get("workers", 0))

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def with_overrides(self, source: str = "<command line>", **overrides: Any) -> Execution:
        """This execution with other values (e.g. ``executor="pool", workers=4``; None = keep), validated
        like the campaign file; options the new executor does not have are dropped."""
        table = {"executor": self.executor, "batch_size": self.batch_size, "flush_seconds": self.flush_seconds,
                 "task_timeout": self.task_timeout, "retry": {"max": self.retry.max, "on": list(self.retry.on)},
                 **self.options}
        table.update({k: v for k, v in overrides.items() if v is not None})
        from tansaku.workflows.executors import get_executor_spec

        try:
            names = set(get_executor_spec(table["executor"]).option_names())
        except ValueError:
            names = set()
        table = {k: v for k, v in table.items() if k in names or k in EXECUTION_KEYS}
        return _execution(_Reader(table, "execution", source))


@dataclass(frozen=True)
class References:
    """Elemental references relaxed in the same campaign: ``"auto"`` = every element in the candidates."""

    elements: tuple[str, ...] | str = "auto"


@dataclass(frozen=True)
class Ranking:
    """How stored results are ranked: objectives, weights, hard filters, optional reference energies."""

    spec: RankingSpec = field(default_factory=RankingSpec)
    reference_entries: Path | None = None  # JSON list of pymatgen ComputedEntry (replaces elemental references)
    # reference_entries are Materials Project (PBE) energies: refused for calculators of another energy
    # scale (ML, EMT) unless this forces the mix (then every ranking output says so)
    allow_mixed_energy_scales: bool = False


DEFAULT_STAGE = "main"  # the name of the first stage when [campaign] stage is not given
STAGE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}\Z")  # fits the store's 64-byte stage_name column


@dataclass(frozen=True)
class Selection:
    """[[stages]] ``select``: which candidates of the previous stage enter this one (all keys AND-ed).

    Only ok, converged candidate records of the previous stage are eligible; elemental references and
    competing phases always pass (each stage has its own hull). See workflows/selection.py.
    """

    top: int = 0  # the N best by rank (0: no such rule)
    e_above_hull_max: float | None = None  # eV/atom, on the previous stage's own hull
    pareto: bool = False  # on the previous stage's Pareto front
    filters: tuple[Filter, ...] = ()  # in tansaku's one filter grammar (tansaku/filters.py)

    def describe(self) -> str:
        parts = ([f"top = {self.top}"] if self.top else []) + \
            ([f"e_above_hull_max = {self.e_above_hull_max:g}"] if self.e_above_hull_max is not None else []) + \
            (["pareto = true"] if self.pareto else []) + [f"filter \"{f}\"" for f in self.filters]
        return " and ".join(parts)


@dataclass(frozen=True)
class Magnetism:
    """[magnetism]: which starting magnetic configurations each candidate is computed from (one task each;
    screening.magnetic_configurations).  Only for calculators that take initial moments (DFT)."""

    configurations: str = "fm"  # CONFIGURATION_MODES
    max_configurations: int = 4  # per candidate, FM included
    supercell: tuple[int, int, int] = (1, 1, 1)  # "enumerate": the cell of its up/down patterns (FM stays)


STAGE_KINDS = ("relax", "anisotropy")  # what a stage computes: relaxations, or K1 of the previous stage's selection


@dataclass(frozen=True)
class Stage:
    """One stage of a funnel: its calculator, relaxation, executor, ranking and entry rule.

    The first stage is the campaign's top-level [calculator]/[relax]/[execution]/[ranking] (``select``
    None: every candidate); each ``[[stages]]`` entry is a later one.
    """

    name: str
    calculator: CalculatorChoice
    relax: RelaxSettings
    execution: Execution
    ranking: Ranking
    select: Selection | None = None
    magnetism: Magnetism = field(default_factory=Magnetism)  # starting magnetic configurations (DFT stages)
    kind: str = "relax"  # STAGE_KINDS
    anisotropy: Mapping[str, Any] = field(default_factory=dict)  # kind "anisotropy": kspacings, smearing

    @property
    def single_point(self) -> bool:
        """``relax.steps = 0``: energies of the structures as given (never "converged"; ranked anyway)."""
        return self.relax.steps == 0


@dataclass(frozen=True)
class Campaign:
    name: str
    output: Path
    decorations: tuple[Decoration, ...]
    calculator: CalculatorChoice
    relax: RelaxSettings
    execution: Execution
    references: References
    competing: tuple[Decoration, ...] = ()  # competing phases for the hull, relaxed like candidates
    ranking: Ranking = field(default_factory=Ranking)
    scheduler: Any = None  # workflows.machine.SchedulerSettings from [scheduler] (batch jobs); never in task ids
    magnetism: Magnetism = field(default_factory=Magnetism)
    text: str = ""  # the campaign file as written, stored in the HDF5 file
    source: str = "<string>"
    stage_name: str = DEFAULT_STAGE  # [campaign] stage: the name of the first stage
    later_stages: tuple[Stage, ...] = ()  # [[stages]]: the funnel after the first stage

    @property
    def stages(self) -> tuple[Stage, ...]:
        """Every stage in order, the first built from the top-level tables."""
        first = Stage(self.stage_name, self.calculator, self.relax, self.execution, self.ranking, None, self.magnetism)
        return (first, *self.later_stages)

    @property
    def is_funnel(self) -> bool:
        return bool(self.later_stages)

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; ValueError listing the stage names."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ValueError(f"no stage {name!r} in campaign {self.name!r}; its stages: "
                         f"{', '.join(s.name for s in self.stages)}")

    def for_stage(self, name: str) -> Campaign:
        """This campaign with the calculator, relaxation, execution and ranking of stage ``name`` at the
        top level (what the runner, workers and ranking of that stage read)."""
        stage = self.stage(name)
        return dataclasses.replace(self, calculator=stage.calculator, relax=stage.relax,
                                   execution=stage.execution, ranking=stage.ranking, magnetism=stage.magnetism)


def _element(reader: _Reader, key: str, value: Any) -> str:
    if not isinstance(value, str) or value not in atomic_numbers or value == "X":
        raise reader.fail(key, f"unknown element {value!r}")
    return value


def _occupations(reader: _Reader, key: str, value: Any) -> tuple[Occupation, ...]:
    if isinstance(value, str):
        return (Occupation(_element(reader, key, value), 1.0, fraction=True),)
    if not isinstance(value, dict) or not value:
        raise reader.fail(key, f"expected an element (\"Co\") or a table of amounts ({{Co = 2}} or {{Co = 0.25}}), "
                               f"got {value!r}")
    occupations = []
    for element, amount in value.items():
        element = _element(reader, f"{key}.{element}", element)
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount <= 0:
            raise reader.fail(f"{key}.{element}", f"amount must be a positive count (int) or fraction "
                                                   f"(float <= 1), got {amount!r}")
        if isinstance(amount, float) and amount > 1:
            raise reader.fail(f"{key}.{element}", f"fraction {amount} is > 1 (write a count as an integer)")
        occupations.append(Occupation(element, float(amount), fraction=isinstance(amount, float)))
    return tuple(occupations)


def _variant(reader: _Reader, prototype_name: str) -> Variant:
    reader.check_keys({"substitute", "interstitial"})
    prototype = get_prototype(prototype_name)
    interstitial_labels = {s.label for s in prototype.interstitial_sites()}
    host_labels = {s.label for s in prototype.host_sites()}
    substitutions = []
    for section, interstitial in (("substitute", False), ("interstitial", True)):
        table = reader.get(section, dict, default={})
        for target, value in table.items():
            key = reader.key(f"{section}.{target}")
            valid = interstitial_labels if interstitial else host_labels | set(atomic_numbers)
            if target not in valid:
                kind = "interstitial site" if interstitial else "site (or element)"
                choices = sorted(interstitial_labels if interstitial else host_labels) or ["none"]
                raise reader.fail(key, f"unknown {kind} {target!r} of {prototype.name}; "
                                       f"its {kind}s: {', '.join(choices)}")
            substitutions.append(Substitution(target, _occupations(reader, key, value), interstitial))
    if not substitutions:
        raise reader.fail(reader.path, "a variant needs 'substitute' and/or 'interstitial'")
    return Variant(tuple(substitutions))


def _cellpar(reader: _Reader) -> list[float] | None:
    """[a, b, c, alpha, beta, gamma] (Å, degrees) that make a cell: positive lengths, angles that close."""
    cellpar = reader.get("cellpar", list, default=None)
    key = reader.key("cellpar")
    if cellpar is None:
        return None
    if len(cellpar) != 6 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in cellpar):
        raise reader.fail(key, f"expected [a, b, c, alpha, beta, gamma], got {cellpar!r}")
    if not all(math.isfinite(v) for v in cellpar):
        raise reader.fail(key, f"expected finite numbers, got {cellpar!r}")
    lengths, angles = cellpar[:3], cellpar[3:]
    if min(lengths) <= 0:
        raise reader.fail(key, f"lengths a, b, c must be > 0 Å, got {lengths}")
    # three angles make a cell when each is in (0, 180), their sum < 360 and each < the sum of the others
    if min(angles) <= 0 or max(angles) >= 180 or sum(angles) >= 360 or 2 * max(angles) >= sum(angles):
        raise reader.fail(key, f"angles alpha, beta, gamma = {angles} degrees do not make a cell (each in "
                               f"(0, 180), sum < 360, each < the sum of the other two)")
    return cellpar


def _decoration(reader: _Reader) -> Decoration:
    reader.check_keys({"prototype", "sites", "cellpar", "supercell", "primitive", "variants", "include_parent",
                       "distinct_elements", "max_orderings", "max_atoms", "min_distance"})
    name = reader.get("prototype", str, required=True)
    try:
        prototype = get_prototype(name)
    except ValueError as exc:
        raise reader.fail(reader.key("prototype"), str(exc)) from None
    sites_reader = reader.sub("sites")
    sites = {}
    for label, value in sites_reader.table.items():
        key = sites_reader.key(label)
        if label not in {s.label for s in prototype.sites}:
            raise reader.fail(key, f"unknown site {label!r} of {prototype.name}; "
                                   f"its sites: {', '.join(s.label for s in prototype.sites)}")
        choices = value if isinstance(value, list) else [value]
        if not choices:
            raise reader.fail(key, "expected an element or a list of at least one element, got []")
        sites[label] = tuple(_element(reader, key, v) for v in choices)
    cellpar = _cellpar(reader)
    supercell = _three_positive_ints(reader, "supercell")
    max_orderings = reader.get("max_orderings", int, default=200_000)
    max_atoms = reader.get("max_atoms", int, default=MAX_ATOMS)
    for key, value in (("max_orderings", max_orderings), ("max_atoms", max_atoms)):
        if value < 1:
            raise reader.fail(reader.key(key), f"must be >= 1, got {value}")
    min_distance = reader.get("min_distance", float, default=MIN_DISTANCE)
    if min_distance < 0:
        raise reader.fail(reader.key("min_distance"), f"must be >= 0 Å, got {min_distance}")
    variants = tuple(_variant(v, prototype.name) for v in reader.tables("variants"))
    return Decoration(
        prototype=prototype.name, sites=sites, cellpar=tuple(float(v) for v in cellpar) if cellpar else None,
        supercell=tuple(supercell), variants=variants, primitive=reader.get("primitive", bool, default=False),
        include_parent=reader.get("include_parent", bool, default=True),
        distinct_elements=reader.get("distinct_elements", bool, default=False), max_orderings=max_orderings,
        max_atoms=max_atoms, min_distance=min_distance)


def _argv(reader: _Reader, name: str) -> tuple[str, ...]:
    value = reader.get(name, list, default=[])
    if not all(isinstance(v, str) and v for v in value):
        raise reader.fail(reader.key(name), f"expected an argument list of non-empty strings, got {value!r}")
    return tuple(value)


def _runtime(reader: _Reader) -> Runtime:
    """[calculator.runtime]: how and where tasks run; changing it never changes a task id."""
    reader.check_keys({"command", "cores", "launcher", "mpirun", "device", "scratch", "on_success",
                       "max_retries", "timeout", "pseudo_dir", "batch_size"})
    cores = reader.get("cores", int, default=1)
    if cores < 1:
        raise reader.fail(reader.key("cores"), f"must be >= 1, got {cores}")
    for key in ("max_retries", "timeout", "batch_size"):
        if reader.get(key, float if key == "timeout" else int, default=0) < 0:
            raise reader.fail(reader.key(key), "must be >= 0")
    scratch, pseudo_dir = reader.get("scratch", str, default=None), reader.get("pseudo_dir", str, default=None)
    return Runtime(
        command=_argv(reader, "command"), cores=cores, launcher=reader.choice("launcher", LAUNCHERS, "mpi"),
        mpirun=_argv(reader, "mpirun"), device=reader.get("device", str, default="cpu"),
        scratch=Path(scratch) if scratch else None,
        on_success=reader.choice("on_success", SCRATCH_POLICIES, "delete"),
        max_retries=reader.get("max_retries", int, default=3), timeout=reader.get("timeout", float, default=0.0),
        pseudo_dir=Path(pseudo_dir) if pseudo_dir else None, batch_size=reader.get("batch_size", int, default=0))


def _calculator(reader: _Reader) -> CalculatorChoice:
    reader.check_keys({"name", "params", "runtime"})
    name = reader.get("name", str, required=True)
    try:
        spec = get_spec(name)
        params = spec.resolve_params(reader.get("params", dict, default={}))
    except CalculatorConfigError as exc:
        raise reader.fail(reader.path, str(exc)) from None
    return CalculatorChoice(name=name, params=params, runtime=_runtime(reader.sub("runtime")))


def _three_positive_ints(reader: _Reader, key: str) -> tuple[int, int, int]:
    """A supercell-like key: three positive integers (default 1, 1, 1)."""
    value = reader.get(key, list, default=[1, 1, 1])
    if len(value) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value):
        raise reader.fail(reader.key(key), f"expected three positive integers, got {value!r}")
    return (value[0], value[1], value[2])


def parse_magnetism(reader: _Reader, calculator: str) -> Magnetism:
    """[magnetism] (or a stage's ``magnetism`` table), checked against the calculator that will use it."""
    from tansaku.screening.magnetic_configurations import CONFIGURATION_MODES

    reader.check_keys({"configurations", "max_configurations", "supercell"})
    mode = reader.choice("configurations", CONFIGURATION_MODES, default="fm")
    cap = reader.get("max_configurations", int, default=4)
    if cap < 1:
        raise reader.fail(reader.key("max_configurations"), f"must be >= 1, got {cap}")
    supercell = _three_positive_ints(reader, "supercell")
    if supercell != (1, 1, 1) and mode != "enumerate":
        raise reader.fail(reader.key("supercell"), f"applies to configurations = \"enumerate\" only, not {mode!r}")
    if mode != "fm" and not get_spec(calculator).uses_initial_magmoms:
        raise reader.fail(reader.key("configurations"), f"calculator {calculator!r} takes no initial magnetic "
                                                        f"moments, so only \"fm\" applies (use a DFT calculator)")
    return Magnetism(mode, cap, supercell)


def _relax(reader: _Reader) -> RelaxSettings:
    reader.check_keys({"optimizer", "fmax", "steps", "relax_cell"})
    optimizer = reader.choice("optimizer", list(OPTIMIZERS), default="FIRE")
    fmax = reader.get("fmax", float, default=0.05)
    if fmax <= 0:
        raise reader.fail(reader.key("fmax"), f"must be > 0, got {fmax}")
    steps = reader.get("steps", int, default=300)
    if not 0 <= steps <= MAX_STEPS:
        raise reader.fail(reader.key("steps"), f"must be >= 0 and <= {MAX_STEPS:,}, got {steps:,}")
    return RelaxSettings(optimizer=optimizer, fmax=fmax, steps=steps,
                         relax_cell=reader.get("relax_cell", bool, default=True))


MAX_STEPS = 1_000_000  # relaxation steps of one task
MAX_BATCH = 1_000_000  # records per HDF5 append

EXECUTION_KEYS = ("executor", "batch_size", "flush_seconds", "task_timeout", "retry")  # every executor's keys


def _retry(reader: _Reader) -> RetryPolicy:
    reader.check_keys({"max", "on"})
    default = RetryPolicy()
    count = reader.get("max", int, default=default.max)
    if count < 0:
        raise reader.fail(reader.key("max"), f"must be >= 0, got {count}")
    kinds = reader.get("on", list, default=list(default.on))
    for i, kind in enumerate(kinds):
        if kind not in FAILURE_KINDS:
            raise reader.fail(f"{reader.key('on')}[{i}]", f"unknown failure kind {kind!r}; choose from "
                                                          f"{', '.join(FAILURE_KINDS)}")
    return RetryPolicy(max=count, on=tuple(kinds))


def _execution(reader: _Reader) -> Execution:
    from tansaku.workflows.executors import executor_names, get_executor_spec

    executor = reader.choice("executor", executor_names(), default="dask")
    spec = get_executor_spec(executor)
    # options of the other executors are accepted and ignored, so switching executor is a one-line change
    known = set(EXECUTION_KEYS) | {o for n in executor_names() for o in get_executor_spec(n).option_names()}
    for name in reader.table:
        if name not in known:
            raise reader.fail(reader.key(name), f"unknown key; executor {executor!r} takes "
                                                f"{', '.join(sorted(set(EXECUTION_KEYS) | set(spec.option_names())))}"
                                                f" (other executors: {', '.join(sorted(known - set(spec.option_names()) - set(EXECUTION_KEYS)))})")
    batch_size = reader.get("batch_size", int, default=32)
    flush_seconds = reader.get("flush_seconds", float, default=5.0)
    if not 1 <= batch_size <= MAX_BATCH:
        raise reader.fail(reader.key("batch_size"), f"must be >= 1 and <= {MAX_BATCH:,}, got {batch_size:,}")
    if flush_seconds < 0:
        raise reader.fail(reader.key("flush_seconds"), f"must be >= 0, got {flush_seconds}")
    task_timeout = reader.get("task_timeout", float, default=DEFAULT_TASK_TIMEOUT)
    if task_timeout < 0:
        raise reader.fail(reader.key("task_timeout"), f"must be >= 0 s (0: no timeout), got {task_timeout}")
    options = {}
    for option in spec.options:
        value = reader.get(option.name, option.kind, default=option.default)
        if option.minimum is not None and value < option.minimum:
            raise reader.fail(reader.key(option.name), f"must be >= {option.minimum:g}, got {value}")
        if option.maximum is not None and value > option.maximum:
            raise reader.fail(reader.key(option.name), f"must be <= {option.maximum:g}, got {value:,}")
        options[option.name] = value
    return Execution(executor=executor, options=options, batch_size=batch_size, flush_seconds=flush_seconds,
                     task_timeout=task_timeout, retry=_retry(reader.sub("retry")))


def _references(reader: _Reader) -> References:
    reader.check_keys({"elements"})
    elements = reader.get("elements", (str, list), default="auto")
    if isinstance(elements, str):
        if elements not in ("auto", "none"):
            raise reader.fail(reader.key("elements"), f"expected \"auto\", \"none\" or a list of elements, "
                                                      f"got {elements!r}")
        return References(elements)
    return References(tuple(_element(reader, reader.key("elements"), e) for e in elements))


def _rankable(reader: _Reader, key: str, column: str) -> str:
    if column not in RANKABLE_COLUMNS:
        raise reader.fail(key, f"unknown column {column!r}; rankable columns: {', '.join(RANKABLE_COLUMNS)}")
    return column


def _criterion(reader: _Reader, key: str, text: Any) -> Filter:
    """A hard filter in tansaku's one grammar (tansaku/filters.py), on a rankable column."""
    try:
        flt = parse_filter(text)
        if flt.column not in RANKABLE_COLUMNS and flt.column != ELEMENTS:
            raise unknown_column_error(flt.column, RANKABLE_COLUMNS, flt,
                                       listing=f"rankable columns are {', '.join(RANKABLE_COLUMNS)}")
    except FilterError as exc:
        raise reader.fail(key, str(exc)) from None
    return flt


def _ranking(reader: _Reader) -> Ranking:
    reader.check_keys({"objectives", "weights", "filters", "max_fronts", "reference_entries",
                       "allow_mixed_energy_scales"})
    directions = reader.get("objectives", dict, default={o.column: o.direction for o in DEFAULT_OBJECTIVES})
    weights = reader.get("weights", dict, default={})
    objectives = []
    for column, direction in directions.items():
        key = reader.key(f"objectives.{column}")
        if direction not in ("min", "max"):
            raise reader.fail(key, f"expected \"min\" or \"max\", got {direction!r}")
        objectives.append(Objective(_rankable(reader, key, column), direction, 1.0))
    for column, weight in weights.items():
        key = reader.key(f"weights.{column}")
        if column not in directions:
            raise reader.fail(key, f"{column!r} is not one of the objectives ({', '.join(directions)})")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
            raise reader.fail(key, f"expected a finite number >= 0, got {weight!r}")
    objectives = [Objective(o.column, o.direction, float(weights.get(o.column, 1.0))) for o in objectives]
    filters = [_criterion(reader, f"{reader.key('filters')}[{i}]", text)
               for i, text in enumerate(reader.get("filters", list, default=[]))]
    max_fronts = reader.get("max_fronts", int, default=5)
    if max_fronts < 1:
        raise reader.fail(reader.key("max_fronts"), "must be >= 1")
    entries = reader.get("reference_entries", str, default=None)
    return Ranking(RankingSpec(tuple(objectives), tuple(filters), max_fronts), Path(entries) if entries else None,
                   reader.get("allow_mixed_energy_scales", bool, default=False))


def parse_ranking_table(table: Mapping[str, Any], source: str) -> Ranking:
    """Validate a [ranking] table given as a mapping (e.g. built from command-line options)."""
    return _ranking(_Reader(table, "ranking", source))


def _output_path(reader: _Reader, text: str) -> Path:
    """The output path as written: not empty, no NUL byte, no name longer than the file system takes."""
    key = reader.key("output")
    if not text.strip():
        raise reader.fail(key, "must not be empty")
    if "\0" in text:
        raise reader.fail(key, f"contains a NUL byte: {text!r}")
    try:
        limit = os.pathconf("/", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in Path(text).parts:
        if len(part.encode()) > limit:
            raise reader.fail(key, f"file name too long ({len(part.encode())} bytes; at most {limit}): {part[:40]}...")
    return Path(text)


def check_output(output: Path, campaign_file: Path | None, source: str, key: str = "campaign.output",
                 writable: bool = True) -> None:
    """Refuse an output path the run could not or must not write, before any work: a directory, the
    campaign file itself, a file that is not a tansaku results file, a folder that cannot be written."""
    from tansaku.results import StoreError, open_for_reading

    def fail(problem: str) -> CampaignError:
        return CampaignError(f"{source}: {key}: {output}: {problem}")

    if output.is_dir():
        raise fail("is a directory; name a file such as results.h5")
    if campaign_file is not None and output.exists() and output.resolve() == Path(campaign_file).resolve():
        raise fail("is the campaign file itself; name another file for the results")
    if output.exists():
        try:
            with open(output, "rb") as fh:
                signature = fh.read(8)
        except OSError as exc:
            raise fail(f"cannot be read: {exc.strerror}") from None
        if signature != b"\x89HDF\r\n\x1a\n" and output.stat().st_size:
            raise CampaignError(f"{source}: {key}: {output} is not an HDF5 file (refusing to overwrite it)")
        if output.stat().st_size:
            try:
                open_for_reading(output).close()
            except StoreError as exc:
                raise CampaignError(f"{source}: {key}: {exc} (refusing to write into it)") from None
        return
    if not writable:
        return
    folder = output.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tansaku-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise fail(f"cannot be created in {folder}: {exc.strerror}") from None


def parse_campaign(text: str, source: str = "<string>", base_dir: Path | None = None) -> Campaign:
    """Validate campaign TOML text; relative output paths are taken from ``base_dir``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{source}: invalid TOML: {exc}") from None
    root = _Reader(data, "", source)
    root.check_keys({"campaign", "prototypes", "competing", "calculator", "relax", "execution", "references",
                     "ranking", "scheduler", "magnetism", "stages"})
    meta = root.sub("campaign", required=True)
    meta.check_keys({"name", "output", "stage"})
    name = meta.get("name", str, required=True)
    if not name.strip():
        raise meta.fail(meta.key("name"), "must not be empty")
    output = _output_path(meta, meta.get("output", str, default=f"{name}.h5"))
    if not output.is_absolute():
        output = (base_dir or Path.cwd()) / output
    decorations = tuple(_decoration(r) for r in root.tables("prototypes"))
    if not decorations:
        raise root.fail("prototypes", "at least one [[prototypes]] table is required")
    execution, ranking = _execution(root.sub("execution")), _ranking(root.sub("ranking"))
    first = _stage_name(meta, "stage", DEFAULT_STAGE)
    calculator = _calculator(root.sub("calculator", required=True))
    return Campaign(
        name=name, output=output, decorations=decorations, calculator=calculator,
        magnetism=parse_magnetism(root.sub("magnetism"), calculator.name),
        relax=_relax(root.sub("relax")), execution=execution,
        references=_references(root.sub("references")),
        competing=tuple(_decoration(r) for r in root.tables("competing")),
        ranking=ranking, scheduler=_scheduler(root, base_dir), text=text, source=source,
        stage_name=first, later_stages=_stages(root, first, ranking))


def _stage_name(reader: _Reader, key: str, default: str | None = None) -> str:
    name = reader.get(key, str, default=default) if default is not None else reader.get(key, str, required=True)
    if not STAGE_NAME.match(name):
        raise reader.fail(reader.key(key), f"stage name {name!r}: a letter, then letters, digits, _ or - "
                                           f"(at most 32 characters)")
    return name


def _stages(root: _Reader, first: str, ranking: Ranking) -> tuple[Stage, ...]:
    """[[stages]]: the funnel's later stages, each with its own calculator, relax, execution and ranking."""
    base_execution = root.get("execution", dict, default={})
    names, stages = [first], []
    for reader in root.tables("stages"):
        reader.check_keys({"name", "calculator", "relax", "execution", "ranking", "select", "magnetism", "kind",
                           "anisotropy"})
        name = _stage_name(reader, "name")
        if name in names:
            raise reader.fail(reader.key("name"), f"stage name {name!r} is used twice (stages: {', '.join(names)})")
        names.append(name)
        overrides = reader.get("execution", dict, default={})
        execution = _execution(_Reader({**base_execution, **overrides}, reader.key("execution"), reader.source))
        calculator = _calculator(reader.sub("calculator", required=True))
        kind = reader.choice("kind", STAGE_KINDS, default="relax")
        stages.append(Stage(
            name=name, calculator=calculator,
            relax=_relax(reader.sub("relax")), execution=execution,
            ranking=_ranking(reader.sub("ranking")) if "ranking" in reader.table else ranking,
            select=_selection(reader.sub("select", required=True)),
            magnetism=parse_magnetism(reader.sub("magnetism"), calculator.name), kind=kind,
            anisotropy=_anisotropy(reader, kind, calculator.name)))
    return tuple(stages)


def _anisotropy(reader: _Reader, kind: str, calculator: str) -> dict[str, Any]:
    """A stage's ``anisotropy`` settings (kind "anisotropy" only), checked by calculators.anisotropy."""
    from tansaku.calculators.anisotropy import check_settings

    table = reader.get("anisotropy", dict, default=None)
    if kind != "anisotropy":
        if table is not None:
            raise reader.fail(reader.key("anisotropy"), "only a stage of kind \"anisotropy\" takes these settings")
        return {}
    try:
        return check_settings(calculator, table or {})
    except (CalculatorConfigError, TypeError, ValueError) as exc:
        raise reader.fail(reader.key("anisotropy"), str(exc).removeprefix("anisotropy: ")) from None


def _selection(reader: _Reader) -> Selection:
    """``select``: top, e_above_hull_max, pareto, filter (text or a list of texts); several AND-ed."""
    keys = {"top", "e_above_hull_max", "pareto", "filter"}
    reader.check_keys(keys)
    if not reader.table:
        raise reader.fail(reader.path, f"give at least one rule: {', '.join(sorted(keys))}")
    top = reader.get("top", int, default=0)
    if "top" in reader.table and top < 1:
        raise reader.fail(reader.key("top"), f"must be a positive integer, got {top}")
    e_max = reader.get("e_above_hull_max", float, default=None)
    if e_max is not None and e_max < 0:
        raise reader.fail(reader.key("e_above_hull_max"), f"must be >= 0 (eV/atom), got {e_max:g}")
    texts = reader.get("filter", (str, list), default=[])
    texts = [texts] if isinstance(texts, str) else texts
    filters = []
    for i, text in enumerate(texts):
        key = reader.key("filter") if isinstance(reader.table.get("filter"), str) else f"{reader.key('filter')}[{i}]"
        try:
            flt = parse_filter(text)
            if flt.column not in SELECTABLE_COLUMNS and flt.column != ELEMENTS:
                raise unknown_column_error(flt.column, SELECTABLE_COLUMNS, flt,
                                           listing=f"selectable columns are {', '.join(SELECTABLE_COLUMNS)}")
            filters.append(flt)
        except FilterError as exc:
            raise reader.fail(key, str(exc)) from None
    return Selection(top=top, e_above_hull_max=e_max, pareto=reader.get("pareto", bool, default=False),
                     filters=tuple(filters))


def _scheduler(root: _Reader, base_dir: Path | None):
    """[scheduler] (batch jobs; never in task ids); required by executors that start batch jobs."""
    if "scheduler" not in root.table:
        executor = root.table.get("execution", {}).get("executor") if isinstance(root.table.get("execution"), dict) \
            else None
        if executor == "dask-jobqueue":
            raise root.fail("scheduler", "executor 'dask-jobqueue' needs a [scheduler] table (where and how its "
                                         "Dask workers run as batch jobs)")
        return None
    return parse_scheduler(root.sub("scheduler"), base_dir)


def load_campaign(path: str | Path, check: bool = True) -> Campaign:
    """Read and validate a campaign file; a relative output path is relative to the working directory.
    ``check``: also refuse an output path the run could not or must not write (check_output)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CampaignError(f"{path}: cannot read campaign file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CampaignError(f"{path}: not a campaign file: not UTF-8 text (byte {exc.start})") from None
    campaign = parse_campaign(text, source=str(path))
    entries = campaign.ranking.reference_entries
    if entries is not None and not entries.is_file():
        raise CampaignError(f"{path}: ranking.reference_entries: {entries}: no such file")
    if check:
        check_output(campaign.output, path, str(path), writable=False)
    return campaign
