"""Penalties: small objects that hold their hyperparameters and know their maths.

Every penalty ``P`` offers the same operations, and nothing outside this package looks
inside one:

``value(w)``
    ``P(w)``, differentiable, for any shape of ``w`` (a scalar tensor).
``prox_(w, step)``
    the proximal operator, in place and exact:
    ``w <- argmin_x 1/2 * sum((x - w)^2 / step) + P(x)``. ``step`` is a positive scalar or a
    tensor of positive element-wise steps (a diagonal metric, as in proximal Adam).
``prox_scaled_(ws, lr, denominators)``
    the same prox with the element-wise steps ``lr / d`` given by an adaptive optimizer's
    denominators ``d`` (L1, L2 and Elastic Net run it in the scaled coordinates ``d * w``).
``optimality(w, grad)``
    ``dist(-grad, dP(w))``, the Euclidean distance from ``-grad`` to the subdifferential of
    ``P`` at ``w``: zero exactly when ``w`` is stationary for ``f + P`` with ``grad = ∇f(w)``.
``lambda_max(grad_at_zero)``
    the smallest ``lam`` for which ``w = 0`` is optimal, given ``∇f(0)``: the start of every
    regularization path (``inf`` when no finite ``lam`` makes zero optimal).

The formulas, with ``f`` the optional penalty factor (glmnet's ``penalty.factor``; 1 if unset):

=================  ===================================================================
``L1(lam)``        ``lam * sum(f * |w|)``
``L2(lam)``        ``lam * sum(f * w^2)``
``ElasticNet``     ``lam * (l1_ratio * sum(f * |w|) + (1 - l1_ratio) * sum(f * w^2))``
``GroupLasso``     ``lam * sum_g f_g * sqrt(size_g) * ||w_g||_2``
=================  ===================================================================

A penalty whose groups span several tensors at once (a hidden neuron's row in one layer and
its column in the next) implements :class:`MultiTensorPenalty` instead; the structured
groups of :mod:`shrinkage.structured` are one.
"""

from __future__ import annotations

from .base import MultiTensorPenalty, Penalty, penalty_from_config
from .group import GroupLasso
from .separable import L1, L2, ElasticNet

__all__ = [
    "L1",
    "L2",
    "ElasticNet",
    "GroupLasso",
    "MultiTensorPenalty",
    "Penalty",
    "penalty_from_config",
]
