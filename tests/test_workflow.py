"""The workflow as a user runs it: the smoke preset end to end, dry runs, lint, env files."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import snakemake_failure

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=workdir, env=env, capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(snakemake_failure(workdir, args, proc.stdout, proc.stderr))
    return proc


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, dest / name)
    for name in ("workflow", "envs", "profiles", "results/paper"):
        shutil.copytree(REPO / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("smoke"))
    snakemake(work, "--cores", "2", "--config", "preset=smoke")
    return work


@pytest.mark.slow
def test_smoke_preset_writes_table1_for_all_datasets(smoke_run):
    table = pd.read_csv(smoke_run / "results/tables/table1_psnr_ssim.csv")
    assert list(table.columns) == [
        "dataset",
        "scale",
        "degradation",
        "method",
        "seed",
        "level",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n_subjects",
        "p_value",
        "p_holm",
        "converged",
        "last_quarter_gain",
    ]
    # 20 steps validated at 10 and 20: every learned row is judged, and nearly all are still
    # improving (a transient plateau, e.g. SRD's, can look converged); untrained rows are empty
    assert set(table["degradation"]) == {"bicubic"}  # the paper's LR model, the default
    untrained = table["method"].isin(["bicubic", "lanczos"])
    assert table.loc[untrained, "converged"].isna().all()
    learned = table[~untrained]
    assert learned["converged"].notna().all()
    assert (learned["converged"] == (learned["last_quarter_gain"] < 0.1)).all()
    assert (learned["converged"] == False).mean() > 0.5  # noqa: E712
    assert "†" in (smoke_run / "results/tables/table1_psnr_ssim.md").read_text()
    # per volume only where subjects have several slices (the 3D sets)
    assert set(table.loc[table["level"] == "volume", "dataset"]) == {"adni-mri", "adni-pet"}
    table = table[table["level"] == "image"]
    assert table.loc[table["method"] != "srda", "p_holm"].notna().all()
    assert set(table["dataset"]) == {"adni-mri", "adni-pet", "demented-mri"}
    assert set(table["method"]) >= {
        "bicubic",
        "lanczos",
        "srda",
        "srda_base",
        "srda_dconv",
        "srda_dconv_diag",
    }
    assert set(table["metric"]) == {"psnr", "ssim"}
    psnr = table[(table["metric"] == "psnr") & table["method"].isin(["bicubic", "lanczos"])]
    assert psnr["value"].between(15, 45).all()
    assert (psnr["ci_low"] < psnr["value"]).all() and (psnr["value"] < psnr["ci_high"]).all()
    ssim = table[(table["metric"] == "ssim") & (table["method"] == "bicubic")]
    assert ssim["value"].between(0.3, 1.0).all()
    md = (smoke_run / "results/tables/table1_psnr_ssim.md").read_text()
    assert "Bicubic" in md and "SRDA" in md and "adni-pet PSNR" in md


@pytest.mark.slow
def test_smoke_preset_writes_the_ablation_table(smoke_run):
    table = pd.read_csv(smoke_run / "results/tables/table2_ablation.csv")
    assert set(table["method"]) == {"srda_base", "srda_dconv", "srda_dconv_diag", "srda"}
    assert len(table) == 3 * 4 * 2 + 2 * 4 * 2  # image level, plus volume level for 3D sets
    md = (smoke_run / "results/tables/table2_ablation.md").read_text()
    # a dagger marks a row still improving when its 20 steps ran out
    assert "SR+Dconv+Diag+Atten" in md and re.search(r"^\| SR†? \|", md, re.M)


@pytest.mark.slow
def test_smoke_data_stage_contract(smoke_run):
    import json

    import numpy as np

    base = smoke_run / "results/adni-mri"
    info = json.loads((base / "dataset.json").read_text())
    assert info["subjects_in_multiple_splits"] == 0 and info["has_roi"]
    splits = pd.read_csv(base / "splits.csv")
    assert list(splits.columns) == ["subject", "label", "split"]
    assert splits.groupby("subject")["split"].nunique().max() == 1
    for split in ("train", "val", "test"):
        hr = np.load(base / f"{split}_hr.npy", mmap_mode="r")
        lr = np.load(base / f"x4/{split}_lr.npy", mmap_mode="r")
        meta = pd.read_csv(base / f"{split}_meta.csv")
        assert hr.dtype == np.float32 and hr.shape[1:] == (48, 48) and len(meta) == len(hr)
        assert lr.shape == (len(hr), 12, 12)
        assert 0 <= hr.min() and hr.max() <= 1
    sr = np.load(smoke_run / "results/demented-mri/x4/sr/bicubic/seed0/test.npy")
    assert sr.shape[1:] == (48, 48) and 0 <= sr.min() and sr.max() <= 1


@pytest.mark.slow
def test_smoke_writes_table3_with_every_reference_row_and_the_headroom(smoke_run):
    table = pd.read_csv(smoke_run / "results/tables/table3_diagnosis.csv")
    rows = {"lr", "lr_native", "hr", "hr_shuffled"}
    assert rows | {"bicubic", "srda", "lanczos"} <= set(table["method"])
    assert set(table["level"]) == {"slice", "subject"}
    acc = table[(table["metric"] == "acc") & (table["level"] == "slice")]
    assert len(acc) == 3 * (13 + 4) and acc["value"].between(0, 1).all()
    tested = acc[~acc["method"].isin(["srda", "hr_shuffled"])]
    assert tested["p_holm"].notna().all()
    # every row's classifier is trained and validated at 6 and 12 of 12 steps: all judged
    assert {"converged", "last_quarter_gain"} <= set(table.columns)
    assert table["converged"].notna().all() and table["last_quarter_gain"].notna().all()
    # p-values over subjects only: sign-flip where a 3D subject has several slices
    tests = tested.groupby("dataset")["test"].unique()
    assert list(tests["adni-mri"]) == ["sign-flip over subjects"]
    assert list(tests["demented-mri"]) == ["mcnemar over subjects"]
    # each reference row got its own input handling
    lr = json.loads((smoke_run / "results/adni-mri/x4/diagnosis_lr/seed0/summary.json").read_text())
    native = smoke_run / "results/adni-mri/x4/diagnosis_lr_native/seed0/summary.json"
    assert lr["input_size"] == [48, 48] and lr["settings"]["upsample_mode"] == "nearest"
    assert json.loads(native.read_text())["input_size"] == [12, 12]
    shuffled = smoke_run / "results/adni-mri/diagnosis_hr_shuffled/seed0/summary.json"
    assert json.loads(shuffled.read_text())["settings"]["shuffle_labels"] is True
    md = (smoke_run / "results/tables/table3_diagnosis.md").read_text()
    for row in ("LR (nearest)", "HR", "HR, shuffled labels"):
        assert re.search(rf"^\| {re.escape(row)}†? \|", md, re.M), row
    assert "Headroom and power" in md and "sign-flip" in md
    room = pd.read_csv(smoke_run / "results/tables/table3_headroom.csv")
    wanted = {"hr_minus_bicubic", "hr_minus_lr", "bicubic_minus_lr", "best_sr_minus_bicubic"}
    assert wanted <= set(room["quantity"]) and set(room["dataset"]) == {
        "adni-mri",
        "adni-pet",
        "demented-mri",
    }
    assert room.loc[room["metric"] == "acc", "mde"].notna().all()
    beside = pd.read_csv(smoke_run / "results/tables/table3_diagnosis_vs_paper.csv")
    srda = beside[(beside["method"] == "srda") & (beside["dataset"] == "adni-mri")]
    assert srda["paper"].iloc[0] == pytest.approx(0.8706)
    roi = pd.read_csv(smoke_run / "results/tables/table_roi_psnr_ssim.csv")
    assert {"psnr_hippocampus", "ssim_lateral_ventricles"} <= set(roi["metric"])


@pytest.mark.slow
def test_smoke_writes_every_figure_and_provenance(smoke_run):
    import json

    from matplotlib import image

    figures = sorted((smoke_run / "results/figures").iterdir())
    names = {p.name for p in figures}
    for dataset in ("adni-mri", "adni-pet", "demented-mri"):
        for kind in ("qualitative", "error_maps", "attention", "training_curves"):
            assert {f"{dataset}_x4_{kind}.png", f"{dataset}_x4_{kind}.pdf"} <= names
    assert "psnr_vs_accuracy.png" in names
    for path in figures:
        if path.suffix == ".png":
            assert image.imread(path).std() > 0.02, f"{path.name} looks blank"
        else:
            assert path.read_bytes()[:4] == b"%PDF"
    record = json.loads((smoke_run / "results/provenance.json").read_text())
    assert record["config"]["preset"] == "smoke"
    assert record["packages"]["torch"] and record["rules"]["run_method"]["jobs"] == 36
    assert {job["device"] for job in record["jobs"]} == {"cpu"}


@pytest.mark.slow
def test_smoke_html_report(smoke_run):
    snakemake(smoke_run, "--report", "results/report.html", "--config", "preset=smoke")
    html = (smoke_run / "results/report.html").read_text(errors="replace")
    assert "table3_diagnosis.csv" in html and "psnr_vs_accuracy.png" in html


@pytest.mark.slow
def test_second_run_has_nothing_to_do(smoke_run):
    out = snakemake(smoke_run, "-n", "--config", "preset=smoke")
    assert "Nothing to be done" in out.stdout + out.stderr


@pytest.mark.slow
def test_leakage_study_runs_the_other_split_on_the_same_cohort(smoke_run):
    out = snakemake(smoke_run, "leakage", "--cores", "2", "--config", "preset=smoke")
    # only the other split's jobs and the study ran: the main run's classifiers were reused
    ran = set(re.findall(r"^(?:local)?rule (\w+):", out.stdout + out.stderr, re.MULTILINE))
    assert ran and all(r.startswith("leakage") for r in ran), ran
    tables = smoke_run / "results/tables"
    long = pd.read_csv(tables / "leakage.csv")
    assert set(long["split_mode"]) == {"subjects", "slices"}
    assert set(long["method"]) == {"bicubic", "srda", "lr", "hr", "hr_shuffled"}
    leaked = long.groupby(["dataset", "split_mode"])["leaked_subjects"].max()
    assert leaked.xs("subjects", level="split_mode").eq(0).all()  # the split by subject
    assert leaked[("adni-mri", "slices")] > 0  # a 3D subject's slices land in train and test
    # One image per subject (the 2D set): both splits are the same partition, the same scores
    two_d = long[(long["dataset"] == "demented-mri")].pivot_table(
        index=["method", "level", "metric"], columns="split_mode", values="value"
    )
    assert (two_d["slices"] == two_d["subjects"]).all()
    assert "slices minus subjects" in (tables / "leakage.md").read_text().lower()
    assert (smoke_run / "results/figures/leakage.png").stat().st_size > 0
    # and left the main run up to date
    out = snakemake(smoke_run, "-n", "--config", "preset=smoke")
    assert "Nothing to be done" in out.stdout + out.stderr


@pytest.mark.slow
def test_changing_one_dataset_reruns_only_its_jobs(smoke_run):
    out = snakemake(
        smoke_run,
        "-n",
        "--config",
        "preset=smoke",
        "dataset_defaults={min_brain_fraction: 0.5}",
        "run_datasets=[adni-pet]",
    )
    text = out.stdout + out.stderr
    assert "prepare" in text and "synthesize " not in text


@pytest.mark.slow
def test_every_diagnose_job_classifies_its_own_rows_images(smoke_run):
    # the four diagnose rules are made in one loop: each must run its own command
    logs = sorted((smoke_run / "results/logs/diagnose").glob("*.log"))
    seen = {"sr": 0, "lr": 0, "hr": 0}
    for log in logs:
        source, method = re.search(r"diagnosis of (\w+) \((\S+)\)", log.read_text()).groups()
        seen[source] += 1
        if source == "sr":
            assert f"_x4_{method}_seed0" in log.name, log.name
        elif source == "lr":
            assert re.search(r"_x4_lr(_native)?_seed0", log.name), log.name
        else:
            assert re.search(r"_hr(_shuffled)?_seed0", log.name), log.name
    assert seen["sr"] == 3 * 13 and seen["lr"] == 3 * 2 and seen["hr"] == 3 * 2


@pytest.mark.slow
def test_cross_fit_trains_fold_networks_and_a_classifier_beside_the_in_sample_one(smoke_run):
    # the smoke run's data and SR jobs are reused: only the folds, their SR networks and the
    # cross-fitted classifier run. Runs after the tests that expect the smoke tree untouched
    # (it rewrites the tables for a subset of methods).
    args = ["--config", "preset=smoke", "diagnosis={cross_fit: 2}"]
    args += ["run_datasets=[demented-mri]", "run_methods=[bicubic,imdn]"]
    snakemake(smoke_run, "--cores", "2", "tables", *args)
    sr = smoke_run / "results/demented-mri/x4/sr"
    assert (sr / "imdn/seed0/diagnosis_crossfit2/predictions.csv").exists()
    assert (sr / "imdn/seed0/diagnosis/predictions.csv").exists()  # in-sample, kept
    assert not (sr / "bicubic/seed0/diagnosis_crossfit2").exists()  # nothing to cross-fit
    summary = json.loads((sr / "imdn/seed0/diagnosis_crossfit2/summary.json").read_text())
    assert (
        summary["n_train"]
        == json.loads((sr / "imdn/seed0/diagnosis/summary.json").read_text())["n_train"]
    )
    table = pd.read_csv(smoke_run / "results/tables/table3_diagnosis.csv")
    assert set(table["method"]) >= {"bicubic", "imdn", "lr", "hr"}


@pytest.mark.slow
def test_a_second_lr_model_trains_every_method_on_it_and_writes_the_cross_table(smoke_run):
    # the smoke run's bicubic jobs are reused: only k-space LR, its networks, their cross
    # scores and classifiers run (after the cross-fit test, which also rewrites the tables)
    args = ["--config", "preset=smoke", "degradations=[bicubic,kspace]"]
    args += ["run_datasets=[demented-mri]", "run_methods=[bicubic,srda_base,lanczos]"]
    snakemake(smoke_run, "--cores", "2", *args)
    data = smoke_run / "results/demented-mri"
    assert json.loads((data / "x4_kspace/degradation.json").read_text())["kind"] == "kspace"
    assert (data / "x4_kspace/sr/srda_base/seed0/diagnosis/predictions.csv").exists()
    assert not (data / "x4_kspace/sr/lanczos").exists()  # outside tools see bicubic only
    cross = pd.read_csv(smoke_run / "results/tables/table_cross_degradation.csv")
    psnr = cross[cross["metric"] == "psnr"]
    assert set(psnr["method"]) == {"bicubic", "srda_base"} and len(psnr) == 2 * 4
    # the diagonal is the method job's own score
    own = pd.read_csv(data / "x4_kspace/sr/srda_base/seed0/test_metrics.csv")["psnr"].mean()
    cell = psnr[(psnr["method"] == "srda_base") & (psnr["train_degradation"] == "kspace")]
    assert cell[cell["test_degradation"] == "kspace"]["value"].iloc[0] == pytest.approx(own)
    assert (smoke_run / "results/figures/cross_degradation_demented-mri.png").stat().st_size
    table1 = pd.read_csv(smoke_run / "results/tables/table1_psnr_ssim.csv")
    kspace = table1[table1["degradation"] == "kspace"]
    assert set(kspace["method"]) == {"bicubic", "srda_base"}
    assert "(LR model: kspace)" in (smoke_run / "results/tables/table3_diagnosis.md").read_text()


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_dry_run_of_presets(tmp_path, preset):
    work = copy_workflow(tmp_path)
    out = snakemake(work, "-n", "--config", f"preset={preset}")
    assert "run_method" in out.stdout


def test_bad_config_stops_with_a_message_naming_the_key(tmp_path):
    work = copy_workflow(tmp_path)
    out = snakemake(work, "-n", "--config", "split=random", check=False)
    assert out.returncode != 0 and "split" in out.stdout + out.stderr


def test_lint_is_clean(tmp_path):
    work = copy_workflow(tmp_path)
    out = snakemake(work, "--lint", "--config", "preset=smoke", check=False)
    assert "Lints for rule" not in out.stdout + out.stderr, out.stdout + out.stderr


def test_conda_env_files_install_this_repository():
    for path in (REPO / "envs").glob("*.yaml"):
        env = yaml.safe_load(path.read_text())
        assert "pip" in env["dependencies"]
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        assert "-e .." in pip, f"{path} must install this repository"
    rules = "".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    # every rule, those made in a loop (indented) too, runs in the project's env
    assert rules.count("conda:") == len(re.findall(r"^\s*rule(\s+\w+)?:", rules, re.M))


def test_failed_run_reports_the_failed_jobs_log_last(tmp_path):
    (tmp_path / "Snakefile").write_text(
        'rule broken:\n    output: "x.txt"\n    log: "logs/broken.log"\n'
        '    shell: "echo the-cause > {log}; exit 3"\n'
    )
    with pytest.raises(AssertionError) as failure:
        snakemake(tmp_path, "--cores", "1")
    message = str(failure.value)
    assert message.rstrip().endswith("the-cause")
    assert "--- rule broken, log logs/broken.log:" in message


def snakemake_output(workdir: Path, *args: str) -> tuple[int, str]:
    """Run snakemake with its stdout and stderr in one stream, as a terminal shows them."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [str(BIN / "snakemake"), *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc.returncode, proc.stdout


