"""Name -> SR architecture: its network and its facts. Baselines register on ``import baselines``.

A network maps (N, channels, h, w) in [0, 1] to (N, channels, h*scale, w*scale). Each name is
registered once, with an :class:`ArchSpec` holding what its paper says (sizes, published
variants, the overrides a method may set, scales, parameter count, training recipe)::

    @register("mynet", ArchSpec(sizes={"tiny": {"features": 8}, "small": {...}, "paper": {...}}))
    class MyNet(SRNetwork):  # srda.models.blocks; any nn.Module taking these keywords will do
        def __init__(self, scale: int, channels: int, features: int): ...

:func:`build` then maps ``size`` and ``overrides`` to constructor keywords (:func:`settings`) and
calls ``MyNet(scale=..., channels=..., **keywords)``: the spec's sizes are the only source of the
constructor's settings, and its ``scales`` the scales it is built at. A name registered without a
spec keeps the plain form: its builder is called as ``builder(scale=, channels=, size=,
**overrides)`` and maps the size itself.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

Builder = Callable[..., Any]
B = TypeVar("B", bound=Builder)
SIZES = ("tiny", "small", "paper")
#: The scales the suite runs (``scales`` in the config schema).
SCALES = (2, 3, 4, 8)


class UnknownOverride(ValueError, TypeError):
    """An override the architecture does not take (a bad keyword and a bad config value)."""


def _frozen(settings: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Mapping[str, Any]]:
    return MappingProxyType({key: MappingProxyType(dict(value)) for key, value in settings.items()})


@dataclass(frozen=True)
class ArchSpec:
    """The facts of one registered architecture.

    sizes: constructor keywords of each size, ``tiny``, ``small`` and ``paper`` (the configuration
        its paper reports); none at all for a network without settings (every size the same).
    variants: the published configurations a method picks with the ``variant`` override.
    paper_variant: the variant the ``paper`` size is (it fills ``sizes["paper"]``).
    variant_sizes: the sizes a ``variant`` replaces. Default: ``paper`` alone, so a method entry
        naming a variant still builds the preset's tiny or small network.
    extra_overrides: constructor keywords a method may override beyond those of the sizes.
    scales: the suite's scales (of :data:`SCALES`) it builds.
    paper_params: the published parameter count (x4, 3 channels, the ``paper`` size), None
        where no source reports one; ``paper_params_source`` says where it is printed.
    params_1ch: our ``paper`` build's count at x4 with 1 channel (``srda-bench params``).
    train: the training recipe its paper prescribes, as a method's ``train`` settings.
    """

    sizes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    paper_variant: str | None = None
    variant_sizes: tuple[str, ...] = ("paper",)
    extra_overrides: tuple[str, ...] = ()
    scales: tuple[int, ...] = SCALES
    paper_params: int | None = None
    paper_params_source: str = ""
    params_1ch: int | None = None
    train: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sizes = dict(self.sizes)
        if self.paper_variant is not None:
            if self.paper_variant not in self.variants:
                raise ValueError(f"paper_variant {self.paper_variant!r} is not among the variants")
            sizes.setdefault("paper", self.variants[self.paper_variant])
        if sizes and set(sizes) != set(SIZES):
            raise ValueError(f"sizes must be {', '.join(SIZES)} (or none), got {sorted(sizes)}")
        if set(self.variant_sizes) - set(SIZES) or set(self.scales) - set(SCALES):
            raise ValueError(f"variant_sizes {self.variant_sizes} or scales {self.scales} unknown")
        if self.paper_params is not None and not self.paper_params_source:
            raise ValueError("paper_params needs its paper_params_source")
        object.__setattr__(self, "sizes", _frozen(sizes))
        object.__setattr__(self, "variants", _frozen(self.variants))
        object.__setattr__(self, "train", MappingProxyType(dict(self.train)))

    @property
    def overrides(self) -> tuple[str, ...]:
        """Every keyword a method's ``overrides`` may set (``variant`` where there are variants)."""
        keys = {key for preset in (*self.sizes.values(), *self.variants.values()) for key in preset}
        keys |= set(self.extra_overrides)
        return tuple(sorted(keys | ({"variant"} if self.variants else set())))


def per_size(**columns: tuple[Any, Any, Any]) -> dict[str, dict[str, Any]]:
    """Sizes written by column, one (tiny, small, paper) triple per setting:
    ``per_size(features=(8, 32, 64), blocks=(1, 2, 4))``."""
    return {
        size: {key: values[i] for key, values in columns.items()} for i, size in enumerate(SIZES)
    }


class _Entry(NamedTuple):
    builder: Builder
    spec: ArchSpec | None


_ENTRIES: dict[str, _Entry] = {}


def register(name: str, spec: ArchSpec | None = None) -> Callable[[B], B]:
    """Decorator: ``@register("rcan", ArchSpec(...))`` over the network class (or a function
    taking ``scale``, ``channels`` and the spec's keywords); ``@register("x")`` alone over a
    plain builder ``(scale, channels, size, **overrides)``. The name must be a string literal:
    the workflow reads it from the source (:func:`declared_names`)."""

    def wrap(builder: B) -> B:
        if name in _ENTRIES and _ENTRIES[name].builder is not builder:
            raise ValueError(f"SR architecture {name!r} is registered twice")
        _ENTRIES[name] = _Entry(builder, spec)
        return builder

    return wrap


def names() -> list[str]:
    return sorted(_ENTRIES)


