"""SWD-Net (baselines/swd.py) and SRD's MRC-Net (baselines/srd.py): our parameter counts,
the Haar transform, SWD's stages and loss, RCF, SRD's recursive teacher.

What every architecture keeps (shapes, scales, round trip, counts) is in
test_registry_contract.py."""

from __future__ import annotations

import pytest
import torch

import baselines  # noqa: F401  (registers every baseline)
from baselines import swd
from srda import registry


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Seeded; one intra-op thread (these tiny models run many small ops, which two threads
    slow down badly on a shared 2-core machine); the thread count is restored after."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(("name", "three_channels"), [("swd", 3_228_014), ("srd", 787_592)])
def test_paper_parameter_counts(name: str, three_channels: int) -> None:
    """No source reports these counts: ours, at x4, are the reference (see the modules)."""
    facts = registry.spec(name)
    assert facts.paper_params is None and "not reported" in facts.paper_params_source
    with torch.device("meta"):
        assert _count(registry.build(name, scale=4, channels=3, size="paper")) == three_channels


@pytest.mark.parametrize("name", ["swd", "srd"])
def test_scales_without_an_upsampler_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="scale 5 is not supported"):
        registry.build(name, scale=5, size="tiny")


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
    assert net4.spatial.head[0][0].weight.grad is not None


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
