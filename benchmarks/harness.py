#!/usr/bin/env python
"""The benchmark harness behind ``make bench``: every figure of issue 6 in one run.

Writes ``results/bench/bench.json`` (every measurement, with its settings and assumptions) and
``results/bench/bench.md`` (the same as Markdown tables), and prints progress to stderr.

Sections, in the order they run (each gets a share of ``--time-budget``; time a section does
not use goes to the next ones):

  matmul      the machine's fp32 matrix-multiply peak (torch.mm on large matrices)
  srda_train  SRDA joint training images/s: plain fp32 vs the tuned candidates, same process
  body        SRDA's residual body: counted FLOPs over measured time (GFLOP/s)
  methods     training and inference images/s of every method, FLOPs per image
  eval        the suite's PSNR/SSIM vs a per-image scikit-image loop (values equal to 1e-6)
  workflow    a smoke run's wall time, per-job overhead, peak memory, evaluation share of wall
  data        data stage slices/s and peak memory (smoke run files, or a small cohort here)
  gpu_hours   the paper preset's GPU-hours from measured FLOPs and the protocol's steps

Sizes: the paper preset's networks, batch 8, HR patch 64 (``--tiny``: the smoke preset's tiny
networks and small batches, for the tests; its figures say nothing about speed).

bf16: on a CPU without native bf16 (no AVX512-BF16 or AMX: an AVX2-only CPU) bf16 autocast is
emulated, about 30 times slower than fp32, so the run skips the work that would emulate it (the
bf16 tuned candidates of ``srda_train`` and ``--run-precision``'s fp32 / bf16 check), records
a reason for each under ``bf16.skipped`` (and in ``nulls``), takes the best fp32 candidate as
the tuned figure and holds it to the fp32-only target (1.1x plain; 2x with native bf16). The
CPU kind comes from ``srda.train.trainer.native_bf16``, the detector behind the trainer's
``precision: auto``; ``--bf16 native|emulated`` overrides it.

    .venv/bin/python benchmarks/harness.py                       # what `make bench` runs
    .venv/bin/python benchmarks/harness.py --tiny --out /tmp/b   # seconds, for tests
    .venv/bin/python benchmarks/harness.py --smoke-results results/smoke --time-budget 600
    .venv/bin/python benchmarks/harness.py --bf16 native     # time emulated bf16 all the same
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bench_eval
import bench_methods
import bench_precision_psnr
import bench_srda_train as bst
import gpu_hours
import smoke_run
import torch
from benchlib import Budget, command_line, matmul_peak, resolved_config

from srda.report.tables import to_markdown

logger = logging.getLogger("bench")

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("matmul", "srda_train", "body", "methods", "eval", "workflow", "data", "gpu_hours")
WEIGHTS = {
    "matmul": 0.03,
    "srda_train": 0.35,
    "body": 0.04,
    "methods": 0.40,
    "eval": 0.05,
    "workflow": 0.05,
    "data": 0.03,
    "gpu_hours": 0.05,
}
#: What the measurements keep of the budget however long a fresh smoke run took (seconds).
MIN_MEASURE_SECONDS = 60.0
#: Settings of a full run and of ``--tiny``; command-line options override either.
MODES: dict[str, dict[str, Any]] = {
    "full": {
        "preset": "paper",
        "batch": 8,
        "patch": 64,
        "infer_batch": 4,
        "infer_lr": 40,
        "warmup": 1,
        "steps": 3,
        "matmul_n": 4096,
        "matmul_repeats": 10,
        "eval_images": 128,
        "eval_size": 256,
        "eval_repeats": 5,
        "startup_repeats": 3,
        "data_datasets": None,
        "data_subjects": None,
        "time_budget": 1200.0,
    },
    "tiny": {
        "preset": "smoke",
        "batch": 2,
        "patch": 16,
        "infer_batch": 2,
        "infer_lr": 12,
        "warmup": 0,
        "steps": 1,
        "matmul_n": 256,
        "matmul_repeats": 3,
        "eval_images": 8,
        "eval_size": 48,
        "eval_repeats": 1,
        "startup_repeats": 1,
        "data_datasets": ["adni-mri"],
        "data_subjects": 10,
        "time_budget": 120.0,
    },
}
#: The dataset whose method settings (paper: patch 64) the model benchmarks take.
BENCH_DATASET = "adni-pet"
#: The headline keys of bench.json, with what each means (also the Markdown's first table).
HEADLINE: dict[str, str] = {
    "srda_train_imgs_per_s_plain": "SRDA joint training images/s, plain fp32 (default "
    "memory format, the trainer's Adam)",
    "srda_train_imgs_per_s_tuned": "SRDA joint training images/s, best tuned candidate "
    "(srda_train_tuned_config)",
    "srda_train_tuned_config": "which candidate the tuned figure is",
    "srda_train_speedup": "tuned / plain images/s (target: >= 2 with native bf16, >= 1.1 "
    "without; the targets table says which applied)",
    "matmul_peak_gflops": "best torch.mm fp32 GFLOP/s on large square matrices, this run",
    "srda_body_gflops": "SRDA residual body (forward + backward, fp32): counted FLOPs / time",
    "srda_body_share_of_peak": "srda_body_gflops / matmul_peak_gflops",
    "eval_speedup_vs_skimage": "scikit-image per-image loop time / suite PSNR+SSIM time",
    "eval_max_abs_diff": "largest absolute difference, suite vs scikit-image, over the "
    "PSNR and SSIM values",
    "eval_share_of_wall": "the smoke run's Table I scoring (re-timed) / its wall time",
    "smoke_wall_s": "wall seconds of the smoke run",
    "quick_wall_s": "wall seconds of a finished quick run (--quick-results; first job start "
    "to last job end)",
    "quick_peak_rss_mb": "largest peak memory of any job of that quick run (MB)",
    "per_job_overhead_s": "fresh interpreter importing what a job imports (torch, srda)",
    "workflow_peak_rss_mb": "largest peak memory of any job of the smoke run (MB)",
    "data_slices_per_s": "data stage slices/s (synthesize + prepare)",
    "data_peak_rss_mb": "data stage peak memory (MB)",
    "paper_gpu_hours_estimate": "GPU-hours of the paper preset (assumptions in gpu_hours)",
    "precision_psnr_diff_db": "SRDA test PSNR after equal quick-preset steps, tuned precision "
    "minus fp32, mean over seeds (--precision-results)",
    "precision_psnr_spread_db": "fp32 test PSNR max - min over the same seeds",
}
#: The tuned SRDA step's target (tuned / plain fp32 images/s) by CPU kind (issue 19): bf16
#: autocast pays only where bf16 is native; elsewhere the gain must come from fp32 tuning.
SPEEDUP_TARGETS = {"native": 2.0, "emulated": 1.1}
#: What ``--bf16`` accepts: ``auto`` detects; the other two say which kind of CPU to assume.
BF16_CHOICES = ("auto", "native", "emulated")


# --------------------------------------------------------------------------------------------
# Command line


def _path_option(group: Any, flag: str, metavar: str, what: str) -> None:
    group.add_argument(flag, type=Path, default=None, metavar=metavar, help=what)


def _subset_option(p: Any, flag: str, names: Sequence[str], metavar: str, what: str) -> None:
    """An option naming some of ``names`` (default: all of them)."""
    every = list(names)
    help_text = f"{what} (default all: {' '.join(every)})"
    p.add_argument(flag, nargs="+", choices=every, default=every, metavar=metavar, help=help_text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark harness: writes bench.json and bench.md (see the module doc).",
    )
    p.add_argument(
        "--out", type=Path, default=REPO / "results" / "bench", help="output folder (results/bench)"
    )
    p.add_argument("--tiny", action="store_true", help="tiny sizes and steps (tests; seconds)")
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="total budget shared by the sections (default 1200, --tiny 120; 0: none). "
        "Every measurement takes at least one timed step, so a run can go past it",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all CPUs)")
    smoke = p.add_mutually_exclusive_group()
    _path_option(
        smoke,
        "--smoke-results",
        "DIR",
        "a finished smoke run to read (default: results/smoke if it exists)",
    )
    smoke.add_argument(
        "--run-smoke",
        action="store_true",
        help="run the smoke preset into OUT/smoke first (minutes; counted in the budget, the "
        "measurements get what it leaves)",
    )
    _path_option(
        p,
        "--quick-results",
        "DIR",
        "also read a finished quick-preset run (its benchmark files): wall time, per-rule "
        "seconds, peak memory, evaluation share (the quick target)",
    )
    precision = p.add_mutually_exclusive_group()
    _path_option(
        precision,
        "--precision-results",
        "JSON",
        "also read bench_precision_psnr.py's result (precision_psnr.json): SRDA's PSNR "
        "after equal quick-preset steps, tuned precision against fp32 over seeds (a target)",
    )
    precision.add_argument(
        "--run-precision",
        action="store_true",
        help="also run bench_precision_psnr.py (quick preset, 3 seeds x fp32 / bf16; ~10 min on "
        "2 cores with bf16 hardware, not counted in the budget) into OUT/precision, after the "
        "sections; skipped, with the reason recorded, on a CPU without native bf16 (--bf16)",
    )
    p.add_argument(
        "--bf16",
        choices=BF16_CHOICES,
        default="auto",
        help="auto (default): detect whether this CPU has native bf16 (AVX512-BF16 or AMX, as "
        "the trainer's precision auto does); without it the emulated-bf16 work (bf16 tuned "
        "candidates, --run-precision) is skipped and the tuned target is 1.1x instead of 2x. "
        "native / emulated: assume that kind of CPU instead",
    )
    _subset_option(p, "--sections", SECTIONS, "SECTION", "sections to run")
    p.add_argument("--methods", nargs="+", default=None, help="methods to measure (default all)")
    _subset_option(
        p,
        "--tuned-candidates",
        bench_methods.TUNED_CANDIDATES,
        "CANDIDATE",
        "tuned SRDA paths to try, the fastest is the tuned figure",
    )
    p.add_argument(
        "--screen-factor",
        type=float,
        default=2.0,
        help="a tuned candidate whose first step takes over this many times the plain median "
        "is not timed further (default 2)",
    )
    for key, kind, what in (
        ("batch", int, "training batch"),
        ("patch", int, "training HR patch side"),
        ("infer_batch", int, "inference batch"),
        ("infer_lr", int, "inference LR image side"),
        ("warmup", int, "untimed steps per measurement"),
        ("steps", int, "timed steps per measurement (median reported)"),
        ("matmul_n", int, "matrix side for the matmul peak"),
        ("eval_images", int, "images for the evaluation benchmark"),
        ("eval_size", int, "their side"),
    ):
        full, tiny = MODES["full"][key], MODES["tiny"][key]
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=kind,
            default=None,
            help=f"{what} (default {full}; --tiny {tiny})",
        )
    p.add_argument(
        "--gpu-name", default=gpu_hours.GPU_NAME, help="GPU assumed for the GPU-hours estimate"
    )
    p.add_argument(
        "--gpu-peak-tflops",
        type=float,
        default=gpu_hours.GPU_PEAK_TFLOPS,
        help=f"its peak TFLOP/s (default {gpu_hours.GPU_PEAK_TFLOPS:g}: A100 dense bf16)",
    )
    p.add_argument(
        "--gpu-utilisation",
        type=float,
        default=gpu_hours.GPU_UTILISATION,
        help=f"share of the peak sustained in training (default {gpu_hours.GPU_UTILISATION:g})",
    )
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    args = p.parse_args(argv)
    mode = MODES["tiny" if args.tiny else "full"]
    for key, value in mode.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.patch % 4 or args.patch < 8:
        p.error(f"--patch {args.patch} must be a multiple of 4 and >= 8")
    for key in ("batch", "infer_batch", "infer_lr", "steps", "matmul_n", "eval_images"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.eval_size < 4 * 2 + 11:
        p.error("--eval-size must be >= 19 (11x11 SSIM window after a 4-pixel crop)")
    return args


# --------------------------------------------------------------------------------------------
# bf16: native or emulated on this CPU


def bf16_support(
    choice: str = "auto",
    machine: dict[str, Any] | None = None,
    detect: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Whether this run treats bf16 as native, why, and what follows from it.

    ``choice`` ``auto`` asks ``detect`` (default: ``srda.train.trainer.native_bf16`` on the
    CPU, the detector the trainer's ``precision: auto`` uses: oneDNN's bf16 support, which an
    AVX2-only CPU lacks); ``native`` / ``emulated`` say which kind of CPU to assume (``--bf16``;
    the tests simulate both kinds this way). ``machine`` (``bench_srda_train.machine_info``)
    adds the CPU flags, and a note when oneDNN and the flags disagree. The returned
    ``skipped`` is filled in as the run skips emulated-bf16 work (what -> reason).
    """
    if choice not in BF16_CHOICES:
        raise ValueError(f"bf16 choice {choice!r}: expected one of {', '.join(BF16_CHOICES)}")
    if choice == "auto":
        if detect is None:
            from srda.train.trainer import native_bf16

            def detect() -> bool:
                return native_bf16(torch.device("cpu"))

        native = bool(detect())
        source = "detected by srda.train.trainer.native_bf16, as the trainer's precision auto"
    else:
        native = choice == "native"
        source = f"--bf16 {choice}, detection overridden"
    flags = {k: (machine or {}).get(k) for k in ("avx512_bf16", "amx_bf16")}
    info: dict[str, Any] = {
        "native": native,
        "choice": choice,
        "source": source,
        "cpu_flags": flags,
        "speedup_target": SPEEDUP_TARGETS["native" if native else "emulated"],
        "tuned": (
            "the best candidate, bf16 ones included"
            if native
            else "the best fp32 candidate (no native bf16: bf16 candidates skipped)"
        ),
        "skip_reason": None
        if native
        else (
            f"no native bf16 ({source}): emulated bf16 is about 30x slower than fp32 on 2 AVX2 "
            "cores; --bf16 native runs it"
        ),
        "skipped": {},
    }
    if choice == "auto" and native and flags["avx512_bf16"] is False and not flags["amx_bf16"]:
        info["note"] = (
            "oneDNN supports bf16 here without AVX512-BF16 or AMX instructions (AVX512 "
            "emulation); the trainer's precision auto picks bf16 on this CPU, so its checks run"
        )
    return info


