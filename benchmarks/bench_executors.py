"""Throughput of the executors on the same EMT relaxations, measured side by side in one run.

    python benchmarks/bench_executors.py [N_TASKS]

Prints tasks/s for the serial executor (one process) and the Dask LocalCluster (one pinned worker per
core), and the ratio. Each variant writes its own HDF5 file in a temporary folder.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

from tansaku.workflows.campaign import parse_campaign
from tansaku.workflows.plan import make_plan
from tansaku.workflows.runner import execute_plan

CAMPAIGN = """
[campaign]
name = "bench-executors"
[calculator]
name = "emt"
[relax]
fmax = 0.01
[[prototypes]]
prototype = "fcc"
sites = { "4a" = "Cu" }
supercell = [2, 2, 1]
include_parent = false
[[prototypes.variants]]
substitute = { "4a" = { Au = 2, Pd = 1, Ni = 1 } }
[[prototypes.variants]]
substitute = { "4a" = { Ni = 3 } }
"""


def timed_run(executor: str, tasks: int, folder: Path) -> tuple[int, float]:
    campaign = parse_campaign(CAMPAIGN, base_dir=folder)
    campaign = dataclasses.replace(
        campaign, output=folder / f"{executor}.h5",
        execution=campaign.execution.with_overrides(executor=executor, workers=os.cpu_count() or 1))
    plan = make_plan(campaign)
    plan.tasks = plan.tasks[:tasks]
    start = time.perf_counter()
    summary = execute_plan(plan, campaign, show_progress=False)
    return summary.ok, time.perf_counter() - start


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        rows = {name: timed_run(name, n, Path(tmp)) for name in ("serial", "dask")}
    print(f"{'executor':10s} {'tasks':>6s} {'seconds':>8s} {'tasks/s':>8s}")
    for name, (ok, seconds) in rows.items():
        print(f"{name:10s} {ok:6d} {seconds:8.2f} {ok / seconds:8.1f}")
    ratio = rows["serial"][1] / rows["dask"][1]
    print(f"dask speed-up over serial: {ratio:.2f}x on {os.cpu_count()} cores (includes cluster start-up)")


if __name__ == "__main__":
    main()
