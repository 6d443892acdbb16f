"""The downstream diagnosis experiment (the paper's Table III): one classifier per image source.

For every SR method's output (and for LR and HR) a ResNet is trained **from scratch** on the
train split, selected on the val split and scored on the test split. Every source goes through
the same recipe (``ClassifierSettings``); only the images differ.

Recipe (defaults)
-----------------
* Network: ``DiagnosisNet(num_classes, in_channels=1, attention_at=None, depth=50)``: a plain
  torchvision ResNet50 with a 1-channel stem, no pretrained weights (``depth=18`` for quick runs).
* Input: the shard's values as they are (float32 in [0, 1]); the first BatchNorm absorbs the
  scale. Images keep **their own size** (``upsample=1``), as the paper trained on LR images:
  the stem divides the size by 4 and layer2-4 by 8 more (rounding up), and the adaptive
  average pool before the fully connected layer accepts any map, so a 24x24 LR image gives a
  6x6 stem map and a 1x1 layer4 map; even 1x1 inputs run. ``upsample=k`` resizes every image
  of every split by ``k`` first (``upsample_mode`` nearest | bicubic), e.g. LR by the scale
  to the HR grid (bicubic then equals the Bicubic method up to the kernel: torch's a = -0.75
  without antialiasing, not MATLAB's).
* Optimiser: Adam, lr 1e-4, no weight decay, cross-entropy, constant rate: the optimiser and
  rate the paper states for its own training (it gives no separate recipe for the classifiers).
* Batches: ``batch_size`` images per step (at least 2: BatchNorm in training needs more than
  one value per channel, and layer4's map can be 1x1). Epoch-wise shuffling without
  replacement, stateless: the images of step k are a pure function of ``(seed, k)``, so a
  resumed run draws what an uninterrupted one draws. Augmentation: random flips
  (``augment``: ``hflip`` (default; left-right), ``flips`` (left-right and up-down), ``none``).
* Length: ``steps`` optimiser steps, or ``epochs`` passes over the train split
  (``ceil(epochs * N / batch_size)`` steps).
* Model selection: every ``val_every`` steps and at the end the model is scored on the whole
  val split; the checkpoint with the best **balanced accuracy** (``select_on``; ``acc`` is the
  alternative) is kept, the earliest on ties. Balanced accuracy, because disease classes are
  unbalanced and plain accuracy can select a model that predicts the majority class.
* Early stop (``until_plateau``, off by default): the run stops at the validation that is the
  ``patience``-th in a row without a new best selection score; ``steps`` (or ``epochs``) is
  the cap (``srda.train.plateau``); ``summary.json`` says ``stopped_early`` and
  ``stopped_at_step``, and ``steps`` is then the steps run.
* Label control: ``shuffle_labels`` permutes the class labels across the subjects of all
  three splits (``permute_labels_by_subject``) and scores the test split against the permuted
  labels, the random-label control of Yagis et al. (2021).
* Determinism: on CPU the run uses deterministic algorithms; the same seed and data give the
  same predictions. The caller's global torch RNG is left as it was.

Outputs in ``out_dir``
----------------------
* ``predictions.csv``: one row per test image: ``index``, ``subject``, ``slice``, ``label``,
  ``pred`` (class names) and ``prob_<class>`` (softmax, class order of ``dataset.json``).
* ``val_predictions.csv``: the same for the val split (selected model).
* ``classifier_log.csv``: one row per step (``step``, ``loss``, ``train_acc``, ``lr``,
  ``seconds``; ``val_loss``, ``val_acc``, ``val_balanced_acc`` on validation steps).
* ``checkpoints/best.pt`` (selected model) and ``checkpoints/last.pt`` (with optimiser, RNG
  state, the plateau count, the trajectory and the log, for resuming by the one rule of
  ``srda.train.checkpoint``; docs/training.md, Resume): tensors, numbers, strings only,
  loadable with ``torch.load(..., weights_only=True)``; ``load_classifier`` rebuilds the
  network from either.
* ``summary.json``: steps, best step and val scores, test accuracy, input size, settings.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from srda import layout, schema
from srda.diagnosis.data import (
    AUGMENTS,
    SPLITS,
    UPSAMPLE_MODES,
    BatchSampler,
    SplitData,
    load_split_data,
    permute_labels_by_subject,
    shard_path,
    to_input,
    train_batch,
)
from srda.diagnosis.metrics import balanced_accuracy, prob_columns
from srda.errors import InputError
from srda.models.diagnosis import DiagnosisNet
from srda.shards import atomic_path, read_shard, write_csv
from srda.train import checkpoint, precision
from srda.train.csvlog import CsvLog
from srda.train.data import read_classes
from srda.train.plateau import Plateau, restart_reason, settings_problem
from srda.train.step import train_step

logger = logging.getLogger(__name__)
#: The diagnosis: settings as the schema fills them in: the only source of their defaults.
_DEFAULT = schema.job_defaults("classifier")

SELECT_ON = ("balanced_acc", "acc")
LOG_NAME = layout.classifier_log_csv("").name
PREDICTIONS_NAME = layout.predictions_csv("").name
VAL_PREDICTIONS_NAME = "val_predictions.csv"
SUMMARY_NAME = layout.classifier_summary_json("").name
CHECKPOINT_DIR = "checkpoints"
LOG_COLUMNS = (
    "step",
    "loss",
    "train_acc",
    "lr",
    "seconds",
    "val_loss",
    "val_acc",
    "val_balanced_acc",
)
#: Settings that do not change the weights after a given step (a resume may change them).
_TRAJECTORY_FREE = (
    "steps",
    "epochs",
    "val_every",
    "checkpoint_every",
    "eval_batch_size",
    "bn_batches",
    "until_plateau",
    "patience",
)


# --------------------------------------------------------------------------------------------
# Settings


@dataclass
class ClassifierSettings(checkpoint.RunSettings):
    """One recipe for every image source of a dataset (see the module docstring)."""

    KIND = "classifier"
    depth: int = _DEFAULT["depth"]  # 50: the paper's ResNet50; 10 or 18 for quick runs
    steps: int | None = _DEFAULT["steps"]  # optimiser steps (ignored when epochs is set)
    epochs: float | None = _DEFAULT["epochs"]  # passes over the train split; overrides steps
    batch_size: int = _DEFAULT["batch_size"]
    lr: float = _DEFAULT["lr"]  # Adam, as the paper's training recipe
    weight_decay: float = 0.0
    augment: str = _DEFAULT["augment"]  # none | hflip | flips (True -> hflip, False -> none)
    val_every: int = _DEFAULT["val_every"]  # 0: validate only at the end
    select_on: str = _DEFAULT["select_on"]  # balanced_acc | acc
    upsample: int = 1  # resize every image by this integer factor first (1: own size)
    upsample_mode: str = "nearest"  # nearest | bicubic
    eval_batch_size: int = 64
    bn_batches: int = 16  # train batches that re-estimate BatchNorm statistics before eval
    checkpoint_every: int | None = None  # default: val_every (0: only at the end)
    seed: int = 0
    precision: str = _DEFAULT["precision"]  # as the SR trainer's: auto | fp32 | bf16 | fp16 (CUDA)
    channels_last: bool | str = _DEFAULT["channels_last"]  # auto: on (precision.CPU_CHANNELS_LAST)
    shuffle_labels: bool = False  # the control row: labels permuted across subjects
    until_plateau: bool = _DEFAULT["until_plateau"]  # stop on a select_on plateau
    patience: int = _DEFAULT["patience"]  # validations without a new best

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"classifier settings: {what}")

        need(
            self.precision in precision.PRECISIONS,
            f"precision {self.precision!r} not in {precision.PRECISIONS}",
        )
        need(
            isinstance(self.channels_last, bool) or self.channels_last == "auto",
            f"channels_last={self.channels_last!r}: bool or auto",
        )

        if isinstance(self.augment, bool):
            self.augment = "hflip" if self.augment else "none"
        need(self.depth in (10, 18, 34, 50, 101, 152), f"depth={self.depth} is not a ResNet depth")
        if self.epochs is None:
            need(
                self.steps is not None and int(self.steps) == self.steps and self.steps >= 1,
                f"steps={self.steps} must be a positive integer (or set epochs)",
            )
        else:
            need(self.epochs > 0 and math.isfinite(self.epochs), f"epochs={self.epochs} > 0")
        need(self.batch_size >= 2, f"batch_size={self.batch_size} must be >= 2 (BatchNorm)")
        need(self.lr > 0 and math.isfinite(self.lr), f"lr={self.lr} must be positive")
        need(self.weight_decay >= 0, f"weight_decay={self.weight_decay} must be >= 0")
        need(self.augment in AUGMENTS, f"augment {self.augment!r} not in {AUGMENTS}")
        need(self.val_every >= 0, f"val_every={self.val_every} must be >= 0")
        need(self.select_on in SELECT_ON, f"select_on {self.select_on!r} not in {SELECT_ON}")
        need(
            int(self.upsample) == self.upsample and self.upsample >= 1,
            f"upsample={self.upsample} must be a positive integer",
        )
        need(
            self.upsample_mode in UPSAMPLE_MODES,
            f"upsample_mode {self.upsample_mode!r} not in {UPSAMPLE_MODES}",
        )
        need(self.eval_batch_size >= 1, f"eval_batch_size={self.eval_batch_size} must be >= 1")
        need(self.bn_batches >= 0, f"bn_batches={self.bn_batches} must be >= 0")
        need(
            self.checkpoint_every is None or self.checkpoint_every >= 0,
            f"checkpoint_every={self.checkpoint_every} must be >= 0",
        )
        need(self.seed >= 0, f"seed={self.seed} must be >= 0")
        problem = settings_problem(self.until_plateau, self.patience, self.val_every)
        need(problem is None, problem or "")
        self.upsample = int(self.upsample)

    def total_steps(self, n_train: int) -> int:
        if self.epochs is not None:
            return max(1, math.ceil(self.epochs * n_train / self.batch_size))
        return int(self.steps)

    def for_device(self, device: torch.device) -> ClassifierSettings:
        """The settings with ``auto`` precision and memory format resolved for ``device``."""
        return replace(
            self,
            precision=precision.resolve_precision(self.precision, device),
            channels_last=precision.resolve_channels_last(self.channels_last, device),
        )


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    data: SplitData,
    settings: ClassifierSettings,
    device: torch.device | str = "cpu",
) -> None:
    """Re-estimate every BatchNorm's running mean and variance for the current weights.

    Torch's running averages (momentum 0.1) trail the weights: after a short or fast training
    they describe a network of some steps ago, and eval-mode predictions can collapse to one
    class while train-mode ones are right. This resets them and averages the batch statistics
    (momentum None: an equal-weight average) of ``bn_batches`` batches of ``batch_size`` train
    images, without augmentation, always the same images (``default_rng([seed, 2])``), as
    "precise BN" does (Wu & Johnson, 2021). Weights are untouched (the training trajectory
    does not depend on it) and the result depends only on the weights, so it is idempotent.
    ``bn_batches=0`` keeps torch's running averages.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if settings.bn_batches == 0 or not norms or len(data) == 0:
        return
    device = torch.device(device)
    settings = settings.for_device(device)
    momenta = [m.momentum for m in norms]
    was_training = model.training
    order = np.random.default_rng([settings.seed, 2]).permutation(len(data))
    total = settings.bn_batches * settings.batch_size
    positions = np.arange(total) % len(data)  # fewer images than that: reuse them
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for start in range(0, total, settings.batch_size):
            index = np.sort(order[positions[start : start + settings.batch_size]])
            x = _network_input(np.asarray(data.images[index]), settings, device, data.source)
            with precision.autocast(device, settings.precision):
                model(x)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.train(was_training)


