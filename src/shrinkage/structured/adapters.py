"""Which slices of an attention module belong to which head: one small adapter per layout.

These layouts are recognized by their modules and attributes (a layer no adapter names is
found from its traced graph instead, :mod:`~shrinkage.structured.graph_heads`):

* Hugging Face BERT-style encoders (``self.query / key / value``, ``output.dense``);
* GPT-2 (one fused ``c_attn`` ``Conv1D``, weight ``[in, out]``, and ``c_proj``);
* Llama-style decoders and Hugging Face's ViT (``q_proj / k_proj / v_proj / o_proj``,
  grouped-query attention);
* timm's ``Attention`` (one fused ``qkv`` ``nn.Linear``, ``proj``, ``attn_dim``);
* ``torch.nn.MultiheadAttention`` (``in_proj_weight`` or separate ``q/k/v_proj_weight``,
  ``out_proj``), as in ``nn.TransformerEncoderLayer`` and torchvision's ``VisionTransformer``;
  compaction turns it into a :class:`~shrinkage.structured.attention.HeadAttention`.

Each gives a :class:`HeadLayout`; a setter makes the attributes that a compacted module's
forward reads agree with its new head count.

Why these stay adapters rather than graph reads: each layout holds something that the
traced graph does not show or that the graph reader does not follow, so removing heads from
the tensors alone would break its forward or leave the module inconsistent.

* GPT-2 splits ``c_attn``'s output by the attribute ``split_size``, and timm's ``Attention``
  reshapes ``qkv`` by ``num_heads`` and merges by ``attn_dim``: the graph shows constants,
  not which attribute they came from.
* Llama-style decoders apply rotary embeddings between the split and the attention, and
  grouped-query attention repeats each key/value head ``num_key_value_groups`` times (an
  expand in the graph); the reader follows neither, and a query head may only leave with the
  group that reads its key/value head.
* ``nn.MultiheadAttention`` runs one fused function over packed weights: no graph of it shows
  heads.
* BERT-style encoders read the head count from their tensors, and the graph shows their
  heads, but the module keeps ``num_attention_heads`` and ``all_head_size``, which describe
  it to its users and which our checkpoints read back to rebuild it; the adapter keeps them
  true.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from torch import Tensor, nn

from .attention import HeadAttention

__all__ = [
    "HeadLayout",
    "Slot",
    "check_layouts",
    "head_layouts",
    "set_heads",
    "shape_attributes",
    "unrecognized",
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
    """One attention layer's heads, and the slices of its tensors each head owns.

    Attributes:
        kind: the adapter's name.
        heads: query heads.
        kv_heads: key/value heads (``heads`` without grouped-query attention).
        head_dim: a head's size.
        query: the query rows of each head.
        keys: the key rows of each key/value head.
        values: the value rows of each key/value head.
        output: the output-projection columns of each head.
    """

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


def _ints(module: nn.Module, *names: str) -> bool:
    return all(isinstance(getattr(module, n, None), int) for n in names)


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
    projections = ("self.query", "self.key", "self.value")
    return _separate(module, "bert", (heads, heads, d), projections, "output.dense")


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
    """Llama-style: ``q_proj / k_proj / v_proj / o_proj`` and ``head_dim`` (Llama, Mistral,
    Qwen, and Hugging Face's ViT), grouped-query attention through ``num_key_value_groups``
    (one query head per key/value head without it)."""
    if not all(_linear(module, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")):
        return None
    d, groups = getattr(module, "head_dim", None), getattr(module, "num_key_value_groups", 1)
    if not isinstance(d, int) or not isinstance(groups, int):
        return None
    q = module.get_submodule("q_proj")
    k = module.get_submodule("k_proj")
    assert isinstance(q, nn.Linear) and isinstance(k, nn.Linear)
    heads, kv_heads = q.out_features // d, k.out_features // d
    if kv_heads * groups != heads:
        return None
    projections = ("q_proj", "k_proj", "v_proj")
    return _separate(module, "llama", (heads, kv_heads, d), projections, "o_proj")


def _separate(
    module: nn.Module,
    kind: str,
    sizes: tuple[int, int, int],
    projections: tuple[str, str, str],
    out: str,
) -> HeadLayout:
    """The layout of separate query, key and value projections (``projections``, their
    module names) and an output projection ``out``; ``sizes``: heads, key/value heads, and
    the width of a head."""
    q, k, v = (_rows(module, name) for name in projections)
    return HeadLayout(kind, *sizes, q, k, v, (Slot(f"{out}.weight", 1),))


def _timm(module: nn.Module) -> HeadLayout | None:
    """timm ``Attention``: one fused ``qkv`` (``nn.Linear``, rows ``[q | k | v]``), ``proj``,
    ``attn_dim = num_heads * head_dim``; without ``scale_norm`` (a norm over every head at
    once) or a gate."""
    if not (_linear(module, "qkv") and _linear(module, "proj")):
        return None
    if not _ints(module, "num_heads", "head_dim", "attn_dim"):
        return None
    heads, d, width = (int(getattr(module, n)) for n in ("num_heads", "head_dim", "attn_dim"))
    if heads * d != width or getattr(module, "gate", None) is not None:
        return None
    if not isinstance(getattr(module, "norm", nn.Identity()), nn.Identity):
        return None

    def fused(part: int) -> tuple[Slot, ...]:
        return _rows(module, "qkv", offset=part * width)

    out = (Slot("proj.weight", 1),)
    return HeadLayout("timm", heads, heads, d, fused(0), fused(1), fused(2), out)


def _multihead(module: nn.Module) -> HeadLayout | None:
    """``nn.MultiheadAttention`` without ``add_bias_kv`` / ``add_zero_attn``."""
    if not isinstance(module, nn.MultiheadAttention):
        return None
    if module.bias_k is not None or module.add_zero_attn:
        return None
    e, d = module.embed_dim, module.head_dim
    bias = module.in_proj_bias is not None

    def part(i: int, separate: str) -> tuple[Slot, ...]:
        weight = (
            Slot("in_proj_weight", 0, i * e) if module.in_proj_weight is not None
            else Slot(separate, 0)
        )  # fmt: skip
        return (weight, Slot("in_proj_bias", 0, i * e)) if bias else (weight,)

    q, k, v = part(0, "q_proj_weight"), part(1, "k_proj_weight"), part(2, "v_proj_weight")
    h, out = module.num_heads, (Slot("out_proj.weight", 1),)
    return HeadLayout("multihead", h, h, d, q, k, v, out)


def _head_attention(module: nn.Module) -> HeadLayout | None:
    """A :class:`~shrinkage.structured.attention.HeadAttention` (a compacted
    ``nn.MultiheadAttention``)."""
    if not isinstance(module, HeadAttention):
        return None
    return HeadLayout(
        "head_attention", module.num_heads, module.num_heads, module.head_dim,
        _rows(module, "q_proj"), _rows(module, "k_proj"), _rows(module, "v_proj"),
        (Slot("out_proj.weight", 1),),
    )  # fmt: skip


def _set_bert(module: nn.Module, queries: list[int], kv: list[int], d: int) -> None:
    inner = module.get_submodule("self")
    setattr(inner, "num_attention_heads", len(queries))  # noqa: B010 (plain attributes)
    setattr(inner, "all_head_size", len(queries) * d)  # noqa: B010


def _set_gpt2(module: nn.Module, queries: list[int], kv: list[int], d: int) -> None:
    width = len(queries) * d
    for owner, attr, value in (
        (module, "num_heads", len(queries)), (module, "split_size", width),
        (module.get_submodule("c_attn"), "nf", 3 * width),
        (module.get_submodule("c_proj"), "nx", width),
    ):  # fmt: skip
        setattr(owner, attr, value)


_LLAMA_COUNTS = ("num_key_value_groups", "num_attention_heads", "num_key_value_heads")


def _set_llama(module: nn.Module, queries: list[int], kv: list[int], d: int) -> None:
    counts = {
        "num_key_value_groups": len(queries) // max(len(kv), 1),
        "num_attention_heads": len(queries),
        "num_key_value_heads": len(kv),
    }
    for attr in _LLAMA_COUNTS:  # the counts the module keeps, whether its forward reads them
        if isinstance(getattr(module, attr, None), int):
            setattr(module, attr, counts[attr])


def _set_timm(module: nn.Module, queries: list[int], kv: list[int], d: int) -> None:
    setattr(module, "num_heads", len(queries))  # noqa: B010 (plain attributes)
    setattr(module, "attn_dim", len(queries) * d)  # noqa: B010


def _set_head_attention(module: nn.Module, queries: list[int], kv: list[int], d: int) -> None:
    assert isinstance(module, HeadAttention)
    module.num_heads = len(queries)
    module.source_heads = module.source_heads[queries]


_ADAPTERS = (_bert, _gpt2, _llama, _timm, _multihead, _head_attention)


def _set_nothing(module: nn.Module, queries: list[int], kv: list[int], d: int) -> None:
    """A layer found from the graph: its forward reads the head count from its tensors."""


_SETTERS: dict[str, Callable[[nn.Module, list[int], list[int], int], None]] = {
    "bert": _set_bert, "gpt2": _set_gpt2, "llama": _set_llama, "timm": _set_timm,
    "head_attention": _set_head_attention, "graph": _set_nothing,
}  # fmt: skip


def set_heads(module: nn.Module, layout: HeadLayout, queries: list[int], kv: list[int]) -> None:
    """Make the attributes that ``module``'s forward reads agree with its tensors once only
    the query heads ``queries`` and key/value heads ``kv`` are left (``KeyError`` for a layout,
    ``"multihead"``, that must first become a ``HeadAttention``)."""
    _SETTERS[layout.kind](module, queries, kv, layout.head_dim)


def head_layouts(model: nn.Module) -> Iterator[tuple[str, HeadLayout]]:
    """Every attention module of ``model`` that an adapter recognizes, with its layout."""
    for name, module in model.named_modules():
        for adapter in _ADAPTERS:
            layout = adapter(module)
            if layout is not None:
                yield name, layout
                break


def unrecognized(model: nn.Module) -> list[str]:
    """The attention modules of ``model`` that no adapter takes, each as ``"name: why"``
    (``nn.MultiheadAttention`` with ``add_bias_kv`` / ``add_zero_attn``; timm's ``Attention``
    with ``scale_norm`` or a gate)."""
    out = []
    for name, module in model.named_modules():
        label = name or type(module).__name__
        if isinstance(module, nn.MultiheadAttention) and _multihead(module) is None:
            out.append(f"{label}: nn.MultiheadAttention with add_bias_kv or add_zero_attn")
        elif _linear(module, "qkv") and _ints(module, "attn_dim") and _timm(module) is None:
            out.append(f"{label}: attention with scale_norm or a gate")
    return out


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
        return tuple(a for a in _LLAMA_COUNTS if isinstance(getattr(module, a, None), int))
    if _timm(module) is not None:
        return ("num_heads", "attn_dim")
    if isinstance(module, HeadAttention):
        return ("num_heads",)
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
            (module, "attn_dim"),
        ):
            value = getattr(owner, attr, None)
            if isinstance(value, int) and value != width:
                raise ValueError(
                    f"layer {name!r}: {attr}={value} disagrees with {layout.heads} heads of "
                    f"size {layout.head_dim}"
                )
        if isinstance(module, HeadAttention) and module.source_heads.shape != (layout.heads,):
            raise ValueError(
                f"layer {name!r}: source_heads has shape {list(module.source_heads.shape)}, "
                f"but the layer has {layout.heads} heads"
            )
