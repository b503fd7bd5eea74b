"""Fault injection: kill -9 the coordinator or a worker of a running campaign at random points, then check
that nothing stored was lost, nothing is stored twice, and the file stays readable.

    python scripts/fault_injection.py --trials 24 --seed 1          # the long form (~10 minutes on 2 cores)
    python scripts/fault_injection.py --trials 2 --executors pool   # the short form (the CI test runs it)

Each trial starts ``tansaku run`` on a campaign of cheap EMT tasks (one record per append, so the file
changes all the time), waits until a random number of records is stored, sleeps a random fraction of a
second more (so the kill lands anywhere: inside a task, an append, a flush, a sandbox start), and sends
SIGKILL to one of: the coordinator (the process writing the file), a worker process (pool worker / Dask
worker) or a task sandbox (the child that runs a task under ``task_timeout``). A killed coordinator is
resumed with ``tansaku run`` (stored tasks are skipped); a killed worker must not stop the run. After every
trial the file is read back and checked:

* lost: task ids a reader saw stored before the kill that are missing afterwards;
* duplicated: task ids stored in more than one row;
* unreadable: the file cannot be read by ``read_columns``;
* incomplete: after the last resume (``--rerun-failed``), tasks of the plan that are not stored ok;
* orphans: after a coordinator kill, its processes (workers, forkserver, task sandboxes) still alive 10 s later.

Prints one line per trial and a summary; exit status 1 when any lost/duplicated/unreadable/incomplete.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CAMPAIGN = """
[campaign]
name = "fault-injection"
output = "{output}"
[calculator]
name = "emt"
[relax]
fmax = 0.02
[execution]
executor = "{executor}"
workers = 2
batch_size = 1
flush_seconds = 0.0
task_timeout = 120
retry = {{ max = 1, on = ["killed"] }}
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Cu" }}
supercell = [2, 2, 1]
include_parent = false
[[prototypes.variants]]
substitute = {{ "4a" = {{ Au = 2 }} }}
[[prototypes.variants]]
substitute = {{ "4a" = {{ Pd = 3 }} }}
"""


@dataclass
class Trial:
    executor: str
    target: str
    killed: str = ""
    lost: int = 0
    duplicated: int = 0
    unreadable: bool = False
    incomplete: int = 0
    orphans: int = 0  # processes of a killed coordinator (workers, forkserver, sandboxes) alive 10 s later
    resumes: int = 0
    seconds: float = 0.0

    @property
    def bad(self) -> bool:
        return bool(self.lost or self.duplicated or self.unreadable or self.incomplete or self.orphans)


def descendants(pid: int) -> list:
    """The processes below ``pid`` (psutil.Process objects), [] when it is gone."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def survivors(processes: list, wait: float = 10.0) -> list[str]:
    """Those of ``processes`` still alive (not zombies) after up to ``wait`` seconds, as "pid name"."""
    import psutil

    from tansaku.hpc.orphans import process_name

    def alive(p) -> bool:  # noqa: ANN001 - a psutil.Process
        try:
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(p) for p in processes):
        time.sleep(0.1)
    return [f"{p.pid} {process_name(p.pid)}" for p in processes if alive(p)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}


