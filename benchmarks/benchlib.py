"""Shared pieces of the benchmark harness: time budgets, step timing, FLOP counting, matmul peak.

Nothing here knows about SR methods; ``harness.py`` and the ``bench_*`` modules use it.

- ``Budget``: one overall deadline, shared out between sections by weight; time a section does
  not use flows to the sections after it.
- ``time_steps``: warm-up steps, then timed steps while the deadline allows (at least one timed
  step always runs, so a figure always exists); the figure is items / median step time.
- ``count_flops``: FLOPs of a callable from ``torch.utils.flop_counter.FlopCounterMode`` (matrix
  multiplies and convolutions, forward and backward), with torchvision's deformable convolution
  added (the counter does not know it).
- ``matmul_peak``: the best GFLOP/s of ``torch.mm`` on large fp32 matrices.
- ``resolved_config``, ``run_snakemake``, ``command_line``: the suite's config, workflow and a
  result's command line.

torch is imported where it is used: ``bench_data.py`` measures the data stage's peak memory in
a process of its own, which must not pay for torch.
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("bench")


# --------------------------------------------------------------------------------------------
# Time budget


class Budget:
    """An overall deadline shared out between named sections by weight.

    ``start(name)`` gives the section ``weight / (weights of the sections not yet started)`` of
    the time left, so a section that finishes early leaves its time to the later ones.
    ``seconds`` <= 0 means no budget (every deadline is None).
    """

    def __init__(self, seconds: float, weights: dict[str, float]) -> None:
        if any(w <= 0 for w in weights.values()):
            raise ValueError(f"section weights must be positive: {weights}")
        self.seconds = float(seconds)
        self.begin = time.perf_counter()
        self.end = self.begin + self.seconds if self.seconds > 0 else None
        self.weights = dict(weights)
        self.pending = list(weights)
        self.used: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def remaining(self) -> float | None:
        return None if self.end is None else self.end - time.perf_counter()

    def start(self, name: str) -> float | None:
        """Begin a section; returns its deadline (a ``time.perf_counter()`` value) or None."""
        if name not in self.pending:
            raise KeyError(f"section {name!r} is not pending (pending: {self.pending})")
        self._finish()
        share = self.weights[name] / sum(self.weights[s] for s in self.pending)
        self.pending.remove(name)
        now = time.perf_counter()
        self._current = (name, now)
        if self.end is None:
            return None
        return now + max(0.0, self.end - now) * share

    def _finish(self) -> None:
        if self._current is not None:
            name, t0 = self._current
            self.used[name] = round(time.perf_counter() - t0, 3)
            self._current = None

    def close(self) -> dict[str, Any]:
        """End the current section; the summary written into bench.json."""
        self._finish()
        wall = time.perf_counter() - self.begin
        return {
            "time_budget_s": self.seconds if self.seconds > 0 else None,
            "wall_s": round(wall, 3),
            "over_budget": bool(self.seconds > 0 and wall > self.seconds),
            "section_seconds": self.used,
        }


def split_deadline(deadline: float | None, parts: int) -> float | None:
    """The deadline of the first of ``parts`` equal shares of the time left before ``deadline``."""
    if deadline is None:
        return None
    now = time.perf_counter()
    return now + max(0.0, deadline - now) / max(1, parts)


# --------------------------------------------------------------------------------------------
# Timing


def time_steps(
    step: Callable[[], Any],
    items: int,
    warmup: int,
    steps: int,
    deadline: float | None,
    label: str,
    sync: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run ``warmup`` untimed then up to ``steps`` timed calls of ``step``.

    Every warm-up call and the first timed call always run; a further timed call runs only if
    the last call's duration still fits before ``deadline``. ``items`` is what one call
    processes (images), so ``items_per_second = items / median``. ``sync`` (e.g. a CUDA
    synchronize) is called before each clock read.
    """
    sync = sync or (lambda: None)
    warm: list[float] = []
    times: list[float] = []
    cpu: list[float] = []
    last = 0.0
    for i in range(warmup + steps):
        timed = i >= warmup
        if timed and times and deadline is not None and time.perf_counter() + last > deadline:
            break
        sync()
        c0, t0 = time.process_time(), time.perf_counter()
        step()
        sync()
        last = time.perf_counter() - t0
        if timed:
            times.append(last)
            cpu.append(time.process_time() - c0)
        else:
            warm.append(last)
        logger.info(
            "  %s: %s step %d: %.3f s (%.2f items/s)",
            label,
            "timed" if timed else "warm-up",
            (i - warmup + 1) if timed else i + 1,
            last,
            items / last if last > 0 else math.inf,
        )
    median = statistics.median(times)
    return {
        "items_per_second": items / median,
        "median_step_s": median,
        "min_step_s": min(times),
        "max_step_s": max(times),
        "step_seconds": times,
        "warmup_step_seconds": warm,
        "timed_steps": len(times),
        "steps_requested": steps,
        "budget_cut": len(times) < steps,
        "cpu_per_wall": sum(cpu) / sum(times) if sum(times) > 0 else None,
    }


