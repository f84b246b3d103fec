"""Make structured sparsity pay: remove dead neurons and channels from a trained model.

A hidden unit (a Linear layer's output neuron, a Conv layer's output channel) is **dead** when
its incoming weights are all zero (what a group lasso over rows or filters produces) or when
the next layer never reads it (its input column, or kernel slice, is all zero). A unit with
zero incoming weights outputs a constant: its bias, then the BatchNorm affine map and the
activation of a constant. :func:`compact` folds that constant's contribution into the next
layer's bias, drops the unit, cuts the next layer's inputs to match (BatchNorm entries and
the columns behind a ``Flatten`` included), and checks that the new model's outputs equal the
old one's on the example input.

The result is a plain ``nn.Sequential`` of the same layer classes, smaller. At batch 1 a
small model's time goes mostly to Python's call overhead, not to arithmetic; ``torch.compile``
and ``torch.export`` are the tools made to remove it, though on a CPU their own call overhead
can exceed what they save for models this small (``benchmarks/compaction.py`` measures eager
and compiled side by side).

Supported: ``nn.Sequential`` models of the layers in :mod:`shrinkage.structured.layers`
(``Linear``, ``Conv1d``/``Conv2d`` with ``groups=1``, BatchNorm, element-wise activations,
``Dropout``, ``Flatten``, max and average pooling); the last Linear or Conv layer (the head)
keeps all its outputs.
"""

from __future__ import annotations

import copy
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .errors import CompactionError
from .groups import producer_indices, sequential_stack
from .heads import compact_heads
from .layers import kind_of, supported_names, tensor_of, weight_of
from .macs import count_macs
from .rebuild import GroupReport, check_outputs, compact_graph

__all__ = ["CompactionError", "CompactionReport", "compact", "dead_units"]


@dataclass(frozen=True)
class CompactionReport:
    """Units kept per producer layer: ``kept[layer] = (kept, units)``, the layer named by its
    index in an ``nn.Sequential`` or by its module name in any other model; parameters of the
    whole model, and multiply-accumulates per sample of the example input
    (:func:`~shrinkage.structured.macs.count_macs`), before and after. For models other than
    an ``nn.Sequential``, ``groups`` has one row per layer (units and that layer's parameters
    before and after, and the dead units kept with the reason) and ``pinned`` counts the
    channel sets that cannot be removed, by reason (a LayerNorm's statistics, the model's
    inputs and outputs, ...)."""

    kept: dict[Any, tuple[int, int]]
    parameters_before: int
    parameters_after: int
    groups: tuple[GroupReport, ...] = ()
    pinned: dict[str, int] = field(default_factory=dict)
    macs_before: int = 0
    macs_after: int = 0


def _weight(layer: nn.Module) -> Tensor:
    try:
        return weight_of(layer)
    except ValueError as error:
        raise CompactionError(f"{error}; nothing was changed") from None


def _sizes(layer: nn.Module) -> tuple[str, str]:
    """The names of a producer's input and output sizes (``in_features``, ``out_features``
    or ``in_channels``, ``out_channels``): its first two constructor arguments."""
    kind = kind_of(layer)
    assert kind is not None and kind.role == "producer"
    return kind.arguments[0], kind.arguments[1]


def _check(model: nn.Module) -> list[int]:
    if not isinstance(model, nn.Sequential):
        raise CompactionError(
            f"compact needs an nn.Sequential model, got {type(model).__name__}; nothing was changed"
        )
    for i, layer in enumerate(model):
        if kind_of(layer) is None:
            raise CompactionError(
                f"layer {i} ({type(layer).__name__}) is not supported by compact (supported: "
                f"{supported_names()}); nothing was changed"
            )
        if getattr(layer, "groups", 1) != 1:
            raise CompactionError(
                f"layer {i} ({layer}) is a grouped convolution (groups={layer.groups}), "
                "which compact does not handle; nothing was changed"
            )
    producers = producer_indices(model)
    if not producers:
        raise CompactionError("the model has no Linear or Conv layer; nothing was changed")
    return producers


def _trace(model: nn.Sequential, x: Tensor) -> list[Tensor]:
    """The input of every layer, then the final output."""
    inputs = [x]
    with torch.no_grad():
        for layer in model:
            inputs.append(layer(inputs[-1]))
    return inputs


def _columns(next_layer: nn.Module, units: int, flat_in: int) -> int:
    """How many input columns of ``next_layer`` each unit feeds (``Flatten`` spreads a
    channel over its spatial positions)."""
    if isinstance(next_layer, nn.Linear) and flat_in != units:
        if flat_in % units:
            raise CompactionError(
                f"{next_layer} reads {flat_in} inputs, not a multiple of the {units} units "
                "before it; nothing was changed"
            )
        return flat_in // units
    return 1


def _input_slices(next_layer: nn.Module, units: int, flat_in: int) -> Tensor:
    """``[units, in_features or in_channels]`` boolean: which inputs each unit feeds."""
    width = _columns(next_layer, units, flat_in)
    total = units * width
    own = torch.zeros(units, total, dtype=torch.bool)
    for j in range(units):
        own[j, j * width : (j + 1) * width] = True
    return own


