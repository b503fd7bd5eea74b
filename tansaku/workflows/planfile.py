"""The saved plan: a campaign's tasks, written once next to its store and read by every worker.

Planning (generation, deduplication, references, task ids) runs once; ``save_plan`` writes the tasks to
``<output stem>.plan.h5`` (atomically: a temporary file, fsynced, then ``os.replace``), and workers,
``tansaku status``, ``collect`` and ``submit --resume`` read tasks from it and never re-plan. The file
keeps the hash of the campaign's planning inputs (``campaign_hash``): ``ensure_plan`` reuses the saved
plan when it matches and plans again (replacing the file) when the campaign changed.

Layout (docs/plan_file.md): per-task columns under ``/tasks`` and the initial structures as ragged
arrays under ``/atoms`` (the results store's layout: ``atom_start`` + ``natoms`` per task), the
calculator/relaxation settings once per distinct value under ``/settings`` (JSON), counts as attributes.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import h5py
import numpy as np

from tansaku.calculators import RelaxSettings, get_spec
from tansaku.results.recover import fsync_path
from tansaku.screening.identity import short_hash
from tansaku.workflows.campaign import Campaign
from tansaku.workflows.plan import Plan, make_plan
from tansaku.workflows.tasks import Task, atoms_from_arrays, plain_info

PLAN_FORMAT = "tansaku-plan"
PLAN_VERSION = 4  # bump when the layout or the planning code changes what a campaign plans (4: start moments in the ids)
PLAN_SUFFIX = ".plan.h5"
STRING_FIELDS = ("task_id", "candidate_id", "kind", "label", "formula", "prototype", "parent", "source_task_id",
                 "configuration")
COUNTS = ("generated", "duplicates", "candidates", "competing", "references", "merged")
SMALL_SELECTION = 2000  # up to this many selected tasks, atoms are read row by row, else all at once


class PlanError(ValueError):
    """A missing, damaged or out-of-date plan file, or task ids it does not hold; the message says which."""


def plan_path(campaign: Campaign) -> Path:
    """Where the campaign's plan is saved: ``<output stem>.plan.h5`` next to the store."""
    return campaign.output.with_name(campaign.output.stem + PLAN_SUFFIX)


def campaign_hash(campaign: Campaign) -> str:
    """Hash of everything planning the first stage reads: prototypes, competing phases, references,
    calculator (name, parameters, package version), relaxation settings, the first stage's name and its magnetic configurations.
    Execution, ranking, later stages, names and paths do not enter it, so changing the number of workers,
    the objectives or the funnel's later stages reuses the saved first-stage plan (later stages are
    planned from the stored results: workflows/funnel.py)."""
    return short_hash(PLAN_FORMAT, PLAN_VERSION, repr(campaign.decorations), repr(campaign.competing),
                      repr(campaign.references), campaign.calculator.name, dict(campaign.calculator.params),
                      get_spec(campaign.calculator.name).version(), campaign.relax.as_dict(), campaign.stage_name,
                      *([repr(campaign.magnetism)] if campaign.magnetism.configurations != "fm" else []))


def _strings(values: Sequence[str]) -> np.ndarray:
    raw = [v.encode("utf-8") for v in values]
    width = max((len(r) for r in raw), default=1) or 1
    return np.array(raw, dtype=h5py.string_dtype("utf-8", width))


def _column(group: h5py.Group, name: str, data: np.ndarray) -> None:
    if len(data):
        group.create_dataset(name, data=data, chunks=True, compression="gzip", compression_opts=4, shuffle=True)
    else:
        group.create_dataset(name, data=data)


def _setting_key(task: Task) -> str:
    return json.dumps({"calculator": task.calculator, "params": dict(task.params), "relax": task.relax.as_dict(),
                       "relax_cell": task.relax_cell, "stage": task.stage, "stage_name": task.stage_name,
                       "calculation": task.calculation, "calculation_params": dict(task.calculation_params)},
                      sort_keys=True)


