"""Deterministic synthetic Records, for tests and benchmarks of the store (a test helper, not part of the
installed package: tests import it as ``synthetic``, benchmarks put tests/ on sys.path first)."""

from __future__ import annotations

import dataclasses

import numpy as np

from tansaku.constants import KINDS, STATUS_OK
from tansaku.results.record import Record


def synthetic_record(k: int, status: str = STATUS_OK, natoms: int | None = None) -> Record:
    """Record number ``k``: every field is a function of (k, status, natoms), so a reader can verify it.

    Covers unicode text, magmoms absent (k % 3 == 0) or partly NaN (k % 5 == 1), mixed pbc, and, for a
    failed record, an error message of multi-byte characters longer than the stored 512 bytes.
    """
    n = 1 + k % 7 if natoms is None else natoms
    ok = status == STATUS_OK
    magmoms = None if k % 3 == 0 else np.linspace(-1.0, 2.0, n) + k * 1e-3
    if magmoms is not None and k % 5 == 1 and n > 1:  # all-NaN would read back as None
        magmoms[0] = np.nan
    cell = np.diag([3.0 + k % 5 * 0.1, 3.5, 4.0 + k * 1e-6])
    cell[1, 0] = 0.25
    return Record(
        task_id=f"t{k:09d}",
        candidate_id=f"cand-{k // 2}",
        kind=KINDS[k % 3],
        label=f"Fe₂Co-{k} α✓ é",
        formula=f"Fe{1 + k % 4}Co",
        prototype=("L1_0", "B2", "D0_3")[k % 3],
        parent=f"parent-{k // 10}",
        calculator="emt",
        stage="relax",
        status=status,
        numbers=1 + (k + np.arange(n)) % 90,
        positions=np.arange(3.0 * n).reshape(n, 3) * 0.5 + (k % 97) * 0.01,
        cell=cell,
        pbc=np.array([True, k % 2 == 0, True]),
        magmoms=magmoms,
        error="" if ok else f"RuntimeError #{k}: 収束しませんでした " * (1 + k % 40),
        energy=-0.25 * k if ok else float("nan"),
        energy_per_atom=-0.25 * k / max(n, 1) if ok else float("nan"),
        fmax=0.01 + k % 10 * 1e-3 if ok else float("nan"),
        stress=np.arange(6.0) * 1e-3 + k * 1e-6,
        volume=float(abs(np.linalg.det(cell))),
        magmom_total=float(np.nansum(magmoms)) if magmoms is not None else float("nan"),
        steps=k % 200 if ok else -1,
        converged=ok and k % 4 != 0,
        wall_time=0.1 * (k % 50),
        worker=f"node{k % 8}:{1000 + k}",
        finished_at=1.7e9 + k,
    )


