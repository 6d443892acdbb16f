"""The registry's names read from source, as the workflow does at start (no torch import)."""

import sys
from pathlib import Path

import pytest

from srda import registry


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


def test_declared_names_are_unknown_when_source_cannot_tell(on_path):
    _package(on_path, "pkg_var", a="from srda.registry import register\nregister(NAME)(print)\n")
    _package(on_path, "pkg_bad", a="def (:\n")
    assert registry.declared_names("pkg_var") is None
    assert registry.declared_names("pkg_bad") is None
    assert registry.declared_names("no_such_package_here") is None


def test_declared_names_of_the_baselines_are_what_importing_them_registers():
    import baselines  # noqa: F401

    assert registry.declared_names("baselines") == registry.names()
