"""The residual width of an RMSNorm decoder as units: their group lasso, and their removal.

In a Llama-style decoder (Llama, Mistral, Qwen2: ``embed_tokens``, ``layers`` of
``input_layernorm``, ``self_attn.{q,k,v,o}_proj``, ``post_attention_layernorm``,
``mlp.{gate,up,down}_proj``, a final ``norm``, and an ``lm_head``), channel ``j`` of the
residual stream is written only by column ``j`` of the embedding and rows ``j`` of every
``o_proj`` and ``down_proj``. When all of them are zero the channel is zero at every position
of every layer, and the layers that read the stream (every RMSNorm, and through them the
q/k/v, gate/up projections and the LM head) ignore it but for one term: RMSNorm's mean of
squares runs over all ``d`` channels. With ``k`` zero channels,

    mean_d(x^2) = (d - k) / d * mean_{d-k}(x^2),

so ``x / sqrt(mean_d(x^2) + eps) * g`` equals ``x / sqrt(mean_{d-k}(x^2) + eps') * g'``
with ``g' = g * sqrt(d / (d - k))`` and ``eps' = eps * d / (d - k)``: removing the channels
and rescaling every norm so is exact. (A LayerNorm also subtracts the mean, which the zero
channels change: its width stays.)

* :func:`residual_groups`: one :class:`~shrinkage.structured.slices.SliceGroups` whose unit
  ``j`` is every slice that channel ``j`` touches;
* :func:`remove_residual_`: the channels whose writers are all zero out of
  :func:`~shrinkage.compact`'s working copy, every norm rescaled and every width attribute
  set to match.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .errors import CompactionError
from .rebuild import GroupReport
from .slices import SliceGroups, SliceMember
from .surgery import keep_slices

__all__ = [
    "ResidualLayout",
    "epsilon_attribute",
    "remove_residual_",
    "residual_groups",
    "residual_layouts",
]

_LAYER = {
    "input_layernorm",
    "post_attention_layernorm",
    "self_attn",
    "mlp",
}
_READERS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj")
_WRITERS = ("self_attn.o_proj", "mlp.down_proj")


@dataclass(frozen=True)
class ResidualLayout:
    """One decoder's residual stream: ``writers`` and ``readers`` are ``(parameter name,
    dim)`` slices of channel ``j`` (names relative to the model), ``norms`` the RMSNorm
    modules that normalize it, ``tied`` the heads that share the embedding's weight,
    ``width`` its channels."""

    decoder: str
    width: int
    writers: tuple[tuple[str, int], ...]
    readers: tuple[tuple[str, int], ...]
    norms: tuple[str, ...]
    tied: tuple[str, ...] = ()


def epsilon_attribute(norm: nn.Module) -> str:
    """The name of ``norm``'s epsilon: ``eps`` for ``nn.RMSNorm``, ``variance_epsilon`` for
    Hugging Face's RMSNorms."""
    return "eps" if isinstance(norm, nn.RMSNorm) else "variance_epsilon"


def _rms_epsilon(norm: nn.Module) -> float | None:
    """The ``eps`` of a module that computes ``x / sqrt(mean(x^2) + eps) * weight`` over the
    last dim, checked on a random input; ``None`` for any other module."""
    weight = getattr(norm, "weight", None)
    eps = getattr(norm, epsilon_attribute(norm), None)
    if not isinstance(weight, Tensor) or weight.dim() != 1:
        return None
    if eps is None and isinstance(norm, nn.RMSNorm):
        eps = torch.finfo(weight.dtype).eps
    if not isinstance(eps, float):
        return None
    x = torch.randn(3, weight.numel(), generator=torch.Generator().manual_seed(0))
    x = x.to(weight.dtype)
    with torch.no_grad():
        expected = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight
        got = norm(x)
    return eps if torch.allclose(got, expected, atol=1e-5, rtol=1e-4) else None


_Slices = list[tuple[str, int]]


