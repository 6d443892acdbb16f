"""The training loop every learned SR method goes through (SRDA, its ablations and baselines).

A method differs from another only by its model, its ``objective(model, batch) -> (loss,
terms)`` and its ``predict(model, lr) -> sr`` (see ``srda.train.losses``); steps, batch,
patch, optimiser (one Adam over every trainable parameter), validation and checkpointing are
shared, so methods are compared under the same budget. Precision, checkpoints, the log and the
optimiser step come from the toolkit the classifier shares (``srda.train.precision``,
``checkpoint``, ``csvlog``, ``step``).

Outputs in ``out_dir``:

* ``checkpoints/last.pt``: model, optimiser, scheduler (and fp16 grad-scaler) state, step,
  best validation PSNR, the plateau count (``until_plateau``), torch RNG states, the run's
  trajectory and its log; written every ``checkpoint_every`` steps, at the end and at an early
  stop. A run that finds it resumes from it by the rule of ``srda.train.checkpoint`` and
  reproduces an uninterrupted run exactly (CPU).
* ``checkpoints/best.pt``: model state, step and val_psnr of the best validation so far.
* ``train_log.csv``: one row per step (step, loss, the objective's terms, lr, seconds,
  val_psnr on validation steps).

Data parallel (several processes, e.g. ``torchrun --nproc_per_node 4``; see
``srda.train.distributed``): when a process group is initialised, ``batch_size`` stays the
global batch of one step and each process trains on its ``batch_size / world_size`` slice of
it; DDP averages the gradients, so the steps equal a single-process run's (up to rounding, and
except for batch norm statistics on CPU). The learning rate is not rescaled: the global batch
did not change. Only rank 0 validates and writes logs and checkpoints; it also decides an
early stop on a plateau and tells the other processes (``distributed.decided_on_main``).

``until_plateau`` (with ``patience``, counted in validations): the run stops at the validation
that is the ``patience``-th in a row without a new best validation PSNR; ``steps`` is the cap
(``srda.train.plateau``). The summary says ``stopped_early`` and ``stopped_at_step``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from srda import layout, schema
from srda.errors import InputError
from srda.metrics import psnr
from srda.shards import read_shard
from srda.train import distributed
from srda.train.checkpoint import (
    RunSettings,
    RunState,
    data_fingerprint,
    load_checkpoint,
    resume_point,
    rng_preserved,
    save_checkpoint,
    trajectory,
)
from srda.train.csvlog import CsvLog
from srda.train.data import PatchSampler, load_split, prefetch
from srda.train.losses import predict_sr
from srda.train.plateau import Plateau, restart_reason, settings_problem
from srda.train.precision import (
    PRECISIONS,
    autocast,
    deterministic_on_cpu,
    grad_scaler,
    resolve_channels_last,
    resolve_flag,
    resolve_precision,
)
from srda.train.precision import native_bf16 as native_bf16  # the benchmarks' detector
from srda.train.step import Objective, term_values, train_step

logger = logging.getLogger(__name__)
#: A method's train: settings as the schema fills them in: the only source of their defaults.
_DEFAULT = schema.job_defaults("train")

SCHEDULES = ("constant", "step", "cosine")
LOG_NAME = layout.train_log_csv("").name  # inside the train folder it is given
CHECKPOINT_DIR = "checkpoints"
#: Log columns the trainer writes itself; objective terms with these names get a ``term_`` prefix.
RESERVED_COLUMNS = ("step", "loss", "lr", "seconds", "val_psnr")
#: Settings that do not change the weights after a given step: a resume may change them
#: (``steps`` under the schedule check, ``until_plateau`` / ``patience`` under the plateau's).
_TRAJECTORY_FREE = (
    "steps",
    "val_every",
    "checkpoint_every",
    "val_images",
    "val_batch_size",
    "loader_workers",
    "pin_memory",
    "until_plateau",
    "patience",
)

Predict = Callable[[nn.Module, torch.Tensor], torch.Tensor]


@dataclass
class TrainSettings(RunSettings):
    """What every method is trained with. The fairness rule: one preset gives every method
    the same ``steps``, ``batch_size`` and ``patch``; a method's own loss and schedule come only
    from its config entry."""

    KIND = "train"
    steps: int
    batch_size: int
    patch: int
    lr: float = _DEFAULT["lr"]
    val_every: int = _DEFAULT["val_every"]  # 0: validate only at the end
    checkpoint_every: int | None = None  # default: val_every (0: only at the end)
    # auto | fp32 | bf16 | fp16 (fp16 only with CUDA, with a GradScaler); auto: resolve_precision
    precision: str = _DEFAULT["precision"]
    channels_last: bool | str = _DEFAULT["channels_last"]  # auto: on (CPU_CHANNELS_LAST)
    loader_workers: int = _DEFAULT["loader_workers"]  # threads drawing batches ahead
    pin_memory: bool | str = _DEFAULT["pin_memory"]  # page-locked batches; "auto": on with CUDA
    augment: bool = _DEFAULT["augment"]
    schedule: str = _DEFAULT["schedule"]  # constant | step | cosine
    schedule_milestones: list[int] | None = _DEFAULT["schedule_milestones"]  # default [steps // 2]
    schedule_gamma: float = _DEFAULT["schedule_gamma"]
    val_images: int | None = _DEFAULT["val_images"]  # first K validation images (None: all)
    grad_clip: float | None = None  # max global gradient norm
    seed: int = 0
    val_batch_size: int = 4  # whole images per validation forward pass
    until_plateau: bool = _DEFAULT["until_plateau"]  # stop on a val PSNR plateau
    patience: int = _DEFAULT["patience"]  # validations (units of val_every) without a new best

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"train settings: {what}")

        need(int(self.steps) == self.steps and self.steps >= 0, f"steps={self.steps} must be >= 0")
        need(self.batch_size >= 1, f"batch_size={self.batch_size} must be >= 1")
        need(self.patch >= 1, f"patch={self.patch} must be >= 1")
        need(self.lr > 0 and math.isfinite(self.lr), f"lr={self.lr} must be positive")
        need(self.val_every >= 0, f"val_every={self.val_every} must be >= 0")
        need(
            self.checkpoint_every is None or self.checkpoint_every >= 0,
            f"checkpoint_every={self.checkpoint_every} must be >= 0",
        )
        need(self.precision in PRECISIONS, f"precision {self.precision!r} not in {PRECISIONS}")
        need(self.schedule in SCHEDULES, f"schedule {self.schedule!r} not in {SCHEDULES}")
        need(self.schedule_gamma > 0, f"schedule_gamma={self.schedule_gamma} must be positive")
        need(
            self.val_images is None or self.val_images >= 1,
            f"val_images={self.val_images} must be >= 1 or None (all)",
        )
        need(
            self.grad_clip is None or self.grad_clip > 0,
            f"grad_clip={self.grad_clip} must be positive or None",
        )
        need(self.seed >= 0, f"seed={self.seed} must be >= 0")
        need(self.val_batch_size >= 1, f"val_batch_size={self.val_batch_size} must be >= 1")
        need(self.loader_workers >= 0, f"loader_workers={self.loader_workers} must be >= 0")
        problem = settings_problem(self.until_plateau, self.patience, self.val_every)
        need(problem is None, problem or "")
        for key in ("channels_last", "pin_memory"):
            value = getattr(self, key)
            need(isinstance(value, bool) or value == "auto", f"{key}={value!r}: bool or auto")
        if self.schedule_milestones is not None:
            self.schedule_milestones = sorted(int(m) for m in self.schedule_milestones)

    def milestones(self) -> list[int]:
        if self.schedule_milestones is not None:
            return list(self.schedule_milestones)
        return [max(1, self.steps // 2)]


def lr_factor(settings: TrainSettings, done: int) -> float:
    """Learning-rate multiplier for the step after ``done`` completed steps."""
    if settings.schedule == "step":
        return settings.schedule_gamma ** sum(done >= m for m in settings.milestones())
    if settings.schedule == "cosine":
        t = min(done, settings.steps) / max(1, settings.steps)
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return 1.0


def _load_val(
    data_dir: Path, scale: int, cap: int | None, degradation: str = layout.BICUBIC
) -> tuple[np.ndarray, np.ndarray]:
    hr = read_shard(layout.hr_shard(data_dir, "val"))
    lr_path = layout.lr_shard(data_dir, scale, "val", degradation)
    lr = read_shard(lr_path)
    if len(lr) != len(hr):
        raise InputError(lr_path, f"{len(lr)} LR images for {len(hr)} HR validation images")
    n = len(hr) if cap is None else min(cap, len(hr))
    return np.array(lr[:n], dtype=np.float32), np.array(hr[:n], dtype=np.float32)


def schedule_reason(old_steps: int, settings: TrainSettings, done: int) -> str | None:
    """Why the steps already taken (1..``done``, run with ``old_steps`` as the count) would
    have had other learning rates under ``settings``, or None when they agree.

    Step k runs at ``lr * lr_factor(settings, k - 1)``. Constant schedules and step schedules
    with explicit milestones do not depend on the count; the cosine schedule does from the
    second step on, and the default milestone ``steps // 2`` once the run has passed it."""
    if old_steps == settings.steps:
        return None
    old = replace(settings, steps=old_steps)
    if settings.schedule == "step":
        before = [m for m in old.milestones() if m < done]
        if before == [m for m in settings.milestones() if m < done]:
            return None
    elif settings.schedule != "cosine" or done <= 1:
        return None
    return (
        f"steps {old_steps} -> {settings.steps} changes the learning rate the {settings.schedule} "
        f"schedule gave the {done} steps already run"
    )


