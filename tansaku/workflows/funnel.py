"""Run, then rank: the campaign's stages in order (a single-stage campaign is a funnel of one stage).

For each stage: its tasks (the first stage: the saved plan; a later stage: the previous stage's selected
rows, continued from their relaxed structures), saved in the plan file, executed (stored tasks are
skipped: resume is the normal path), then every stage ranked on its own rows and the next stage's
``select`` rule applied (workflows/ranking.py ``rank_stages``). The CLI, batch jobs (``advance_funnel``)
and tests call these functions; nothing here prints except through the given console.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console

from tansaku.constants import KIND_CANDIDATE
from tansaku.results.record import STATUS_OK
from tansaku.workflows.campaign import Campaign, Stage
from tansaku.workflows.executors import Executor
from tansaku.workflows.plan import Plan
from tansaku.workflows.runner import RunSummary, execute_plan
from tansaku.workflows.magnetism import anisotropy_task
from tansaku.workflows.tasks import Task, next_stage_task


class FunnelError(ValueError):
    """A stage that cannot be planned (e.g. its previous stage has not been ranked); the message says why."""


@dataclass
class StageRun:
    """What one stage did: ``entered`` = rows of the previous stage selected (candidates + carried
    references; None for the first stage)."""

    name: str
    calculator: str
    tasks: int
    summary: RunSummary
    entered: int | None = None


@dataclass
class FunnelSummary:
    plan: Plan  # the first stage's plan (its counts: generated, duplicates, ...)
    stages: list[StageRun] = field(default_factory=list)
    ranking_error: str = ""  # why the results could not be ranked ("" when they were)
    wall_seconds: float = 0.0


def stage_tasks(plan: Plan, campaign: Campaign, name: str) -> list[Task]:
    """The plan's tasks of stage ``name`` (first-stage tasks saved before funnels have no stage name)."""
    first = campaign.stage_name
    return [t for t in plan.tasks if (t.stage_name or first) == name]


def plan_next_stage(campaign: Campaign, index: int, plan: Plan) -> list[Task]:
    """Tasks of stage ``index`` (>= 1): one per row of stage ``index - 1`` that the stored ranking marks
    ``selected``, starting from that row's final (relaxed) structure. Initial magnetic moments: for a
    spin-polarised DFT stage those of its magnetic configurations (``configuration_tasks``: FM = default
    magnitudes); otherwise the row's final moments when it has any, else the source task's; an anisotropy
    stage starts from the row's final signed moments. ``atoms.info`` comes from the source task.
    FunnelError if the previous stage has no ranking."""
    from tansaku.results import derived_columns, open_for_reading, read_columns
    from tansaku.results.read import record_at
    from tansaku.workflows.ranking import stage_of_rows

    stage, previous = campaign.stages[index], campaign.stages[index - 1]
    path = campaign.output
    if not path.exists() or "selected" not in derived_columns(path):
        raise FunnelError(f"stage {stage.name!r}: stage {previous.name!r} has no stored ranking and selection yet")
    cols = read_columns(path, ["task_id", "status", "selected", "kind"]
                        + (["ground_state"] if "ground_state" in derived_columns(path) else []))
    wanted = (stage_of_rows(path, campaign) == previous.name) & cols["selected"].astype(bool) \
        & (cols["status"] == STATUS_OK)
    if stage.kind == "anisotropy":  # K1 of the selected candidates' magnetic ground states only
        wanted &= (cols["kind"] == KIND_CANDIDATE) & cols.get("ground_state", np.ones(len(wanted), bool)).astype(bool)
    rows = np.flatnonzero(wanted)
    sources = {t.task_id: t for t in stage_tasks(plan, campaign, previous.name)}
    tasks = []
    with open_for_reading(path) as f:
        for row in rows.tolist():
            source = sources.get(str(cols["task_id"][row]))
            if source is None:  # a row of an earlier plan of that stage (settings or selection changed)
                continue
            final = record_at(f, row)[1]
            atoms = source.atoms.copy()
            atoms.set_cell(final.cell, scale_atoms=False)
            atoms.positions = final.positions
            if final.has("initial_magmoms") and final.get_initial_magnetic_moments().any():
                atoms.set_initial_magnetic_moments(final.get_initial_magnetic_moments())
            if stage.kind == "anisotropy":  # the ground state's signed moments are the collinear start
                atoms.set_initial_magnetic_moments(final.get_initial_magnetic_moments())
                tasks.append(anisotropy_task(source, atoms, stage.calculator.name, stage.calculator.params,
                                             stage.anisotropy, stage.name))
                continue
            tasks.extend(configuration_tasks(source, atoms, stage))
    if not any(t.kind == KIND_CANDIDATE for t in tasks):
        return []  # no candidate passed: the references alone are not worth a stage
    return tasks


