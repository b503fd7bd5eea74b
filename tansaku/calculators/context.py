"""Runtime settings and the per-task run context of a calculator.

A calculator's parameters are split in two:

* **identity** (functional, cutoff, k-point density, smearing, pseudopotentials, model, preset; see
  ``CalculatorSpec.resolve_params``): they enter the task id and are stored with every record;
* **runtime** (:class:`Runtime`: launch command, cores, device, scratch directory, retries, timeout):
  how and where a task runs. They never enter a task id, so moving a campaign to a GPU or another
  cluster, or changing the number of cores, recomputes nothing.

A :class:`RunContext` is the runtime plus the task's own scratch directory; it reaches the calculator's
factory when the calculator is built for one task.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SCRATCH_POLICIES = ("delete", "keep", "archive")  # what happens to a task's scratch directory on success
LAUNCHERS = ("mpi", "openmp")
SCRATCH_VARIABLE = "TANSAKU_SCRATCH"


def default_scratch_root() -> Path:
    """``$TANSAKU_SCRATCH``, else ``<system temp>/tansaku-scratch``."""
    return Path(os.environ.get(SCRATCH_VARIABLE) or Path(tempfile.gettempdir()) / "tansaku-scratch")


@dataclass(frozen=True)
class Runtime:
    """How and where tasks run (never part of a task id); the campaign's ``[calculator.runtime]``.

    ``command``: the code's executable and fixed arguments as an argument list (e.g. ``["pw.x"]`` or
    ``["/opt/vasp/bin/vasp_std"]``), never a shell string; empty means the calculator's default.
    ``cores``: cores one task uses: OpenMP/BLAS threads (``launcher = "openmp"``) or MPI ranks started
    with ``mpirun`` (``launcher = "mpi"``, for codes run as executables). ML calculators keep one
    pinned thread per worker whatever ``cores`` says.
    ``timeout``: seconds one calculator call may take (0: none); a timed-out task is retried from its
    last relaxation step (see handlers.py).
    ``batch_size``: ML calculators only: relax up to this many structures of a worker's task list
    together, one batched model call per step (calculators/batch.py); 0 or 1: one structure at a time.
    """

    command: tuple[str, ...] = ()
    cores: int = 1
    launcher: str = "mpi"
    mpirun: tuple[str, ...] = ()  # MPI launcher as an argument list; empty: the calculator's default
    device: str = "cpu"
    pseudo_dir: Path | None = None  # QE pseudopotential directory (default: Debian's); VASP: $VASP_PP_PATH
    scratch: Path | None = None  # root of the per-task scratch directories; None: default_scratch_root()
    on_success: str = "delete"  # delete | keep | archive (scratch/<task_id>.tar.gz)
    max_retries: int = 3  # corrections applied to one task before it is stored as failed
    timeout: float = 0.0
    batch_size: int = 0

    def __post_init__(self) -> None:
        for name in ("command", "mpirun"):
            if isinstance(getattr(self, name), str):
                raise ValueError(f"runtime {name} must be an argument list, e.g. [\"pw.x\"], not a shell string")
        if self.cores < 1:
            raise ValueError(f"runtime cores must be >= 1, got {self.cores}")
        if self.launcher not in LAUNCHERS:
            raise ValueError(f"runtime launcher must be one of {', '.join(LAUNCHERS)}, got {self.launcher!r}")
        if self.on_success not in SCRATCH_POLICIES:
            raise ValueError(f"runtime on_success must be one of {', '.join(SCRATCH_POLICIES)}, "
                             f"got {self.on_success!r}")
        if self.max_retries < 0 or self.timeout < 0 or self.batch_size < 0:
            raise ValueError("runtime max_retries, timeout and batch_size must be >= 0")

    @property
    def scratch_root(self) -> Path:
        return Path(self.scratch) if self.scratch is not None else default_scratch_root()

    def launch(self, default_command: tuple[str, ...], default_mpirun: tuple[str, ...] = ("mpirun",)) -> list[str]:
        """The argument list that starts the code: ``mpirun -np N`` + command when MPI with N > 1."""
        command = list(self.command or default_command)
        if self.launcher == "mpi" and self.cores > 1:
            return [*(self.mpirun or default_mpirun), "-np", str(self.cores), *command]
        return command

    def thread_environment(self) -> dict[str, str]:
        """OpenMP/BLAS thread counts for a launched code: ``cores`` threads unless MPI ranks use the cores.
        (calculators may not import hpc, whose worker_environment pins Dask workers the same way)"""
        threads = str(self.cores if self.launcher == "openmp" else 1)
        return {name: threads for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


@dataclass(frozen=True)
class RunContext:
    """The runtime plus the scratch directory of one task (``<scratch root>/<task id>``)."""

    runtime: Runtime = field(default_factory=Runtime)
    directory: Path = field(default_factory=lambda: default_scratch_root() / "untitled")

    @classmethod
    def for_task(cls, runtime: Runtime, task_id: str) -> RunContext:
        """The context of ``task_id``; its directory is created (and reused by a rerun of the same task)."""
        directory = runtime.scratch_root / task_id
        directory.mkdir(parents=True, exist_ok=True)
        return cls(runtime, directory)

    def threads(self, dft: bool):  # noqa: ANN201 - a context manager
        """Give this process ``cores`` BLAS/OpenMP threads while a DFT task runs (GPAW runs in process
        and uses them; launched executables get theirs from ``thread_environment``). ML tasks (``dft``
        False) keep the worker's one pinned thread."""
        import contextlib

        if not dft:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=self.runtime.cores)

    def finish(self, ok: bool) -> Path | None:
        """Apply the scratch policy: a failed task's directory is always kept (for inspection); a
        successful one is deleted, kept or archived. Returns what remains (directory or archive)."""
        if not ok or self.runtime.on_success == "keep":
            return self.directory
        if self.runtime.on_success == "archive":
            archive = self.directory.with_name(self.directory.name + ".tar.gz")
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(self.directory, arcname=self.directory.name)
            shutil.rmtree(self.directory, ignore_errors=True)
            return archive
        shutil.rmtree(self.directory, ignore_errors=True)
        return None
