"""In-place kernels behind the proximal operators, in two tiers behind one signature.

Each kernel takes a list of tensors on one device and dtype and a scalar or a list of
per-tensor tensors (broadcastable), and a ``foreach`` flag that picks the tier:

* ``foreach=False``, the per-tensor reference: one tensor at a time, plain torch ops;
* ``foreach=True``, the fast path for many tensors: torch's multi-tensor operations
  (``torch._foreach_*``, listed in torch's reference under "Foreach Operations" and used by
  ``torch.optim`` itself), one kernel launch per op for the whole list. This module is the one
  place in shrinkage that calls them.

Both tiers compute the same floating-point operations, so they agree bit for bit (tested).
Penalties call these; nothing here knows about penalties.

Soft-thresholding is ``w - clamp(w, -t, t)``: entries with ``|w| <= t`` become exactly zero and
the others move by exactly ``t`` towards zero. With a scalar ``t`` the per-tensor tier runs
ATen's ``softshrink`` operator (``torch.ops.aten.softshrink.out``) with the tensor as its own
output: one pass over memory, the same values.
"""

from __future__ import annotations

import torch
from torch import Tensor

Step = float | Tensor
"""A proximal step size: a scalar, or a tensor broadcastable to the parameter (element-wise)."""

_softshrink_out = torch.ops.aten.softshrink.out
"""``softshrink(w, t, out=...)``: the operator behind ``torch.nn.functional.softshrink``, which
has no in-place form of its own."""


def soft_threshold_(ws: list[Tensor], threshold: float | list[Tensor], foreach: bool) -> None:
    """``w <- sign(w) * max(|w| - t, 0)`` in place for every ``w`` in ``ws``; ``t >= 0``."""
    if isinstance(threshold, list):
        if foreach:
            clipped = torch._foreach_maximum(ws, torch._foreach_neg(threshold))
            torch._foreach_minimum_(clipped, threshold)
            torch._foreach_sub_(ws, clipped)
        else:
            for w, t in zip(ws, threshold, strict=True):
                w.sub_(torch.minimum(torch.maximum(w, -t), t))
    elif foreach:
        clipped = torch._foreach_clamp_min(ws, -threshold)
        torch._foreach_clamp_max_(clipped, threshold)
        torch._foreach_sub_(ws, clipped)
    else:
        for w in ws:
            _softshrink_out(w, threshold, out=w)


def shrink_(ws: list[Tensor], divisor: float | list[Tensor], foreach: bool) -> None:
    """``w <- w / d`` in place (the ridge prox, ``d = 1 + 2 * step * lam``). A scalar ``d``
    is applied as a product with ``1 / d`` (one rounding more, a cheaper kernel than a
    division) on both tiers alike."""
    if isinstance(divisor, list):
        if foreach:
            torch._foreach_div_(ws, divisor)
        else:
            for w, d in zip(ws, divisor, strict=True):
                w.div_(d)
        return
    factor = 1.0 / divisor
    if foreach:
        torch._foreach_mul_(ws, factor)
    else:
        for w in ws:
            w.mul_(factor)


def clamp_negative_(ws: list[Tensor], foreach: bool) -> None:
    """``w <- max(w, 0)`` in place for every ``w`` in ``ws`` (the projection on ``w >= 0``)."""
    if foreach:
        torch._foreach_clamp_min_(ws, 0.0)
    else:
        for w in ws:
            w.clamp_min_(0.0)


def scaled_separable_prox_(
    ws: list[Tensor],
    threshold: float,
    ridge: float,
    denominators: list[Tensor],
    positive: bool,
    foreach: bool,
) -> None:
    """The prox of ``a|w| + b w^2`` with the element-wise steps ``lr / d``, in the scaled
    coordinates ``u = d * w``:

        w <- softshrink(d * w, lr * a) / (d + 2 * lr * b)

    (``threshold = lr * a``, ``ridge = 2 * lr * b``; with ``positive``, negative entries then
    set to zero). The same as :func:`separable_prox_` with ``threshold = lr * a / d`` and
    ``divisor = 1 + 2 * lr * b / d`` up to rounding; on the per-tensor tier in three passes
    over ``w`` and no allocation. ``denominators`` (``d > 0``, one per tensor) are
    overwritten."""
    if foreach:
        torch._foreach_mul_(ws, denominators)
        if threshold > 0:
            clipped = torch._foreach_clamp_min(ws, -threshold)
            torch._foreach_clamp_max_(clipped, threshold)
            torch._foreach_sub_(ws, clipped)
        if ridge > 0:
            torch._foreach_add_(denominators, ridge)
        torch._foreach_div_(ws, denominators)
    else:
        for w, d in zip(ws, denominators, strict=True):
            w.mul_(d)
            if threshold > 0:
                _softshrink_out(w, threshold, out=w)
            if ridge > 0:
                d.add_(ridge)
            w.div_(d)
    if positive:
        clamp_negative_(ws, foreach)


def separable_prox_(
    ws: list[Tensor],
    a: float,
    b: float,
    threshold: float | list[Tensor],
    divisor: float | list[Tensor],
    positive: bool,
    foreach: bool,
) -> None:
    """Soft-threshold by ``threshold`` where the L1 weight ``a > 0``, then divide by
    ``divisor`` where the ridge weight ``b > 0``, then (``positive``) set negative entries to
    zero: the prox of ``a|w| + b w^2`` restricted to ``w >= 0``."""
    if a > 0:
        soft_threshold_(ws, threshold, foreach)
    if b > 0:
        shrink_(ws, divisor, foreach)
    if positive:
        clamp_negative_(ws, foreach)
