"""The warm start of a linear path's next point, predicted from its last two fits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from sklearn import linear_model as sk
from sklearn.datasets import make_regression

from shrinkage import linear as sh
from shrinkage.path import Evaluation, FitInfo, path


def _problem(**kwargs: Any) -> sh.LinearProblem:
    X, y = make_regression(300, 30, n_informative=6, noise=1.0, random_state=0)
    return sh.LinearProblem(
        X, y, loss="squared", tol=1e-12, max_iter=100_000, finish=True, **kwargs
    )


def test_along_a_fixed_support_the_lasso_prediction_is_the_solution() -> None:
    """While the support and signs hold, the Lasso's solution is affine in ``lam``: the line
    through two solutions meets the third."""
    problem = _problem(l1_ratio=1.0)
    lams = problem.lambda_max() * np.array([0.30, 0.29, 0.28])
    w0, w1, w2 = (problem.fit(lam, problem.initial_state())[0] for lam in lams)
    assert torch.equal(w0 != 0, w2 != 0) and 0 < int((w2 != 0).sum()) < 30
    predicted = problem.extrapolate(lams[2], (lams[1], w1), (lams[0], w0))
    torch.testing.assert_close(predicted, w2, rtol=1e-9, atol=1e-10)
    assert float((w1 - w2).abs().max()) > 1e3 * float((predicted - w2).abs().max())


def test_coordinates_the_line_takes_off_their_sign_start_at_zero() -> None:
    problem = _problem(l1_ratio=1.0)
    w1 = torch.tensor([1.0, 0.0, 0.5, -2.0] + [0.0] * 26, dtype=torch.float64)
    w0 = torch.tensor([0.5, 1.0, 1.5, -3.0] + [0.0] * 26, dtype=torch.float64)
    predicted = problem.extrapolate(0.5, (1.0, w1), (1.5, w0))  # t = 1: w1 + (w1 - w0)
    # 1.5 kept; -1 leaving (off zero) and -0.5 crossing zero become 0; -1 kept
    expected = torch.tensor([1.5, 0.0, 0.0, -1.0] + [0.0] * 26, dtype=torch.float64)
    torch.testing.assert_close(predicted, expected, rtol=0, atol=0)


def test_unpenalized_coordinates_follow_the_line_across_zero() -> None:
    problem = _problem(l1_ratio=1.0, penalty_factor=np.r_[0.0, np.ones(29)])
    w1 = torch.zeros(30, dtype=torch.float64)
    w0 = torch.zeros(30, dtype=torch.float64)
    w1[0], w0[0] = -0.2, 0.3
    predicted = problem.extrapolate(0.5, (1.0, w1), (1.5, w0))
    assert float(predicted[0]) == pytest.approx(-0.7)


@pytest.mark.parametrize("lam", [1.0, 1.2, 2.0, 0.4, -1.0])
def test_no_prediction_off_the_grid_s_direction_or_beyond_a_step(lam: float) -> None:
    """From ``(1.5, w0)`` and ``(1.0, w1)``: only ``0.5 <= lam < 1.0`` is predicted."""
    problem = _problem(l1_ratio=1.0)
    w0 = torch.ones(30, dtype=torch.float64)
    w1 = 2 * torch.ones(30, dtype=torch.float64)
    assert torch.equal(problem.extrapolate(lam, (1.0, w1), (1.5, w0)), w1)


class _Recording:
    """A one-number problem that records its warm starts and predicts ``100 + lam``."""

    def __init__(self, extrapolates: bool) -> None:
        self.starts: list[float] = []
        if extrapolates:
            self.extrapolate = lambda lam, last, before: 100.0 + lam

    def lambda_max(self) -> float:
        return 1.0

    def initial_state(self) -> float:
        return 0.0

    def fit(self, lam: float, state: float) -> tuple[float, FitInfo]:
        self.starts.append(state)
        return lam, FitInfo(1, True, 0.0)

    def describe(self, state: float) -> Evaluation:
        return Evaluation(np.array([state]), 0.0, 0.0, ())


@pytest.mark.parametrize("extrapolates", [True, False])
def test_path_warm_starts_from_the_problem_s_prediction_once_two_points_are_fitted(
    extrapolates: bool,
) -> None:
    problem = _Recording(extrapolates)
    path(problem, [4.0, 3.0, 2.0, 1.0])  # type: ignore[arg-type]
    predicted = [102.0, 101.0] if extrapolates else [3.0, 2.0]
    assert problem.starts == [0.0, 4.0, *predicted]


@pytest.mark.parametrize(("n", "p", "k"), [(2000, 50, 10), (3000, 200, 10), (200, 1000, 20)])
def test_lasso_cv_follows_the_converged_validation_curve(n: int, p: int, k: int) -> None:
    """At ``tol=1e-4`` a warm start that already meets the tolerance is kept, so without a
    prediction the validation curve stays flat over runs of points (scikit-learn's, and ours
    before, were 39 %, 58 % and 46 % off the converged curve on these data, the last one
    wide). Predicted warm starts keep ours close."""
    X, y = make_regression(n, p, n_informative=k, noise=5.0, random_state=0)
    converged = sk.LassoCV(cv=5, tol=1e-10, max_iter=100_000).fit(X, y)
    ours = sh.LassoCV(cv=5).fit(X, y).mse_path_.mean(axis=1)
    exact = converged.mse_path_.mean(axis=1)
    assert float(np.max(np.abs(ours - exact) / exact)) < 0.02
