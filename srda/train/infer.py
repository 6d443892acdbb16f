"""Super-resolve LR shards in batches into SR shards (clamped to [0, 1], not quantised)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from srda.shards import ShardWriter, read_shard
from srda.train.precision import resolve_channels_last


def pick_device(gpus: int | None = None) -> torch.device:
    """CUDA when this job was given a GPU (or, when unsaid, when one is visible), else CPU."""
    if torch.cuda.is_available() and gpus != 0:
        return torch.device("cuda")
    return torch.device("cpu")


@torch.no_grad()
def super_resolve(
    model: nn.Module,
    lr_path: Path,
    out_path: Path,
    device: torch.device,
    batch_size: int = 16,
    desc: str = "super-resolving",
    channels_last: bool | None = None,
) -> None:
    """``channels_last``: run the network in NHWC; None: as ``channels_last: auto`` resolves on
    ``device`` (on; ``precision.CPU_CHANNELS_LAST`` on a CPU), so every caller (the method job,
    cross-fitting, the cross-degradation table) computes alike."""
    lr = read_shard(lr_path)
    if channels_last is None:
        channels_last = resolve_channels_last("auto", device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device).eval().to(memory_format=fmt)
    with ShardWriter(out_path) as out:
        for start in tqdm(range(0, len(lr), batch_size), desc=desc, unit="batch"):
            batch = torch.from_numpy(np.array(lr[start : start + batch_size])).to(device)
            sr = model(batch[:, None].contiguous(memory_format=fmt)).clamp_(0.0, 1.0)[:, 0]
            out.append(sr.float().cpu().numpy())
