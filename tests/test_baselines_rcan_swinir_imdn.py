"""RCAN, SwinIR and IMDN: inputs below a window, exact counts, the lightweight SwinIR, no
mean shift, padding, their own refusals and overrides.

What every architecture keeps (shapes, scales, round trip, counts) is in
test_registry_contract.py."""

from __future__ import annotations

import functools

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


@pytest.mark.parametrize("name", NAMES)
def test_sides_shorter_than_a_window(name: str) -> None:
    """Sides below SwinIR's window (reflect padding impossible) still work."""
    with torch.no_grad():
        assert build(name, scale=4, size="tiny")(torch.rand(1, 1, 3, 2)).shape == (1, 1, 12, 8)


def test_exact_three_channel_counts() -> None:
    """Counts of the released code's layouts (spandrel and the IMDN paper's layer table)."""
    assert paper_count("rcan", 3) == 15_592_355  # 15,592,379 with the two mean-shift convs
    assert paper_count("swinir", 3) == 11_900_199
    assert paper_count("imdn", 3) == 715_176
    assert paper_count("imdn", 3, scale=2) == 694_404  # paper: 694K
    assert paper_count("imdn", 3, scale=3) == 703_059  # paper: 703K


def test_swinir_lightweight_variant() -> None:
    light = build("swinir", channels=3, variant="lightweight")
    assert n_params(light) == 929_628  # official code; the paper prints 897K (see module doc)
    assert light.net.upsampler == "pixelshuffledirect" and light.net.embed_dim == 60
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


def test_their_own_refusals() -> None:
    with pytest.raises(ValueError, match=r"scales \(2, 3, 4, 8\), got 5"):
        build("rcan", size="tiny", scale=5)
    with pytest.raises(ValueError, match="img_size"):
        build("swinir", size="tiny", img_size=18)
    with pytest.raises(ValueError, match="divisible by 4"):
        build("imdn", size="tiny", features=18)


def test_overrides_win_over_size() -> None:
    assert len(build("imdn", size="tiny", blocks=3).body) == 3
    assert build("swinir", size="tiny", embed_dim=8).net.embed_dim == 8
    assert len(build("rcan", size="tiny", groups=1).net.body) == 2  # 1 group + closing conv
