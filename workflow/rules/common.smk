# Helpers shared by every stage: the resolved configuration and the DAG's files. Every path is
# srda.layout's (the map of the results folder), called with wildcards such as "{dataset}".
import functools
import os
import re
import sys

from srda import layout
from srda.config import (
    check_archs,
    check_dataset_paths,
    check_external_methods,
    cross_fitted_methods,
    dataset_job_settings,
    diagnosis_job_settings,
    enabled_reference_rows,
    leakage_config,
    method_job_settings,
    other_split_mode,
    prune_job_settings,
    resolve,
    write_job_settings,
)
from srda.data.ingest import check_class_folders
from srda.data.labels import check_labels
from srda.errors import InputError
from srda.failures import last_lines
from srda.layout import BICUBIC, DEG_WILDCARD, SPLITS, deg_name, deg_suffix
from srda.reference_rows import REFERENCE_ROWS, classifier_dir
from srda.registry import declared_names
from srda.report import ABLATIONS as TABLE2_METHODS
from srda.report.cross_degradation import figure_stems as cross_figure_stems
from srda.report.figures import figure_files, figure_inputs


def stop(exc):
    """End the run with the suite's one-line message as the last line of the output (a
    WorkflowError would be followed by Snakemake's traceback line)."""
    sys.exit(f"error: {exc}")


# Checked when the workflow starts (dry runs included), before any job: the configuration,
# the paths, labels tables and class folders of real datasets, the architectures of the
# methods to run.
try:
    CFG = resolve(config)
    check_dataset_paths(CFG)
    check_archs(CFG, declared_names("baselines"))
    for _dataset in CFG["run_datasets"]:
        _settings = dataset_job_settings(CFG, _dataset)
        check_labels(_settings)
        check_class_folders(_settings)
except InputError as exc:
    stop(exc)


# A failed job: end the output with its own error line (srda/failures.py), not Snakemake's.
onerror:
    message = last_lines(log if isinstance(log, list) else [log])
    if message:
        sys.exit(message)


RESULTS = CFG["results_dir"]
DATASETS = CFG["run_datasets"]
SCALES = CFG["scales"]
SEEDS = CFG["seeds"]
# Methods with an architecture run through run_method; external ones bring their own rules.
PY_METHODS = [m for m in CFG["run_methods"] if not CFG["methods"][m]["external"]]
EXTERNAL = [m for m in CFG["run_methods"] if CFG["methods"][m]["external"]]
METHODS = CFG["run_methods"]
ABLATIONS = [
    m for m in ("srda_base", "srda_dconv", "srda_dconv_diag", "srda") if m in METHODS
]
ENV = "../../envs/srda.yaml"
# Table III's classifier recipe, its reference rows (srda/reference_rows.py: LR, LR at its
# own size, HR, HR with shuffled labels) and the methods whose classifiers learn from
# cross-fitted train images (diagnosis.cross_fit: K folds).
DIAGNOSE = CFG["diagnosis"]["enabled"]
DIAGNOSIS = diagnosis_job_settings(CFG)
EXTRA_ROWS = enabled_reference_rows(CFG)
LR_ROWS = [r for r in EXTRA_ROWS if REFERENCE_ROWS[r].per_scale]
HR_ROWS = [r for r in EXTRA_ROWS if not REFERENCE_ROWS[r].per_scale]
CROSS_FIT = CFG["diagnosis"]["cross_fit"]
CROSS_FITTED = cross_fitted_methods(CFG)
# LR models (config `degradations`, srda.data.degrade): the data stage makes bicubic's, rule
# degrade every other's; every stage after runs per model, each job's folder under
# layout.lr_dir (the wildcard {deg}: "" for bicubic, "_kspace"...). Outside tools see bicubic's.
DEGRADATIONS = {d: CFG["datasets"][d]["degradations"] for d in DATASETS}
ALL_DEGRADATIONS = list(dict.fromkeys(g for d in DATASETS for g in DEGRADATIONS[d]))
MADE_DEGRADATIONS = [g for g in ALL_DEGRADATIONS if g != BICUBIC]
CROSS_DEGRADATION = [d for d in DATASETS if len(DEGRADATIONS[d]) > 1]


