"""shrinkage.linear as a drop-in for scikit-learn: the wrong answers its own test suite found,
each checked against an oracle (a closed form, the minimum-norm least-squares solution,
optimality conditions, scikit-learn itself at a tight tolerance)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import linear_model as sk
from sklearn.datasets import load_breast_cancer, load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler, scale

from shrinkage import linear as sh


def rank_deficient(n: int = 6, p: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``X = [A, A]``: every column twice, so ``X^T X`` is singular."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, p))
    return np.hstack([A, A]), rng.normal(size=n)


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def sklearn_fit(estimator: object, X: np.ndarray, y: np.ndarray) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)  # type: ignore[attr-defined]


# -- 1. identical fits give identical answers; the minimum-norm solution --------------------


def test_ridge_without_penalty_is_the_minimum_norm_solution_every_time() -> None:
    X, y = rank_deficient()
    expected = np.linalg.pinv(X) @ y
    fits = [sh.Ridge(alpha=0.0, fit_intercept=False).fit(X, y).coef_ for _ in range(30)]
    for coef in fits:
        np.testing.assert_array_equal(coef, fits[0])
    np.testing.assert_allclose(fits[0], expected, rtol=1e-10, atol=1e-12)


def test_ridge_without_penalty_with_intercept_is_minimum_norm() -> None:
    X, y = rank_deficient(n=10, p=3, seed=1)
    Xc, yc = X - X.mean(0), y - y.mean()
    model = sh.Ridge(alpha=0.0).fit(X, y)
    np.testing.assert_allclose(model.coef_, np.linalg.pinv(Xc) @ yc, rtol=1e-10, atol=1e-12)
    assert model.intercept_ == pytest.approx(y.mean() - X.mean(0) @ model.coef_)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.0])
def test_nearly_unpenalized_multiclass_fits_are_bit_identical(l1_ratio: float) -> None:
    """Iris with ``C=1e6``: the multinomial Hessian with intercepts is singular (a shift
    across classes changes nothing), so each Newton step is a minimum-norm solve."""
    X, y = load_iris(return_X_y=True)
    fits = [sh.LogisticRegression(l1_ratio=l1_ratio, C=1e6, tol=1e-2).fit(X, y) for _ in range(12)]
    for model in fits:
        np.testing.assert_array_equal(model.coef_, fits[0].coef_)
        np.testing.assert_array_equal(model.intercept_, fits[0].intercept_)


# -- 2. multinomial intercepts (and unpenalized coefficients) are centred -----------------


def test_multiclass_intercepts_sum_to_zero_and_repeat_exactly() -> None:
    """Centred in float64: the sum is zero up to the rounding of centring ``K`` numbers, a
    few ``K * eps * max|b|`` (3e-14 for iris's intercepts near 12), whatever the kernels; the
    same fit repeated gives the same bits (its thread count does not follow the load)."""
    X, y = load_iris(return_X_y=True)
    fits = [sh.LogisticRegression(C=1.0).fit(X, y) for _ in range(5)]
    for model in fits:
        b = model.intercept_
        assert abs(float(b.sum())) <= 8 * len(b) * np.finfo(b.dtype).eps * np.abs(b).max()
        np.testing.assert_array_equal(b, fits[0].intercept_)


def test_unpenalized_multinomial_is_the_symmetric_solution() -> None:
    """``C=inf``: any shift across classes is optimal; the reported one sums to zero, as
    scikit-learn's."""
    X, y = make_classification(
        n_samples=100, n_features=4, n_informative=4, n_redundant=0, n_classes=3,
        n_clusters_per_class=1, flip_y=0.3, random_state=0,
    )  # fmt: skip
    ours = sh.LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(X, y)
    theirs = sklearn_fit(sk.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000), X, y)
    np.testing.assert_allclose(ours.coef_.sum(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-5, atol=1e-6)  # type: ignore[attr-defined]


# -- 3. scikit-learn 1.8's LogisticRegression API ------------------------------------------


def test_l1_ratio_alone_chooses_the_penalty() -> None:
    X, y = breast_cancer()
    ours = sh.LogisticRegression(C=0.05, l1_ratio=1.0, tol=1e-8).fit(X, y)
    theirs = sklearn_fit(
        sk.LogisticRegression(C=0.05, l1_ratio=1.0, solver="saga", tol=1e-10, max_iter=100_000),
        X,
        y,
    )
    np.testing.assert_array_equal(ours.coef_ != 0, theirs.coef_ != 0)  # type: ignore[attr-defined]
    assert int((ours.coef_ != 0).sum()) < 10


def test_logistic_cv_reports_the_l1_ratio_it_was_given() -> None:
    X, y = breast_cancer()
    model = sh.LogisticRegressionCV(
        Cs=[0.01, 0.1], l1_ratios=[1.0], use_legacy_attributes=False, scoring="neg_log_loss"
    ).fit(X, y)
    assert model.l1_ratio_ == 1.0
    assert model.l1_ratios_.tolist() == [1.0]


def test_c_infinity_is_no_penalty() -> None:
    X, y = make_classification(n_samples=200, n_features=5, flip_y=0.2, random_state=1)
    ours = sh.LogisticRegression(C=np.inf, tol=1e-10).fit(X, y)
    theirs = sklearn_fit(sk.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000), X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-6, atol=1e-7)  # type: ignore[attr-defined]


