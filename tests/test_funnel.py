"""A real two-stage funnel: EMT relaxes Al-Ni alloys, GPAW (tiny settings, single points) takes the top 2.

Checks lineage (candidate_id kept, source_task_id), per-stage ranking (each stage's formation energies
against its own references, recomputed here from the stored energies), stored selection reasons seen by
`show` and `query`, and a resume after kill -9 during stage 2 that recomputes no stage-1 task and stores
no task twice. GPAW comes from scripts/setup/gpaw.sh; without it the test is skipped (failed under CI).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import start_tansaku, subprocess_env, tansaku
from test_dft import need_gpaw
from tansaku.results import read_columns, read_table
from tansaku.workflows.run_task import TASK_LOG_VARIABLE

CAMPAIGN = """
[campaign]
name = "funnel-test"
output = "{output}"
stage = "emt"
[calculator]
name = "emt"
[relax]
fmax = 0.05
steps = 200
[execution]
executor = "serial"
batch_size = 1
flush_seconds = 0.0
[ranking]
objectives = {{ e_above_hull = "min", formation_energy = "min" }}
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = ["Al", "Ni"], "3c" = ["Al", "Ni"] }}
distinct_elements = true
[[prototypes]]
prototype = "B2"
sites = {{ "1a" = "Ni", "1b" = "Al" }}
[[prototypes]]
prototype = "L10"
sites = {{ "1a" = "Ni", "1d" = "Al" }}

[[stages]]
name = "dft"
calculator = {{ name = "gpaw", params = {{ preset = "fast", kspacing = 0.8, ecut = 200.0, spin = false }} }}
relax = {{ steps = 0 }}
select = {{ top = 2 }}
"""


def rows_of(path: Path, stage: str) -> int:
    if not path.exists():
        return 0
    try:
        return int((read_columns(path, ["stage_name"])["stage_name"] == stage).sum())
    except Exception:  # noqa: BLE001 - the writer may be creating the file
        return 0


def formation_energy(table, stage: str, row) -> float:
    """Per atom, from the stored energies of the stage's own elemental references (independent of ranking)."""
    refs = table[(table["stage_name"] == stage) & (table["kind"] == "reference")]
    mu = {r.formula.rstrip("0123456789"): r.energy_per_atom for r in refs.itertuples()}
    from ase.formula import Formula

    count = Formula(row.formula).count()
    return (row.energy - sum(n * mu[el] for el, n in count.items())) / sum(count.values())


@pytest.mark.slow
def test_emt_to_gpaw_funnel_lineage_ranking_selection_and_kill_resume(tmp_path):
    need_gpaw()
    output = tmp_path / "funnel.h5"
    campaign_file = tmp_path / "funnel.toml"
    campaign_file.write_text(CAMPAIGN.format(output=output))
    log = tmp_path / "tasks.log"
    env = subprocess_env(**{TASK_LOG_VARIABLE: str(log)})

    # run until one stage-2 record is stored, freeze the run wherever it is, kill -9
    process = start_tansaku("run", campaign_file, "--no-progress", env=env)
    deadline = time.monotonic() + 300
    while rows_of(output, "dft") < 1:
        assert process.poll() is None, f"run ended early:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "no stage-2 progress"
        time.sleep(0.05)
    process.send_signal(signal.SIGSTOP)
    before = read_columns(output, ["task_id", "stage_name"])
    process.kill()
    process.wait()
    stage1 = set(before["task_id"][before["stage_name"] == "emt"])
    stored = set(read_columns(output, ["task_id"])["task_id"])
    assert len(stage1) == 6 and rows_of(output, "dft") < 4, "the funnel must be mid-stage-2 when killed"

    starts = len(log.read_text().splitlines())
    final = tansaku("run", campaign_file, "--no-progress", env=env, timeout=600)
    assert final.returncode == 0, final.stdout + final.stderr
    restarted = [line.split()[0] for line in log.read_text().splitlines()[starts:]]
    assert not set(restarted) & stored, "a stored task (of stage 1 or 2) was computed again"
    assert "stage emt: 6 already stored, ran 0" in final.stderr
    assert "Spearman rank correlation" in final.stdout and "moved in" in final.stdout

    table = read_table(output)
    assert len(table) == len(set(table["task_id"])) == 10 and (table["status"] == "ok").all()
    emt, dft = table[table["stage_name"] == "emt"], table[table["stage_name"] == "dft"]
    assert Counter(dft["kind"]) == {"candidate": 2, "reference": 2}
    assert set(restarted) == set(dft["task_id"]) - stored

    # lineage: a stage-2 row keeps the candidate id and links its stage-1 row
    by_id = emt.set_index("task_id")
    for row in dft.itertuples():
        source = by_id.loc[row.source_task_id]
        assert source.candidate_id == row.candidate_id and source.label == row.label
    assert set(emt["source_task_id"]) == {""}
    top2 = set(emt[(emt["kind"] == "candidate") & emt["rank"].between(1, 2)]["candidate_id"])
    assert set(dft[dft["kind"] == "candidate"]["candidate_id"]) == top2

    # per-stage ranking: formation energies against each stage's own references, never a mixed hull
    for stage, rows in (("emt", emt), ("dft", dft)):
        for row in rows[rows["kind"] == "candidate"].itertuples():
            assert row.formation_energy == pytest.approx(formation_energy(table, stage, row), abs=1e-6)
    assert (dft[dft["kind"] == "candidate"]["rank"].sort_values().to_numpy() == [1, 2]).all()
    assert sorted(emt[emt["kind"] == "candidate"]["rank"]) == [1, 2, 3, 4]

    # selection reasons are stored and shown
    candidates = emt[emt["kind"] == "candidate"]
    for row in candidates.itertuples():
        assert row.selection_reason.startswith("dft: selected: rank" if row.rank <= 2 else "dft: not selected: rank")
        assert bool(row.selected) == (row.rank <= 2)
    assert emt[emt["kind"] == "reference"]["selection_reason"].str.contains("carried").all()
    loser = candidates[candidates["rank"] == 4].iloc[0]
    shown = tansaku("show", output, loser.task_id)
    assert shown.returncode == 0 and "dft: not selected: rank 4 not in top 2" in shown.stdout
    queried = tansaku("query", output, "--where", "stage_name == dft", "--format", "csv", "--columns",
                      "task_id,source_task_id,rank")
    assert queried.returncode == 0 and len(queried.stdout.strip().splitlines()) == 1 + 4

    # status per stage, report side by side, re-ranking one stage
    status = tansaku("status", campaign_file)
    assert status.returncode == 0 and "by stage" in status.stdout
    report = tansaku("report", output, "-o", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "report" / "index.html").read_text()
    assert "emt &rarr; dft" in page and "Spearman" in page
    assert (tmp_path / "report" / "emt" / "index.html").exists() and (tmp_path / "report" / "dft" / "index.html").exists()
    ranked = tansaku("rank", output, "--stage", "dft", "--objective", "formation_energy:min")
    assert ranked.returncode == 0, ranked.stderr
    assert "stage dft: top 2" in ranked.stdout and "stage emt" not in ranked.stdout
    again = read_table(output)
    assert np.array_equal(again["rank"].to_numpy()[emt.index], emt["rank"].to_numpy())  # stage 1 kept its ranking


