"""Engine overhead (issue 11 item 5): the same EMT relaxations through a plain loop, a process pool,
quacc + Dask, jobflow ``run_locally`` and ``tansaku run``, side by side in one run.

    python -m benchmarks engine [--quick]
    python benchmarks/bench_engine.py [REPEATS] [--tasks 200] [--workers 2] [--calculator emt] [--chgnet 8]
                                      [--jobflow-tasks 50] [--quacc-repeats 1] [--task-timeout S]

The tasks are the first ``--tasks`` of a real campaign plan (fcc 2x1x1 / L12 / L10 alloys of the EMT
metals and their elemental references; FIRE + FrechetCellFilter, fmax 0.05 eV/Å, at most 300 steps).
Every variant relaxes the same structures with the same calculator, one pinned thread per worker:

* plain loop: ASE's FIRE on ASE's FrechetCellFilter, one structure after another in this process (the
  floor the issue set; each structure timed, so the floor of any subset is known);
* plain loop, tansaku's cell filter: the same with ``FastFrechetCellFilter`` (calculators/cell_filter.py:
  the same variables and forces to round-off, computed once per state), which ``tansaku run`` uses. For
  small cells ASE's filter arithmetic costs more than EMT itself, so ``tansaku run`` beats the first
  floor; against this second floor, which runs the same relaxation code, its efficiency is the engine's
  overhead alone;
* ProcessPool xW: the same function mapped on a ``concurrent.futures`` pool of W processes;
* quacc + Dask xW: quacc's ``relax_job`` (its EMT recipe; for another calculator the same quacc Runner in a
  quacc ``@job``) on a Dask LocalCluster of W workers started in the timing, run by the quacc venv
  (scripts/bench/quacc.sh; the rows are left out, with a note, where it is missing);
* jobflow run_locally: the same quacc jobs as one jobflow Flow (serial: compared with the plain loop on
  the first ``--jobflow-tasks`` structures);
* tansaku run (pool/dask xW): ``execute_plan`` of the plan into a fresh HDF5 store: executor start-up,
  task hand-out, task sandboxes (the default ``task_timeout``), records and HDF5 appends included.

Each repeat runs every variant once, back to back, each in a fresh Python process that makes the plan
and warms the calculator before its clock starts (``--variant NAME`` runs one): no variant inherits the
threads, caches or heap of another. ``tansaku run``'s time includes the start of its pool's forkserver in
full (the real command overlaps it with planning). quacc and jobflow run in the first ``--quacc-repeats``
repeats only (they are far from tansaku, and they take a third of the time).

Efficiency = (plain loop time / W) / variant time (1.00: no overhead, W-fold parallel); on a machine
whose cores are busy with other work W processes do not run W-fold, so tansaku is also compared with the
plain ProcessPool run back to back (the parallel floor under the same load). The last rows give
tansaku's throughput over quacc + Dask's. ``--chgnet N`` adds N SmFe12 cells relaxed with CHGNet for a
fixed number of FIRE steps, each side a fresh Python process timed from its start (a plain script vs
``tansaku run``'s engine on a pool of one worker): both pay the interpreter, torch and the model once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's tansaku; tests/synthetic.py

from benchmarks._table import Row

QUACC_VENV = Path(os.environ.get("TANSAKU_QUACC_VENV", Path.home() / ".cache" / "tansaku" / "quacc-venv"))
FMAX, STEPS = 0.05, 300
METALS = '["Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt"]'
CAMPAIGN = f"""
[campaign]
name = "bench-engine"
[calculator]
name = "{{calculator}}"
[relax]
optimizer = "FIRE"
fmax = {FMAX}
steps = {STEPS}
[execution]
executor = "pool"
workers = {{workers}}
{{extra}}
[[prototypes]]
prototype = "fcc"
sites = {{{{ "4a" = ["Cu", "Ni", "Pd", "Ag", "Au", "Pt", "Al"] }}}}
supercell = [2, 1, 1]
include_parent = false
[[prototypes.variants]]
substitute = {{{{ "4a" = {{{{ Au = 2 }}}} }}}}
[[prototypes.variants]]
substitute = {{{{ "4a" = {{{{ Ni = 3 }}}} }}}}
[[prototypes.variants]]
substitute = {{{{ "4a" = {{{{ Pt = 1, Pd = 1 }}}} }}}}
[[prototypes.variants]]
substitute = {{{{ "4a" = {{{{ Au = 1 }}}} }}}}
[[prototypes.variants]]
substitute = {{{{ "4a" = {{{{ Ag = 2, Ni = 2 }}}} }}}}
[[prototypes]]
prototype = "L12"
sites = {{{{ "1a" = {METALS}, "3c" = {METALS} }}}}
distinct_elements = true
[[prototypes]]
prototype = "L10"
sites = {{{{ "1a" = {METALS}, "1d" = {METALS} }}}}
distinct_elements = true
"""


def _pin() -> None:
    from tansaku.hpc.threads import pin_threads

    pin_threads(1)


def relax_plain(atoms, calculator: str, fmax: float = FMAX, steps: int = STEPS, cell_filter: str = "ase") -> int:
    """The floor: ASE FIRE on ASE's FrechetCellFilter (``cell_filter="tansaku"``: on tansaku's
    FastFrechetCellFilter, which ``tansaku run`` uses) with a fresh calculator, nothing else; returns the steps."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE

    from tansaku.calculators import get_calculator
    from tansaku.calculators.cell_filter import FastFrechetCellFilter

    atoms = atoms.copy()
    atoms.calc = get_calculator(calculator)
    optimizer = FIRE((FastFrechetCellFilter if cell_filter == "tansaku" else FrechetCellFilter)(atoms), logfile=None)
    optimizer.run(fmax=fmax, steps=steps)
    return optimizer.nsteps


