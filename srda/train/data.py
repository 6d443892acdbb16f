"""Training data: aligned LR/HR patches drawn from memory-mapped shards, statelessly.

``PatchSampler.batch(step)`` depends only on ``(seed, step)``: its generator is
``np.random.default_rng([seed, step])``. A run resumed at step k therefore draws exactly the
batches an uninterrupted run draws, with no sampler state to save, and batches can be prepared
ahead of time (on another thread) without changing what is drawn.

Alignment: the crop is chosen on the LR grid and the HR crop is that window times the scale,
so an HR patch covers exactly the pixels its LR patch was made from (bicubic ``imresize`` with
pixel-centre alignment). Flips and 90-degree rotations (the 8 symmetries of the square) are
applied identically to both, and commute with the symmetric bicubic kernel.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from srda import layout
from srda.errors import InputError
from srda.shards import read_meta, read_shard

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchPlan:
    """What batch ``step`` is made of: image rows, LR crop corners, square symmetries (0..7)."""

    index: np.ndarray
    lr_y: np.ndarray
    lr_x: np.ndarray
    transform: np.ndarray


def dihedral(image: np.ndarray, transform: int) -> np.ndarray:
    """One of the 8 symmetries of the square on the last two axes: ``rot90`` by
    ``transform % 4`` quarter turns, then a left-right flip when ``transform >= 4``."""
    out = np.rot90(image, int(transform) % 4, axes=(-2, -1))
    if transform >= 4:
        out = out[..., ::-1]
    return out


class PatchSampler:
    """Random aligned (LR, HR) patch batches; batch ``k`` is a pure function of ``(seed, k)``.

    ``hr``: (N, H, W) and ``lr``: (N, H/scale, W/scale) arrays (memory-mapped shards are read
    patch by patch, never whole); ``labels``: N class indices; ``patch``: HR patch side, a
    multiple of ``scale`` and at most the image size.
    """

    def __init__(
        self,
        hr: np.ndarray,
        lr: np.ndarray,
        labels: np.ndarray,
        patch: int,
        scale: int,
        batch_size: int,
        seed: int,
        augment: bool = True,
    ) -> None:
        if hr.ndim != 3 or lr.ndim != 3:
            raise ValueError(f"hr and lr must be (N, H, W); got {hr.shape} and {lr.shape}")
        if scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale}")
        n = hr.shape[0]
        if lr.shape[0] != n or len(labels) != n:
            raise ValueError(
                f"{n} HR images, {lr.shape[0]} LR images and {len(labels)} labels: "
                "the three must agree"
            )
        if n == 0:
            raise ValueError("no training images")
        if lr.shape[1] * scale != hr.shape[1] or lr.shape[2] * scale != hr.shape[2]:
            raise ValueError(
                f"LR images {lr.shape[1:]} x{scale} do not give the HR size {hr.shape[1:]}"
            )
        if patch < scale or patch % scale:
            raise ValueError(f"patch {patch} must be a positive multiple of the scale {scale}")
        if patch > hr.shape[1] or patch > hr.shape[2]:
            raise ValueError(f"patch {patch} is larger than the HR images {hr.shape[1:]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.hr, self.lr = hr, lr
        self.labels = np.asarray(labels, dtype=np.int64)
        self.patch, self.scale = int(patch), int(scale)
        self.lr_patch = self.patch // self.scale
        self.batch_size, self.seed, self.augment = int(batch_size), int(seed), bool(augment)

    def __len__(self) -> int:
        return self.hr.shape[0]

    def plan(self, step: int) -> BatchPlan:
        """The random draws of batch ``step`` (always drawn in the same order)."""
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        rng = np.random.default_rng([self.seed, int(step)])
        b, q = self.batch_size, self.lr_patch
        index = rng.integers(0, len(self), size=b)
        lr_y = rng.integers(0, self.lr.shape[1] - q + 1, size=b)
        lr_x = rng.integers(0, self.lr.shape[2] - q + 1, size=b)
        transform = rng.integers(0, 8, size=b)
        if not self.augment:
            transform = np.zeros_like(transform)
        return BatchPlan(index, lr_y, lr_x, transform)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """``{"lr": (B, 1, p/s, p/s), "hr": (B, 1, p, p), "label": (B,)}`` for ``step``."""
        plan = self.plan(step)
        q, p, s = self.lr_patch, self.patch, self.scale
        lr_out = np.empty((self.batch_size, 1, q, q), dtype=np.float32)
        hr_out = np.empty((self.batch_size, 1, p, p), dtype=np.float32)
        for k, (i, y, x, t) in enumerate(
            zip(plan.index, plan.lr_y, plan.lr_x, plan.transform, strict=True)
        ):
            # Basic slicing of a memmap reads only the rows of the patch.
            lr_crop = self.lr[i, y : y + q, x : x + q]
            hr_crop = self.hr[i, y * s : y * s + p, x * s : x * s + p]
            lr_out[k, 0] = dihedral(lr_crop, t)
            hr_out[k, 0] = dihedral(hr_crop, t)
        return {
            "lr": torch.from_numpy(lr_out),
            "hr": torch.from_numpy(hr_out),
            "label": torch.from_numpy(self.labels[plan.index]),
        }


def pinned(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch in page-locked memory, so a ``to(cuda, non_blocking=True)`` copy overlaps."""
    return {key: value.pin_memory() for key, value in batch.items()}


