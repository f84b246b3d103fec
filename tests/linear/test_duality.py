"""The duality gaps that stop the least-squares solvers: each bounds the distance to the
optimum from above (weak duality, against a converged solve), and the Fenchel gap, used when
the penalty has an L2 part, is the tighter one near the solution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import linear_model as sk
from torch import Tensor

from shrinkage.linear._datafits import Quadratic
from shrinkage.linear._duality import ResidualTerms, enet_duality_gap, scaled_residual_gap
from shrinkage.linear._lipschitz import largest_eigenvalue, largest_singular_value_sq
from shrinkage.linear._multitask_datafit import MultiTaskQuadratic


def _problem(n: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X[:, :5] @ rng.normal(size=5) + 0.3 * rng.normal(size=n)
    return X - X.mean(0), y - y.mean()


def _objective(X: np.ndarray, y: np.ndarray, w: np.ndarray, l1: float, l2: float) -> float:
    r = y - X @ w
    return float(r @ r / (2 * len(y)) + l1 * np.abs(w).sum() + 0.5 * l2 * w @ w)


def _scaled_gap(datafit: Quadratic, w: Tensor, l1: float, l2: float) -> float:
    """scikit-learn's gap alone (the residual scaled into the Lagrangian dual's feasible set)."""
    n = datafit.n
    XtR, r_norm2, r_y = datafit.residual_terms(w)
    dual_norm = float((XtR - n * l2 * w).abs().max())
    terms = ResidualTerms(r_norm2, r_y, dual_norm, float(w.abs().sum()), float(w @ w))
    return scaled_residual_gap(n, l1, l2, terms)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("n", "p", "l1_ratio"), [(60, 200, 0.5), (200, 40, 0.1), (60, 200, 0.95)])
def test_enet_gap_bounds_the_distance_to_the_optimum(
    seed: int, n: int, p: int, l1_ratio: float
) -> None:
    X, y = _problem(n, p, seed)
    alpha = 0.05 * float(np.abs(X.T @ y).max()) / n / l1_ratio
    l1, l2 = alpha * l1_ratio, alpha * (1 - l1_ratio)
    ref = sk.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-14,
                        max_iter=100_000).fit(X, y)  # fmt: skip
    best = _objective(X, y, ref.coef_, l1, l2)
    datafit = Quadratic(torch.as_tensor(X), torch.as_tensor(y))
    rng = np.random.default_rng(seed + 10)
    for scale in (1e-6, 1e-4, 1e-2, 1.0):
        w = ref.coef_ + scale * rng.normal(size=p) * (rng.random(p) < 0.3)
        wt = torch.as_tensor(w)
        gap = enet_duality_gap(datafit, wt, l1, l2)
        distance = _objective(X, y, w, l1, l2) - best
        assert gap >= 0 and distance <= gap + 1e-12 * abs(best)
        assert gap <= _scaled_gap(datafit, wt, l1, l2) * (1 + 1e-12)
    at_optimum = enet_duality_gap(datafit, torch.as_tensor(ref.coef_), l1, l2)
    assert 0 <= at_optimum <= 1e-9 * best


def test_near_the_optimum_the_fenchel_gap_is_quadratic_where_the_scaled_one_is_linear() -> None:
    """A feature off the support correlating with the residual a little more than ``l1``
    shrinks the whole scaled dual point (a gap linear in the violation); the Fenchel gap
    charges the violation's square."""
    X, y = _problem(60, 200, 0)
    alpha = 0.05 * float(np.abs(X.T @ y).max()) / 60 / 0.5
    ref = sk.ElasticNet(alpha=alpha, l1_ratio=0.5, fit_intercept=False, tol=1e-14,
                        max_iter=100_000).fit(X, y)  # fmt: skip
    datafit = Quadratic(torch.as_tensor(X), torch.as_tensor(y))
    direction = np.random.default_rng(1).normal(size=200) * (ref.coef_ != 0)
    ratios = []
    for eps in (1e-3, 1e-4, 1e-5):
        w = torch.as_tensor(ref.coef_ + eps * direction)
        ratios.append(enet_duality_gap(datafit, w, alpha / 2, alpha / 2)
                      / _scaled_gap(datafit, w, alpha / 2, alpha / 2))  # fmt: skip
    assert ratios[0] < 0.5
    assert ratios[2] < ratios[1] / 3 < ratios[0] / 9