def _entry(name: str) -> _Entry:
    if name not in _ENTRIES:
        known = ", ".join(names()) or "none (did you `import baselines`?)"
        raise KeyError(f"unknown SR architecture {name!r}; registered: {known}")
    return _ENTRIES[name]


def spec(name: str) -> ArchSpec:
    """The facts registered for ``name`` (an empty spec for a plain builder)."""
    return _entry(name).spec or ArchSpec()


def settings(name: str, size: str = "paper", **overrides: Any) -> dict[str, Any]:
    """The constructor keywords ``build(name, size=size, **overrides)`` passes: the size's
    settings (or a published ``variant``'s, for the spec's ``variant_sizes``), then the
    overrides. Unknown sizes, variants and overrides are refused with the known ones listed."""
    facts = _entry(name).spec
    if facts is None:
        raise ValueError(f"{name} is a plain builder: it maps size and overrides itself")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    unknown = sorted(set(overrides) - set(facts.overrides))
    if unknown:
        known = ", ".join(facts.overrides) or "none"
        raise UnknownOverride(f"{name}: unknown overrides {unknown}; known: {known}")
    preset = facts.sizes.get(size, {})
    if "variant" in overrides:
        variant = str(overrides.pop("variant")).lower()
        if variant not in facts.variants:
            raise ValueError(
                f"{name}: unknown variant {variant!r}; expected one of {', '.join(facts.variants)}"
            )
        if size in facts.variant_sizes:
            preset = facts.variants[variant]
    return {**preset, **overrides}


def build(name: str, scale: int = 4, channels: int = 1, size: str = "paper", **overrides: Any):
    """Build a registered network; an unknown name, size or override is refused with the known
    ones listed, and so is a scale its spec does not list. A spec'd network keeps what it was
    built with in ``hparams``."""
    builder, facts = _entry(name)
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    if facts is None:
        return builder(scale=scale, channels=channels, size=size, **overrides)
    if scale not in facts.scales:  # checked here once; a network need not know its spec
        raise ValueError(
            f"{name}: scale {scale} is not supported (it builds scales {facts.scales}, got {scale})"
        )
    keywords = settings(name, size, **overrides)
    net = builder(scale=scale, channels=channels, **keywords)
    net.hparams = {"arch": name, "size": size, "scale": scale, "channels": channels, **keywords}
    return net


def declared_names(package: str = "baselines") -> list[str] | None:
    """The names the modules of ``package`` register, read from their source without importing
    them (the baselines import torch; the workflow checks method names before any job).

    Counted: ``register("name", ...)`` and ``registry.register("name", ...)`` calls, as
    decorators or not, the name their first argument. None when the names cannot be told this
    way: the package is not found, a module does not parse, or a name is not a string literal.
    """
    found = _registrations(package)
    return None if found is None else sorted({name for name, _, _ in found})


def declared_train(package: str = "baselines") -> dict[str, dict[str, Any]] | None:
    """Each name's training recipe (its spec's ``train``; {} for none), read from the source as
    :func:`declared_names` reads the names, for defaults the workflow sets without torch.

    The spec is the register call's second argument (or ``spec=``): an ``ArchSpec(...)`` call, a
    module-level name bound to one, or ``replace(<either>, ...)``, its ``train`` a literal. None
    when a recipe cannot be read this way.
    """
    found = _registrations(package)
    if found is None:
        return None
    recipes: dict[str, dict[str, Any]] = {}
    for name, call, assigned in found:
        spec_node = call.args[1] if len(call.args) > 1 else None
        spec_node = next((k.value for k in call.keywords if k.arg == "spec"), spec_node)
        recipe = _train_literal(spec_node, assigned)
        if recipe is None:
            return None
        recipes[name] = recipe
    return recipes


def _registrations(package: str) -> list[tuple[str, ast.Call, dict[str, ast.expr]]] | None:
    """(name, the register call, the module's top-level assignments) of every registration."""
    try:
        found_spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if found_spec is None or not found_spec.submodule_search_locations:
        return None
    found = []
    for folder in found_spec.submodule_search_locations:
        for path in sorted(Path(folder).rglob("*.py")):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                return None
            assigned = {
                target.id: node.value
                for node in tree.body
                if isinstance(node, ast.Assign)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Call) and _is_register(node.func)):
                    continue
                arg = node.args[0] if node.args else None
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    return None
                found.append((arg.value, node, assigned))
    return found


def _is_register(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "register"
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "register"
        and isinstance(func.value, ast.Name)
        and func.value.id == "registry"
    )


def _train_literal(
    node: ast.expr | None, assigned: dict[str, ast.expr], depth: int = 0
) -> dict[str, Any] | None:
    """The ``train`` of a spec expression ({} when it has none), None when it cannot be read."""
    if node is None:
        return {}
    if isinstance(node, ast.Name) and node.id in assigned and depth < 8:
        return _train_literal(assigned[node.id], assigned, depth + 1)
    if not isinstance(node, ast.Call):
        return None
    func = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
    keywords = {k.arg: k.value for k in node.keywords}
    if func not in ("ArchSpec", "replace"):
        return None
    if "train" in keywords:
        try:
            recipe = ast.literal_eval(keywords["train"])
        except ValueError:
            return None
        return dict(recipe) if isinstance(recipe, dict) else None
    if func == "replace":
        return _train_literal(node.args[0], assigned, depth + 1) if node.args else None
    return {}
