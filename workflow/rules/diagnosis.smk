# Table III: one classifier per image source, trained from scratch with the same recipe
# (config `diagnosis`): each method's SR output, the LR images at their own size, and HR.
# The classifier's seed is the SR seed of the images it reads. Commands: diagnose_shell (common.smk).


rule diagnose_sr:
    input:
        data=lambda w: data_outputs(w.dataset),
        sr=[f"{sr_dir()}/{split}.npy" for split in SPLITS],
    output:
        diagnosis_outputs(f"{sr_dir()}/diagnosis"),
    log:
        f"{RESULTS}/logs/diagnose/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/diagnose/{{dataset}}_x{{scale}}_{{method}}_seed{{seed}}.tsv"
    wildcard_constraints:
        method=one_of(METHODS),
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


rule diagnose_lr:
    input:
        data=lambda w: data_outputs(w.dataset),
    output:
        diagnosis_outputs(diagnosis_dir(source="lr")),
    log:
        f"{RESULTS}/logs/diagnose/{{dataset}}_x{{scale}}_lr_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/diagnose/{{dataset}}_x{{scale}}_lr_seed{{seed}}.tsv"
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
        diagnose_shell("lr")


rule diagnose_hr:
    input:
        data=lambda w: data_outputs(w.dataset),
    output:
        diagnosis_outputs(diagnosis_dir(source="hr")),
    log:
        f"{RESULTS}/logs/diagnose/{{dataset}}_hr_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/diagnose/{{dataset}}_hr_seed{{seed}}.tsv"
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
        diagnose_shell("hr")
