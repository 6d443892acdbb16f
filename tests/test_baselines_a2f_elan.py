"""A2F and ELAN baselines: shapes on odd inputs at every scale, gradients, parameter counts."""

from __future__ import annotations

import pytest
import torch

import baselines  # noqa: F401  (registers every builder)
from baselines import a2f, elan
from srda.registry import build, names

MODULES = {"a2f": a2f, "elan": elan}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core machine every op
    of a multi-threaded run can wait a scheduler slice for its second thread (seconds instead of
    milliseconds per step); restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def first_conv_weight(name: str, model: torch.nn.Module) -> torch.Tensor:
    """The weight of the layer the input meets first (A2F: the head conv, which is
    weight-normalised, so its direction parameter)."""
    if name == "a2f":
        return model.head.parametrizations.weight.original1
    return model.head.weight


@pytest.mark.parametrize("name", sorted(MODULES))
def test_registered(name: str) -> None:
    assert name in names()
    assert isinstance(build(name, size="tiny"), torch.nn.Module)


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("hw", [(13, 11), (9, 15)])
def test_forward_backward_odd_sizes(name: str, scale: int, hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = build(name, scale=scale, channels=1, size="tiny")
    assert 1_000 <= n_params(model) <= 50_000
    x = torch.rand(2, 1, *hw)
    y = model(x)
    assert y.shape == (2, 1, hw[0] * scale, hw[1] * scale)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    grad = first_conv_weight(name, model).grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(MODULES))
def test_scale8_and_eval_mode(name: str) -> None:
    model = build(name, scale=8, size="tiny").eval()
    with torch.no_grad():
        y = model(torch.rand(1, 1, 7, 5))
    assert y.shape == (1, 1, 56, 40)


def test_elan_tiny_input_smaller_than_padding() -> None:
    """A 3x5 input needs more padding (to 16) than reflect allows; replicate takes over."""
    model = build("elan", size="tiny").eval()
    with torch.no_grad():
        assert model(torch.rand(1, 1, 3, 5)).shape == (1, 1, 12, 20)


def test_elan_pads_to_the_window_multiple_and_crops_back() -> None:
    """A 13x11 input gives the top-left crop of what its 16x16 reflect-padded version gives."""
    torch.manual_seed(0)
    model = build("elan", size="tiny").eval()
    x = torch.rand(1, 1, 13, 11)
    padded = torch.nn.functional.pad(x, (0, 5, 0, 3), mode="reflect")
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(padded)[..., :52, :44])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_paper_parameter_counts(name: str) -> None:
    module = MODULES[name]
    three = n_params(build(name, scale=4, channels=3, size="paper"))
    assert abs(three - module.PAPER_PARAMS) <= 0.01 * module.PAPER_PARAMS
    assert n_params(build(name, scale=4, channels=1, size="paper")) == module.PAPER_PARAMS_1CH
    assert module.PAPER_PARAMS_SOURCE


@pytest.mark.parametrize(
    ("name", "variant", "count"),
    [  # 3 channels, x4, the authors' released configurations counted layer by layer
        ("a2f", "sd", 319_672),
        ("a2f", "s", 331_132),
        ("a2f", "m", 1_010_068),
        ("a2f", "l", 1_374_112),
        ("elan", "light", 601_488),
        ("elan", "full", 8_312_448),
    ],
)
def test_variants_match_official_configs(name: str, variant: str, count: int) -> None:
    assert n_params(build(name, scale=4, channels=3, size="paper", variant=variant)) == count


@pytest.mark.parametrize("name", sorted(MODULES))
def test_bad_variant_refused(name: str) -> None:
    with pytest.raises(ValueError, match="variant"):
        build(name, size="paper", variant="huge")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_train_defaults(name: str) -> None:
    defaults = MODULES[name].TRAIN_DEFAULTS
    assert set(defaults) <= {"loss", "schedule", "lr"}
    assert defaults["loss"] in {"l1", "l2"}
    assert defaults["schedule"] in {"constant", "step", "cosine"}


def test_state_dict_roundtrip() -> None:
    """Weight-normalised A2F and buffer-holding ELAN both reload from a plain state dict."""
    for name in MODULES:
        a, b = build(name, size="tiny"), build(name, size="tiny")
        b.load_state_dict(a.state_dict())
        x = torch.rand(1, 1, 9, 7)
        a.eval(), b.eval()
        with torch.no_grad():
            assert torch.equal(a(x), b(x))


def test_elan_unshared_attention_fused_path_matches_explicit() -> None:
    """Without shared attention (full ELAN) GMSA uses the fused attention kernel; it gives the
    explicit softmax(Q Q^T) V result, and gradients flow through it."""
    torch.manual_seed(0)
    model = build("elan", size="tiny", shared_depth=0).eval()
    x = torch.rand(2, 1, 13, 11)
    with torch.no_grad():
        fused = model(x)
        for gmsa in model.modules():
            if isinstance(gmsa, elan.GMSA):
                gmsa.keep_attention = True
        explicit = model(x)
    torch.testing.assert_close(fused, explicit, rtol=1e-4, atol=1e-5)
    model.train()
    model(x).mean().backward()
    assert model.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(MODULES))
def test_unknown_override_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown overrides"):
        build(name, size="tiny", featurs=8)
