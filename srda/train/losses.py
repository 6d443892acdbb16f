"""Training objectives: callables ``objective(model, batch) -> (loss, terms)``.

The trainer knows nothing of what a model returns: it hands the objective the model and the
batch (``{"lr", "hr", "label"}``) and back-propagates the loss tensor; ``terms`` (name ->
number or 0-d tensor) go to the training log. ``sr_objective`` serves plain SR networks
(``model(lr) -> sr``); ``joint_objective`` wraps any loss over a model's raw output, e.g. the
SRDA joint loss ``srda_loss(out, hr, labels, lambda1, lambda2, attention_loss)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

Batch = dict[str, torch.Tensor]
Objective = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, Any]]]

PIXEL_LOSSES = ("l1", "l2")


def pixel_loss(kind: str = "l1") -> nn.Module:
    """``"l1"`` (mean absolute error, the SR default) or ``"l2"`` (mean squared error)."""
    if kind == "l1":
        return nn.L1Loss()
    if kind == "l2":
        return nn.MSELoss()
    raise ValueError(f"unknown pixel loss {kind!r}; expected one of {', '.join(PIXEL_LOSSES)}")


def sr_objective(kind: str = "l1") -> Objective:
    """Pixel loss of a plain SR network ``model(lr) -> sr`` against the HR patch.

    Computed in float32 (also under autocast); the single term is named after ``kind``.
    """
    loss_fn = pixel_loss(kind)

    def objective(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        sr = model(batch["lr"])
        hr = batch["hr"]
        if sr.shape != hr.shape:
            raise ValueError(
                f"the model made SR patches of shape {tuple(sr.shape)} for HR patches of "
                f"shape {tuple(hr.shape)} (wrong scale or padding?)"
            )
        loss = loss_fn(sr.float(), hr.float())
        return loss, {kind: float(loss.detach())}

    return objective


def joint_objective(
    loss_fn: Callable[..., tuple[torch.Tensor, dict]], **loss_kwargs: Any
) -> Objective:
    """Objective of a model whose output a loss takes whole: ``loss_fn(model(lr), hr, labels,
    **loss_kwargs) -> (total, terms)``.

    For SRDA: ``joint_objective(srda_loss, lambda1=6e-4, lambda2=1e-4, attention_loss="mean")``.
    """

    def objective(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, Any]]:
        out = model(batch["lr"])
        return loss_fn(out, batch["hr"], batch["label"], **loss_kwargs)

    return objective


def predict_sr(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """The SR image of ``model(lr)``: the output itself, or its ``"sr"`` entry for a dict."""
    out = model(lr)
    if isinstance(out, dict):
        return out["sr"]
    return out