def dead_units(model: nn.Sequential, producer: int, following: int) -> tuple[Tensor, Tensor]:
    """``(no_input, unread)`` boolean masks over ``model[producer]``'s units: all-zero
    incoming weights, and all-zero weights in ``model[following]`` (the next producer)."""
    w = _weight(model[producer]).detach()
    no_input = (w.reshape(w.shape[0], -1) == 0).all(dim=1)
    units = w.shape[0]
    nxt = model[following]
    wn = _weight(nxt).detach()
    own = _input_slices(nxt, units, wn.shape[1])
    reads = (wn != 0).reshape(wn.shape[0], wn.shape[1], -1).any(dim=2).any(dim=0)  # [in]
    unread = torch.tensor([not bool(reads[own[j]].any()) for j in range(units)])
    return no_input, unread


def compact(
    model: nn.Module, example_input: Any, *, atol: float = 1e-5, fuse_batchnorm: bool = True
) -> tuple[nn.Module, CompactionReport]:
    """A smaller dense copy of ``model`` without its dead units (see the module docstring).

    An ``nn.Sequential`` of the layers in :mod:`shrinkage.structured.layers` is compacted
    layer by layer into an ``nn.Sequential``. Any other model is traced with ``torch.export``
    (:mod:`shrinkage.structured.rebuild`): the result is an instance of ``model``'s own class
    with smaller layers in the same places (``model.layer3[1].conv2`` still exists), its
    BatchNorm layers kept. Its attention layers that :mod:`~shrinkage.structured.heads`
    recognizes lose their dead heads first (head counts and widths set to match; an
    ``nn.MultiheadAttention`` that loses heads becomes a
    :class:`~shrinkage.structured.attention.HeadAttention`, the same call and outputs).

    Args:
        model: the model (left unchanged; evaluated in eval mode).
        example_input: a batch the model accepts, ``[N, ...]`` (or a tuple of positional
            inputs); used to learn the feature-map sizes, the constants dead units emit, and
            to check the result.
        atol: the largest absolute difference allowed between the two models' outputs on
            ``example_input`` (relative to the output scale).
        fuse_batchnorm: fold each BatchNorm that directly follows a Linear or Conv layer into
            it (eval-mode statistics: ``W <- W * g / sqrt(var + eps)``, ``b <- (b - mean) * g /
            sqrt(var + eps) + beta``) and drop it, as inference engines do. The result then has
            fewer layers; its outputs are the same. ``False`` keeps the BatchNorm layers.

    Returns:
        ``(compact_model, report)``, the compact model in eval mode.

    Raises:
        CompactionError: for an unsupported model, naming the layer and why; nothing changed.
    """
    if not sequential_stack(model):
        before = sum(p.numel() for p in model.parameters())
        without_heads, head_rows = compact_heads(model)
        new_model, rows, pinned = compact_graph(without_heads, example_input, atol=atol)
        if head_rows:
            example = example_input if isinstance(example_input, tuple) else (example_input,)
            check_outputs(model, new_model, example, atol)
            rows = head_rows + rows
        per_layer = {r.label: (r.units_after, r.units_before) for r in rows}
        after = sum(p.numel() for p in new_model.parameters())
        macs = _macs(model, new_model, example_input)
        report = CompactionReport(per_layer, before, after, tuple(rows), pinned, *macs)
        return new_model, report
    producers = _check(model)
    assert isinstance(model, nn.Sequential)
    new = copy.deepcopy(model).eval()
    before = sum(p.numel() for p in model.parameters())
    kept: dict[int, tuple[int, int]] = {}
    with torch.no_grad():
        for a, b in itertools.pairwise(producers):
            kept[a] = _remove_dead_units(new, a, b, example_input)
    children = _fused_children(new) if fuse_batchnorm else list(new.named_children())
    new = nn.Sequential(OrderedDict(children)).eval()
    check_outputs(model, new, (example_input,), atol)
    after = sum(p.numel() for p in new.parameters())
    return new, CompactionReport(kept, before, after, (), {}, *_macs(model, new, example_input))


def _macs(model: nn.Module, new: nn.Module, example: Any) -> tuple[int, int]:
    """MACs of one sample (the example's first, when it is one tensor) before and after."""
    sample = example[:1] if isinstance(example, Tensor) else example
    return count_macs(model, sample), count_macs(new, sample)


