"""DFT calculators through ASE: GPAW (in process), Quantum ESPRESSO and VASP (external executables).

Each is built fresh for every task from its identity parameters (presets.py) and the task's RunContext
(scratch directory, launch command, cores). Shared parameters are translated here to each code's input;
k-point grids come from ``kspacing`` (:func:`kpoint_grid`). Output parsed: energy, forces, stress,
magnetic moments and SCF iterations (``calc.results["scf_iterations"]``).
"""

from __future__ import annotations

import functools
import math
import os
import re
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import chemical_symbols

from tansaku.calculators.context import RunContext
from tansaku.calculators.errors import CodeCrashed, SCFNotConverged
from tansaku.calculators.presets import PRESETS, check_dft_params, preset_defaults
from tansaku.calculators.process import run_code
from tansaku.calculators.registry import MOMENTS_SIGNED, CalculatorConfigError, CalculatorSpec, register

ALL_ELEMENTS = frozenset(chemical_symbols[1:104])
RY = 13.605693122994  # eV, CODATA 2018
SMEARING_QE = {"marzari-vanderbilt": "mv", "fermi-dirac": "fd", "gaussian": "gaussian", "methfessel-paxton": "mp"}
ISMEAR_VASP = {"marzari-vanderbilt": 2, "fermi-dirac": -1, "gaussian": 0, "methfessel-paxton": 1}
# Methfessel-Paxton order 2 in VASP is ISMEAR=2; Marzari-Vanderbilt has no ISMEAR: use MP order 1 (closest).
ISMEAR_VASP["marzari-vanderbilt"] = 1


def kpoint_grid(atoms: Atoms, kspacing: float) -> tuple[int, int, int]:
    """Γ-centred grid with N_i = max(1, ceil(2π |b_i| / kspacing)) (VASP's KSPACING rule); 1 along
    non-periodic directions. ``kspacing`` in 1/Å."""
    lengths = np.linalg.norm(atoms.cell.reciprocal(), axis=1) * 2 * math.pi
    return tuple(int(max(1, math.ceil(n / kspacing - 1e-9))) if p else 1
                 for n, p in zip(lengths, atoms.pbc))  # type: ignore[return-value]


def _check_smearing(smearing_type: str) -> None:
    if smearing_type not in SMEARING_QE:
        raise CalculatorConfigError(f"unknown smearing_type {smearing_type!r}; choose {', '.join(SMEARING_QE)}")


# ---------------------------------------------------------------- GPAW (in process, plane waves)

def gpaw_version() -> str:
    from tansaku.calculators.registry import package_version

    return f"gpaw-{package_version('gpaw')}+setups-{package_version('gpaw-data')}"


class _GPAWMixin:
    """Adds ``scf_iterations`` to the results and turns GPAW's convergence error into SCFNotConverged."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):  # noqa: ANN001 - ASE's signature
        from gpaw import KohnShamConvergenceError

        try:
            super().calculate(atoms, properties, system_changes)
        except KohnShamConvergenceError as exc:
            raise SCFNotConverged(f"GPAW: {exc}") from None
        self.results["scf_iterations"] = int(self.get_number_of_iterations() or -1)


@functools.cache
def _gpaw_class() -> type:
    from gpaw import GPAW

    return type("TansakuGPAW", (_GPAWMixin, GPAW), {})


def _gpaw_occupations(smearing_type: str, width: float) -> dict[str, Any]:
    """GPAW's occupations; Gaussian smearing is Methfessel-Paxton of order 0 there."""
    if smearing_type == "gaussian":
        return {"name": "methfessel-paxton", "order": 0, "width": width}
    if smearing_type == "methfessel-paxton":
        return {"name": "methfessel-paxton", "order": 1, "width": width}
    return {"name": smearing_type, "width": width}


# GPAW's own default density criterion (electrons per valence electron). Magnetic metals with flat 3d
# bands at the Fermi level (YCo5 on a 4x4x4 mesh) reach the energy criterion in ~20 iterations and then
# stall near 10^-2.5 in density; such a campaign may set ``scf_density = 1e-3`` (docs/magnetism.md).
GPAW_DENSITY_CRITERION = 1e-4


