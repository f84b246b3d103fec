"""The group and sparse-group lasso for linear regression, with scikit-learn's conventions.

    sum_i s_i (y_i - x_i^T w - b)^2 / (2 sum s)
        + alpha * (l1_ratio * ||w||_1 + (1 - l1_ratio) * sum_g sqrt(p_g) * ||w_g||_2)

over groups ``g`` of ``p_g`` features: with ``l1_ratio=0`` a group is kept or dropped whole;
above it, kept groups have zeros too. The group part is :class:`shrinkage.GroupLasso` and the
L1 part :class:`shrinkage.L1` on the coefficient vector, given to the linear solver through
:class:`GroupPenalty`, which adds what the solver asks of a penalty beyond its prox: where it
is kinked and its Hessian elsewhere (the block of each nonzero group, which Newton's method
uses). :class:`GroupProblem` is the model as a path problem, which the estimators and
:func:`shrinkage.path` fit.
"""

from __future__ import annotations

import math
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
from ..path import Evaluation, FitInfo, PathProblem, Score
from ..penalties import L1 as L1Penalty
from ..penalties import GroupLasso as GroupLassoPenalty
from ._base import LinearRegressorMixin
from ._bound_datafits import SquaredLoss
from ._common import COMMON, fit_threads, output_dtype, regression_data, warn_not_converged
from ._design import GramStats
from ._problem import LinearProblem, as_problem_kwargs
from ._solver import solve

