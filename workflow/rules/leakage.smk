# The leakage study (`snakemake leakage`, config `leakage`): Table III's classifiers for a few
# methods and reference rows under both split modes. The run under the mode that `split` does
# not name is this Snakefile again, loaded as a module with its own results_dir
# (results_dir/leakage/split_<mode>) and only those methods and rows; it reads the main run's
# cohort. The other mode's run is the main one. srda/report/leakage.py writes the outputs.
import copy

LEAKAGE = CFG["leakage"]
LEAK_MODE = "slices" if CFG["split"] == "subjects" else "subjects"
LEAK_RESULTS = f"{RESULTS}/leakage/split_{LEAK_MODE}"
LEAK_CROSS_FITTED = [m for m in CROSS_FITTED if m in LEAKAGE["methods"]]


def leakage_module_config():
    """The raw configuration of the other split mode's run: only the split, the results folder
    and the methods and rows differ from the main run's."""
    raw = copy.deepcopy(config)
    raw.update(
        split=LEAK_MODE, results_dir=LEAK_RESULTS, run_methods=LEAKAGE["methods"]
    )
    diagnosis = raw["diagnosis"] = dict(raw.get("diagnosis") or {})
    rows = diagnosis["rows"] = copy.deepcopy(diagnosis.get("rows") or {})
    for row in REFERENCE_ROWS:
        rows[row] = {**rows.get(row, {}), "enabled": row in LEAKAGE["rows"]}
    return raw


module leakage_run:
    snakefile:
        "../../Snakefile"
    config:
        leakage_module_config()


use rule * from leakage_run exclude all, synthesize, prepare as leakage_*


# The other run slices the main run's cohort (the same volumes, split the other way).
use rule prepare from leakage_run as leakage_prepare with:
    input:
        unpack(prepare_input),


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
        os.path.join(
            classifier_dir(
                run["results_dir"], d, s, source, seed, LEAK_CROSS_FITTED, CROSS_FIT
            ),
            "predictions.csv",
        )
        for run in leakage_runs()
        for d in DATASETS
        for s in SCALES
        for source in LEAKAGE["rows"] + LEAKAGE["methods"]
        for seed in SEEDS
    ]


rule leakage:
    input:
        leakage_inputs,
    output:
        in_report(
            [f"{RESULTS}/tables/leakage.{ext}" for ext in ("csv", "md")],
            "leakage",
            "Tables",
        ),
        [f"{RESULTS}/figures/leakage.{ext}" for ext in ("png", "pdf")],
    log:
        f"{RESULTS}/logs/leakage.log",
    benchmark:
        f"{RESULTS}/benchmarks/leakage.tsv"
    conda:
        ENV
    threads: 1
    params:
        settings=as_arg(leakage_settings()),
        tables=lambda w, output: os.path.dirname(output[0]),
        figures=lambda w, output: os.path.dirname(output[2]),
    shell:
        "srda-bench leakage --settings {params.settings} --tables-dir {params.tables}"
        " --figures-dir {params.figures} 2> {log}"
