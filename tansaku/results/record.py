"""One stored result: the unit that flows from a worker to the HDF5 store."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tansaku.constants import STATUS_FAILED, STATUS_OK  # noqa: F401  (re-exported)


@dataclass
class Record:
    """The outcome of one task (one relaxation of one structure with one calculator).

    Scalars are NaN / -1 when unknown (e.g. ``magmom_total`` for EMT, everything numeric for a failed task).
    ``numbers``/``positions``/``cell`` hold the final structure (the initial one for a failed task).
    """

    task_id: str
    candidate_id: str
    kind: str  # KIND_CANDIDATE | KIND_REFERENCE | KIND_COMPETING (tansaku.constants)
    label: str
    formula: str
    prototype: str
    parent: str
    calculator: str
    stage: str
    status: str  # STATUS_OK | STATUS_FAILED
    numbers: np.ndarray  # (n,) int
    positions: np.ndarray  # (n, 3) float, Å
    cell: np.ndarray  # (3, 3) float, Å
    pbc: np.ndarray = field(default_factory=lambda: np.ones(3, bool))
    magmoms: np.ndarray | None = None  # (n,) μB, None when the calculator gives none
    error: str = ""
    energy: float = float("nan")  # eV
    energy_per_atom: float = float("nan")  # eV/atom
    fmax: float = float("nan")  # eV/Å, largest residual atomic force
    stress: np.ndarray = field(default_factory=lambda: np.full(6, np.nan))  # eV/Å³, Voigt (xx yy zz yz xz xy)
    volume: float = float("nan")  # Å³
    magmom_total: float = float("nan")  # μB per cell
    steps: int = -1
    converged: bool = False
    wall_time: float = float("nan")  # s
    worker: str = ""  # host:pid that ran the task
    finished_at: float = float("nan")  # unix time
    params: str = ""  # calculator identity (resolved parameters + code version), JSON
    history: str = ""  # error-handler history, JSON list ("" when the first attempt succeeded)
    scf_iterations: int = -1  # summed over the relaxation
    configuration: str = ""  # starting magnetic configuration (fm, re-anti, ud:...), "" without initial moments
    calculation: str = "relax"  # relax | anisotropy
    k1_fine: float = float("nan")  # MJ/m³, anisotropy tasks: K1 on the finer k-point mesh
    k1_coarse: float = float("nan")  # MJ/m³, on the coarser mesh
    stage_name: str = ""  # funnel stage (campaign [campaign] stage / [[stages]] name); "" in stores before funnels
    source_task_id: str = ""  # the previous funnel stage's task this one started from ("" in the first stage)
    settings_id: str = ""  # key of the settings that produced it in the store's /settings table
    settings: str = ""  # those settings as JSON (not a column: the writer adds new ones to /settings)

    @property
    def natoms(self) -> int:
        return int(len(self.numbers))
