"""Group lasso over units made of arbitrary slices of several tensors (any network's units).

Unit ``u`` holds, for each member ``(tensor, dim)``, the slices ``k`` along ``dim`` whose index
entry ``unit[k] == u``. The penalty and its prox are those of :class:`~shrinkage.GroupLasso`
on the vector of all those entries:

    P = lam * sum_u f_u * sqrt(size_u) * ||g_u||_2,

(``f_u`` an optional per-unit factor, default 1) and the prox scales each unit's entries by
``max(1 - step * lam * f_u * sqrt(size_u) / ||g_u||, 0)``
(element-wise steps: the diagonal-metric prox), so a unit goes to zero as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._kernels import Step
from ..penalties import GroupLasso, MultiTensorPenalty
from .trace import Unit

__all__ = ["SliceGroups", "SliceMember", "UnitPenalty", "slice_groups", "step_tensors"]


def step_tensors(parameters: Sequence[Tensor], steps: Sequence[Step]) -> float | list[Tensor]:
    """One float when every step is the same float; else one step tensor per parameter,
    shaped like it (a float step filled in)."""
    if all(isinstance(s, int | float) for s in steps) and len(set(steps)) == 1:
        return float(steps[0])
    return [
        s if isinstance(s, Tensor) else torch.full_like(p, float(s))
        for p, s in zip(parameters, steps, strict=True)
    ]


@dataclass(frozen=True)
class SliceMember:
    """Tensor ``parameter`` (named ``name`` in the model): slice ``k`` along ``dim`` belongs
    to unit ``unit[k]`` (``-1``: to no unit of this penalty)."""

    name: str
    parameter: Tensor
    dim: int
    unit: Tensor


class UnitPenalty(MultiTensorPenalty):
    """What every group lasso over ``units`` units of ``members`` (each with a ``name`` and a
    ``parameter``) shares: its strength, its parameters by name, its summary row."""

    members: tuple[Any, ...]
    units: int
    label: str
    penalty: GroupLasso

    @property
    def lam(self) -> float:
        return float(self.penalty.lam)

    @property
    def named_parameters(self) -> tuple[tuple[str, Tensor], ...]:
        return tuple((m.name, m.parameter) for m in self.members)

    def summary(self) -> tuple[str, str, str]:
        return (self.label, f"group lasso per unit (lam={self.lam:g})", f"{self.units} units")


class SliceGroups(UnitPenalty):
    """``units`` groups, each made of slices of several members (see the module docstring)."""

    def __init__(
        self,
        lam: float,
        members: Sequence[SliceMember],
        units: int,
        label: str,
        factor: Tensor | None = None,
    ) -> None:
        self.members = tuple(members)
        self.units = int(units)
        self.label = label
        self._rows: list[Tensor] = []
        ids = []
        for m in self.members:
            if m.unit.shape != (m.parameter.shape[m.dim],):
                raise ValueError(
                    f"{m.name}: unit index of shape {tuple(m.unit.shape)} for "
                    f"{m.parameter.shape[m.dim]} slices along dim {m.dim}"
                )
            rows = torch.nonzero(m.unit >= 0).reshape(-1)
            per_slice = m.parameter.numel() // max(m.parameter.shape[m.dim], 1)
            self._rows.append(rows)
            ids.append(m.unit[rows].repeat_interleave(per_slice))
        self._ids = torch.cat(ids)
        if factor is not None and tuple(factor.shape) != (self.units,):
            raise ValueError(f"{label}: factor of shape {tuple(factor.shape)} for {units} units")
        self.penalty = GroupLasso(lam, groups=self._ids, factor=factor)

    def weights(self) -> Tensor:
        """``[units]``: ``f_u * sqrt(size_u)``, each unit's weight in the penalty."""
        root = self.sizes().double().sqrt()
        factor = self.penalty.factor
        return root if factor is None else root * factor.double().reshape(-1)

    def vector(self, tensors: Sequence[Tensor] | None = None) -> Tensor:
        """Every unit's entries, one after the other by member (``tensors``: one per
        member, shaped like it; default the members themselves)."""
        ts = tensors if tensors is not None else [m.parameter for m in self.members]
        parts = [
            t.movedim(m.dim, 0).index_select(0, rows).reshape(-1)
            for m, t, rows in zip(self.members, ts, self._rows, strict=True)
        ]
        return torch.cat(parts)

    def value(self) -> Tensor:
        """``lam * sum_u f_u * sqrt(size_u) * ||g_u||`` (differentiable)."""
        return self.penalty.value(self.vector())

    def sizes(self) -> Tensor:
        """``[units]``: how many entries each unit's group holds."""
        return torch.bincount(self._ids, minlength=self.units)

    def lambda_max(self, grads: Sequence[Tensor]) -> float:
        """``max_u ||grad_u|| / (f_u * sqrt(size_u))``: the smallest ``lam`` at which every
        zero unit meets its optimality condition ``||grad_u|| <= lam * f_u * sqrt(size_u)``
        (``grads``: one per member, shaped like it)."""
        return self.penalty.lambda_max(self.vector(list(grads)))

    def norms(self) -> Tensor:
        """``[units]``: ``||g_u||``; zero for a unit that can be removed."""
        v = self.vector().detach()
        return torch.zeros(self.units, dtype=v.dtype).index_add(0, self._ids, v * v).sqrt()

    @torch.no_grad()
    def prox_(self, steps: Sequence[Step]) -> None:
        """The proximal step in place; ``steps[k]`` is member ``k``'s step (a float, or a
        tensor shaped like its parameter)."""
        v = self.vector([m.parameter.detach() for m in self.members])
        step = step_tensors([m.parameter for m in self.members], steps)
        self.penalty.prox_(v, step if isinstance(step, float) else self.vector(step))
        offset = 0
        for m, rows in zip(self.members, self._rows, strict=True):
            moved = m.parameter.movedim(m.dim, 0)
            size = rows.numel() * (moved[0].numel() if moved.shape[0] else 0)
            moved.index_copy_(0, rows, v[offset : offset + size].reshape(-1, *moved.shape[1:]))
            offset += size

    def __repr__(self) -> str:
        return f"SliceGroups({self.label}, {self.units} units, lam={self.lam:g})"


def slice_groups(
    model: nn.Module, units: Sequence[Unit], lam: float, factor: Tensor | None = None
) -> list[SliceGroups]:
    """One :class:`SliceGroups` per set of units that hold the same tensors along the same
    dims (a layer's channels, say), over ``model``'s own parameters (buffers are left out).
    ``factor``: ``[len(units)]``, each unit's ``f_u`` (default 1)."""
    params = dict(model.named_parameters())
    families: dict[tuple[tuple[str, int], ...], list[Unit]] = {}
    factors: dict[tuple[tuple[str, int], ...], list[float]] = {}
    for u, unit in enumerate(units):
        key = tuple(sorted(k for k in unit.members if k[0] in params))
        if key:
            families.setdefault(key, []).append(unit)
            factors.setdefault(key, []).append(1.0 if factor is None else float(factor[u]))
    out = []
    for key, family in families.items():
        members = []
        for name, dim in key:
            p = params[name]
            index = torch.full((p.shape[dim],), -1, dtype=torch.long)
            for u, unit in enumerate(family):
                index[unit.members[(name, dim)]] = u
            members.append(SliceMember(name, p, dim, index))
        label = family[0].label if len(family) > 1 else f"{family[0].label} (1 unit)"
        f = None if factor is None else torch.tensor(factors[key], dtype=torch.float64)
        out.append(SliceGroups(lam, members, len(family), label, f))
    return out