BATCH = """
[campaign]
name = "batch-funnel"
output = "{output}"
[calculator]
name = "emt"
[relax]
fmax = 0.05
steps = 100
[execution]
executor = "serial"
[ranking]
objectives = {{ e_above_hull = "min" }}
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = ["Cu", "Au"], "3c" = ["Cu", "Au"] }}
distinct_elements = true

[[stages]]
name = "fine"
calculator = {{ name = "emt-fast" }}
relax = {{ fmax = 0.01, steps = 200 }}
select = {{ top = 1, filter = "formation_energy <= 0.1" }}
"""


def test_batch_funnel_worker_collect_then_next_stage(tmp_path):
    """Batch jobs of a funnel: workers run the current stage into shards; after `collect` the next
    `submit --resume` (advance_funnel) plans the next stage from the collected, ranked results."""
    from tansaku.workflows.campaign import parse_campaign
    from tansaku.workflows.collect import collect, shards_dir
    from tansaku.workflows.funnel import advance_funnel, stage_tasks
    from tansaku.workflows.planfile import ensure_plan, load_plan, plan_path, read_task_stages
    from tansaku.workflows.status import pending_task_ids
    from tansaku.workflows.worker import run_worker

    text = BATCH.format(output=tmp_path / "b.h5")
    campaign = parse_campaign(text)
    campaign = type(campaign)(**{**campaign.__dict__, "text": text})
    plan, _ = ensure_plan(campaign)
    plan, current = advance_funnel(campaign, plan)
    assert current == "main" and set(read_task_stages(plan_path(campaign))) == {"main"}
    first = pending_task_ids(campaign)
    assert len(first) == len(plan.tasks) == 2 + 2  # Cu3Au, Au3Cu + the Cu and Au references
    run_worker(campaign, first[:2], shards_dir(campaign.output) / "0.h5")
    run_worker(campaign, first[2:], shards_dir(campaign.output) / "1.h5")
    plan, current = advance_funnel(campaign, plan)
    assert current == "main", "stage 1 is in shards only: the next stage waits for collect"
    collect(campaign.output, campaign_text=campaign.text)

    plan, current = advance_funnel(campaign, plan)
    assert current == "fine"
    fine = stage_tasks(load_plan(plan_path(campaign)), campaign, "fine")
    assert Counter(t.kind for t in fine) == {"candidate": 1, "reference": 2}
    assert pending_task_ids(campaign) == [t.task_id for t in fine]
    run_worker(campaign, [t.task_id for t in fine], shards_dir(campaign.output) / "2.h5")
    collect(campaign.output, campaign_text=campaign.text)
    plan, current = advance_funnel(campaign, plan)
    assert current == "fine" and pending_task_ids(campaign) == []
    table = read_table(campaign.output)
    assert Counter(table["stage_name"]) == {"main": 4, "fine": 3} and len(set(table["task_id"])) == 7
    fine_rows = table[table["stage_name"] == "fine"]
    assert set(fine_rows["calculator"]) == {"emt-fast"} and (fine_rows["rank"] > 0).sum() == 1
