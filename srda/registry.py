"""Name -> builder of an SR network. Baselines register themselves on ``import baselines``.

A builder takes ``(scale, channels, size, **overrides)`` and returns an ``nn.Module`` mapping
(N, channels, h, w) in [0, 1] to (N, channels, h*scale, w*scale).
"""

from __future__ import annotations

from collections.abc import Callable
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


def build(name: str, scale: int = 4, channels: int = 1, size: str = "paper", **overrides: Any):
    """Build a registered network; an unknown name or size is refused with the known ones listed."""
    if name not in _BUILDERS:
        known = ", ".join(names()) or "none (did you `import baselines`?)"
        raise KeyError(f"unknown SR architecture {name!r}; registered: {known}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    return _BUILDERS[name](scale=scale, channels=channels, size=size, **overrides)
