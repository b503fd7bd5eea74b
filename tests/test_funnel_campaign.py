"""[[stages]] in the campaign file: typed stages, key-path errors, and first-stage task ids that never change."""

import re

import pytest

from tansaku.calculators import RelaxSettings, get_spec
from tansaku.screening.identity import canonical_structure_bytes, short_hash
from tansaku.workflows.campaign import DEFAULT_STAGE, CampaignError, Selection, parse_campaign
from tansaku.workflows.plan import make_plan
from tansaku.workflows.tasks import next_stage_task, stage_task_id, task_from_dict, task_to_dict, tasks_equal

SINGLE = """
[campaign]
name = "t"
output = "t.h5"
[calculator]
name = "emt"
[relax]
fmax = 0.1
steps = 50
[execution]
executor = "serial"
[ranking]
objectives = { e_above_hull = "min" }
[[prototypes]]
prototype = "L12"
sites = { "1a" = ["Au", "Pt"], "3c" = "Cu" }
"""

FUNNEL = SINGLE.replace('output = "t.h5"', 'output = "t.h5"\nstage = "screen"') + """
[[stages]]
name = "refine"
calculator = { name = "emt-fast" }
relax = { fmax = 0.02, steps = 0 }
execution = { batch_size = 4 }
select = { top = 2, e_above_hull_max = 0.1, filter = "formation_energy <= 0" }

[[stages]]
name = "final"
calculator = { name = "emt", runtime = { cores = 2 } }
ranking = { objectives = { formation_energy = "min" } }
select = { pareto = true, filter = ["rank <= 5", "elements has Cu"] }
"""


def test_single_stage_campaign_has_one_default_stage():
    campaign = parse_campaign(SINGLE)
    assert not campaign.is_funnel and campaign.stage_name == DEFAULT_STAGE
    (stage,) = campaign.stages
    assert stage.name == DEFAULT_STAGE and stage.select is None
    assert stage.calculator == campaign.calculator and stage.relax == campaign.relax
    assert stage.execution == campaign.execution and stage.ranking == campaign.ranking


def test_funnel_stages_are_typed_and_inherit_what_they_do_not_set():
    campaign = parse_campaign(FUNNEL)
    assert campaign.is_funnel and [s.name for s in campaign.stages] == ["screen", "refine", "final"]
    screen, refine, final = campaign.stages
    assert refine.calculator.name == "emt-fast" and refine.relax == RelaxSettings(fmax=0.02, steps=0)
    assert refine.single_point and not screen.single_point and final.relax == RelaxSettings()
    # [execution] is inherited key by key and overridden by the stage's own keys
    assert refine.execution.executor == "serial" and refine.execution.batch_size == 4
    assert final.execution == screen.execution
    assert final.calculator.runtime.cores == 2 and screen.calculator.runtime.cores == 1
    # ranking defaults to the campaign's
    assert refine.ranking == screen.ranking and final.ranking != screen.ranking
    assert [o.column for o in final.ranking.spec.objectives] == ["formation_energy"]
    assert refine.select.top == 2 and refine.select.e_above_hull_max == 0.1 and not refine.select.pareto
    assert [str(f) for f in refine.select.filters] == ["formation_energy <= 0"]
    assert final.select == Selection(pareto=True, filters=final.select.filters) and len(final.select.filters) == 2
    assert campaign.stage("final") is not None
    assert campaign.for_stage("refine").calculator.name == "emt-fast"
    with pytest.raises(ValueError, match="no stage 'dft'.*screen, refine, final"):
        campaign.stage("dft")


def _edit(old: str, new: str) -> str:
    assert old in FUNNEL, old
    return FUNNEL.replace(old, new, 1)


