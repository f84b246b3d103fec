"""Multi-head attention whose heads may be fewer than its width: what a compacted
``nn.MultiheadAttention`` becomes.

``nn.MultiheadAttention`` ties its head size to its width (``head_dim = embed_dim //
num_heads``), so it cannot hold fewer heads of the same size. :class:`HeadAttention` computes
the same function with ``num_heads`` heads of any ``head_dim``:

    q_h = x_q W_q,h^T + b_q,h        [N, L, d]     (k_h, v_h likewise from x_k, x_v: [N, S, d])
    A_h = softmax(q_h k_h^T / sqrt(d) + M_h)       [N, L, S]
    y   = concat_h(A_h v_h) W_o^T + b_o            [N, L, E]

with ``M_h`` the attention mask (boolean ``True``: not attended; or added as floats) plus the
key padding mask, as ``nn.MultiheadAttention`` takes them. It accepts the same call
(``query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights,
is_causal``), honours ``batch_first`` and unbatched inputs, and returns ``(output,
weights)``. :meth:`HeadAttention.from_multihead` builds one equal to a given
``nn.MultiheadAttention`` (the model's own is never changed).

``source_heads`` (a buffer) records which heads of the original layer each head is, so that a
per-head mask of the original's shape ``[N * source_num_heads, L, S]`` still applies. With
``need_weights=True`` the weights averaged over heads are averaged over the heads kept.

The module has no fused input projection: ``in_proj_weight`` and ``in_proj_bias`` are
``None``, as on an ``nn.MultiheadAttention`` without one, so ``nn.TransformerEncoderLayer``
calls its forward rather than a fused kernel; :func:`settle_encoders` turns off the nested-
tensor conversion of the ``nn.TransformerEncoder`` stacks that hold one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["HeadAttention", "settle_encoders"]


class HeadAttention(nn.Module):
    """Multi-head attention with ``num_heads`` heads of size ``head_dim`` on inputs of width
    ``embed_dim`` (keys ``kdim``, values ``vdim``); see the module docstring for the formula.

    Args:
        embed_dim: width ``E`` of the queries and of the output.
        num_heads: heads ``H``; the projections have ``H * head_dim`` rows.
        head_dim: size ``d`` of each head; scores are scaled by ``1 / sqrt(d)``.
        bias: biases on the query, key and value projections.
        out_bias: a bias on the output projection.
        batch_first: inputs ``[N, L, E]`` (else ``[L, N, E]``).
        dropout: dropout on the attention weights while training.
        kdim, vdim: widths of keys and values (``embed_dim`` when ``None``).
        source_num_heads: heads of the layer this one was cut from (``num_heads`` when
            ``None``), the head count that a per-head ``attn_mask`` is shaped for.
    """

    in_proj_weight: Tensor | None
    in_proj_bias: Tensor | None
    source_heads: Tensor

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        head_dim: int,
        *,
        bias: bool = True,
        out_bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        kdim: int | None = None,
        vdim: int | None = None,
        source_num_heads: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        sizes = {"embed_dim": embed_dim, "num_heads": num_heads, "head_dim": head_dim}
        for name, value in sizes.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, head_dim
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.batch_first, self.dropout = batch_first, dropout
        self.source_num_heads = source_num_heads or num_heads
        width, where = num_heads * head_dim, {"device": device, "dtype": dtype}
        self.q_proj = nn.Linear(embed_dim, width, bias=bias, **where)
        self.k_proj = nn.Linear(self.kdim, width, bias=bias, **where)
        self.v_proj = nn.Linear(self.vdim, width, bias=bias, **where)
        self.out_proj = nn.Linear(width, embed_dim, bias=out_bias, **where)
        self.in_proj_weight = None
        self.in_proj_bias = None
        self.register_buffer("source_heads", torch.arange(num_heads, device=device))

    @classmethod
    def from_multihead(cls, attention: nn.MultiheadAttention) -> HeadAttention:
        """A :class:`HeadAttention` that computes what ``attention`` computes.

        Args:
            attention: the layer; its tensors are copied, on their device and dtype.

        Returns:
            The new layer, with one projection per head.

        Raises:
            ValueError: ``attention`` built with ``add_bias_kv`` or ``add_zero_attn``, which
                this layer does not implement.
        """
        if attention.bias_k is not None or attention.add_zero_attn:
            raise ValueError(
                "nn.MultiheadAttention with add_bias_kv or add_zero_attn is not supported"
            )
        e, h = attention.embed_dim, attention.num_heads
        if attention.in_proj_weight is not None:
            weights = attention.in_proj_weight.chunk(3)
        else:
            weights = (
                attention.q_proj_weight, attention.k_proj_weight, attention.v_proj_weight,
            )  # fmt: skip
        biases = None if attention.in_proj_bias is None else attention.in_proj_bias.chunk(3)
        out = attention.out_proj
        new = cls(
            e, h, attention.head_dim, bias=biases is not None, out_bias=out.bias is not None,
            batch_first=attention.batch_first, dropout=attention.dropout,
            kdim=attention.kdim, vdim=attention.vdim,
            device=out.weight.device, dtype=out.weight.dtype,
        )  # fmt: skip
        with torch.no_grad():
            projections = (new.q_proj, new.k_proj, new.v_proj)
            for i, proj in enumerate(projections):
                proj.weight.copy_(weights[i])
                if biases is not None:
                    proj.bias.copy_(biases[i])
            new.out_proj.weight.copy_(out.weight)
            if out.bias is not None:
                new.out_proj.bias.copy_(out.bias)
            pairs = [(proj.weight, w) for proj, w in zip(projections, weights, strict=True)]
            pairs += [(new.out_proj.weight, out.weight), (new.out_proj.bias, out.bias)]
            if biases is not None:
                pairs += [(proj.bias, b) for proj, b in zip(projections, biases, strict=True)]
        for mine, theirs in pairs:
            if mine is not None and theirs is not None:
                mine.requires_grad_(theirs.requires_grad)
        return new.train(attention.training)

    def _mask(
        self, attn_mask: Tensor | None, key_padding_mask: Tensor | None, n: int, dtype: torch.dtype
    ) -> Tensor | None:
        """One additive mask broadcastable to ``[N, H, L, S]``."""

        def additive(m: Tensor) -> Tensor:
            if m.dtype == torch.bool:
                return torch.zeros(m.shape, dtype=dtype, device=m.device).masked_fill(
                    m, float("-inf")
                )
            return m.to(dtype)

        out = None
        if attn_mask is not None:
            m = additive(attn_mask)
            if m.dim() == 2:
                m = m[None, None]
            elif m.dim() == 3 and m.shape[0] == n * self.source_num_heads:
                m = m.reshape(n, self.source_num_heads, *m.shape[1:])[:, self.source_heads]
            else:
                raise ValueError(
                    f"attn_mask must have shape [L, S] or [N * {self.source_num_heads}, L, S], "
                    f"got {list(attn_mask.shape)}"
                )
            out = m
        if key_padding_mask is not None:
            k = additive(key_padding_mask.reshape(n, -1))[:, None, None, :]
            out = k if out is None else out + k
        return out

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attention over the kept heads, as ``nn.MultiheadAttention.forward`` computes it.

        Args:
            query: ``[N, L, E]`` (``[L, N, E]`` unless ``batch_first``; ``[L, E]`` unbatched).
            key: ``[N, S, E]``, laid out as ``query``.
            value: ``[N, S, E]``, laid out as ``query``.
            key_padding_mask: ``[N, S]``, boolean (true: ignore the key) or additive.
            need_weights: return the attention weights.
            attn_mask: ``[L, S]``, or ``[N * H, L, S]`` with ``H`` the source layer's heads;
                boolean (true: masked) or additive.
            average_attn_weights: average the weights over the heads.
            is_causal: without ``attn_mask``, mask the future.

        Returns:
            ``(output, weights)``: ``output`` laid out as ``query``; ``weights`` ``[N, L, S]``
            averaged over heads, ``[N, H, L, S]`` per head, or ``None`` when
            ``need_weights`` is false.
        """
        batched = query.dim() == 3
        if not batched:
            query, key, value = query[None], key[None], value[None]
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, length, source = query.shape[0], query.shape[1], key.shape[1]
        h, d = self.num_heads, self.head_dim

        def heads(proj: nn.Module, x: Tensor) -> Tensor:
            return proj(x).reshape(n, x.shape[1], h, d).transpose(1, 2)

        q, k, v = heads(self.q_proj, query), heads(self.k_proj, key), heads(self.v_proj, value)
        mask = self._mask(attn_mask, key_padding_mask, n, q.dtype)
        if mask is None and is_causal:
            future = torch.ones(length, source, dtype=torch.bool, device=q.device).triu(1)
            mask = self._mask(future, None, n, q.dtype)
        out, weights = self._attend(q, k, v, mask, need_weights)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if weights is not None and not batched:
            weights = weights[0]
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, h * d))
        if not batched:
            return out[0], weights
        return (out if self.batch_first else out.transpose(0, 1)), weights

    def _attend(
        self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Softmax attention of the heads, ``softmax(q k^T / sqrt(D) + mask) v``, with
        dropout on the weights while training.

        Args:
            q: ``[N, H, L, D]``; k, v: ``[N, H, S, D]``.
            mask: additive, broadcastable to ``[N, H, L, S]``, or ``None``.
            need_weights: form the weights (else torch's fused kernel, which keeps none).

        Returns:
            ``(out [N, H, L, D], weights [N, H, L, S] or None)``.
        """
        p = self.dropout if self.training else 0.0
        if not need_weights:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p, scale=1.0 / math.sqrt(self.head_dim)
            )
            return out, None
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        weights = torch.softmax(scores if mask is None else scores + mask, dim=-1)
        weights = F.dropout(weights, p) if p > 0 else weights
        return weights @ v, weights


def settle_encoders(model: nn.Module) -> None:
    """Turn off the nested-tensor fast path of every ``nn.TransformerEncoder`` in ``model``
    that holds a :class:`HeadAttention` (the path runs a fused kernel that needs an
    ``nn.MultiheadAttention``); its outputs are the same without it."""
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoder) and any(
            isinstance(m, HeadAttention) for m in module.modules()
        ):
            module.use_nested_tensor = False
