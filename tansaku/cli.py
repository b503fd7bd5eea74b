"""The ``tansaku`` command: run, status, show, rank, query, report."""

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
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200, markup=False)


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
    executor: Annotated[Optional[str], typer.Option(help="serial or dask (overrides the campaign)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="worker processes (default: one per core)")] = None,
    rerun_failed: Annotated[bool, typer.Option("--rerun-failed", help="run failed tasks again")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="plan only: count candidates and tasks")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run a campaign; running it again resumes (stored tasks are skipped)."""
    from tansaku.results import StoreError
    from tansaku.workflows.campaign import CampaignError, load_campaign
    from tansaku.workflows.plan import UnsupportedElementsError, make_plan
    from tansaku.workflows.runner import execute_plan

    try:
        campaign = load_campaign(campaign_file)
        execution = dataclasses.replace(campaign.execution, **{k: v for k, v in
                                        (("executor", executor), ("workers", workers)) if v is not None})
        if execution.executor not in ("serial", "dask"):
            raise CampaignError(f"--executor: unknown executor {execution.executor!r}; choose serial or dask")
        campaign = dataclasses.replace(campaign, execution=execution, output=output or campaign.output)
        plan = make_plan(campaign)
    except (CampaignError, UnsupportedElementsError) as exc:  # calculator errors: CampaignError (load_campaign)
        raise _fail(str(exc)) from None
    err.print(f"{campaign.name}: {plan.generation.generated} candidates generated, "
              f"{plan.generation.duplicates} duplicates removed -> {len(plan.generation.candidates)} candidates "
              f"+ {len(plan.competing)} competing phases + {len(plan.references)} references = {len(plan.tasks)} tasks "
              f"({campaign.calculator.name}, {_executor_text(campaign.execution)})",
              highlight=False)
    if dry_run:
        for task in plan.tasks:
            out.print(f"{task.task_id}  {task.kind:9s}  {len(task.atoms):4d} atoms  {task.label}", highlight=False)
        return
    try:
        summary = execute_plan(plan, campaign, rerun_failed=rerun_failed, console=err, show_progress=progress)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    rate = summary.records_per_second_written
    err.print(f"{summary.already_stored} already stored, ran {summary.ran}: {summary.ok} ok, {summary.failed} failed "
              f"in {summary.wall_seconds:.1f} s; wrote {summary.records_written} records "
              f"({rate:.0f} records/s while writing) to {campaign.output}", highlight=False)
    for line in summary.failures[:10]:
        err.print(f"  failed: {line}", highlight=False)
    if summary.failed:
        err.print("  (rerun failed tasks with --rerun-failed)", highlight=False)
    _rank_and_show(campaign.output, ranking=campaign.ranking, calculator=campaign.calculator.name, strict=False)


def _rank_and_show(results: Path, ranking=None, calculator: str | None = None, strict: bool = True,
                   top: int = 10) -> None:
    """Rank stored results, store the ranking in the file and print the top candidates."""
    from tansaku.results import StoreError
    from tansaku.results.derived import derived_attrs
    from tansaku.workflows.ranking import RankingError, rank_results

    try:
        table = rank_results(results, ranking=ranking, calculator=calculator)
    except (RankingError, StoreError, OSError) as exc:
        if strict:
            raise _fail(f"{results}: {exc}") from None
        err.print(f"[yellow]ranking skipped:[/] {escape(str(exc))}", highlight=False, markup=True)
        return
    ranked = table[table["rank"] > 0]
    skipped = derived_attrs(results).get("skipped_objectives", "")
    if skipped:
        err.print(f"objectives without values skipped: {skipped}", highlight=False)
    magnetisation = derived_attrs(results).get("magnetisation", "")
    if magnetisation:
        err.print(f"magnetisation used: {magnetisation}", highlight=False)
    err.print(f"ranking stored in {results}: {len(ranked)} candidates pass the filters, "
              f"{int(ranked['on_pareto'].sum())} on the Pareto front", highlight=False)
    out.print(_frame_table(ranked.head(top), RANK_COLUMNS, title=f"top {min(top, len(ranked))} candidates"))


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
    if execution.executor == "serial":
        return "serial"
    return f"{execution.executor}, {execution.n_workers} workers"


def _table(title: str, counts: dict, header: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(header)
    table.add_column("records", justify="right")
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        table.add_row(str(key), str(n))
    return table


@app.command()
def status(results: Annotated[Path, typer.Argument(help="HDF5 results file")]) -> None:
    """Counts by status, calculator, prototype and kind (works while a campaign is writing)."""
    from tansaku.constants import STATUS_OK
    from tansaku.results import StoreError, read_table

    try:
        table = read_table(results, columns=["status", "calculator", "prototype", "kind", "converged"])
    except (StoreError, OSError) as exc:
        raise _fail(f"{results}: {exc}") from None
    out.print(f"{results}: {len(table)} records", highlight=False)
    for column in ("status", "calculator", "prototype", "kind"):
        out.print(_table(f"by {column}", table[column].value_counts().to_dict(), column))
    ok = table[table["status"] == STATUS_OK]
    out.print(f"converged: {int(ok['converged'].sum())} of {len(ok)} ok records", highlight=False)


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
    from tansaku.report.sources import source_of

    table = Table(show_header=False)
    for key, value in {**fields, **_derived_values(results, fields["row"])}.items():
        table.add_row(key, _format(value))
    source = source_of(str(fields.get("calculator", "")), str(fields.get("stage", "")))
    table.add_row("source", source.text())
    if source.caveat:
        table.add_row("caveat", source.caveat)
    out.print(table)
    if cif:
        write(cif, atoms, format="cif")
        err.print(f"wrote {cif}")
    if extxyz:
        write(extxyz, atoms, format="extxyz")
        err.print(f"wrote {extxyz}")


@app.command("rank")
def rank_command(
    results: Annotated[Path, typer.Argument(help="HDF5 results file")],
    objective: Annotated[Optional[list[str]], typer.Option(
        help="objective as COLUMN:min|max[:WEIGHT], repeatable (default: the campaign's)")] = None,
    filter_: Annotated[Optional[list[str]], typer.Option("--filter", help="hard filter, e.g. 'e_above_hull <= 0.1'")] = None,
    calculator: Annotated[Optional[str], typer.Option(help="rank the records of this calculator")] = None,
    reference_entries: Annotated[Optional[Path], typer.Option(
        help="JSON list of pymatgen ComputedEntry to use as elemental references")] = None,
    top: Annotated[int, typer.Option(help="candidates to print")] = 10,
) -> None:
    """Recompute stability, properties and ranking (e.g. with new weights) and store them in the file."""
    from tansaku.workflows.campaign import CampaignError
    from tansaku.workflows.ranking import ranking_with_overrides, stored_ranking_settings

    try:
        stored, _ = stored_ranking_settings(results)
        ranking = ranking_with_overrides(stored, objective, filter_, reference_entries)
    except (CampaignError, OSError, ValueError) as exc:
        raise _fail(f"{results}: {exc}") from None
    _rank_and_show(results, ranking=ranking, calculator=calculator, top=top)


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
    if limit is None and fmt == "table":
        limit = TABLE_LIMIT
        err.print(f"(at most {TABLE_LIMIT} rows; --limit N to change, --format csv/json for all)", highlight=False)
    try:
        frame = run_query(results, where=where or (), sort=sort, limit=limit,
                          columns=[c.strip() for c in columns.split(",")] if columns else None)
    except (QueryError, StoreError, OSError) as exc:
        raise _fail(f"{results}: {exc}") from None
    print(format_table(frame, fmt), end="")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="HDF5 results file")],
    output: Annotated[Path, typer.Option("--output", "-o", help="report folder")] = Path("report"),
    top: Annotated[int, typer.Option(help="candidates in the ranked table")] = 50,
) -> None:
    """Write PNG plots (hull, Pareto front, rare earth vs Ms) and an HTML page with the ranked table."""
    from tansaku.report import objectives_used, write_report
    from tansaku.results import StoreError, derived_columns
    from tansaku.workflows.ranking import RankingError, rank_results, ranked_table

    try:
        table = ranked_table(results) if "rank" in derived_columns(results) else rank_results(results)
        objectives = objectives_used(results)  # as ranked: objectives without values left out
        index = write_report(table, output, title=f"tansaku report: {results.name}", objectives=objectives, top=top)
    except (RankingError, StoreError, OSError) as exc:
        raise _fail(f"{results}: {exc}") from None
    err.print(f"wrote {index}", highlight=False)


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
