"""Adding a method, both ways: a Python file in baselines/, or an outside tool's rule."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import baselines  # noqa: F401
from srda import registry
from srda.cli import main
from srda.evaluate import score_method
from srda.run import parameter_counts
from srda.shards import write_shard

REPO = Path(__file__).resolve().parent.parent


def test_registry_refuses_unknown_names_listing_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown SR architecture 'nope'; registered: .*bicubic"):
        registry.build("nope")
    with pytest.raises(ValueError, match="unknown size"):
        registry.build("bicubic", size="huge")


def test_params_command_prints_every_registered_method(capsys):
    assert main(["params", "--scale", "4", "--channels", "1", "--size", "paper"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert set(counts) == set(registry.names())
    assert counts["bicubic"] == 0 and counts["srda"] == 43_080_983
    assert parameter_counts(4, 1, "tiny")["srda"] < counts["srda"]


TOY = '''
"""A toy method added by the test: one file, nothing else touched."""
from torch import nn
from srda.registry import register


@register("toy")
def build_toy(scale=4, channels=1, size="paper", **overrides):
    return nn.Sequential(nn.Conv2d(channels, channels * scale**2, 3, padding=1),
                         nn.PixelShuffle(scale))
'''


def test_a_python_method_is_one_file_in_baselines(tmp_path):
    shutil.copytree(REPO / "baselines", tmp_path / "baselines")
    (tmp_path / "baselines" / "toy.py").write_text(textwrap.dedent(TOY))
    # Load the copied package as `baselines` (the installed one would win on sys.path).
    package = tmp_path / "baselines"
    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('baselines', r'{package / '__init__.py'}', "
        f"submodule_search_locations=[r'{package}']); "
        "mod = importlib.util.module_from_spec(spec); sys.modules['baselines'] = mod; "
        "spec.loader.exec_module(mod); "
        "from srda import registry; import torch; "
        "m = registry.build('toy', scale=3, size='tiny'); "
        "print(tuple(m(torch.zeros(1, 1, 5, 7)).shape))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 1, 15, 21)"


@pytest.fixture
def lr_hr(tmp_path):
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    hr = np.stack([0.5 + 0.4 * np.sin(5 * xx + k) * np.cos(4 * yy) for k in range(4)])
    from srda.data.degrade import downscale

    write_shard(tmp_path / "test_hr.npy", hr.astype(np.float32))
    write_shard(tmp_path / "x4" / "test_lr.npy", downscale(hr.astype(np.float32), 4))
    (tmp_path / "test_meta.csv").write_text(
        "index,subject,image,slice,label\n" + "".join(f"{i},s{i},s{i},0,CN\n" for i in range(4))
    )
    return tmp_path


def test_the_outside_tool_example_writes_shards_that_score(lr_hr):
    tool = REPO / "workflow" / "scripts" / "lanczos_upscale.py"
    out = lr_hr / "x4" / "sr" / "lanczos" / "seed0"
    proc = subprocess.run(
        [
            sys.executable,
            str(tool),
            "--scale",
            "4",
            "--inputs",
            str(lr_hr / "x4/test_lr.npy"),
            "--outputs",
            str(out / "test.npy"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    scores = score_method(lr_hr, 4, out)
    assert (out / "test_metrics.csv").exists() and len(scores) == 4
    assert scores["psnr"].between(20, 60).all()


def test_scoring_refuses_a_wrong_shard(lr_hr, capsys):
    out = lr_hr / "x4" / "sr" / "bad" / "seed0"
    write_shard(out / "test.npy", np.zeros((4, 31, 32), np.float32))
    code = main(["score", "--data", str(lr_hr), "--scale", "4", "--sr-dir", str(out)])
    assert code == 2 and "SR shape" in capsys.readouterr().err
    assert not (out / "test_metrics.csv").exists()