class _GPAWFactory:
    """GPAW in plane-wave mode; runs in this process with ``cores`` BLAS threads (see run_task).
    GPAW-only parameters: ``setups`` (GPAW's setups name) and ``scf_density`` (its density criterion)."""

    def __call__(self, *, context: RunContext, preset: str, xc: str, ecut: float, kspacing: float,
                 smearing: float, smearing_type: str, spin: bool, mixing_beta: float, max_scf: int,
                 extra_bands: float, scf_tol: float, setups: str = "paw",
                 scf_density: float = GPAW_DENSITY_CRITERION) -> Calculator:
        from gpaw import PW

        _check_smearing(smearing_type)
        kwargs: dict[str, Any] = dict(
            mode=PW(ecut), xc=xc, setups=setups,
            occupations=_gpaw_occupations(smearing_type, smearing),
            mixer={"beta": mixing_beta, "nmaxold": 5, "weight": 50.0},
            maxiter=max_scf, convergence={"energy": scf_tol, "density": scf_density}, spinpol=spin,
            # ASE's k-point density (points per 1/Å, 2π included) gives kpoint_grid's rule
            kpts={"density": 1.0 / kspacing, "gamma": True},
            txt=str(context.directory / "gpaw.txt"))
        if extra_bands > 0:
            kwargs["nbands"] = f"{round(100 * (1 + extra_bands))}%"
        return _gpaw_class()(**kwargs)


# ---------------------------------------------------------------- Quantum ESPRESSO (pw.x)

DEBIAN_PSEUDO_DIR = Path("/usr/share/espresso/pseudo")
# Per-element choice among the pseudopotentials Debian's quantum-espresso-data ships (PBE only, so they
# can be mixed; pslibrary where available). Others: give ``pseudopotentials = { X = "file.UPF" }`` and a
# runtime ``pseudo_dir``.
QE_PSEUDOPOTENTIALS = {
    "Fe": "Fe.pbe-spn-rrkjus_psl.0.2.1.UPF", "Ni": "Ni.pbe-spn-kjpaw_psl.1.0.0.UPF",
    "Cr": "Cr.pbe-spn-kjpaw_psl.1.0.0.UPF", "Cu": "Cu.pbe-kjpaw.UPF", "B": "B.pbe-n-kjpaw_psl.1.0.0.UPF",
    "C": "C.pbe-rrkjus.UPF", "N": "N.pbe-n-kjpaw_psl.1.0.0.UPF", "O": "O.pbe-kjpaw.UPF",
    "H": "H.pbe-kjpaw.UPF", "Si": "Si.pbe-nl-rrkjus_psl.1.0.0.UPF", "Ge": "Ge.pbe-kjpaw.UPF",
    "I": "I.pbe-n-kjpaw_psl.1.0.0.UPF", "Pt": "Pt.rel-pbe-n-rrkjus.UPF",
}
DEBIAN_MPIRUN = ("/usr/bin/mpirun", "--allow-run-as-root", "--oversubscribe")  # Open MPI, as pw.x was built
QE_DUAL = 8  # ecutrho = 8 ecutwfc: ultrasoft and PAW pseudopotentials need the larger density cutoff


def espresso_version(command: tuple[str, ...] = ("pw.x",)) -> str:
    """pw.x's version from its banner (``Program PWSCF v.6.7MaX``); "not-installed" when absent."""
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:  # pw.x leaves CRASH and input_tmp.in behind
            out = subprocess.run(list(command), input="", capture_output=True, text=True, timeout=60, cwd=tmp).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "not-installed"
    match = re.search(r"Program PWSCF\s+v\.(\S+)", out)
    return f"pw.x-{match.group(1)}" if match else "unknown"


def _z_valence(path: Path) -> float:
    """Valence charge of a UPF pseudopotential (v1 ``Z valence`` line or v2 ``z_valence`` attribute)."""
    text = path.read_text(errors="replace")[:20000]
    match = re.search(r'z_valence\s*=\s*"\s*([0-9.Ee+-]+)', text) or re.search(r"([0-9.Ee+-]+)\s+Z valence", text)
    if not match:
        raise CalculatorConfigError(f"cannot read the valence charge of pseudopotential {path}")
    return float(match.group(1))


def _iterations(text: str) -> int:
    return sum(int(n) for n in re.findall(r"convergence has been achieved in\s+(\d+) iterations", text))


