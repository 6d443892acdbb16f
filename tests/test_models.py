"""The SRDA model: shapes, parameter counts, gradients, ablations, bf16 and the registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import DeformConv2d

from srda.models import SIZES, VARIANTS
from srda.models.attention import SpatialAttention
from srda.models.diagnosis import DiagnosisNet
from srda.models.joint import JointSRDA, align_maps, attention_loss, build_joint, srda_loss
from srda.models.srnet import DeformableHead, SRNet, build_srnet

# Exact counts documented in docs/srda_model.md (x4, 1 channel, paper size; 3 classes).
PAPER_PARAMS = {
    "srda": 43_080_983,
    "srda_base": 43_080_705,
    "srda_dconv": 43_080_885,
    "srda_dconv_diag": 43_080_885,
}
RESNET50_PARAMS = {"stem": 23_508_005, "layer1": 23_508_005, None: 23_507_907}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _types(module: torch.nn.Module) -> set[type]:
    return {type(m) for m in module.modules()}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("variant", ["srda", "srda_base"])
@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_sr_output_shape_on_odd_sizes(variant: str, scale: int) -> None:
    net = build_srnet(variant, scale=scale, channels=1, size="tiny")
    lr = torch.rand(2, 1, 13, 11)
    with torch.no_grad():
        sr, att = net.forward_with_attention(lr)
        assert net(lr).shape == sr.shape
    assert sr.shape == (2, 1, 13 * scale, 11 * scale)
    if variant == "srda":
        assert att.shape == (2, 1, 13, 11)
        assert float(att.min()) > 0 and float(att.max()) < 1
    else:
        assert att is None


def test_three_channels_and_unsupported_scale() -> None:
    net = SRNet(scale=4, channels=3, features=8, blocks=1)
    assert net(torch.rand(1, 3, 5, 7)).shape == (1, 3, 20, 28)
    with pytest.raises(ValueError, match="scale"):
        SRNet(scale=5, features=8, blocks=1)


@pytest.mark.parametrize("variant", sorted(PAPER_PARAMS))
def test_paper_parameter_count(variant: str) -> None:
    with torch.device("meta"):
        net = build_srnet(variant, scale=4, channels=1, size="paper")
    assert (net.features, net.blocks) == (256, 32)
    assert _count(net) == PAPER_PARAMS[variant]


@pytest.mark.parametrize("attention_at", ["stem", "layer1", None])
def test_resnet50_parameter_count(attention_at: str | None) -> None:
    with torch.device("meta"):
        net = DiagnosisNet(num_classes=3, in_channels=1, attention_at=attention_at, depth=50)
    assert _count(net) == RESNET50_PARAMS[attention_at]
    assert net.stem[0].in_channels == 1


def test_sizes_presets() -> None:
    assert SIZES["tiny"] == {"features": 16, "blocks": 2}
    assert SIZES["small"] == {"features": 64, "blocks": 8}
    net = build_srnet("srda", size="tiny", features=8, blocks=3)  # overrides win
    assert (net.features, net.blocks) == (8, 3)
    with pytest.raises(ValueError, match="size"):
        build_srnet("srda", size="huge")
    with pytest.raises(KeyError, match="srda_base"):
        build_srnet("edsr")


def test_diagnosis_loss_reaches_sr_network() -> None:
    model = build_joint(
        "srda_dconv_diag", scale=4, channels=1, size="tiny", num_classes=3, diag_depth=18
    )
    out = model(torch.rand(2, 1, 12, 12))
    F.cross_entropy(out["logits"], torch.tensor([0, 2])).backward()
    body_grad = model.sr_net.body[0].body[0].weight.grad
    assert body_grad is not None and float(body_grad.abs().sum()) > 0
    assert float(model.sr_net.head.conv.weight.grad.abs().sum()) > 0


@pytest.mark.parametrize("attention_at", ["stem", "layer1"])
def test_attention_loss_reaches_both_attention_modules(attention_at: str) -> None:
    model = build_joint(
        "srda",
        scale=4,
        channels=1,
        size="tiny",
        num_classes=3,
        diag_depth=18,
        attention_at=attention_at,
    )
    out = model(torch.rand(2, 1, 12, 12))
    assert out["sr_attention"].shape == out["diag_attention"].shape == (2, 1, 12, 12)
    attention_loss(out["sr_attention"], out["diag_attention"]).backward()
    for att in (model.sr_net.attention, model.diag_net.attention):
        assert att.conv.weight.grad is not None
        assert float(att.conv.weight.grad.abs().sum()) > 0


def test_attention_loss_mean_and_sum() -> None:
    a, b = torch.rand(3, 1, 5, 4), torch.rand(3, 1, 5, 4)
    mean = attention_loss(a, b, "mean")
    total = attention_loss(a, b, "sum")
    torch.testing.assert_close(mean, ((a - b) ** 2).mean())
    torch.testing.assert_close(total, mean * 20)  # summed over 5x4 pixels, averaged over batch
    with pytest.raises(ValueError):
        attention_loss(a, b, "max")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_ablations_lack_their_parts(variant: str) -> None:
    parts = VARIANTS[variant]
    model = build_joint(variant, scale=4, channels=1, size="tiny", num_classes=3, diag_depth=18)
    sr_types = _types(model.sr_net)
    assert (DeformConv2d in sr_types) == parts["deformable"]
    assert (SpatialAttention in sr_types) == parts["attention"]
    assert (model.diag_net is not None) == parts["diagnosis"]
    if model.diag_net is not None:
        assert (SpatialAttention in _types(model.diag_net)) == parts["attention"]
    keys = "".join(model.state_dict())
    assert ("attention" in keys) == parts["attention"]
    assert ("offset" in keys) == parts["deformable"]

    hr, labels = torch.rand(2, 1, 32, 32), torch.tensor([1, 0])
    out = model(torch.rand(2, 1, 8, 8))
    total, terms = srda_loss(out, hr, labels)
    expected = {"l1"} | ({"ce"} if parts["diagnosis"] else set())
    expected |= {"att"} if parts["attention"] else set()
    assert set(terms) == expected
    want = terms["l1"] + 0.0006 * terms.get("ce", 0) + 0.0001 * terms.get("att", 0)
    torch.testing.assert_close(total, want)


def test_srda_base_has_plain_head() -> None:
    net = build_srnet("srda_base", size="tiny")
    assert type(net.head) is torch.nn.Conv2d
    assert net.attention is None


def test_zero_offsets_make_deformable_head_a_plain_conv() -> None:
    head = DeformableHead(1, 16)
    assert not head.offset.weight.any() and not head.offset.bias.any()
    x = torch.rand(2, 1, 13, 11)
    plain = F.conv2d(x, head.conv.weight, head.conv.bias, padding=1)
    torch.testing.assert_close(head(x), plain, rtol=1e-5, atol=1e-5)


def test_bf16_autocast_forward_backward_keeps_deform_conv_fp32(monkeypatch) -> None:
    import srda.models.srnet as srnet

    model = build_joint("srda", scale=4, channels=1, size="tiny", num_classes=3, diag_depth=18)
    seen: list[tuple[torch.dtype, ...]] = []
    real = srnet.deform_conv2d

    def spy(x, offset, weight, *args, **kwargs):
        out = real(x, offset, weight, *args, **kwargs)
        seen.append((x.dtype, offset.dtype, weight.dtype, out.dtype))
        return out

    monkeypatch.setattr(srnet, "deform_conv2d", spy)
    lr, hr = torch.rand(2, 1, 12, 12), torch.rand(2, 1, 48, 48)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = model(lr)
        assert model.sr_net.head(lr).dtype == torch.bfloat16  # ambient dtype out
    assert seen[0] == (torch.float32,) * 4
    assert out["sr"].dtype == torch.bfloat16
    total, _ = srda_loss(out, hr, torch.tensor([0, 1]))
    assert total.dtype == torch.float32
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert float(model.sr_net.head.offset.weight.grad.abs().sum()) > 0


def test_deformable_head_in_a_module_cast_to_bf16_or_double() -> None:
    net = build_srnet("srda", scale=2, size="tiny", blocks=1)
    with torch.no_grad():
        assert net.bfloat16()(torch.rand(1, 1, 6, 5, dtype=torch.bfloat16)).dtype == torch.bfloat16
        assert net.double()(torch.rand(1, 1, 6, 5, dtype=torch.float64)).dtype == torch.float64


def test_registry_builds_all_variants() -> None:
    import baselines  # noqa: F401  (registers the builders)
    from srda import registry

    for name, parts in VARIANTS.items():
        net = registry.build(name, scale=2, channels=1, size="tiny", blocks=1)
        assert isinstance(net, SRNet) and net.blocks == 1
        assert net.deformable == parts["deformable"]
        assert net.has_attention == parts["attention"]
        assert net(torch.rand(1, 1, 7, 9)).shape == (1, 1, 14, 18)


def test_diag_map_at_x2_aligned_to_lr_size() -> None:
    model = build_joint("srda", scale=2, channels=1, size="tiny", num_classes=3, diag_depth=18)
    out = model(torch.rand(2, 1, 13, 11))
    assert out["sr"].shape == (2, 1, 26, 22)
    assert out["diag_attention"].shape == (2, 1, 7, 6)  # SR size / 4, rounded up
    sr_map, diag_map = align_maps(out["sr_attention"], out["diag_attention"])
    assert sr_map is out["sr_attention"]
    assert diag_map.shape == (2, 1, 13, 11)
    total, terms = srda_loss(
        out, torch.rand(2, 1, 26, 22), torch.tensor([0, 1]), attention_loss="sum"
    )
    assert torch.isfinite(total) and "att" in terms
    same = torch.rand(1, 1, 4, 4)
    assert align_maps(same, same)[1] is same  # x4: nothing to resize


def test_loss_requires_labels_with_diagnosis_and_matching_shapes() -> None:
    model = JointSRDA(
        SRNet(scale=4, features=8, blocks=1), DiagnosisNet(3, 1, attention_at="stem", depth=18)
    )
    out = model(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="labels"):
        srda_loss(out, torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="shape"):
        srda_loss(out, torch.rand(2, 1, 30, 32), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="attention_at"):
        DiagnosisNet(3, 1, attention_at="layer2")
    assert DiagnosisNet(3, 1, attention_at="none", depth=18).attention is None
