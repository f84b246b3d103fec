"""Poisson, Gamma and Tweedie regression with an L1 part, against their oracles: scikit-learn
at ``l1_ratio=0``, glum at ``l1_ratio=1``, the optimality (KKT) conditions, and identities of
the data (repeated rows, sparse storage, offsets, rescaled columns)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn import linear_model as sk
from sklearn.model_selection import KFold

from shrinkage.linear import (
    GammaRegressor,
    GammaRegressorCV,
    PoissonRegressor,
    PoissonRegressorCV,
    TweedieRegressor,
    TweedieRegressorCV,
)
from shrinkage.linear._bound_datafits import LossOptions
from shrinkage.linear._bound_tweedie import TweedieLoss, mean_deviance

FAMILIES = {
    "poisson": (PoissonRegressor, sk.PoissonRegressor, {}, 1.0),
    "gamma": (GammaRegressor, sk.GammaRegressor, {}, 2.0),
    "tweedie": (TweedieRegressor, sk.TweedieRegressor, {"power": 1.5}, 1.5),
}


def _data(family: str, n: int = 400, p: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * 0.4
    coef = np.zeros(p)
    coef[:4] = [0.6, -0.5, 0.3, 0.2]
    mu = np.exp(0.3 + X @ coef)
    if family == "poisson":
        y = rng.poisson(mu).astype(float)
    elif family == "gamma":
        y = rng.gamma(2.0, mu / 2.0)
    else:
        y = rng.poisson(mu) * rng.gamma(2.0, 0.5, size=n)
    return X, y, rng


def _close(a: np.ndarray, b: np.ndarray, rtol: float) -> None:
    scale = max(np.max(np.abs(b)), 1e-12)
    assert np.max(np.abs(a - b)) <= rtol * scale, (a, b)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("alpha", [0.0, 0.05, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_glm_is_scikit_learns(family: str, alpha: float, weighted: bool) -> None:
    X, y, rng = _data(family)
    weights = rng.uniform(0.2, 3.0, size=len(y)) if weighted else None
    ours_cls, theirs_cls, kwargs, _ = FAMILIES[family]
    ours = ours_cls(alpha=alpha, tol=1e-10, **kwargs).fit(X, y, sample_weight=weights)
    theirs = theirs_cls(
        alpha=alpha, tol=1e-12, solver="newton-cholesky", max_iter=1000, **kwargs
    ).fit(X, y, sample_weight=weights)
    _close(ours.coef_, theirs.coef_, 1e-6)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6)
    assert ours.score(X, y, weights) == pytest.approx(theirs.score(X, y, weights), abs=1e-9)


@pytest.mark.parametrize("power", [0.0, 1.0, 1.5, 2.0])
def test_identity_link_is_scikit_learns(power: float) -> None:
    X, y, _ = _data("gamma")
    ours = TweedieRegressor(power=power, link="identity", alpha=0.3, tol=1e-10).fit(X, y)
    theirs = sk.TweedieRegressor(
        power=power, link="identity", alpha=0.3, tol=1e-12, solver="newton-cholesky"
    )
    theirs.fit(X, y)
    _close(ours.coef_, theirs.coef_, 1e-6)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=1e-9)


def _gradient(X: np.ndarray, y: np.ndarray, mu: np.ndarray, power: float) -> np.ndarray:
    """``d/dw`` of the mean half deviance, log link, written out for the test."""
    return X.T @ (mu ** (2 - power) - y * mu ** (1 - power)) / len(y)


def _alpha_max(X: np.ndarray, y: np.ndarray, power: float) -> float:
    """The smallest L1 ``alpha`` that zeros every coefficient: the largest gradient at the
    intercept-only fit, whose mean is ``mean(y)`` under the log link."""
    mu = np.full(len(y), y.mean())
    return float(np.max(np.abs(_gradient(X, y, mu, power))))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_lasso_glm_is_glums(family: str, fraction: float) -> None:
    glum = pytest.importorskip("glum")
    X, y, _ = _data(family)
    ours_cls, _, kwargs, power = FAMILIES[family]
    alpha = fraction * _alpha_max(X, y, power)
    ours = ours_cls(alpha=alpha, l1_ratio=1.0, tol=1e-11, **kwargs).fit(X, y)
    theirs = glum.GeneralizedLinearRegressor(
        family=glum.TweedieDistribution(power), link="log", alpha=alpha, l1_ratio=1.0,
        gradient_tol=1e-12, step_size_tol=1e-15, max_iter=1000,
    ).fit(X, y)  # fmt: skip
    _close(ours.coef_, theirs.coef_, 1e-5)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-5, abs=1e-8)
    np.testing.assert_array_equal(ours.coef_ != 0, theirs.coef_ != 0)
    assert 0 < np.count_nonzero(ours.coef_) < X.shape[1]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("l1_ratio", [0.5, 1.0])
def test_solution_meets_the_kkt_conditions(family: str, l1_ratio: float) -> None:
    X, y, _ = _data(family, seed=3)
    ours_cls, _, kwargs, power = FAMILIES[family]
    alpha = 0.01
    model = ours_cls(alpha=alpha, l1_ratio=l1_ratio, tol=1e-10, **kwargs).fit(X, y)
    g = _gradient(X, y, model.predict(X), power) + alpha * (1 - l1_ratio) * model.coef_
    nonzero = model.coef_ != 0
    assert np.all(np.abs(g[nonzero] + alpha * l1_ratio * np.sign(model.coef_[nonzero])) < 1e-8)
    assert np.all(np.abs(g[~nonzero]) <= alpha * l1_ratio + 1e-8)
    assert nonzero.any() and not nonzero.all()
    residual = model.predict(X) ** (2 - power) - y * model.predict(X) ** (1 - power)
    assert abs(residual.mean()) < 1e-8  # the unpenalized intercept's own condition


@pytest.mark.parametrize("family", FAMILIES)
def test_integer_weights_are_repeated_rows(family: str) -> None:
    X, y, rng = _data(family, n=150)
    counts = rng.integers(0, 4, size=len(y))
    ours_cls, _, kwargs, _ = FAMILIES[family]
    weighted = ours_cls(alpha=0.01, l1_ratio=0.7, tol=1e-10, **kwargs)
    weighted.fit(X, y, sample_weight=counts)
    rows = np.repeat(np.arange(len(y)), counts)
    repeated = ours_cls(alpha=0.01, l1_ratio=0.7, tol=1e-10, **kwargs).fit(X[rows], y[rows])
    _close(weighted.coef_, repeated.coef_, 1e-7)


def _off_centre_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two features of unit spread and a target loosely tied to the first: a problem whose
    Newton steps have to tell the features apart from the intercept."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(100, 2))
    return X, np.exp(0.2 * X[:, 0] + 0.5 * rng.normal(size=100))


@pytest.mark.parametrize("family", FAMILIES)
def test_features_far_from_zero_give_the_solution_of_centred_ones(family: str) -> None:
    """Shifting every feature by 100 moves only the intercept, by ``-100 * sum(coef)``, in as
    many Newton steps (give or take one)."""
    X, y = _off_centre_data()
    ours_cls, _, kwargs, _ = FAMILIES[family]
    centred = ours_cls(alpha=0.01, l1_ratio=0.5, tol=1e-10, **kwargs).fit(X, y)
    far = ours_cls(alpha=0.01, l1_ratio=0.5, tol=1e-10, **kwargs).fit(X + 100.0, y)
    _close(far.coef_, centred.coef_, 1e-6)
    shifted = centred.intercept_ - 100.0 * centred.coef_.sum()
    assert far.intercept_ == pytest.approx(shifted, rel=1e-6, abs=1e-6)
    assert far.n_iter_ <= centred.n_iter_ + 1


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("power", [1.0, 2.0])
def test_local_models_are_as_well_conditioned_far_from_zero(fmt: str, power: float) -> None:
    """The Hessian of each local model (the solver's inner problem) does not depend on where
    the features sit: far from zero, a raw column of ones would be nearly collinear with
    theirs (a condition number near 1e8 here), and the inner solves would stall."""
    X, y = _off_centre_data()

    def condition(shift: float) -> float:
        data = X + shift
        options = LossOptions(fit_intercept=True, device=torch.device("cpu"))
        loss = TweedieLoss(
            sparse.csr_matrix(data) if fmt == "csr" else data, y, options, power=power
        )
        w = loss.initial_state()
        w[0] = 0.1
        model = loss.datafit.local_model(w)
        eigenvalues = torch.linalg.eigvalsh(model.hessian(torch.arange(3), w))
        return float(eigenvalues[-1] / eigenvalues[0])

    assert condition(100.0) <= 1.01 * condition(0.0) < 100.0


@pytest.mark.parametrize("family", FAMILIES)
def test_sparse_x_gives_the_dense_answer(family: str) -> None:
    X, y, _ = _data(family)
    X[np.abs(X) < 0.3] = 0.0
    ours_cls, _, kwargs, _ = FAMILIES[family]
    dense = ours_cls(alpha=0.01, l1_ratio=1.0, tol=1e-10, **kwargs).fit(X, y)
    for fmt in ("csr", "csc"):
        stored = ours_cls(alpha=0.01, l1_ratio=1.0, tol=1e-10, **kwargs)
        stored.fit(sparse.csr_matrix(X).asformat(fmt), y)
        _close(stored.coef_, dense.coef_, 1e-8)
        np.testing.assert_allclose(stored.predict(sparse.csr_matrix(X)), dense.predict(X))


def test_poisson_offset_is_an_exposure() -> None:
    """``y ~ Poisson(e * exp(x w + b))`` with offset ``log(e)`` is scikit-learn's Poisson
    regression of the rate ``y / e`` weighted by ``e``, with ``alpha`` scaled by ``sum e / n``
    (its weights are normalized to their sum, ours are the rows)."""
    X, _, rng = _data("poisson")
    exposure = rng.uniform(0.5, 4.0, size=len(X))
    y = rng.poisson(exposure * np.exp(0.2 + 0.5 * X[:, 0])).astype(float)
    theirs = sk.PoissonRegressor(alpha=0.05, tol=1e-12, solver="newton-cholesky")
    theirs.fit(X, y / exposure, sample_weight=exposure)
    alpha = 0.05 * exposure.sum() / len(y)
    ours = PoissonRegressor(alpha=alpha, tol=1e-10).fit(X, y, offset=np.log(exposure))
    _close(ours.coef_, theirs.coef_, 1e-6)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-6)
    np.testing.assert_allclose(
        ours.predict(X, offset=np.log(exposure)), exposure * theirs.predict(X), rtol=1e-6
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_a_constant_offset_moves_the_intercept(family: str) -> None:
    X, y, _ = _data(family)
    ours_cls, _, kwargs, _ = FAMILIES[family]
    plain = ours_cls(alpha=0.01, l1_ratio=0.5, tol=1e-10, **kwargs).fit(X, y)
    shifted = ours_cls(alpha=0.01, l1_ratio=0.5, tol=1e-10, **kwargs).fit(X, y, offset=0.7)
    _close(shifted.coef_, plain.coef_, 1e-8)
    assert shifted.intercept_ == pytest.approx(plain.intercept_ - 0.7, abs=1e-8)


def test_penalty_factor_is_a_rescaled_column() -> None:
    """glmnet's semantics: a factor ``c`` on feature ``j`` is the plain lasso on
    ``X[:, j] / c``, whose coefficient is ``c`` times the factored one."""
    X, y, _ = _data("poisson", seed=5)
    factor = np.ones(X.shape[1])
    factor[[0, 3, 7]] = [2.0, 0.5, 3.0]
    factored = PoissonRegressor(alpha=0.01, l1_ratio=1.0, tol=1e-11, penalty_factor=factor)
    factored.fit(X, y)
    rescaled = PoissonRegressor(alpha=0.01, l1_ratio=1.0, tol=1e-11).fit(X / factor, y)
    _close(factored.coef_, rescaled.coef_ / factor, 1e-6)
    np.testing.assert_array_equal(factored.coef_ != 0, rescaled.coef_ != 0)


def test_penalty_factor_zero_leaves_a_feature_free() -> None:
    X, y, _ = _data("poisson")
    factor = np.ones(X.shape[1])
    factor[5] = 0.0  # a feature with no effect, kept unpenalized
    model = PoissonRegressor(alpha=10.0, l1_ratio=1.0, penalty_factor=factor).fit(X, y)
    assert np.flatnonzero(model.coef_).tolist() == [5]


@pytest.mark.parametrize(
    ("cls", "family"),
    [(PoissonRegressorCV, "poisson"), (GammaRegressorCV, "gamma"), (TweedieRegressorCV, "tweedie")],
)
def test_cv_chooses_the_brute_force_alpha(cls: type, family: str) -> None:
    X, y, _ = _data(family, n=240, seed=2)
    folds = KFold(3, shuffle=True, random_state=0)
    kwargs = {"power": 1.5} if family == "tweedie" else {}
    model = cls(l1_ratio=1.0, alphas=12, cv=folds, tol=1e-9, **kwargs).fit(X, y)
    plain, _, _, power = FAMILIES[family]
    brute = np.empty((len(model.alphas_), 3))
    for i, alpha in enumerate(model.alphas_):
        for k, (train, test) in enumerate(folds.split(X)):
            fitted = plain(alpha=alpha, l1_ratio=1.0, tol=1e-9, **kwargs).fit(X[train], y[train])
            brute[i, k] = mean_deviance(y[test], fitted.predict(X[test]), power)
    assert model.alpha_ == model.alphas_[np.argmin(brute.mean(axis=1))]
    np.testing.assert_allclose(model.deviance_path_, brute, rtol=1e-6)
    refit = plain(alpha=model.alpha_, l1_ratio=1.0, tol=1e-9, **kwargs).fit(X, y)
    _close(model.coef_, refit.coef_, 1e-7)


def test_cv_with_offset_and_weights_scores_the_held_out_offset() -> None:
    X, _, rng = _data("poisson", n=200)
    exposure = rng.uniform(0.5, 4.0, size=len(X))
    y = rng.poisson(exposure * np.exp(0.5 * X[:, 0])).astype(float)
    weights = rng.uniform(0.5, 2.0, size=len(y))
    folds = KFold(2, shuffle=True, random_state=1)
    grid = [0.1, 0.01]
    model = PoissonRegressorCV(l1_ratio=1.0, alphas=grid, cv=folds, tol=1e-9)
    model.fit(X, y, sample_weight=weights, offset=np.log(exposure))
    for k, (train, test) in enumerate(folds.split(X)):
        fitted = PoissonRegressor(alpha=0.01, l1_ratio=1.0, tol=1e-9)
        fitted.fit(X[train], y[train], sample_weight=weights[train], offset=np.log(exposure)[train])
        mu = fitted.predict(X[test], offset=np.log(exposure)[test])
        expected = mean_deviance(y[test], mu, 1.0, weights[test])
        assert model.deviance_path_[1, k] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda X, y: PoissonRegressor().fit(X, -y), "y must be >= 0"),
        (lambda X, y: GammaRegressor().fit(X, y * 0), "y must be > 0"),
        (lambda X, y: PoissonRegressor().fit(X, y * 0), "no positive value"),
        (lambda X, y: TweedieRegressor(power=0.5).fit(X, y), "power=0.5"),
        (lambda X, y: PoissonRegressor().fit(X, y, offset=np.ones(3)), "offset must be"),
        (lambda X, y: PoissonRegressor(penalty_factor=[1.0]).fit(X, y), "penalty_factor"),
        (lambda X, y: PoissonRegressorCV(l1_ratio=0.0).fit(X, y), "l1_ratio > 0"),
    ],
)
def test_bad_input_is_named(make, match: str) -> None:
    X, y, _ = _data("poisson", n=60)
    y[0] = 1.0
    with pytest.raises(ValueError, match=match):
        make(X, y)


def test_warm_start_resumes_from_the_last_fit() -> None:
    X, y, _ = _data("gamma")
    model = GammaRegressor(alpha=0.01, l1_ratio=1.0, tol=1e-10, warm_start=True).fit(X, y)
    first = model.coef_.copy()
    model.fit(X, y)
    _close(model.coef_, first, 1e-9)
    assert model.n_iter_ <= 1
