"""Replacing a store file atomically: the names of its temporary copies and fsync.

A rewrite (recovery, compaction, new derived columns) builds ``<name><suffix>`` beside the file, fsyncs
it and ``os.replace``\\ s it over the original; the next ``Store.open`` (under the same WriterLock) deletes a
temporary copy a killed rewrite left behind.
"""

from __future__ import annotations

import os
from pathlib import Path

RECOVER_SUFFIX = ".recover.tmp"
CREATE_SUFFIX = ".create.tmp"


def fsync_path(path: Path) -> None:
    """Flush a file's (or folder's) data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
