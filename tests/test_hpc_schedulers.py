"""Job descriptions, scripts and scheduler outputs without a live scheduler.

PBS/Torque and LSF cannot run on this machine: their scripts are checked as rendered text, and their
command outputs are real-format samples captured from those schedulers' commands (tests/data/pbs_*,
torque_*, lsf_*) and parsed here. SLURM's own parsers are also exercised against the live local cluster
in test_slurm.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tansaku.hpc import lsf, pbs, slurm
from tansaku.hpc.jobs import (CANCELLED, DONE, FAILED, PENDING, RUNNING, UNKNOWN, JobSpec, SchedulerError,
                              array_size, format_lsf_time, format_slurm_time, parse_memory, parse_walltime)
from tansaku.hpc.render import command_line, lsf_array, render_script
from tansaku.hpc.schedulers import combine

DATA = Path(__file__).parent / "data"


def job(**overrides) -> JobSpec:
    settings = dict(name="tansaku-emt", command=("/usr/bin/python3", "-m", "tansaku", "worker", "my campaign.toml",
                                                 "--select", "{array_index}/4", "--deadline", "{job_end-120}"),
                    nodes=1, ntasks=1, cpus_per_task=8, memory_mb=4096, walltime=2 * 3600 + 30 * 60,
                    queue="short", account="mat-123", array="0-3", directives=("--qos=normal",),
                    setup=("module load python/3.11",), environment={"PYTHONPATH": "/home/a b/src"},
                    log_dir="/scratch/logs")
    settings.update(overrides)
    return JobSpec(**settings)


@pytest.mark.parametrize("text, seconds", [
    ("02:30:00", 9000), ("30:00", 1800), ("45", 2700), ("1-12", 129600), ("1-00:00:30", 86430), ("2-3:04:05", 183845),
    ("90s", 90), ("15m", 900), ("2h", 7200), ("1.5d", 129600), ("48:00:00", 172800)])
def test_walltime_parsing(text: str, seconds: int) -> None:
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "x-01:00:00", "00:00:00", "-5"])
def test_bad_walltime_is_a_clear_error(text: str) -> None:
    with pytest.raises(ValueError, match="walltime"):
        parse_walltime(text)


def test_walltime_formats() -> None:
    assert format_slurm_time(9000) == "02:30:00" and format_slurm_time(183845) == "2-03:04:05"
    assert format_lsf_time(9000) == "2:30" and format_lsf_time(61) == "2" and format_lsf_time(3600) == "1:00"
    assert all(parse_walltime(format_slurm_time(s)) == s for s in (1, 59, 3600, 86399, 86400, 10**6))


def test_memory_and_array_sizes() -> None:
    assert [parse_memory(t) for t in ("4G", "4GB", "4GiB", "500M", "2048", 300, "1.5g", "1T")] == \
        [4096, 4096, 4096, 500, 2048, 300, 1536, 1048576]
    with pytest.raises(ValueError, match="memory"):
        parse_memory("lots")
    assert [array_size(a) for a in ("0-9", "1,3,5-7", "0-8:2", "0-99%10", "4")] == [10, 5, 5, 100, 1]


def test_job_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="job name"):
        job(name="two words")
    with pytest.raises(ValueError, match="line breaks"):
        job(queue="short\n#SBATCH --exclusive")
    with pytest.raises(ValueError, match="array"):
        job(array="all")
    with pytest.raises(ValueError, match="cpus_per_task"):
        job(cpus_per_task=0)


def test_command_is_quoted_and_only_placeholders_expand(tmp_path: Path) -> None:
    hostile = "x; touch " + str(tmp_path / "pwned") + " $(touch " + str(tmp_path / "pwned2") + ")"
    line = command_line(("printf", "%s|", hostile, "a{array_index}b", "{job_end-60}", "{job_end}", "{other}"))
    script = f"TANSAKU_ARRAY_INDEX=7\nTANSAKU_JOB_END=1000\n{line}\n"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout == f"{hostile}|a7b|940|1000|{{other}}|"
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_slurm_script() -> None:
    script = render_script(job(), "slurm")
    lines = script.splitlines()
    for expected in ("#SBATCH --job-name=tansaku-emt", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=4096M",
                     "#SBATCH --time=02:30:00", "#SBATCH --partition=short", "#SBATCH --account=mat-123",
                     "#SBATCH --array=0-3", "#SBATCH --output=/scratch/logs/%x-%A_%a.out", "#SBATCH --qos=normal",
                     "module load python/3.11", "export PYTHONPATH='/home/a b/src'",
                     "TANSAKU_ARRAY_INDEX=${SLURM_ARRAY_TASK_ID:-0}"):
        assert expected in lines, expected
    assert lines[-1] == ("/usr/bin/python3 -m tansaku worker 'my campaign.toml' --select \"${TANSAKU_ARRAY_INDEX}\"/4 "
                         "--deadline \"$(( TANSAKU_JOB_END - 120 ))\"")
    # every directive comes before the first command line, or sbatch ignores it
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert all(not line.startswith("#SBATCH") for line in lines[first_command:])
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_pbs_torque_and_lsf_scripts() -> None:
    pbs_lines = render_script(job(), "pbs").splitlines()
    for expected in ("#PBS -N tansaku-emt", "#PBS -l select=1:ncpus=8:mpiprocs=1:mem=4096mb",
                     "#PBS -l walltime=02:30:00", "#PBS -q short", "#PBS -A mat-123", "#PBS -J 0-3",
                     "#PBS -o /scratch/logs/", "TANSAKU_ARRAY_INDEX=${PBS_ARRAY_INDEX:-0}", 'cd "${PBS_O_WORKDIR:-.}"'):
        assert expected in pbs_lines, expected
    torque_lines = render_script(job(nodes=2, ntasks=4, cpus_per_task=2), "torque").splitlines()
    for expected in ("#PBS -l nodes=2:ppn=4", "#PBS -l mem=4096mb", "#PBS -t 0-3",
                     "TANSAKU_ARRAY_INDEX=${PBS_ARRAYID:-0}"):
        assert expected in torque_lines, expected
    lsf_lines = render_script(job(array="0-3%2"), "lsf").splitlines()
    for expected in ('#BSUB -J "tansaku-emt[1-4]%2"', "#BSUB -n 8", '#BSUB -R "span[hosts=1]"', "#BSUB -M 4096",
                     '#BSUB -R "rusage[mem=512]"', "#BSUB -W 2:30", "#BSUB -q short", "#BSUB -P mat-123",
                     "#BSUB -o /scratch/logs/%J_%I.out", "TANSAKU_ARRAY_INDEX=$(( ${LSB_JOBINDEX:-1} - 1 ))"):
        assert expected in lsf_lines, expected
    single = render_script(job(array=None, walltime=None, memory_mb=None, log_dir=None, command=("true",)), "lsf")
    assert '#BSUB -J "tansaku-emt"' in single and "-W" not in single and "-M" not in single
    for scheduler in ("slurm", "pbs", "torque", "lsf"):
        assert subprocess.run(["bash", "-n"], input=render_script(job(), scheduler), text=True).returncode == 0


def test_lsf_array_is_one_based() -> None:
    assert lsf_array("0-9") == "[1-10]" and lsf_array("0-9%3") == "[1-10]%3" and lsf_array("0,2,4-8:2") == "[1,3,5-9:2]"
    index = subprocess.run(["bash", "-c", "LSB_JOBINDEX=1; echo $(( ${LSB_JOBINDEX:-1} - 1 ))"],
                           capture_output=True, text=True).stdout.strip()
    assert index == "0"


def test_user_template_directory_overrides_the_builtin(tmp_path: Path) -> None:
    (tmp_path / "slurm.sh.j2").write_text("#!/bin/sh\n#SBATCH -J {{ job.name }}\n#SBATCH --gres=gpu:1\n{{ command }}\n")
    script = render_script(job(array=None), "slurm", template_dir=tmp_path)
    assert script.startswith("#!/bin/sh\n#SBATCH -J tansaku-emt\n#SBATCH --gres=gpu:1\n/usr/bin/python3")
    assert "#SBATCH --mem" in render_script(job(), "slurm", template_dir=tmp_path / "missing")
    with pytest.raises(ValueError, match="no walltime"):
        render_script(job(walltime=None), "slurm")


def test_submit_outputs_are_parsed() -> None:
    assert slurm.parse_submit("1234\n") == "1234" and slurm.parse_submit("1234;cluster2\n") == "1234"
    assert pbs.parse_submit((DATA / "pbs_qsub.txt").read_text()) == "4712.pbs01"
    assert pbs.parse_submit((DATA / "pbs_qsub_array.txt").read_text()) == "4713[].pbs01"
    assert lsf.parse_submit((DATA / "lsf_bsub.txt").read_text()) == "5120"
    assert lsf.parse_submit((DATA / "lsf_bsub_default.txt").read_text()) == "5125"
    for parse in (slurm.parse_submit, pbs.parse_submit, lsf.parse_submit):
        with pytest.raises(SchedulerError, match="cannot read a job id"):
            parse("sbatch: error: Batch job submission failed: Invalid account\n")


def test_pbs_pro_qstat_f_x() -> None:
    rows = pbs.parse_poll((DATA / "pbs_qstat_f_x.txt").read_text())
    states = {element: state for _, element, state in rows}
    assert states == {"4712.pbs01": RUNNING, "4713[].pbs01": RUNNING, "4713[0].pbs01": DONE,
                      "4713[1].pbs01": RUNNING, "4713[2].pbs01": RUNNING, "4713[3].pbs01": PENDING,
                      "4714.pbs01": CANCELLED, "4715.pbs01": DONE, "4716.pbs01": FAILED}
    assert {job for job, _, _ in rows} == {"4712.pbs01", "4713[].pbs01", "4714.pbs01", "4715.pbs01", "4716.pbs01"}
    record = pbs.parse_qstat((DATA / "pbs_qstat_f_x.txt").read_text())[0]
    assert record["Variable_List"].endswith("PBS_O_QUEUE=workq,PBS_O_HOST=login01.cluster")  # continuation lines
    assert pbs.unknown_jobs_error("qstat: Unknown Job Id 4799.pbs01\n")


def test_torque_qstat_f() -> None:
    rows = pbs.parse_poll((DATA / "torque_qstat_f.txt").read_text())
    assert rows == [("2201.torque01.cluster", "2201.torque01.cluster", DONE),
                    ("2202[].torque01.cluster", "2202[0].torque01.cluster", RUNNING),
                    ("2202[].torque01.cluster", "2202[1].torque01.cluster", FAILED)]


def test_lsf_bjobs() -> None:
    rows = lsf.parse_poll((DATA / "lsf_bjobs_aw.txt").read_text())
    assert rows == [("5120", "5120", RUNNING), ("5121", "5121[1]", RUNNING), ("5121", "5121[2]", PENDING),
                    ("5121", "5121[3]", DONE), ("5122", "5122", FAILED), ("5123", "5123", RUNNING),
                    ("5124", "5124", PENDING)]
    assert lsf.unknown_jobs_error("Job <5999> is not found\n")


def test_slurm_outputs() -> None:
    rows = slurm.parse_poll("12_2|COMPLETED\n12_1|RUNNING\n13|CANCELLED\n14|TIMEOUT\n15|WEIRD_NEW_STATE\n")
    assert rows == [("12", "12_2", DONE), ("12", "12_1", RUNNING), ("13", "13", CANCELLED), ("14", "14", FAILED),
                    ("15", "15", UNKNOWN)]
    line = ("JobId=9 ArrayJobId=7 ArrayTaskId=2-4%1 JobName=x UserId=root(0) JobState=PENDING Reason=JobArrayTaskLimit "
            "Command=/tmp/a b/job.sh WorkDir=/tmp/a b StdOut=/tmp/a b/x-7_4294967294.out Power=")
    record = slurm.parse_scontrol(line)[0]
    assert record["WorkDir"] == "/tmp/a b" and record["Command"] == "/tmp/a b/job.sh" and record["Power"] == ""
    assert slurm.scontrol_states(line) == {"7_2": PENDING, "7_3": PENDING, "7_4": PENDING}
    assert slurm.state("CANCELLED by 0") == CANCELLED


def test_array_states_combine() -> None:
    assert combine([DONE, RUNNING, PENDING]) == RUNNING and combine([DONE, PENDING]) == PENDING
    assert combine([DONE, DONE]) == DONE and combine([DONE, FAILED, CANCELLED]) == FAILED
    assert combine([DONE, CANCELLED]) == CANCELLED and combine([]) == UNKNOWN


def test_array_element_indices_are_zero_based() -> None:
    from tansaku.hpc.schedulers import element_index

    assert element_index("slurm", "123_4") == 4 and element_index("slurm", "123") is None
    assert element_index("pbs", "4713[3].pbs01") == 3 and element_index("pbs", "4712.pbs01") is None
    assert element_index("lsf", "5121[1]") == 0 and element_index("lsf", "5120") is None
