"""Lipschitz constants of the least-squares gradients: the largest eigenvalue of a Gram
matrix, or the largest squared singular value of a design, for a proximal-gradient step
``1 / L``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ._design import SparseDesign

__all__ = [
    "EXACT_EIGEN_SIZE",
    "largest_eigenvalue",
    "largest_singular_value_sq",
    "least_squares_lipschitz",
]

EXACT_EIGEN_SIZE = 80
"""On the CPU, a symmetric matrix up to this size has its largest eigenvalue computed exactly
(``torch.linalg.eigvalsh``): cheaper there than the dozen or more products of Lanczos iterations."""


def largest_singular_value_sq(
    X: Tensor | SparseDesign, n_iter: int = 100, rtol: float = 1e-3
) -> float:
    """``sigma_max(X)^2`` of ``X [n, p]`` by Lanczos iterations on ``X^T X`` (two matrix-vector
    products an iteration, instead of an SVD; see :func:`_lanczos`)."""
    return _lanczos(lambda v: X.T @ (X @ v), X, n_iter, rtol)


def largest_eigenvalue(G: Tensor, n_iter: int = 100, rtol: float = 1e-3) -> float:
    """``lambda_max(G)`` of a symmetric positive semi-definite ``G [m, m]``: exact for a small
    ``G`` on the CPU (``m <= EXACT_EIGEN_SIZE``), else by Lanczos iterations.

    Example:
        >>> largest_eigenvalue(torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64)))
        3.0
    """
    if G.device.type == "cpu" and 0 < G.shape[0] <= EXACT_EIGEN_SIZE:
        return max(float(torch.linalg.eigvalsh(G)[-1]), 0.0)
    return _lanczos(lambda v: G @ v, G, n_iter, rtol)


def least_squares_lipschitz(G: Tensor | None, X: Tensor | SparseDesign | None, n: float) -> float:
    """``lambda_max(X^T X) / n``, the gradient's Lipschitz constant of ``||y - X w||^2 / (2 n)``:
    from the Gram matrix ``G = X^T X / n [p, p]`` when one is kept, else from ``X [n, p]``.

    Example:
        >>> G = torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64))
        >>> least_squares_lipschitz(G, None, 2.0)
        3.0
    """
    if G is not None:
        return largest_eigenvalue(G)
    assert X is not None, "a least-squares datafit keeps its Gram matrix or its design"
    return largest_singular_value_sq(X) / n


def _lanczos(apply: Callable[[Tensor], Tensor], A: Any, n_iter: int, rtol: float) -> float:
    """The largest eigenvalue of the positive semi-definite operator ``apply`` (on vectors of
    ``A.shape[1]`` entries) by Lanczos iterations from a fixed positive start: the largest
    eigenvalue ``theta`` of the tridiagonal matrix they build, a lower bound that rises towards
    it, until it changes by under ``rtol``; then ``theta`` raised by that last change plus 1 %.

    Where the top eigenvalues lie close together (a random design's), ``theta`` converges
    faster than the power method's estimate, and from below it is not left short: on 1600-row
    random designs of 2108, 5884 and 20000 columns, 21, 14 and 24 iterations end 0.7 - 1 %
    above the largest, where the power method took 38, 30 and 26 and ended 0.3 - 2.8 % below
    it. No reorthogonalization: its loss in floating point repeats converged eigenvalues but
    moves none of them."""
    if A.numel() == 0:
        return 0.0
    gen = torch.Generator(device=A.device).manual_seed(0)
    q = torch.randn(A.shape[1], dtype=A.dtype, device=A.device, generator=gen).abs()
    q /= torch.linalg.vector_norm(q)
    previous = torch.zeros_like(q)
    diagonal: list[float] = []
    off: list[float] = []
    estimate = change = 0.0
    for _ in range(n_iter):
        u = apply(q)
        diagonal.append(float(q @ u))
        u.sub_(q, alpha=diagonal[-1]).sub_(previous, alpha=off[-1] if off else 0.0)
        theta = _top_of_tridiagonal(diagonal, off, A.dtype)
        if theta <= 0:
            return 0.0
        change = abs(theta - estimate) / theta
        estimate = theta
        beta = float(torch.linalg.vector_norm(u))
        if beta <= 1e-12 * theta:  # an invariant subspace: theta is exact
            return theta * 1.01
        if change < rtol:
            break
        off.append(beta)
        previous, q = q, u.div_(beta)
    return estimate * (1.01 + change)


def _top_of_tridiagonal(diagonal: list[float], off: list[float], dtype: torch.dtype) -> float:
    """The largest eigenvalue of the symmetric tridiagonal matrix with ``diagonal`` and
    ``off`` (one entry fewer, or as many: the last is then not yet part of it)."""
    T = torch.diag(torch.tensor(diagonal, dtype=dtype))
    if len(diagonal) > 1:
        band = torch.tensor(off[: len(diagonal) - 1], dtype=dtype)
        T += torch.diag(band, 1) + torch.diag(band, -1)
    return float(torch.linalg.eigvalsh(T)[-1])
