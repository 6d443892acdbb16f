# Tables from the per-image metrics of every method job.


rule table1:
    input:
        all_metrics(),
    output:
        table1_outputs(),
    log:
        f"{RESULTS}/logs/table1.log",
    benchmark:
        f"{RESULTS}/benchmarks/table1.tsv"
    conda:
        ENV
    threads: 1
    params:
        settings=as_arg(
            {
                "results_dir": RESULTS,
                "datasets": DATASETS,
                "scales": SCALES,
                "seeds": SEEDS,
                "methods": {m: CFG["methods"][m]["display"] for m in METHODS},
                "bootstrap": CFG["bootstrap"],
            }
        ),
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        "srda-bench table1 --settings {params.settings} --out-dir {params.out} 2> {log}"
