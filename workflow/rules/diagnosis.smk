# Table III: one classifier per image source, trained from scratch with the same recipe
# (config `diagnosis`): each method's SR output and the reference rows (srda/reference_rows.py:
# LR on the HR grid, LR at its own size, HR, HR with labels shuffled by subject), each row with
# its own input handling (diagnosis.rows). The classifier's seed is the SR seed of the images
# it reads. Commands: diagnose_shell (common.smk).


rule diagnose_sr:
    input:
        data=lambda w: data_outputs(w.dataset),
        sr=sr_shards(*SPLITS),
    output:
        diagnosis_outputs(f"{sr_dir()}/diagnosis"),
    log:
        f"{RESULTS}/logs/diagnose/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/diagnose/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}.tsv"
    wildcard_constraints:
        method=one_of([m for m in METHODS if m not in CROSS_FITTED]),
    conda:
        ENV
    threads: 1
    resources:
        gpu=CFG["gpus_per_job"],
    params:
        settings=as_arg(DIAGNOSIS),
        data=lambda w: f"{RESULTS}/{w.dataset}",
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        diagnose_shell("sr")


# diagnosis.cross_fit: K: the train images come from SR networks that never saw them
# (workflow/rules/crossfit.smk); val and test are the main network's, as above.
rule diagnose_sr_cross_fit:
    input:
        data=lambda w: data_outputs(w.dataset),
        sr=[f"{sr_dir()}/{split}.npy" for split in SPLITS],
        train=f"{sr_dir()}/train_crossfit{CROSS_FIT}.npy",
    output:
        diagnosis_outputs(f"{sr_dir()}/diagnosis_crossfit{CROSS_FIT}"),
    log:
        f"{RESULTS}/logs/diagnose/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}_crossfit.log",
    benchmark:
        f"{RESULTS}/benchmarks/diagnose/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}_crossfit.tsv"
    wildcard_constraints:
        method=one_of(CROSS_FITTED),
    conda:
        ENV
    threads: 1
    resources:
        gpu=CFG["gpus_per_job"],
    params:
        settings=as_arg(DIAGNOSIS),
        data=lambda w: f"{RESULTS}/{w.dataset}",
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        diagnose_shell("sr", train_images=True)


rule diagnose_lr_row:
    input:
        data=lambda w: data_outputs(w.dataset),
    output:
        diagnosis_outputs(
            f"{RESULTS}/{{dataset}}/x{{scale}}/diagnosis_{{row}}/seed{{seed}}"
        ),
    log:
        f"{RESULTS}/logs/diagnose/{{dataset}}_x{{scale}}_{{row}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/diagnose/{{dataset}}_x{{scale}}_{{row}}_seed{{seed}}.tsv"
    wildcard_constraints:
        row=one_of(LR_ROWS),
    conda:
        ENV
    threads: 1
    resources:
        gpu=CFG["gpus_per_job"],
    params:
        settings=lambda w: as_arg(diagnosis_job_settings(CFG, w.row, int(w.scale))),
        data=lambda w: f"{RESULTS}/{w.dataset}",
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        diagnose_shell("lr")


rule diagnose_hr_row:
    input:
        data=lambda w: data_outputs(w.dataset),
    output:
        diagnosis_outputs(f"{RESULTS}/{{dataset}}/diagnosis_{{row}}/seed{{seed}}"),
    log:
        f"{RESULTS}/logs/diagnose/{{dataset}}_{{row}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/diagnose/{{dataset}}_{{row}}_seed{{seed}}.tsv"
    wildcard_constraints:
        row=one_of(HR_ROWS),
    conda:
        ENV
    threads: 1
    resources:
        gpu=CFG["gpus_per_job"],
    params:
        settings=lambda w: as_arg(diagnosis_job_settings(CFG, w.row)),
        data=lambda w: f"{RESULTS}/{w.dataset}",
        out=lambda w, output: os.path.dirname(output[0]),
    shell:
        diagnose_shell("hr")
