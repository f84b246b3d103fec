"""Newton's step on a large support without its Hessian: the direction from a few
conjugate-gradient iterations, each one Hessian product (:func:`newton_cg_step`).

:func:`~shrinkage.linear._newton.polish` forms and factors the Hessian on the support, which
it affords up to :func:`~shrinkage.linear._newton.newton_limit` coordinates. On wide Elastic
Net paths the support grows to thousands of coordinates, where the warm start is already
close to the optimum but proximal-gradient steps of ``1 / L`` take ten or more passes over the
design to bring the duality gap below ``tol``; this step, four Hessian products and an
objective's value, mostly brings it there at once (``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._newton import Datafit, Penalty, newton_limit, objective, objective_gradient, separable

__all__ = ["CG_STEPS", "matrix_free", "newton_cg_step"]

CG_STEPS = 4
"""Conjugate-gradient iterations of a step, each a Hessian product (a pass over the design).
On one fold's Elastic Net path of ``benchmarks/linear_path.py``'s wide design (1600 x 20000,
``l1_ratio=0.5``), one run each, 3, 4 and 6 iterations took 14.5, 12.3 and 14.1 s."""

CG_RTOL = 1e-3
"""The iterations stop once the residual of the Newton system has fallen by this factor."""

HALVINGS = 8
"""Step lengths ``1, 1/2, ...`` tried by :func:`newton_cg_step` (each an objective's value)."""


def matrix_free(datafit: Datafit, penalty: Penalty, size: int) -> bool:
    """Whether Newton's step on a support of ``size`` is taken by :func:`newton_cg_step`.

    It is when the support is beyond :func:`~shrinkage.linear._newton.newton_limit` (no dense
    step), the datafit is a quadratic (``affine_grad``) whose ``hessian_product`` pays there
    (``matrix_free_newton``), and the penalty is separable and piecewise quadratic: on the
    orthant of a point the objective is then a quadratic.

    Args:
        datafit: the smooth part.
        penalty: the penalty.
        size: the number of coordinates of the support.

    Returns:
        ``True`` for a matrix-free step.
    """
    return (
        size > newton_limit(datafit)
        and bool(getattr(datafit, "matrix_free_newton", False))
        and bool(getattr(datafit, "affine_grad", False))
        and separable(penalty)
        and bool(getattr(penalty, "piecewise_quadratic", True))
    )


def newton_cg_step(
    datafit: Datafit, penalty: Penalty, w: Tensor, free: Tensor, steps: int = CG_STEPS
) -> Tensor | None:
    """One projected Newton step on the support of ``w``, its direction by conjugate gradients.

    On the support ``S`` (the nonzero coordinates, and those where the penalty is smooth: the
    ``free`` ones) with the signs of ``w`` kept, the objective is the quadratic
    ``F(w + d) = F(w) + g^T d + d^T H d / 2`` (``g``, ``H``: the objective's gradient and
    Hessian on ``S``). ``d`` is ``steps`` conjugate-gradient iterations on ``H d = -g`` from
    zero. The step is ``w + t d`` with every kinked coordinate it carries across zero set
    to zero (those leave the support), for the largest ``t`` in ``1, 1/2, ...`` that lowers
    the objective.

    Args:
        datafit: a quadratic datafit with ``hessian_product`` (see :func:`matrix_free`).
        penalty: a separable, piecewise quadratic penalty.
        w: the point, ``[d]``.
        free: ``[d]`` boolean, the unpenalized coordinates.
        steps: the most conjugate-gradient iterations (Hessian products).

    Returns:
        The new point ``[d]``, or ``None`` when no step lowers the objective.
    """
    smooth = free | ~penalty.kinked(w)
    idx = torch.nonzero((w != 0) | smooth).flatten()
    hessian = _hessian_on(datafit, penalty, w, idx)
    d = _conjugate_gradients(hessian, -objective_gradient(datafit, penalty, w, idx), steps)
    best = objective(datafit, penalty, w)
    start, signs, kinked = w[idx], torch.sign(w[idx]), ~smooth[idx]
    t = 1.0
    for _ in range(HALVINGS):
        moved = torch.add(start, d, alpha=t)
        candidate = w.clone()
        candidate[idx] = torch.where(kinked & (moved * signs < 0), 0.0, moved)
        if objective(datafit, penalty, candidate) < best:
            return candidate
        t *= 0.5
    return None


def _hessian_on(
    datafit: Datafit, penalty: Penalty, w: Tensor, idx: Tensor
) -> Callable[[Tensor], Tensor]:
    """``v -> H v`` for the objective's Hessian ``H`` on ``idx`` (``v [k]``): the datafit's
    ``hessian_product`` of ``v`` set on ``idx`` (zero elsewhere), plus the penalty's diagonal."""
    assert separable(penalty)
    diag = penalty.hessian_diag(w)[idx]
    full = torch.zeros_like(w)
    product = datafit.hessian_product  # type: ignore[attr-defined]

    def apply(v: Tensor) -> Tensor:
        full[idx] = v
        return product(full)[idx] + diag * v

    return apply


def _conjugate_gradients(
    apply: Callable[[Tensor], Tensor], b: Tensor, steps: int = CG_STEPS
) -> Tensor:
    """An approximate solution of ``A x = b``, ``A`` symmetric positive definite given by its
    product ``apply`` (``b [k]``): at most ``steps`` conjugate-gradient iterations from zero,
    fewer once the residual has fallen by :data:`CG_RTOL` or a direction of non-positive
    curvature appears. Every iterate lowers ``x^T A x / 2 - b^T x`` from its value at zero.

    Example:
        >>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
        >>> b = torch.tensor([1.0, 2.0], dtype=torch.float64)
        >>> torch.allclose(_conjugate_gradients(lambda v: A @ v, b), torch.linalg.solve(A, b))
        True
    """
    x = torch.zeros_like(b)
    r, p = b.clone(), b.clone()
    rr = float(r @ r)
    stop = CG_RTOL * CG_RTOL * rr
    for _ in range(steps):
        if rr <= stop:
            break
        Ap = apply(p)
        curvature = float(p @ Ap)
        if curvature <= 0:
            break
        alpha = rr / curvature
        x.add_(p, alpha=alpha)
        r.sub_(Ap, alpha=alpha)
        rr, rr_last = float(r @ r), rr
        p = torch.add(r, p, alpha=rr / rr_last)
    return x
