"""Load: the coordinator's memory over campaigns of 2,000 and 20,000 cheap tasks.

    python benchmarks/bench_load.py [SIZES...]        # default: 2000 20000

Each size runs in a fresh process: N distinct one-atom tasks go through the real coordinator path
(``execute_plan``: store opened, stored ids skipped, the serial executor's thread, records appended in
batches to a real HDF5 file) with a trivial task runner (a record with an energy, no physics: the cost
of the coordinator alone; ``--emt`` runs real one-step EMT tasks instead, ~10x slower). Printed per size: RSS after the tasks are
built (the plan in memory), peak RSS during the run (sampled every 50 ms) and its growth over the run,
records per second, and the time of a query on the finished store. The coordinator keeps no per-record
state, so the growth over the run should not follow N.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CAMPAIGN = """
[campaign]
name = "load"
output = "{output}"
[calculator]
name = "emt"
[relax]
steps = 0
[execution]
executor = "serial"
batch_size = 256
flush_seconds = 5.0
task_timeout = 0
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Cu" }}
"""


FCC = [[0, 1.8, 1.8], [1.8, 0, 1.8], [1.8, 1.8, 0]]


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _trivial_run(task):  # noqa: ANN001, ANN202 - a Task -> an ok Record, no physics
    from tansaku.results.record import STATUS_OK
    from tansaku.workflows.run_task import _base_record

    record = _base_record(task, STATUS_OK)
    record.energy = record.energy_per_atom = -3.5 - 1e-6 * len(task.task_id)
    record.fmax, record.steps, record.converged, record.wall_time = 0.0, 0, True, 1e-4
    return record


def child(n: int, emt: bool = False) -> dict:
    from ase import Atoms

    from tansaku.calculators import RelaxSettings
    from tansaku.results.query import query
    from tansaku.workflows.campaign import parse_campaign
    from tansaku.workflows.plan import Plan
    from tansaku.workflows.runner import execute_plan
    from tansaku.workflows.tasks import Task

    folder = Path(tempfile.mkdtemp(prefix="tansaku-load-"))
    campaign = parse_campaign(CAMPAIGN.format(output=folder / "load.h5"))
    relax = RelaxSettings(steps=0)
    start_rss = _rss_mb()
    tasks = [Task(task_id=f"{k:016x}", candidate_id=f"c{k:015x}", kind="candidate", label=f"Cu #{k}",
                  formula="Cu", prototype="fcc", parent="",
                  atoms=Atoms("Cu", cell=[[v * (1 + 1e-6 * k) for v in row] for row in FCC], pbc=True),  # distinct structures
                  calculator="emt", relax=relax) for k in range(n)]
    built_rss = _rss_mb()
    peak = [built_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    from tansaku.workflows.executors import serial_executor

    executor = None if emt else serial_executor(run=_trivial_run)
    summary = execute_plan(Plan(tasks=tasks), campaign, executor=executor, show_progress=False)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    end_rss = _rss_mb()
    query(campaign.output, where=["energy < 100"], limit=1)  # imports pandas: not part of a query's time
    q0 = time.perf_counter()
    frame = query(campaign.output, where=["energy < 100"], sort="-energy", limit=10)
    query_s = time.perf_counter() - q0
    assert summary.ok == n and len(frame) == 10
    return {"tasks": n, "start_mb": start_rss, "built_mb": built_rss, "peak_mb": peak[0], "end_mb": end_rss,
            "run_growth_mb": peak[0] - built_rss, "tasks_per_s": n / seconds, "query_s": query_s}


def main(sizes: list[int], emt: bool = False) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    print(f"{'tasks':>7}  {'RSS start':>9}  {'tasks built':>11}  {'peak in run':>11}  {'growth in run':>13}  "
          f"{'tasks/s':>8}  {'query':>8}")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), *(["--emt"] if emt else [])], env=env, capture_output=True, text=True,
                             check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{r['tasks']:7d}  {r['start_mb']:7.0f} MB  {r['built_mb']:8.0f} MB  {r['peak_mb']:8.0f} MB  "
              f"{r['run_growth_mb']:10.0f} MB  {r['tasks_per_s']:8.0f}  {r['query_s'] * 1e3:5.0f} ms", flush=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--emt"]
    if args and args[0] == "--child":
        print(json.dumps(child(int(args[1]), emt="--emt" in sys.argv)))
    else:
        main([int(a) for a in args] or [2000, 20000], emt="--emt" in sys.argv)
