"""Start an external code (pw.x, VASP) from an argument list, with a timeout and clear failures."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tansaku.calculators.errors import CodeCrashed, CodeTimeout, ExecutableNotFound

TAIL_LINES = 5
# set by a task sandbox (workflows/sandbox.py): the file where the launched code's process group id is
# written while it runs, so that a task killed at its timeout takes the code (its own session) with it
CODE_PGID_VARIABLE = "TANSAKU_CODE_PGID_FILE"


def _note_group(pgid: int | None) -> None:
    path = os.environ.get(CODE_PGID_VARIABLE)
    if path:
        try:
            with open(path, "w") as fh:
                fh.write(f"{pgid}\n" if pgid else "")
        except OSError:
            pass


def _tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())


def run_code(argv: Sequence[str], directory: Path, stdout: str, stderr: str, timeout: float = 0.0,
             env: Mapping[str, str] | None = None, stdin: str | None = None) -> None:
    """Run ``argv`` in ``directory`` (no shell), output to ``stdout``/``stderr`` files there.

    ``timeout`` (s, 0 = none): the whole process group is killed and CodeTimeout raised. A missing
    executable raises ExecutableNotFound, a non-zero exit or a signal CodeCrashed with the end of the
    error output. ``env`` is added to this process's environment (thread counts).
    """
    argv = [str(a) for a in argv]
    directory = Path(directory)
    with open(directory / stdout, "wb") as out, open(directory / stderr, "wb") as err, \
            open(directory / stdin if stdin else os.devnull, "rb") as inp:
        try:
            proc = subprocess.Popen(argv, cwd=directory, stdin=inp, stdout=out, stderr=err,
                                    env={**os.environ, **(env or {})}, start_new_session=True)
        except FileNotFoundError:
            raise ExecutableNotFound(f"executable {argv[0]!r} not found (runtime command {argv})") from None
        except PermissionError:
            raise ExecutableNotFound(f"executable {argv[0]!r} is not executable (runtime command {argv})") from None
        _note_group(proc.pid)  # its own session: the group id is its pid
        try:
            code = proc.wait(timeout=timeout or None)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise CodeTimeout(f"{Path(argv[0]).name} ran past the {timeout:g} s timeout and was killed") from None
        except BaseException:  # interrupted: never leave the code running behind us
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            _note_group(None)
    if code != 0:
        how = f"was killed by signal {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        detail = _tail(directory / stderr) or _tail(directory / stdout)
        raise CodeCrashed(f"{Path(argv[0]).name} {how}" + (f": {detail}" if detail else ""))
