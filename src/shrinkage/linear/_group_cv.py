"""The group and sparse-group lasso with ``alpha`` (and ``l1_ratio``, given a list) chosen by
K-fold cross-validation.

Each fold's training part is fitted along the grid by :func:`shrinkage.path` with warm starts
(:class:`~shrinkage.linear._group.GroupProblem`) and scored by the (weighted) mean squared
error on its held-out part; the chosen strength is refitted on all the data exactly as
:class:`~shrinkage.linear.GroupLasso` fits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval

from .._validation import check_device
from ._base import LinearRegressorMixin
from ._common import fit_threads
from ._design import GramStats
from ._folds import FoldData, FoldPaths, alpha_grid
from ._group import GroupLasso, GroupProblem, group_data
from ._params import CV_COMMON, L1_RATIOS, PathCVParams, SolverParams
from ._problem import as_problem_kwargs

__all__ = ["GroupLassoCV"]


@dataclass(eq=False, repr=False, kw_only=True)
class GroupLassoCV(FoldPaths, LinearRegressorMixin, BaseEstimator, SolverParams, PathCVParams):
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
        "l1_ratio": L1_RATIOS,
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
        with fit_threads(X):
            data = FoldData.split(X, y, weights, self.cv).with_statistics(device)
            choice, grids = self._choose_on_folds(data)
        self.alpha_, self.l1_ratio_ = choice.alpha, choice.l1_ratio
        self.mse_path_ = choice.mse_path
        self.alphas_ = grids[0] if len(grids) == 1 else np.asarray(grids)
        model = GroupLasso(
            self.alpha_, groups=self.groups, l1_ratio=self.l1_ratio_, **as_problem_kwargs(self)
        ).fit(X, y, sample_weight)
        self.coef_, self.intercept_ = model.coef_, model.intercept_
        self.n_iter_, self.groups_ = model.n_iter_, model.groups_
        return self

    def _on_rows(
        self, X: Any, y: np.ndarray, weights: np.ndarray | None, ratio: float
    ) -> GroupProblem:
        """The group problem on ``X``, ``y`` and ``weights``: a fold's rows, or all of them
        (:meth:`_grid`)."""
        return GroupProblem(
            X, y, self.groups, l1_ratio=ratio, sample_weight=weights, **as_problem_kwargs(self)
        )

    def _from_stats(self, stats: GramStats, ratio: float) -> GroupProblem:
        return GroupProblem.from_stats(
            stats, self.groups, l1_ratio=ratio, fit_intercept=self.fit_intercept, tol=self.tol,
            max_iter=self.max_iter,
        )  # fmt: skip

    def _grids(self, data: FoldData, ratios: list[float]) -> list[np.ndarray]:
        """Each ratio's strengths, decreasing (the largest zeros every group on all the
        data)."""
        return [self._grid(data, ratio) for ratio in ratios]

    def _grid(self, data: FoldData, ratio: float) -> np.ndarray:
        return alpha_grid(
            self.alphas,
            self.eps,
            1.0,
            lambda: self._on_rows(data.X, data.y, data.weights, ratio).lambda_max(),
        )
