"""FireWorks backend, LaunchPad side: add a campaign's planned tasks as Fireworks, collect their results.

``add_campaign`` turns the tasks of the campaign's saved plan that are neither stored, nor in a shard,
nor already in the LaunchPad into Fireworks (``tasks_per_firework`` task ids each, one single-Firework
Workflow per Firework, added with one ``bulk_add_wfs``). A Firework's spec holds ids and paths only
(``fireworks_tasks``); the campaign's Fireworks are found again by ``spec.tansaku.store``, the absolute
path of the campaign store, so adding a campaign twice adds nothing the second time.

``collect_campaign`` merges the shards the rockets wrote with the one ``collect`` (idempotent by task id).
Before that, every task of a FIZZLED Firework that left no record (the rocket failed before or outside
``run_task``: a campaign file changed under it, a missing plan, an exception in FireWorks) gets a failed
record whose error is the Firework's, written to the shard ``fireworks-fizzled.h5``: the store then says
why. A later ok record (``lpad rerun_fws``) replaces it, as ``collect`` always does.

Why one Workflow per Firework: the tasks are independent, and FireWorks rewrites a Workflow's document
(its links and the state of every Firework) on each state change, so one Workflow of 10^5 Fireworks is
slow and passes MongoDB's 16 MB document limit.

FireWorks is optional: every function here imports it lazily and ``require_fireworks`` says what to install.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tansaku.screening.identity import short_hash
from tansaku.workflows.campaign import Campaign
from tansaku.workflows.collect import CollectSummary, collect, shards_dir
from tansaku.workflows.planfile import ensure_plan, load_tasks, plan_path, read_task_ids
from tansaku.workflows.run_task import failed_record, worker_name
from tansaku.workflows.status import campaign_status

FIZZLED_SHARD = "fireworks-fizzled.h5"
MAX_TASKS_PER_FIREWORK = 10_000  # 10^4 task ids are 0.27 MB of BSON, far below MongoDB's 16 MB
LOCKS = "tansaku_locks"  # collection of per-campaign leases held while adding
LOCK_SECONDS = 3600.0
UNFINISHED = ("WAITING", "READY", "RESERVED", "RUNNING", "PAUSED")
INSTALL_HINT = "pip install fireworks  (or: pip install 'tansaku[hpc]')"


class FireWorksError(ValueError):
    """FireWorks missing, an unreadable LaunchPad file, an unreachable or uninitialised LaunchPad."""


def require_fireworks() -> None:
    """Raise FireWorksError naming what to install when FireWorks is not importable."""
    try:
        found = importlib.util.find_spec("fireworks") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise FireWorksError(f"the FireWorks backend needs the fireworks package, which is not installed: "
                             f"{INSTALL_HINT}")


@contextlib.contextmanager
def talking_to(what: object) -> Iterator[None]:
    """MongoDB errors (unreachable server, refused command) become one-line FireWorksErrors."""
    from pymongo.errors import PyMongoError

    try:
        yield
    except PyMongoError as exc:
        first = (str(exc).splitlines() or [""])[0].split(" (configured timeouts")[0][:200]
        raise FireWorksError(f"{what}: {type(exc).__name__}: {first}") from None


def load_launchpad(path: str | os.PathLike | None = None) -> Any:
    """The ``fireworks.LaunchPad`` of a LaunchPad file (``my_launchpad.yaml``; None: the one FireWorks
    finds itself, LAUNCHPAD_LOC of FW_config.yaml or my_launchpad.yaml in the working directory), after
    checking that its database answers and was initialised (``lpad reset``)."""
    require_fireworks()
    from fireworks import LaunchPad
    from fireworks.fw_config import LAUNCHPAD_LOC

    if path is None and not LAUNCHPAD_LOC:
        raise FireWorksError("no LaunchPad file: give --launchpad my_launchpad.yaml (or set LAUNCHPAD_LOC in "
                             "FW_config.yaml)")
    path = Path(path if path is not None else LAUNCHPAD_LOC)
    if not path.is_file():
        raise FireWorksError(f"{path}: no such LaunchPad file (`lpad init` writes one)")
    try:
        launchpad = LaunchPad.from_file(str(path))
    except Exception as exc:  # YAML errors, unknown keys (TypeError), bad values: all mean a bad file
        raise FireWorksError(f"{path}: not a readable LaunchPad file: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:300]}") from None
    launchpad.m_logger.setLevel("WARNING")  # keep FireWorks' per-call INFO lines out of tansaku's output
    with talking_to(f"{path}: cannot reach the LaunchPad's MongoDB"):
        initialised = launchpad.fw_id_assigner.find_one({}) is not None
    if not initialised:
        raise FireWorksError(f"{path}: the LaunchPad database {launchpad.name!r} is not initialised; "
                             f"run `lpad -l {path} reset` once")
    return launchpad


@dataclass(frozen=True)
class FireworkInfo:
    """One Firework of a campaign, as the LaunchPad holds it."""

    fw_id: int
    state: str
    task_ids: tuple[str, ...]
    launches: tuple[int, ...] = ()


def campaign_fireworks(launchpad: Any, store: Path) -> list[FireworkInfo]:
    """Every Firework (any state) whose spec names the campaign store ``store``, in fw_id order."""
    from tansaku.workflows.fireworks_tasks import SPEC_KEY

    cursor = launchpad.fireworks.find(
        {f"spec.{SPEC_KEY}.store": str(store)},
        {"_id": 0, "fw_id": 1, "state": 1, f"spec.{SPEC_KEY}.task_ids": 1, "launches": 1})
    found = [FireworkInfo(int(d["fw_id"]), str(d["state"]), tuple(d["spec"][SPEC_KEY]["task_ids"]),
                          tuple(d.get("launches") or ())) for d in cursor]
    return sorted(found, key=lambda fw: fw.fw_id)


def store_path(campaign: Campaign) -> Path:
    """The campaign store as Fireworks name it: an absolute path (rockets run elsewhere)."""
    return campaign.output.resolve()


@contextlib.contextmanager
def _adding(launchpad: Any, store: Path, seconds: float = LOCK_SECONDS) -> Iterator[None]:
    """A lease in the LaunchPad's database while a campaign is added, so that two concurrent adds of one
    campaign cannot both queue the same tasks. A lease older than ``seconds`` (a killed add) is taken over."""
    from pymongo.errors import DuplicateKeyError

    locks, me, now = launchpad.db[LOCKS], f"{worker_name()}:{time.time():.6f}", time.time()
    try:  # matches only a free or expired lease; otherwise the upsert collides with the held one
        locks.find_one_and_update({"_id": str(store), "until": {"$lt": now}},
                                  {"$set": {"until": now + seconds, "holder": me}}, upsert=True)
    except DuplicateKeyError:
        held = locks.find_one({"_id": str(store)}) or {}
        raise FireWorksError(f"{store}: another `tansaku fireworks add` of this campaign is running "
                             f"({held.get('holder', '?')}); try again when it has finished") from None
    try:
        yield
    finally:
        locks.delete_one({"_id": str(store), "holder": me})


@dataclass
class AddSummary:
    tasks: int = 0  # in the saved plan
    plan_reused: bool = False
    stored: int = 0  # done or failed in the store or in shards
    queued: int = 0  # pending tasks already in a Firework of the LaunchPad
    added_tasks: int = 0
    fireworks: int = 0
    rerun: int = 0  # FIZZLED Fireworks set to run again (rerun_failed)
    fw_ids: list[int] = field(default_factory=list)


def _firework(task_ids: list[str], labels: dict[str, str], campaign: Campaign, store: Path, workers: int,
              category: str | None, priority: int | None) -> Any:
    from fireworks import Firework, Workflow

    from tansaku.workflows.fireworks_tasks import SPEC_KEY, RunTansakuTasks

    spec: dict[str, Any] = {SPEC_KEY: {"campaign": str(Path(campaign.source).resolve()), "store": str(store),
                                       "task_ids": task_ids, "shard": f"fw-{short_hash(*task_ids)}.h5"}}
    if category is not None:
        spec["_category"] = category
    if priority is not None:
        spec["_priority"] = priority
    first = labels.get(task_ids[0], task_ids[0])
    name = first if len(task_ids) == 1 else f"{first} and {len(task_ids) - 1} more"
    task = RunTansakuTasks(workers=workers) if workers else RunTansakuTasks()
    firework = Firework([task], spec=spec, name=name)
    return Workflow([firework], name=f"{campaign.name}: {name}",
                    metadata={"tansaku_campaign": campaign.name, "tansaku_store": str(store)})


def add_campaign(campaign: Campaign, launchpad: Any, tasks_per_firework: int = 1, workers: int = 0,
                 category: str | None = None, priority: int | None = None,
                 rerun_failed: bool = False) -> AddSummary:
    """Add the campaign's tasks that are not stored, not in a shard and not in the LaunchPad as Fireworks.

    Plans first when the saved plan is missing or out of date. ``rerun_failed``: FIZZLED Fireworks of the
    campaign run again (``LaunchPad.rerun_fw``), and failed tasks in no Firework are added again.
    """
    if not 1 <= tasks_per_firework <= MAX_TASKS_PER_FIREWORK:
        raise FireWorksError(f"tasks per Firework must be 1..{MAX_TASKS_PER_FIREWORK}, got {tasks_per_firework}")
    if workers < 0:
        raise FireWorksError(f"workers per Firework must be >= 0, got {workers}")
    store = store_path(campaign)
    plan, reused = ensure_plan(campaign)
    summary = AddSummary(tasks=len(plan.tasks), plan_reused=reused)
    with talking_to(f"LaunchPad database {launchpad.name!r}"), _adding(launchpad, store):
        status = campaign_status(campaign)
        fireworks = [fw for fw in campaign_fireworks(launchpad, store) if fw.state != "ARCHIVED"]
        queued = {tid for fw in fireworks for tid in fw.task_ids}
        todo = [tid for tid in status.pending_ids if tid not in queued]
        summary.queued = len(status.pending_ids) - len(todo)
        summary.stored = summary.tasks - len(status.pending_ids)
        if rerun_failed:
            for fw in fireworks:
                if fw.state == "FIZZLED":
                    launchpad.rerun_fw(fw.fw_id)
                    summary.rerun += 1
            todo += [tid for tid in status.failed_ids if tid not in queued]
        labels = {t.task_id: t.label for t in plan.tasks}
        groups = [todo[i:i + tasks_per_firework] for i in range(0, len(todo), tasks_per_firework)]
        workflows = [_firework(group, labels, campaign, store, workers, category, priority) for group in groups]
        if workflows:
            launchpad.bulk_add_wfs(workflows)
        summary.fw_ids = [fw.fw_id for wf in workflows for fw in wf.fws]
        summary.added_tasks, summary.fireworks = len(todo), len(workflows)
    return summary


def _last_line(stacktrace: str) -> str:
    """The exception line of a traceback, its class named without its module (``PlanError: ...``)."""
    lines = [line.strip() for line in str(stacktrace).strip().splitlines() if line.strip()]
    return re.sub(r"^(?:\w+\.)+(?=\w+: )", "", lines[-1]) if lines else "no error message"


def fizzle_errors(launchpad: Any, fireworks: list[FireworkInfo]) -> dict[int, str]:
    """fw_id -> the one-line error of its last launch (the exception FireWorks stored when it fizzled)."""
    last = {fw.launches[-1]: fw.fw_id for fw in fireworks if fw.launches}
    errors = {fw.fw_id: "fizzled without a launch record" for fw in fireworks}
    cursor = launchpad.launches.find({"launch_id": {"$in": list(last)}},
                                     {"_id": 0, "launch_id": 1, "action.stored_data._exception._stacktrace": 1})
    for launch in cursor:
        stored = ((launch.get("action") or {}).get("stored_data") or {}).get("_exception") or {}
        if stored.get("_stacktrace"):
            errors[last[launch["launch_id"]]] = _last_line(stored["_stacktrace"])
    return errors


@dataclass
class FireworksCollectSummary:
    states: dict[str, int] = field(default_factory=dict)  # the campaign's Fireworks by state
    fizzled_recorded: int = 0  # tasks of FIZZLED Fireworks without a record, stored as failed now
    not_in_plan: int = 0  # tasks of FIZZLED Fireworks that the current plan does not hold (left out)
    collected: CollectSummary = field(default_factory=CollectSummary)

    @property
    def unfinished(self) -> int:
        return sum(self.states.get(s, 0) for s in UNFINISHED)


def record_fizzled(campaign: Campaign, launchpad: Any, fireworks: list[FireworkInfo]) -> tuple[int, int]:
    """Failed records, in the shard ``FIZZLED_SHARD``, for the tasks of FIZZLED Fireworks that left none.

    Returns (records written, tasks not in the current plan)."""
    from tansaku.results import Store

    fizzled = [fw for fw in fireworks if fw.state == "FIZZLED"]
    if not fizzled:
        return 0, 0
    status = campaign_status(campaign)
    pending = set(status.pending_ids)  # plan tasks with no record in the store or in a shard
    errors = fizzle_errors(launchpad, fizzled)
    why = {tid: f"Firework {fw.fw_id} FIZZLED: {errors[fw.fw_id]}" for fw in fizzled for tid in fw.task_ids
           if tid in pending}
    outside = len({tid for fw in fizzled for tid in fw.task_ids} - set(read_task_ids(plan_path(campaign))))
    if why:
        tasks = load_tasks(plan_path(campaign), list(why))
        folder = shards_dir(campaign.output)
        folder.mkdir(parents=True, exist_ok=True)  # no rocket may have written a shard yet
        with Store.open(folder / FIZZLED_SHARD, campaign_text=campaign.text) as shard:
            shard.append([failed_record(task, why[task.task_id]) for task in tasks])
    return len(why), outside


def collect_campaign(campaign: Campaign, launchpad: Any) -> FireworksCollectSummary:
    """Record FIZZLED Fireworks' tasks that left no record as failed, then merge every shard of the
    campaign into its store (idempotent: run it as often as you like)."""
    with talking_to(f"LaunchPad database {launchpad.name!r}"):
        fireworks = campaign_fireworks(launchpad, store_path(campaign))
        summary = FireworksCollectSummary(states=dict(Counter(fw.state for fw in fireworks)))
        summary.fizzled_recorded, summary.not_in_plan = record_fizzled(campaign, launchpad, fireworks)
    summary.collected = collect(campaign.output, shards_dir(campaign.output), campaign.text)
    return summary
