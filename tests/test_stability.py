"""screening.stability against pymatgen's PhaseDiagram built directly on the same entries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from monty.json import MontyEncoder
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedEntry

from tansaku.screening.stability import (
    StabilityResult,
    load_reference_entries,
    mp_elemental_references,
    stability,
)

TOL = 1e-6  # eV/atom


def _matrix(elements, formulas):
    comps = [Composition(f) for f in formulas]
    return np.array([[int(c[el]) for el in elements] for c in comps], dtype=np.int64)


def _entries(elements, counts, energies, rows=None):
    rows = range(len(energies)) if rows is None else rows
    return [ComputedEntry(Composition(dict(zip(elements, counts[i].tolist()))), float(energies[i]),
                          entry_id=f"r{i}") for i in rows if np.isfinite(energies[i])]


def _run(elements, counts, energies, **kwargs) -> StabilityResult:
    n = len(energies)
    return stability(elements, counts, energies, ["chgnet"] * n, [f"r{i}" for i in range(n)], **kwargs)


def _compare_with_pymatgen(result, entries, rows):
    """e_above_hull, formation energy and decomposition text of ``rows`` equal pymatgen's."""
    pd = PhaseDiagram(entries)
    for entry, i in zip(entries, rows):
        decomp, e_hull = pd.get_decomp_and_e_above_hull(entry, allow_negative=True)
        assert result.e_above_hull[i] == pytest.approx(e_hull, abs=TOL), entry
        assert result.formation_energy[i] == pytest.approx(pd.get_form_energy_per_atom(entry), abs=TOL), entry
        parts = sorted((-a, e.composition.reduced_formula) for e, a in decomp.items())
        formula = entry.composition.reduced_formula
        on_hull = abs(e_hull) < 1e-9 and [f for _, f in parts] == [formula]
        assert result.decomposition[i] == (formula if on_hull else " + ".join(f"{-a:.3f} {f}" for a, f in parts))
    return pd


def test_binary_matches_pymatgen():
    elements = ["Co", "Sm"]
    formulas = ["Sm3", "Co2", "Sm2Co10", "Sm2Co17", "SmCo2", "Sm2Co7", "SmCo5", "SmCo3", "Sm5Co19", "SmCo12"]
    counts = _matrix(elements, formulas)
    form = np.array([0.0, 0.0, -0.25, -0.22, -0.20, -0.25, -0.30, -0.22, -0.20, -0.05])  # eV/atom
    energies = counts @ [-7.1, -4.7] + form * counts.sum(axis=1)
    result = _run(elements, counts, energies)
    assert result.chemical_system == "Co-Sm"
    pd = _compare_with_pymatgen(result, _entries(elements, counts, energies), range(len(formulas)))
    stable = {e.composition.reduced_formula for e in pd.stable_entries}
    assert {"Sm", "Co", "SmCo5", "Sm2Co17"} <= stable
    for i, formula in enumerate(formulas):
        if result.e_above_hull[i] == 0:
            assert result.decomposition[i] == Composition(formula).reduced_formula
            assert result.decomposition[i] in stable
        else:
            assert result.e_above_hull[i] > 0 and result.decomposition[i][0].isdigit()
    assert result.decomposition[2] == "1.000 SmCo5"  # Sm2Co10: a second, higher SmCo5


def _four_element_system(seed=7):
    """Sm-Fe-Co-Ti: elemental references (multi-atom cells) and ~30 made-up compositions."""
    elements = ["Ti", "Fe", "Co", "Sm"]
    rng = np.random.default_rng(seed)
    mu = np.array([-7.9, -8.4, -7.1, -4.7])  # eV/atom of the elemental references
    counts = [np.eye(4, dtype=np.int64)[j] * n for j, n in enumerate([2, 2, 2, 3])]
    counts += [np.array([0, 0, 0, 1])]  # a second Sm polymorph, higher in energy
    while len(counts) < 36:
        c = rng.integers(0, 9, size=4)
        if (c > 0).sum() >= 2:
            counts.append(c)
    counts.append(counts[12] * 2)  # a supercell of an earlier composition, another energy
    counts = np.array(counts, dtype=np.int64)
    natoms = counts.sum(axis=1)
    # formation energies from -0.35 to +0.25 eV/atom: some stable, many not, several above the elements
    form = np.r_[np.zeros(4), 0.12, rng.uniform(-0.35, 0.25, len(counts) - 5)]
    energies = counts @ mu + natoms * form
    return elements, counts, energies, form


