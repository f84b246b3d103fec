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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .. import _group_layout
from .._group_layout import GroupLayout, group_prox_diagonal
from .._kernels import Step
from ..penalties import GroupLasso, MultiTensorPenalty
from ..penalties.base import check_lam
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
    """One tensor's part in a :class:`SliceGroups`.

    Attributes:
        name: the tensor's name in the model.
        parameter: the tensor.
        dim: the dim along which it is sliced.
        unit: ``[parameter.shape[dim]]``: slice ``k`` belongs to unit ``unit[k]`` (``-1``: to
            no unit of this penalty).
    """

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
        """The strength ``lam``; setting it changes the penalty in place (a budget raises
        it during training)."""
        return float(self.penalty.lam)

    @lam.setter
    def lam(self, value: float) -> None:
        self.penalty.lam = check_lam(value)

    @property
    def named_parameters(self) -> tuple[tuple[str, Tensor], ...]:
        return tuple((m.name, m.parameter) for m in self.members)

    def summary(self) -> tuple[str, str, str]:
        return (self.label, f"group lasso per unit (lam={self.lam:g})", f"{self.units} units")


class SliceGroups(UnitPenalty):
    """``units`` groups, each made of slices of several members (see the module docstring).

    When every unit holds as many slices of each member as every other unit (a layer's
    neurons or channels), the entries are laid out as a ``[units, size]`` matrix and the prox
    runs on :class:`~shrinkage.GroupLasso`'s row layout (sums along rows); otherwise as one
    vector with a group id per entry.

    Args:
        lam: the strength ``lam``.
        members: the tensors and which of their slices belong to which unit.
        units: how many units.
        label: the name in summaries (a layer's module name).
        factor: ``[units]``, each unit's ``f_u`` (default 1).

    Raises:
        ValueError: a member's unit index or ``factor`` has the wrong shape.
    """

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
        self._rows: list[Tensor | None] = []  # a member's slices by unit; None: all, in order
        counts, indexed = [], []
        self._sizes = torch.zeros(self.units, dtype=torch.long)  # entries per unit
        for m in self.members:
            if m.unit.shape != (m.parameter.shape[m.dim],):
                raise ValueError(
                    f"{m.name}: unit index of shape {tuple(m.unit.shape)} for "
                    f"{m.parameter.shape[m.dim]} slices along dim {m.dim}"
                )
            rows = torch.nonzero(m.unit >= 0).reshape(-1)
            rows = rows[torch.sort(m.unit[rows], stable=True).indices]
            in_order = rows.numel() == m.unit.numel() and bool(
                (rows == torch.arange(rows.numel())).all()
            )
            self._rows.append(None if in_order else rows)
            counts.append(torch.bincount(m.unit[rows], minlength=self.units))
            per_slice = m.parameter.numel() // max(m.parameter.shape[m.dim], 1)
            self._sizes += counts[-1] * per_slice
            indexed.append((m.unit[rows], per_slice))
        self._alike = self.units > 0 and all(bool((c == c[0]).all()) for c in counts)
        self._per_unit = [int(c[0]) for c in counts] if self._alike else []  # slices a unit
        # one group id per entry, only for the vector layout (the rows need none)
        self._ids = None if self._alike else torch.cat([u.repeat_interleave(s) for u, s in indexed])
        if factor is not None and tuple(factor.shape) != (self.units,):
            raise ValueError(f"{label}: factor of shape {tuple(factor.shape)} for {units} units")
        layout: str | Tensor = "outputs" if self._ids is None else self._ids
        self.penalty = GroupLasso(lam, groups=layout, factor=factor)

    def weights(self) -> Tensor:
        """``[units]``: ``f_u * sqrt(size_u)``, each unit's weight in the penalty."""
        root = self.sizes().double().sqrt()
        factor = self.penalty.factor
        return root if factor is None else root * factor.double().reshape(-1)

    def _where(self, k: int, units: slice | None) -> slice | Tensor:
        """Where member ``k``'s slices of all units (``units=None``), or of the alike units
        ``units``, lie along its dim: a range, or their indices in unit order."""
        rows = self._rows[k]
        if units is None:
            every = self.members[k].parameter.shape[self.members[k].dim]
            return slice(0, every) if rows is None else rows
        per = self._per_unit[k]
        span = slice(units.start * per, units.stop * per)
        return span if rows is None else rows[span]

    def _taken(self, k: int, t: Tensor, units: slice | None = None) -> Tensor:
        """Member ``k``'s slices of ``t`` that belong to units (all, or the alike units
        ``units``), ``[slices, ...]`` by unit."""
        moved = t.movedim(self.members[k].dim, 0)
        where = self._where(k, units)
        return moved[where] if isinstance(where, slice) else moved.index_select(0, where)

    def entries(
        self, tensors: Sequence[Tensor] | None = None, units: slice | None = None
    ) -> Tensor:
        """Every unit's entries, gathered from the members.

        Args:
            tensors: one per member, shaped like it; default the members themselves.
            units: alike units only: the consecutive units ``units.start`` to
                ``units.stop`` (default every unit).

        Returns:
            ``[units, size]`` when the units are alike, else one flat vector.

        Example:
            >>> import torch
            >>> w = torch.arange(6.0).reshape(3, 2)
            >>> g = SliceGroups(1.0, [SliceMember("w", w, 0, torch.tensor([0, 1, 1]))], 2, "w")
            >>> g.entries()
            tensor([0., 1., 2., 3., 4., 5.])
        """
        ts = tensors if tensors is not None else [m.parameter for m in self.members]
        if self._alike:
            count = self.units if units is None else units.stop - units.start
            parts = [self._taken(k, t, units).reshape(count, -1) for k, t in enumerate(ts)]
            return torch.cat(parts, 1)
        return torch.cat([self._taken(k, t).reshape(-1) for k, t in enumerate(ts)])

    def value(self) -> Tensor:
        """``lam * sum_u f_u * sqrt(size_u) * ||g_u||`` (differentiable)."""
        return self.penalty.value(self.entries())

    def sizes(self) -> Tensor:
        """``[units]``: how many entries each unit's group holds."""
        return self._sizes.clone()

    def lambda_max(self, grads: Sequence[Tensor]) -> float:
        """The smallest strength at which every unit is zero at the optimum.

        Every zero unit then meets ``||grad_u|| <= lam * f_u * sqrt(size_u)``.

        Args:
            grads: the loss's gradient at zero, one per member, shaped like it.

        Returns:
            ``max_u ||grad_u|| / (f_u * sqrt(size_u))``.
        """
        return self.penalty.lambda_max(self.entries(list(grads)))

    def norms(self) -> Tensor:
        """``[units]``: ``||g_u||``; zero for a unit that can be removed."""
        if self._ids is None:
            return self._squares().sqrt()
        e = self.entries().detach()
        return torch.zeros(self.units, dtype=e.dtype).index_add(0, self._ids, e * e).sqrt()

    @torch.no_grad()
    def _squares(self) -> Tensor:
        """``[units]``: ``||g_u||^2`` of alike units, summed member by member (no copy of
        all the entries at once)."""
        total = None
        for k, m in enumerate(self.members):
            part = self._taken(k, m.parameter.detach()).reshape(self.units, -1)
            squares = (part * part).sum(1)
            total = squares if total is None else total + squares
        assert total is not None  # a SliceGroups has members
        return total

    @torch.no_grad()
    def prox_(self, steps: Sequence[Step]) -> None:
        """The proximal step of the group lasso on every unit, in place.

        Alike units under element-wise steps are gathered, solved and written back a block of
        units at a time, so that no copy of all the entries is made.

        Args:
            steps: ``steps[k]`` member ``k``'s step, a float or a tensor shaped like its
                parameter.
        """
        step = step_tensors([m.parameter for m in self.members], steps)
        if isinstance(step, float) and self._alike:
            self._scale_(step)
        elif isinstance(step, float) or not self._alike:
            e = self.entries([m.parameter.detach() for m in self.members])
            self.penalty.prox_(e, step if isinstance(step, float) else self.entries(step))
            self._write(e)
        elif self.penalty.lam != 0:
            self._blocks_(step)

    def _blocks_(self, steps: list[Tensor]) -> None:
        """The prox of alike units under element-wise ``steps``, block by block: a block
        holds :data:`~shrinkage._group_layout.BLOCK` entries per member (its gathers and
        writes, one per member, then weigh little against its prox), which the prox solves
        in cache-sized blocks of its own."""
        params = [m.parameter.detach() for m in self.members]
        size = int(self._sizes[0]) if self.units else 0
        like = params[0]
        whole = GroupLayout(torch.Size([self.units, size]), "outputs", like.device)
        tau = self.penalty.thresholds(whole.sizes, like)
        for units, layout in whole.blocks(_group_layout.BLOCK * len(self.members)):
            e = self.entries(params, units)
            x = group_prox_diagonal(e, self.entries(steps, units), tau[units], layout)
            self._write(x, units)

    def _scale_(self, step: float) -> None:
        """The prox with one scalar step on alike units: each unit scaled by
        :meth:`GroupLasso.scales <shrinkage.GroupLasso.scales>`, member by member."""
        if self.penalty.lam == 0:
            return
        scale = self.penalty.scales(self._squares(), self._sizes, step)
        for m, rows, per in zip(self.members, self._rows, self._per_unit, strict=True):
            moved = m.parameter.detach().movedim(m.dim, 0)
            per_slice = scale.to(m.parameter.dtype).repeat_interleave(per)
            shape = (-1, *([1] * (moved.dim() - 1)))
            if rows is None:
                moved.mul_(per_slice.view(shape))
            else:
                moved.index_copy_(0, rows, moved.index_select(0, rows) * per_slice.view(shape))

    def _write(self, e: Tensor, units: slice | None = None) -> None:
        """The entries ``e`` (laid out as :meth:`entries` gives them, for the same
        ``units``) back into the members."""
        offset = 0
        for k, m in enumerate(self.members):
            moved = m.parameter.movedim(m.dim, 0)
            where = self._where(k, units)
            slices = where.stop - where.start if isinstance(where, slice) else where.numel()
            size = slices * math.prod(moved.shape[1:])
            if self._alike:
                size //= max(e.shape[0], 1)
                part = e[:, offset : offset + size]
            else:
                part = e[offset : offset + size]
            values = part.reshape(-1, *moved.shape[1:])
            if isinstance(where, slice):
                moved[where] = values
            else:
                moved.index_copy_(0, where, values)
            offset += size

    def __repr__(self) -> str:
        return f"SliceGroups({self.label}, {self.units} units, lam={self.lam:g})"


