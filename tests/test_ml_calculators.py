"""CHGNet and SevenNet on a few small cells: real pretrained weights shipped in their wheels."""

from __future__ import annotations

import numpy as np
import pytest

from tansaku.calculators import get_calculator, relax, RelaxSettings
from tansaku.calculators.registry import _cached
from tansaku.results import read_columns, read_record
from tansaku.workflows.campaign import parse_campaign
from tansaku.workflows.runner import run_campaign

pytestmark = pytest.mark.ml

MAGNETS = """
[campaign]
name = "ml"
output = "{output}"
[calculator]
name = "chgnet"
[relax]
fmax = 0.05
steps = 200
[execution]
executor = "serial"
task_timeout = 0  # tasks in this process (no sandbox), so that the model cache below is this process's
[[prototypes]]
prototype = "CaCu5"
sites = {{ "1a" = "Sm", "2c" = "Co", "3g" = "Co" }}
[[prototypes]]
prototype = "bcc"
sites = {{ "2a" = "Fe" }}
include_parent = false
[[prototypes.variants]]
substitute = {{ "2a" = {{ Co = 1 }} }}
"""


def test_chgnet_campaign_records_magnetic_moments_and_reuses_the_model(tmp_path):
    pytest.importorskip("chgnet")
    campaign = parse_campaign(MAGNETS.format(output=tmp_path / "ml.h5"))
    _cached.cache_clear()
    summary = run_campaign(campaign, show_progress=False)
    assert summary.ok == summary.tasks == 2 + 3  # SmCo5, FeCo + the Co, Fe, Sm references
    cols = read_columns(campaign.output)
    assert (cols["status"] == "ok").all() and cols["converged"].all()
    assert _cached.cache_info().misses == 1  # one model load served every task of this process
    by_label = dict(zip(cols["label"], cols["task_id"]))
    fields, atoms = read_record(campaign.output, by_label["SmCo5 CaCu5"])
    magmoms = atoms.get_initial_magnetic_moments()
    assert len(magmoms) == 6 and fields["magmom_total"] == pytest.approx(magmoms.sum(), abs=1e-4)
    assert 5 < fields["magmom_total"] < 12  # SmCo5: Co ~1.4-1.7 μB each
    fe = read_record(campaign.output, by_label["Fe element reference"])[0]
    fe_atoms = read_record(campaign.output, by_label["Fe element reference"])[1]
    assert 2.0 < fe["magmom_total"] / len(fe_atoms) < 2.6  # bcc Fe: ~2.2 μB per atom


def test_sevenn_relaxes_a_small_cell():
    pytest.importorskip("sevenn")
    from ase.build import bulk

    result = relax(bulk("Cu", "fcc", a=3.7), get_calculator("sevenn"), RelaxSettings(fmax=0.02))
    assert result.converged and result.magmoms is None
    assert 3.55 < result.atoms.cell.cellpar()[0] * np.sqrt(2) < 3.70  # fcc Cu a ≈ 3.6 Å (PBE-like 3.63)
    assert result.energy < -3.0
