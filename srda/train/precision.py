"""Precision and device settings shared by every trainer (SR methods, the diagnosis classifier)
and the benchmarks: what ``auto`` resolves to, autocast, the fp16 gradient scaler, and the
deterministic algorithms that make a CPU run resume bit for bit (docs/training.md, Precision).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively (CUDA Ampere+, or a CPU with AVX512-BF16
    or AMX). Elsewhere bf16 is emulated: 0.05x fp32 on an AVX2 CPU (make bench)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 where it is native, fp16 (with a gradient scaler) on older CUDA GPUs,
    fp32 elsewhere. What ``make bench`` measured to win; other values pass through, except
    fp16 off CUDA (a ValueError: the gradient scaler needs CUDA)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} not in {PRECISIONS}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision fp16 needs a CUDA device (got {device}); use bf16 or fp32")
    if precision != "auto":
        return precision
    if native_bf16(device):
        return "bf16"
    return "fp16" if device.type == "cuda" else "fp32"


def resolve_flag(value: bool | str, device: torch.device) -> bool:
    """``auto`` means on with CUDA (channels_last, pinned memory), off elsewhere."""
    return device.type == "cuda" if value == "auto" else bool(value)


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """Autocast for a resolved precision (bf16 / fp16); fp32: nothing."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    return nullcontext()


def grad_scaler(precision: str) -> torch.amp.GradScaler | None:
    """The gradient scaler fp16 needs (CUDA); None for fp32 and bf16."""
    return torch.amp.GradScaler("cuda") if precision == "fp16" else None


@contextmanager
def deterministic_on_cpu(device: torch.device) -> Iterator[None]:
    """Deterministic algorithms on CPU (warn only) for bit-exact resume; restored afterwards."""
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)
