"""A small ResNet for image rows: the ``cnn`` model of the experiments.

The network reads the rows of a tabular dataset whose ``p`` features are the pixels of one
square grey image (``digits``: 64 features, 8x8), so splits, scaling and scores stay those of
the tabular data:

    x [n, p] -> [n, 1, s, s] -> conv3x3(w0) -> BN -> ReLU -> block(w0) -> block(w1, stride 2)
    -> ... -> global average -> Linear(w_last, n_out)

where ``s = sqrt(p)`` and each block is a basic residual block (two conv3x3 -> BN, a ReLU
between and after, the shortcut a conv1x1 -> BN where the width or stride changes). Its
channels couple across the residual adds, which :func:`shrinkage.neuron_groups` traces.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["SmallResNet", "build_resnet", "image_side"]


def image_side(n_features: int) -> int | None:
    """``s`` when ``n_features == s * s``; else ``None``."""
    side = math.isqrt(n_features)
    return side if side * side == n_features and side > 0 else None


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """See the module docstring; ``widths``: one residual block per width, the first at
    stride 1 and each next at stride 2."""

    def __init__(self, n_features: int, widths: tuple[int, ...], n_out: int) -> None:
        super().__init__()
        side = image_side(n_features)
        if side is None:
            raise ValueError(
                f"a CNN needs square images: {n_features} features are not s * s pixels"
            )
        self.n_features, self.side = n_features, side
        self.stem = nn.Conv2d(1, widths[0], 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        blocks, width = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(_Block(width, w, 1 if i == 0 else 2))
            width = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, n_out)

    def forward(self, x: Tensor) -> Tensor:
        """``x [n, p]`` (or ``[n, 1, s, s]``) -> ``[n, n_out]``."""
        x = x.reshape(x.shape[0], 1, self.side, self.side)
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def example_input(self) -> Tensor:
        """One zero row ``[1, p]``: what :func:`shrinkage.neuron_groups` traces."""
        return torch.zeros(1, self.n_features)


def build_resnet(
    n_features: int,
    widths: tuple[int, ...],
    n_out: int,
    *,
    generator: torch.Generator | None = None,
) -> SmallResNet:
    """A :class:`SmallResNet`, its convolutions and head drawn as torch initialises them
    (Kaiming's uniform rule) from ``generator`` when one is given."""
    model = SmallResNet(n_features, widths, n_out)
    if generator is not None:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    bound = 1 / math.sqrt(m.weight[0].numel())
                    m.weight.uniform_(-bound, bound, generator=generator)
                    if m.bias is not None:
                        m.bias.uniform_(-bound, bound, generator=generator)
    return model
