"""The group lasso for linear regression, with scikit-learn's conventions.

    sum_i s_i (y_i - x_i^T w - b)^2 / (2 sum s) + alpha * sum_g sqrt(p_g) * ||w_g||_2

over groups ``g`` of ``p_g`` features: a group is kept or dropped whole. Its penalty is
:class:`shrinkage.GroupLasso` on the coefficient vector with one group id per feature, given
to the linear solver through :class:`GroupPenalty`, which adds what the solver asks of a
penalty beyond its prox: where it is kinked (at a zero group) and its Hessian elsewhere (the
block of each nonzero group, which Newton's method uses).
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import Interval
from torch import Tensor

from .._kernels import Step
from .._validation import check_device
from ..penalties import GroupLasso as GroupLassoPenalty
from ._base import LinearRegressorMixin
from ._bound_datafits import SquaredLoss
from ._common import COMMON, fit_threads, output_dtype
from ._problem import LinearProblem, as_problem_kwargs
from ._regression import regression_data
from ._solver import solve

__all__ = ["GroupLasso", "GroupPenalty", "group_ids"]


def group_ids(groups: Any, n_features: int) -> np.ndarray:
    """One group id per feature, ``[n_features]``, from ``groups``.

    Args:
        groups: ``None`` (each feature its own group), an int ``k`` (contiguous groups of
            ``k`` features), a list of lists of feature indices (a partition of the
            features), or ``[n_features]`` integer ids.
        n_features: how many features.

    Returns:
        ``[n_features]`` ids ``0 .. G-1``, every id used.

    Raises:
        ValueError: ``groups`` is none of these, or the lists do not partition the features.
    """
    if groups is None:
        return np.arange(n_features)
    if isinstance(groups, int | np.integer) and not isinstance(groups, bool):
        if groups < 1 or n_features % groups:
            raise ValueError(
                f"groups={groups} must be a positive divisor of the {n_features} features"
            )
        return np.arange(n_features) // int(groups)
    if len(groups) and all(isinstance(g, list | tuple | np.ndarray) for g in groups):
        ids = np.full(n_features, -1)
        for k, members in enumerate(groups):
            ids[np.asarray(members, dtype=int)] = k
        flat = np.concatenate([np.asarray(g, dtype=int).ravel() for g in groups])
        if np.any(ids < 0) or len(flat) != n_features:
            raise ValueError("groups as lists must partition the features: each index once")
        return ids
    ids = np.asarray(groups)
    if ids.shape != (n_features,) or ids.dtype.kind not in "iu" or (ids.size and ids.min() < 0):
        raise ValueError(
            "groups must be None, an int, lists of feature indices, or one integer id >= 0 "
            f"per feature ({n_features}); got {groups!r}"[:300]
        )
    return np.unique(ids, return_inverse=True)[1]


class GroupPenalty:
    """The group lasso as the linear solver asks a penalty to be: ``alpha * sum_g c_g
    ||w_g||`` with ``c_g = sqrt(p_g)`` (``by_size``) or 1, the entries ``free`` unpenalized."""

    def __init__(self, alpha: float, ids: Tensor, free: Tensor, by_size: bool = True) -> None:
        self.ids = torch.where(free, ids.max() + 1 if ids.numel() else 0, ids)
        self.free = free
        root_sizes = torch.bincount(self.ids).to(torch.float64).sqrt()
        factor = torch.ones_like(root_sizes) if by_size else 1.0 / root_sizes
        if bool(free.any()):
            factor[-1] = 0.0  # the intercept's own group, unpenalized
        self.penalty = GroupLassoPenalty(alpha, groups=self.ids, factor=factor)
        self.n_groups = factor.numel()
        self.weights = (root_sizes * factor)[self.ids]
        """Each entry's group weight: ``sqrt(p_g)`` (``by_size``) or 1."""

    def value(self, w: Tensor) -> Tensor:
        return self.penalty.value(w)

    def prox_(self, w: Tensor, step: Step) -> Tensor:
        return self.penalty.prox_(w, step)

    def optimality(self, w: Tensor, grad: Tensor) -> Tensor:
        return self.penalty.optimality(w, grad)

    def _norms(self, w: Tensor) -> Tensor:
        """Each entry's group norm, ``[d]``."""
        squares = torch.zeros(self.n_groups, dtype=w.dtype).index_add(0, self.ids, w * w)
        return squares.sqrt()[self.ids]

    def kinked(self, w: Tensor) -> Tensor:
        """``[d]``: the entries of a zero group (the penalty is smooth elsewhere)."""
        return (self._norms(w) == 0) & ~self.free

    def hessian_block(self, idx: Tensor, w: Tensor) -> Tensor:
        """``[k, k]``: the Hessian on ``idx``, ``lam c_g (I / ||w_g|| - w_g w_g^T /
        ||w_g||^3)`` within each nonzero group, 0 across groups."""
        norms = self._norms(w)[idx]
        safe = torch.where(norms > 0, norms, 1.0)
        ids, values = self.ids[idx], w[idx]
        live = ((norms > 0) & ~self.free[idx]).to(w.dtype)
        scale = self.penalty.lam * self.weights[idx] * live
        same = (ids[:, None] == ids[None, :]).to(w.dtype)
        outer = values[:, None] * values[None, :] / (safe**3)[:, None]
        eye = torch.eye(idx.numel(), dtype=w.dtype, device=w.device)
        return scale[:, None] * same * (eye / safe[:, None] - outer)

    def hessian_diag(self, w: Tensor) -> Tensor:
        """``[d]``: ``lam c_g (1 / ||w_g|| - w_i^2 / ||w_g||^3)`` off zero groups, with the group
        weight ``c_g``."""
        norms = self._norms(w)
        safe = torch.where(norms > 0, norms, 1.0)
        diagonal = self.penalty.lam * self.weights * (1 / safe - w * w / safe**3)
        return torch.where((norms > 0) & ~self.free, diagonal, 0.0)


