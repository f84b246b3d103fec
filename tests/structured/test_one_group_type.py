"""One group type for every model: a stack's units read layer by layer are the units its
traced graph gives, and both layouts of SliceGroups compute the same prox."""

from __future__ import annotations

import pytest
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


def test_alike_units_under_elementwise_steps_are_solved_block_by_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Element-wise steps on alike units whose slices lie in scrambled order, along dim 0
    and dim 1, with a slice in no unit, solved a block of units at a time (here a unit a
    block: ``BLOCK`` entries per member): the members end bit for bit as when every unit is
    solved at once; each unit meets the optimality condition of its prox, one is zero, and
    the free slice is kept."""
    from shrinkage import _group_layout

    gen = torch.Generator().manual_seed(0)
    shapes_units = [
        ((6, 3, 2), 0, [1, 0, 2, 1, 0, 2]),
        ((3,), 0, [0, 1, 2]),
        ((5, 3), 1, [2, 0, 1]),
        ((4, 7), 1, [0, 0, 1, -1, 1, 2, 2]),
    ]
    start = [torch.randn(shape, generator=gen, dtype=torch.float64) for shape, _, _ in shapes_units]
    steps = [0.05 + torch.rand(t.shape, generator=gen, dtype=torch.float64) for t in start]

    def solved(block: int) -> tuple[SliceGroups, list[torch.Tensor]]:
        monkeypatch.setattr(_group_layout, "BLOCK", block)
        params = [t.clone() for t in start]
        for p, (_, dim, unit) in zip(params, shapes_units, strict=True):
            p.movedim(dim, 0)[torch.tensor(unit) == 0] *= 0.01  # unit 0: small
        members = [
            SliceMember(f"m{k}", p, dim, torch.tensor(unit))
            for k, (p, (_, dim, unit)) in enumerate(zip(params, shapes_units, strict=True))
        ]
        g = SliceGroups(0.4, members, 3, "units", factor=torch.tensor([3.0, 1.0, 0.5]))
        before = g.entries()
        g.prox_(steps)
        residual = g.penalty.optimality(g.entries(), (g.entries() - before) / g.entries(steps))
        assert residual.item() <= 1e-9
        return g, params

    at_once, whole = solved(1 << 20)
    _, blocked = solved(6)  # 26 entries a unit, 4 members: a unit a block
    assert all(torch.equal(a, b) for a, b in zip(whole, blocked, strict=True))
    norms = at_once.norms()
    assert norms[0] == 0 and bool((norms[1:] > 0).all())
    assert torch.equal(blocked[3][:, 3], start[3][:, 3])  # the slice in no unit
    assert not torch.equal(blocked[0], start[0])