def _qe_magnetization(text: str, natoms: int) -> dict[str, Any]:
    """Total (``total magnetization``, μB/cell) and site moments (last ``Magnetic moment per site``
    block, integrated in QE's atomic spheres) from pw.x output; {} for a non-spin-polarised run."""
    totals = re.findall(r"total magnetization\s+=\s+(-?[0-9.]+)", text)
    if not totals:
        return {}
    results: dict[str, Any] = {"magmom": float(totals[-1])}
    block = text.rsplit("Magnetic moment per site", 1)
    if len(block) == 2:
        sites = re.findall(r"atom:\s+\d+\s+charge:\s+\S+\s+magn:\s+(-?[0-9.]+)", block[1])[:natoms]
        if len(sites) == natoms:
            results["magmoms"] = np.array([float(m) for m in sites])
    return results


@functools.cache
def _espresso_class() -> type:
    from ase.calculators.espresso import Espresso, EspressoProfile

    class Profile(EspressoProfile):
        """ASE's profile with an argument list (no shlex of a string), our process runner (timeout,
        crash detection, thread environment) and pw.x's SCF failure recognised."""

        def __init__(self, argv: list[str], pseudo_dir: Path, timeout: float, env: Mapping[str, str]):
            super().__init__(command="pw.x", pseudo_dir=pseudo_dir)
            self.argv, self.timeout, self.env = argv, timeout, dict(env)

        @property
        def _split_command(self) -> list[str]:
            return list(self.argv)

        def run(self, directory, inputfile, outputfile, errorfile=None, append=False) -> None:  # noqa: ANN001
            try:
                run_code(self.get_command(inputfile), Path(directory), outputfile, errorfile or "pw.err",
                         self.timeout, self.env)
            except CodeCrashed as exc:
                out = (Path(directory) / outputfile).read_text(errors="replace")
                match = re.search(r"convergence NOT achieved after\s+(\d+) iterations", out)
                if match:
                    raise SCFNotConverged(f"pw.x: SCF not converged after {match.group(1)} iterations") from None
                raise exc

    class TansakuEspresso(Espresso):
        def calculate(self, atoms=None, properties=("energy",), system_changes=()):  # noqa: ANN001
            super().calculate(atoms, properties, system_changes)
            text = (Path(self.directory) / self.template.outputname).read_text(errors="replace")
            self.results["scf_iterations"] = _iterations(text)
            self.results.update(_qe_magnetization(text, len(self.atoms)))

    return TansakuEspresso, Profile


class _EspressoFactory:
    """pw.x through ASE's Espresso; started as ``runtime.launch(("pw.x",))`` in the task's directory.

    Debian's pw.x is linked against Debian's Open MPI: use ``mpirun = ["/usr/bin/mpirun"]`` (the
    default here), not an ``mpirun`` that a pip MPI wheel may have put first on PATH.
    """

    def __call__(self, *, context: RunContext, preset: str, xc: str, ecut: float, kspacing: float,
                 smearing: float, smearing_type: str, spin: bool, mixing_beta: float, max_scf: int,
                 extra_bands: float, scf_tol: float, pseudopotentials: Mapping[str, str],
                 relax_driver: str = "ase") -> Calculator:
        _check_smearing(smearing_type)
        runtime = context.runtime
        pseudo_dir = Path(runtime.pseudo_dir or DEBIAN_PSEUDO_DIR)
        espresso, profile = _espresso_class()
        argv = runtime.launch(("pw.x",), default_mpirun=DEBIAN_MPIRUN)
        table = {**QE_PSEUDOPOTENTIALS, **pseudopotentials}
        system = {"ecutwfc": ecut / RY, "ecutrho": QE_DUAL * ecut / RY, "occupations": "smearing",
                  "smearing": SMEARING_QE[smearing_type], "degauss": smearing / RY, "input_dft": xc}
        electrons = {"mixing_beta": mixing_beta, "electron_maxstep": max_scf, "conv_thr": scf_tol / RY}
        calc = espresso(profile=profile(argv, pseudo_dir, runtime.timeout, runtime.thread_environment()),
                        directory=str(context.directory), input_data={
                            "control": {"calculation": "scf", "tprnfor": True, "tstress": True,
                                        "disk_io": "low", "outdir": "./tmp"},
                            "system": system, "electrons": electrons})
        original = calc.calculate

        def calculate(atoms=None, properties=("energy",), system_changes=()):  # noqa: ANN001
            symbols = sorted(set(atoms.get_chemical_symbols()))
            missing = [s for s in symbols if s not in table]
            if missing:
                raise CalculatorConfigError(f"no pseudopotential for {', '.join(missing)}: set "
                                            f"params.pseudopotentials = {{ {missing[0]} = \"file.UPF\" }}")
            calc.parameters["pseudopotentials"] = {s: table[s] for s in symbols}
            calc.parameters.setdefault("kpts", kpoint_grid(atoms, kspacing))  # fixed by the first cell
            calc.parameters["koffset"] = (0, 0, 0)
            nbnd = _qe_bands(atoms, table, pseudo_dir, extra_bands)
            system.pop("nbnd", None)
            if nbnd:
                system["nbnd"] = nbnd
            calc.parameters["rescale_magmom_fac"] = _qe_spin(atoms, system, table, pseudo_dir, spin)
            return original(atoms, properties, system_changes)

        calc.calculate = calculate
        return calc