def bf16_line(bf16: dict[str, Any]) -> str:
    """One line for the log and bench.md: the CPU kind, its source, what the run does."""
    if bf16["native"]:
        return (
            f"native ({bf16['source']}): bf16 checks run; tuned target "
            f"{bf16['speedup_target']:g}x plain fp32"
        )
    return (
        f"not native ({bf16['source']}): emulated-bf16 work skipped (bf16 tuned candidates, "
        f"the fp32 / bf16 precision check); tuned = the best fp32 candidate, target "
        f"{bf16['speedup_target']:g}x plain fp32"
    )


# --------------------------------------------------------------------------------------------
# Sections


def _cpu_seconds_self_and_children() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def section_matmul(args, ctx, deadline):
    return matmul_peak(args.matmul_n, args.matmul_repeats, deadline)


def section_srda_train(args, ctx, deadline):
    bf16 = ctx["bf16"]
    skip = {} if bf16["native"] else {"bf16": bf16["skip_reason"]}
    if skip:
        logger.warning(
            "srda_train: no native bf16 (%s): the bf16 candidates are skipped, tuned = the best "
            "fp32 candidate, target %gx",
            bf16["source"],
            bf16["speedup_target"],
        )
    result = bench_methods.srda_plain_vs_tuned(
        ctx["work"],
        args.tuned_candidates,
        deadline,
        args.screen_factor,
        skip_precisions=skip,
    )
    for name, r in result["candidates"].items():
        if r["config"]["precision"] in skip:
            bf16["skipped"][f"srda_train.{name}"] = r["skipped"]
    return result


