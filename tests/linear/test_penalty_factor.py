"""Per-feature penalty factors (glmnet's ``penalty.factor``) on Lasso and ElasticNet and their
CV classes: a factor ``c`` on feature ``j`` is the plain lasso on ``X[:, j] / c``, the Elastic
Net with factors (zeros among them: unpenalized features) meets its optimality conditions,
and the grid's largest alpha is the smallest that zeros every penalized feature."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from shrinkage.linear import (
    ElasticNet,
    ElasticNetCV,
    Lasso,
    LassoCV,
    LogisticRegression,
    LogisticRegressionCV,
)

TIGHT: dict[str, Any] = {"tol": 1e-12, "max_iter": 100_000}


def problem(n: int, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n + p)
    X = rng.normal(size=(n, p))
    y = X[:, :5] @ rng.normal(size=5) + 0.5 * rng.normal(size=n)
    return X, y, rng.uniform(0.3, 3.0, p), rng.uniform(0.5, 2.0, n)


@pytest.mark.parametrize(("n", "p"), [(80, 10), (30, 60)])
@pytest.mark.parametrize("design", ["dense", "sparse"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_factor_is_a_rescaled_column(n: int, p: int, design: str, weighted: bool) -> None:
    X, y, factor, weights = problem(n, p)
    sw = weights if weighted else None
    ours = Lasso(alpha=0.05, penalty_factor=factor, **TIGHT)
    ours.fit(sparse.csr_matrix(X) if design == "sparse" else X, y, sample_weight=sw)
    plain = Lasso(alpha=0.05, **TIGHT).fit(X / factor, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, plain.coef_ / factor, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.coef_ != 0, plain.coef_ != 0)
    assert ours.intercept_ == pytest.approx(plain.intercept_, abs=1e-6)


@pytest.mark.parametrize(("n", "p"), [(80, 10), (30, 60)])
def test_elastic_net_with_unpenalized_features_meets_its_optimality_conditions(
    n: int, p: int
) -> None:
    X, y, factor, _ = problem(n, p)
    factor[[0, 7]] = 0.0  # unpenalized
    alpha, l1_ratio = 0.05, 0.7
    model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, penalty_factor=factor, **TIGHT).fit(X, y)
    w = model.coef_
    grad = -X.T @ (y - X @ w - model.intercept_) / n
    l1, l2 = alpha * l1_ratio, alpha * (1 - l1_ratio)
    on = grad + factor * (l1 * np.sign(w) + l2 * w)
    off = np.maximum(np.abs(grad) - l1 * factor, 0.0)
    assert np.max(np.abs(np.where(w != 0, on, off))) <= 1e-8
    assert np.all(w[[0, 7]] != 0)  # free features are not shrunk to zero


def test_unit_factors_are_the_plain_model() -> None:
    X, y, _, _ = problem(50, 12)
    ours = ElasticNet(alpha=0.1, penalty_factor=np.ones(12), **TIGHT).fit(X, y)
    plain = ElasticNet(alpha=0.1, **TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.coef_, plain.coef_, rtol=0, atol=1e-8)


@pytest.mark.parametrize("factor", [np.ones(3), -np.ones(12), np.full(12, np.nan)])
def test_bad_factors_are_refused_by_name(factor: np.ndarray) -> None:
    X, y, _, _ = problem(50, 12)
    with pytest.raises(ValueError, match="penalty_factor"):
        Lasso(alpha=0.1, penalty_factor=factor).fit(X, y)


@pytest.mark.parametrize("load", [load_breast_cancer, load_wine])  # two classes, three
def test_a_factor_is_a_rescaled_column_in_logistic_regression(load: Any) -> None:
    X, y = load(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    factor = np.random.default_rng(0).uniform(0.3, 3.0, X.shape[1])
    kwargs: dict[str, Any] = {"C": 0.5, "l1_ratio": 1.0, "tol": 1e-10, "max_iter": 10_000}
    ours = LogisticRegression(penalty_factor=factor, **kwargs).fit(X, y)
    plain = LogisticRegression(**kwargs).fit(X / factor, y)
    np.testing.assert_allclose(ours.coef_, plain.coef_ / factor, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.coef_ != 0, plain.coef_ != 0)
    np.testing.assert_allclose(ours.intercept_, plain.intercept_, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("n", "p"), [(120, 10), (30, 60)])
@pytest.mark.parametrize("weighted", [False, True])
def test_cv_with_factors_is_cv_on_rescaled_columns(n: int, p: int, weighted: bool) -> None:
    X, y, factor, weights = problem(n, p)
    sw = weights if weighted else None
    folds = list(KFold(4).split(X))
    ours = LassoCV(cv=folds, alphas=15, penalty_factor=factor, **TIGHT).fit(X, y, sw)
    plain = LassoCV(cv=folds, alphas=15, **TIGHT).fit(X / factor, y, sw)
    np.testing.assert_allclose(ours.alphas_, plain.alphas_, rtol=1e-10)
    np.testing.assert_allclose(ours.mse_path_, plain.mse_path_, rtol=1e-6)
    assert ours.alpha_ == pytest.approx(plain.alpha_, rel=1e-10)
    np.testing.assert_allclose(ours.coef_, plain.coef_ / factor, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("n", "p"), [(120, 10), (30, 60)])
def test_the_grid_starts_where_every_penalized_feature_is_zero(n: int, p: int) -> None:
    X, y, factor, _ = problem(n, p)
    factor[[0, 3]] = 0.0  # unpenalized: fitted even at the top of the grid
    model = ElasticNetCV(l1_ratio=0.5, alphas=5, cv=3, penalty_factor=factor, **TIGHT)
    top = model.fit(X, y).alphas_[0]
    fits = [
        ElasticNet(alpha=top * f, l1_ratio=0.5, penalty_factor=factor, **TIGHT).fit(X, y)
        for f in (1.000001, 0.999)  # alpha_max to the solver's precision of the free features
    ]
    penalized = factor > 0
    assert not np.any(fits[0].coef_[penalized]) and np.all(fits[0].coef_[[0, 3]] != 0)
    assert np.any(fits[1].coef_[penalized])


def test_logistic_cv_with_factors_is_cv_on_rescaled_columns() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    factor = np.random.default_rng(0).uniform(0.3, 3.0, X.shape[1])
    kwargs: dict[str, Any] = {
        "Cs": [0.02, 0.1, 0.5], "l1_ratios": [1.0], "cv": 3, "tol": 1e-10, "max_iter": 10_000,
        "scoring": "neg_log_loss", "use_legacy_attributes": False,
    }  # fmt: skip
    ours = LogisticRegressionCV(penalty_factor=factor, **kwargs).fit(X, y)
    plain = LogisticRegressionCV(**kwargs).fit(X / factor, y)
    np.testing.assert_allclose(ours.scores_, plain.scores_, rtol=1e-6)
    assert ours.C_ == plain.C_
    np.testing.assert_allclose(ours.coef_, plain.coef_ / factor, rtol=0, atol=1e-6)
