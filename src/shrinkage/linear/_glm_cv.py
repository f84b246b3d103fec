"""Poisson, Gamma and Tweedie regression with ``alpha`` chosen by K-fold cross-validation.

Each fold's training part is fitted along the whole ``alphas`` grid by :func:`shrinkage.path`
with warm starts, and each point is scored by the (weighted) mean deviance on the held-out
part, its offset included. The chosen ``alpha_`` is then refitted on all the data exactly as
the plain estimator would fit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

import numpy as np

from ..path import choose, path
from ._bound_tweedie import check_family, mean_deviance, predicted_mean
from ._common import fit_threads, output_dtype, warn_not_converged
from ._folds import FoldData, FoldProgress, alpha_grid, fold_reports, report_choice
from ._glm import GLM_PARAMS, TWEEDIE_PARAMS, _GLMModel, glm_data
from ._params import CV_COMMON, PathCVParams, SolverParams
from ._problem import LinearProblem

__all__ = ["GammaRegressorCV", "PoissonRegressorCV", "TweedieRegressorCV"]

GLM_CV_PARAMS: dict[str, list[Any]] = {
    "l1_ratio": GLM_PARAMS["l1_ratio"],
    "penalty_factor": GLM_PARAMS["penalty_factor"],
    **CV_COMMON,
}


@dataclass(eq=False, repr=False, kw_only=True)
class _GLMRegressorCV(_GLMModel, SolverParams, PathCVParams):
    """``fit`` by cross-validation over ``alphas``; prediction and score as the plain
    estimator's."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = GLM_CV_PARAMS

    max_iter: int = 100
    l1_ratio: float = 0.5
    penalty_factor: Any = None

    def _problem(self, loss: Any, finish: bool = False) -> LinearProblem:
        return LinearProblem(
            None, None, loss=loss, l1_ratio=self.l1_ratio, tol=self.tol,
            max_iter=self.max_iter, finish=finish,
        )  # fmt: skip

    def _grid(self, whole: LinearProblem) -> np.ndarray:
        """The ``alphas`` to try, largest first: given, or ``alphas`` log-spaced from the
        whole data's ``alpha_max`` down to ``eps`` times it
        (:func:`~shrinkage.linear._folds.alpha_grid`)."""
        if isinstance(self.alphas, Integral) and self.l1_ratio == 0:
            raise ValueError(
                "alphas=<int> needs l1_ratio > 0 (a ridge penalty zeros no coefficient, so "
                "it has no largest useful alpha); give alphas as an array"
            )
        return alpha_grid(self.alphas, self.eps, self.l1_ratio, whole.gradient_at_zero)

    def fit(self, X: Any, y: Any, sample_weight: Any = None, offset: Any = None) -> Any:
        """Choose ``alpha_`` on ``X [n_samples, n_features]`` and ``y [n_samples]`` by
        cross-validation, then refit on all of them.

        Args:
            X, y, sample_weight, offset: as the plain estimator's ``fit``.

        Returns:
            ``self``, with ``alpha_``, ``alphas_ [n_alphas]``, ``deviance_path_ [n_alphas,
            n_folds]`` (held-out mean deviance), ``coef_``, ``intercept_`` and ``n_iter_``.

        Example:
            >>> import numpy as np
            >>> from shrinkage.linear import PoissonRegressorCV
            >>> rng = np.random.default_rng(0)
            >>> X = rng.normal(size=(300, 8))
            >>> y = rng.poisson(np.exp(0.4 * X[:, 0] - 0.3 * X[:, 1]))
            >>> model = PoissonRegressorCV(l1_ratio=1.0, alphas=20, cv=3).fit(X, y)
            >>> np.flatnonzero(model.coef_)[:2].tolist()
            [0, 1]
        """
        self._validate_params()
        X, y, weights, offset = glm_data(self, X, y, sample_weight, offset)
        with fit_threads(X):
            whole = self._problem(self._loss(X, y, weights, offset), finish=True)
            grid = self._grid(whole)
            data = FoldData.split(X, y, weights, self.cv, offset)
            reports = fold_reports(self, grid, len(data.folds))
            table = np.column_stack(
                [self._fold(data, k, grid, report) for k, report in enumerate(reports)]
            )
            choice = choose(table, grid)
            self.alpha_ = float(grid[choice.index(self.selection_rule)])
            report_choice(self, alpha_=self.alpha_)
            (point,) = path(whole, [self.alpha_])
        warn_not_converged(point, f"{type(self).__name__} refit at alpha={self.alpha_:g}")
        self.alphas_, self.deviance_path_ = grid, table
        self._set_fitted(point, output_dtype(X))
        return self

    def _fold(
        self, data: FoldData, k: int, grid: np.ndarray, progress: FoldProgress | None
    ) -> np.ndarray:
        """``[n_alphas]``: the held-out mean deviance of the path fitted on fold ``k``'s
        training rows, reported to ``progress``."""
        train, test = data.folds[k]
        X_test, y_test, w_test, o_test = data.rows(test)
        power, link = self._family()
        deviances = []
        for point in path(self._problem(self._loss(*data.rows(train))), grid, progress=progress):
            assert point.coef is not None
            intercept = float(np.asarray(point.intercept))
            mu = predicted_mean(X_test, point.coef, intercept, link, o_test)
            deviances.append(mean_deviance(y_test, mu, power, w_test))
        return np.asarray(deviances)


class PoissonRegressorCV(_GLMRegressorCV):
    """:class:`~shrinkage.linear.PoissonRegressor` with ``alpha`` chosen by cross-validation.

    Args:
        l1_ratio: the L1 share of the penalty (``0`` needs an array of ``alphas``).
        eps, alphas: an int ``alphas`` is that many values log-spaced from ``alpha_max`` (the
            smallest ``alpha`` that zeros every coefficient) down to ``eps * alpha_max``; an
            array is the grid itself.
        cv: as scikit-learn's (``None``: 5-fold).
        selection_rule: ``"min"`` (lowest mean deviance) or ``"1se"`` (the largest ``alpha``
            within one standard error of it).
        verbose: 1 reports each fold's path on standard error as it ends, and the choice
            before the refit; 2 each point too.
        others: as :class:`~shrinkage.linear.PoissonRegressor`.
    """

    def _family(self) -> tuple[float, str]:
        return 1.0, "log"


class GammaRegressorCV(_GLMRegressorCV):
    """:class:`~shrinkage.linear.GammaRegressor` with ``alpha`` chosen by cross-validation;
    parameters as :class:`PoissonRegressorCV`."""

    def _family(self) -> tuple[float, str]:
        return 2.0, "log"


@dataclass(eq=False, repr=False, kw_only=True)
class TweedieRegressorCV(_GLMRegressorCV):
    """:class:`~shrinkage.linear.TweedieRegressor` with ``alpha`` chosen by cross-validation;
    ``power`` and ``link`` as there, the others as :class:`PoissonRegressorCV`."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {**GLM_CV_PARAMS, **TWEEDIE_PARAMS}

    power: float = 0.0
    link: str = "auto"

    def _family(self) -> tuple[float, str]:
        return float(self.power), check_family(float(self.power), self.link)
