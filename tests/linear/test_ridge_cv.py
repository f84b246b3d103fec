"""RidgeCV: leave-one-out from one decomposition (an SVD, or for n < p the kernel's
eigendecomposition), against scikit-learn's RidgeCV on the same problems and against
leave-one-out by brute force (n refits of Ridge)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import linear_model as sk

from shrinkage.linear import Ridge, RidgeCV

ALPHAS = np.logspace(-3, 2, 8)


def problem(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = X @ rng.normal(size=p) + rng.normal(size=n)
    Y = np.column_stack([y, 2 * y + rng.normal(size=n)])
    return X, y, Y, rng.uniform(0.2, 2.0, n)


SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("y", {}),
    ("y weighted", {"store_cv_results": True}),
    ("Y", {"alpha_per_target": True, "store_cv_results": True}),
    ("Y weighted", {"fit_intercept": False}),
    ("y weighted", {"scoring": "r2", "store_cv_results": True}),
    ("Y", {"scoring": "neg_mean_absolute_error", "alpha_per_target": True}),
    ("y", {"cv": 3}),
]


@pytest.mark.parametrize(("n", "p"), [(60, 8), (20, 40)])
@pytest.mark.parametrize(("data", "kwargs"), SETTINGS)
def test_equal_to_scikit_learn(n: int, p: int, data: str, kwargs: dict[str, Any]) -> None:
    X, y, Y, weights = problem(n, p)
    target = Y if data.startswith("Y") else y
    sw = weights if "weighted" in data else None
    theirs = sk.RidgeCV(alphas=ALPHAS, **kwargs).fit(X, target, sample_weight=sw)
    ours = RidgeCV(alphas=ALPHAS, **kwargs).fit(X, target, sample_weight=sw)
    np.testing.assert_array_equal(ours.alpha_, theirs.alpha_)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-8, atol=1e-10)
    assert np.shape(ours.intercept_) == np.shape(theirs.intercept_)
    np.testing.assert_allclose(ours.best_score_, theirs.best_score_, rtol=1e-7, atol=1e-10)
    if kwargs.get("store_cv_results"):
        np.testing.assert_allclose(ours.cv_results_, theirs.cv_results_, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize(("n", "p"), [(30, 5), (12, 20)])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_leave_one_out_equals_n_refits(n: int, p: int, fit_intercept: bool) -> None:
    """Oracle: each stored squared error is that of Ridge refitted without sample ``i``."""
    X, y, _, weights = problem(n, p, seed=1)
    alphas = [0.01, 1.0]
    ours = RidgeCV(alphas=alphas, fit_intercept=fit_intercept, store_cv_results=True)
    ours.fit(X, y, sample_weight=weights)
    for k, alpha in enumerate(alphas):
        for i in range(n):
            keep = np.arange(n) != i
            model = Ridge(alpha=alpha, fit_intercept=fit_intercept)
            model.fit(X[keep], y[keep], sample_weight=weights[keep])
            error = weights[i] * (y[i] - model.predict(X[i : i + 1])[0]) ** 2
            assert ours.cv_results_[i, k] == pytest.approx(error, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alphas": [1.0, 0.0]}, r"alphas\[1\] == 0.0, must be > 0.0"),
        ({"cv": 3, "store_cv_results": True}, "store_cv_results"),
        ({"cv": 3, "alpha_per_target": True}, "alpha_per_target"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], match: str) -> None:
    X, y, _, _ = problem(20, 3)
    with pytest.raises(ValueError, match=match):
        RidgeCV(**kwargs).fit(X, y)