def one_of(names):
    """A wildcard pattern matching exactly these names (and nothing when there are none)."""
    return "|".join(map(re.escape, names)) or "(?!x)x"


def deg_values(names):
    """A pattern for {deg} matching these LR models' suffixes ("" for bicubic)."""
    if not names:
        return "(?!x)x"
    return "(?:" + "|".join(re.escape(deg_suffix(n)) for n in names) + ")"


def jobs(dataset, sources=None):
    """(LR model, source) of a dataset's per-model jobs: every model, and every source run on
    it (outside tools on bicubic only)."""
    for model in DEGRADATIONS[dataset]:
        for source in sources if sources is not None else [None]:
            if model == BICUBIC or source not in EXTERNAL:
                yield model, source


# Each job's settings file (as_arg); files no run has named for 30 days are removed here.
SETTINGS_DIR = ".snakemake/srda-settings"
prune_job_settings(SETTINGS_DIR)


def as_arg(settings):
    """A job's own settings as a file named by their content (params: a change reruns only the
    jobs it concerns; a failed job's command shows the short path, not the settings)."""
    return write_job_settings(settings, SETTINGS_DIR)


def synth_settings(dataset):
    ds = CFG["datasets"][dataset]
    return {"name": dataset, "modality": ds["modality"], "synthetic": ds["synthetic"]}


def prepare_input(wildcards):
    ds = CFG["datasets"][wildcards.dataset]
    if ds["source"] == "synthetic":
        return {"cohort": layout.cohort_dir(RESULTS, wildcards.dataset)}
    return {
        key: ds[key] for key in ("path", "labels", "masks", "subjects") if ds.get(key)
    }


def data_outputs(dataset="{dataset}"):
    return layout.data_files(layout.data_dir(RESULTS, dataset), SCALES)


def data_inputs(wildcards):
    """Input function: every file of the job's dataset that the data stage writes."""
    return data_outputs(wildcards.dataset)


def data_dir(wildcards):
    """Params: the job's data folder (what `srda-bench ... --data` reads)."""
    return layout.data_dir(RESULTS, wildcards.dataset)


def degraded_lr(dataset, scale, model):
    """The LR shards of another LR model (rule degrade), every split."""
    folder = layout.lr_dir(layout.data_dir(RESULTS, dataset), scale, model)
    return [layout.lr_split_shard(folder, s) for s in SPLITS]


def lr_inputs(wildcards):
    """Input function: the data stage's files and, for a job on another LR model ({deg}),
    that model's LR shards."""
    files = data_outputs(wildcards.dataset)
    model = deg_name(wildcards.get("deg", ""))
    if model != BICUBIC:
        files += degraded_lr(wildcards.dataset, wildcards.scale, model)
    return files


def degradation_flag(wildcards):
    """Params: `--degradation NAME` for a job on another LR model (nothing for bicubic, so
    the commands of a bicubic-only run are as they were)."""
    model = deg_name(wildcards.get("deg", ""))
    return "" if model == BICUBIC else f" --degradation {model}"


def degrade_settings(wildcards):
    model = deg_name(wildcards.deg)
    return {
        "kind": model,
        "params": CFG["datasets"][wildcards.dataset]["degradation_params"][model],
        "seed": CFG["degradation_seed"],
    }


def sr_shards(*splits):
    """Input function: the SR shards of a job's method for these splits. Its first call,
    when every rule is known and before any job, checks that each outside-tool method has a
    rule writing its shards (Snakemake would only say MissingInputException)."""

    def shards(w):
        check_external_rules()
        model = deg_name(w.get("deg", ""))
        folder = layout.sr_dir(RESULTS, w.dataset, w.scale, w.method, w.seed, model)
        paths = [layout.sr_shard(folder, s) for s in splits]
        return paths[0] if len(paths) == 1 else paths

    return shards


@functools.cache
def check_external_rules():
    def shards(method):
        return [
            str(layout.sr_shard(layout.sr_dir(RESULTS, d, s, method, seed), split))
            for d in DATASETS
            for s in SCALES
            for seed in SEEDS
            for split in SPLITS
        ]

    def has_producer(path):
        return os.path.exists(path) or any(r.is_producer(path) for r in workflow.rules)

    try:
        check_external_methods(CFG, shards, has_producer)
    except InputError as exc:
        stop(exc)


