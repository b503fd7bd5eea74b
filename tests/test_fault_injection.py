"""The short form of scripts/fault_injection.py: kill -9 of a running campaign's coordinator and of a task
sandbox, then resume; nothing stored is lost or duplicated and the file stays readable. (The long form,
20+ trials over coordinator/worker/sandbox kills with the pool and Dask executors, is run by hand.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fault_injection.py"


@pytest.mark.slow
def test_short_fault_injection(capsys) -> None:
    spec = importlib.util.spec_from_file_location("fault_injection", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    code = module.main(["--trials", "2", "--seed", "3", "--executors", "pool", "--targets", "coordinator,sandbox"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 trials" in out and "lost 0, duplicated 0, unreadable 0, incomplete 0, orphans 0" in out