def slice_groups(
    model: nn.Module, units: Sequence[Unit], lam: float, factor: Tensor | None = None
) -> list[SliceGroups]:
    """One :class:`SliceGroups` per set of units that hold the same tensors along the same
    dims (a layer's channels, say), over ``model``'s own parameters (buffers are left out).

    Units that hold one tensor along two dims (a residual around a square layer: its rows
    and its columns) get a second family for the second dim, so that no entry is in two
    groups of one family; a unit is removed when both of its groups are zero.

    Args:
        model: the model whose parameters the units name.
        units: from :func:`~shrinkage.structured.trace.trace` or
            :func:`~shrinkage.structured.groups.stack_units`.
        lam: the strength ``lam``.
        factor: ``[len(units)]``, each unit's ``f_u`` (default 1).

    Returns:
        The families, in the order their units first appear.
    """
    params = dict(model.named_parameters())
    families: dict[tuple[tuple[str, int], ...], list[int]] = {}
    for u, unit in enumerate(units):
        for key in _families(k for k in unit.members if k[0] in params):
            families.setdefault(key, []).append(u)
    return [_family(params, units, key, family, lam, factor) for key, family in families.items()]


def _families(members: Iterable[tuple[str, int]]) -> list[tuple[tuple[str, int], ...]]:
    """A unit's ``(name, dim)`` members as families: all of them, less the second dim of a
    tensor held along two, which makes a family of its own."""
    first: dict[str, tuple[str, int]] = {}
    again: list[tuple[str, int]] = []
    for key in sorted(members):
        if key[0] in first:
            again.append(key)
        else:
            first[key[0]] = key
    main = tuple(sorted(first.values()))
    return [k for k in [main, *((a,) for a in again)] if k]


def _family(
    params: Mapping[str, Tensor],
    units: Sequence[Unit],
    key: tuple[tuple[str, int], ...],
    family: list[int],
    lam: float,
    factor: Tensor | None,
) -> SliceGroups:
    """The :class:`SliceGroups` of the units ``family`` (indices into ``units``) over the
    members ``key``."""
    members = []
    for name, dim in key:
        p = params[name]
        index = torch.full((p.shape[dim],), -1, dtype=torch.long)
        for u, i in enumerate(family):
            index[units[i].members[(name, dim)]] = u
        members.append(SliceMember(name, p, dim, index))
    first = units[family[0]]
    label = first.label if len(family) > 1 else f"{first.label} (1 unit)"
    if len(key) == 1 and len([k for k in first.members if k[0] == key[0][0]]) > 1:
        label = f"{label}, {key[0][0]} along dim {key[0][1]}"
    f = None if factor is None else factor[family].to(torch.float64)
    return SliceGroups(lam, members, len(family), label, f)
