# Methods from outside Python. A tool only has to turn the LR shards of a dataset into SR
# shards (layout.sr_shard: results/{dataset}/x{scale}/sr/{method}/seed{seed}/{split}.npy,
# float32 (N, H, W) in [0, 1]); score_external turns the test shard into test_metrics.csv like
# any other method.
#
# To add one: copy rule lanczos, rename it, set the method name in its output paths, replace the
# shell command with your tool's, and add `{name}: {external: true, display: Name}` to methods.


rule lanczos:
    input:
        lr=lambda w: lr_shards(w.dataset, w.scale),
    output:
        [layout.sr_shard(layout.sr_dir(RESULTS, method="lanczos"), s) for s in SPLITS],
    log:
        log_file("lanczos", TOOL_JOB),
    benchmark:
        benchmark_file("lanczos", TOOL_JOB)
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
        data=data_inputs,
        sr=sr_shards("test"),
    output:
        layout.sr_metrics_csv(SR_DIR),
    log:
        log_file("score_external", METHOD_JOB),
    benchmark:
        benchmark_file("score_external", METHOD_JOB)
    wildcard_constraints:
        method=one_of(EXTERNAL),
    conda:
        ENV
    threads: 1
    params:
        data=data_dir,
        sr_dir=lambda w, input: os.path.dirname(input.sr),
    shell:
        "srda-bench score --data {params.data} --scale {wildcards.scale}"
        " --sr-dir {params.sr_dir} 2> {log}"