def test_old_penalty_spelling_warns_and_decides() -> None:
    X, y = breast_cancer()
    with pytest.warns(FutureWarning, match="'penalty' was deprecated"):
        old = sh.LogisticRegression(penalty="l1", l1_ratio=1.0, C=0.05, tol=1e-8).fit(X, y)
    new = sh.LogisticRegression(l1_ratio=1.0, C=0.05, tol=1e-8).fit(X, y)
    np.testing.assert_array_equal(old.coef_, new.coef_)


# -- 4. the CV refit is the solution at alpha_ ----------------------------------------------


def test_cv_refit_equals_the_single_fit_at_alpha() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 200))
    y = X[:, :5] @ np.array([3.0, -2.0, 1.5, 1.0, -1.0]) + rng.normal(size=50)
    cv = sh.ElasticNetCV(l1_ratio=0.5, cv=5).fit(X, y)
    single = sh.ElasticNet(alpha=cv.alpha_, l1_ratio=0.5).fit(X, y)
    scale_ = float(np.abs(single.coef_).max())
    assert float(np.abs(cv.coef_ - single.coef_).max()) <= 1e-6 * scale_
    assert cv.intercept_ == pytest.approx(single.intercept_, rel=1e-6, abs=1e-9)


def test_cv_refit_at_alpha_max_is_exactly_zero() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    y = rng.normal(size=40)
    alpha_max = float(np.abs((X - X.mean(0)).T @ (y - y.mean())).max()) / (40 * 0.5)
    cv = sh.ElasticNetCV(l1_ratio=0.5, alphas=[alpha_max], cv=3).fit(X, y)
    assert cv.alpha_ == alpha_max
    np.testing.assert_array_equal(cv.coef_, 0.0)


# -- 5. exact answers on easy problems -------------------------------------------------------


@pytest.mark.parametrize("alpha", [1e-8, 0.01, 0.1, 0.5])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5, 0.3])
def test_toy_elastic_net_is_exact(alpha: float, l1_ratio: float) -> None:
    """``X = y = [-1, 0, 1]``: ``w = (2/3 - alpha rho) / (2/3 + alpha (1 - rho))``."""
    X = np.array([[-1.0], [0.0], [1.0]])
    y = X.ravel()
    model = sh.ElasticNet(alpha=alpha, l1_ratio=l1_ratio).fit(X, y)
    expected = max(0.0, 2 / 3 - alpha * l1_ratio) / (2 / 3 + alpha * (1 - l1_ratio))
    assert abs(float(model.coef_[0]) - expected) <= 1e-8
    assert abs(float(model.intercept_)) <= 1e-12


def test_multiclass_l2_without_intercept_reaches_the_optimum() -> None:
    """Iris, ``C=150``, no intercept: the optimum of an L2-penalized multinomial model has
    coefficients summing to zero over classes, and scikit-learn's lbfgs reaches it."""
    X, y = load_iris(return_X_y=True)
    X = scale(X)

    def objective(coef: np.ndarray) -> float:
        logits = X @ coef.T
        logits = logits - logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return float(150 * -log_p[np.arange(len(y)), y].sum() + 0.5 * (coef**2).sum())

    ours = sh.LogisticRegression(C=150, fit_intercept=False).fit(X, y)
    theirs = sklearn_fit(
        sk.LogisticRegression(C=150, fit_intercept=False, tol=1e-12, max_iter=10_000), X, y
    )
    assert objective(ours.coef_) <= objective(theirs.coef_) * (1 + 1e-10)  # type: ignore[attr-defined]
    np.testing.assert_allclose(ours.coef_.sum(axis=0), 0.0, atol=1e-9)


