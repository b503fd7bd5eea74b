"""Magnetic configurations, ground states, mean-field Tc and K1 bookkeeping (issue 10 items 2-5), fast.

Real DFT for these (GPAW: bcc Fe Tc, L10 FePt and bcc Fe K1) is in tests/test_magnetism_dft.py.
"""

from __future__ import annotations

import itertools
import math

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
    assert fm.name == "fm" and fm.magmoms == (5.0, 5.0, 5.0, 5.0)  # pymatgen's default start for Fe


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


# ------------------------------------------------------------------ tasks and planning

def test_fm_task_keeps_its_old_id_and_other_configurations_get_their_own():
    params = get_spec("gpaw").resolve_params({"preset": "fast"})
    candidate = Candidate(fe4(), "test")
    plain = make_task(candidate, "gpaw", params, RelaxSettings())
    configs = magnetic_configurations(fe4(), "enumerate")
    tasks = [make_task(candidate, "gpaw", params, RelaxSettings(), configuration=c) for c in configs]
    assert tasks[0].task_id == plain.task_id  # FM = the start every DFT task had
    assert len({t.task_id for t in tasks}) == len(tasks) == 4
    assert [t.configuration for t in tasks] == ["fm", "ud:uudd", "ud:udud", "ud:uuud"]
    back = task_from_dict(task_to_dict(tasks[1]))
    assert tasks_equal(back, tasks[1]) and back.configuration == "ud:uudd"
    np.testing.assert_array_equal(back.atoms.get_initial_magnetic_moments(), [5, 5, -5, -5])


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