def lr_shards(dataset, scale):
    return [
        layout.lr_shard(layout.data_dir(RESULTS, dataset), scale, s) for s in SPLITS
    ]


# A method job's folder and its name in logs/ and benchmarks/, as wildcard patterns.
SR_DIR = layout.sr_dir(RESULTS, degradation=DEG_WILDCARD)
SCALE_DEG = f"{{scale}}{DEG_WILDCARD}"  # the job name's x{scale} part: x4, x4_kspace
LR_MODEL_DIR = layout.lr_dir(layout.data_dir(RESULTS), "{scale}", DEG_WILDCARD)
METHOD_JOB = layout.job_name("{dataset}", SCALE_DEG, "{method}", "{seed}")
# Jobs of an outside tool (one method each) are named without the method.
TOOL_JOB = layout.job_name("{dataset}", "{scale}", seed="{seed}")


def log_file(stage, job=None):
    return layout.log_file(RESULTS, stage, job)


def benchmark_file(stage, job=None):
    return layout.benchmark_file(RESULTS, stage, job)


# Cross-fitting (workflow/rules/crossfit.smk): per dataset, folds.csv and one data folder per
# fold that the trainer reads like the dataset's own, plus the fold's held-out rows (their
# original train indices and LR images); per method job, one folder per fold network.
CROSS_FIT_DATA = layout.crossfit_data_dir(layout.data_dir(RESULTS), CROSS_FIT)
CROSS_FIT_JOB = f"{METHOD_JOB}_k{CROSS_FIT}"


def fold_data(fold="{fold}"):
    return layout.fold_dir(CROSS_FIT_DATA, fold)


def fold_sr(fold="{fold}"):
    return layout.fold_dir(layout.crossfit_sr_dir(SR_DIR, CROSS_FIT), fold)


def diagnosis_dir(dataset, scale, source, seed, model=BICUBIC):
    """Where the classifier of one Table III row writes (srda.reference_rows.classifier_dir)."""
    return classifier_dir(
        RESULTS, dataset, scale, source, seed, CROSS_FITTED, CROSS_FIT, model
    )


def diagnose_flags(source, train_images=False):
    """Params: what a diagnose rule adds to the shared command (DIAGNOSE_SHELL) for its image
    source: the method, the scale and LR model, the cross-fitted train images."""

    def flags(wildcards, input):
        method = f" --method {wildcards.method}" if source == "sr" else ""
        scale = f" --scale {wildcards.scale}" if source != "hr" else ""
        model = degradation_flag(wildcards) if source != "hr" else ""
        train = f" --train-images {input.train}" if train_images else ""
        return f"--source {source}{method}{scale}{model} --seed {wildcards.seed}{train}"

    return flags


# One command for the four diagnose rules, their differences in params (a rule made in a loop
# must not read the loop's variable at run time: it would see the last rule's).
DIAGNOSE_SHELL = (
    "srda-bench diagnose {params.flags} --settings {params.settings} --data {params.data}"
    " --out {params.out} --gpus {resources.gpu} --threads {threads} 2> {log}"
)


