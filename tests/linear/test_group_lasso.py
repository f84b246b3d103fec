"""The group and sparse-group lasso estimators: their optimality (KKT) conditions at the
solution, the lasso when every group is one feature or ``l1_ratio=1``, the smallest strength
that zeros every group, groups given every way, and the CV class against a brute-force CV."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold

from shrinkage.linear import GroupLasso, GroupLassoCV, Lasso
from shrinkage.linear._group import GroupProblem, group_ids
from shrinkage.linear._group_penalty import GroupPenalty
from shrinkage.linear._newton import (
    CouplingPenalty,
    SeparablePenalty,
    couples,
    polish,
    separable,
)
from shrinkage.linear._problem import enet_penalty

TIGHT: dict[str, Any] = {"tol": 1e-12, "max_iter": 100_000}


def problem(n: int, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n + p)
    X = rng.normal(size=(n, p))
    w = np.zeros(p)
    w[:4] = [1.0, -2.0, 1.5, 0.5]
    return X, X @ w + 0.3 * rng.normal(size=n), rng.uniform(0.5, 2.0, n)


def kkt(model: GroupLasso, X: np.ndarray, y: np.ndarray, s: np.ndarray) -> float:
    """The largest violation of ``grad_g + alpha sqrt(p_g) w_g / ||w_g|| = 0`` (a nonzero
    group) and ``||grad_g|| <= alpha sqrt(p_g)`` (a zero group)."""
    grad = -X.T @ (s * (y - X @ model.coef_ - model.intercept_)) / s.sum()
    worst = 0.0
    for g in np.unique(model.groups_):
        members = model.groups_ == g
        w, t = model.coef_[members], model.alpha * np.sqrt(members.sum())
        norm = np.linalg.norm(w)
        gap = (
            np.linalg.norm(grad[members] + t * w / norm)
            if norm
            else max(np.linalg.norm(grad[members]) - t, 0.0)
        )
        worst = max(worst, float(gap))
    return worst


@pytest.mark.parametrize(("n", "p"), [(100, 12), (30, 48)])
@pytest.mark.parametrize("design", ["dense", "sparse"])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_solution_meets_the_optimality_conditions(
    n: int, p: int, design: str, weighted: bool
) -> None:
    X, y, weights = problem(n, p)
    s = weights if weighted else np.ones(n)
    model = GroupLasso(alpha=0.3, groups=4, **TIGHT)
    model.fit(sparse.csr_matrix(X) if design == "sparse" else X, y, sample_weight=s)
    assert kkt(model, X, y, s) <= 1e-8
    kept = [g for g in np.unique(model.groups_) if np.any(model.coef_[model.groups_ == g])]
    assert 0 < len(kept) < p // 4  # some groups dropped whole, some kept


@pytest.mark.parametrize(("n", "p"), [(100, 12), (30, 48)])
def test_one_feature_groups_are_the_lasso(n: int, p: int) -> None:
    X, y, _ = problem(n, p)
    ours = GroupLasso(alpha=0.1, **TIGHT).fit(X, y)
    lasso = Lasso(alpha=0.1, **TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.coef_, lasso.coef_, rtol=0, atol=1e-9)


def test_groups_given_every_way_are_one_partition() -> None:
    as_ids = group_ids(np.array([5, 5, 9, 9, 2, 2]), 6)
    assert list(as_ids) == [1, 1, 2, 2, 0, 0]
    assert list(group_ids(2, 6)) == [0, 0, 1, 1, 2, 2]
    assert list(group_ids([[4, 5], [0, 1], [2, 3]], 6)) == [1, 1, 2, 2, 0, 0]
    assert list(group_ids(None, 3)) == [0, 1, 2]


@pytest.mark.parametrize(
    "groups", [4, [[0, 1], [1, 2, 3, 4, 5]], [[0, 1]], np.array([0, 1, 2]), np.full(6, -1)]
)
def test_bad_groups_are_refused(groups: Any) -> None:
    X, y, _ = problem(20, 6)
    with pytest.raises(ValueError, match="groups"):
        GroupLasso(groups=groups).fit(X, y)


def sparse_group_kkt(model: GroupLasso, X: np.ndarray, y: np.ndarray, s: np.ndarray) -> float:
    """The largest violation of the sparse-group lasso's optimality conditions, with ``a1 =
    alpha l1_ratio`` and ``t_g = alpha (1 - l1_ratio) sqrt(p_g)``: at a zero group
    ``||soft(grad_g, a1)|| <= t_g``; in a nonzero group ``grad_i + a1 sign(w_i) + t_g w_i /
    ||w_g|| = 0`` where ``w_i != 0`` and ``|grad_i| <= a1`` where ``w_i = 0``."""
    grad = -X.T @ (s * (y - X @ model.coef_ - model.intercept_)) / s.sum()
    a1, worst = model.alpha * model.l1_ratio, 0.0
    for g in np.unique(model.groups_):
        members = model.groups_ == g
        w, gg = model.coef_[members], grad[members]
        t = model.alpha * (1 - model.l1_ratio) * np.sqrt(members.sum())
        norm = np.linalg.norm(w)
        soft = np.maximum(np.abs(gg) - a1, 0.0)
        if not norm:
            worst = max(worst, np.linalg.norm(soft) - t)
            continue
        nonzero = w != 0
        residual = gg[nonzero] + a1 * np.sign(w[nonzero]) + t * w[nonzero] / norm
        worst = max(worst, float(np.abs(residual).max()), float(soft[~nonzero].max(initial=0)))
    return worst


@pytest.mark.parametrize("design", ["dense", "sparse"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("l1_ratio", [0.3, 0.8])
def test_the_sparse_group_solution_meets_the_optimality_conditions(
    design: str, weighted: bool, l1_ratio: float
) -> None:
    X, _, weights = problem(100, 24)
    y = 1.5 * X[:, 0] - 2.0 * X[:, 4] + X[:, 5] + 0.3 * np.random.default_rng(1).normal(size=100)
    s = weights if weighted else np.ones(100)
    model = GroupLasso(alpha=0.15, groups=4, l1_ratio=l1_ratio, **TIGHT)
    model.fit(sparse.csr_matrix(X) if design == "sparse" else X, y, sample_weight=s)
    assert sparse_group_kkt(model, X, y, s) <= 1e-8
    kept = [g for g in np.unique(model.groups_) if np.any(model.coef_[model.groups_ == g])]
    assert 0 < len(kept) < 6  # some groups dropped whole
    assert np.any(model.coef_[np.isin(model.groups_, kept)] == 0)  # and zeros inside kept ones


def test_an_l1_ratio_of_one_is_the_lasso() -> None:
    X, y, _ = problem(60, 16)
    ours = GroupLasso(alpha=0.1, groups=4, l1_ratio=1.0, **TIGHT).fit(X, y)
    lasso = Lasso(alpha=0.1, **TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.coef_, lasso.coef_, rtol=0, atol=1e-9)


@pytest.mark.parametrize("l1_ratio", [0.0, 0.3, 0.7, 1.0])
def test_alpha_max_is_the_smallest_strength_that_zeros_every_group(l1_ratio: float) -> None:
    X, y, weights = problem(50, 12)
    alpha_max = GroupProblem(X, y, 3, l1_ratio=l1_ratio, sample_weight=weights).lambda_max()
    fits = [
        GroupLasso(alpha=alpha_max * f, groups=3, l1_ratio=l1_ratio, **TIGHT).fit(
            X, y, sample_weight=weights
        )
        for f in (1.0, 0.999)
    ]
    assert not np.any(fits[0].coef_)
    assert np.any(fits[1].coef_)


def brute_force_cv(
    X: np.ndarray, y: np.ndarray, grid: np.ndarray, l1_ratio: float, folds: Any
) -> np.ndarray:
    """``[n_alphas]`` mean held-out MSE, every point fitted from zero."""
    errors = np.zeros((len(grid), len(folds)))
    for k, (train, test) in enumerate(folds):
        for i, alpha in enumerate(grid):
            model = GroupLasso(alpha=alpha, groups=3, l1_ratio=l1_ratio, **TIGHT)
            model.fit(X[train], y[train])
            errors[i, k] = np.mean((y[test] - model.predict(X[test])) ** 2)
    return errors


@pytest.mark.parametrize("l1_ratio", [0.0, 0.5])
@pytest.mark.parametrize(("n", "p"), [(60, 12), (40, 48)])
def test_cv_chooses_the_alpha_of_a_brute_force_cv(l1_ratio: float, n: int, p: int) -> None:
    """Tall folds are fitted from Gram statistics (the whole data's less the fold's), wide
    ones from their rows: both against fits from zero scored on the held-out rows."""
    X, y, _ = problem(n, p)
    folds = list(KFold(4).split(X))
    model = GroupLassoCV(groups=3, l1_ratio=l1_ratio, alphas=12, cv=folds, **TIGHT).fit(X, y)
    errors = brute_force_cv(X, y, model.alphas_, l1_ratio, folds)
    np.testing.assert_allclose(model.mse_path_, errors, rtol=1e-7)
    assert model.alpha_ == model.alphas_[np.argmin(errors.mean(axis=1))]
    refit = GroupLasso(alpha=model.alpha_, groups=3, l1_ratio=l1_ratio, **TIGHT).fit(X, y)
    np.testing.assert_array_equal(model.coef_, refit.coef_)


def test_cv_over_several_ratios_takes_the_lowest_error() -> None:
    X, y, _ = problem(60, 12)
    model = GroupLassoCV(groups=3, l1_ratio=[0.0, 0.5, 1.0], alphas=8, cv=3).fit(X, y)
    assert model.mse_path_.shape == (3, 8, 3) and model.alphas_.shape == (3, 8)
    best = np.argmin(model.mse_path_.mean(axis=2).min(axis=1))
    assert model.l1_ratio_ == [0.0, 0.5, 1.0][best]


@pytest.mark.parametrize("l1_ratio", [-0.1, 1.5])
def test_a_bad_l1_ratio_is_refused(l1_ratio: float) -> None:
    X, y, _ = problem(20, 6)
    with pytest.raises(ValueError, match="l1_ratio"):
        GroupLasso(l1_ratio=l1_ratio).fit(X, y)
    with pytest.raises(ValueError, match="l1_ratio"):
        GroupLassoCV(l1_ratio=[0.5, l1_ratio]).fit(X, y)


def repeated_rows() -> tuple[np.ndarray, np.ndarray]:
    """15 distinct rows repeated to 45 (scikit-learn's sample-weight equivalence data): a
    rank-deficient design, with more features than distinct rows."""
    rng = np.random.RandomState(42)
    X, y = rng.rand(15, 30), rng.randint(0, 3, size=15).astype(float)
    counts = rng.randint(0, 5, size=15)
    return X.repeat(counts, axis=0), y.repeat(counts)


@pytest.mark.parametrize("alpha", [1e-2, 1.17e-4])
def test_one_feature_groups_on_a_rank_deficient_design_are_the_lasso(alpha: float) -> None:
    """Zero is a kink of a one-feature group whatever its sign, as of the lasso, so Newton's
    method stops there; without that it crossed zero and the fit crept (28690 iterations at
    1.17e-4, where the lasso takes 90)."""
    X, y = repeated_rows()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = GroupLasso(alpha=alpha, tol=1e-12, max_iter=2000).fit(X, y)
    lasso = Lasso(alpha=alpha, tol=1e-12, max_iter=2000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, lasso.coef_, rtol=0, atol=1e-9)


def test_a_fit_stopped_at_max_iter_warns() -> None:
    X, y = repeated_rows()
    with pytest.warns(ConvergenceWarning, match="GroupLasso at alpha=0.001 stopped at max_iter"):
        GroupLasso(alpha=1e-3, groups=2, tol=1e-14, max_iter=3).fit(X, y)


def test_newton_lands_a_shrinking_group_on_zero() -> None:
    """From the optimum with one of its zero groups moved off zero, one polish puts that
    group back on zero exactly: the step stops where the group passes zero, as an L1
    coordinate's stops at its sign change."""
    X, y, _ = problem(60, 12)
    alpha = 0.3
    model = GroupLasso(alpha=alpha, groups=3, **TIGHT).fit(X, y)
    zero = np.flatnonzero(model.coef_ == 0)
    assert zero.size and np.any(model.coef_)
    group = model.groups_ == model.groups_[zero[0]]
    problem_ = GroupProblem(X, y, 3)
    optimum = problem_.linear.state_from(model.coef_, model.intercept_)
    members = torch.as_tensor(np.flatnonzero(group))
    moved = optimum.clone()
    moved[members] = torch.tensor([1e-3, -2e-3, 1.5e-3], dtype=torch.float64)
    penalty = problem_.penalty(alpha)
    polished = polish(problem_.linear.datafit, penalty, moved, problem_.linear.free)
    assert polished is not None
    assert torch.all(polished[members] == 0)
    torch.testing.assert_close(polished, optimum, rtol=0, atol=1e-8)


def test_the_group_crossing_is_where_the_group_passes_zero() -> None:
    ids, free = torch.tensor([0, 0, 1, 1, 2]), torch.tensor([False, False, False, False, True])
    penalty = GroupPenalty(1.0, ids, free)
    w = torch.tensor([3.0, 4.0, 1.0, 0.0, 5.0])
    d = torch.tensor([-6.0, -8.0, 1.0, 1.0, -50.0])  # group 0 reaches zero at t = 0.5
    landing, t = penalty.group_crossing(torch.arange(5), w, d)
    assert t == pytest.approx(0.5) and landing.tolist() == [True, True, False, False, False]
    landing, t = penalty.group_crossing(torch.arange(2, 5), w, d[2:])  # none shrinks; free
    assert t == math.inf and not landing.any()
    tilted = torch.tensor([-3.0, 0.0])  # w_0^T d_0 = -9, ||w_0||^2 = 25
    assert penalty.group_crossing(torch.arange(2), w, tilted)[1] == pytest.approx(25 / 9)


def test_zero_is_a_kink_of_a_group_alone_whatever_its_sign() -> None:
    ids, free = torch.tensor([0, 1, 1, 2]), torch.tensor([False, False, False, True])
    penalty = GroupPenalty(1.0, ids, free)
    assert penalty.kinked(torch.tensor([2.0, 1.0, 0.0, 1.0])).tolist() == [
        True, False, False, False,
    ]  # fmt: skip
    assert penalty.kinked(torch.tensor([0.0, 0.0, 0.0, 0.0])).tolist() == [
        True, True, True, False,
    ]  # fmt: skip
    assert not penalty.piecewise_quadratic  # the group {1, 2}'s norm is not
    assert GroupPenalty(1.0, torch.tensor([0, 1, 2, 3]), free).piecewise_quadratic
    assert GroupPenalty(1.0, ids, free, l1_ratio=1.0).piecewise_quadratic


def test_the_solver_tells_penalties_apart_as_isinstance_does() -> None:
    ids, free = torch.tensor([0, 0, 1]), torch.tensor([False, False, False])
    penalties = [GroupPenalty(1.0, ids, free), enet_penalty(0.5, 0.5, None, False)]
    for penalty in penalties * 2:  # the second round reads the per-class answers kept
        assert couples(penalty) == isinstance(penalty, CouplingPenalty)
        assert separable(penalty) == isinstance(penalty, SeparablePenalty)
    assert couples(penalties[0]) and not separable(penalties[0])
    assert separable(penalties[1]) and not couples(penalties[1])


def test_the_hessian_of_a_tiny_group_is_finite() -> None:
    """``lam c (I - u u^T) / ||w_g||`` at a group of norm 1e-120, where ``||w_g||^3``
    underflows: finite, and the closed form."""
    ids, free = torch.tensor([0, 0, 1]), torch.zeros(3, dtype=torch.bool)
    penalty = GroupPenalty(2.0, ids, free)
    w = torch.tensor([3e-120, -4e-120, 1.0], dtype=torch.float64)
    block = penalty.hessian_block(torch.arange(3), w)
    assert torch.isfinite(block).all()
    u = torch.tensor([0.6, -0.8], dtype=torch.float64)
    expected = 2.0 * math.sqrt(2) * (torch.eye(2, dtype=torch.float64) - torch.outer(u, u)) / 5e-120
    torch.testing.assert_close(block[:2, :2], expected, rtol=1e-12, atol=0)
    assert torch.equal(block[2], torch.zeros(3, dtype=torch.float64))


def test_a_working_set_takes_whole_groups_and_keeps_their_weights() -> None:
    ids = torch.tensor([0, 0, 1, 1, 1, 2, 0])
    free = torch.tensor([False, False, False, False, False, False, True])
    penalty = GroupPenalty(0.7, ids, free, l1_ratio=0.3)
    assert penalty.whole_groups(torch.tensor([3, 6])).tolist() == [2, 3, 4, 6]
    idx = penalty.whole_groups(torch.tensor([1, 5, 6]))
    assert idx.tolist() == [0, 1, 5, 6]
    sub = penalty.restrict(idx)
    w = torch.tensor([0.5, -1.0, 0.0, 0.0, 0.0, 2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(sub.value(w[idx]), penalty.value(w), rtol=1e-15, atol=0)
    stepped = penalty.prox_(w.clone(), 0.4)
    torch.testing.assert_close(sub.prox_(w[idx].clone(), 0.4), stepped[idx], rtol=1e-15, atol=0)
    with pytest.raises(ValueError, match="whole groups"):
        penalty.restrict(torch.tensor([0, 5]))
    assert penalty.penalty_for(None) is penalty  # what the solver asks for
    on_set = penalty.penalty_for(idx)
    torch.testing.assert_close(on_set.value(w[idx]), sub.value(w[idx]), rtol=0, atol=0)
    with pytest.raises(ValueError, match="whole groups"):
        penalty.penalty_for(torch.tensor([0, 5]))