def _layer_slices(prefix: str, layer: nn.Module) -> tuple[_Slices, _Slices, list[str]] | None:
    """A decoder layer's writer and reader slices of the stream, its norms; ``None`` when it
    is not a Llama-style layer."""
    names = {name for name, _ in layer.named_children()}
    paths = (*_READERS, "mlp.up_proj", *_WRITERS)
    if names != _LAYER or not all(_is_linear(layer, p) for p in paths):
        return None
    writers = [(f"{prefix}{p}.weight", 0) for p in _WRITERS]
    writers += [(f"{prefix}{p}.bias", 0) for p in _WRITERS if _has_bias(layer, p)]
    readers = [(f"{prefix}{p}.weight", 1) for p in (*_READERS, "mlp.up_proj")]
    norms = [f"{prefix}input_layernorm", f"{prefix}post_attention_layernorm"]
    return writers, readers, norms


def _is_linear(module: nn.Module, path: str) -> bool:
    try:
        return isinstance(module.get_submodule(path), nn.Linear)
    except AttributeError:
        return False


def _has_bias(module: nn.Module, path: str) -> bool:
    return module.get_submodule(path).bias is not None


def _heads(model: nn.Module, decoder: str, width: int) -> list[str] | None:
    """The layers outside ``decoder`` that read its output: ``model``'s other children, each
    an ``nn.Linear`` of ``width`` inputs (an LM head, a classifier); ``None`` when the decoder
    is not ``model`` or a child of it, or another child is anything else."""
    if "." in decoder:
        return None
    others = [(n, m) for n, m in model.named_children() if n != decoder] if decoder else []
    if not all(isinstance(m, nn.Linear) and m.in_features == width for _, m in others):
        return None
    return [n for n, _ in others]


def _tied(model: nn.Module, head: str, embed: nn.Embedding) -> bool:
    """Whether ``head``'s weight is the embedding's."""
    return model.get_submodule(head).weight is embed.weight


def _decoder_layout(model: nn.Module, name: str, decoder: nn.Module) -> ResidualLayout | None:
    """The layout of ``decoder`` (``model``'s submodule ``name``), or ``None``."""
    embed, layers = getattr(decoder, "embed_tokens", None), getattr(decoder, "layers", None)
    norm = getattr(decoder, "norm", None)
    if not (isinstance(embed, nn.Embedding) and isinstance(layers, nn.ModuleList) and norm):
        return None
    others = [m for n, m in decoder.named_children() if n not in ("embed_tokens", "layers", "norm")]
    if any(p.numel() for m in others for p in m.parameters()):
        return None  # another layer with weights might read the stream
    prefix = f"{name}." if name else ""
    writers: _Slices = [(f"{prefix}embed_tokens.weight", 1)]
    readers: _Slices = []
    norms = [f"{prefix}norm"]
    for i, layer in enumerate(layers):
        found = _layer_slices(f"{prefix}layers.{i}.", layer)
        if found is None:
            return None
        writers += found[0]
        readers += found[1]
        norms += found[2]
    heads = _heads(model, name, embed.embedding_dim)
    if heads is None:
        return None
    readers += [(f"{head}.weight", 1) for head in heads if not _tied(model, head, embed)]
    tied = tuple(head for head in heads if _tied(model, head, embed))
    if any(_rms_epsilon(model.get_submodule(n)) is None for n in norms):
        return None
    width = embed.embedding_dim
    return ResidualLayout(name, width, tuple(writers), tuple(readers), tuple(norms), tied)


def residual_layouts(model: nn.Module) -> Iterator[ResidualLayout]:
    """Every Llama-style decoder in ``model`` whose norms are RMSNorms (see the module
    docstring).

    Args:
        model: any module.

    Returns:
        An iterator over the decoders' layouts, outermost first.
    """
    for name, module in model.named_modules():
        layout = _decoder_layout(model, name, module)
        if layout is not None:
            yield layout


