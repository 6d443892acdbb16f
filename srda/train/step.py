"""One optimiser step, as every trainer takes it (and ``benchmarks/bench_srda_train.py`` times).

``objective(net, batch) -> (loss, terms)`` runs under the precision's autocast; the loss is
back-propagated and the optimiser stepped, through the fp16 gradient scaler when there is one
(gradients unscaled before clipping, so ``grad_clip`` means the same in every precision).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from srda.train.precision import autocast

Objective = Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, Any]]]


def optimiser_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    params: Sequence[nn.Parameter],
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
) -> None:
    """Back-propagate ``loss``, clip the global gradient norm (when asked) and step."""
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(optimizer)  # skipped by the scaler when the gradients are not finite
        scaler.update()
        return
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


def train_step(
    net: nn.Module,
    objective: Objective,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    params: Sequence[nn.Parameter],
    device: torch.device,
    precision: str,
    scaler: torch.amp.GradScaler | None = None,
    grad_clip: float | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Zero the gradients, run ``objective`` under autocast, step; returns its loss and terms."""
    optimizer.zero_grad(set_to_none=True)
    with autocast(device, precision):
        loss, terms = objective(net, batch)
    optimiser_step(loss, optimizer, params, scaler, grad_clip)
    return loss, terms


def term_values(terms: dict[str, Any], reserved: Sequence[str] = ()) -> dict[str, float]:
    """An objective's terms as plain floats; a name in ``reserved`` (a column the trainer
    writes itself) becomes ``term_<name>``."""
    out: dict[str, float] = {}
    for name, value in terms.items():
        key = f"term_{name}" if name in reserved else str(name)
        out[key] = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
    return out
