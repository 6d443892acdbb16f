"""srda.layout is the one description of the results folder: the DAG writes exactly its paths,
and no other module or rule file spells them."""

import ast
import re
from pathlib import Path

import pytest
import yaml
from test_workflow import REPO, copy_workflow, snakemake

from srda import layout
from srda.config import cross_fitted_methods, enabled_reference_rows, resolve
from srda.reference_rows import REFERENCE_ROWS

# --------------------------------------------------------------------------------------------
# Nothing else spells the layout

#: File names of the layout, and folder names that only a path would join.
FILE_NAMES = {
    path.name
    for path in [
        *layout.data_files(".", [4]),
        *layout.classifier_files("."),
        *(layout.sr_shard(".", split) for split in (*layout.SPLITS, layout.HELDOUT)),
        layout.sr_metrics_csv("."),
        layout.run_json("."),
        layout.sr_model("."),
        layout.attention_npz("."),
        layout.train_log_csv("."),
        layout.folds_csv("."),
        layout.heldout_index_csv("."),
        layout.provenance_json("."),
    ]
}
FOLDERS = {"sr", "tables", "figures", "logs", "benchmarks", "cohort", "leakage", "diagnosis"}
#: f-string shapes ({} for each replacement field) of the layout's parametrised names.
TEMPLATES = re.compile(
    r"^(x\{\}|seed\{\}|fold\{\}|crossfit\{\}|diagnosis_\{\}|diagnosis_crossfit\{\}|split_\{\}"
    r"|\{\}_(hr|lr|roi)\.npy|\{\}_meta\.csv|train_crossfit\{\}\.npy)$"
    r"|/(x\{\}|seed\{\}|sr)/|_(hr|lr|roi)\.npy$|_meta\.csv$"
)


def _text(node: ast.AST) -> str | None:
    """A string literal's text, an f-string's shape with {} per field, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def path_spellings(source: str) -> list[tuple[int, str]]:
    """(line, text) of every literal that names a layout path: a name or folder joined with
    ``/``, a layout file name globbed, or an f-string of a layout name's shape."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                text = _text(side)
                if text is not None and (text in FILE_NAMES | FOLDERS or TEMPLATES.search(text)):
                    found.append((side.lineno, text))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("glob", "rglob"):
            texts = [_text(arg) for arg in node.args]
            found += [(node.lineno, t) for t in texts if t in FILE_NAMES]
        elif isinstance(node, ast.JoinedStr):
            text = _text(node)
            if TEMPLATES.search(text):
                found.append((node.lineno, text))
    return found


def test_the_guard_finds_the_spellings_it_is_meant_to():
    source = (
        'a = Path(d) / "dataset.json"\n'
        'b = d / f"x{scale}" / "sr" / m / f"seed{seed}"\n'
        'c = f"{base}/{split}_lr.npy"\n'
        'e = sorted(root.rglob("run.json"))\n'
        'ok = InputError(path, "dataset.json missing")\n'
        'title = f"{dataset} x{scale}: training"\n'
    )
    lines = sorted({line for line, _ in path_spellings(source)})
    assert lines == [1, 2, 3, 4]


def python_files() -> list[str]:
    return sorted(str(p.relative_to(REPO)) for p in (REPO / "srda").rglob("*.py"))


@pytest.mark.parametrize("name", [n for n in python_files() if n != "srda/layout.py"])
def test_no_module_spells_a_results_path(name):
    found = path_spellings((REPO / name).read_text())
    assert not found, f"{name} spells results paths itself (use srda.layout): {found}"


#: A path spelt in a rule file: f"{RESULTS}/...", a layout segment or file name.
RULE_SPELLINGS = re.compile(
    r"RESULTS\}/|x\{\{scale\}\}|seed\{\{seed\}\}|/sr/|_(hr|lr|roi)\.npy|_meta\.csv"
    r"|diagnosis_\{|crossfit\{|\.(log|tsv)\"|\"(test_metrics\.csv|run\.json|dataset\.json)\""
)


@pytest.mark.parametrize(
    "name", ["Snakefile", *sorted(p.name for p in (REPO / "workflow/rules").glob("*.smk"))]
)
def test_no_rule_file_spells_a_results_path(name):
    path = REPO / name if name == "Snakefile" else REPO / "workflow/rules" / name
    code = [
        (number, line)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if not line.lstrip().startswith("#")
    ]
    found = [(n, line.strip()) for n, line in code if RULE_SPELLINGS.search(line)]
    assert not found, f"{name} spells results paths itself (use srda.layout): {found}"


