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


# LR images of another LR model (config `degradations`; bicubic's come from prepare), made
# from the data stage's HR shards (srda.data.lowres).
rule degrade:
    input:
        data_inputs,
    output:
        [layout.lr_split_shard(LR_MODEL_DIR, split) for split in SPLITS],
        layout.degradation_json(LR_MODEL_DIR),
    log:
        log_file("degrade", layout.job_name("{dataset}", SCALE_DEG)),
    benchmark:
        benchmark_file("degrade", layout.job_name("{dataset}", SCALE_DEG))
    wildcard_constraints:
        deg=deg_values(MADE_DEGRADATIONS),
    conda:
        ENV
    threads: 1
    params:
        settings=lambda w: as_arg(degrade_settings(w)),
        data=data_dir,
        out=lambda w, output: os.path.dirname(output[-1]),
    shell:
        "srda-bench degrade --settings {params.settings} --data {params.data}"
        " --scale {wildcards.scale} --out {params.out} 2> {log}"
