"""The estimators' parameters: scikit-learn's names, defaults and kinds, declared once."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from sklearn import linear_model

from shrinkage import linear

EXTRAS = {"device", "penalty_factor", "selection_rule"}
"""What our estimators take beyond scikit-learn's parameters."""

GLMS = {"GammaRegressor", "PoissonRegressor", "TweedieRegressor"}
"""scikit-learn's GLMs are ridge-penalized; ours take an L1 part, ``l1_ratio``, too."""

NAMES = sorted(
    name
    for name in linear.__all__
    if isinstance(getattr(linear, name), type) and hasattr(linear_model, name)
)


ESTIMATORS = sorted(
    name
    for name in linear.__all__
    if isinstance(getattr(linear, name), type) and hasattr(getattr(linear, name), "get_params")
)


def _parameters(cls: type) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(cls).parameters)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_scikit_learns_with_the_same_defaults_and_kinds(name: str) -> None:
    ours, theirs = _parameters(getattr(linear, name)), _parameters(getattr(linear_model, name))
    for key, parameter in theirs.items():
        assert key in ours, f"{name} lacks scikit-learn's parameter {key}"
        assert ours[key].kind == parameter.kind, (name, key)
        assert ours[key].default == parameter.default, (name, key)
    extras = EXTRAS | ({"l1_ratio"} if name in GLMS else set())
    assert set(ours) - set(theirs) <= extras, (name, set(ours) - set(theirs))


@pytest.mark.parametrize("name", ESTIMATORS)
def test_init_stores_exactly_the_parameters(name: str) -> None:
    cls = getattr(linear, name)
    estimator = cls()
    assert vars(estimator) == estimator.get_params(deep=False)
    assert dataclasses.is_dataclass(cls)


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (linear.Lasso, linear.ElasticNet),
        (linear.LassoCV, linear.ElasticNetCV),
        (linear.MultiTaskLasso, linear.MultiTaskElasticNet),
        (linear.MultiTaskLassoCV, linear.MultiTaskElasticNetCV),
    ],
)
def test_a_lasso_fixes_l1_ratio_outside_its_parameters(cls: type, parent: type) -> None:
    estimator = cls()
    assert isinstance(estimator, parent)
    assert estimator.l1_ratio == 1.0
    assert "l1_ratio" not in estimator.get_params()
    assert "l1_ratio" not in vars(estimator)
    with pytest.raises(TypeError, match="l1_ratio"):
        cls(l1_ratio=0.5)
    with pytest.raises(ValueError, match="l1_ratio"):
        estimator.set_params(l1_ratio=0.5)


def test_estimators_keep_identity_and_scikit_learns_repr() -> None:
    a, b = linear.Lasso(alpha=0.5), linear.Lasso(alpha=0.5)
    assert a != b
    assert len({a, b}) == 2
    assert repr(a) == "Lasso(alpha=0.5)"
