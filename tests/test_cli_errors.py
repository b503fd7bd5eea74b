"""The command line never shows a traceback: bad input is one clear line, a bug is one line naming the file
that holds the traceback, and user text is printed as written (never read as terminal markup)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BOOM = """
import sys
import tansaku.cli as cli

@cli.app.command("boom")
def boom() -> None:
    raise ZeroDivisionError("an internal bug")

sys.argv = ["tansaku", "boom"]
cli.main()
"""


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "TMPDIR": str(cwd)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_an_internal_error_is_one_line_with_the_traceback_in_a_file(tmp_path: Path) -> None:
    result = _python("-c", BOOM, cwd=tmp_path)
    assert result.returncode == 70
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    line = result.stderr.strip()
    assert "internal error (ZeroDivisionError: an internal bug)" in line
    path = Path(re.search(r"traceback is in (\S+)", line).group(1))
    assert path.parent == tmp_path
    assert "Traceback" in path.read_text() and "an internal bug" in path.read_text()


def test_user_text_is_not_terminal_markup(tmp_path: Path) -> None:
    (tmp_path / "weird.toml").write_text('[campaign]\nname = "[bold]x[/bold]"\n')
    result = _python("-m", "tansaku", "run", "weird.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "at least one [[prototypes]] table is required" in result.stderr
    result = _python("-m", "tansaku", "query", "missing.h5", "--sort", "[/x]", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "missing.h5" in result.stderr
