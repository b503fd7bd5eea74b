"""Exceptions of the results store."""


class StoreError(Exception):
    """A results file cannot be used: not a store, unknown schema version, corrupt, or locked."""


class StoreLockedError(StoreError):
    """Another process (or another Store in this process) is writing the file."""


class RecordNotFoundError(StoreError, LookupError):
    """No stored row, or more than one, matches a task_id (prefix) or candidate_id."""