@torch.no_grad()
def validate(
    model: nn.Module,
    predict: Predict,
    val_lr: np.ndarray,
    val_hr: np.ndarray,
    scale: int,
    device: torch.device,
    precision: str = "fp32",
    channels_last: bool = False,
    batch_size: int = 4,
) -> float:
    """Mean PSNR (dB, border cropped by ``scale``) of ``predict`` clamped to [0, 1]."""
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with rng_preserved(device):
            for start in range(0, len(val_lr), batch_size):
                x = torch.from_numpy(val_lr[start : start + batch_size])[:, None].to(device)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast(device, precision):
                    sr = predict(model, x)
                outputs.append(sr.float().clamp(0.0, 1.0)[:, 0].cpu().numpy())
    finally:
        model.train(was_training)
    sr = np.concatenate(outputs)
    if sr.shape != val_hr.shape:
        raise ValueError(
            f"predict gave validation images of shape {sr.shape[1:]} for HR {val_hr.shape[1:]}"
        )
    return float(np.mean(psnr(sr, val_hr, crop=scale)))


def load_weights(model: nn.Module, path: Path | str, strict: bool = True) -> dict[str, Any]:
    """Load the model state of ``best.pt`` / ``last.pt`` (or a bare state dict) into ``model``.

    Loaded with ``weights_only=True`` onto the CPU, then copied into the model's own device.
    Returns the checkpoint's ``step`` and ``val_psnr`` (None when absent).
    """
    path = Path(path)
    ckpt = load_checkpoint(path)
    state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise InputError(path, f"does not fit the model: {exc}") from exc
    info = ckpt if isinstance(ckpt, dict) else {}
    return {"step": info.get("step"), "val_psnr": info.get("val_psnr")}