# --------------------------------------------------------------------------------------------
# Model helpers


def _network_input(
    images: np.ndarray, settings: ClassifierSettings, device: torch.device, source: str
) -> torch.Tensor:
    """A batch of images as the network takes it: resized, on ``device``, NHWC when asked."""
    return _on_device(
        to_input(images, settings.upsample, settings.upsample_mode, source), settings, device
    )


def _on_device(x: torch.Tensor, settings: ClassifierSettings, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if settings.channels_last is True:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _train_batch(
    data: SplitData, sampler: BatchSampler, step: int, settings: ClassifierSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    return train_batch(data, sampler, step, settings.upsample, settings.upsample_mode)


def build_classifier(num_classes: int, depth: int = 50) -> DiagnosisNet:
    """The downstream classifier: a plain ResNet (no attention) with a 1-channel stem."""
    return DiagnosisNet(num_classes=num_classes, in_channels=1, attention_at=None, depth=depth)


def load_classifier(path: Path | str) -> tuple[DiagnosisNet, dict[str, Any]]:
    """Rebuild the network of ``best.pt`` / ``last.pt`` (loaded with ``weights_only=True``).

    Returns ``(model on CPU in eval mode, info)``; info holds ``classes``, ``depth``, ``step``,
    ``settings`` and the val scores when the checkpoint has them.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "classifier checkpoint not found")
    ckpt = checkpoint.load_checkpoint(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "classes" not in ckpt:
        raise InputError(path, "not a classifier checkpoint (no model state or classes)")
    model = build_classifier(len(ckpt["classes"]), int(ckpt["depth"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise InputError(path, f"does not fit the classifier: {exc}") from exc
    info = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer", "log")}
    return model.eval(), info


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    data: SplitData,
    settings: ClassifierSettings,
    device: torch.device | str = "cpu",
    desc: str | None = None,
) -> np.ndarray:
    """Softmax probabilities (N, classes) of ``model`` (in eval mode) on every image."""
    device = torch.device(device)
    settings = settings.for_device(device)
    was_training = model.training
    model.eval()
    out = []
    starts = range(0, len(data), settings.eval_batch_size)
    try:
        for start in tqdm(starts, desc=desc, unit="batch", disable=desc is None, leave=False):
            rows = np.asarray(data.images[start : start + settings.eval_batch_size])
            x = _network_input(rows, settings, device, data.source)
            with precision.autocast(device, settings.precision):
                logits = model(x)
            out.append(torch.softmax(logits.float(), dim=1).double().cpu().numpy())
    finally:
        model.train(was_training)
    n_classes = getattr(model, "num_classes", None)
    return np.concatenate(out) if out else np.zeros((0, n_classes or 0))


def _scores(prob: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    if not len(labels):
        return {"loss": float("nan"), "acc": float("nan"), "balanced_acc": float("nan")}
    pred = prob.argmax(axis=1)
    picked = np.clip(prob[np.arange(len(labels)), labels], 1e-12, None)
    return {
        "loss": float(-np.mean(np.log(picked))),
        "acc": float(np.mean(pred == labels)),
        "balanced_acc": balanced_accuracy(labels, pred, prob.shape[1]),
    }


def prediction_frame(data: SplitData, prob: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """``index``, ``subject`` (``slice`` when known), ``label``, ``pred``, ``prob_<class>``."""
    frame = data.meta.reset_index(drop=True).copy()
    frame["subject"] = frame["subject"].astype(str)
    names = np.asarray(classes, dtype=object)
    frame["label"] = names[data.labels]
    frame["pred"] = names[prob.argmax(axis=1)] if len(prob) else []
    for k, column in enumerate(prob_columns(classes)):
        frame[column] = prob[:, k]
    return frame


# --------------------------------------------------------------------------------------------
# Run bookkeeping


@dataclass
class Predictions:
    """What ``fit_and_predict`` returns: the test predictions and the run's summary."""

    frame: pd.DataFrame  # predictions.csv
    classes: list[str]
    summary: dict[str, Any]
    out_dir: Path

    @property
    def path(self) -> Path:
        return self.out_dir / PREDICTIONS_NAME


# --------------------------------------------------------------------------------------------
# The experiment


def fit_and_predict(
    train: SplitData,
    val: SplitData | None,
    test: SplitData,
    classes: list[str],
    settings: ClassifierSettings,
    out_dir: Path | str,
    device: torch.device | str = "cpu",
    resume: bool = True,
) -> Predictions:
    """Train a classifier on ``train``, select it on ``val``, predict ``test``.

    ``val`` None (or empty) disables model selection: the last model is used, with a
    warning. With ``resume``, ``checkpoints/last.pt`` is continued by the resume rule of
    ``srda.train.checkpoint`` (same trajectory and data: resumed; more steps: continued; a run
    that already finished only re-predicts); otherwise the run starts over.
    """
    wall = time.perf_counter()
    out_dir = Path(out_dir)
    device = torch.device(device)
    classes = [str(c) for c in classes]
    if len(classes) < 2:
        raise ValueError(f"need at least two classes, got {classes}")
    if len(train) == 0:
        raise InputError(train.source, "no training images")
    val = val if val is not None and len(val) else None
    splits = {"train": train, "test": test}
    if val is not None:
        splits["val"] = val
    for name, data in splits.items():
        if len(data.labels) and (data.labels.min() < 0 or data.labels.max() >= len(classes)):
            raise InputError(data.source, f"{name} labels outside 0..{len(classes) - 1}")
    sizes = {name: data.images.shape[1:] for name, data in splits.items()}
    if len(set(sizes.values())) > 1:
        raise InputError(
            train.source, f"splits have different image sizes {sizes}: one size per source"
        )
    if val is None:
        logger.warning("no validation images: no model selection, the last model is used")
        splits["val"] = SplitData(train.images[:0], train.labels[:0], source=train.source)

    steps = settings.total_steps(len(train))
    with precision.deterministic_on_cpu(device), torch.random.fork_rng(devices=[]):
        model, info = _fit(splits, classes, settings, steps, out_dir, device, resume)
        prob_test = predict_proba(model, test, settings, device, desc="predicting test")
        prob_val = (
            predict_proba(model, val, settings, device, desc="predicting val")
            if val is not None
            else None
        )

    frame = prediction_frame(test, prob_test, classes)
    write_csv(out_dir / PREDICTIONS_NAME, frame)
    if prob_val is not None:
        write_csv(out_dir / VAL_PREDICTIONS_NAME, prediction_frame(val, prob_val, classes))
    else:
        (out_dir / VAL_PREDICTIONS_NAME).unlink(missing_ok=True)  # left by an earlier run
    test_scores = _scores(prob_test, test.labels)
    height, width = train.images.shape[1:]
    summary = {
        **info,
        "classes": classes,
        "n_train": len(train),
        "n_val": len(val) if val is not None else 0,
        "n_test": len(test),
        "image_size": [int(height), int(width)],
        "input_size": [int(height) * settings.upsample, int(width) * settings.upsample],
        "test_acc": test_scores["acc"],
        "test_balanced_acc": test_scores["balanced_acc"],
        "predictions": str(out_dir / PREDICTIONS_NAME),
        "log": str(out_dir / LOG_NAME),
        "device": str(device),
        "host": platform.node(),
        "threads": torch.get_num_threads(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "wall_seconds": round(time.perf_counter() - wall, 3),
        "settings": asdict(settings),
    }
    with atomic_path(out_dir / SUMMARY_NAME) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    logger.info(
        "test accuracy %.4f (balanced %.4f) with the model of step %s",
        test_scores["acc"],
        test_scores["balanced_acc"],
        info.get("best_step"),
    )
    return Predictions(frame=frame, classes=classes, summary=summary, out_dir=out_dir)


def _classify(
    net: nn.Module, batch: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, dict[str, Any]]:
    """The classifier's objective: cross-entropy (in float32) and the batch's accuracy."""
    logits = net(batch["x"])
    loss = F.cross_entropy(logits.float(), batch["y"])
    return loss, {"train_acc": float((logits.detach().argmax(1) == batch["y"]).float().mean())}


def _fit(
    splits: dict[str, SplitData],
    classes: list[str],
    settings: ClassifierSettings,
    steps: int,
    out_dir: Path,
    device: torch.device,
    resume: bool,
) -> tuple[nn.Module, dict[str, Any]]:
    train, val = splits["train"], splits["val"]
    ckpt_dir = out_dir / CHECKPOINT_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    settings = settings.for_device(device)  # checkpoints record what ran

    torch.manual_seed(settings.seed)
    model = build_classifier(len(classes), settings.depth).to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=settings.lr, weight_decay=settings.weight_decay)
    scaler = precision.grad_scaler(settings.precision)
    sampler = BatchSampler(len(train), settings.batch_size, settings.seed, settings.augment)

    now = checkpoint.trajectory(
        asdict(settings),
        _TRAJECTORY_FREE,
        data=checkpoint.data_fingerprint(
            {
                "train_images": train.images,
                "train_labels": train.labels,
                "val_images": val.images,
                "val_labels": val.labels,
            },
            classes,
        ),
    )
    ckpt = None
    if resume:
        ckpt = checkpoint.resume_point(
            last_path,
            now,
            steps,
            (lambda c: restart_reason(settings.until_plateau, settings.patience, c),),
            what="classifier",
        )
    start, seconds_before = 0, 0.0
    plateau = Plateau(settings.until_plateau, settings.patience)
    best_scores: dict[str, float] = {}
    log = CsvLog(out_dir / LOG_NAME, columns=LOG_COLUMNS)
    state = checkpoint.RunState(model, optimizer, device, log, now, steps, plateau, scaler=scaler)
    if ckpt is not None:
        start, seconds_before = state.restore(ckpt)
        plateau = state.plateau
        best_scores = dict(ckpt.get("best_scores") or {})
        logger.info("resuming the classifier from %s at step %d of %d", last_path, start, steps)
    else:
        best_path.unlink(missing_ok=True)
        log.start()

    def meta() -> dict[str, Any]:  # what load_classifier needs, in best.pt and last.pt
        return {
            "format": checkpoint.CHECKPOINT_FORMAT,
            "classes": classes,
            "depth": settings.depth,
            "settings": asdict(settings),
        }

    def save_last(step: int, seconds: float) -> None:
        state.save(last_path, step, seconds, **meta(), best_scores=best_scores)

    logger.info(
        "classifier: ResNet%d, %d classes, %d train / %d val images of %s, %d steps of %d",
        settings.depth,
        len(classes),
        len(train),
        len(val),
        "x".join(str(s * settings.upsample) for s in train.images.shape[1:]),
        steps,
        settings.batch_size,
    )
    model.train()
    t0 = time.perf_counter()
    seconds = seconds_before
    val_every, ckpt_every = settings.val_every, settings.checkpoint_interval
    end = start if plateau.stopped else steps  # the last step this call may train
    bar = tqdm(
        total=steps, initial=min(start, steps), desc="classifier", unit="step", mininterval=1.0
    )
    for step in range(start + 1, end + 1):
        x, y = _train_batch(train, sampler, step, settings)
        batch = {"x": _on_device(x, settings, device), "y": y.to(device)}
        loss, terms = train_step(
            model, _classify, batch, optimizer, params, device, settings.precision, scaler
        )
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value) and scaler is None:  # fp16: the scaler skips the step
            raise FloatingPointError(f"classifier loss is {loss_value} at step {step}")
        row: dict[str, Any] = {
            "step": step,
            "loss": loss_value,
            "train_acc": terms["train_acc"],
            "lr": settings.lr,
        }
        if len(val) and ((val_every and step % val_every == 0) or step == steps):
            scores = validate(model, train, val, settings, device)
            row.update({f"val_{k}": v for k, v in scores.items()})
            if plateau.observe(step, scores[settings.select_on]):
                best_scores = scores
                checkpoint.save_checkpoint(
                    {"step": step, **meta(), "model": model.state_dict(), "val": scores},
                    best_path,
                )
            logger.info(
                "step %d/%d: loss %.4f, val acc %.4f, balanced %.4f (best %s %.4f at %d)",
                step,
                steps,
                loss_value,
                scores["acc"],
                scores["balanced_acc"],
                settings.select_on,
                plateau.best if plateau.best is not None else float("nan"),
                plateau.best_step or 0,
            )
            if plateau.due and step < steps:
                plateau.stop(step)
                logger.info(
                    "no better val %s in %d validations (patience %d): stopping at step %d "
                    "of %d, best at step %s",
                    settings.select_on,
                    plateau.since_best,
                    settings.patience,
                    step,
                    steps,
                    plateau.best_step,
                )
        seconds = seconds_before + time.perf_counter() - t0
        row["seconds"] = round(seconds, 3)
        log.append(row)
        if (ckpt_every and step % ckpt_every == 0) or step == steps or plateau.stopped:
            save_last(step, seconds)
        bar.update(1)
        bar.set_postfix({"loss": f"{loss_value:.3g}"}, refresh=False)
        if plateau.stopped:
            break
    bar.close()
    if start and plateau.stopped and plateau.stopped_at == start:
        logger.info(
            "%s: classifier stopped on a validation plateau at step %d (cap %d)",
            last_path,
            start,
            steps,
        )
    elif start >= steps:
        logger.info("%s: classifier training already complete (%d steps)", last_path, start)

    weights = best_path if best_path.exists() else last_path
    selected = checkpoint.load_checkpoint(weights)
    model.load_state_dict(selected["model"])
    recalibrate_bn(model, train, settings, device)  # no-op for best.pt (same weights, same data)
    model.eval()
    info = {
        # completed steps: the cap, or where the run stopped on a plateau
        "steps": plateau.stopped_at if plateau.stopped else max(start, steps),
        "resumed_from": start or None,
        **plateau.summary(),
        "select_on": settings.select_on,
        "best_step": plateau.best_step if best_path.exists() else int(selected["step"]),
        "best_val": plateau.best,
        "best_val_acc": best_scores.get("acc"),
        "best_val_balanced_acc": best_scores.get("balanced_acc"),
        "train_seconds": round(seconds, 3),
        "weights": str(weights),
        "parameters": sum(p.numel() for p in params),
        "precision": settings.precision,
        "channels_last": settings.channels_last,
    }
    return model, info


def validate(
    model: nn.Module,
    train: SplitData,
    val: SplitData,
    settings: ClassifierSettings,
    device: torch.device,
) -> dict[str, float]:
    """Val ``loss``, ``acc`` and ``balanced_acc`` of the current weights (BatchNorm statistics
    re-estimated on ``train`` first)."""
    recalibrate_bn(model, train, settings, device)
    return _scores(predict_proba(model, val, settings, device), val.labels)


# --------------------------------------------------------------------------------------------
# One call per image source


def run_diagnosis(
    data_dir: Path | str,
    source: str,
    settings: ClassifierSettings,
    out_dir: Path | str,
    scale: int = 4,
    method: str | None = None,
    sr_seed: int = 0,
    device: torch.device | str = "cpu",
    train_images: Path | str | None = None,
    degradation: str = layout.BICUBIC,
) -> Predictions:
    """Table III for one row: classify ``source`` (``hr``, ``lr`` or ``sr`` with ``method``
    and its SR seed ``sr_seed``) of the dataset in ``data_dir``, the LR and SR images of the
    LR model ``degradation``. ``train_images``: a shard that replaces the train split's
    images (``diagnosis.cross_fit``: out-of-fold SR output)."""
    classes = read_classes(Path(data_dir))
    splits = {
        split: load_split_data(
            data_dir,
            split,
            shard_path(data_dir, split, source, scale, method, sr_seed, degradation),
            classes,
        )
        for split in SPLITS
    }
    if train_images is not None:  # cross-fitted SR train images (same rows, same labels)
        images = read_shard(train_images)
        if images.shape != splits["train"].images.shape:
            raise InputError(
                train_images,
                f"shape {images.shape} != the train split's {splits['train'].images.shape}",
            )
        splits["train"] = replace(splits["train"], images=images, source=str(train_images))
    if settings.shuffle_labels:
        splits = permute_labels_by_subject(splits, settings.seed)
    return fit_and_predict(
        splits["train"], splits["val"], splits["test"], classes, settings, out_dir, device
    )
