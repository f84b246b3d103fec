"""The least-squares datafit kept as a small Gram matrix: solved whole, to the working sets'
inner share of ``tol``; ``G w`` from the rows of a sparse ``w``; exact Lipschitz constants of
small matrices."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn import linear_model as sk
from sklearn.datasets import make_regression
from torch import Tensor

from shrinkage import linear as sh
from shrinkage.linear._datafits import Quadratic
from shrinkage.linear._duality import enet_duality_gap
from shrinkage.linear._lipschitz import EXACT_EIGEN_SIZE, largest_eigenvalue
from shrinkage.linear._problem import enet_penalty
from shrinkage.linear._solver import INNER_SHARE, SMALL_GRAM_FLOPS, solve


def _counting_restrict(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every restriction of a least-squares datafit."""
    sizes: list[int] = []
    restrict = Quadratic.restrict

    def counted(self: Quadratic, idx: Tensor) -> Any:
        sizes.append(int(idx.numel()))
        return restrict(self, idx)

    monkeypatch.setattr(Quadratic, "restrict", counted)
    return sizes


def test_a_small_gram_problem_is_solved_whole_and_matches_sklearn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = make_regression(400, 60, n_informative=8, noise=2.0, random_state=0)
    sizes = _counting_restrict(monkeypatch)
    ours = sh.Lasso(alpha=0.5, tol=1e-10, max_iter=100_000).fit(X, y)
    theirs = sk.Lasso(alpha=0.5, tol=1e-12, max_iter=100_000).fit(X, y)
    assert sizes == []  # no working set: the 60 x 60 Gram's gradient is the cheaper round
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-6, atol=1e-8)
    assert 0 < np.count_nonzero(ours.coef_) < 60


def test_a_large_gram_problem_still_uses_working_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    p = 1100  # 2 p^2 = 2.4e6 operations a gradient, over SMALL_GRAM_FLOPS
    assert 2 * p * p > SMALL_GRAM_FLOPS
    X, y = make_regression(1200, p, n_informative=10, noise=1.0, random_state=1)
    sizes = _counting_restrict(monkeypatch)
    sh.Lasso(alpha=1.0).fit(X, y)
    assert sizes and max(sizes) < p


def _gram_problem(seed: int = 0) -> tuple[Quadratic, float, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(300, 40, dtype=torch.float64, generator=gen)
    y = X[:, :5].sum(1) + 0.5 * torch.randn(300, dtype=torch.float64, generator=gen)
    datafit = Quadratic(X, y, use_gram=True)
    lam_max = float((X.T @ y).abs().max()) / 300
    return datafit, lam_max, torch.zeros(40, dtype=torch.bool)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_a_whole_solve_runs_on_to_the_inner_share_of_tol(l1_ratio: float) -> None:
    """A small Gram problem is solved to ``INNER_SHARE * tol``, as a working set is; from a
    point already there it takes no step."""
    datafit, lam_max, free = _gram_problem()
    lam = 0.05 * lam_max
    l1, l2 = l1_ratio * lam, (1 - l1_ratio) * lam

    def gap(fit: Quadratic, w: Tensor) -> float:
        return enet_duality_gap(fit, w, l1, l2)

    def penalty_for(idx: Tensor | None) -> Any:
        return enet_penalty(lam, l1_ratio, None)

    tol = 1e-4 * datafit.yy / datafit.n
    moved = solve(
        datafit, penalty_for, torch.zeros(40, dtype=torch.float64), free=free, tol=tol,
        max_iter=10_000, criterion=gap,
    )  # fmt: skip
    assert moved.n_iter > 0
    assert moved.criterion <= INNER_SHARE * tol
    assert gap(datafit, moved.w) <= INNER_SHARE * tol
    again = solve(datafit, penalty_for, moved.w, free=free, tol=tol, max_iter=10_000, criterion=gap)
    assert again.n_iter == 0
    assert torch.equal(again.w, moved.w)


@pytest.mark.parametrize("nonzero", [0, 3, 10, 11, 40])
def test_the_gram_product_from_the_support_rows_is_the_plain_one(nonzero: int) -> None:
    """At most a quarter of the 40 coordinates (10) is read from ``G``'s rows, more from all
    of ``G``; either way ``G w``, and remembered for the same ``w``."""
    datafit, _, _ = _gram_problem(seed=1)
    assert datafit.G is not None
    gen = torch.Generator().manual_seed(2)
    w = torch.zeros(40, dtype=torch.float64)
    w[torch.randperm(40, generator=gen)[:nonzero]] = torch.randn(nonzero, generator=gen).double()
    grad = datafit.grad(w)
    torch.testing.assert_close(grad, datafit.G @ w - datafit.c, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(datafit.grad(w.clone()), grad, rtol=0, atol=0)


@pytest.mark.parametrize("m", [1, 5, 20, EXACT_EIGEN_SIZE])
def test_a_small_matrix_has_its_exact_largest_eigenvalue(m: int) -> None:
    """A Gram matrix of nearly uncorrelated columns has its eigenvalues close together, where
    iterations from a positive vector stop near the largest, not at it: a small one is
    computed exactly (a step ``1 / L`` then never exceeds ``1 / lambda_max``)."""
    gen = torch.Generator().manual_seed(m)
    X = torch.randn(2000, m, dtype=torch.float64, generator=gen)
    G = X.T @ X / 2000
    exact = float(torch.linalg.eigvalsh(G)[-1])
    assert largest_eigenvalue(G) == pytest.approx(exact, rel=1e-12)
