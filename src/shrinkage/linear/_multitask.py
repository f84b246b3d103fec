"""Joint multi-task fits with scikit-learn's objectives: several targets share which features
they use.

    ||Y - X W^T - b||_F^2 / (2n) + alpha * l1_ratio * sum_j ||W_{:, j}||_2
        + alpha * (1 - l1_ratio) / 2 * ||W||_F^2

``W [n_tasks, n_features]``: a feature's coefficients over all tasks are zero together (the
group lasso over the rows of ``W^T``). Solved by :func:`~shrinkage.linear._solver.solve` on
:class:`~shrinkage.linear._multitask_datafit.MultiTaskQuadratic`, stopping on the duality gap
at ``tol * ||Y||_F^2 / n`` as scikit-learn's coordinate descent does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import validate_data
from torch import Tensor

from .._validation import check_device
from ._base import LinearRegressorMixin
from ._common import (
    check_overflow,
    check_sample_weight,
    fit_threads,
    output_dtype,
    row_mean,
    warn_not_converged,
)
from ._design import SparseDesign, as_tensor, is_sparse
from ._group_penalty import GroupPenalty
from ._multitask_datafit import MultiTaskQuadratic
from ._params import COMMON, COORDINATE_DESCENT, CoordinateDescentParams, SolverParams
from ._solver import Solution, solve

__all__ = [
    "MultiTaskData",
    "MultiTaskElasticNet",
    "MultiTaskFit",
    "MultiTaskLasso",
    "fit_multitask",
    "tasks_data",
]


def tasks_data(
    estimator: Any, X: Any, y: Any, sample_weight: Any = None, *, reset: bool = True
) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """``X [n, p]`` (dense, CSR or CSC), ``Y [n, T]`` and the sample weights, checked; a 1-D
    ``y`` is refused with scikit-learn's words."""
    X, y = validate_data(
        estimator, X, y, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32],
        y_numeric=True, multi_output=True, reset=reset,
    )  # fmt: skip
    Y = np.asarray(y, dtype=np.float64)
    if Y.ndim == 1:
        single = type(estimator).__name__.replace("MultiTask", "")
        raise ValueError(f"For mono-task outputs, use {single}")
    check_overflow(X)
    return X, Y, check_sample_weight(sample_weight, X.shape[0])


def _centred(
    X: Any, Y: np.ndarray, weights: np.ndarray | None, fit_intercept: bool, device: Any
) -> tuple[Any, Tensor, np.ndarray, np.ndarray]:
    """``(design, targets, X_mean, Y_mean)``: ``X`` and ``Y`` centred on their weighted means
    and their rows scaled by ``sqrt(s)`` (``s`` normalized to sum to ``n``); a sparse ``X``
    stays sparse, centred inside each product."""
    n, p = X.shape
    s = np.ones(n) if weights is None else weights * (n / weights.sum())
    X_mean = row_mean(X, s) if fit_intercept else np.zeros(p)
    Y_mean = s @ Y / s.sum() if fit_intercept else np.zeros(Y.shape[1])
    root = np.sqrt(s)
    design: Any
    if is_sparse(X):
        design = SparseDesign(X, X_mean, root)
    else:
        design = as_tensor((np.asarray(X, dtype=np.float64) - X_mean) * root[:, None], device)
    return design, as_tensor((Y - Y_mean) * root[:, None], device), X_mean, Y_mean


@dataclass(frozen=True)
class MultiTaskFit:
    """One multi-task fit: ``coef [T, p]``, ``intercept [T]`` and the solver's answer."""

    coef: np.ndarray
    intercept: np.ndarray
    solution: Solution


@dataclass(frozen=True)
class MultiTaskData:
    """The centred data of multi-task fits, formed once for a path of them.

    Attributes:
        datafit: the data term (no ridge part) on the centred, ``sqrt(s)``-scaled data.
        X_mean: ``[p]``, the features' weighted means (zeros without an intercept).
        Y_mean: ``[T]``, the targets'.
    """

    datafit: MultiTaskQuadratic
    X_mean: np.ndarray
    Y_mean: np.ndarray

    @classmethod
    def of(
        cls,
        X: Any,
        Y: np.ndarray,
        *,
        fit_intercept: bool,
        device: torch.device,
        weights: np.ndarray | None = None,
    ) -> MultiTaskData:
        """Centre ``X [n, p]`` (dense, or scipy sparse: never densified) and ``Y [n, T]``.

        Args:
            X: the features; Y: the targets.
            fit_intercept: centre them (the intercept is not penalized).
            device: the torch device.
            weights: ``[n]`` sample weights, or ``None``.

        Returns:
            The data.
        """
        design, targets, X_mean, Y_mean = _centred(X, Y, weights, fit_intercept, device)
        return cls(MultiTaskQuadratic(design, targets), X_mean, Y_mean)

    def fit(
        self,
        alpha: float,
        l1_ratio: float,
        *,
        tol: float,
        max_iter: int,
        warm: np.ndarray | None = None,
    ) -> MultiTaskFit:
        """Minimise the objective of the module docstring.

        Args:
            alpha, l1_ratio: the penalty.
            tol: stop at a duality gap of ``tol * ||Y - mean(Y)||_F^2 / n``.
            max_iter: bound on the solver's iterations.
            warm: ``[T, p]`` coefficients to start from (``None``: zero).

        Returns:
            The :class:`MultiTaskFit`.
        """
        datafit = self.datafit.with_l2(alpha * (1 - l1_ratio))
        p, tasks, device = datafit.p, datafit.tasks, datafit.C.device
        rows = torch.arange(p, device=device).repeat_interleave(tasks)
        free = torch.zeros(p * tasks, dtype=torch.bool, device=device)
        penalty = GroupPenalty(alpha * l1_ratio, rows, free, by_size=False)
        w0 = torch.zeros(p * tasks, dtype=torch.float64, device=device)
        if warm is not None:
            w0 = as_tensor(np.ascontiguousarray(warm.T).reshape(-1), device)

        def gap(fit: MultiTaskQuadratic, w: Tensor) -> float:
            return fit.duality_gap(w, alpha * l1_ratio)

        solution = solve(
            datafit, penalty.penalty_for, w0, free=free, tol=tol * datafit.yy,
            max_iter=max_iter, criterion=gap, finish=True,
        )  # fmt: skip
        W = solution.w.view(p, tasks).cpu().numpy()
        return MultiTaskFit(W.T.copy(), self.Y_mean - self.X_mean @ W, solution)