def section_body(args, ctx, deadline):
    return bench_methods.body_gflops(ctx["work"], deadline)


def section_methods(args, ctx, deadline):
    names = bench_methods.python_methods(ctx["cfg"], args.methods)
    return bench_methods.bench_methods(
        ctx["work"],
        names,
        args.infer_batch,
        args.infer_lr,
        deadline,
        reuse_srda=ctx["sections"].get("srda_train"),
    )


def section_eval(args, ctx, deadline):
    return bench_eval.bench_metrics(
        args.eval_images, args.eval_size, 4, args.eval_repeats, deadline
    )


def section_workflow(args, ctx, deadline):
    wall = None
    if args.run_smoke:
        target, wall = ctx["smoke"]
        where, how = target, f"run by the harness into {target}"
    else:
        where, how = smoke_run.pick_results(args.smoke_results)
    logger.info("workflow: job start-up (%d fresh interpreter(s))", args.startup_repeats)
    startup = smoke_run.job_startup_seconds(args.startup_repeats)
    out: dict[str, Any] = {"smoke_results": str(where) if where else None, "how": how}
    out["job_startup"] = startup
    out["run"] = None
    if where is not None:
        logger.info("workflow: reading %s", where)
        out["run"] = smoke_run.read_run(where, wall_s=wall, startup=startup, deadline=deadline)
    if args.quick_results is not None:
        logger.info("workflow: reading the quick run %s", args.quick_results)
        out["quick"] = smoke_run.read_run(args.quick_results, startup=startup, deadline=deadline)
    return out


