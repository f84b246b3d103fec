"""The group-lasso estimator: its optimality (KKT) conditions at the solution, the lasso when
every group is one feature, and groups given every way."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import sparse

from shrinkage.linear import GroupLasso, Lasso
from shrinkage.linear._group import group_ids

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