def plan_for(calculator: str, tasks: int, workers: int, folder: Path, task_timeout: float | None = None):
    from tansaku.workflows.campaign import parse_campaign
    from tansaku.workflows.plan import make_plan

    extra = f"task_timeout = {task_timeout}" if task_timeout is not None else ""
    campaign = parse_campaign(CAMPAIGN.format(calculator=calculator, workers=workers, extra=extra), base_dir=folder)
    plan = make_plan(campaign)
    if len(plan.tasks) < tasks:
        raise SystemExit(f"the benchmark campaign has {len(plan.tasks)} tasks, fewer than --tasks {tasks}")
    plan.tasks = plan.tasks[:tasks]
    return campaign, plan


def tansaku_run(campaign, plan, executor: str, workers: int, output: Path) -> float:
    """``tansaku run``'s engine: execute_plan into a fresh store (executor start, HDF5 writes included)."""
    from tansaku.workflows.runner import execute_plan

    output.unlink(missing_ok=True)
    campaign = dataclasses.replace(campaign, output=output, execution=campaign.execution.with_overrides(
        executor=executor, workers=workers))
    start = time.perf_counter()
    summary = execute_plan(plan, campaign, show_progress=False)
    seconds = time.perf_counter() - start
    if summary.ran != len(plan.tasks):
        raise RuntimeError(f"tansaku run stored {summary.ran} of {len(plan.tasks)} tasks")
    return seconds


