"""FireWorks overhead per task against the local executors, on the same EMT tasks, side by side in one run.

    python benchmarks/bench_fireworks.py [N_TASKS] [--uri mongodb://host:port]

Variants (each its own store in a temporary folder, the same first N tasks of one saved plan):
- `tansaku run --executor serial`: the tasks one after another in one process (the reference);
- `tansaku run --executor dask --workers 1`: a Dask LocalCluster of one worker, start-up included;
- fireworks: `tansaku fireworks add` + one `rlaunch rapidfire` process + `tansaku fireworks collect`, with
  1 and 10 tasks per Firework, against a MongoDB-protocol server: BriskDB on loopback (what the tests use;
  no MongoDB can be installed here) or the MongoDB that --uri names; and against FireWorks' mongomock file.

Every variant is run as its commands (each a process, ranking at the end included), and one process does
the work in each, so overhead per task = (wall time - sum of the tasks' own relaxation times) / N: what
the machinery adds to each task, whatever the calculator costs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))  # mongo_stand_in: the BriskDB server and LaunchPad files
sys.path.insert(0, str(HERE))

from bench_executors import CAMPAIGN  # noqa: E402  (the same EMT relaxations as the executor benchmark)
from mongo_stand_in import briskdb_server, write_launchpad  # noqa: E402

from tansaku.results import read_columns  # noqa: E402
from tansaku.workflows.campaign import load_campaign  # noqa: E402
from tansaku.workflows.planfile import ensure_plan, plan_path, save_plan  # noqa: E402


def campaign_file(folder: Path, name: str, n: int) -> Path:
    """A campaign writing ``folder/name.h5`` whose saved plan holds its first ``n`` tasks."""
    path = folder / f"{name}.toml"
    text = CAMPAIGN.replace('name = "bench-executors"', f'name = "bench-fireworks"\noutput = "{folder / name}.h5"')
    path.write_text(text)
    campaign = load_campaign(path)
    plan, _ = ensure_plan(campaign)
    if len(plan.tasks) < n:
        raise SystemExit(f"the benchmark campaign has only {len(plan.tasks)} tasks")
    plan.tasks = plan.tasks[:n]
    save_plan(plan, plan_path(campaign), campaign.text)
    return path


def task_seconds(output: Path) -> tuple[int, float]:
    cols = read_columns(output, ["status", "wall_time"])
    return int((cols["status"] == "ok").sum()), float(cols["wall_time"].sum())


def run_local(folder: Path, executor: str, n: int) -> tuple[float, int, float, dict[str, float]]:
    """``tansaku run --executor EXECUTOR --workers 1`` as a user runs it (start-up and ranking included)."""
    path = campaign_file(folder, executor, n)
    start = time.perf_counter()
    _run([sys.executable, "-m", "tansaku", "run", str(path), "--executor", executor, "--workers", "1",
          "--no-progress"], folder, {})
    return (time.perf_counter() - start, *task_seconds(folder / f"{executor}.h5"), {})


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(args, cwd=cwd, env=_env(env), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


def run_fireworks(folder: Path, name: str, n: int, launchpad: Path, per_firework: int,
                  env: dict[str, str] | None = None) -> tuple[float, int, float, dict[str, float]]:
    """add + rlaunch rapidfire + collect, each a process as a user runs them; wall time of the three."""
    env = env or {}
    path = campaign_file(folder, name, n)
    phases = {}
    tansaku = [sys.executable, "-m", "tansaku", "fireworks"]
    for phase, args in (("add", [*tansaku, "add", str(path), "-l", str(launchpad),
                                 "--tasks-per-firework", str(per_firework)]),
                        ("rlaunch", ["rlaunch", "-l", str(launchpad), "rapidfire"]),
                        ("collect", [*tansaku, "collect", str(path), "-l", str(launchpad)])):
        start = time.perf_counter()
        _run(args, folder, env)
        phases[phase] = time.perf_counter() - start
    return (sum(phases.values()), *task_seconds(folder / f"{name}.h5"), phases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="?", type=int, default=100)
    parser.add_argument("--uri", help="a MongoDB to use instead of the BriskDB stand-in")
    parser.add_argument("--no-mongomock", action="store_true")
    args = parser.parse_args()
    n = args.tasks
    rows: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows["tansaku run, serial"] = run_local(folder, "serial", n)
        rows["tansaku run, dask 1 worker"] = run_local(folder, "dask", n)
        with contextlib.nullcontext(args.uri) if args.uri else briskdb_server(folder / "briskdb") as uri:
            db = "mongodb" if args.uri else "briskdb"
            for per in (1, 10):
                lp = write_launchpad(folder / f"lp_{db}_{per}.yaml", uri)
                rows[f"fireworks {db}, {per}/FW"] = run_fireworks(folder, f"fw_{db}_{per}", n, lp, per)
        if not args.no_mongomock:
            store = folder / "mongomock.json"
            store.write_text("{}")
            env = {"MONGOMOCK_SERVERSTORE_FILE": str(store)}
            lp = folder / "lp_mongomock.yaml"
            lp.write_text("host: localhost\nname: fireworks\nstrm_lvl: WARNING\n")
            _run(["lpad", "-l", str(lp), "reset", "--password", time.strftime("%Y-%m-%d")], folder, env)
            rows["fireworks mongomock, 1/FW"] = run_fireworks(folder, "fw_mock_1", n, lp, 1, env)

    dask_overhead = (rows["tansaku run, dask 1 worker"][0] - rows["tansaku run, dask 1 worker"][2]) / n
    print(f"{n} EMT relaxations, one process doing the work in each variant (os.cpu_count() = {os.cpu_count()})")
    print(f"{'variant':30s} {'ok':>4s} {'wall s':>8s} {'tasks s':>8s} {'overhead s/task':>16s} {'vs dask':>8s}  phases")
    for name, (wall, ok, work, phases) in rows.items():
        overhead = (wall - work) / n
        ratio = f"{overhead / dask_overhead:7.1f}x" if dask_overhead > 0 else "      -"
        detail = ", ".join(f"{k} {v:.1f} s" for k, v in phases.items())
        print(f"{name:30s} {ok:4d} {wall:8.1f} {work:8.1f} {overhead:16.3f} {ratio:>8s}  {detail}")


if __name__ == "__main__":
    main()
