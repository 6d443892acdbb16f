"""The benchmark scripts run end to end at a tiny size and write well-formed results.

Not timed tests: nothing here asserts a speed, only that the figures exist and are positive.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

TINY = ["--size", "tiny", "--steps", "1", "--warmup", "0", "--batch", "2", "--patch", "16"]


def _load(name: str) -> ModuleType:
    path = BENCHMARKS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench_srda_train() -> ModuleType:
    return _load("bench_srda_train")


@pytest.fixture(scope="module")
def tiny_run(bench_srda_train, tmp_path_factory) -> tuple[dict, dict]:
    """One tiny run of both precisions: (returned result, JSON read back from --json)."""
    out = tmp_path_factory.mktemp("bench") / "sub" / "srda_train.json"
    result = bench_srda_train.main([*TINY, "--threads", "1", "--quiet", "--json", str(out)])
    return result, json.loads(out.read_text())


def _positive(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def test_json_equals_returned_result(tiny_run):
    result, written = tiny_run
    assert written == json.loads(json.dumps(result))


def test_both_precisions_report_positive_figures(tiny_run):
    _, data = tiny_run
    assert data["benchmark"] == "srda_joint_training"
    assert list(data["results"]) == ["fp32", "bf16"]
    for precision, r in data["results"].items():
        for key in (
            "images_per_second",
            "median_step_seconds",
            "mean_step_seconds",
            "min_step_seconds",
            "max_step_seconds",
            "loss_first",
            "loss_last",
        ):
            assert _positive(r[key]), (precision, key, r[key])
        assert r["timed_steps"] == 1 and r["warmup_steps"] == 0
        assert len(r["step_seconds"]) == 1 and _positive(r["step_seconds"][0])
        assert r["warmup_step_seconds"] == []
        # process CPU seconds per wall second: a step computes, and one process cannot keep
        # more CPUs busy than it may run on (5% for reading the two clocks apart)
        assert 0 < r["cpu_utilisation"] <= 1.05 * data["machine"]["usable_cpus"]
        share = r["other_processes_cpu_share"]
        if Path("/proc/stat").is_file():  # Linux: the share of other processes is measured
            assert share is not None and math.isfinite(share) and share >= 0, share
        else:
            assert share is None
        assert r["budget_cut"] is False
        # images/s is the batch over the median step
        assert r["images_per_second"] == pytest.approx(2 / r["median_step_seconds"])
        # the full srda loss: L1, cross-entropy and attention terms
        assert set(r["terms_last"]) == {"l1", "ce", "att"}
    assert _positive(data["bf16_over_fp32"])
    assert data["bf16_over_fp32"] == pytest.approx(
        data["results"]["bf16"]["images_per_second"] / data["results"]["fp32"]["images_per_second"]
    )


def test_settings_parameters_and_machine(tiny_run):
    _, data = tiny_run
    s = data["settings"]
    assert (s["size"], s["features"], s["blocks"]) == ("tiny", 16, 2)
    assert (s["batch"], s["patch_hr"], s["patch_lr"], s["scale"]) == (2, 16, 4, 4)
    assert (s["warmup"], s["steps"], s["threads"]) == (0, 1, 1)
    assert (s["lr"], s["lambda1"], s["lambda2"]) == (1e-4, 0.0006, 0.0001)
    assert s["variant"] == "srda" and s["diag_depth"] == 50 and s["attention_at"] == "stem"

    p = data["parameters"]
    assert all(_positive(p[k]) for k in ("sr_net", "diag_net", "total"))
    assert p["total"] == p["sr_net"] + p["diag_net"]
    assert p["diag_net"] > 20_000_000  # ResNet50

    m = data["machine"]
    assert isinstance(m["cpu_model"], str) and m["cpu_model"]
    assert m["threads"] == 1 and _positive(m["usable_cpus"])
    assert isinstance(m["torch"], str) and m["torch"]
    cpuinfo = Path("/proc/cpuinfo")
    flags = set()
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
    if flags:  # the flags read back as they stand in /proc/cpuinfo
        assert m["flags_known"] is True
        assert m["avx512_bf16"] is ("avx512_bf16" in flags)
        assert m["amx_bf16"] is ("amx_bf16" in flags)
        assert m["native_bf16"] is (m["avx512_bf16"] or m["amx_bf16"])
    else:
        assert (m["avx512_bf16"], m["amx_bf16"], m["native_bf16"]) == (None, None, None)
    assert _positive(data["wall_seconds"]) and _positive(data["peak_rss_mb"])


def test_summary_names_both_precisions_and_the_ratio(tiny_run, bench_srda_train):
    result, _ = tiny_run
    text = bench_srda_train.summary_text(result)
    assert "fp32" in text and "bf16" in text and "bf16 / fp32 throughput" in text
    assert result["machine"]["cpu_model"] in text


def test_read_cpuinfo_parses_flags(bench_srda_train, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    block = (
        "processor\t: {n}\nmodel name\t: Test CPU 9000\nphysical id\t: 0\ncore id\t\t: {c}\n"
        "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n\n"
    )
    cpuinfo.write_text("".join(block.format(n=n, c=n // 2) for n in range(4)))
    info = bench_srda_train.read_cpuinfo(cpuinfo)
    assert info["cpu_model"] == "Test CPU 9000"
    assert (info["logical_cpus"], info["physical_cores"]) == (4, 2)
    assert info["flags"]["avx512_bf16"] is True and info["flags"]["amx_bf16"] is False


def test_times_the_trainers_own_step(bench_srda_train, monkeypatch):
    """The benchmark steps through the function the trainer calls, not a copy of it."""
    from srda.train import step, trainer

    assert bench_srda_train.train_step is step.train_step is trainer.train_step
    calls = []
    monkeypatch.setattr(
        bench_srda_train, "train_step", lambda *a, **k: calls.append(a) or step.train_step(*a, **k)
    )
    result = bench_srda_train.main([*TINY, "--threads", "1", "--quiet"])
    assert len(calls) == sum(
        r["timed_steps"] + r["warmup_steps"] for r in result["results"].values()
    )


def test_bad_patch_is_rejected(bench_srda_train):
    with pytest.raises(SystemExit):
        bench_srda_train.parse_args(["--patch", "30", "--scale", "4"])


# --------------------------------------------------------------------------------------------
# The harness (`make bench`): one tiny end-to-end run against a hand-made smoke run


HEADLINE_NUMBERS = (
    "srda_train_imgs_per_s_plain",
    "srda_train_imgs_per_s_tuned",
    "srda_train_speedup",
    "matmul_peak_gflops",
    "srda_body_gflops",
    "eval_speedup_vs_skimage",
    "eval_share_of_wall",
    "paper_gpu_hours_estimate",
    "smoke_wall_s",
    "quick_wall_s",
    "quick_peak_rss_mb",
    "per_job_overhead_s",
    "workflow_peak_rss_mb",
    "data_slices_per_s",
    "data_peak_rss_mb",
)
TSV_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
#: Fake smoke jobs: (benchmark file, seconds, peak MB, end time). First start 990, last end 1060.
FAKE_JOBS = (
    ("synthesize/adni-mri.tsv", 10.0, 300.0, 1000.0),
    ("prepare/adni-mri.tsv", 4.0, 450.0, 1005.0),
    ("run_method/adni-mri_x4_bicubic_seed0.tsv", 20.0, 600.0, 1030.0),
    ("run_method/adni-mri_x4_srda_seed0.tsv", 40.0, 900.0, 1050.0),
    ("table1.tsv", 5.0, 200.0, 1060.0),
)


@pytest.fixture(scope="module")
def harness():
    """The harness module; its sibling modules import each other by plain name."""
    import importlib

    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("harness")
    finally:
        sys.path.remove(str(BENCHMARKS))


def _fake_smoke_run(root: Path) -> Path:
    """A finished-run layout: benchmark files with known times, one dataset, two SR shards."""
    import os

    import numpy as np
    import pandas as pd

    for rel, seconds, rss, end in FAKE_JOBS:
        path = root / "benchmarks" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            TSV_HEADER + f"{seconds}\t0:00:{seconds:02.0f}\t{rss}\t1\t1\t1\t0\t0\t0\t1\n"
        )
        os.utime(path, (end, end))
    data = root / "adni-mri"
    rng = np.random.default_rng(0)
    hr = rng.random((2, 48, 48)).astype(np.float32)
    roi = np.zeros((2, 48, 48), np.uint8)
    roi[:, 16:32, 16:32] = 1
    (data / "x4").mkdir(parents=True)
    np.save(data / "test_hr.npy", hr)
    np.save(data / "test_roi.npy", roi)
    pd.DataFrame(
        {"index": [0, 1], "subject": ["s1", "s2"], "slice": [3, 4], "label": ["CN", "AD"]}
    ).to_csv(data / "test_meta.csv", index=False)
    (data / "dataset.json").write_text(
        json.dumps(
            {
                "counts": {"train": 8, "val": 2, "test": 2},
                "has_roi": True,
                "roi_labels": {"1": "hippocampus"},
            }
        )
    )
    for method in ("bicubic", "srda"):
        sr_dir = data / "x4" / "sr" / method / "seed0"
        sr_dir.mkdir(parents=True)
        noisy = hr + 0.05 * rng.standard_normal(hr.shape).astype(np.float32)
        np.save(sr_dir / "test.npy", np.clip(noisy, 0, 1))
    return root


def _fake_precision_check(root: Path, bf16_psnr: list[float]) -> Path:
    """bench_precision_psnr's result over hand-made run.json files: fp32 seeds at 30.0 / 30.5
    / 30.1 dB (spread 0.5), bf16 at the given values."""
    bench = _load("bench_precision_psnr")
    fp32 = [30.0, 30.5, 30.1]
    for precision, values in (("fp32", fp32), ("bf16", bf16_psnr)):
        for seed, psnr in enumerate(values):
            path = bench.run_json(root, "adni-mri", 4, f"srda_{precision}", seed)
            path.parent.mkdir(parents=True)
            summary = {"psnr": psnr, "ssim": 0.8, "seconds": 100.0 if precision == "fp32" else 40}
            path.write_text(json.dumps({**summary, "training": {"precision": precision}}))
    result = bench.compare(root, "adni-mri", 4, "srda", ["fp32", "bf16"], [0, 1, 2])
    out = root / "precision_psnr.json"
    out.write_text(json.dumps(result))
    return out


def test_precision_check_compares_means_with_the_fp32_spread(tmp_path):
    inside = json.loads(_fake_precision_check(tmp_path / "a", [30.0, 30.4, 30.2]).read_text())
    assert inside["psnr_mean_diff_db"] == pytest.approx(0.0)
    assert inside["reference_spread_db"] == pytest.approx(0.5)
    assert inside["met"] is True and inside["tuned_seeds_inside_reference_range"] == 3
    assert inside["speedup_sr_job"] == pytest.approx(2.5)
    fp32 = inside["per_precision"]["fp32"]
    assert fp32["psnr"]["sd"] == pytest.approx(0.26458, abs=1e-4)
    assert [r["precision_ran"] for r in fp32["runs"]] == ["fp32"] * 3
    worse = json.loads(_fake_precision_check(tmp_path / "b", [29.2, 29.4, 29.3]).read_text())
    assert worse["psnr_mean_diff_db"] == pytest.approx(-0.9)
    assert worse["met"] is False and worse["tuned_seeds_inside_reference_range"] == 0


def test_precision_check_overlay_copies_the_method_per_precision():
    bench = _load("bench_precision_psnr")
    base = {"methods": {"srda": {"arch": "srda", "display": "SRDA", "train": {"lr": 1e-4}}}}
    methods = bench.overlay("srda", ["fp32", "bf16"], base)["methods"]
    assert list(methods) == ["srda_fp32", "srda_bf16"]
    assert methods["srda_bf16"] == {
        "arch": "srda",
        "display": "SRDA bf16",
        "train": {"lr": 1e-4, "precision": "bf16"},
    }
    assert base["methods"]["srda"]["train"] == {"lr": 1e-4}  # not modified


@pytest.fixture(scope="module")
def harness_run(harness, tmp_path_factory) -> tuple[dict, dict, str, Path]:
    """(returned result, bench.json read back, bench.md, the fake smoke run)."""
    smoke = _fake_smoke_run(tmp_path_factory.mktemp("smoke"))
    out = tmp_path_factory.mktemp("bench") / "bench"
    quick = _fake_smoke_run(tmp_path_factory.mktemp("quick"))  # read as a finished quick run
    argv = ["--tiny", "--threads", "1", "--quiet", "--out", str(out), "--smoke-results", str(smoke)]
    argv += ["--quick-results", str(quick)]
    precision = _fake_precision_check(tmp_path_factory.mktemp("precision"), [30.0, 30.4, 30.2])
    argv += ["--precision-results", str(precision)]
    result = harness.main(argv)
    written = json.loads((out / "bench.json").read_text())
    return result, written, (out / "bench.md").read_text(), smoke


def test_harness_writes_json_and_markdown(harness_run, harness):
    result, written, md, _ = harness_run
    assert written == json.loads(json.dumps(result, default=str))
    assert written["errors"] == {}
    assert written["mode"] == "tiny"
    for key in harness.HEADLINE:
        assert key in written, key
        assert f"`{key}`" in md
    for heading in ("## Headline", "## Targets", "## SRDA joint training", "## Every method"):
        assert heading in md
    for heading in ("## Evaluation", "## Workflow", "## Data stage", "## Paper preset"):
        assert heading in md
    # every table row has as many cells as its header
    for block in md.split("\n\n"):
        rows = [r for r in block.splitlines() if r.startswith("|")]
        if rows:
            assert len({r.count(" | ") for r in rows if not r.startswith("|---")}) == 1, block


def test_harness_headline_figures_are_positive(harness_run):
    _, data, _, _ = harness_run
    for key in HEADLINE_NUMBERS:
        assert _positive(data[key]), (key, data[key], data["nulls"].get(key))
    assert data["nulls"] == {}
    assert data["srda_train_tuned_config"] in data["sections"]["srda_train"]["candidates"]
    assert data["srda_train_speedup"] == pytest.approx(
        data["srda_train_imgs_per_s_tuned"] / data["srda_train_imgs_per_s_plain"]
    )
    assert data["eval_max_abs_diff"] <= 1e-6
    m = data["machine"]
    assert isinstance(m["cpu_model"], str) and m["cpu_model"] and m["threads"] == 1
    assert data["budget"]["time_budget_s"] == 120 and _positive(data["budget"]["wall_s"])


def test_harness_targets_follow_the_figures(harness_run):
    _, data, _, _ = harness_run
    t = data["targets"]
    # the threshold follows the CPU kind this machine was detected as (2x native bf16, else 1.1x)
    native = data["bf16"]["native"]
    assert data["bf16"]["choice"] == "auto" and data["bf16"]["source"].startswith("detected")
    assert t["srda_train_2x"]["threshold"] == (2.0 if native else 1.1)
    assert t["srda_train_2x"]["met"] is (data["srda_train_speedup"] >= (2.0 if native else 1.1))
    assert t["smoke_under_8_min"]["measured"] == data["smoke_wall_s"]
    assert t["smoke_under_8_min"]["met"] is True  # 70 s
    assert t["peak_memory_under_4gb"]["measured"] == 900.0
    assert t["quick_under_45_min"]["measured"] == pytest.approx(70.0)
    assert t["quick_under_45_min"]["met"] is True
    assert data["sections"]["workflow"]["quick"]["jobs"] == 5
    assert t["psnr_within_seed_spread"]["measured"] == pytest.approx(0.0)
    assert t["psnr_within_seed_spread"]["met"] is True
    assert data["precision_psnr_spread_db"] == pytest.approx(0.5)


def test_harness_srda_plain_and_tuned_candidates(harness_run, harness):
    _, data, _, _ = harness_run
    st = data["sections"]["srda_train"]
    assert (st["size"], st["batch"], st["patch_hr"], st["patch_lr"]) == ("tiny", 2, 16, 4)
    assert st["plain"]["config"] == {"precision": "fp32", "channels_last": False, "fused": False}
    assert set(st["candidates"]) == set(harness.bench_methods.TUNED_CANDIDATES)
    for name, r in st["candidates"].items():
        if "skipped" in r:
            continue
        assert _positive(r["images_per_second"]), name
        assert r["config"]["precision"] in ("fp32", "bf16")
    assert _positive(st["train_flops_per_image"]) and _positive(st["plain_gflops"])
    assert st["parameters"]["total"] == st["parameters"]["sr_net"] + st["parameters"]["diag_net"]


def test_harness_every_method(harness_run, harness):
    _, data, _, _ = harness_run
    ms = data["sections"]["methods"]["methods"]
    cfg = harness.resolved_config("smoke")
    assert list(ms) == harness.bench_methods.python_methods(cfg)
    assert "lanczos" not in ms  # an outside tool: no Python model
    for name, row in ms.items():
        inf = row["infer"]
        assert _positive(inf["items_per_second"]) and _positive(inf["flops_per_image"]), name
        if name == "bicubic":
            assert row["train"] is None and row["sr_parameters"] == 0
            continue
        tr = row["train"]
        assert _positive(tr["items_per_second"]) and _positive(tr["flops_per_image"]), name
        assert _positive(tr["gflops_achieved"])
    # srda's training row is the plain SRDA run, not a second measurement
    plain = data["sections"]["srda_train"]["plain"]
    assert ms["srda"]["train"]["items_per_second"] == plain["images_per_second"]


def test_harness_compute_and_eval(harness_run):
    _, data, _, _ = harness_run
    body = data["sections"]["body"]
    assert body["gflops"] == pytest.approx(body["flops_per_step"] / body["median_step_s"] / 1e9)
    assert data["srda_body_gflops"] == body["gflops"]
    mm = data["sections"]["matmul"]
    assert mm["n"] == 256 and data["matmul_peak_gflops"] == mm["gflops_best"]
    ev = data["sections"]["eval"]
    assert (ev["images"], ev["size"], ev["crop"]) == (8, 48, 4)
    assert data["eval_speedup_vs_skimage"] == pytest.approx(ev["skimage_s"] / ev["suite_s"])


def test_harness_reads_the_smoke_run(harness_run):
    _, data, _, smoke = harness_run
    wf = data["sections"]["workflow"]
    run = wf["run"]
    assert wf["smoke_results"] == str(smoke)
    assert run["wall_s"] == pytest.approx(70.0)  # first start 990, last end 1060
    assert run["wall_source"].startswith("benchmark file times")
    assert run["jobs"] == 5 and run["job_seconds_total"] == pytest.approx(79.0)
    assert run["largest_job"] == "run_method/adni-mri_x4_srda_seed0"
    assert {r["rule"]: r["jobs"] for r in run["per_rule"]}["run_method"] == 2
    assert run["eval"]["shards"] == 2 and run["eval"]["images"] == 4
    assert data["eval_share_of_wall"] == pytest.approx(run["eval"]["seconds"] / 70.0)
    d = data["sections"]["data"]
    assert d["slices"] == 12 and d["peak_rss_mb"] == 450.0
    assert d["slices_per_s_total"] == pytest.approx(12 / 14)
    assert d["source"].startswith("the smoke run")


def test_harness_gpu_hours(harness_run, harness):
    _, data, _, _ = harness_run
    g = data["sections"]["gpu_hours"]
    a = g["assumptions"]
    assert (a["gpu_peak_tflops"], a["gpu_utilisation"], a["preset"]) == (312.0, 0.4, "paper")
    assert a["model_sizes"].startswith("tiny")
    assert g["gpu_hours"] == pytest.approx(g["total_flops"] / (a["sustained_tflops"] * 1e12) / 3600)
    assert data["paper_gpu_hours_estimate"] == g["gpu_hours"]
    assert sum(g["gpu_hours_by_part"].values()) == pytest.approx(g["gpu_hours"])
    ds = g["datasets"]
    assert set(ds) == {"adni-mri", "adni-pet", "demented-mri"}
    assert ds["demented-mri"]["images_train"] == round(2670 * 0.8)
    assert ds["adni-mri"]["slices_per_subject"] > 10  # slices of a 1 mm volume
    srda = ds["adni-mri"]["methods"]["srda"]
    assert srda["batch"] == 128 and srda["epochs"] == 1000
    assert srda["steps"] == math.ceil(1000 * ds["adni-mri"]["images_train"] / 128)


def test_harness_without_smoke_run_times_the_data_stage(harness, tmp_path, monkeypatch):
    monkeypatch.setattr(harness.smoke_run, "DEFAULT_SMOKE", tmp_path / "no-such-run")
    out = tmp_path / "bench"
    data = harness.main(
        ["--tiny", "--threads", "1", "--quiet", "--out", str(out)] + ["--sections", "data"]
    )
    assert data["errors"] == {}
    d = data["sections"]["data"]
    assert d["source"].startswith("a small synthetic cohort")
    assert d["slices"] > 0 and _positive(d["slices_per_s_total"]) and _positive(d["peak_rss_mb"])
    assert data["smoke_wall_s"] is None and "not run" in data["nulls"]["smoke_wall_s"]
    assert data["targets"]["quick_under_45_min"]["met"] is None
    assert (out / "bench.md").read_text().startswith("# Benchmarks")


# --------------------------------------------------------------------------------------------
# bf16 by CPU kind: a simulated CPU without native bf16 skips the emulated-bf16 work; one with
# it keeps every check. The SRDA steps are faked (fixed seconds per step), so nothing is timed.

#: Fake step seconds: plain fp32 2.0 s (batch 2: 1 image/s), the tuned fp32 candidate 1.6 s
#: (1.25x), a bf16 candidate 0.8 s (2.5x).
FAKE_STEP_S = {"plain": 2.0, "fp32": 1.6, "bf16": 0.8}


@pytest.fixture
def simulated_cpu(harness, monkeypatch, tmp_path):
    """Run the harness's srda_train section and --run-precision on a CPU whose bf16 detector
    answers ``native``; returns (result, bench.md, precisions stepped, precision-check argv)."""
    import srda.train.trainer as trainer

    bst = harness.bench_methods.bst
    stepped: list[str] = []
    checks: list[list[str]] = []

    def fake_steps(model, initial, batch, precision, warmup, steps, deadline=None, **kw):
        seconds = FAKE_STEP_S["plain" if not stepped else precision]
        stepped.append(precision)
        return {
            "images_per_second": batch["lr"].shape[0] / seconds,
            "median_step_seconds": seconds,
            "step_seconds": [seconds] * steps,
            "timed_steps": steps,
            "budget_cut": False,
        }

    def fake_precision_check(argv):
        checks.append(list(argv))
        return json.loads(
            _fake_precision_check(tmp_path / "precision", [30.1, 30.2, 30.3]).read_text()
        )

    monkeypatch.setattr(bst, "run_precision", fake_steps)
    monkeypatch.setattr(harness.bench_precision_psnr, "main", fake_precision_check)

    def run(native: bool) -> tuple[dict, str, list[str], list[list[str]]]:
        monkeypatch.setattr(trainer, "native_bf16", lambda device: native)
        out = tmp_path / "bench"
        argv = ["--tiny", "--threads", "1", "--quiet", "--out", str(out)]
        result = harness.main([*argv, "--sections", "srda_train", "--run-precision"])
        assert json.loads((out / "bench.json").read_text()) == json.loads(
            json.dumps(result, default=str)
        )
        return result, (out / "bench.md").read_text(), stepped, checks

    return run


def test_no_native_bf16_skips_the_emulated_work_and_takes_the_fp32_target(simulated_cpu, harness):
    data, md, stepped, checks = simulated_cpu(native=False)
    assert data["errors"] == {}
    bf16 = data["bf16"]
    assert bf16["native"] is False and bf16["source"].startswith("detected")
    reason = bf16["skip_reason"]
    assert reason.startswith("no native bf16 (detected") and "--bf16 native" in reason
    # nothing ran in bf16: plain, then the fp32 candidate's first step and its timed steps
    assert stepped == ["fp32", "fp32", "fp32"]
    assert checks == []  # the fp32 / bf16 precision check did not run
    # a reason per skipped piece of work, and for the figures it would have given
    assert bf16["skipped"] == {
        "srda_train.bf16+channels_last+fused_adam": reason,
        "srda_train.bf16+fused_adam": reason,
        "precision_psnr": reason,
    }
    cands = data["sections"]["srda_train"]["candidates"]
    assert cands["bf16+fused_adam"] == {
        "config": cands["bf16+fused_adam"]["config"],
        "skipped": reason,
    }
    assert cands["bf16+fused_adam"]["config"]["precision"] == "bf16"
    for key in ("precision_psnr_diff_db", "precision_psnr_spread_db"):
        assert data[key] is None and data["nulls"][key] == f"skipped: {reason}"
    # tuned = the best fp32 candidate, held to 1.1x (1.25x here: met; it would miss 2x)
    assert data["srda_train_tuned_config"] == "fp32+channels_last+fused_adam"
    assert data["srda_train_speedup"] == pytest.approx(2.0 / 1.6)
    assert "fp32 candidate" in data["sections"]["srda_train"]["tuned_note"]
    t = data["targets"]["srda_train_2x"]
    assert (t["threshold"], t["bf16_native"], t["met"]) == (1.1, False, True)
    assert "1.1x" in t["target"] and "no native bf16" in t["target"]
    psnr = data["targets"]["psnr_within_seed_spread"]
    assert psnr["met"] is None and psnr["note"] == f"skipped: {reason}"
    # bench.json keeps its keys; bench.md says what was skipped and why
    for key in harness.HEADLINE:
        assert key in data, key
    assert "bf16: not native (detected" in md and "Skipped (emulated bf16):" in md
    assert f"- precision_psnr: {reason}" in md
    assert "Tuned: best fp32 candidate: bf16 candidates skipped." in md


def test_native_bf16_keeps_todays_checks_and_the_2x_target(simulated_cpu, harness):
    data, md, stepped, checks = simulated_cpu(native=True)
    assert data["errors"] == {}
    bf16 = data["bf16"]
    assert bf16["native"] is True and bf16["skipped"] == {} and bf16["skip_reason"] is None
    # every candidate stepped: plain, then a first step and the timed steps of each
    assert stepped == ["fp32"] + ["fp32"] * 2 + ["bf16"] * 4
    assert len(checks) == 1 and checks[0][:1] == ["--out"]  # the precision check ran
    assert data["precision_psnr_diff_db"] == pytest.approx(0.0)
    assert data["targets"]["psnr_within_seed_spread"]["met"] is True
    cands = data["sections"]["srda_train"]["candidates"]
    assert not any("skipped" in r for r in cands.values())
    assert data["srda_train_tuned_config"] == "bf16+channels_last+fused_adam"  # first of a tie
    assert data["srda_train_speedup"] == pytest.approx(2.0 / 0.8)
    t = data["targets"]["srda_train_2x"]
    assert (t["threshold"], t["bf16_native"], t["met"]) == (2.0, True, True)
    assert "bf16: native (detected" in md and "Skipped (emulated bf16)" not in md


def test_bf16_support_override_and_detection(harness):
    calls = []

    def detect() -> bool:
        calls.append(1)
        return True

    # an override never asks the detector
    off = harness.bf16_support("emulated", detect=detect)
    on = harness.bf16_support("native", detect=detect)
    assert calls == []
    assert (off["native"], off["speedup_target"]) == (False, 1.1)
    assert (on["native"], on["speedup_target"]) == (True, 2.0)
    assert off["source"] == "--bf16 emulated, detection overridden"
    assert off["skip_reason"].startswith("no native bf16") and on["skip_reason"] is None
    found = harness.bf16_support("auto", detect=detect)
    assert calls == [1] and found["native"] is True and found["source"].startswith("detected")
    assert harness.bf16_support("auto", detect=lambda: False)["native"] is False
    # oneDNN's bf16 without the bf16 instructions in the CPU flags (AVX512 emulation) is noted
    flags = {"avx512_bf16": False, "amx_bf16": False}
    assert "note" in harness.bf16_support("auto", flags, detect=detect)
    assert "note" not in harness.bf16_support("auto", {**flags, "amx_bf16": True}, detect=detect)
    with pytest.raises(ValueError, match="expected one of auto, native, emulated"):
        harness.bf16_support("maybe")
    assert harness.parse_args(["--bf16", "emulated"]).bf16 == "emulated"
    assert harness.parse_args([]).bf16 == "auto"


def test_pick_results_says_why_there_is_no_run(harness, tmp_path):
    where, why = harness.smoke_run.pick_results(None, default=tmp_path)
    assert where is None and "make smoke" in why and "--run-smoke" in why
    where, why = harness.smoke_run.pick_results(tmp_path)
    assert where is None and "no benchmarks/" in why
    (tmp_path / "benchmarks").mkdir()
    assert harness.smoke_run.pick_results(None, default=tmp_path)[0] == tmp_path


def test_budget_shares_time_by_weight(harness):
    budget = harness.Budget(100.0, {"a": 1.0, "b": 3.0})
    import time

    now = time.perf_counter()
    assert budget.start("a") - now == pytest.approx(25.0, abs=0.5)
    assert budget.start("b") - now == pytest.approx(100.0, abs=0.5)  # a's unused time flows on
    summary = budget.close()
    assert set(summary["section_seconds"]) == {"a", "b"} and summary["over_budget"] is False
    assert harness.Budget(0, {"a": 1.0}).start("a") is None


def test_time_steps_stops_at_the_deadline(harness):
    import time

    time_steps = harness.bench_methods.time_steps
    result = time_steps(lambda: time.sleep(0.01), 4, 1, 5, time.perf_counter(), "t")
    assert result["timed_steps"] == 1 and result["budget_cut"] is True
    assert result["items_per_second"] == pytest.approx(4 / result["median_step_s"])
    assert len(result["warmup_step_seconds"]) == 1


def test_flops_count_the_deformable_conv_and_scale_with_area(harness):
    import baselines  # noqa: F401
    from srda import registry
    from srda.train.losses import sr_objective

    bm = harness.bench_methods
    objective = sr_objective("l1")
    plain = registry.build("srda_base", size="tiny")  # plain 3x3 head conv, 1 -> 16
    deform = registry.build("srda_dconv", size="tiny")  # offset conv 1 -> 18, deformable 1 -> 16
    f_plain = bm.train_flops_per_image(plain, objective, 16)
    f_deform = bm.train_flops_per_image(deform, objective, 16)
    pixels = 4 * 4  # LR side 16 / 4
    conv = 2 * 16 * 9 * pixels  # the head's forward multiply-adds x 2
    offset = 2 * 18 * 9 * pixels
    # plain head: forward + weight gradient (the input needs none); deformable head: the offset
    # conv likewise, and the deformable conv forward + two convs' worth backward (weight and
    # offset gradients)
    assert f_deform - f_plain == (2 * offset + 3 * conv) - 2 * conv
    assert bm.train_flops_per_image(deform, objective, 32) == 4 * f_deform


def test_eval_rejects_values_that_differ(harness, monkeypatch):
    ev = harness.bench_eval
    real = ev.suite
    monkeypatch.setattr(
        ev, "suite", lambda sr, hr, crop: (real(sr, hr, crop)[0] + 1e-3, real(sr, hr, crop)[1])
    )
    with pytest.raises(AssertionError, match="disagree"):
        ev.bench_metrics(2, 24, 4, 1, None)


def test_run_smoke_starts_a_fresh_smoke_run(harness, tmp_path, monkeypatch):
    sr = harness.smoke_run
    calls = []

    def fake_run(cmd, cwd, env, stdout, stderr):
        calls.append((cmd, cwd, env["PATH"]))
        return type("Done", (), {"returncode": 0})()

    import time

    clock = [100.0]  # a clock that moves only while the fake Snakemake runs: 12.5 s

    def fake_run_taking_time(*args, **kwargs):
        clock[0] += 12.5
        return fake_run(*args, **kwargs)

    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(sr.subprocess, "run", fake_run_taking_time)
    target = tmp_path / "smoke"
    (target / "benchmarks").mkdir(parents=True)  # an earlier run: removed, not reused
    wall = sr.run_smoke(target, tmp_path / "smoke.log")
    assert wall == 12.5 and not target.exists()
    (cmd, cwd, path) = calls[0]
    assert cmd[1:] == ["--cores", "all", "--config", "preset=smoke", f"results_dir={target}"]
    assert Path(cmd[0]).name == "snakemake" and cwd == sr.REPO
    assert path.split(":")[0] == str(Path(sys.executable).parent)  # srda-bench on the PATH


def test_precision_check_runs_the_workflow_end_to_end(tmp_path):
    """Smoke preset, two seeds; fp32 against auto (fp32 or bf16, whichever this CPU picks, so
    an AVX2 machine does not pay for emulated bf16)."""
    bench = _load("bench_precision_psnr")
    out = tmp_path / "precision"
    argv = ["--preset", "smoke", "--seeds", "0", "1", "--precisions", "fp32", "auto"]
    result = bench.main([*argv, "--out", str(out), "--cores", "2"])
    assert json.loads((out / "precision_psnr.json").read_text()) == result
    assert [r["seed"] for r in result["per_precision"]["auto"]["runs"]] == [0, 1]
    ran = {r["precision_ran"] for r in result["per_precision"]["auto"]["runs"]}
    assert ran <= {"fp32", "bf16"} and len(ran) == 1
    assert {r["precision_ran"] for r in result["per_precision"]["fp32"]["runs"]} == {"fp32"}
    for p in result["per_precision"].values():
        # 20 smoke steps leave SRDA far from trained (about 6-7 dB): only finite, positive
        assert all(0.0 < r["psnr"] < 60.0 and r["seconds"] > 0 for r in p["runs"])
    assert result["met"] is (abs(result["psnr_mean_diff_db"]) <= result["reference_spread_db"])
    assert "fp32 spread over seeds" in (out / "precision_psnr.md").read_text()


def test_workflow_phases_split_each_job_into_startup_training_and_the_rest(tmp_path):
    """A method job, its classifier and both kinds of reference row, with known seconds."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import workflow_summary
    finally:
        sys.path.remove(str(BENCHMARKS))
    jobs = {  # benchmark file -> (result file, its JSON, the job's wall seconds)
        "run_method/ds_x4_kspace_imdn_seed1.tsv": (
            "ds/x4_kspace/sr/imdn/seed1/run.json",
            {"seconds": 50.0, "training": {"seconds": 30.0}},
            54.0,
        ),
        "diagnose/ds_x4_kspace_imdn_seed1.tsv": (
            "ds/x4_kspace/sr/imdn/seed1/diagnosis/summary.json",
            {"wall_seconds": 20.0, "train_seconds": 18.0},
            25.0,
        ),
        "diagnose/ds_x4_lr_seed0.tsv": (
            "ds/x4/diagnosis_lr/seed0/summary.json",
            {"wall_seconds": 10.0, "train_seconds": 9.0},
            14.0,
        ),
        "diagnose/ds_hr_seed0.tsv": (
            "ds/diagnosis_hr/seed0/summary.json",
            {"wall_seconds": 12.0, "train_seconds": 11.0},
            15.0,
        ),
        "run_method/ds_x4_bicubic_seed0.tsv": (
            "ds/x4/sr/bicubic/seed0/run.json",
            {"seconds": 2.0, "training": {}},
            5.0,
        ),
    }
    for tsv, (result, info, wall) in jobs.items():
        path = tmp_path / "benchmarks" / tsv
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TSV_HEADER + f"{wall}\t0:00:{wall:02.0f}\t100\t1\t1\t1\t0\t0\t0\t1\n")
        (tmp_path / result).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / result).write_text(json.dumps(info))
    (tmp_path / "ds" / "dataset.json").write_text("{}")  # not a job's result: skipped
    frame = workflow_summary.phases(tmp_path).set_index("job")
    assert len(frame) == 5
    imdn = frame[frame["rule"] == "run_method"].loc["ds_x4_kspace_imdn_seed1"]
    assert (imdn["startup_s"], imdn["train_s"], imdn["rest_s"]) == (4.0, 30.0, 20.0)
    classifier = frame[frame["rule"] == "diagnose_sr"].loc["ds_x4_kspace_imdn_seed1"]
    assert (classifier["startup_s"], classifier["train_s"], classifier["rest_s"]) == (5, 18, 2)
    assert frame.loc["ds_x4_lr_seed0", "rule"] == "diagnose_lr_row"
    assert frame.loc["ds_hr_seed0", ["startup_s", "rest_s"]].tolist() == [3.0, 1.0]
    assert frame.loc["ds_x4_bicubic_seed0", "train_s"] == 0.0
    table = workflow_summary.summarise_phases(frame.reset_index()).set_index("group")
    assert table.loc["run_method: imdn", "total_s"] == 54.0
    assert table.loc["diagnose_sr", "jobs"] == 1


def test_a_fresh_smoke_run_counts_inside_the_time_budget(harness, tmp_path, monkeypatch):
    """--run-smoke runs first; the measurements get what it leaves of --time-budget, and the
    recorded wall time includes it (so `make bench` ends in time on a slow CPU)."""
    deadlines = []

    def fake_smoke(target, log):
        _fake_smoke_run(target)
        return 250.0

    real_start = harness.Budget.start

    def spy_start(self, name):
        deadlines.append((name, self.seconds))
        return real_start(self, name)

    monkeypatch.setattr(harness.smoke_run, "run_smoke", fake_smoke)
    monkeypatch.setattr(harness.Budget, "start", spy_start)
    out = tmp_path / "bench"
    argv = ["--tiny", "--threads", "1", "--quiet", "--out", str(out), "--run-smoke"]
    result = harness.main(argv + ["--sections", "workflow", "--time-budget", "400"])
    assert deadlines == [("workflow", 150.0)]  # 400 s less the smoke run's 250
    timing = result["budget"]
    assert timing["smoke_run_s"] == 250.0 and timing["time_budget_s"] == 400
    assert timing["wall_s"] >= 250.0
    assert result["sections"]["workflow"]["smoke_results"] == str(out / "smoke")
