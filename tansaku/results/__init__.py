"""HDF5 results store: one writer appends Records; readers see committed rows (docs/hdf5_schema.md)."""

from tansaku.results.derived import derived_columns, write_derived
from tansaku.results.errors import RecordNotFoundError, StoreError, StoreLockedError
from tansaku.results.read import (
    committed_rows,
    count_by,
    find_row,
    iter_records,
    open_for_reading,
    read_columns,
    read_record,
    read_table,
)
from tansaku.results.record import STATUS_FAILED, STATUS_OK, Record
from tansaku.results.schema import SCHEMA_VERSION
from tansaku.results.store import Store

__all__ = [
    "SCHEMA_VERSION",
    "STATUS_FAILED",
    "STATUS_OK",
    "Record",
    "RecordNotFoundError",
    "Store",
    "StoreError",
    "StoreLockedError",
    "committed_rows",
    "count_by",
    "derived_columns",
    "find_row",
    "iter_records",
    "open_for_reading",
    "read_columns",
    "read_record",
    "read_table",
    "write_derived",
]
