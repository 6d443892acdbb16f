# Data stage: the embedded cohort (when source: synthetic), then one job per dataset that
# ingests, slices, splits and writes HR/LR shards.


rule synthesize:
    output:
        directory(layout.cohort_dir(RESULTS)),
    log:
        log_file("synthesize", "{dataset}"),
    benchmark:
        benchmark_file("synthesize", "{dataset}")
    conda:
        ENV
    threads: 1
    params:
        settings=lambda w: as_arg(synth_settings(w.dataset)),
    shell:
        "srda-bench synthesize --settings {params.settings} --out {output} 2> {log}"


rule prepare:
    input:
        unpack(prepare_input),
    output:
        data_outputs(),
    log:
        log_file("prepare", "{dataset}"),
    benchmark:
        benchmark_file("prepare", "{dataset}")
    conda:
        ENV
    threads: 1
    params:
        settings=lambda w: as_arg(dataset_job_settings(CFG, w.dataset)),
        cohort=lambda w, input: (
            f"--cohort {input.cohort}" if "cohort" in input.keys() else ""
        ),
        out=data_dir,
    shell:
        "srda-bench prepare --settings {params.settings} {params.cohort} --out {params.out} 2> {log}"
