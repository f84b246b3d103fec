"""Neural estimators: fitting, exact zeros, the feature-selection path and scikit-learn's
meta-estimators."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris, make_friedman1
from sklearn.feature_selection import SelectFromModel
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shrinkage.neural import MLPClassifier, MLPRegressor


def friedman(seed: int, n: int = 2000, p: int = 50) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_friedman1(n_samples=n, n_features=p, noise=1.0, random_state=seed)
    return StandardScaler().fit_transform(X), y


def test_regressor_learns_diabetes() -> None:
    X, y = load_diabetes(return_X_y=True)
    mlp = MLPRegressor(
        (32,), penalty="l2", alpha=1e-4, learning_rate=1e-2, early_stopping=True, random_state=0
    )
    model = make_pipeline(StandardScaler(), mlp)
    model.fit(X[:350], y[:350])
    assert model.score(X[350:], y[350:]) > 0.3


def test_classifier_learns_iris_and_gives_probabilities() -> None:
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    model = MLPClassifier(
        (32,), penalty="l1", alpha=1e-4, learning_rate=1e-2, max_epochs=300, random_state=0
    )
    model.fit(X, y)
    assert model.score(X, y) > 0.9
    proba = model.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(model.predict(X)) <= set(model.classes_)


def test_l1_gives_exact_zeros_and_l2_does_not() -> None:
    X, y = friedman(0, n=500, p=20)
    sparse = MLPRegressor((32,), penalty="l1", alpha=1e-2, random_state=0).fit(X, y)
    dense = MLPRegressor((32,), penalty="l2", alpha=1e-2, random_state=0).fit(X, y)
    zeros = lambda m: sum(int((layer.weight == 0).sum()) for layer in m.model_[::2])  # noqa: E731
    assert zeros(sparse) > 100
    assert zeros(dense) == 0


def test_group_inputs_path_drops_noise_features_first() -> None:
    X, y = friedman(1, n=800, p=15)
    model = MLPRegressor((32,), penalty="group_inputs", random_state=0, path_epochs=5).fit_path(
        X, y
    )
    nnz = [p.n_nonzero for p in model.path_]
    assert nnz[0] == 15 and nnz[-1] == 0
    lams = [p.lam for p in model.path_]
    assert lams == sorted(lams)
    selected = set(model.selected_features_.tolist())
    assert {0, 1, 3} <= selected  # the strongest effects survive the 1se point
    importances = model.feature_importances_
    assert importances[[0, 1, 3]].min() > np.median(importances[5:])
    assert all(importances[j] > model.alpha_ for j in selected)
    np.testing.assert_array_equal(model.get_support(indices=True), model.selected_features_)
    assert model.get_support().sum() == len(selected)
    # the kept model has exactly the selected inputs
    first = model.model_[0].weight.detach().abs().sum(0).numpy()
    assert set(np.flatnonzero(first).tolist()) == selected


@pytest.mark.slow
def test_friedman1_recovers_exactly_the_informative_features() -> None:
    """The benchmark's claim: exactly features 0-4 at the 1se point in at least 4 of 5 seeds."""
    exact = 0
    for seed in range(5):
        X, y = friedman(seed)
        model = MLPRegressor(penalty="group_inputs", random_state=seed).fit_path(X, y)
        exact += set(model.selected_features_.tolist()) == set(range(5))
    assert exact >= 4


def test_works_in_grid_search_and_select_from_model() -> None:
    X, y = friedman(2, n=400, p=10)
    search = GridSearchCV(
        MLPRegressor((16,), max_epochs=30, random_state=0), {"alpha": [1e-4, 1e-2]}, cv=2
    )
    search.fit(X, y)
    assert search.best_params_["alpha"] in (1e-4, 1e-2)
    selector = SelectFromModel(
        MLPRegressor((16,), penalty="group_inputs", alpha=0.05, random_state=0)
    )
    Xs = selector.fit_transform(X, y)
    assert 0 < Xs.shape[1] < 10
    copy = clone(MLPClassifier(penalty="group_inputs", alpha=0.3))
    assert copy.get_params()["alpha"] == 0.3 and not hasattr(copy, "model_")


# -- bad input -----------------------------------------------------------------------------------
def test_nan_in_x() -> None:
    X = np.ones((20, 3))
    X[2, 2] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN"):
        MLPRegressor().fit(X, np.arange(20.0))


