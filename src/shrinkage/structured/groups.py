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

Every model's units are :class:`~shrinkage.structured.slices.SliceGroups`, one per layer of
units. An ``nn.Sequential`` of known layers needs no example input: its units are read from
the layers in order (:func:`stack_units`), the same units the traced graph gives it. A
layer's units are alike (each holds one row, one bias entry, one column block), so their
prox runs on rows of a ``[units, size]`` matrix.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from .._validation import ArgumentError
from .layers import kind_of, supported_names, tensor_of, weight_of
from .macs import unit_latency, unit_macs
from .slices import SliceGroups, slice_groups
from .trace import Unit, trace

__all__ = ["explain", "neuron_groups", "stack_units", "unit_sparsity"]


UnitCosts = Callable[[nn.Module, Sequence[Unit], Any], Tensor]
WEIGHTINGS: dict[str, UnitCosts | None] = {
    "size": None,
    "macs": unit_macs,
    "latency": unit_latency,
}
"""How a unit's penalty is weighed: alike, by its MACs, or by its measured time."""


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
) -> list[SliceGroups]:
    """A group lasso over every hidden unit of ``model``.

    ``P = lam * sum_j f_j * sqrt(size_j) * ||g_j||_2``, ``g_j`` every parameter entry unit
    ``j`` touches: its producers' filter and bias slices, BatchNorm scale and shift, and its
    consumers' input slices. Units are found in one of two ways:

    * an ``nn.Sequential`` of Linear / Conv layers (with BatchNorm, activations, pooling,
      dropout and ``Flatten`` between them) and no ``example_input``: layer by layer
      (:func:`stack_units`); the last layer is the output and is not grouped;
    * any other model, or any model given ``example_input``: traced with ``torch.export``
      (:mod:`shrinkage.structured.trace`). Channels that a residual ``add``, a ``mul`` or a
      grouped convolution couple form one unit; channels no rule covers (a LayerNorm's, the
      inputs and outputs) are left out, and a warning names the top reasons when no unit is
      left (:func:`explain` lists them all).

    Args:
        model: the model (not changed).
        lam: the strength ``lam``.
        example_input: a batch ``[N, ...]`` the model accepts, or a tuple of positional
            inputs; needed for any model but a stack.
        weighting: ``"size"`` (``f_j = 1``), or ``"macs"``: ``f_j = c_j / mean(c)`` (at least
            0.01), ``c_j`` the multiply-accumulates per sample unit ``j`` costs on
            ``example_input`` (:func:`~shrinkage.structured.macs.unit_macs`), so that a
            unit of a layer that runs at high resolution goes before a cheaper one; or
            ``"latency"``: the same with ``c_j`` the seconds unit ``j``'s share of its
            layers takes on this device (:func:`~shrinkage.structured.macs.unit_latency`),
            measured, so the groups depend on the machine and its load.

    Returns:
        One :class:`~shrinkage.structured.slices.SliceGroups` per layer of units.

    Raises:
        ArgumentError: a bad ``weighting``, or no ``example_input`` where one is needed.
        CompactionError: the model cannot be traced.

    Example:
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> [(g.label, g.units) for g in neuron_groups(model, lam=0.1)]
        [('0', 3)]
    """
    if weighting not in WEIGHTINGS:
        raise ArgumentError("weighting", f"must be one of {list(WEIGHTINGS)}; got {weighting!r}")
    if example_input is None and weighting != "size":
        raise ArgumentError(
            "example_input", f"is needed for weighting={weighting!r} (it runs the model)"
        )
    if example_input is not None or not sequential_stack(model):
        if example_input is None:
            raise ArgumentError(
                "example_input",
                f"is needed for a {type(model).__name__} (only an nn.Sequential of "
                f"{supported_names()} is grouped without tracing)",
            )
        return _traced_groups(model, lam, example_input, weighting)
    assert isinstance(model, nn.Sequential)
    return slice_groups(model, stack_units(model), lam)


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
    or measured time (``weighting``) or alike; a warning naming the top reasons when there is
    none."""
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
    unit_costs = WEIGHTINGS[weighting]
    if unit_costs is not None:
        costs = unit_costs(model, traced, example_input)
        if float(costs.mean()) > 0:  # a unit that costs nothing still weighs 1 % of one
            factor = (costs / costs.mean()).clamp(min=0.01)
    return slice_groups(model, traced, lam, factor)


def stack_units(model: nn.Sequential) -> list[Unit]:
    """The hidden units of a stack, layer by layer: unit ``j`` of producer ``a`` holds row
    ``j`` of its weight and bias, entry ``j`` of each BatchNorm before the next producer
    ``b``, and the columns of ``b``'s weight that ``j`` feeds (``width`` columns per unit
    behind a ``Flatten``).

    Args:
        model: an ``nn.Sequential`` for which :func:`sequential_stack` holds.

    Returns:
        One :class:`~shrinkage.structured.trace.Unit` per hidden unit, labelled by its
        producer's module name.

    Raises:
        ValueError: fewer than two producers, or a producer whose inputs are not a whole
            number of columns per unit before it.
    """
    producers = producer_indices(model)
    if len(producers) < 2:
        raise ValueError(
            "neuron_groups needs at least two producer layers (a hidden one) among "
            f"{supported_names('producer')}"
        )
    return [u for a, b in itertools.pairwise(producers) for u in _layer_units(model, a, b)]


def _layer_units(model: nn.Sequential, a: int, b: int) -> list[Unit]:
    """The units of producer layer ``a`` of a stack (read by producer ``b``)."""
    units = int(weight_of(model[a]).shape[0])
    inputs = int(weight_of(model[b]).shape[1])
    if inputs % units:
        raise ValueError(
            f"layer {b} reads {inputs} inputs, not a multiple of layer {a}'s {units} units"
        )
    width = inputs // units
    rows = [f"{a}.weight"] + [f"{a}.bias"] * (tensor_of(model[a], "bias") is not None)
    for k in range(a + 1, b):
        has_affine = tensor_of(model[k], "weight") is not None
        if _role(model[k]) == "norm" and has_affine:
            rows += [f"{k}.weight", f"{k}.bias"]
    return [
        Unit(
            str(a),
            {
                **{(name, 0): [j] for name in rows},
                (f"{b}.weight", 1): list(range(j * width, (j + 1) * width)),
            },
        )
        for j in range(units)
    ]


def unit_sparsity(groups: Sequence[SliceGroups]) -> dict[str, tuple[int, int]]:
    """How many units of each group are removed (all zero).

    Args:
        groups: from :func:`neuron_groups` or :func:`~shrinkage.structured.head_groups`.

    Returns:
        ``{label: (units removed, units)}``.
    """
    out = {}
    for g in groups:
        norms = g.norms()
        out[g.label] = (int((norms == 0).sum()), g.units)
    return out
