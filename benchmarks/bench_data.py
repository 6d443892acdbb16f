#!/usr/bin/env python
"""Data stage throughput on a small embedded cohort: slices per second and peak memory.

For each dataset asked (default: the smoke preset's three), with the preset's settings: write
the synthetic cohort (``srda.data.synthetic``), then run the data stage on it
(``srda.data.prepare.prepare_dataset``: ingest, slice, split, LR shards), timing both. The peak
resident memory is this process's (``ru_maxrss``); run it as its own process, as the harness
does, so nothing else counts towards it.

    .venv/bin/python benchmarks/bench_data.py --json /tmp/data.json
    .venv/bin/python benchmarks/bench_data.py --datasets adni-mri --subjects 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchlib import resolved_config

logger = logging.getLogger("bench_data")


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    ``VmHWM`` of ``/proc/self/status`` where there is one: unlike ``ru_maxrss`` it starts
    afresh at exec, so a parent's memory at fork time does not count. Else ``ru_maxrss``.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_dataset(settings: dict[str, Any], work: Path) -> dict[str, Any]:
    """Synthesize and prepare one dataset under ``work``; times and slice counts."""
    from srda.data import synthetic
    from srda.data.prepare import prepare_dataset

    syn = settings["synthetic"]
    cohort = work / "cohort" / settings["name"]
    t0 = time.perf_counter()
    synthetic.synthesize_dataset(settings, cohort)
    t1 = time.perf_counter()
    summary = prepare_dataset(settings, work / settings["name"], cohort)
    t2 = time.perf_counter()
    slices = int(sum(summary["counts"].values()))
    return {
        "kind": syn["kind"],
        "subjects": syn["n_subjects"],
        "voxel_mm": syn.get("voxel_mm") if syn["kind"] == "volumes" else None,
        "hr_size": settings["hr_size"],
        "slices": slices,
        "synthesize_s": t1 - t0,
        "prepare_s": t2 - t1,
        "slices_per_s_prepare": slices / (t2 - t1),
        "slices_per_s_total": slices / (t2 - t0),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke", help="preset whose dataset settings are used")
    p.add_argument("--datasets", nargs="+", default=None, help="default: every dataset")
    p.add_argument("--subjects", type=int, default=None, help="override n_subjects (>= 10)")
    p.add_argument("--json", type=Path, default=None, help="write the result here")
    args = p.parse_args(argv)
    if args.subjects is not None and args.subjects < 10:
        p.error("--subjects must be >= 10 (each split needs a subject)")

    from srda.config import dataset_job_settings

    cfg = resolved_config(args.preset)
    names = args.datasets or list(cfg["run_datasets"])
    wall = time.perf_counter()
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        for name in names:
            if name not in cfg["datasets"]:
                p.error(f"unknown dataset {name!r}; known: {', '.join(cfg['datasets'])}")
            settings = dataset_job_settings(cfg, name)
            if settings["source"] != "synthetic":
                rows[name] = {"skipped": f"source {settings['source']} (not the embedded cohort)"}
                continue
            if args.subjects is not None:
                settings["synthetic"]["n_subjects"] = args.subjects
            logger.info("data: %s", name)
            rows[name] = run_dataset(settings, Path(tmp))
    done = [r for r in rows.values() if "slices" in r]
    slices = sum(r["slices"] for r in done)
    prepare_s = sum(r["prepare_s"] for r in done)
    total_s = prepare_s + sum(r["synthesize_s"] for r in done)
    result = {
        "preset": args.preset,
        "datasets": rows,
        "slices": slices,
        "slices_per_s_prepare": slices / prepare_s if prepare_s else None,
        "slices_per_s_total": slices / total_s if total_s else None,
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": time.perf_counter() - wall,
    }
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    else:
        print(text)
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    main()
