"""The group and sparse-group lasso with ``alpha`` (and ``l1_ratio``, given a list) chosen by
K-fold cross-validation.

Each fold's training part is fitted along the grid by :func:`shrinkage.path` with warm starts
(:class:`~shrinkage.linear._group.GroupProblem`) and scored by the (weighted) mean squared
error on its held-out part; the chosen strength is refitted on all the data exactly as
:class:`~shrinkage.linear.GroupLasso` fits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval

from .._validation import check_device
from ..path import PathPoint, path
from ._base import LinearRegressorMixin
from ._common import fit_threads
from ._cv import choose_on_folds, fold_statistics
from ._folds import FoldProgress, alpha_grid, check_l1_ratios, fold_reports, report_choice
from ._group import GroupLasso, GroupProblem, group_data
from ._params import CV_COMMON, PathCVParams, SolverParams
from ._problem import as_problem_kwargs

__all__ = ["GroupLassoCV"]


@dataclass(eq=False, repr=False, kw_only=True)
class GroupLassoCV(LinearRegressorMixin, BaseEstimator, SolverParams, PathCVParams):
    """:class:`~shrinkage.linear.GroupLasso` with ``alpha`` chosen by K-fold CV.

    Args:
        groups: see :func:`~shrinkage.linear._group.group_ids`.
        l1_ratio: the L1 share (0: the group lasso), or a list of them to choose from too.
        eps, alphas: an int ``alphas`` is that many strengths log-spaced from the smallest
            ``alpha`` that zeros every group (on all the data) down to ``eps`` times it; an
            array is the grid itself.
        cv: as scikit-learn's (``None``: 5-fold).
        selection_rule: ``"min"`` (lowest mean error) or ``"1se"`` (the largest ``alpha``
            within one standard error of it).
        fit_intercept, tol, max_iter, device: as :class:`~shrinkage.linear.GroupLasso`'s.
        verbose: 1 reports each fold's path as it ends, 2 each point too, on standard error.

    Attributes: ``alpha_``, ``l1_ratio_``, ``alphas_`` (``[n_alphas]``, or ``[n_l1_ratio,
    n_alphas]`` for several ratios), ``mse_path_`` (``[n_alphas, n_folds]``, or
    ``[n_l1_ratio, n_alphas, n_folds]``), ``coef_``, ``intercept_``, ``n_iter_``, ``groups_``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(60, 6))
        >>> y = X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=60)
        >>> model = GroupLassoCV(groups=2, alphas=20, selection_rule="1se").fit(X, y)
        >>> (model.coef_ != 0).tolist()
        [True, True, False, False, False, False]
    """

    multi_output: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "groups": [None, "array-like", Interval(Integral, 1, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), "array-like"],
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "verbose": ["verbose"],
        **CV_COMMON,
    }

    groups: Any = None
    l1_ratio: float | list[float] = 0.0

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> GroupLassoCV:
        """Cross-validate the grid, pick ``alpha_`` (and ``l1_ratio_``), refit on all the data.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (CSR or CSC).
            y: ``[n_samples]``.
            sample_weight: ``[n_samples]``, or ``None`` for ones; the held-out folds are
                scored with their weights.

        Returns:
            ``self``.
        """
        self._validate_params()
        device = check_device(self.device)
        X, y, weights = group_data(self, X, y, sample_weight)
        rows = np.arange(X.shape[0])
        folds = [(rows[train], rows[test]) for train, test in check_cv(self.cv).split(X, y)]
        ratios = check_l1_ratios(self.l1_ratio)
        with fit_threads(X):
            grids = [self._grid(X, y, weights, ratio) for ratio in ratios]
            stats, fold_stats = fold_statistics(X, y, weights, folds, device)
            fold_points = []
            for ratio, grid in zip(ratios, grids, strict=True):
                reports = fold_reports(self, grid, len(folds), ratio if len(ratios) > 1 else None)
                fold_points.append(
                    [
                        self._fold(
                            (X, y, weights, folds, stats, fold_stats), ratio, grid, k, report
                        )
                        for k, report in enumerate(reports)
                    ]
                )
        choice = choose_on_folds(ratios, grids, fold_points, self.selection_rule)
        self.alpha_, self.l1_ratio_ = choice.alpha, choice.l1_ratio
        several = self.l1_ratio_ if len(ratios) > 1 else None
        report_choice(self, alpha_=self.alpha_, l1_ratio_=several)
        self.mse_path_ = choice.mse_path
        self.alphas_ = grids[0] if len(ratios) == 1 else np.asarray(grids)
        model = GroupLasso(
            self.alpha_, groups=self.groups, l1_ratio=self.l1_ratio_, **as_problem_kwargs(self)
        ).fit(X, y, sample_weight)
        self.coef_, self.intercept_ = model.coef_, model.intercept_
        self.n_iter_, self.groups_ = model.n_iter_, model.groups_
        return self

    def _problem(
        self, X: Any, y: np.ndarray, weights: np.ndarray | None, ratio: float
    ) -> GroupProblem:
        return GroupProblem(
            X, y, self.groups, l1_ratio=ratio, sample_weight=weights, **as_problem_kwargs(self)
        )

    def _grid(self, X: Any, y: np.ndarray, weights: np.ndarray | None, ratio: float) -> np.ndarray:
        """The strengths, decreasing (the largest zeros every group on all the data)."""
        return alpha_grid(
            self.alphas, self.eps, 1.0, lambda: self._problem(X, y, weights, ratio).lambda_max()
        )

    def _fold(
        self,
        data: tuple[Any, ...],
        ratio: float,
        grid: np.ndarray,
        k: int,
        progress: FoldProgress | None,
    ) -> list[PathPoint]:
        """The warm-started path on fold ``k``'s training part, scored on its held-out rows,
        reported to ``progress``.

        Args:
            data: ``(X, y, weights, folds, stats, fold_stats)`` as :meth:`fit` holds them.
            ratio: the ``l1_ratio``.
            grid: the alphas, strongest first.
            k: the fold.
            progress: its progress report, or ``None``.

        Returns:
            The path's points. With Gram statistics (:func:`fold_statistics`) the training
            part is the whole data's less the fold's; otherwise it is built on its rows.
        """
        X, y, weights, folds, stats, fold_stats = data
        train, test = folds[k]
        if stats is not None:
            problem = GroupProblem.from_stats(
                stats - fold_stats[k], self.groups, l1_ratio=ratio,
                fit_intercept=self.fit_intercept, tol=self.tol, max_iter=self.max_iter,
            )  # fmt: skip
            return path(problem, grid, validation=(fold_stats[k], None), progress=progress)
        w_train = None if weights is None else weights[train]
        w_test = None if weights is None else weights[test]
        problem = self._problem(X[train], y[train], w_train, ratio)
        return path(problem, grid, validation=(X[test], y[test], w_test), progress=progress)
