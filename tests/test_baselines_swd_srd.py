"""SWD-Net (baselines/swd.py) and SRD's MRC-Net (baselines/srd.py): shapes, gradients,
parameter counts, the Haar transform, the registry."""

from __future__ import annotations

import pytest
import torch

import baselines  # noqa: F401  (registers every baseline)
from baselines import srd, swd
from srda import registry

MODULES = {"swd": swd, "srd": srd}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _first_conv(net: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seeded; one intra-op thread (these tiny models run many small ops, which two threads
    slow down badly on a shared 2-core machine); the thread count is restored after."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["swd", "srd"])
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(13, 11), (9, 15)])
def test_tiny_forward_backward_on_odd_sizes(name: str, scale: int, size: tuple[int, int]) -> None:
    net = registry.build(name, scale=scale, channels=1, size="tiny")
    lr = torch.rand(2, 1, *size)
    sr = net(lr)
    assert sr.shape == (2, 1, size[0] * scale, size[1] * scale)
    assert torch.isfinite(sr).all()
    sr.mean().backward()
    first = _first_conv(net)
    assert first.in_channels == 1
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["swd", "srd"])
def test_tiny_is_small_and_x8_works(name: str) -> None:
    net = registry.build(name, scale=4, size="tiny")
    assert 3_000 <= _count(net) <= 50_000
    with torch.no_grad():
        sr = registry.build(name, scale=8, size="tiny")(torch.rand(1, 1, 5, 7))
    assert sr.shape == (1, 1, 40, 56)


@pytest.mark.parametrize("name", ["swd", "srd"])
def test_paper_parameter_counts(name: str) -> None:
    module = MODULES[name]
    three = _count(registry.build(name, scale=4, channels=3, size="paper"))
    assert abs(three - module.PAPER_PARAMS) <= 0.01 * module.PAPER_PARAMS
    one = _count(registry.build(name, scale=4, channels=1, size="paper"))
    assert one == module.PAPER_PARAMS_1CH
    assert module.PAPER_PARAMS_SOURCE
    assert set(module.TRAIN_DEFAULTS) <= {"loss", "schedule", "lr"}


@pytest.mark.parametrize("name", ["swd", "srd"])
def test_registry_sizes_and_bad_input(name: str) -> None:
    assert name in registry.names()
    counts = [_count(registry.build(name, size=s)) for s in ("tiny", "small", "paper")]
    assert counts == sorted(counts)
    net = registry.build(name, scale=2, channels=3, size="tiny")
    assert net(torch.rand(1, 3, 6, 5)).shape == (1, 3, 12, 10)
    with pytest.raises(ValueError, match="scale"):
        registry.build(name, scale=5, size="tiny")
    with pytest.raises(TypeError, match="unknown"):
        registry.build(name, size="tiny", width=3)


def test_haar_is_orthonormal_and_inverted() -> None:
    x = torch.rand(2, 3, 8, 6, dtype=torch.float64)
    bands = swd.haar_dwt(x)
    assert bands.shape == (2, 12, 4, 3)
    assert torch.allclose(swd.haar_idwt(bands), x)
    assert torch.allclose(bands.norm(), x.norm())
    # one 2x2 cell [[1, 2], [3, 4]]: LL, HL (columns), LH (rows), HH
    cell = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert swd.haar_dwt(cell).flatten().tolist() == [5.0, 1.0, 2.0, 0.0]


def test_swd_stages_and_paper_loss() -> None:
    net = registry.build("swd", scale=3, size="tiny")
    out = net.forward_stages(torch.rand(2, 1, 7, 5))  # HR 21x15 is padded to 24x16
    assert out["sr"].shape == out["spatial"].shape == (2, 1, 21, 15)
    assert out["bands"].shape == (2, 4, 12, 8)
    batch = {"lr": torch.rand(2, 1, 12, 12), "hr": torch.rand(2, 1, 48, 48)}
    net4 = registry.build("swd", scale=4, size="tiny")
    loss, terms = swd.swd_objective()(net4, batch)
    loss.backward()
    assert set(terms) == {"l1_spatial", "l1", "l1_wavelet"}
    assert _first_conv(net4).weight.grad is not None


def test_rcf_uses_its_bypass() -> None:
    """The context term reaches the output (the released code drops it)."""
    rcf = swd.RCF(8)
    torch.nn.init.normal_(rcf.transform[-1].weight)
    backbone = torch.rand(2, 8, 5, 5)
    a, b = rcf(backbone, torch.rand(2, 8, 5, 5)), rcf(backbone, torch.rand(2, 8, 5, 5))
    assert not torch.allclose(a, b)


def test_srd_recursive_teacher_has_the_same_parameters() -> None:
    student = registry.build("srd", size="tiny")
    teacher = registry.build("srd", size="tiny", recursions=3)
    assert _count(student) == _count(teacher)
    teacher.load_state_dict(student.state_dict())
    lr = torch.rand(1, 1, 9, 7)
    with torch.no_grad():
        assert teacher(lr).shape == student(lr).shape == (1, 1, 36, 28)
    with pytest.raises(ValueError, match="recursions"):
        registry.build("srd", size="tiny", recursions=0)