def save_plan(plan: Plan, path: str | os.PathLike, campaign_text: str = "") -> Path:
    """Write ``plan`` to ``path`` atomically (a reader sees the old file or the new one, never a part).

    Task ids must be unique (``make_plan`` merges repeated ones); a repeated id is a ValueError.
    """
    path = Path(path)
    tasks = plan.tasks
    ids = [t.task_id for t in tasks]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        repeated = next(i for i in ids if i in seen or seen.add(i))
        raise ValueError(f"plan has task id {repeated!r} more than once (merge_tasks merges them)")
    settings: dict[str, int] = {}
    setting_index = np.array([settings.setdefault(_setting_key(t), len(settings)) for t in tasks], np.int32)
    natoms = np.array([len(t.atoms) for t in tasks], np.int32)
    atom_start = np.concatenate([[0], np.cumsum(natoms, dtype=np.int64)[:-1]]) if len(tasks) else np.zeros(0, np.int64)
    numbers = np.concatenate([t.atoms.numbers for t in tasks]).astype(np.int16) if tasks else np.zeros(0, np.int16)
    positions = np.concatenate([t.atoms.positions for t in tasks]) if tasks else np.zeros((0, 3))
    magmoms = np.concatenate([t.atoms.get_initial_magnetic_moments() if t.atoms.has("initial_magmoms")
                              else np.full(len(t.atoms), np.nan) for t in tasks]) if tasks else np.zeros(0)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs.update({"format": PLAN_FORMAT, "plan_version": PLAN_VERSION, "campaign_hash": plan.campaign_hash,
                            "campaign": campaign_text, "tasks": len(tasks),
                            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                            **{k: int(getattr(plan, k)) for k in COUNTS}})
            g = f.create_group("tasks")
            for name in STRING_FIELDS:
                _column(g, name, _strings([getattr(t, name) for t in tasks]))
            _column(g, "setting", setting_index)
            _column(g, "info", _strings([json.dumps(plain_info(t.atoms.info), sort_keys=True) for t in tasks]))
            _column(g, "cell", np.array([t.atoms.cell.array for t in tasks]).reshape(-1, 3, 3))
            _column(g, "pbc", np.array([t.atoms.pbc for t in tasks], bool).reshape(-1, 3))
            _column(g, "atom_start", atom_start)
            _column(g, "natoms", natoms)
            a = f.create_group("atoms")
            _column(a, "numbers", numbers)
            _column(a, "positions", positions)
            _column(a, "magmoms", magmoms)
            f.create_dataset("settings", data=_strings(list(settings)))
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _open(path: Path) -> h5py.File:
    try:
        f = h5py.File(path, "r", locking=False)
    except FileNotFoundError:
        raise PlanError(f"{path}: no saved plan (run `tansaku plan CAMPAIGN.toml` first)") from None
    except OSError as exc:
        raise PlanError(f"{path}: cannot read the plan file ({exc})") from None
    if f.attrs.get("format") != PLAN_FORMAT or int(f.attrs.get("plan_version", -1)) != PLAN_VERSION:
        f.close()
        raise PlanError(f"{path}: not a tansaku plan file of version {PLAN_VERSION}")
    return f


def _decode(a: np.ndarray) -> list[str]:
    return np.char.decode(a, "utf-8").tolist() if len(a) else []


def read_plan_hash(path: str | os.PathLike) -> str:
    """The campaign hash stored in a plan file."""
    with _open(Path(path)) as f:
        return str(f.attrs["campaign_hash"])


def read_task_ids(path: str | os.PathLike) -> list[str]:
    """Every task id of a saved plan, in plan order."""
    with _open(Path(path)) as f:
        return _decode(f["tasks/task_id"][:])


def read_task_stages(path: str | os.PathLike) -> list[str]:
    """The funnel stage name of every task of a saved plan, in plan order (cheap: no structures read)."""
    with _open(Path(path)) as f:
        names = [json.loads(s).get("stage_name", "") for s in _decode(f["settings"][:])]
        return [names[i] for i in f["tasks/setting"][:]]


