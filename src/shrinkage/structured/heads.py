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

The layers are recognized by small adapters, one per layout (the attention modules of
Hugging Face BERT-style encoders, GPT-2 and Llama-style decoders), because a traced graph
shows a head only as a reshape of a projection's channels:

* :func:`head_groups`: one :class:`~shrinkage.structured.slices.SliceGroups` per layer (two
  with grouped-query attention), for :class:`~shrinkage.Regularizer`;
* :func:`compact_heads`: a copy without the removable heads, every attribute its forward
  reads (head counts, projection widths) set to match.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .errors import CompactionError
from .rebuild import GroupReport
from .slices import SliceGroups, SliceMember

__all__ = [
    "HeadLayout",
    "check_layouts",
    "compact_heads",
    "head_groups",
    "head_layouts",
    "shape_attributes",
]


@dataclass(frozen=True)
class Slot:
    """Slices ``offset + h*d : offset + (h+1)*d`` of ``parameter`` (a name relative to the
    attention module) along ``dim`` belong to head ``h``."""

    parameter: str
    dim: int
    offset: int = 0


@dataclass(frozen=True)
class HeadLayout:
    """One attention layer: ``heads`` query heads of size ``head_dim``, ``kv_heads``
    key/value heads (``heads`` without grouped-query attention); which slices each owns
    (``query``: query rows; ``keys``, ``values``: key and value rows; ``output``: output
    columns); ``kind``: the adapter's name."""

    kind: str
    heads: int
    kv_heads: int
    head_dim: int
    query: tuple[Slot, ...]
    keys: tuple[Slot, ...]
    values: tuple[Slot, ...]
    output: tuple[Slot, ...]

    @property
    def shared(self) -> bool:
        """Grouped-query attention: a key/value head is read by several query heads."""
        return self.kv_heads != self.heads


def _linear(module: nn.Module, name: str) -> bool:
    return isinstance(getattr(module, name, None), nn.Linear)


def _bias(module: nn.Module, path: str) -> bool:
    owner, _, attr = path.rpartition(".")
    return getattr(module.get_submodule(owner), attr, None) is not None


def _rows(module: nn.Module, *paths: str, offset: int = 0) -> tuple[Slot, ...]:
    """The weight rows and bias entries of each projection in ``paths``."""
    out = []
    for p in paths:
        out.append(Slot(f"{p}.weight", 0, offset))
        if _bias(module, f"{p}.bias"):
            out.append(Slot(f"{p}.bias", 0, offset))
    return tuple(out)


def _bert(module: nn.Module) -> HeadLayout | None:
    """BERT-style: ``self.query / key / value`` and ``output.dense`` (``BertAttention``)."""
    inner, out = getattr(module, "self", None), getattr(module, "output", None)
    if inner is None or out is None or not _linear(out, "dense"):
        return None
    if not all(_linear(inner, n) for n in ("query", "key", "value")):
        return None
    heads, d = (
        getattr(inner, "num_attention_heads", None),
        getattr(inner, "attention_head_size", None),
    )
    if not isinstance(heads, int) or not isinstance(d, int):
        return None
    return HeadLayout(
        "bert", heads, heads, d, _rows(module, "self.query"), _rows(module, "self.key"),
        _rows(module, "self.value"), (Slot("output.dense.weight", 1),),
    )  # fmt: skip


def _gpt2(module: nn.Module) -> HeadLayout | None:
    """GPT-2: one fused ``c_attn`` (``Conv1D``, weight ``[in, out]``) and ``c_proj``."""
    c_attn, c_proj = getattr(module, "c_attn", None), getattr(module, "c_proj", None)
    heads, d = getattr(module, "num_heads", None), getattr(module, "head_dim", None)
    if not isinstance(heads, int) or not isinstance(d, int) or c_attn is None or c_proj is None:
        return None
    if getattr(module, "is_cross_attention", False) or not hasattr(c_attn, "nf"):
        return None
    width = heads * d

    def fused(part: int) -> tuple[Slot, ...]:
        return (Slot("c_attn.weight", 1, part * width), Slot("c_attn.bias", 0, part * width))

    return HeadLayout(
        "gpt2", heads, heads, d, fused(0), fused(1), fused(2), (Slot("c_proj.weight", 0),)
    )


