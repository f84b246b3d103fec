"""Poisson, Gamma and Tweedie regression with scikit-learn's parameters, plus an L1 part.

    sum_i s_i l(y_i, x_i^T w + b + o_i) / sum_i s_i + alpha * r(w),
    r(w) = l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2^2

with scikit-learn's half deviance ``l`` (:mod:`shrinkage.linear._tweedie`), sample weights
``s`` and an optional offset ``o`` (``log(exposure)`` for rates). ``l1_ratio = 0`` (the
default) is scikit-learn's ``PoissonRegressor``, ``GammaRegressor`` and ``TweedieRegressor``
exactly; ``l1_ratio > 0`` zeros coefficients, as glmnet and glum do. Fitted by proximal
Newton steps (:func:`shrinkage.linear._solver.solve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_device
from ..path import PathPoint, path
from ._base import LinearRegressorMixin
from ._bound_datafits import LossOptions
from ._bound_tweedie import TweedieLoss, check_family, check_target, d2, predicted_mean
from ._common import (
    check_penalty_factor,
    check_sample_weight,
    fit_threads,
    output_dtype,
    regression_data,
    warn_not_converged,
)
from ._params import COMMON, SolverParams
from ._problem import LinearProblem

__all__ = [
    "TWEEDIE_PARAMS",
    "GammaRegressor",
    "PoissonRegressor",
    "TweedieRegressor",
    "check_offset",
    "glm_data",
]

GLM_PARAMS: dict[str, list[Any]] = {
    "alpha": [Interval(Real, 0, None, closed="left")],
    "l1_ratio": [Interval(Real, 0, 1, closed="both")],
    "solver": [StrOptions({"lbfgs", "newton-cholesky"})],
    "warm_start": ["boolean"],
    "verbose": ["verbose"],
    "penalty_factor": ["array-like", None],
    **COMMON,
}


TWEEDIE_PARAMS: dict[str, list[Any]] = {
    "power": [Interval(Real, None, None, closed="neither")],
    "link": [StrOptions({"auto", "identity", "log"})],
}
"""The family's own parameters, for the Tweedie estimators."""


def check_offset(offset: Any, n_samples: int) -> np.ndarray | None:
    """``offset`` as ``[n_samples]`` finite float64 values (a number is repeated; ``None``
    stays ``None``).

    Raises:
        ValueError: a wrong shape, or a non-finite value.
    """
    if offset is None:
        return None
    values = np.asarray(offset, dtype=np.float64)
    if values.ndim == 0:
        values = np.full(n_samples, float(values))
    if values.shape != (n_samples,) or not np.all(np.isfinite(values)):
        raise ValueError(
            f"offset must be a number or [n_samples] = [{n_samples}] finite values; got "
            f"shape {np.shape(offset)}"
        )
    return values


