"""Text columns as one byte buffer + lengths (schema versions 2 and 3), and their fixed-width form.

A ragged column of k values is a ``Text``: the values' UTF-8 bytes concatenated and one length per
value. Readers turn spans into numpy fixed-width bytes arrays (``to_fixed``: NUL-padded, as h5py returns
version-1 columns), so everything after the read is the same for both versions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Text:
    """``len(lengths)`` values: value i is ``data[offsets[i] : offsets[i] + lengths[i]]`` (UTF-8)."""

    data: np.ndarray  # uint8
    lengths: np.ndarray  # int64

    @property
    def offsets(self) -> np.ndarray:
        return np.cumsum(self.lengths) - self.lengths

    def fixed(self, width: int) -> np.ndarray:
        """The values as fixed-width ``S<width>`` bytes (NUL-padded; every value must fit)."""
        start = self.offsets
        return to_fixed(self.data, start, start + self.lengths, width)


def from_bytes(values: list[bytes]) -> Text:
    return Text(np.frombuffer(b"".join(values), np.uint8),
                np.fromiter(map(len, values), np.int64, len(values)))


def from_fixed(values: np.ndarray) -> Text:
    """A fixed-width bytes array (trailing NULs are padding) as a Text, vectorised."""
    n, width = len(values), values.dtype.itemsize
    if not n or not width:
        return Text(np.zeros(0, np.uint8), np.zeros(n, np.int64))
    grid = np.ascontiguousarray(values).view(np.uint8).reshape(n, width)
    used = grid != 0
    # the length is one past the last non-NUL byte (NULs inside a value are kept, as h5py does not)
    lengths = np.where(used.any(axis=1), width - np.argmax(used[:, ::-1], axis=1), 0).astype(np.int64)
    keep = np.arange(width) < lengths[:, None]
    return Text(grid[keep], lengths)


def to_fixed(data: np.ndarray, start: np.ndarray, stop: np.ndarray, width: int | None = None) -> np.ndarray:
    """Values ``data[start[i]:stop[i]]`` as one NUL-padded ``S<width>`` array (width: the longest value)."""
    start = np.asarray(start, np.int64)
    lengths = np.asarray(stop, np.int64) - start
    n = len(lengths)
    width = max(1, int(lengths.max()) if n else 1) if width is None else max(1, width)
    if n and (lengths.min() < 0 or start.min() < 0 or int((start + lengths).max()) > len(data)):
        raise ValueError("text spans outside their buffer")
    total = int(lengths.sum())
    if n and total == n * width and (n == 1 or np.all(start[1:] == start[:-1] + width)):
        s = int(start[0])  # contiguous values of one length (e.g. hashes): a reshape
        return np.ascontiguousarray(data[s : s + total]).view(f"S{width}")
    out = np.zeros((n, width), np.uint8)
    if total:
        row = np.repeat(np.arange(n), lengths)
        col = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        out[row, col] = data[np.repeat(start, lengths) + col]
    return out.view(f"S{width}").reshape(n)
