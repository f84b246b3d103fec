"""The group and sparse-group lasso for linear regression, with scikit-learn's conventions.

    sum_i s_i (y_i - x_i^T w - b)^2 / (2 sum s)
        + alpha * (l1_ratio * ||w||_1 + (1 - l1_ratio) * sum_g sqrt(p_g) * ||w_g||_2)

over groups ``g`` of ``p_g`` features: with ``l1_ratio=0`` a group is kept or dropped whole;
above it, kept groups have zeros too. The penalty is
:class:`~shrinkage.linear._group_penalty.GroupPenalty`; :class:`GroupProblem` is the model as a
path problem, which the estimators and :func:`shrinkage.path` fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import Interval
from torch import Tensor

from .._validation import check_device
from ..path import Evaluation, FitInfo, PathProblem, Score
from ._base import LinearRegressorMixin
from ._bound_datafits import SquaredLoss
from ._common import fit_threads, output_dtype, regression_data, warn_not_converged
from ._design import GramStats
from ._group_penalty import GroupPenalty, sparse_group_alpha_max
from ._params import COMMON, SolverParams
from ._problem import LinearProblem, as_problem_kwargs
from ._solver import solve

__all__ = ["GroupLasso", "GroupProblem", "group_data", "group_ids"]


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


class GroupProblem(PathProblem):
    """The sparse-group lasso for the squared loss as a :class:`~shrinkage.path.PathProblem`.

    ``sum_i s_i (y_i - x_i^T w - b)^2 / (2 sum s) + alpha * (l1_ratio * ||w||_1 + (1 -
    l1_ratio) * sum_g sqrt(p_g) ||w_g||_2)``, ``alpha`` the path's strength.

    Args:
        X: ``[n, p]`` features, dense or scipy sparse; y: ``[n]`` targets.
        groups: see :func:`group_ids`.
        l1_ratio: the L1 share, in ``[0, 1]`` (0: the group lasso).
        sample_weight: ``[n]`` weights or ``None``.
        fit_intercept, tol, max_iter, device: as :class:`~shrinkage.linear.LinearProblem`'s.

    Example:
        >>> import numpy as np
        >>> from shrinkage.path import path
        >>> X = np.random.default_rng(0).normal(size=(40, 4))
        >>> problem = GroupProblem(X, X[:, 0], groups=2, l1_ratio=0.5)
        >>> [len(p.selected) for p in path(problem, n_lambdas=3, eps=0.1)]
        [0, 1, 1]
    """

    def __init__(
        self,
        X: Any,
        y: np.ndarray,
        groups: Any,
        *,
        l1_ratio: float = 0.0,
        sample_weight: np.ndarray | None = None,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
        device: str | torch.device = "cpu",
    ) -> None:
        linear = LinearProblem(
            X, y, loss="squared", l1_ratio=1.0, sample_weight=sample_weight,
            fit_intercept=fit_intercept, tol=tol, max_iter=max_iter, device=device,
        )  # fmt: skip
        self._bind(linear, group_ids(groups, X.shape[1]), l1_ratio, tol, max_iter)

    @classmethod
    def from_stats(
        cls,
        stats: GramStats,
        groups: Any,
        *,
        l1_ratio: float = 0.0,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
    ) -> GroupProblem:
        """The problem from its Gram statistics in place of its data (a CV fold's training
        part: the whole data's less the fold's).

        Args:
            stats: the training data's :class:`~shrinkage.linear._design.GramStats`.
            groups, l1_ratio, fit_intercept, tol, max_iter: as in the constructor.

        Returns:
            The problem.
        """
        linear = LinearProblem.from_stats(
            stats, l1_ratio=1.0, fit_intercept=fit_intercept, tol=tol, max_iter=max_iter
        )
        self = cls.__new__(cls)
        self._bind(linear, group_ids(groups, stats.x_sum.numel()), l1_ratio, tol, max_iter)
        return self

    def _bind(
        self, linear: LinearProblem, ids: np.ndarray, l1_ratio: float, tol: float, max_iter: int
    ) -> None:
        assert isinstance(linear.loss, SquaredLoss)
        self.linear, self.groups = linear, ids
        self.l1_ratio, self.max_iter = float(l1_ratio), max_iter
        self.tol = linear.loss.optimality_tol(tol)

    def penalty(self, alpha: float) -> GroupPenalty:
        """The sparse-group penalty at one strength.

        Args:
            alpha: the strength.

        Returns:
            The penalty on the state (its intercept left free).
        """
        ids = torch.as_tensor(self.groups, device=self.linear.free.device)
        return GroupPenalty(alpha, ids, self.linear.free, l1_ratio=self.l1_ratio)

    def initial_state(self) -> Tensor:
        """The state with every coefficient zero (the intercept at its optimum)."""
        return self.linear.initial_state()

    def lambda_max(self) -> float:
        """The smallest ``alpha`` at which every coefficient is zero
        (:func:`sparse_group_alpha_max`)."""
        penalized = ~self.linear.free
        grad = self.linear.datafit.grad(self.initial_state())[penalized]
        penalty = self.penalty(1.0)
        return sparse_group_alpha_max(
            grad.cpu().numpy(), penalty.ids[penalized].cpu().numpy(),
            penalty.weights[penalized].cpu().numpy(), self.l1_ratio,
        )  # fmt: skip

    def fit(self, lam: float, state: Tensor) -> tuple[Tensor, FitInfo]:
        penalty = self.penalty(lam)
        solution = solve(
            self.linear.datafit, penalty.penalty_for, state, free=self.linear.free,
            tol=self.tol, max_iter=self.max_iter,
        )  # fmt: skip
        return solution.w, FitInfo(solution.n_iter, solution.converged, solution.criterion)

    def extrapolate(
        self, lam: float, last: tuple[float, Tensor], before: tuple[float, Tensor]
    ) -> Tensor:
        """A warm start at ``lam`` on the line through the last two fits
        (:meth:`LinearProblem.extrapolate`): a first-order prediction of the group lasso's
        path, exact for one-feature groups while the support and signs hold.

        Args:
            lam, last, before: as :meth:`LinearProblem.extrapolate`'s.

        Returns:
            ``[d]``, the warm start.
        """
        return self.linear.extrapolate(lam, last, before)

    def describe(self, state: Tensor) -> Evaluation:
        return self.linear.describe(state)

    def score(
        self, state: Tensor, X: Any, y: np.ndarray | None, sample_weight: np.ndarray | None = None
    ) -> Score:
        """The (weighted) mean squared error and R^2 on held-out data.

        Args:
            state: ``[d]``, a state.
            X: ``[m, p]`` held-out features, or their :class:`GramStats` (``y`` then
                ``None``).
            y: ``[m]`` targets.
            sample_weight: ``[m]`` weights, or ``None``.

        Returns:
            ``(MSE, R^2)``.
        """
        return self.linear.score(state, X, y, sample_weight)

    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        """A state as scikit-learn's fitted attributes.

        Args:
            w: ``[d]``, a state.

        Returns:
            ``(coef [p], intercept)``.
        """
        return self.linear.coefficients(w)


@dataclass(eq=False, repr=False, kw_only=True)
class GroupLasso(LinearRegressorMixin, BaseEstimator, SolverParams):
    """Linear regression with the group lasso, or the sparse-group lasso given ``l1_ratio``
    (see :class:`GroupProblem`); the estimator, where :class:`shrinkage.GroupLasso` is the
    penalty.

    Args:
        alpha: the strength, ``>= 0``.
        groups: see :func:`group_ids` (default: each feature alone, the lasso).
        l1_ratio: the L1 share in ``[0, 1]``: 0 the group lasso, between the sparse-group
            lasso (zeros within kept groups too), 1 the lasso.
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
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        **COMMON,
    }

    alpha: float = field(default=1.0, kw_only=False)
    groups: Any = None
    l1_ratio: float = 0.0

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GroupLasso:
        """Fit the model.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (CSR or CSC).
            y: ``[n_samples]``.
            sample_weight: ``[n_samples]``, or ``None`` for ones.

        Returns:
            ``self``.
        """
        self._validate_params()
        check_device(self.device)
        X, y, weights = group_data(self, X, y, sample_weight)
        with fit_threads(X):
            problem = GroupProblem(
                X, y, self.groups, l1_ratio=self.l1_ratio, sample_weight=weights,
                **as_problem_kwargs(self),
            )  # fmt: skip
            w, info = problem.fit(float(self.alpha), problem.initial_state())
            coef, intercept = problem.coefficients(w)
        warn_not_converged(info, f"{type(self).__name__} at alpha={self.alpha:g}")
        self.groups_ = problem.groups
        self.coef_ = np.asarray(coef, dtype=output_dtype(X))
        self.intercept_ = float(intercept) if self.fit_intercept else 0.0
        self.n_iter_ = info.n_iter
        return self


def group_data(
    estimator: Any, X: Any, y: Any, sample_weight: Any
) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """``X``, a one-column ``y`` as ``[n]`` and the weights, checked."""
    X, y, weights = regression_data(estimator, X, y, sample_weight)
    if y.ndim == 2 and y.shape[1] == 1:
        y = column_or_1d(y, warn=True)
    if y.ndim != 1:
        raise ValueError(f"{type(estimator).__name__} fits one target; y has shape {y.shape}")
    return X, y, weights
