"""Group lasso over whole neurons and channels: groups that span several tensors.

For a hidden ``Linear`` layer, the group of output neuron ``j`` is its row of weights, its
bias, and the column ``j`` of the next layer's weights (the columns ``j`` feeds through a
``Flatten``); for a ``Conv`` layer, output channel ``j``'s filter, its bias, its BatchNorm
scale and shift, and the next layer's input slice ``j``. The penalty is

    P = lam * sum_j sqrt(size_j) * ||g_j||_2,   g_j = every entry of unit j's group,

and its proximal step scales each group by ``max(1 - step * lam * sqrt(size_j) / ||g_j||, 0)``
(element-wise steps: the same diagonal-metric prox as :class:`~shrinkage.GroupLasso`), so a
unit goes to zero as a whole: it neither reads its inputs nor feeds the next layer, and
:func:`shrinkage.compact` removes it.

    groups = neuron_groups(model, lam=1e-3)
    reg = Regularizer(model, None, groups=groups)
    opt = Proximal(torch.optim.Adam(model.parameters()), reg)

A layer's weights belong to two families of groups (its rows to its own units, its columns to
the units before it); the proximal steps of the families are applied one after the other.

Why an ``nn.Sequential`` keeps a group type of its own (:class:`UnitGroups`) beside the traced
graph's :class:`~shrinkage.structured.slices.SliceGroups`: a stack's units are the rows of one
matrix per layer, whose prox runs on :class:`~shrinkage.GroupLasso`'s row layout, while
``SliceGroups`` gathers slices by index. Built as ``SliceGroups``, the prox of an MLP
784-1024-1024-10 under Adam's element-wise steps took 1.5 to 1.8 times as long (254 to 328 ms
against 144 to 215 ms per step, three runs of each, alternated). One type waits for a row
layout inside ``SliceGroups``.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._kernels import Step
from .._validation import ArgumentError
from ..penalties import GroupLasso
from .layers import kind_of, supported_names, tensor_of, weight_of
from .macs import unit_macs
from .slices import SliceGroups, UnitPenalty, slice_groups, step_tensors
from .trace import trace

__all__ = ["Member", "UnitGroups", "neuron_groups", "unit_sparsity"]


@dataclass(frozen=True)
class Member:
    """One tensor's part in every group: ``parameter``'s slices along ``dim`` (``width``
    consecutive slices per unit, for the columns behind a ``Flatten``)."""

    name: str
    parameter: Tensor
    dim: int
    width: int = 1


class UnitGroups(UnitPenalty):
    """``units`` groups, group ``j`` made of slice ``j`` of every member (see the module
    docstring for the penalty and its prox)."""

    def __init__(self, lam: float, members: Sequence[Member], units: int, label: str) -> None:
        self.penalty = GroupLasso(lam, groups="outputs")
        self.members = tuple(members)
        self.units = int(units)
        self.label = label
        for m in self.members:
            if m.parameter.shape[m.dim] != self.units * m.width:
                raise ValueError(
                    f"{m.name} has {m.parameter.shape[m.dim]} slices along dim {m.dim}, "
                    f"not {self.units} units x {m.width}"
                )

    def _block(self, m: Member, t: Tensor) -> Tensor:
        """``t`` (shaped like ``m.parameter``) as ``[units, entries per unit]``."""
        shape = list(t.shape)
        split = [*shape[: m.dim], self.units, m.width, *shape[m.dim + 1 :]]
        return t.reshape(split).movedim(m.dim, 0).reshape(self.units, -1)

    def _unblock(self, m: Member, block: Tensor) -> Tensor:
        shape = list(m.parameter.shape)
        moved = [self.units, *shape[: m.dim], m.width, *shape[m.dim + 1 :]]
        return block.reshape(moved).movedim(0, m.dim).reshape(shape)

    def matrix(self, tensors: Sequence[Tensor] | None = None) -> Tensor:
        """``[units, group size]``: every group as a row."""
        ts = tensors if tensors is not None else [m.parameter for m in self.members]
        return torch.cat([self._block(m, t) for m, t in zip(self.members, ts, strict=True)], 1)

    def value(self) -> Tensor:
        """``lam * sum_j sqrt(size) * ||g_j||`` (differentiable)."""
        return self.penalty.value(self.matrix())

    def lambda_max(self, grads: Sequence[Tensor]) -> float:
        """``max_j ||grad_j|| / sqrt(size)``: the smallest ``lam`` at which every zero unit
        meets its optimality condition (``grads``: one per member, shaped like it)."""
        m = self.matrix(list(grads)).detach()
        return float(torch.linalg.vector_norm(m, dim=1).max() / m.shape[1] ** 0.5)

    def norms(self) -> Tensor:
        """``[units]``: ``||g_j||``; zero for a removed unit."""
        return torch.linalg.vector_norm(self.matrix().detach(), dim=1)

    @torch.no_grad()
    def prox_(self, steps: Sequence[Step]) -> None:
        """The proximal step in place; ``steps[k]`` is member ``k``'s step (a float, or a
        tensor shaped like its parameter for element-wise steps)."""
        M = self.matrix([m.parameter.detach() for m in self.members])
        step = step_tensors([m.parameter for m in self.members], steps)
        self.penalty.prox_(M, step if isinstance(step, float) else self.matrix(step))
        offset = 0
        for m in self.members:
            size = m.parameter.numel() // self.units
            m.parameter.copy_(self._unblock(m, M[:, offset : offset + size]))
            offset += size

    def __repr__(self) -> str:
        return f"UnitGroups({self.label}, {self.units} units, lam={self.lam:g})"


def producer_indices(model: nn.Sequential) -> list[int]:
    """Positions of the layers whose outputs are units (``Linear``, ``Conv``) in ``model``."""
    return [i for i, layer in enumerate(model) if _role(layer) == "producer"]


def _role(layer: nn.Module) -> str | None:
    kind = kind_of(layer)
    return None if kind is None else kind.role


def sequential_stack(model: nn.Module) -> bool:
    """Whether ``model`` is an ``nn.Sequential`` of the layers in
    :mod:`shrinkage.structured.layers` (convolutions ungrouped), handled layer by layer."""
    return isinstance(model, nn.Sequential) and all(
        kind_of(layer) is not None and getattr(layer, "groups", 1) == 1 for layer in model
    )


def neuron_groups(
    model: nn.Module, lam: float, *, example_input: Any = None, weighting: str = "size"
) -> list[UnitGroups] | list[SliceGroups]:
    """A group lasso over every hidden unit of ``model``: ``lam * sum_j f_j * sqrt(size_j) *
    ||g_j||_2``, ``g_j`` every parameter entry unit ``j`` touches.

    ``weighting``: ``"size"`` (``f_j = 1``), or ``"macs"`` for a traced model: ``f_j = c_j /
    mean(c)`` (at least 0.01), ``c_j`` the multiply-accumulates per sample that unit ``j``
    costs (its weight slices' share of their layers' MACs on ``example_input``,
    :func:`~shrinkage.structured.macs.unit_macs`). At one strength a unit of a layer that runs
    at high resolution is then removed before a cheaper unit of the same norm, which trades
    accuracy for compute rather than for parameters.

    * An ``nn.Sequential`` of Linear / Conv layers (with BatchNorm, activations, pooling,
      dropout and ``Flatten`` between them) needs no ``example_input``: one
      :class:`UnitGroups` per hidden layer, group ``j`` of layer ``a`` holding ``W_a[j]``,
      ``b_a[j]``, the BatchNorm entries ``j`` after it and ``W_next[:, j]``; the last layer
      is the output and is not grouped.
    * Any other model is traced on ``example_input`` (a batch ``[N, ...]``, or a tuple of
      positional inputs) with ``torch.export`` (:mod:`shrinkage.structured.trace`): channels
      that a residual ``add``, a ``mul`` or a grouped convolution couple form one unit, and
      its group holds every producer's filter and bias slice, BatchNorm scale and shift, and
      every consumer's input slice. One :class:`~shrinkage.structured.slices.SliceGroups` per
      layer of units. Channels no rule covers (a LayerNorm's, the inputs and outputs) are
      left out.

    Raises:
        CompactionError: the model cannot be traced.
    """
    if weighting not in ("size", "macs"):
        raise ArgumentError("weighting", f"must be 'size' or 'macs'; got {weighting!r}")
    if example_input is None and weighting == "macs":
        raise ArgumentError("example_input", "is needed for weighting='macs' (it counts MACs)")
    if example_input is not None or not sequential_stack(model):
        if example_input is None:
            raise ArgumentError(
                "example_input",
                f"is needed for a {type(model).__name__} (only an nn.Sequential of "
                f"{supported_names()} is grouped without tracing)",
            )
        return _traced_groups(model, lam, example_input, weighting)
    assert isinstance(model, nn.Sequential)
    producers = producer_indices(model)
    if len(producers) < 2:
        raise ValueError(
            "neuron_groups needs at least two producer layers (a hidden one) among "
            f"{supported_names('producer')}"
        )
    return [_layer_units(model, a, b, lam) for a, b in itertools.pairwise(producers)]


def explain(model: nn.Module, example_input: Any) -> dict[str, int]:
    """Why channels of ``model`` cannot be grouped: each reason the trace pinned a channel set
    for (an op without a rule, a model input or output, a tensor an op reads whole, ...) and
    how many sets it pinned, most first.

    Args:
        model: any module ``torch.export`` can trace (not changed).
        example_input: a batch it accepts, or a tuple of positional inputs.

    Returns:
        ``{reason: channel sets pinned}``, the most frequent reason first.

    Raises:
        CompactionError: the model cannot be traced.

    Example:
        >>> import torch
        >>> reasons = explain(torch.nn.LayerNorm(4), torch.zeros(2, 4))
        >>> next(iter(reasons))
        'a model input'
    """
    return _most_first(trace(model, example_input).pinned)


def _most_first(pinned: dict[str, int]) -> dict[str, int]:
    """``pinned`` ordered by count, the most frequent reason first."""
    return dict(sorted(pinned.items(), key=lambda kv: -kv[1]))


def _traced_groups(
    model: nn.Module, lam: float, example_input: Any, weighting: str
) -> list[SliceGroups]:
    """The group lasso over the units of ``model``'s traced graph, each weighted by its MACs
    (``weighting="macs"``) or alike; a warning naming the top reasons when there is none."""
    graph = trace(model, example_input)
    traced = graph.units
    if not traced:
        top = list(_most_first(graph.pinned).items())[:3]
        reasons = "; ".join(f"{why} ({n})" for why, n in top) or "it has no hidden layer"
        warnings.warn(
            f"neuron_groups found no unit of {type(model).__name__} it can remove: every "
            f"channel set is pinned. Most often: {reasons}. "
            "shrinkage.structured.explain(model, example_input) lists every reason",
            UserWarning,
            stacklevel=3,
        )
    factor = None
    if weighting == "macs":
        costs = unit_macs(model, traced, example_input)
        if float(costs.mean()) > 0:  # a unit that costs nothing still weighs 1 % of one
            factor = (costs / costs.mean()).clamp(min=0.01)
    return slice_groups(model, traced, lam, factor)


def _layer_units(model: nn.Sequential, a: int, b: int, lam: float) -> UnitGroups:
    """The units of producer layer ``a`` of a stack: its rows and bias, the norms between,
    and the columns of the next producer ``b``."""
    weight, bias, next_weight = (
        weight_of(model[a]),
        tensor_of(model[a], "bias"),
        weight_of(model[b]),
    )
    units = int(weight.shape[0])
    members = [Member(f"{a}.weight", weight, 0)]
    if bias is not None:
        members.append(Member(f"{a}.bias", bias, 0))
    for k in range(a + 1, b):
        gamma, beta = tensor_of(model[k], "weight"), tensor_of(model[k], "bias")
        if _role(model[k]) == "norm" and gamma is not None and beta is not None:
            members += [Member(f"{k}.weight", gamma, 0), Member(f"{k}.bias", beta, 0)]
    inputs = int(next_weight.shape[1])
    if inputs % units:
        raise ValueError(
            f"layer {b} reads {inputs} inputs, not a multiple of layer {a}'s {units} units"
        )
    members.append(Member(f"{b}.weight", next_weight, 1, inputs // units))
    return UnitGroups(lam, members, units, f"layer {a} units")


def unit_sparsity(groups: Sequence[UnitGroups]) -> dict[str, tuple[int, int]]:
    """``label -> (units removed, units)``."""
    out = {}
    for g in groups:
        norms = g.norms()
        out[g.label] = (int((norms == 0).sum()), g.units)
    return out