__all__ = [
    "GroupLasso",
    "GroupPenalty",
    "GroupProblem",
    "group_data",
    "group_ids",
    "sparse_group_alpha_max",
]


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
    """The sparse-group lasso as the linear solver asks a penalty to be.

    ``alpha * (l1_ratio * ||w||_1 + (1 - l1_ratio) * sum_g c_g ||w_g||_2)`` over ``[d]``
    coefficients, with ``c_g = sqrt(p_g)`` (``by_size``) or 1 and the entries ``free``
    unpenalized. ``l1_ratio=0`` is the group lasso. The prox is the L1 prox followed by the
    group prox (exact for this sum).

    Args:
        alpha: the strength, ``>= 0``.
        ids: ``[d]`` group ids.
        free: ``[d]`` booleans, the unpenalized entries (an intercept).
        by_size: weigh each group by the root of its size.
        l1_ratio: the L1 share, in ``[0, 1]``.

    Example:
        >>> import torch
        >>> ids, free = torch.tensor([0, 0, 1]), torch.zeros(3, dtype=torch.bool)
        >>> GroupPenalty(1.0, ids, free, l1_ratio=0.5).prox_(torch.tensor([3.0, 0.2, 0.4]), 1.0)
        tensor([1.7929, 0.0000, 0.0000])
    """

    def __init__(
        self, alpha: float, ids: Tensor, free: Tensor, by_size: bool = True, l1_ratio: float = 0.0
    ) -> None:
        self.alpha, self.by_size, self.l1_ratio = alpha, by_size, l1_ratio
        self.ids = torch.where(free, ids.max() + 1 if ids.numel() else 0, ids)
        self.free = free
        root_sizes = torch.bincount(self.ids).to(torch.float64).sqrt()
        factor = torch.ones_like(root_sizes) if by_size else 1.0 / root_sizes
        if bool(free.any()):
            factor[-1] = 0.0  # the intercept's own group, unpenalized
        self.penalty = GroupLassoPenalty(alpha * (1.0 - l1_ratio), groups=self.ids, factor=factor)
        self.l1 = (
            L1Penalty(alpha * l1_ratio, factor=(~free).to(torch.float64)) if l1_ratio else None
        )
        self.n_groups = factor.numel()
        self.group_weights = root_sizes * factor
        """``[G]``: each group's weight, ``sqrt(p_g)`` (``by_size``) or 1 (0: the free group)."""
        self.weights = self.group_weights[self.ids]
        """Each entry's group weight: ``sqrt(p_g)`` (``by_size``) or 1."""
        self.alone = torch.bincount(self.ids)[self.ids] == 1
        """``[d]``: the entries alone in their group."""
        self.piecewise_quadratic = l1_ratio == 1.0 or bool(self.alone[~free].all())
        """Whether the penalty is piecewise linear: no group norm of several entries (Newton's
        polish then solves a quadratic datafit on a fixed support in one step)."""

    def restrict(self, idx: Tensor) -> GroupPenalty:
        """The penalty on the entries ``idx``, which hold whole groups (a working set).

        Args:
            idx: ``[k]`` sorted entries.

        Returns:
            The same penalty on those entries, their groups renumbered.

        Raises:
            ValueError: ``idx`` holds part of a group.
        """
        ids, free = self.ids[idx], self.free[idx]
        if not torch.equal(self.whole_groups(idx), idx):
            raise ValueError("a group penalty is restricted to whole groups only")
        compact = torch.zeros_like(ids)
        compact[~free] = torch.unique(ids[~free], return_inverse=True)[1]
        return GroupPenalty(self.alpha, compact, free, self.by_size, self.l1_ratio)

    def whole_groups(self, idx: Tensor) -> Tensor:
        """The entries of every group that has an entry in ``idx``, sorted: what a working
        set of a group penalty takes.

        Args:
            idx: ``[k]`` entries.

        Returns:
            ``[m]``, ``m >= k``, sorted entries.
        """
        chosen = torch.zeros(self.n_groups, dtype=torch.bool, device=idx.device)
        chosen[self.ids[idx]] = True
        return torch.nonzero(chosen[self.ids]).flatten()

    def value(self, w: Tensor) -> Tensor:
        group = self.penalty.value(w)
        return group if self.l1 is None else group + self.l1.value(w)

    def prox_(self, w: Tensor, step: Step) -> Tensor:
        if self.l1 is not None:
            self.l1.prox_(w, step)
        return self.penalty.prox_(w, step)

    def optimality(self, w: Tensor, grad: Tensor) -> Tensor:
        """The distance of ``-grad`` to the subdifferential at ``w``: per group, ``max(||S(g_g,
        l1)|| - tau_g, 0)`` at a zero group (``S`` the soft threshold); elsewhere the residual
        of each nonzero entry and ``max(|g_i| - l1, 0)`` at a zero entry."""
        if self.l1 is None:
            return self.penalty.optimality(w, grad)
        l1 = self.l1.lam * (~self.free).to(w.dtype)
        tau = self.penalty.lam * self.weights
        norms = self._norms(w)
        safe = torch.where(norms > 0, norms, 1.0)
        on_entry = grad + l1 * torch.sign(w) + tau * w / safe
        shrunk = (grad.abs() - l1).clamp_min(0.0)
        live = torch.where(w != 0, on_entry, shrunk)
        per_group = torch.zeros(self.n_groups, dtype=w.dtype, device=w.device)
        live_sq = per_group.index_add(0, self.ids, torch.where(norms > 0, live**2, 0.0))
        shrunk_sq = per_group.index_add(0, self.ids, shrunk**2)
        group_tau = self.penalty.lam * self.group_weights.to(w.dtype)
        dead = (shrunk_sq.sqrt() - group_tau).clamp_min(0.0) ** 2
        alive = per_group.index_add(0, self.ids, (norms > 0).to(w.dtype)) > 0
        return torch.where(alive, live_sq, dead).sum().sqrt()

    def _norms(self, w: Tensor) -> Tensor:
        """Each entry's group norm, ``[d]``."""
        squares = torch.zeros(self.n_groups, dtype=w.dtype, device=w.device)
        squares = squares.index_add(0, self.ids, w * w)
        return squares.sqrt()[self.ids]

    def kinked(self, w: Tensor) -> Tensor:
        """``[d]``: where zero is a kink, every penalized entry with an L1 part, else the
        entries of a zero group and those alone in their group (where the group norm is the
        absolute value); the group penalty is smooth elsewhere."""
        if self.l1 is not None:
            return ~self.free
        return ((self._norms(w) == 0) | self.alone) & ~self.free

    def group_crossing(self, idx: Tensor, w: Tensor, d: Tensor) -> tuple[Tensor, float]:
        """Where the direction ``d`` (``[k]``, on the entries ``idx`` of ``w``) first carries a
        penalized group through zero: the step ``t = -||w_g||^2 / (w_g^T d_g)`` at which the
        group's component along ``w_g`` vanishes, the smallest over the groups it shrinks.

        Args:
            idx: ``[k]`` sorted entries, whole groups or every nonzero entry of a group.
            w: ``[d]`` the point; d: ``[k]`` the direction on ``idx``.

        Returns:
            ``(landing, t)``: the ``[k]`` entries of the group that gets there first, and
            its step (``inf``, with no entry, when no group shrinks).
        """
        ids, values = self.ids[idx], w[idx]
        per_group = torch.zeros(self.n_groups, dtype=w.dtype, device=w.device)
        along = per_group.index_add(0, ids, values * d)
        squares = per_group.index_add(0, ids, values * values)
        shrinks = (along < 0) & (squares > 0) & (self.group_weights > 0)
        if not bool(shrinks.any()):
            return torch.zeros_like(idx, dtype=torch.bool), math.inf
        steps = torch.where(shrinks, -squares / torch.where(shrinks, along, -1.0), math.inf)
        first = int(torch.argmin(steps))
        return ids == first, float(steps[first])

    def hessian_block(self, idx: Tensor, w: Tensor) -> Tensor:
        """``[k, k]``: the Hessian on ``idx``, ``lam c_g (I - u_g u_g^T) / ||w_g||`` with
        ``u_g = w_g / ||w_g||`` within each nonzero group, 0 across groups (the L1 part adds
        none off its kinks)."""
        norms = self._norms(w)[idx]
        safe = torch.where(norms > 0, norms, 1.0)
        ids, unit = self.ids[idx], w[idx] / safe
        live = ((norms > 0) & ~self.free[idx]).to(w.dtype)
        scale = self.penalty.lam * self.weights[idx] * live / safe
        same = (ids[:, None] == ids[None, :]).to(w.dtype)
        eye = torch.eye(idx.numel(), dtype=w.dtype, device=w.device)
        return scale[:, None] * same * (eye - unit[:, None] * unit[None, :])


