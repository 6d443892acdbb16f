"""The contract every registered SR architecture keeps, one test per fact, parametrised over the
names ``import baselines`` registers: a file added to baselines/ is tested here unchanged.

(N, C, h, w) -> (N, C, s*h, s*w) for odd sizes at every scale its spec lists (the others
refused); weights survive a state-dict round trip; the input is left as it was; gradients reach
every parameter, finite on a constant patch; tiny < small < paper; the published and our own
parameter counts; the overrides and variants it lists; its training recipe is valid method
``train`` settings, readable from source. Tiny networks on small inputs; paper sizes are only
counted (meta device).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import jsonschema
import pytest
import torch
import yaml

import baselines  # noqa: F401  (registers every architecture)
from srda import registry

NAMES = registry.names()
SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"
LR_SIZE = (7, 9)


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seeded; one intra-op thread (tiny networks, a shared 2-core machine); restored after."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@functools.cache
def _count_at(name: str, size: str, channels: int = 1, **overrides) -> int:
    """Parameters at x4, counted as ``srda-bench params`` does (meta device: no forward)."""
    with torch.device("meta"):
        return _count(registry.build(name, scale=4, channels=channels, size=size, **overrides))


def _tiny(name: str, scale: int = 4, channels: int = 1) -> torch.nn.Module:
    return registry.build(name, scale=scale, channels=channels, size="tiny")


def test_every_declared_name_is_under_contract():
    """What the workflow reads from baselines' source is what this file tests."""
    assert NAMES and NAMES == registry.declared_names("baselines")


@pytest.mark.parametrize(
    ("name", "scale"), [pytest.param(n, s, id=f"{n}-x{s}") for n in NAMES for s in registry.SCALES]
)
def test_odd_input_at_every_scale(name: str, scale: int) -> None:
    """The suite's scales its spec lists work on an odd-sized batch; the others are refused."""
    if scale not in registry.spec(name).scales:
        with pytest.raises(ValueError, match="scale"):
            _tiny(name, scale)(torch.rand(1, 1, *LR_SIZE))
        return
    net = _tiny(name, scale).eval()
    with torch.no_grad():
        sr = net(torch.rand(2, 1, *LR_SIZE))
    assert sr.shape == (2, 1, LR_SIZE[0] * scale, LR_SIZE[1] * scale)
    assert sr.dtype == torch.float32 and torch.isfinite(sr).all()


@pytest.mark.parametrize("name", NAMES)
def test_channels_follow_the_input(name: str) -> None:
    net = _tiny(name, scale=2, channels=3).eval()
    with torch.no_grad():
        assert net(torch.rand(1, 3, *LR_SIZE)).shape == (1, 3, 2 * LR_SIZE[0], 2 * LR_SIZE[1])


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name: str) -> None:
    """Saved and loaded as the suite does (``torch.load(weights_only=True)``): equal outputs."""
    first = _tiny(name).eval()
    torch.manual_seed(1)
    second = _tiny(name).eval()
    state = first.state_dict()
    if _count(first):
        assert any(not torch.equal(v, second.state_dict()[k]) for k, v in state.items())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    second.load_state_dict(torch.load(buffer, weights_only=True), strict=True)
    lr = torch.rand(1, 1, *LR_SIZE)
    with torch.no_grad():
        assert torch.equal(first(lr), second(lr))


