# Tables from the per-image metrics of the method jobs and the predictions of the classifiers,
# figures, and the provenance record. Files wrapped in in_report() go into
# `snakemake --report results/report.html` with the caption of workflow/report/<caption>.rst.


rule table1:
    input:
        all_metrics(METHODS),
    output:
        in_report(table_outputs("table1_psnr_ssim"), "table1", "Tables"),
        in_report(
            vs_paper_outputs("table1_psnr_ssim"), "vs_paper", "Tables beside the paper"
        ),
        in_report(table_outputs("table_roi_psnr_ssim"), "table_roi", "Tables"),
    log:
        log_file("table1"),
    benchmark:
        benchmark_file("table1")
    conda:
        ENV
    threads: 1
    params:
        settings=as_arg(table_settings(METHODS)),
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        "srda-bench table1 --settings {params.settings} --out-dir {params.out} 2> {log}"


rule table2:
    input:
        all_metrics(ABLATIONS),
    output:
        in_report(table_outputs("table2_ablation"), "table2", "Tables"),
        in_report(
            vs_paper_outputs("table2_ablation"), "vs_paper", "Tables beside the paper"
        ),
    log:
        log_file("table2"),
    benchmark:
        benchmark_file("table2")
    conda:
        ENV
    threads: 1
    params:
        settings=as_arg(table_settings(ABLATIONS)),
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        "srda-bench table2 --settings {params.settings} --out-dir {params.out} 2> {log}"


rule table3:
    input:
        list(dict.fromkeys(all_predictions(EXTRA_ROWS + METHODS))),
    output:
        in_report(table_outputs("table3_diagnosis"), "table3", "Tables"),
        in_report(
            vs_paper_outputs("table3_diagnosis"), "vs_paper", "Tables beside the paper"
        ),
        in_report(table_outputs("table3_confusion", ["csv"]), "confusion", "Tables"),
        in_report(table_outputs("table3_headroom", ["csv"]), "headroom", "Tables"),
    log:
        log_file("table3"),
    benchmark:
        benchmark_file("table3")
    conda:
        ENV
    threads: 1
    params:
        settings=as_arg(table_settings(METHODS)),
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        "srda-bench table3 --settings {params.settings} --out-dir {params.out} 2> {log}"


# Every method trained on each LR model of a dataset and scored on each (config
# `degradations`): only when some dataset has more than one.
rule table_cross_degradation:
    input:
        all_metrics(PY_METHODS),
        cross_metrics(),
    output:
        in_report(cross_outputs()[0], "cross_degradation", "Tables"),
        cross_outputs()[1],
    log:
        log_file("table_cross_degradation"),
    benchmark:
        benchmark_file("table_cross_degradation")
    conda:
        ENV
    threads: 1
    params:
        settings=as_arg(table_settings(PY_METHODS)),
        tables=lambda w, output: os.path.dirname(output[0]),
        figures=layout.figures_dir(RESULTS),
    shell:
        "srda-bench table-cross-degradation --settings {params.settings}"
        " --tables-dir {params.tables} --figures-dir {params.figures} 2> {log}"


rule figures:
    input:
        all_tables(),
        # attention.npz is written by SRDA's run_method job beside test.npy (not declared)
        [p for p in figure_inputs(figure_settings()) if not p.endswith(".npz")],
    output:
        figure_outputs(),
    log:
        log_file("figures"),
    benchmark:
        benchmark_file("figures")
    conda:
        ENV
    threads: 1
    params:
        settings=as_arg(figure_settings()),
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        "srda-bench figures --settings {params.settings} --out-dir {params.out} 2> {log}"


rule provenance:
    input:
        all_tables(),
        rules.figures.output,
    output:
        layout.provenance_json(RESULTS),
    log:
        log_file("provenance"),
    conda:
        ENV
    threads: 1
    params:
        config=as_arg(CFG),
        repo=workflow.basedir,
        results=lambda w, output: os.path.dirname(output[0]),
    shell:
        "srda-bench provenance --config {params.config} --repo {params.repo}"
        " --results {params.results} --out {output} 2> {log}"