BAD = {
    "top zero": (_edit("top = 2", "top = 0"), r"stages\[0\]\.select\.top: must be a positive integer, got 0"),
    "top text": (_edit("top = 2", 'top = "2"'), r"stages\[0\]\.select\.top: expected int, got str"),
    "negative hull": (_edit("e_above_hull_max = 0.1", "e_above_hull_max = -1"),
                      r"stages\[0\]\.select\.e_above_hull_max: must be >= 0"),
    "unknown select key": (_edit("top = 2", "best = 2"), r"stages\[0\]\.select\.best: unknown key"),
    "empty select": (_edit("select = { pareto = true, filter = [\"rank <= 5\", \"elements has Cu\"] }",
                           "select = {}"), r"stages\[1\]\.select: give at least one rule"),
    "missing select": (_edit('select = { top = 2, e_above_hull_max = 0.1, filter = "formation_energy <= 0" }', ""),
                       r"stages\[0\]\.select: missing required key"),
    "bad filter": (_edit('"formation_energy <= 0"', '"formation_energy <== 0"'),
                   r"stages\[0\]\.select\.filter: .*operator"),
    "unknown filter column": (_edit('"rank <= 5"', '"rnak <= 5"'),
                              r"stages\[1\]\.select\.filter\[0\]: .*rnak"),
    "duplicate name": (_edit('name = "final"', 'name = "refine"'), r"stages\[1\]\.name: stage name 'refine' is used "
                                                                   r"twice"),
    "name of first stage": (_edit('name = "final"', 'name = "screen"'), r"stages\[1\]\.name: .*used twice"),
    "bad name": (_edit('name = "final"', 'name = "fi nal"'), r"stages\[1\]\.name: stage name 'fi nal'"),
    "bad first name": (_edit('stage = "screen"', 'stage = "1st"'), r"campaign\.stage: stage name '1st'"),
    "missing calculator": (_edit('calculator = { name = "emt-fast" }\n', ""),
                           r"stages\[0\]\.calculator: missing required key"),
    "unknown calculator": (_edit('name = "emt-fast"', 'name = "vasp5"'),
                           r"stages\[0\]\.calculator: unknown calculator 'vasp5'"),
    "bad relax": (_edit("fmax = 0.02", "fmax = -0.02"), r"stages\[0\]\.relax\.fmax: must be > 0"),
    "bad execution": (_edit("batch_size = 4", "batch_size = 0"), r"stages\[0\]\.execution\.batch_size: must be >= 1"),
    "bad ranking": (_edit('objectives = { formation_energy = "min" }', 'objectives = { formation_energy = "low" }'),
                    r"stages\[1\]\.ranking\.objectives\.formation_energy: expected \"min\" or \"max\""),
    "unknown stage key": (_edit('name = "final"', 'name = "final"\nreferences = "none"'),
                          r"stages\[1\]\.references: unknown key"),
    "runtime": (_edit("cores = 2", "cores = 0"), r"stages\[1\]\.calculator\.runtime\.cores: must be >= 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_stages_name_the_key(case):
    text, pattern = BAD[case]
    with pytest.raises(CampaignError) as info:
        parse_campaign(text, source="funnel.toml")
    message = str(info.value)
    assert message.startswith("funnel.toml: ") and "\n" not in message
    assert re.search(pattern, message), message


def _pre_funnel_task_id(task) -> str:
    """The task-id rule as it was before funnels existed (kept here as the independent reference)."""
    settings = {**task.relax.as_dict(), "relax_cell": task.relax.relax_cell and task.relax_cell}
    return short_hash(canonical_structure_bytes(task.atoms), task.calculator, dict(task.params),
                      get_spec(task.calculator).version(), settings, task.stage)


def test_first_stage_task_ids_do_not_change():
    single, funnel = make_plan(parse_campaign(SINGLE)), make_plan(parse_campaign(FUNNEL))
    assert len(single.tasks) == 5  # AuCu3, PtCu3 + Au, Cu, Pt
    assert [_pre_funnel_task_id(t) for t in single.tasks] == [t.task_id for t in single.tasks]
    # naming the first stage and adding later stages changes no first-stage task id
    assert [t.task_id for t in funnel.tasks] == [t.task_id for t in single.tasks]
    assert {t.stage_name for t in single.tasks} == {"main"} and {t.stage_name for t in funnel.tasks} == {"screen"}
    assert {t.source_task_id for t in funnel.tasks} == {""}


def test_later_stage_task_id_hashes_source_and_settings_not_coordinates():
    campaign = parse_campaign(FUNNEL)
    source = make_plan(campaign).tasks[-1]
    refine = campaign.stage("refine")
    moved = source.atoms.copy()
    moved.positions += 0.01
    moved.cell *= 1.01
    a = next_stage_task(source, moved, refine.calculator.name, refine.calculator.params, refine.relax, "refine")
    b = next_stage_task(source, source.atoms, refine.calculator.name, refine.calculator.params, refine.relax, "refine")
    assert a.task_id == b.task_id != source.task_id
    assert a.candidate_id == source.candidate_id and a.source_task_id == source.task_id and a.stage_name == "refine"
    assert a.kind == source.kind and a.label == source.label
    other = {"relax": RelaxSettings(fmax=0.03, steps=0)}, {"stage_name": "final"}, {"calculator": "emt"}
    for change in other:
        args = {"calculator": "emt-fast", "relax": refine.relax, "stage_name": "refine", **change}
        tid = stage_task_id(source.task_id, args["calculator"], {}, args["relax"], True, "relax", args["stage_name"])
        assert tid != a.task_id
    assert stage_task_id(source.task_id, "emt-fast", {}, refine.relax, True, "relax", "refine") == a.task_id
    back = task_from_dict(task_to_dict(a))
    assert tasks_equal(back, a)


def test_plan_file_keeps_stage_fields(tmp_path):
    from tansaku.workflows.planfile import load_tasks, save_plan
    from tansaku.workflows.plan import Plan

    campaign = parse_campaign(FUNNEL)
    tasks = make_plan(campaign).tasks
    refine = campaign.stage("refine")
    later = [next_stage_task(t, t.atoms, refine.calculator.name, refine.calculator.params, refine.relax, "refine")
             for t in tasks]
    save_plan(Plan(tasks=[*tasks, *later]), tmp_path / "p.plan.h5")
    loaded = load_tasks(tmp_path / "p.plan.h5")
    assert all(tasks_equal(x, y) for x, y in zip(loaded, [*tasks, *later], strict=True))
    assert [t.stage_name for t in loaded] == ["screen"] * len(tasks) + ["refine"] * len(tasks)


def test_single_stage_store_resumes_after_the_plan_format_change(tmp_path):
    """A store and plan written before funnels: the old plan file (format 1) is planned again, its task
    ids are those stored, and nothing is recomputed."""
    import h5py

    from tansaku.results import read_columns
    from tansaku.workflows.planfile import ensure_plan, plan_path
    from tansaku.workflows.runner import run_campaign

    campaign = parse_campaign(SINGLE.replace('output = "t.h5"', f'output = "{tmp_path / "t.h5"}"'))
    first = run_campaign(campaign, show_progress=False)
    assert first.ran == first.ok == 5
    with h5py.File(plan_path(campaign), "r+") as f:
        f.attrs["plan_version"] = 1  # as saved before funnels
    plan, reused = ensure_plan(campaign)
    assert not reused
    again = run_campaign(campaign, show_progress=False)
    assert again.ran == 0 and again.already_stored == 5
    stored = read_columns(campaign.output, ["task_id", "stage_name", "source_task_id"])
    assert sorted(stored["task_id"]) == sorted(t.task_id for t in plan.tasks)
    assert set(stored["stage_name"]) == {"main"} and set(stored["source_task_id"]) == {""}
