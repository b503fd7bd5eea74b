"""Small EMT campaigns shared by the plan/worker/collect/MPI tests (fcc and L12 cells of a few atoms)."""

from __future__ import annotations

from pathlib import Path

from tansaku.workflows.campaign import load_campaign

SMALL = """
[campaign]
name = "hpc-small"
output = "{output}"
[calculator]
name = "emt"
[relax]
fmax = 0.02
steps = 300
[execution]
executor = "serial"
batch_size = {batch_size}
flush_seconds = 0.5
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = ["Cu", "Au", "Pt"], "3c" = ["Cu", "Ni"] }}
distinct_elements = true
[[prototypes]]
prototype = "fcc"
sites = {{ "4a" = "Cu" }}
supercell = [2, 1, 1]
include_parent = false
[[prototypes.variants]]
substitute = {{ "4a" = {{ Au = 2 }} }}
{extra}
"""


def write_campaign(folder: Path, name: str = "small", extra: str = "", batch_size: int = 4) -> Path:
    """A campaign file ``folder/name.toml`` writing ``folder/name.h5``; returns the file's path."""
    path = folder / f"{name}.toml"
    path.write_text(SMALL.format(output=folder / f"{name}.h5", extra=extra, batch_size=batch_size))
    return path


def small(folder: Path, name: str = "small", extra: str = "", batch_size: int = 4):
    return load_campaign(write_campaign(folder, name, extra, batch_size))