def section_data(args, ctx, deadline):
    run = (ctx["sections"].get("workflow") or {}).get("run") or {}
    if run.get("data"):
        return run["data"]
    cmd = [sys.executable, str(Path(__file__).with_name("bench_data.py"))]
    if args.data_datasets:
        cmd += ["--datasets", *args.data_datasets]
    if args.data_subjects:
        cmd += ["--subjects", str(args.data_subjects)]
    with tempfile.TemporaryDirectory(prefix="bench-data-json-") as tmp:
        path = Path(tmp) / "data.json"
        logger.info("data: no smoke run files; timing a small cohort in a child process")
        subprocess.run(
            [*cmd, "--json", str(path)],
            check=True,
            cwd=REPO,
            stderr=subprocess.DEVNULL if args.quiet else None,
        )
        result = json.loads(path.read_text())
    result["source"] = "a small synthetic cohort made and prepared here (bench_data.py)"
    return result


def section_gpu_hours(args, ctx, deadline):
    methods = (ctx["sections"].get("methods") or {}).get("methods") or {}
    flops = {
        name: {
            "train": (row.get("train") or {}).get("flops_per_image"),
            "infer": (row.get("infer") or {}).get("flops_per_image"),
        }
        for name, row in methods.items()
    }
    if not flops:
        raise RuntimeError("no FLOPs per image: the methods section did not run or failed")
    paper = ctx["cfg"] if args.preset == "paper" else resolved_config("paper")
    return gpu_hours.estimate(
        paper,
        flops,
        args.patch,
        args.infer_lr,
        gpu_name=args.gpu_name,
        gpu_peak_tflops=args.gpu_peak_tflops,
        gpu_utilisation=args.gpu_utilisation,
        model_sizes="tiny (--tiny: not the paper's networks)" if args.tiny else "paper",
    )


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "matmul": section_matmul,
    "srda_train": section_srda_train,
    "body": section_body,
    "methods": section_methods,
    "eval": section_eval,
    "workflow": section_workflow,
    "data": section_data,
    "gpu_hours": section_gpu_hours,
}


# --------------------------------------------------------------------------------------------
# Headline figures and targets