def sparse_group_alpha_max(
    grad: np.ndarray, ids: np.ndarray, weights: np.ndarray, l1_ratio: float
) -> float:
    """The smallest ``alpha`` at which every group is zero: per group the root of
    ``||S(g_g, alpha l1_ratio)|| = alpha (1 - l1_ratio) c_g`` (``S`` the soft threshold),
    found by bisection, the largest over groups.

    Args:
        grad: ``[d]`` the data term's gradient at zero coefficients (penalized entries).
        ids: ``[d]`` group ids; weights: ``[d]`` each entry's group weight ``c_g``.
        l1_ratio: the L1 share.

    Returns:
        ``alpha_max >= 0``.
    """
    if not grad.size:
        return 0.0
    g, n_groups = np.abs(grad), int(ids.max()) + 1
    group_weight = _group_weight(ids, weights, n_groups)
    if l1_ratio == 0:
        return float(np.max(np.sqrt(np.bincount(ids, weights=g * g)) / group_weight))
    low, high = np.zeros(n_groups), np.full(n_groups, g.max() / l1_ratio)
    for _ in range(200):
        mid = (low + high) / 2
        shrunk = np.maximum(g - mid[ids] * l1_ratio, 0.0)
        excess = np.sqrt(np.bincount(ids, weights=shrunk**2, minlength=mid.size))
        above = excess > mid * (1 - l1_ratio) * group_weight
        low, high = np.where(above, mid, low), np.where(above, high, mid)
    return float(high.max())


def _group_weight(ids: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """``[G]``: each group's weight from the entries' ``[d]`` copies."""
    out = np.zeros(n_groups)
    out[ids] = weights
    return out


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
            self.linear.datafit,
            lambda idx: penalty if idx is None else penalty.restrict(idx),
            state, free=self.linear.free, tol=self.tol, max_iter=self.max_iter,
        )  # fmt: skip
        return solution.w, FitInfo(solution.n_iter, solution.converged, solution.criterion)

    def extrapolate(
        self, lam: float, last: tuple[float, Tensor], before: tuple[float, Tensor]
    ) -> Tensor:
        """A warm start at ``lam`` on the line through the last two fits
        (:meth:`LinearProblem.extrapolate`): a first-order prediction of the group lasso's
        path, exact for one-feature groups while the support and signs hold.

        Args:
            lam: the next strength.
            last: ``(lam1, w1)``, the last fit, ``w1 [d]``.
            before: ``(lam0, w0)``, the fit before it.

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


class GroupLasso(LinearRegressorMixin, BaseEstimator):
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

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        groups: Any = None,
        l1_ratio: float = 0.0,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
        device: str = "cpu",
    ) -> None:
        self.alpha = alpha
        self.groups = groups
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.device = device

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
