"""Identity vs runtime, entry-point calculators on Dask, optional store columns, unconverged ranking policy."""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from tansaku.calculators import RunContext, Runtime, get_spec
from tansaku.results import Store, read_columns, read_table
from tansaku.results.schema import OPTIONAL_COLUMNS, RECORDS
from tansaku.workflows.campaign import CampaignError, parse_campaign
from tansaku.workflows.plan import make_plan
from tansaku.workflows.runner import run_campaign

QE_CAMPAIGN = """
[campaign]
name = "qe-al"
output = "{output}"
[calculator]
name = "espresso"
params = {{ preset = "fast", xc = "PZ", ecut = 204.0, kspacing = 0.5, spin = false, pseudopotentials = {{ Al = "Al.pz-vbc.UPF" }} }}
[calculator.runtime]
{runtime}
[relax]
steps = 0
[execution]
executor = "serial"
[references]
elements = "none"
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Al" }}
primitive = true
"""


def test_changing_only_runtime_settings_of_a_finished_campaign_recomputes_nothing(tmp_path):
    if shutil.which("pw.x") is None:
        if os.environ.get("CI"):
            pytest.fail("pw.x missing in CI")
        pytest.skip("Quantum ESPRESSO (scripts/setup/qe.sh) is not installed here")
    output = tmp_path / "qe.h5"
    first = parse_campaign(QE_CAMPAIGN.format(output=output, runtime=f'scratch = "{tmp_path / "s1"}"'))
    done = run_campaign(first, show_progress=False)
    assert done.ran == done.ok == 1, done.failures
    moved = parse_campaign(QE_CAMPAIGN.format(output=output, runtime=textwrap.dedent(f"""\
        command = ["/usr/bin/pw.x"]
        cores = 2
        mpirun = ["/usr/bin/mpirun", "--allow-run-as-root", "--oversubscribe"]
        device = "cuda"
        scratch = "{tmp_path / 's2'}"
        timeout = 600
        max_retries = 1
        on_success = "archive"
        """)))
    assert moved.calculator.runtime != first.calculator.runtime
    assert [t.task_id for t in make_plan(moved).tasks] == [t.task_id for t in make_plan(first).tasks]
    again = run_campaign(moved, show_progress=False)
    assert again.ran == 0 and again.already_stored == 1
    assert not (tmp_path / "s2").exists()  # nothing ran: no scratch directory was even made
    # a changed identity parameter does make new tasks
    other = parse_campaign(QE_CAMPAIGN.format(output=output, runtime="").replace("ecut = 204.0", "ecut = 250.0"))
    assert make_plan(other).tasks[0].task_id != make_plan(first).tasks[0].task_id
    identity = json.loads(read_columns(output, ["params"])["params"][0])
    assert identity["params"]["ecut"] == 204.0 and "cores" not in identity["params"]


def test_runtime_keys_are_validated_with_their_path():
    base = QE_CAMPAIGN.format(output="x.h5", runtime="{}")
    for runtime, message in (('command = "pw.x -in x"', "calculator.runtime.command: expected list"),
                             ("cores = 0", "calculator.runtime.cores: must be >= 1"),
                             ('launcher = "slurm"', "calculator.runtime.launcher: unknown launcher"),
                             ("gpus = 1", "calculator.runtime.gpus: unknown key")):
        with pytest.raises(CampaignError, match=message.replace(".", r"\.")):
            parse_campaign(base.replace("{}", runtime), source="c.toml")


def test_a_run_context_keeps_failed_scratch_and_archives_on_request(tmp_path):
    for policy, ok, left in (("delete", True, None), ("keep", True, "dir"), ("archive", True, "tar"),
                             ("delete", False, "dir")):
        context = RunContext.for_task(Runtime(scratch=tmp_path / policy, on_success=policy), f"t{ok}")
        (context.directory / "OUTCAR").write_text("x")
        kept = context.finish(ok)
        assert (kept is None) == (left is None)
        if left == "tar":
            assert kept.name == f"t{ok}.tar.gz" and kept.exists() and not context.directory.exists()
        if left == "dir":
            assert kept == context.directory and (kept / "OUTCAR").exists()


