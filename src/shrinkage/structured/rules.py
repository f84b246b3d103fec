"""One channel rule per ATen op, and the types the rules speak in.

A rule takes the walk over the graph (:class:`Walk`: what :mod:`shrinkage.structured.trace`'s
tracer offers the rules), the graph node and its output's fake value, and returns the
output's :data:`Value` (a list of them for ops with several outputs). An op without a rule
pins every channel it reads and freezes every parameter it reads (see the tracer). The tracer
imports this module; this module imports nothing of the tracer's.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, fx

__all__ = ["PARAMETER_READERS", "Consumer", "Value", "Walk", "op_name", "rule_for"]

Value = tuple[np.ndarray, np.ndarray]
"""A tensor's ``(ids, constant)``: each entry's channel id and whether it is constant,
broadcast to the tensor's shape."""


@dataclass(frozen=True)
class Consumer:
    """A convolution or linear layer reading position ``column`` along ``dim`` of graph node
    ``node`` through input slice ``column`` of parameter ``weight`` (along the weight's
    ``weight_dim``: 1 for ``[out, in, ...]`` weights, 0 for ``addmm``'s ``[in, out]``);
    ``padded``: a constant input channel does not give a constant output (a convolution
    that pads with zeros, a transposed convolution)."""

    weight: str
    column: int
    node: str
    dim: int
    padded: bool
    weight_dim: int = 1


class Walk(Protocol):
    """What a rule may ask of the walk over the graph: channel ids and their unions, the
    values found so far, members, reads and pins."""

    values: dict[str, Any]
    reads: list[tuple[Consumer, np.ndarray]]
    produced: list[tuple[str, np.ndarray]]
    frozen: dict[str, str]

    def fresh(self, n: int) -> np.ndarray: ...
    def union(self, a: int, b: int) -> None: ...
    def tie(self, a: np.ndarray, b: np.ndarray) -> None: ...
    def pin(self, ids: np.ndarray, why: str) -> None: ...
    def channels(self, ids: np.ndarray, dim: int, why: str) -> np.ndarray: ...
    def note(self, value: Value) -> Value: ...
    def get(self, arg: Any) -> Value | None: ...
    def name(self, arg: Any) -> str | None: ...
    def tensor(self, name: str) -> Tensor: ...
    def pinned_value(self, val: Any, why: str) -> Any: ...
    def member(self, name: str, dim: int, ids: np.ndarray) -> None: ...
    def unknown(self, node: fx.Node, why: str) -> Any: ...


Rule = Callable[[Walk, fx.Node, Any], Any]


def op_name(node: fx.Node) -> str:
    """``"conv2d"`` for ``aten.conv2d.default``; ``"getitem"`` for tuple indexing."""
    if node.target is operator.getitem:
        return "getitem"
    parts = str(node.target).split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "aten" else str(node.target)


_ELEMENTWISE = {  # element-wise ops that carry no pointwise tag
    "hardswish", "hardswish_", "dropout", "dropout_", "feature_dropout", "alpha_dropout",
    "contiguous", "alias", "detach", "_to_copy", "to", "lift_fresh_copy", "clone",
}  # fmt: skip


def _a(node: fx.Node) -> tuple[Any, ...]:
    return tuple(node.args)


def _arg(node: fx.Node, i: int, name: str, default: Any = None) -> Any:
    return _a(node)[i] if len(node.args) > i else node.kwargs.get(name, default)


def _shape(val: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in val.shape)


