"""Provenance: every record says which settings produced it (/settings + settings_id), campaign texts are
kept (/campaigns) and editing [execution] rewrites and recomputes nothing. Real EMT runs, real HDF5 files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import tansaku
from synthetic import cuau_campaign, synthetic_record

from tansaku.results import Store, read_columns, read_table
from tansaku.results.tables import (
    campaign_history,
    current_campaign_text,
    settings_table,
)
from tansaku.workflows.campaign import parse_campaign
from tansaku.workflows.collect import collect, shards_dir
from tansaku.workflows.runner import run_campaign


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished EMT campaign (4 tasks: 2 references, 2 candidates) and its text."""
    tmp = tmp_path_factory.mktemp("provenance")
    text = cuau_campaign(tmp / "cuau.h5")
    summary = run_campaign(parse_campaign(text), show_progress=False)
    assert summary.ran == summary.ok == 4
    return tmp / "cuau.h5", text


def test_every_record_points_at_the_settings_that_produced_it(finished):
    path, _ = finished
    ids = read_columns(path, ["settings_id"])["settings_id"]
    table = settings_table(path)
    assert len(table) == 1 and set(ids) == set(table)  # one distinct value, written once
    settings = json.loads(table[ids[0]])
    import ase

    assert settings == {"stage": "main", "mode": "relax", "calculator": "emt", "params": {}, "version": ase.__version__,
                        "relax": {"optimizer": "FIRE", "fmax": 0.05, "steps": 300, "relax_cell": True}}
    with h5py.File(path, "r", swmr=True) as f:  # what a reader without tansaku sees
        n = int(f["settings/committed"][0])
        start, length = f["settings/start"][0], f["settings/length"][0]
        assert n == 1 and f["settings/key"][0].decode() == ids[0]
        assert json.loads(f["settings/text"][start:start + length].tobytes().decode()) == settings


def test_show_resolves_the_settings(finished):
    path, _ = finished
    row = read_table(path, ["candidate_id", "kind"])
    shown = tansaku("show", path, row["candidate_id"][row["kind"] == "candidate"].iloc[0])
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.strip("│ ").startswith("settings "))
    assert '"calculator": "emt"' in line and '"stage": "main"' in line


def test_editing_execution_rewrites_nothing_and_recomputes_nothing(finished, tmp_path):
    path, text = finished
    before = read_columns(path)
    stat = path.stat()
    edited = text.replace('executor = "serial"\nbatch_size = 32', 'executor = "pool"\nworkers = 2\nbatch_size = 7')
    assert edited != text
    summary = run_campaign(parse_campaign(edited), show_progress=False)
    assert summary.ran == 0 and summary.already_stored == 4  # zero tasks computed
    after = path.stat()
    assert after.st_ino == stat.st_ino  # not replaced by a rewritten copy
    assert after.st_size - stat.st_size < 64 * 1024  # one small /campaigns entry, not a copy of the records
    now = read_columns(path)
    for name in before:  # every record column (finished_at included) unchanged
        assert np.array_equal(before[name], now[name], equal_nan=before[name].dtype.kind == "f"), name
    history = campaign_history(path)
    assert [e.text for e in history] == [text, edited] and current_campaign_text(path) == edited
    assert history[0].extra["first_used"] <= history[1].extra["first_used"]
    run_campaign(parse_campaign(text), show_progress=False)  # back to the first text: made current, not added
    assert [e.text for e in campaign_history(path)] == [text, edited] and current_campaign_text(path) == text
    size = path.stat().st_size
    run_campaign(parse_campaign(text), show_progress=False)  # the same text again: nothing written
    assert path.stat().st_size == size and len(campaign_history(path)) == 2


def _with_settings(k: int, sid: str, stage: str):
    record = synthetic_record(k)
    record.settings_id, record.settings = sid, json.dumps({"stage": stage})
    return record


def test_shards_carry_their_settings_and_collect_merges_them_by_key(tmp_path):
    output = tmp_path / "main.h5"
    folder = shards_dir(output)
    folder.mkdir()
    with Store.open(output) as store:
        store.append([_with_settings(0, "s-a", "one")])
    with Store.open(folder / "a.h5") as shard:
        shard.append([_with_settings(1, "s-a", "one"), _with_settings(2, "s-b", "two")])
    with Store.open(folder / "b.h5") as shard:
        shard.append([_with_settings(3, "s-b", "two"), _with_settings(4, "s-c", "three")])
    assert settings_table(folder / "a.h5") == {"s-a": '{"stage": "one"}', "s-b": '{"stage": "two"}'}
    summary = collect(output)
    assert summary.added == 4
    assert settings_table(output) == {"s-a": '{"stage": "one"}', "s-b": '{"stage": "two"}',
                                      "s-c": '{"stage": "three"}'}
    assert list(read_columns(output, ["settings_id"])["settings_id"]) == ["s-a", "s-a", "s-b", "s-b", "s-c"]


