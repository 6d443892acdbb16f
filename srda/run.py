"""One (dataset, scale, method, seed) job: train if the method learns, super-resolve every split,
score the test split. One job per combination keeps the DAG small (torch start-up costs ~3.5 s).
"""

from __future__ import annotations

import json
import logging
import platform
import socket
import time
from pathlib import Path
from typing import Any

import torch

from srda import registry
from srda.data.split import SPLITS
from srda.errors import InputError
from srda.evaluate import score_images
from srda.shards import read_meta, read_shard, write_csv
from srda.train.infer import pick_device, super_resolve

logger = logging.getLogger(__name__)


def run_method(
    settings: dict[str, Any],
    data_dir: Path,
    scale: int,
    seed: int,
    out_dir: Path,
    gpus: int | None = None,
) -> dict[str, Any]:
    import baselines  # noqa: F401  (registers every architecture)

    start = time.perf_counter()
    torch.manual_seed(seed)
    device = pick_device(gpus)
    logger.info("job on host %s, device %s", socket.gethostname(), device)
    if settings.get("external"):
        raise InputError(settings["name"], "external methods are written by their own rule")
    try:
        model = registry.build(
            settings["arch"],
            scale=scale,
            channels=settings["channels"],
            size=settings["size"],
            **settings.get("overrides", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"methods.{settings['name']}", str(exc.args[0] if exc.args else exc)
        ) from exc
    n_params = sum(p.numel() for p in model.parameters())
    if n_params:
        raise InputError(
            f"methods.{settings['name']}",
            f"{settings['arch']} has {n_params} parameters to train and this suite "
            "has no trainer yet",
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        super_resolve(
            model,
            data_dir / f"x{scale}" / f"{split}_lr.npy",
            out_dir / f"{split}.npy",
            device,
            batch_size=settings["batch_size"],
            desc=f"{settings['name']} {split}",
        )
    hr = read_shard(data_dir / "test_hr.npy")
    sr = read_shard(out_dir / "test.npy")
    scores = score_images(sr, hr, read_meta(data_dir / "test_meta.csv"), scale)
    write_csv(out_dir / "test_metrics.csv", scores)
    summary = {
        "method": settings["name"],
        "scale": scale,
        "seed": seed,
        "device": str(device),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "parameters": n_params,
        "psnr": float(scores["psnr"].mean()),
        "ssim": float(scores["ssim"].mean()),
        "seconds": round(time.perf_counter() - start, 2),
        "settings": settings,
    }
    (out_dir / "run.json").write_text(json.dumps(summary, indent=2))
    logger.info(
        "%s x%d seed %d: PSNR %.2f dB, SSIM %.4f on %d test images",
        settings["name"],
        scale,
        seed,
        summary["psnr"],
        summary["ssim"],
        len(scores),
    )
    return summary