def _qe_bands(atoms: Atoms, table: Mapping[str, str], pseudo_dir: Path, extra_bands: float) -> int:
    """``nbnd`` with ``extra_bands`` more than QE's default for smearing (20 % above half the electrons,
    at least 4 more); 0 = leave QE's default."""
    if extra_bands <= 0:
        return 0
    electrons = sum(_z_valence(pseudo_dir / table[s]) for s in atoms.get_chemical_symbols())
    default = max(int(1.2 * electrons / 2), int(electrons / 2) + 4)
    return int(math.ceil(default * (1 + extra_bands)))


def _qe_spin(atoms: Atoms, system: dict, table: Mapping[str, str], pseudo_dir: Path, spin: bool) -> float:
    """Set nspin; return the factor that turns initial moments (μB) into QE 6.x's starting_magnetization
    (a fraction of the valence charge, in [-1, 1]): the largest valence charge among the species, so
    every start is a sensible fraction (ASE writes one species per (element, moment))."""
    moments = atoms.get_initial_magnetic_moments()
    system["nspin"] = 2 if spin and np.any(moments) else 1
    symbols = set(atoms.get_chemical_symbols())
    return max(_z_valence(pseudo_dir / table[s]) for s in symbols) if system["nspin"] == 2 else 1.0


BOHR = 0.529177210903  # Å, CODATA 2018


def espresso_native_relax(atoms: Atoms, calc: Calculator, settings: Any, relax_cell: bool) -> Any:
    """Relax with pw.x itself (``relax_driver = "native"``): ``vc-relax`` (BFGS on positions and cell) or
    ``relax``, ``nstep`` = settings.steps, forces below settings.fmax (converted to Ry/Bohr) and, for the
    cell, |pressure| below 0.5 kbar. The final structure and results come from pw.x's output."""
    from ase.io import read

    from tansaku.calculators.relax import RelaxResult, _magnetic_moments, _stress, check_physical

    start = time.perf_counter()
    control = calc.parameters["input_data"]["control"]
    control.update({"calculation": "vc-relax" if relax_cell else "relax", "nstep": max(1, settings.steps),
                    "forc_conv_thr": settings.fmax / (RY / BOHR), "etot_conv_thr": 1e-5})
    calc.parameters["input_data"]["ions"] = {"ion_dynamics": "bfgs"}
    if relax_cell:
        calc.parameters["input_data"]["cell"] = {"cell_dynamics": "bfgs", "press_conv_thr": 0.5}
    atoms = atoms.copy()
    atoms.calc = calc
    atoms.get_potential_energy()
    text = (Path(calc.directory) / calc.template.outputname).read_text(errors="replace")
    final = read(Path(calc.directory) / calc.template.outputname, format="espresso-out", index=-1)
    final.set_initial_magnetic_moments(atoms.get_initial_magnetic_moments())
    final.calc = calc  # its results are those of the last SCF (pw.x's final structure)
    calc.atoms = final.copy()
    check_physical(final)
    forces = calc.results["forces"]
    magmoms, total = _magnetic_moments(calc, final)
    return RelaxResult(
        atoms=final.copy(), energy=float(calc.results["energy"]),
        fmax=float(np.sqrt((forces ** 2).sum(axis=1)).max()), stress=_stress(final), magmoms=magmoms,
        magmom_total=total, steps=max(0, text.count("!    total energy") - 1),
        converged="bfgs converged" in text and "bfgs failed" not in text,
        wall_time=time.perf_counter() - start, scf_iterations=calc.results.get("scf_iterations", -1))


# ---------------------------------------------------------------- VASP (inputs; runs on HPC)