# --------------------------------------------------------------------------------------------
# The layout's own answers


def test_splits_are_defined_once():
    from srda.data import split

    assert layout.SPLITS == ("train", "val", "test")
    assert split.SPLITS is layout.SPLITS


def test_patterns_and_concrete_paths_are_the_same_function():
    pattern = str(layout.sr_dir("results"))
    assert pattern == "results/{dataset}/x{scale}/sr/{method}/seed{seed}"
    concrete = layout.sr_dir("results", "adni-mri", 4, "srda", 0)
    assert str(concrete) == pattern.format(dataset="adni-mri", scale=4, method="srda", seed=0)


def test_bicubic_lr_stays_at_the_scale_folder_another_degradation_gets_its_own():
    assert layout.lr_shard("r/d", 4, "test") == Path("r/d/x4/test_lr.npy")
    assert layout.lr_shard("r/d", 4, "test", "kspace") == Path("r/d/x4_kspace/test_lr.npy")


def test_classifier_folders_of_every_table3_row():
    data = layout.data_dir("r", "d")
    sr = layout.sr_dir("r", "d", 4, "srda", 1)
    assert layout.classifier_dir(sr) == Path("r/d/x4/sr/srda/seed1/diagnosis")
    assert layout.classifier_dir(sr, 3) == Path("r/d/x4/sr/srda/seed1/diagnosis_crossfit3")
    assert layout.lr_row_dir(data, 4, "lr", 1) == Path("r/d/x4/diagnosis_lr/seed1")
    assert layout.hr_row_dir(data, "hr", 1) == Path("r/d/diagnosis_hr/seed1")


def test_trainers_keep_their_checkpoints_inside_their_own_folder():
    sr = layout.sr_dir("r", "d", 4, "srda", 0)
    last = layout.checkpoint(layout.train_dir(sr), "last")
    assert last == Path("r/d/x4/sr/srda/seed0/train/checkpoints/last.pt")
    best = layout.checkpoint(layout.classifier_dir(sr), "best")
    assert best == Path("r/d/x4/sr/srda/seed0/diagnosis/checkpoints/best.pt")
    names = {p.name for p in layout.classifier_files(".")}
    assert layout.val_predictions_csv(".").name in names


def test_logs_and_benchmarks_are_named_alike():
    job = layout.job_name("d", 4, "srda", 0)
    assert job == "d_x4_srda_seed0"
    assert layout.job_name("d", source="hr", seed=0) == "d_hr_seed0"
    assert layout.log_file("r", "run_method", job) == Path("r/logs/run_method/d_x4_srda_seed0.log")
    assert layout.benchmark_file("r", "table1") == Path("r/benchmarks/table1.tsv")


# --------------------------------------------------------------------------------------------
# The DAG writes the layout's paths, no others


def dry_run_jobs(work: Path, *config: str) -> list[dict[str, list[str]]]:
    """Every job of ``snakemake -n all``: its rule, outputs, log, benchmark and wildcards."""
    out = snakemake(work, "-n", "all", "--config", *config).stdout
    jobs = []
    for block in re.split(r"\n\[[^\]\n]+\]\n", out)[1:]:
        job: dict[str, list[str]] = {}
        for line in block.splitlines():
            key, sep, value = line.strip().partition(": ")
            if line.startswith("rule ") or line.startswith("localrule "):
                job["rule"] = [line.split()[1].rstrip(":")]
            elif sep and key in ("output", "log", "benchmark", "wildcards"):
                job[key] = value.split(", ")
            elif line.startswith("Job stats"):
                break
        jobs.append(job)
    return jobs


@pytest.fixture(scope="module")
def smoke_cross_fit(tmp_path_factory):
    """The smoke preset's dry run with cross-fitting on (every kind of path), and its config."""
    work = copy_workflow(tmp_path_factory.mktemp("layout"))
    config = ("preset=smoke", 'diagnosis={"cross_fit": 2}')
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg = resolve({**raw, "preset": "smoke", "diagnosis": {"cross_fit": 2}})
    return dry_run_jobs(work, *config), cfg