@pytest.mark.parametrize("positive", [False, True])
def test_the_ridge_and_the_positive_gap_bound_the_distance(positive: bool) -> None:
    X, y = _problem(50, 30, 4)
    l2 = 0.3
    l1 = 0.0 if not positive else 0.02
    ref = sk.ElasticNet(alpha=l1 + l2, l1_ratio=l1 / (l1 + l2), fit_intercept=False,
                        positive=positive, tol=1e-14, max_iter=100_000).fit(X, y)  # fmt: skip
    best = _objective(X, y, ref.coef_, l1, l2)
    datafit = Quadratic(torch.as_tensor(X), torch.as_tensor(y))
    w = ref.coef_ + 0.01 * np.random.default_rng(0).normal(size=30)
    w = np.maximum(w, 0.0) if positive else w
    gap = enet_duality_gap(datafit, torch.as_tensor(w), l1, l2, positive)
    assert 0 <= _objective(X, y, w, l1, l2) - best <= gap
    assert abs(enet_duality_gap(datafit, torch.as_tensor(ref.coef_), l1, l2, positive)) < 1e-9


def test_the_multitask_gap_bounds_the_distance_to_the_optimum() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 120))
    Y = X[:, :4] @ rng.normal(size=(4, 3)) + 0.2 * rng.normal(size=(40, 3))
    X, Y = X - X.mean(0), Y - Y.mean(0)
    alpha, ratio = 0.1, 0.5
    ref = sk.MultiTaskElasticNet(alpha=alpha, l1_ratio=ratio, fit_intercept=False, tol=1e-14,
                                 max_iter=100_000).fit(X, Y)  # fmt: skip
    l1, l2 = alpha * ratio, alpha * (1 - ratio)

    def objective(W: np.ndarray) -> float:
        R = Y - X @ W
        return float((R * R).sum() / 80 + l1 * np.linalg.norm(W, axis=1).sum()
                     + 0.5 * l2 * (W * W).sum())  # fmt: skip

    best = objective(ref.coef_.T)
    datafit = MultiTaskQuadratic(torch.as_tensor(X), torch.as_tensor(Y), l2)
    for scale in (1e-5, 1e-3, 1e-1):
        W = ref.coef_.T + scale * rng.normal(size=(120, 3))
        gap = datafit.duality_gap(torch.as_tensor(W).reshape(-1), l1)
        assert objective(W) - best <= gap + 1e-12 * best
    at_optimum = datafit.duality_gap(torch.as_tensor(ref.coef_.T.copy()).reshape(-1), l1)
    assert 0 <= at_optimum <= 1e-9 * best


@pytest.mark.parametrize(("n", "p"), [(300, 1000), (1000, 300), (200, 2000)])
def test_lanczos_estimates_sit_just_above_the_largest_eigenvalue(n: int, p: int) -> None:
    """On Gaussian designs (top eigenvalues close together, where the power method stopped
    up to 3 % below the largest), the estimate is an upper bound within 3 %."""
    gen = torch.Generator().manual_seed(n + p)
    X = torch.randn(n, p, dtype=torch.float64, generator=gen)
    exact = float(torch.linalg.svdvals(X)[0]) ** 2
    assert 1.0 <= largest_singular_value_sq(X) / exact <= 1.03
    G = X.T @ X if p < n else X @ X.T
    assert 1.0 <= largest_eigenvalue(G) / exact <= 1.03


def test_lanczos_on_a_rank_one_matrix_and_on_zero() -> None:
    v = torch.arange(1.0, 101.0, dtype=torch.float64)
    top = float(v @ v)
    assert largest_eigenvalue(torch.outer(v, v)) == pytest.approx(1.01 * top, rel=1e-9)
    assert largest_eigenvalue(torch.zeros(100, 100, dtype=torch.float64)) == 0.0
    assert largest_singular_value_sq(torch.zeros(5, 0, dtype=torch.float64)) == 0.0
