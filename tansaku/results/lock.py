"""The single-writer guard: an OS lock on ``<store>.lock``, released by the kernel if the holder dies."""

from __future__ import annotations

import fcntl
import os
import socket
import stat
from pathlib import Path

from tansaku.results.errors import StoreError, StoreLockedError


class WriterLock:
    """An exclusive, non-blocking ``flock`` on ``<path>.lock``; the file holds the holder's host:pid.

    The lock file is left in place on release (deleting it would race with a process opening it).
    """

    def __init__(self, store_path: str | os.PathLike) -> None:
        self.store_path = Path(store_path)
        self.path = self.store_path.with_name(self.store_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; the lock file must be our own regular file: a symlink or a hard link planted
        at its name is refused before anything is written (it could point at another file)."""
        try:  # 0o666: the user's umask decides the permissions, as for any file the user creates
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            problem = "is a symbolic link" if os.path.islink(self.path) else exc.strerror
            raise StoreError(f"cannot use lock file {self.path}: {problem} (remove it if it is not yours)") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            raise StoreError(f"cannot use lock file {self.path}: not a plain file of its own (a link to another "
                             f"file?); remove it if it is not yours")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLockedError(
                f"{self.store_path} is being written by another process (pid {holder}); "
                f"lock file {self.path}"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)  # read by writer_alive
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None


def writer_alive(store_path: str | os.PathLike) -> bool:
    """Whether a live process on this host holds (or a process on another host may hold) the writer lock
    of ``store_path``, read from the holder line the lock file keeps while it is held. Only reads: taking
    even a shared lock here could make a writer starting at that moment fail."""
    try:
        holder = WriterLock(store_path).path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return False
    if len(holder) < 3 or not holder[0].isdigit():
        return False
    if holder[2] != socket.gethostname():
        return True  # another node of a shared file system: cannot look, assume it is live
    try:
        os.kill(int(holder[0]), 0)
    except ProcessLookupError:
        return False  # a killed writer's line
    except PermissionError:
        pass  # alive, another user's
    return True
