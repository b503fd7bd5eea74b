"""The ``tansaku`` command: plan, run, worker, collect, status, show, rank, query, report, upgrade."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(help="tansaku (探索): high-throughput screening of candidate crystals.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
# markup off: labels, file names and user text like "[[prototypes]]" or "[/x]" are printed as written
out = Console(width=None if sys.stdout.isatty() else 200, markup=False)  # no wrapping of tables piped to files
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200, markup=False,
              soft_wrap=not sys.stderr.isatty())  # messages in log files stay one line each (grep)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code)


def main() -> None:
    """The ``tansaku`` command: known errors are one line each (raised as ``_fail``); an unexpected internal
    error is one line too, with the full traceback written to a file for a bug report."""
    try:
        app(prog_name="tansaku")
    except Exception as exc:  # a bug, not bad input: never show the user a traceback
        import tempfile
        import time
        import traceback

        fd, path = tempfile.mkstemp(prefix=f"tansaku-crash-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".txt")
        with open(fd, "w") as fh:
            fh.write(f"tansaku {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
        err.print(f"error: internal error ({type(exc).__name__}: {exc}); this is a tansaku bug. "
                  f"The full traceback is in {path}", highlight=False, soft_wrap=True)
        sys.exit(70)  # EX_SOFTWARE


@app.command()
def run(
    campaign_file: Annotated[Path, typer.Argument(help="campaign TOML file")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="HDF5 file (overrides the campaign)")] = None,
    executor: Annotated[Optional[str], typer.Option(help="executor (overrides the campaign; an unknown name lists the known ones)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="worker processes (default: one per core)")] = None,
    rerun_failed: Annotated[bool, typer.Option("--rerun-failed", help="run failed tasks again")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="plan only (and save the plan): list the tasks")] = False,
    replan: Annotated[bool, typer.Option("--replan", help="plan again even if the saved plan is current")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run a campaign; running it again resumes (stored tasks are skipped).

    Under MPI: mpiexec -n N python -m tansaku run CAMPAIGN.toml --executor mpi
    """
    from tansaku.calculators import CalculatorConfigError
    from tansaku.workflows.campaign import CampaignError, load_campaign
    from tansaku.workflows.plan import UnsupportedElementsError

    from tansaku.workflows.campaign import check_output

    if workers is not None and workers < 0:
        raise _fail(f"--workers: must be >= 0 (0: one per core), got {workers}")
    try:
        campaign = load_campaign(campaign_file, check=output is None)
        execution = campaign.execution.with_overrides(executor=executor, workers=workers)
        campaign = dataclasses.replace(campaign, execution=execution, output=output or campaign.output)
        check_output(campaign.output, campaign_file, "command line" if output else str(campaign_file),
                     key="--output" if output else "campaign.output")
    except (CampaignError, CalculatorConfigError) as exc:
        raise _fail(str(exc)) from None
    if campaign.execution.executor == "mpi" and not dry_run:
        _run_mpi(campaign, replan, rerun_failed, progress)
        return
    if not dry_run:
        from tansaku.workflows.executors import prepare_executor

        prepare_executor(campaign.execution.executor)  # the pool's forkserver imports while the plan is made
    try:
        plan = _plan(campaign, replan)
    except (CampaignError, UnsupportedElementsError, CalculatorConfigError) as exc:
        raise _fail(str(exc)) from None
    _run_plan(campaign, plan, dry_run, rerun_failed, progress)


def _run_mpi(campaign, replan: bool, rerun_failed: bool, progress: bool) -> None:
    """Under mpiexec: rank 0 plans, coordinates and writes; every other rank runs tasks until told to stop."""
    from tansaku.calculators import CalculatorConfigError
    from tansaku.hpc import mpi
    from tansaku.workflows.campaign import CampaignError
    from tansaku.workflows.executors import mpi_worker
    from tansaku.workflows.sandbox import task_runner
    from tansaku.workflows.plan import UnsupportedElementsError

    try:
        rank, size = mpi.rank(), mpi.size()
    except mpi.MPIUnavailableError as exc:
        raise _fail(str(exc)) from None
    if size < 2:
        raise _fail("--executor mpi needs at least 2 MPI ranks (rank 0 coordinates): mpiexec -n N, N >= 2")
    if campaign.is_funnel:
        raise _fail(f"{campaign.source}: the mpi executor runs single-stage campaigns; run a funnel ([[stages]]) "
                    f"with the dask or pool executor, or with batch jobs (submit / collect)")
    if rank != 0:
        mpi_worker(task_runner(campaign),
                   threads_per_task=int(campaign.execution.options.get("threads_per_task", 1)))
        return
    try:
        try:
            plan = _plan(campaign, replan)
        except (CampaignError, UnsupportedElementsError, CalculatorConfigError) as exc:
            raise _fail(str(exc)) from None
        err.print(f"MPI: rank 0 coordinates and writes, {size - 1} worker ranks", highlight=False)
        _run_plan(campaign, plan, False, rerun_failed, progress)
    finally:
        mpi.shutdown()


