"""What a finished workflow run (the smoke preset) tells about the workflow's own costs.

From the Snakemake benchmark files every rule writes (``{results}/benchmarks/**/*.tsv``: wall
seconds ``s`` and peak resident memory ``max_rss`` per job, read with
``workflow_summary.collect``):

- wall time of the run: measured when the harness ran it (``--run-smoke``), else the span from
  the first job's start (file time minus its seconds) to the last job's end (file time);
- jobs, job seconds per rule, the largest job's memory;
- per-job overhead: a job's fixed cost is starting Python and importing torch and the suite,
  measured here in a fresh interpreter; its share of all job seconds; the shortest job;
- data stage: slices written (``{dataset}/dataset.json``) over the ``synthesize`` and
  ``prepare`` jobs' seconds, and their peak memory;
- evaluation: the run's Table I scoring re-timed here (``bench_eval.rescore_run``), as a share
  of the run's wall time.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_eval import rescore_run
from benchlib import run_snakemake
from workflow_summary import collect, summarise

from srda import layout

logger = logging.getLogger("bench")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SMOKE = REPO / "results" / "smoke"
#: What a workflow job imports before it does anything (srda-bench run-method and friends).
JOB_IMPORTS = "import torch, torchvision, srda.cli, srda.run, baselines"


def pick_results(given: Path | None, default: Path | None = None) -> tuple[Path | None, str]:
    """The smoke run to read: ``given``, else ``default`` (``DEFAULT_SMOKE``) if it has
    benchmark files. Returns (path or None, how it was chosen or why there is none).
    """
    default = DEFAULT_SMOKE if default is None else default
    if given is not None:
        if not layout.benchmarks_dir(given).is_dir():
            return None, f"--smoke-results {given}: no benchmarks/ folder (not a finished run)"
        return given, f"--smoke-results {given}"
    if layout.benchmarks_dir(default).is_dir():
        return default, f"default {default} (an existing smoke run)"
    return None, (
        f"no smoke run: {default} has no benchmarks/ (run `make smoke` first, pass "
        "--smoke-results DIR, or let the harness run it with --run-smoke)"
    )


def run_smoke(out_dir: Path, log_path: Path, cores: str = "all") -> float:
    """Run the smoke preset into ``out_dir`` with Snakemake; returns its wall seconds.

    ``out_dir`` is the harness's own folder: a previous run there is removed first, or
    Snakemake would find everything up to date and the wall time would mean nothing.
    """
    if out_dir.exists():
        logger.info("workflow: removing the previous smoke run in %s", out_dir)
        shutil.rmtree(out_dir)
    logger.info("workflow: running the smoke preset into %s (log %s)", out_dir, log_path)
    args = ["--cores", cores, "--config", "preset=smoke", f"results_dir={out_dir}"]
    return run_snakemake(args, log_path, "the smoke run")


def job_startup_seconds(repeats: int = 3) -> dict[str, Any]:
    """Seconds a fresh interpreter takes to import what a workflow job imports."""
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", JOB_IMPORTS], check=True, cwd=REPO)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "runs": times, "imports": JOB_IMPORTS}


def _jobs_with_end_times(results_dir: Path):
    jobs = collect(results_dir)  # SystemExit when there is no benchmark file
    paths = sorted(layout.benchmarks_dir(results_dir).rglob("*.tsv"))
    jobs["end"] = [p.stat().st_mtime for p in paths]
    jobs["start"] = jobs["end"] - jobs["seconds"]
    return jobs


def _slices(results_dir: Path, dataset: str) -> int | None:
    path = layout.dataset_json(layout.data_dir(results_dir, dataset))
    try:
        return int(sum(json.loads(path.read_text())["counts"].values()))
    except (OSError, ValueError, KeyError):
        return None


def data_stage(jobs, results_dir: Path) -> dict[str, Any] | None:
    """Slices/s and peak memory of the run's synthesize and prepare jobs, per dataset."""
    rows: dict[str, Any] = {}
    for dataset in sorted(set(jobs.loc[jobs["rule"] == "prepare", "job"])):
        mine = jobs[jobs["job"] == dataset]
        prep = mine[mine["rule"] == "prepare"]
        synth = mine[mine["rule"] == "synthesize"]
        slices = _slices(results_dir, dataset)
        prep_s = float(prep["seconds"].sum())
        total_s = prep_s + float(synth["seconds"].sum())
        rows[dataset] = {
            "slices": slices,
            "prepare_s": prep_s,
            "synthesize_s": float(synth["seconds"].sum()) if len(synth) else None,
            "slices_per_s_prepare": slices / prep_s if slices and prep_s > 0 else None,
            "slices_per_s_total": slices / total_s if slices and total_s > 0 else None,
            "peak_rss_mb": float(
                mine[mine["rule"].isin(["prepare", "synthesize"])]["max_rss_mb"].max()
            ),
        }
    if not rows:
        return None
    counted = [r for r in rows.values() if r["slices"]]
    slices = sum(r["slices"] for r in counted)
    prep_s = sum(r["prepare_s"] for r in counted)
    total_s = prep_s + sum(r["synthesize_s"] or 0.0 for r in counted)
    return {
        "datasets": rows,
        "slices": slices,
        "slices_per_s_prepare": slices / prep_s if slices and prep_s > 0 else None,
        "slices_per_s_total": slices / total_s if slices and total_s > 0 else None,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in rows.values()),
        "source": "the smoke run's synthesize / prepare benchmark files",
    }


def read_run(
    results_dir: Path,
    wall_s: float | None = None,
    startup: dict[str, Any] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Everything the harness reports about a finished run (see the module docstring)."""
    jobs = _jobs_with_end_times(results_dir)
    span = float(jobs["end"].max() - jobs["start"].min())
    wall = wall_s if wall_s is not None else span
    per_rule = summarise(jobs)
    job_s = float(jobs["seconds"].sum())
    largest = jobs.loc[jobs["max_rss_mb"].idxmax()]
    out: dict[str, Any] = {
        "results_dir": str(results_dir),
        "wall_s": wall,
        "wall_source": "measured (--run-smoke)"
        if wall_s is not None
        else ("benchmark file times: first job start to last job end"),
        "jobs": int(len(jobs)),
        "job_seconds_total": job_s,
        "parallelism": job_s / wall if wall > 0 else None,
        "shortest_job_s": float(jobs["seconds"].min()),
        "median_job_s": float(jobs["seconds"].median()),
        "peak_rss_mb": float(largest["max_rss_mb"]),
        "largest_job": f"{largest['rule']}/{largest['job']}",
        "per_rule": per_rule.to_dict(orient="records"),
    }
    if startup is not None:
        out["job_startup_s"] = startup["median_s"]
        out["overhead_share_of_job_seconds"] = (
            len(jobs) * startup["median_s"] / job_s if job_s > 0 else None
        )
    out["data"] = data_stage(jobs, results_dir)
    rescored = rescore_run(results_dir, deadline)
    out["eval"] = rescored
    out["eval_share_of_wall"] = rescored["seconds"] / wall if rescored and wall > 0 else None
    return out
