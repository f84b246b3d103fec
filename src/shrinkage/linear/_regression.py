"""Least squares with an Elastic-Net, Lasso or ridge penalty: scikit-learn's ``ElasticNet``,
``Lasso`` and ``Ridge``, solved in torch."""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_device
from ..path import path
from ._common import COMMON, warn_not_converged
from ._problem import LinearProblem, as_problem_kwargs, as_tensor

__all__ = ["ElasticNet", "Lasso", "Ridge"]


class _LinearRegressorBase(RegressorMixin, BaseEstimator):
    """Shared by Lasso and ElasticNet: a one-point path of the squared-loss problem."""

    def _l1_ratio(self) -> float:
        raise NotImplementedError

    def fit(self, X: Any, y: Any) -> Any:
        """Fit on ``X [n_samples, n_features]``, ``y [n_samples]``; returns ``self``."""
        self._validate_params()
        check_device(self.device)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        problem = LinearProblem(
            X, y, loss="squared", l1_ratio=self._l1_ratio(), **as_problem_kwargs(self)
        )
        warm = None
        if self.warm_start and hasattr(self, "coef_") and self.coef_.shape == (X.shape[1],):
            warm = problem.state_from(self.coef_, self.intercept_)
        (point,) = path(problem, [float(self.alpha)], initial_state=warm)
        warn_not_converged(point, type(self).__name__)
        assert point.coef is not None
        self.coef_: np.ndarray = point.coef
        assert isinstance(point.intercept, float)  # the squared loss has one intercept
        self.intercept_: float = point.intercept
        self.n_iter_ = point.n_iter
        self.dual_gap_ = point.criterion
        self.path_ = [point]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape ``[n_samples]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_

    @property
    def sparse_coef_(self) -> Any:
        from scipy import sparse

        return sparse.csr_matrix(self.coef_[None, :])


class ElasticNet(_LinearRegressorBase):
    """Linear regression with the Elastic-Net penalty (scikit-learn's objective)::

        ||y - X w - b||^2 / (2 n) + alpha * l1_ratio * ||w||_1
                                  + alpha * (1 - l1_ratio) / 2 * ||w||_2^2

    Solved with working sets, accelerated proximal gradient and Newton polishing on the
    support, stopping on the duality gap (``gap <= tol * ||y - mean(y)||^2 / n``).

    The ridge part is ``alpha * (1 - l1_ratio) / 2 * ||w||^2``, as in scikit-learn. The penalty
    :class:`shrinkage.ElasticNet` (Keras's convention, no ``1/2``) weighs it twice as much at
    the same numbers: this objective is ``shrinkage.ElasticNet(lam, l1_ratio')`` with
    ``lam = alpha * (1 + l1_ratio) / 2`` and ``l1_ratio' = 2 * l1_ratio / (1 + l1_ratio)``.

    Attributes: ``coef_ [n_features]``, ``intercept_``, ``n_iter_``, ``dual_gap_``, ``path_``
    (the one :class:`~shrinkage.path.PathPoint` of the fit).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "warm_start": ["boolean"],
        **COMMON,
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        l1_ratio: float = 0.5,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
        device: str = "cpu",
    ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.device = device

    def _l1_ratio(self) -> float:
        return float(self.l1_ratio)


class Lasso(ElasticNet):
    """Lasso: ``||y - X w - b||^2 / (2 n) + alpha * ||w||_1`` (ElasticNet with
    ``l1_ratio=1``). Same attributes as :class:`ElasticNet`."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        k: v for k, v in ElasticNet._parameter_constraints.items() if k != "l1_ratio"
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
        device: str = "cpu",
    ) -> None:
        super().__init__(
            alpha=alpha,
            l1_ratio=1.0,
            fit_intercept=fit_intercept,
            max_iter=max_iter,
            tol=tol,
            warm_start=warm_start,
            device=device,
        )

    def _l1_ratio(self) -> float:
        return 1.0

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.pop("l1_ratio", None)
        return params


class Ridge(RegressorMixin, BaseEstimator):
    """Ridge regression, scikit-learn's objective ``||y - X w - b||^2 + alpha * ||w||_2^2``,
    solved exactly by a Cholesky factorisation in torch (of ``X^T X + alpha I`` when
    ``n >= p``, of ``X X^T + alpha I`` otherwise).

    Attributes: ``coef_ [n_features]``, ``intercept_``, ``n_iter_`` (``None``: direct solve).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "device": [str, torch.device],
    }

    def __init__(
        self, alpha: float = 1.0, *, fit_intercept: bool = True, device: str = "cpu"
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.device = device

    def fit(self, X: Any, y: Any) -> Ridge:
        """Fit on ``X [n_samples, n_features]``, ``y [n_samples]``; returns ``self``."""
        self._validate_params()
        device = check_device(self.device)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        Xt = as_tensor(X, device)
        yt = as_tensor(y, device)
        x_mean = (
            Xt.mean(0)
            if self.fit_intercept
            else torch.zeros(Xt.shape[1], dtype=torch.float64, device=device)
        )
        y_mean = (
            yt.mean() if self.fit_intercept else torch.zeros((), dtype=torch.float64, device=device)
        )
        Xc, yc = Xt - x_mean, yt - y_mean
        n, p = Xc.shape
        if n >= p:
            A = Xc.T @ Xc + self.alpha * torch.eye(p, dtype=torch.float64, device=device)
            coef = _spd_solve(A, Xc.T @ yc)
        else:
            A = Xc @ Xc.T + self.alpha * torch.eye(n, dtype=torch.float64, device=device)
            coef = Xc.T @ _spd_solve(A, yc)
        self.coef_ = coef.cpu().numpy()
        self.intercept_ = float(y_mean - x_mean @ coef)
        self.n_iter_ = None
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape ``[n_samples]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_


def _spd_solve(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return torch.cholesky_solve(b[:, None], L).flatten()
    return torch.linalg.lstsq(
        A, b[:, None]
    ).solution.flatten()  # singular: alpha = 0, rank-deficient X