def _remove_dead_units(model: nn.Sequential, a: int, b: int, example: Tensor) -> tuple[int, int]:
    """Drop the dead units of producer ``a`` (read by producer ``b``) in place, folding the
    constants of the zero-input ones into ``b``'s bias; returns ``(kept, units)``."""
    layer, nxt = model[a], model[b]
    weight, next_weight = _weight(layer), _weight(nxt)
    units = weight.shape[0]
    no_input, unread = dead_units(model, a, b)
    # the constant each zero-input unit passes on: its bias through the layers between
    shape = _trace(model, example[:1])[a + 1].shape  # the producer's output
    probe = torch.zeros(shape, dtype=weight.dtype)
    bias = tensor_of(layer, "bias")
    if bias is not None:
        probe += bias.reshape(1, -1, *([1] * (len(shape) - 2)))
    passed = probe
    for k in range(a + 1, b):
        passed = model[k](passed)
    drop = unread.clone()
    own = _input_slices(nxt, units, next_weight.shape[1])
    fold = torch.zeros(next_weight.shape[0], dtype=next_weight.dtype)
    candidates = no_input & ~unread
    if bool(candidates.any()):
        # a convolution of a constant map is constant only away from zero padding:
        # fold (and drop) only when the contribution is the same everywhere
        flat = _contribution(nxt, passed, own[candidates].any(dim=0))
        if torch.allclose(flat, flat[:, :1].expand_as(flat), atol=1e-7, rtol=1e-6):
            fold = flat[:, 0]
            drop |= candidates
    if bool(drop.all()):  # keep one unit: layers cannot be empty
        drop[0] = False
        if bool(candidates[0]):
            fold = fold - _contribution(nxt, passed, own[0])[:, 0]
    keep = ~drop
    _cut_outputs(model, a, b, keep)
    _cut_inputs(nxt, own[keep].any(dim=0))
    next_bias = tensor_of(nxt, "bias")
    if next_bias is None:
        nxt.bias = nn.Parameter(fold.clone())
    else:
        next_bias += fold
    return int(keep.sum()), units


@torch.no_grad()
def _fused_children(model: nn.Sequential) -> list[tuple[str, nn.Module]]:
    """``model``'s named layers with each BatchNorm that follows a Linear or Conv layer folded
    into it (the layers are changed in place) and left out."""
    layers: list[tuple[str, nn.Module]] = []
    for name, layer in model.named_children():
        previous = layers[-1][1] if layers else None
        kind, before = kind_of(layer), None if previous is None else kind_of(previous)
        mean, var = tensor_of(layer, "running_mean"), tensor_of(layer, "running_var")
        if (
            previous is not None
            and kind is not None
            and kind.role == "norm"
            and before is not None
            and before.role == "producer"
            and mean is not None
            and var is not None
        ):
            scale = (var + getattr(layer, "eps")).rsqrt()  # noqa: B009
            shift = -mean * scale
            gamma, beta = tensor_of(layer, "weight"), tensor_of(layer, "bias")
            if gamma is not None and beta is not None:
                scale, shift = scale * gamma, shift * gamma + beta
            weight = _weight(previous)
            bias = tensor_of(previous, "bias")
            bias = bias if bias is not None else torch.zeros_like(scale)
            shape = [-1] + [1] * (weight.dim() - 1)
            previous.weight = nn.Parameter(weight * scale.reshape(shape))
            previous.bias = nn.Parameter(bias * scale + shift)
            continue
        layers.append((name, layer))
    return layers


def _contribution(nxt: nn.Module, passed: Tensor, cols: Tensor) -> Tensor:
    """``[outputs of nxt, positions]``: what the inputs ``cols`` of ``passed`` (one sample)
    add to ``nxt``'s pre-activations, bias excluded."""
    weight = _weight(nxt)
    if isinstance(nxt, nn.Linear):
        values = passed.reshape(1, -1)[0]
        return (weight[:, cols] @ values[cols])[:, None]
    only = torch.zeros_like(passed)
    only[:, cols] = passed[:, cols]
    bias = tensor_of(nxt, "bias")
    # the layer itself with a zero bias: its own padding and stride, nothing added
    out = (
        nxt(only) if bias is None else functional_call(nxt, {"bias": torch.zeros_like(bias)}, only)
    )
    return out.reshape(weight.shape[0], -1)


def _cut_outputs(model: nn.Sequential, a: int, b: int, keep: Tensor) -> None:
    layer = model[a]
    layer.weight = nn.Parameter(_weight(layer)[keep].clone())
    bias = tensor_of(layer, "bias")
    if bias is not None:
        layer.bias = nn.Parameter(bias[keep].clone())
    setattr(layer, _sizes(layer)[1], int(keep.sum()))
    for k in range(a + 1, b):
        norm = model[k]
        kind = kind_of(norm)
        if kind is None or kind.role != "norm":
            continue
        for name in ("weight", "bias"):
            value = tensor_of(norm, name)
            if value is not None:
                setattr(norm, name, nn.Parameter(value[keep].clone()))
        for name in ("running_mean", "running_var"):
            value = tensor_of(norm, name)
            if value is not None:
                setattr(norm, name, value[keep].clone())
        setattr(norm, "num_features", int(keep.sum()))  # noqa: B010


def _cut_inputs(layer: nn.Module, columns: Tensor) -> None:
    layer.weight = nn.Parameter(_weight(layer)[:, columns].clone())
    setattr(layer, _sizes(layer)[0], int(columns.sum()))
