# Cross-fitting (config diagnosis.cross_fit = K >= 2): the train SR images Table III's
# classifier learns from come from SR networks that never saw those subjects. The train
# subjects are dealt into K folds (per dataset, seeded by split_seed); for each fold the method
# is trained, with its main job's settings, steps and seed, on the other folds and
# super-resolves the fold; the folds' images are put back in train row order. K is in every
# path, so changing it never mixes folds. Logic: srda/crossfit.py.
# CROSS_FIT (K) and CROSS_FITTED (the learned methods: Bicubic and outside tools see no
# training data), the fold folders (fold_data, fold_sr) come from common.smk.
FOLDS = [str(f) for f in range(CROSS_FIT)]


rule cross_fit_data:
    input:
        data=data_inputs,
    output:
        folds=layout.folds_csv(CROSS_FIT_DATA),
        files=[path for f in FOLDS for path in layout.fold_files(fold_data(f), SCALES)],
    log:
        log_file("cross_fit_data", f"{{dataset}}_k{CROSS_FIT}"),
    benchmark:
        benchmark_file("cross_fit_data", f"{{dataset}}_k{CROSS_FIT}")
    conda:
        ENV
    threads: 1
    params:
        data=data_dir,
        scales=" ".join(map(str, SCALES)),
        folds=CROSS_FIT,
        seed=CFG["split_seed"],
        out=lambda w, output: os.path.dirname(output.folds),
    shell:
        "srda-bench cross-fit-data --data {params.data} --scales {params.scales}"
        " --folds {params.folds} --seed {params.seed} --out {params.out} 2> {log}"


rule cross_fit_method:
    input:
        fold=layout.fold_files(fold_data(), SCALES),
    output:
        heldout=layout.sr_shard(fold_sr(), layout.HELDOUT),
        summary=layout.run_json(fold_sr()),
    log:
        log_file("cross_fit_method", f"{CROSS_FIT_JOB}_fold{{fold}}"),
    benchmark:
        benchmark_file("cross_fit_method", f"{CROSS_FIT_JOB}_fold{{fold}}")
    wildcard_constraints:
        method=one_of(CROSS_FITTED),
        fold=one_of(FOLDS),
    conda:
        ENV
    threads: 1
    resources:
        gpu=CFG["gpus_per_job"],
    params:
        # The main job's own settings (as run_method), so the fold trains exactly as it does.
        settings=lambda w: as_arg(method_job_settings(CFG, w.dataset, w.method)),
        fold_dir=lambda w, input: os.path.dirname(input.fold[0]),
        out=lambda w, output: os.path.dirname(output.heldout),
    shell:
        "srda-bench cross-fit-method --settings {params.settings}"
        " --fold-dir {params.fold_dir} --scale {wildcards.scale} --seed {wildcards.seed}"
        " --out {params.out} --gpus {resources.gpu} --threads {threads} 2> {log}"


rule cross_fit_assemble:
    input:
        meta=layout.meta_csv(layout.data_dir(RESULTS), "train"),
        folds=layout.folds_csv(CROSS_FIT_DATA),
        index=[layout.heldout_index_csv(fold_data(f)) for f in FOLDS],
        heldout=[layout.sr_shard(fold_sr(f), layout.HELDOUT) for f in FOLDS],
    output:
        layout.crossfit_train_shard(SR_DIR, CROSS_FIT),
    log:
        log_file("cross_fit_assemble", CROSS_FIT_JOB),
    benchmark:
        benchmark_file("cross_fit_assemble", CROSS_FIT_JOB)
    wildcard_constraints:
        method=one_of(CROSS_FITTED),
    conda:
        ENV
    threads: 1
    params:
        data=lambda w, input: os.path.dirname(input.meta),
        folds_dir=lambda w, input: os.path.dirname(input.folds),
        method_dir=lambda w, input: os.path.dirname(os.path.dirname(input.heldout[0])),
        folds=CROSS_FIT,
    shell:
        "srda-bench cross-fit-assemble --data {params.data} --folds-dir {params.folds_dir}"
        " --method-dir {params.method_dir} --folds {params.folds} --out {output} 2> {log}"
