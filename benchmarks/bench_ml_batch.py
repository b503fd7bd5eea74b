"""Batched ML relaxation (issue 11 item 4): per-structure ASE loop vs one CHGNet graph batch per step.

    python benchmarks/bench_ml_batch.py [REPEATS] [--quick] [--cells 64] [--steps 10]
    python -m benchmarks ml_batch

64 SmFe12-sized cells (26 atoms, ThMn12 prototype, 3 random Fe -> Co, rattled) relaxed with FIRE +
FrechetCellFilter for a fixed number of steps (fmax unreachable, so both paths do the same work), on
1 worker and on 2 worker processes (each its half of the cells, model loaded before timing, one torch
thread each), and on ``device = "cuda"`` where torch sees a GPU. The note gives structures/s of both.
The same for SevenNet on 1 worker, and tansaku's batched driver against torch-sim's (``torch-sim-atomistic``,
optional: its batched ``frechet_cell_fire`` with its SevenNet model, same steps, same cells) where it is
installed.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's tansaku; tests/synthetic.py

import numpy as np
from synthetic import smfe12_cells

from benchmarks._table import Row, side_by_side

STEPS = 10  # optimizer steps per structure (11 model calls)


def _settings(steps: int):
    from tansaku.calculators import RelaxSettings

    return RelaxSettings(fmax=1e-9, steps=steps)


def _init(device: str) -> None:
    from tansaku.calculators import RunContext, Runtime, get_calculator
    from tansaku.hpc.threads import pin_threads

    # one thread for torch *and* BLAS, as tansaku's workers run: the cell filter's 3x3 expm_frechet (scipy
    # lu_solve) took 27 ms a call with OpenBLAS's default threads on a busy machine, 60 % of a batched step
    pin_threads(1)
    get_calculator("chgnet", None, RunContext(Runtime(device=device)))  # load the model before timing


def loop(structures: list, steps: int, device: str = "cpu", name: str = "chgnet") -> int:
    """The per-structure path: one ASE relaxation (one model call per step) after another."""
    from tansaku.calculators import RunContext, Runtime, get_calculator, relax

    calc = get_calculator(name, None, RunContext(Runtime(device=device)))
    for atoms in structures:
        relax(atoms, calc, _settings(steps))
    return len(structures)


def batched(structures: list, steps: int, device: str = "cpu", name: str = "chgnet") -> int:
    """All structures in one in-flight batch: one model call per step for all of them."""
    from tansaku.calculators import Runtime
    from tansaku.calculators.batch import relax_batch

    relax_batch(structures, name, settings=_settings(steps), runtime=Runtime(device=device))
    return len(structures)


def torchsim_model(device: str = "cpu"):
    """torch-sim's SevenNet model around tansaku's loaded 7net-0, or None without torch-sim.
    (torch-sim 0.3.0 imports ``sevenn.calculator.torch_script_type``, which sevenn 0.13 no longer has; it
    only serves an isinstance check, so it is set to torch's ScriptModule.)"""
    try:
        import sevenn.calculator
        import torch

        sevenn.calculator.torch_script_type = getattr(sevenn.calculator, "torch_script_type", torch.jit.ScriptModule)
        from torch_sim.models.sevennet import SevenNetModel
    except ImportError:
        return None
    import copy

    from tansaku.calculators import RunContext, Runtime, get_calculator

    model = copy.deepcopy(get_calculator("sevenn", None, RunContext(Runtime(device=device))).model)
    return SevenNetModel(model, device=device)


def torchsim(model, structures: list, steps: int) -> int:
    """torch-sim's batched FIRE on the Fréchet cell filter (ASE flavour), ``steps`` steps for all cells."""
    import torch
    import torch_sim as ts

    init, update = ts.frechet_cell_fire(model=model)
    state = init(ts.initialize_state(structures, model.device, torch.float32))
    for _ in range(steps):
        state = update(state)
    return len(structures)


def _on_workers(pool: ProcessPoolExecutor, fn, structures: list, steps: int, workers: int):
    def call():
        chunks = [structures[i::workers] for i in range(workers)]
        return sum(f.result() for f in [pool.submit(fn, chunk, steps) for chunk in chunks])
    return call


def run(repeats: int = 3, quick: bool = False, count: int = 64, steps: int = STEPS) -> list[Row]:
    import multiprocessing

    import torch

    count, steps = (8, 3) if quick else (count, steps)
    structures = smfe12_cells(count)
    rows = []

    def row(case: str, base: list[float], fast: list[float]) -> Row:
        rate = f"{count / np.median(base):.3g} vs {count / np.median(fast):.3g} structures/s"
        return Row("4 ml batch", case, "per-structure loop", "batched (1 call/step)", base, fast,
                   f"{rate}; {steps} FIRE steps each")

    _init("cpu")
    base, fast = side_by_side(lambda: loop(structures, steps), lambda: batched(structures, steps), repeats)
    rows.append(row(f"{count} SmFe12 cells, CHGNet, 1 worker (cpu)", base, fast))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context, initializer=_init, initargs=("cpu",)) as pool:
        list(pool.map(_init, ["cpu", "cpu"]))  # both workers started and loaded
        base, fast = side_by_side(_on_workers(pool, loop, structures, steps, 2),
                                  _on_workers(pool, batched, structures, steps, 2), repeats)
    rows.append(row(f"{count} SmFe12 cells, CHGNet, 2 workers (cpu)", base, fast))
    loop(structures[:1], 1, name="sevenn")  # SevenNet loaded and warm
    base, fast = side_by_side(lambda: loop(structures, steps, name="sevenn"),
                              lambda: batched(structures, steps, name="sevenn"), repeats)
    rows.append(row(f"{count} SmFe12 cells, SevenNet, 1 worker (cpu)", base, fast))
    model = torchsim_model()
    if model is not None:
        torchsim(model, structures[:1], 1)
        base, fast = side_by_side(lambda: batched(structures, steps, name="sevenn"),
                                  lambda: torchsim(model, structures, steps), repeats)
        rows.append(Row("4 ml batch", f"{count} SmFe12 cells, SevenNet, 1 worker (cpu)", "tansaku batched",
                        "torch-sim frechet_cell_fire", base, fast,
                        f"{count / np.median(base):.3g} vs {count / np.median(fast):.3g} structures/s"))
    if torch.cuda.is_available():
        _init("cuda")
        base, fast = side_by_side(lambda: loop(structures, steps, "cuda"),
                                  lambda: batched(structures, steps, "cuda"), repeats)
        rows.append(row(f"{count} SmFe12 cells, CHGNet, 1 worker (cuda)", base, fast))
    else:
        rows.append(Row("4 ml batch", f"{count} SmFe12 cells, CHGNet (cuda)", "per-structure loop",
                        "batched (1 call/step)", [float("nan")], [1.0], "no GPU on this machine"))
    return rows


if __name__ == "__main__":
    import argparse
    import os

    from benchmarks._table import render

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repeats", nargs="?", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cells", type=int, default=64)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args()
    print(render(run(args.repeats, args.quick, args.cells, args.steps), os.cpu_count() or 1))
