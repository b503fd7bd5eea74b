"""Named values shared by every layer: record kinds, record statuses, the largest atomic number.

A neutral leaf module (it imports nothing from tansaku), so that screening, calculators, results, hpc,
workflows and report can all use the same names without importing each other.
"""

from __future__ import annotations

# kind of a structure / record: what it is relaxed for
KIND_CANDIDATE = "candidate"  # generated from a prototype, ranked
KIND_REFERENCE = "reference"  # elemental reference (formation energies, the hull's corners)
KIND_COMPETING = "competing"  # a [[competing]] phase: on the hull, never ranked
KINDS = (KIND_CANDIDATE, KIND_REFERENCE, KIND_COMPETING)

# status of a stored record
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUSES = (STATUS_OK, STATUS_FAILED)

MAX_Z = 118  # largest atomic number (Og); ase.data.chemical_symbols has MAX_Z + 1 entries (0 = "X")
