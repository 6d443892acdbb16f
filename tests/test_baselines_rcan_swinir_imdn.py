"""RCAN, SwinIR and IMDN baselines: shapes, gradients, odd sizes, scales, parameter counts."""

from __future__ import annotations

import functools
import importlib

import pytest
import torch

import baselines  # noqa: F401  (registers every builder)
from srda.registry import build

NAMES = ("rcan", "swinir", "imdn")


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@functools.cache
def paper_count(name: str, channels: int, scale: int = 4) -> int:
    """Parameters of a paper-size build, counted as ``srda-bench params`` does (meta device)."""
    with torch.device("meta"):
        return n_params(build(name, scale=scale, channels=channels, size="paper"))


def first_weight(name: str, model: torch.nn.Module) -> torch.Tensor:
    """The weight of the first layer the LR image meets."""
    if name == "rcan":
        return model.net.head[0].weight
    if name == "swinir":
        return model.net.conv_first.weight
    return model.head.weight


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_tiny_forward_backward_odd_sizes(name: str, scale: int) -> None:
    torch.manual_seed(0)
    model = build(name, scale=scale, channels=1, size="tiny")
    for h, w in ((13, 11), (9, 15)):
        model.zero_grad(set_to_none=True)
        lr = torch.rand(2, 1, h, w)
        sr = model(lr)
        assert sr.shape == (2, 1, h * scale, w * scale)
        assert torch.isfinite(sr).all()
        sr.abs().mean().backward()
        grad = first_weight(name, model).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        # SwinIR's first block of each stage gets no attention mask: nothing is unused.
        assert not missing, f"{name}: parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize("name", NAMES)
def test_tiny_x8_and_small_inputs(name: str) -> None:
    model = build(name, scale=8, size="tiny")
    assert model(torch.rand(1, 1, 5, 7)).shape == (1, 1, 40, 56)
    x4 = build(name, scale=4, size="tiny")
    # sides shorter than a SwinIR window (reflect padding impossible) still work
    assert x4(torch.rand(1, 1, 3, 2)).shape == (1, 1, 12, 8)


@pytest.mark.parametrize("name", NAMES)
def test_tiny_is_tiny(name: str) -> None:
    assert 2_000 <= n_params(build(name, size="tiny")) <= 50_000


@pytest.mark.parametrize("name", NAMES)
def test_input_not_modified_and_leaf_input_ok(name: str) -> None:
    model = build(name, size="tiny")
    lr = torch.rand(1, 1, 9, 9, requires_grad=True)
    before = lr.detach().clone()
    model(lr).sum().backward()
    assert torch.equal(lr.detach(), before)
    assert lr.grad is not None and torch.isfinite(lr.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_constant_patch_gives_finite_gradients(name: str) -> None:
    """Zero backgrounds of medical slices: a constant patch must not produce NaN gradients."""
    model = build(name, size="tiny")
    model(torch.zeros(2, 1, 8, 8)).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", NAMES)
def test_paper_param_counts(name: str) -> None:
    module = importlib.import_module(f"baselines.{name}")
    three = paper_count(name, 3)
    assert abs(three - module.PAPER_PARAMS) / module.PAPER_PARAMS < 0.01, three
    assert paper_count(name, 1) == module.PAPER_PARAMS_1CH
    assert module.PAPER_PARAMS_SOURCE
    assert set(module.TRAIN_DEFAULTS) <= {"loss", "schedule", "lr"}


@pytest.mark.parametrize("name", NAMES)
def test_meta_build_matches_real_build(name: str) -> None:
    with torch.device("meta"):
        meta = build(name, size="small")
    assert all(p.device.type == "meta" for p in meta.parameters())
    assert n_params(meta) == n_params(build(name, size="small"))


def test_exact_three_channel_counts() -> None:
    """Counts of the released code's layouts (spandrel and the IMDN paper's layer table)."""
    assert paper_count("rcan", 3) == 15_592_355  # 15,592,379 with the two mean-shift convs
    assert paper_count("swinir", 3) == 11_900_199
    assert paper_count("imdn", 3) == 715_176
    assert paper_count("imdn", 3, scale=2) == 694_404  # paper: 694K
    assert paper_count("imdn", 3, scale=3) == 703_059  # paper: 703K


def test_swinir_lightweight_variant() -> None:
    from baselines import swinir

    light = build("swinir", channels=3, variant="lightweight")
    assert n_params(light) == 929_628  # official code; the paper prints 897K (see module doc)
    assert light.net.upsampler == "pixelshuffledirect" and light.net.embed_dim == 60
    assert swinir.PAPER_PARAMS_LIGHTWEIGHT == 897_000
    sr = build("swinir", scale=3, variant="lightweight")(torch.rand(1, 1, 11, 13))
    assert sr.shape == (1, 1, 33, 39)


def test_no_mean_shift_left() -> None:
    from spandrel.architectures.RCAN.__arch.rcan_arch import MeanShift

    for channels in (1, 3):
        rcan = build("rcan", channels=channels, size="tiny")
        assert not any(isinstance(m, MeanShift) for m in rcan.modules())
        assert rcan.net.rgb_range == 1
        swin = build("swinir", channels=channels, size="tiny")
        assert torch.count_nonzero(swin.net.mean) == 0 and swin.net.img_range == 1.0


def test_swinir_padding_matches_unpadded_multiple() -> None:
    """An input already a multiple of the window goes through unpadded; cropping is exact."""
    torch.manual_seed(0)
    model = build("swinir", size="tiny").eval()
    lr = torch.rand(1, 1, 8, 12)
    with torch.no_grad():
        direct = model.net(lr)
        wrapped = model(lr)
    assert torch.equal(direct, wrapped)
    odd = torch.rand(1, 1, 9, 13)
    with torch.no_grad():
        padded = model.net(torch.nn.functional.pad(odd, (0, 3, 0, 3), mode="reflect"))
        assert torch.equal(model(odd), padded[..., :36, :52])


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown overrides"):
        build("rcan", size="tiny", width=3)
    with pytest.raises(ValueError, match="scales"):
        build("rcan", size="tiny", scale=5)
    with pytest.raises(ValueError, match="variant"):
        build("swinir", size="tiny", variant="huge")
    with pytest.raises(ValueError, match="img_size"):
        build("swinir", size="tiny", img_size=18)
    with pytest.raises(ValueError, match="unknown overrides"):
        build("imdn", size="tiny", depth=3)
    with pytest.raises(ValueError, match="size"):
        build("imdn", size="medium")


def test_overrides_win_over_size() -> None:
    assert len(build("imdn", size="tiny", blocks=3).body) == 3
    assert build("swinir", size="tiny", embed_dim=8).net.embed_dim == 8
    assert len(build("rcan", size="tiny", groups=1).net.body) == 2  # 1 group + closing conv