class GroupLasso(LinearRegressorMixin, BaseEstimator):
    """Linear regression with the group lasso (see the module docstring); the estimator, as
    ``shrinkage.linear.ElasticNet`` is, where :class:`shrinkage.GroupLasso` is the penalty.

    Args:
        alpha: the strength, ``>= 0``.
        groups: see :func:`group_ids` (default: each feature alone, the lasso).
        fit_intercept: fit an unpenalized intercept.
        tol: stop when the optimality distance is at most ``tol * ||X^T S y|| / sum s``.
        max_iter: bound on the solver's iterations.
        device: torch device.

    Attributes: ``coef_ [n_features]``, ``intercept_``, ``n_iter_``, ``groups_`` (each
    feature's group id).

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(40, 4))
        >>> model = GroupLasso(alpha=0.5, groups=2).fit(X, X[:, 0] + X[:, 1])
        >>> (model.coef_[2:] == 0).all()
        np.True_
    """

    multi_output: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "groups": [None, "array-like", Interval(Integral, 1, None, closed="left")],
        **COMMON,
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        groups: Any = None,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
        device: str = "cpu",
    ) -> None:
        self.alpha = alpha
        self.groups = groups
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.device = device

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GroupLasso:
        """Fit on ``X [n_samples, n_features]`` (dense or sparse), ``y [n_samples]`` and
        optional ``sample_weight``; returns ``self``."""
        self._validate_params()
        check_device(self.device)
        X, y, weights = regression_data(self, X, y, sample_weight)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.ndim != 1:
            raise ValueError(f"GroupLasso fits one target; y has shape {y.shape}")
        self.groups_ = group_ids(self.groups, X.shape[1])
        with fit_threads(X):
            problem = LinearProblem(
                X, y, loss="squared", l1_ratio=1.0, sample_weight=weights,
                **as_problem_kwargs(self),
            )  # fmt: skip
            ids = torch.as_tensor(self.groups_, device=problem.free.device)
            penalty = GroupPenalty(float(self.alpha), ids, problem.free)
            assert isinstance(problem.loss, SquaredLoss)
            solution = solve(
                problem.datafit, lambda idx: penalty, problem.initial_state(),
                free=problem.free, tol=problem.loss.optimality_tol(self.tol),
                max_iter=self.max_iter, working_set=False,
            )  # fmt: skip
            coef, intercept = problem.coefficients(solution.w)
        self.coef_ = np.asarray(coef, dtype=output_dtype(X))
        self.intercept_ = float(intercept) if self.fit_intercept else 0.0
        self.n_iter_ = solution.n_iter
        return self
