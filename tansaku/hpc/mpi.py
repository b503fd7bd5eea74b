"""A dynamic work queue over MPI (mpi4py): rank 0 hands out items, the other ranks apply a function.

Generic (it knows nothing of tasks): ``serve(items)`` on rank 0 yields ``(item, result)`` pairs as they
come back, and ``None`` heartbeats while it waits; ``work(fn)`` on every other rank asks for an item,
applies ``fn`` and sends the result back with its next request, until rank 0 says stop. A slow item
holds up only its own rank. ``shutdown()`` on rank 0 stops every worker rank (also those that never got
an item), so ``mpiexec`` ends even when there was nothing to do.

mpi4py is optional (``pip install 'tansaku[hpc]'``, or ``pip install mpi4py mpich`` for a
self-contained MPI whose ``mpiexec`` sits next to the Python executable).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

TAG_REQUEST = 1  # worker -> 0: (result or _READY)
TAG_ITEM = 2  # 0 -> worker: an item
TAG_STOP = 3  # 0 -> worker: no more items, exit
INSTALL_HINT = ("the mpi executor needs mpi4py and an MPI library: pip install 'tansaku[hpc]' "
                "(or: pip install mpi4py mpich), then run under mpiexec")


class MPIUnavailableError(RuntimeError):
    """mpi4py (or an MPI library) is missing."""


class RemoteError:
    """Sent instead of a result when ``fn`` raised on a worker rank."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"RemoteError({self.message!r})"


_READY = "__ready__"
_waiting: set[int] = set()  # worker ranks whose request rank 0 received and has not answered
_stopped: set[int] = set()


def comm():
    """MPI.COMM_WORLD; MPIUnavailableError naming what to install when mpi4py cannot load."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise MPIUnavailableError(f"{INSTALL_HINT} ({exc})") from None
    return MPI.COMM_WORLD


def rank() -> int:
    return comm().Get_rank()


def size() -> int:
    return comm().Get_size()


def work(fn: Callable[[Any], Any]) -> int:
    """Worker-rank loop: request items from rank 0 and apply ``fn`` until stopped; returns items done."""
    from mpi4py import MPI

    world = comm()
    status = MPI.Status()
    world.send(_READY, dest=0, tag=TAG_REQUEST)
    done = 0
    while True:
        item = world.recv(source=0, tag=MPI.ANY_TAG, status=status)
        if status.Get_tag() == TAG_STOP:
            return done
        try:
            result = fn(item)
        except Exception as exc:  # noqa: BLE001 - reported to rank 0, the loop goes on
            result = RemoteError(f"{type(exc).__name__}: {exc}")
        done += 1
        world.send(result, dest=0, tag=TAG_REQUEST)


def _receive(world, timeout: float) -> tuple[int, Any] | None:
    """The next request from any worker rank within ``timeout`` seconds (polling), else None."""
    from mpi4py import MPI

    status = MPI.Status()
    end = time.monotonic() + timeout
    pause = 0.0005
    while not world.iprobe(source=MPI.ANY_SOURCE, tag=TAG_REQUEST, status=status):
        if time.monotonic() >= end:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.01)
    source = status.Get_source()
    message = world.recv(source=source, tag=TAG_REQUEST)
    _waiting.add(source)
    return source, message


def serve(items: Iterable[Any], heartbeat: float = 1.0) -> Iterator[tuple[Any, Any] | None]:
    """Rank 0: hand ``items`` out one at a time to whichever rank asks; yield ``(item, result)`` per
    returned result (``result`` is a RemoteError if ``fn`` raised) and ``None`` every ``heartbeat`` s
    of waiting. Worker ranks stay alive afterwards (see ``shutdown``)."""
    world = comm()
    if world.Get_size() < 2:
        raise MPIUnavailableError("the mpi executor needs at least 2 MPI ranks (rank 0 only coordinates): "
                                  "mpiexec -n N with N >= 2")
    outstanding: dict[int, Any] = {}
    item_iter = iter(items)
    exhausted = False
    while True:
        # answer every rank waiting for work
        for source in sorted(_waiting):
            if exhausted:
                break
            item = next(item_iter, _READY)
            if item is _READY:
                exhausted = True
                break
            world.send(item, dest=source, tag=TAG_ITEM)
            _waiting.discard(source)
            outstanding[source] = item
        if exhausted and not outstanding:
            return
        got = _receive(world, heartbeat)
        if got is None:
            yield None
            continue
        source, message = got
        if source in outstanding:
            yield outstanding.pop(source), message


def shutdown() -> None:
    """Rank 0: tell every worker rank to exit (waiting for the first request of ranks that never asked)."""
    world = comm()
    for source in range(1, world.Get_size()):
        if source in _stopped:
            continue
        if source not in _waiting:
            world.recv(source=source, tag=TAG_REQUEST)  # its ready message (or last result, unused)
        world.send(None, dest=source, tag=TAG_STOP)
        _waiting.discard(source)
        _stopped.add(source)