def prefetch(
    sampler: PatchSampler, first: int, last: int, workers: int = 1, pin: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Batches ``first..last`` of ``sampler`` in order, ``workers`` of them drawn ahead.

    The sampler is stateless, so threads can draw batches ahead without changing what is
    drawn: the batches equal ``sampler.batch(k)`` whatever ``workers`` is (0: drawn in the
    loop). Threads, not DataLoader processes: cropping memory-mapped shards is cheap, releases
    the GIL in numpy's copies, and needs no worker start-up. ``pin``: page-locked batches (for
    CUDA; on a machine without an accelerator ``pin_memory`` fails).
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")

    def draw(step: int) -> dict[str, torch.Tensor]:
        batch = sampler.batch(step)
        return pinned(batch) if pin else batch

    if workers == 0:
        for step in range(first, last + 1):
            yield draw(step)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="patches") as pool:
        pending: deque[Future] = deque()
        upcoming = iter(range(first, last + 1))
        for step in upcoming:
            pending.append(pool.submit(draw, step))
            if len(pending) == workers:
                break
        while pending:
            batch = pending.popleft().result()
            step = next(upcoming, None)
            if step is not None:
                pending.append(pool.submit(draw, step))
            yield batch


def read_classes(data_dir: Path) -> list[str]:
    """The ordered class names of ``data_dir/dataset.json``."""
    path = layout.dataset_json(data_dir)
    if not path.exists():
        raise InputError(path, "dataset description not found (written by the data stage)")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from exc
    classes = info.get("classes") if isinstance(info, dict) else None
    if not isinstance(classes, list) or not classes:
        raise InputError(path, "has no non-empty 'classes' list")
    return [str(c) for c in classes]


def class_indices(
    labels: pd.Series, classes: list[str], meta_path: Path, classes_from: Path | None = None
) -> np.ndarray:
    """A meta CSV's labels as indices into the ordered ``classes``; a label outside them is an
    InputError naming the CSV (and the file the classes come from)."""
    lookup = {name: k for k, name in enumerate(classes)}
    raw = labels.astype(str)
    unknown = sorted(set(raw) - set(lookup))
    if unknown:
        where = f" of {classes_from}" if classes_from is not None else ""
        raise InputError(meta_path, f"labels {unknown} are not among the classes {classes}{where}")
    return raw.map(lookup).to_numpy(dtype=np.int64)


def load_split(
    data_dir: Path, split: str, scale: int, degradation: str = layout.BICUBIC
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``(hr, lr, labels, classes)`` of one split, the LR images of the LR model
    ``degradation``; shards memory-mapped, labels as class indices.

    Labels of ``{split}_meta.csv`` are mapped through the ordered ``classes`` of
    ``dataset.json``; a label outside them is an InputError naming both files.
    """
    data_dir = Path(data_dir)
    hr_path = layout.hr_shard(data_dir, split)
    lr_path = layout.lr_shard(data_dir, scale, split, degradation)
    meta_path = layout.meta_csv(data_dir, split)
    hr = read_shard(hr_path)
    lr = read_shard(lr_path)
    meta = read_meta(meta_path)
    classes = read_classes(data_dir)
    if len(meta) != len(hr):
        raise InputError(meta_path, f"{len(meta)} rows for {len(hr)} images in {hr_path.name}")
    if len(lr) != len(hr):
        raise InputError(lr_path, f"{len(lr)} LR images for {len(hr)} HR images in {hr_path}")
    labels = class_indices(meta["label"], classes, meta_path, layout.dataset_json(data_dir))
    return hr, lr, labels, classes
