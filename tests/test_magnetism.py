"""Magnetic configurations, ground states, mean-field Tc and K1 bookkeeping (issue 10 items 2-5), fast.

Real DFT for these (GPAW: bcc Fe Tc, L10 FePt and bcc Fe K1) is in tests/test_magnetism_dft.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re

import numpy as np
import pytest
import scipy.constants as sc
from ase import Atoms
from ase.build import bulk

from tansaku.calculators import RelaxSettings, get_spec
from tansaku.results import Store
from tansaku.results.record import Record
from tansaku.screening.candidate import Candidate
from tansaku.screening.magnetic_configurations import (
    MAX_ENUMERATED_SITES,
    enumerate_collinear,
    flipped_bond_fraction,
    magnetic_configurations,
    magnetic_sites,
    site_permutations,
)
from tansaku.screening.properties import k1_mj_m3, tc_mean_field
from tansaku.screening.prototypes import build, get_prototype
from tansaku.screening.rank import Objective, RankingSpec
from tansaku.workflows.campaign import CampaignError, parse_campaign
from tansaku.workflows.plan import make_plan
from tansaku.workflows.ranking import compute_ranking
from tansaku.workflows.tasks import make_task, task_from_dict, task_to_dict, tasks_equal


def fe4() -> Atoms:
    """bcc Fe, conventional cell doubled along x: 4 atoms in layers x = 0, 1/4, 1/2, 3/4."""
    return bulk("Fe", "bcc", a=2.83, cubic=True).repeat((2, 1, 1))


# ------------------------------------------------------------------ formulas against independent values

def test_tc_mean_field_against_constants():
    # k_B Tc = (2/3) ΔE: ΔE = 0.1747 eV per Fe (bcc Fe, FM vs the double-layer state, our GPAW run) -> 1352 K
    delta = np.array([0.1747, 0.0, -0.01, np.nan])
    expected = 2 / 3 * 0.1747 * sc.e / sc.k
    got = tc_mean_field(delta)
    assert got[0] == pytest.approx(expected, rel=1e-9) and got[0] == pytest.approx(1351.5, abs=1)
    assert got[1] == 0 and got[2] == 0 and np.isnan(got[3])


def test_k1_conversion_against_constants():
    # 3 meV per 2-atom FePt cell of 27.65 Å³ -> 3e-3 eV · e / 27.65e-30 m³ = 17.4 MJ/m³
    volume = 2.73 * 2.73 * 3.71
    assert k1_mj_m3(3e-3, volume) == pytest.approx(3e-3 * sc.e / (volume * 1e-30) / 1e6, rel=1e-12)
    assert k1_mj_m3(3e-3, volume) == pytest.approx(17.4, abs=0.1)


# ------------------------------------------------------------------ configurations

def test_fm_mode_gives_the_default_start_only():
    (fm,) = magnetic_configurations(fe4(), "fm")
    assert fm.name == "fm" and fm.magmoms == (2.8, 2.8, 2.8, 2.8)  # START_MOMENTS: near bcc Fe's 2.2 μB


def test_start_moments_are_near_the_moments_in_metals():
    """3d starts within 1.1-1.6x of the elemental metals' moments (bcc Fe 2.22, hcp Co 1.72, fcc Ni 0.62 μB:
    Kittel, Introduction to Solid State Physics, table 11.2 / 14), never pymatgen's 5 μB VASP start that
    sent GPAW to non-magnetic solutions; 4f starts the Hund's-rule spin 2S of R3+ (4f^n: n <= 7 -> n,
    else 14 - n; Eu2+ 4f^7); Pt, N, B a small induced start."""
    from tansaku.screening.magnetic_configurations import RE_4F_MAGNETIC, default_start_moments

    for symbol, metal in {"Fe": 2.22, "Co": 1.72, "Ni": 0.62}.items():
        assert 1.1 <= default_start_moments([symbol])[0] / metal <= 1.6, symbol
    for number, symbol in zip(range(58, 71), ["Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb"]):
        n4f = number - 57  # R3+: 4f^1 (Ce) ... 4f^13 (Yb)
        assert symbol in RE_4F_MAGNETIC
        if symbol == "Eu":  # divalent in metals: 4f^7 like Gd
            n4f = 7
        assert default_start_moments([symbol])[0] == (n4f if n4f <= 7 else 14 - n4f), symbol
    np.testing.assert_array_equal(default_start_moments(["Pt", "N", "B"]), [0.6] * 3)


def test_rare_earth_antiparallel_needs_both_sublattices():
    smco5, _ = build(get_prototype("CaCu5"), with_interstitials=False)  # SmCo5
    names = [c.name for c in magnetic_configurations(smco5, "fm+re-antiparallel")]
    assert names == ["fm", "re-anti"]
    anti = magnetic_configurations(smco5, "fm+re-antiparallel")[1]
    signs = {(s, np.sign(m)) for s, m in zip(smco5.get_chemical_symbols(), anti.magmoms)}
    assert signs == {("Sm", -1.0), ("Co", 1.0)}
    assert [c.name for c in magnetic_configurations(fe4(), "fm+re-antiparallel")] == ["fm"]


def _brute_force_classes(atoms: Atoms) -> int:
    """Distinct non-FM sign patterns up to global flip and the cell's symmetry, by brute force over
    all patterns and all operations (independent of the enumeration's canonical form)."""
    sites = magnetic_sites(atoms)
    perms = site_permutations(atoms)
    remaining = {p for p in itertools.product((1, -1), repeat=len(sites)) if set(p) != {1} and set(p) != {-1}}
    classes = 0
    while remaining:
        pattern = remaining.pop()
        classes += 1
        full = np.ones(len(atoms), int)
        full[sites] = pattern
        for perm in perms:
            moved = np.ones(len(atoms), int)
            moved[perm] = full
            for flip in (1, -1):
                remaining.discard(tuple(int(v) for v in flip * moved[sites]))
    return classes


def test_enumeration_is_symmetry_reduced_and_complete():
    patterns = enumerate_collinear(fe4(), magnetic_sites(fe4()))
    assert len(patterns) == _brute_force_classes(fe4()) == 3  # uudd, udud, uuud
    assert abs(int(patterns[0].sum())) == 0  # AFM-like first
    # a 2x2x1 supercell (8 Fe): many more patterns, still each class once
    big = fe4().repeat((1, 2, 1))
    assert len(enumerate_collinear(big, magnetic_sites(big))) == _brute_force_classes(big)


def test_enumeration_is_capped_and_skips_large_cells():
    configs = magnetic_configurations(fe4(), "enumerate", max_configurations=3)
    assert configs[0].name == "fm" and len(configs) == 3
    assert len({c.magmoms for c in configs}) == 3
    large = bulk("Fe", "bcc", a=2.83, cubic=True).repeat((2, 2, 2)).repeat((1, 1, 2))
    assert len(magnetic_sites(large)) > MAX_ENUMERATED_SITES
    assert [c.name for c in magnetic_configurations(large, "enumerate", 10)] == ["fm"]
    with pytest.raises(ValueError, match="unknown magnetic configuration mode"):
        magnetic_configurations(fe4(), "ferri")


def test_flipped_bond_fraction():
    two = bulk("Fe", "bcc", a=2.83, cubic=True)
    assert flipped_bond_fraction(two, [2, 2], [2, -2]) == 1.0  # B2 antiferromagnet: every nearest pair
    assert flipped_bond_fraction(fe4(), [2] * 4, [2, 2, -2, -2]) == 0.5  # double layers: as disordered
    assert flipped_bond_fraction(fe4(), [2] * 4, [2, 2, 2, 2]) == 0.0
    assert math.isnan(flipped_bond_fraction(two, [2, 2], [0.0, 0.0]))  # collapsed: nothing to compare
    # CsCl-like MnNi (the funnel's CHGNet L10 MnNi relaxed to c = a), 2x1x1: in the Mn planes-alternating state
    # Ni loses its moment, so the Mn-Ni shell says nothing; the Mn-Mn pairs (6 per Mn, the 2 along x flipped) do
    mnni = Atoms("MnNi", scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5)], cell=[2.92] * 3, pbc=True).repeat((2, 1, 1))
    assert flipped_bond_fraction(mnni, [3.7, 0.5, 3.7, 0.5], [3.3, 0.0, -3.3, 0.0]) == pytest.approx(1 / 3)
    assert flipped_bond_fraction(mnni, [3.7, 0.5, 3.7, 0.5], [3.3, 0.5, -3.3, -0.5]) == 0.5  # Mn-Ni shell