def _run_plan(campaign, plan, dry_run: bool, rerun_failed: bool, progress: bool) -> None:
    from tansaku.results import StoreError
    from tansaku.workflows.funnel import FunnelError, run_funnel

    err.print(f"{campaign.name}: {plan.generated} candidates generated, "
              f"{plan.duplicates} duplicates removed -> {plan.candidates} candidates "
              f"+ {plan.competing} competing phases + {plan.references} references = {len(plan.tasks)} tasks "
              f"({campaign.calculator.name}, {_executor_text(campaign.execution)})",
              highlight=False)
    if dry_run:
        for task in plan.tasks:
            stage = f"{task.stage_name or campaign.stage_name:8s}  " if campaign.is_funnel else ""
            out.print(f"{task.task_id}  {stage}{task.kind:9s}  {len(task.atoms):4d} atoms  {task.label}",
                      highlight=False)
        if campaign.is_funnel:
            err.print(f"later stages ({', '.join(s.name for s in campaign.later_stages)}) are planned from the "
                      f"ranked results of the stage before them", highlight=False)
        return

    def announce(stage, tasks: int, entered) -> None:
        if campaign.is_funnel:
            came = "" if entered is None else f" ({entered} selected rows of the previous stage)"
            err.print(f"stage {stage.name}: {tasks} tasks{came} ({stage.calculator.name}, "
                      f"{_executor_text(stage.execution)})", highlight=False)

    try:
        summary = run_funnel(campaign, plan, rerun_failed=rerun_failed, console=err, show_progress=progress,
                             announce=announce)
    except (StoreError, FunnelError) as exc:
        raise _fail(str(exc)) from None
    for stage in summary.stages:
        run = stage.summary
        rate = run.records_per_second_written
        name = f"stage {stage.name}: " if campaign.is_funnel else ""
        err.print(f"{name}{run.already_stored} already stored, ran {run.ran}: {run.ok} ok, {run.failed} failed, "
                  f"{run.unconverged} not converged (step limit reached; left off the hull and the ranking) "
                  f"in {run.wall_seconds:.1f} s; wrote {run.records_written} records "
                  f"({rate:.0f} records/s while writing) to {campaign.output}", highlight=False)
        for line in run.failures[:10]:
            err.print(f"  failed: {line}", highlight=False)
        if run.failed:
            err.print("  (rerun failed tasks with --rerun-failed)", highlight=False)
    if summary.ranking_error:
        err.print(f"[yellow]ranking skipped:[/] {escape(summary.ranking_error)}", highlight=False, markup=True)
        return
    _show_ranking(campaign.output, campaign=campaign)
    if campaign.is_funnel:
        err.print(f"funnel wall time {summary.wall_seconds:.1f} s", highlight=False)
        _print_comparisons(campaign.output, campaign)


def _plan(campaign, replan: bool = False):
    """The campaign's saved plan (planned and saved now when missing or out of date), reported on stderr."""
    from tansaku.workflows.planfile import ensure_plan, plan_path

    plan, reused = ensure_plan(campaign, replan=replan)
    merged = f", {plan.merged} repeated task ids merged" if plan.merged else ""
    err.print(f"plan {'reused from' if reused else 'saved to'} {plan_path(campaign)}{merged}", highlight=False)
    return plan


@app.command("plan")
def plan_command(
    campaign_file: Annotated[Path, typer.Argument(help="campaign TOML file")],
    replan: Annotated[bool, typer.Option("--replan", help="plan again even if the saved plan is current")] = False,
) -> None:
    """Plan a campaign once and save its tasks next to the store (<output stem>.plan.h5)."""
    from tansaku.calculators import CalculatorConfigError
    from tansaku.workflows.campaign import CampaignError, load_campaign
    from tansaku.workflows.plan import UnsupportedElementsError

    try:
        campaign = load_campaign(campaign_file)
        plan = _plan(campaign, replan)
    except (CampaignError, UnsupportedElementsError, CalculatorConfigError) as exc:
        raise _fail(str(exc)) from None
    out.print(f"{campaign.name}: {len(plan.tasks)} tasks ({plan.candidates} candidates, {plan.competing} competing "
              f"phases, {plan.references} references)", highlight=False)


def _rank_and_show(results: Path, ranking=None, calculator: str | None = None, strict: bool = True,
                   top: int = 10, stage: str | None = None) -> None:
    """Rank stored results, store the ranking in the file and print the top candidates (of each stage)."""
    from tansaku.results import StoreError
    from tansaku.workflows.ranking import RankingError, rank_results, stored_campaign

    try:
        campaign = stored_campaign(results)
        rank_results(results, ranking=ranking, calculator=calculator, stage=stage, campaign=campaign)
    except (RankingError, StoreError, OSError, ValueError) as exc:  # ValueError: a bad reference-entries file
        if strict:
            raise _fail(f"{results}: {exc}") from None
        err.print(f"[yellow]ranking skipped:[/] {escape(str(exc))}", highlight=False, markup=True)
        return
    _show_ranking(results, campaign=campaign, top=top, stage=stage)


