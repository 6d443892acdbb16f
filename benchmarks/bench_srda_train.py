#!/usr/bin/env python
"""SRDA joint-training throughput (images per second) in fp32 and in bf16 autocast, on the CPU.

One training step is the trainer's own (``srda.train.step.train_step``, which
``srda.train.trainer`` calls) for the ``srda`` method: zero the
gradients, run the joint model (SR network + ResNet diagnosis network with attention) and the
full ``srda_loss`` (L1 + lambda1 * CE + lambda2 * attention, lambda1 = 6e-4, lambda2 = 1e-4,
attention loss "mean") under the precision's autocast, back-propagate, and take one step of a
single Adam (lr 1e-4) over both networks. Batches are synthetic tensors made once before timing
(HR patches in [0, 1], their x-scale box-downsampled LR patches, random labels), so data loading
is not measured.

Both precisions run in the same process from the same initial weights (a fresh Adam each).
The first ``--warmup`` steps of each are excluded; the figure is ``batch / median step time``
over ``--steps`` timed steps. bf16 means ``torch.autocast("cpu", dtype=torch.bfloat16)``; the
model keeps its deformable conv in fp32 inside autocast (torchvision has no bf16 CPU kernel).

On a CPU without native bf16 (AVX512-BF16 or AMX) oneDNN has no fast bf16 convolution and
bf16 can be far slower than fp32; the script reports what it measures and the ratio.

    .venv/bin/python benchmarks/bench_srda_train.py                      # paper size, ~5 min
    .venv/bin/python benchmarks/bench_srda_train.py --size small --steps 10 --warmup 2
    .venv/bin/python benchmarks/bench_srda_train.py --json results/bench/srda_train.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from srda.models import SIZES, VARIANTS
from srda.models.joint import build_joint, srda_loss
from srda.train.losses import joint_objective
from srda.train.precision import deterministic_on_cpu
from srda.train.step import term_values, train_step

logger = logging.getLogger("bench_srda_train")

PRECISIONS = ("fp32", "bf16")
LAMBDA1 = 0.0006
LAMBDA2 = 0.0001
ADAM_LR = 1e-4
CPU = torch.device("cpu")
#: /proc/cpuinfo flags worth reporting for this benchmark (bf16 speed depends on the last ones).
CPU_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)


# --------------------------------------------------------------------------------------------
# Machine


def read_cpuinfo(path: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """CPU model, logical/physical core counts and flags from ``/proc/cpuinfo`` (Linux).

    Elsewhere (no such file) the model falls back to ``platform.processor()`` and the flags
    are empty (reported as unknown).
    """
    model, flags = None, set()
    processors, cores = 0, set()
    physical_id = None
    try:
        text = path.read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "processor":
            processors += 1
        elif key == "model name" and model is None:
            model = value
        elif key == "flags" and not flags:
            flags = set(value.split())
        elif key == "physical id":
            physical_id = value
        elif key == "core id":
            cores.add((physical_id, value))
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "logical_cpus": processors or os.cpu_count(),
        "physical_cores": len(cores) or None,
        "flags_known": bool(flags),
        "flags": {flag: flag in flags for flag in CPU_FLAGS} if flags else {},
    }


def machine_info(threads: int) -> dict[str, Any]:
    """What the figures depend on: CPU, cores and threads used, library versions, bf16 support."""
    cpu = read_cpuinfo()
    flags = cpu["flags"]
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        import torchvision

        tv_version = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a dependency
        tv_version = None
    try:
        onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn_bf16 = None
    return {
        **cpu,
        "usable_cpus": usable,
        "threads": threads,
        "interop_threads": torch.get_num_interop_threads(),
        "avx512_bf16": flags.get("avx512_bf16") if flags else None,
        "amx_bf16": flags.get("amx_bf16") if flags else None,
        "native_bf16": (flags.get("avx512_bf16") or flags.get("amx_bf16")) if flags else None,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_bf16_supported": onednn_bf16,
        "torch": torch.__version__,
        "torchvision": tv_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }


def system_busy_seconds(path: Path = Path("/proc/stat")) -> float | None:
    """CPU seconds all processes have spent busy (not idle, not waiting on I/O) since boot.

    Summed over every CPU; None where ``/proc/stat`` is missing. The difference over an
    interval, minus this process's CPU time, is what other processes took meanwhile.
    """
    try:
        fields = path.read_text().splitlines()[0].split()
        ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


#: Environment variables that cap the instruction sets torch, oneDNN and MKL use.
ISA_CAPS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def machine_line(m: dict[str, Any]) -> str:
    """One line: CPU, cores/threads, torch, native bf16 or not."""
    if m["native_bf16"] is None:
        bf16 = "bf16 support unknown (no CPU flags)"
    else:
        bf16 = (
            f"AVX512-BF16 {'yes' if m['avx512_bf16'] else 'no'}, "
            f"AMX-BF16 {'yes' if m['amx_bf16'] else 'no'}"
        )
    cores = f"{m['physical_cores']} cores" if m["physical_cores"] else "cores unknown"
    capped = [f"{k}={os.environ[k]}" for k in ISA_CAPS if os.environ.get(k)]
    if capped:  # a CPU made to act as an older one: its flags say more than it uses
        bf16 += f"; instruction sets capped by {' '.join(capped)}"
    return (
        f"{m['cpu_model']} ({cores}, {m['logical_cpus']} logical CPUs, "
        f"{m['usable_cpus']} usable), {m['threads']} threads, torch {m['torch']} "
        f"(CPU capability {m['torch_cpu_capability']}), {bf16}"
    )


# --------------------------------------------------------------------------------------------
# The step


def deterministic(enabled: bool) -> AbstractContextManager:
    """As the trainer runs on the CPU: deterministic algorithms, warn only; restored after."""
    return deterministic_on_cpu(CPU) if enabled else nullcontext()


def make_batch(
    batch: int,
    patch: int,
    scale: int,
    channels: int,
    num_classes: int,
    seed: int,
    channels_last: bool = False,
) -> dict[str, torch.Tensor]:
    """A fixed synthetic batch: smooth HR patches in [0, 1], box-downsampled LR, labels."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, channels, max(1, patch // 8), max(1, patch // 8), generator=g)
    hr = F.interpolate(coarse, size=(patch, patch), mode="bilinear", align_corners=False)
    hr = (hr + 0.05 * torch.rand(hr.shape, generator=g)).clamp(0.0, 1.0)
    lr = F.avg_pool2d(hr, scale)
    labels = torch.randint(0, num_classes, (batch,), generator=g)
    if channels_last:
        hr = hr.contiguous(memory_format=torch.channels_last)
        lr = lr.contiguous(memory_format=torch.channels_last)
    return {"lr": lr, "hr": hr, "label": labels}


