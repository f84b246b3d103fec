"""Attention heads found from the traced graph, for attention layers no adapter names.

In the ``torch.export`` graph of a model, an attention layer that splits its projections into
heads shows the split: each of the query, key and value projections is a ``linear`` whose
output is viewed as ``[..., L, heads, head_dim]`` and transposed to ``[..., heads, L,
head_dim]`` before ``scaled_dot_product_attention`` (or ``matmul(softmax(matmul(q, k^T)),
v)``, with scaling, masks and dropout between); the attention's output is transposed
back, reshaped to ``[..., L, heads * head_dim]`` and read by the output projection. Such a
layer gets a :class:`~shrinkage.structured.adapters.HeadLayout` of kind ``"graph"`` without
any adapter: its heads are units for :func:`~shrinkage.head_groups` and are removed by
:func:`~shrinkage.compact` (Hugging Face DistilBERT, a hand-written attention).

Removing heads only slices the four projections, so it is exact for a forward that reads the
head count from its tensors (``view(..., -1, head_dim)``, ``reshape(..., -1)``); a layer whose
forward holds a fixed head count keeps its heads, and the compaction report says so.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx, nn

from .adapters import HeadLayout, Slot
from .trace import evaluated

__all__ = ["graph_head_layouts"]

_SDPA = "scaled_dot_product_attention"
_SPLIT = {"view", "reshape", "_unsafe_view"}
_THROUGH = {"contiguous", "clone", "alias"}


def _op(node: Any) -> str:
    if not isinstance(node, fx.Node) or node.op != "call_function":
        return ""
    return str(getattr(node.target, "__name__", node.target)).split(".")[0]


def _shape(node: fx.Node) -> tuple[int, ...]:
    val = node.meta.get("val")
    return tuple(int(s) for s in val.shape) if isinstance(val, torch.Tensor) else ()


def _swaps(node: Any, a: int, b: int) -> bool:
    """A transpose (or permute) of a 4-d tensor that swaps dims ``a`` and ``b`` alone."""
    args: Any = getattr(node, "args", ())
    if _op(node) == "transpose":
        return sorted(int(d) % 4 for d in args[1:3]) == [a, b]
    if _op(node) == "permute":
        order = [0, 1, 2, 3]
        order[a], order[b] = b, a
        return [int(d) % 4 for d in args[1]] == order
    return False


def _swaps_heads(node: Any) -> bool:
    """``[B, L, H, D]`` <-> ``[B, H, L, D]``."""
    return _swaps(node, 1, 2)


def _skip(node: Any) -> Any:
    while _op(node) in _THROUGH:
        node = node.args[0]
    return node


def _projection(node: Any, names: dict[str, str]) -> tuple[str, str | None, int, int] | None:
    """``(weight, bias, heads, head_dim)`` of the projection that ``node`` (an input of the
    attention) splits into heads, or ``None``."""
    node = _skip(node)
    if not _swaps_heads(node):
        return None
    split = _skip(node.args[0])
    if _op(split) not in _SPLIT or len(_shape(split)) != 4:
        return None
    linear = _skip(split.args[0])
    if _op(linear) != "linear" or _shape(linear)[-1] != _shape(split)[2] * _shape(split)[3]:
        return None
    weight = names.get(getattr(linear.args[1], "name", ""))
    bias = names.get(getattr(linear.args[2], "name", "")) if len(linear.args) > 2 else None
    if weight is None:
        return None
    return weight, bias, _shape(split)[2], _shape(split)[3]


def _only_user(node: fx.Node) -> Any:
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def _output(attention: fx.Node, names: dict[str, str], width: int) -> str | None:
    """The weight of the projection that reads ``attention``'s heads merged back, or
    ``None``."""
    node = _only_user(attention)
    while _op(node) in _THROUGH or (_op(node) in _SPLIT and _shape(node) == _shape(attention)):
        node = _only_user(node)  # copies, and reshapes to the same shape
    if node is None or not _swaps_heads(node):
        return None
    node = _only_user(node)
    while _op(node) in _THROUGH | _SPLIT and node is not None and _shape(node)[-1:] != (width,):
        node = _only_user(node)
    if node is None or _op(node) not in _SPLIT:
        return None
    node = _only_user(node)
    while _op(node) in _THROUGH:
        node = _only_user(node)
    if _op(node) != "linear" or node.args[0] is None:
        return None
    return names.get(getattr(node.args[1], "name", ""))


def _common(parameters: list[str]) -> str:
    """The deepest module that holds every one of ``parameters``."""
    paths = [p.split(".")[:-1] for p in parameters]
    common = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common)


_SCORES = {"softmax", "_softmax", "dropout", "add", "mul", "div", "sub", "where", "masked_fill"}


def _attention_inputs(node: fx.Node) -> tuple[Any, Any, Any] | None:
    """``(query, key, value)`` of an attention: ``scaled_dot_product_attention``, or
    ``matmul(softmax(matmul(q, k^T) ...), v)`` (scaling, masks and dropout between)."""
    if _op(node) == _SDPA:
        return node.args[0], node.args[1], node.args[2]
    if _op(node) != "matmul":
        return None
    scores: Any = node.args[0]
    softmax = False
    while _op(scores) in _SCORES:
        softmax = softmax or _op(scores) in ("softmax", "_softmax")
        scores = scores.args[0]
    if not softmax or _op(scores) != "matmul":
        return None
    key: Any = _skip(scores.args[1])
    return (scores.args[0], key.args[0], node.args[1]) if _swaps(key, 2, 3) else None


def _layout(attention: fx.Node, names: dict[str, str]) -> tuple[str, HeadLayout] | None:
    """The module and head layout of one attention, or ``None``."""
    inputs = _attention_inputs(attention)
    if inputs is None:
        return None
    found = [_projection(a, names) for a in inputs]
    if any(f is None for f in found) or len({(f[2], f[3]) for f in found if f}) != 1:
        return None
    projections = [f for f in found if f is not None]
    heads, head_dim = projections[0][2], projections[0][3]
    out = _output(attention, names, heads * head_dim)
    if out is None:
        return None
    module = _common([p[0] for p in projections] + [out])
    start = len(module) + 1 if module else 0

    def rows(projection: tuple[str, str | None, int, int]) -> tuple[Slot, ...]:
        weight, bias = projection[0], projection[1]
        slots = [Slot(weight[start:], 0)]
        return tuple(slots + ([Slot(bias[start:], 0)] if bias else []))

    q, k, v = (rows(p) for p in projections)
    layout = HeadLayout("graph", heads, heads, head_dim, q, k, v, (Slot(out[start:], 1),))
    return module, layout


def graph_head_layouts(model: nn.Module, example: tuple[Any, ...]) -> list[tuple[str, HeadLayout]]:
    """Every attention layer of ``model`` whose split into heads its traced graph shows.

    Args:
        model: any module ``torch.export`` can trace (not changed).
        example: positional inputs it accepts.

    Returns:
        ``(module name, layout)`` per layer, kind ``"graph"``; none when the model cannot be
        traced.
    """
    try:
        with torch.no_grad():
            program = torch.export.export(evaluated(model), example, strict=False)
    except Exception:  # the exporter raises many types; all mean "no graph to read"
        return []
    names = dict(program.graph_signature.inputs_to_parameters)
    out = []
    for node in program.graph.nodes:
        found = _layout(node, names)
        if found is not None:
            out.append(found)
    return out
