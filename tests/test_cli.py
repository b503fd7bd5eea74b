"""The `tansaku` command as a user runs it: run, status, show with exports, and its error messages."""

from __future__ import annotations


import numpy as np
from ase.io import read

from conftest import tansaku
from tansaku.results import read_columns, read_record

CAMPAIGN = """
[campaign]
name = "cli"
output = "cli.h5"
[calculator]
name = "emt"
[execution]
executor = "serial"
[[prototypes]]
prototype = "L10"
sites = { "1a" = ["Cu", "Pt"], "1d" = ["Au", "Ni"] }
"""


def test_run_status_show_and_export(tmp_path):
    (tmp_path / "c.toml").write_text(CAMPAIGN)
    run = tansaku("run", "c.toml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "4 candidates generated" in run.stderr and "ran 8: 8 ok, 0 failed" in run.stderr
    status = tansaku("status", "cli.h5", cwd=tmp_path)
    assert status.returncode == 0 and "8 records" in status.stdout and "L10" in status.stdout
    task_id = read_columns(tmp_path / "cli.h5", ["task_id"])["task_id"][-1]
    show = tansaku("show", "cli.h5", task_id[:8], "--cif", "x.cif", "--extxyz", "x.xyz", cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    fields, atoms = read_record(tmp_path / "cli.h5", task_id)
    assert fields["label"] in show.stdout and task_id in show.stdout
    for name in ("x.cif", "x.xyz"):
        exported = read(tmp_path / name)
        assert exported.get_chemical_formula() == atoms.get_chemical_formula()
        np.testing.assert_allclose(exported.cell.cellpar(), atoms.cell.cellpar(), atol=1e-4)
    again = tansaku("run", "c.toml", cwd=tmp_path)
    assert "8 already stored, ran 0" in again.stderr


def test_errors_are_one_clear_line_without_traceback(tmp_path):
    (tmp_path / "bad.toml").write_text(CAMPAIGN.replace('"Au"', '"Qq"'))
    bad = tansaku("run", "bad.toml", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "bad.toml: prototypes[0].sites.1d: unknown element 'Qq'" in " ".join(bad.stderr.split())
    missing = tansaku("show", "nothing.h5", "abc", cwd=tmp_path)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "nothing.h5" in missing.stderr