def test_launch_command_is_an_argument_list():
    assert Runtime(command=("pw.x",), cores=4).launch(("x",), ("/usr/bin/mpirun",)) == \
        ["/usr/bin/mpirun", "-np", "4", "pw.x"]
    assert Runtime(cores=4, launcher="openmp").launch(("pw.x",)) == ["pw.x"]
    assert Runtime(cores=4, launcher="openmp").thread_environment()["OMP_NUM_THREADS"] == "4"
    with pytest.raises(ValueError, match="argument list"):
        Runtime(command="mpirun -np 4 pw.x")


# ------------------------------------------------------------------ third-party calculator via entry point

PLUGIN = '''
from ase.calculators.lj import LennardJones
from tansaku.calculators import CalculatorSpec


def make_lj(sigma: float = 2.3, epsilon: float = 0.4):
    return LennardJones(sigma=sigma, epsilon=epsilon, rc=6.0, smooth=True)


def spec():
    return CalculatorSpec(name="lj_plugin", factory=make_lj, elements=frozenset({"Cu", "Ni"}),
                          package="tansaku-lj-plugin", defaults={"sigma": 2.3, "epsilon": 0.4},
                          description="Lennard-Jones, from a plug-in package")
'''
PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"
[project]
name = "tansaku-lj-plugin"
version = "0.0.1"
[project.entry-points."tansaku.calculators"]
lj_plugin = "tansaku_lj_plugin:spec"
'''


@pytest.mark.slow
def test_an_entry_point_calculator_runs_on_the_dask_executor(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "tansaku_lj_plugin").mkdir(parents=True)
    (project / "tansaku_lj_plugin" / "__init__.py").write_text(PLUGIN)
    (project / "pyproject.toml").write_text(PYPROJECT)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(project)], check=True)
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    assert "lj_plugin" in __import__("tansaku.calculators", fromlist=["x"]).calculator_names()
    campaign = parse_campaign(f"""
[campaign]
name = "plugin"
output = "{tmp_path / 'plugin.h5'}"
[calculator]
name = "lj_plugin"
params = {{ epsilon = 0.5 }}
[relax]
fmax = 0.05
steps = 50
[execution]
executor = "dask"
workers = 2
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = ["Cu", "Ni"], "3c" = ["Cu", "Ni"] }}
distinct_elements = true
""")
    summary = run_campaign(campaign, show_progress=False)
    assert summary.failed == 0 and summary.ok == summary.tasks >= 3, summary.failures
    cols = read_columns(campaign.output, ["calculator", "worker", "params"])
    assert set(cols["calculator"]) == {"lj_plugin"}
    assert all(w.split(":")[1] != str(os.getpid()) for w in cols["worker"])  # ran in Dask worker processes
    assert json.loads(cols["params"][0])["params"] == {"sigma": 2.3, "epsilon": 0.5}
    assert json.loads(cols["params"][0])["version"] == "0.0.1"


def test_a_broken_entry_point_is_a_clear_error(tmp_path, monkeypatch):
    from tansaku.calculators import CalculatorConfigError

    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tansaku.calculators]\nbroken = no_such_module:spec\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CalculatorConfigError, match="calculator 'broken'.*failed to load: ModuleNotFoundError"):
        get_spec("broken")


# ------------------------------------------------------------------ optional columns in old files

def test_a_file_without_the_optional_columns_is_read_and_upgraded(tmp_path):
    from synthetic import synthetic_record  # tests/synthetic.py

    path = tmp_path / "old.h5"
    first = [synthetic_record(k) for k in range(3)]
    with Store.open(path) as store:
        store.append(first[:2])
    with h5py.File(path, "r+") as f:  # make it a file written before the optional columns existed
        for c in OPTIONAL_COLUMNS:
            del f[f"{RECORDS}/{c.name}"]
    table = read_table(path)
    assert list(table["scf_iterations"]) == [-1, -1] and list(table["history"]) == ["", ""]
    new = first[2]
    new.history, new.scf_iterations = '[{"failure":"timeout"}]', 42
    with Store.open(path) as store:  # the writer adds the columns (filled) and appends
        store.append([new])
    cols = read_columns(path, ["task_id", "history", "scf_iterations"])
    assert list(cols["task_id"]) == [r.task_id for r in first] and list(cols["scf_iterations"]) == [-1, -1, 42]
    assert cols["history"][2] == '[{"failure":"timeout"}]'


# ------------------------------------------------------------------ unconverged relaxations and the hull

def test_a_single_point_is_converged_when_its_forces_and_stress_are_below_fmax():
    """relax.steps = 0: ASE's optimizer says "not converged" without looking; tansaku looks (atoms' forces
    and, with the cell relaxed, the cell filter's stress forces)."""
    from ase.build import bulk

    from tansaku.calculators import RelaxSettings, get_calculator, relax

    calc = get_calculator("emt")
    relaxed = relax(bulk("Cu", "fcc", a=3.6, cubic=True), calc, RelaxSettings(fmax=0.001, steps=200))
    assert relaxed.converged
    point = relax(relaxed.atoms, calc, RelaxSettings(fmax=0.01, steps=0))
    assert point.steps == 0 and point.converged and point.energy == pytest.approx(relaxed.energy, abs=1e-9)
    strained = relaxed.atoms.copy()
    strained.set_cell(strained.cell * 1.02, scale_atoms=True)  # no force on any atom, but stress
    assert not relax(strained, calc, RelaxSettings(fmax=0.01, steps=0)).converged
    assert relax(strained, calc, RelaxSettings(fmax=0.01, steps=0, relax_cell=False)).converged


def test_unconverged_relaxations_are_kept_off_the_hull_and_flagged(tmp_path):
    from tansaku.screening.rank import RankingSpec
    from tansaku.workflows.ranking import compute_ranking

    campaign = parse_campaign(f"""
[campaign]
name = "unconverged"
output = "{tmp_path / 'u.h5'}"
[calculator]
name = "emt"
[relax]
steps = 300
[execution]
executor = "serial"
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = ["Cu", "Au"], "3c" = ["Cu", "Au"] }}
distinct_elements = true
""")
    run_campaign(campaign, show_progress=False)
    labels = read_columns(campaign.output, ["label"])["label"]
    row = next(i for i, label in enumerate(labels) if label.startswith("Cu3Au"))
    with h5py.File(campaign.output, "r+") as f:  # pretend Cu3Au hit the step limit
        f["records/converged"][row] = False
    derived, meta = compute_ranking(campaign.output, RankingSpec())
    assert derived["unconverged"][row] and derived["unconverged"].sum() == 1
    assert np.isnan(derived["e_above_hull"][row]) and "1 unconverged relaxation(s) excluded" in meta["unconverged"]
    included, _ = compute_ranking(campaign.output, RankingSpec(), include_unconverged=True)
    assert np.isfinite(included["e_above_hull"][row])


# ------------------------------------------------------------------ presets and k-point grids

def test_presets_resolve_in_one_place_and_overrides_win():
    from tansaku.calculators import CalculatorConfigError
    from tansaku.calculators.presets import PRESETS

    spec = get_spec("gpaw")
    assert spec.resolve_params({}) == {"preset": "screening", **PRESETS["gpaw"]["screening"], "setups": "paw",
                                       "scf_density": 1e-4}
    fast = spec.resolve_params({"preset": "fast", "ecut": 350.0})
    assert fast["ecut"] == 350.0 and fast["kspacing"] == PRESETS["gpaw"]["fast"]["kspacing"]
    with pytest.raises(CalculatorConfigError, match="unknown preset 'quick'"):
        spec.resolve_params({"preset": "quick"})
    with pytest.raises(CalculatorConfigError, match=r"unknown parameter\(s\) \['encut'\]"):
        spec.resolve_params({"encut": 500})


@pytest.mark.parametrize("name", ["gpaw", "espresso", "vasp"])
@pytest.mark.parametrize("key, value, message", [
    ("scf_density", -1e-3, "scf_density must be a number > 0.0, got -0.001"),
    ("scf_tol", float("nan"), "scf_tol must be a number > 0.0, got nan"),
    ("ecut", "400", "ecut must be a number > 0.0, got '400'"),
    ("mixing_beta", 1.5, "mixing_beta must be a number > 0.0 and <= 1, got 1.5"),
    ("max_scf", 0, "max_scf must be an integer >= 1, got 0"),
    ("kspacing", True, "kspacing must be a number > 0.0, got True"),
])
def test_dft_parameter_values_are_checked_with_their_name(name, key, value, message):
    from tansaku.calculators import CalculatorConfigError

    if key == "scf_density" and name != "gpaw":
        key, value, message = "extra_bands", -0.5, "extra_bands must be a number >= 0.0, got -0.5"
    with pytest.raises(CalculatorConfigError, match=re.escape(f"calculator {name!r}: {message}")):
        get_spec(name).resolve_params({"preset": "fast", key: value})
    assert get_spec(name).resolve_params({"preset": "fast", "smearing": 0.0})["smearing"] == 0.0


def test_gpaw_takes_both_convergence_criteria(tmp_path):
    """The energy criterion and the density one (GPAW's own default unless the campaign sets it) reach GPAW."""
    pytest.importorskip("gpaw")
    from tansaku.calculators import RunContext, Runtime, get_calculator

    context = RunContext(Runtime(scratch=tmp_path), tmp_path)
    default = get_calculator("gpaw", {"preset": "fast"}, context)
    loose = get_calculator("gpaw", {"preset": "fast", "scf_density": 1e-3}, context)
    assert default.parameters["convergence"] == {"energy": 1e-4, "density": 1e-4}
    assert loose.parameters["convergence"] == {"energy": 1e-4, "density": 1e-3}


def test_kpoint_grid_matches_ase_kpoint_density():
    """Our VASP-KSPACING rule against ASE's kptdensity2monkhorstpack (density = 1/kspacing)."""
    from ase.build import bulk
    from ase.calculators.calculator import kptdensity2monkhorstpack

    from tansaku.calculators.dft import kpoint_grid

    for atoms in (bulk("Fe", "bcc", a=2.83), bulk("Co", "hcp", a=2.5, c=4.07), bulk("Al", "fcc", a=4.05) * (2, 1, 1)):
        for spacing in (0.15, 0.25, 0.4):
            expected = kptdensity2monkhorstpack(atoms, kptdensity=1 / spacing, even=False)
            assert kpoint_grid(atoms, spacing) == tuple(int(n) for n in expected)


# ------------------------------------------------------------------ threads per task

def test_dft_tasks_get_their_runtime_cores_and_ml_tasks_keep_one_thread(tmp_path):
    """A file-based (DFT) calculator computes with ``cores`` BLAS threads; an in-memory (ML) one with the
    worker's pinned single thread. The calculators here record the thread limit they see (EMT inside)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from threadpoolctl import threadpool_info, threadpool_limits

    from tansaku.calculators import CalculatorSpec, RelaxSettings, register
    from tansaku.screening.candidate import Candidate
    from tansaku.workflows.run_task import run_task
    from tansaku.workflows.tasks import make_task

    seen: dict[str, set[int]] = {}

    class Recording(EMT):
        def calculate(self, *args, **kwargs):
            seen.setdefault(self.tag, set()).update(i["num_threads"] for i in threadpool_info())
            super().calculate(*args, **kwargs)

    def factory(tag: str):
        def make(context=None):
            calc = Recording()
            calc.tag = tag
            return calc
        return make

    register(CalculatorSpec(name="thread_dft", factory=factory("dft"), elements=frozenset({"Cu"}), package="ase",
                            file_based=True))
    register(CalculatorSpec(name="thread_ml", factory=factory("ml"), elements=frozenset({"Cu"}), package="ase"))
    with threadpool_limits(limits=1):  # a pinned worker
        for name in ("thread_dft", "thread_ml"):
            task = make_task(Candidate(bulk("Cu", "fcc", a=3.7), "test"), name, {}, RelaxSettings(steps=2))
            assert run_task(task, Runtime(scratch=tmp_path, cores=2)).status == "ok"
    assert seen == {"dft": {2}, "ml": {1}}


def test_run_summary_counts_step_limited_relaxations_not_single_points():
    """'not converged' in a run summary means a relaxation stopped at its step limit; a single point
    (0 steps, nothing to converge, as in a funnel's DFT stage) is not counted."""
    import dataclasses

    from synthetic import synthetic_record

    from tansaku.workflows.runner import RunSummary, _count

    summary = RunSummary()
    base = synthetic_record(0)
    for steps, converged in ((0, False), (300, False), (12, True)):
        _count(summary, dataclasses.replace(base, status="ok", steps=steps, converged=converged))
    assert (summary.ran, summary.ok, summary.unconverged) == (3, 3, 1)