def count_parameters(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def run_precision(
    model: nn.Module,
    initial_state: dict[str, torch.Tensor],
    batch: dict[str, torch.Tensor],
    precision: str,
    warmup: int,
    steps: int,
    deadline: float | None = None,
    lambda1: float = LAMBDA1,
    lambda2: float = LAMBDA2,
    attention_loss: str = "mean",
    adam_fused: bool = False,
) -> dict[str, Any]:
    """Warm-up then timed steps of one precision, from ``initial_state`` with a fresh Adam.

    ``deadline`` (a ``time.perf_counter()`` value): every warm-up step and the first timed step
    always run; a further timed step runs only if the last step's duration still fits before
    the deadline (``budget_cut`` in the result says when steps were dropped).
    ``adam_fused``: Adam's fused kernel (``torch.optim.Adam(..., fused=True)``) instead of the
    default one (the trainer's).
    """
    model.load_state_dict(initial_state)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(
        params,
        lr=ADAM_LR,
        **({"fused": True} if adam_fused else {}),
    )
    objective = joint_objective(
        srda_loss, lambda1=lambda1, lambda2=lambda2, attention_loss=attention_loss
    )
    images = batch["lr"].shape[0]
    warm_times: list[float] = []
    times: list[float] = []
    cpu_times: list[float] = []
    losses: list[float] = []
    terms: dict[str, float] = {}
    last = 0.0
    ncpu = default_threads()
    busy0 = own0 = wall0 = None
    for i in range(warmup + steps):
        timed = i >= warmup
        if timed and times and deadline is not None and time.perf_counter() + last > deadline:
            logger.warning(
                "%s: time budget reached, %d of %d timed steps run (a step takes %.1f s)",
                precision,
                len(times),
                steps,
                last,
            )
            break
        if timed and busy0 is None:
            busy0, own0, wall0 = system_busy_seconds(), time.process_time(), time.perf_counter()
        c0, t0 = time.process_time(), time.perf_counter()
        # the trainer's own step (srda.train.step): autocast, backward, Adam
        loss_tensor, raw_terms = train_step(
            model, objective, batch, optimizer, params, CPU, precision
        )
        loss, terms = float(loss_tensor.detach()), term_values(raw_terms)
        last = time.perf_counter() - t0
        cpu = time.process_time() - c0
        if not math.isfinite(loss):
            raise FloatingPointError(f"{precision}: loss is {loss} at step {i + 1}")
        if timed:
            times.append(last)
            cpu_times.append(cpu)
        else:
            warm_times.append(last)
        losses.append(loss)
        logger.info(
            "%s %s step %d/%d: %.3f s (%.3f images/s, CPU time %.1f s), loss %.5f",
            precision,
            "timed" if timed else "warm-up",
            (i - warmup + 1) if timed else (i + 1),
            steps if timed else warmup,
            last,
            images / last,
            cpu,
            loss,
        )
    busy1, own1, wall1 = system_busy_seconds(), time.process_time(), time.perf_counter()
    others = None
    if busy0 is not None and busy1 is not None:
        # share of all usable CPUs that other processes kept busy during the timed steps
        others = max(0.0, (busy1 - busy0) - (own1 - own0)) / ((wall1 - wall0) * ncpu)
    median = statistics.median(times)
    return {
        "images_per_second": images / median,
        "median_step_seconds": median,
        "mean_step_seconds": statistics.fmean(times),
        "min_step_seconds": min(times),
        "max_step_seconds": max(times),
        "step_seconds": times,
        "warmup_step_seconds": warm_times,
        "timed_steps": len(times),
        "warmup_steps": len(warm_times),
        "steps_requested": steps,
        "budget_cut": len(times) < steps,
        # process CPU seconds per wall second over the timed steps: about the thread count
        # when the cores are ours alone; lower means waiting (other load, serial kernels)
        "cpu_utilisation": sum(cpu_times) / sum(times),
        "other_processes_cpu_share": others,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "terms_last": terms,
    }


# --------------------------------------------------------------------------------------------
# Command line


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=(
            "SRDA joint-training images/s (SR net + ResNet diagnosis net, srda_loss, one Adam) "
            "in fp32 and bf16 autocast on the CPU; median of the timed steps after warm-up."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--size", choices=list(SIZES), default="paper", help="SR network size")
    p.add_argument("--variant", choices=list(VARIANTS), default="srda", help="SRDA variant")
    p.add_argument("--batch", type=positive_int, default=8, help="images per step")
    p.add_argument("--patch", type=positive_int, default=64, help="HR patch side (LR = /scale)")
    p.add_argument("--scale", type=int, choices=[2, 3, 4, 8], default=4)
    p.add_argument("--channels", type=positive_int, default=1)
    p.add_argument("--num-classes", type=positive_int, default=3)
    p.add_argument(
        "--diag-depth",
        type=int,
        choices=[18, 34, 50, 101, 152],
        default=50,
        help="ResNet depth of the diagnosis network",
    )
    p.add_argument(
        "--attention-at",
        choices=["stem", "layer1"],
        default="stem",
        help="where the diagnosis network's attention sits (variants with attention)",
    )
    p.add_argument("--warmup", type=non_negative_int, default=1, help="untimed steps per precision")
    p.add_argument(
        "--steps", type=positive_int, default=3, help="timed steps per precision (median reported)"
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="stop taking timed steps once the run would pass this many seconds "
        "(every warm-up step and one timed step per precision always run; 0: no "
        "budget)",
    )
    p.add_argument(
        "--precisions",
        nargs="+",
        choices=PRECISIONS,
        default=list(PRECISIONS),
        help="precisions to run, in this order",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch intra-op threads (default: every usable CPU)",
    )
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="model and batch in channels_last (the trainer's option; off there too)",
    )
    p.add_argument(
        "--no-deterministic",
        dest="deterministic",
        action="store_false",
        help="skip deterministic algorithms (the trainer turns them on on the CPU)",
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the results as JSON here",
    )
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    args = p.parse_args(argv)
    if args.patch % args.scale:
        p.error(f"--patch {args.patch} must be divisible by --scale {args.scale}")
    return args


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def loss_terms(settings: dict[str, Any]) -> str:
    """The srda_loss terms a variant has, e.g. 'L1 + 0.0006 CE + 0.0001 attention'."""
    text = "L1"
    if settings["diagnosis"]:
        text += f" + {settings['lambda1']:g} CE"
    if settings["diagnosis"] and settings["attention_at"]:
        text += f" + {settings['lambda2']:g} attention"
    return text


def summary_text(result: dict[str, Any]) -> str:
    s, m, par, res = result["settings"], result["machine"], result["parameters"], result["results"]
    lines = [
        "SRDA joint training throughput (CPU)",
        f"machine:    {machine_line(m)}",
        f"command:    {result['command']}",
        (
            f"model:      {s['variant']} size={s['size']} ({s['features']} features, "
            f"{s['blocks']} blocks), x{s['scale']}, {s['channels']} channel(s), "
            + (
                f"ResNet{s['diag_depth']} diagnosis net, {s['num_classes']} classes"
                if s["diagnosis"]
                else "no diagnosis net"
            )
            + (f", attention at {s['attention_at']}" if s["attention_at"] else "")
        ),
        (
            f"parameters: SR net {par['sr_net']:,}, diagnosis net {par['diag_net']:,}, "
            f"total {par['total']:,}"
        ),
        (
            f"step:       batch {s['batch']}, HR patch {s['patch_hr']} (LR {s['patch_lr']}), "
            f"Adam lr {s['lr']:g} over {'both nets' if s['diagnosis'] else 'the SR net'}, "
            f"srda_loss ({loss_terms(s)}), channels_last={s['channels_last']}, "
            f"deterministic={s['deterministic']}"
        ),
        (
            f"timing:     median of up to {s['steps']} timed step(s) after {s['warmup']} "
            "warm-up step(s) per precision"
            + (
                " (few steps"
                + (": paper size is heavy on the CPU" if s["size"] == "paper" else "")
                + "; raise --steps for tighter figures)"
                if s["steps"] < 5
                else ""
            )
            + (f", time budget {s['time_budget_seconds']:g} s" if s["time_budget_seconds"] else "")
        ),
    ]
    load = result.get("load_average_before")
    if load is not None:
        lines.append(
            f"load:       1-min load average {load[0]:.2f} before the run, "
            f"{result['load_average_after'][0]:.2f} after; 'others' below: share of the CPUs "
            "other processes kept busy during the timed steps"
        )
    lines += [
        "",
        f"{'precision':<10}{'images/s':>10}{'median s/step':>15}{'min':>10}{'max':>10}"
        f"{'timed':>7}{'CPU/wall':>10}{'others':>8}",
    ]
    for name, r in res.items():
        lines.append(
            f"{name:<10}{r['images_per_second']:>10.3f}{r['median_step_seconds']:>15.3f}"
            f"{r['min_step_seconds']:>10.3f}{r['max_step_seconds']:>10.3f}"
            f"{r['timed_steps']:>4}/{r['steps_requested']:<2}{r['cpu_utilisation']:>10.2f}"
            + (
                f"{100 * r['other_processes_cpu_share']:>7.0f}%"
                if r.get("other_processes_cpu_share") is not None
                else f"{'n/a':>8}"
            )
        )
    for name, r in res.items():
        share = r.get("other_processes_cpu_share")
        if share is not None and share > 0.1:
            lines.append(
                f"{name}: other processes kept {100 * share:.0f}% of the CPUs busy during the "
                "timed steps: these figures are lower than on an idle machine"
            )
        if r["budget_cut"]:
            lines.append(
                f"{name}: {r['timed_steps']} of {r['steps_requested']} timed steps (time budget "
                "reached; --time-budget 0 runs them all)"
            )
    ratio = result.get("bf16_over_fp32")
    if ratio is not None:
        verdict = "faster" if ratio > 1 else "slower"
        lines.append("")
        why = ")"
        if ratio < 1 and m["onednn_bf16_supported"] is False:
            why = (
                "; no AVX512-BF16/AMX here: oneDNN has no bf16 convolution on this CPU and "
                "PyTorch falls back to its slow reference convolution)"
            )
        lines.append(f"bf16 / fp32 throughput: {ratio:.3f}x (bf16 is {verdict} than fp32" + why)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print the summary, write ``--json`` if given, return the results."""
    args = parse_args(argv)
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    wall = time.perf_counter()
    deadline = wall + args.time_budget if args.time_budget > 0 else None
    load_before = _loadavg()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    threads = args.threads or default_threads()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        machine = machine_info(torch.get_num_threads())
        logger.info("machine: %s", machine_line(machine))
        if load_before is not None and load_before[0] > 0.5:
            logger.warning(
                "load average %.2f before the run: if other processes are using the CPUs, the "
                "figures will be low ('others' in the summary tells)",
                load_before[0],
            )

        torch.manual_seed(args.seed)
        parts = VARIANTS[args.variant]
        model = build_joint(
            args.variant,
            scale=args.scale,
            channels=args.channels,
            size=args.size,
            num_classes=args.num_classes,
            diag_depth=args.diag_depth,
            attention_at=args.attention_at,
        )
        if args.channels_last:
            model.to(memory_format=torch.channels_last)
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        params = {
            "sr_net": count_parameters(model.sr_net),
            "diag_net": count_parameters(model.diag_net),
            "total": count_parameters(model),
        }
        logger.info(
            "built %s (%s): SR net %s, diagnosis net %s, total %s parameters",
            args.variant,
            args.size,
            f"{params['sr_net']:,}",
            f"{params['diag_net']:,}",
            f"{params['total']:,}",
        )
        batch = make_batch(
            args.batch,
            args.patch,
            args.scale,
            args.channels,
            args.num_classes,
            args.seed,
            args.channels_last,
        )

        results: dict[str, Any] = {}
        with deterministic(args.deterministic):
            for precision in args.precisions:
                logger.info(
                    "%s: %d warm-up + %d timed steps, batch %d, HR patch %d",
                    precision,
                    args.warmup,
                    args.steps,
                    args.batch,
                    args.patch,
                )
                results[precision] = run_precision(
                    model, initial, batch, precision, args.warmup, args.steps, deadline
                )
                logger.info(
                    "%s: %.3f images/s (median step %.3f s)",
                    precision,
                    results[precision]["images_per_second"],
                    results[precision]["median_step_seconds"],
                )
    finally:
        torch.set_num_threads(threads_before)

    sr_net = model.sr_net
    result: dict[str, Any] = {
        "benchmark": "srda_joint_training",
        "started": started,
        "command": " ".join(
            shlex.quote(a)
            for a in [
                Path(sys.executable).name,
                "benchmarks/bench_srda_train.py",
                *(sys.argv[1:] if argv is None else argv),
            ]
        ),
        "settings": {
            "variant": args.variant,
            "size": args.size,
            "features": sr_net.features,
            "blocks": sr_net.blocks,
            "scale": args.scale,
            "channels": args.channels,
            "num_classes": args.num_classes,
            "diagnosis": parts["diagnosis"],
            "diag_depth": args.diag_depth if parts["diagnosis"] else None,
            "attention_at": args.attention_at if parts["attention"] else None,
            "batch": args.batch,
            "patch_hr": args.patch,
            "patch_lr": args.patch // args.scale,
            "optimizer": "adam",
            "lr": ADAM_LR,
            "lambda1": LAMBDA1,
            "lambda2": LAMBDA2,
            "attention_loss": "mean",
            "warmup": args.warmup,
            "steps": args.steps,
            "threads": threads,
            "time_budget_seconds": args.time_budget or None,
            "channels_last": args.channels_last,
            "deterministic": args.deterministic,
            "seed": args.seed,
        },
        "machine": machine,
        "load_average_before": load_before,
        "load_average_after": _loadavg(),
        "parameters": params,
        "results": results,
        "bf16_over_fp32": (
            results["bf16"]["images_per_second"] / results["fp32"]["images_per_second"]
            if "bf16" in results and "fp32" in results
            else None
        ),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "wall_seconds": time.perf_counter() - wall,
    }
    print(summary_text(result), flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(args.json)
        logger.info("wrote %s", args.json)
    return result


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    main()
