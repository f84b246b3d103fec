"""Group lasso over whole neurons and channels: closed form, training to exact zeros, and
compaction of what it removes."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import shrinkage
from shrinkage.structured import compact, neuron_groups, unit_sparsity


def test_prox_matches_the_closed_form() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    (g,) = neuron_groups(model, lam=0.3)
    W1, b1, W2 = (p.detach().clone() for p in (model[0].weight, model[0].bias, model[2].weight))
    size = 3 + 1 + 2
    assert g.entries().shape == (4, size)
    norms = torch.sqrt((W1**2).sum(1) + b1**2 + (W2**2).sum(0))
    expected_value = 0.3 * math.sqrt(size) * float(norms.sum())
    assert float(g.value().detach()) == pytest.approx(expected_value, rel=1e-6)
    step = 0.9
    scale = torch.clamp(1 - step * 0.3 * math.sqrt(size) / norms, min=0)
    g.prox_([step, step, step])
    torch.testing.assert_close(model[0].weight.detach(), W1 * scale[:, None])
    torch.testing.assert_close(model[0].bias.detach(), b1 * scale)
    torch.testing.assert_close(model[2].weight.detach(), W2 * scale[None, :])
    assert bool((scale == 0).any()) and bool((scale > 0).any())  # the step is informative


def test_element_wise_steps_agree_with_scalar_ones() -> None:
    torch.manual_seed(1)
    a = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3))
    b = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3))
    b.load_state_dict(a.state_dict())
    (ga,), (gb,) = neuron_groups(a, 0.2), neuron_groups(b, 0.2)
    ga.prox_([0.5, 0.5, 0.5])
    gb.prox_([torch.full_like(m.parameter, 0.5) for m in gb.members])
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def train(model: nn.Sequential, groups, X, y, epochs: int) -> None:
    reg = shrinkage.Regularizer(model, None, groups=groups)
    opt = shrinkage.Proximal(torch.optim.Adam(model.parameters(), lr=3e-3), reg)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(X), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    model.eval()


def test_mlp_neurons_go_to_zero_whole_and_compact_away(
    digits_xy: tuple[torch.Tensor, torch.Tensor],
) -> None:
    X, y = digits_xy
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    groups = neuron_groups(model, lam=1e-3)
    train(model, groups, X, y, epochs=15)
    removed = unit_sparsity(groups)
    assert removed["0"][0] >= 32 and removed["2"][0] >= 32, removed
    dead = model[0].weight.abs().sum(1) == 0
    assert torch.all(model[0].bias[dead] == 0) and torch.all(model[2].weight[:, dead] == 0)
    accuracy = float((model(X).argmax(1) == y).float().mean())
    assert accuracy > 0.95
    small, report = compact(model, X)
    assert report.parameters_after < 0.5 * report.parameters_before
    with torch.no_grad():
        torch.testing.assert_close(small(X), model(X), atol=1e-5, rtol=1e-5)


def test_cnn_channels_with_batchnorm_go_to_zero_and_compact_away(
    digits_xy: tuple[torch.Tensor, torch.Tensor],
) -> None:
    X, y = digits_xy
    images = X.reshape(-1, 1, 8, 8)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 10),
    )  # fmt: skip
    groups = neuron_groups(model, lam=6e-3)
    assert {m.name for m in groups[0].members} == {"0.weight", "1.weight", "1.bias", "3.weight"}
    (head,) = [m for m in groups[1].members if m.name == "8.weight"]
    assert torch.bincount(head.unit).tolist() == [16] * 32  # each channel feeds 4x4 columns
    train(model, groups, images, y, epochs=6)
    removed = unit_sparsity(groups)
    assert removed["3"][0] >= 8, removed
    small, report = compact(model, images)
    assert report.kept["3"][0] == 32 - removed["3"][0]
    with torch.no_grad():
        torch.testing.assert_close(small(images), model(images), atol=1e-5, rtol=1e-5)


def test_regularizer_and_errors() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    groups = neuron_groups(model, 0.1)
    reg = shrinkage.Regularizer(model, None, groups=groups)
    assert float(reg.penalty().detach()) == pytest.approx(float(groups[0].value().detach()))
    assert "3 units" in reg.describe()
    other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="not the model's"):
        shrinkage.Regularizer(other, None, groups=groups)
    with pytest.raises(ValueError, match="at least two"):
        neuron_groups(nn.Sequential(nn.Linear(3, 2)), 0.1)
    with pytest.raises(ValueError, match=r"nn\.Sequential"):
        neuron_groups(nn.Linear(3, 2), 0.1)