def _show_ranking(results: Path, campaign=None, top: int = 10, stage: str | None = None) -> None:
    """Print the stored ranking's top candidates: per stage for a funnel (``stage``: that one only)."""
    import json

    from tansaku.results import read_table
    from tansaku.results.derived import derived_attrs
    from tansaku.workflows.ranking import by_rank, stage_of_rows

    table = by_rank(read_table(results))
    attrs = derived_attrs(results)
    if campaign is None or not campaign.is_funnel:
        parts = [(None, table, attrs)]
    else:
        metas = json.loads(attrs.get("stages", "{}"))
        names = stage_of_rows(results, campaign)[table.index.to_numpy()]
        parts = [(s.name, table[names == s.name], metas.get(s.name, {})) for s in campaign.stages
                 if stage in (None, s.name)]
    for name, frame, meta in parts:
        where = f"stage {name}: " if name else ""
        if "error" in meta:
            err.print(f"{where}not ranked: {meta['error']}", highlight=False)
            continue
        ranked = frame[frame["rank"] > 0]
        if meta.get("skipped_objectives"):
            err.print(f"{where}objectives without values skipped: {meta['skipped_objectives']}", highlight=False)
        unconverged = meta.get("unconverged", "")
        if unconverged and not unconverged.startswith("0 "):
            err.print(f"{where}{unconverged}", highlight=False)
        if meta.get("magnetisation"):
            err.print(f"{where}magnetisation used: {meta['magnetisation']}", highlight=False)
        if meta.get("reference_corrections"):
            err.print(f"{where}references: {meta['reference_corrections']}", highlight=False)
        if meta.get("mixed_energy_scales"):
            err.print(f"[bold yellow]warning:[/] {escape(where + meta['mixed_energy_scales'])}", highlight=False,
                      markup=True)
        if meta.get("selected_for"):
            err.print(f"{where}selected for stage {meta['selected_for']}", highlight=False)
        err.print(f"{where}ranking stored in {results}: {len(ranked)} candidates pass the filters, "
                  f"{int(ranked['on_pareto'].sum())} on the Pareto front", highlight=False)
        columns = RANK_COLUMNS if not name else (*RANK_COLUMNS, "selection_reason")
        out.print(_frame_table(ranked.head(top), columns,
                               title=f"{where}top {min(top, len(ranked))} candidates"))


def _stage_comparisons(results: Path, campaign, top: int | None = None) -> list:
    """Each stage against the next (report/stages.py), over the stored ranking."""
    from tansaku.report.stages import compare_stages
    from tansaku.results import read_table
    from tansaku.workflows.ranking import stage_of_rows

    table = read_table(results)
    names = stage_of_rows(results, campaign)
    return [compare_stages(table, names, a.name, b.name, top=top) for a, b in zip(campaign.stages, campaign.stages[1:])]


def _print_comparisons(results: Path, campaign) -> None:
    for comparison in _stage_comparisons(results, campaign):
        for line in comparison.lines():
            out.print(line, highlight=False)


TABLE_LIMIT = 100
RANK_COLUMNS = ("rank", "label", "e_above_hull", "formation_energy", "mu0_ms", "mu0_ms_upper", "magnetic_order",
                "kappa", "bh_max", "re_mass_fraction",
                "hhi_production", "on_pareto", "score")


def _frame_table(frame, columns, title: str = "") -> Table:
    table = Table(title=title or None, title_justify="left")
    columns = [c for c in columns if c in frame]
    for column in columns:
        table.add_column(column, justify="left" if frame[column].dtype == object else "right")
    for _, row in frame.iterrows():
        table.add_row(*(_format(row[c], digits=4) for c in columns))
    return table


def _executor_text(execution) -> str:
    if "workers" not in execution.options:
        return execution.executor
    return f"{execution.executor}, {execution.n_workers} workers"