# --------------------------------------------------------------------------------------------
# The loop


def train(
    model: nn.Module,
    objective: Objective,
    predict: Predict | None,
    data_dir: Path,
    scale: int,
    settings: TrainSettings,
    out_dir: Path,
    device: torch.device,
    recipe: Mapping[str, Any] | None = None,
    degradation: str = layout.BICUBIC,
) -> dict[str, Any]:
    """Train ``model`` on ``data_dir``'s train split, validating on its val split, with the LR
    images of the LR model ``degradation``.

    Resumes from ``out_dir/checkpoints/last.pt`` by the resume rule (``srda.train.checkpoint``):
    ``recipe`` is what else shapes the trajectory (``srda.run`` passes the model's architecture
    and loss), compared with the checkpoint's like the settings. ``predict`` None means
    ``model(lr)`` (or its ``"sr"`` entry). Returns a summary (``trained``, ``steps``,
    ``best_val_psnr``, ``best_step``, ``seconds``, ``checkpoints``, ``weights``: the file to
    load for inference, ...).
    """
    wall = time.perf_counter()
    out_dir = Path(out_dir)
    device = torch.device(device)
    predict = predict or predict_sr
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    if settings.steps == 0 or not params:
        reason = "steps is 0" if settings.steps == 0 else "the model has no trainable parameters"
        logger.info("no training: %s", reason)
        return {
            "trained": False,
            "reason": reason,
            "steps": 0,
            "stopped_early": False,
            "stopped_at_step": None,
            "parameters": n_trainable,
            "best_val_psnr": None,
            "best_step": None,
            "last_val_psnr": None,
            "seconds": round(time.perf_counter() - wall, 3),
            "checkpoints": {"last": None, "best": None},
            "weights": None,
            "log": None,
        }
    settings = replace(  # "auto" becomes what this device runs (the checkpoint keeps that)
        settings,
        precision=resolve_precision(settings.precision, device),
        channels_last=resolve_channels_last(settings.channels_last, device),
        pin_memory=resolve_flag(settings.pin_memory, device),
    )
    steps, val_every, ckpt_every = settings.steps, settings.val_every, settings.checkpoint_interval
    torch.manual_seed(settings.seed)
    ctx = distributed.current()
    distributed.check_batch(settings.batch_size, ctx)
    ckpt_dir = out_dir / CHECKPOINT_DIR
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    log_path = out_dir / LOG_NAME
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    hr, lr, labels, _classes = load_split(data_dir, "train", scale, degradation)
    sampler = PatchSampler(
        hr, lr, labels, settings.patch, scale, settings.batch_size, settings.seed, settings.augment
    )
    val_lr, val_hr = _load_val(data_dir, scale, settings.val_images, degradation)
    if not len(val_hr):
        logger.warning("no validation images: best.pt will not be written")

    model.to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    net = distributed.wrap(model, device, ctx)  # what the objective calls (DDP when parallel)
    optimizer = torch.optim.Adam(params, lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: lr_factor(settings, done))
    scaler = grad_scaler(settings.precision)

    now = trajectory(
        asdict(settings),
        _TRAJECTORY_FREE,
        data=data_fingerprint({"hr": hr, "lr": lr, "labels": labels}, scale),
        recipe=dict(recipe or {}),
    )
    ckpt = resume_point(
        last_path,
        now,
        steps,
        checks=(
            lambda c: schedule_reason(int(c["steps"]), settings, int(c["step"])),
            lambda c: restart_reason(settings.until_plateau, settings.patience, c),
        ),
        what="SR training",
    )
    start, seconds_before = 0, 0.0
    plateau = Plateau(settings.until_plateau, settings.patience)
    last_val: float | None = None
    log = CsvLog(log_path, write=ctx.is_main)
    state = RunState(
        model, optimizer, device, log, now, steps, plateau, "best_val_psnr", scaler, scheduler
    )
    if ckpt is not None:
        start, seconds_before = state.restore(ckpt)
        plateau = state.plateau
        for group in optimizer.param_groups:  # the rate of the schedule now (a raised count)
            group["lr"] = group["initial_lr"] * lr_factor(settings, start)
        last_val = ckpt.get("last_val_psnr")
        logger.info("resuming from %s at step %d of %d", last_path, start, steps)
    else:
        if ctx.is_main:  # best.pt of an older run, or of one that died before its checkpoint
            best_path.unlink(missing_ok=True)
        log.start()

    def checkpoint(step: int, seconds: float) -> None:
        if ctx.is_main:
            state.save(last_path, step, seconds, last_val_psnr=last_val, settings=asdict(settings))

    end = start if plateau.stopped else steps  # the last step this call may train
    if plateau.stopped:
        logger.info(
            "%s: stopped on a validation plateau at step %d (cap %d): not training",
            last_path,
            plateau.stopped_at,
            steps,
        )
    elif start == steps:
        logger.info("%s: training already complete (%d steps)", last_path, steps)

    t0 = time.perf_counter()
    seconds = seconds_before
    bar = tqdm(
        total=steps,
        initial=min(start, steps),
        desc="training",
        unit="step",
        mininterval=1.0,
        disable=not ctx.is_main,
    )
    batches = prefetch(sampler, start + 1, end, settings.loader_workers, settings.pin_memory)
    with deterministic_on_cpu(device), closing(batches):
        for step, batch in zip(range(start + 1, end + 1), batches, strict=True):
            batch = distributed.shard_batch(batch, ctx)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            if settings.channels_last:
                for key in ("lr", "hr"):
                    batch[key] = batch[key].contiguous(memory_format=torch.channels_last)
            step_lr = optimizer.param_groups[0]["lr"]
            loss, terms = train_step(
                net,
                objective,
                batch,
                optimizer,
                params,
                device,
                settings.precision,
                scaler,
                settings.grad_clip,
            )
            scheduler.step()

            loss_value = float(loss.detach())
            terms = term_values(terms, RESERVED_COLUMNS)
            if ctx.parallel:  # log the global batch's loss: the mean over processes
                loss_value, *rest = distributed.mean_over_ranks(
                    [loss_value, *terms.values()], ctx, device
                )
                terms = dict(zip(terms, rest, strict=True))
            if not math.isfinite(loss_value) and scaler is None:
                raise FloatingPointError(
                    f"loss is {loss_value} at step {step}; last good checkpoint: {last_path}"
                )
            row: dict[str, Any] = {"step": step, "loss": loss_value, **terms, "lr": step_lr}

            val_psnr = None
            validating = (val_every and step % val_every == 0) or step == steps
            if ctx.is_main and len(val_hr) and validating:
                val_psnr = validate(
                    model,
                    predict,
                    val_lr,
                    val_hr,
                    scale,
                    device,
                    settings.precision,
                    settings.channels_last,
                    settings.val_batch_size,
                )
                last_val = val_psnr
                if plateau.observe(step, val_psnr):
                    save_checkpoint(
                        {"model": model.state_dict(), "step": step, "val_psnr": val_psnr}, best_path
                    )
                logger.info(
                    "step %d/%d: loss %.5f, val PSNR %.3f dB (best %.3f dB at step %d)",
                    step,
                    steps,
                    loss_value,
                    val_psnr,
                    plateau.best if plateau.best is not None else float("nan"),
                    plateau.best_step or 0,
                )
            if settings.until_plateau and validating and step < steps:  # rank 0 decides
                if distributed.decided_on_main(plateau.due, ctx, device):
                    plateau.stop(step)
                    if ctx.is_main:
                        logger.info(
                            "no better validation PSNR in %d validations (patience %d): "
                            "stopping at step %d of %d, best %.3f dB at step %s",
                            plateau.since_best,
                            settings.patience,
                            step,
                            steps,
                            plateau.best if plateau.best is not None else float("nan"),
                            plateau.best_step,
                        )
            seconds = seconds_before + time.perf_counter() - t0
            row["seconds"] = round(seconds, 3)
            row["val_psnr"] = val_psnr
            log.append(row)
            if (ckpt_every and step % ckpt_every == 0) or step == steps or plateau.stopped:
                checkpoint(step, seconds)

            bar.update(1)
            postfix = {"loss": f"{loss_value:.4g}"}
            if last_val is not None:
                postfix["val_psnr"] = f"{last_val:.2f}"
            bar.set_postfix(postfix, refresh=False)
            if plateau.stopped:
                break
    bar.close()

    return {
        "trained": True,
        # completed steps: the cap, or where the run stopped on a plateau
        "steps": plateau.stopped_at if plateau.stopped else steps,
        "resumed_from": start if start else None,
        **plateau.summary(),
        "best_val_psnr": plateau.best,
        "best_step": plateau.best_step,
        "last_val_psnr": last_val,
        "seconds": round(seconds, 3),
        "checkpoints": {
            "last": str(last_path),
            "best": str(best_path) if best_path.exists() else None,
        },
        "weights": str(best_path if best_path.exists() else last_path),
        "log": str(log_path),
        "device": str(device),
        "precision": settings.precision,
        "channels_last": settings.channels_last,
        "loader_workers": settings.loader_workers,
        "pin_memory": settings.pin_memory,
        "processes": ctx.world_size,
        "parameters": n_trainable,
    }
