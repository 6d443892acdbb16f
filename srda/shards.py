"""Image sets as shards: one memory-mapped ``.npy`` per split plus a meta CSV, written atomically.

Snakemake tracks every output file, so a set of thousands of images is one array of shape
(N, H, W), float32 in [0, 1] (ROI masks: uint8), and its rows are described by a CSV.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from srda.errors import InputError


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_shard(path: Path | str, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array))


def read_shard(path: Path | str, mmap: bool = True, ndim: int = 3) -> np.ndarray:
    """Open a shard (memory-mapped by default), with a clear error when it is not one."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "shard not found")
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(path, f"not a readable .npy shard ({exc})") from exc
    if array.ndim != ndim:
        raise InputError(path, f"expected a {ndim}-D shard, got shape {array.shape}")
    return array


class ShardWriter:
    """Append batches of images of one size; ``close`` writes the ``.npy`` in one atomic step.

    Rows are staged in a raw temporary file so the whole set never sits in memory.
    """

    def __init__(self, path: Path | str, dtype: str = "float32") -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, raw = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".raw", dir=self.path.parent
        )
        self._raw = Path(raw)
        self._fh = os.fdopen(fd, "wb")
        self.rows = 0
        self.shape: tuple[int, int] | None = None

    def append(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=self.dtype)
        if batch.ndim == 2:
            batch = batch[None]
        if self.shape is None:
            self.shape = batch.shape[1:]
        elif batch.shape[1:] != self.shape:
            raise ValueError(f"{self.path}: image shape {batch.shape[1:]} != {self.shape}")
        self._fh.write(np.ascontiguousarray(batch).tobytes())
        self.rows += len(batch)

    def close(self) -> None:
        self._fh.close()
        try:
            shape = (self.rows, *(self.shape or (0, 0)))
            staged = (
                np.memmap(self._raw, dtype=self.dtype, mode="r", shape=shape) if self.rows else None
            )
            with atomic_path(self.path) as tmp:
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=self.dtype, shape=shape)
                for start in range(0, self.rows, 256):
                    out[start : start + 256] = staged[start : start + 256]
                out.flush()
                del out
        finally:
            self._raw.unlink(missing_ok=True)

    def abort(self) -> None:
        self._fh.close()
        self._raw.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_csv(path: Path | str, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_meta(path: Path | str) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "meta CSV not found")
    frame = pd.read_csv(path, dtype={"subject": str, "image": str, "label": str})
    missing = {"index", "subject", "slice", "label"} - set(frame.columns)
    if missing:
        raise InputError(path, f"meta CSV lacks columns {sorted(missing)}")
    return frame
