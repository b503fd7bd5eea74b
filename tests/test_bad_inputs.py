"""The bad-input corpus: campaign files, command-line arguments and damaged/foreign/newer-schema result files.

Each case runs the real command line (``tansaku.cli.app``, in process with typer's CliRunner, as
``main()`` runs it; a few cases in a real subprocess) and asserts: a non-zero exit that is not the
internal-error exit (70), no Python exception or "Traceback", one clear line naming the file and the key
(or option) at fault, and that a results file that existed before is byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]

SECTIONS = {
    "campaign": 'name = "bad"\noutput = "{results}"',
    "calculator": 'name = "emt"',
    "relax": "fmax = 0.05\nsteps = 50",
    "execution": 'executor = "serial"\ntask_timeout = 0',
    "prototypes": 'prototype = "fcc"\nsites = { "4a" = "Cu" }',
}


def campaign_text(results: Path, extra: str = "", **sections: str | None) -> str:
    parts = []
    for name, default in SECTIONS.items():
        body = sections.get(name, default)
        if body is not None:
            header = "[[prototypes]]" if name == "prototypes" else f"[{name}]"
            parts.append(f"{header}\n{body.replace('{results}', str(results))}\n")
    return "\n".join(parts) + extra


@dataclass(frozen=True)
class Case:
    """A bad campaign (``sections``/``extra`` edit the valid one above) or bad arguments (``args``)."""

    name: str
    expect: tuple[str, ...]  # substrings of the one error line (besides the file name)
    sections: dict = field(default_factory=dict)
    extra: str = ""
    args: tuple[str, ...] = ()  # {c} = the campaign file, {r} = the results file, {id} = a stored task id
    setup: str = ""  # a name from SETUPS, run in the case's folder first

    def command(self, campaign: Path, results: Path, task_id: str) -> list[str]:
        args = self.args or ("run", "{c}", "--no-progress")
        return [a.format(c=campaign, r=results, id=task_id) for a in args]


def C(name: str, *expect: str, extra: str = "", **sections: str | None) -> Case:
    return Case(name, expect, dict(sections), extra)


def A(name: str, args: str | tuple, *expect: str, setup: str = "") -> Case:
    return Case(name, expect, args=tuple(args.split()) if isinstance(args, str) else args, setup=setup)


PROTO = 'prototype = "fcc"\nsites = { "4a" = "Cu" }\n'
VARIANT = PROTO + "[[prototypes.variants]]\n"
RANKING = "\n[ranking]\n"

CAMPAIGN_CASES = [
    # numbers: types, ranges, nan/inf
    C("fmax-nan", "relax.fmax", "finite", relax="fmax = nan"),
    C("fmax-inf", "relax.fmax", "finite", relax="fmax = inf"),
    C("fmax-negative", "relax.fmax", "must be > 0", relax="fmax = -0.1"),
    C("fmax-string", "relax.fmax", "expected float", relax='fmax = "0.05"'),
    C("steps-float", "relax.steps", "expected int", relax="steps = 1e3"),
    C("steps-negative", "relax.steps", ">= 0", relax="steps = -5"),
    C("steps-huge", "relax.steps", "<=", relax="steps = 1000000000000"),
    C("optimizer-unknown", "relax.optimizer", "FIRE", relax='optimizer = "SGD"'),
    C("relax-cell-string", "relax.relax_cell", "expected bool", relax='relax_cell = "yes"'),
    C("relax-unknown-key", "relax.fmaxx", "unknown key", relax="fmaxx = 0.1"),
    C("workers-negative", "execution.workers", ">= 0", execution='executor = "dask"\nworkers = -1'),
    C("workers-huge", "execution.workers", "<=", execution='executor = "dask"\nworkers = 100000000'),
    C("batch-size-zero", "execution.batch_size", ">= 1", execution='executor = "serial"\nbatch_size = 0'),
    C("batch-size-huge", "execution.batch_size", "<=", execution='executor = "serial"\nbatch_size = 10000000000'),
    C("flush-inf", "execution.flush_seconds", "finite", execution='executor = "serial"\nflush_seconds = inf'),
    C("flush-negative", "execution.flush_seconds", ">= 0", execution='executor = "serial"\nflush_seconds = -1'),
    C("executor-unknown", "execution.executor", "serial", execution='executor = "magic"'),
    C("threads-zero", "execution.threads_per_task", ">= 1", execution='executor = "serial"\nthreads_per_task = 0'),
    C("port-out-of-range", "execution.dashboard_port", "<=", execution='executor = "dask"\ndashboard_port = 70000'),
    C("task-timeout-nan", "execution.task_timeout", "finite", execution='executor = "serial"\ntask_timeout = nan'),
    C("retry-kind-unknown", "execution.retry.on[0]", "unknown failure kind",
      execution='executor = "serial"\nretry = { on = ["oom"] }'),
    # calculator
    C("calculator-unknown", "calculator", "unknown calculator 'nope'", calculator='name = "nope"'),
    C("calculator-param-unknown", "calculator", "cutoff", calculator='name = "emt"\nparams = { cutoff = 3 }'),
    C("calculator-missing", "calculator", "missing required key", calculator=None),
    C("runtime-cores-zero", "calculator.runtime.cores", ">= 1", calculator='name = "emt"\nruntime = { cores = 0 }'),
    C("runtime-timeout-nan", "calculator.runtime.timeout", "finite",
      calculator='name = "emt"\nruntime = { timeout = nan }'),
    C("runtime-command-string", "calculator.runtime.command", "expected list",
      calculator='name = "emt"\nruntime = { command = "pw.x -in x" }'),
    # campaign table and output paths
    C("campaign-missing", "campaign", "missing required key", campaign=None),
    C("name-not-string", "campaign.name", "expected str", campaign="name = 5"),
    C("name-empty", "campaign.name", "empty", campaign='name = ""\noutput = "{results}"'),
    C("output-empty", "campaign.output", "empty", campaign='name = "bad"\noutput = ""'),
    C("output-nul", "campaign.output", "NUL", campaign='name = "bad"\noutput = "a\\u0000b.h5"'),
    C("output-too-long", "campaign.output", "too long", campaign=f'name = "bad"\noutput = "{"x" * 300}.h5"'),
    C("output-directory", "campaign.output", "is a directory", campaign='name = "bad"\noutput = "folder"'),
    C("output-text-file", "notes.h5", "not an HDF5 file", campaign='name = "bad"\noutput = "notes.h5"'),
    C("output-is-campaign", "campaign.output", "the campaign file itself",
      campaign='name = "bad"\noutput = "bad.toml"'),
    C("output-foreign-hdf5", "foreign.h5", "not a tansaku results", campaign='name = "bad"\noutput = "foreign.h5"'),
    C("output-unwritable", "campaign.output", "/proc", campaign='name = "bad"\noutput = "/proc/tansaku.h5"'),
    C("unknown-top-level", "banana", "unknown key", extra="[banana]\nx = 1\n"),
    # prototypes, cells, sites, sizes
    C("prototypes-missing", "prototypes", "at least one", prototypes=None),
    C("prototype-unknown", "prototypes[0].prototype", "XYZ", prototypes='prototype = "XYZ"'),
    C("site-unknown", "prototypes[0].sites.9z", "unknown site", prototypes='prototype = "fcc"\nsites = { "9z" = "Cu" }'),
    C("element-unknown", "prototypes[0].sites.4a", "unknown element 'Xx'",
      prototypes='prototype = "fcc"\nsites = { "4a" = "Xx" }'),
    C("site-choices-empty", "prototypes[0].sites.4a", "at least one element",
      prototypes='prototype = "fcc"\nsites = { "4a" = [] }'),
    C("cellpar-five", "prototypes[0].cellpar", "[a, b, c, alpha, beta, gamma]",
      prototypes=PROTO + "cellpar = [3.6, 3.6, 3.6, 90, 90]"),
    C("cellpar-zero-length", "prototypes[0].cellpar", "lengths", prototypes=PROTO + "cellpar = [0, 3.6, 3.6, 90, 90, 90]"),
    C("cellpar-nan", "prototypes[0].cellpar", "finite", prototypes=PROTO + "cellpar = [nan, 3.6, 3.6, 90, 90, 90]"),
    C("cellpar-angle-200", "prototypes[0].cellpar", "angles", prototypes=PROTO + "cellpar = [3.6, 3.6, 3.6, 90, 90, 200]"),
    C("cellpar-flat-cell", "prototypes[0].cellpar", "angles", prototypes=PROTO + "cellpar = [3.6, 3.6, 3.6, 120, 120, 120]"),
    C("atoms-too-close", "prototypes[0]", "closer than", prototypes=PROTO + "cellpar = [0.5, 0.5, 0.5, 90, 90, 90]"),
    C("supercell-zero", "prototypes[0].supercell", "positive integers", prototypes=PROTO + "supercell = [0, 1, 1]"),
    C("supercell-two", "prototypes[0].supercell", "three", prototypes=PROTO + "supercell = [1, 1]"),
    C("supercell-float", "prototypes[0].supercell", "positive integers", prototypes=PROTO + "supercell = [2.5, 1, 1]"),
    C("supercell-huge", "prototypes[0].supercell", "max_atoms", prototypes=PROTO + "supercell = [100, 100, 100]"),
    C("supercell-20-half", "prototypes[0].supercell", "max_atoms",
      prototypes=PROTO + 'supercell = [20, 20, 20]\n[[prototypes.variants]]\nsubstitute = { "4a" = { Au = 0.5 } }'),
    C("placements-huge", "prototypes[0].variants[0]", "max_orderings",
      prototypes=PROTO + 'supercell = [4, 4, 4]\nmax_atoms = 5000\n[[prototypes.variants]]\nsubstitute = { "4a" = { Au = 0.5 } }'),
    C("max-orderings-zero", "prototypes[0].max_orderings", ">= 1", prototypes=PROTO + "max_orderings = 0"),
    C("max-atoms-zero", "prototypes[0].max_atoms", ">= 1", prototypes=PROTO + "max_atoms = 0"),
    C("fraction-above-one", "prototypes[0].variants[0].substitute.4a.Au", "> 1",
      prototypes=VARIANT + 'substitute = { "4a" = { Au = 1.5 } }'),
    C("amount-negative", "prototypes[0].variants[0].substitute.4a.Au", "positive",
      prototypes=VARIANT + 'substitute = { "4a" = { Au = -1 } }'),
    C("fraction-not-whole", "prototypes[0].variants[0]", "not a whole number",
      prototypes=VARIANT + 'substitute = { "4a" = { Au = 0.3 } }'),
    C("count-too-many", "prototypes[0].variants[0]", "only 4",
      prototypes=VARIANT + 'substitute = { "4a" = { Au = 5 } }'),
    C("variant-empty", "prototypes[0].variants[0]", "needs 'substitute'", prototypes=VARIANT + "interstitial = {}"),
    C("interstitial-unknown", "prototypes[0].variants[0].interstitial.2b", "unknown interstitial site",
      prototypes=VARIANT + 'interstitial = { "2b" = "N" }'),
    # references and ranking
    C("references-word", "references.elements", "auto", extra='[references]\nelements = "some"\n'),
    C("references-element", "references.elements", "unknown element 'Qq'", extra='[references]\nelements = ["Cu", "Qq"]\n'),
    C("objective-direction", "ranking.objectives.e_above_hull", "\"min\" or \"max\"",
      extra=RANKING + 'objectives = { e_above_hull = "minimise" }\n'),
    C("objective-unknown", "ranking.objectives.banana", "unknown column", extra=RANKING + 'objectives = { banana = "min" }\n'),
    C("weight-negative", "ranking.weights.e_above_hull", ">= 0",
      extra=RANKING + 'objectives = { e_above_hull = "min" }\nweights = { e_above_hull = -1 }\n'),
    C("weight-nan", "ranking.weights.e_above_hull", "finite",
      extra=RANKING + 'objectives = { e_above_hull = "min" }\nweights = { e_above_hull = nan }\n'),
    C("weight-inf", "ranking.weights.e_above_hull", "finite",
      extra=RANKING + 'objectives = { e_above_hull = "min" }\nweights = { e_above_hull = inf }\n'),
    C("weight-not-objective", "ranking.weights.density", "not one of the objectives",
      extra=RANKING + 'objectives = { e_above_hull = "min" }\nweights = { density = 1 }\n'),
    C("filter-operator", "ranking.filters[0]", "e_above_hull <<= 0.1", extra=RANKING + 'filters = ["e_above_hull <<= 0.1"]\n'),
    C("filter-column", "ranking.filters[0]", "banana", extra=RANKING + 'filters = ["banana <= 1"]\n'),
    C("filter-nan", "ranking.filters[0]", "NaN", extra=RANKING + 'filters = ["e_above_hull <= nan"]\n'),
    C("filters-not-list", "ranking.filters", "expected list", extra=RANKING + 'filters = "e_above_hull <= 0.1"\n'),
    C("max-fronts-zero", "ranking.max_fronts", ">= 1", extra=RANKING + "max_fronts = 0\n"),
    C("reference-entries-missing", "ranking.reference_entries", "missing.json",
      extra=RANKING + 'reference_entries = "missing.json"\n'),
]

CLI_CASES = [
    A("toml-invalid", "run broken.toml", "broken.toml", "invalid TOML", setup="broken_toml"),
    A("toml-binary", "run binary.toml", "binary.toml", "UTF-8", setup="binary_toml"),
    A("toml-empty", "run empty.toml", "empty.toml", "campaign", setup="empty_toml"),
    A("campaign-file-missing", "run missing.toml", "missing.toml", "cannot read"),
    A("campaign-file-directory", "run folder", "folder", "cannot read"),
    A("workers-negative", "run {c} --workers -3", "workers", ">= 0"),
    A("workers-not-int", "run {c} --workers abc", "Invalid value", "--workers"),
    A("executor-unknown", "run {c} --executor nope", "nope", "serial"),
    A("run-output-is-campaign", "run {c} -o {c}", "the campaign file itself"),
    A("run-output-folder", "run {c} -o folder", "is a directory"),
    A("query-where-syntax", ("query", "{r}", "--where", "energy <=> 1"), "energy <=> 1"),
    A("query-where-column", ("query", "{r}", "--where", "nosuch > 1"), "nosuch"),
    A("query-where-nan", ("query", "{r}", "--where", "energy <= nan"), "NaN"),
    A("query-sort-unknown", "query {r} --sort nosuch", "nosuch"),
    A("query-sort-markup", ("query", "{r}", "--sort", "[/x]"), "[/x]"),
    A("query-limit-negative", "query {r} --limit -1", "--limit", ">= 0"),
    A("query-columns-unknown", "query {r} --columns nosuch", "nosuch"),
    A("query-format", "query {r} --format xml", "--format", "xml"),
    A("show-unknown-id", "show {r} zzzzzz", "zzzzzz"),
    A("show-empty-id", ("show", "{r}", ""), "no stored task_id"),
    A("show-cif-missing-folder", "show {r} {id} --cif nofolder/x.cif", "nofolder/x.cif"),
    A("show-extxyz-onto-results", "show {r} {id} --extxyz {r}", "results file itself"),
    A("rank-objective-unknown", "rank {r} --objective banana:max", "banana"),
    A("rank-objective-direction", "rank {r} --objective e_above_hull:up", "\"min\" or \"max\""),
    A("rank-weight-nan", "rank {r} --objective e_above_hull:min:nan", "finite"),
    A("rank-weight-negative", "rank {r} --objective e_above_hull:min:-1", ">= 0"),
    A("rank-filter", "rank {r} --filter x", 'filter "x"'),
    A("rank-entries-missing", "rank {r} --reference-entries missing.json", "missing.json"),
    A("rank-entries-garbage", "rank {r} --reference-entries garbage.json", "garbage.json", setup="garbage_json"),
    A("rank-entries-module", "rank {r} --reference-entries evil.json", "evil.json", setup="evil_json"),
    A("rank-calculator", "rank {r} --calculator nope", "nope"),
    A("rank-top-negative", "rank {r} --top -5", "--top", ">= 0"),
    A("report-onto-file", "report {r} -o notes.txt", "notes.txt", "not a folder", setup="text_file"),
    A("report-onto-results", "report {r} -o {r}", "not a folder"),
    A("status-missing", "status missing.h5", "missing.h5"),
    A("worker-select-order", "worker {c} --shard s.h5 --select 5/2", "--select"),
    A("worker-select-text", "worker {c} --shard s.h5 --select a/b", "--select"),
    A("worker-task-list-missing", "worker {c} --shard s.h5 --task-list ids.txt", "ids.txt"),
    A("worker-deadline-nan", "worker {c} --shard s.h5 --deadline nan", "--deadline", "finite"),
    A("worker-workers-negative", "worker {c} --shard s.h5 --workers -1", "--workers", ">= 0"),
    A("collect-missing", "collect missing.toml", "missing.toml"),
]

# damaged, foreign and newer-schema results files: every reading command
DAMAGE = ("truncated", "corrupted", "foreign", "text", "empty", "newer-schema", "negative-committed", "no-records")
FILE_COMMANDS = ("status {d}", "show {d} task", "query {d}", "rank {d}", "report {d} -o rep")
FILE_CASES = [A(f"{damage}-{cmd.split()[0]}", cmd.replace("{d}", f"{damage}.h5"), f"{damage}.h5", setup=damage)
              for damage in DAMAGE for cmd in FILE_COMMANDS]


# ------------------------------------------------------------------------------------------- set-ups

def _damage(path: Path, good: Path, how: str) -> None:
    data = good.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "corrupted":
        bad = bytearray(data)
        for offset in np.random.default_rng(3).integers(len(data) // 8, len(data) - 100, size=40):
            bad[offset:offset + 16] = b"\xff" * 16
        path.write_bytes(bytes(bad))
    elif how == "foreign":
        with h5py.File(path, "w") as f:
            f["data"] = np.arange(10)
    elif how == "text":
        path.write_text("task_id,energy\n1,2\n")
    elif how == "empty":
        path.write_bytes(b"")
    else:
        shutil.copyfile(good, path)
        with h5py.File(path, "r+") as f:
            if how == "newer-schema":
                f.attrs["schema_version"] = 999
            elif how == "negative-committed":
                f["committed"][0] = -5
            elif how == "no-records":
                del f["records"]


def _setup(name: str, folder: Path, good: Path) -> None:
    if name in DAMAGE:
        _damage(folder / f"{name}.h5", good, name)
    elif name == "broken_toml":
        (folder / "broken.toml").write_text("[campaign\nname = 'x'\n")
    elif name == "binary_toml":
        (folder / "binary.toml").write_bytes(b"\x89HDF\r\n\x1a\n\xff\xfe\x00garbage")
    elif name == "empty_toml":
        (folder / "empty.toml").write_text("")
    elif name == "garbage_json":
        (folder / "garbage.json").write_text("{not json")
    elif name == "evil_json":
        (folder / "evil.json").write_text('[{"@module": "os", "@class": "system", "command": "touch pwned"}]')
    elif name == "text_file":
        (folder / "notes.txt").write_text("my notes\n")


# ------------------------------------------------------------------------------------------- the run

@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, str]:
    """A real ranked results file (EMT, serial) that every case must leave as it was."""
    from tansaku.workflows.campaign import parse_campaign
    from tansaku.workflows.ranking import rank_results
    from tansaku.workflows.runner import run_campaign

    folder = tmp_path_factory.mktemp("results")
    path = folder / "R.h5"
    text = campaign_text(path, prototypes='prototype = "L12"\nsites = { "1a" = ["Cu", "Au"], "3c" = ["Cu", "Au"] }'
                                          "\ndistinct_elements = true")
    campaign = parse_campaign(text, source="good.toml")
    run_campaign(campaign, show_progress=False)
    rank_results(path)
    from tansaku.results import read_columns

    return path, str(read_columns(path, ["task_id"])["task_id"][0])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _invoke(args: list[str]) -> tuple[int, str, str]:
    """``tansaku ARGS`` in process: exit code, stdout, stderr. A Python exception is a failure here."""
    from tansaku.cli import app

    result = CliRunner().invoke(app, args, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        tb = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"tansaku {' '.join(args)} raised (a user would see 'internal error'):\n{tb}")
    return result.exit_code, result.stdout, result.stderr


def _check(case: Case, tmp_path: Path, results: tuple[Path, str], monkeypatch) -> None:
    good, task_id = results
    path = tmp_path / "R.h5"  # this case's copy: a case that damaged it cannot spoil the others
    shutil.copyfile(good, path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.h5").write_text("not a results file\n")
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = np.arange(3)
    if case.setup:
        _setup(case.setup, tmp_path, path)
    campaign = tmp_path / "bad.toml"
    if not case.args:
        campaign.write_text(campaign_text(path, case.extra, **case.sections))
    else:
        campaign.write_text(campaign_text(path))
    before = {p: _digest(p) for p in (path, tmp_path / "notes.h5", tmp_path / "foreign.h5")}
    code, out, err = _invoke(case.command(campaign, path, task_id))
    assert code not in (0, 70), f"exit {code}; stdout: {out[-2000:]}\nstderr: {err[-2000:]}"
    assert "Traceback" not in out + err
    message = " ".join(err.split())  # rich may wrap a long line on a narrow terminal
    named = campaign.name if not case.args else ""
    for text in (named, *case.expect):
        assert text in message, f"{text!r} not in the error: {err!r}"
    usage = "Usage:" in err  # click's own usage errors (wrong option type) are a short box, no traceback
    assert usage or len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
    assert not (tmp_path / "pwned").exists()
    for p, digest in before.items():
        assert _digest(p) == digest, f"{p} was changed"


@pytest.mark.parametrize("case", CAMPAIGN_CASES, ids=lambda c: c.name)
def test_bad_campaign_file(case: Case, tmp_path: Path, results, monkeypatch) -> None:
    _check(case, tmp_path, results, monkeypatch)


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: c.name)
def test_bad_command_line(case: Case, tmp_path: Path, results, monkeypatch) -> None:
    _check(case, tmp_path, results, monkeypatch)


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda c: c.name)
def test_damaged_results_file(case: Case, tmp_path: Path, results, monkeypatch) -> None:
    if case.setup == "corrupted" and _answers_as_if_undamaged(case, tmp_path, results, monkeypatch):
        return
    _check(case, tmp_path, results, monkeypatch)


def _answers_as_if_undamaged(case: Case, tmp_path: Path, results, monkeypatch) -> bool:
    """Overwritten bytes may all land where nothing is read (schema v2 allocates whole chunks, mostly
    unused in a small file): then the command must succeed with exactly the undamaged file's answer.
    False when it fails instead (the caller then checks that the failure is one clear error)."""
    good, task_id = results
    answers = []
    for name, damage in (("clean", False), ("bad", True)):
        folder = tmp_path / name
        folder.mkdir()
        if damage:
            _damage(folder / "corrupted.h5", good, "corrupted")
        else:
            shutil.copyfile(good, folder / "corrupted.h5")
        monkeypatch.chdir(folder)
        answers.append(_invoke(case.command(folder / "bad.toml", folder / "R.h5", task_id)))
    (clean_code, clean_out, _), (code, out, _) = answers
    if code != 0:
        return False
    assert clean_code == 0 and out == clean_out, f"a corrupted file gave another answer:\n{out}\nvs\n{clean_out}"
    return True


def test_corpus_size() -> None:
    assert len(CAMPAIGN_CASES) + len(CLI_CASES) + len(FILE_CASES) >= 60


@pytest.mark.parametrize("args", [
    ("run", "bad.toml"), ("query", "truncated.h5", "--sort", "[/x]"), ("rank", "R.h5", "--objective", "x:min:nan"),
])
def test_real_subprocess_gives_one_line_and_leaves_files_alone(args, tmp_path: Path, results) -> None:
    """The same through ``python -m tansaku`` (main(): the process's real exit code and stderr)."""
    path, _ = results
    shutil.copyfile(path, tmp_path / "R.h5")
    (tmp_path / "bad.toml").write_text(campaign_text(tmp_path / "R.h5", relax="fmax = nan"))
    _damage(tmp_path / "truncated.h5", path, "truncated")
    before = _digest(tmp_path / "R.h5")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "tansaku", *args], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert _digest(tmp_path / "R.h5") == before


def test_progress_bar_prints_the_campaign_name_as_text() -> None:
    from rich.console import Console

    from tansaku.workflows.runner import _progress

    console = Console(file=io.StringIO(), width=120)
    with _progress(console) as progress:
        progress.add_task("[/x] [bold]name", total=2, failed=0, rate=0.0)
    assert "[/x] [bold]name" in console.file.getvalue()
