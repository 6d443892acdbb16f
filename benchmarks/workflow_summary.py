#!/usr/bin/env python3
"""Time and memory of a finished workflow run, from the Snakemake benchmark files of its rules.

    python benchmarks/workflow_summary.py results            # a Markdown table per rule
    python benchmarks/workflow_summary.py results --json out.json

Each rule's `benchmark:` file holds the job's wall seconds (s) and peak resident memory
(max_rss, MB). The summary adds them up per rule and names the slowest and the largest job.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from srda.layout import benchmarks_dir


def collect(results_dir: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(benchmarks_dir(results_dir).rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        rule = path.parent.name if path.parent.name != "benchmarks" else path.stem
        rows.append(
            {
                "rule": rule,
                "job": path.stem,
                "seconds": float(frame["s"].iloc[-1]),
                "max_rss_mb": float(pd.to_numeric(frame["max_rss"], errors="coerce").iloc[-1]),
            }
        )
    if not rows:
        raise SystemExit(f"{results_dir}/benchmarks: no benchmark files (did the workflow run?)")
    return pd.DataFrame(rows)


def summarise(jobs: pd.DataFrame) -> pd.DataFrame:
    return (
        jobs.groupby("rule")
        .agg(
            jobs=("job", "size"),
            total_s=("seconds", "sum"),
            mean_s=("seconds", "mean"),
            max_s=("seconds", "max"),
            peak_rss_mb=("max_rss_mb", "max"),
        )
        .sort_values("total_s", ascending=False)
        .reset_index()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--json", type=Path, help="also write the per-rule summary as JSON")
    args = parser.parse_args(argv)
    jobs = collect(args.results_dir)
    table = summarise(jobs)
    print(table.to_markdown(index=False, floatfmt=".1f") if _has_tabulate() else table)
    slowest = jobs.loc[jobs["seconds"].idxmax()]
    largest = jobs.loc[jobs["max_rss_mb"].idxmax()]
    print(
        f"\n{len(jobs)} jobs, {jobs['seconds'].sum():.0f} s of job time; slowest "
        f"{slowest['rule']}/{slowest['job']} {slowest['seconds']:.0f} s; largest "
        f"{largest['rule']}/{largest['job']} {largest['max_rss_mb']:.0f} MB"
    )
    if args.json:
        args.json.write_text(json.dumps(table.to_dict(orient="records"), indent=2))
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