def _llama(module: nn.Module) -> HeadLayout | None:
    """Llama-style: ``q_proj / k_proj / v_proj / o_proj``, grouped-query attention through
    ``num_key_value_groups``."""
    if not all(_linear(module, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")):
        return None
    d, groups = getattr(module, "head_dim", None), getattr(module, "num_key_value_groups", None)
    if not isinstance(d, int) or not isinstance(groups, int):
        return None
    q = module.get_submodule("q_proj")
    k = module.get_submodule("k_proj")
    assert isinstance(q, nn.Linear) and isinstance(k, nn.Linear)
    heads, kv_heads = q.out_features // d, k.out_features // d
    if kv_heads * groups != heads:
        return None
    return HeadLayout(
        "llama", heads, kv_heads, d, _rows(module, "q_proj"), _rows(module, "k_proj"),
        _rows(module, "v_proj"), (Slot("o_proj.weight", 1),),
    )  # fmt: skip


def _set_bert(module: nn.Module, heads: int, per_kv: int, d: int) -> None:
    inner = module.get_submodule("self")
    setattr(inner, "num_attention_heads", heads)  # noqa: B010 (plain attributes)
    setattr(inner, "all_head_size", heads * d)  # noqa: B010


def _set_gpt2(module: nn.Module, heads: int, per_kv: int, d: int) -> None:
    for owner, attr, value in (
        (module, "num_heads", heads), (module, "split_size", heads * d),
        (module.get_submodule("c_attn"), "nf", 3 * heads * d),
        (module.get_submodule("c_proj"), "nx", heads * d),
    ):  # fmt: skip
        setattr(owner, attr, value)


def _set_llama(module: nn.Module, heads: int, per_kv: int, d: int) -> None:
    setattr(module, "num_key_value_groups", per_kv)  # noqa: B010 (a plain attribute)


_ADAPTERS = (_bert, _gpt2, _llama)
_SETTERS = {"bert": _set_bert, "gpt2": _set_gpt2, "llama": _set_llama}


def head_layouts(model: nn.Module) -> Iterator[tuple[str, HeadLayout]]:
    """Every attention module of ``model`` that an adapter recognizes, with its layout."""
    for name, module in model.named_modules():
        for adapter in _ADAPTERS:
            layout = adapter(module)
            if layout is not None:
                yield name, layout
                break


def _ints(module: nn.Module, *names: str) -> bool:
    return all(isinstance(getattr(module, n, None), int) for n in names)


def shape_attributes(module: nn.Module) -> tuple[str, ...]:
    """The integer attributes, beyond its tensors' shapes, that the forward of a compacted
    attention module (or a GPT-2 ``Conv1D``, weight ``[nx, nf]``) reads, which a checkpoint
    records to rebuild it; ``()`` for any other module."""
    if _ints(module, "nf", "nx") and isinstance(getattr(module, "weight", None), Tensor):
        return ("nf", "nx")
    if all(_linear(module, n) for n in ("query", "key", "value")) and _ints(
        module, "num_attention_heads", "all_head_size"
    ):
        return ("num_attention_heads", "all_head_size")
    if _gpt2(module) is not None and _ints(module, "split_size"):
        return ("num_heads", "split_size")
    if _llama(module) is not None:
        return ("num_key_value_groups",)
    return ()


def check_layouts(model: nn.Module) -> None:
    """A ``ValueError`` naming the layer when an attention module's head counts and sizes
    disagree with its projections' shapes (a checkpoint rebuilt on the ``meta`` device is
    checked before any memory is allocated)."""
    for name, layout in head_layouts(model):
        module = model.get_submodule(name)
        extent: dict[tuple[str, int], int] = {}
        for slots, count in (
            (layout.query + layout.output, layout.heads),
            (layout.keys + layout.values, layout.kv_heads),
        ):
            for s in slots:
                key = (s.parameter, s.dim)
                extent[key] = max(extent.get(key, 0), s.offset + count * layout.head_dim)
        for (parameter, dim), size in extent.items():
            actual = module.get_parameter(parameter).shape[dim]
            if actual != size:
                raise ValueError(
                    f"layer {name!r}: {layout.heads} heads of size {layout.head_dim} "
                    f"({layout.kv_heads} key/value heads) need {size} slices of {parameter} "
                    f"along dim {dim}, but it has {actual}"
                )
        width = layout.heads * layout.head_dim
        for owner, attr in (
            (getattr(module, "self", None), "all_head_size"),
            (module, "split_size"),
        ):
            value = getattr(owner, attr, None)
            if isinstance(value, int) and value != width:
                raise ValueError(
                    f"layer {name!r}: {attr}={value} disagrees with {layout.heads} heads of "
                    f"size {layout.head_dim}"
                )


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


def head_groups(model: nn.Module, lam: float, example_input: object = None) -> list[SliceGroups]:
    """A group lasso over every attention head of ``model``:

        P = lam * sum_h sqrt(size_h) * ||theta_h||_2,

    ``theta_h`` the head's query, key and value rows (and biases) and its output-projection
    columns (``size_h = 4 * d * hidden`` plus biases for a layer of hidden width ``hidden``
    and head size ``d``). With grouped-query attention, each query head's group is its query
    rows and output columns, and each key/value head has its own group (key and value rows).

    Returns one :class:`SliceGroups` per layer (two with grouped-query attention), holding
    ``model``'s own parameters, for :class:`~shrinkage.Regularizer`. ``example_input`` is
    accepted for symmetry with :func:`~shrinkage.neuron_groups` and not needed.

    Raises:
        CompactionError: ``model`` has no attention module that an adapter recognizes.
    """
    del example_input
    out = []
    for name, layout in head_layouts(model):
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
        raise CompactionError(
            f"{type(model).__name__} has no attention layer shrinkage recognizes (BERT-style "
            "self.query/key/value + output.dense, GPT-2 c_attn + c_proj, or Llama-style "
            "q_proj/k_proj/v_proj/o_proj)"
        )
    return out


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
        owner, _, attr = name.rpartition(".")
        holder = module.get_submodule(owner)
        old = module.get_parameter(name)
        new = old.detach().index_select(dim, torch.nonzero(mask).reshape(-1)).clone()
        setattr(holder, attr, nn.Parameter(new, requires_grad=old.requires_grad))
        if isinstance(holder, nn.Linear):
            holder.out_features, holder.in_features = holder.weight.shape
    _SETTERS[layout.kind](module, len(queries), len(queries) // max(len(kv), 1), d)


def compact_heads(model: nn.Module) -> tuple[nn.Module, list[GroupReport]]:
    """An eval-mode copy of ``model`` without its removable heads (see the module docstring),
    and one report row per attention layer (heads and that layer's parameters before and
    after, and the dead heads kept with the reason). ``model`` is not changed; a model
    without a recognized attention layer is returned itself, with no rows."""
    if next(head_layouts(model), None) is None:
        return model, []
    new = copy.deepcopy(model).eval()
    rows = []
    with torch.no_grad():
        for name, layout in list(head_layouts(new)):
            module = new.get_submodule(name)
            before = sum(p.numel() for p in module.parameters())
            queries, kv, reasons = _keep(module, layout)
            _cut(module, layout, queries, kv)
            after = sum(p.numel() for p in module.parameters())
            rows.append(GroupReport(name, layout.heads, len(queries), before, after, reasons))
    return new, rows
