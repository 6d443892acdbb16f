# Tables from the per-image metrics of every method job.


rule table1:
    input:
        all_metrics(),
    output:
        table1_outputs(),
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
        out=f"{RESULTS}/tables",
    log:
        f"{RESULTS}/logs/table1.log",
    benchmark:
        f"{RESULTS}/benchmarks/table1.tsv"
    threads: 1
    conda:
        ENV
    shell:
        "srda-bench table1 --settings {params.settings} --out-dir {params.out} 2> {log}"