def _broadcast(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(a.reshape((1,) * (len(shape) - a.ndim) + a.shape), shape)


def _along(ids: np.ndarray, dim: int, shape: tuple[int, ...]) -> np.ndarray:
    view = [1] * len(shape)
    view[dim] = ids.shape[0]
    return np.broadcast_to(ids.reshape(view), shape)


def _elementwise(t: Walk, node: fx.Node, val: Any) -> Any:
    if not isinstance(val, Tensor):
        return None
    shape = _shape(val)
    operands = [(a, t.get(a)) for a in node.args if isinstance(a, fx.Node)]
    present = [(a, v) for a, v in operands if v is not None]
    if not present:
        return t.pinned_value(val, f"op {node.name} reads no tensor")
    for arg, (own, _) in present:
        name = t.name(arg)
        varying = [d for d in range(own.ndim) if own.shape[d] > 1]
        if name is not None and len(varying) == 1:
            t.member(name, varying[0], np.moveaxis(own, varying[0], 0).reshape(-1, 1)[:, 0])
        elif name is not None and varying:
            t.frozen.setdefault(name, f"{name} varies along several dims of {node.name}")
    ids = [_broadcast(v[0], shape) for _, v in present]
    out = ids[0]
    for other in ids[1:]:
        t.tie(out, other)
    const = np.logical_and.reduce([_broadcast(v[1], shape) for _, v in present])
    return out, np.broadcast_to(const, shape)


def _produce(
    t: Walk, val: Any, dim: int, weight: str, bias: str | None, weight_dim: int = 0
) -> Value:
    """New ids for the outputs of a convolution or linear layer, along ``dim``; the weight
    holds them along ``weight_dim`` (0 for ``[out, in, ...]``, 1 for ``addmm``'s
    ``[in, out]``)."""
    w = t.tensor(weight).movedim(weight_dim, 0)
    out = t.fresh(int(w.shape[0]))
    t.member(weight, weight_dim, out)
    if bias is not None:
        t.member(bias, 0, out)
    t.produced.append((weight.rsplit(".", 1)[0], out))
    zero = (w.reshape(w.shape[0], -1) == 0).all(1).numpy()
    shape = _shape(val)
    return _along(out, dim, shape), _along(zero, dim, shape)


def _read(t: Walk, node: fx.Node, dim: int) -> tuple[str, np.ndarray] | None:
    """The weight's name and the ids of the channels a convolution or linear layer reads
    (along ``dim`` of its input); ``None`` when its weights are not parameters."""
    x, w, b = _a(node)[0], _a(node)[1], _arg(node, 2, "bias")
    weight, value = t.name(w), t.get(x)
    if weight is None or value is None or (b is not None and t.name(b) is None):
        return None
    return weight, t.channels(value[0], dim, f"{node.name} reads channels that vary elsewhere")


def _consume(
    t: Walk,
    x: fx.Node,
    weight: str,
    ids: np.ndarray,
    dim: int,
    padded: bool,
    weight_dim: int = 1,
) -> None:
    """Input slice ``k`` of ``weight`` (along ``weight_dim``), reading input ``x``, belongs
    to channel ``ids[k]``'s unit; a unit whose channels are constant where read can be folded
    into this layer's bias."""
    t.member(weight, weight_dim, ids)
    t.note(t.values[x.name])
    t.reads.append((Consumer(weight, 0, x.name, dim, padded, weight_dim), np.asarray(ids)))


def _conv(t: Walk, node: fx.Node, val: Any) -> Any:
    padding = _arg(node, 4, "padding", 0)
    pads = padding if isinstance(padding, list | tuple) else [padding]
    padded = isinstance(padding, str) or any(int(p) != 0 for p in pads)
    read = _read(t, node, 1)
    if read is None:
        return t.unknown(node, f"{node.name}: a convolution whose weights are not parameters")
    weight, ids = read
    groups = int(_arg(node, 6, "groups", 1))
    out = _produce(t, val, 1, weight, t.name(_arg(node, 2, "bias")))
    if groups == 1:
        _consume(t, _a(node)[0], weight, ids, 1, padded)
        return out
    outs = t.channels(out[0], 1, f"{node.name} output")
    per_in, per_out = len(ids) // groups, len(outs) // groups
    for g in range(groups):  # a group is removed whole: its inputs and outputs are one unit
        block = np.concatenate(
            [ids[g * per_in : (g + 1) * per_in], outs[g * per_out : (g + 1) * per_out]]
        )
        _tie_group(t, block, f"{node.name}: a group reads pinned channels")
    return out


def _tie_group(t: Walk, block: np.ndarray, why: str) -> None:
    """Channels ``block`` go together (a group of a grouped convolution or a GroupNorm): one
    unit, pinned whole (for ``why``) when any of them is pinned already."""
    if (block < 0).any():
        t.pin(block, why)
    kept = block[block >= 0]
    for i in kept[1:].tolist():
        t.union(int(kept[0]), i)


def _conv_transpose(t: Walk, node: fx.Node, val: Any) -> Any:
    """A transposed convolution, weight ``[in, out / groups, ...]``: it reads its input
    channels along the weight's dim 0 and produces its outputs along dim 1. A constant input
    channel gives outputs that vary with position (the kernel's taps overlap unevenly), so
    such a channel is never folded into the bias; a grouped one pins its channels."""
    read = _read(t, node, 1)
    if read is None or int(_arg(node, 6, "groups", 1)) != 1:
        return t.unknown(node, f"{node.name}: a transposed convolution with groups or buffers")
    weight, ids = read
    _consume(t, _a(node)[0], weight, ids, 1, True, weight_dim=0)
    return _produce(t, val, 1, weight, t.name(_arg(node, 2, "bias")), weight_dim=1)


def _linear(t: Walk, node: fx.Node, val: Any) -> Any:
    read = _read(t, node, -1)
    if read is None:
        return t.unknown(node, f"{node.name}: a linear layer whose weights are not parameters")
    weight, ids = read
    _consume(t, _a(node)[0], weight, ids, -1, False)
    return _produce(t, val, len(_shape(val)) - 1, weight, t.name(_arg(node, 2, "bias")))


def _addmm(t: Walk, node: fx.Node, val: Any) -> Any:
    """``bias + x @ weight`` with ``weight [in, out]`` (Hugging Face's ``Conv1D``)."""
    b, x, w = _a(node)[:3]
    weight, bias, value = t.name(w), t.name(b), t.get(x)
    scaled = _arg(node, 3, "beta", 1) != 1 or _arg(node, 4, "alpha", 1) != 1
    if weight is None or bias is None or value is None or scaled:
        return t.unknown(node, f"{node.name}: an addmm whose operands are not a layer's")
    ids = t.channels(value[0], 1, f"{node.name} reads channels that vary elsewhere")
    _consume(t, x, weight, ids, 1, False, weight_dim=0)
    return _produce(t, val, 1, weight, bias, weight_dim=1)


def _affine(
    t: Walk,
    node: fx.Node,
    val: Any,
    weight: Any,
    bias: Any,
    stats: Sequence[Any],
    const: np.ndarray | None = None,
) -> Any:
    """A per-channel affine map on dim 1 (BatchNorm, GroupNorm's scale and shift); ``const``:
    which outputs are constant before the scale (default: the constant inputs)."""
    value = t.get(_a(node)[0])
    if value is None:
        return t.unknown(node, f"{node.name} reads no channels")
    ids = t.channels(value[0], 1, f"{node.name} reads channels that vary along other dims")
    const = value[1] if const is None else const
    for arg in (weight, bias, *stats):
        name = t.name(arg)
        if name is not None:
            t.member(name, 0, ids)
    gamma = t.name(weight)
    if gamma is not None:
        zero = (t.tensor(gamma) == 0).numpy()
        const = const | _along(zero, 1, const.shape)
    out = val[0] if isinstance(val, list | tuple) else val
    shape = _shape(out)
    result = _broadcast(value[0], shape), np.broadcast_to(const, shape)
    return (
        [result, *(t.pinned_value(v, "statistics") for v in val[1:])] if out is not val else result
    )


def _batch_norm(t: Walk, node: fx.Node, val: Any) -> Any:
    a = node.args
    return _affine(t, node, val, _arg(node, 1, "weight"), _arg(node, 2, "bias"), a[3:5])


def _group_norm(t: Walk, node: fx.Node, val: Any) -> Any:
    """GroupNorm: its statistics span each group's channels, so a group is removed whole
    (the other groups' statistics do not change): the channels of a group are tied into one
    unit, and a group whose every input is constant outputs constants."""
    value = t.get(_a(node)[0])
    if value is None:
        return t.unknown(node, f"{node.name} reads no channels")
    groups = int(_arg(node, 1, "num_groups"))
    ids = t.channels(value[0], 1, f"{node.name} reads channels that vary along other dims")
    for block in ids.reshape(groups, -1):
        _tie_group(t, block, f"{node.name}: a group holds pinned channels")
    const = value[1]
    per_group = const.reshape(const.shape[0], groups, -1).all(-1)
    grouped = np.repeat(per_group, const.shape[1] // groups, axis=1)
    const = np.broadcast_to(grouped.reshape(grouped.shape + (1,) * (const.ndim - 2)), const.shape)
    return _affine(t, node, val, _arg(node, 2, "weight"), _arg(node, 3, "bias"), (), const)


def _norm_over(t: Walk, node: fx.Node, val: Any) -> Any:
    """LayerNorm and softmax-like ops: channels are mixed by statistics; pinned."""
    value = t.get(_a(node)[0])
    if value is None:
        return t.unknown(node, f"{node.name} reads no channels")
    t.pin(value[0], f"{node.name} ({node.target}) computes statistics over channels")
    for arg in node.all_input_nodes[1:]:
        name = t.name(arg)
        if name is not None:
            t.frozen.setdefault(name, f"{name} belongs to {node.name}")
    out = val[0] if isinstance(val, list | tuple) else val
    return t.pinned_value(out, f"{node.name} output") if out is not val else value


def _reduce(
    t: Walk, node: fx.Node, val: Any, dims: Sequence[int], keep: bool, const_ok: bool
) -> Any:
    """An op that aggregates along ``dims`` of its input (pooling, means)."""
    value = t.get(_a(node)[0])
    out = val[0] if isinstance(val, list | tuple) else val
    if value is None or not isinstance(out, Tensor):
        return t.unknown(node, f"{node.name} reads no channels")
    ids, const = value
    dims = sorted(d % ids.ndim for d in dims)
    index = tuple(slice(0, 1) if d in dims else slice(None) for d in range(ids.ndim))
    first_ids, first_const = ids[index], const[index]
    if not (ids == first_ids).all():
        t.pin(ids, f"{node.name} aggregates across channels")
    if not keep:
        first_ids = first_ids.squeeze(tuple(dims))
        first_const = first_const.squeeze(tuple(dims))
    shape = _shape(out)
    result = (np.broadcast_to(first_ids, shape), np.broadcast_to(first_const & const_ok, shape))
    if out is val:
        return result
    return [result, *(result for _ in val[1:])]


def _pool(t: Walk, node: fx.Node, val: Any) -> Any:
    out = val[0] if isinstance(val, list | tuple) else val
    spatial = out.dim() - 2
    padding = _arg(node, 3, "padding", 0)
    pads = padding if isinstance(padding, list | tuple) else [padding]
    averaging = "avg" in str(node.target) and not str(node.target).count("adaptive")
    const_ok = not (
        averaging and any(int(p) for p in pads) and _arg(node, 5, "count_include_pad", True)
    )
    return _reduce(t, node, val, range(-spatial, 0), True, const_ok)


def _mean(t: Walk, node: fx.Node, val: Any) -> Any:
    dims = _arg(node, 1, "dim")
    value = t.get(_a(node)[0])
    if value is None:
        return t.unknown(node, f"{node.name} reads no channels")
    dims = list(range(value[0].ndim)) if dims is None else dims
    dims = [dims] if isinstance(dims, int) else dims
    return _reduce(t, node, val, dims, bool(_arg(node, 2, "keepdim", False)), True)


def _reshape(t: Walk, node: fx.Node, val: Any) -> Any:
    value = t.get(_a(node)[0])
    if value is None or not isinstance(val, Tensor):
        return t.unknown(node, f"{node.name} reads no channels")
    shape = _shape(val)
    ids = value[0].reshape(shape)
    if max(_varying(value[0]), _varying(ids)) > 1:  # e.g. a channel shuffle's (groups, C/groups)
        t.pin(value[0], f"{node.name} splits or merges channels that vary along two dims")
    return ids, value[1].reshape(shape)


def _varying(ids: np.ndarray) -> int:
    """How many dims ``ids`` varies along."""
    return sum(
        1
        for d in range(ids.ndim)
        if ids.shape[d] > 1 and ids.strides[d] != 0 and not (ids == np.take(ids, [0], d)).all()
    )


def _permute(t: Walk, node: fx.Node, val: Any) -> Any:
    value = t.get(_a(node)[0])
    if value is None:
        return t.unknown(node, f"{node.name} reads no channels")
    ids, const = value
    op = str(node.target)
    if ".t." in op or op.endswith(".t") or "aten.t.default" in op:
        return ids.T, const.T
    if "transpose" in op:
        return np.swapaxes(ids, _a(node)[1], _a(node)[2]), np.swapaxes(
            const, _a(node)[1], _a(node)[2]
        )
    order = list(_a(node)[1])
    return np.transpose(ids, order), np.transpose(const, order)


def _cat(t: Walk, node: fx.Node, val: Any) -> Any:
    parts = [t.get(a) for a in _a(node)[0]]
    if any(p is None for p in parts):
        return t.unknown(node, f"{node.name} concatenates a tensor without channels")
    dim = int(_arg(node, 1, "dim", 0))
    ids = np.concatenate([p[0] for p in parts if p is not None], dim)
    const = np.concatenate([p[1] for p in parts if p is not None], dim)
    return ids, const


def _split(t: Walk, node: fx.Node, val: Any) -> Any:
    value = t.get(_a(node)[0])
    if value is None:
        return t.unknown(node, f"{node.name} reads no channels")
    dim = int(_arg(node, 2, "dim", 0)) % value[0].ndim
    bounds = np.cumsum([int(v.shape[dim]) for v in val])[:-1]
    return list(zip(np.split(value[0], bounds, dim), np.split(value[1], bounds, dim), strict=True))


def _getitem(t: Walk, node: fx.Node, val: Any) -> Any:
    parts = t.values.get(_a(node)[0].name) if isinstance(_a(node)[0], fx.Node) else None
    if isinstance(parts, list):
        return parts[int(_a(node)[1])]
    return t.unknown(node, f"{node.name} indexes an unknown value")


def _slice(t: Walk, node: fx.Node, val: Any) -> Any:
    value = t.get(_a(node)[0])
    if value is None or not isinstance(val, Tensor):
        return t.unknown(node, f"{node.name} reads no channels")
    ids, const = value
    dim = int(_arg(node, 1, "dim", 0)) % ids.ndim
    first = np.take(ids, [0], axis=dim)
    if not (ids == first).all() and ids.shape[dim] != val.shape[dim]:
        t.pin(ids, f"{node.name} takes a fixed range of channels")
    start = _arg(node, 2, "start") or 0
    end = _arg(node, 3, "end")
    step = _arg(node, 4, "step", 1) or 1
    if "select" in str(node.target):
        index = int(_a(node)[2])
        return np.take(ids, index, axis=dim), np.take(const, index, axis=dim)
    cut = tuple(slice(start, end, step) if d == dim else slice(None) for d in range(ids.ndim))
    return ids[cut], const[cut]


def _expand(t: Walk, node: fx.Node, val: Any) -> Any:
    value = t.get(_a(node)[0])
    if value is None or not isinstance(val, Tensor):
        return t.unknown(node, f"{node.name} reads no channels")
    shape = _shape(val)
    return _broadcast(value[0], shape), _broadcast(value[1], shape)


def _pad(t: Walk, node: fx.Node, val: Any) -> Any:
    value = t.get(_a(node)[0])
    if value is None or not isinstance(val, Tensor):
        return t.unknown(node, f"{node.name} reads no channels")
    pads = list(_a(node)[1])
    dims = [value[0].ndim - 1 - k // 2 for k in range(len(pads)) if pads[k]]
    return _reduce(t, node, val, sorted(set(dims)), True, False)


_RULES: dict[str, Rule] = {
    "conv1d": _conv, "conv2d": _conv, "conv3d": _conv, "linear": _linear, "addmm": _addmm,
    "conv_transpose1d": _conv_transpose, "conv_transpose2d": _conv_transpose,
    "conv_transpose3d": _conv_transpose,
    "batch_norm": _batch_norm, "_native_batch_norm_legit_no_training": _batch_norm,
    "group_norm": _group_norm, "layer_norm": _norm_over, "softmax": _norm_over,
    "_softmax": _norm_over, "log_softmax": _norm_over,
    **dict.fromkeys(
        ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
         "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
         "adaptive_max_pool1d", "adaptive_max_pool2d", "max_pool2d_with_indices"], _pool),
    "mean": _mean, "amax": _mean,
    **dict.fromkeys(
        ["view", "reshape", "_unsafe_view", "flatten", "unflatten", "squeeze", "unsqueeze"],
        _reshape),
    "permute": _permute, "transpose": _permute, "t": _permute,
    "cat": _cat, "concat": _cat, "chunk": _split, "split": _split, "split_with_sizes": _split,
    "unbind": _split, "getitem": _getitem, "slice": _slice, "select": _slice,
    "expand": _expand, "pad": _pad, "constant_pad_nd": _pad,
}  # fmt: skip

PARAMETER_READERS = frozenset(
    {"conv1d", "conv2d", "conv3d", "linear", "addmm", "batch_norm", "group_norm",
     "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
     "_native_batch_norm_legit_no_training", "add", "add_", "mul", "mul_", "sub", "div"}
)  # fmt: skip
"""Ops whose parameter operands the rules turn into members; any other reader of a
parameter pins every unit that holds it."""


def rule_for(node: fx.Node) -> Rule | None:
    """The rule for ``node``'s op, or ``None``."""
    name = op_name(node)
    if name in _RULES:
        return _RULES[name]
    if name in _ELEMENTWISE or torch.Tag.pointwise in getattr(node.target, "tags", ()):
        return _elementwise
    return None
