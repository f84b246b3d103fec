"""Lipschitz constants of the least-squares gradients: the largest eigenvalue of a Gram
matrix, or the largest squared singular value of a design, for a proximal-gradient step
``1 / L``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ._design import SparseDesign

__all__ = ["EXACT_EIGEN_SIZE", "largest_eigenvalue", "largest_singular_value_sq"]

EXACT_EIGEN_SIZE = 80
"""On the CPU, a symmetric matrix up to this size has its largest eigenvalue computed exactly
(``torch.linalg.eigvalsh``): cheaper there than power iteration's twenty-odd products."""


def largest_singular_value_sq(
    X: Tensor | SparseDesign, n_iter: int = 100, rtol: float = 1e-3
) -> float:
    """``sigma_max(X)^2`` of ``X [n, p]`` by power iteration on ``X^T X`` (two matrix-vector
    products an iteration, instead of an SVD; see :func:`_power_iteration`)."""
    return _power_iteration(lambda v: X.T @ (X @ v), X, n_iter, rtol)


def largest_eigenvalue(G: Tensor, n_iter: int = 100, rtol: float = 1e-3) -> float:
    """``lambda_max(G)`` of a symmetric positive semi-definite ``G [m, m]``: exact for a small
    ``G`` on the CPU (``m <= EXACT_EIGEN_SIZE``), else by power iteration.

    Example:
        >>> largest_eigenvalue(torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64)))
        3.0
    """
    if G.device.type == "cpu" and 0 < G.shape[0] <= EXACT_EIGEN_SIZE:
        return max(float(torch.linalg.eigvalsh(G)[-1]), 0.0)
    return _power_iteration(lambda v: G @ v, G, n_iter, rtol)


def _power_iteration(apply: Callable[[Tensor], Tensor], A: Any, n_iter: int, rtol: float) -> float:
    """The norm of ``apply(v)`` for the power iterates ``v`` from a fixed positive start,
    until it changes by under ``rtol``, raised by that last change plus 1 %. Where the top
    eigenvalues lie close together (nearly uncorrelated columns) it can stop a few per cent
    below the largest; FISTA's adaptive restart absorbs a step that much too long."""
    if A.numel() == 0:
        return 0.0
    gen = torch.Generator(device=A.device).manual_seed(0)
    v = torch.randn(A.shape[1], dtype=A.dtype, device=A.device, generator=gen).abs()
    v /= torch.linalg.vector_norm(v)
    estimate = change = 0.0
    for _ in range(n_iter):
        u = apply(v)
        norm = float(torch.linalg.vector_norm(u))
        if norm == 0:
            return 0.0
        v = u / norm
        change = abs(norm - estimate) / norm
        estimate = norm
        if change < rtol:
            break
    return estimate * (1.01 + change)
