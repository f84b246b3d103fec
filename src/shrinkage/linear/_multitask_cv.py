"""Multi-task Elastic Net and Lasso with ``alpha`` (and ``l1_ratio``, given a list) chosen by
K-fold cross-validation: scikit-learn's ``MultiTaskElasticNetCV`` and ``MultiTaskLassoCV``.

Each fold's training part is fitted along the grid with warm starts and scored by the mean
squared error over its held-out samples and tasks; the chosen strength is refitted on all the
data exactly as :class:`~shrinkage.linear.MultiTaskElasticNet` would fit it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .._validation import check_device
from ..path import choose
from ._common import fit_threads, output_dtype, refuse_params
from ._design import held_out_product
from ._folds import FoldData, FoldProgress, alpha_grid, check_l1_ratios, fold_reports, report_choice
from ._multitask import MultiTaskData, MultiTaskRegressor, fit_multitask, tasks_data
from ._params import ELASTIC_NET_CV, ElasticNetCVParams, lasso_constraints

__all__ = ["MultiTaskElasticNetCV", "MultiTaskLassoCV"]


@dataclass(eq=False, repr=False, kw_only=True)
class MultiTaskElasticNetCV(MultiTaskRegressor, ElasticNetCVParams):
    """:class:`~shrinkage.linear.MultiTaskElasticNet` with ``alpha`` chosen by K-fold CV.

    Args:
        l1_ratio: a float, or a list of them to choose from too.
        eps, alphas: an int ``alphas`` is that many strengths log-spaced from
            ``alpha_max`` (divided by ``l1_ratio``) down to ``eps`` times it;
            an array is the grid itself.
        cv: as scikit-learn's (``None``: 5-fold).
        selection_rule: ``"min"`` (lowest mean error) or ``"1se"`` (the largest ``alpha``
            within one standard error of it).
        verbose: 1 reports each fold's path on standard error as it ends, and the choice
            before the refit; 2 each point too.
        others: as :class:`~shrinkage.linear.MultiTaskElasticNet` (``n_jobs`` accepted for
            scikit-learn's sake).

    Attributes: ``alpha_``, ``l1_ratio_``, ``alphas_`` (``[n_alphas]``, or ``[n_l1_ratio,
    n_alphas]``), ``mse_path_`` (``[n_alphas, n_folds]``, or ``[n_l1_ratio, n_alphas,
    n_folds]``), ``coef_``, ``intercept_``, ``n_iter_``, ``dual_gap_``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {**ELASTIC_NET_CV}

    def _grid(
        self, X: Any, Y: np.ndarray, weights: np.ndarray | None, l1_ratio: float
    ) -> np.ndarray:
        return alpha_grid(self.alphas, self.eps, l1_ratio, lambda: self.alpha_max(X, Y, weights))

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **params: Any) -> Any:
        """Cross-validate the grid, pick ``alpha_`` (and ``l1_ratio_``), refit on all the data.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (CSR or CSC).
            y: ``[n_samples, n_tasks]``.
            sample_weight: ``[n_samples]``, or ``None`` for ones; the held-out folds are
                scored with their weights.
            **params: refused with scikit-learn's error (no metadata routing).

        Returns:
            ``self``.

        Raises:
            ValueError: a 1-D ``y`` (use the single-task estimator).
        """
        refuse_params(self, params)
        self._validate_params()
        device = check_device(self.device)
        X, Y, weights = tasks_data(self, X, y, sample_weight)
        data = FoldData.split(X, Y, weights, self.cv)
        ratios = check_l1_ratios(self.l1_ratio)
        with fit_threads(X):
            grids = [self._grid(X, Y, weights, ratio) for ratio in ratios]
            tables = []
            for ratio, grid in zip(ratios, grids, strict=True):
                n = len(data.folds)
                reports = fold_reports(self, grid, n, ratio if len(ratios) > 1 else None)
                columns = [self._fold(data, k, ratio, grid, reports[k]) for k in range(n)]
                tables.append(np.column_stack(columns))
            means = [choose(table, grid) for table, grid in zip(tables, grids, strict=True)]
            best = min(range(len(ratios)), key=lambda i: means[i].mean[means[i].best])
            index = means[best].index(self.selection_rule)
            self.alpha_, self.l1_ratio_ = float(grids[best][index]), ratios[best]
            several = self.l1_ratio_ if len(ratios) > 1 else None
            report_choice(self, alpha_=self.alpha_, l1_ratio_=several)
            fitted = fit_multitask(
                X, Y, self.alpha_, self.l1_ratio_, fit_intercept=self.fit_intercept,
                tol=self.tol, max_iter=self.max_iter, device=device, weights=weights,
            )  # fmt: skip
        single = len(ratios) == 1  # one ratio, even in a list: 2-D records, as scikit-learn's
        self.alphas_ = grids[0] if single else np.asarray(grids)
        self.mse_path_ = tables[0] if single else np.asarray(tables)
        self._set_fitted(fitted, output_dtype(X))
        return self

    def _fold(
        self, data: FoldData, k: int, ratio: float, grid: np.ndarray, progress: FoldProgress | None
    ) -> np.ndarray:
        """``[n_alphas]``: the held-out mean squared error along the warm-started path on fold
        ``k``'s training rows, reported to ``progress``."""
        train, test = data.folds[k]
        X, Y, w_train, _ = data.rows(train)
        X_test, Y_test, w_test, _ = data.rows(test)
        device = check_device(self.device)
        training = MultiTaskData.of(
            X, Y, fit_intercept=self.fit_intercept, device=device, weights=w_train
        )
        warm, errors = None, []
        for i, alpha in enumerate(grid):
            start = time.perf_counter()
            fitted = training.fit(
                float(alpha), ratio, tol=self.tol, max_iter=self.max_iter, warm=warm
            )
            warm = fitted.coef
            residual = Y_test - held_out_product(X_test, fitted.coef.T) - fitted.intercept
            errors.append(float(np.average(np.mean(residual**2, axis=1), weights=w_test)))
            if progress is not None:
                used = int(np.any(fitted.coef != 0, axis=0).sum())
                seconds = time.perf_counter() - start
                progress.step(i, len(grid), used, fitted.solution.n_iter, seconds, errors[-1])
        return np.asarray(errors)


@dataclass(eq=False, repr=False, kw_only=True)
class MultiTaskLassoCV(MultiTaskElasticNetCV):
    """:class:`~shrinkage.linear.MultiTaskLasso` with ``alpha`` chosen by K-fold CV;
    :class:`MultiTaskElasticNetCV` with ``l1_ratio=1`` and the same attributes."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = lasso_constraints(
        MultiTaskElasticNetCV._parameter_constraints
    )

    l1_ratio: float | list[float] = field(default=1.0, init=False)
    verbose: Any = False