# ------------------------------------------------------------------ tasks and planning

def l10_fept() -> Atoms:
    return Atoms("FePt", scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5)], cell=[2.73, 2.73, 3.71], pbc=True)


def test_supercell_patterns_give_one_site_cells_an_antiparallel_state():
    # L10 FePt has one magnetic site: FM only in its cell; in a 2x1x1 supercell the Fe planes alternate
    assert [c.name for c in magnetic_configurations(l10_fept(), "enumerate", 4)] == ["fm"]
    fm, ud = magnetic_configurations(l10_fept(), "enumerate", 4, supercell=(2, 1, 1))
    assert (fm.name, fm.repeat, len(fm.atoms(l10_fept()))) == ("fm", (1, 1, 1), 2)  # FM stays in the cell
    assert (ud.name, ud.repeat) == ("ud:ud@2x1x1", (2, 1, 1))
    cell = ud.atoms(l10_fept())
    assert cell.get_chemical_formula() == "Fe2Pt2" and cell.cell.lengths() == pytest.approx([5.46, 2.73, 3.71])
    np.testing.assert_array_equal(cell.get_initial_magnetic_moments(), [2.8, 0.6, -2.8, 0.6])  # Pt: induced
    # half of each Fe's four in-plane Fe neighbours flip: the stand-in for the disordered state (f = 1/2)
    assert flipped_bond_fraction(cell, [5.0, 0.6, 5.0, 0.6], ud.magmoms) == 0.5
    # B2 FeCo: in its own cell the only pattern flips every bond (f = 1); the supercell's first has f = 1/2
    feco = Atoms("FeCo", scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5)], cell=[2.85] * 3, pbc=True)
    (own,) = magnetic_configurations(feco, "enumerate", 2)[1:]
    (double,) = magnetic_configurations(feco, "enumerate", 2, supercell=(2, 1, 1))[1:]
    assert flipped_bond_fraction(feco, [5, 5], own.magmoms) == 1.0
    assert flipped_bond_fraction(double.atoms(feco), [5] * 4, double.magmoms) == 0.5
    # each configuration its own task
    params = get_spec("gpaw").resolve_params({"preset": "fast"})
    candidate = Candidate(l10_fept(), "test")
    tasks = [make_task(candidate, "gpaw", params, RelaxSettings(), configuration=c) for c in (fm, ud)]
    assert len(tasks[1].atoms) == 4 and tasks[1].task_id != tasks[0].task_id