def test_four_element_system_matches_pymatgen():
    elements, counts, energies, form = _four_element_system()
    assert (form > 0).sum() >= 5  # the test covers unstable compositions above the elements
    result = _run(elements, counts, energies)
    assert result.chemical_system == "Co-Fe-Sm-Ti"
    _compare_with_pymatgen(result, _entries(elements, counts, energies), range(len(energies)))
    np.testing.assert_allclose(result.formation_energy, form, atol=TOL)
    assert (result.e_above_hull >= 0).all()
    # every decomposition is a mixture summing to one (or the formula itself for hull rows)
    for text, e in zip(result.decomposition, result.e_above_hull):
        if e == 0:
            assert "+" not in text and not text[0].isdigit()
        else:
            total = sum(float(part.split()[0]) for part in text.split(" + "))
            assert total == pytest.approx(1.0, abs=2e-3)


def test_formation_energy_by_hand():
    elements = ["Fe", "Co"]
    counts = _matrix(elements, ["Fe2", "Co2", "FeCo", "Fe3Co"])
    # Fe -8.0, Co -7.0 eV/atom; FeCo -0.2 eV/atom below the elements; Fe3Co +0.05 above them
    energies = np.array([-16.0, -14.0, 2 * -7.7, 3 * -8.0 - 7.0 + 4 * 0.05])
    result = _run(elements, counts, energies)
    np.testing.assert_allclose(result.formation_energy, [0.0, 0.0, -0.2, 0.05], atol=1e-12)
    # hull at x(Co) = 1/4 is half Fe, half FeCo (by atoms): -0.1 eV/atom
    np.testing.assert_allclose(result.e_above_hull, [0.0, 0.0, 0.0, 0.15], atol=1e-12)
    assert result.decomposition == ["Fe", "Co", "FeCo", "0.500 Fe + 0.500 FeCo"]


def test_decomposition_strings():
    elements = ["Fe", "Sm"]
    counts = _matrix(elements, ["Sm", "Fe2", "Sm2Fe17", "Sm4Fe53", "Sm2Fe17", "SmFe2", "Fe"])
    per_atom = np.array([-4.7, -8.4, -8.2, -8.1, -8.15, -7.0, -8.3])
    energies = per_atom * counts.sum(axis=1)
    energies[5] = np.nan  # a failed task
    result = _run(elements, counts, energies)
    assert result.decomposition[0] == "Sm"
    assert result.decomposition[1] == "Fe"
    assert result.decomposition[2] == "Sm2Fe17"  # on the hull: the formula itself
    assert result.decomposition[3] == "0.667 Sm2Fe17 + 0.333 Fe"  # fractions of atoms
    assert result.decomposition[4] == "1.000 Sm2Fe17"  # a polymorph above the hull
    assert result.e_above_hull[4] == pytest.approx(0.05, abs=1e-12)
    assert result.decomposition[5] == ""
    assert result.decomposition[6] == "1.000 Fe"


def test_mixed_calculators_are_refused():
    elements = ["Fe", "Co"]
    counts = _matrix(elements, ["Fe", "Co", "FeCo"])
    energies = np.array([-8.0, -7.0, -15.4])
    with pytest.raises(ValueError, match="calculators chgnet, emt cannot share one hull; select one calculator"):
        stability(elements, counts, energies, ["emt", "chgnet", "chgnet"], ["a", "b", "c"])
    # a failed row of another calculator does not count
    energies[0] = np.nan
    counts_ok = _matrix(elements, ["Fe", "Fe", "Co", "FeCo"])
    result = stability(elements, counts_ok, np.r_[-8.0, energies], ["chgnet", "emt", "chgnet", "chgnet"],
                       ["a", "b", "c", "d"])
    assert result.formation_energy[3] == pytest.approx(-0.2)


def test_missing_elemental_reference_is_named():
    elements = ["Ti", "Fe", "Co", "Sm"]
    counts = _matrix(elements, ["Fe", "Co", "Sm", "SmFe11Ti", "SmCo5"])
    energies = np.array([-8.4, -7.1, -4.7, -100.0, -40.0])
    with pytest.raises(ValueError, match=r"no elemental reference for Ti.*needs an elemental reference"):
        _run(elements, counts, energies)
    energies[0] = np.nan  # Fe failed too
    with pytest.raises(ValueError, match=r"no elemental reference for Fe, Ti"):
        _run(elements, counts, energies)


def test_nan_rows_get_nan_and_stay_out_of_the_hull():
    elements, counts, energies, _ = _four_element_system()
    result_all = _run(elements, counts, energies)
    stable = np.flatnonzero((result_all.e_above_hull == 0) & ((counts > 0).sum(axis=1) > 1))
    assert stable.size
    failed = energies.copy()
    failed[stable[0]] = np.nan
    failed[-3] = np.nan
    result = _run(elements, counts, failed)
    for i in (stable[0], len(energies) - 3):
        assert np.isnan(result.formation_energy[i]) and np.isnan(result.e_above_hull[i])
        assert result.decomposition[i] == ""
    rows = np.flatnonzero(np.isfinite(failed))
    _compare_with_pymatgen(result, _entries(elements, counts, failed, rows), rows)
    all_nan = _run(elements, counts, np.full(len(energies), np.nan))
    assert np.isnan(all_nan.e_above_hull).all() and all_nan.chemical_system == ""