def load_tasks(path: str | os.PathLike, task_ids: Iterable[str] | None = None) -> list[Task]:
    """The saved tasks (all, in plan order; or those of ``task_ids``, in that order).

    An id the plan does not hold is a PlanError naming it.
    """
    path = Path(path)
    with _open(path) as f:
        g = f["tasks"]
        ids = _decode(g["task_id"][:])
        if task_ids is None:
            rows = np.arange(len(ids))
        else:
            where = {tid: i for i, tid in enumerate(ids)}
            wanted = list(dict.fromkeys(task_ids))  # each id once, first-seen order
            missing = [t for t in wanted if t not in where]
            if missing:
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                raise PlanError(f"{path}: task id(s) not in the plan: {', '.join(missing[:5])}{more}")
            rows = np.array([where[t] for t in wanted], np.int64)
        if not len(rows):
            return []
        settings = [json.loads(s) for s in _decode(f["settings"][:])]
        relax = [RelaxSettings(**s["relax"]) for s in settings]
        small = len(rows) <= SMALL_SELECTION and len(rows) < len(ids)
        order = np.argsort(rows)  # h5py reads a point selection in increasing order only
        cols: dict[str, np.ndarray] = {}
        for name in (*STRING_FIELDS, "info", "setting", "cell", "pbc", "atom_start", "natoms"):
            if small:
                values = g[name][rows[order]]
                cols[name] = np.empty_like(values)
                cols[name][order] = values
            else:
                cols[name] = g[name][:][rows]
        strings = {name: _decode(cols[name]) for name in (*STRING_FIELDS, "info")}
        start, count = cols["atom_start"], cols["natoms"]
        atoms_ds = {k: f[f"atoms/{k}"] for k in ("numbers", "positions", "magmoms")}
        every = None if small else {k: ds[:] for k, ds in atoms_ds.items()}

        def atom_arrays(i: int) -> dict[str, np.ndarray]:
            sl = slice(start[i], start[i] + count[i])
            return {k: v[sl] for k, v in (every or atoms_ds).items()}

        tasks = []
        for i in range(len(rows)):
            a = atom_arrays(i)
            magmoms = None if np.isnan(a["magmoms"]).all() else a["magmoms"]
            setting = settings[cols["setting"][i]]
            atoms = atoms_from_arrays(a["numbers"].astype(int), a["positions"], cols["cell"][i], cols["pbc"][i],
                                      magmoms, json.loads(strings["info"][i]))
            tasks.append(Task(**{name: strings[name][i] for name in STRING_FIELDS}, atoms=atoms,
                              calculator=setting["calculator"], params=dict(setting["params"]),
                              relax=relax[cols["setting"][i]], relax_cell=setting["relax_cell"],
                              stage=setting["stage"], stage_name=setting["stage_name"],
                              calculation=setting.get("calculation", "relax"),
                              calculation_params=dict(setting.get("calculation_params", {}))))
        return tasks


def load_plan(path: str | os.PathLike) -> Plan:
    """A saved plan: its tasks and the counts of how they were made."""
    path = Path(path)
    with _open(path) as f:
        counts = {k: int(f.attrs.get(k, 0)) for k in COUNTS}
        digest = str(f.attrs["campaign_hash"])
    return Plan(tasks=load_tasks(path), campaign_hash=digest, **counts)


def check_plan(campaign: Campaign, path: str | os.PathLike | None = None) -> Path:
    """The campaign's saved plan file, after checking it was planned from this campaign (else PlanError)."""
    path = Path(path) if path is not None else plan_path(campaign)
    stored = read_plan_hash(path)
    if stored != campaign_hash(campaign):
        raise PlanError(f"{path}: the saved plan was made from a different version of {campaign.source} "
                        f"(planning inputs changed); plan again with `tansaku plan {campaign.source}`")
    return path


def ensure_plan(campaign: Campaign, replan: bool = False) -> tuple[Plan, bool]:
    """The campaign's plan: the saved one when it matches the campaign, else planned now and saved.

    Returns ``(plan, reused)``. A damaged plan file is planned again and replaced.
    """
    path = plan_path(campaign)
    digest = campaign_hash(campaign)
    if not replan and path.exists():
        try:
            if read_plan_hash(path) == digest:
                return load_plan(path), True
        except (PlanError, OSError, KeyError):
            pass  # damaged or foreign: plan again below
    plan = make_plan(campaign)
    plan.campaign_hash = digest
    save_plan(plan, path, campaign.text)
    return plan, False
