"""One (dataset, scale, method, seed) job: train if the method learns, super-resolve every split,
score the test split. One job per combination keeps the DAG small (torch start-up costs ~3.5 s).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srda import layout, registry
from srda.errors import InputError
from srda.evaluate import score_method
from srda.layout import SPLITS
from srda.shards import read_meta, read_shard
from srda.train import distributed
from srda.train.infer import pick_device, super_resolve

logger = logging.getLogger(__name__)
ATTENTION_IMAGES = 8  # test images whose attention maps are kept for the figures
SR_MODEL_FORMAT = 1


def _dataset_info(data_dir: Path) -> dict[str, Any]:
    path = layout.dataset_json(data_dir)
    if not path.exists():
        raise InputError(path, "dataset.json missing (run the prepare stage first)")
    return json.loads(path.read_text())


def build_model(settings: dict[str, Any], scale: int, num_classes: int) -> nn.Module:
    """The model a method trains: SRDA variants get their joint model, others their SR net."""
    from srda.models import VARIANTS

    arch, name = settings["arch"], settings["name"]
    try:
        if arch in VARIANTS:
            from srda.models.joint import build_joint

            joint = settings["joint"]
            return build_joint(
                arch,
                scale=scale,
                channels=settings["channels"],
                size=settings["size"],
                num_classes=num_classes,
                diag_depth=joint["diag_depth"],
                attention_at=joint["attention_at"],
                **settings.get("overrides", {}),
            )
        return registry.build(
            arch,
            scale=scale,
            channels=settings["channels"],
            size=settings["size"],
            **settings.get("overrides", {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"methods.{name}", str(exc.args[0] if exc.args else exc)) from exc


def sr_network(model: nn.Module) -> nn.Module:
    """The part that maps LR to SR (a joint model's SR network, or the model itself)."""
    return getattr(model, "sr_net", model)


def train_steps(train: dict[str, Any], n_train: int, batch_size: int) -> int:
    """Steps from the preset: given directly, or from epochs over the training images."""
    if train.get("epochs"):
        return math.ceil(train["epochs"] * n_train / batch_size)
    return int(train["steps"])


def training_recipe(model: nn.Module, settings: dict[str, Any]) -> dict[str, Any]:
    """What shapes a method's training besides its ``TrainSettings``: the model and its loss.
    The trainer keeps it in ``last.pt`` and resumes only a run with the same one."""
    recipe = {key: settings.get(key) for key in ("arch", "size", "channels", "overrides")}
    recipe["loss"] = settings["train"].get("loss")
    if hasattr(model, "sr_net"):  # a joint model: its diagnosis net and loss weights
        recipe["joint"] = settings.get("joint")
    return recipe


def objective_for(model: nn.Module, settings: dict[str, Any]) -> tuple[Any, Any]:
    """(objective, predict) a method trains with: SRDA's joint loss for a joint model, else
    its configured pixel loss. The benchmarks time this same objective."""
    from srda.train.losses import joint_objective, predict_sr, sr_objective

    if not hasattr(model, "sr_net"):
        return sr_objective(settings["train"]["loss"]), predict_sr
    from srda.models.joint import srda_loss

    joint = settings["joint"]
    objective = joint_objective(
        srda_loss,
        lambda1=joint["lambda1"],
        lambda2=joint["lambda2"],
        attention_loss=joint["attention_loss"],
    )

    def predict(m: nn.Module, lr: torch.Tensor) -> torch.Tensor:
        return m.sr_net(lr)

    return objective, predict


def fit(
    model: nn.Module,
    settings: dict[str, Any],
    data_dir: Path,
    scale: int,
    seed: int,
    out_dir: Path,
    device: torch.device,
    degradation: str = layout.BICUBIC,
) -> dict[str, Any]:
    from srda.train.trainer import TrainSettings, load_weights, train

    train_cfg = dict(settings["train"])
    n_train = len(read_meta(layout.meta_csv(data_dir, "train")))
    batch = settings["batch_size"]
    steps = train_steps(train_cfg, n_train, batch)
    train_cfg.pop("loss")
    for key in ("steps", "epochs", "batch_size"):
        train_cfg.pop(key, None)
    run_settings = TrainSettings(
        steps=steps, batch_size=batch, patch=settings["patch"], seed=seed, **train_cfg
    )
    objective, predict = objective_for(model, settings)
    train_dir = layout.train_dir(out_dir)
    ctx = distributed.current()
    if ctx.is_main:  # a record of what the folder was last trained with; the trainer decides
        train_dir.mkdir(parents=True, exist_ok=True)  # whether last.pt resumes (its rule)
        stamp = {"settings": settings, "seed": seed}
        (train_dir / "settings.json").write_text(json.dumps(stamp, sort_keys=True))
    recipe = training_recipe(model, settings)
    summary = train(
        model,
        objective,
        predict,
        data_dir,
        scale,
        run_settings,
        train_dir,
        device,
        recipe,
        degradation,
    )
    if summary.get("trained") and ctx.is_main:
        load_weights(model, summary["weights"])
    return summary


def save_sr_model(sr_net: nn.Module, settings: dict[str, Any], scale: int, path: Path) -> None:
    """The trained SR network with what it takes to rebuild and apply it (``srda-bench
    upscale``); plain tensors, strings and numbers, so it loads with ``weights_only=True``."""
    from srda.shards import atomic_path

    payload = {
        "format": SR_MODEL_FORMAT,
        "method": settings["name"],
        "arch": settings["arch"],
        "scale": scale,
        "channels": settings["channels"],
        "size": settings["size"],
        "overrides": settings.get("overrides", {}),
        "plane": settings.get("plane", "axial"),
        "clip_percentiles": list(settings.get("clip_percentiles", [0.5, 99.5])),
        "state_dict": {k: v.detach().cpu() for k, v in sr_net.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


@torch.no_grad()
def save_attention(
    model: nn.Module,
    data_dir: Path,
    scale: int,
    out_path: Path,
    device: torch.device,
    degradation: str = layout.BICUBIC,
) -> None:
    """Both attention maps of the first test images (SRDA with attention only)."""
    sr_net = sr_network(model)
    if not getattr(model, "diag_net", None) or not hasattr(sr_net, "forward_with_attention"):
        return
    test_lr = read_shard(layout.lr_shard(data_dir, scale, "test", degradation))
    lr = np.array(test_lr[:ATTENTION_IMAGES])
    model.eval()
    out = model(torch.from_numpy(lr)[:, None].to(device))
    if out.get("sr_attention") is None or out.get("diag_attention") is None:
        return
    np.savez_compressed(
        out_path,
        sr_attention=out["sr_attention"].float().cpu().numpy()[:, 0],
        diag_attention=out["diag_attention"].float().cpu().numpy()[:, 0],
        index=np.arange(len(lr)),
    )


def parameter_counts(scale: int = 4, channels: int = 1, size: str = "paper") -> dict[str, int]:
    """Every registered architecture's parameter count (SRDA variants: the SR network alone)."""
    import baselines  # noqa: F401

    counts = {}
    for name in registry.names():
        with torch.device("meta"):  # counts only: no memory, no initialisation time
            model = registry.build(name, scale=scale, channels=channels, size=size)
        counts[name] = sum(p.numel() for p in model.parameters())
    return counts


def start_training_job(
    seed: int, gpus: int | None = None, threads: int | None = None
) -> tuple[torch.device, distributed.DistContext]:
    """What every SR training job does first (``run_method``, a cross-fit fold): register the
    architectures, set threads and seed, pick the device, join torchrun's process group."""
    import baselines  # noqa: F401  (registers every architecture)

    if threads:
        torch.set_num_threads(threads)
    # Tiny activations turn into denormal floats after a few steps; on CPU they made training
    # steps ~4x slower (measured on the smoke preset). Flushing them to zero costs nothing.
    torch.set_flush_denormal(True)
    torch.manual_seed(seed)
    device = pick_device(gpus)
    ctx = distributed.env_context()  # torchrun: one process per GPU (srda.train.distributed)
    if ctx.parallel:
        device = distributed.rank_device(device, ctx)
        distributed.init_from_env(device)
    slurm_job = os.environ.get("SLURM_JOB_ID")
    logger.info(
        "job on host %s, device %s%s",
        socket.gethostname(),
        device,
        f", SLURM job {slurm_job}" if slurm_job else "",
    )
    if gpus and device.type != "cuda":
        logger.warning("given %d GPU(s) but CUDA is not available: running on the CPU", gpus)
    return device, ctx


def end_training_job(ctx: distributed.DistContext) -> bool:
    """After training under data parallel: wait for every process and leave the process
    group. True for the process that goes on (rank 0, or the only one)."""
    if ctx.parallel:
        distributed.barrier(ctx)
        distributed.shutdown()
    return ctx.is_main


def run_method(
    settings: dict[str, Any],
    data_dir: Path,
    scale: int,
    seed: int,
    out_dir: Path,
    gpus: int | None = None,
    threads: int | None = None,
    degradation: str = layout.BICUBIC,
) -> dict[str, Any]:
    """Train (if the method learns) on the LR images of the LR model ``degradation``,
    super-resolve that model's train / val / test images and score the test split."""
    start = time.perf_counter()
    device, ctx = start_training_job(seed, gpus, threads)
    slurm_job = os.environ.get("SLURM_JOB_ID")
    if settings.get("external"):
        raise InputError(settings["name"], "external methods are written by their own rule")
    info = _dataset_info(data_dir)
    model = build_model(settings, scale, num_classes=len(info["classes"]))
    n_params = sum(p.numel() for p in sr_network(model).parameters())
    out_dir.mkdir(parents=True, exist_ok=True)
    training = (
        fit(model, settings, data_dir, scale, seed, out_dir, device, degradation)
        if n_params
        else {}
    )
    if not end_training_job(ctx):  # rank 0 alone super-resolves and scores
        return {"method": settings["name"], "rank": ctx.rank, "training": training}

    sr_net = sr_network(model)
    for split in SPLITS:
        super_resolve(
            sr_net,
            layout.lr_shard(data_dir, scale, split, degradation),
            layout.sr_shard(out_dir, split),
            device,
            batch_size=settings["batch_size"],
            desc=f"{settings['name']} {split}",
        )
    save_sr_model(sr_net, settings, scale, layout.sr_model(out_dir))
    save_attention(model, data_dir, scale, layout.attention_npz(out_dir), device, degradation)
    scores = score_method(data_dir, scale, out_dir)
    summary = {
        "method": settings["name"],
        "scale": scale,
        "degradation": degradation,
        "seed": seed,
        "device": str(device),
        "host": socket.gethostname(),
        "slurm_job_id": slurm_job,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "sr_parameters": n_params,
        "training": training,
        "psnr": float(scores["psnr"].mean()),
        "ssim": float(scores["ssim"].mean()),
        "seconds": round(time.perf_counter() - start, 2),
        "settings": settings,
    }
    layout.run_json(out_dir).write_text(json.dumps(summary, indent=2, default=str))
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
