"""The quacc side of bench_engine.py, run by the quacc venv's Python (scripts/bench/quacc.sh).

    <venv>/bin/python benchmarks/_quacc_run.py STRUCTURES.extxyz ENGINE WORKERS CALCULATOR FMAX STEPS

ENGINE ``dask``: a Dask LocalCluster of WORKERS single-threaded worker processes started here (its
start-up is timed) and one quacc ``relax_job`` per structure; ``jobflow``: one jobflow Flow of the same
jobs through ``run_locally`` (one process, serial). CALCULATOR ``emt`` runs quacc's own EMT recipe
(``quacc.recipes.emt.core.relax_job``); another name runs the same quacc ``Runner.run_opt`` in a quacc
``@job`` with tansaku's calculator of that name (e.g. ``emt-fast``). FIRE + FrechetCellFilter as in
tansaku. Prints one JSON line: {"seconds": wall time from cluster start to the last result, "ok": n}.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time


def main() -> None:
    path, engine, workers, calculator, fmax, steps = sys.argv[1:7]
    workers, fmax, steps = int(workers), float(fmax), int(steps)
    os.environ["QUACC_WORKFLOW_ENGINE"] = engine
    os.environ.setdefault("QUACC_RESULTS_DIR", tempfile.mkdtemp(prefix="quacc-bench-"))
    from ase.io import read
    from ase.optimize import FIRE
    from quacc import job
    from quacc.recipes.emt.core import relax_job
    from quacc.runners.ase import Runner
    from quacc.schemas.ase import Summarize

    structures = read(path, index=":")
    opt_params = {"fmax": fmax, "max_steps": steps, "optimizer": FIRE}

    @job
    def relax_with(atoms, name: str):
        from tansaku.calculators import get_calculator

        dyn = Runner(atoms, get_calculator(name)).run_opt(relax_cell=True, **opt_params)
        return Summarize().opt(dyn)

    def make(atoms):
        if calculator == "emt":
            return relax_job(atoms, relax_cell=True, opt_params=opt_params)
        return relax_with(atoms, calculator)

    start = time.perf_counter()
    if engine == "dask":
        from dask.distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster) as client:
            results = client.gather(client.compute([make(atoms) for atoms in structures]))
    elif engine == "jobflow":
        from jobflow import Flow, run_locally

        jobs = [make(atoms) for atoms in structures]
        out = run_locally(Flow(jobs), log=False, ensure_success=True)
        results = [out[j.uuid][1].output for j in jobs]
    else:
        raise SystemExit(f"unknown engine {engine!r}")
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "ok": len(results)}))


if __name__ == "__main__":
    main()
