"""sparsity(): exact zero counts and norms, per parameter and in total."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from shrinkage import sparsity


def test_counts_and_norms() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 3.0, 0.0], [4.0, 0.0, 0.0]]))
        model[2].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    report = sparsity(model)
    assert [r.name for r in report.layers] == ["0.weight", "2.weight"]
    first = report.layers[0]
    assert (first.size, first.zeros, first.nonzeros) == (6, 4, 2)
    assert first.fraction_zero == pytest.approx(4 / 6)
    assert (first.l1_norm, first.l2_norm) == (pytest.approx(7.0), pytest.approx(5.0))
    assert (report.size, report.zeros, report.nonzeros) == (10, 6, 4)
    assert report.fraction_zero == pytest.approx(0.6)
    assert report.l2_norm == pytest.approx((25 + 2) ** 0.5)
    text = str(report)
    assert "0.weight" in text and "66.7%" in text and "total" in text
    assert report.to_dict()["zeros"] == 6


def test_all_parameters_include_biases_and_norm_layers() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    nn.init.zeros_(model[0].bias)
    report = sparsity(model, which="all")
    assert [r.name for r in report.layers] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert report.layers[1].zeros == 2
