"""FireWorks backend with a real LaunchPad and real rockets (``rlaunch rapidfire`` processes).

What stands in for MongoDB, and why: no MongoDB server can be installed on this machine.
- BriskDB (``mongo_stand_in.py``): a MongoDB wire-protocol server in its own process on loopback; stock
  pymongo/FireWorks in several processes use it as they use ``mongod``, so concurrent launchers are tested
  against it. With TANSAKU_TEST_MONGODB_URI set, the same tests also run against that MongoDB.
- mongomock (FireWorks' own ``MONGOMOCK_SERVERSTORE_FILE`` support, a JSON file): one process at a time,
  so it runs the commands one after another, as a user without a database server could.
Both are set up by scripts/setup/fireworks.sh; without them the tests are skipped, unless CI is set.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, TESTS, subprocess_env
from hpc_campaigns import write_campaign

from tansaku.results import read_columns

try:  # the local SLURM of scripts/slurm-up.sh (tests/slurm_cluster.py comes with `tansaku submit`'s tests)
    from slurm_cluster import slurm, wait_for  # noqa: F401  (session fixture)
except ImportError:
    slurm = None



def _need(module: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is missing (scripts/setup/fireworks.sh installs it)")
        pytest.skip(f"{module} is not installed (run scripts/setup/fireworks.sh)")


@pytest.fixture(scope="module", params=["briskdb", "mongodb"])
def mongo_uri(request, tmp_path_factory):
    """The URI of a MongoDB-protocol server: BriskDB started here, or the MongoDB the variable names."""
    _need("fireworks")
    from mongo_stand_in import URI_VARIABLE, briskdb_server

    if request.param == "mongodb":
        if not os.environ.get(URI_VARIABLE):
            pytest.skip(f"{URI_VARIABLE} names no MongoDB server")
        yield os.environ[URI_VARIABLE]
        return
    _need("briskdb")
    with briskdb_server(tmp_path_factory.mktemp("briskdb")) as uri:
        yield uri


@pytest.fixture
def launchpad_file(tmp_path, mongo_uri):
    from mongo_stand_in import write_launchpad

    return write_launchpad(tmp_path / "my_launchpad.yaml", mongo_uri)


def _env(**extra: str) -> dict[str, str]:
    """A child's environment (this checkout and tests/ on its path); no mongomock unless asked for."""
    env = subprocess_env(**extra)
    if "MONGOMOCK_SERVERSTORE_FILE" not in extra:
        env.pop("MONGOMOCK_SERVERSTORE_FILE", None)
    return env


