"""A real ``mpiexec -n 3`` run of an EMT campaign: rank 0 plans and writes, ranks 1-2 pull tasks.

Uses the mpiexec of the MPICH wheel next to sys.executable (matching mpi4py from that wheel; Debian's
/usr/bin/mpirun may be Open MPI). Skipped when mpi4py or that mpiexec is missing, unless CI is set
(scripts/setup/mpi.sh installs both).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hpc_campaigns import write_campaign

from tansaku.results import read_columns
from tansaku.workflows.campaign import load_campaign
from tansaku.workflows.plan import make_plan

MPIEXEC = Path(sys.executable).parent / "mpiexec"


def _mpi_missing() -> str:
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (bash scripts/setup/mpi.sh)"
    if not MPIEXEC.exists():
        return f"no mpiexec next to {sys.executable} (bash scripts/setup/mpi.sh installs the mpich wheel)"
    return ""


@pytest.fixture
def mpiexec() -> Path:
    reason = _mpi_missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return MPIEXEC


def test_mpiexec_n3_stores_every_task_once(tmp_path, mpiexec):
    campaign_file = write_campaign(tmp_path)
    command = [str(mpiexec), "-n", "3", sys.executable, "-m", "tansaku", "run", str(campaign_file),
               "--executor", "mpi", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 worker ranks" in done.stderr
    expected = sorted(t.task_id for t in make_plan(load_campaign(campaign_file)).tasks)
    cols = read_columns(tmp_path / "small.h5", ["task_id", "status", "worker"])
    assert sorted(cols["task_id"]) == expected  # every task, once
    assert (cols["status"] == "ok").all()
    workers = set(cols["worker"])
    assert len(workers) == 2  # both worker ranks pulled tasks; rank 0 ran none
    # a second run finds everything stored, and the worker ranks still exit
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert again.returncode == 0 and f"{len(expected)} already stored, ran 0" in again.stderr


def test_missing_ranks_is_a_clear_error(tmp_path, mpiexec):
    campaign_file = write_campaign(tmp_path)
    done = subprocess.run([str(mpiexec), "-n", "1", sys.executable, "-m", "tansaku", "run", str(campaign_file),
                           "--executor", "mpi"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "at least 2 MPI ranks" in done.stderr


def test_missing_mpi4py_names_what_to_install(monkeypatch):
    from tansaku.hpc import mpi
    from tansaku.workflows.executors import make_executor

    monkeypatch.setitem(sys.modules, "mpi4py", None)  # an import of mpi4py now fails, as when not installed
    with pytest.raises(mpi.MPIUnavailableError, match=r"pip install 'tansaku\[hpc\]'.*mpi4py mpich"):
        make_executor("mpi")
