"""The [scheduler] table of a campaign or a machine profile file: typed settings, key-path errors,
and no influence on task identity."""

from __future__ import annotations

from pathlib import Path

import pytest

from tansaku.workflows.campaign import CampaignError, load_campaign, parse_campaign
from tansaku.workflows.machine import SchedulerSettings, load_machine, scheduler_settings
from tansaku.workflows.plan import make_plan

BASE = """
[campaign]
name = "m"
[calculator]
name = "emt"
[[prototypes]]
prototype = "fcc"
sites = { "4a" = ["Cu", "Ni"] }
"""

SCHEDULER = """
[scheduler]
name = "slurm"
queue = "debug"
account = "mat-1"
walltime = "1-02:00:00"
memory = "4G"
cores = 8
tasks_per_element = 5
max_running = 3
deadline_margin = "10m"
directives = ["--qos=normal"]
setup = ["module load python"]
environment = { OMP_PROC_BIND = "false" }
log_dir = "logs"
[scheduler.jobqueue]
maximum_jobs = 4
processes = 2
interface = "lo"
"""


def test_scheduler_table_is_parsed(tmp_path: Path) -> None:
    campaign = parse_campaign(BASE + SCHEDULER, base_dir=tmp_path)
    s = campaign.scheduler
    assert isinstance(s, SchedulerSettings)
    assert (s.name, s.queue, s.account, s.walltime, s.memory_mb, s.cores) == ("slurm", "debug", "mat-1", 93600, 4096, 8)
    assert (s.tasks_per_element, s.max_running, s.deadline_margin) == (5, 3, 600)
    assert s.directives == ("--qos=normal",) and s.setup == ("module load python",)
    assert s.environment == {"OMP_PROC_BIND": "false"} and s.log_dir == tmp_path / "logs"
    assert (s.jobqueue.minimum_jobs, s.jobqueue.maximum_jobs, s.jobqueue.processes, s.jobqueue.interface) == \
        (1, 4, 2, "lo")
    assert parse_campaign(BASE).scheduler is None


@pytest.mark.parametrize("line, message", [
    ('name = "condor"', "scheduler.name: unknown name 'condor'; choose slurm, pbs, torque, lsf"),
    ('walltime = "soon"', "scheduler.walltime: walltime 'soon'"),
    ('memory = "lots"', "scheduler.memory: memory 'lots'"),
    ("cores = 0", "scheduler.cores: must be >= 1, got 0"),
    ("cores = 1.5", "scheduler.cores: expected int"),
    ('queue = "a b"', "scheduler.queue: expected a name without spaces"),
    ("directives = [1]", r"scheduler.directives\[0\]: expected a one-line string"),
    ('walltime = "10m"\ndeadline_margin = "10m"', "scheduler.deadline_margin: must be shorter than the walltime"),
    ("environment = { A = 1 }", "scheduler.environment.A: expected NAME"),
    ("partition = \"x\"", "scheduler.partition: unknown key"),
    ("jobqueue = { minimum_jobs = 3, maximum_jobs = 2 }", "scheduler.jobqueue.maximum_jobs: must be >= minimum_jobs"),
    ("cores = 2\njobqueue = { minimum_jobs = 0 }", "scheduler.jobqueue.minimum_jobs: 0 needs processes = 1"),
    ('template_dir = "nowhere"', "scheduler.template_dir: no such directory"),
])
def test_bad_scheduler_settings_name_the_key(line: str, message: str) -> None:
    with pytest.raises(CampaignError, match=f"^c.toml: {message}"):
        parse_campaign(BASE + "[scheduler]\n" + line + "\n", source="c.toml")


def test_machine_file_replaces_the_campaign_table_and_keeps_task_ids(tmp_path: Path) -> None:
    machine = tmp_path / "cluster.toml"
    machine.write_text('[scheduler]\nname = "pbs"\nqueue = "workq"\nwalltime = "30m"\ntemplate_dir = "tpl"\n')
    (tmp_path / "tpl").mkdir()
    settings = load_machine(machine)
    assert (settings.name, settings.queue, settings.walltime) == ("pbs", "workq", 1800)
    assert settings.template_dir == tmp_path / "tpl"  # relative to the machine file
    campaign_file = tmp_path / "c.toml"
    campaign_file.write_text(BASE + SCHEDULER)
    campaign = load_campaign(campaign_file)
    assert scheduler_settings(campaign.scheduler, machine, None) == settings
    assert scheduler_settings(campaign.scheduler, None, "lsf").name == "lsf"
    assert scheduler_settings(None, None, None) == SchedulerSettings()
    with pytest.raises(CampaignError, match="--scheduler: unknown scheduler 'sge'"):
        scheduler_settings(None, None, "sge")
    # the machine settings never enter task ids
    plain = [t.task_id for t in make_plan(parse_campaign(BASE)).tasks]
    assert [t.task_id for t in make_plan(campaign).tasks] == plain


def test_dask_jobqueue_executor_needs_a_scheduler_table() -> None:
    with pytest.raises(CampaignError, match="^c.toml: scheduler: executor 'dask-jobqueue' needs a \\[scheduler\\] table"):
        parse_campaign(BASE + '[execution]\nexecutor = "dask-jobqueue"\n', source="c.toml")
    assert parse_campaign(BASE + '[execution]\nexecutor = "dask-jobqueue"\n' + SCHEDULER).scheduler.cores == 8


def test_bad_machine_file(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="cannot read machine file"):
        load_machine(tmp_path / "missing.toml")
    (tmp_path / "m.toml").write_text("[scheduler]\nname = 'slurm'\n[execution]\nworkers = 2\n")
    with pytest.raises(CampaignError, match=r"m.toml: execution: unknown key; expected one of scheduler"):
        load_machine(tmp_path / "m.toml")
