# Helpers shared by every stage (the resolved configuration, the paths of the DAG).
import json
import os
import re
import shlex

from srda.config import SPLITS, dataset_job_settings, method_job_settings, resolve
from srda.errors import InputError
from srda.report import ABLATIONS as TABLE2_METHODS

try:
    CFG = resolve(config)
except InputError as exc:
    raise WorkflowError(str(exc)) from None

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


def one_of(names):
    """A wildcard pattern matching exactly these names (and nothing when there are none)."""
    return "|".join(map(re.escape, names)) or "(?!x)x"


def as_arg(settings):
    """A job's own settings as one shell-quoted JSON argument (params: a change reruns only it)."""
    return shlex.quote(json.dumps(settings, sort_keys=True))


def synth_settings(dataset):
    ds = CFG["datasets"][dataset]
    return {"name": dataset, "modality": ds["modality"], "synthetic": ds["synthetic"]}


def prepare_input(wildcards):
    ds = CFG["datasets"][wildcards.dataset]
    if ds["source"] == "synthetic":
        return {"cohort": f"{RESULTS}/cohort/{wildcards.dataset}"}
    return {
        key: ds[key] for key in ("path", "labels", "masks", "subjects") if ds.get(key)
    }


def data_outputs(dataset="{dataset}"):
    base = f"{RESULTS}/{dataset}"
    files = [
        f"{base}/{s}_{kind}"
        for s in SPLITS
        for kind in ("hr.npy", "meta.csv", "roi.npy")
    ]
    files += [f"{base}/x{scale}/{s}_lr.npy" for scale in SCALES for s in SPLITS]
    return files + [
        f"{base}/splits.csv",
        f"{base}/split_report.csv",
        f"{base}/dataset.json",
    ]


def lr_shards(dataset, scale):
    return [f"{RESULTS}/{dataset}/x{scale}/{s}_lr.npy" for s in SPLITS]


def sr_dir(dataset="{dataset}", scale="{scale}", method="{method}", seed="{seed}"):
    return f"{RESULTS}/{dataset}/x{scale}/sr/{method}/seed{seed}"


def table_outputs(stem):
    return [f"{RESULTS}/tables/{stem}.{ext}" for ext in ("csv", "md", "tex")]


def all_metrics(methods):
    return [
        f"{sr_dir(d, s, m, seed)}/test_metrics.csv"
        for d in DATASETS
        for s in SCALES
        for m in methods
        for seed in SEEDS
    ]


def table_settings(methods):
    return {
        "results_dir": RESULTS,
        "datasets": DATASETS,
        "scales": SCALES,
        "seeds": SEEDS,
        "methods": [[m, CFG["methods"][m]["display"]] for m in methods],
        "bootstrap": CFG["bootstrap"],
    }


def all_tables():
    """Table I always; Table II when any of SRDA's ablations is run."""
    tables = table_outputs("table1_psnr_ssim")
    if ABLATIONS:
        tables += table_outputs("table2_ablation")
    return tables