def residual_groups(model: nn.Module, lam: float) -> list[SliceGroups]:
    """A group lasso over the residual channels of every RMSNorm decoder in ``model``.

        P = lam * sum_j sqrt(size_j) * ||theta_j||_2,

    ``theta_j`` channel ``j``'s embedding column, its rows of every ``o_proj`` and
    ``down_proj`` (and biases), its columns of every q/k/v, gate and up projection and of the
    LM head, and its entry of every norm weight (``size_j`` of them).

    Args:
        model: a model with a Llama-style decoder (:func:`residual_layouts`).
        lam: the strength ``lam``.

    Returns:
        One :class:`SliceGroups` per decoder, ``width`` units, holding ``model``'s own
        parameters.

    Raises:
        CompactionError: no such decoder in ``model``.

    Example:
        >>> import transformers
        >>> config = transformers.LlamaConfig(vocab_size=50, hidden_size=16,
        ...     num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
        >>> [g.units for g in residual_groups(transformers.LlamaForCausalLM(config), 0.1)]
        [16]
    """
    out = []
    for layout in residual_layouts(model):
        slices = (*layout.writers, *layout.readers, *((f"{n}.weight", 0) for n in layout.norms))
        index = torch.arange(layout.width)
        members = [SliceMember(p, model.get_parameter(p), dim, index) for p, dim in slices]
        label = f"{layout.decoder} residual" if layout.decoder else "residual"
        out.append(SliceGroups(lam, members, layout.width, label))
    if not out:
        raise CompactionError(
            f"{type(model).__name__} has no decoder whose residual width shrinkage can remove "
            "(embed_tokens, layers of input_layernorm / self_attn q,k,v,o_proj / "
            "post_attention_layernorm / mlp gate,up,down_proj, and a final norm, every norm "
            "an RMSNorm; the model itself, or its child beside Linear heads)"
        )
    return out


def _dead(model: nn.Module, layout: ResidualLayout) -> Tensor:
    """``[width]`` boolean: the channels every writer leaves at zero."""
    dead = torch.ones(layout.width, dtype=torch.bool)
    for name, dim in layout.writers:
        p = model.get_parameter(name).detach()
        dead &= ~(p != 0).movedim(dim, 0).reshape(p.shape[dim], -1).any(1)
    return dead


def _rescale(norm: nn.Module, keep: Tensor, ratio: float) -> None:
    """Keep ``norm``'s entries ``keep``; scale its weight by ``sqrt(ratio)``, eps by ``ratio``."""
    eps = _rms_epsilon(norm)
    assert eps is not None  # residual_layouts checked it
    old = norm.get_parameter("weight")
    weight = old.detach().index_select(0, keep) * math.sqrt(ratio)
    norm.weight = nn.Parameter(weight, requires_grad=old.requires_grad)
    setattr(norm, epsilon_attribute(norm), eps * ratio)
    if isinstance(norm, nn.RMSNorm):
        norm.normalized_shape = (weight.numel(),)


def _set_width(model: nn.Module, old: int, new: int) -> None:
    """Every ``hidden_size`` attribute (a module's, or its config's) that was ``old``."""
    for module in model.modules():
        for owner in (module, getattr(module, "config", None)):
            if owner is not None and getattr(owner, "hidden_size", None) == old:
                owner.hidden_size = new


def _cut(model: nn.Module, layout: ResidualLayout, keep: Tensor) -> None:
    ratio = layout.width / keep.numel()
    for name, dim in (*layout.writers, *layout.readers):
        keep_slices(model, name, dim, keep)
    for name in layout.norms:
        _rescale(model.get_submodule(name), keep, ratio)
    embed = model.get_parameter(layout.writers[0][0])  # the embedding's weight, sliced
    for name in layout.tied:
        head = model.get_submodule(name)
        assert isinstance(head, nn.Linear)  # residual_layouts checked it
        head.weight = embed
        head.in_features = embed.shape[1]
    _set_width(model.get_submodule(layout.decoder), layout.width, keep.numel())


def remove_residual_(model: nn.Module) -> list[GroupReport]:
    """Remove, in place, the residual channels the writers of ``model``'s RMSNorm decoders
    leave at zero (see the module docstring).

    Args:
        model: an eval-mode model the caller owns (:func:`~shrinkage.compact` passes its
            working copy); only its RMSNorm decoders change.

    Returns:
        One report row per decoder (channels and parameters before and after); none for a
        model without such a decoder.
    """
    rows = []
    with torch.no_grad():
        for layout in list(residual_layouts(model)):
            dead = _dead(model, layout)
            reasons: dict[str, int] = {}
            if bool(dead.all()):  # one channel stays: a stream of width 0 has no shape
                dead[0] = False
                reasons["a decoder keeps one channel"] = 1
            keep = torch.nonzero(~dead).reshape(-1)
            decoder = model.get_submodule(layout.decoder)
            before = sum(p.numel() for p in decoder.parameters())
            if keep.numel() < layout.width:
                _cut(model, layout, keep)
            after = sum(p.numel() for p in decoder.parameters())
            label = f"{layout.decoder} residual" if layout.decoder else "residual"
            rows.append(GroupReport(label, layout.width, keep.numel(), before, after, reasons))
    return rows
