# Cross-fitting (config diagnosis.cross_fit = K >= 2): the train SR images Table III's
# classifier learns from come from SR networks that never saw those subjects. The train
# subjects are dealt into K folds (per dataset, seeded by split_seed); for each fold the method
# is trained, with its main job's settings, steps and seed, on the other folds and
# super-resolves the fold; the folds' images are put back in train row order. K is in every
# path, so changing it never mixes folds. Logic: srda/crossfit.py.
# CROSS_FIT (K) and CROSS_FITTED (the learned methods: Bicubic and outside tools see no
# training data) come from common.smk.
FOLDS = [str(f) for f in range(CROSS_FIT)]


# Per dataset: folds.csv and one data folder per fold that the trainer reads like the dataset's
# own, plus the fold's held-out rows (their original train indices and LR images).
CROSS_FIT_DATA = f"{RESULTS}/{{dataset}}/crossfit{CROSS_FIT}"
CROSS_FIT_FOLD_FILES = [
    "train_hr.npy",
    "train_meta.csv",
    "train_roi.npy",
    "val_hr.npy",
    "val_meta.csv",
    "dataset.json",
    "heldout_index.csv",
] + [
    f"x{scale}/{name}"
    for scale in SCALES
    for name in ("train_lr.npy", "val_lr.npy", "heldout_lr.npy")
]
# Per method job: one folder per fold (heldout.npy, run.json, train/), then the assembled shard.
CROSS_FIT_SR = f"{sr_dir()}/crossfit{CROSS_FIT}"


rule cross_fit_data:
    input:
        data=lambda w: data_outputs(w.dataset),
    output:
        folds=f"{CROSS_FIT_DATA}/folds.csv",
        files=[
            f"{CROSS_FIT_DATA}/fold{f}/{name}"
            for f in FOLDS
            for name in CROSS_FIT_FOLD_FILES
        ],
    log:
        f"{RESULTS}/logs/cross_fit_data/{{dataset}}_k{CROSS_FIT}.log",
    benchmark:
        f"{RESULTS}/benchmarks/cross_fit_data/{{dataset}}_k{CROSS_FIT}.tsv"
    conda:
        ENV
    threads: 1
    params:
        data=lambda w: f"{RESULTS}/{w.dataset}",
        scales=" ".join(map(str, SCALES)),
        folds=CROSS_FIT,
        seed=CFG["split_seed"],
        out=lambda w, output: os.path.dirname(output.folds),
    shell:
        "srda-bench cross-fit-data --data {params.data} --scales {params.scales}"
        " --folds {params.folds} --seed {params.seed} --out {params.out} 2> {log}"


rule cross_fit_method:
    input:
        fold=[f"{CROSS_FIT_DATA}/fold{{fold}}/{name}" for name in CROSS_FIT_FOLD_FILES],
    output:
        heldout=f"{CROSS_FIT_SR}/fold{{fold}}/heldout.npy",
        summary=f"{CROSS_FIT_SR}/fold{{fold}}/run.json",
    log:
        f"{RESULTS}/logs/cross_fit_method/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}"
        f"_k{CROSS_FIT}_fold{{fold}}.log",
    benchmark:
        (
            f"{RESULTS}/benchmarks/cross_fit_method/{{dataset}}_x{{scale}}_{{method}}"
            f"_seed{{seed}}_k{CROSS_FIT}_fold{{fold}}.tsv"
        )
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
        meta=f"{RESULTS}/{{dataset}}/train_meta.csv",
        folds=f"{CROSS_FIT_DATA}/folds.csv",
        index=[f"{CROSS_FIT_DATA}/fold{f}/heldout_index.csv" for f in FOLDS],
        heldout=[f"{CROSS_FIT_SR}/fold{f}/heldout.npy" for f in FOLDS],
    output:
        f"{sr_dir()}/train_crossfit{CROSS_FIT}.npy",
    log:
        f"{RESULTS}/logs/cross_fit_assemble/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}"
        f"_k{CROSS_FIT}.log",
    benchmark:
        (
            f"{RESULTS}/benchmarks/cross_fit_assemble/{{dataset}}_x{{scale}}_{{method}}"
            f"_seed{{seed}}_k{CROSS_FIT}.tsv"
        )
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
