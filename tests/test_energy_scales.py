"""Reference energies that can be mixed, and only those: Materials Project entries with PBE energies (MP2020
corrections on both sides, compared with pymatgen applying them itself), refused with EMT energies unless
forced, and then flagged by rank, show and report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import tansaku
from monty.serialization import dumpfn
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedEntry
from synthetic import cuau_campaign

from tansaku.calculators import get_spec
from tansaku.constants import KIND_CANDIDATE
from tansaku.results import Record, Store, read_columns
from tansaku.screening.rank import Objective, RankingSpec
from tansaku.workflows.campaign import parse_campaign
from tansaku.workflows.ranking import RankingError, compute_ranking
from tansaku.workflows.runner import run_campaign
from tansaku.workflows.tasks import calculator_identity

POTCARS = {"Al": "PAW_PBE Al 04Jan2001", "O": "PAW_PBE O 08Apr2002", "Cu": "PAW_PBE Cu_pv 06Sep2000",
           "Au": "PAW_PBE Au 04Oct2007"}


def mp_entry(formula: str, energy_per_atom: float, entry_id: str) -> ComputedEntry:
    """An entry as the Materials Project API gives it: GGA, MP's POTCARs, no +U (Al, O, Cu, Au need none)."""
    composition = Composition(formula)
    return ComputedEntry(composition, energy_per_atom * composition.num_atoms, entry_id=entry_id, parameters={
        "run_type": "GGA", "is_hubbard": False, "hubbards": {},
        "potcar_spec": [{"titel": POTCARS[str(e)], "hash": None} for e in composition.elements]})


@pytest.fixture
def mp_file(tmp_path):
    path = tmp_path / "mp.json"
    dumpfn([mp_entry("Al", -3.75, "mp-134"), mp_entry("O2", -4.95, "mp-12957"), mp_entry("Al2O3", -7.48, "mp-1143"),
            mp_entry("Cu", -4.10, "mp-30"), mp_entry("Au", -3.27, "mp-81")], path)
    return path


def test_energy_scales_are_declared():
    assert get_spec("gpaw").energy_scale_of({}) == get_spec("espresso").energy_scale_of({}) == "pbe"
    assert get_spec("gpaw").energy_scale_of({"xc": "LDA"}) == "lda"
    assert get_spec("vasp").energy_scale_of({"hubbard_u": {"Fe": 5.3}}) == "pbe+u"
    assert get_spec("chgnet").energy_scale_of({}) == "chgnet-mptrj"
    assert get_spec("emt").energy_scale_of({}) == get_spec("emt-fast").energy_scale_of({}) == "emt"


# Al2O3 and a hypothetical AlO2, with "GPAW" energies (eV/atom) written as GPAW records would be: running
# GPAW on these oxides takes minutes, and only the energies, compositions and stored settings matter here.
GPAW_ROWS = {"Al2O3": -7.40, "AlO2": -6.20, "Al3O4": -6.9}


def _gpaw_store(path):
    identity = json.dumps(calculator_identity("gpaw", get_spec("gpaw").resolve_params({})), sort_keys=True)
    records = []
    for k, (formula, epa) in enumerate(GPAW_ROWS.items()):
        numbers = np.array([el.Z for el, n in Composition(formula).items() for _ in range(int(n))])
        records.append(Record(
            task_id=f"gpaw-{k}", candidate_id=f"c{k}", kind=KIND_CANDIDATE, label=formula, formula=formula,
            prototype="x", parent="", calculator="gpaw", stage="relax", status="ok", numbers=numbers,
            positions=np.arange(3.0 * len(numbers)).reshape(-1, 3), cell=np.eye(3) * 6, energy=epa * len(numbers),
            energy_per_atom=epa, volume=216.0, converged=True, params=identity))
    with Store.open(path) as store:
        store.append(records)


