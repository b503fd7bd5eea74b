"""`tansaku submit` without a live scheduler: dry runs render the job script of each scheduler, and a
scheduler that is not installed, a bad mode or a bad machine file is a one-line error (no traceback,
no jobs recorded). The real submissions are in test_submit.py (local SLURM)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CAMPAIGN = """
[campaign]
name = "cli-submit"
output = "{folder}/c.h5"
[calculator]
name = "emt"
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = ["Cu", "Ni", "Au"] }}
[scheduler]
queue = "short"
walltime = "30m"
cores = 4
{extra}
"""


def run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tansaku", *args], cwd=folder, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture()
def campaign(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(CAMPAIGN.format(folder=tmp_path, extra=""))
    return path


def test_dry_runs_print_each_schedulers_script(campaign: Path) -> None:
    folder = campaign.parent
    pbs = run(folder, "submit", "c.toml", "--scheduler", "pbs", "--dry-run")
    assert pbs.returncode == 0, pbs.stderr
    assert "#PBS -J 0-0" in pbs.stdout and "#PBS -q short" in pbs.stdout and "#PBS -l walltime=00:30:00" in pbs.stdout
    assert f"{sys.executable} -m tansaku worker {campaign}" in pbs.stdout
    assert '--select "${TANSAKU_ARRAY_INDEX}"/1' in pbs.stdout
    packed = run(folder, "submit", "c.toml", "--scheduler", "lsf", "--mode", "packed", "--dry-run")
    assert packed.returncode == 0, packed.stderr
    assert "#BSUB -n 4" in packed.stdout and "--workers 4" in packed.stdout
    assert '--deadline "$(( TANSAKU_JOB_END - 180 ))"' in packed.stdout  # default margin: a tenth, at most 5 min
    assert "6 tasks pending" in packed.stderr  # 3 candidates + 3 elemental references
    assert not (folder / "c.jobs.json").exists()


@pytest.mark.skipif(shutil.which("bsub") is not None, reason="LSF is installed here")
def test_missing_scheduler_and_bad_options_are_one_line_errors(campaign: Path) -> None:
    folder = campaign.parent
    lsf = run(folder, "submit", "c.toml", "--scheduler", "lsf")
    assert lsf.returncode == 2 and "bsub: command not found" in lsf.stderr and "Traceback" not in lsf.stderr
    assert not (folder / "c.jobs.json").exists()
    mode = run(folder, "submit", "c.toml", "--mode", "spread", "--dry-run")
    assert mode.returncode == 2 and "--mode: unknown mode 'spread'; choose array, packed" in mode.stderr
    (folder / "m.toml").write_text('[scheduler]\nwalltime = "soon"\n')
    machine = run(folder, "submit", "c.toml", "--machine", "m.toml", "--dry-run")
    assert machine.returncode == 2 and "m.toml: scheduler.walltime: walltime 'soon'" in machine.stderr
    unknown = run(folder, "submit", "c.toml", "--scheduler", "sge", "--dry-run")
    assert unknown.returncode == 2 and "--scheduler: unknown scheduler 'sge'" in unknown.stderr


def test_pythonpath_of_the_submitting_shell_reaches_the_job(campaign: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "") or str(Path(__file__).parents[1])}
    result = subprocess.run([sys.executable, "-m", "tansaku", "submit", "c.toml", "--dry-run"], cwd=campaign.parent,
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "export PYTHONPATH=" in result.stdout
