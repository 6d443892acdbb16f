"""Checkpoints every trainer writes and the one rule by which a run resumes from them.

A checkpoint holds only tensors, dicts, lists, numbers and strings (it loads with
``torch.load(path, weights_only=True)``) and is written to a temporary file that then replaces
the old one, so an interrupted save leaves the previous checkpoint intact.

The resume rule (docs/training.md, Resume), the same for the SR trainer and the classifier:
``last.pt`` records the run's **trajectory**: every setting that changes the weights after a
given step (a trainer's settings minus those that only say how long, how often to validate or
checkpoint, or where to stop), what else the caller says shapes it (the model and its loss) and
a fingerprint of the training data. A run whose trajectory equals the checkpoint's resumes from
it; a raised step count continues it (the trainer may veto that with a check, e.g. when the
learning-rate schedule of the steps already taken would change); anything else starts fresh,
with a log line naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srda.errors import InputError
from srda.shards import atomic_path
from srda.train.csvlog import CsvLog
from srda.train.plateau import Plateau

logger = logging.getLogger(__name__)

#: 2: last.pt records the trajectory and the log (format 1 checkpoints start fresh).
CHECKPOINT_FORMAT = 2
FINGERPRINT_ROWS = 16  # images per array the data fingerprint reads (evenly spaced)

#: A veto on resuming: the checkpoint in, a reason to start fresh (or None) out.
ResumeCheck = Callable[[dict[str, Any]], str | None]


def save_checkpoint(obj: dict[str, Any], path: Path) -> None:
    """Write to a temporary file next to ``path`` and rename: a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU; a bad file is an InputError."""
    if not path.exists():
        raise InputError(path, "checkpoint not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise InputError(path, f"not a readable weights-only checkpoint ({exc})") from exc


# --------------------------------------------------------------------------------------------
# RNG state


def rng_state(device: torch.device) -> dict[str, Any]:
    """The torch CPU (and CUDA) RNG states, for a checkpoint."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda" and torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    cuda = state.get("cuda")
    if cuda and device.type == "cuda" and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            logger.warning(
                "checkpoint has CUDA RNG states of %d devices, %d visible: not restored",
                len(cuda),
                torch.cuda.device_count(),
            )


@contextmanager
def rng_preserved(device: torch.device) -> Iterator[None]:
    """Validation must not move the training RNG (training is then independent of val_every)."""
    state = rng_state(device)
    try:
        yield
    finally:
        set_rng_state(state, device)


# --------------------------------------------------------------------------------------------
# The resume rule


def data_fingerprint(arrays: Mapping[str, np.ndarray], extra: Any = None) -> str:
    """What a resume must find unchanged in the data: each array's shape and dtype, every
    value of a 1-D array (labels) and ``FINGERPRINT_ROWS`` evenly spaced images of the others
    (an SR method retrained or a cohort remade changes every image), plus ``extra`` (JSON)."""
    h = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for name in sorted(arrays):
        array = arrays[name]
        h.update(f"{name}:{tuple(array.shape)}:{array.dtype}".encode())
        if array.ndim <= 1:
            h.update(np.ascontiguousarray(array).tobytes())
        elif len(array):
            rows = np.unique(np.linspace(0, len(array) - 1, FINGERPRINT_ROWS).astype(int))
            h.update(np.ascontiguousarray(array[rows]).tobytes())
    return h.hexdigest()


