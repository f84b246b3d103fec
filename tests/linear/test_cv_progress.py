"""``verbose`` of the cross-validated linear estimators: a line per fold (and per point at 2)
on standard error, the choice before the refit, and a fit that does not depend on it."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_regression

from shrinkage.linear import (
    ElasticNetCV,
    GroupLassoCV,
    LassoCV,
    LogisticRegressionCV,
    MultiTaskLassoCV,
    PoissonRegressorCV,
)
from shrinkage.linear._folds import fold_reports

FOLDS, POINTS = 3, 4


def _regression() -> tuple[np.ndarray, np.ndarray]:
    return make_regression(120, 12, n_informative=4, noise=1.0, random_state=0)


def _tasks() -> tuple[np.ndarray, np.ndarray]:
    X, y = _regression()
    return X, np.c_[y, 2 * y]


def _poisson() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    return X, rng.poisson(np.exp(0.4 * X[:, 0] - 0.3 * X[:, 1]))


def _classes() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return (X / X.max(axis=0))[:200], y[:200]


CASES: dict[str, tuple[Any, Any, str]] = {
    "LassoCV": (lambda v: LassoCV(cv=FOLDS, alphas=POINTS, verbose=v), _regression, "alpha"),
    "ElasticNetCV": (
        lambda v: ElasticNetCV(cv=FOLDS, alphas=POINTS, l1_ratio=0.5, verbose=v),
        _regression,
        "alpha",
    ),
    "GroupLassoCV": (
        lambda v: GroupLassoCV(groups=3, cv=FOLDS, alphas=POINTS, verbose=v),
        _regression,
        "alpha",
    ),
    "MultiTaskLassoCV": (
        lambda v: MultiTaskLassoCV(cv=FOLDS, alphas=POINTS, verbose=v),
        _tasks,
        "alpha",
    ),
    "PoissonRegressorCV": (
        lambda v: PoissonRegressorCV(l1_ratio=1.0, cv=FOLDS, alphas=POINTS, verbose=v),
        _poisson,
        "alpha",
    ),
    "LogisticRegressionCV": (
        lambda v: LogisticRegressionCV(
            Cs=POINTS,
            cv=FOLDS,
            l1_ratios=(1.0,),
            scoring="neg_log_loss",
            use_legacy_attributes=False,
            verbose=v,
        ),
        _classes,
        "C",
    ),
}


def _fit(name: str, verbose: int) -> Any:
    make, data, _ = CASES[name]
    X, y = data()
    return make(verbose).fit(X, y)


@pytest.mark.parametrize("name", CASES)
def test_silent_by_default(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    _fit(name, 0)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


@pytest.mark.parametrize("name", CASES)
def test_verbose_one_reports_each_fold_and_the_choice(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _fit(name, 1)
    lines = capsys.readouterr().err.splitlines()
    what = CASES[name][2]
    folds = [line for line in lines if " fold " in line]
    assert [re.match(rf"{name}: fold (\d) of {FOLDS}: {POINTS} {what}s in ", f) is not None
            for f in folds] == [True] * FOLDS  # fmt: skip
    assert [int(re.findall(r"fold (\d)", f)[0]) for f in folds] == list(range(1, FOLDS + 1))
    (chose,) = [line for line in lines if "chose" in line]
    value = float(re.findall(rf"{what}_=([0-9.e+-]+)", chose)[0])
    assert value == pytest.approx(float(np.ravel(getattr(model, f"{what}_"))[0]), rel=1e-3)
    assert chose.endswith("refitting on all the data")


@pytest.mark.parametrize("name", CASES)
def test_verbose_two_reports_each_point_and_leaves_the_fit_alone(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = _fit(name, 0)
    loud = _fit(name, 2)
    lines = capsys.readouterr().err.splitlines()
    points = [line for line in lines if re.search(rf", {CASES[name][2]} \d of", line)]
    assert len(points) == FOLDS * POINTS
    for k in range(FOLDS):
        mine = points[k * POINTS : (k + 1) * POINTS]
        assert all(f"fold {k + 1} of {FOLDS}" in line for line in mine)
        assert [int(re.findall(r" (\d) of", line)[1]) for line in mine] == [1, 2, 3, 4]
        assert all(re.search(r"nonzero \d+, n_iter \d+", line) for line in mine)
    np.testing.assert_array_equal(quiet.coef_, loud.coef_)
    np.testing.assert_array_equal(quiet.intercept_, loud.intercept_)


def test_several_ratios_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    X, y = _regression()
    model = ElasticNetCV(cv=2, alphas=3, l1_ratio=[0.5, 0.9], verbose=1).fit(X, y)
    lines = capsys.readouterr().err.splitlines()
    assert sum("(l1_ratio=0.5)" in line for line in lines) == 2
    assert sum("(l1_ratio=0.9)" in line for line in lines) == 2
    assert f"l1_ratio_={model.l1_ratio_:.4g}" in lines[-1]


def test_a_single_ratio_is_not_named(capsys: pytest.CaptureFixture[str]) -> None:
    X, y = _regression()
    LassoCV(cv=2, alphas=3, verbose=2).fit(X, y)
    assert "l1_ratio" not in capsys.readouterr().err


@pytest.mark.parametrize("verbose", [0, False, None])
def test_no_report_without_verbose(verbose: Any) -> None:
    class Quiet:
        pass

    model = Quiet()
    model.verbose = verbose  # type: ignore[attr-defined]
    assert fold_reports(model, [1.0], 5) == [None] * 5
    assert fold_reports(Quiet(), [1.0], 5) == [None] * 5
