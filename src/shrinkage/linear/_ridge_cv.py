"""Ridge regression with ``alpha`` chosen by efficient leave-one-out cross-validation.

For the ridge fit with sample weights ``s``, centred (when an intercept is fitted) and scaled
by ``sqrt(s)``, ``X~ = U diag(d) V^T`` (thin SVD), every leave-one-out residual follows from
the full fit at each ``alpha`` without refitting: with the hat matrix
``H = U diag(d^2 / (d^2 + alpha)) U^T`` (plus the intercept's ``sqrt(s) sqrt(s)^T / sum s``),

    e_i = (y~_i - (H y~)_i) / (1 - H_ii),

which is scikit-learn's generalized cross-validation: one decomposition serves the whole
grid. With ``n >= p`` it is the thin SVD (scikit-learn's ``"svd"`` mode); with ``n < p`` the
eigendecomposition of the ``n x n`` kernel ``X~ X~^T = U diag(d^2) U^T`` (its ``"eigen"`` mode,
which its ``"auto"`` picks there), several times faster than the SVD of a wide matrix. With
``cv`` set, each ``alpha`` is scored by K-fold cross-validation of
:class:`~shrinkage.linear.Ridge` instead.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.metrics import check_scoring
from sklearn.model_selection import GridSearchCV
from sklearn.utils import check_scalar

from .._threads import threads_for
from ._base import LinearRegressorMixin
from ._common import fit_threads, output_dtype, regression_data
from ._design import gram
from ._regression import Ridge

__all__ = ["RidgeCV"]


class _Identity(BaseEstimator):
    """A fitted regressor whose predictions are its inputs, for scoring predictions that
    are already made."""

    def fit(self, X: Any, y: Any) -> _Identity:
        return self

    def predict(self, X: Any) -> Any:
        return X

    def __sklearn_is_fitted__(self) -> bool:
        return True


@dataclass(eq=False, repr=False, kw_only=True)
class RidgeCV(LinearRegressorMixin, BaseEstimator):
    """Ridge regression with ``alpha`` chosen from ``alphas`` by cross-validation.

    The objective is :class:`~shrinkage.linear.Ridge`'s. By default (``cv=None``) each alpha
    is scored by efficient leave-one-out (see the module docstring): the mean squared error,
    or ``scoring`` on the leave-one-out predictions; ``alpha_per_target`` then picks one
    alpha per target. With ``cv`` (an int or a splitter) each alpha is scored by K-fold
    cross-validation of :class:`~shrinkage.linear.Ridge`, ``scoring`` by default its ``R^2``.

    Args:
        alphas: positive strengths to try.
        fit_intercept: fit an intercept (not penalized).
        scoring: a scorer name or callable ``scorer(estimator, X, y)``; ``None`` as above.
        cv: ``None`` for leave-one-out, else as ``GridSearchCV``'s ``cv``.
        gcv_mode: accepted for scikit-learn's sake (``None``, ``"auto"``, ``"svd"``,
            ``"eigen"``): every mode is the SVD here.
        store_cv_results: keep ``cv_results_`` (leave-one-out only): squared errors
            (``scoring=None``) or predictions, ``[n_samples, (n_targets,) n_alphas]``.
        alpha_per_target: one alpha per target (leave-one-out only).

    Attributes: ``alpha_`` (a float, or ``[n_targets]``), ``best_score_``, ``coef_``
    (``[n_features]`` or ``[n_targets, n_features]``), ``intercept_``, ``cv_results_``.

    Raises:
        ValueError: an alpha that is not positive, or ``cv`` with ``store_cv_results`` or
            ``alpha_per_target``.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(50, 3))
        >>> RidgeCV(alphas=[0.1, 1.0, 10.0]).fit(X, X @ [1.0, 2.0, 0.0]).alpha_
        0.1
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alphas": ["array-like", Real],
        "fit_intercept": ["boolean"],
        "scoring": [str, callable, None],
        "cv": ["cv_object"],
        "gcv_mode": [None, str],
        "store_cv_results": ["boolean"],
        "alpha_per_target": ["boolean"],
    }

    alphas: Any = field(default=(0.1, 1.0, 10.0), kw_only=False)
    fit_intercept: bool = True
    scoring: Any = None
    cv: Any = None
    gcv_mode: str | None = None
    store_cv_results: bool = False
    alpha_per_target: bool = False

    def _grid(self) -> np.ndarray:
        """``alphas`` checked as scikit-learn checks them: each a real number, ``> 0`` for
        leave-one-out and ``>= 0`` for K-fold (a ``TypeError`` or ``ValueError`` naming
        ``alphas[i]``)."""
        bounds = "neither" if self.cv is None else "left"
        named = (
            [("alphas", self.alphas)]
            if np.ndim(self.alphas) == 0
            else [(f"alphas[{i}]", a) for i, a in enumerate(self.alphas)]
        )
        return np.array([
            float(check_scalar(a, name, Real, min_val=0.0, include_boundaries=bounds))
            for name, a in named
        ])  # fmt: skip

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> RidgeCV:
        """Choose ``alpha`` and fit with it.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (densified for the
                leave-one-out decomposition).
            y: ``[n_samples]`` or ``[n_samples, n_targets]``.
            sample_weight: ``[n_samples]`` non-negative weights, or ``None``.

        Returns:
            ``self``.
        """
        self._validate_params()
        alphas = self._grid()
        if self.cv is not None:
            return self._fit_kfold(X, y, sample_weight, alphas)
        X, y, weights = regression_data(self, X, y, sample_weight)
        if sparse.issparse(X):
            warnings.warn(
                f"RidgeCV's leave-one-out densifies the sparse X ({X.shape[0]} x {X.shape[1]}, "
                f"{X.shape[0] * X.shape[1] * 8 / 1e6:.1f} MB); pass cv=5 for K-fold on sparse X",
                UserWarning,
                stacklevel=2,
            )
        dense = X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=np.float64)
        with fit_threads(X):
            _LeaveOneOut(self, dense, y, weights).fit(alphas)
        dtype = output_dtype(X)
        self.coef_ = np.asarray(self.coef_, dtype=dtype)
        return self

    def _fit_kfold(self, X: Any, y: Any, sample_weight: Any, alphas: np.ndarray) -> RidgeCV:
        if self.store_cv_results:
            raise ValueError("cv!=None and store_cv_results=True are incompatible")
        if self.alpha_per_target:
            raise ValueError("cv!=None and alpha_per_target=True are incompatible")
        search = GridSearchCV(
            Ridge(fit_intercept=self.fit_intercept), {"alpha": alphas}, cv=self.cv,
            scoring=self.scoring,
        )  # fmt: skip
        search.fit(X, y, sample_weight=sample_weight)
        best = search.best_estimator_
        self.alpha_: Any = float(search.best_params_["alpha"])
        self.best_score_: Any = search.best_score_
        self.coef_, self.intercept_ = best.coef_, best.intercept_
        self.n_features_in_ = best.n_features_in_
        if hasattr(best, "feature_names_in_"):
            self.feature_names_in_ = best.feature_names_in_
        return self


