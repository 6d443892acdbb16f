"""``srda-bench``: one sub-command per workflow stage. Rules call these; so can users.

Settings arrive as JSON, inline or in a file (each rule passes its own job's settings in one);
bad input ends in one line on stderr naming the file and the problem, and a non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from srda import layout
from srda.errors import InputError

logger = logging.getLogger("srda")


def _help(path: Path) -> str:
    """A path pattern of srda.layout as help text (under the default results folder)."""
    return str(path)


# Help texts: the folders the workflow passes, spelt by srda.layout.
RESULTS = "results"
DATA_DIR = _help(layout.data_dir(RESULTS))
SR_DIR = _help(layout.sr_dir(RESULTS))
CROSS_FIT_DATA = _help(layout.crossfit_data_dir(DATA_DIR, "{K}"))
CROSS_FIT_SR = _help(layout.crossfit_sr_dir(SR_DIR, "{K}"))
DEGRADATION_HELP = "the LR model whose images to use (rule degrade made them; default bicubic)"


def _json(text: str) -> dict[str, Any]:
    """JSON given inline, or the path of a JSON file (what the workflow's rules pass)."""
    if not text.lstrip().startswith(("{", "[")):
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read settings file {text}: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--settings is not valid JSON: {exc}") from exc


def cmd_synthesize(args: argparse.Namespace) -> None:
    from srda.data import synthetic

    start = time.perf_counter()
    synthetic.synthesize_dataset(args.settings, Path(args.out))
    logger.info(
        "synthesized %s cohort in %.1f s",
        args.settings.get("name", ""),
        time.perf_counter() - start,
    )


def cmd_prepare(args: argparse.Namespace) -> None:
    from srda.config import complete_dataset_settings
    from srda.data.prepare import prepare_dataset

    settings = complete_dataset_settings(args.settings)
    prepare_dataset(settings, Path(args.out), Path(args.cohort) if args.cohort else None)


def cmd_degrade(args: argparse.Namespace) -> None:
    from srda.data.lowres import write_degraded

    s = args.settings
    write_degraded(Path(args.data), args.scale, s["kind"], s["params"], s["seed"], Path(args.out))


def _relaunched(args: argparse.Namespace) -> bool:
    """Data parallel over the job's GPUs: run this command again under torchrun, one process
    per GPU, and say so (the caller then returns); False when this process is to train."""
    from srda.train import distributed

    processes = distributed.processes_for_gpus(args.gpus)
    if processes <= 1 or distributed.launched_by_torchrun():
        return False
    code = distributed.relaunch_with_torchrun(processes, args.argv)
    if code:
        raise SystemExit(code)
    return True


def cmd_cross_score(args: argparse.Namespace) -> None:
    import torch

    from srda.cross_degradation import score_on
    from srda.train.infer import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    score_on(
        Path(args.model),
        Path(args.data),
        Path(args.lr),
        args.scale,
        Path(args.out),
        pick_device(args.gpus),
    )


def cmd_table_cross(args: argparse.Namespace) -> None:
    from srda.report.cross_degradation import write_cross_table

    write_cross_table(args.settings, Path(args.tables_dir), Path(args.figures_dir))


def cmd_run_method(args: argparse.Namespace) -> None:
    from srda.run import run_method

    if _relaunched(args):
        return
    run_method(
        args.settings,
        Path(args.data),
        args.scale,
        args.seed,
        Path(args.out),
        args.gpus,
        args.threads,
        args.degradation,
    )


def cmd_cross_fit_data(args: argparse.Namespace) -> None:
    from srda.crossfit import write_fold_data

    write_fold_data(Path(args.data), args.scales, args.folds, args.seed, Path(args.out))


def cmd_cross_fit_method(args: argparse.Namespace) -> None:
    from srda.crossfit import run_fold

    if _relaunched(args):
        return
    run_fold(
        args.settings,
        Path(args.fold_dir),
        args.scale,
        args.seed,
        Path(args.out),
        args.gpus,
        args.threads,
    )


def cmd_cross_fit_assemble(args: argparse.Namespace) -> None:
    from srda.crossfit import fold_name, write_assembled
    from srda.shards import read_meta

    if args.folds < 2:
        raise InputError("--folds", f"needs at least 2 folds, got {args.folds}")
    n_train = len(read_meta(layout.meta_csv(args.data, "train")))
    method_folds = [Path(args.method_dir) / fold_name(f) for f in range(args.folds)]
    write_assembled(Path(args.folds_dir), method_folds, n_train, Path(args.out))


def cmd_score(args: argparse.Namespace) -> None:
    from srda.evaluate import score_method

    scores = score_method(Path(args.data), args.scale, Path(args.sr_dir))
    logger.info("PSNR %.2f dB, SSIM %.4f", scores["psnr"].mean(), scores["ssim"].mean())


def cmd_diagnose(args: argparse.Namespace) -> None:
    import torch

    from srda.diagnosis import ClassifierSettings, run_diagnosis
    from srda.train.infer import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        settings = ClassifierSettings.from_dict({**args.settings, "seed": args.seed})
    except ValueError as exc:
        raise InputError("--settings", str(exc)) from exc
    device = pick_device(args.gpus)
    logger.info("diagnosis of %s (%s) on %s", args.source, args.method or "-", device)
    run_diagnosis(
        Path(args.data),
        args.source,
        settings,
        Path(args.out),
        scale=args.scale,
        method=args.method,
        sr_seed=args.seed,
        device=device,
        train_images=args.train_images,
        degradation=args.degradation,
    )


def cmd_params(args: argparse.Namespace) -> None:
    from srda.run import parameter_counts

    print(json.dumps(parameter_counts(args.scale, args.channels, args.size), indent=2))


def cmd_table(args: argparse.Namespace) -> None:
    from srda.report import build

    writer = {
        "table1": build.write_table1,
        "table2": build.write_table2,
        "table3": build.write_table3,
    }[args.command]
    writer(args.settings, Path(args.out_dir))


def cmd_leakage(args: argparse.Namespace) -> None:
    from srda.report.leakage import write_leakage

    write_leakage(args.settings, Path(args.tables_dir), Path(args.figures_dir))


def cmd_figures(args: argparse.Namespace) -> None:
    from srda.report.figures import write_figures

    written = write_figures(args.settings, Path(args.out_dir))
    logger.info("wrote %d figure files to %s", len(written), args.out_dir)


def cmd_provenance(args: argparse.Namespace) -> None:
    from srda.report.provenance import write_provenance

    write_provenance(Path(args.results), args.config, Path(args.repo), Path(args.out))


def cmd_upscale(args: argparse.Namespace) -> None:
    import baselines  # noqa: F401  (registers every architecture)
    from srda.upscale import upscale_file

    upscale_file(args.model, args.input, args.output, args.device, args.batch_size)


def _synthetic_datasets(args: argparse.Namespace) -> tuple[dict[str, Any], list[str]]:
    """The resolved config of --config/--configfile/--preset and the datasets to check
    (--dataset, else every synthetic one run); unknown names refused before any output."""
    import yaml

    from srda.config import deep_merge, resolve

    layers = []
    for path in [args.config, *args.configfile]:
        try:
            layers.append(yaml.safe_load(Path(path).read_text()) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(path, f"cannot read the config: {exc}") from exc
    overrides = {"preset": args.preset} if args.preset else {}
    cfg = resolve(deep_merge(*layers, overrides))  # a bad key raises ConfigError, an InputError
    names = args.dataset or [
        n for n in cfg["run_datasets"] if cfg["datasets"][n].get("source") == "synthetic"
    ]
    unknown = [n for n in names if n not in cfg["datasets"]]
    if unknown:
        known = ", ".join(cfg["datasets"])
        raise InputError(args.config, f"no dataset {unknown[0]!r}; known: {known}")
    return cfg, names


def cmd_cohort_signal(args: argparse.Namespace) -> None:
    from srda.config import dataset_job_settings
    from srda.data.signal import class_signal

    cfg, names = _synthetic_datasets(args)
    print(
        "| dataset | scale | subject pairs | slice pairs | lost share of AD - CN | rms of AD - CN |"
    )
    print("|---|---|---|---|---|---|")
    for name in names:
        for scale in cfg["scales"]:
            sig = class_signal(dataset_job_settings(cfg, name), scale, args.pairs)
            print(
                f"| {name} | x{scale} | {sig.pairs} | {sig.slices} | {sig.lost_share:.3f} "
                f"| {sig.signal_rms:.4f} |",
                flush=True,
            )


def cmd_cohort_check(args: argparse.Namespace) -> int:
    from srda.config import dataset_job_settings
    from srda.data import effects

    cfg, names = _synthetic_datasets(args)
    start = time.perf_counter()
    checks = []
    for name in names:
        check = effects.check_dataset(
            dataset_job_settings(cfg, name), args.subjects, paired=not args.unpaired
        )
        print(effects.render_dataset(check) + "\n", flush=True)
        checks.append(check)
    print("### Summary\n\n" + effects.render_summary(checks), flush=True)
    print(
        f"\npreset {cfg['preset']}: {len(checks)} dataset(s) in "
        f"{time.perf_counter() - start:.1f} s",
        flush=True,
    )
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {"preset": cfg["preset"], **effects.to_json(checks)}
        out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    missed = [f"{c.dataset}:{key}" for c in checks for key in c.missed]
    if missed:
        logger.warning("targets missed: %s", ", ".join(missed))
    return 1 if args.strict and missed else 0


def _cohort_parser(sub, name: str, summary: str) -> argparse.ArgumentParser:
    """A sub-command measuring the embedded cohort: it reads the config as the workflow does."""
    p = sub.add_parser(name, help=summary)
    p.add_argument("--config", default="config.yaml", help="the base config (config.yaml)")
    p.add_argument("--configfile", nargs="*", default=[], help="overlays, as snakemake's")
    p.add_argument("--preset", help="smoke | quick | paper (default: the config's)")
    p.add_argument("--dataset", nargs="*", help="datasets (default: every synthetic one run)")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srda-bench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synthesize", help="write the embedded synthetic cohort of one dataset")
    p.add_argument("--settings", type=_json, required=True, help="the dataset's resolved settings")
    p.add_argument("--out", required=True, help="cohort folder to write")
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("prepare", help="ingest, slice, split and make LR shards of one dataset")
    p.add_argument("--settings", type=_json, required=True, help="the dataset's resolved settings")
    p.add_argument("--out", required=True, help=DATA_DIR)
    p.add_argument("--cohort", help="the synthetic cohort folder (source: synthetic)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("degrade", help="a prepared dataset's LR shards under one degradation")
    p.add_argument(
        "--settings", type=_json, required=True, help='{"kind": ..., "params": {...}, "seed": N}'
    )
    p.add_argument("--data", required=True, help=f"{DATA_DIR} (the data stage's folder)")
    p.add_argument("--scale", type=int, required=True)
    p.add_argument(
        "--out", required=True, help=_help(layout.lr_dir(DATA_DIR, "{scale}", "{degradation}"))
    )
    p.set_defaults(func=cmd_degrade)

    p = sub.add_parser(
        "cross-score", help="a method job's network scored on another LR model's test images"
    )
    p.add_argument("--model", required=True, help=_help(layout.sr_model(SR_DIR)))
    p.add_argument("--data", required=True, help=DATA_DIR)
    p.add_argument("--lr", required=True, help="the test LR shard of the other LR model")
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--out", required=True, help=_help(layout.cross_metrics_csv(SR_DIR)))
    p.add_argument("--gpus", type=int, default=None, help="GPUs given to this job (0: CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_cross_score)

    p = sub.add_parser(
        "table-cross-degradation",
        help="each method trained on one LR model and scored on each (table and heat maps)",
    )
    p.add_argument("--settings", type=_json, required=True)
    p.add_argument("--tables-dir", required=True, help=_help(layout.tables_dir(RESULTS)))
    p.add_argument("--figures-dir", required=True, help=_help(layout.figures_dir(RESULTS)))
    p.set_defaults(func=cmd_table_cross)

    p = sub.add_parser("run-method", help="train (if needed), super-resolve and score one method")
    p.add_argument("--settings", type=_json, required=True, help="the method's job settings")
    p.add_argument("--data", required=True, help=DATA_DIR)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--degradation", default=layout.BICUBIC, help=DEGRADATION_HELP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help=SR_DIR)
    p.add_argument("--gpus", type=int, default=None, help="GPUs given to this job (0: CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_run_method)

    p = sub.add_parser(
        "cross-fit-data", help="split the train subjects into folds, one data folder per fold"
    )
    p.add_argument("--data", required=True, help=DATA_DIR)
    p.add_argument("--scales", type=int, nargs="+", required=True, help="e.g. 4 (or 2 4)")
    p.add_argument("--folds", type=int, required=True, help="K >= 2 (diagnosis.cross_fit)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    p.add_argument("--out", required=True, help=CROSS_FIT_DATA)
    p.set_defaults(func=cmd_cross_fit_data)

    p = sub.add_parser(
        "cross-fit-method", help="train a method without one fold, super-resolve that fold"
    )
    p.add_argument("--settings", type=_json, required=True, help="the method's job settings")
    p.add_argument("--fold-dir", required=True, help=_help(layout.fold_dir(CROSS_FIT_DATA, "{f}")))
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--seed", type=int, default=0, help="the main job's seed")
    p.add_argument("--out", required=True, help=_help(layout.fold_dir(CROSS_FIT_SR, "{f}")))
    p.add_argument("--gpus", type=int, default=None, help="GPUs given to this job (0: CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_cross_fit_method)

    p = sub.add_parser(
        "cross-fit-assemble", help="the out-of-fold train SR images, in train row order"
    )
    p.add_argument("--data", required=True, help=f"{DATA_DIR} (its train_meta.csv)")
    p.add_argument("--folds-dir", required=True, help=CROSS_FIT_DATA)
    p.add_argument("--method-dir", required=True, help=f"{CROSS_FIT_SR} (fold{{f}}/ inside)")
    p.add_argument("--folds", type=int, required=True, help="K")
    out = _help(layout.crossfit_train_shard(SR_DIR, "{K}"))
    p.add_argument("--out", required=True, help=out)
    p.set_defaults(func=cmd_cross_fit_assemble)

    p = sub.add_parser("diagnose", help="train and test one classifier of Table III")
    p.add_argument("--settings", type=_json, required=True, help="the classifier recipe")
    p.add_argument("--data", required=True, help=DATA_DIR)
    p.add_argument("--source", required=True, choices=("sr", "lr", "hr"))
    p.add_argument("--method", help="the SR method whose output to classify (source sr)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--degradation", default=layout.BICUBIC, help=DEGRADATION_HELP)
    p.add_argument("--seed", type=int, default=0, help="SR seed of the images and the classifier")
    p.add_argument("--out", required=True, help="folder for predictions.csv and the logs")
    p.add_argument(
        "--train-images", help="a shard replacing the train split's images (cross-fitted SR)"
    )
    p.add_argument("--gpus", type=int, default=None, help="GPUs given to this job (0: CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("score", help="PSNR/SSIM of SR shards an external tool wrote")
    p.add_argument("--data", required=True, help=DATA_DIR)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--sr-dir", required=True, help="folder holding test.npy; gets test_metrics.csv")
    p.set_defaults(func=cmd_score)

    p = _cohort_parser(
        sub, "cohort-signal", "share of the embedded cohort's AD - CN difference the LR images lose"
    )
    p.add_argument("--pairs", type=int, default=6, help="subjects drawn as CN and as AD")
    p.set_defaults(func=cmd_cohort_signal)

    p = _cohort_parser(
        sub, "cohort-check", "the embedded cohort's disease effect sizes against the literature's"
    )
    p.add_argument("--subjects", type=int, default=8, help="subjects per class")
    p.add_argument(
        "--unpaired",
        action="store_true",
        help="the cohort's own subjects (classes round-robin), not each subject as every class",
    )
    p.add_argument("--json", help="also write every measured number to this JSON file")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.set_defaults(func=cmd_cohort_check)

    p = sub.add_parser("params", help="parameter count of every registered architecture (JSON)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--size", default="paper", choices=["tiny", "small", "paper"])
    p.set_defaults(func=cmd_params)

    for name, what in (
        ("table1", "Table I (PSNR/SSIM of every method)"),
        ("table2", "Table II (PSNR/SSIM of SRDA's ablations)"),
        ("table3", "Table III (diagnosis on each method's output, LR and HR)"),
    ):
        p = sub.add_parser(name, help=f"{what} from the jobs' outputs")
        p.add_argument("--settings", type=_json, required=True)
        p.add_argument("--out-dir", required=True, help=_help(layout.tables_dir(RESULTS)))
        p.set_defaults(func=cmd_table)

    p = sub.add_parser("leakage", help="the leakage study: Table III's rows under both split modes")
    p.add_argument("--settings", type=_json, required=True)
    tables, figures = layout.tables_dir(RESULTS), layout.figures_dir(RESULTS)
    p.add_argument("--tables-dir", required=True, help=f"{tables} (leakage.csv, .md)")
    p.add_argument("--figures-dir", required=True, help=f"{figures} (leakage.png, .pdf)")
    p.set_defaults(func=cmd_leakage)

    p = sub.add_parser("figures", help="every figure (PNG and PDF) from the results tree")
    p.add_argument("--settings", type=_json, required=True)
    p.add_argument("--out-dir", required=True, help=_help(layout.figures_dir(RESULTS)))
    p.set_defaults(func=cmd_figures)

    provenance = _help(layout.provenance_json(RESULTS))
    p = sub.add_parser("provenance", help=f"{provenance}: code, packages, config, jobs")
    p.add_argument("--config", type=_json, required=True, help="the resolved configuration")
    p.add_argument("--repo", required=True, help="the workflow's folder (for the git commit)")
    p.add_argument("--results", required=True, help="the results folder")
    p.add_argument("--out", required=True, help=provenance)
    p.set_defaults(func=cmd_provenance)

    p = sub.add_parser("upscale", help="super-resolve a NIfTI volume or 2D image with a model")
    p.add_argument("--model", required=True, help="an sr_model.pt written by run-method")
    p.add_argument("input", help="a NIfTI volume (.nii, .nii.gz) or an image (.png, .jpg, .tif)")
    p.add_argument("output", help=".nii/.nii.gz for a volume, .png for an image")
    p.add_argument("--batch-size", type=int, default=4, help="slices per forward pass")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    p.set_defaults(func=cmd_upscale)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if int(os.environ.get("RANK") or 0) > 0:  # data parallel: rank 0 alone reports progress
        logging.getLogger().setLevel(logging.WARNING)
    slurm_job = os.environ.get("SLURM_JOB_ID")
    logger.info(
        "srda-bench %s on host %s%s",
        args.command,
        socket.gethostname(),
        f", SLURM job {slurm_job}" if slurm_job else "",
    )
    try:
        code = args.func(args)  # a measurement's verdict (cohort-check --strict), else None
    except InputError as exc:
        print(f"srda-bench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
