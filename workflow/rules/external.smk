# Methods from outside Python. A tool only has to turn the LR shards of a dataset into SR
# shards (results/{dataset}/x{scale}/sr/{method}/seed{seed}/{split}.npy, float32 (N, H, W) in
# [0, 1]); score_external turns the test shard into test_metrics.csv like any other method.
#
# To add one: copy rule lanczos, rename it, set the method name in its output paths, replace the
# shell command with your tool's, and add `{name}: {external: true, display: Name}` to methods.


rule lanczos:
    input:
        lr=lambda w: lr_shards(w.dataset, w.scale),
    output:
        [
            f"{RESULTS}/{{dataset}}/x{{scale}}/sr/lanczos/seed{{seed}}/{s}.npy"
            for s in SPLITS
        ],
    log:
        f"{RESULTS}/logs/lanczos/{{dataset}}_x{{scale}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lanczos/{{dataset}}_x{{scale}}_seed{{seed}}.tsv"
    conda:
        ENV
    threads: 1
    params:
        tool=os.path.join(workflow.basedir, "workflow", "scripts", "lanczos_upscale.py"),
    shell:
        "python {params.tool} --scale {wildcards.scale} --inputs {input.lr}"
        " --outputs {output} > {log} 2>&1"


rule score_external:
    input:
        data=lambda w: data_outputs(w.dataset),
        sr=sr_shards("test"),
    output:
        f"{sr_dir()}/test_metrics.csv",
    log:
        f"{RESULTS}/logs/score_external/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_external/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}.tsv"
    wildcard_constraints:
        method=one_of(EXTERNAL),
    conda:
        ENV
    threads: 1
    params:
        data=lambda w: f"{RESULTS}/{w.dataset}",
        sr_dir=lambda w, input: os.path.dirname(input.sr),
    shell:
        "srda-bench score --data {params.data} --scale {wildcards.scale}"
        " --sr-dir {params.sr_dir} 2> {log}"
