"""One filter grammar (tansaku/filters.py) for campaign [ranking].filters, `tansaku rank --filter` and
`tansaku query --where`: the same parse, the same errors and the same rows selected."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import synthetic_record

from tansaku.filters import Filter, FilterError, column_mask, parse_filter
from tansaku.results import Store, write_derived
from tansaku.results.atoms import read_atom_numbers
from tansaku.results.query import QueryError, query
from tansaku.screening.elements import composition_matrix
from tansaku.screening.rank import Objective, RankingSpec, filter_mask, rank
from tansaku.workflows.campaign import CampaignError, Ranking, parse_ranking_table
from tansaku.workflows.ranking import ranking_with_overrides

N = 40


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """N records with derived columns as a ranking writes them (NaN where unknown)."""
    path = tmp_path_factory.mktemp("filters") / "f.h5"
    with Store.open(path, campaign_text="filter tests") as s:
        s.append([synthetic_record(k) for k in range(N)])
    rng = np.random.default_rng(3)
    e_hull = np.round(rng.exponential(0.08, N), 3)
    e_hull[::7] = np.nan
    e_hull[3] = e_hull[4] = 0.05
    write_derived(path, {"e_above_hull": e_hull, "mu0_ms": np.round(rng.uniform(0, 2, N), 2),
                         "decomposition": np.array([f"SmCo5 + Fe{k % 3}" if k % 2 else "" for k in range(N)])})
    return path, e_hull


BAD_FILTERS = [
    ("mu0_ms >= 1.5x", 'could not read number "1.5x" in filter "mu0_ms >= 1.5x"'),
    ("e_above_hull = 0.1", 'bad operator "=" in filter "e_above_hull = 0.1": did you mean ==?'),
    ("e_above_hull => 0.1", 'bad operator "=>" in filter "e_above_hull => 0.1"'),
    ("e_above_hull <=", 'missing value in filter "e_above_hull <="'),
    ("e_above_hull <= nan", "NaN cannot be compared with (missing values never match a filter)"),
    ("mu0_ms", 'missing operator after mu0_ms in filter "mu0_ms"'),
    ("mu0_ms >= 1 and density < 8", 'has spaces: put it in quotes'),
]


@pytest.mark.parametrize("text, message", BAD_FILTERS)
def test_a_bad_filter_gets_the_same_message_everywhere(store, text, message):
    path, _ = store
    with pytest.raises(FilterError) as parsed:
        parse_filter(text)
    assert message in str(parsed.value)
    with pytest.raises(QueryError) as queried:  # tansaku query --where
        query(path, where=[text])
    assert str(queried.value) == str(parsed.value)
    with pytest.raises(CampaignError) as campaign:  # [ranking].filters of a campaign file
        parse_ranking_table({"filters": [text]}, source="c.toml")
    assert str(campaign.value) == f"c.toml: ranking.filters[0]: {parsed.value}"
    with pytest.raises(CampaignError) as command_line:  # tansaku rank --filter
        ranking_with_overrides(Ranking(), None, [text], None)
    assert str(command_line.value) == f"command line: ranking.filters[0]: {parsed.value}"


def test_unknown_columns_are_named_with_a_suggestion(store):
    path, _ = store
    with pytest.raises(QueryError, match='unknown column "mu0ms" in filter "mu0ms >= 1": did you mean mu0_ms'):
        query(path, where=["mu0ms >= 1"])
    with pytest.raises(CampaignError, match=r'ranking.filters\[0\]: unknown column "mu0ms" in filter "mu0ms >= 1": '
                                            r"did you mean mu0_ms\? rankable columns are e_above_hull"):
        parse_ranking_table({"filters": ["mu0ms >= 1"]}, source="c.toml")


@pytest.mark.parametrize("text", ["e_above_hull <= 0.05", "e_above_hull != 0.05", "e_above_hull in 0.05,0.1",
                                  "mu0_ms > 1", "mu0_ms == 1.5", "e_above_hull < inf", "decomposition ~ sMcO",
                                  "decomposition == ''", "decomposition in 'SmCo5 + Fe1',x"])
def test_ranking_and_query_select_the_same_rows(store, text):
    """The ranking's hard filters evaluate a filter as a query does (NaN never matches)."""
    path, _ = store
    table = query(path, columns=["e_above_hull", "mu0_ms", "decomposition"], ids=False)
    columns = {c: table[c].to_numpy() for c in table.columns}
    flt = parse_filter(text)
    selected = np.flatnonzero(filter_mask(columns, [flt], N))
    assert list(selected) == list(query(path, where=[text]).index)
    assert 0 < len(selected) < N or text.startswith("mu0_ms ==")


@pytest.mark.parametrize("text", ["elements has Fe", "elements has Fe,Co", "elements within H,He,Li,Be,B,C,N,O",
                                  "elements !has H", "elements has Og"])
def test_element_filters_select_the_same_rows_in_ranking_and_query(store, text):
    """Ranking tests a composition matrix, queries the stored atoms: the same rows either way."""
    path, _ = store
    composition = composition_matrix(*read_atom_numbers(path))
    flt = parse_filter(text)
    selected = np.flatnonzero(filter_mask({}, [flt], N, composition))
    assert list(selected) == list(query(path, where=[text]).index)
    assert parse_ranking_table({"filters": [text]}, source="t").spec.filters == (flt,)  # allowed in a campaign


def test_ranking_filters_use_the_full_grammar():
    columns = {"e_above_hull": np.array([0.0, 0.02, np.nan, 0.3]), "mu0_ms": np.array([1.0, 1.6, 2.0, 1.2])}
    spec = parse_ranking_table({"objectives": {"e_above_hull": "min", "mu0_ms": "max"},
                                "filters": ["e_above_hull != 0.3", "mu0_ms in 1,1.6,2"]}, source="t").spec
    result = rank(columns, spec, np.ones(4, bool))
    assert list(result.passes_filters) == [True, True, False, False]  # NaN fails != as well
    assert [str(f) for f in spec.filters] == ["e_above_hull != 0.3", "mu0_ms in 1,1.6,2"]
    again = ranking_with_overrides(Ranking(spec), None, None, None)  # stored filters re-read as text
    assert again.spec.filters == spec.filters


def test_filters_built_in_code_print_as_text_that_parses_back():
    for flt in (Filter("e_above_hull", "<=", 0.1), Filter("prototype", "in", ("ThMn12", "Th 2Zn17")),
                Filter("label", "==", 'say "hi"')):
        assert parse_filter(str(flt)) == flt
    with pytest.raises(FilterError, match='bad operator "=>"'):
        Filter("mu0_ms", "=>", 1.0)


def test_text_and_element_misuse_is_refused_alike():
    with pytest.raises(FilterError, match='"decomposition" is text: < compares numbers'):
        column_mask(np.array(["a", "b"]), parse_filter("decomposition < 3"))
    with pytest.raises(FilterError, match="an element filter needs the compositions of the rows"):
        filter_mask({"mu0_ms": np.ones(2)}, [parse_filter("elements has Fe")], 2)
    with pytest.raises(KeyError, match="ranking needs column 'density'"):
        rank({"mu0_ms": np.ones(2)}, RankingSpec((Objective("mu0_ms", "max"),), (parse_filter("density > 1"),)),
             np.ones(2, bool))
