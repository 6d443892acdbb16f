"""Precision and device settings shared by every trainer (SR methods, the diagnosis classifier)
and the benchmarks: what ``auto`` resolves to, autocast, the fp16 gradient scaler, and the
deterministic algorithms that make a CPU run resume bit for bit (docs/training.md, Precision).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


#: CPU flags (Linux /proc/cpuinfo) of bf16 instructions: x86's AVX512-BF16 and AMX, Arm's BF16.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str] | None:
    """The CPU's feature flags from ``cpuinfo`` (Linux), or None where it cannot be read."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 and Arm spell it differently
            flags.update(value.split())
    return flags or None


def onednn_bf16() -> bool:
    """Whether oneDNN (torch's CPU convolutions) offers bf16 on this CPU, natively or not."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def native_bf16(device: torch.device, cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether ``device`` computes in bf16 natively (CUDA Ampere+, or a CPU with AVX512-BF16
    or AMX). Elsewhere bf16 is emulated: 0.05x fp32 on an AVX2 CPU (make bench).

    On a CPU, oneDNN's own answer is not enough: it supports bf16 on any AVX512 CPU, where it
    emulates the products (0.6x fp32 for a convolution, 0.8x for a matrix product, measured on
    an EPYC capped to AVX512 without BF16), so the CPU must also list a bf16 instruction flag.
    Where the flags cannot be read (not Linux) oneDNN's answer stands."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        if not onednn_bf16():
            return False
        flags = cpu_flags(cpuinfo)
        return flags is None or any(f in flags for f in BF16_CPU_FLAGS)
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


#: ``channels_last: auto`` on a CPU (on CUDA it is always on). NHWC measured faster there at
#: the quick preset's shapes on 1 core (benchmarks/bench_memory_format.py, 2026-12-03, AMD EPYC
#: capped to AVX2 / with AVX512, fp32): SR inference 0.97-1.53x / 0.94-1.74x, SR training
#: 0.97-1.31x / 0.85-1.20x (A2F the one slower, 0.85-0.97x), the ResNet-10 classifier at
#: 96x96 1.21x / 1.20x (at 24x24 0.83x / 1.26x). Set ``channels_last: false`` per method to opt
#: out.
CPU_CHANNELS_LAST = True


def resolve_flag(value: bool | str, device: torch.device, on_cpu: bool = False) -> bool:
    """``auto`` means on with CUDA (channels_last, pinned memory), and on a CPU ``on_cpu``
    (``CPU_CHANNELS_LAST`` for channels_last; pinned memory has no use there)."""
    if value == "auto":
        return device.type == "cuda" or (device.type == "cpu" and on_cpu)
    return bool(value)


def resolve_channels_last(value: bool | str, device: torch.device) -> bool:
    """``channels_last`` for ``device``: ``auto`` is on with CUDA and ``CPU_CHANNELS_LAST`` on a
    CPU. The SR trainer, super-resolving and the classifier all resolve it here."""
    return resolve_flag(value, device, on_cpu=CPU_CHANNELS_LAST)


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