def _run(args: list[str], cwd: Path, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=_env(**extra), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: rc {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _tansaku(args: list[str], cwd: Path, **extra: str) -> str:
    """``python -m tansaku ARGS`` in its own process; its stderr with lines unwrapped."""
    return " ".join(_run([sys.executable, "-m", "tansaku", *args], cwd, **extra).stderr.split())


def _cli(args: list[str]):
    """``tansaku`` in this process (where the test's calculator is registered)."""
    from typer.testing import CliRunner

    from tansaku.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"{args}: {result.output}"
    return " ".join(result.output.split())  # rich wraps long lines (temporary paths)


def _no_gold_campaign(folder: Path) -> Path:
    from fireworks_plugin import NAME, register_no_gold

    register_no_gold()  # in this process (the test asks for the calculator_registry fixture, which undoes it)
    path = write_campaign(folder, "nogold")
    path.write_text(path.read_text().replace('[calculator]\nname = "emt"', f'[calculator]\nname = "{NAME}"'))
    return path


def _launchers(folder: Path) -> list[Path]:
    return sorted(folder.glob("launcher_*"))


def _launchpad(path: Path):
    from tansaku.workflows.fireworks_backend import load_launchpad

    return load_launchpad(path)


@pytest.mark.slow
def test_campaign_through_launchpad_two_launchers_one_fails(tmp_path, launchpad_file, calculator_registry):
    """Add a campaign, run it with two concurrent `rlaunch rapidfire`, collect, add and collect again."""
    from fireworks_plugin import MESSAGE, RegisterNoGold

    from tansaku.workflows.campaign import load_campaign
    from tansaku.workflows.fireworks_backend import campaign_fireworks, store_path
    from tansaku.workflows.fireworks_tasks import SPEC_KEY, RunTansakuTasks

    campaign_file = _no_gold_campaign(tmp_path)
    campaign = load_campaign(campaign_file)
    out = _cli(["fireworks", "add", str(campaign_file), "--launchpad", str(launchpad_file)])
    lp = _launchpad(launchpad_file)
    fireworks = campaign_fireworks(lp, store_path(campaign))
    n = len(fireworks)
    assert n >= 10 and f"added {n} tasks as {n} Fireworks" in out
    doc = lp.fireworks.find_one({"fw_id": fireworks[0].fw_id})
    assert set(doc["spec"][SPEC_KEY]) == {"campaign", "store", "task_ids", "shard"}  # ids and paths only
    # the rockets' processes learn the test calculator from a FireTask run before tansaku's
    tasks = [RegisterNoGold().to_dict(), RunTansakuTasks().to_dict()]
    lp.update_spec([fw.fw_id for fw in fireworks], {"_tasks": tasks})

    log = tmp_path / "task_starts.log"
    rockets = []
    for k in range(2):
        folder = tmp_path / f"launcher{k}"
        folder.mkdir()
        rockets.append(subprocess.Popen(["rlaunch", "-l", str(launchpad_file), "rapidfire"], cwd=folder,
                                        env=_env(TANSAKU_TASK_LOG=str(log)), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    outputs = [rocket.communicate(timeout=600)[0] for rocket in rockets]
    assert all(rocket.returncode == 0 for rocket in rockets), outputs
    starts = Counter(line.split()[0] for line in log.read_text().splitlines())
    all_ids = {tid for fw in fireworks for tid in fw.task_ids}
    assert set(starts) == all_ids and set(starts.values()) == {1}  # every task ran once: none lost, none twice
    assert all("RUNNING fw_id" in output for output in outputs)  # both launchers ran Fireworks

    states = {fw.fw_id: fw.state for fw in campaign_fireworks(lp, store_path(campaign))}
    out = _cli(["fireworks", "collect", str(campaign_file), "--launchpad", str(launchpad_file)])
    cols = read_columns(campaign.output)
    assert len(cols["task_id"]) == n and set(cols["task_id"]) == all_ids
    gold = np.array(["Au" in label for label in cols["label"]])
    assert gold.sum() > 0 and (~gold).sum() > 0
    assert (cols["status"][gold] == "failed").all() and (cols["status"][~gold] == "ok").all()
    assert all(MESSAGE in error for error in cols["error"][gold])
    assert Counter(states.values()) == {"FIZZLED": gold.sum(), "COMPLETED": (~gold).sum()}
    assert f"{gold.sum()} FIZZLED" in out and "ranking stored" in out
    fizzled = lp.fireworks.find_one({"state": "FIZZLED"})
    launch = lp.launches.find_one({"launch_id": fizzled["launches"][-1]})
    assert MESSAGE in launch["action"]["stored_data"]["_exception"]["_stacktrace"]  # FireWorks says why, too

    again = _cli(["fireworks", "add", str(campaign_file), "--launchpad", str(launchpad_file)])
    assert "added 0 tasks as 0 Fireworks" in again
    assert lp.fireworks.count_documents({}) == n
    again = _cli(["fireworks", "collect", str(campaign_file), "--launchpad", str(launchpad_file)])
    assert f"0 added, 0 replaced, {n} already stored" in again
    assert len(read_columns(campaign.output, ["task_id"])["task_id"]) == n


@pytest.mark.slow
def test_fizzled_before_running_is_stored_as_failed_then_rerun(tmp_path, launchpad_file):
    """Rockets that fail before any task runs (the campaign file changed under them) leave no record: collect
    stores their tasks as failed with the Firework's error; `add --rerun-failed` runs them again."""
    campaign_file = write_campaign(tmp_path, "changed")
    text = campaign_file.read_text()
    _tansaku(["fireworks", "add", str(campaign_file), "-l", str(launchpad_file), "--tasks-per-firework", "5"],
             tmp_path)
    campaign_file.write_text(text.replace("fmax = 0.02", "fmax = 0.03"))  # not planned again: rockets refuse
    _run(["rlaunch", "-l", str(launchpad_file), "rapidfire"], tmp_path)
    campaign_file.write_text(text)
    done = _tansaku(["fireworks", "collect", str(campaign_file), "-l", str(launchpad_file)], tmp_path)
    assert "FIZZLED" in done and "stored as failed with the Firework's error" in done
    output = tmp_path / "changed.h5"
    cols = read_columns(output)
    n = len(cols["task_id"])
    assert n >= 10 and (cols["status"] == "failed").all()
    assert all("FIZZLED: PlanError:" in e and "different version" in e for e in cols["error"]), cols["error"][:2]
    assert len({e.split(" FIZZLED")[0] for e in cols["error"]}) == -(-n // 5)  # one Firework per 5 tasks

    done = _tansaku(["fireworks", "add", str(campaign_file), "-l", str(launchpad_file), "--rerun-failed"], tmp_path)
    assert f"{-(-n // 5)} FIZZLED Fireworks set to run again" in done and "added 0 tasks" in done
    _run(["rlaunch", "-l", str(launchpad_file), "rapidfire"], tmp_path)
    _tansaku(["fireworks", "collect", str(campaign_file), "-l", str(launchpad_file)], tmp_path)
    cols = read_columns(output)
    assert len(cols["task_id"]) == n and (cols["status"] == "ok").all()  # ok records replaced the failed ones


@pytest.mark.slow
def test_commands_one_after_another_on_mongomock(tmp_path):
    """lpad reset, tansaku fireworks add, rlaunch rapidfire, collect and add again, each its own process,
    on FireWorks' mongomock support (a JSON file instead of a server: one process at a time)."""
    _need("fireworks")
    _need("mongomock_persistence")
    database = tmp_path / "mongomock.json"
    database.write_text("{}")
    env = {"MONGOMOCK_SERVERSTORE_FILE": str(database)}
    lp = tmp_path / "my_launchpad.yaml"
    lp.write_text("host: localhost\nport: 27017\nname: fireworks\nstrm_lvl: WARNING\n")
    campaign_file = write_campaign(tmp_path, "mock")
    _run(["lpad", "-l", str(lp), "reset", "--password", datetime.datetime.now().strftime("%Y-%m-%d")], tmp_path, **env)
    added = _tansaku(["fireworks", "add", str(campaign_file), "-l", str(lp), "--tasks-per-firework", "4",
                      "--workers", "2"], tmp_path, **env)  # a pool of two processes in each rocket
    _run(["rlaunch", "-l", str(lp), "rapidfire"], tmp_path, **env)
    collected = _tansaku(["fireworks", "collect", str(campaign_file), "-l", str(lp)], tmp_path, **env)
    cols = read_columns(tmp_path / "mock.h5")
    n = len(cols["task_id"])
    assert n >= 10 and (cols["status"] == "ok").all()
    # one rlaunch process ran every Firework; the tasks ran in each Firework's own pool (in the rocket: 1 pid)
    assert len({w.split(":")[-1] for w in cols["worker"]}) >= len(_launchers(tmp_path)) == -(-n // 4)
    assert f"added {n} tasks as {-(-n // 4)} Fireworks" in added and f"{-(-n // 4)} COMPLETED" in collected
    again = _tansaku(["fireworks", "add", str(campaign_file), "-l", str(lp)], tmp_path, **env)
    assert f"{n} stored or in shards" in again and "added 0 tasks" in again


def test_without_fireworks_installed_the_commands_say_what_to_install(tmp_path):
    campaign_file = write_campaign(tmp_path)
    code = ("import sys; sys.modules['fireworks'] = None; import tansaku.cli as cli; "
            "sys.argv = ['tansaku', 'fireworks', 'add', sys.argv[1], '-l', 'lp.yaml']; cli.main()")
    done = subprocess.run([sys.executable, "-c", code, str(campaign_file)], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "pip install fireworks" in done.stderr and "Traceback" not in done.stderr
    code = ("import sys; import tansaku.cli, tansaku.workflows.fireworks_backend, tansaku.workflows.runner; "
            "assert 'fireworks' not in sys.modules, 'imported eagerly'")
    subprocess.run([sys.executable, "-c", code], env=_env(), check=True, timeout=120)


def test_launchpad_problems_are_one_line_errors(tmp_path, mongo_uri):
    from mongo_stand_in import free_port

    campaign_file = write_campaign(tmp_path)
    cases = {
        "missing.yaml": "no such LaunchPad file",
        "bad.yaml": "not a readable LaunchPad file",
        "closed.yaml": "cannot reach the LaunchPad's MongoDB",
        "fresh.yaml": "is not initialised; run `lpad -l",
    }
    (tmp_path / "bad.yaml").write_text("host: [unclosed\n")
    (tmp_path / "closed.yaml").write_text(f"host: 127.0.0.1\nport: {free_port()}\nname: x\n"
                                          "mongoclient_kwargs:\n  serverSelectionTimeoutMS: 300\n")
    (tmp_path / "fresh.yaml").write_text(f"host: {mongo_uri}\nuri_mode: true\nname: fresh_{uuid.uuid4().hex[:8]}\n")
    for name, message in cases.items():
        done = subprocess.run([sys.executable, "-m", "tansaku", "fireworks", "add", str(campaign_file), "-l", name],
                              cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, \
            (name, done.stderr)


def test_a_second_add_of_the_same_campaign_waits_for_the_first(tmp_path, launchpad_file):
    from tansaku.workflows.campaign import load_campaign
    from tansaku.workflows.fireworks_backend import FireWorksError, _adding, add_campaign, store_path

    campaign = load_campaign(write_campaign(tmp_path))
    lp = _launchpad(launchpad_file)
    with _adding(lp, store_path(campaign)):  # another add holds the campaign's lease
        with pytest.raises(FireWorksError, match="another `tansaku fireworks add` of this campaign is running"):
            add_campaign(campaign, lp)
    assert add_campaign(campaign, lp).fireworks > 0  # released
    with _adding(lp, store_path(campaign), seconds=-1):  # a lease left by a killed add has expired
        assert add_campaign(campaign, lp).fireworks == 0


@pytest.mark.slow
def test_sigterm_keeps_finished_records_and_the_lost_run_resumes(tmp_path, launchpad_file):
    """SIGTERM (a batch job at its wall time): the rocket flushes finished records to its shard and dies;
    `lpad detect_lostruns --rerun` queues the Firework again, and it runs only the tasks not in its shard."""
    from tansaku.workflows.collect import shard_files
    from tansaku.workflows.planfile import read_task_ids

    campaign_file = write_campaign(tmp_path, "term")
    _tansaku(["fireworks", "add", str(campaign_file), "-l", str(launchpad_file), "--tasks-per-firework", "1000"],
             tmp_path)
    n = len(read_task_ids(tmp_path / "term.plan.h5"))
    log = tmp_path / "task_starts.log"
    rocket = subprocess.Popen(["rlaunch", "-l", str(launchpad_file), "singleshot"], cwd=tmp_path,
                              env=_env(TANSAKU_TASK_LOG=str(log)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (log.exists() and len(log.read_text().splitlines()) >= 3):  # two tasks done, the third running
        assert time.monotonic() < deadline and rocket.poll() is None, "the rocket did not get going"
        time.sleep(0.05)
    rocket.send_signal(signal.SIGTERM)
    assert rocket.wait(timeout=120) == -signal.SIGTERM  # died of the signal, as FireWorks expects

    (shard,) = shard_files(tmp_path / "term.shards")
    kept = set(read_columns(shard, ["task_id"])["task_id"])
    assert 2 <= len(kept) < n  # finished records were flushed, the rest was not run
    lp = _launchpad(launchpad_file)
    (firework,) = lp.fireworks.find({}, {"state": 1, "fw_id": 1})
    assert firework["state"] == "RUNNING"  # a lost run

    time.sleep(1.5)
    lost = subprocess.run(["lpad", "-l", str(launchpad_file), "detect_lostruns", "--time", "1", "--rerun"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    if lost.returncode and "unsupported document query" in lost.stderr:  # BriskDB lacks the $elemMatch it uses:
        rerun = ["lpad", "-l", str(launchpad_file), "rerun_fws", "-i", str(firework["fw_id"])]  # what --rerun does
        _run(rerun, tmp_path)
    else:
        assert lost.returncode == 0, lost.stderr
    first = Counter(line.split()[0] for line in log.read_text().splitlines())
    _run(["rlaunch", "-l", str(launchpad_file), "rapidfire"], tmp_path, TANSAKU_TASK_LOG=str(log))
    starts = Counter(line.split()[0] for line in log.read_text().splitlines()) - first
    assert not set(starts) & kept and len(starts) == n - len(kept)  # resumed: only the tasks not in the shard
    _tansaku(["fireworks", "collect", str(campaign_file), "-l", str(launchpad_file)], tmp_path)
    cols = read_columns(tmp_path / "term.h5")
    assert len(cols["task_id"]) == n and (cols["status"] == "ok").all()


@pytest.mark.slow
def test_qlaunch_submits_a_slurm_job_whose_rocket_runs_the_fireworks(tmp_path, launchpad_file, request):
    """qlaunch with FireWorks' SLURM queue adapter, as on a cluster: the batch job runs `rlaunch rapidfire`,
    nothing runs them here; then collect."""
    if slurm is None:
        pytest.skip("tests/slurm_cluster.py (the local SLURM fixture of the batch-job tests) is not in this checkout")
    partition = request.getfixturevalue("slurm")
    import shutil

    from tansaku.workflows.fireworks_backend import campaign_fireworks

    campaign_file = write_campaign(tmp_path, "queued")
    _tansaku(["fireworks", "add", str(campaign_file), "-l", str(launchpad_file), "--tasks-per-firework", "4"],
             tmp_path)
    qadapter = tmp_path / "my_qadapter.yaml"
    qadapter.write_text(f"""_fw_name: CommonAdapter
_fw_q_type: SLURM
rocket_launch: {shutil.which("rlaunch")} -l {launchpad_file} rapidfire
nodes: 1
ntasks: 1
walltime: '00:10:00'
queue: {partition}
job_name: tansaku-fireworks-test
pre_rocket: export PYTHONPATH={os.pathsep.join([str(REPO), str(TESTS)])}
logdir: {tmp_path / "queue_logs"}
""")
    (tmp_path / "queue_logs").mkdir()  # FireWorks does not create it (and qlaunch exits 0 on errors)
    submitted = _run(["qlaunch", "-l", str(launchpad_file), "-q", str(qadapter), "singleshot"], tmp_path)
    assert "Job submission was successful" in submitted.stdout + submitted.stderr
    lp = _launchpad(launchpad_file)
    store = (tmp_path / "queued.h5").resolve()

    def ended():
        states = {fw.state for fw in campaign_fireworks(lp, store)}
        return states if states <= {"COMPLETED", "FIZZLED"} else None

    assert wait_for(ended, timeout=400, interval=2, what="the SLURM job to run the Fireworks") == {"COMPLETED"}
    out = _tansaku(["fireworks", "collect", str(campaign_file), "-l", str(launchpad_file)], tmp_path)
    cols = read_columns(store)
    assert len(cols["task_id"]) >= 10 and (cols["status"] == "ok").all() and "ranking stored" in out
