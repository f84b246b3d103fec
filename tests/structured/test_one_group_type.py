"""One group type for every model: a stack's units read layer by layer are the units its
traced graph gives, and both layouts of SliceGroups compute the same prox."""

from __future__ import annotations

import torch
from torch import nn

from shrinkage.neural.cnn import SmallResNet
from shrinkage.structured import SliceGroups, SliceMember, neuron_groups


def cnn_stack() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(5 * 4 * 4, 7), nn.ReLU(), nn.Linear(7, 3),
    )  # fmt: skip


def layout(groups: list[SliceGroups]) -> dict[str, dict[str, list[int]]]:
    return {g.label: {m.name: m.unit.tolist() for m in g.members} for g in groups}


def test_a_stack_read_layer_by_layer_has_the_units_of_its_trace() -> None:
    model = cnn_stack()
    walked = neuron_groups(model, 0.1)
    traced = neuron_groups(model, 0.1, example_input=torch.randn(2, 1, 8, 8))
    assert layout(walked) == layout(traced)
    assert [g.label for g in walked] == ["0", "3", "8"]
    for a, b in zip(walked, traced, strict=True):
        torch.testing.assert_close(a.value(), b.value())


def test_every_model_gets_slice_groups() -> None:
    mlp = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    resnet = SmallResNet(64, (4, 6), 3)
    found = [
        *neuron_groups(mlp, 0.1),
        *neuron_groups(cnn_stack(), 0.1),
        *neuron_groups(resnet, 0.1, example_input=resnet.example_input()),
    ]
    assert found and all(type(g) is SliceGroups for g in found)


def test_row_and_entry_layouts_give_the_same_prox() -> None:
    """Units in scrambled slice order (rows) against the same units with one extra slice
    outside any unit and one unit holding two slices (one id per entry): each unit's
    entries are scaled alike, which the closed form of the scalar-step prox gives."""
    torch.manual_seed(0)
    w = torch.randn(6, 4)
    for unit in (torch.tensor([2, 0, 1, 3, 5, 4]), torch.tensor([2, 0, 1, -1, 1, 0])):
        units = int(unit.max()) + 1
        p = w.clone()
        g = SliceGroups(0.5, [SliceMember("w", p, 0, unit)], units, "w")
        g.prox_([0.3])
        for u in range(units):
            rows = unit == u
            norm = w[rows].norm()
            tau = 0.3 * 0.5 * rows.sum().mul(4).sqrt()
            scale = torch.clamp(1 - tau / norm, min=0)
            torch.testing.assert_close(p[rows], w[rows] * scale)
        torch.testing.assert_close(p[unit < 0], w[unit < 0])
