"""A trained SR network scored on LR images of another degradation, without retraining.

A method job trains on one LR model (its ``train`` degradation) and scores itself on that
model's test images (``test_metrics.csv``). Here its saved network (``sr_model.pt``) is applied
to the test images another model made from the same HR images, and scored the same way: one
cell of the cross-degradation matrix (``srda.report.cross_degradation``). The network is run
exactly as the method job runs it (``srda.train.infer.super_resolve``, float32), so the
diagonal of the matrix could be recomputed here to the last digit.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import torch

from srda import layout
from srda.errors import InputError
from srda.evaluate import score_method
from srda.shards import read_shard
from srda.train.infer import super_resolve
from srda.upscale import load_sr_model

logger = logging.getLogger(__name__)


def score_on(
    model_path: Path,
    data_dir: Path,
    lr_test: Path,
    scale: int,
    out_csv: Path,
    device: torch.device | None = None,
    batch_size: int = 16,
) -> float:
    """Super-resolve ``lr_test`` with the network in ``model_path`` and write per-image PSNR /
    SSIM (and region scores) against ``data_dir``'s HR test images to ``out_csv``, in the
    columns of ``test_metrics.csv``; returns the mean PSNR."""
    import baselines  # noqa: F401  (registers the architectures load_sr_model rebuilds)

    model = load_sr_model(model_path)
    if model.scale != scale:
        raise InputError(model_path, f"the network is x{model.scale}, the LR images x{scale}")
    hr = read_shard(layout.hr_shard(data_dir, "test"))
    lr = read_shard(lr_test)
    if lr.shape[0] != hr.shape[0] or tuple(lr.shape[1:]) != tuple(n // scale for n in hr.shape[1:]):
        raise InputError(lr_test, f"LR shape {lr.shape} does not fit HR test shape {hr.shape}")
    device = device or torch.device("cpu")
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    # scored by the method job's own scorer, in a scratch SR folder, then moved into place
    with tempfile.TemporaryDirectory(dir=Path(out_csv).parent) as tmp:
        sr_path = layout.sr_shard(tmp, "test")
        super_resolve(model.net, lr_test, sr_path, device, batch_size, desc=f"{model.method} on")
        scores = score_method(Path(data_dir), scale, Path(tmp))
        layout.sr_metrics_csv(tmp).replace(out_csv)
    mean = float(scores["psnr"].mean())
    logger.info("%s on %s: PSNR %.2f dB over %d test images", model.method, lr_test, mean, len(hr))
    return mean
