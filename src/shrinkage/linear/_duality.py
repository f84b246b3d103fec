"""Duality gaps of the least-squares problems with an L1 (or row-norm) and an L2 penalty.

A duality gap ``P(w) - D(theta)`` bounds ``P(w) - min P`` from above for any dual point
``theta``, so any of them certifies a solution to ``tol``; the solver stops at the smallest
it can compute. Two are computed here, both at the residual ``R = y - X w``:

* :func:`scaled_residual_gap`: ``R`` scaled into the feasible set of the Elastic Net's
  Lagrangian dual with the ridge part folded into the design (scikit-learn's coordinate
  descent computes this one). It is loose while a feature off the support correlates with
  ``R`` a little more than ``l1``: the whole residual is then shrunk.
* :func:`fenchel_gap`: ``R / n`` itself, in the Fenchel dual, which for ``l2 > 0`` has no
  constraint. Its gap is a sum of one term per coordinate, each the square of how far that
  coordinate is from its own optimum, so it is tight near the solution; for a small ``l2``
  it grows as ``1 / l2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

__all__ = ["ResidualTerms", "enet_duality_gap", "fenchel_gap", "scaled_residual_gap"]


class _Residuals(Protocol):
    n: int

    def residual_terms(self, w: Tensor) -> tuple[Tensor, float, float]: ...


@dataclass(frozen=True)
class ResidualTerms:
    """What the Elastic Net's duality gap needs of a point ``w`` with residual ``R``:
    ``||R||^2``, ``R^T y``, the dual norm of ``X^T R - n l2 w`` (the largest entry's size, or
    the largest row norm for a penalty on rows), the penalty's norm of ``w`` (``||w||_1``, or
    the sum of row norms) and ``||w||^2``."""

    r_norm2: float
    r_y: float
    dual_norm: float
    l1_norm: float
    w_norm2: float


def scaled_residual_gap(n: float, l1: float, l2: float, t: ResidualTerms) -> float:
    """The duality gap of ``||R||^2 / (2n) + l1 * N(w) + l2 / 2 * ||w||^2`` (``N`` the L1 norm
    or the sum of row norms) at the dual point ``R`` scaled by ``c = min(1, n l1 /
    dual_norm)`` into the dual-feasible set, divided by ``n``:
    ``(||R||^2 (1 + c^2) / 2 + n l1 N(w) - c R^T y + n l2 (1 + c^2) ||w||^2 / 2) / n`` when
    scaled, ``||R||^2`` in place of the first term otherwise (scikit-learn's coordinate
    descent computes the same)."""
    scaled = t.dual_norm > n * l1
    const = n * l1 / t.dual_norm if scaled else 1.0
    gap = 0.5 * t.r_norm2 * (1.0 + const**2) if scaled else t.r_norm2
    gap += n * l1 * t.l1_norm - const * t.r_y + 0.5 * n * l2 * (1.0 + const**2) * t.w_norm2
    return gap / n


def fenchel_gap(w: Tensor, z: Tensor, reach: Tensor, norms: Tensor, l1: float, l2: float) -> float:
    """The duality gap of ``||R||^2 / (2n) + l1 * N(w) + l2 / 2 * ||w||^2`` at the dual point
    ``R / n``, for ``l2 > 0``.

    With ``g = l1 N + l2 ||.||^2 / 2`` and its conjugate
    ``g*(z) = sum_j (reach_j - l1)_+^2 / (2 l2)``, the gap ``P(w) - D(R / n)`` is
    ``g(w) + g*(z) - w^T z`` with ``z = X^T R / n``: a sum of Fenchel-Young terms, one per
    coordinate (or row), each non-negative and zero exactly at that coordinate's optimum. Each
    is computed on its own and kept non-negative, so no rounding makes the sum negative.

    Args:
        w: the point, ``[d]``, or ``[p, T]`` for a penalty on rows.
        z: ``X^T R / n``, shaped as ``w``.
        reach: what ``l1`` bounds at the solution, ``[d]`` or ``[p]``: ``|z|`` for the L1
            norm, ``z`` under ``w >= 0``, the row norms of ``z`` for a penalty on rows.
        norms: ``|w|``, or the row norms of ``w``, shaped as ``reach``.
        l1: the L1 (or row-norm) strength.
        l2: the L2 strength, positive.

    Returns:
        The gap.

    Example:
        >>> w, z = torch.tensor([0.5, 0.0]), torch.tensor([1.5, 0.5])
        >>> fenchel_gap(w, z, z.abs(), w.abs(), l1=1.0, l2=1.0)  # both coordinates optimal
        0.0
    """
    inner = w * z if w.dim() == 1 else (w * z).sum(dim=1)
    over = (reach - l1).clamp_min_(0.0)
    terms = (l1 + 0.5 * l2 * norms) * norms + over * over / (2 * l2) - inner
    return float(terms.clamp_min_(0.0).sum())


def enet_duality_gap(
    datafit: _Residuals, w: Tensor, l1: float, l2: float, positive: bool = False
) -> float:
    """The smaller duality gap of ``||R||^2 / (2n) + l1 * ||w||_1 + l2 / 2 * ||w||^2``,
    ``R = y - Xw`` (under ``w >= 0`` when ``positive``): :func:`scaled_residual_gap`, and
    :func:`fenchel_gap` when ``l2 > 0`` (alone when ``l1 = 0``).

    Args:
        datafit: the least-squares datafit (its ``residual_terms`` and ``n``).
        w: the point, ``[d]``.
        l1: the L1 strength.
        l2: the L2 strength.
        positive: the constraint ``w >= 0``.

    Returns:
        The gap, an upper bound on the objective's distance to its minimum.
    """
    n = datafit.n
    XtR, r_norm2, r_y = datafit.residual_terms(w)
    norms = w.abs()
    smooth = float("inf")
    if l2 > 0:
        z = XtR / n
        smooth = fenchel_gap(w, z, z if positive else z.abs(), norms, l1, l2)
        if l1 == 0:
            return smooth
    XtA = torch.add(XtR, w, alpha=-n * l2) if l2 else XtR
    reach = XtA if positive else XtA.abs()
    dual_norm = float(reach.max()) if XtA.numel() else 0.0
    terms = ResidualTerms(r_norm2, r_y, dual_norm, float(norms.sum()), float(w @ w))
    return min(smooth, scaled_residual_gap(n, l1, l2, terms))
