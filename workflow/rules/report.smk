# Tables from the per-image metrics of the method jobs.


rule table1:
    input:
        all_metrics(METHODS),
    output:
        table_outputs("table1_psnr_ssim"),
    log:
        f"{RESULTS}/logs/table1.log",
    benchmark:
        f"{RESULTS}/benchmarks/table1.tsv"
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
        table_outputs("table2_ablation"),
    log:
        f"{RESULTS}/logs/table2.log",
    benchmark:
        f"{RESULTS}/benchmarks/table2.tsv"
    conda:
        ENV
    threads: 1
    params:
        settings=as_arg(table_settings(ABLATIONS)),
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        "srda-bench table2 --settings {params.settings} --out-dir {params.out} 2> {log}"
