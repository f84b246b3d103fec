"""Test support: set chosen units of group-lasso penalties to chosen scales."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

import shrinkage
from shrinkage.structured import SliceGroups


def strength(groups: Sequence[SliceGroups], shrink: float) -> float:
    """The ``lam`` at which ``shrink`` (the prox steps' total) removes twice the median
    unit's norm from a unit of the first group: the units scaled up by 4 survive it."""
    g = groups[0]
    norm = float(g.norms().median())
    return 2.0 * norm / (shrink * float(g.sizes()[0].sqrt()))


def scale_odd_units(groups: Sequence[SliceGroups], factor: float) -> None:
    """Multiply every odd-numbered unit of every group by ``factor``."""
    with torch.no_grad():
        for g in groups:
            for m in g.members:
                rows = torch.nonzero((m.unit >= 0) & (m.unit % 2 == 1)).reshape(-1)
                m.parameter.index_copy_(m.dim, rows, m.parameter.index_select(m.dim, rows) * factor)


def zero_units(group: SliceGroups, units: Sequence[int]) -> None:
    """Set the slices of ``units`` of ``group`` to exactly zero."""
    with torch.no_grad():
        for m in group.members:
            rows = torch.nonzero(torch.isin(m.unit, torch.tensor(list(units)))).reshape(-1)
            m.parameter.index_fill_(m.dim, rows, 0.0)


def train_to_zero_units(
    model: nn.Module,
    x: Tensor,
    output: Callable[[nn.Module, Tensor], Tensor],
    target: Tensor,
    steps: int = 30,
    lr: float = 0.1,
) -> list[SliceGroups]:
    """Proximal SGD on ``(output(model, x) - target)^2`` with group lassos over ``model``'s
    heads and MLP neurons, every odd unit first scaled up 4x and each strength set so that
    the ``steps`` prox steps zero the other units (and leave these); returns the groups."""
    heads_found = shrinkage.head_groups(model, 1.0)
    neurons_found = shrinkage.neuron_groups(model, 1.0, example_input=x[:2])
    scale_odd_units(heads_found, 4.0)
    scale_odd_units(neurons_found, 4.0)
    groups = shrinkage.head_groups(model, strength(heads_found, steps * lr))
    groups += shrinkage.neuron_groups(
        model, strength(neurons_found, steps * lr), example_input=x[:2]
    )
    reg = shrinkage.Regularizer(model, None, groups=groups)
    opt = shrinkage.Proximal(torch.optim.SGD(model.parameters(), lr=lr), reg)
    for _ in range(steps):
        opt.zero_grad()
        ((output(model, x) - target) ** 2).mean().backward()
        opt.step()
    return groups