def _table(title: str, counts: dict, header: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(header)
    table.add_column("records", justify="right")
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        table.add_row(str(key), str(n))
    return table


@app.command()
def status(
    target: Annotated[Path, typer.Argument(help="campaign TOML file or HDF5 results file")],
    shards: Annotated[Optional[Path], typer.Option(help="shard folder (default: <output stem>.shards/)")] = None,
) -> None:
    """Done / failed / pending tasks against the saved plan (stored and in shards), and counts of the
    stored records by status, calculator, prototype and kind (works while a campaign is writing)."""
    from tansaku.constants import STATUS_OK
    from tansaku.results import StoreError, read_table
    from tansaku.workflows.campaign import CampaignError, load_campaign
    from tansaku.workflows.planfile import PLAN_SUFFIX, PlanError, check_plan
    from tansaku.workflows.status import plan_status

    try:
        if target.suffix == ".toml":
            campaign = load_campaign(target)
            results, plan_file = campaign.output, check_plan(campaign)
        else:
            results, plan_file = target, target.with_name(target.stem + PLAN_SUFFIX)
            plan_file = plan_file if plan_file.exists() else None
        if plan_file is not None:
            st = plan_status(plan_file, results, shards)
            out.print(f"{plan_file}: {st.total} tasks: {st.done} done, {st.failed} failed, {st.pending} pending "
                      f"({st.stored} in the store, {st.in_shards} only in shards not yet collected)", highlight=False)
            for line in st.unreadable_shards:
                err.print(f"[yellow]unreadable shard:[/] {line}", highlight=False)
            _print_stage_status(plan_file, st)
        if target.suffix == ".toml":
            _print_jobs(campaign)
        if not results.exists():
            if target.suffix != ".toml":
                raise OSError(f"no such file: {results}")
            out.print(f"{results}: no results yet", highlight=False)
            return
        table = read_table(results, columns=["status", "calculator", "prototype", "kind", "converged", "stage_name"])
    except (CampaignError, PlanError, StoreError, OSError) as exc:
        raise _fail(f"{target}: {exc}") from None
    out.print(f"{results}: {len(table)} records", highlight=False)
    staged = "stage_name" in table and (table["stage_name"] != "").any()
    for column in (("stage_name",) if staged else ()) + ("status", "calculator", "prototype", "kind"):
        out.print(_table(f"by {column}", table[column].value_counts().to_dict(), column))
    ok = table[table["status"] == STATUS_OK]
    out.print(f"converged: {int(ok['converged'].sum())} of {len(ok)} ok records", highlight=False)


def _print_stage_status(plan_file: Path, st) -> None:
    """Done / failed / pending tasks per funnel stage (when the plan holds more than one stage)."""
    from collections import Counter

    from tansaku.workflows.planfile import read_task_ids, read_task_stages

    stages = read_task_stages(plan_file)
    if len(set(stages)) < 2:
        return
    by_id = dict(zip(read_task_ids(plan_file), stages))
    total, pending = Counter(stages), Counter(by_id[t] for t in st.pending_ids)
    failed = Counter(by_id[t] for t in st.failed_ids)
    table = Table(title="by stage (plan)", title_justify="left")
    for column in ("stage", "tasks", "done", "failed", "pending"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for name in dict.fromkeys(stages):
        table.add_row(name, str(total[name]), str(total[name] - pending[name] - failed[name]), str(failed[name]),
                      str(pending[name]))
    out.print(table)


@app.command()
def worker(
    campaign_file: Annotated[Path, typer.Argument(help="campaign TOML file (its plan must be saved)")],
    shard: Annotated[Path, typer.Option(help="shard HDF5 file this worker writes (one writer per shard)")],
    task_list: Annotated[Optional[Path], typer.Option(help="file of task ids, one per line (default: every "
                                                           "task of the saved plan)")] = None,
    select: Annotated[Optional[str], typer.Option(help="I/N: every N-th listed task starting at the I-th "
                                                       "(job array element I of N)")] = None,
    workers: Annotated[int, typer.Option(help="local worker processes (packed job); 0: run in this process")] = 0,
    deadline: Annotated[Optional[float], typer.Option(help="unix time the job ends: no task is started "
                                                           "that would not finish before it")] = None,
    task_seconds: Annotated[float, typer.Option(help="expected task time until one has finished (s)")] = 60.0,
    margin: Annotated[float, typer.Option(help="seconds kept free before the deadline for the last write")] = 5.0,
    rerun_failed: Annotated[bool, typer.Option("--rerun-failed", help="run tasks failed in the shard again")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = False,
) -> None:
    """Run listed tasks of the saved plan into a shard file (what batch jobs run; `collect` merges shards).

    Tasks already in the shard are skipped. SIGTERM, or the deadline, stops it cleanly: records of
    finished tasks are kept, and it exits 0.
    """
    import math

    from tansaku.results import StoreError
    from tansaku.workflows.campaign import CampaignError, load_campaign
    from tansaku.workflows.planfile import PlanError, check_plan, read_task_ids

    if workers < 0:
        raise _fail(f"--workers: must be >= 0 (0: run in this process), got {workers}")
    for option, value in (("--deadline", deadline), ("--task-seconds", task_seconds), ("--margin", margin)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise _fail(f"{option}: expected a finite number >= 0, got {value}")
    from tansaku.workflows.worker import TaskListError, parse_select, read_task_list, run_worker
    from tansaku.workflows.worker import select as select_ids

    try:
        selection = parse_select(select) if select else None
        campaign = load_campaign(campaign_file)
        ids = read_task_list(task_list) if task_list else read_task_ids(check_plan(campaign))
        ids = select_ids(ids, selection)
        summary = run_worker(campaign, ids, shard, workers=workers, deadline=deadline, prior_seconds=task_seconds,
                             margin_seconds=margin, rerun_failed=rerun_failed, console=err, show_progress=progress)
    except (CampaignError, PlanError, TaskListError, StoreError) as exc:
        raise _fail(str(exc)) from None
    why = " (stopped by SIGTERM)" if summary.terminated else " (deadline near)" if summary.held_back else ""
    err.print(f"worker {shard}: {summary.listed} tasks listed, {summary.already_stored} already in the shard, "
              f"ran {summary.ran}: {summary.ok} ok, {summary.failed} failed, {summary.unconverged} not converged; "
              f"{summary.held_back} not run{why}; "
              f"{summary.wall_seconds:.1f} s", highlight=False)


@app.command()
def collect(
    campaign_file: Annotated[Path, typer.Argument(help="campaign TOML file")],
    shards: Annotated[Optional[Path], typer.Option(help="shard folder (default: <output stem>.shards/)")] = None,
) -> None:
    """Merge shard files into the campaign store, idempotently by task id (run it as often as you like)."""
    from tansaku.results import StoreError
    from tansaku.workflows.campaign import CampaignError, load_campaign
    from tansaku.workflows.collect import collect as collect_shards
    from tansaku.workflows.collect import shards_dir

    try:
        campaign = load_campaign(campaign_file)
        folder = shards or shards_dir(campaign.output)
        summary = collect_shards(campaign.output, folder, campaign.text)
    except (CampaignError, StoreError) as exc:
        raise _fail(str(exc)) from None
    _print_collected(summary, folder, campaign.output)
    if campaign.is_funnel:
        err.print(f"funnel: `tansaku submit {campaign_file} --resume` ranks the collected results and, once a stage "
                  f"is complete, plans and submits the next one", highlight=False)


def _print_collected(summary, folder: Path, output: Path) -> None:
    """What ``collect`` merged: one line per shard and a total (on stderr)."""
    for report in summary.shards:
        note = f"  ({report.note})" if report.note else ""
        err.print(f"{report.path}: {report.rows} rows: {report.added} added, {report.replaced} replaced a failed "
                  f"row, {report.skipped} already stored{note}", highlight=False)
    err.print(f"collected {len(summary.shards)} shard(s) from {folder} into {output}: {summary.added} added, "
              f"{summary.replaced} replaced, {summary.skipped} already stored", highlight=False)


fireworks_app = typer.Typer(help="FireWorks backend: add a campaign's tasks to a LaunchPad as Fireworks (run them "
                                 "with rlaunch/qlaunch), collect what the rockets wrote.", no_args_is_help=True)
app.add_typer(fireworks_app, name="fireworks")
LaunchpadOption = Annotated[Optional[Path], typer.Option(
    "--launchpad", "-l", help="LaunchPad file (default: FireWorks' own, e.g. my_launchpad.yaml or LAUNCHPAD_LOC)")]


def _fireworks_errors() -> tuple[type[Exception], ...]:
    from tansaku.calculators import CalculatorConfigError
    from tansaku.results import StoreError
    from tansaku.workflows.campaign import CampaignError
    from tansaku.workflows.fireworks_backend import FireWorksError
    from tansaku.workflows.plan import UnsupportedElementsError
    from tansaku.workflows.planfile import PlanError

    return CampaignError, CalculatorConfigError, UnsupportedElementsError, PlanError, StoreError, FireWorksError


@fireworks_app.command("add")
def fireworks_add(
    campaign_file: Annotated[Path, typer.Argument(help="campaign TOML file (planned now if its plan is not saved)")],
    launchpad: LaunchpadOption = None,
    tasks_per_firework: Annotated[int, typer.Option(help="tasks per Firework: 1 for DFT-sized tasks, more to "
                                                         "spread FireWorks' overhead over fast ones")] = 1,
    workers: Annotated[int, typer.Option(help="processes per Firework (a local pool); 0: in the rocket")] = 0,
    category: Annotated[Optional[str], typer.Option(help="FireWorks _category (which FWorkers run them)")] = None,
    priority: Annotated[Optional[int], typer.Option(help="FireWorks _priority")] = None,
    rerun_failed: Annotated[bool, typer.Option("--rerun-failed", help="run FIZZLED Fireworks of the campaign "
                                                                      "again, and add failed tasks again")] = False,
) -> None:
    """Add the campaign's tasks that are not stored, in a shard or already in the LaunchPad as Fireworks
    (adding twice adds nothing new). Run them with `rlaunch rapidfire` or `qlaunch`."""
    from tansaku.workflows.campaign import load_campaign
    from tansaku.workflows.fireworks_backend import add_campaign, load_launchpad

    try:
        campaign = load_campaign(campaign_file)
        lpad = load_launchpad(launchpad)
        s = add_campaign(campaign, lpad, tasks_per_firework=tasks_per_firework, workers=workers, category=category,
                         priority=priority, rerun_failed=rerun_failed)
    except _fireworks_errors() as exc:
        raise _fail(str(exc)) from None
    ids = f" (fw_id {min(s.fw_ids)}..{max(s.fw_ids)})" if s.fw_ids else ""
    rerun = f"; {s.rerun} FIZZLED Fireworks set to run again" if s.rerun else ""
    err.print(f"{campaign.name}: {s.tasks} planned tasks (plan {'reused' if s.plan_reused else 'saved'}): {s.stored} "
              f"stored or in shards, {s.queued} already in the LaunchPad; added {s.added_tasks} tasks as "
              f"{s.fireworks} Fireworks{ids}{rerun}", highlight=False)
    if s.fireworks or s.rerun:
        lp = f" -l {launchpad}" if launchpad else ""
        err.print(f"run them: rlaunch{lp} rapidfire (or qlaunch{lp} rapidfire); then: tansaku fireworks collect "
                  f"{campaign_file}{' --launchpad ' + str(launchpad) if launchpad else ''}", highlight=False)


@fireworks_app.command("collect")
def fireworks_collect(
    campaign_file: Annotated[Path, typer.Argument(help="campaign TOML file")],
    launchpad: LaunchpadOption = None,
) -> None:
    """Merge the shards the campaign's Fireworks wrote into its store (idempotent); tasks of FIZZLED Fireworks
    that left no record are stored as failed with the Firework's error. Ranks once every Firework has ended."""
    from tansaku.workflows.campaign import load_campaign
    from tansaku.workflows.collect import shards_dir
    from tansaku.workflows.fireworks_backend import collect_campaign, load_launchpad

    try:
        campaign = load_campaign(campaign_file)
        summary = collect_campaign(campaign, load_launchpad(launchpad))
    except _fireworks_errors() as exc:
        raise _fail(str(exc)) from None
    states = ", ".join(f"{n} {state}" for state, n in sorted(summary.states.items())) or "none"
    err.print(f"{campaign.name}: Fireworks in the LaunchPad: {states}", highlight=False)
    if summary.fizzled_recorded:
        err.print(f"{summary.fizzled_recorded} tasks of FIZZLED Fireworks left no record: stored as failed with the "
                  f"Firework's error", highlight=False)
    if summary.not_in_plan:
        err.print(f"{summary.not_in_plan} tasks of FIZZLED Fireworks are not in the current plan (left out)",
                  highlight=False)
    _print_collected(summary.collected, shards_dir(campaign.output), campaign.output)
    if summary.unfinished:
        err.print(f"{summary.unfinished} Fireworks not finished yet: collect again later", highlight=False)
    elif summary.states and campaign.output.exists():
        _rank_and_show(campaign.output, ranking=None if campaign.is_funnel else campaign.ranking,
                       calculator=campaign.calculator.name, strict=False)


@app.command()
def submit(
    campaign_file: Annotated[Path, typer.Argument(help="campaign TOML file")],
    scheduler: Annotated[Optional[str], typer.Option(
        help="slurm, pbs, torque or lsf (overrides the campaign's \\[scheduler] name)")] = None,
    mode: Annotated[str, typer.Option(help="array: a job array, each element a share of the tasks; packed: one "
                                           "allocation running a worker pool on all its cores")] = "array",
    resume: Annotated[bool, typer.Option("--resume", help="submit only tasks neither stored, in a shard, nor "
                                                          "covered by a queued/running job")] = False,
    machine: Annotated[Optional[Path], typer.Option(help="machine profile TOML with a \\[scheduler] table "
                                                         "(replaces the campaign's)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the job script, submit nothing")] = False,
) -> None:
    """Run the campaign's saved plan as batch jobs writing shards; `status` follows them, `collect` merges."""
    from tansaku.calculators import CalculatorConfigError
    from tansaku.workflows.campaign import CampaignError, load_campaign
    from tansaku.workflows.collect import shards_dir
    from tansaku.workflows.funnel import FunnelError, advance_funnel
    from tansaku.workflows.machine import scheduler_settings
    from tansaku.workflows.plan import UnsupportedElementsError
    from tansaku.workflows.planfile import PlanError
    from tansaku.workflows.status import pending_task_ids
    from tansaku.workflows.submit import SubmitError, jobs_path, submit_campaign

    try:
        campaign = load_campaign(campaign_file)
        settings = scheduler_settings(campaign.scheduler, machine, scheduler)
        plan = _plan(campaign)
        if campaign.is_funnel:
            _, current = advance_funnel(campaign, plan)
            err.print(f"current stage: {current} (later stages are planned once it is collected)", highlight=False)
        pending = pending_task_ids(campaign)
        result = submit_campaign(campaign, campaign_file, settings, pending, shards_dir(campaign.output), mode=mode,
                                 resume=resume, dry_run=dry_run)
    except (CampaignError, UnsupportedElementsError, CalculatorConfigError, PlanError, SubmitError,
            FunnelError) as exc:
        raise _fail(str(exc)) from None
    err.print(f"{result.pending} tasks pending (neither stored nor in a shard), {result.covered} of them covered by "
              f"queued/running jobs", highlight=False)
    if result.submitted == 0:
        err.print("nothing to submit", highlight=False)
    elif dry_run:
        sys.stdout.write(result.script_text)  # verbatim: no wrapping of long command lines
        err.print(f"dry run: would submit {result.submitted} tasks ({mode} mode) to {settings.name}", highlight=False)
    else:
        job = result.job
        shape = f"array of {job.elements} elements" if job.mode == "array" else "packed job"
        err.print(f"submitted {settings.name} job {job.job_id} ({shape}, {job.tasks} tasks); recorded in "
                  f"{jobs_path(campaign)}; follow with `tansaku status {campaign_file}`, merge with "
                  f"`tansaku collect {campaign_file}`", highlight=False)


def _print_jobs(campaign) -> None:
    """The campaign's submitted batch jobs and their states (as far as the scheduler still knows them)."""
    from tansaku.hpc.jobs import SchedulerError
    from tansaku.workflows.submit import SubmitError, job_statuses, read_jobs

    try:
        jobs = read_jobs(campaign)
        if not jobs:
            return
        statuses = job_statuses(jobs)
    except (SubmitError, SchedulerError) as exc:
        err.print(f"[yellow]jobs not shown:[/] {exc}", highlight=False)
        return
    table = Table(title="batch jobs", title_justify="left")
    for column in ("job", "scheduler", "mode", "tasks", "state", "elements"):
        table.add_column(column)
    for st in statuses:
        counts: dict[str, int] = {}
        for state in st.elements.values():
            counts[state] = counts.get(state, 0) + 1
        elements = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) if st.job.mode == "array" else ""
        table.add_row(st.job.job_id, st.job.scheduler, st.job.mode, str(st.job.tasks), st.state, elements)
    out.print(table)


@app.command()
def show(
    results: Annotated[Path, typer.Argument(help="HDF5 results file")],
    record_id: Annotated[str, typer.Argument(help="task id (or a unique prefix) or candidate id")],
    cif: Annotated[Optional[Path], typer.Option(help="write the final structure as CIF")] = None,
    extxyz: Annotated[Optional[Path], typer.Option(help="write the final structure as extended XYZ")] = None,
) -> None:
    """Print one record; optionally export its final structure."""
    from ase.io import write

    from tansaku.results import StoreError, read_record

    try:
        fields, atoms = read_record(results, record_id)
    except (StoreError, KeyError, ValueError, OSError) as exc:
        raise _fail(f"{results}: {exc}") from None
    from tansaku.report.sources import record_caveats, source_of
    from tansaku.results.derived import derived_attrs
    from tansaku.results.tables import settings_table

    fields["settings"] = settings_table(results).get(str(fields.get("settings_id", "")), "")
    table = Table(show_header=False)
    derived = _derived_values(results, fields["row"])
    for key, value in {**fields, **derived}.items():
        table.add_row(key, _format(value))
    source = source_of(str(fields.get("calculator", "")),
                       str(fields.get("stage_name", "") or fields.get("stage", "")))  # funnel stage, else mode
    table.add_row("source", source.text())
    from tansaku.workflows.ranking import stage_metadata

    for meta in (derived_attrs(results), *stage_metadata(results).values()):  # the ranking (of each stage)
        if meta.get("mixed_energy_scales") and meta.get("calculator") == fields.get("calculator"):
            table.add_row("warning", meta["mixed_energy_scales"])  # its formation energy and e_above_hull
            break
    if fields.get("status") == "ok" and not fields.get("converged", True):
        fmax = _format(fields.get("fmax"), 3)
        table.add_row("note", f"single point: forces or stress above fmax at this structure (atoms' fmax {fmax} "
                              f"eV/Å; the structure is the previous stage's); a single-point stage ranks it as "
                              f"computed" if fields.get("steps") == 0 else
                              f"NOT CONVERGED: the relaxation stopped at its step limit ({fields.get('steps')} "
                              f"steps, fmax {fmax} eV/Å); not a result: left off the hull and the ranking")
    if source.caveat:
        table.add_row("caveat", source.caveat)
    for line in record_caveats(fields, derived):
        table.add_row("caveat", line)
    out.print(table)
    for option, target, fmt in (("--cif", cif, "cif"), ("--extxyz", extxyz, "extxyz")):
        if target is None:
            continue
        if target.exists() and target.resolve() == results.resolve():
            raise _fail(f"{option}: {target} is the results file itself; name another file")
        try:
            write(target, atoms, format=fmt)
        except OSError as exc:
            raise _fail(f"{option}: cannot write {target}: {exc.strerror or exc}") from None
        err.print(f"wrote {target}", highlight=False)


@app.command("rank")
def rank_command(
    results: Annotated[Path, typer.Argument(help="HDF5 results file")],
    objective: Annotated[Optional[list[str]], typer.Option(
        help="objective as COLUMN:min|max[:WEIGHT], repeatable (default: the campaign's)")] = None,
    filter_: Annotated[Optional[list[str]], typer.Option("--filter", help="hard filter, e.g. 'e_above_hull <= 0.1'")] = None,
    calculator: Annotated[Optional[str], typer.Option(help="rank the records of this calculator")] = None,
    reference_entries: Annotated[Optional[Path], typer.Option(
        help="JSON list of pymatgen ComputedEntry (Materials Project) to use as references")] = None,
    allow_mixed_energy_scales: Annotated[bool, typer.Option(
        "--allow-mixed-energy-scales", help="use the reference entries even with ML/EMT energies (flagged)")] = False,
    top: Annotated[int, typer.Option(help="candidates to print")] = 10,
    stage: Annotated[Optional[str], typer.Option(help="funnel stage whose ranking the options change (default: "
                                                      "every stage); each stage is ranked on its own hull")] = None,
) -> None:
    """Recompute stability, properties and ranking (e.g. with new weights) and store them in the file."""
    from tansaku.workflows.campaign import CampaignError
    from tansaku.workflows.ranking import ranking_with_overrides, stored_campaign, stored_ranking_settings

    from tansaku.results import StoreError

    if top < 0:
        raise _fail(f"--top: must be >= 0, got {top}")
    if reference_entries is not None and not reference_entries.is_file():
        raise _fail(f"--reference-entries: {reference_entries}: no such file")
    try:
        campaign = stored_campaign(results)
        if campaign is not None and campaign.is_funnel:
            base = campaign.stage(stage or campaign.stage_name).ranking
            overridden = objective or filter_ is not None or reference_entries or allow_mixed_energy_scales
            ranking = ranking_with_overrides(base, objective, filter_, reference_entries,
                                             allow_mixed_energy_scales) if overridden else None
        else:
            stored, _ = stored_ranking_settings(results)
            ranking = ranking_with_overrides(stored, objective, filter_, reference_entries, allow_mixed_energy_scales)
    except (CampaignError, StoreError, OSError, ValueError) as exc:
        raise _fail(f"{results}: {exc}") from None
    _rank_and_show(results, ranking=ranking, calculator=calculator, top=top, stage=stage)


@app.command()
def query(
    results: Annotated[Path, typer.Argument(help="HDF5 results file")],
    where: Annotated[Optional[list[str]], typer.Option(
        help="filter, repeatable: 'e_above_hull <= 0.05', 'prototype == ThMn12', 'label ~ Co', 'elements has Sm,Co'")] = None,
    sort: Annotated[Optional[str], typer.Option(help="sort column; prefix with - for descending")] = None,
    limit: Annotated[Optional[int], typer.Option(help="at most this many rows")] = None,
    columns: Annotated[Optional[str], typer.Option(help="comma-separated output columns")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
) -> None:
    """Select records by stored and derived columns (a small safe grammar, no eval)."""
    from tansaku.results import StoreError
    from tansaku.results.query import QueryError, format_table
    from tansaku.results.query import query as run_query

    if fmt not in ("table", "csv", "json"):
        raise _fail(f"--format: expected table, csv or json, got {fmt!r}")
    if limit is not None and limit < 0:
        raise _fail(f"--limit: must be >= 0, got {limit}")
    capped = limit is None and fmt == "table"
    limit = TABLE_LIMIT if capped else limit
    try:
        frame = run_query(results, where=where or (), sort=sort, limit=limit,
                          columns=[c.strip() for c in columns.split(",")] if columns else None)
    except (QueryError, StoreError, OSError) as exc:
        raise _fail(f"{results}: {exc}") from None
    if capped:
        err.print(f"(at most {TABLE_LIMIT} rows; --limit N to change, --format csv/json for all)", highlight=False)
    print(format_table(frame, fmt), end="")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="HDF5 results file")],
    output: Annotated[Path, typer.Option("--output", "-o", help="report folder")] = Path("report"),
    top: Annotated[int, typer.Option(help="candidates in the ranked table")] = 50,
) -> None:
    """Write PNG plots (hull, Pareto front, rare earth vs Ms) and an HTML page with the ranked table.

    For a funnel: one report per stage (``OUTPUT/<stage>/``) and ``OUTPUT/index.html`` comparing the
    stages side by side (rank correlation, energy differences, who moved in and out of the top N)."""
    from tansaku.report import objectives_used, ranking_warnings, write_report
    from tansaku.results import StoreError, derived_columns
    from tansaku.workflows.ranking import RankingError, rank_results, ranked_table, stored_campaign

    if output.exists() and not output.is_dir():
        raise _fail(f"--output: {output} is a file, not a folder; name a folder for the report")
    if top < 0:
        raise _fail(f"--top: must be >= 0, got {top}")
    try:
        try:
            campaign = stored_campaign(results)
        except RankingError:
            if "rank" not in derived_columns(results):
                raise
            campaign = None  # ranked already (by a process that could read the campaign): report that ranking
        funnel = campaign is not None and campaign.is_funnel
        table = ranked_table(results) if "rank" in derived_columns(results) else rank_results(results,
                                                                                              campaign=campaign)
        if funnel:
            index = _funnel_report(results, campaign, output, top)
        else:
            objectives = objectives_used(results)  # as ranked: objectives without values left out
            index = write_report(table, output, title=f"tansaku report: {results.name}", objectives=objectives,
                                 top=top, warnings_shown=ranking_warnings(results))
    except (RankingError, StoreError, OSError) as exc:
        raise _fail(f"{results}: {exc}") from None
    err.print(f"wrote {index}", highlight=False)


@app.command()
def upgrade(
    results: Annotated[Path, typer.Argument(help="HDF5 results file")],
) -> None:
    """Rewrite a results file in the current schema version (atomic copy; the ranking still applies).

    Files of an older version are read and appended as they are; only this command converts them.
    """
    from tansaku.results import StoreError
    from tansaku.results.store import upgrade as upgrade_store

    try:
        old, new, rows = upgrade_store(results)
    except (StoreError, OSError) as exc:
        raise _fail(f"{results}: {exc}") from None
    if old == new:
        out.print(f"{results}: already schema version {new} ({rows} records)", highlight=False)
    else:
        out.print(f"{results}: upgraded from schema version {old} to {new} ({rows} records)", highlight=False)


def _funnel_report(results: Path, campaign, output: Path, top: int) -> Path:
    """Per-stage reports under ``output/<stage>/`` and the stage comparison in ``output/index.html``."""
    from tansaku.report import write_report
    from tansaku.report.html import objectives_of
    from tansaku.report.stages import write_comparison
    from tansaku.results import read_table
    from tansaku.workflows.ranking import by_rank, stage_metadata, stage_of_rows

    table = read_table(results)
    names = stage_of_rows(results, campaign)
    metas = stage_metadata(results)
    links = {}
    for stage in campaign.stages:
        frame = table[names == stage.name]
        if not len(frame) or "error" in metas.get(stage.name, {"error": ""}):
            continue
        frame = by_rank(frame)
        objectives = objectives_of(metas[stage.name].get("settings", ""))  # as ranked: empty ones left out
        mixed = metas.get(stage.name, {}).get("mixed_energy_scales", "")
        write_report(frame, output / stage.name, title=f"tansaku report: {results.name}, stage {stage.name} "
                     f"({stage.calculator.name})", objectives=objectives, top=top,
                     warnings_shown=[mixed] if mixed else [])
        links[f"{stage.name} ({stage.calculator.name})"] = f"{stage.name}/index.html"
    comparisons = _stage_comparisons(results, campaign)
    for comparison in comparisons:
        for line in comparison.lines():
            out.print(line, highlight=False)
    output.mkdir(parents=True, exist_ok=True)
    return write_comparison(comparisons, links, output, title=f"tansaku report: {results.name} (funnel)")


def _derived_values(results: Path, row: int) -> dict[str, object]:
    """The stored ranking/derived values of one row (empty before the first ranking)."""
    from tansaku.results import derived_columns, read_columns

    names = derived_columns(results)
    return {name: values[row] for name, values in read_columns(results, names).items()} if names else {}


def _format(value: object, digits: int = 8) -> str:
    import numpy as np

    if isinstance(value, float | np.floating):
        return f"{value:.{digits}g}"
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, suppress_small=True, max_line_width=120)
    return str(value)


if __name__ == "__main__":
    app()