def quacc_run(structures_file: Path, engine: str, workers: int, calculator: str) -> float | None:
    """quacc's wall time from its own timing (Dask cluster start-up included), None without the venv."""
    python = QUACC_VENV / "bin" / "python"
    if not python.exists():
        return None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run([str(python), str(REPO / "benchmarks" / "_quacc_run.py"), str(structures_file), engine,
                           str(workers), calculator, str(FMAX), str(STEPS)], env=env, capture_output=True,
                          text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def timed_loop(structures, calculator: str) -> list[float]:
    """The plain loop in this process, each structure's time (the jobflow row's floor)."""
    times = []
    for atoms in structures:
        start = time.perf_counter()
        relax_plain(atoms, calculator)
        times.append(time.perf_counter() - start)
    return times


VARIANTS = ("loop", "loop-tansaku-filter", "pool", "tansaku-pool", "tansaku-pool-cli", "tansaku-dask")
TANSAKU = ("tansaku-pool", "tansaku-pool-cli", "tansaku-dask")


def label(variant: str, workers: int) -> str:
    """A variant's name in the table."""
    return {"pool": f"ProcessPool x{workers}", "tansaku-pool": f"tansaku run, pool x{workers}",
            "tansaku-pool-cli": f"tansaku run, pool x{workers}, CLI order",
            "tansaku-dask": f"tansaku run, dask x{workers}"}[variant]


def _adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``): a task
    sandbox outlives its worker by a moment and would be reaped by init, its CPU time lost to the count."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap_all(patience: float = 10.0) -> None:
    """Wait for every descendant that ends within ``patience`` s of the last one (their CPU time then
    counts in RUSAGE_CHILDREN); long-lived helpers (multiprocessing's resource tracker) are left."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            deadline = time.monotonic() + patience
        else:
            time.sleep(0.05)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of every descendant it (or they) reaped."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_variant(variant: str, tasks: int, workers: int, calculator: str, task_timeout: float | None,
                folder: Path) -> tuple[float, float]:
    """One variant, timed in this (fresh) process: the plan is made and the calculator warmed (imports,
    JIT) before the clock starts, so that every variant starts from the same warm interpreter.

    * ``loop``: the plain loop, one structure after another;
    * ``pool``: the same function on a ``ProcessPoolExecutor`` of ``workers`` processes (the default fork
      start: the cheapest start-up Python offers), pool start-up included;
    * ``tansaku-pool`` / ``tansaku-dask``: ``prepare_executor`` (the pool's forkserver, which ``tansaku run``
      starts while it plans: here it is timed in full) and ``execute_plan`` into a fresh HDF5 store;
    * ``tansaku-pool-cli``: the same in ``tansaku run``'s order: ``prepare_executor`` before the plan is
      made, so that the forkserver imports tansaku (~0.9 s of a fresh interpreter) on the other core while
      the plan is made, as in the real command (268 tasks plan in ~1.4 s here). Its CPU seconds miss those
      imports, so it has no CPU row.

    Returns the wall seconds and the CPU seconds of every process of the variant (workers and sandboxes
    included: the pool's forkserver is stopped, so that it and its children are reaped, before counting):
    the machine's wall times drift by up to 2x between identical runs here, CPU seconds far less.
    """
    from tansaku.workflows.executors import prepare_executor

    _pin()
    if variant == "tansaku-pool-cli":
        prepare_executor("pool")  # as tansaku run does: the forkserver imports while the plan is made
    campaign, plan = plan_for(calculator, tasks, workers, folder, task_timeout)
    structures = [task.atoms for task in plan.tasks]
    relax_plain(structures[0], calculator)  # imports and JIT (emt-fast) before timing
    _adopt_orphans()
    cpu, start = _cpu_seconds(), time.perf_counter()
    if variant in ("loop", "loop-tansaku-filter"):
        cell_filter = "tansaku" if variant == "loop-tansaku-filter" else "ase"
        for atoms in structures:
            relax_plain(atoms, calculator, cell_filter=cell_filter)
    elif variant == "pool":
        with ProcessPoolExecutor(workers, initializer=_pin) as pool:
            list(pool.map(relax_plain, structures, [calculator] * len(structures)))
    elif variant.startswith("tansaku-"):
        executor = "dask" if variant == "tansaku-dask" else "pool"
        prepare_executor(executor)  # already started in the CLI order: returns at once
        tansaku_run(campaign, plan, executor, workers, folder / f"{executor}.h5")
    else:
        raise SystemExit(f"unknown variant {variant!r}: choose from {', '.join(VARIANTS)}")
    wall = time.perf_counter() - start
    if variant.startswith("tansaku-pool"):
        from multiprocessing import forkserver

        forkserver._forkserver._stop()  # private, benchmark only: the forkserver ends, its workers with it
    _reap_all(patience=2.0)
    return wall, _cpu_seconds() - cpu


def variant_in_fresh_process(variant: str, tasks: int, workers: int, calculator: str,
                             task_timeout: float | None, folder: Path) -> tuple[float, float]:
    """``run_variant`` in a fresh interpreter: no variant inherits another's threads, caches or heap."""
    command = [sys.executable, str(Path(__file__).resolve()), "--variant", variant, "--tasks", str(tasks),
               "--workers", str(workers), "--calculator", calculator, "--folder", str(folder)]
    if task_timeout is not None:
        command += ["--task-timeout", str(task_timeout)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"variant {variant} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    wall, cpu = map(float, done.stdout.strip().splitlines()[-1].split())
    return wall, cpu


def run(repeats: int = 3, quick: bool = False, tasks: int = 200, workers: int = 2, calculator: str = "emt",
        chgnet: int = 8, task_timeout: float | None = None, jobflow_tasks: int = 50,
        quacc_repeats: int = 1) -> list[Row]:
    """Every repeat runs each variant once, each in a fresh process, back to back (an earlier version ran
    them all in one process, and its plain loop slowed by a quarter over three repeats)."""
    from ase.io import write

    if quick:
        repeats, tasks, chgnet, jobflow_tasks = 1, min(tasks, 20), min(chgnet, 2), min(jobflow_tasks, 10)
    rows: list[Row] = []
    jobflow_tasks = min(jobflow_tasks, tasks)
    with tempfile.TemporaryDirectory(prefix="tansaku-bench-engine-") as tmp:
        folder = Path(tmp)
        _, plan = plan_for(calculator, tasks, workers, folder, task_timeout)
        structures = [task.atoms for task in plan.tasks]
        write(folder / "structures.extxyz", structures)
        if jobflow_tasks:
            write(folder / "jobflow.extxyz", structures[:jobflow_tasks])
        _pin()
        relax_plain(structures[0], calculator)  # imports before the jobflow row's floor is timed
        times: dict[str, list[float]] = {}

        def add(name: str, seconds: float | None) -> None:
            if seconds is not None:
                times.setdefault(name, []).append(seconds)
                print(f"  {name}: {seconds:.2f} s", file=sys.stderr, flush=True)

        for repeat in range(repeats):
            for variant in VARIANTS:
                wall, cpu = variant_in_fresh_process(variant, tasks, workers, calculator, task_timeout, folder)
                add(variant, wall)
                add(f"{variant} cpu", cpu)
                if variant == "tansaku-pool" and repeat < quacc_repeats:  # right after it: the same machine state
                    add("quacc-dask", quacc_run(folder / "structures.extxyz", "dask", workers, calculator))
            if repeat < quacc_repeats:  # far from tansaku (see the docstring): fewer repeats keep the run short
                if jobflow_tasks:
                    add("jobflow", quacc_run(folder / "jobflow.extxyz", "jobflow", workers, calculator))
                if "jobflow" in times:
                    times.setdefault("loop-jobflow", []).append(sum(timed_loop(structures[:jobflow_tasks],
                                                                               calculator)))

    case = f"{tasks} {calculator} relaxations"
    floor = [t / workers for t in times["loop"]]

    def row(name: str, label: str, serial: bool = False) -> None:
        if name not in times:
            rows.append(Row("5 engine", case, "plain loop", label, [], [float("nan")],
                            "not run: quacc venv missing (scripts/bench/quacc.sh)"))
            return
        base = times["loop"] if serial else floor
        rows.append(Row("5 engine", case, "plain loop" if serial else f"plain loop / {workers}", label,
                        base[:len(times[name])], times[name], "speed-up = efficiency (1.00: no engine overhead)"))

    rows.append(Row("5 engine", case, "plain loop", "plain loop, tansaku's cell filter", times["loop"],
                    times["loop-tansaku-filter"], "serial: FastFrechetCellFilter vs ASE's FrechetCellFilter"))
    row("pool", f"ProcessPool x{workers}")
    row("quacc-dask", f"quacc + Dask x{workers}")
    for name in TANSAKU:
        row(name, label(name, workers))
    for name in TANSAKU:  # the engine alone: the floor with the same cell filter
        rows.append(Row("5 engine", case, f"loop, tansaku's filter / {workers}", label(name, workers),
                        [t / workers for t in times["loop-tansaku-filter"]], times[name],
                        "speed-up = engine efficiency (same relaxation code on both sides)"))
    for name in TANSAKU:  # the parallel floor measured under the same load
        rows.append(Row("5 engine", case, f"ProcessPool x{workers}", label(name, workers),
                        times["pool"], times[name], "speed-up = efficiency against the plain pool"))
    if "quacc-dask" in times:
        for name in TANSAKU:
            rows.append(Row("5 engine", case, f"quacc + Dask x{workers}", label(name, workers),
                            times["quacc-dask"], times[name][:len(times["quacc-dask"])],
                            "speed-up = tansaku throughput / quacc's"))
    for name in ("pool", "tansaku-pool", "tansaku-dask"):  # CPU seconds of all processes, whatever the drift
        rows.append(Row("5 engine", f"{case}, CPU s of all processes", "plain loop", label(name, workers),
                        times["loop cpu"], times[f"{name} cpu"],
                        "speed-up = CPU efficiency (1.00: no CPU spent beyond the loop's)"))
    for name in ("tansaku-pool", "tansaku-dask"):
        rows.append(Row("5 engine", f"{case}, CPU s of all processes", "loop, tansaku's filter",
                        label(name, workers), times["loop-tansaku-filter cpu"], times[f"{name} cpu"],
                        "speed-up = CPU efficiency of the engine alone"))
    if "jobflow" in times:
        rows.append(Row("5 engine", f"first {jobflow_tasks} of them", "plain loop", "quacc + jobflow run_locally",
                        times["loop-jobflow"], times["jobflow"], "serial: speed-up = efficiency"))
    if chgnet:
        rows.extend(chgnet_rows(chgnet, repeats))
    return rows


_CHGNET_CHILD = """
import sys, time
start = time.perf_counter()
sys.path[:0] = {paths!r}
mode, count, steps, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if mode == "tansaku":  # as tansaku run does once the campaign is read: the forkserver imports meanwhile
    from tansaku.workflows.executors import prepare_executor
    prepare_executor("pool")
from bench_engine import _pin, chgnet_tasks
_pin()
tasks, settings = chgnet_tasks(count, steps)
if mode == "loop":
    from tansaku.calculators import get_calculator, relax
    calc = get_calculator("chgnet")
    ends = []
    for task in tasks:
        relax(task.atoms, calc, settings)
        ends.append(time.time())
else:
    from pathlib import Path
    from bench_engine import chgnet_campaign, tansaku_run
    from tansaku.results import read_columns
    from tansaku.workflows.plan import Plan
    output = Path(folder) / "chgnet.h5"
    tansaku_run(chgnet_campaign(Path(folder)), Plan(tasks=tasks), "pool", 1, output)
    ends = sorted(read_columns(output, ["finished_at"])["finished_at"])
print(time.perf_counter() - start, ends[-1] - ends[0])  # all; the cells after the first (steady state)
"""


def chgnet_tasks(count: int, steps: int):
    """``count`` SmFe12 cells as tansaku tasks, CHGNet, ``steps`` FIRE steps each (fmax unreachable)."""
    from synthetic import smfe12_cells

    from tansaku.calculators import RelaxSettings
    from tansaku.workflows.tasks import Task, task_id_for

    settings = RelaxSettings(fmax=1e-9, steps=steps)
    tasks = [Task(task_id=task_id_for(atoms, "chgnet", {}, settings, True, "relax"), candidate_id=f"c{k}",
                  kind="candidate", label=f"SmFe12 {k}", formula=atoms.get_chemical_formula(), prototype="ThMn12",
                  parent="", atoms=atoms, calculator="chgnet", relax=settings)
             for k, atoms in enumerate(smfe12_cells(count))]
    return tasks, settings


def chgnet_campaign(folder: Path):
    from tansaku.workflows.campaign import parse_campaign

    return parse_campaign('[campaign]\nname = "chgnet"\n[calculator]\nname = "chgnet"\n[execution]\n'
                          'executor = "pool"\nworkers = 1\n[[prototypes]]\nprototype = "fcc"\n'
                          'sites = { "4a" = "Ni" }\n', base_dir=folder)


def chgnet_rows(count: int, repeats: int, steps: int = 10) -> list[Row]:
    """N SmFe12 cells, CHGNet, ``steps`` FIRE steps each, each side a fresh Python process timed from its
    start: a plain script (imports, model load, ``relax`` per cell) vs ``tansaku run``'s engine
    (``execute_plan``, pool x1 with the default task_timeout: forkserver, worker, sandbox, model load in
    the sandbox, HDF5 writes). Both pay the interpreter, torch and the model once; what differs is the
    engine. The second row is the steady state: from the end of the first cell to the end of the last
    (the script's clock; tansaku's records' ``finished_at``), the engine's cost per task without start-up."""
    here = Path(__file__).resolve().parent
    code = _CHGNET_CHILD.format(paths=[str(REPO), str(REPO / "tests"), str(here)])
    base, fast, base_steady, fast_steady = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="tansaku-bench-chgnet-") as tmp:
        def child(mode: str) -> tuple[float, float]:
            done = subprocess.run([sys.executable, "-c", code, mode, str(count), str(steps), tmp], check=True,
                                  capture_output=True, text=True)
            seconds, steady = map(float, done.stdout.strip().splitlines()[-1].split())
            print(f"  chgnet {mode}: {seconds:.2f} s (after the first cell {steady:.2f} s)", file=sys.stderr,
                  flush=True)
            return seconds, steady

        child("loop")  # warm the file cache (torch, the model file) before timing
        for _ in range(repeats):
            for times, steadies, mode in ((base, base_steady, "loop"), (fast, fast_steady, "tansaku")):
                seconds, steady = child(mode)
                times.append(seconds)
                steadies.append(steady)
    case = f"{count} SmFe12 cells, CHGNet, {steps} FIRE steps"
    return [Row("5 engine", f"{case} (fresh processes)", "plain script", "tansaku run, pool x1", base, fast,
                "speed-up = efficiency (target >= 0.95)"),
            Row("5 engine", f"{case}, cells 2..{count} (steady state)", "plain script", "tansaku run, pool x1",
                base_steady, fast_steady, "speed-up = efficiency per task, start-up left out")]


if __name__ == "__main__":
    import argparse

    from benchmarks._table import render

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repeats", nargs="?", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--calculator", default="emt", help="emt (as the issue measured) or emt-fast")
    parser.add_argument("--chgnet", type=int, default=8, help="SmFe12 cells for the CHGNet row (0: none)")
    parser.add_argument("--jobflow-tasks", type=int, default=50, help="tasks of the (serial) jobflow row")
    parser.add_argument("--quacc-repeats", type=int, default=1, help="repeats that also run quacc and jobflow")
    parser.add_argument("--task-timeout", type=float, default=None,
                        help="[execution] task_timeout of tansaku run (default: the campaign default; 0: no sandbox)")
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process and print its seconds")
    parser.add_argument("--folder", type=Path, help="scratch folder of --variant")
    args = parser.parse_args()
    for name in ("repeats", "tasks", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"{name} must be at least 1, got {getattr(args, name)}")
    if args.variant:
        if args.folder is None or not args.folder.is_dir():
            parser.error(f"--variant needs --folder, an existing scratch folder (got {args.folder})")
        print(*run_variant(args.variant, args.tasks, args.workers, args.calculator, args.task_timeout, args.folder))
        raise SystemExit(0)
    print(render(run(args.repeats, args.quick, args.tasks, args.workers, args.calculator, args.chgnet, args.task_timeout,
                     args.jobflow_tasks, args.quacc_repeats), os.cpu_count() or 1))
