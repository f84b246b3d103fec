"""Attention heads as units: their group lasso, and their removal.

A head ``h`` of an attention layer with head size ``d`` owns slices of four projections:
rows ``h*d : (h+1)*d`` of the query, key and value projections (weights and biases) and the
same columns of the output projection. Its contribution to the layer's output is

    O[:, h*d:(h+1)*d] @ softmax(q_h k_h^T * scale) v_h,

so a head whose output columns are zero, or whose values (rows and bias) are zero, adds
nothing, and removing it leaves the outputs unchanged. With grouped-query attention a key /
value head ``j`` is shared by the query heads ``j*r : (j+1)*r`` (``r`` query heads per
key/value head): a query head's unit is its query rows and output columns, a key/value head's
unit its key and value rows, and a key/value head is removed only once every query head that
reads it is removed.

The layers are recognized by small adapters, one per layout
(:mod:`~shrinkage.structured.adapters`: Hugging Face BERT-style encoders, GPT-2, Llama-style
decoders, timm's ``Attention`` and ``torch.nn.MultiheadAttention``):

* :func:`head_groups`: one :class:`~shrinkage.structured.slices.SliceGroups` per layer (two
  with grouped-query attention), for :class:`~shrinkage.Regularizer`;
* :func:`remove_heads_`: the removable heads out of :func:`~shrinkage.compact`'s working
  copy, every attribute its forward reads (head counts, projection widths) set to match. An
  ``nn.MultiheadAttention`` that loses heads becomes a
  :class:`~shrinkage.structured.attention.HeadAttention` (the same call and outputs;
  ``nn.MultiheadAttention`` cannot hold fewer heads than its width).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .adapters import (
    HeadLayout,
    Slot,
    check_layouts,
    head_layouts,
    set_heads,
    shape_attributes,
    unrecognized,
)
from .attention import HeadAttention, settle_encoders
from .errors import CompactionError
from .graph_heads import graph_head_layouts
from .rebuild import GroupReport, outputs_of, same_outputs
from .residual import residual_groups
from .slices import SliceGroups, SliceMember
from .surgery import fit_widths, keep_slices, width_counts
from .trace import as_inputs

__all__ = [
    "HeadLayout",
    "check_layouts",
    "head_groups",
    "head_layouts",
    "remove_heads_",
    "shape_attributes",
]


def _index(
    module: nn.Module, slots: tuple[Slot, ...], d: int, count: int
) -> dict[tuple[str, int], Tensor]:
    """Per ``(parameter, dim)``: the head of each slice (``-1``: none)."""
    out: dict[tuple[str, int], Tensor] = {}
    for s in slots:
        p = module.get_parameter(s.parameter)
        index = out.setdefault((s.parameter, s.dim), torch.full((p.shape[s.dim],), -1))
        index[s.offset : s.offset + count * d] = torch.arange(count).repeat_interleave(d)
    return out


def _groups(
    prefix: str,
    module: nn.Module,
    slots: tuple[Slot, ...],
    d: int,
    count: int,
    lam: float,
    label: str,
) -> SliceGroups:
    members = [
        SliceMember(f"{prefix}{name}", module.get_parameter(name), dim, index)
        for (name, dim), index in _index(module, slots, d, count).items()
    ]
    return SliceGroups(lam, members, count, label)


def all_head_layouts(
    model: nn.Module, example: tuple[Any, ...] | None
) -> list[tuple[str, HeadLayout]]:
    """The layouts the adapters recognize; when they recognize none and ``example`` inputs are
    given, those the traced graph shows (:mod:`~shrinkage.structured.graph_heads`). A model
    with fewer than four matrices (a CNN and its classifier) has no attention to find, and is
    not traced for it."""
    found = list(head_layouts(model))
    matrices = sum(1 for p in model.parameters() if p.dim() == 2)
    if found or example is None or matrices < 4:
        return found
    return graph_head_layouts(model, example)


def head_groups(
    model: nn.Module, lam: float, example_input: object = None, *, residual: bool = False
) -> list[SliceGroups]:
    """A group lasso over every attention head of ``model``.

        P = lam * sum_h sqrt(size_h) * ||theta_h||_2,

    ``theta_h`` the head's query, key and value rows (and biases) and its output-projection
    columns (``size_h = 4 * d * hidden`` plus biases for a layer of hidden width ``hidden``
    and head size ``d``). With grouped-query attention, each query head's group is its query
    rows and output columns, and each key/value head has its own group (key and value rows).

    Args:
        model: a model whose attention modules an adapter recognizes
            (:mod:`~shrinkage.structured.adapters`).
        lam: the strength ``lam``.
        example_input: a batch the model accepts (or a tuple of inputs): with it, the
            attention layers no adapter recognizes are found from the traced graph
            (:mod:`~shrinkage.structured.graph_heads`).
        residual: also group the residual channels of every RMSNorm decoder
            (:func:`~shrinkage.structured.residual.residual_groups`), which
            :func:`~shrinkage.compact` removes exactly.

    Returns:
        One :class:`SliceGroups` per layer (two with grouped-query attention), holding
        ``model``'s own parameters, for :class:`~shrinkage.Regularizer`; with ``residual``,
        one more per decoder.

    Raises:
        CompactionError: ``model`` has no attention module that an adapter recognizes, or
            (with ``residual``) no RMSNorm decoder.
    """
    out: list[SliceGroups] = []
    example = None if example_input is None else as_inputs(example_input)
    for name, layout in all_head_layouts(model, example):
        module = model.get_submodule(name)
        prefix = f"{name}." if name else ""
        d = layout.head_dim
        if layout.shared:
            q = layout.query + layout.output
            out.append(_groups(prefix, module, q, d, layout.heads, lam, f"{name} query heads"))
            kv = layout.keys + layout.values
            out.append(
                _groups(prefix, module, kv, d, layout.kv_heads, lam, f"{name} key/value heads")
            )
        else:
            every = layout.query + layout.keys + layout.values + layout.output
            out.append(_groups(prefix, module, every, d, layout.heads, lam, f"{name} heads"))
    if not out:
        raise _refusal(model, example_input is not None)
    return (residual_groups(model, lam) if residual else []) + out


def _zero(module: nn.Module, slots: tuple[Slot, ...], d: int, h: int) -> bool:
    """Whether every slice of head ``h`` in ``slots`` is exactly zero."""
    for s in slots:
        p = module.get_parameter(s.parameter).detach()
        start = s.offset + h * d
        if bool(p.narrow(s.dim, start, d).any()):
            return False
    return True


def _keep(module: nn.Module, layout: HeadLayout) -> tuple[list[int], list[int], dict[str, int]]:
    """The query heads and key/value heads that stay, and the dead heads kept, by reason.

    A query head is dead when its output columns are zero or its key/value head's values
    are; a key/value head stays while a query head reads it. Grouped-query attention needs
    the same number of query heads per key/value head: dead heads fill the groups up."""
    d, r = layout.head_dim, layout.heads // layout.kv_heads
    dead_values = [_zero(module, layout.values, d, j) for j in range(layout.kv_heads)]
    live = [
        h for h in range(layout.heads)
        if not (_zero(module, layout.output, d, h) or dead_values[h // r])
    ]  # fmt: skip
    reasons: dict[str, int] = {}
    if not live:  # a layer keeps one head: zero heads would leave nothing to reshape
        live = [0]
        reasons["a layer keeps one head"] = 1
    kv_keep = sorted({h // r for h in live})
    per = max(sum(1 for h in live if h // r == j) for j in kv_keep)
    queries: list[int] = []
    for j in kv_keep:
        mine = [h for h in live if h // r == j]
        fill = [h for h in range(j * r, (j + 1) * r) if h not in mine][: per - len(mine)]
        if fill:
            why = "kept for an equal number of query heads per key/value head"
            reasons[why] = reasons.get(why, 0) + len(fill)
        queries.extend(sorted(mine + fill))
    return queries, kv_keep, reasons


def _cut(module: nn.Module, layout: HeadLayout, queries: list[int], kv: list[int]) -> None:
    """Remove every slice of the heads not in ``queries`` / ``kv`` from ``module``."""
    d = layout.head_dim
    masks: dict[tuple[str, int], Tensor] = {}
    by_kind = (
        (layout.query + layout.output, queries, layout.heads),
        (layout.keys + layout.values, kv, layout.kv_heads),
    )
    for slots, kept, count in by_kind:
        gone = [h for h in range(count) if h not in kept]
        for s in slots:
            p = module.get_parameter(s.parameter)
            mask = masks.setdefault(
                (s.parameter, s.dim), torch.ones(p.shape[s.dim], dtype=torch.bool)
            )
            for h in gone:
                mask[s.offset + h * d : s.offset + (h + 1) * d] = False
    for (name, dim), mask in masks.items():
        keep_slices(module, name, dim, torch.nonzero(mask).reshape(-1))
    set_heads(module, layout, queries, kv)


def remove_heads_(model: nn.Module, example: tuple[Any, ...] | None = None) -> list[GroupReport]:
    """Remove the removable heads of the eval-mode ``model`` in place (see the module
    docstring): one report row per attention layer (heads and that layer's parameters before
    and after, and the dead heads kept with the reason); no rows for a model without a
    recognized attention layer. The caller owns ``model`` (:func:`~shrinkage.compact` passes
    its working copy) and checks its outputs. Given ``example`` inputs, layers found from
    the graph lose their heads too, each kept whole when its outputs would change."""
    rows = []
    layouts = all_head_layouts(model, example)
    reference = outputs_of(model, example) if example and _graph(layouts) else []
    with torch.no_grad():
        for name, layout in layouts:
            module = model.get_submodule(name)
            before = sum(p.numel() for p in module.parameters())
            queries, kv, reasons = _keep(module, layout)
            before_cut = dict(module.named_parameters())
            if isinstance(module, nn.MultiheadAttention) and len(queries) < layout.heads:
                module = HeadAttention.from_multihead(module)
                model.set_submodule(name, module)
                layout = next(lay for n, lay in head_layouts(module) if n == "")
            if len(queries) < layout.heads or len(kv) < layout.kv_heads:
                _cut(module, layout, queries, kv)
                if layout.kind == "graph" and example and not _unchanged(model, reference, example):
                    _restore(module, before_cut)
                    reasons = {"kept: the layer's forward holds a fixed head count": layout.heads}
                    queries = list(range(layout.heads))
            after = sum(p.numel() for p in module.parameters())
            rows.append(GroupReport(name, layout.heads, len(queries), before, after, reasons))
    if rows:
        settle_encoders(model)
    return rows


def _graph(layouts: list[tuple[str, HeadLayout]]) -> bool:
    return any(layout.kind == "graph" for _, layout in layouts)


def _unchanged(model: nn.Module, reference: list[Tensor], example: tuple[Any, ...]) -> bool:
    """Whether ``model`` still returns ``reference`` on ``example``."""
    try:
        same_outputs(reference, model, example, 1e-5)
    except CompactionError:
        return False
    return True


def _restore(module: nn.Module, parameters: dict[str, nn.Parameter]) -> None:
    """Put ``module``'s former parameters back (and its linear layers' widths)."""
    for name, parameter in parameters.items():
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        before = width_counts(owner)
        setattr(owner, attr, parameter)
        fit_widths(owner, before)


def _refusal(model: nn.Module, traced: bool) -> CompactionError:
    """The error for a model without a layer whose heads shrinkage finds."""
    found = unrecognized(model)
    return CompactionError(
        f"{type(model).__name__} has no attention layer shrinkage recognizes (BERT-style "
        "self.query/key/value + output.dense, GPT-2 c_attn + c_proj, Llama-style "
        "q_proj/k_proj/v_proj/o_proj, timm Attention without scale_norm or gate, or "
        "nn.MultiheadAttention without add_bias_kv / add_zero_attn"
        + (
            ", nor one whose traced graph splits projections into heads for "
            "scaled_dot_product_attention)"
            if traced
            else "; pass example_input to find heads from the traced graph)"
        )
        + (f"; not supported: {'; '.join(found)}" if found else "")
    )