# The diagnose rules (workflow/rules/diagnosis.smk), one per kind of Table III row, from one
# definition: where its classifier writes, its job name in logs/, the wildcard naming the
# image source and the sources it takes, its inputs (the data stage's files, SR images), the
# classifier's settings and the command. The classifier's seed is the SR seed of its images.
DIAGNOSE_RULES = {
    "diagnose_sr": {
        "folder": layout.classifier_dir(SR_DIR),
        "job": METHOD_JOB,
        "wildcard": {"method": one_of([m for m in METHODS if m not in CROSS_FITTED])},
        "inputs": {"data": lr_inputs, "sr": sr_shards(*SPLITS)},
        "settings": as_arg(DIAGNOSIS),
        "flags": diagnose_flags("sr"),
    },
    # diagnosis.cross_fit: K: the train images come from SR networks that never saw them
    # (workflow/rules/crossfit.smk); val and test are the main network's, as above.
    "diagnose_sr_cross_fit": {
        "folder": layout.classifier_dir(SR_DIR, CROSS_FIT),
        "job": f"{METHOD_JOB}_crossfit",
        "wildcard": {"method": one_of(CROSS_FITTED)},
        "inputs": {
            "data": data_inputs,
            "sr": [layout.sr_shard(SR_DIR, split) for split in SPLITS],
            "train": layout.crossfit_train_shard(SR_DIR, CROSS_FIT),
        },
        "settings": as_arg(DIAGNOSIS),
        "flags": diagnose_flags("sr", train_images=True),
    },
    "diagnose_lr_row": {
        "folder": layout.lr_row_dir(layout.data_dir(RESULTS), degradation=DEG_WILDCARD),
        "job": layout.job_name("{dataset}", SCALE_DEG, "{row}", "{seed}"),
        "wildcard": {"row": one_of(LR_ROWS)},
        "inputs": {"data": lr_inputs},
        "settings": lambda w: as_arg(diagnosis_job_settings(CFG, w.row, int(w.scale))),
        "flags": diagnose_flags("lr"),
    },
    "diagnose_hr_row": {
        "folder": layout.hr_row_dir(layout.data_dir(RESULTS)),
        "job": layout.job_name("{dataset}", source="{row}", seed="{seed}"),
        "wildcard": {"row": one_of(HR_ROWS)},
        "inputs": {"data": data_inputs},
        "settings": lambda w: as_arg(diagnosis_job_settings(CFG, w.row)),
        "flags": diagnose_flags("hr"),
    },
}


def all_predictions(sources):
    """Every classifier's predictions: per LR model for the SR and LR rows, once for HR's."""
    paths = [
        layout.predictions_csv(diagnosis_dir(d, s, source, seed, model))
        for d in DATASETS
        for s in SCALES
        for model, source in jobs(d, sources)
        for seed in SEEDS
    ]
    return list(dict.fromkeys(paths))


def table_outputs(stem, exts=("csv", "md", "tex")):
    return [layout.table_file(RESULTS, stem, ext) for ext in exts]


def vs_paper_outputs(stem):
    return table_outputs(f"{stem}_vs_paper", ("csv", "md"))


TABLE1_EXTRA = vs_paper_outputs("table1_psnr_ssim") + table_outputs(
    "table_roi_psnr_ssim"
)
TABLE3_EXTRA = (
    vs_paper_outputs("table3_diagnosis")
    + table_outputs("table3_confusion", ["csv"])
    + table_outputs("table3_headroom", ["csv"])
)


def all_metrics(methods):
    return [
        layout.sr_metrics_csv(layout.sr_dir(RESULTS, d, s, m, seed, model))
        for d in DATASETS
        for s in SCALES
        for model, m in jobs(d, methods)
        for seed in SEEDS
    ]


def cross_metrics():
    """Each trained network scored on every other LR model of its dataset (rule cross_score)."""
    return [
        layout.cross_metrics_csv(layout.sr_dir(RESULTS, d, s, m, seed, train), test)
        for d in CROSS_DEGRADATION
        for s in SCALES
        for train, m in jobs(d, PY_METHODS)
        for test in DEGRADATIONS[d]
        if test != train
        for seed in SEEDS
    ]


def cross_lr_input(wildcards):
    """Input function: the test LR shard of the cross score's test LR model."""
    data = layout.data_dir(RESULTS, wildcards.dataset)
    return layout.lr_shard(data, wildcards.scale, "test", wildcards.test_degradation)


def cross_outputs():
    """The cross-degradation table and a heat map per dataset with several LR models."""
    figures = [
        layout.figures_dir(RESULTS) / f"{stem}.{ext}"
        for stem in cross_figure_stems(CROSS_DEGRADATION)
        for ext in ("png", "pdf")
    ]
    return table_outputs("table_cross_degradation", ("csv", "md")), figures