def glm_data(
    estimator: Any, X: Any, y: Any, sample_weight: Any, offset: Any
) -> tuple[Any, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``X`` (dense or CSR/CSC), ``y [n]`` in the estimator's family range, the sample
    weights and the offset, checked."""
    X, y, weights = regression_data(estimator, X, y, sample_weight, multi_output=False)
    power, link = estimator._family()
    check_target(y, power, link)
    return X, y, weights, check_offset(offset, X.shape[0])


class _GLMModel(LinearRegressorMixin, BaseEstimator):
    """What the plain and cross-validated GLMs share: the family, its
    :class:`TweedieLoss` on checked data, the mean as the prediction, and ``D^2`` as the
    score."""

    multi_output: ClassVar[bool] = False
    penalty_factor: Any  # the parameters the loss reads, declared by each estimator
    device: str

    def _family(self) -> tuple[float, str]:
        """``(power, link)``."""
        raise NotImplementedError

    def _loss(
        self, X: Any, y: np.ndarray, weights: np.ndarray | None, offset: np.ndarray | None
    ) -> TweedieLoss:
        """The estimator's :class:`TweedieLoss` on checked data."""
        power, link = self._family()
        factor = check_penalty_factor(self.penalty_factor, X.shape[1])
        options = LossOptions(
            self.fit_intercept, check_device(self.device), sample_weight=weights,
            penalty_factor=factor,
        )  # fmt: skip
        return TweedieLoss(X, y, options, power=power, link=link, offset=offset)

    def _set_fitted(self, point: PathPoint, dtype: Any) -> None:
        assert point.coef is not None
        self.coef_ = np.asarray(point.coef, dtype=dtype)
        self.intercept_ = float(np.asarray(point.intercept))
        self.n_iter_ = point.n_iter

    def predict(self, X: Any, offset: Any = None) -> np.ndarray:
        """``[n_samples]``: the predicted mean ``exp(X coef_ + intercept_ + offset)`` (log
        link) or ``X coef_ + intercept_ + offset`` (identity link).

        Args:
            X: ``[n_samples, n_features]``, dense or sparse.
            offset: ``[n_samples]`` or a number, as given to ``fit``; ``None``: none.

        Returns:
            ``[n_samples]`` means.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], reset=False
        )
        _, link = self._family()
        coef = np.asarray(self.coef_, dtype=np.float64)
        return predicted_mean(X, coef, self.intercept_, link, check_offset(offset, X.shape[0]))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """``D^2``, the share of the null model's deviance explained (scikit-learn's score of
        its GLMs; ``R^2`` for ``power = 0``).

        Args:
            X: ``[n_samples, n_features]``; y: ``[n_samples]`` in the family's range.
            sample_weight: ``[n_samples]`` weights, or ``None``.

        Returns:
            ``D^2 <= 1``.
        """
        mu = self.predict(X)
        y = np.asarray(y, dtype=np.float64)
        power, link = self._family()
        check_target(y, power, link)
        return d2(y, mu, power, check_sample_weight(sample_weight, len(y)))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        try:
            power, _ = self._family()
        except ValueError:  # an invalid power or link: refused at fit
            return tags
        tags.target_tags.positive_only = power > 0
        return tags


@dataclass(eq=False, repr=False, kw_only=True)
class _GLMRegressor(_GLMModel, SolverParams):
    """What the three regressors share: ``fit`` as a one-point path of
    :class:`~shrinkage.linear.LinearProblem` on the family's loss."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = GLM_PARAMS

    alpha: float = 1.0
    solver: str = "lbfgs"
    max_iter: int = 100
    warm_start: bool = False
    verbose: int = 0
    l1_ratio: float = 0.0
    penalty_factor: Any = None

    def fit(self, X: Any, y: Any, sample_weight: Any = None, offset: Any = None) -> Any:
        """Fit on ``X [n_samples, n_features]`` (dense or sparse) and ``y [n_samples]``.

        Args:
            X: the features; y: the targets, in the family's range (Poisson: ``>= 0``,
                Gamma: ``> 0``).
            sample_weight: ``[n_samples]`` weights, or ``None``.
            offset: ``[n_samples]`` (or a number) added to the linear predictor, such as
                ``log(exposure)``; ``None``: none.

        Returns:
            ``self``.

        Example:
            >>> import numpy as np
            >>> from shrinkage.linear import PoissonRegressor
            >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
            >>> model = PoissonRegressor(alpha=0.0).fit(X, [1, 2, 4, 8])
            >>> float(model.coef_[0].round(3))
            0.693
        """
        self._validate_params()
        X, y, weights, offset = glm_data(self, X, y, sample_weight, offset)
        with fit_threads(X):
            problem = LinearProblem(
                None, None, loss=self._loss(X, y, weights, offset), l1_ratio=self.l1_ratio,
                tol=self.tol, max_iter=self.max_iter, finish=True,
            )  # fmt: skip
            warm = None
            if self.warm_start and hasattr(self, "coef_"):
                warm = problem.state_from(self.coef_, self.intercept_)
            (point,) = path(problem, [self.alpha], initial_state=warm)
        warn_not_converged(point, f"{type(self).__name__} at alpha={self.alpha:g}")
        self._set_fitted(point, output_dtype(X))
        return self


class PoissonRegressor(_GLMRegressor):
    """Poisson regression (log link) with an Elastic-Net penalty: counts and rates.

    Args:
        alpha: the penalty's strength (``0``: none).
        l1_ratio: the L1 share of the penalty; ``0`` (the default) is scikit-learn's
            ``PoissonRegressor`` exactly.
        fit_intercept: fit an unpenalized intercept.
        solver: accepted for scikit-learn's sake; proximal Newton steps are used.
        max_iter: the most Newton steps.
        tol: stop when the optimality distance (the norm of the gradient's distance to the
            penalty's subdifferential) is at most ``tol``.
        warm_start: start from the last fit's coefficients.
        verbose: accepted for scikit-learn's sake.
        penalty_factor: ``[n_features]`` factors ``c_j >= 0`` of each coefficient's penalty
            (``0``: unpenalized), as glmnet's ``penalty.factor``.
        device: the torch device of the computation.

    Attributes: ``coef_ [n_features]``, ``intercept_``, ``n_iter_`` (Newton steps).

    Example:
        >>> import numpy as np
        >>> from shrinkage.linear import PoissonRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 5))
        >>> y = rng.poisson(np.exp(0.5 * X[:, 0]))
        >>> model = PoissonRegressor(alpha=0.1, l1_ratio=1.0).fit(X, y)
        >>> np.flatnonzero(model.coef_).tolist()
        [0]
    """

    def _family(self) -> tuple[float, str]:
        return 1.0, "log"


class GammaRegressor(_GLMRegressor):
    """Gamma regression (log link) with an Elastic-Net penalty: positive, skewed targets
    (claim amounts, durations). Parameters as :class:`PoissonRegressor`; ``y > 0``."""

    def _family(self) -> tuple[float, str]:
        return 2.0, "log"


@dataclass(eq=False, repr=False, kw_only=True)
class TweedieRegressor(_GLMRegressor):
    """Tweedie regression with an Elastic-Net penalty.

    Args:
        power: ``0`` normal, ``1`` Poisson, ``(1, 2)`` compound Poisson-Gamma, ``2`` Gamma,
            ``3`` inverse Gaussian; ``0 < power < 1`` is refused.
        link: ``"auto"`` (identity for ``power <= 0``, else log), ``"log"`` or
            ``"identity"``.
        others: as :class:`PoissonRegressor`.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {**GLM_PARAMS, **TWEEDIE_PARAMS}

    power: float = 0.0
    link: str = "auto"

    def _family(self) -> tuple[float, str]:
        return float(self.power), check_family(float(self.power), self.link)
