# One job per (dataset, scale, LR model, method, seed): train if the method learns,
# super-resolve the train/val/test LR shards of that model, score the test split.


rule run_method:
    input:
        data=lr_inputs,
    output:
        sr=[layout.sr_shard(SR_DIR, split) for split in SPLITS],
        metrics=layout.sr_metrics_csv(SR_DIR),
        summary=layout.run_json(SR_DIR),
        model=layout.sr_model(SR_DIR),
    log:
        log_file("run_method", METHOD_JOB),
    benchmark:
        benchmark_file("run_method", METHOD_JOB)
    wildcard_constraints:
        method=one_of(PY_METHODS),
    conda:
        ENV
    threads: 1  # two jobs side by side use 2 cores better than one job on two threads
    resources:
        gpu=CFG["gpus_per_job"],
    params:
        settings=lambda w: as_arg(method_job_settings(CFG, w.dataset, w.method)),
        data=data_dir,
        degradation=degradation_flag,
        out=lambda w, output: os.path.dirname(output.summary),
    shell:
        "srda-bench run-method --settings {params.settings} --data {params.data}"
        " --scale {wildcards.scale}{params.degradation} --seed {wildcards.seed}"
        " --out {params.out} --gpus {resources.gpu} --threads {threads} 2> {log}"


# The cross-degradation table: a method job's network scored on the test images of each other
# LR model of its dataset, without retraining (srda.cross_degradation).
rule cross_score:
    input:
        data=data_inputs,
        model=layout.sr_model(SR_DIR),
        lr=cross_lr_input,
    output:
        layout.cross_metrics_csv(SR_DIR),
    log:
        log_file("cross_score", f"{METHOD_JOB}_on_{{test_degradation}}"),
    benchmark:
        benchmark_file("cross_score", f"{METHOD_JOB}_on_{{test_degradation}}")
    wildcard_constraints:
        method=one_of(PY_METHODS),
        test_degradation=one_of(ALL_DEGRADATIONS),
    conda:
        ENV
    threads: 1
    resources:
        gpu=CFG["gpus_per_job"],
    params:
        data=data_dir,
    shell:
        "srda-bench cross-score --model {input.model} --data {params.data} --lr {input.lr}"
        " --scale {wildcards.scale} --out {output} --gpus {resources.gpu}"
        " --threads {threads} 2> {log}"
