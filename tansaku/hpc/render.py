"""Job scripts from readable Jinja2 templates (``hpc/templates/<scheduler>.sh.j2``), overridable per user.

A user's ``template_dir`` is searched first, so a file ``slurm.sh.j2`` there replaces the built-in one.
The command is quoted argument by argument (``shlex.quote``); only the placeholders documented in
``hpc.jobs`` become shell variables, so data in the command can never run as shell code.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tansaku.hpc.jobs import JobSpec, format_hms, format_lsf_time, format_slurm_time

TEMPLATE_DIR = Path(__file__).with_name("templates")
_PLACEHOLDER = re.compile(r"\{(array_index|job_end(?:-(\d+))?)\}")

# per scheduler: template file, walltime format, log file pattern (single job, array job)
_FORMATS = {
    "slurm": (format_slurm_time, "{dir}/%x-%j.out", "{dir}/%x-%A_%a.out"),
    "pbs": (format_hms, "{dir}/", "{dir}/"),
    "torque": (format_hms, "{dir}/", "{dir}/"),
    "lsf": (format_lsf_time, "{dir}/%J.out", "{dir}/%J_%I.out"),
}


def template_name(scheduler: str) -> str:
    return f"{scheduler}.sh.j2"


def quote_argument(argument: str) -> str:
    """One shell word for ``argument``; ``{array_index}`` and ``{job_end-N}`` become shell expansions."""
    pieces, last = [], 0
    for match in _PLACEHOLDER.finditer(argument):
        if match.start() > last:
            pieces.append(shlex.quote(argument[last:match.start()]))
        if match.group(1) == "array_index":
            pieces.append('"${TANSAKU_ARRAY_INDEX}"')
        elif match.group(2):
            pieces.append(f'"$(( TANSAKU_JOB_END - {int(match.group(2))} ))"')
        else:
            pieces.append('"${TANSAKU_JOB_END}"')
        last = match.end()
    if last < len(argument) or not pieces:
        pieces.append(shlex.quote(argument[last:]))
    return "".join(pieces)


def command_line(command: tuple[str, ...] | list[str]) -> str:
    return " ".join(quote_argument(a) for a in command)


def lsf_array(array: str) -> str:
    """LSF's array suffix for a 0-based range: indices start at 1 there (``"0-9%2"`` -> ``"[1-10]%2"``);
    the script maps ``$LSB_JOBINDEX`` back to 0-based ``{array_index}``."""
    spec, _, limit = array.partition("%")

    def shift(part: str) -> str:
        first, dash, rest = part.partition("-")
        if not dash:
            return str(int(first) + 1)
        last, colon, step = rest.partition(":")
        return f"{int(first) + 1}-{int(last) + 1}" + (f":{step}" if colon else "")

    return "[" + ",".join(shift(p) for p in spec.split(",")) + "]" + (f"%{limit}" if limit else "")


def render_script(job: JobSpec, scheduler: str, template_dir: str | Path | None = None) -> str:
    """The batch script of ``job`` for ``scheduler`` (slurm, pbs, torque or lsf)."""
    import jinja2

    if scheduler not in _FORMATS:
        raise ValueError(f"unknown scheduler {scheduler!r}; choose {', '.join(_FORMATS)}")
    if job.walltime is None and any(m.group(1).startswith("job_end")
                                    for a in job.command for m in _PLACEHOLDER.finditer(a)):
        raise ValueError(f"job {job.name}: the command uses {{job_end}} but the job has no walltime")
    loaders = [jinja2.FileSystemLoader(str(template_dir))] if template_dir else []
    environment = jinja2.Environment(loader=jinja2.ChoiceLoader([*loaders, jinja2.FileSystemLoader(TEMPLATE_DIR)]),
                                     undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                     autoescape=False)
    environment.filters["quote"] = shlex.quote
    time_format, single_log, array_log = _FORMATS[scheduler]
    log = (array_log if job.array else single_log).format(dir=job.log_dir) if job.log_dir else None
    array = (lsf_array(job.array) if scheduler == "lsf" else job.array) if job.array else ""
    return environment.get_template(template_name(scheduler)).render(
        job=job, array=array, time=time_format(job.walltime) if job.walltime else None, log=log,
        command=command_line(job.command),
        environment=[(name, shlex.quote(value)) for name, value in job.environment.items()])