def synthetic_batch(a: int, b: int, natoms: int = 26):
    """``pack([synthetic_record(k, natoms=natoms) for k in range(a, b)])`` (all "ok"), built column by column:
    ~50x faster, for benchmarks of 10^6 records (tests/test_store.py checks that both are equal)."""
    from tansaku.results.pack import Batch, _text_column
    from tansaku.results.schema import RECORD_COLUMN_BY_NAME, SCALAR_COLUMNS, STRING_COLUMNS

    k = np.arange(a, b)
    m, n = len(k), natoms
    texts = {
        "task_id": [f"t{i:09d}" for i in range(a, b)],
        "candidate_id": [f"cand-{i // 2}" for i in range(a, b)],
        "kind": [KINDS[i % 3] for i in range(a, b)],
        "label": [f"Fe₂Co-{i} α✓ é" for i in range(a, b)],
        "formula": [f"Fe{1 + i % 4}Co" for i in range(a, b)],
        "prototype": [("L1_0", "B2", "D0_3")[i % 3] for i in range(a, b)],
        "parent": [f"parent-{i // 10}" for i in range(a, b)],
        "calculator": ["emt"] * m,
        "stage": ["relax"] * m,
        "status": [STATUS_OK] * m,
        "worker": [f"node{i % 8}:{1000 + i}" for i in range(a, b)],
    }
    cell = np.zeros((m, 3, 3))
    cell[:, 0, 0], cell[:, 1, 1], cell[:, 2, 2] = 3.0 + k % 5 * 0.1, 3.5, 4.0 + k * 1e-6
    cell[:, 1, 0] = 0.25
    magmoms = np.linspace(-1.0, 2.0, n) + k[:, None] * 1e-3
    if n > 1:
        magmoms[k % 5 == 1, 0] = np.nan
    magmoms[k % 3 == 0] = np.nan
    total = np.nansum(magmoms, axis=1)
    total[k % 3 == 0] = np.nan
    scalars = {
        "energy": -0.25 * k, "energy_per_atom": -0.25 * k / max(n, 1), "fmax": 0.01 + k % 10 * 1e-3,
        "volume": np.abs(np.linalg.det(cell)), "magmom_total": total, "steps": k % 200,
        "converged": k % 4 != 0, "wall_time": 0.1 * (k % 50), "finished_at": 1.7e9 + k,
    }
    default = {f.name: f.default for f in dataclasses.fields(Record)}  # of the fields set above: none
    rows = {c.name: np.asarray(scalars[c.name], c.dtype) if c.name in scalars else np.full(m, default[c.name], c.dtype)
            for c in SCALAR_COLUMNS}
    rows |= {"stress": np.arange(6.0) * 1e-3 + k[:, None] * 1e-6, "cell": cell,
             "pbc": np.stack([np.ones(m, bool), k % 2 == 0, np.ones(m, bool)], axis=1),
             "natoms": np.full(m, n, np.int32)}
    text = {c.name: _text_column(tuple(texts.get(c.name, [default[c.name]] * m)), RECORD_COLUMN_BY_NAME[c.name])
            for c in STRING_COLUMNS}
    atoms = {"numbers": (1 + (k[:, None] + np.arange(n)) % 90).astype(np.int16).ravel(),
             "positions": (np.arange(3.0 * n).reshape(1, n, 3) * 0.5 + (k % 97)[:, None, None] * 0.01).reshape(-1, 3),
             "magmoms": magmoms.ravel()}
    return Batch(texts["task_id"], rows, atoms, text)


def record_differences(stored: Record, expected: Record, error_bytes: int = 512) -> list[str]:
    """Names of the fields where ``stored`` differs from ``expected`` (NaN equals NaN; ``error`` is
    compared after the store's truncation to ``error_bytes``)."""
    diffs = []
    for f in dataclasses.fields(Record):
        a, b = getattr(stored, f.name), getattr(expected, f.name)
        if f.name == "error" and len(b.encode()) > error_bytes:
            ok = a.endswith("…") and b.startswith(a[:-1]) and len(a.encode()) <= error_bytes
        elif a is None or b is None:
            ok = a is None and b is None
        elif isinstance(b, str):
            ok = a == b
        else:
            a, b = np.asarray(a), np.asarray(b)
            ok = a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        if not ok:
            diffs.append(f.name)
    return diffs


def smfe12_cells(count: int, seed: int = 0) -> list:
    """``count`` SmFe12-sized cells (26 atoms: the ThMn12 conventional cell, Sm2Fe24), each with 3
    random Fe -> Co and rattled by 0.03 Å: small distinct cells for batched ML relaxation."""
    from tansaku.screening.prototypes import build, get_prototype

    base, _ = build(get_prototype("ThMn12"), with_interstitials=False)
    rng, out = np.random.default_rng(seed), []
    for k in range(count):
        atoms = base.copy()
        symbols = np.array(atoms.get_chemical_symbols())
        symbols[rng.choice(np.flatnonzero(symbols == "Fe"), 3, replace=False)] = "Co"
        atoms.symbols = symbols
        atoms.rattle(0.03, seed=k)
        out.append(atoms)
    return out


CUAU_CAMPAIGN = """
[campaign]
name = "cuau"
output = "{output}"
[calculator]
name = "{calculator}"
[execution]
executor = "serial"
batch_size = 32
[[prototypes]]
prototype = "L12"
sites = {{ "1a" = ["Cu", "Au"], "3c" = ["Cu", "Au"] }}
distinct_elements = true
"""


def cuau_campaign(output, calculator: str = "emt", extra: str = "") -> str:
    """A 4-task EMT campaign text (Cu, Au, Cu3Au, CuAu3 on L12, serial): seconds to run; ``extra`` is
    appended (e.g. a [ranking] table)."""
    return CUAU_CAMPAIGN.format(output=output, calculator=calculator) + extra
