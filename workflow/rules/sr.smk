# One job per (dataset, scale, method, seed): train if the method learns, super-resolve the
# train/val/test LR shards, score the test split.


rule run_method:
    input:
        data=lambda w: data_outputs(w.dataset),
    output:
        sr=[f"{sr_dir()}/{split}.npy" for split in SPLITS],
        metrics=f"{sr_dir()}/test_metrics.csv",
        summary=f"{sr_dir()}/run.json",
        model=f"{sr_dir()}/sr_model.pt",
    log:
        f"{RESULTS}/logs/run_method/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/run_method/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}.tsv"
    wildcard_constraints:
        method=one_of(PY_METHODS),
    conda:
        ENV
    threads: 1  # two jobs side by side use 2 cores better than one job on two threads
    resources:
        gpu=CFG["gpus_per_job"],
    params:
        settings=lambda w: as_arg(method_job_settings(CFG, w.dataset, w.method)),
        data=lambda w: f"{RESULTS}/{w.dataset}",
        out=lambda w: sr_dir(w.dataset, w.scale, w.method, w.seed),
    shell:
        "srda-bench run-method --settings {params.settings} --data {params.data}"
        " --scale {wildcards.scale} --seed {wildcards.seed} --out {params.out}"
        " --gpus {resources.gpu} --threads {threads} 2> {log}"