def test_supercell_is_checked_in_the_campaign(tmp_path):
    def text(mode: str, supercell: str) -> str:
        return CAMPAIGN.format(calculator="gpaw", params='params = { preset = "fast" }', mode=mode).replace(
            "max_configurations = 3", f"max_configurations = 3\nsupercell = {supercell}")

    campaign = parse_campaign(text("enumerate", "[1, 1, 2]"), base_dir=tmp_path)
    assert campaign.magnetism.supercell == (1, 1, 2)
    assert {len(t.atoms) for t in make_plan(campaign).tasks} == {4, 8}  # FM in the 4-atom cell, patterns in 8
    with pytest.raises(CampaignError, match=r"magnetism.supercell: expected three positive integers, got \[2, 1\]"):
        parse_campaign(text("enumerate", "[2, 1]"), base_dir=tmp_path)
    with pytest.raises(CampaignError, match="magnetism.supercell: applies to configurations = \"enumerate\" only"):
        parse_campaign(text("fm+re-antiparallel", "[2, 1, 1]"), base_dir=tmp_path)


def test_magnet_funnel_example_computes_two_magnetic_states_of_every_candidate():
    """The example's DFT stage (planning path, no DFT run): every candidate gets FM in its own cell and a
    second state in the 2x1x1 supercell with half the nearest-neighbour bonds of the magnetic sites flipped,
    so its ranking has a Curie-temperature estimate whatever the CHGNet stage selects."""
    from pathlib import Path

    from tansaku.workflows.funnel import configuration_tasks

    example = Path(__file__).resolve().parents[1] / "examples" / "magnet_funnel.toml"
    campaign = parse_campaign(example.read_text(), base_dir=example.parent, source=str(example))
    dft = campaign.stage("dft")
    first = [t for t in make_plan(campaign).tasks if t.kind == "candidate"]
    assert len(first) >= 10
    for source in first:
        tasks = configuration_tasks(source, source.atoms, dft)
        assert [t.configuration for t in tasks][0] == "fm" and len(tasks) == 2, source.formula
        fm, other = tasks
        reference = np.tile(fm.atoms.get_initial_magnetic_moments(), len(other.atoms) // len(fm.atoms))
        assert flipped_bond_fraction(other.atoms, reference, other.atoms.get_initial_magnetic_moments()) == 0.5, \
            (source.formula, other.configuration)

def test_every_configuration_has_its_start_in_its_task_id():
    params = get_spec("gpaw").resolve_params({"preset": "fast"})
    candidate = Candidate(fe4(), "test")
    plain = make_task(candidate, "gpaw", params, RelaxSettings())
    configs = magnetic_configurations(fe4(), "enumerate")
    tasks = [make_task(candidate, "gpaw", params, RelaxSettings(), configuration=c) for c in configs]
    assert tasks[0].task_id != plain.task_id  # FM: its start moments are part of its identity
    np.testing.assert_array_equal(tasks[0].atoms.get_initial_magnetic_moments(), [2.8] * 4)
    other_start = dataclasses.replace(configs[0], magmoms=(5.0,) * 4)
    assert make_task(candidate, "gpaw", params, RelaxSettings(), configuration=other_start).task_id != tasks[0].task_id
    assert make_task(candidate, "gpaw", params, RelaxSettings(), configuration=configs[0]).task_id == tasks[0].task_id
    assert len({t.task_id for t in tasks}) == len(tasks) == 4
    assert [t.configuration for t in tasks] == ["fm", "ud:uudd", "ud:udud", "ud:uuud"]
    back = task_from_dict(task_to_dict(tasks[1]))
    assert tasks_equal(back, tasks[1]) and back.configuration == "ud:uudd"
    np.testing.assert_array_equal(back.atoms.get_initial_magnetic_moments(), [2.8, 2.8, -2.8, -2.8])


CAMPAIGN = """
[campaign]
name = "fe-configs"
[calculator]
name = "{calculator}"
{params}
[magnetism]
configurations = "{mode}"
max_configurations = 3
[references]
elements = "none"
[[prototypes]]
prototype = "bcc"
supercell = [2, 1, 1]
"""


def test_plan_has_one_task_per_configuration_for_dft_only(tmp_path):
    campaign = parse_campaign(CAMPAIGN.format(calculator="gpaw", params='params = { preset = "fast" }',
                                              mode="enumerate"), base_dir=tmp_path)
    tasks = make_plan(campaign).tasks
    assert [t.configuration for t in tasks] == ["fm", "ud:uudd", "ud:udud"]
    with pytest.raises(CampaignError, match=r"magnetism.configurations: calculator 'emt' takes no initial"):
        parse_campaign(CAMPAIGN.format(calculator="emt", params="", mode="enumerate"), base_dir=tmp_path)
    with pytest.raises(CampaignError, match="magnetism.configurations: unknown configurations 'afm'"):
        parse_campaign(CAMPAIGN.format(calculator="gpaw", params="", mode="afm"), base_dir=tmp_path)


# ------------------------------------------------------------------ ground states, Tc and K1 in the ranking

def _record(task_id: str, candidate: str, atoms: Atoms, energy: float, magmoms, configuration: str,
            calculation: str = "relax", k1: tuple[float, float] = (np.nan, np.nan)) -> Record:
    return Record(task_id=task_id, candidate_id=candidate, kind="candidate", label=candidate, formula="Fe4",
                  prototype="bcc", parent="", calculator="gpaw", stage="relax", status="ok",
                  numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell.array,
                  magmoms=np.asarray(magmoms, float), energy=energy, energy_per_atom=energy / len(atoms),
                  fmax=0.0, volume=atoms.get_volume(), magmom_total=float(np.sum(magmoms)), steps=0,
                  converged=True, configuration=configuration, calculation=calculation,
                  k1_fine=k1[0], k1_coarse=k1[1])


def test_ranking_uses_the_ground_state_and_keeps_the_differences(tmp_path):
    path = tmp_path / "fe.h5"
    a = fe4()
    with Store.open(path, campaign_text="magnetism test") as store:
        store.append([
            _record("fm", "fe", a, -35.128, [2.1] * 4, "fm"),
            _record("uudd", "fe", a, -34.429, [2.09, 2.09, -2.09, -2.09], "ud:uudd"),  # f = 1/2
            _record("udud", "fe", a, -33.362, [1.4, -1.4, 1.4, -1.4], "ud:udud"),  # f = 1
            _record("back", "fe", a, -35.1275, [2.1] * 4, "ud:uuud"),  # converged back to FM: no new state
            # a second candidate whose ground state is not FM
            _record("fm2", "ferri", a, -10.0, [2.0] * 4, "fm"),
            _record("anti2", "ferri", a, -10.4, [2.0, 2.0, -2.0, -2.0], "ud:uudd"),
            _record("k1", "fe", a, -35.2, [2.1] * 4, "fm", calculation="anisotropy", k1=(0.02, 0.05)),
        ])
    spec = RankingSpec((Objective("mu0_ms", "max", 1.0),))
    derived, _ = compute_ranking(path, spec, calculator="gpaw")
    ground = derived["ground_state"]
    assert ground.tolist() == [True, False, False, False, False, True, False]  # lowest energy; K1 row never
    assert derived["rank"][ground].min() == 1 and (derived["rank"][~ground] <= 0).all()
    np.testing.assert_allclose(derived["delta_e_config"][:4], [0, 0.699 / 4, 1.766 / 4, 5e-4 / 4], atol=1e-9)
    # delta_e_afm: the lowest other state that is really another state (uudd, not the start that came back)
    assert derived["delta_e_afm"][0] == pytest.approx(0.699 / 4)
    # Tc from the double-layer state (f = 1/2): (2/3) ΔE / k_B; the B2-like state (f = 1) would give ΔE/(2f)
    assert derived["tc_mean_field"][0] == pytest.approx(2 / 3 * 0.699 / 4 * sc.e / sc.k, rel=1e-6)
    assert derived["tc_mean_field"][5] == pytest.approx(2 / 3 * 0.1 * sc.e / sc.k, rel=1e-6)  # from its ground
    # K1 of the candidate's anisotropy row lands on its ground-state row, with κ and μ0Ha from it
    assert derived["k1"][0] == pytest.approx(0.02) and derived["k1_kpoint_delta"][0] == pytest.approx(-0.03)
    assert derived["k1_mev_fu"][0] == pytest.approx(0.02e6 * a.get_volume() * 1e-30 / sc.e * 1e3 / 4)
    assert np.isfinite(derived["kappa"][0]) and np.isnan(derived["kappa"][5]) and np.isnan(derived["k1"][1])
    assert np.isnan(derived["e_above_hull"][6])  # the K1 row (no relaxation) is not on the hull


def test_tc_from_a_supercell_configuration_against_fm_in_the_cell(tmp_path):
    """FM of a 2-atom bcc Fe cell against the double-layer state of its 2x1x1 supercell: ΔE per magnetic
    atom, each in its own cell; f = 1/2 from the cell's moments repeated."""
    path = tmp_path / "fe.h5"
    two = bulk("Fe", "bcc", a=2.83, cubic=True)
    with Store.open(path, campaign_text="magnetism test") as store:
        store.append([_record("fm", "fe", two, -17.564, [2.1] * 2, "fm"),
                      _record("uudd", "fe", fe4(), -34.429, [2.09, 2.09, -2.09, -2.09], "ud:uudd@2x1x1"),
                      # an antiferromagnet (as L10 MnPt): the supercell state is the ground state
                      _record("fm2", "afm", two, -16.0, [4.0] * 2, "fm"),
                      _record("ud2", "afm", fe4(), -32.4, [4.0, 4.0, -4.0, -4.0], "ud:uudd@2x1x1")])
    derived, _ = compute_ranking(path, RankingSpec((Objective("mu0_ms", "max", 1.0),)), calculator="gpaw")
    assert derived["ground_state"].tolist() == [True, False, False, True]
    assert derived["delta_e_config"][2] == pytest.approx(0.1)  # FM per atom above the AFM ground state
    assert derived["tc_mean_field"][3] == pytest.approx(2 / 3 * 0.1 * sc.e / sc.k, rel=1e-6)  # ordering estimate
    delta = -34.429 / 4 + 17.564 / 2
    assert derived["delta_e_config"][1] == pytest.approx(delta) and derived["delta_e_afm"][0] == pytest.approx(delta)
    assert derived["tc_mean_field"][0] == pytest.approx(2 / 3 * delta * sc.e / sc.k, rel=1e-6)  # f = 1/2


# ------------------------------------------------------------------ in a funnel: configurations and a K1 stage

FUNNEL = """
[campaign]
name = "magnet-funnel-test"
output = "{output}"
stage = "emt"
[calculator]
name = "emt"
[relax]
steps = 100
[execution]
executor = "serial"
[ranking]
objectives = {{ e_above_hull = "min" }}
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = "Al", "3c" = "Ni" }}
[[stages]]
name = "dft"
calculator = {{ name = "gpaw", params = {{ preset = "fast" }} }}
relax = {{ steps = 0 }}
magnetism = {{ configurations = "enumerate", max_configurations = 4 }}
select = {{ top = 1 }}
[[stages]]
name = "k1"
kind = "anisotropy"
calculator = {{ name = "gpaw", params = {{ preset = "fast" }} }}
anisotropy = {{ kspacings = [0.3, 0.2] }}
select = {{ top = 1 }}
"""


def test_funnel_stage_gets_one_task_per_configuration_and_parses_a_k1_stage(tmp_path):
    from tansaku.workflows.funnel import plan_next_stage, rank_campaign, stage_tasks
    from tansaku.workflows.planfile import ensure_plan
    from tansaku.workflows.plan import Plan
    from tansaku.workflows.runner import execute_plan

    campaign = parse_campaign(FUNNEL.format(output=tmp_path / "f.h5"), base_dir=tmp_path)
    dft, k1 = campaign.later_stages
    assert dft.magnetism.configurations == "enumerate" and k1.kind == "anisotropy"
    assert k1.anisotropy == {"kspacings": [0.3, 0.2], "smearing": 0.05}
    plan, _ = ensure_plan(campaign)
    first = stage_tasks(plan, campaign, "emt")
    execute_plan(Plan(tasks=first), campaign.for_stage("emt"), show_progress=False)
    assert rank_campaign(campaign) == ""
    tasks = plan_next_stage(campaign, 1, plan)
    ni3al = [t for t in tasks if t.kind == "candidate"]
    # Ni3Al: FM + the symmetry-distinct up/down patterns of 3 Ni sites
    assert [t.configuration for t in ni3al] == ["fm", "ud:uud"]
    assert len({t.task_id for t in tasks}) == len(tasks)
    assert all(t.configuration == "fm" for t in tasks if t.kind == "reference")  # references: FM only
    assert sorted(np.sign(ni3al[1].atoms.get_initial_magnetic_moments()[ni3al[1].atoms.numbers == 28])) == [-1, 1, 1]


@pytest.mark.parametrize("stage, message", [
    ('kind = "anisotropy"\nanisotropy = { kspacings = [0] }', "stages[0].anisotropy: kspacings must be positive"),
    ('anisotropy = { kspacings = [0.2] }', 'only a stage of kind "anisotropy" takes these settings'),
    ('kind = "phonons"', "stages[0].kind: unknown kind 'phonons'"),
])
def test_bad_stage_settings_name_the_key(tmp_path, stage, message):
    text = FUNNEL.split("[[stages]]")[0].format(output=tmp_path / "f.h5") + f"""
[[stages]]
name = "dft"
calculator = {{ name = "gpaw" }}
select = {{ top = 1 }}
{stage}
"""
    with pytest.raises(CampaignError, match=re.escape(message)):
        parse_campaign(text, base_dir=tmp_path)


def test_k1_of_4f_compounds_and_mean_field_tc_carry_their_caveats():
    import pandas as pd

    from tansaku.report.sources import K1_4F_CAVEAT, has_4f_elements, record_caveats

    assert has_4f_elements(pd.DataFrame({"formula": ["SmCo5", "FePt", "Nd2Fe14B", "YCo5"]})).tolist() == \
        [True, False, True, False]
    lines = record_caveats({"formula": "SmCo5"}, {"k1": 4.0, "tc_mean_field": 1500.0})
    assert K1_4F_CAVEAT in lines and any("overestimates" in line for line in lines)
    assert record_caveats({"formula": "FePt"}, {"k1": 15.0}) == [record_caveats({"formula": "FePt"},
                                                                                 {"k1": 1.0})[0]]
    assert record_caveats({"formula": "Fe"}, {"k1": float("nan")}) == []
