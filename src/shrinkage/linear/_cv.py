"""Elastic Net and Lasso with ``alpha`` chosen by cross-validation: scikit-learn's
``ElasticNetCV`` and ``LassoCV``, on the K-fold engine of :mod:`shrinkage.linear._folds`
(:func:`shrinkage.path` along each fold, :func:`shrinkage.path.choose_from_paths`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import column_or_1d

from .._validation import check_device
from ..path import path
from ._base import LinearRegressorMixin
from ._common import (
    check_penalty_factor,
    fit_threads,
    output_dtype,
    refuse_params,
    regression_data,
    warn_not_converged,
)
from ._design import GramStats
from ._folds import FoldData, FoldPaths, alpha_grid
from ._params import ACCEPTED, ELASTIC_NET_CV, ElasticNetCVParams, lasso_constraints
from ._problem import LinearProblem, as_problem_kwargs
from ._regression import ElasticNet

__all__ = ["ElasticNetCV", "LassoCV"]


@dataclass(eq=False, repr=False, kw_only=True)
class ElasticNetCV(FoldPaths, LinearRegressorMixin, BaseEstimator, ElasticNetCVParams):
    """Elastic Net with ``alpha`` (and ``l1_ratio``, given a list) chosen by K-fold CV.

    The ``alphas`` grid (an int: that many log-spaced from ``alpha_max`` down to
    ``eps * alpha_max``, computed on the whole data as scikit-learn does; or an array) is
    fitted on each fold's training part by :func:`shrinkage.path` with warm starts, scored by
    the (weighted) mean squared error on its held-out part; ``selection_rule="min"`` takes the
    lowest mean error, ``"1se"`` the largest ``alpha`` within one standard error of it. The
    model is then refitted on all the data at ``alpha_``, exactly as
    ``ElasticNet(alpha=alpha_)`` would fit it. ``sample_weight``, a sparse ``X`` and
    ``positive=True`` are supported as in :class:`ElasticNet`, and ``penalty_factor`` (with the
    grid's top at the smallest ``alpha`` that zeros every penalized feature, the features of
    factor 0 fitted); ``precompute``, ``copy_X``, ``n_jobs``, ``random_state`` and
    ``selection`` are accepted for scikit-learn's sake. ``verbose=1`` reports each fold's path
    on standard error as it ends, and the choice before the refit; ``verbose=2`` each point
    too.

    Attributes: ``alpha_``, ``l1_ratio_``, ``alphas_`` (``[n_alphas]``, or ``[n_l1_ratio,
    n_alphas]`` for several ratios and an int ``alphas``), ``mse_path_`` (``[n_alphas,
    n_folds]``, or ``[n_l1_ratio, n_alphas, n_folds]``), ``coef_``, ``intercept_``,
    ``dual_gap_``, ``n_iter_``, ``path_`` (the refit's record).
    """

    multi_output: ClassVar[bool] = False  # one target, as scikit-learn's

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "precompute": ACCEPTED["precompute"],
        "positive": ["boolean"],
        "penalty_factor": ["array-like", None],
        **ELASTIC_NET_CV,
    }

    precompute: Any = "auto"
    positive: bool = False
    penalty_factor: Any = None

    def _alpha_max(
        self, X: Any, y: np.ndarray, weights: np.ndarray | None, stats: GramStats | None
    ) -> float:
        """The smallest ``alpha * l1_ratio`` that zeros every penalized coefficient: from the
        data as scikit-learn computes it, or with penalty factors from the whole problem
        (its features of factor 0 fitted)."""
        if self._factor is None:
            return self.alpha_max(X, y, weights)
        if stats is not None:
            return self._from_stats(stats, 1.0).gradient_at_zero()
        return LinearProblem(
            X, y, loss="squared", l1_ratio=1.0, sample_weight=weights,
            penalty_factor=self._factor, **as_problem_kwargs(self),
        ).gradient_at_zero()  # fmt: skip

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **params: Any) -> ElasticNetCV:
        """Cross-validate the grid, pick ``alpha_`` (and ``l1_ratio_``), refit on all the data.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (CSR or CSC).
            y: ``[n_samples]`` (or ``[n_samples, 1]``).
            sample_weight: ``[n_samples]``, or ``None`` for ones; the held-out folds are
                scored with their weights.
            **params: refused with scikit-learn's error (no metadata routing).

        Returns:
            ``self``.

        Raises:
            ValueError: a ``y`` of several columns (use the multi-task estimator).
        """
        refuse_params(self, params)
        self._validate_params()
        device = check_device(self.device)
        X, y, weights = regression_data(self, X, y, sample_weight)
        if y.ndim > 1 and y.shape[1] > 1:
            raise ValueError(f"For multi-task outputs, use MultiTask{type(self).__name__}")
        y = column_or_1d(y, warn=True)
        self._factor = check_penalty_factor(self.penalty_factor, X.shape[1])
        with fit_threads(X):  # on the threads the data are worth
            data = FoldData.split(X, y, weights, self.cv).with_statistics(device)
            choice, grids = self._choose_on_folds(data)
            self.l1_ratio_, self.alpha_ = np.float64(choice.l1_ratio), np.float64(choice.alpha)
            self.mse_path_ = choice.mse_path
            several = isinstance(self.alphas, Integral) and len(grids) > 1
            self.alphas_ = np.asarray(grids) if several else np.asarray(grids[0])
            self._refit(X, y, sample_weight, data.stats)
            return self

    def _grids(self, data: FoldData, ratios: list[float]) -> list[np.ndarray]:
        """Each ratio's ``alphas``: given, or down from ``alpha_max / ratio``, ``alpha_max``
        computed once on the whole data (:meth:`_alpha_max`)."""
        alpha_max = cache(lambda: self._alpha_max(data.X, data.y, data.weights, data.stats))
        return [alpha_grid(self.alphas, self.eps, ratio, alpha_max) for ratio in ratios]

    def _on_rows(
        self, X: Any, y: np.ndarray, weights: np.ndarray | None, ratio: float
    ) -> LinearProblem:
        """The squared-loss problem on a fold's training rows, ``X`` centred in place (it is
        the fold's own copy)."""
        return LinearProblem(
            X, y, loss="squared", l1_ratio=ratio, sample_weight=weights,
            positive=bool(self.positive), copy_X=False,
            penalty_factor=self._factor, **as_problem_kwargs(self),
        )  # fmt: skip

    def _from_stats(self, stats: GramStats, ratio: float, finish: bool = False) -> LinearProblem:
        return LinearProblem.from_stats(
            stats, l1_ratio=ratio, fit_intercept=self.fit_intercept, tol=self.tol,
            max_iter=self.max_iter, positive=bool(self.positive), finish=finish,
            penalty_factor=self._factor,
        )  # fmt: skip

    def _refit(self, X: Any, y: np.ndarray, sample_weight: Any, stats: GramStats | None) -> None:
        """The fit at ``alpha_`` on all the data, from zero to ``tol``, as the single estimator
        fits it (from the whole data's Gram statistics when cross-validation formed them)."""
        if stats is not None:
            problem = self._from_stats(stats, float(self.l1_ratio_), finish=True)
            (point,) = path(problem, [float(self.alpha_)])
            warn_not_converged(point, type(self).__name__)
            dtype = output_dtype(X)
            self.coef_ = np.asarray(point.coef, dtype=dtype)
            self.intercept_ = dtype(
                float(np.asarray(point.intercept)) if self.fit_intercept else 0.0
            )
            self.dual_gap_, self.n_iter_, self.path_ = point.criterion, point.n_iter, [point]
            return
        model = ElasticNet(
            alpha=self.alpha_, l1_ratio=self.l1_ratio_, fit_intercept=self.fit_intercept,
            max_iter=self.max_iter, tol=self.tol, positive=self.positive, device=self.device,
            penalty_factor=self.penalty_factor,
        ).fit(X, y, sample_weight=sample_weight)  # fmt: skip
        self.coef_, self.intercept_ = model.coef_, model.intercept_
        self.dual_gap_, self.n_iter_ = model.dual_gap_, model.n_iter_
        self.path_ = model.path_


@dataclass(eq=False, repr=False, kw_only=True)
class LassoCV(ElasticNetCV):
    """Lasso with ``alpha`` chosen by K-fold CV (:class:`ElasticNetCV` with ``l1_ratio=1``;
    no ``l1_ratio_`` attribute, as in scikit-learn)."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = lasso_constraints(
        ElasticNetCV._parameter_constraints
    )

    l1_ratio: float | list[float] = field(default=1.0, init=False)
    verbose: Any = False

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **params: Any) -> LassoCV:
        super().fit(X, y, sample_weight, **params)
        del self.l1_ratio_
        return self