def trajectory(settings: Mapping[str, Any], free: Iterable[str], **more: Any) -> dict[str, Any]:
    """The settings that decide the weights after a given step: ``settings`` without the
    ``free`` keys, with ``more`` (the data fingerprint, the model and its loss) beside."""
    skip = set(free)
    return {**{k: v for k, v in settings.items() if k not in skip}, **more}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def changes(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``"lr 0.0001 -> 0.0002"`` for every key whose value differs (or is on one side only)."""
    missing = object()
    out = []
    for key in sorted(set(saved) | set(now)):
        before, after = saved.get(key, missing), now.get(key, missing)
        if before == after:
            continue
        if key == "data":
            out.append("the training data changed")
        else:
            out.append(
                f"{key} {'(unset)' if before is missing else _short(before)} -> "
                f"{'(unset)' if after is missing else _short(after)}"
            )
    return out


def fresh_reason(
    ckpt: Mapping[str, Any],
    now: Mapping[str, Any],
    steps: int,
    checks: Sequence[ResumeCheck] = (),
) -> str | None:
    """Why the run cannot continue from ``ckpt`` (None: it can). ``now`` is the run's
    trajectory, ``steps`` its step count; ``checks`` are the trainer's own vetoes."""
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        return f"written in checkpoint format {ckpt.get('format')}, not {CHECKPOINT_FORMAT}"
    changed = changes(ckpt.get("trajectory") or {}, now)
    if changed:
        return "changed since the checkpoint: " + "; ".join(changed)
    step = int(ckpt["step"])
    if step > steps:
        return f"steps lowered to {steps}, below the checkpoint's step {step}"
    for check in checks:
        reason = check(dict(ckpt))
        if reason:
            return reason
    return None


def resume_point(
    path: Path,
    now: Mapping[str, Any],
    steps: int,
    checks: Sequence[ResumeCheck] = (),
    what: str = "run",
) -> dict[str, Any] | None:
    """The checkpoint at ``path`` when this run may continue from it, else None: no file, or
    a log line saying why the run starts fresh."""
    if not path.exists():
        return None
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or "step" not in ckpt:
        raise InputError(path, "not a training checkpoint (no step)")
    reason = fresh_reason(ckpt, now, steps, checks)
    if reason:
        logger.info("%s: the %s starts fresh: %s", path, what, reason)
        return None
    saved_steps = ckpt.get("steps")  # the step count of the run that wrote it
    if saved_steps is not None and saved_steps != steps:
        logger.info(
            "%s: steps %s -> %d: the %s continues from step %d",
            path,
            saved_steps,
            steps,
            what,
            int(ckpt["step"]),
        )
    return ckpt


# --------------------------------------------------------------------------------------------
# What both trainers save in last.pt and restore from it


class RunState:
    """The state of a training run that ``last.pt`` carries for every trainer: the model, the
    optimiser (and LR scheduler, fp16 grad scaler), the torch RNG, the log so far, the run's
    trajectory and step count, the best validation score (as ``best_key``), its step and the
    plateau count. Each trainer adds its own entries."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        log: CsvLog,
        trajectory: dict[str, Any],
        steps: int,
        plateau: Plateau,
        best_key: str = "best",
        scaler: torch.amp.GradScaler | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    ) -> None:
        self.model, self.optimizer, self.device, self.log = model, optimizer, device, log
        self.trajectory, self.steps = trajectory, steps
        self.plateau, self.best_key = plateau, best_key  # the best score is saved as best_key
        self.scaler, self.scheduler = scaler, scheduler

    def save(self, path: Path, step: int, seconds: float, **extra: Any) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "steps": self.steps,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "seconds": seconds,
            "rng": rng_state(self.device),
            "trajectory": self.trajectory,
            "log": self.log.text(),
            self.best_key: self.plateau.best,
            "best_step": self.plateau.best_step,
            "plateau": self.plateau.counts(),
            **extra,
        }
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        save_checkpoint(state, path)

    def restore(self, ckpt: dict[str, Any]) -> tuple[int, float]:
        """Load ``ckpt`` (from ``resume_point``) into the run, the plateau count under this
        run's stopping rule included; returns (its step, its seconds)."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"], self.device)
        step = int(ckpt["step"])
        self.log.start(resume_step=step, saved=ckpt.get("log"))
        self.plateau = Plateau.resumed(
            self.plateau.enabled,
            self.plateau.patience,
            ckpt.get(self.best_key),
            ckpt.get("best_step"),
            ckpt.get("plateau"),
            step,
            self.steps,
        )
        return step, float(ckpt.get("seconds", 0.0))


class RunSettings:
    """What both trainers' settings dataclasses share: built from a config mapping (unknown keys
    are a ValueError listing them), and the interval of ``last.pt``."""

    KIND = "run"  # the word the error uses ("train settings", "classifier settings")
    val_every: int
    checkpoint_every: int | None

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Any:
        """Settings from a config mapping; unknown keys are a ValueError listing them."""
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.KIND} settings {unknown}; known: {sorted(known)}")
        return cls(**values)

    @property
    def checkpoint_interval(self) -> int:
        """Steps between two ``last.pt`` (default: ``val_every``; 0: only at the end)."""
        return self.val_every if self.checkpoint_every is None else self.checkpoint_every