def test_files_from_before_the_tables_stay_readable_and_are_upgraded(tmp_path):
    path = tmp_path / "old.h5"
    with Store.open(path, campaign_text="name = 'old'") as store:
        store.append([synthetic_record(k) for k in range(3)])
    with h5py.File(path, "r+") as f:  # make it a file written before settings and campaigns existed
        for name in ("settings", "campaigns", "records/settings_id"):
            del f[name]
    assert list(read_columns(path, ["settings_id"])["settings_id"]) == ["", "", ""]
    assert settings_table(path) == {}
    assert [e.text for e in campaign_history(path)] == ["name = 'old'"]
    with Store.open(path, campaign_text="name = 'new'") as store:  # the writer adds them (one rewrite)
        store.append([_with_settings(3, "s-x", "x")])
    assert [e.text for e in campaign_history(path)] == ["name = 'old'", "name = 'new'"]
    assert settings_table(path) == {"s-x": '{"stage": "x"}'}
    assert list(read_columns(path, ["settings_id"])["settings_id"]) == ["", "", "", "s-x"]


def test_settings_survive_recovery_and_compaction(tmp_path):
    path = tmp_path / "c.h5"
    store = Store.open(path, campaign_text="compact me")
    for k in range(300):
        store.append([_with_settings(k, f"s-{k % 3}", str(k % 3))])
    bloated = path.stat().st_size
    store.close()
    assert path.stat().st_size < bloated / 3  # compacted: a rewrite
    assert settings_table(path) == {f"s-{i}": json.dumps({"stage": str(i)}) for i in range(3)}
    assert current_campaign_text(path) == "compact me"


WRITER = """
import sys
from tansaku.calculators import CalculatorSpec, register
from tansaku.calculators.builtin import EMT_ELEMENTS, make_emt
from tansaku.workflows.campaign import parse_campaign
from tansaku.workflows.ranking import rank_results
from tansaku.workflows.runner import run_campaign

register(CalculatorSpec(name="emt-private", factory=make_emt, elements=EMT_ELEMENTS, package="ase"))
campaign = parse_campaign(open(sys.argv[1]).read())
run_campaign(campaign, show_progress=False)
rank_results(campaign.output)  # the writing process knows the calculator: the stored objectives are used
"""


@pytest.mark.slow
def test_rank_fails_loudly_when_the_stored_ranking_cannot_be_read(tmp_path):
    from conftest import spawn

    from tansaku.results.derived import derived_attrs

    text = cuau_campaign(tmp_path / "private.h5", "emt-private", '[ranking]\nobjectives = { formation_energy = "min" }\n')
    (tmp_path / "c.toml").write_text(text)
    writer = spawn(WRITER, tmp_path / "c.toml")
    assert writer.wait(timeout=300) == 0
    assert json.loads(derived_attrs(tmp_path / "private.h5")["settings"])["objectives"][0]["column"] == \
        "formation_energy"
    for command in (("rank", tmp_path / "private.h5"), ("rank", tmp_path / "private.h5", "--calculator", "emt")):
        result = tansaku(*command)
        assert result.returncode != 0, result.stdout  # not a silent ranking with default objectives
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot read the ranking settings" in lines[0], result.stderr
        assert "unknown calculator 'emt-private'" in lines[0]
    # the ranking the writer stored is left as it was
    assert json.loads(derived_attrs(tmp_path / "private.h5")["settings"])["objectives"][0]["column"] == \
        "formation_energy"


def test_adding_a_stage_rewrites_nothing_and_recomputes_only_the_new_stage(tmp_path):
    from tansaku.workflows.funnel import run_funnel
    from tansaku.workflows.planfile import ensure_plan

    path = tmp_path / "cuau.h5"
    text = cuau_campaign(path)
    run_campaign(parse_campaign(text), show_progress=False)
    before, inode = read_columns(path), path.stat().st_ino
    funnel = parse_campaign(text + '[[stages]]\nname = "fine"\ncalculator = { name = "emt" }\n'
                                   'relax = { fmax = 0.01 }\nselect = { top = 1 }\n')
    plan, _ = ensure_plan(funnel)
    summary = run_funnel(funnel, plan, show_progress=False)
    assert [(s.name, s.summary.ran) for s in summary.stages] == [("main", 0), ("fine", 3)]  # 1 candidate + 2 refs
    assert path.stat().st_ino == inode
    after = read_columns(path)
    for name in before:  # the first stage's rows are untouched
        assert np.array_equal(before[name], after[name][:4], equal_nan=before[name].dtype.kind == "f"), name
    assert [e.text for e in campaign_history(path)] == [text, funnel.text]
    stages = {json.loads(v)["stage"]: k for k, v in settings_table(path).items()}
    assert set(stages) == {"main", "fine"}
    assert list(after["settings_id"]) == [stages["main"]] * 4 + [stages["fine"]] * 3
