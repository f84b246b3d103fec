"""The matrix-free Newton step: conjugate gradients on the support, against closed forms."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from scipy import sparse
from torch import Tensor

from shrinkage.linear import _solver
from shrinkage.linear._datafits import Quadratic
from shrinkage.linear._design import SparseDesign
from shrinkage.linear._group_penalty import GroupPenalty
from shrinkage.linear._newton import newton_limit, objective
from shrinkage.linear._newton_cg import _conjugate_gradients, matrix_free, newton_cg_step
from shrinkage.linear._problem import LinearProblem, enet_penalty
from shrinkage.path import path


def _wide(n: int = 80, p: int = 1200, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, dtype=torch.float64, generator=gen)
    y = X[:, :20] @ torch.randn(20, dtype=torch.float64, generator=gen)
    y += 0.5 * torch.randn(n, dtype=torch.float64, generator=gen)
    return X - X.mean(0), y - y.mean()


def test_conjugate_gradients_solve_a_positive_definite_system() -> None:
    """Enough iterations bring the residual down by the set factor; two already lower the
    quadratic ``x^T A x / 2 - b^T x`` below its value at zero."""
    gen = torch.Generator().manual_seed(1)
    B = torch.randn(40, 30, dtype=torch.float64, generator=gen)
    A = B.T @ B / 40 + 0.1 * torch.eye(30, dtype=torch.float64)
    b = torch.randn(30, dtype=torch.float64, generator=gen)
    x = _conjugate_gradients(lambda v: A @ v, b, steps=100)
    assert float(torch.linalg.vector_norm(A @ x - b)) <= 1e-3 * float(torch.linalg.vector_norm(b))
    two = _conjugate_gradients(lambda v: A @ v, b, steps=2)
    assert float(two @ A @ two / 2 - b @ two) < 0.0


@pytest.mark.parametrize("kind", ["columns", "gram", "sparse"])
def test_hessian_product_is_the_gram_product(kind: str) -> None:
    """``X^T X v / n`` from a kept design, a kept Gram matrix, or a centred sparse design."""
    X, y = _wide(30, 50)
    v = torch.linspace(-1.0, 1.0, 50, dtype=torch.float64)
    if kind == "sparse":
        raw = X.clone()
        raw[torch.rand(30, 50, generator=torch.Generator().manual_seed(3)) < 0.7] = 0.0
        center = raw.mean(0)
        X = raw - center
        datafit = Quadratic(SparseDesign(sparse.csr_matrix(raw.numpy()), center.numpy()), y)
    else:
        datafit = Quadratic(X, y, use_gram=kind == "gram")
    torch.testing.assert_close(datafit.hessian_product(v), X.T @ (X @ v) / 30)


def test_matrix_free_beyond_the_dense_limit_on_dense_quadratics_and_separable_penalties() -> None:
    X, y = _wide()
    datafit = Quadratic(X, y, use_gram=False)
    penalty = enet_penalty(0.1, 0.5, None)
    limit = newton_limit(datafit)
    assert matrix_free(datafit, penalty, limit + 1)
    assert not matrix_free(datafit, penalty, limit)
    groups = torch.arange(1200) // 4
    coupled = GroupPenalty(0.1, groups, torch.zeros(1200, dtype=torch.bool), by_size=False)
    assert not matrix_free(datafit, coupled, limit + 1)  # not separable
    design = SparseDesign(sparse.csr_matrix(X.numpy()), np.zeros(1200))
    on_sparse = Quadratic(design, y, use_gram=False)
    assert not matrix_free(on_sparse, penalty, newton_limit(on_sparse) + 1)  # measured: no gain


def test_a_newton_cg_step_lands_near_the_optimum_of_its_orthant() -> None:
    """On a support with fixed signs ``s`` the Elastic Net's objective is a quadratic whose
    minimum is ``w_S = (X_S^T X_S / n + l2 I)^{-1} (X_S^T y / n - l1 s)``. From a perturbed
    point on that orthant, one step (conjugate gradients run until their residual falls 1000
    times) lands 50 times nearer it; a proximal-gradient step would close a few per cent of
    the way. Coordinates off the support stay at zero."""
    X, _ = _wide()
    n, p = X.shape
    gen = torch.Generator().manual_seed(4)
    support = torch.arange(0, p, 20)
    truth = 3.0 * torch.sign(torch.randn(support.numel(), dtype=torch.float64, generator=gen))
    y = X[:, support] @ truth + 0.1 * torch.randn(n, dtype=torch.float64, generator=gen)
    l1 = l2 = 0.05
    Xs = X[:, support]
    H = Xs.T @ Xs / n + l2 * torch.eye(support.numel(), dtype=torch.float64)
    closed = torch.linalg.solve(H, Xs.T @ y / n - l1 * torch.sign(truth))
    assert bool((torch.sign(closed) == torch.sign(truth)).all())  # the orthant of ``truth``
    start = torch.zeros(p, dtype=torch.float64)
    noise = 0.3 * torch.randn(support.numel(), dtype=torch.float64, generator=gen)
    start[support] = closed + noise
    assert bool((torch.sign(start[support]) == torch.sign(truth)).all())
    datafit = Quadratic(X, y, use_gram=False)
    penalty = enet_penalty(0.1, 0.5, None)  # l1 = l2 = 0.05 in scikit-learn's scaling
    stepped = newton_cg_step(datafit, penalty, start, torch.zeros(p, dtype=torch.bool), 500)
    assert stepped is not None
    assert objective(datafit, penalty, stepped) < objective(datafit, penalty, start)
    before = float(torch.linalg.vector_norm(start[support] - closed))
    assert float(torch.linalg.vector_norm(stepped[support] - closed)) <= 2e-2 * before
    off = torch.ones(p, dtype=torch.bool).index_fill_(0, support, False)
    assert bool((stepped[off] == 0).all())


def _enet_objectives(X: Tensor, y: Tensor) -> list[tuple[float, bool, int]]:
    """``(objective, converged, nonzeros)`` along a 30-point ``l1_ratio=0.1`` path."""
    problem = LinearProblem(
        X.numpy(),
        y.numpy(),
        loss="squared",
        l1_ratio=0.1,
        fit_intercept=False,
        tol=1e-4,
        max_iter=100_000,
    )
    grid = np.geomspace(problem.lambda_max(), 1e-2 * problem.lambda_max(), 30)
    out = []
    for point in path(problem, grid):
        coef = torch.as_tensor(point.coef)
        penalty = point.lam * (0.1 * coef.abs().sum() + 0.45 * coef @ coef)
        value = (y - X @ coef) @ (y - X @ coef) / (2 * len(y)) + penalty
        out.append((float(value), point.converged, point.n_nonzero))
    return out


def test_paths_with_matrix_free_steps_meet_the_tolerance_as_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wide Elastic Net path whose supports outgrow the dense Newton limit takes
    matrix-free steps; every point still meets its duality gap (``tol`` times
    ``||y||^2 / n``), so its objective is within that gap of the path solved without them."""
    X, y = _wide(100, 2000)
    calls = []
    real = _solver.newton_cg_step

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_solver, "newton_cg_step", counted)
    with_steps = _enet_objectives(X, y)
    assert calls, "no matrix-free step was taken: the test no longer covers them"
    assert max(nonzeros for _, _, nonzeros in with_steps) > 500
    monkeypatch.setattr(_solver, "matrix_free", lambda *args: False)
    without = _enet_objectives(X, y)
    gap = 1e-4 * float(y @ y) / len(y)
    for (a, a_done, _), (b, b_done, _) in zip(with_steps, without, strict=True):
        assert a_done and b_done
        assert abs(a - b) <= gap
