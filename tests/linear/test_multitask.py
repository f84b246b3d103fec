"""Joint multi-task fits against scikit-learn's, their optimality conditions, and a brute-force
cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn import linear_model as sk
from sklearn.model_selection import KFold
from sklearn.utils import shuffle

from shrinkage.linear import (
    MultiTaskElasticNet,
    MultiTaskElasticNetCV,
    MultiTaskLasso,
    MultiTaskLassoCV,
)
from shrinkage.linear._multitask import MultiTaskData
from shrinkage.linear._newton import _newton_step


def _data(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    W = np.zeros((3, p))
    W[:, :4] = rng.normal(size=(3, 4))
    return X, X @ W.T + 0.5 * rng.normal(size=(n, 3)) + 2.0


@pytest.mark.parametrize(("n", "p"), [(100, 30), (40, 120)])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.3])
@pytest.mark.parametrize("alpha", [0.05, 0.4])
def test_equal_to_scikit_learn(n: int, p: int, l1_ratio: float, alpha: float) -> None:
    X, Y = _data(n, p)
    ours = MultiTaskElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000)
    theirs = sk.MultiTaskElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-14, max_iter=10**6)
    ours.fit(X, Y)
    theirs.fit(X, Y)
    scale = np.abs(theirs.coef_).max()
    assert np.abs(ours.coef_ - theirs.coef_).max() <= 1e-6 * scale
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-6)
    np.testing.assert_array_equal(ours.coef_.any(axis=0), theirs.coef_.any(axis=0))
    assert ours.dual_gap_ <= 1e-12 * np.sum((Y - Y.mean(axis=0)) ** 2) / n


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_optimality_conditions_hold(l1_ratio: float) -> None:
    X, Y = _data(80, 25, seed=1)
    alpha = 0.2
    model = MultiTaskElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000)
    model.fit(X, Y)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    W = model.coef_.T  # [p, T]
    grad = Xc.T @ (Xc @ W - Yc) / len(X) + alpha * (1 - l1_ratio) * W
    norms = np.linalg.norm(W, axis=1)
    used = norms > 0
    stationary = grad[used] + alpha * l1_ratio * W[used] / norms[used, None]
    assert np.abs(stationary).max() < 1e-7
    assert np.all(np.linalg.norm(grad[~used], axis=1) <= alpha * l1_ratio + 1e-9)
    assert used.any() and not used.all()


def test_cv_chooses_the_brute_force_alpha() -> None:
    X, Y = _data(90, 20, seed=2)
    folds = KFold(3)
    model = MultiTaskLassoCV(cv=folds, alphas=12, tol=1e-10, max_iter=100_000).fit(X, Y)
    brute = np.empty((12, 3))
    for i, alpha in enumerate(model.alphas_):
        for k, (train, test) in enumerate(folds.split(X)):
            fit = MultiTaskLasso(alpha=alpha, tol=1e-10, max_iter=100_000).fit(X[train], Y[train])
            brute[i, k] = np.mean((Y[test] - fit.predict(X[test])) ** 2)
    np.testing.assert_allclose(model.mse_path_, brute, rtol=1e-6)
    assert model.alpha_ == model.alphas_[np.argmin(brute.mean(axis=1))]
    refit = MultiTaskLasso(alpha=model.alpha_, tol=1e-10, max_iter=100_000).fit(X, Y)
    np.testing.assert_allclose(model.coef_, refit.coef_, atol=1e-9)


def test_cv_over_l1_ratios_matches_scikit_learn() -> None:
    X, Y = _data(90, 20, seed=3)
    kwargs = {"l1_ratio": [0.3, 0.9], "cv": KFold(3), "alphas": 8, "max_iter": 100_000}
    ours = MultiTaskElasticNetCV(tol=1e-10, **kwargs).fit(X, Y)
    theirs = sk.MultiTaskElasticNetCV(tol=1e-12, **kwargs).fit(X, Y)
    assert ours.mse_path_.shape == theirs.mse_path_.shape == (2, 8, 3)
    np.testing.assert_allclose(ours.alphas_, theirs.alphas_, rtol=1e-12)
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=1e-5)
    assert (ours.alpha_, ours.l1_ratio_) == pytest.approx((theirs.alpha_, theirs.l1_ratio_))


def test_one_target_is_refused_with_scikit_learns_words() -> None:
    X, Y = _data(30, 5)
    with pytest.raises(ValueError, match="For mono-task outputs, use ElasticNet"):
        MultiTaskElasticNet().fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="For mono-task outputs, use Lasso"):
        MultiTaskLasso().fit(X, Y[:, 0])


def test_warm_start_resumes() -> None:
    X, Y = _data(60, 15)
    model = MultiTaskLasso(alpha=0.1, tol=1e-10, warm_start=True).fit(X, Y)
    first = model.coef_.copy()
    model.fit(X, Y)
    np.testing.assert_allclose(model.coef_, first, atol=1e-10)
    assert model.n_iter_ <= 1


def _rank_deficient_weighted() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """15 distinct rows of 30 features, each three times (once shuffled), integer weights
    with zeros among them: the Gram matrix of the centred rows has rank 14 (the data of
    scikit-learn's check of weights against repeated rows)."""
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    y = rng.randint(0, 3, size=15).astype(float)
    weights = rng.randint(0, 5, size=15)
    X_once, y_once, weights = shuffle(X, y, weights, random_state=0)
    weights = np.hstack([weights, np.ones(30)])
    return np.vstack([X_once, X, X]), np.hstack([y_once, y, y])[:, None], weights


@pytest.mark.parametrize("alpha", [1e-2, 1e-3, 1e-4])
def test_sparse_weighted_fit_of_a_rank_deficient_design_equals_the_dense_one(
    alpha: float,
) -> None:
    X, Y, weights = _rank_deficient_weighted()
    fits = [
        MultiTaskLasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(data, Y, weights)
        for data in (X, sparse.csr_array(X))
    ]
    reference = sk.MultiTaskLasso(alpha=alpha, tol=1e-12, max_iter=100_000)
    expected = reference.fit(X, Y, sample_weight=weights).predict(X[:15])
    for fit in fits:  # the coefficients are not unique; the predictions are
        np.testing.assert_allclose(fit.predict(X[:15]), expected, rtol=1e-6, atol=1e-6)
        assert np.abs(fit.coef_).max() < 100


def test_a_newton_step_offers_the_minimum_norm_one_on_a_round_off_singular_matrix() -> None:
    """``H`` of rank 5 that rounding left positive definite, ``g`` in its range but for
    rounding: beside Cholesky's step along the null space, the minimum-norm one."""
    rng = np.random.default_rng(0)
    B = torch.as_tensor(rng.normal(size=(12, 5)))
    H = B @ B.T + 1e-14 * torch.eye(12, dtype=torch.float64)
    assert int(torch.linalg.cholesky_ex(H).info) == 0
    g = B @ torch.as_tensor(rng.normal(size=5)) + 1e-16 * torch.as_tensor(rng.normal(size=12))
    expected = -torch.linalg.pinv(B @ B.T, hermitian=True) @ g
    _, d_min = _newton_step(H, g)
    assert d_min is not None  # singular to rounding: the minimum-norm step is offered
    torch.testing.assert_close(d_min, expected, rtol=1e-6, atol=1e-6 * float(expected.norm()))


@pytest.mark.parametrize(("n", "p"), [(30, 12), (12, 30)])
def test_a_working_set_of_whole_rows_is_the_problem_on_those_features(n: int, p: int) -> None:
    """The data term restricted to some rows of ``W`` (every task of some features) equals
    the whole one at a ``W`` that is zero elsewhere: its value and gradient."""
    X, Y = _data(n, p)
    data = MultiTaskData.of(X, Y, fit_intercept=True, device=torch.device("cpu"))
    datafit = data.datafit.with_l2(0.3)
    tasks = Y.shape[1]
    rows = torch.tensor([1, 4, 5, 9])
    idx = (rows[:, None] * tasks + torch.arange(tasks)).reshape(-1)
    w = torch.zeros(p * tasks, dtype=torch.float64)
    w[idx] = torch.linspace(-1.0, 1.0, idx.numel(), dtype=torch.float64)
    sub = datafit.restrict(idx)
    torch.testing.assert_close(sub.value(w[idx]), datafit.value(w), rtol=1e-12, atol=0)
    torch.testing.assert_close(sub.grad(w[idx]), datafit.grad(w)[idx], rtol=1e-10, atol=1e-12)
    assert sub.lipschitz <= datafit.lipschitz * (1 + 1e-9)
    with pytest.raises(ValueError, match="whole rows"):
        datafit.restrict(idx[1:])


@pytest.mark.parametrize("seed", [42, 0])
def test_a_ridge_on_a_nearly_singular_design_is_solved_to_its_last_digits(seed: int) -> None:
    """``l1_ratio=0`` at ``l2 = 3e-9`` on a rank-10 design: the Fenchel gap meets a ``tol`` of
    1e-16 while near-null directions are still 5e-10 off; the final Newton step, taken on a
    gradient that small, lands on the SVD's solution (scikit-learn's consistency check)."""
    from sklearn.datasets import make_regression

    rng = np.random.RandomState(seed)
    X, Y = make_regression(n_samples=300, n_features=100, n_targets=3, effective_rank=10,
                           n_informative=50, random_state=rng)  # fmt: skip
    ridge = sk.Ridge(alpha=1e-6, solver="svd").fit(X, Y)
    enet = MultiTaskElasticNet(alpha=1e-6 / 300, l1_ratio=0, tol=1e-16).fit(X, Y)
    np.testing.assert_allclose(enet.coef_, ridge.coef_, rtol=5e-7, atol=3e-11)
    assert enet.dual_gap_ <= 1e-16 * ((Y - Y.mean(0)) ** 2).sum() / 300
