# The leakage study (`snakemake leakage`, config `leakage`): Table III's classifiers for a few
# methods and reference rows under both split modes. The run under the mode that `split` does
# not name is this Snakefile again, loaded as a module with its own results_dir
# (results_dir/leakage/split_<mode>) and only those methods and rows; it reads the main run's
# cohort. The other mode's run is the main one. srda/report/leakage.py writes the outputs.
module leakage_run:
    snakefile:
        "../../Snakefile"
    config:
        leakage_config(config, LEAKAGE, LEAK_MODE, LEAK_RESULTS)


use rule * from leakage_run exclude all, synthesize, prepare as leakage_*


# The other run slices the main run's cohort (the same volumes, split the other way).
use rule prepare from leakage_run as leakage_prepare with:
    input:
        unpack(prepare_input),


rule leakage:
    input:
        leakage_inputs,
    output:
        in_report(table_outputs("leakage", ("csv", "md")), "leakage", "Tables"),
        [layout.figures_dir(RESULTS) / f"leakage.{ext}" for ext in ("png", "pdf")],
    log:
        log_file("leakage"),
    benchmark:
        benchmark_file("leakage")
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
