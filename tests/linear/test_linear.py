"""Linear models against scikit-learn on the same problems, at tol=1e-8.

Coefficients agree within 1e-4 relative (``max|ours - theirs| <= 1e-4 * max|theirs|``) and the
objectives within 1e-6 relative; the CV classes choose the same alpha (C) on the same folds."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from sklearn import linear_model as sk
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler

from shrinkage import linear as sh
from shrinkage.path import choose, lambda_grid, path


def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y.astype(float)


def regression(n: int, p: int, k: int, seed: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def make() -> tuple[np.ndarray, np.ndarray]:
        X, y = make_regression(
            n_samples=n, n_features=p, n_informative=k, noise=3.0, random_state=seed
        )
        return X, y

    make.__name__ = f"make_regression_{n}x{p}"
    return make


DATASETS = [
    diabetes,
    breast_cancer,
    regression(300, 40, 10, 0),
    regression(1000, 120, 15, 1),
    regression(80, 300, 8, 2),  # p > n
]


def enet_objective(
    X: np.ndarray, y: np.ndarray, coef: np.ndarray, b: float, alpha: float, l1_ratio: float
) -> float:
    r = y - X @ coef - b
    return float(
        r @ r / (2 * len(y))
        + alpha * l1_ratio * np.abs(coef).sum()
        + 0.5 * alpha * (1 - l1_ratio) * coef @ coef
    )


def assert_coef_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    scale = max(float(np.abs(theirs).max()), 1e-12)
    assert float(np.abs(ours - theirs).max()) <= 1e-4 * scale


def alpha_for(X: np.ndarray, y: np.ndarray, fraction: float) -> float:
    """A strength that keeps part of the features: a fraction of alpha_max."""
    return fraction * float(np.abs((X - X.mean(0)).T @ (y - y.mean())).max()) / len(y)


@pytest.mark.parametrize("data", DATASETS, ids=lambda d: d.__name__)
@pytest.mark.parametrize(("l1_ratio", "fraction"), [(1.0, 0.05), (1.0, 0.3), (0.5, 0.1)])
def test_lasso_and_elastic_net_match_sklearn(
    data: Callable, l1_ratio: float, fraction: float
) -> None:
    X, y = data()
    alpha = alpha_for(X, y, fraction)
    if l1_ratio == 1.0:
        ours = sh.Lasso(alpha=alpha, tol=1e-8, max_iter=100_000).fit(X, y)
        theirs = sk.Lasso(alpha=alpha, tol=1e-8, max_iter=1_000_000).fit(X, y)
    else:
        ours = sh.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-8, max_iter=100_000).fit(X, y)
        theirs = sk.ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-8, max_iter=1_000_000).fit(
            X, y
        )
    assert_coef_close(ours.coef_, theirs.coef_)
    f_ours = enet_objective(X, y, ours.coef_, ours.intercept_, alpha, l1_ratio)
    f_theirs = enet_objective(X, y, theirs.coef_, theirs.intercept_, alpha, l1_ratio)
    assert f_ours <= f_theirs * (1 + 1e-6)
    assert abs(f_ours - f_theirs) <= 1e-6 * abs(f_theirs)
    assert ours.dual_gap_ <= 1e-8 * float(np.var(y))
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-4, abs=1e-6 * abs(y).max())


@pytest.mark.parametrize("data", DATASETS, ids=lambda d: d.__name__)
@pytest.mark.parametrize("alpha", [0.1, 10.0])
def test_ridge_matches_sklearn(data: Callable, alpha: float) -> None:
    X, y = data()
    ours = sh.Ridge(alpha=alpha).fit(X, y)
    theirs = sk.Ridge(alpha=alpha, solver="cholesky").fit(X, y)
    assert_coef_close(ours.coef_, theirs.coef_)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-8, abs=1e-8)
    np.testing.assert_allclose(
        ours.predict(X), theirs.predict(X), rtol=1e-8, atol=1e-8 * np.abs(y).max()
    )


def logistic_objective(
    X: np.ndarray, y: np.ndarray, coef: np.ndarray, b: np.ndarray, C: float, l1_ratio: float
) -> float:
    logits = X @ coef.T + b
    if logits.shape[1] == 1:
        logits = np.hstack([np.zeros_like(logits), logits])
    logits = logits - logits.max(1, keepdims=True)
    log_prob = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    loss = -log_prob[np.arange(len(y)), y].sum()
    reg = l1_ratio * np.abs(coef).sum() + 0.5 * (1 - l1_ratio) * (coef**2).sum()
    return float(C * loss + reg)


# scikit-learn's saga takes a minute to reach 1e-10 on breast_cancer at C=1 with L1: slow
LOGISTIC_CASES = [
    pytest.param(
        dataset, C, penalty,
        marks=[pytest.mark.slow] if (dataset, C, penalty) == ("breast_cancer", 1.0, "l1") else [],
    )
    for dataset in ("breast_cancer", "wine")
    for C in (0.05, 1.0)
    for penalty in ("l1", "l2", "elasticnet")
]  # fmt: skip


@pytest.mark.parametrize(("dataset", "C", "penalty"), LOGISTIC_CASES)
def test_logistic_regression_matches_sklearn(penalty: str, C: float, dataset: str) -> None:
    X, y = (
        load_breast_cancer(return_X_y=True)
        if dataset == "breast_cancer"
        else load_wine(return_X_y=True)
    )
    X = StandardScaler().fit_transform(X)
    l1_ratio = {"l1": 1.0, "l2": 0.0, "elasticnet": 0.5}[penalty]
    ours = sh.LogisticRegression(
        penalty, C=C, l1_ratio=l1_ratio if penalty == "elasticnet" else None, tol=1e-8
    )
    ours.fit(X, y)
    solver = "lbfgs" if penalty == "l2" else "saga"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = sk.LogisticRegression(
            C=C, l1_ratio=l1_ratio, solver=solver, tol=1e-10, max_iter=200_000
        ).fit(X, y)
    f_ours = logistic_objective(X, y, ours.coef_, ours.intercept_, C, l1_ratio)
    f_theirs = logistic_objective(X, y, theirs.coef_, theirs.intercept_, C, l1_ratio)
    assert f_ours <= f_theirs * (1 + 1e-6)
    assert abs(f_ours - f_theirs) <= 1e-6 * abs(f_theirs)
    if dataset == "breast_cancer" or penalty != "l2":
        assert_coef_close(ours.coef_, theirs.coef_)
    else:  # multinomial + l2: the coefficients are unique, the intercepts only up to a shift
        assert_coef_close(ours.coef_, theirs.coef_)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("data", [diabetes, regression(300, 40, 10, 0)], ids=lambda d: d.__name__)
def test_lasso_cv_chooses_sklearns_alpha(data: Callable) -> None:
    X, y = data()
    folds = KFold(5, shuffle=True, random_state=0)
    ours = sh.LassoCV(cv=folds, tol=1e-8, max_iter=100_000).fit(X, y)
    theirs = sk.LassoCV(cv=folds, tol=1e-8, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(ours.alphas_, theirs.alphas_, rtol=1e-12)
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-10)  # the same grid point
    np.testing.assert_allclose(ours.mse_path_, theirs.mse_path_, rtol=1e-4)
    assert_coef_close(ours.coef_, theirs.coef_)


def test_elastic_net_cv_with_l1_ratio_list_chooses_sklearns_alpha() -> None:
    X, y = diabetes()
    folds = KFold(4, shuffle=True, random_state=1)
    ours = sh.ElasticNetCV(l1_ratio=[0.3, 0.7, 1.0], cv=folds, tol=1e-8, max_iter=100_000).fit(X, y)
    theirs = sk.ElasticNetCV(l1_ratio=[0.3, 0.7, 1.0], cv=folds, tol=1e-8, max_iter=100_000).fit(
        X, y
    )
    assert ours.mse_path_.shape == theirs.mse_path_.shape == (3, 100, 4)
    assert ours.l1_ratio_ == theirs.l1_ratio_
    assert ours.alpha_ == pytest.approx(theirs.alpha_, rel=1e-10)


@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss"])
def test_logistic_regression_cv_chooses_sklearns_c(scoring: str) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    ours = sh.LogisticRegressionCV(Cs=8, cv=folds, scoring=scoring, tol=1e-8).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sk.LogisticRegressionCV(
            Cs=8, cv=folds, scoring=scoring, tol=1e-10, max_iter=10_000, l1_ratios=(0.0,)
        )
        theirs.fit(X, y)
    assert float(ours.C_[0]) == pytest.approx(float(np.ravel(theirs.C_)[0]))


def test_one_standard_error_rule_picks_a_stronger_penalty() -> None:
    X, y = regression(200, 50, 5, 3)()
    folds = KFold(5, shuffle=True, random_state=0)
    best = sh.LassoCV(cv=folds, tol=1e-6).fit(X, y)
    simple = sh.LassoCV(cv=folds, tol=1e-6, selection_rule="1se").fit(X, y)
    assert simple.alpha_ > best.alpha_
    mean = best.mse_path_.mean(axis=1)
    i_min = int(np.argmin(mean))
    se = best.mse_path_[i_min].std(ddof=1) / np.sqrt(5)
    i_1se = int(np.flatnonzero(best.alphas_ == simple.alpha_)[0])
    assert mean[i_1se] <= mean[i_min] + se
    assert i_1se == 0 or mean[i_1se - 1] > mean[i_min] + se
    assert np.count_nonzero(simple.coef_) <= np.count_nonzero(best.coef_)


def test_choose_rules() -> None:
    """Folds' losses on a decreasing grid: "min" takes the lowest mean, "1se" the strongest
    penalty within one standard error (over folds) of it; scores flip the sign."""
    losses = np.array([[5.0, 5.2, 4.8], [3.0, 3.1, 2.9], [2.5, 3.3, 2.7], [4.0, 4.0, 4.0]])
    lams = np.array([4.0, 3.0, 2.0, 1.0])
    assert choose(losses, lams).index("min") == 2
    assert choose(losses, lams).index("1se") == 1
    assert choose(-losses, lams, larger_is_better=True).index("min") == 2
    assert choose(losses[::-1], lams[::-1]).index("1se") == 2  # the grid's order is irrelevant


def test_path_records_follow_the_grid_with_warm_starts() -> None:
    X, y = diabetes()
    problem = sh.LinearProblem(
        X, y, loss="squared", l1_ratio=1.0, fit_intercept=True, tol=1e-8, max_iter=10_000
    )
    grid = lambda_grid(problem.lambda_max(), n_lambdas=20, eps=1e-2)
    assert (
        grid.shape == (20,)
        and grid[0] == pytest.approx(problem.lambda_max())
        and np.all(np.diff(grid) < 0)
    )
    points = path(problem, grid, validation=(X, y))
    assert [p.lam for p in points] == list(grid)
    assert points[0].n_nonzero == 0  # alpha_max: everything out
    assert points[-1].n_nonzero > X.shape[1] // 2
    assert all(p.converged for p in points)
    nnz = [p.n_nonzero for p in points]
    assert nnz[-1] >= nnz[len(nnz) // 2] >= nnz[0]
    for p in points[1:]:
        assert p.val_loss is not None and p.val_score is not None
        theirs = sk.Lasso(alpha=p.lam, tol=1e-10, max_iter=100_000).fit(X, y)
        assert_coef_close(p.coef, theirs.coef_)
        assert p.selected == tuple(np.flatnonzero(p.coef))


def test_warm_start_reuses_the_previous_solution() -> None:
    X, y = regression(300, 40, 10, 0)()
    model = sh.Lasso(alpha=alpha_for(X, y, 0.05), tol=1e-8, warm_start=True).fit(X, y)
    first = model.n_iter_
    model.fit(X, y)
    assert model.n_iter_ <= first


# -- bad input: scikit-learn's errors -----------------------------------------------------------
REGRESSORS = [sh.Lasso(), sh.ElasticNet(), sh.Ridge(), sh.LassoCV(cv=3), sh.ElasticNetCV(cv=3)]
CLASSIFIERS = [sh.LogisticRegression(), sh.LogisticRegressionCV(Cs=3, cv=3)]


@pytest.mark.parametrize("est", REGRESSORS + CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_nan_in_x(est) -> None:  # type: ignore[no-untyped-def]
    X = np.random.default_rng(0).normal(size=(30, 3))
    X[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN"):
        est.fit(X, np.arange(30) % 2)


@pytest.mark.parametrize("est", REGRESSORS + CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_inf_in_x(est) -> None:  # type: ignore[no-untyped-def]
    X = np.random.default_rng(0).normal(size=(30, 3))
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"Input X contains infinity"):
        est.fit(X, np.arange(30) % 2)


@pytest.mark.parametrize("est", REGRESSORS, ids=lambda e: type(e).__name__)
def test_nan_in_y(est) -> None:  # type: ignore[no-untyped-def]
    y = np.arange(30.0)
    y[3] = np.nan
    with pytest.raises(ValueError, match=r"Input y contains NaN"):
        est.fit(np.ones((30, 2)), y)


@pytest.mark.parametrize("est", REGRESSORS + CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_inconsistent_lengths(est) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples"):
        est.fit(np.ones((30, 2)), np.arange(29) % 2)


@pytest.mark.parametrize("est", REGRESSORS + CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_one_dimensional_x(est) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"Expected 2D array, got 1D array"):
        est.fit(np.ones(30), np.arange(30) % 2)


@pytest.mark.parametrize("est", REGRESSORS + CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_wrong_number_of_features_at_predict(est) -> None:  # type: ignore[no-untyped-def]
    X = np.random.default_rng(0).normal(size=(30, 3))
    est.fit(X, np.arange(30) % 2)
    with pytest.raises(ValueError, match=r"X has 2 features, but .* is expecting 3 features"):
        est.predict(X[:, :2])


@pytest.mark.parametrize("est", CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_single_class(est) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        ValueError, match=r"needs samples of at least 2 classes .* only one class: 1"
    ):
        est.fit(np.random.default_rng(0).normal(size=(30, 2)), np.ones(30, dtype=int))


@pytest.mark.parametrize("cls", [sh.Lasso, sh.ElasticNet, sh.Ridge])
def test_negative_alpha(cls: type) -> None:
    with pytest.raises(
        ValueError, match=r"The 'alpha' parameter of .* must be a float in the range \[0.0, inf\)"
    ):
        cls(alpha=-1.0).fit(np.ones((10, 2)), np.arange(10.0))


@pytest.mark.parametrize(
    "est", [sh.ElasticNet(l1_ratio=1.5), sh.ElasticNetCV(l1_ratio=-0.1)], ids=repr
)
def test_l1_ratio_out_of_range(est) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"l1_ratio"):
        est.fit(np.random.default_rng(0).normal(size=(20, 2)), np.arange(20.0))


def test_unknown_penalty_name() -> None:
    with pytest.raises(ValueError, match=r"The 'penalty' parameter of LogisticRegression must be"):
        sh.LogisticRegression(penalty="l3").fit(np.ones((10, 2)), np.arange(10) % 2)


def test_elasticnet_penalty_needs_l1_ratio() -> None:
    with (
        pytest.warns(FutureWarning, match="'penalty' was deprecated"),
        pytest.raises(ValueError, match=r"l1_ratio must be specified when penalty is elasticnet"),
    ):
        sh.LogisticRegression(penalty="elasticnet", l1_ratio=None).fit(
            np.ones((10, 2)), np.arange(10) % 2
        )


def test_negative_c() -> None:
    with pytest.raises(
        ValueError,
        match=r"The 'C' parameter of LogisticRegression must be a float in the range \(0",
    ):
        sh.LogisticRegression(C=-1.0).fit(np.ones((10, 2)), np.arange(10) % 2)


def test_bad_device() -> None:
    with pytest.raises(ValueError, match=r"device must name a torch device"):
        sh.Lasso(device="gpu0").fit(np.ones((10, 2)), np.arange(10.0))


def test_fewer_samples_than_folds() -> None:
    with pytest.raises(
        ValueError,
        match=r"Cannot have number of splits n_splits=5 greater than the number of samples",
    ):
        sh.LassoCV(cv=5).fit(np.random.default_rng(0).normal(size=(3, 2)), np.arange(3.0))


def test_ridge_l1_ratio_zero_grid_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not supported for l1_ratio=0.*`alphas=`"):
        sh.ElasticNetCV(l1_ratio=0.0).fit(
            np.random.default_rng(0).normal(size=(20, 2)), np.arange(20.0)
        )
