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
        assert r["cpu_utilisation"] >= 0
        share = r["other_processes_cpu_share"]
        assert share is None or 0 <= share
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
    for key in ("avx512_bf16", "amx_bf16", "native_bf16"):
        assert m[key] in (True, False, None)
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


def test_bad_patch_is_rejected(bench_srda_train):
    with pytest.raises(SystemExit):
        bench_srda_train.parse_args(["--patch", "30", "--scale", "4"])
