#!/usr/bin/env python3
"""What ``until_plateau`` would have done to a finished run, from its logs alone.

    python scripts/plateau_replay.py results --patience 1 2 5

Reads every SR training log (``.../sr/{method}/seed{seed}/train/train_log.csv``) and every
Table III classifier log (``classifier_log.csv``) under the results folder and replays the
plateau rule (``srda.train.plateau.replay``) on the validations they logged: per patience, how
many runs would have stopped early, the share of their steps saved, and how many would have
kept another model than the one the tables use (only those could change a table). Exact for the
same settings: the rule changes nothing before the step it stops at. It cannot say what a finer
``val_every`` would do: validations that were not run are not in the logs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from srda.report.tables import to_markdown
from srda.train.plateau import replay


def _cap(log: pd.DataFrame, summary: Path, key: str) -> int:
    if summary.exists():
        data = json.loads(summary.read_text())
        data = data.get(key, data) if key else data
        if data.get("steps"):
            return int(data["steps"])
    return int(log["step"].max())


def runs(results: Path) -> list[dict]:
    """One entry per logged run: kind (sr | classifier), its folder, validations and cap."""
    found = []
    for path in sorted(results.rglob("train_log.csv")):
        log = pd.read_csv(path)
        val = log[log["val_psnr"].notna()]
        cap = _cap(log, path.parent.parent / "run.json", "training")
        found.append(("sr", path.parent, val["step"].tolist(), val["val_psnr"].tolist(), cap))
    for path in sorted(results.rglob("classifier_log.csv")):
        log = pd.read_csv(path)
        summary = path.parent / "summary.json"
        score = "val_balanced_acc"
        if summary.exists():
            score = f"val_{json.loads(summary.read_text()).get('select_on', 'balanced_acc')}"
        val = log[log[score].notna()]
        found.append(
            (
                "classifier",
                path.parent,
                val["step"].tolist(),
                val[score].tolist(),
                _cap(log, summary, ""),
            )
        )
    return [
        {"kind": k, "folder": str(f), "steps": s, "scores": v, "cap": c} for k, f, s, v, c in found
    ]


def summarise(logged: list[dict], patiences: list[int]) -> pd.DataFrame:
    rows = []
    for patience in patiences:
        for kind in ("sr", "classifier"):
            mine = [r for r in logged if r["kind"] == kind]
            if not mine:
                continue
            out = [replay(r["steps"], r["scores"], patience, r["cap"]) for r in mine]
            total = sum(r["cap"] for r in mine)
            run = sum(o["steps_run"] for o in out)
            rows.append(
                {
                    "kind": kind,
                    "patience": patience,
                    "runs": len(mine),
                    "median_validations": float(
                        pd.Series([len(r["steps"]) for r in mine]).median()
                    ),
                    "stopped_early": sum(o["stopped_at"] is not None for o in out),
                    "steps_saved_share": 1 - run / total if total else float("nan"),
                    "other_model": sum(not o["same_model"] for o in out),
                }
            )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--patience", type=int, nargs="+", default=[1, 2, 5])
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"error: {args.results}: not a folder", file=sys.stderr)
        return 1
    logged = runs(args.results)
    if not logged:
        print(f"error: {args.results}: no training logs below it", file=sys.stderr)
        return 1
    table = summarise(logged, args.patience)
    print(to_markdown([list(table.columns), *table.round(3).astype(str).values.tolist()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