def best_of(fn: Callable[[], Any], repeats: int, deadline: float | None) -> list[float]:
    """Wall seconds of up to ``repeats`` calls (at least one; more while the deadline allows)."""
    times: list[float] = []
    for _ in range(max(1, repeats)):
        if times and deadline is not None and time.perf_counter() + times[-1] > deadline:
            break
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


# --------------------------------------------------------------------------------------------
# FLOPs


def _conv_flops(n: int, c_out: int, c_in_per_group: int, kh: int, kw: int, h: int, w: int) -> int:
    """Multiply-adds of a dense convolution, counted as 2 FLOPs each (as FlopCounterMode does)."""
    return 2 * n * c_out * c_in_per_group * kh * kw * h * w


def _deform_conv_forward(input_shape, weight_shape, *args, out_shape=None, **kwargs) -> int:
    # The sampling (bilinear interpolation of the input at the offsets) is not counted, like
    # every other non-matmul op: with one input channel it is ~2% of the conv's multiply-adds.
    n, c_out, h, w = out_shape
    _, c_in_g, kh, kw = weight_shape
    return _conv_flops(n, c_out, c_in_g, kh, kw, h, w)


def _deform_conv_backward(grad_shape, input_shape, weight_shape, *args, out_shape=None, **kw):
    # Gradients of the input (and offsets) and of the weight: two convolutions' worth, the
    # convention FlopCounterMode uses for aten.convolution_backward.
    n, c_out, h, w = grad_shape
    _, c_in_g, kh, kwid = weight_shape
    return 2 * _conv_flops(n, c_out, c_in_g, kh, kwid, h, w)


def _custom_mapping() -> dict[Any, Callable[..., int]]:
    import torch

    mapping: dict[Any, Callable[..., int]] = {}
    try:
        import torchvision  # noqa: F401  (registers the torchvision ops)

        ops = torch.ops.torchvision
        mapping[ops.deform_conv2d] = _deform_conv_forward
        mapping[ops._deform_conv2d_backward] = _deform_conv_backward
    except (ImportError, AttributeError, RuntimeError):  # pragma: no cover - torchvision missing
        pass
    return mapping


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` (matmuls and convolutions, deformable ones included)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=_custom_mapping()) as counter:
        fn()
    return int(counter.get_total_flops())


# --------------------------------------------------------------------------------------------
# Matrix-multiply peak


def matmul_peak(
    n: int, repeats: int, deadline: float | None, dtype: torch.dtype | None = None
) -> dict[str, Any]:
    """Best GFLOP/s of ``torch.mm`` on two n x n matrices (2 n^3 FLOPs per product; fp32 by
    default)."""
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=g, dtype=dtype)
    b = torch.rand(n, n, generator=g, dtype=dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: first-call costs and page faults
    times = best_of(lambda: torch.mm(a, b, out=out), repeats, deadline)
    flops = 2 * n**3
    return {
        "n": n,
        "dtype": str(dtype).replace("torch.", ""),
        "repeats": len(times),
        "best_s": min(times),
        "median_s": statistics.median(times),
        "gflops_best": flops / min(times) / 1e9,
        "gflops_median": flops / statistics.median(times) / 1e9,
    }


def finite_positive(values: Sequence[Any]) -> bool:
    """True when every value is a finite positive real number (bools excluded)."""
    return all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        for v in values
    )


def run_snakemake(args: Sequence[str], log_path: Path, what: str) -> float:
    """Run this repository's workflow with ``args`` (targets, --cores, --config ...), the
    interpreter's own bin folder first on PATH, all output into ``log_path``; returns its wall
    seconds. A failed run raises RuntimeError naming ``what`` and the log."""
    repo = Path(__file__).resolve().parent.parent
    bin_dir = Path(sys.executable).parent
    snakemake = bin_dir / "snakemake"
    cmd = [str(snakemake) if snakemake.exists() else "snakemake", *args]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        done = subprocess.run(cmd, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise RuntimeError(f"{what} failed (exit {done.returncode}); see {log_path}")
    return wall


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that ran ``script`` (as recorded in a result: interpreter, script, args)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, script, *args])


def resolved_config(preset: str, config_path: Path | None = None) -> dict[str, Any]:
    """``config.yaml`` resolved with ``preset``: the settings every job of that preset sees."""
    import yaml

    from srda.config import resolve

    path = config_path or Path(__file__).resolve().parent.parent / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["preset"] = preset
    return resolve(raw)
