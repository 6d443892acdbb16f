"""``results/provenance.json``: what produced a results folder.

The commit of the code (and whether the tree had uncommitted changes), the versions of the
packages that shape the numbers, the resolved configuration, where every job ran (host,
device, SLURM job id, from the jobs' ``run.json`` and classifier summaries) and how long the
jobs took (from the rules' Snakemake benchmark files).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from srda import layout
from srda.shards import atomic_path

PACKAGES = (
    "srda-bench",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "scikit-image",
    "pandas",
    "snakemake",
    "spandrel",
    "nibabel",
    "nilearn",
    "matplotlib",
    "seaborn",
)


def git_state(repo: Path) -> dict[str, Any]:
    """Commit and dirtiness of ``repo`` (None when it is not a git checkout or git is absent)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def job_records(results_dir: Path) -> list[dict[str, Any]]:
    """Host, device, threads and SLURM job id of every method job and classifier."""
    records = []
    # Every method job and cross-fit fold leaves a run.json, every classifier a summary.json.
    for path in sorted(results_dir.rglob(layout.run_json("").name)):
        info = json.loads(path.read_text())
        records.append(
            {
                "job": str(path.parent.relative_to(results_dir)),
                "kind": "sr",
                **{k: info.get(k) for k in ("host", "device", "threads", "slurm_job_id")},
                "seconds": info.get("seconds"),
            }
        )
    for path in sorted(results_dir.rglob(layout.classifier_summary_json("").name)):
        info = json.loads(path.read_text())
        if "steps" not in info:  # not a classifier summary
            continue
        records.append(
            {
                "job": str(path.parent.relative_to(results_dir)),
                "kind": "diagnosis",
                **{k: info.get(k) for k in ("host", "device", "threads", "slurm_job_id")},
                "seconds": info.get("wall_seconds"),
            }
        )
    return records


def rule_times(results_dir: Path) -> dict[str, dict[str, float]]:
    """Per rule: jobs, summed and longest wall seconds, peak resident memory (MB)."""
    rows = []
    for path in sorted(layout.benchmarks_dir(results_dir).rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        rule = path.parent.name if path.parent != layout.benchmarks_dir(results_dir) else path.stem
        rss = pd.to_numeric(frame["max_rss"], errors="coerce").iloc[-1]
        rows.append({"rule": rule, "s": float(frame["s"].iloc[-1]), "rss": float(rss)})
    if not rows:
        return {}
    jobs = pd.DataFrame(rows)
    out = {}
    for rule, group in jobs.groupby("rule"):
        out[str(rule)] = {
            "jobs": int(len(group)),
            "total_s": round(float(group["s"].sum()), 2),
            "max_s": round(float(group["s"].max()), 2),
            "peak_rss_mb": round(float(group["rss"].max()), 1),
        }
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    try:
        import torch

        info["cuda_available"] = torch.cuda.is_available()
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:  # pragma: no cover - torch is a dependency
        info["cuda_available"] = None
    return info


def write_provenance(results_dir: Path, config: dict[str, Any], repo: Path, out: Path) -> dict:
    """Write ``out`` (JSON) for ``results_dir``, produced by the code in ``repo``."""
    record = {
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "code": git_state(repo),
        "packages": package_versions(),
        "machine": machine(),
        "config": config,
        "rules": rule_times(results_dir),
        "jobs": job_records(results_dir),
    }
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2, sort_keys=False, default=str) + "\n")
    return record
