"""Child processes that never outlive their parent, and when a process may safely ``fork()`` itself.

A ``kill -9`` of a coordinator runs none of its clean-up: its worker processes (and theirs) must end by
themselves. Linux's ``PR_SET_PDEATHSIG`` asks the kernel to send a signal to a process when the *thread*
that created it ends; ``die_with_parent`` sets it to SIGKILL. Elsewhere (macOS) these are no-ops.
"""

from __future__ import annotations

import os
import signal
import threading

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15


def _prctl(option: int, value: int | bytes) -> bool:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def die_with_parent(parent: int | None = None) -> None:
    """SIGKILL this process when the thread that started it ends; exit now if the parent is already gone
    (``parent``: its pid as the parent knew it; else "reparented to init" is what counts as gone)."""
    if not _prctl(PR_SET_PDEATHSIG, signal.SIGKILL):
        return
    now = os.getppid()
    if (parent is not None and now != parent) or (parent is None and now == 1):
        os._exit(0)  # the parent died before the signal was armed


def set_name(name: str) -> None:
    """This process's name as ``ps -o comm`` and /proc/PID/comm show it (at most 15 bytes, Linux only)."""
    _prctl(PR_SET_NAME, name.encode()[:15])


def process_name(pid: int) -> str:
    """The name of process ``pid`` (/proc/PID/comm), '' when it cannot be read."""
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return ""


OPENMP_RUNTIMES = ("libgomp", "libiomp", "libomp")  # their thread pools do not survive a fork (torch loads one)


def fork_safe() -> bool:
    """True when ``os.fork()`` may copy this process: one Python thread (no lock another thread could hold
    in the child) and no OpenMP runtime loaded (a forked child can hang in its pool; OpenBLAS' pthreads
    pool is rebuilt after a fork by OpenBLAS itself). Linux only (/proc); False elsewhere."""
    if threading.active_count() != 1:
        return False
    try:
        with open("/proc/self/maps") as maps:
            return not any(name in line for line in maps for name in OPENMP_RUNTIMES)
    except OSError:
        return False