def test_reference_entries_from_a_file_replace_campaign_references(tmp_path):
    elements, counts, energies, _ = _four_element_system()
    is_reference = np.zeros(len(energies), bool)
    is_reference[:5] = True  # the campaign's elemental rows (incl. the Sm polymorph)
    # file references: other energies than the campaign's, plus a compound and an unrelated element
    refs = [ComputedEntry("Ti2", -15.6, entry_id="ref-Ti"), ComputedEntry("Fe", -8.3, entry_id="ref-Fe"),
            ComputedEntry("Co4", -28.6, entry_id="ref-Co"), ComputedEntry("Sm", -4.8, entry_id="ref-Sm"),
            ComputedEntry("SmCo5", 6 * -7.0, entry_id="ref-SmCo5"), ComputedEntry("O2", -9.8, entry_id="ref-O")]
    path = tmp_path / "refs.json"
    path.write_text(json.dumps([e.as_dict() for e in refs], cls=MontyEncoder))
    loaded = load_reference_entries(path)
    assert [e.entry_id for e in loaded] == [e.entry_id for e in refs]

    result = _run(elements, counts, energies, is_reference=is_reference, reference_entries=loaded)
    assert result.chemical_system == "Co-Fe-Sm-Ti"  # O from the file is ignored
    rows = np.flatnonzero(~is_reference)
    entries = _entries(elements, counts, energies, rows)
    pd = _compare_with_pymatgen(result, entries + loaded[:5], rows)
    # the campaign's elemental rows are measured against the file's references, not part of the hull
    assert result.e_above_hull[1] == pytest.approx(-8.4 + 8.3)
    assert result.formation_energy[3] == pytest.approx(-4.7 + 4.8)
    assert pd.el_refs[Composition("Fe").elements[0]].entry_id == "ref-Fe"


@pytest.mark.parametrize("content, message", [
    ("not json at all", "not a JSON file"),
    ('{"energy": 1}', "expected a JSON list"),
    ("[]", "empty"),
    ('[{"energy": -1.0, "composition": {"Fe": 1}}]', "item 0 is a dict, not a ComputedEntry"),
])
def test_bad_reference_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad_refs.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as info:
        load_reference_entries(path)
    assert "bad_refs.json" in str(info.value)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        load_reference_entries(tmp_path / "missing.json")


def test_mp_elemental_references():
    entries = mp_elemental_references(["Sm", "Fe", "N"])
    assert [e.composition.reduced_formula for e in entries] == ["Sm", "Fe", "N2"]
    fe = entries[1]
    assert fe.entry_id == "mp-13" and fe.energy_per_atom == pytest.approx(-8.47, abs=0.01)
    assert entries[0].parameters["potcar_symbols"] == ["PBE Sm_3"]  # 4f in the core
    with pytest.raises(ValueError, match="Og"):
        mp_elemental_references(["Fe", "Og"])


def test_many_rows_grouped_by_composition_agree_with_pymatgen():
    """Thousands of rows over a few hundred compositions: grouped results equal per-entry pymatgen."""
    elements = ["Ti", "Fe", "Co", "Sm"]
    rng = np.random.default_rng(3)
    n = 3000
    counts = np.column_stack([rng.integers(0, 3, n), rng.integers(0, 12, n), rng.integers(0, 6, n),
                              rng.integers(1, 3, n)])
    counts[:4] = np.eye(4, dtype=np.int64) * 2
    mu = np.array([-7.9, -8.4, -7.1, -4.7])
    energies = counts @ mu + counts.sum(axis=1) * rng.normal(-0.05, 0.1, n)
    result = _run(elements, counts, energies)
    pick = rng.choice(n, 300, replace=False)
    pd = PhaseDiagram(_entries(elements, counts, energies))
    for i in pick:
        entry = ComputedEntry(Composition(dict(zip(elements, counts[i].tolist()))), float(energies[i]))
        _, e_hull = pd.get_decomp_and_e_above_hull(entry, allow_negative=True)
        assert result.e_above_hull[i] == pytest.approx(e_hull, abs=TOL)


@pytest.mark.parametrize("where", ["top", "nested"])
def test_reference_file_cannot_make_tansaku_import_a_module(tmp_path, monkeypatch, where):
    """A reference-entries file is data: a module it names is refused, never imported (monty would)."""
    marker = tmp_path / "imported.txt"
    (tmp_path / "evil_refs_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass ComputedEntry: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = ComputedEntry("Fe", -8.3, entry_id="ref-Fe").as_dict()
    if where == "top":
        entry["@module"] = "evil_refs_module"
    else:
        entry["energy_adjustments"] = [{"@module": "evil_refs_module", "@class": "ComputedEntry"}]
    path = tmp_path / "refs.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(ValueError, match="refs.json: item 0"):
        load_reference_entries(path)
    assert not marker.exists()