def fit_multitask(
    X: Any,
    Y: np.ndarray,
    alpha: float,
    l1_ratio: float,
    *,
    fit_intercept: bool,
    tol: float,
    max_iter: int,
    device: torch.device,
    weights: np.ndarray | None = None,
    warm: np.ndarray | None = None,
) -> MultiTaskFit:
    """One fit: :meth:`MultiTaskData.of`, then its :meth:`~MultiTaskData.fit`.

    Args:
        X: ``[n, p]``, dense, or scipy sparse (never densified).
        Y: ``[n, T]``, the targets.
        alpha, l1_ratio: the penalty.
        fit_intercept, device, weights: as :meth:`MultiTaskData.of`'s.
        tol, max_iter, warm: as :meth:`MultiTaskData.fit`'s.

    Returns:
        the :class:`MultiTaskFit`.
    """
    data = MultiTaskData.of(X, Y, fit_intercept=fit_intercept, device=device, weights=weights)
    return data.fit(alpha, l1_ratio, tol=tol, max_iter=max_iter, warm=warm)


class MultiTaskRegressor(LinearRegressorMixin, BaseEstimator):
    """What the multi-task estimators share: their fitted attributes and tags."""

    def _set_fitted(self, fitted: MultiTaskFit, dtype: Any) -> None:
        solution = fitted.solution
        warn_not_converged(solution, type(self).__name__)
        self.coef_ = fitted.coef.astype(dtype)
        self.intercept_ = fitted.intercept.astype(dtype)
        self.n_iter_ = solution.n_iter
        self.dual_gap_ = solution.criterion

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags


@dataclass(eq=False, repr=False, kw_only=True)
class MultiTaskElasticNet(MultiTaskRegressor, SolverParams, CoordinateDescentParams):
    """Multi-task Elastic Net (see the module docstring), scikit-learn's estimator of the
    name, solved in torch.

    Args:
        alpha: the strength, ``>= 0``.
        l1_ratio: the share of the row-wise L2,1 part.
        fit_intercept: fit an unpenalized intercept per task.
        copy_X, random_state, selection: accepted for scikit-learn's sake (the caller's ``X``
            is never modified).
        max_iter: bound on the solver's iterations.
        tol: stop at a duality gap of ``tol * ||Y - mean(Y)||_F^2 / n``.
        warm_start: start from the last fit's coefficients.
        device: the torch device.

    Attributes: ``coef_ [n_tasks, n_features]``, ``intercept_ [n_tasks]``, ``n_iter_``,
    ``dual_gap_`` (divided by ``n``, as scikit-learn reports it).

    Example:
        >>> import numpy as np
        >>> from shrinkage.linear import MultiTaskLasso
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(50, 6))
        >>> Y = np.column_stack([X[:, 0] + X[:, 1], 2 * X[:, 0] - X[:, 1]])
        >>> np.flatnonzero(MultiTaskLasso(alpha=0.1).fit(X, Y).coef_.any(axis=0)).tolist()
        [0, 1]
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "warm_start": ["boolean"],
        **COMMON,
        **COORDINATE_DESCENT,
    }

    alpha: float = field(default=1.0, kw_only=False)
    l1_ratio: float = 0.5
    warm_start: bool = False

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """Fit the model, all tasks at once.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (CSR or CSC).
            y: ``[n_samples, n_tasks]``.
            sample_weight: ``[n_samples]``, or ``None`` for ones.

        Returns:
            ``self``.

        Raises:
            ValueError: a 1-D ``y`` (use the single-task estimator).
        """
        self._validate_params()
        device = check_device(self.device)
        X, Y, weights = tasks_data(self, X, y, sample_weight)
        warm = None
        if self.warm_start and getattr(self, "coef_", None) is not None:
            warm = np.asarray(self.coef_, dtype=np.float64)
            warm = warm if warm.shape == (Y.shape[1], X.shape[1]) else None
        with fit_threads(X):
            fitted = fit_multitask(
                X, Y, float(self.alpha), float(self.l1_ratio), fit_intercept=self.fit_intercept,
                tol=self.tol, max_iter=self.max_iter, device=device, weights=weights, warm=warm,
            )  # fmt: skip
        self._set_fitted(fitted, output_dtype(X))
        return self


@dataclass(eq=False, repr=False, kw_only=True)
class MultiTaskLasso(MultiTaskElasticNet):
    """Multi-task Lasso: :class:`MultiTaskElasticNet` with ``l1_ratio=1``; the same
    parameters but ``l1_ratio``, and the same attributes."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        **COMMON,
        **COORDINATE_DESCENT,
    }

    l1_ratio: float = field(default=1.0, init=False)
