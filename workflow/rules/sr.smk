# One job per (dataset, scale, method, seed): train if the method learns, super-resolve the
# train/val/test LR shards, score the test split.


rule run_method:
    input:
        data=data_inputs,
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
        out=lambda w, output: os.path.dirname(output.summary),
    shell:
        "srda-bench run-method --settings {params.settings} --data {params.data}"
        " --scale {wildcards.scale} --seed {wildcards.seed} --out {params.out}"
        " --gpus {resources.gpu} --threads {threads} 2> {log}"
