"""The query engine on real store files: grammar, every operator, element filters, sort/limit/columns, errors."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest

from tansaku.results import Store, iter_records, read_columns, read_record, write_derived
from tansaku.results.query import Filter, QueryError, format_table, parse_filter, query, to_structures
from synthetic import synthetic_record

N_RANKED = 150  # rows the derived columns cover
N = 160  # committed rows


def _status(k: int) -> str:
    return "failed" if k % 7 == 3 else "ok"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """160 rows: failed rows (some rewritten later, their atoms moved to the end of /atoms), an empty
    structure, derived columns for the first 150 rows only."""
    path = tmp_path_factory.mktemp("query") / "q.h5"
    with Store.open(path, campaign_text="query tests") as s:
        s.append([synthetic_record(k, _status(k)) for k in range(100)])
        s.append([synthetic_record(100, natoms=0)] + [synthetic_record(k, _status(k)) for k in range(101, N_RANKED)])
        s.append([synthetic_record(k, natoms=2) for k in (3, 17, 24)])  # failed rows rewritten ok, new atoms
    k = np.arange(N_RANKED)
    rng = np.random.default_rng(7)
    e_hull = np.round(rng.exponential(0.08, N_RANKED), 4)
    e_hull[k % 11 == 0] = np.nan
    e_hull[5] = e_hull[6] = 0.05  # ties and a value exactly on a bound
    write_derived(path, {
        "e_above_hull": e_hull,
        "mu0_ms": np.round(rng.uniform(0.0, 2.0, N_RANKED), 3),
        "rank": np.where(k % 4 == 0, 0, k),
        "on_hull": e_hull == 0.05,
        "decomposition": np.array(["" if i % 3 else f"SmCo5 + Fe{i % 5}" for i in range(N_RANKED)]),
    }, {"calculator": "emt"})
    with Store.open(path) as s:  # appended after the ranking: derived values padded
        s.append([synthetic_record(k, _status(k)) for k in range(N_RANKED, N)])
    return path


@pytest.fixture(scope="module")
def cols(store):
    return read_columns(store)


@pytest.fixture(scope="module")
def element_sets(store):
    return [set(int(z) for z in rec.numbers) for rec in iter_records(store)]


def rows(df: pd.DataFrame) -> list[int]:
    return df.index.tolist()


def where(mask) -> list[int]:
    return np.flatnonzero(mask).tolist()


# ---------------------------------------------------------------------------------------------- grammar


@pytest.mark.parametrize("text, column, op, value", [
    ("e_above_hull <= 0.05", "e_above_hull", "<=", 0.05),
    ("mu0_ms>=1.5", "mu0_ms", ">=", 1.5),
    ("energy < -2", "energy", "<", -2),
    ("fmax > 1e-3", "fmax", ">", 1e-3),
    ("fmax > .5E+2", "fmax", ">", 50.0),
    ("volume >= inf", "volume", ">=", math.inf),
    ("steps == 12", "steps", "==", "12"),
    ("prototype == ThMn12", "prototype", "==", "ThMn12"),
    ('label == "Fe₂Co-3 α✓ é"', "label", "==", "Fe₂Co-3 α✓ é"),
    ("label != 'a \"b\"'", "label", "!=", 'a "b"'),
    (r'label == "say \"hi\""', "label", "==", 'say "hi"'),
    ("decomposition == SmCo5+Fe,Co", "decomposition", "==", "SmCo5+Fe,Co"),
    ("label ~ co-1", "label", "~", "co-1"),
    ("prototype in ThMn12, B2 ,'L1 0'", "prototype", "in", ("ThMn12", "B2", "L1 0")),
    ("kind IN candidate", "kind", "in", ("candidate",)),
    ("elements ⊇ Sm,Co", "elements", "has", ("Sm", "Co")),
    ("elements has Sm, Co Sm", "elements", "has", ("Sm", "Co")),
    ("elements⊆Sm,Fe,Co,Ti,N", "elements", "within", ("Sm", "Fe", "Co", "Ti", "N")),
    ("elements within Fe", "elements", "within", ("Fe",)),
    ("elements !has Sm", "elements", "!has", ("Sm",)),
])
def test_parse_filter(text, column, op, value):
    flt = parse_filter(text)
    assert (flt.column, flt.op, flt.value) == (column, op, value)
    assert flt == Filter(column, op, value) and flt.text == text.strip()
    assert type(flt.value) is type(value)


@pytest.mark.parametrize("text, message", [
    ("mu0_ms >= 1.5x", 'could not read number "1.5x" in filter "mu0_ms >= 1.5x"'),
    ("energy < 1 and fmax < 2", 'has spaces'),
    ("energy = 3", 'bad operator "=" in filter "energy = 3": did you mean ==?'),
    ("energy => 3", 'bad operator "=>"'),
    ("energy <> 3", 'bad operator "<>"'),
    ("energy like 3", 'bad operator "like"'),
    ("energy", 'missing operator after energy in filter "energy"'),
    ("energy <=", 'missing value in filter "energy <="'),
    ("energy <= nan", "NaN cannot be compared with"),
    ("energy == NaN", None),  # == keeps text until the column type is known (checked by query)
    ("label < 'abc'", '< compares numbers, not text "abc"'),
    ("label == Fe Co", 'value "Fe Co" has spaces: put it in quotes'),
    ('label == "Fe Co', 'unclosed quote'),
    ('label == "Fe" Co', 'unexpected "Co" after the value'),
    ("kind in a,,b", "empty item in a list"),
    ("elements has Sm,Xx", 'unknown element "Xx" in filter "elements has Sm,Xx"'),
    ("elements has co", 'unknown element "co" in filter "elements has co": did you mean Co?'),
    ("elements has", "missing element symbols"),
    ("elements == Sm", '"elements" takes has'),
    ("label has Sm", '"has" applies to elements only'),
    ("3energy < 1", "starts with a column name"),
    ("", "starts with a column name"),
])
def test_parse_errors(text, message):
    if message is None:
        assert parse_filter(text).value == "NaN"
        return
    with pytest.raises(QueryError, match=re_escape(message)):
        parse_filter(text)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


# -------------------------------------------------------------------------------------------- operators


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
@pytest.mark.parametrize("column, value", [
    ("e_above_hull", 0.05), ("energy", -10.25), ("steps", 40), ("mu0_ms", 1), ("rank", 0), ("natoms", 3),
])
def test_numeric_operators(store, cols, op, column, value):
    values = cols[column]
    expected = {"<": values < value, "<=": values <= value, ">": values > value, ">=": values >= value,
                "==": values == value, "!=": values != value}[op]
    if values.dtype.kind == "f":
        expected &= ~np.isnan(values)  # missing values never match, not even !=
    got = query(store, [f"{column} {op} {value}"])
    assert rows(got) == where(expected)
    assert rows(query(store, [Filter(column, op, value)])) == where(expected)  # a Filter built in code


def test_numeric_in_and_padding(store, cols):
    assert rows(query(store, ["steps in 1, 2,3,150"])) == where(np.isin(cols["steps"], [1, 2, 3, 150]))
    assert rows(query(store, ["e_above_hull in 0.05,-1"])) == [5, 6]
    padded = query(store, ["rank == -1"])  # integer padding of rows appended after the ranking
    assert rows(padded) == list(range(N_RANKED, N))
    assert rows(query(store, ["e_above_hull >= -inf"])) == where(~np.isnan(cols["e_above_hull"]))
    assert max(rows(query(store, ["e_above_hull >= 0"]))) < N_RANKED


def test_text_operators(store, cols):
    assert rows(query(store, ["prototype == B2"])) == where(cols["prototype"] == "B2")
    assert rows(query(store, ["prototype != B2"])) == where(cols["prototype"] != "B2")
    assert rows(query(store, ['label == "Fe₂Co-3 α✓ é"'])) == [3]
    assert rows(query(store, ["label ~ co-1"])) == where(np.char.find(np.char.lower(cols["label"]), "co-1") >= 0)
    assert rows(query(store, ["label ~ '3 Α✓ É'"])) == where(np.char.endswith(cols["label"], "3 α✓ é"))
    assert rows(query(store, ["kind in reference,competing"])) == where(cols["kind"] != "candidate")
    assert rows(query(store, ["status == failed"])) == where(cols["status"] == "failed")
    assert rows(query(store, ["decomposition ~ smco5"])) == [i for i in range(N_RANKED) if i % 3 == 0]
    assert rows(query(store, ['decomposition == ""'])) == [i for i in range(N) if i % 3 or i >= N_RANKED]
    assert rows(query(store, ["task_id == 1e3"])) == []  # text stays text, even if it looks like a number
    assert rows(query(store, ["label == " + "x" * 300])) == []  # longer than the stored width


def test_boolean_operators(store, cols):
    assert rows(query(store, ["converged == true"])) == where(cols["converged"])
    assert rows(query(store, ["converged != yes"])) == where(~cols["converged"])
    assert rows(query(store, ["converged in 0"])) == where(~cols["converged"])
    assert rows(query(store, ["on_hull == 1"])) == [5, 6]
    assert rows(query(store, [Filter("converged", "==", False)])) == where(~cols["converged"])


def test_filters_are_anded(store, cols):
    got = query(store, ["e_above_hull <= 0.1", "mu0_ms >= 0.8", "kind == candidate", "status == ok"])
    e, m = cols["e_above_hull"], cols["mu0_ms"]
    expected = (e <= 0.1) & (m >= 0.8) & (cols["kind"] == "candidate") & (cols["status"] == "ok")
    assert rows(got) == where(expected) and len(got) > 3
    assert rows(query(store, [])) == list(range(N))
    assert rows(query(store, "prototype == B2")) == where(cols["prototype"] == "B2")  # one text is one filter


@pytest.mark.parametrize("text, test", [
    ("elements has Fe,Co", lambda s: {26, 27} <= s),
    ("elements ⊇ H", lambda s: 1 in s),
    ("elements has Sm", lambda s: 62 in s),
    ("elements within Sm,Fe,Co,Ti,N", lambda s: s <= {62, 26, 27, 22, 7}),
    ("elements ⊆ H,He,Li,Be,B,C", lambda s: s <= {1, 2, 3, 4, 5, 6}),
    ("elements !has Fe,Co", lambda s: not s & {26, 27}),
    ("elements !has H", lambda s: 1 not in s),
])
def test_element_filters_match_a_python_loop(store, element_sets, text, test):
    expected = [i for i, s in enumerate(element_sets) if test(s)]
    got = rows(query(store, [text]))
    assert got == expected
    assert 0 < len(got) < N or text.startswith("elements within") or "⊆" in text


def test_element_filters_edge_cases(store, element_sets, cols):
    assert element_sets[100] == set()  # the empty structure: contains nothing, lies within anything
    assert 100 in rows(query(store, ["elements within Fe"]))
    assert 100 in rows(query(store, ["elements !has Fe"])) and 100 not in rows(query(store, ["elements has H"]))
    assert cols["natoms"][3] == 2  # a rewritten row whose atoms moved to the end of /atoms
    assert rows(query(store, ["elements has Li,Be", "natoms == 2"])) == [
        i for i, s in enumerate(element_sets) if {3, 4} <= s and cols["natoms"][i] == 2]
    combined = query(store, ["elements has Fe", "elements !has Co", "e_above_hull < 0.2"])
    assert rows(combined) == [i for i, s in enumerate(element_sets)
                              if 26 in s and 27 not in s and cols["e_above_hull"][i] < 0.2]
    assert "elements" not in combined


# ------------------------------------------------------------------------------ sort, limit and columns


def test_default_columns(store):
    df = query(store, ["mu0_ms >= 1.5", "elements !has U"])
    assert list(df.columns) == ["task_id", "label", "formula", "status", "mu0_ms",
                                "e_above_hull", "rank", "on_hull", "decomposition"]
    assert df.index.name == "row"
    r = df.index[0]
    assert df.loc[r, "task_id"] == f"t{r:09d}" and df.loc[r, "label"] == synthetic_record(r).label
    assert isinstance(df.loc[r, "formula"], str)


@pytest.mark.parametrize("where", [["mu0_ms >= 1.8"], ["steps == 7"], [], ["elements has H"]])
def test_output_values_are_the_stored_ones(store, cols, where):
    """Sparse selections are read point by point, dense ones whole: both give the stored values."""
    df = query(store, where, sort="-energy", columns=["formula", "energy", "rank", "decomposition", "on_hull"])
    assert len(df) > 0
    for name in df.columns:
        assert np.array_equal(df[name].to_numpy(), cols[name][df.index.to_numpy()],
                              equal_nan=cols[name].dtype.kind == "f"), name


def test_sort_limit_and_columns(store, cols):
    e = cols["e_above_hull"]
    df = query(store, sort="e_above_hull")
    values = df["e_above_hull"].to_numpy()
    finite = values[~np.isnan(values)]
    assert np.all(np.diff(finite) >= 0) and np.isnan(values[len(finite):]).all()  # NaN last
    assert len(finite) == np.count_nonzero(~np.isnan(e))
    i5, i6 = rows(df).index(5), rows(df).index(6)
    assert i6 == i5 + 1  # ties keep row order
    down = query(store, sort="-e_above_hull")
    assert rows(down) == rows(query(store, sort="e_above_hull", descending=True))
    v = down["e_above_hull"].to_numpy()
    assert np.all(np.diff(v[~np.isnan(v)]) <= 0) and np.isnan(v[-1])  # NaN last also descending
    assert rows(down).index(6) == rows(down).index(5) + 1

    top = query(store, ["status == ok"], sort="-mu0_ms", limit=5, columns=["mu0_ms", "energy"])
    assert list(top.columns) == ["task_id", "label", "mu0_ms", "energy"]
    ok = np.flatnonzero((cols["status"] == "ok") & ~np.isnan(cols["mu0_ms"]))
    expected = ok[np.argsort(-cols["mu0_ms"][ok], kind="stable")][:5]
    assert rows(top) == expected.tolist()
    assert np.array_equal(top["energy"].to_numpy(), cols["energy"][expected])

    assert rows(query(store, limit=3)) == [0, 1, 2]
    assert len(query(store, limit=0)) == 0
    bare = query(store, ["steps > 100"], columns=["steps"], ids=False)
    assert list(bare.columns) == ["steps"] and rows(bare) == where(cols["steps"] > 100)
    assert list(query(store, columns=[], ids=False).columns) == []
    by_text = query(store, sort="-label", columns=["label"], ids=False)
    assert by_text["label"].tolist() == sorted(cols["label"].tolist(), key=lambda t: t.encode(), reverse=True)
    by_bool = query(store, sort="converged", limit=3)
    assert not by_bool["converged"].any()
    assert list(query(store, columns="energy, natoms").columns) == ["task_id", "label", "energy", "natoms"]


def test_query_an_open_file_and_while_a_writer_appends(store, tmp_path):
    from tansaku.results import open_for_reading

    with open_for_reading(store) as f:
        assert len(query(f, ["mu0_ms > 1"])) == len(query(store, ["mu0_ms > 1"]))
    path = tmp_path / "live.h5"
    with Store.open(path) as s:
        s.append([synthetic_record(k) for k in range(5)])
        assert rows(query(path, ["steps >= 2"], sort="-steps")) == [4, 3, 2]
        s.append([synthetic_record(5)])
        assert len(query(path)) == 6
    empty = tmp_path / "empty.h5"
    Store.open(empty).close()
    df = query(empty, ["elements has Fe", "energy < 0"], sort="energy")
    assert len(df) == 0 and list(df.columns) == ["task_id", "label", "formula", "status", "energy"]


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("kwargs, message", [
    (dict(where=["mu0ms >= 1.5"]), 'unknown column "mu0ms" in filter "mu0ms >= 1.5": did you mean mu0_ms?'),
    (dict(where=["energyy < 1"]), "did you mean energy"),
    (dict(where=["zzz < 1"]), "columns are task_id, candidate_id"),
    (dict(where=["zzz < 1"]), "derived columns e_above_hull, mu0_ms, rank"),
    (dict(where=["energy = 1"]), 'bad operator "="'),
    (dict(where=["energy == 1.5x"]), 'could not read number "1.5x" in filter "energy == 1.5x"'),
    (dict(where=["steps in 1,two"]), 'could not read number "two" in filter "steps in 1,two"'),
    (dict(where=["energy != nan"]), "NaN cannot be compared with"),
    (dict(where=["elements has Sm,Qq"]), 'unknown element "Qq"'),
    (dict(where=["label < 3"]), '"label" is text: < compares numbers (use == != ~ or in) in filter "label < 3"'),
    (dict(where=["energy ~ 3"]), '"energy" is not text: ~ searches text'),
    (dict(where=["converged > 0"]), '"converged" is true/false'),
    (dict(where=["converged == maybe"]), 'could not read "maybe" as a boolean'),
    (dict(where=["cell == 3"]), '"cell" holds several values per row'),
    (dict(sort="mu0"), 'unknown sort column "mu0": did you mean mu0_ms'),
    (dict(columns=["energy", "formul"]), 'unknown output column "formul": did you mean formula'),
    (dict(columns=["stress"]), '"stress" holds several values per row'),
    (dict(limit=-1), "limit must be a whole number >= 0"),
    (dict(limit=2.5), "limit must be a whole number >= 0"),
])
def test_query_errors(store, kwargs, message):
    with pytest.raises(QueryError, match=re_escape(message)):
        query(store, **kwargs)


def test_query_error_is_a_value_error():
    assert issubclass(QueryError, ValueError)


# ------------------------------------------------------------------------------------ structures, output


def test_to_structures(store):
    atoms = to_structures(store, ["t000000004", "t000000017", "t000000012"])
    _, expected = read_record(store, "t000000017")
    assert [a.info["task_id"] for a in atoms] == ["t000000004", "t000000017", "t000000012"]
    assert np.allclose(atoms[1].positions, expected.positions) and len(atoms[1]) == 2
    assert atoms[0].get_potential_energy() == pytest.approx(-1.0)
    structures = to_structures(store, ["t000000004", "t000000017"], kind="pymatgen")
    assert len(structures[0]) == 5 and np.allclose(structures[0].cart_coords, atoms[0].positions)
    assert np.allclose(structures[0].lattice.matrix, atoms[0].cell[:])
    assert [str(sp) for sp in structures[1].species] == atoms[1].get_chemical_symbols()
    many = [f"t{k:09d}" for k in range(0, N, 2)]
    assert [a.info["task_id"] for a in to_structures(store, many)] == many  # the bulk lookup path
    with pytest.raises(ValueError, match="kind"):
        to_structures(store, ["t000000004"], kind="cif")
    from tansaku.results import RecordNotFoundError

    with pytest.raises(RecordNotFoundError):
        to_structures(store, ["nope"])


def test_format_table(store):
    df = query(store, ["rank > 0", "e_above_hull <= 0.05"], sort="e_above_hull", limit=4,
               columns=["e_above_hull", "rank", "on_hull", "decomposition"])
    df.loc[df.index[0], "e_above_hull"] = np.nan
    table = format_table(df, "table")
    lines = table.splitlines()
    assert lines[0].split() == ["task_id", "label", "e_above_hull", "rank", "on_hull", "decomposition"]
    assert set(lines[1].replace(" ", "")) == {"-"} and len(lines) == 2 + len(df)
    assert "Fe₂Co-" in lines[2] and "nan" in lines[2]
    assert lines[2].index("nan") + 3 == lines[1].split("  ")[0].__len__() + 2 + len(lines[1].split("  ")[1]) + 2 + \
        len(lines[1].split("  ")[2])  # numbers right-aligned under their header

    records = json.loads(format_table(df, "json"))
    assert len(records) == len(df) and records[0]["e_above_hull"] is None
    assert records[1]["task_id"] == df["task_id"].iloc[1] and records[1]["rank"] == int(df["rank"].iloc[1])
    assert records[1]["label"] == df["label"].iloc[1] and isinstance(records[1]["on_hull"], bool)

    back = pd.read_csv(io.StringIO(format_table(df, "csv")))
    assert back["task_id"].tolist() == df["task_id"].tolist() and np.isnan(back["e_above_hull"].iloc[0])
    assert np.allclose(back["e_above_hull"].iloc[1:], df["e_above_hull"].iloc[1:])
    assert format_table(df.iloc[:0], "table").count("\n") == 2
    assert json.loads(format_table(df.iloc[:0], "json")) == []
    with pytest.raises(QueryError, match="unknown output format"):
        format_table(df, "xml")