def test_positive_ridge_is_optimal() -> None:
    """KKT of ``min ||y - Xw||^2 + alpha ||w||^2, w >= 0``: zero gradient where ``w > 0``,
    a non-negative one where ``w = 0``."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 60))
    y = X @ rng.normal(size=60) + rng.normal(size=120)
    model = sh.Ridge(alpha=0.1, positive=True, fit_intercept=False).fit(X, y)
    grad = -2 * X.T @ (y - X @ model.coef_) + 2 * 0.1 * model.coef_
    active = model.coef_ > 0
    assert np.all(model.coef_ >= 0)
    assert float(np.abs(grad[active]).max()) <= 1e-6
    assert float(grad[~active].min()) >= -1e-6


# -- 6. fitted attributes in scikit-learn's shapes ------------------------------------------


def shapes(model: object, names: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in names:
        value = getattr(model, name)
        out[name] = (
            {k: np.shape(v) for k, v in value.items()}
            if isinstance(value, dict)
            else (type(value).__name__ if np.isscalar(value) else np.shape(value))
        )
    return out


@pytest.mark.parametrize("legacy", [True, False])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_cv_attributes_have_sklearns_shapes(legacy: bool, n_classes: int) -> None:
    X, y = make_classification(
        n_samples=90, n_features=5, n_informative=4, n_redundant=0, n_classes=n_classes,
        random_state=0,
    )  # fmt: skip
    kwargs = dict(Cs=[0.1, 1.0, 10.0], cv=3, use_legacy_attributes=legacy, scoring="accuracy")
    names = ["C_", "l1_ratio_", "scores_", "coefs_paths_", "n_iter_", "Cs_", "coef_"]
    for l1_ratios in ([0.0], [0.2, 0.8]):
        ours = sh.LogisticRegressionCV(l1_ratios=l1_ratios, **kwargs).fit(X, y)
        theirs = sklearn_fit(
            sk.LogisticRegressionCV(l1_ratios=l1_ratios, solver="saga", **kwargs), X, y
        )
        assert shapes(ours, names) == shapes(theirs, names)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alphas": [0.1, 0.01, 0.001]},
        {"alphas": [0.1, 0.01], "l1_ratio": [0.5]},
        {"alphas": [0.1, 0.01], "l1_ratio": [0.2, 0.9]},
        {"n_alphas": 7, "l1_ratio": [0.5]},
    ],
)
def test_elastic_net_cv_attributes_have_sklearns_shapes(kwargs: dict[str, object]) -> None:
    X, y = make_classification(n_samples=60, n_features=6, random_state=0)
    kwargs = {**kwargs, "cv": 3}
    if "n_alphas" in kwargs:  # scikit-learn 1.9 spells a count of alphas as alphas=int
        kwargs["alphas"] = kwargs.pop("n_alphas")
    names = ["alpha_", "l1_ratio_", "alphas_", "mse_path_", "coef_", "intercept_"]
    ours = sh.ElasticNetCV(**kwargs).fit(X, y.astype(float))  # type: ignore[arg-type]
    theirs = sklearn_fit(sk.ElasticNetCV(**kwargs), X, y.astype(float))  # type: ignore[arg-type]
    assert shapes(ours, names) == shapes(theirs, names)


@pytest.mark.parametrize("targets", [None, 1, 3])
def test_ridge_attributes_have_sklearns_types(targets: int | None) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = rng.normal(size=30) if targets is None else rng.normal(size=(30, targets))
    ours, theirs = sh.Ridge().fit(X, y), sk.Ridge().fit(X, y)
    assert shapes(ours, ["coef_", "intercept_"]) == shapes(theirs, ["coef_", "intercept_"])
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-10)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-10)


# -- 7. bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "estimator", [sh.Lasso(), sh.ElasticNet(), sh.Ridge(), sh.LassoCV(cv=2)], ids=repr
)
def test_overflowing_x_is_refused(estimator: object) -> None:
    rng = np.random.default_rng(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    with pytest.raises(ValueError, match="X"):
        estimator.fit(X, rng.normal(size=10))  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [sh.LassoCV, sh.ElasticNetCV])
def test_alphas_must_be_numbers(cls: type) -> None:
    X, y = make_classification(n_samples=30, n_features=4, n_informative=2, random_state=0)
    with pytest.raises((TypeError, ValueError), match="alphas"):
        cls(alphas=(1, 1.0, "1"), cv=2).fit(X, y.astype(float))


@pytest.mark.parametrize("cls", [sh.Lasso, sh.ElasticNet])
def test_warm_start_from_a_hand_set_coef(cls: type) -> None:
    """A ``coef_`` set by hand is where a ``warm_start`` fit starts: from the solution itself
    the fit stops at once, with the same answer."""
    X, y = make_classification(n_samples=80, n_features=10, random_state=0)
    y = y.astype(float)
    solution = cls(alpha=0.01, tol=1e-10).fit(X, y)
    model = cls(alpha=0.01, tol=1e-10, warm_start=True)
    model.coef_ = solution.coef_.copy()
    model.fit(X, y)
    assert model.n_iter_ <= 1
    np.testing.assert_allclose(model.coef_, solution.coef_, atol=1e-10)


@pytest.mark.parametrize("name", ["Lasso", "ElasticNet"])
def test_one_column_y_gives_scikit_learns_shapes(name: str) -> None:
    """``y`` of shape ``(n, 1)``: ``coef_ [p]``, ``intercept_ [1]``, scalar ``n_iter_`` and
    ``dual_gap_``, predictions ``[n]``, and the same numbers as scikit-learn's."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 6)
    y = (X[:, :2] @ [1.5, -2.0])[:, None] + 0.1 * rng.randn(40, 1)
    ours = getattr(sh, name)(alpha=0.05).fit(X, y)
    theirs = getattr(sk, name)(alpha=0.05, tol=1e-10).fit(X, y)
    assert ours.coef_.shape == theirs.coef_.shape == (6,)
    assert np.shape(ours.intercept_) == np.shape(theirs.intercept_) == (1,)
    assert np.ndim(ours.n_iter_) == 0 and np.ndim(ours.dual_gap_) == 0
    assert ours.predict(X).shape == (40,)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-6)
