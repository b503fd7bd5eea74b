"""Campaign files: the examples parse; every bad file gives an error naming the key and the problem."""

from pathlib import Path

import pytest

from tansaku.calculators import CalculatorSpec
from tansaku.calculators.builtin import make_emt
from tansaku.workflows.campaign import CampaignError, load_campaign, parse_campaign
from tansaku.workflows.plan import UnsupportedElementsError, make_plan

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

GOOD = """
[campaign]
name = "t"
output = "t.h5"
[calculator]
name = "emt"
[[prototypes]]
prototype = "L12"
sites = { "1a" = "Au", "3c" = "Cu" }
"""


@pytest.mark.parametrize("name", ["emt_alloys.toml", "low_re_magnets.toml"])
def test_examples_parse(name):
    campaign = load_campaign(EXAMPLES / name)
    assert campaign.decorations and campaign.text.startswith("#")


def test_defaults_and_relative_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    campaign = parse_campaign(GOOD)
    assert campaign.output == tmp_path / "t.h5"
    assert campaign.execution.executor == "dask" and campaign.relax.optimizer == "FIRE"
    assert campaign.references.elements == "auto"


def edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


BAD = {
    "unknown element": (edit('"3c" = "Cu"', '"3c" = "Cx"'), r"prototypes\[0\]\.sites\.3c: unknown element 'Cx'"),
    "unknown site": (edit('"3c" = "Cu"', '"9z" = "Cu"'), r"prototypes\[0\]\.sites\.9z: unknown site '9z' of L12"),
    "unknown prototype": (edit('"L12"', '"L13"'), r"prototypes\[0\]\.prototype: .*L13"),
    "unknown calculator": (edit('name = "emt"', 'name = "vasp5"'), r"calculator: unknown calculator 'vasp5'"),
    "unknown calculator parameter": (edit('name = "emt"', 'name = "emt"\nparams = { cutoff = 3 }'),
                                     r"calculator: .*unknown parameter\(s\) \['cutoff'\]"),
    "missing calculator": (edit('[calculator]\nname = "emt"\n', ''), r"calculator: missing required key"),
    "missing name": (edit('name = "t"\n', ''), r"campaign\.name: missing required key"),
    "wrong type": (GOOD + '[relax]\nfmax = "small"\n', r"relax\.fmax: expected float, got str 'small'"),
    "negative fmax": (GOOD + '[relax]\nfmax = -0.1\n', r"relax\.fmax: must be > 0"),
    "bad optimizer": (GOOD + '[relax]\noptimizer = "Newton"\n', r"relax\.optimizer: unknown optimizer 'Newton'"),
    "unknown key": (GOOD + '[relax]\nfmaxx = 0.1\n', r"relax\.fmaxx: unknown key"),
    "bad executor": (GOOD + '[execution]\nexecutor = "spark"\n', r"execution\.executor: unknown executor 'spark'"),
    "bad supercell": (edit('sites =', 'supercell = [2, 0, 1]\nsites ='), r"prototypes\[0\]\.supercell: expected three"),
    "fraction > 1": (GOOD + '[[prototypes.variants]]\nsubstitute = { "3c" = { Ni = 1.5 } }\n',
                     r"variants\[0\]\.substitute\.3c\.Ni: fraction 1.5 is > 1"),
    "unknown variant site": (GOOD + '[[prototypes.variants]]\nsubstitute = { "8i" = "Co" }\n',
                             r"variants\[0\]\.substitute\.8i: unknown site \(or element\) '8i' of L12"),
    "interstitial on a prototype without": (GOOD + '[[prototypes.variants]]\ninterstitial = { "3c" = "N" }\n',
                                            r"variants\[0\]\.interstitial\.3c: unknown interstitial site"),
    "empty variant": (GOOD + '[[prototypes.variants]]\n', r"variants\[0\]: a variant needs"),
    "invalid toml": (GOOD + "[relax\n", r"invalid TOML.*line"),
    "no prototypes": ('[campaign]\nname = "t"\n[calculator]\nname = "emt"\n', r"prototypes: at least one"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_campaigns_name_key_and_problem(case):
    text, pattern = BAD[case]
    with pytest.raises(CampaignError, match=pattern) as info:
        parse_campaign(text, source="bad.toml")
    assert str(info.value).startswith("bad.toml: ")


def test_unrepresentable_fraction_is_reported_at_planning():
    text = GOOD + '[[prototypes.variants]]\nsubstitute = { "3c" = { Ni = 0.5 } }\n'
    with pytest.raises(CampaignError, match=r"bad.toml: prototypes\[0\]\.variants\[0\].*1.5 sites, not a whole"):
        make_plan(parse_campaign(text, source="bad.toml"))


def test_missing_required_calculator_parameter(calculator_registry):
    calculator_registry(CalculatorSpec(name="needs-param", factory=lambda cutoff: make_emt(), elements=frozenset({"Cu"}),
                            package="ase", required=("cutoff",)))
    with pytest.raises(CampaignError, match=r"calculator: calculator 'needs-param': missing required.*cutoff"):
        parse_campaign(edit('name = "emt"', 'name = "needs-param"'), source="bad.toml")


def test_unsupported_elements_are_rejected_before_any_task_with_the_candidates():
    text = edit('"3c" = "Cu"', '"3c" = ["Cu", "Fe"]')
    with pytest.raises(UnsupportedElementsError) as info:
        make_plan(parse_campaign(text))
    message = str(info.value)
    assert "does not support Fe" in message and "Fe3Au L12" in message and "AuCu3" not in message


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CampaignError, match="cannot read campaign file"):
        load_campaign(tmp_path / "nope.toml")


@pytest.mark.parametrize("table, key, value", [("relax", "fmax", "nan"), ("relax", "fmax", "inf"),
                                                ("relax", "fmax", "-inf"), ("execution", "flush_seconds", "nan")])
def test_non_finite_numbers_are_refused_with_their_key(table, key, value):
    with pytest.raises(CampaignError, match=rf"c.toml: {table}.{key}: expected a finite number"):
        parse_campaign(GOOD + f"[{table}]\n{key} = {value}\n", source="c.toml")
