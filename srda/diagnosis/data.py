"""The classifier's data half: one split's images with their labels and subjects, the
label-permutation control, the stateless batch sampler and the conversion of images to the
network's input. Nothing here trains; ``srda.diagnosis.classifier`` does.

Where a source's images live (``srda.layout``): ``hr`` ``{data}/{split}_hr.npy``, ``lr``
``{data}/x{scale}/{split}_lr.npy``, ``sr`` ``{data}/x{scale}/sr/{method}/seed{seed}/{split}.npy``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from srda import layout
from srda.errors import InputError
from srda.layout import SPLITS
from srda.shards import read_meta, read_shard
from srda.train.data import class_indices, read_classes

AUGMENTS = ("none", "hflip", "flips")
UPSAMPLE_MODES = ("nearest", "bicubic")
SOURCES = ("hr", "lr", "sr")


# --------------------------------------------------------------------------------------------
# Loading


@dataclass
class SplitData:
    """The images of one split and what the predictions need to name them.

    ``images``: (N, H, W) float (a memory-mapped shard is read batch by batch, never whole);
    ``labels``: N class indices; ``meta``: rows with ``index`` and ``subject`` (and optionally
    ``slice``); default: index 0..N-1, each image its own subject. ``source``: where the images
    came from, for error messages.
    """

    images: np.ndarray
    labels: np.ndarray
    meta: pd.DataFrame | None = None
    source: str = "<arrays>"

    def __post_init__(self) -> None:
        if self.images.ndim != 3:
            raise InputError(self.source, f"images must be (N, H, W), got {self.images.shape}")
        n = self.images.shape[0]
        self.labels = np.asarray(self.labels, dtype=np.int64).ravel()
        if self.labels.size != n:
            raise InputError(self.source, f"{n} images but {self.labels.size} labels")
        if self.meta is None:
            self.meta = pd.DataFrame({"index": np.arange(n), "subject": np.arange(n).astype(str)})
        if len(self.meta) != n:
            raise InputError(self.source, f"{n} images but {len(self.meta)} meta rows")
        missing = {"index", "subject"} - set(self.meta.columns)
        if missing:
            raise InputError(self.source, f"meta lacks columns {sorted(missing)}")

    def __len__(self) -> int:
        return self.images.shape[0]


def shard_path(
    data_dir: Path | str,
    split: str,
    source: str,
    scale: int = 4,
    method: str | None = None,
    seed: int = 0,
    degradation: str = layout.BICUBIC,
) -> Path:
    """The image shard of ``split`` for a source: ``hr``, ``lr`` (x``scale``, of the LR model
    ``degradation``) or ``sr`` (``method``'s output at x``scale`` for SR training seed
    ``seed``, trained on and applied to that model's LR images)."""
    if source == "hr":
        return layout.hr_shard(data_dir, split)
    if source == "lr":
        return layout.lr_shard(data_dir, scale, split, degradation)
    if source == "sr":
        if not method:
            raise ValueError("source 'sr' needs the method whose output to classify")
        sr = layout.method_dir(data_dir, scale, method, seed, degradation)
        return layout.sr_shard(sr, split)
    raise ValueError(f"source must be one of {SOURCES}, got {source!r}")


def load_split_data(
    data_dir: Path | str, split: str, images: Path | str, classes: list[str] | None = None
) -> SplitData:
    """One split of a dataset for the classifier: the shard ``images`` (memory-mapped; see
    ``shard_path``) with the labels and subjects of ``{split}_meta.csv`` (labels mapped through
    ``dataset.json``)."""
    path = Path(images)
    meta_path = layout.meta_csv(data_dir, split)
    shard = read_shard(path)
    meta = read_meta(meta_path)
    classes = classes or read_classes(Path(data_dir))
    if len(meta) != len(shard):
        raise InputError(path, f"{len(shard)} images for {len(meta)} rows of {meta_path}")
    keep = [c for c in ("index", "subject", "slice") if c in meta.columns]
    return SplitData(
        images=shard,
        labels=class_indices(meta["label"], classes, meta_path),
        meta=meta[keep].reset_index(drop=True),
        source=str(path),
    )


def permute_labels_by_subject(splits: dict[str, SplitData], seed: int) -> dict[str, SplitData]:
    """The splits with every subject's label replaced by a permuted one (the control row).

    One label per subject is drawn by permuting the subjects' labels across all subjects of
    all splits (``default_rng([seed, 3])``), so the class counts over subjects stay exactly as
    they are and every image of a subject carries its subject's new label. A subject in two
    splits (``split: slices``) keeps one label everywhere: a network that memorises subjects
    then scores above chance, which is what the control is there to show.
    """
    owners: dict[str, int] = {}
    for name in SPLITS:
        data = splits.get(name)
        if data is None:
            continue
        for subject, label in zip(data.meta["subject"].astype(str), data.labels, strict=True):
            if owners.setdefault(subject, int(label)) != int(label):
                raise InputError(data.source, f"subject {subject!r} carries two labels")
    subjects = sorted(owners)
    original = np.array([owners[s] for s in subjects], dtype=np.int64)
    permuted = dict(
        zip(subjects, np.random.default_rng([seed, 3]).permutation(original), strict=True)
    )
    out = {}
    for name, data in splits.items():
        labels = np.array([permuted[s] for s in data.meta["subject"].astype(str)], np.int64)
        out[name] = replace(data, labels=labels)
    return out


# --------------------------------------------------------------------------------------------
# Batches


class BatchSampler:
    """Epoch-wise shuffled batches; batch ``step`` (1-based) is a pure function of (seed, step).

    Step k takes positions ``(k-1)*B .. k*B-1`` of the endless sequence formed by one
    permutation of the N images per epoch (epoch e's permutation: ``default_rng([seed, 0, e])``),
    so every image is seen once per epoch. Flips of step k: ``default_rng([seed, 1, k])``.
    """

    def __init__(self, n: int, batch_size: int, seed: int, augment: str = "hflip") -> None:
        if n < 1:
            raise ValueError("no training images")
        self.n, self.batch_size, self.seed, self.augment = n, batch_size, seed, augment

    @lru_cache(maxsize=4)  # noqa: B019 - a few epochs' permutations, freed with the sampler
    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 0, epoch]).permutation(self.n)

    def indices(self, step: int) -> np.ndarray:
        if step < 1:
            raise ValueError(f"steps count from 1, got {step}")
        positions = (step - 1) * self.batch_size + np.arange(self.batch_size)
        epochs, offsets = np.divmod(positions, self.n)
        return np.array(
            [self._permutation(int(e))[o] for e, o in zip(epochs, offsets, strict=True)]
        )

    def flips(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(left-right, up-down) flip flags of the batch of ``step``."""
        rng = np.random.default_rng([self.seed, 1, step])
        draws = rng.random((2, self.batch_size)) < 0.5
        lr_flip = draws[0] if self.augment in ("hflip", "flips") else np.zeros_like(draws[0])
        ud_flip = draws[1] if self.augment == "flips" else np.zeros_like(draws[1])
        return lr_flip, ud_flip


def to_input(
    images: np.ndarray, upsample: int = 1, mode: str = "nearest", source: str = "<arrays>"
) -> torch.Tensor:
    """(B, H, W) array -> (B, 1, H', W') float32 tensor, resized by ``upsample`` (``mode``
    nearest | bicubic, clamped to [0, 1])."""
    # np.array copies: a memory-mapped shard is read-only, torch wants writable memory
    x = torch.from_numpy(np.array(images, dtype=np.float32))[:, None]
    if not torch.isfinite(x).all():
        raise InputError(source, "images hold NaN or infinite values")
    if upsample > 1:
        if mode == "nearest":
            x = F.interpolate(x, scale_factor=upsample, mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=upsample, mode="bicubic", align_corners=False).clamp_(
                0.0, 1.0
            )
    return x


def train_batch(
    data: SplitData, sampler: BatchSampler, step: int, upsample: int = 1, mode: str = "nearest"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The images (network input) and labels of ``step``'s batch, flipped as drawn."""
    index = sampler.indices(step)
    order = np.argsort(index, kind="stable")  # read a memmap in row order, then restore
    images = np.empty((len(index), *data.images.shape[1:]), dtype=np.float32)
    images[order] = data.images[index[order]]
    lr_flip, ud_flip = sampler.flips(step)
    images[lr_flip] = images[lr_flip][:, :, ::-1]
    images[ud_flip] = images[ud_flip][:, ::-1, :]
    x = to_input(images, upsample, mode, data.source)
    return x, torch.from_numpy(data.labels[index])