def last_line(output: str) -> str:
    return output.rstrip().splitlines()[-1]


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "methods={rcan: {arch: rcna}}",
            "error: config: methods.rcan.arch: unknown architecture 'rcna'; did you mean 'rcan'?",
        ),
        (
            "methods={mytool: {external: true}}",
            "error: config: methods.mytool: external: true, but no rule writes its SR shards "
            "(results/adni-mri/x4/sr/mytool/seed0/train.npy and 8 more)",
        ),
    ],
    ids=["misspelt-arch", "external-without-rule"],
)
def test_a_dry_run_stops_before_any_job_on_a_method_that_cannot_run(tmp_path, override, message):
    work = copy_workflow(tmp_path)
    code, out = snakemake_output(work, "-n", "--config", "preset=smoke", override)
    assert code != 0
    assert last_line(out).startswith(message), out[-3000:]
    assert "Job stats" not in out


def test_a_dry_run_stops_on_a_dataset_path_or_labels_table_the_run_cannot_use(tmp_path):
    work = copy_workflow(tmp_path)
    (work / "vols").mkdir()
    (work / "labels.csv").write_text("subject,label\na,CN\nb,MCI\nc,MCI\nd,AD\n")

    def dry_run(entry: str) -> tuple[int, str]:
        dataset = f"datasets={{mine: {{source: nifti, labels: labels.csv, {entry}}}}}"
        return snakemake_output(work, "-n", "--config", dataset, "run_datasets=[mine]")

    code, out = dry_run("path: nowhere")
    assert code != 0, out[-3000:]
    assert last_line(out).startswith("error: nowhere: dataset mine: dataset folder does not exist")
    code, out = dry_run("path: vols")
    assert code != 0, out[-3000:]
    assert last_line(out).startswith(
        "error: labels.csv: dataset mine: too few subjects per class for a split by subject"
    )
    assert "(CN 1 subject, MCI 2 subjects, AD 1 subject;" in last_line(out)


