#!/usr/bin/env python
"""Does the tuned precision train as well as fp32? SRDA's test PSNR after equal steps, per seed.

Issue 6 asks that the tuned path (bf16 autocast) reach, after the same number of steps in the
quick preset, a PSNR within the seed-to-seed spread of fp32 (3 seeds each). This script runs the
workflow for one dataset with two copies of a method that differ only in
``train.precision`` (``<method>_fp32`` and ``<method>_bf16``, added by a config overlay), for
every seed, in one results folder (one data stage for both), and compares the run.json figures:

- per precision: test PSNR and SSIM of every seed, their mean and sd, the SR job's seconds;
- the difference of the mean PSNRs against the fp32 spread (max - min over seeds): the target is
  met when |mean bf16 - mean fp32| <= that spread (and every bf16 seed is reported beside it).

    .venv/bin/python benchmarks/bench_precision_psnr.py          # quick, adni-mri, ~10 min
    .venv/bin/python benchmarks/bench_precision_psnr.py --preset smoke --seeds 0 1 --out /tmp/p

On a CPU without bf16 hardware bf16 is emulated and very slow (see bench_srda_train.py);
``--precisions`` can name others (``fp16`` needs CUDA).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported
from benchlib import run_snakemake  # noqa: E402

logger = logging.getLogger("bench_precision_psnr")

REPO = Path(__file__).resolve().parent.parent


def variant_name(method: str, precision: str) -> str:
    return f"{method}_{precision}"


def overlay(method: str, precisions: Sequence[str], base: dict[str, Any]) -> dict[str, Any]:
    """Config overlay: one copy of ``method`` per precision, the rest of its entry kept."""
    entry = base["methods"][method]
    methods = {}
    for precision in precisions:
        train = {**entry.get("train", {}), "precision": precision}
        display = f"{entry.get('display', method)} {precision}"
        methods[variant_name(method, precision)] = {**entry, "display": display, "train": train}
    return {"methods": methods}


def run_json(results: Path, dataset: str, scale: int, name: str, seed: int) -> Path:
    from srda import layout

    return layout.run_json(layout.sr_dir(results, dataset, scale, name, seed))


def run_workflow(args: argparse.Namespace, overlay_path: Path, names: list[str]) -> float:
    targets = [
        str(run_json(args.out, args.dataset, args.scale, name, seed))
        for name in names
        for seed in args.seeds
    ]
    seeds = "[" + ",".join(str(s) for s in args.seeds) + "]"
    snakemake_args = [
        *targets,
        "--cores",
        str(args.cores),
        "--configfile",
        str(overlay_path),
        "--config",
        f"preset={args.preset}",
        f"seeds={seeds}",
        f"scales=[{args.scale}]",
        f"run_datasets=[{args.dataset}]",
        f"run_methods=[{','.join(names)}]",
        f"results_dir={args.out}",
    ]
    log = args.out / "bench_precision_psnr.snakemake.log"
    logger.info("running %d SR jobs (log: %s)", len(targets), log)
    return run_snakemake(snakemake_args, log, "the precision check's workflow")


def within_spread(diff_db: float, spread_db: float) -> bool:
    """The verdict: the tuned mean PSNR is within the reference's seed-to-seed spread."""
    return abs(diff_db) <= spread_db


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def compare(results: Path, dataset: str, scale: int, method: str, precisions, seeds) -> dict:
    """Per precision: every seed's PSNR / SSIM / seconds and their summary; the verdict."""
    per: dict[str, Any] = {}
    for precision in precisions:
        runs = []
        for seed in seeds:
            summary = json.loads(
                run_json(results, dataset, scale, variant_name(method, precision), seed).read_text()
            )
            ran = (summary.get("training") or {}).get("precision")
            runs.append(
                {
                    "seed": seed,
                    "psnr": summary["psnr"],
                    "ssim": summary["ssim"],
                    "seconds": summary["seconds"],
                    "precision_ran": ran,
                }
            )
        per[precision] = {
            "runs": runs,
            "psnr": _stats([r["psnr"] for r in runs]),
            "ssim": _stats([r["ssim"] for r in runs]),
            "seconds": _stats([r["seconds"] for r in runs]),
        }
    reference, tuned = precisions[0], precisions[-1]
    ref, tun = per[reference]["psnr"], per[tuned]["psnr"]
    spread = ref["max"] - ref["min"]
    diff = tun["mean"] - ref["mean"]
    return {
        "per_precision": per,
        "reference": reference,
        "tuned": tuned,
        "psnr_mean_diff_db": diff,
        "reference_spread_db": spread,
        "reference_sd_db": ref["sd"],
        "tuned_seeds_inside_reference_range": sum(
            ref["min"] <= r["psnr"] <= ref["max"] for r in per[tuned]["runs"]
        ),
        "met": within_spread(diff, spread),
        "speedup_sr_job": per[reference]["seconds"]["mean"] / per[tuned]["seconds"]["mean"],
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"SRDA test PSNR after equal steps ({result['preset']} preset, {result['dataset']}, "
        f"x{result['scale']}, seeds {', '.join(map(str, result['seeds']))})",
        "",
        "| precision | PSNR per seed (dB) | mean +- sd | SSIM mean | SR job s (mean) |",
        "|---|---|---|---|---|",
    ]
    for precision, p in result["per_precision"].items():
        seeds = " / ".join(f"{r['psnr']:.3f}" for r in p["runs"])
        lines.append(
            f"| {precision} | {seeds} | {p['psnr']['mean']:.3f} +- {p['psnr']['sd']:.3f} | "
            f"{p['ssim']['mean']:.4f} | {p['seconds']['mean']:.0f} |"
        )
    lines += [
        "",
        f"{result['tuned']} - {result['reference']}: {result['psnr_mean_diff_db']:+.3f} dB; "
        f"{result['reference']} spread over seeds {result['reference_spread_db']:.3f} dB "
        f"(sd {result['reference_sd_db']:.3f}); {result['tuned_seeds_inside_reference_range']} "
        f"of {len(result['seeds'])} {result['tuned']} seeds inside the {result['reference']} "
        f"range; target (|diff| <= spread) {'met' if result['met'] else 'not met'}; SR job "
        f"{result['speedup_sr_job']:.2f}x faster",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="quick", choices=["smoke", "quick", "paper"])
    p.add_argument("--dataset", default="adni-mri")
    p.add_argument("--method", default="srda", help="a config method with an arch")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--precisions",
        nargs=2,
        default=["fp32", "bf16"],
        metavar=("REFERENCE", "TUNED"),
        help="the reference precision, then the tuned one",
    )
    p.add_argument("--cores", default="all")
    p.add_argument("--out", type=Path, default=REPO / "results" / "bench" / "precision")
    p.add_argument("--json", type=Path, default=None, help="default: OUT/precision_psnr.json")
    args = p.parse_args(argv)
    if len(args.seeds) < 2:
        p.error("--seeds needs at least two seeds (a spread)")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load((REPO / "config.yaml").read_text())
    if args.method not in base["methods"] or "arch" not in base["methods"][args.method]:
        raise SystemExit(f"config.yaml: no trainable method {args.method!r}")
    overlay_path = args.out / "precision_overlay.yaml"
    overlay_path.write_text(yaml.safe_dump(overlay(args.method, args.precisions, base)))
    names = [variant_name(args.method, p) for p in args.precisions]
    wall = run_workflow(args, overlay_path, names)
    result = {
        "preset": args.preset,
        "dataset": args.dataset,
        "scale": args.scale,
        "method": args.method,
        "seeds": args.seeds,
        "wall_s": round(wall, 1),
        **compare(args.out, args.dataset, args.scale, args.method, args.precisions, args.seeds),
    }
    out_json = args.json or args.out / "precision_psnr.json"
    out_json.write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    out_json.with_suffix(".md").write_text(text)
    print(text)
    return result


if __name__ == "__main__":
    main()
