# Table III: one classifier per image source, trained from scratch with the same recipe
# (config `diagnosis`): each method's SR output and the reference rows (srda/reference_rows.py:
# LR on the HR grid, LR at its own size, HR, HR with labels shuffled by subject), each row with
# its own input handling (diagnosis.rows). The four diagnose rules (diagnose_sr, its
# cross-fitted twin, diagnose_lr_row, diagnose_hr_row) differ only in what DIAGNOSE_RULES
# (common.smk) says of them.
for name, spec in DIAGNOSE_RULES.items():

    rule:
        name:
            name
        input:
            **spec["inputs"],
        output:
            layout.classifier_files(spec["folder"]),
        log:
            log_file("diagnose", spec["job"]),
        benchmark:
            benchmark_file("diagnose", spec["job"])
        wildcard_constraints:
            **spec["wildcard"],
        conda:
            ENV
        threads: 1
        resources:
            gpu=CFG["gpus_per_job"],
        params:
            flags=spec["flags"],
            settings=spec["settings"],
            data=data_dir,
            out=lambda w, output: os.path.dirname(output[0]),
        shell:
            DIAGNOSE_SHELL