def test_a_dry_run_stops_on_class_folders_too_few_for_the_split(tmp_path):
    from PIL import Image

    work = copy_workflow(tmp_path)
    for cls, n in (("CN", 1), ("MCI", 2), ("AD", 1)):
        (work / "tiny" / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("L", (20, 24), 90 + 40 * i).save(work / "tiny" / cls / f"{cls}{i}.png")
    dataset = "datasets={tiny: {source: folders, path: tiny}}"
    code, out = snakemake_output(work, "-n", "--config", dataset, "run_datasets=[tiny]")
    assert code != 0
    assert last_line(out).startswith(
        "error: tiny: dataset tiny: too few subjects per class for a split by subject"
    ), out[-3000:]
    assert "(CN 1 subject, MCI 2 subjects, AD 1 subject;" in last_line(out)
    assert "images in the class folders" in last_line(out)
    assert "Job stats" not in out


@pytest.mark.slow
def test_a_failed_job_ends_the_output_with_the_suites_message_not_its_settings(tmp_path):
    from PIL import Image

    work = copy_workflow(tmp_path)
    for cls in ("CN", "MCI", "AD"):
        (work / "tiny" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (20, 24), 90 + 40 * i).save(work / "tiny" / cls / f"{cls}{i}.png")
    # names pass the check at the start; the image itself is only opened by the job
    (work / "tiny" / "AD" / "AD2.png").write_bytes(b"not a png")
    code, out = snakemake_output(
        work,
        "--cores",
        "1",
        "--config",
        "preset=smoke",
        "datasets={tiny: {source: folders, path: tiny}}",
        "run_datasets=[tiny]",
        "run_methods=[bicubic]",
    )
    assert code != 0
    assert last_line(out).startswith(
        "srda-bench prepare: error: tiny/AD/AD2.png: cannot read image"
    ), out[-3000:]
    assert "Error in rule prepare" in out and "--settings .snakemake/srda-settings/tiny-" in out
    assert "split_fractions" not in out  # the job's settings stay in their file