def _get(d: dict[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _body_share(s: dict[str, Any]) -> float | None:
    body, matmul = _get(s, "body", "gflops"), _get(s, "matmul", "gflops_best")
    return body / matmul if body and matmul else None


def _eval_diff(s: dict[str, Any]) -> float | None:
    e = s.get("eval")
    return max(e["max_abs_diff_psnr"], e["max_abs_diff_ssim"]) if e else None


#: Where each headline figure is read: a dotted path into the sections' results, or (section,
#: rule). The section (the path's first part) is the one whose absence explains a null.
SOURCES: dict[str, str | tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "srda_train_imgs_per_s_plain": "srda_train.imgs_per_s_plain",
    "srda_train_imgs_per_s_tuned": "srda_train.imgs_per_s_tuned",
    "srda_train_tuned_config": "srda_train.tuned_best",
    "srda_train_speedup": "srda_train.speedup",
    "matmul_peak_gflops": "matmul.gflops_best",
    "srda_body_gflops": "body.gflops",
    "srda_body_share_of_peak": ("matmul", _body_share),
    "eval_speedup_vs_skimage": "eval.speedup",
    "eval_max_abs_diff": ("eval", _eval_diff),
    "eval_share_of_wall": "workflow.run.eval_share_of_wall",
    "smoke_wall_s": "workflow.run.wall_s",
    "quick_wall_s": "workflow.quick.wall_s",
    "quick_peak_rss_mb": "workflow.quick.peak_rss_mb",
    "per_job_overhead_s": "workflow.job_startup.median_s",
    "workflow_peak_rss_mb": "workflow.run.peak_rss_mb",
    "data_slices_per_s": "data.slices_per_s_total",
    "data_peak_rss_mb": "data.peak_rss_mb",
    "paper_gpu_hours_estimate": "gpu_hours.gpu_hours",
    "precision_psnr_diff_db": "precision_psnr.psnr_mean_diff_db",
    "precision_psnr_spread_db": "precision_psnr.reference_spread_db",
}


def _read(s: dict[str, Any], key: str) -> tuple[str, Any]:
    """(section, value) of one headline figure."""
    where = SOURCES[key]
    if isinstance(where, tuple):
        return where[0], where[1](s)
    path = where.split(".")
    return path[0], _get(s, *path)


def headline(
    sections: dict[str, Any], errors: dict[str, str], skipped: dict[str, str] | None = None
) -> tuple[dict, dict]:
    """(headline values, reasons for the null ones); ``skipped``: work left out on purpose
    (``bf16.skipped``: what -> reason), the reason of the figures it would have given."""
    skipped = skipped or {}
    s = sections
    read = {key: _read(s, key) for key in HEADLINE}
    values = {key: value for key, (_, value) in read.items()}
    tuned_keys = ("srda_train_imgs_per_s_tuned", "srda_train_tuned_config", "srda_train_speedup")
    reasons: dict[str, str] = {}
    for key, value in values.items():
        if value is not None:
            continue
        section = read[key][0]
        if section in errors:
            reasons[key] = f"section {section} failed: {errors[section]}"
        elif section in skipped:
            reasons[key] = f"skipped: {skipped[section]}"
        elif section not in s:
            reasons[key] = f"section {section} not run"
        elif key.startswith("quick_"):
            reasons[key] = "no quick run read (--quick-results DIR)"
        elif key.startswith("precision_psnr"):
            reasons[key] = "no precision check (--run-precision or --precision-results JSON)"
        elif key in ("eval_share_of_wall", "smoke_wall_s", "workflow_peak_rss_mb"):
            reasons[key] = _get(s, "workflow", "how") or "no smoke run"
            if _get(s, "workflow", "run") and key == "eval_share_of_wall":
                reasons[key] = "the smoke run has no SR test shards to re-score"
        elif key in tuned_keys:
            why = {
                r.get("skipped") or "no timed step"
                for r in (_get(s, "srda_train", "candidates") or {}).values()
            }
            reasons[key] = "no tuned candidate measured: " + (
                "; ".join(sorted(why)) or "none asked"
            )
        else:
            reasons[key] = "not measured"
    return values, reasons


def targets(
    values: dict[str, Any], bf16: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Issue 6's targets on this machine, with the measured figure and whether it is met.

    ``bf16`` (``bf16_support``) picks the tuned SRDA step's threshold by CPU kind (issue 19:
    2x with native bf16, 1.1x without; default: native) and says why the bf16 PSNR check is
    missing when it was skipped. The key ``srda_train_2x`` is kept for readers of bench.json.
    """
    bf16 = bf16 or {"native": True, "speedup_target": SPEEDUP_TARGETS["native"], "skipped": {}}
    speedup = bf16["speedup_target"]
    kind = "native bf16" if bf16["native"] else "no native bf16: fp32 candidates only"
    precision_skipped = bf16["skipped"].get("precision_psnr")

    def target(what: str, measured: Any, ok: Callable[[Any], bool], note: str = "") -> dict:
        return {
            "target": what,
            "measured": measured,
            "met": None if measured is None else bool(ok(measured)),
            **({"note": note} if note else {}),
        }

    return {
        "srda_train_2x": {
            **target(
                f"tuned SRDA training step >= {speedup:g}x plain fp32 ({kind})",
                values["srda_train_speedup"],
                lambda v: v >= speedup,
            ),
            "threshold": speedup,
            "bf16_native": bf16["native"],
        },
        "eval_under_5pct": target(
            "evaluation < 5% of the DAG's wall time",
            values["eval_share_of_wall"],
            lambda v: v < 0.05,
        ),
        "smoke_under_8_min": target(
            "smoke preset end to end < 8 minutes", values["smoke_wall_s"], lambda v: v < 480
        ),
        "peak_memory_under_4gb": target(
            "peak memory of any job < 4 GB (smoke and, when read, quick)",
            max(
                (v for v in (values["workflow_peak_rss_mb"], values["quick_peak_rss_mb"]) if v),
                default=None,
            ),
            lambda v: v < 4096,
        ),
        "quick_under_45_min": target(
            "quick preset < 45 minutes",
            values["quick_wall_s"],
            lambda v: v < 2700,
            note="" if values["quick_wall_s"] else "pass a finished quick run: --quick-results DIR",
        ),
        "psnr_within_seed_spread": target(
            "tuned PSNR after equal steps within fp32's seed-to-seed spread (3 seeds)",
            values["precision_psnr_diff_db"],
            lambda v: bench_precision_psnr.within_spread(v, values["precision_psnr_spread_db"]),
            note=(
                f"mean PSNR difference (dB) against fp32's spread "
                f"{values['precision_psnr_spread_db']:.3f} dB"
                if values["precision_psnr_diff_db"] is not None
                else f"skipped: {precision_skipped}"
                if precision_skipped
                else "--run-precision, or --precision-results JSON of bench_precision_psnr.py"
            ),
        ),
    }


# --------------------------------------------------------------------------------------------
# Markdown


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:.3e}" if abs(value) >= 10**12 else f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{digits + 1}g}"
    return str(value)


def _table(header: str, rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table (``header``: its cells as ``"a | b"``), cells through ``_fmt``."""
    cells = [header.split(" | "), *([_fmt(c) for c in row] for row in rows)]
    return [*to_markdown(cells).splitlines(), ""]


def _section(title: str, intro: str, header: str, rows: Sequence[Sequence[Any]]) -> list[str]:
    return [f"## {title}", "", *([intro, ""] if intro else []), *_table(header, rows)]


def _keys(d: dict[str, Any], *keys: str) -> list[Any]:
    return [d.get(k) for k in keys]


def _giga(value: Any) -> float | None:
    return value / 1e9 if value else None


def markdown(result: dict[str, Any]) -> str:
    s, m, budget, bf16 = result["sections"], result["machine"], result["budget"], result["bf16"]
    tiny = result["mode"] == "tiny"
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {bst.machine_line(m)}; Python {m['python']}, torchvision {m['torchvision']}.",
        f"Run: {result['started']}, mode `{result['mode']}` "
        f"({'tiny sizes: the figures say nothing about speed' if tiny else 'paper sizes'}), "
        f"wall {budget['wall_s']:.0f} s of a {_fmt(budget['time_budget_s'])} s "
        f"budget; other processes kept {_fmt(m.get('other_processes_cpu_share'))} of the CPUs "
        "busy (share; above 0.1 the figures are low).",
        f"Command: `{result['command']}`",
        "",
        f"bf16: {bf16_line(bf16)}.",
        "",
    ]
    nulls = result["nulls"]
    lines += _section(
        "Headline",
        "",
        "key | value | meaning",
        [
            [f"`{k}`", f"n/a ({nulls.get(k, '')})" if result[k] is None else result[k], meaning]
            for k, meaning in HEADLINE.items()
        ],
    )
    if bf16["skipped"]:
        lines += ["Skipped (emulated bf16):", ""]
        lines += [f"- {k}: {v}" for k, v in bf16["skipped"].items()] + [""]
    targets = [_keys(t, "target", "measured", "met") for t in result["targets"].values()]
    lines += _section("Targets (issue 6)", "", "target | measured | met", targets)
    if st := s.get("srda_train"):
        steps = ("images_per_second", "median_step_seconds", "timed_steps")
        rows = [["plain", "fp32", *_keys(st["plain"], *steps), st["plain_gflops"], ""]]
        for name, r in st["candidates"].items():
            note = r.get("skipped") or r.get("note") or ("best" if name == st["tuned_best"] else "")
            gflops = _giga((r.get("images_per_second") or 0) * st["train_flops_per_image"])
            rows.append([name, r["config"]["precision"], *_keys(r, *steps), gflops, note])
        lines += _section(
            "SRDA joint training: plain vs tuned",
            f"{st['size']} size, ResNet{st['diag_depth']} diagnosis net, batch {st['batch']}, "
            f"HR patch {st['patch_hr']}; {st['parameters']['total']:,} parameters; "
            f"{st['train_flops_per_image'] / 1e9:.3g} GFLOP per image (forward + backward). "
            f"Tuned: {st['tuned_note']}.",
            "path | precision | images/s | median s/step | timed steps | GFLOP/s | note",
            rows,
        )
    if ms := s.get("methods"):
        rows = []
        for name, r in ms["methods"].items():
            rows.append([name, r["sr_parameters"]])
            for part in (r.get("train") or {}, r.get("infer") or {}):
                ips, flops = _keys(part, "items_per_second", "flops_per_image")
                rows[-1] += [ips, _giga(flops), part.get("gflops_achieved")]
        lines += _section(
            "Every method",
            f"Training: batch {ms['batch']}, HR patch {ms['patch_hr']}, fp32, Adam, the "
            f"method's trainer objective. Inference: batch {ms['infer_batch']} of "
            f"{ms['infer_lr']}x{ms['infer_lr']} LR images, no grad.",
            "method | SR params | train img/s | train GFLOP/img | train GFLOP/s | infer img/s "
            "| infer GFLOP/img | infer GFLOP/s",
            rows,
        )
    if s.get("matmul") or s.get("body"):
        mm, body = s.get("matmul") or {}, s.get("body") or {}
        shape = (
            f"{body.get('blocks')} blocks x {body.get('features')} features, batch "
            f"{body.get('batch')}, {body.get('lr_side')}x{body.get('lr_side')}"
        )
        peak = f"n = {mm.get('n')}, best of {mm.get('repeats')}"
        rows = [["torch.mm peak (fp32)", mm.get("gflops_best"), peak]]
        rows.append(["SRDA body, forward + backward", body.get("gflops"), shape])
        lines += _section("Compute efficiency", "", "what | GFLOP/s | details", rows)
    if e := s.get("eval"):
        diff = f"{e['max_abs_diff_psnr']:.2g}, {e['max_abs_diff_ssim']:.2g}"
        lines += _section(
            "Evaluation",
            f"{e['images']} images of {e['size']}x{e['size']}, border crop {e['crop']}: the "
            f"suite is {e['speedup']:.3g}x faster than the scikit-image loop; the values agree "
            f"to {e['tolerance']:g} (asserted).",
            "scorer | seconds | images/s | max abs diff (PSNR, SSIM)",
            [
                ["srda.metrics", *_keys(e, "suite_s", "suite_images_per_s"), diff],
                ["scikit-image loop", *_keys(e, "skimage_s", "skimage_images_per_s"), "reference"],
            ],
        )
    if wf := s.get("workflow"):
        lines += ["## Workflow", "", f"Smoke run: {wf['how']}.", ""]
        startup = wf["job_startup"]["median_s"]
        if run := wf.get("run"):
            lines += [
                f"{run['jobs']} jobs, wall {run['wall_s']:.0f} s ({run['wall_source']}), "
                f"{run['job_seconds_total']:.0f} s of job time; job start-up {startup:.2f} s "
                f"({_fmt(run.get('overhead_share_of_job_seconds'))} of job time); largest "
                f"job {run['largest_job']} {run['peak_rss_mb']:.0f} MB; evaluation "
                f"{_fmt(run['eval_share_of_wall'])} of wall.",
                "",
            ]
            cols = ("rule", "jobs", "total_s", "mean_s", "max_s", "peak_rss_mb")
            rows = [_keys(r, *cols) for r in run["per_rule"]]
            lines += _table("rule | jobs | total s | mean s | max s | peak MB", rows)
        else:
            lines += [f"Job start-up: {startup:.2f} s.", ""]
    if d := s.get("data"):
        cols = ("slices", "synthesize_s", "prepare_s", "slices_per_s_total")
        lines += _section(
            "Data stage",
            f"Source: {d['source']}. Peak memory {d['peak_rss_mb']:.0f} MB.",
            "dataset | slices | synthesize s | prepare s | slices/s (total)",
            [[n, *_keys(r, *cols)] for n, r in d["datasets"].items()],
        )
    if g := s.get("gpu_hours"):
        a = g["assumptions"]
        parts = [[k, g["flops_by_part"][k], v] for k, v in g["gpu_hours_by_part"].items()]
        lines += _section(
            "Paper preset: GPU-hours estimate",
            f"**{g['gpu_hours']:,.0f} GPU-hours** on {a['gpu']} at {a['gpu_peak_tflops']:g} "
            f"TFLOP/s x {a['gpu_utilisation']:g} utilisation ({a['sustained_tflops']:g} TFLOP/s "
            f"sustained); model sizes: {a['model_sizes']}; SRDA training alone "
            f"{g['gpu_hours_srda_training']:,.1f} h.",
            "part | FLOPs | GPU-hours",
            parts,
        )
        cols = ("images_train", "patch", "batch_size")
        rows = [[n, *_keys(r, *cols)] for n, r in g["datasets"].items()]
        lines += _table("dataset | train images | patch | batch", rows)
        lines += [f"- {k}: {v}" for k, v in a.items()] + [""]
    if result["errors"]:
        lines += ["## Errors", ""] + [f"- {k}: {v}" for k, v in result["errors"].items()] + [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Main


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")  # the usual file mode, unlike mkstemp's 0600
    tmp.write_text(text)
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the selected sections; write bench.json and bench.md; return the result."""
    args = parse_args(argv)
    level = logging.WARNING if args.quiet else logging.INFO
    logger.setLevel(level)
    logging.getLogger("bench_srda_train").setLevel(level)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    threads = args.threads or bst.default_threads()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    # As a workflow job runs (srda.run.run_method): denormals flushed to zero.
    torch.set_flush_denormal(True)
    load_before = bst._loadavg()
    busy0, own0 = bst.system_busy_seconds(), _cpu_seconds_self_and_children()
    machine = bst.machine_info(threads)
    logger.info("machine: %s", bst.machine_line(machine))
    bf16 = bf16_support(args.bf16, machine)
    (logger.info if bf16["native"] else logger.warning)("bf16: %s", bf16_line(bf16))
    if bf16.get("note"):
        logger.info("bf16: %s", bf16["note"])
    chosen = [s for s in SECTIONS if s in args.sections]
    measure_budget = args.time_budget
    if args.run_smoke and "workflow" in chosen:
        # First, and inside the budget: the budget is the run's wall time (the precision
        # check aside), so `make bench` ends in time whatever the CPU makes of the smoke run.
        target = args.out / "smoke"
        logger.info("workflow: a fresh smoke run into %s (counted in the budget)", target)
        smoke_wall = smoke_run.run_smoke(target, args.out / "smoke_snakemake.log")
        ctx_smoke = (target, smoke_wall)
        if measure_budget > 0:
            measure_budget = max(MIN_MEASURE_SECONDS, measure_budget - smoke_wall)
    else:
        ctx_smoke = None
    budget = Budget(measure_budget, {s: WEIGHTS[s] for s in chosen})
    ctx: dict[str, Any] = {"sections": {}, "cfg": None, "smoke": ctx_smoke, "bf16": bf16}
    errors: dict[str, str] = {}
    try:
        ctx["cfg"] = resolved_config(args.preset)
        ctx["work"] = bench_methods.Workload(
            ctx["cfg"], BENCH_DATASET, args.batch, args.patch, args.warmup, args.steps
        )
        for i, name in enumerate(chosen, 1):
            deadline = budget.start(name)
            left = budget.remaining()
            logger.info(
                "[%d/%d] %s%s",
                i,
                len(chosen),
                name,
                f" (until {deadline - time.perf_counter():.0f} s from now; {left:.0f} s of "
                "the budget left)"
                if deadline is not None
                else "",
            )
            try:
                ctx["sections"][name] = RUNNERS[name](args, ctx, deadline)
            except Exception as exc:  # noqa: BLE001  (recorded; the other sections still run)
                errors[name] = f"{type(exc).__name__}: {exc}"
                logger.error("%s failed: %s\n%s", name, exc, traceback.format_exc())
        timing = budget.close()
        if ctx_smoke is not None:  # the smoke run came first, inside --time-budget
            timing["smoke_run_s"] = round(ctx_smoke[1], 3)
            timing["time_budget_s"] = args.time_budget if args.time_budget > 0 else None
            timing["wall_s"] = round(timing["wall_s"] + ctx_smoke[1], 3)
            timing["over_budget"] = bool(
                args.time_budget > 0 and timing["wall_s"] > args.time_budget
            )
    finally:
        torch.set_num_threads(threads_before)
        torch.set_flush_denormal(False)
    busy1, own1 = bst.system_busy_seconds(), _cpu_seconds_self_and_children()
    ncpu = bst.default_threads()
    if busy0 is not None and busy1 is not None and timing["wall_s"] > 0:
        others = max(0.0, (busy1 - busy0) - (own1 - own0)) / (timing["wall_s"] * ncpu)
    else:
        others = None
    machine.update(
        load_average_before=load_before,
        load_average_after=bst._loadavg(),
        other_processes_cpu_share=others,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    if args.run_precision and not bf16["native"]:
        bf16["skipped"]["precision_psnr"] = bf16["skip_reason"]
        logger.warning("precision check (--run-precision) skipped: %s", bf16["skip_reason"])
    elif args.run_precision:
        logger.info("precision check: bench_precision_psnr.py into %s", args.out / "precision")
        try:
            ctx["sections"]["precision_psnr"] = bench_precision_psnr.main(
                ["--out", str(args.out / "precision")]
            )
        except (RuntimeError, SystemExit) as exc:
            errors["precision_psnr"] = f"{type(exc).__name__}: {exc}"
    elif args.precision_results is not None:
        try:
            ctx["sections"]["precision_psnr"] = json.loads(args.precision_results.read_text())
        except (OSError, ValueError) as exc:
            errors["precision_psnr"] = f"{args.precision_results}: {exc}"
    values, nulls = headline(ctx["sections"], errors, bf16["skipped"])
    result: dict[str, Any] = {
        "benchmark": "srda-bench harness",
        "started": started,
        "command": command_line("benchmarks/harness.py", argv),
        "mode": "tiny" if args.tiny else "full",
        **values,
        "machine": machine,
        "bf16": bf16,
        "targets": targets(values, bf16),
        "nulls": nulls,
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("quiet",)
        },
        "budget": timing,
        "errors": errors,
        "sections": ctx["sections"],
    }
    _write(args.out / "bench.json", json.dumps(result, indent=2, default=str) + "\n")
    md = markdown(result)
    _write(args.out / "bench.md", md + "\n")
    logger.info("wrote %s and %s", args.out / "bench.json", args.out / "bench.md")
    if not args.quiet:
        print(md, flush=True)
    return result


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.WARNING if "--quiet" in sys.argv else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
    )
    sys.exit(1 if main()["errors"] else 0)
