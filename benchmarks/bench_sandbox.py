"""Cost of the per-task timeout: tasks in a killable sandbox process vs in the worker process itself.

    python benchmarks/bench_sandbox.py [REPEATS] [TASKS]

Each repeat runs the same cheap ``emt-fast`` tasks (4-atom fcc cells, a few relaxation steps each) back
to back through ``TaskGuard`` without a timeout (in process) and with one (a sandbox already started),
and prints the per-task times side by side; a last row is the start of a fresh sandbox (once per
worker, and after each killed task), which is not part of any task's time.
"""

from __future__ import annotations

import sys
import time

import os

from benchmarks._table import Row, render


def tasks(count: int):
    from tansaku.workflows.campaign import parse_campaign
    from tansaku.workflows.plan import make_plan

    metals = '["Cu", "Ni", "Pd", "Pt", "Au", "Ag", "Al"]'
    text = f"""
[campaign]
name = "bench"
output = "/dev/null"
[calculator]
name = "emt-fast"
[relax]
steps = 20
[references]
elements = "none"
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = {metals}, "3c" = {metals} }}
"""
    plan = make_plan(parse_campaign(text))
    return (plan.tasks * (count // len(plan.tasks) + 1))[:count]


def run(repeats: int = 3, count: int = 60) -> list[Row]:
    from tansaku.calculators import Runtime
    from tansaku.workflows.sandbox import TaskGuard, close_sandbox

    work = tasks(count)
    in_process, sandboxed = TaskGuard(Runtime(), timeout=0), TaskGuard(Runtime(), timeout=3600)
    in_process(work[0]), sandboxed(work[0])  # compiled/loaded once in both processes
    base, fast, starts = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        assert all(in_process(t).status == "ok" for t in work)
        base.append((time.perf_counter() - start) / count)
        start = time.perf_counter()
        assert all(sandboxed(t).status == "ok" for t in work)
        fast.append((time.perf_counter() - start) / count)
        close_sandbox()
        start = time.perf_counter()
        sandboxed(work[0])
        starts.append(time.perf_counter() - start)
    return [Row("task timeout", f"{count} emt-fast tasks (4 atoms, <= 20 steps), per task", "in process",
                "sandbox", base, fast, note="ratio < 1: the sandbox's cost per task"),
            Row("task timeout", "start of a sandbox + its first task", "", "sandbox start", [], starts,
                note="once per worker thread and after each killed task")]


if __name__ == "__main__":
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    print(render(run(repeats, count), os.cpu_count() or 1))
