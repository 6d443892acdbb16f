#!/usr/bin/env python3
"""Channels-last against the default memory format, at the quick preset's shapes, on this CPU.

    python benchmarks/bench_memory_format.py                 # every method, 1 thread
    python benchmarks/bench_memory_format.py --methods imdn srda --threads 2 --json out.json

For each method's SR network (built as a workflow job builds it, ``bench_methods.build``):
inference images/s on LR images of the quick preset's size (what ``run_method`` spends after
training, super-resolving every split), and the largest difference between the two outputs.
And one training step of the method's trainer objective on the quick preset's batch and patch.
For the Table III classifier (``build_classifier`` at the quick depth): one training step
(forward, backward, Adam) at the HR size and at the LR size. Both formats run in the same
process, alternating, from the same weights; each figure is the median of ``--repeats``.
It decides what ``channels_last: auto`` means on a CPU (docs/training.md, Precision).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from bench_methods import batch_of, build, objective_for, python_methods
from bench_srda_train import machine_info, machine_line
from benchlib import resolved_config

from srda.config import method_job_settings
from srda.run import sr_network

SCALE = 4


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up: oneDNN picks and caches its kernels
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


#: The two memory formats compared, default first.
FORMATS = {"default": torch.contiguous_format, "channels_last": torch.channels_last}


def sr_inference(method: str, settings: dict[str, Any], lr: int, batch: int, repeats: int):
    net = sr_network(build(settings)).eval()
    x = torch.rand(batch, settings["channels"], lr, lr, generator=torch.Generator().manual_seed(0))
    out: dict[str, Any] = {"method": method}
    outputs = {}
    for name, fmt in FORMATS.items():
        module, inp = net.to(memory_format=fmt), x.contiguous(memory_format=fmt)
        with torch.inference_mode():
            outputs[name] = module(inp).contiguous()
            seconds = _median_seconds(lambda m=module, i=inp: m(i), repeats)
            out[f"{name}_images_per_s"] = batch / seconds
    out["speedup"] = out["channels_last_images_per_s"] / out["default_images_per_s"]
    out["max_abs_diff"] = float((outputs["default"] - outputs["channels_last"]).abs().max())
    return out


def sr_training(method: str, settings: dict[str, Any], patch: int, batch: int, repeats: int):
    """One optimiser step of the method's trainer objective (joint for SRDA variants)."""
    out: dict[str, Any] = {"method": method}
    for name, fmt in FORMATS.items():
        torch.manual_seed(0)
        model = build(settings).train().to(memory_format=fmt)
        data = batch_of(batch, patch, channels_last=fmt is torch.channels_last)
        objective = objective_for(settings, model)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, data=data, objective=objective, opt=opt) -> None:
            opt.zero_grad(set_to_none=True)
            objective(model, data)[0].backward()
            opt.step()

        out[f"{name}_images_per_s"] = batch / _median_seconds(step, repeats)
    out["speedup"] = out["channels_last_images_per_s"] / out["default_images_per_s"]
    return out


def classifier_step(depth: int, size: int, batch: int, repeats: int) -> dict[str, Any]:
    from srda.diagnosis.classifier import build_classifier

    out: dict[str, Any] = {"classifier": f"ResNet{depth}", "size": size}
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, size, size, generator=gen)
    y = torch.randint(0, 3, (batch,), generator=gen)
    for name, fmt in FORMATS.items():
        torch.manual_seed(0)
        model = build_classifier(3, depth).train().to(memory_format=fmt)
        inp = x.contiguous(memory_format=fmt)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(model=model, inp=inp, opt=opt) -> None:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(inp), y).backward()
            opt.step()

        out[f"{name}_steps_per_s"] = 1.0 / _median_seconds(step, repeats)
    out["speedup"] = out["channels_last_steps_per_s"] / out["default_steps_per_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="quick")
    p.add_argument("--dataset", default="adni-mri", help="whose method settings and sizes")
    p.add_argument("--methods", nargs="*", help="default: every method with an architecture")
    p.add_argument("--threads", type=int, default=1, help="torch threads (a job gets 1)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = resolved_config(args.preset)
    ds = cfg["datasets"][args.dataset]
    hr, batch = int(ds["hr_size"]), int(ds["batch_size"])
    diag = cfg["diagnosis"]
    machine = machine_info(args.threads)
    print(machine_line(machine), flush=True)
    rows, training = [], []
    for method in python_methods(cfg, args.methods):
        settings = method_job_settings(cfg, args.dataset, method)
        if not settings.get("arch") or settings["arch"] == "bicubic":
            continue
        rows.append(sr_inference(method, settings, hr // SCALE, batch, args.repeats))
        r = rows[-1]
        print(
            f"{method:>18} inference {r['default_images_per_s']:7.1f} -> "
            f"{r['channels_last_images_per_s']:7.1f} images/s ({r['speedup']:.2f}x), "
            f"max |diff| {r['max_abs_diff']:.1e}",
            flush=True,
        )
        training.append(sr_training(method, settings, int(ds["patch"]), batch, args.repeats))
        t = training[-1]
        print(
            f"{method:>18} training  {t['default_images_per_s']:7.1f} -> "
            f"{t['channels_last_images_per_s']:7.1f} images/s ({t['speedup']:.2f}x)",
            flush=True,
        )
    classifiers = [
        classifier_step(int(diag["depth"]), size, int(diag["batch_size"]), args.repeats)
        for size in (hr, hr // SCALE)
    ]
    for c in classifiers:
        print(
            f"{c['classifier']:>18} training {c['size']}x{c['size']} "
            f"{c['default_steps_per_s']:6.2f} -> {c['channels_last_steps_per_s']:6.2f} "
            f"steps/s ({c['speedup']:.2f}x)"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine,
                    "sr_inference": rows,
                    "sr_training": training,
                    "classifier_training": classifiers,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
