"""Faults inside tasks: a per-task timeout that really stops the work, and a retry policy.

``TaskGuard`` is the task runner the executors get (``[execution] task_timeout`` and ``retry``). With a
timeout it runs each task in a *sandbox*: a child process (one per worker thread, started once and
reused, so the per-task cost is one pickled task and one pickled record through a pipe) that the
worker can kill. A single-threaded worker (a pool worker: ``hpc.orphans.fork_safe``) forks it, so it
starts in milliseconds with everything the worker imported; elsewhere (Dask workers, the serial
executor's thread) it is a fresh ``python -m tansaku.workflows.sandbox`` (~1-3 s of imports, once per
worker thread, not counted in any task's time). A batched ML unit (``TaskBatch``) runs in the sandbox too,
with the timeout of its tasks together. Python-level alarms cannot interrupt a numba loop, a torch kernel or a stuck C
library; a killed process always stops. When a task runs past the timeout the sandbox's process group
is killed with SIGKILL, and so is the process group of an external code it launched (DFT codes run in
their own session, calculators/process.py, which writes its group id where the guard finds it); the
task is stored as failed with ``timeout after N s`` and the worker starts a fresh sandbox for the next
task. A sandbox that dies by itself (out of memory: the kernel's OOM killer; a segfault) makes a failed
record saying so, and the campaign goes on.

Retry policy: a failed task whose failure kind is in ``retry.on`` runs again, up to ``retry.max`` more
times; every attempt goes into the record's ``history`` (JSON). Failure kinds: ``timeout`` (killed at
the task timeout), ``killed`` (the sandbox died: OOM killer, signal, crash), ``memory`` (MemoryError),
and those of the error handlers recorded by the task itself (``scf_unconverged``, ``unphysical``,
``crashed``, ``timeout`` of an external code, ...; ``error`` for anything else).

Without a timeout (``task_timeout = 0``) tasks run in the worker process as before (no sandbox);
the retry policy still applies.

Pickle crosses the pipe between a worker and the sandbox it started (our own Task and Record objects,
as Dask sends them between its processes); nothing read from user files is ever unpickled.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from tansaku.calculators import Runtime
from tansaku.calculators.process import CODE_PGID_VARIABLE
from tansaku.hpc.orphans import die_with_parent, fork_safe, set_name
from tansaku.results.record import STATUS_FAILED, Record
from tansaku.workflows.run_task import TaskBatch, run_batch
from tansaku.workflows.tasks import Task

FAILURE_KINDS = ("timeout", "killed", "memory", "scf_unconverged", "unphysical", "crashed",
                 "executable_not_found", "error")
_HEADER = struct.Struct("<Q")
STARTUP_SECONDS = 600.0  # a sandbox's imports (not part of any task's time)
READY = b"R"
DEFAULT_TASK_TIMEOUT = 86400.0  # s ([execution] task_timeout); 0: no timeout, tasks run in the worker process
SANDBOX_NAME = "tansaku-sandbox"  # /proc/PID/comm of a sandbox process (how tools find them)
START_METHOD = "auto"  # "fork" / "spawn" (python -m ...) / "auto": fork when the worker is single-threaded


@dataclass(frozen=True)
class RetryPolicy:
    """Run a failed task again when its failure kind is in ``on``, at most ``max`` more times."""

    max: int = 1
    on: tuple[str, ...] = ("killed",)

    def __post_init__(self) -> None:
        if self.max < 0:
            raise ValueError(f"retry max must be >= 0, got {self.max}")
        unknown = sorted(set(self.on) - set(FAILURE_KINDS))
        if unknown:
            raise ValueError(f"unknown failure kind(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(FAILURE_KINDS)}")


def failure_kind(record: Record) -> str:
    """The kind of a failed record: from its last history entry, else its error text."""
    if record.history:
        try:
            history = json.loads(record.history)
            if history and isinstance(history[-1], dict) and history[-1].get("failure"):
                return str(history[-1]["failure"])
        except ValueError:
            pass
    return "memory" if record.error.startswith("MemoryError") else "error"


def _run_in_process(task: Task, runtime: Runtime) -> Record:
    from tansaku.workflows.run_task import run_task

    return run_task(task, runtime)


@dataclass(frozen=True)
class TaskGuard:
    """The task runner handed to executors: ``run_task`` with a hard timeout (sandbox) and retries.

    Picklable (Dask sends it to its workers); each worker thread starts its own sandbox when needed.
    """

    runtime: Runtime = field(default_factory=Runtime)
    timeout: float = 0.0  # s; 0 = no timeout, tasks run in the worker process itself
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __call__(self, task: Task | TaskBatch) -> Record | list[Record]:
        if isinstance(task, TaskBatch):
            return self._batch(task)
        return self._task(task)

    def _task(self, task: Task, attempts: list[dict] | None = None) -> Record:
        attempts = list(attempts or [])
        while True:
            start = time.time()
            spec = _portable_spec(task.calculator) if self.timeout > 0 else None
            if spec is None:
                record = _run_in_process(task, self.runtime)
            else:
                result = _sandbox().run(task, self.runtime, self.timeout, spec)
                record = result.record(task) if isinstance(result, _Failure) else result
            if record.status != STATUS_FAILED and not attempts:
                return record
            kind = failure_kind(record) if record.status == STATUS_FAILED else ""
            if attempts:  # earlier attempts first, then what the last one recorded itself
                record.history = _merge_history(attempts, record.history)
            if not kind or kind not in self.retry.on or len(attempts) >= self.retry.max:
                if kind and attempts:
                    record.error += f" (attempt {len(attempts) + 1}; retry policy: max {self.retry.max})"
                return record
            attempts.append(_attempt(len(attempts) + 1, kind, record.error, time.time() - start, {"retry": True}))

    def _batch(self, batch: TaskBatch) -> list[Record]:
        """A batched ML relaxation ([calculator.runtime] batch_size) in the sandbox, with the timeout of
        its tasks together (``timeout`` x tasks in the batch). A batch whose sandbox is killed or dies
        fails as a whole; when the retry policy covers that kind, its tasks then run again one by one
        (each with the task timeout), so the one that kills its process is found and the others are kept."""
        spec = _portable_spec(batch.tasks[0].calculator) if self.timeout > 0 else None
        if spec is None:  # no timeout, or a calculator that cannot travel: in this process
            return run_batch(batch, self.runtime)
        start = time.time()
        result = _sandbox().run(batch, self.runtime, self.timeout * len(batch.tasks), spec)
        if not isinstance(result, _Failure):
            return result
        if result.kind in self.retry.on and self.retry.max > 0:
            first = _attempt(1, result.kind, f"{result.error} (in a batch of {len(batch.tasks)})",
                             time.time() - start, {"retry": "alone"})
            return [self._task(task, [first]) for task in batch.tasks]
        return [result.record(task) for task in batch.tasks]


def _attempt(number: int, kind: str, error: str, seconds: float, correction: dict | None) -> dict:
    """One entry of a record's ``history``: a failed attempt and what was done about it."""
    return {"attempt": number, "failure": kind, "error": error[:300], "seconds": round(seconds, 2),
            "correction": correction}