def test_inf_in_y() -> None:
    y = np.arange(20.0)
    y[0] = np.inf
    with pytest.raises(ValueError, match=r"Input y contains infinity"):
        MLPRegressor().fit(np.ones((20, 3)), y)


def test_single_class() -> None:
    with pytest.raises(
        ValueError, match=r"needs samples of at least 2 classes .* only one class: 7"
    ):
        MLPClassifier().fit(np.ones((20, 3)), np.full(20, 7))


def test_negative_alpha() -> None:
    with pytest.raises(
        ValueError, match=r"The 'alpha' parameter of MLPRegressor must be a float in the range"
    ):
        MLPRegressor(alpha=-1.0).fit(np.ones((20, 3)), np.arange(20.0))


def test_unknown_penalty() -> None:
    with pytest.raises(ValueError, match=r"The 'penalty' parameter of MLPClassifier must be"):
        MLPClassifier(penalty="lasso").fit(np.ones((20, 3)), np.arange(20) % 2)


def test_l1_ratio_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"The 'l1_ratio' parameter of MLPRegressor"):
        MLPRegressor(penalty="elasticnet", l1_ratio=2.0).fit(np.ones((20, 3)), np.arange(20.0))


def test_wrong_number_of_features() -> None:
    model = MLPRegressor((4,), max_epochs=2).fit(
        np.random.default_rng(0).normal(size=(20, 3)), np.arange(20.0)
    )
    with pytest.raises(
        ValueError, match=r"X has 2 features, but MLPRegressor is expecting 3 features"
    ):
        model.predict(np.ones((5, 2)))


def test_fit_path_without_penalty() -> None:
    with pytest.raises(ValueError, match=r"fit_path needs a penalty; got penalty=None"):
        MLPRegressor(penalty=None).fit_path(np.ones((20, 3)), np.arange(20.0))


def test_fit_path_with_too_few_samples() -> None:
    with pytest.raises(
        ValueError, match=r"fit_path scores each point on a validation split .* got 8"
    ):
        MLPRegressor().fit_path(np.ones((8, 3)), np.arange(8.0))


def test_bad_hidden_layer_sizes() -> None:
    with pytest.raises(ValueError, match=r"hidden_layer_sizes must be positive integers"):
        MLPRegressor(hidden_layer_sizes=(8, 0)).fit(np.ones((20, 3)), np.arange(20.0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_path_on_raw_diabetes_is_on_par_with_a_linear_model(seed: int) -> None:
    """load_diabetes ships its inputs scaled to std 0.048: the estimator standardizes them
    (a first-layer penalty on the raw scale kept one feature, R^2 0.09)."""
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=seed)
    linear = LinearRegression().fit(X_tr, y_tr).score(X_te, y_te)
    mlp = MLPRegressor(penalty="group_inputs", random_state=seed).fit_path(X_tr, y_tr)
    np.testing.assert_allclose(mlp.x_mean_, X_tr.astype(np.float32).mean(0), rtol=1e-5, atol=1e-9)
    assert mlp.score(X_te, y_te) > linear - 0.06  # seeds 0-4: -0.011 to +0.034 here


def test_unstandardized_inputs_of_another_scale_are_named() -> None:
    X, y = load_diabetes(return_X_y=True)
    with pytest.warns(UserWarning, match=r"standard deviations run from 0\.047.* to 0\.047"):
        MLPRegressor((8,), penalty="l1", standardize=False, max_epochs=1).fit(X, y)


def test_random_state_none_follows_numpys_global_seed() -> None:
    """As in scikit-learn: with ``random_state=None`` the seed is drawn from NumPy's global
    generator, so ``np.random.seed`` makes a fit repeatable; an int gives one fit whatever
    that generator holds."""
    X, y = load_iris(return_X_y=True)

    def fitted(global_seed: int, random_state: int | None) -> np.ndarray:
        np.random.seed(global_seed)
        model = MLPClassifier((8,), max_epochs=3, early_stopping=True, random_state=random_state)
        return model.fit(X, y).predict_proba(X)

    saved = np.random.get_state()
    try:
        np.testing.assert_array_equal(fitted(0, None), fitted(0, None))
        assert not np.array_equal(fitted(0, None), fitted(1, None))
        np.testing.assert_array_equal(fitted(0, 7), fitted(1, 7))
    finally:
        np.random.set_state(saved)
