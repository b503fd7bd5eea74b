"""Throughput of the distributed ways to run one EMT campaign, side by side in one run:

    python benchmarks/bench_hpc.py [N_TASKS]        # default 500; needs the local SLURM and mpi4py

- **job array**: ``tansaku submit --mode array`` (elements of ``tasks_per_element`` tasks, one core each)
  on the local SLURM, then ``collect``; timed from submission to the collected store;
- **packed job**: ``tansaku submit --mode packed``: one job with every core running a worker pool;
- **MPI, 2 ranks**: ``mpiexec -n 2``; rank 0 coordinates and writes, so one rank computes;
- **local Dask**: the default executor, one pinned worker per core, in this process.

Each variant writes its own files in a temporary folder and runs the same first N tasks of the plan;
tasks/s = N / wall seconds. The job-array and packed figures include SLURM's scheduling latency and the
Python start-up of every job (the cost of detaching work from the coordinating process).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CAMPAIGN = """
[campaign]
name = "bench-hpc"
output = "{output}"
[calculator]
name = "emt"
[relax]
fmax = 0.02
[references]
elements = "none"
[execution]
executor = "dask"
batch_size = 32
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Cu" }}
supercell = [2, 2, 1]
include_parent = false
[[prototypes.variants]]
substitute = {{ "4a" = {{ Au = 2, Pd = 1, Ni = 1 }} }}
[[prototypes.variants]]
substitute = {{ "4a" = {{ Au = 1, Pd = 2, Pt = 1 }} }}
[[prototypes.variants]]
substitute = {{ "4a" = {{ Ag = 2, Pt = 2 }} }}
[scheduler]
name = "slurm"
queue = "debug"
memory = "1G"
walltime = "1h"
tasks_per_element = 50
"""
CORES = os.cpu_count() or 1


def _campaign(folder: Path, name: str, cores: int = 1):
    from tansaku.workflows.campaign import load_campaign

    path = folder / f"{name}.toml"
    path.write_text(CAMPAIGN.format(output=folder / f"{name}.h5") + f"cores = {cores}\n")
    return path, load_campaign(path)


def _first_tasks(campaign, n: int):
    """The saved plan (planned now if needed) cut to its first ``n`` tasks."""
    from tansaku.workflows.planfile import ensure_plan

    plan, _ = ensure_plan(campaign)
    if len(plan.tasks) < n:
        raise SystemExit(f"the benchmark campaign has only {len(plan.tasks)} tasks (< {n})")
    plan.tasks = plan.tasks[:n]
    return plan


def _expect(variant: str, ok: int, n: int) -> None:
    if ok != n:
        raise SystemExit(f"{variant}: {ok} ok records, expected {n}")


def batch(folder: Path, mode: str, n: int) -> float:
    """Seconds from submission to the collected store for the first ``n`` tasks as one array/packed job."""
    from tansaku.hpc.jobs import ACTIVE_STATES
    from tansaku.workflows.collect import collect, shards_dir
    from tansaku.workflows.submit import job_statuses, read_jobs, submit_campaign

    path, campaign = _campaign(folder, mode, cores=CORES if mode == "packed" else 1)
    ids = [t.task_id for t in _first_tasks(campaign, n).tasks]
    start = time.perf_counter()
    submit_campaign(campaign, path, campaign.scheduler, ids, shards_dir(campaign.output), mode=mode)
    while any(s.state in ACTIVE_STATES for s in job_statuses(read_jobs(campaign))):
        time.sleep(0.5)
    summary = collect(campaign.output, shards_dir(campaign.output), campaign.text)
    seconds = time.perf_counter() - start
    _expect(mode, summary.added, n)
    return seconds


def local_dask(folder: Path, n: int) -> float:
    from tansaku.workflows.runner import execute_plan

    _, campaign = _campaign(folder, "dask")
    campaign = dataclasses.replace(campaign, execution=campaign.execution.with_overrides(executor="dask",
                                                                                         workers=CORES))
    plan = _first_tasks(campaign, n)
    start = time.perf_counter()
    summary = execute_plan(plan, campaign, show_progress=False)
    seconds = time.perf_counter() - start
    _expect("dask", summary.ok, n)
    return seconds


def mpi(folder: Path, n: int) -> float:
    """``mpiexec -n 2`` of this file's ``--mpi-rank`` part (the same loop as ``tansaku run --executor mpi``)."""
    _, campaign = _campaign(folder, "mpi")
    _first_tasks(campaign, n)  # plan once, before the clock starts (as for the other variants)
    start = time.perf_counter()
    subprocess.run(["mpiexec", "-n", "2", sys.executable, __file__, "--mpi-rank", str(folder / "mpi.toml"), str(n)],
                   check=True, timeout=3600)
    seconds = time.perf_counter() - start
    from tansaku.results import read_columns

    _expect("mpi", int((read_columns(campaign.output, ["status"])["status"] == "ok").sum()), n)
    return seconds


def _mpi_rank(campaign_file: str, n: int) -> None:
    from tansaku.hpc import mpi as hpc_mpi
    from tansaku.workflows.campaign import load_campaign
    from tansaku.workflows.mpi import mpi_executor, mpi_worker
    from tansaku.workflows.runner import execute_plan

    if hpc_mpi.rank() != 0:
        mpi_worker()
        return
    try:
        campaign = load_campaign(campaign_file)
        execute_plan(_first_tasks(campaign, n), campaign, executor=mpi_executor(), show_progress=False)
    finally:
        hpc_mpi.shutdown()  # the worker ranks wait for it


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--mpi-rank":
        _mpi_rank(sys.argv[2], int(sys.argv[3]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-hpc-") as tmp:
        for name, run in (("job array (SLURM)", lambda f: batch(f, "array", n)),
                          ("packed job (SLURM)", lambda f: batch(f, "packed", n)),
                          ("MPI, 2 ranks", lambda f: mpi(f, n)),
                          ("local Dask", lambda f: local_dask(f, n))):
            folder = Path(tmp) / name.split()[0]
            folder.mkdir()
            rows[name] = run(folder)
            print(f"  {name}: {rows[name]:.1f} s", file=sys.stderr, flush=True)
    base = rows["local Dask"]
    print(f"{n} EMT tasks (16-atom cells), {CORES} cores")
    print(f"{'variant':20s} {'seconds':>8s} {'tasks/s':>8s} {'vs local Dask':>14s}")
    for name, seconds in rows.items():
        print(f"{name:20s} {seconds:8.1f} {n / seconds:8.2f} {base / seconds:13.2f}x")


if __name__ == "__main__":
    main()