def _start(campaign: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tansaku", "run", str(campaign), "--no-progress", *extra],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _stored(path: Path) -> list[str] | None:
    """Task ids in stored rows (None: unreadable)."""
    from tansaku.results import StoreError, read_columns

    if not path.exists():
        return []
    try:
        return list(read_columns(path, ["task_id"])["task_id"])
    except (StoreError, OSError, KeyError):
        return None


def _victim(coordinator: int, target: str, rng: random.Random) -> int | None:
    """The pid to kill: the coordinator, a worker process, or a task sandbox (its children's children)."""
    import psutil

    from tansaku.hpc.orphans import process_name
    from tansaku.workflows.sandbox import SANDBOX_NAME

    if target == "coordinator":
        return coordinator
    try:
        tree = psutil.Process(coordinator).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    sandboxes = [p for p in tree if process_name(p.pid) == SANDBOX_NAME]  # forked or started with python -m
    workers = [p for p in tree if p not in sandboxes and "python" in (_cmdline(p) or [""])[0]
               and any(c.pid in {s.pid for s in sandboxes} for c in _children(p))]
    pool = sandboxes if target == "sandbox" else workers
    return rng.choice(pool).pid if pool else None


def _cmdline(p) -> list[str]:  # noqa: ANN001 - a psutil.Process
    try:
        return p.cmdline()
    except Exception:  # noqa: BLE001 - it ended meanwhile
        return []


def _children(p) -> list:  # noqa: ANN001
    try:
        return p.children()
    except Exception:  # noqa: BLE001
        return []


def trial(folder: Path, executor: str, target: str, rng: random.Random, n_tasks_hint: int = 14) -> Trial:
    start = time.monotonic()
    result = Trial(executor, target)
    output, campaign = folder / "fi.h5", folder / "fi.toml"
    campaign.write_text(CAMPAIGN.format(output=output, executor=executor))
    process = _start(campaign)
    wanted, waited = rng.randint(0, n_tasks_hint // 2), time.monotonic()
    seen: set[str] = set()
    victim = None
    while time.monotonic() - waited < 300 and process.poll() is None:
        ids = _stored(output) or []
        seen |= set(ids)
        victim = _victim(process.pid, target, rng) if len(ids) >= wanted else None
        if victim is not None:
            break
        time.sleep(0.02)
    if victim is not None:
        time.sleep(rng.uniform(0, 0.5))
        seen |= set(_stored(output) or [])
        below = descendants(victim) if target == "coordinator" else []
        try:
            os.kill(victim, signal.SIGKILL)
            result.killed = f"{target} pid {victim} after {len(seen)} stored"
        except ProcessLookupError:
            result.killed = "(ended before the kill)"
    after = _stored(output)
    if target != "coordinator":
        try:
            process.wait(timeout=600)  # a killed worker must not stop the run
        except subprocess.TimeoutExpired:
            process.kill()
            result.killed += "; the run hung after the worker was killed"
            result.incomplete = -1
    else:
        process.wait()
        left = survivors(below) if victim is not None else []
        result.orphans = len(left)
        if left:
            result.killed += f"; left alive: {', '.join(left)}"
            for p in below:  # not left behind for the next trial
                try:
                    p.kill()
                except Exception:  # noqa: BLE001 - it ended meanwhile
                    pass
    after = _stored(output)
    if after is None:
        result.unreadable = True
        return result
    result.lost = len(seen - set(after))
    for extra in ((), ("--rerun-failed",)):  # resume, then run the failed ones again (if any)
        if extra:
            from tansaku.results import read_columns

            if "failed" not in set(read_columns(output, ["status"])["status"]):
                break
        result.resumes += 1
        resumed = _start(campaign, *extra)
        resumed.communicate(timeout=900)
    final = _stored(output)
    if final is None:
        result.unreadable = True
        return result
    from tansaku.results import read_columns

    counts = Counter(final)
    result.duplicated = sum(n - 1 for n in counts.values() if n > 1)
    result.lost += len(seen - set(final))
    cols = read_columns(output, ["task_id", "status"])
    from tansaku.workflows.campaign import load_campaign
    from tansaku.workflows.planfile import ensure_plan

    plan, _ = ensure_plan(load_campaign(campaign))
    ok = {t for t, s in zip(cols["task_id"], cols["status"]) if s == "ok"}
    result.incomplete = max(result.incomplete, len({t.task_id for t in plan.tasks} - ok))
    result.seconds = time.monotonic() - start
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--executors", default="pool,dask", help="comma-separated: pool, dask, serial")
    parser.add_argument("--targets", default="coordinator,worker,sandbox")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    rng = random.Random(args.seed)
    executors, targets = args.executors.split(","), args.targets.split(",")
    trials = []
    for k in range(args.trials):
        executor = executors[k % len(executors)]
        target = targets[(k // len(executors)) % len(targets)]
        if executor == "serial" and target == "worker":
            target = "sandbox"  # the serial executor has no worker process of its own
        with tempfile.TemporaryDirectory(prefix="tansaku-fi-") as folder:
            t = trial(Path(folder), executor, target, rng)
        trials.append(t)
        print(f"trial {k + 1:2d} {t.executor:6s} kill {t.target:11s} {t.killed:45s} lost {t.lost} duplicated "
              f"{t.duplicated} unreadable {int(t.unreadable)} incomplete {t.incomplete} orphans {t.orphans} "
              f"({t.seconds:.0f} s)",
              flush=True)
    by = Counter(t.target for t in trials)
    print(f"{len(trials)} trials ({', '.join(f'{n} {k}' for k, n in by.items())}): "
          f"lost {sum(t.lost for t in trials)}, duplicated {sum(t.duplicated for t in trials)}, "
          f"unreadable {sum(t.unreadable for t in trials)}, incomplete {sum(max(t.incomplete, 0) for t in trials)}, "
          f"orphans {sum(t.orphans for t in trials)}"
          f"{', hung ' + str(sum(t.incomplete < 0 for t in trials)) if any(t.incomplete < 0 for t in trials) else ''}")
    return 1 if any(t.bad for t in trials) else 0


if __name__ == "__main__":
    sys.exit(main())
