"""Test support: set chosen units of group-lasso penalties to chosen scales."""

from __future__ import annotations

from collections.abc import Sequence

import torch

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
