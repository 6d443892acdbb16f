"""A2F and ELAN: padding to the windows, the published variants' counts, fused attention.

What every architecture keeps (shapes, scales, round trip, counts) is in
test_registry_contract.py."""

from __future__ import annotations

import pytest
import torch

import baselines  # noqa: F401  (registers every builder)
from baselines import elan
from srda.registry import build


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
    with torch.device("meta"):
        assert n_params(build(name, scale=4, channels=3, size="paper", variant=variant)) == count


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
