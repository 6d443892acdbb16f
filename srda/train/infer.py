"""Super-resolve LR shards in batches into SR shards (clamped to [0, 1], not quantised)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from srda.shards import ShardWriter, read_shard


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
) -> None:
    lr = read_shard(lr_path)
    model = model.to(device).eval()
    with ShardWriter(out_path) as out:
        for start in tqdm(range(0, len(lr), batch_size), desc=desc, unit="batch"):
            batch = torch.from_numpy(np.array(lr[start : start + batch_size])).to(device)
            sr = model(batch[:, None]).clamp_(0.0, 1.0)[:, 0]
            out.append(sr.float().cpu().numpy())