def test_pbe_energies_mix_with_mp_references_with_mp2020_corrections_on_both_sides(tmp_path, mp_file):
    path = tmp_path / "gpaw.h5"
    _gpaw_store(path)
    spec = RankingSpec((Objective("formation_energy", "min", 1.0),), (), 5)
    derived, meta = compute_ranking(path, spec, reference_entries=mp_file)
    assert meta["energy_scale"] == "pbe" and meta["mixed_energy_scales"] == ""
    assert "MaterialsProject2020Compatibility applied to 5 reference entries and to the 3 rows of gpaw" in \
        meta["reference_corrections"]

    # pymatgen, directly: MP's scheme on the references (POTCARs checked) and on the GPAW entries
    references = MaterialsProject2020Compatibility().process_entries(
        [mp_entry("Al", -3.75, "mp-134"), mp_entry("O2", -4.95, "mp-12957"), mp_entry("Al2O3", -7.48, "mp-1143")])
    assert len(references) == 3 and references[2].correction < -1  # the oxide correction of MP2020
    ours = [ComputedEntry(f, e * Composition(f).num_atoms, parameters={"run_type": "GGA", "hubbards": {},
                                                                       "software": "gpaw"})
            for f, e in GPAW_ROWS.items()]
    ours = MaterialsProject2020Compatibility(check_potcar=False).process_entries(ours)
    assert len(ours) == 3 and all(e.correction < 0 for e in ours)
    diagram = PhaseDiagram(references + ours)
    expected_formation = [diagram.get_form_energy_per_atom(e) for e in ours]
    expected_hull = [diagram.get_e_above_hull(e, allow_negative=True) for e in ours]
    assert np.allclose(derived["formation_energy"], expected_formation, atol=1e-9)
    assert np.allclose(derived["e_above_hull"], expected_hull, atol=1e-9)
    # without the corrections the numbers differ by the oxide correction: they were applied
    raw = PhaseDiagram(references + [ComputedEntry(f, e * Composition(f).num_atoms) for f, e in GPAW_ROWS.items()])
    assert abs(raw.get_form_energy_per_atom(ComputedEntry("Al2O3", -37.0)) - expected_formation[0]) > 0.1


@pytest.fixture(scope="module")
def emt_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("emt-scale")
    campaign = parse_campaign(cuau_campaign(tmp / "cuau.h5", extra='[ranking]\nobjectives = '
                                            '{ formation_energy = "min", e_above_hull = "min" }\n'))
    run_campaign(campaign, show_progress=False)
    return campaign.output


def test_emt_energies_and_mp_references_are_refused_naming_calculator_and_file(emt_store, mp_file):
    with pytest.raises(RankingError, match=rf"reference entries {mp_file} are Materials Project.*calculator 'emt' "
                                           r"gives 'emt' energies.*allow_mixed_energy_scales"):
        compute_ranking(emt_store, RankingSpec(), reference_entries=mp_file)
    result = tansaku("rank", emt_store, "--reference-entries", mp_file)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "calculator 'emt'" in lines[0] and str(mp_file) in lines[0], result.stderr


@pytest.mark.slow
def test_forced_mix_works_and_is_flagged_by_rank_show_and_report(emt_store, mp_file, tmp_path):
    derived, meta = compute_ranking(emt_store, RankingSpec(), reference_entries=mp_file,
                                    allow_mixed_energy_scales=True)
    assert meta["mixed_energy_scales"].startswith("MIXED ENERGY SCALES") and "'emt'" in meta["mixed_energy_scales"]
    assert "the energies of emt are not corrected" in meta["reference_corrections"]
    assert np.isfinite(derived["formation_energy"][read_columns(emt_store, ["kind"])["kind"] == "candidate"]).all()

    ranked = tansaku("rank", emt_store, "--reference-entries", mp_file, "--allow-mixed-energy-scales")
    assert ranked.returncode == 0, ranked.stderr
    assert "warning: MIXED ENERGY SCALES" in ranked.stderr
    row = read_columns(emt_store, ["task_id", "kind"])
    shown = tansaku("show", emt_store, row["task_id"][row["kind"] == "candidate"][0])
    assert shown.returncode == 0 and "MIXED ENERGY SCALES" in shown.stdout
    report = tansaku("report", emt_store, "-o", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    assert "<strong>Warning:</strong> MIXED ENERGY SCALES" in (tmp_path / "report" / "index.html").read_text()


def test_forcing_is_a_campaign_setting(tmp_path, mp_file):
    from tansaku.workflows.campaign import CampaignError

    text = cuau_campaign(tmp_path / "x.h5", extra=f'[ranking]\nreference_entries = "{mp_file}"\n'
                                                 'allow_mixed_energy_scales = true\n')
    assert parse_campaign(text).ranking.allow_mixed_energy_scales is True
    with pytest.raises(CampaignError, match="allow_mixed_energy_scales"):
        parse_campaign(text.replace("allow_mixed_energy_scales = true", 'allow_mixed_energy_scales = "yes"'))