def table_settings(methods):
    return {
        "results_dir": RESULTS,
        "datasets": DATASETS,
        "scales": SCALES,
        "seeds": SEEDS,
        "methods": [[m, CFG["methods"][m]["display"]] for m in methods],
        "bootstrap": CFG["bootstrap"],
        "paper_names": {d: CFG["datasets"][d]["paper_name"] for d in DATASETS},
        "synthetic": [
            d for d in DATASETS if CFG["datasets"][d]["source"] == "synthetic"
        ],
        "paper_tables": os.path.join(
            workflow.basedir, "results/paper/reported_tables.csv"
        ),
        "rows": EXTRA_ROWS,
        "cross_fit": CROSS_FIT,
        "cross_fitted": CROSS_FITTED,
        "degradations": DEGRADATIONS,
        "external": EXTERNAL,
    }


def all_tables():
    """Table I (with its ROI table); Table II when any of SRDA's ablations is run; Table III
    when the diagnosis experiment is on."""
    tables = table_outputs("table1_psnr_ssim") + TABLE1_EXTRA
    if ABLATIONS:
        tables += table_outputs("table2_ablation") + vs_paper_outputs("table2_ablation")
    if DIAGNOSE:
        tables += table_outputs("table3_diagnosis") + TABLE3_EXTRA
    if CROSS_DEGRADATION:
        tables += cross_outputs()[0]
    return tables


def in_report(paths, caption, category):
    """Tables: the CSV goes into the HTML report (with workflow/report/{caption}.rst)."""
    wrap = lambda p: report(
        str(p), caption=f"../report/{caption}.rst", category=category
    )
    return [wrap(p) if str(p).endswith(".csv") else p for p in paths]


def figure_settings():
    return {**table_settings(METHODS), "diagnosis": DIAGNOSE}


def all_figures():
    """(path, kind) of every figure file; kind names its caption in workflow/report/."""
    out = []
    for name in figure_files(figure_settings()):
        stem = name.rsplit(".", 1)[0]
        kind = next((k for k in FIGURE_KINDS if stem.endswith(k)), stem.split("_x")[-1])
        out.append((layout.figures_dir(RESULTS) / name, kind))
    return out


def figure_outputs():
    """PNGs go into the HTML report, captioned by kind; PDFs are for papers."""
    wrap = lambda p, kind: report(
        str(p), caption=f"../report/{kind}.rst", category="Figures"
    )
    return [wrap(p, k) if p.suffix == ".png" else p for p, k in all_figures()]


FIGURE_KINDS = (
    "qualitative",
    "error_maps",
    "attention",
    "training_curves",
    "psnr_vs_accuracy",
)


# The leakage study (workflow/rules/leakage.smk): the other split mode's run and its inputs.
LEAKAGE = CFG["leakage"]
LEAK_MODE = other_split_mode(CFG["split"])
LEAK_RESULTS = str(layout.leakage_results(RESULTS, LEAK_MODE))
LEAK_CROSS_FITTED = [m for m in CROSS_FITTED if m in LEAKAGE["methods"]]


def leakage_runs():
    main = {"split_mode": CFG["split"], "results_dir": RESULTS}
    other = {"split_mode": LEAK_MODE, "results_dir": LEAK_RESULTS}
    return [
        {**run, "cross_fitted": LEAK_CROSS_FITTED, "cross_fit": CROSS_FIT}
        for run in (main, other)
    ]


def leakage_settings():
    return {
        **table_settings(LEAKAGE["methods"]),
        "rows": LEAKAGE["rows"],
        "runs": leakage_runs(),
    }


def leakage_inputs(wildcards):
    """Both runs' predictions; the main run must have the rows and methods the study needs."""
    missing = [r for r in LEAKAGE["rows"] if r not in EXTRA_ROWS]
    missing += [m for m in LEAKAGE["methods"] if m not in METHODS]
    if not DIAGNOSE:
        raise WorkflowError("config: leakage needs diagnosis.enabled: true")
    if missing:
        raise WorkflowError(
            f"config: leakage compares {', '.join(missing)}, which the main run does not run "
            "(enable them in diagnosis.rows / run_methods, or drop them from leakage)"
        )
    return [
        layout.predictions_csv(
            classifier_dir(
                run["results_dir"], d, s, source, seed, LEAK_CROSS_FITTED, CROSS_FIT
            )
        )
        for run in leakage_runs()
        for d in DATASETS
        for s in SCALES
        for source in LEAKAGE["rows"] + LEAKAGE["methods"]
        for seed in SEEDS
    ]
