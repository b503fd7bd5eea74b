"""Planning a large EMT campaign from scratch vs loading its saved plan, side by side from one run.

    python benchmarks/bench_plan.py [N_ELEMENTS]

The campaign decorates the five Wyckoff sites of the PuNi3 prototype (primitive cell, 12 atoms) with
every combination of N_ELEMENTS EMT elements (default 10: 10^5 decorations). "re-plan" is what every
worker, status or resume would pay without a saved plan (generation, deduplication, references, task
ids); "save" is writing the plan file once; "load" is reading every task back (what ``tansaku run``
and the workers do when the plan is current).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tansaku.workflows.campaign import parse_campaign
from tansaku.workflows.plan import make_plan
from tansaku.workflows.planfile import campaign_hash, load_plan, load_tasks, save_plan

ELEMENTS = ["Cu", "Ni", "Pd", "Ag", "Pt", "Au", "Al", "N", "C", "O", "H"]


def campaign_text(n_elements: int, output: Path) -> str:
    elements = ", ".join(f'"{e}"' for e in ELEMENTS[:n_elements])
    sites = ", ".join(f'"{s}" = [{elements}]' for s in ("3a", "6c1", "3b", "6c2", "18h"))
    return f"""
[campaign]
name = "bench-plan"
output = "{output}"
[calculator]
name = "emt"
[references]
elements = "auto"
[[prototypes]]
prototype = "PuNi3"
primitive = true
sites = {{ {sites} }}
"""


def main(n_elements: int = 10) -> None:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "bench.h5"
        campaign = parse_campaign(campaign_text(n_elements, output), source="bench_plan.toml")
        start = time.perf_counter()
        plan = make_plan(campaign)
        plan.campaign_hash = campaign_hash(campaign)
        replan = time.perf_counter() - start
        start = time.perf_counter()
        path = save_plan(plan, output.with_name("bench.plan.h5"), campaign.text)
        save = time.perf_counter() - start
        start = time.perf_counter()
        loaded = load_plan(path)
        load = time.perf_counter() - start
        ids = [t.task_id for t in loaded.tasks[::100]]
        start = time.perf_counter()
        load_tasks(path, ids)
        subset = time.perf_counter() - start
        size = path.stat().st_size / 2**20
    n = len(plan.tasks)
    assert len(loaded.tasks) == n
    print(f"{n} tasks ({plan.generated} generated, {plan.duplicates} duplicates removed, {plan.merged} merged), "
          f"plan file {size:.1f} MiB")
    print(f"{'re-plan (make_plan)':>28s}: {replan:8.2f} s")
    print(f"{'save the plan (once)':>28s}: {save:8.2f} s")
    print(f"{'load every saved task':>28s}: {load:8.2f} s   ({replan / load:.0f}x faster than re-planning)")
    print(f"{'load 1 % of the tasks by id':>28s}: {subset:8.2f} s   ({len(ids)} tasks, a job-array element)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