# POTCAR choice per element (PBE.54 names), Materials Project's choices where sensible, with the f
# electrons frozen in the core for the rare earths (the "_3" potentials: trivalent 4f-in-core) because
# screening cannot afford (or trust) open 4f shells.
VASP_POTCARS = {
    "Li": "Li_sv", "Na": "Na_pv", "K": "K_sv", "Ca": "Ca_sv", "Sc": "Sc_sv", "Ti": "Ti_pv", "V": "V_pv",
    "Cr": "Cr_pv", "Mn": "Mn_pv", "Fe": "Fe", "Co": "Co", "Ni": "Ni", "Cu": "Cu", "Zn": "Zn", "Ga": "Ga_d",
    "Ge": "Ge_d", "Rb": "Rb_sv", "Sr": "Sr_sv", "Y": "Y_sv", "Zr": "Zr_sv", "Nb": "Nb_pv", "Mo": "Mo_pv",
    "Hf": "Hf_pv", "Ta": "Ta_pv", "W": "W_pv", "Ba": "Ba_sv", "La": "La", "Ce": "Ce_3", "Pr": "Pr_3",
    "Nd": "Nd_3", "Pm": "Pm_3", "Sm": "Sm_3", "Eu": "Eu_2", "Gd": "Gd_3", "Tb": "Tb_3", "Dy": "Dy_3",
    "Ho": "Ho_3", "Er": "Er_3", "Tm": "Tm_3", "Yb": "Yb_2", "Lu": "Lu_3", "In": "In_d", "Sn": "Sn_d",
    "Tl": "Tl_d", "Pb": "Pb_d", "Bi": "Bi_d",
}


def vasp_version() -> str:
    """VASP cannot be asked for its version without running it: ``$TANSAKU_VASP_VERSION`` (set it on the
    cluster, e.g. 6.4.2), else "unspecified"."""
    return f"vasp-{os.environ.get('TANSAKU_VASP_VERSION', 'unspecified')}"


def vasp_setups(symbols: set[str], potcars: Mapping[str, str]) -> dict[str, str]:
    """ASE's ``setups`` (element -> POTCAR suffix) from the per-element choice."""
    table = {**VASP_POTCARS, **potcars}
    return {s: table.get(s, s)[len(s):] for s in symbols}


class _VaspFactory:
    """ASE's Vasp calculator; INCAR/KPOINTS/POSCAR/POTCAR written in the task directory, POTCARs from
    ``$VASP_PP_PATH/potpaw_PBE/<choice>/POTCAR``; run as ``runtime.launch(("vasp_std",))``."""

    def __call__(self, *, context: RunContext, preset: str, xc: str, ecut: float, kspacing: float,
                 smearing: float, smearing_type: str, spin: bool, mixing_beta: float, max_scf: int,
                 extra_bands: float, scf_tol: float, potcars: Mapping[str, str], relax_driver: str = "ase") -> Calculator:
        from ase.calculators.vasp import Vasp

        _check_smearing(smearing_type)
        runtime = context.runtime
        argv = runtime.launch(("vasp_std",))
        calc = Vasp(directory=str(context.directory), xc=xc, encut=ecut, ismear=ISMEAR_VASP[smearing_type],
                    sigma=smearing, ispin=2 if spin else 1, amix=mixing_beta, bmix=1.0, nelm=max_scf,
                    ediff=scf_tol * 1.0, prec="Accurate", lreal="Auto", lwave=False, lcharg=False,
                    ibrion=-1, nsw=0, isym=0 if spin else 2, lorbit=11, gamma=True,
                    command=" ".join(argv))  # ASE needs a string; argv comes from the runtime list
        calc._tansaku_argv = argv  # noqa: SLF001 - what _run_vasp starts, as an argument list
        calc._tansaku_extra_bands = extra_bands  # noqa: SLF001
        original_write = calc.write_input

        def write_input(atoms, properties=None, system_changes=None):  # noqa: ANN001
            calc.set(kpts=kpoint_grid(atoms, kspacing),
                     setups=vasp_setups(set(atoms.get_chemical_symbols()), potcars))
            if spin and not atoms.get_initial_magnetic_moments().any():
                calc.set(magmom=[0.6] * len(atoms))
            return original_write(atoms, properties, system_changes)

        calc.write_input = write_input

        def run(command=None, out=None, directory=None):  # noqa: ANN001 - replaces ASE's shell-string run
            run_code(argv, Path(calc.directory), "vasp.out", "vasp.err", runtime.timeout,
                     runtime.thread_environment())
            return 0, ""  # (error code, stderr), as ASE's Vasp._run; failures raised by run_code

        calc._run = run
        original_calculate = calc.calculate

        def calculate(atoms=None, properties=("energy",), system_changes=()):  # noqa: ANN001
            original_calculate(atoms, properties, system_changes)
            oszicar = Path(calc.directory) / "OSZICAR"
            if oszicar.exists():  # one line per electronic step, e.g. "DAV:  12  -0.1E+02 ..."
                lines = oszicar.read_text().splitlines()
                calc.results["scf_iterations"] = sum(1 for line in lines if line[:4] in ("DAV:", "RMM:", "CG :"))
            if calc.converged is False:  # VASP goes on after NELM steps; ASE reads it from OUTCAR
                raise SCFNotConverged(f"VASP: electronic SCF not converged within NELM = {max_scf}")

        calc.calculate = calculate
        return calc


