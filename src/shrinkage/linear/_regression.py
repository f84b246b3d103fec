"""Least squares with an Elastic-Net, Lasso or ridge penalty: scikit-learn's ``ElasticNet``,
``Lasso`` and ``Ridge``, solved in torch.

Every ``fit`` takes ``sample_weight``; ``X`` may be a scipy sparse matrix (CSR or CSC, never
densified); ``y`` may have several columns (targets, each fitted on its own); ``positive=True``
constrains the coefficients to be ``>= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from .._validation import check_device
from ..path import PathPoint, path
from ._base import LinearRegressorMixin
from ._common import (
    check_penalty_factor,
    check_precomputed_gram,
    fit_threads,
    least_squares,
    output_dtype,
    regression_data,
    row_mean,
    warn_not_converged,
)
from ._design import GramStats, SparseDesign
from ._params import ACCEPTED, COMMON, CoordinateDescentParams, SolverParams, lasso_constraints
from ._problem import LinearProblem, as_problem_kwargs

__all__ = ["ElasticNet", "Lasso", "Ridge"]


GRAM_FEATURES = 64
"""Up to this many features a single fit forms the Gram matrix whatever ``precompute`` says."""


def single_fit_gram(X: Any, precompute: Any) -> bool:
    """Whether one fit of the squared loss on ``X [n, p]`` keeps ``X^T X`` (``n p^2``
    operations, once) rather than the centred columns and the Gram rows of its working sets
    (``n p k`` for ``k`` features used, plus ``2 n p`` per optimality check): with ``n >= p``
    when ``precompute`` asks for it or ``p <= GRAM_FEATURES``. A path or cross-validation,
    which reuses the Gram matrix at every strength, keeps it whenever ``n >= p``."""
    n, p = X.shape
    asked = precompute is True or not isinstance(precompute, bool | str)
    return n >= p and (asked or p <= GRAM_FEATURES)


def _targets(y: np.ndarray) -> list[np.ndarray]:
    return [y] if y.ndim == 1 else [y[:, k] for k in range(y.shape[1])]


class _LinearRegressorBase(LinearRegressorMixin, BaseEstimator):
    """Shared by Lasso and ElasticNet: a one-point path of the squared-loss problem per
    target."""

    l1_ratio: float  # a parameter of ElasticNet, fixed at 1 by Lasso

    def fit(self, X: Any, y: Any, sample_weight: Any = None, check_input: bool = True) -> Any:
        """Fit the model, one target at a time.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (CSR or CSC).
            y: ``[n_samples]`` or ``[n_samples, n_targets]``.
            sample_weight: ``[n_samples]``, or ``None`` for ones.
            check_input: accepted for scikit-learn's sake; the input is always checked.

        Returns:
            ``self``.
        """
        self._validate_params()
        check_device(self.device)
        X, y, weights = regression_data(self, X, y, sample_weight)
        with fit_threads(X):  # on the threads the data are worth
            check_precomputed_gram(self.precompute, X, weights, self.fit_intercept)
            targets = _targets(y)
            warm = self._warm_start(X.shape[1], len(targets))
            points: list[PathPoint] = []
            factor = check_penalty_factor(self.penalty_factor, X.shape[1])
            shared = None if factor is not None else self._shared_gram(X, y, weights)
            for k, target in enumerate(targets):
                stats = None if shared is None else shared[k]
                problem = self._problem(X, target, weights, stats, factor)
                start = None if warm is None else problem.state_from(warm[k], 0.0)
                (point,) = path(problem, [float(self.alpha)], initial_state=start)
                warn_not_converged(point, type(self).__name__)
                points.append(point)
            self._set_fitted(points, y.ndim, output_dtype(X))
            return self

    def _shared_gram(
        self, X: Any, y: np.ndarray, weights: np.ndarray | None
    ) -> list[GramStats] | None:
        """For several targets with ``n >= p``: ``X^T X`` computed once for all of them."""
        if y.ndim == 1 or X.shape[0] < X.shape[1]:
            return None
        first = GramStats.of(X, y[:, 0], weights, torch.device(self.device))
        out = [first]
        s = np.ones(X.shape[0]) if weights is None else weights
        for k in range(1, y.shape[1]):
            yk = y[:, k]
            Xty = X.T @ (s * yk)
            out.append(
                GramStats(
                    first.XtX, torch.as_tensor(np.asarray(Xty).ravel(), device=first.XtX.device),
                    float(s @ (yk * yk)), first.x_sum, float(s @ yk), first.n, first.rows,
                )
            )  # fmt: skip
        return out

    def _problem(
        self,
        X: Any,
        y: np.ndarray,
        weights: np.ndarray | None,
        stats: GramStats | None,
        factor: np.ndarray | None = None,
    ) -> LinearProblem:
        l1_ratio, positive = float(self.l1_ratio), bool(self.positive)
        if stats is not None:
            return LinearProblem.from_stats(
                stats, l1_ratio=l1_ratio, fit_intercept=self.fit_intercept, tol=self.tol,
                max_iter=self.max_iter, positive=positive, finish=True, penalty_factor=factor,
            )  # fmt: skip
        return LinearProblem(
            X, y, loss="squared", l1_ratio=l1_ratio, sample_weight=weights, positive=positive,
            finish=True, penalty_factor=factor, gram=single_fit_gram(X, self.precompute),
            **as_problem_kwargs(self),
        )  # fmt: skip

    def _warm_start(self, n_features: int, n_targets: int) -> list[np.ndarray] | None:
        """The coefficients to start from under ``warm_start`` (also ones set by hand)."""
        if not self.warm_start or not hasattr(self, "coef_"):
            return None
        coef = np.atleast_2d(np.asarray(self.coef_, dtype=float))
        if coef.shape != (n_targets, n_features):
            return None
        return list(coef)

    def _set_fitted(self, points: list[PathPoint], y_ndim: int, dtype: Any) -> None:
        """The fitted attributes in scikit-learn's shapes: one target (``y`` 1-D, or one
        column) gives a 1-D ``coef_`` and scalar ``n_iter_`` and ``dual_gap_``; the intercept
        is a scalar for a 1-D ``y`` and ``[n_targets]`` otherwise."""
        coefs = [np.asarray(p.coef, dtype=dtype) for p in points]
        intercepts = [float(np.asarray(p.intercept)) for p in points]
        if not self.fit_intercept:
            intercepts = [0.0 for _ in points]
        if len(points) == 1:
            self.coef_: np.ndarray = coefs[0]
            self.intercept_: Any = (
                dtype(intercepts[0]) if y_ndim == 1 else np.array(intercepts, dtype=dtype)
            )
            self.n_iter_: Any = points[0].n_iter
            self.dual_gap_: Any = points[0].criterion
        else:
            self.coef_ = np.array(coefs, dtype=dtype)
            self.intercept_ = np.array(intercepts, dtype=dtype)
            self.n_iter_ = [p.n_iter for p in points]
            self.dual_gap_ = np.array([p.criterion for p in points])
        self.path_ = points


_ENET: dict[str, list[Any]] = {
    "alpha": [Interval(Real, 0, None, closed="left")],
    "penalty_factor": ["array-like", None],
    "l1_ratio": [Interval(Real, 0, 1, closed="both")],
    "warm_start": ["boolean"],
    "positive": ["boolean"],
    **COMMON,
    **{k: v for k, v in ACCEPTED.items() if k not in ("n_jobs", "verbose")},
}


@dataclass(eq=False, repr=False, kw_only=True)
class ElasticNet(_LinearRegressorBase, SolverParams, CoordinateDescentParams):
    """Linear regression with the Elastic-Net penalty (scikit-learn's objective)::

        sum_i s_i (y_i - x_i^T w - b)^2 / (2 sum s) + alpha * l1_ratio * ||w||_1
                                                    + alpha * (1 - l1_ratio) / 2 * ||w||_2^2

    with sample weights ``s`` (1 by default) and ``w >= 0`` under ``positive=True``. Solved
    with working sets, accelerated proximal gradient and Newton's method on the support,
    stopping on the duality gap (``gap <= tol * sum s (y - mean(y))^2 / sum s``).

    The ridge part is ``alpha * (1 - l1_ratio) / 2 * ||w||^2``, as in scikit-learn. The penalty
    :class:`shrinkage.ElasticNet` (Keras's convention, no ``1/2``) weighs it twice as much at
    the same numbers: this objective is ``shrinkage.ElasticNet(lam, l1_ratio')`` with
    ``lam = alpha * (1 + l1_ratio) / 2`` and ``l1_ratio' = 2 * l1_ratio / (1 + l1_ratio)``.

    ``penalty_factor`` (``[n_features]``, each ``c_j >= 0``; glmnet's ``penalty.factor``
    without its rescaling) weighs feature ``j``'s penalty by ``c_j``: ``alpha * c_j *
    (l1_ratio |w_j| + (1 - l1_ratio) / 2 w_j^2)``, ``c_j = 0`` leaving it unpenalized, and
    the fit stops on the optimality distance (``<= tol * ||X^T S y|| / sum s``, held in
    ``dual_gap_``) instead of the gap. For the lasso a factor ``c`` on feature ``j`` is the
    plain lasso on ``X[:, j] / c``.

    ``precompute``, ``copy_X``, ``random_state`` and ``selection`` are accepted for
    scikit-learn's sake and do not change the answer.

    Attributes: ``coef_ [n_features]`` (``[n_targets, n_features]`` for several targets),
    ``intercept_``, ``n_iter_``, ``dual_gap_``, ``sparse_coef_``, ``path_`` (the path points of
    the fit, one per target).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = _ENET

    alpha: float = field(default=1.0, kw_only=False)
    l1_ratio: float = 0.5
    precompute: Any = False
    warm_start: bool = False
    positive: bool = False
    penalty_factor: Any = None


@dataclass(eq=False, repr=False, kw_only=True)
class Lasso(ElasticNet):
    """Lasso: ``sum_i s_i (y_i - x_i^T w - b)^2 / (2 sum s) + alpha * ||w||_1`` (ElasticNet
    with ``l1_ratio=1``). Same parameters and attributes as :class:`ElasticNet`."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = lasso_constraints(_ENET)

    l1_ratio: float = field(default=1.0, init=False)


@dataclass(eq=False, repr=False, kw_only=True)
class Ridge(LinearRegressorMixin, BaseEstimator, SolverParams):
    """Ridge regression, scikit-learn's objective ``sum_i s_i (y_i - x_i^T w - b)^2 + alpha *
    ||w||_2^2`` with sample weights ``s``, solved exactly in torch: a Cholesky factorisation
    of ``X^T S X + alpha I`` (``n >= p``) or of ``X X^T + alpha I`` (``p > n``), the
    minimum-norm least-squares solution when ``alpha = 0``. ``alpha`` may give one value per
    target. Under ``positive=True`` each target is solved by the penalized solver instead.

    ``X`` may be sparse (its products are formed without densifying it). ``solver``,
    ``max_iter``, ``copy_X`` and ``random_state`` are accepted for scikit-learn's sake.

    Attributes: ``coef_ [n_features]`` or ``[n_targets, n_features]``, ``intercept_`` (a float,
    or ``[n_targets]``), ``n_iter_`` (``None`` for the direct solve), ``solver_``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(Real, 0, None, closed="left"), np.ndarray],
        "fit_intercept": ["boolean"],
        "copy_X": ["boolean"],
        "max_iter": [Interval(Real, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "solver": [
            StrOptions({"auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga", "lbfgs"})
        ],
        "positive": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
    }

    alpha: Any = field(default=1.0, kw_only=False)
    copy_X: bool = True
    max_iter: int | None = None  # type: ignore[assignment]  # scikit-learn: None, unused
    solver: str = "auto"
    positive: bool = False
    random_state: Any = None

    def _alphas(self, n_targets: int) -> np.ndarray:
        alphas = np.atleast_1d(np.asarray(self.alpha, dtype=np.float64))
        if alphas.ndim != 1 or alphas.size not in (1, n_targets):
            raise ValueError(
                "Number of targets and number of penalties do not correspond: "
                f"{alphas.size} != {n_targets}"
            )
        if np.any(alphas < 0):
            raise ValueError(f"alpha must be >= 0 (one per target or one for all); got {alphas}")
        return np.broadcast_to(alphas, (n_targets,)).copy()

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> Ridge:
        """Fit the model, one target at a time.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (CSR or CSC).
            y: ``[n_samples]`` or ``[n_samples, n_targets]``.
            sample_weight: ``[n_samples]``, or ``None`` for ones.

        Returns:
            ``self``.

        Raises:
            ValueError: an ``alpha`` array whose length is not the number of targets, or
                ``positive=True`` with a solver other than ``"auto"`` or ``"lbfgs"``.
        """
        self._validate_params()
        device = check_device(self.device)
        X, y, weights = regression_data(self, X, y, sample_weight)
        with fit_threads(X):  # on the threads the data are worth
            Y = y.reshape(len(y), -1)
            alphas = self._alphas(Y.shape[1])
            n_iter: np.ndarray | None = None  # a direct solve, as scikit-learn's cholesky
            if self.positive:
                if self.solver not in ("auto", "lbfgs"):
                    raise ValueError(
                        f"solver='{self.solver}' does not support positive fitting. Please set the "
                        "solver to 'auto' or 'lbfgs', or set `positive=False`"
                    )
                coef, intercept, n_iter = self._positive(X, Y, weights, alphas)
            else:
                coef, intercept = _ridge_solve(X, Y, weights, alphas, self.fit_intercept, device)
            dtype = output_dtype(X)
            one_column = y.ndim == 1 or Y.shape[1] == 1  # scikit-learn's coef_ is then 1-D
            self.coef_ = (coef[0] if one_column else coef).astype(dtype)
            self.intercept_ = dtype(intercept[0]) if y.ndim == 1 else intercept.astype(dtype)
            self.n_iter_ = n_iter
            self.solver_ = "proximal" if self.positive else "cholesky"
            return self

    def _positive(
        self, X: Any, Y: np.ndarray, weights: np.ndarray | None, alphas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each target by the penalized solver, ``w >= 0``: the objective divided by
        ``2 sum s`` is the Elastic Net's with ``l1_ratio = 0`` and ``alpha / sum s``. It stops
        as scikit-learn's ``lbfgs`` does, when the projected gradient of the objective (halved)
        is at most ``tol`` (its Euclidean norm, which bounds the largest entry)."""
        total = X.shape[0] if weights is None else weights.sum()
        coefs, intercepts, iterations = [], [], []
        for k in range(Y.shape[1]):
            problem = LinearProblem(
                X, Y[:, k], loss="squared", l1_ratio=0.0, fit_intercept=self.fit_intercept,
                tol=self.tol / total, max_iter=int(self.max_iter or 10_000),
                device=self.device, sample_weight=weights, positive=True, gradient_tol=True,
                finish=True,
            )  # fmt: skip
            (point,) = path(problem, [float(alphas[k]) / total])
            warn_not_converged(point, "Ridge")
            coefs.append(np.asarray(point.coef))
            intercepts.append(float(np.asarray(point.intercept)) if self.fit_intercept else 0.0)
            iterations.append(point.n_iter)
        return np.array(coefs), np.array(intercepts), np.array(iterations)


def _ridge_solve(
    X: Any,
    Y: np.ndarray,
    weights: np.ndarray | None,
    alphas: np.ndarray,
    fit_intercept: bool,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """``coef [targets, p]`` and ``intercept [targets]`` of the ridge, exactly."""
    n, p = X.shape
    s = np.ones(n) if weights is None else weights
    x_mean = np.zeros(p)
    y_mean = np.zeros(Y.shape[1])
    if fit_intercept:
        x_mean = row_mean(X, s)
        y_mean = s @ Y / s.sum()
    root = np.sqrt(s)
    Yc = torch.as_tensor(root[:, None] * (Y - y_mean), device=device)
    if sparse.issparse(X):  # the centred, weighted products without densifying X
        design = SparseDesign(X, x_mean, root)
        gram = design.gram() if n >= p else None
        rhs = design.rmatvec(Yc.cpu()).to(device)
        outer = None if n >= p else _row_gram(design).to(device)
        Xc = None
    else:
        Xc = torch.as_tensor(root[:, None] * (X - x_mean), device=device)
        gram = Xc.T @ Xc if n >= p else None
        rhs = Xc.T @ Yc
        outer = None if n >= p else Xc @ Xc.T
    coefs = []
    for k, alpha in enumerate(alphas):
        if alpha == 0 and Xc is not None:
            coefs.append(least_squares(Xc, Yc[:, k : k + 1]).flatten())
        elif gram is not None:
            coefs.append(_spd_solve(gram.to(device) + alpha * _eye(p, device), rhs[:, k]))
        else:
            assert outer is not None
            dual = _spd_solve(outer + alpha * _eye(n, device), Yc[:, k])
            coefs.append(_transpose_times(X, Xc, x_mean, root, dual, device))
    coef = torch.stack(coefs).cpu().numpy()
    intercept = y_mean - coef @ x_mean if fit_intercept else np.zeros(Y.shape[1])
    return coef, intercept


def _eye(size: int, device: torch.device) -> torch.Tensor:
    return torch.eye(size, dtype=torch.float64, device=device)


def _row_gram(design: SparseDesign) -> torch.Tensor:
    """``Z Z^T`` of a sparse design, ``[n, n]``."""
    return design @ design.rmatvec(torch.eye(design.shape[0], dtype=torch.float64))


def _transpose_times(
    X: Any, Xc: torch.Tensor | None, x_mean: np.ndarray, root: np.ndarray, v: torch.Tensor,
    device: torch.device,
) -> torch.Tensor:  # fmt: skip
    """``Z^T v`` of the centred, weighted design."""
    if Xc is not None:
        return Xc.T @ v
    return SparseDesign(X, x_mean, root).rmatvec(v.cpu()).to(device)


def _spd_solve(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``A^{-1} b`` for a symmetric positive semi-definite ``A``: Cholesky, or the
    minimum-norm solution when ``A`` is singular."""
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return torch.cholesky_solve(b[:, None], L).flatten()
    return least_squares(A, b[:, None]).flatten()
