"""Stopping a run on a validation plateau (``until_plateau``): the SR trainer and the Table III
classifier share this bookkeeping.

After every validation the trainer calls :meth:`Plateau.observe` with the step and the score
it selects on (validation PSNR, or the classifier's ``select_on`` score). A score improves when
it is not NaN and strictly above the best so far: the rule that picks ``best.pt``, so a tie
keeps the earlier step and does not reset the count. With ``enabled`` (``until_plateau``), the
patience is :attr:`Plateau.due` at the validation that brings the count of validations since
the last improvement to ``patience``, and the trainer stops there (:meth:`Plateau.stop`) unless
that validation is at the cap (the configured steps): a run that reaches its cap did not stop
early. The best checkpoint is the one kept.

The state (best, its step, validations since it, the step the run stopped at) goes into the
resume checkpoint (:meth:`counts` and :meth:`resumed`), so a resumed run counts on from where
the interrupted one was and stops at the same step. Whether the patience has run out is
decided again on resume from the saved count and the settings of the resumed run: the same
settings keep a stopped run stopped; ``until_plateau`` off, or a larger patience, trains on.
A stricter rule (switched on, or a smaller patience) that would have stopped the run at an
earlier validation than the checkpoint's step cannot be resumed: a fresh run would have kept
another model, so the trainers start over (:func:`restart_needed`). The checkpoint keeps the
longest wait before its last validation for that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class Plateau:
    """The best validation score so far and the validations since it improved."""

    enabled: bool
    patience: int
    best: float | None = None
    best_step: int | None = None
    since_best: int = 0  # validations since the best one (0 right after an improvement)
    stopped_at: int | None = None  # the step the run stopped at on the plateau
    longest_before_last: int = 0  # the largest since_best after any validation but the last
    last_val_step: int | None = None  # the step of the last validation

    def __post_init__(self) -> None:
        if int(self.patience) != self.patience or self.patience < 1:
            raise ValueError(f"patience={self.patience} must be an integer >= 1 (validations)")

    def observe(self, step: int, score: float) -> bool:
        """Count one validation; True when ``score`` is a new best."""
        improved = not math.isnan(score) and (self.best is None or score > self.best)
        if self.last_val_step is not None:
            self.longest_before_last = max(self.longest_before_last, self.since_best)
        self.last_val_step = int(step)
        if improved:
            self.best, self.best_step, self.since_best = float(score), int(step), 0
        else:
            self.since_best += 1
        return improved

    @property
    def due(self) -> bool:
        """Whether the patience has run out (always False when not ``enabled``)."""
        return bool(self.enabled) and self.since_best >= self.patience

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    def stop(self, step: int) -> None:
        """Stop at ``step`` on a decision taken elsewhere (data parallel: by rank 0)."""
        if self.stopped_at is None:
            self.stopped_at = int(step)

    def counts(self) -> dict[str, Any]:
        """What a checkpoint keeps besides the best score and its step (which the trainers
        already save under their own names): numbers and None only."""
        return {
            "since_best": self.since_best,
            "stopped_at": self.stopped_at,
            "longest_before_last": self.longest_before_last,
            "last_val_step": self.last_val_step,
        }

    @classmethod
    def resumed(
        cls,
        enabled: bool,
        patience: int,
        best: float | None,
        best_step: int | None,
        counts: dict[str, Any] | None,
        step: int,
        cap: int,
    ) -> Plateau:
        """The state saved at ``step`` (``counts`` as :meth:`counts` gave them), under this
        run's settings and its cap of ``cap`` steps. A checkpoint without counts (written
        before this option existed) counts from 0."""
        counts = counts or {}
        plateau = cls(
            enabled=enabled,
            patience=patience,
            best=best,
            best_step=best_step,
            since_best=int(counts.get("since_best") or 0),
            longest_before_last=int(counts.get("longest_before_last") or 0),
            last_val_step=counts.get("last_val_step"),
        )
        if plateau.due:  # stopped before, or a smaller patience now: stops where it is
            saved = counts.get("stopped_at")
            if saved is not None:
                plateau.stopped_at = int(saved)
            elif step < cap:
                plateau.stopped_at = int(step)
        return plateau

    def summary(self) -> dict[str, Any]:
        """``stopped_early`` and ``stopped_at_step`` (None unless stopped) for a run summary."""
        return {"stopped_early": self.stopped, "stopped_at_step": self.stopped_at}


def settings_problem(until_plateau: bool, patience: Any, val_every: int) -> str | None:
    """What is wrong with a trainer's early-stop settings, or None."""
    if int(patience) != patience or patience < 1:
        return f"patience={patience} must be an integer >= 1 (validations)"
    if until_plateau and val_every == 0:
        return "until_plateau needs val_every >= 1 (it counts validations)"
    return None


def restart_needed(enabled: bool, patience: int, counts: dict[str, Any] | None, step: int) -> bool:
    """Whether a checkpoint at ``step`` (its :meth:`Plateau.counts`) cannot be resumed under
    this rule because the rule would have stopped the run at an earlier validation."""
    if not enabled or not counts:
        return False
    if int(counts.get("longest_before_last") or 0) >= patience:
        return True
    last = counts.get("last_val_step")
    return int(counts.get("since_best") or 0) >= patience and last is not None and int(last) < step


def restart_reason(enabled: bool, patience: int, ckpt: dict[str, Any]) -> str | None:
    """``restart_needed`` for a checkpoint, as the reason its run starts fresh (or None)."""
    step = int(ckpt["step"])
    if restart_needed(enabled, patience, ckpt.get("plateau"), step):
        return f"until_plateau with patience {patience} would have stopped it before step {step}"
    return None


def replay(steps: list[int], scores: list[float], patience: int, cap: int) -> dict[str, Any]:
    """Where ``until_plateau`` with ``patience`` would have stopped a run that logged these
    validations (step, score) without it, and whether it would have kept the same model.

    Exact for a run with the same settings otherwise: the rule changes nothing before the step
    it stops at, so the validations up to there are the ones logged. ``stopped_at`` is None
    when the run would have gone to its cap; ``same_model`` says whether the best validation up
    to the stop is the run's overall best (then the tables are unchanged)."""
    full = Plateau(False, patience)
    for step, score in zip(steps, scores, strict=True):
        full.observe(step, score)
    early = Plateau(True, patience)
    for step, score in zip(steps, scores, strict=True):
        early.observe(step, score)
        if early.due and step < cap:
            early.stop(step)
            break
    return {
        "stopped_at": early.stopped_at,
        "steps_run": early.stopped_at if early.stopped else cap,
        "best_step": early.best_step,
        "best_step_without": full.best_step,
        "same_model": early.best_step == full.best_step,
    }