def configuration_tasks(source: Task, atoms, stage: Stage) -> list[Task]:
    """The tasks of one selected row in a relaxation stage: for a calculator that takes initial moments
    (spin-polarised DFT), one per starting magnetic configuration of the stage's ``magnetism`` (candidates;
    references FM only), each from its configuration's moments: FM from the default magnitudes, not from
    the previous stage's moments (an ML model's near-zero moment for Ni would start DFT non-magnetic);
    else the one task."""
    from tansaku.calculators import get_spec
    from tansaku.screening.magnetic_configurations import magnetic_configurations

    name, params = stage.calculator.name, stage.calculator.params
    if not (get_spec(name).uses_initial_magmoms and params.get("spin", True)):
        return [next_stage_task(source, atoms, name, params, stage.relax, stage.name)]
    mode = stage.magnetism.configurations if source.kind == KIND_CANDIDATE else "fm"
    return [next_stage_task(source, atoms, name, params, stage.relax, stage.name, configuration=c)
            for c in magnetic_configurations(atoms, mode, stage.magnetism.max_configurations,
                                             stage.magnetism.supercell)]


def save_stage_tasks(campaign: Campaign, plan: Plan, name: str, tasks: Sequence[Task]) -> Plan:
    """The plan with stage ``name``'s tasks replaced by ``tasks``, saved (atomically) to the plan file."""
    from tansaku.workflows.plan import merge_tasks
    from tansaku.workflows.planfile import plan_path, save_plan

    first = campaign.stage_name
    kept = [t for t in plan.tasks if (t.stage_name or first) != name]
    new = Plan(tasks=merge_tasks([*kept, *tasks]), generated=plan.generated, duplicates=plan.duplicates,
               candidates=plan.candidates, competing=plan.competing, references=plan.references,
               merged=plan.merged, campaign_hash=plan.campaign_hash)
    save_plan(new, plan_path(campaign), campaign.text)
    return new


def rank_campaign(campaign: Campaign) -> str:
    """Rank the stored results of ``campaign`` (every stage on its own hull, selections stored);
    "" on success, else why not (no records yet, a stage without references ...)."""
    from tansaku.results import StoreError
    from tansaku.workflows.ranking import RankingError, rank_results

    try:
        rank_results(campaign.output, ranking=campaign.ranking if not campaign.is_funnel else None,
                     calculator=campaign.calculator.name if not campaign.is_funnel else None, campaign=campaign)
    except (RankingError, StoreError, OSError) as exc:
        return str(exc)
    return ""


def run_funnel(campaign: Campaign, plan: Plan, rerun_failed: bool = False, console: Console | None = None,
               show_progress: bool = True, executor: Callable[[Stage], Executor | None] | None = None,
               announce: Callable[[Stage, int, int | None], None] | None = None) -> FunnelSummary:
    """Run every stage of ``campaign`` in order from its saved first-stage ``plan``, ranking after each.

    ``executor(stage)`` may give the executor of a stage (None: the stage's [execution]); ``announce(stage,
    tasks, entered)`` is called before a stage runs. Later stages are planned from the stored selection of
    the previous one: a resumed funnel plans the same tasks (same ids) and skips those stored.
    """
    start = time.perf_counter()
    summary = FunnelSummary(plan=plan)
    for index, stage in enumerate(campaign.stages):
        entered = None
        if index:
            if summary.ranking_error:
                break
            tasks = plan_next_stage(campaign, index, plan)
            plan = save_stage_tasks(campaign, plan, stage.name, tasks)
            entered = len(tasks)
        tasks = stage_tasks(plan, campaign, stage.name)
        if announce is not None:
            announce(stage, len(tasks), entered)
        stage_plan = Plan(tasks=tasks, generated=plan.generated, duplicates=plan.duplicates,
                          candidates=plan.candidates, competing=plan.competing, references=plan.references)
        run = execute_plan(stage_plan, campaign.for_stage(stage.name), rerun_failed=rerun_failed, console=console,
                           show_progress=show_progress, executor=executor(stage) if executor else None)
        summary.stages.append(StageRun(stage.name, stage.calculator.name, len(tasks), run, entered))
        summary.ranking_error = rank_campaign(campaign)
    summary.wall_seconds = time.perf_counter() - start
    return summary


def advance_funnel(campaign: Campaign, plan: Plan) -> tuple[Plan, str]:
    """For batch jobs: plan every later stage whose previous stage is complete in the store (no task
    pending or only in a shard; ``collect`` first), ranking the results to select its entrants.

    Returns the plan (saved) and the name of the current stage: the first one with tasks not stored.
    """
    from tansaku.results import read_columns

    stored: set[str] = set()
    if campaign.output.exists():
        stored = set(read_columns(campaign.output, ["task_id"])["task_id"].tolist())
    for index, stage in enumerate(campaign.stages):
        if index:
            error = rank_campaign(campaign)
            if error:
                raise FunnelError(f"stage {stage.name!r} cannot be planned: {error}")
            plan = save_stage_tasks(campaign, plan, stage.name, plan_next_stage(campaign, index, plan))
        if any(t.task_id not in stored for t in stage_tasks(plan, campaign, stage.name)):
            return plan, stage.name
    return plan, campaign.stages[-1].name