def decompose(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(U, d, V^T)`` with ``X = U diag(d) V^T`` for ``X [n, p]``.

    With ``n >= p``, the thin SVD (``U [n, p]``, ``V^T [p, p]``); with ``n < p``, the
    eigendecomposition of ``X X^T`` (``U [n, n]``, ``d = sqrt(max(eigenvalues, 0))``, no
    ``V^T``), which costs ``n^2 p`` and an ``n x n`` eigensolver instead of the SVD of a wide
    matrix. Both run on the threads their work is worth, not the one that a single pass over
    ``X`` is worth.

    Args:
        X: the centred, weighted design, float64.

    Returns:
        ``U [n, r]``, ``d [r]`` and ``V^T [r, p]`` or ``None``, with ``r = min(n, p)``.

    Example:
        >>> X = torch.randn(4, 9, dtype=torch.float64)
        >>> U, d, _ = decompose(X)
        >>> torch.allclose(U @ torch.diag(d**2) @ U.T, X @ X.T)
        True
    """
    n, p = X.shape
    with threads_for(n * p * min(n, p)):
        if n >= p:
            return torch.linalg.svd(X, full_matrices=False)
        eigenvalues, U = torch.linalg.eigh(gram(X.T))
        return U, eigenvalues.clamp(min=0).sqrt(), None


class _LeaveOneOut:
    """Leave-one-out over a grid of alphas from one decomposition (see the module docstring)."""

    def __init__(
        self, estimator: RidgeCV, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None
    ) -> None:
        self.estimator, self.y = estimator, y
        n = X.shape[0]
        s = np.ones(n) if weights is None else weights
        self.weighted = weights is not None
        self.root = torch.as_tensor(np.sqrt(s))
        fit_intercept = estimator.fit_intercept
        self.x_mean = s @ X / s.sum() if fit_intercept else np.zeros(X.shape[1])
        self.y_mean = s @ y / s.sum() if fit_intercept else np.zeros(y.shape[1:])
        Xc = torch.as_tensor(X - self.x_mean) * self.root[:, None]
        Y = torch.as_tensor(y - self.y_mean).reshape(n, -1)
        self.Y = Y * self.root[:, None]
        self.U, self.d, self.Vt = decompose(Xc)
        self.Xc = Xc if self.Vt is None else None  # what coef() needs without V
        self.U2 = self.U**2  # the hat matrix's diagonal at every alpha is U2 @ shrink
        self.UtY = self.U.T @ self.Y
        self.Ut_root = self.U.T @ self.root
        self.long = X.shape[0] > X.shape[1]

    def residuals(self, alpha: float) -> torch.Tensor:
        """The leave-one-out residuals ``[n, targets]`` at ``alpha``."""
        d2 = self.d**2
        shrink = alpha / (d2 + alpha)
        U, Y, root = self.U, self.Y, self.root
        if self.long:  # (I - H) = U diag(shrink - 1) U^T + I on the complement of U
            residual = U @ ((shrink - 1)[:, None] * self.UtY) + Y
            diagonal = self.U2 @ (shrink - 1) + 1
            free = U @ ((shrink - 1) * self.Ut_root) + root
        else:
            residual = U @ (shrink[:, None] * self.UtY)
            diagonal = self.U2 @ shrink
            free = U @ (shrink * self.Ut_root)
        if self.estimator.fit_intercept:  # the intercept's direction is not penalized
            diagonal = diagonal - free * root / (root @ root)
        return residual / diagonal[:, None]

    def coef(self, alphas: np.ndarray) -> torch.Tensor:
        """``[p, targets]``: each target's fit at its alpha (``alphas [targets]`` or ``[1]``),
        ``V diag(d / (d^2 + alpha)) U^T y~``; without ``V`` (``n < p``), the same as
        ``X~^T U diag(1 / (d^2 + alpha)) U^T y~``, as scikit-learn's "eigen" mode forms it."""
        alpha = torch.tensor(np.broadcast_to(alphas, (self.Y.shape[1],)), dtype=torch.float64)
        inverse = 1 / (self.d[:, None] ** 2 + alpha[None, :])  # [r, targets]
        if self.Vt is not None:
            return self.Vt.T @ (self.d[:, None] * inverse * self.UtY)
        assert self.Xc is not None
        return self.Xc.T @ (self.U @ (inverse * self.UtY))

    def score(self, looe: torch.Tensor) -> Any:
        """The estimator's score of the leave-one-out residuals (higher is better), one per
        target with ``alpha_per_target``; and what ``cv_results_`` keeps."""
        est = self.estimator
        if est.scoring is None:
            squared = looe**2
            mean = -squared.mean(0) if est.alpha_per_target else -squared.mean()
            return mean.numpy(), squared.numpy()
        scaled = self.Y - looe
        if self.weighted:
            scaled = scaled / self.root[:, None]
        predictions = scaled.numpy() + np.reshape(self.y_mean, (1, -1))
        scorer, y = check_scoring(_Identity(), scoring=est.scoring), self.y.reshape(len(self.y), -1)
        weights = {"sample_weight": (self.root**2).numpy()} if self.weighted else {}
        if est.alpha_per_target:
            per = np.array(
                [
                    scorer(_Identity(), predictions[:, k], y[:, k], **weights)
                    for k in range(y.shape[1])
                ]
            )
        else:
            shaped = predictions[:, 0] if self.y.ndim == 1 else predictions
            per = np.asarray(scorer(_Identity(), shaped, self.y, **weights))
        return per, predictions

    def fit(self, alphas: np.ndarray) -> None:
        """Score every alpha, keep the best (per target with ``alpha_per_target``), and set
        the estimator's attributes."""
        est, targets = self.estimator, self.Y.shape[1]
        per_target = est.alpha_per_target and targets > 1
        best_score = np.full(targets if per_target else 1, -np.inf)
        best_alpha = np.zeros_like(best_score)
        kept = []
        for alpha in alphas:
            looe = self.residuals(float(alpha))
            scores, results = self.score(looe)
            kept.append(results)
            score = np.atleast_1d(scores)  # one per target, or one (a single target's too)
            better = score > best_score if per_target else score[:1] > best_score[:1]
            best_score = np.where(better, score if per_target else score[:1], best_score)
            best_alpha = np.where(better, alpha, best_alpha)
        self._set(self.coef(best_alpha).numpy(), best_alpha, best_score, kept)

    def _set(self, coef: np.ndarray, alpha: np.ndarray, score: np.ndarray, kept: list[Any]) -> None:
        est, one = self.estimator, self.y.ndim == 1 or self.y.shape[1] == 1
        est.coef_ = coef[:, 0] if one else coef.T
        est.intercept_ = 0.0  # scikit-learn's, for every shape of y
        if est.fit_intercept:
            intercept = self.y_mean - self.x_mean @ coef
            est.intercept_ = float(np.ravel(intercept)[0]) if self.y.ndim == 1 else intercept
        per_target = est.alpha_per_target and not one
        est.alpha_ = alpha if per_target else float(alpha[0])
        est.best_score_ = score if per_target else float(score[0])
        if est.store_cv_results:
            stacked = np.stack([np.asarray(k).reshape(len(self.y), -1) for k in kept], -1)
            est.cv_results_ = stacked[:, 0, :] if self.y.ndim == 1 else stacked
