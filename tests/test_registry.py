"""The registry: names read from source as the workflow does at start (no torch import), specs."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from srda import registry

REPO = Path(__file__).resolve().parent.parent
_PYCACHE = shutil.ignore_patterns("__pycache__")


def _package(root: Path, name: str, **modules: str) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text("")
    for module, text in modules.items():
        (root / name / f"{module}.py").write_text(text)


@pytest.fixture
def on_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_declared_names_are_the_literal_register_calls(on_path):
    _package(
        on_path,
        "pkg_ok",
        a="from srda.registry import register\n\n@register('net_a')\ndef build(**kw): ...\n",
        b="from srda import registry\nregistry.register('net_b')(print)\natexit = 1\n",
    )
    assert registry.declared_names("pkg_ok") == ["net_a", "net_b"]
    assert "pkg_ok" not in sys.modules  # read, not imported


def test_declared_names_read_the_registrations_that_carry_a_spec(on_path):
    """The forms baselines/ uses: a spec in the decorator, a spec by keyword, a call whose
    result registers a class or a partial."""
    _package(
        on_path,
        "pkg_spec",
        a=(
            "from srda.registry import ArchSpec, register\n\n"
            "@register('net_c', ArchSpec(sizes={'tiny': {}, 'small': {}, 'paper': {}}))\n"
            "class Net: ...\n"
        ),
        b=(
            "import functools\nfrom srda import registry\n"
            "registry.register('net_d', spec=registry.ArchSpec())(functools.partial(print))\n"
            "SPEC = registry.ArchSpec(train={'lr': 1e-4})\n"
            "registry.register('net_e', SPEC)(print)\n"
        ),
    )
    assert registry.declared_names("pkg_spec") == ["net_c", "net_d", "net_e"]
    assert "pkg_spec" not in sys.modules


def test_declared_train_reads_the_recipe_without_importing(on_path):
    _package(
        on_path,
        "pkg_train",
        a=(
            "from dataclasses import replace\nfrom srda.registry import ArchSpec, register\n"
            "BASE = ArchSpec(train={'loss': 'l1', 'lr': 2e-4})\n"
            "register('inline', ArchSpec(train={'schedule': 'step'}))(print)\n"
            "register('named', BASE)(print)\n"
            "register('replaced', replace(BASE, params_1ch=3))(print)\n"
            "register('retrained', spec=replace(BASE, train={'lr': 1.0}))(print)\n"
            "register('plain')(print)\n"
        ),
    )
    assert registry.declared_train("pkg_train") == {
        "inline": {"schedule": "step"},
        "named": {"loss": "l1", "lr": 2e-4},
        "replaced": {"loss": "l1", "lr": 2e-4},
        "retrained": {"lr": 1.0},
        "plain": {},
    }
    _package(on_path, "pkg_opaque", a="register('x', ArchSpec(train=RECIPE))(print)\n")
    assert registry.declared_train("pkg_opaque") is None
    assert "pkg_train" not in sys.modules


def test_declared_names_are_unknown_when_source_cannot_tell(on_path):
    _package(on_path, "pkg_var", a="from srda.registry import register\nregister(NAME)(print)\n")
    _package(on_path, "pkg_bad", a="def (:\n")
    assert registry.declared_names("pkg_var") is None
    assert registry.declared_names("pkg_bad") is None
    assert registry.declared_names("no_such_package_here") is None


SPEC = registry.ArchSpec(
    sizes={"tiny": {"width": 1}, "small": {"width": 2}},
    variants={"big": {"width": 8}, "wide": {"width": 16}},
    paper_variant="big",
    extra_overrides=("depth",),
)


def test_settings_map_size_variant_and_overrides():
    assert SPEC.sizes["paper"] == {"width": 8}  # filled from paper_variant
    assert SPEC.overrides == ("depth", "variant", "width")
    with pytest.raises(TypeError):
        SPEC.sizes["tiny"]["width"] = 3  # a spec is read-only
    calls = []
    registry.register("_test_settings", SPEC)(lambda **kw: calls.append(kw) or SimpleNamespace())
    try:
        assert registry.settings("_test_settings", "tiny", depth=3) == {"width": 1, "depth": 3}
        assert registry.settings("_test_settings", "paper", variant="WIDE") == {"width": 16}
        # a variant replaces the paper size only (variant_sizes), yet is checked at every size
        assert registry.settings("_test_settings", "small", variant="wide") == {"width": 2}
        assert registry.settings("_test_settings", "paper", variant="wide", width=5) == {"width": 5}
        with pytest.raises(ValueError, match="unknown variant 'huge'; expected one of big, wide"):
            registry.settings("_test_settings", "tiny", variant="huge")
        with pytest.raises(registry.UnknownOverride, match=r"unknown overrides \['wdth'\]"):
            registry.build("_test_settings", size="tiny", wdth=3)
        with pytest.raises(ValueError, match="unknown size"):
            registry.settings("_test_settings", "huge")
        net = registry.build("_test_settings", scale=3, channels=2, size="small", depth=1)
        assert calls[-1] == {"scale": 3, "channels": 2, "width": 2, "depth": 1}
        assert net.hparams == {"arch": "_test_settings", "size": "small", **calls[-1]}
    finally:
        registry._ENTRIES.pop("_test_settings")


def test_a_spec_is_checked_when_it_is_written():
    with pytest.raises(ValueError, match="sizes must be tiny, small, paper"):
        registry.ArchSpec(sizes={"tiny": {}, "paper": {}})
    with pytest.raises(ValueError, match="paper_variant"):
        registry.ArchSpec(variants={"a": {}}, paper_variant="b")
    with pytest.raises(ValueError, match="scales"):
        registry.ArchSpec(scales=(5,))
    with pytest.raises(ValueError, match="source"):
        registry.ArchSpec(paper_params=10)


NEW_BASELINE = '''
"""Two networks a contributor might add: one keeps the contract, one writes to its input."""
from torch import nn
from srda.registry import ArchSpec, register

SIZES = {"tiny": {"features": 4}, "small": {"features": 8}, "paper": {"features": 16}}


@register("newnet", ArchSpec(sizes=SIZES, params_1ch=2480, train={"loss": "l1"}))
class NewNet(nn.Sequential):
    def __init__(self, scale=4, channels=1, features=16):
        super().__init__(
            nn.Conv2d(channels, features, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(features, channels * scale**2, 3, padding=1),
            nn.PixelShuffle(scale),
        )


@register("newnet_inplace", ArchSpec(sizes=SIZES))
class InPlace(NewNet):
    def forward(self, lr):
        return super().forward(lr.clamp_(0.0, 0.5))
'''


def _contract_run(tmp_path: Path, files: dict[str, str], select: str) -> tuple[dict, str]:
    """Run the contract tests on a copy of baselines/ holding ``files`` too: ({test id:
    PASSED | FAILED | SKIPPED}, the output)."""
    shutil.copytree(REPO / "baselines", tmp_path / "baselines", ignore=_PYCACHE)
    for name, text in files.items():
        (tmp_path / "baselines" / name).write_text(text)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "tests" / "test_registry_contract.py")]
        + ["-v", "-p", "no:cacheprovider", "-k", select],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},  # this copy is `baselines`
    )
    ran = {}
    for line in out.stdout.splitlines():
        found = re.match(r"\S+::(\S+) (PASSED|FAILED|SKIPPED)", line)
        if found:
            ran[found[1]] = found[2]
    return ran, out.stdout[-3000:]


def test_a_file_added_to_baselines_is_under_contract(tmp_path):
    """The contract tests pick up a new baselines/ module with no change to tests/ (run on a
    copy of baselines/ holding one more file), and they fail the network that breaks it."""
    ran, out = _contract_run(tmp_path, {"newnet.py": NEW_BASELINE}, "newnet or declared")
    expected = {f"test_odd_input_at_every_scale[newnet-x{s}]" for s in registry.SCALES} | {
        "test_every_declared_name_is_under_contract",
        "test_state_dict_round_trip[newnet]",
        "test_paper_parameter_count[newnet]",
    }
    assert {k for k, v in ran.items() if v == "PASSED"} >= expected, out
    failed = {k for k, v in ran.items() if v == "FAILED"}
    assert "test_input_left_unmodified[newnet_inplace]" in failed, out
    assert all("[newnet_inplace" in k for k in failed), failed


def test_the_readme_example_method_keeps_the_contract(tmp_path):
    """README's "Adding a method" file, as printed, is a method every contract test passes."""
    section = (REPO / "README.md").read_text().split("## Adding a method", 1)[1]
    code = re.search(r"```python\n# baselines/mynet\.py\n(.*?)```", section, re.S)
    assert code, "README's Adding a method has no baselines/mynet.py example"
    ran, out = _contract_run(tmp_path, {"mynet.py": code[1]}, "mynet")
    assert len(ran) >= 10 and set(ran.values()) == {"PASSED"}, out
    assert f"test_odd_input_at_every_scale[mynet-x{registry.SCALES[-1]}]" in ran
    assert "test_paper_parameter_count[mynet]" in ran
