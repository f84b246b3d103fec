"""Sample weights and sparse ``X`` in shrinkage.linear. Oracles: integer weights equal
repeating rows; scikit-learn fitted on the same weights; the dense matrix for the sparse one."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from scipy import sparse
from sklearn import linear_model as sk
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold

from shrinkage import linear as sh

TIGHT = {"tol": 1e-10, "max_iter": 100_000}


def regression_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_regression(
        n_samples=60, n_features=12, n_informative=5, noise=5.0, random_state=seed
    )
    return X, y


def classification_data(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return make_classification(
        n_samples=80, n_features=8, n_informative=5, n_redundant=0, n_classes=n_classes,
        flip_y=0.1, random_state=seed,
    )  # fmt: skip


def integer_weights(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, size=n).astype(float)


def sparse_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``[80, 30]`` with about 85% zeros, and a target that depends on it."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 30)) * (rng.uniform(size=(80, 30)) < 0.15)
    y = X[:, :4] @ np.array([2.0, -1.0, 1.5, 3.0]) + 0.1 * rng.normal(size=80)
    return X, y


def assert_close(ours: Any, theirs: Any, rtol: float) -> None:
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    scale = max(float(np.abs(theirs).max()), 1e-12)
    assert float(np.abs(ours - theirs).max()) <= rtol * scale


def fitted(model: Any, X: Any, y: np.ndarray, sample_weight: np.ndarray | None = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y, sample_weight=sample_weight)


REGRESSORS = [
    lambda: sh.Lasso(alpha=0.5, **TIGHT),
    lambda: sh.ElasticNet(alpha=0.5, l1_ratio=0.3, **TIGHT),
    lambda: sh.Ridge(alpha=2.0),
    lambda: sh.Ridge(alpha=2.0, positive=True, tol=1e-10),
    lambda: sh.Lasso(alpha=0.5, positive=True, **TIGHT),
]
REGRESSOR_IDS = ["lasso", "elasticnet", "ridge", "ridge-positive", "lasso-positive"]


@pytest.mark.parametrize("make", REGRESSORS, ids=REGRESSOR_IDS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_integer_weights_equal_repeated_rows_regression(make: Any, fit_intercept: bool) -> None:
    X, y = regression_data()
    w = integer_weights(len(y))
    weighted = fitted(make().set_params(fit_intercept=fit_intercept), X, y, w)
    repeated = fitted(
        make().set_params(fit_intercept=fit_intercept),
        np.repeat(X, w.astype(int), axis=0),
        np.repeat(y, w.astype(int)),
    )
    assert_close(weighted.coef_, repeated.coef_, 1e-7)
    assert_close(weighted.intercept_, repeated.intercept_, 1e-7)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("l1_ratio", [0.0, 1.0, 0.5])
def test_integer_weights_equal_repeated_rows_logistic(n_classes: int, l1_ratio: float) -> None:
    X, y = classification_data(n_classes)
    w = integer_weights(len(y), seed=1)
    model = sh.LogisticRegression(C=0.5, l1_ratio=l1_ratio, **TIGHT)
    weighted = fitted(model, X, y, w)
    repeated = sh.LogisticRegression(C=0.5, l1_ratio=l1_ratio, **TIGHT).fit(
        np.repeat(X, w.astype(int), axis=0), np.repeat(y, w.astype(int))
    )
    assert_close(weighted.coef_, repeated.coef_, 1e-6)
    assert_close(weighted.intercept_, repeated.intercept_, 1e-6)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (sh.Lasso(alpha=0.3, **TIGHT), sk.Lasso(alpha=0.3, tol=1e-12, max_iter=100_000)),
        (
            sh.ElasticNet(alpha=0.3, l1_ratio=0.4, **TIGHT),
            sk.ElasticNet(alpha=0.3, l1_ratio=0.4, tol=1e-12, max_iter=100_000),
        ),
        (sh.Ridge(alpha=3.0), sk.Ridge(alpha=3.0)),
    ],
    ids=["lasso", "elasticnet", "ridge"],
)
def test_weights_match_sklearn_regression(ours: Any, theirs: Any) -> None:
    X, y = regression_data(seed=2)
    w = np.random.default_rng(2).lognormal(size=len(y))
    a, b = fitted(ours, X, y, w), fitted(theirs, X, y, w)
    assert_close(a.coef_, b.coef_, 1e-6)
    assert_close(a.intercept_, b.intercept_, 1e-6)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_weights_match_sklearn_logistic(n_classes: int) -> None:
    X, y = classification_data(n_classes, seed=3)
    w = np.random.default_rng(3).lognormal(size=len(y))
    ours = fitted(sh.LogisticRegression(C=0.7, **TIGHT), X, y, w)
    theirs = fitted(sk.LogisticRegression(C=0.7, tol=1e-12, max_iter=100_000), X, y, w)
    assert_close(ours.coef_, theirs.coef_, 1e-5)
    assert_close(ours.intercept_, theirs.intercept_, 1e-5)


def test_class_weight_balanced_matches_sklearn() -> None:
    X, y = classification_data(3, seed=4)
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:8]]  # unbalanced classes
    X, y = X[keep], y[keep]
    ours = fitted(sh.LogisticRegression(class_weight="balanced", **TIGHT), X, y)
    theirs = fitted(
        sk.LogisticRegression(class_weight="balanced", tol=1e-12, max_iter=100_000), X, y
    )
    assert_close(ours.coef_, theirs.coef_, 1e-5)


def test_weighted_lasso_cv_matches_sklearn() -> None:
    X, y = regression_data(seed=5)
    w = np.random.default_rng(5).lognormal(size=len(y))
    folds = KFold(4, shuffle=True, random_state=0)
    grid = np.geomspace(5.0, 0.05, 12)
    ours = fitted(sh.LassoCV(alphas=grid, cv=folds, **TIGHT), X, y, w)
    theirs = fitted(sk.LassoCV(alphas=grid, cv=folds, tol=1e-12, max_iter=100_000), X, y, w)
    assert ours.alpha_ == theirs.alpha_
    assert_close(ours.mse_path_, theirs.mse_path_, 1e-6)
    assert_close(ours.coef_, theirs.coef_, 1e-6)


# -- sparse X --------------------------------------------------------------------------------

SPARSE_MODELS = [
    lambda: sh.Lasso(alpha=0.05, **TIGHT),
    lambda: sh.ElasticNet(alpha=0.05, l1_ratio=0.5, **TIGHT),
    lambda: sh.Ridge(alpha=1.0),
    lambda: sh.LassoCV(cv=3, **TIGHT),
]


@pytest.mark.parametrize("make", SPARSE_MODELS, ids=["lasso", "elasticnet", "ridge", "lassocv"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_equals_dense_regression(
    make: Any, fmt: str, fit_intercept: bool, weighted: bool
) -> None:
    X, y = sparse_data()
    w = np.random.default_rng(6).lognormal(size=len(y)) if weighted else None
    dense = fitted(make().set_params(fit_intercept=fit_intercept), X, y, w)
    Xs = sparse.csr_matrix(X) if fmt == "csr" else sparse.csc_matrix(X)
    sparse_fit = fitted(make().set_params(fit_intercept=fit_intercept), Xs, y, w)
    assert_close(sparse_fit.coef_, dense.coef_, 1e-8)
    assert_close(sparse_fit.intercept_, dense.intercept_, 1e-8)
    assert_close(sparse_fit.predict(Xs), dense.predict(X), 1e-8)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("l1_ratio", [0.0, 1.0])
def test_sparse_equals_dense_logistic(n_classes: int, l1_ratio: float) -> None:
    X, _ = sparse_data(seed=7)
    y = np.digitize(X[:, 0] + X[:, 1], [-0.3, 0.3]) % n_classes
    dense = sh.LogisticRegression(C=2.0, l1_ratio=l1_ratio, **TIGHT).fit(X, y)
    Xs = sparse.csr_matrix(X)
    sparse_fit = sh.LogisticRegression(C=2.0, l1_ratio=l1_ratio, **TIGHT).fit(Xs, y)
    assert_close(sparse_fit.coef_, dense.coef_, 1e-8)
    assert_close(sparse_fit.intercept_, dense.intercept_, 1e-8)
    np.testing.assert_allclose(sparse_fit.predict_proba(Xs), dense.predict_proba(X), atol=1e-10)


def test_sparse_x_is_never_densified(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fits on a wide, very sparse X never build it dense. The dense arrays scipy is asked
    for (Gram matrices of working sets, the columns of a small support for Newton's method)
    stay within twice X's stored values for least squares (a working set's Gram matrix is
    formed only when it is smaller than its columns), and a small part of ``n * p`` for the
    logistic loss."""
    rng = np.random.default_rng(8)
    n, p = 400, 4000
    Xs = sparse.random(n, p, density=0.002, format="csr", random_state=8)
    y = rng.normal(size=n)
    sizes: list[int] = []
    for cls in (sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix):
        original = cls.toarray

        def recording(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            out = _original(self, *args, **kwargs)
            sizes.append(out.size)
            return out

        monkeypatch.setattr(cls, "toarray", recording)
    for model in (sh.Lasso(alpha=3e-3), sh.ElasticNet(alpha=3e-3)):
        model.fit(Xs, y)
        assert int((model.coef_ != 0).sum()) > 50  # working sets well beyond a few columns
    assert max(sizes) <= 2 * Xs.nnz
    sh.Ridge().fit(Xs, y)
    sh.LogisticRegression(C=1.0, l1_ratio=1.0).fit(Xs, (y > 0).astype(int))
    assert max(sizes) <= n * p // 20