@pytest.mark.parametrize("name", NAMES)
def test_input_left_unmodified(name: str) -> None:
    net = _tiny(name)
    lr = torch.rand(1, 1, *LR_SIZE)
    before = lr.clone()
    with torch.no_grad():
        net.eval()(lr)
    assert torch.equal(lr, before)
    leaf = before.clone().requires_grad_()  # an in-place write to a leaf would raise here
    net.train()(leaf).mean().backward()
    assert torch.equal(leaf.detach(), before)
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_channels_last_gives_the_same_output_and_gradients(name: str) -> None:
    """NHWC tensors and weights (the inference default, ``channels_last`` in training): the
    same numbers as the default format (a ``view`` across strides would raise here)."""
    net = _tiny(name)
    lr = torch.rand(2, 1, 8, 10)  # even sides: a wavelet's 2x2 cells stay whole in NHWC
    outs, grads = [], []
    for fmt in (torch.contiguous_format, torch.channels_last):
        net.zero_grad(set_to_none=True)
        net.to(memory_format=fmt).train()
        torch.manual_seed(1)  # the same dropout or drop-path draws in both passes
        x = lr.contiguous(memory_format=fmt).requires_grad_()
        y = net(x)
        y.square().mean().backward()
        outs.append(y.detach().contiguous())
        grads.append(x.grad.contiguous())
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_parameter(name: str) -> None:
    net = _tiny(name).train()
    net(torch.rand(2, 1, *LR_SIZE, requires_grad=True)).square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without a gradient: {missing[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", NAMES)
def test_a_constant_patch_gives_finite_gradients(name: str) -> None:
    """Medical slices have zero backgrounds: a constant patch must not turn gradients to NaN."""
    net = _tiny(name).train()
    lr = torch.zeros(2, 1, *LR_SIZE, requires_grad=True)
    net(lr).mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None] + [lr.grad]
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_sizes_grow_from_tiny_to_paper(name: str) -> None:
    """Counted on the meta device (as ``srda-bench params``) as built for real; tiny, the smoke
    preset's size, holds at most 50,000 parameters."""
    counts = [_count_at(name, size) for size in registry.SIZES]
    assert counts[0] == _count(_tiny(name)) <= 50_000
    if registry.spec(name).sizes:
        assert counts[0] < counts[1] < counts[2], counts
    else:  # no settings: every size is the same network
        assert len(set(counts)) == 1, counts


@pytest.mark.parametrize("name", NAMES)
def test_paper_parameter_count(name: str) -> None:
    """The published count (x4, 3 channels) within 1%, ours at 1 channel exactly."""
    facts = registry.spec(name)
    if facts.paper_params is None and facts.params_1ch is None:
        pytest.skip(f"{name} registers no parameter count")
    if facts.paper_params is not None:
        three = _count_at(name, "paper", channels=3)
        assert abs(three - facts.paper_params) <= 0.01 * facts.paper_params, three
    if facts.params_1ch is not None:
        assert _count_at(name, "paper") == facts.params_1ch


@pytest.mark.parametrize("name", NAMES)
def test_overrides_it_lists_are_taken_and_others_refused(name: str) -> None:
    facts = registry.spec(name)
    tiny = dict(facts.sizes.get("tiny", {}))
    if tiny:  # the tiny size's own values, passed as overrides, build the same network
        assert _count_at(name, "tiny", **tiny) == _count_at(name, "tiny")
        assert registry.build(name, size="tiny").hparams.items() >= tiny.items()
    with pytest.raises((TypeError, ValueError), match="unknown"):
        registry.build(name, size="tiny", no_such_setting=1)


@pytest.mark.parametrize(
    ("name", "variant"),
    [pytest.param(n, v, id=f"{n}-{v}") for n in NAMES for v in registry.spec(n).variants],
)
def test_variants_build_their_published_settings(name: str, variant: str) -> None:
    facts = registry.spec(name)
    with torch.device("meta"):
        net = registry.build(name, size="paper", variant=variant)
    assert net.hparams.items() >= facts.variants[variant].items()
    if variant == facts.paper_variant:
        assert facts.sizes["paper"] == facts.variants[variant]


@functools.cache
def _train_schema() -> dict:
    schema = yaml.safe_load(SCHEMA.read_text())
    return {"$defs": schema["$defs"], **schema["$defs"]["method_settings"]["properties"]["train"]}


@pytest.mark.parametrize("name", NAMES)
def test_training_recipe_is_valid_and_read_from_source(name: str) -> None:
    """Valid method ``train`` settings, which the workflow reads without importing torch."""
    recipe = dict(registry.spec(name).train)
    jsonschema.validate(recipe, _train_schema())
    assert (_declared_train() or {}).get(name) == recipe


@functools.cache
def _declared_train() -> dict | None:
    return registry.declared_train("baselines")