def vasp_native_settings(settings: Any, relax_cell: bool) -> dict[str, Any]:
    """INCAR keys of VASP's own relaxation: conjugate gradient (IBRION=2) on positions, plus cell shape
    and volume (ISIF=3) when the cell relaxes; NSW = steps; EDIFFG = -fmax (a force criterion, eV/Å)."""
    return {"ibrion": 2, "isif": 3 if relax_cell else 2, "nsw": max(1, settings.steps), "ediffg": -settings.fmax}


def vasp_native_relax(atoms: Atoms, calc: Calculator, settings: Any, relax_cell: bool) -> Any:
    """Relax with VASP itself (``relax_driver = "native"``): one VASP run; ASE reads the final structure
    from CONTCAR and the results from vasprun.xml; converged when OUTCAR says "reached required accuracy"."""
    from tansaku.calculators.relax import RelaxResult, _magnetic_moments, _stress, check_physical

    start = time.perf_counter()
    calc.set(**vasp_native_settings(settings, relax_cell))
    atoms = atoms.copy()
    atoms.calc = calc
    energy = atoms.get_potential_energy()  # ASE's update_atoms moved atoms to CONTCAR's structure
    check_physical(atoms)
    outcar = (Path(calc.directory) / "OUTCAR").read_text(errors="replace")
    forces = calc.results["forces"]
    magmoms, total = _magnetic_moments(calc, atoms)
    return RelaxResult(
        atoms=atoms.copy(), energy=float(energy), fmax=float(np.sqrt((forces ** 2).sum(axis=1)).max()),
        stress=_stress(atoms), magmoms=magmoms, magmom_total=total,
        steps=max(0, outcar.count("FREE ENERGIE OF THE ION-ELECTRON SYSTEM") - 1),
        converged="reached required accuracy" in outcar, wall_time=time.perf_counter() - start,
        scf_iterations=calc.results.get("scf_iterations", -1))


def dft_energy_scale(params: Mapping[str, Any]) -> str:
    """The energy scale of a DFT calculation: its functional, lower case ("pbe"); "+u" when Hubbard U
    values are given (a ``hubbard_u`` parameter: {element: U in eV}; none of tansaku's presets sets one)."""
    return str(params.get("xc", "PBE")).lower() + ("+u" if params.get("hubbard_u") else "")


def _spec(name: str, factory: Any, package: str, description: str, version_fn: Any, native_relax: Any = None,
          **extra: Any) -> CalculatorSpec:
    return CalculatorSpec(energy_scale=dft_energy_scale, check=check_dft_params,
        name=name, factory=factory, elements=ALL_ELEMENTS, package=package, magnetic=True,
        moments=MOMENTS_SIGNED, uses_initial_magmoms=True, defaults={**preset_defaults(name), **extra}, file_based=True,
        presets={k: {"preset": k, **v} for k, v in PRESETS[name].items()}, version_fn=version_fn,
        native_relax=native_relax, description=description)


register(_spec("gpaw", _GPAWFactory(), "gpaw", "GPAW plane-wave PAW DFT (in process; pip gpaw + gpaw-data)",
               gpaw_version, setups="paw", scf_density=GPAW_DENSITY_CRITERION))
register(_spec("espresso", _EspressoFactory(), "quantum-espresso", "Quantum ESPRESSO pw.x (Debian package)",
               espresso_version, native_relax=espresso_native_relax, pseudopotentials={}, relax_driver="ase"))
register(_spec("vasp", _VaspFactory(), "vasp", "VASP (licensed; runs on HPC through a configured command)",
               vasp_version, native_relax=vasp_native_relax, potcars={}, relax_driver="ase"))
