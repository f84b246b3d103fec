"""Elastic Net and Lasso with ``alpha`` chosen by cross-validation: scikit-learn's
``ElasticNetCV`` and ``LassoCV``, on :func:`shrinkage.path` and :func:`shrinkage.path.choose`."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_device
from ..path import choose_from_paths, lambda_grid, path
from ._common import CV_COMMON, warn_not_converged
from ._problem import GramStats, LinearProblem, as_problem_kwargs, as_tensor

__all__ = ["ElasticNetCV", "LassoCV"]


class ElasticNetCV(RegressorMixin, BaseEstimator):
    """Elastic Net with ``alpha`` (and ``l1_ratio``, given a list) chosen by K-fold CV.

    The ``alphas`` grid (an int: that many log-spaced from ``alpha_max`` down to
    ``eps * alpha_max``, computed on the whole data as scikit-learn does; or an array) is
    fitted on each fold's training part by :func:`shrinkage.path` with warm starts, scored by
    mean squared error on its held-out part; ``selection_rule="min"`` takes the lowest mean
    error, ``"1se"`` the largest ``alpha`` within one standard error of it. The model is then
    refitted on all the data at ``alpha_``, warm-started from the folds' mean coefficients
    there (close to the answer, so the refit takes few iterations).

    Attributes: ``alpha_``, ``l1_ratio_``, ``alphas_`` (``[n_alphas]``, or
    ``[n_l1_ratio, n_alphas]`` for a list), ``mse_path_`` (``[n_alphas, n_folds]`` or
    ``[n_l1_ratio, n_alphas, n_folds]``), ``coef_``, ``intercept_``, ``dual_gap_``,
    ``n_iter_``, ``path_`` (the refit's record, one point).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), "array-like"],
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        **CV_COMMON,
    }

    def __init__(
        self,
        *,
        l1_ratio: float | list[float] = 0.5,
        eps: float = 1e-3,
        alphas: int | Any = 100,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        cv: Any = None,
        selection_rule: str = "min",
        device: str = "cpu",
    ) -> None:
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.selection_rule = selection_rule
        self.device = device

    def _l1_ratios(self) -> list[float]:
        ratios = np.atleast_1d(np.asarray(self.l1_ratio, dtype=float))
        if (
            ratios.size == 0
            or np.any((ratios < 0) | (ratios > 1))
            or not np.all(np.isfinite(ratios))
        ):
            raise ValueError(
                f"l1_ratio must be in [0, 1] (a number or a list), got {self.l1_ratio!r}"
            )
        return [float(r) for r in ratios]

    def _grid(self, problem: LinearProblem) -> np.ndarray:
        if not isinstance(self.alphas, Integral):
            grid = np.sort(np.asarray(self.alphas, dtype=float).ravel())[::-1]
            if grid.size == 0 or np.any(grid < 0) or not np.all(np.isfinite(grid)):
                raise ValueError(
                    f"alphas must be a positive int or an array of alphas >= 0, got {self.alphas!r}"
                )
            return grid
        return lambda_grid(problem.lambda_max(), int(self.alphas), self.eps)

    def fit(self, X: Any, y: Any) -> ElasticNetCV:
        """Cross-validate the grid, pick ``alpha_`` (and ``l1_ratio_``), refit."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        ratios = self._l1_ratios()
        folds = list(check_cv(self.cv).split(X, y))
        if len(folds) > X.shape[0]:
            raise ValueError(
                f"cv asks for {len(folds)} folds but there are only {X.shape[0]} samples"
            )
        device = check_device(self.device)
        stats = None
        fold_stats: list[GramStats] = []
        if X.shape[0] - max(len(test) for _, test in folds) >= X.shape[1]:
            # n >> p: everything from Gram statistics, each fold's computed once; when the
            # folds partition the data, the whole data's statistics are their sum
            Xt = as_tensor(X, device)
            yt = as_tensor(y, device)
            for _, test in folds:
                t = torch.as_tensor(test, device=device)
                fold_stats.append(GramStats.of(Xt[t], yt[t]))
            tests = np.sort(np.concatenate([test for _, test in folds]))
            partition = np.array_equal(tests, np.arange(X.shape[0]))
            stats = sum(fold_stats[1:], fold_stats[0]) if partition else GramStats.of(Xt, yt)

        def whole(ratio: float) -> LinearProblem:
            if stats is None:
                return LinearProblem(
                    X, y, loss="squared", l1_ratio=ratio, **as_problem_kwargs(self)
                )
            return LinearProblem.from_stats(
                stats,
                l1_ratio=ratio,
                fit_intercept=self.fit_intercept,
                tol=self.tol,
                max_iter=self.max_iter,
            )

        grids, mse, fold_points = [], [], []
        for ratio in ratios:
            grid = self._grid(whole(ratio))
            points_per_fold = []
            for k, (train, test) in enumerate(folds):
                validation: tuple[Any, Any] = (X[test], y[test])
                if stats is not None:  # the training part's Gram: the whole minus the fold
                    validation = (fold_stats[k], None)
                    problem = LinearProblem.from_stats(
                        stats - fold_stats[k],
                        l1_ratio=ratio,
                        fit_intercept=self.fit_intercept,
                        tol=self.tol,
                        max_iter=self.max_iter,
                    )
                else:
                    problem = LinearProblem(
                        X[train],
                        y[train],
                        loss="squared",
                        l1_ratio=ratio,
                        **as_problem_kwargs(self),
                    )
                points_per_fold.append(path(problem, grid, validation=validation))
            fold_points.append(points_per_fold)
            grids.append(grid)
            losses = [[p.val_loss for p in points] for points in points_per_fold]
            mse.append(np.array(losses, dtype=float).T)  # [n_alphas, n_folds]
        # choose: best l1_ratio by its best mean error, then alpha by the rule
        best_means = [m.mean(axis=1).min() for m in mse]
        r = int(np.argmin(best_means))
        i = choose_from_paths(fold_points[r]).index(self.selection_rule)
        self.l1_ratio_ = ratios[r]
        self.alpha_ = float(grids[r][i])
        single = np.ndim(self.l1_ratio) == 0
        self.alphas_ = grids[0] if single else np.array(grids)
        self.mse_path_ = mse[0] if single else np.array(mse)
        final = whole(self.l1_ratio_)
        at_alpha = [points[i] for points in fold_points[r]]
        warm = final.state_from(
            np.mean([np.asarray(p.coef) for p in at_alpha], axis=0),
            np.mean([np.asarray(p.intercept, dtype=float) for p in at_alpha], axis=0),
        )
        refit = path(final, [self.alpha_], initial_state=warm)
        point = refit[-1]
        warn_not_converged(point, type(self).__name__)
        self.coef_, self.intercept_ = point.coef, point.intercept
        self.dual_gap_, self.n_iter_ = point.criterion, point.n_iter
        self.path_ = refit
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape ``[n_samples]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_


class LassoCV(ElasticNetCV):
    """Lasso with ``alpha`` chosen by K-fold CV (:class:`ElasticNetCV` with ``l1_ratio=1``)."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        k: v for k, v in ElasticNetCV._parameter_constraints.items() if k != "l1_ratio"
    }

    def __init__(
        self,
        *,
        eps: float = 1e-3,
        alphas: int | Any = 100,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        cv: Any = None,
        selection_rule: str = "min",
        device: str = "cpu",
    ) -> None:
        super().__init__(
            l1_ratio=1.0,
            eps=eps,
            alphas=alphas,
            fit_intercept=fit_intercept,
            max_iter=max_iter,
            tol=tol,
            cv=cv,
            selection_rule=selection_rule,
            device=device,
        )

    def _l1_ratios(self) -> list[float]:
        return [1.0]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.pop("l1_ratio", None)
        return params
