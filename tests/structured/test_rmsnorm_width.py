"""The algebra behind removing residual channels of an RMSNorm model, checked before any code
relies on it: with k all-zero channels of d, ``mean(x^2)`` over d is ``(d - k) / d`` times the
mean over the other d - k, so an RMSNorm over the d - k channels with its weight scaled by
``sqrt(d / (d - k))`` and its eps by ``d / (d - k)`` gives the same outputs. A LayerNorm's
mean term forbids the same with LayerNorm."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn


@pytest.mark.parametrize(("d", "k"), [(8, 1), (16, 5), (64, 63)])
def test_rmsnorm_without_zero_channels_is_a_rescaled_rmsnorm(d: int, k: int) -> None:
    torch.manual_seed(d + k)
    eps = 1e-3
    full = nn.RMSNorm(d, eps=eps).double()
    with torch.no_grad():
        full.weight.uniform_(0.5, 1.5)
    keep = torch.randperm(d)[: d - k].sort().values
    x = torch.randn(4, 3, d, dtype=torch.float64)
    x[..., [c for c in range(d) if c not in keep.tolist()]] = 0.0
    small = nn.RMSNorm(d - k, eps=eps * d / (d - k)).double()
    with torch.no_grad():
        small.weight.copy_(full.weight[keep] * math.sqrt(d / (d - k)))
    expected = full(x)[..., keep]
    torch.testing.assert_close(small(x[..., keep]), expected, rtol=1e-12, atol=1e-12)


def test_layernorm_has_no_such_rescaling() -> None:
    """The removed zeros move a LayerNorm's mean: no scale of the weight undoes that."""
    torch.manual_seed(0)
    d, keep = 8, torch.arange(6)
    x = torch.randn(5, d, dtype=torch.float64)
    x[:, 6:] = 0.0
    full = nn.LayerNorm(d, elementwise_affine=False).double()(x)[:, keep]
    small = nn.LayerNorm(6, elementwise_affine=False).double()(x[:, keep])
    ratio = full / small
    assert float((ratio - ratio[:, :1]).abs().max()) > 1e-3  # not one scale per row
