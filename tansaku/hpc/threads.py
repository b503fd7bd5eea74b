"""Keep each worker process to a fixed number of BLAS/OpenMP/torch threads."""

from __future__ import annotations

import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def worker_environment(threads: int = 1) -> dict[str, str]:
    """Environment variables that pin a process started with them to ``threads`` threads."""
    return {name: str(threads) for name in THREAD_VARIABLES}


def pin_threads(threads: int = 1) -> None:
    """Limit this process's thread pools now (numpy BLAS, OpenMP, and torch if loaded or loaded later)."""
    from threadpoolctl import threadpool_limits

    os.environ.update({k: v for k, v in worker_environment(threads).items() if k != "NUMBA_NUM_THREADS"})
    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
