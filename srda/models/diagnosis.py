"""The diagnosis network: a torchvision ResNet (ResNet50 by default) with spatial attention.

Trained from scratch (``weights=None``). For grey-level input, conv1 is replaced by a fresh
``in_channels``-input 7x7 stride-2 conv: with no pretrained weights to average there is nothing
to carry over, so a 1-channel conv is exact and cheaper than repeating the channel 3 times.

``attention_at`` places an attention module (same structure as the SR network's, its own
parameters):

* ``"stem"`` (default, the paper's text): on the stem output, after conv1-bn-relu-maxpool. The
  stem divides the size by 4, so at x4 the map has the LR size.
* ``"layer1"`` (the released code): on layer1's output (same spatial size as the stem's).
* ``None``: a plain ResNet (the SR+Dconv+Diag ablation and the downstream classifiers).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

from srda.models.attention import SpatialAttention


def _resnet10(weights: None = None, num_classes: int = 1000) -> models.ResNet:
    """ResNet-10: ResNet-18's layout with one basic block per stage (about half its FLOPs);
    the quick preset's classifier."""
    return models.ResNet(models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=num_classes)


_RESNETS = {
    10: _resnet10,
    18: models.resnet18,
    34: models.resnet34,
    50: models.resnet50,
    101: models.resnet101,
    152: models.resnet152,
}
ATTENTION_PLACES = ("stem", "layer1", None)


class DiagnosisNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 3,
        in_channels: int = 1,
        attention_at: str | None = "stem",
        depth: int = 50,
    ) -> None:
        super().__init__()
        if isinstance(attention_at, str) and attention_at.lower() in ("none", "null", ""):
            attention_at = None
        if attention_at not in ATTENTION_PLACES:
            raise ValueError(f"attention_at must be 'stem', 'layer1' or None, got {attention_at!r}")
        if depth not in _RESNETS:
            raise ValueError(f"depth must be one of {sorted(_RESNETS)}, got {depth}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.attention_at = attention_at
        self.depth = depth

        net = _RESNETS[depth](weights=None, num_classes=num_classes)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.attention = SpatialAttention(7) if attention_at is not None else None
        self.layer1, self.layer2 = net.layer1, net.layer2
        self.layer3, self.layer4 = net.layer3, net.layer4
        self.avgpool, self.fc = net.avgpool, net.fc

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return (logits (N, num_classes), attention map (N, 1, H/4, W/4) or None)."""
        att = None
        x = self.stem(x)
        if self.attention_at == "stem":
            att = self.attention(x)
            x = x * att
        x = self.layer1(x)
        if self.attention_at == "layer1":
            att = self.attention(x)
            x = x * att
        x = self.layer4(self.layer3(self.layer2(x)))
        logits = self.fc(torch.flatten(self.avgpool(x), 1))
        return logits, att

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]