def expected_outputs(cfg: dict) -> set[Path]:
    """Every file the layout says the smoke DAG writes, outside tables/ and figures/."""
    root, scales, seeds, folds = cfg["results_dir"], cfg["scales"], cfg["seeds"], 2
    cross_fitted = cross_fitted_methods(cfg)
    rows = enabled_reference_rows(cfg)
    files: set[Path] = {layout.provenance_json(root)}
    for dataset in cfg["run_datasets"]:
        data = layout.data_dir(root, dataset)
        files.add(layout.cohort_dir(root, dataset))
        files.update(layout.data_files(data, scales))
        crossfit = layout.crossfit_data_dir(data, folds)
        files.add(layout.folds_csv(crossfit))
        for f in range(folds):
            files.update(layout.fold_files(layout.fold_dir(crossfit, f), scales))
        for scale in scales:
            for seed in seeds:
                for row in rows:
                    folder = (
                        layout.lr_row_dir(data, scale, row, seed)
                        if REFERENCE_ROWS[row].per_scale
                        else layout.hr_row_dir(data, row, seed)
                    )
                    files.update(layout.classifier_files(folder))
                for method in cfg["run_methods"]:
                    sr = layout.sr_dir(root, dataset, scale, method, seed)
                    files.update(layout.sr_shard(sr, split) for split in layout.SPLITS)
                    files.add(layout.sr_metrics_csv(sr))
                    if not cfg["methods"][method]["external"]:
                        files.update({layout.run_json(sr), layout.sr_model(sr)})
                    k = folds if method in cross_fitted else 0
                    files.update(layout.classifier_files(layout.classifier_dir(sr, k)))
                    if method in cross_fitted:
                        files.add(layout.crossfit_train_shard(sr, folds))
                        for f in range(folds):
                            fold = layout.fold_dir(layout.crossfit_sr_dir(sr, folds), f)
                            files.update({layout.sr_shard(fold, layout.HELDOUT)})
                            files.add(layout.run_json(fold))
    return files


def test_the_smoke_dag_writes_exactly_the_layouts_files(smoke_cross_fit):
    jobs, cfg = smoke_cross_fit
    outputs = {Path(p) for job in jobs for p in job.get("output", [])}
    root = cfg["results_dir"]
    report = {p for p in outputs if p.parent in (layout.tables_dir(root), layout.figures_dir(root))}
    expected = expected_outputs(cfg)
    assert outputs - report == expected, (
        f"not in the layout: {sorted(map(str, outputs - report - expected))[:5]}; "
        f"missing: {sorted(map(str, expected - outputs))[:5]}"
    )
    assert layout.table_file(root, "table1_psnr_ssim", "csv") in report


def test_every_job_logs_and_benchmarks_under_its_stage_by_the_same_name(smoke_cross_fit):
    jobs, cfg = smoke_cross_fit
    logs, benchmarks = (
        layout.logs_dir(cfg["results_dir"]),
        layout.benchmarks_dir(cfg["results_dir"]),
    )
    method_jobs = 0
    for job in jobs:
        if "log" not in job:
            continue
        log = Path(job["log"][0])
        name = log.relative_to(logs).with_suffix("")
        if "benchmark" in job:
            assert Path(job["benchmark"][0]) == benchmarks / name.with_suffix(".tsv")
        if job["rule"] == ["run_method"]:
            w = dict(item.split("=", 1) for item in job["wildcards"])
            job_name = layout.job_name(w["dataset"], w["scale"], w["method"], w["seed"])
            assert log == layout.log_file(cfg["results_dir"], "run_method", job_name)
            method_jobs += 1
    assert method_jobs > 0


def test_another_lr_model_has_a_folder_under_its_scale_and_a_wildcard_for_patterns():
    data = layout.data_dir("results", "adni-mri")
    assert layout.sr_dir("results", "adni-mri", 4, "srda", 0) == Path(
        "results/adni-mri/x4/sr/srda/seed0"
    )
    assert layout.sr_dir("results", "adni-mri", 4, "srda", 0, "kspace") == Path(
        "results/adni-mri/x4_kspace/sr/srda/seed0"
    )
    assert layout.lr_row_dir(data, 4, "lr", 1, "pet") == data / "x4_pet/diagnosis_lr/seed1"
    pattern = str(layout.sr_dir("results", degradation=layout.DEG_WILDCARD))
    assert pattern == "results/{dataset}/x{scale}{deg}/sr/{method}/seed{seed}"
    for model in ("bicubic", "kspace", "pet"):
        suffix = layout.deg_suffix(model)
        assert layout.deg_name(suffix) == model
        filled = pattern.format(dataset="d", scale=4, deg=suffix, method="m", seed=0)
        assert Path(filled) == layout.sr_dir("results", "d", 4, "m", 0, model)
    sr = layout.sr_dir("results", "d", 4, "m", 0, "kspace")
    assert layout.cross_metrics_csv(sr, "bicubic") == sr / "test_metrics_on_bicubic.csv"
