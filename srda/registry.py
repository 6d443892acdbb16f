"""Name -> builder of an SR network. Baselines register themselves on ``import baselines``.

A builder takes ``(scale, channels, size, **overrides)`` and returns an ``nn.Module`` mapping
(N, channels, h, w) in [0, 1] to (N, channels, h*scale, w*scale).
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

Builder = Callable[..., Any]
SIZES = ("tiny", "small", "paper")
_BUILDERS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: ``@register("rcan")`` over a builder function."""

    def wrap(builder: Builder) -> Builder:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"SR architecture {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder

    return wrap


def names() -> list[str]:
    return sorted(_BUILDERS)


def declared_names(package: str = "baselines") -> list[str] | None:
    """The names the modules of ``package`` register, read from their source without importing
    them (the baselines import torch; the workflow checks method names before any job).

    Counted: ``@register("name")`` and ``registry.register("name")`` calls. None when the names
    cannot be told this way: the package is not found, a module does not parse, or a name is
    not a string literal.
    """
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    found: set[str] = set()
    for folder in spec.submodule_search_locations:
        for path in sorted(Path(folder).rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                return None
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and _is_register(node.func)):
                    continue
                arg = node.args[0] if node.args else None
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    return None
                found.add(arg.value)
    return sorted(found)


def _is_register(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "register"
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "register"
        and isinstance(func.value, ast.Name)
        and func.value.id == "registry"
    )


def build(name: str, scale: int = 4, channels: int = 1, size: str = "paper", **overrides: Any):
    """Build a registered network; an unknown name or size is refused with the known ones listed."""
    if name not in _BUILDERS:
        known = ", ".join(names()) or "none (did you `import baselines`?)"
        raise KeyError(f"unknown SR architecture {name!r}; registered: {known}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    return _BUILDERS[name](scale=scale, channels=channels, size=size, **overrides)
