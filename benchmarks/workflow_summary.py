#!/usr/bin/env python3
"""Time and memory of a finished workflow run, from the Snakemake benchmark files of its rules.

    python benchmarks/workflow_summary.py results            # a Markdown table per rule
    python benchmarks/workflow_summary.py results --json out.json
    python benchmarks/workflow_summary.py results --phases  # where each job's time goes

Each rule's `benchmark:` file holds the job's wall seconds (s) and peak resident memory
(max_rss, MB). The summary adds them up per rule and names the slowest and the largest job.
``--phases`` splits the method jobs (run.json) and the classifiers (summary.json) into
start-up (the process's wall time before the job's own clock: interpreter, imports, reading
the settings), training, and the rest (a method: super-resolving every split, scoring the test
split; a classifier: loading the images, the last BatchNorm pass, predicting val and test).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from srda import layout
from srda.layout import benchmarks_dir

# The result file of each kind of job that --phases splits, as the layout spells it (wildcards
# as Snakemake's), and the layout.job_name parts of its benchmark file.
_SR_DIR = layout.sr_dir(".", degradation=layout.DEG_WILDCARD)
_RESULT_FILES = {
    "run_method": layout.run_json(_SR_DIR),
    "diagnose_sr": layout.classifier_summary_json(layout.classifier_dir(_SR_DIR)),
    "diagnose_lr_row": layout.classifier_summary_json(
        layout.lr_row_dir(layout.data_dir("."), degradation=layout.DEG_WILDCARD)
    ),
    "diagnose_hr_row": layout.classifier_summary_json(layout.hr_row_dir(layout.data_dir("."))),
}
_WILDCARD_VALUES = {"scale": r"\d+", "seed": r"\d+", "deg": r"(?:_[^/]+)?"}


def _result_pattern(path: Path) -> re.Pattern[str]:
    """A layout path with ``{name}`` wildcards as a regex with one group per wildcard."""
    text = re.escape(path.as_posix().removeprefix("./"))
    return re.compile(
        re.sub(
            r"\\\{(\w+)\\\}",
            lambda m: f"(?P<{m[1]}>{_WILDCARD_VALUES.get(m[1], '[^/]+')})",
            text,
        )
    )


_PATTERNS = {rule: _result_pattern(path) for rule, path in _RESULT_FILES.items()}


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


def phases(results_dir: Path) -> pd.DataFrame:
    """One row per method job and classifier: the benchmark file's wall seconds split into
    ``startup_s``, ``train_s`` and ``rest_s`` (see the module docstring)."""
    rows = []
    for path in sorted(Path(results_dir).rglob("*.json")):
        rel = path.relative_to(results_dir).as_posix()
        for rule, pattern in _PATTERNS.items():
            m = pattern.fullmatch(rel)
            if m is None:
                continue
            w = m.groupdict()
            source = w.get("method") or w["row"]
            scale = None if rule == "diagnose_hr_row" else w["scale"] + w["deg"]
            job = layout.job_name(w["dataset"], scale, source, w["seed"])
            stage = "run_method" if rule == "run_method" else "diagnose"
            tsv = layout.benchmark_file(results_dir, stage, job)
            if not tsv.exists():
                break
            wall = float(pd.read_csv(tsv, sep="\t")["s"].iloc[-1])
            info = json.loads(path.read_text())
            if rule == "run_method":
                inside, train = info["seconds"], (info.get("training") or {}).get("seconds", 0.0)
            else:
                inside, train = info["wall_seconds"], info["train_seconds"]
            rows.append(
                {
                    "rule": rule,
                    "job": job,
                    "source": source,
                    "seconds": wall,
                    "startup_s": wall - inside,
                    "train_s": train,
                    "rest_s": inside - train,
                }
            )
            break
    if not rows:
        raise SystemExit(f"{results_dir}: no run.json or classifier summary.json with benchmarks")
    return pd.DataFrame(rows)


def summarise_phases(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per rule (and per method, for the method jobs): jobs and total seconds per phase."""
    jobs = jobs.assign(
        group=[
            f"{rule}: {source}" if rule == "run_method" else rule
            for rule, source in zip(jobs["rule"], jobs["source"], strict=True)
        ]
    )
    table = (
        jobs.groupby("group")
        .agg(
            jobs=("job", "size"),
            total_s=("seconds", "sum"),
            startup_s=("startup_s", "sum"),
            train_s=("train_s", "sum"),
            rest_s=("rest_s", "sum"),
        )
        .sort_values("total_s", ascending=False)
        .reset_index()
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--json", type=Path, help="also write the per-rule summary as JSON")
    parser.add_argument(
        "--phases", action="store_true", help="split method and classifier jobs into phases"
    )
    args = parser.parse_args(argv)
    if args.phases:
        table = summarise_phases(phases(args.results_dir))
        print(table.to_markdown(index=False, floatfmt=".0f") if _has_tabulate() else table)
        if args.json:
            args.json.write_text(json.dumps(table.to_dict(orient="records"), indent=2))
        return 0
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
