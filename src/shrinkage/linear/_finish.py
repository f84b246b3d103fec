"""The last polish of a single fit (:func:`finish_polish`): once the solver has met ``tol``,
Newton's method on the support makes an easy problem's answer exact, not merely within
``tol``, and a check of the zero coordinates after each polish makes sure the support it
solved on is the whole one."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._newton import (
    FINAL_POLISH_SIZE,
    Datafit,
    PenaltyFor,
    newton_limit,
    newton_support,
    polish,
)

__all__ = ["FINISH_ROUNDS", "finish_polish"]

FINISH_ROUNDS = 3
"""Newton polishes :func:`finish_polish` takes at most, each followed by a check of its support."""


def finish_polish(
    datafit: Datafit,
    penalty_for: PenaltyFor,
    w: Tensor,
    free: Tensor,
    crit: float,
    tol: float,
    criterion: Callable[[Tensor], float],
    restrict: bool,
) -> tuple[Tensor, float]:
    """Once ``tol`` is met on a small support, Newton's method on it (kept if it still meets
    ``tol``): exact when the support is right. A point within ``tol`` can miss a coordinate
    whose violation the gap does not notice, so the zero coordinates are checked after each
    polish: those that violate optimality enter (:func:`_entering`), and the new support is
    polished in turn, at most :data:`FINISH_ROUNDS` times (with ``restrict``, each polish on
    the datafit restricted to the support)."""
    best = (w, crit)
    if crit > tol:
        return best
    for _ in range(FINISH_ROUNDS):
        polished = _polish_support(datafit, penalty_for, w, free, restrict)
        if polished is None:
            break
        polished_crit = criterion(polished)
        if polished_crit > tol:
            break
        best = (polished, polished_crit)
        entered = _entering(datafit, penalty_for, polished, free)
        if entered is None:
            break
        w = entered
    return best


def _entering(datafit: Datafit, penalty_for: PenaltyFor, w: Tensor, free: Tensor) -> Tensor | None:
    """``w`` with the coordinates that violate optimality at zero (a proximal step of any
    length moves them off it) moved by a proximal step of their own curvature, the largest
    of their Hessian's diagonal; ``None`` when none does. Its gradient is the one the
    criterion at ``w`` has just computed (the datafit remembers it)."""
    zero = torch.nonzero(~newton_support(penalty_for(None), w, free)).flatten()
    if not zero.numel():
        return None
    grad = datafit.grad(w)
    idx = zero[torch.nonzero(penalty_for(zero).prox_(-grad[zero], 1.0)).flatten()]
    if not idx.numel():
        return None
    step = 1.0 / float(torch.diagonal(datafit.hessian(idx, w)).max())
    moved = penalty_for(idx).prox_(-step * grad[idx], step)
    return w.index_copy(0, idx, moved)


def _polish_support(
    datafit: Datafit, penalty_for: PenaltyFor, w: Tensor, free: Tensor, restrict: bool
) -> Tensor | None:
    """:func:`polish` of ``w`` (``final``) on a small enough support, restricted to it with
    ``restrict``, where an evaluation costs a product with its columns; else ``None``."""
    penalty = penalty_for(None)
    support = newton_support(penalty, w, free)
    largest = (
        newton_limit(datafit) if getattr(datafit, "hessian_is_cheap", False) else FINAL_POLISH_SIZE
    )
    if not 0 < int(support.sum()) <= largest:
        return None
    if not (restrict and bool((~support).any())):
        return polish(datafit, penalty, w, free, final=True)
    idx = torch.nonzero(support).flatten()
    sub = polish(datafit.restrict(idx), penalty_for(idx), w[idx], free[idx], final=True)
    return None if sub is None else w.index_copy(0, idx, sub)