@dataclass(frozen=True)
class _Failure:
    """A sandbox that was killed at its timeout or died: ``kind`` ("timeout"/"killed") and why."""

    kind: str
    error: str
    seconds: float

    def record(self, task: Task) -> Record:
        return _failed(task, self.kind, self.error, self.seconds)


def _merge_history(attempts: list[dict], history: str) -> str:
    try:
        later = json.loads(history) if history else []
    except ValueError:
        later = []
    later = later if isinstance(later, list) else []
    for k, entry in enumerate(later):
        if isinstance(entry, dict):
            entry["attempt"] = len(attempts) + k + 1
    return json.dumps([*attempts, *later], separators=(",", ":"))


def _failed(task: Task, kind: str, error: str, seconds: float) -> Record:
    from tansaku.workflows.run_task import failed_record

    record = failed_record(task, error)
    record.history = json.dumps([_attempt(1, kind, error, seconds, None)], separators=(",", ":"))
    record.wall_time = seconds
    return record


def _portable_spec(name: str) -> bytes | None:
    """The pickled calculator spec a sandbox needs to build ``name`` (calculators registered from Python
    exist only in this process), or None when it cannot travel (a factory defined inside a function):
    such a calculator runs in the worker process, without the hard timeout."""
    from tansaku.calculators import get_spec

    try:
        return pickle.dumps(get_spec(name), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - unknown calculator (run_task says so) or an unpicklable factory
        return None


def task_runner(campaign) -> TaskGuard:  # noqa: ANN001 - a workflows.campaign.Campaign
    """The runner executors get for ``campaign``: its runtime, ``task_timeout`` and ``retry`` policy."""
    return TaskGuard(campaign.calculator.runtime, campaign.execution.task_timeout, campaign.execution.retry)


# ------------------------------------------------------------------------------------ the sandbox

class _Forked:
    """What ``_Sandbox`` uses of ``subprocess.Popen``, for a sandbox made with ``os.fork()``."""

    def __init__(self, pid: int, stdin, stdout) -> None:  # noqa: ANN001 - binary file objects
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self.returncode: int | None = None

    def _reap(self, flags: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                self.returncode = 255
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        return self._reap(os.WNOHANG)

    def wait(self) -> int:
        return self._reap(0)  # type: ignore[return-value]


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


def _reseed() -> None:
    """A forked sandbox draws fresh random numbers (``random`` reseeds itself after a fork; numpy does not)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


class _Sandbox:
    """A child process running tasks sent through a pipe: forked from the worker when the worker is
    single-threaded (``fork_safe``; a pool worker), else ``python -m tansaku.workflows.sandbox``."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | _Forked | None = None
        self.pgid_file = ""
        self.specs: set[bytes] = set()  # calculator specs this sandbox has registered

    def _start(self) -> subprocess.Popen | _Forked:
        import tempfile

        fd, self.pgid_file = tempfile.mkstemp(prefix="tansaku-sandbox-", suffix=".pgid")
        os.close(fd)
        self.specs = set()
        if START_METHOD == "fork" or (START_METHOD == "auto" and fork_safe()):
            return self._fork()
        # the worker's import path: calculators registered from Python import their factories by module name
        env = {**os.environ, CODE_PGID_VARIABLE: self.pgid_file,
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        # own process group (killed as one); stdout is the record pipe; stderr shared with the worker
        return subprocess.Popen([sys.executable, "-m", "tansaku.workflows.sandbox"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env, process_group=0, close_fds=True)

    def _fork(self) -> _Forked:
        """A sandbox forked from this process (single-threaded: a pool worker): it has tansaku, its
        calculators and the specs registered here already imported, so it starts in milliseconds instead
        of a fresh interpreter's ~1-3 s of imports."""
        task_r, task_w = os.pipe()
        reply_r, reply_w = os.pipe()
        parent = os.getpid()
        _flush_std()  # nothing buffered here is written twice
        pid = os.fork()
        if pid == 0:  # the sandbox: never returns into the worker's code
            code = 1
            try:
                os.setpgid(0, 0)
                os.close(task_w)
                os.close(reply_r)
                os.environ[CODE_PGID_VARIABLE] = self.pgid_file
                _reseed()
                _serve(os.fdopen(task_r, "rb"), os.fdopen(reply_w, "wb"), parent)
                code = 0
            finally:
                _flush_std()  # os._exit skips the interpreter's own flush
                os._exit(code)
        os.close(task_r)
        os.close(reply_w)
        try:
            os.setpgid(pid, pid)  # also here, so that a kill right now reaches its group (as subprocess does)
        except OSError:
            pass
        return _Forked(pid, os.fdopen(task_w, "wb"), os.fdopen(reply_r, "rb"))

    def _alive(self) -> subprocess.Popen | _Forked:
        """The running sandbox, started (and waited for: its imports do not count against a task's
        timeout) when there is none."""
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self.proc = self._start()
            ready, _, _ = select.select([self.proc.stdout], [], [], STARTUP_SECONDS)
            if not ready or self.proc.stdout.read(1) != READY:
                raise OSError("the task sandbox did not start")
        return self.proc

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            self._kill(proc)
        if self.pgid_file:
            try:
                os.unlink(self.pgid_file)
            except OSError:
                pass
            self.pgid_file = ""

    def _kill(self, proc: subprocess.Popen | _Forked) -> None:
        """SIGKILL the sandbox's process group and the group of any external code it launched."""
        groups = [proc.pid]
        try:
            with open(self.pgid_file) as fh:
                groups += [int(line) for line in fh.read().split() if line.strip().isdigit()]
        except OSError:
            pass
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        proc.wait()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit builtins may be gone; PDEATHSIG ends the child
            pass

    def run(self, work: Task | TaskBatch, runtime: Runtime, timeout: float,
            spec: bytes) -> Record | list[Record] | _Failure:
        """``work``'s record (a batch's records) from this sandbox, or the failure that ended it."""
        start = time.perf_counter()
        what = f"the batch of {len(work.tasks)} tasks was" if isinstance(work, TaskBatch) else "the task was"
        try:
            proc = self._alive()
            start = time.perf_counter()
            payload = pickle.dumps((work, runtime, None if spec in self.specs else spec),
                                   protocol=pickle.HIGHEST_PROTOCOL)
            self.specs.add(spec)
            proc.stdin.write(_HEADER.pack(len(payload)) + payload)
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            if not ready:
                self.close()
                return _Failure("timeout", f"timeout after {timeout:g} s: {what} killed ([execution] task_timeout"
                                           f"{f' x {len(work.tasks)}' if isinstance(work, TaskBatch) else ''})",
                                time.perf_counter() - start)
            header = proc.stdout.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise EOFError
            result = pickle.loads(proc.stdout.read(_HEADER.unpack(header)[0]))
        except (EOFError, OSError, pickle.UnpicklingError, struct.error):
            proc = self.proc
            if proc is None:
                return _Failure("killed", "killed: the task sandbox did not start", time.perf_counter() - start)
            code = proc.wait()
            self.close()
            how = f"was killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
            hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if code == -signal.SIGKILL else ""
            process = "the batch's process" if isinstance(work, TaskBatch) else "the task's process"
            return _Failure("killed", f"killed: {process} {how}{hint}", time.perf_counter() - start)
        return result


_local = threading.local()


def _sandbox() -> _Sandbox:
    """This thread's sandbox (a thread of its own per worker thread: they run tasks concurrently)."""
    box = getattr(_local, "sandbox", None)
    if box is None:
        box = _local.sandbox = _Sandbox()
    return box


def close_sandbox() -> None:
    """Stop this thread's sandbox (it also dies with its worker: PR_SET_PDEATHSIG)."""
    box = getattr(_local, "sandbox", None)
    if box is not None:
        box.close()


def _serve(requests, replies, parent: int | None = None) -> None:  # noqa: ANN001 - binary file objects
    """The sandbox's loop: read (task, runtime), run it, write the record; return at end of input.
    ``parent``: the worker's pid (a forked sandbox), to notice a worker that died before it was armed."""
    die_with_parent(parent)
    set_name(SANDBOX_NAME)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when tasks stop (as pool workers do)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import tansaku.workflows.run_task  # noqa: F401 - imported before READY: not part of a task's time

    os.dup2(2, 1)  # anything a calculator prints goes to stderr, never into the record pipe
    replies.write(READY)
    replies.flush()
    while True:
        header = requests.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        task, runtime, spec = pickle.loads(requests.read(_HEADER.unpack(header)[0]))
        if spec is not None:
            from tansaku.calculators import registry

            registry.register(pickle.loads(spec))
            registry._cached.cache_clear()  # a calculator of that name built before is not this one
        result = run_batch(task, runtime) if isinstance(task, TaskBatch) else _run_in_process(task, runtime)
        payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        replies.write(_HEADER.pack(len(payload)) + payload)
        replies.flush()


def _main() -> None:
    """``python -m tansaku.workflows.sandbox``: requests on stdin, replies on (a copy of) stdout."""
    replies = os.fdopen(os.dup(1), "wb")
    _serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    _main()
