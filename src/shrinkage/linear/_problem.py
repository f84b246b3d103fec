"""The linear models as a :class:`~shrinkage.path.PathProblem`.

Every linear model here minimises a data term plus ``lam * r(w)`` with the Elastic-Net ``r``
of scikit-learn::

    r(w) = l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2^2

* squared loss: ``||y - Xw - b||^2 / (2n) + alpha * r(w)`` (``lam = alpha``: Lasso,
  ElasticNet);
* logistic / multinomial loss: ``mean_i loss_i + r(w) / (C n)`` (``lam = 1 / (C n)``), which
  is scikit-learn's ``C * sum_i loss_i + r(w)`` divided by ``C n``.

Intercepts are never penalized: centered data for the squared loss, a free coordinate for the
others. Everything is computed in float64 on ``device``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..path import Evaluation, FitInfo
from ..penalties import ElasticNet as ElasticNetPenalty
from ._datafits import Logistic, Multinomial, Quadratic
from ._solver import solve


@dataclass(frozen=True)
class GramStats:
    """Sufficient statistics of least squares on ``(X [n, p], y [n])``: ``X^T X``, ``X^T y``,
    ``y^T y``, the column sums of ``X``, the sum of ``y`` and ``n``. Subtracting a fold's
    statistics from the whole data's gives the statistics of the rest."""

    XtX: Tensor
    Xty: Tensor
    yy: float
    x_sum: Tensor
    y_sum: float
    n: int

    @classmethod
    def of(cls, X: Tensor, y: Tensor) -> GramStats:
        return cls(X.T @ X, X.T @ y, float(y @ y), X.sum(0), float(y.sum()), X.shape[0])

    def __add__(self, other: GramStats) -> GramStats:
        return GramStats(
            self.XtX + other.XtX,
            self.Xty + other.Xty,
            self.yy + other.yy,
            self.x_sum + other.x_sum,
            self.y_sum + other.y_sum,
            self.n + other.n,
        )

    def squared_error(self, coef: Tensor, intercept: float) -> float:
        """``||y - X coef - intercept||^2`` of the data these statistics summarise."""
        b = intercept
        yb = self.yy - 2 * b * self.y_sum + self.n * b * b
        cross = float(coef @ self.Xty) - b * float(coef @ self.x_sum)
        return yb - 2 * cross + float(coef @ (self.XtX @ coef))

    def __sub__(self, other: GramStats) -> GramStats:
        return GramStats(
            self.XtX - other.XtX,
            self.Xty - other.Xty,
            self.yy - other.yy,
            self.x_sum - other.x_sum,
            self.y_sum - other.y_sum,
            self.n - other.n,
        )


def as_tensor(a: np.ndarray, device: torch.device | str) -> Tensor:
    """A float64 tensor on ``device`` from an array, copying read-only arrays (memory maps)
    rather than aliasing memory that torch could write to."""
    array = np.require(a, dtype=np.float64, requirements=["C", "W"])
    return torch.as_tensor(array, device=device)


def enet_penalty(lam: float, l1_ratio: float, factor: Tensor | None) -> ElasticNetPenalty:
    """``lam * r(w)`` as shrinkage's ``ElasticNet(lam', r')``:
    ``lam' = lam * (1 + l1_ratio) / 2`` and ``r' = 2 * l1_ratio / (1 + l1_ratio)``."""
    return ElasticNetPenalty(
        lam * (1.0 + l1_ratio) / 2.0, 2.0 * l1_ratio / (1.0 + l1_ratio), factor=factor
    )


def enet_duality_gap(datafit: Quadratic, w: Tensor, l1: float, l2: float) -> float:
    """Duality gap of ``||R||^2 / (2n) + l1 * ||w||_1 + l2 / 2 * ||w||^2``, ``R = y - Xw``.

    The dual point is the residual scaled into the dual-feasible set
    ``||X^T theta - n * l2 * w||_inf <= n * l1`` (Lagrangian dual of the Elastic Net with the
    ridge part folded into the design).
    """
    n = datafit.n
    XtR, r_norm2, r_y = datafit.residual_terms(w)
    XtA = XtR - n * l2 * w
    dual_norm = float(XtA.abs().max()) if XtA.numel() else 0.0
    if dual_norm > n * l1:
        const = n * l1 / dual_norm
        gap = 0.5 * (r_norm2 + r_norm2 * const**2)
    else:
        const = 1.0
        gap = r_norm2
    w_norm2 = float(w @ w)
    gap += n * l1 * float(w.abs().sum()) - const * r_y + 0.5 * n * l2 * (1.0 + const**2) * w_norm2
    return gap / n


class LinearProblem:
    """A linear model, its data and solver settings: what :func:`shrinkage.path` fits.

    Args:
        X: ``[n, p]`` features; y: ``[n]`` targets (class indices ``0..K-1`` for classifiers).
        loss: ``"squared"``, ``"logistic"`` (binary) or ``"multinomial"``.
        l1_ratio: the mix of ``r(w)``.
        fit_intercept, tol, max_iter: as in scikit-learn.
        n_classes: for ``"multinomial"``.
        device: torch device for the computation.
    """

    factor: Tensor | None
    """Per-coordinate penalty factor: 0 on intercepts (``None``: all 1)."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        *,
        loss: str,
        l1_ratio: float,
        fit_intercept: bool,
        tol: float,
        max_iter: int,
        n_classes: int = 2,
        device: str | torch.device = "cpu",
    ) -> None:
        self.loss, self.l1_ratio, self.fit_intercept = loss, float(l1_ratio), fit_intercept
        self.tol, self.max_iter = tol, max_iter
        self.device = torch.device(device)
        self.n, self.p = X.shape
        self.n_classes = n_classes
        Xt = as_tensor(X, self.device)
        self.datafit: Quadratic | Logistic | Multinomial
        if loss == "squared":
            yt = as_tensor(y, self.device)
            if self.n >= self.p:  # least squares only needs its Gram statistics
                self._init_squared_from_stats(GramStats.of(Xt, yt))
                return
            self.X_mean = (
                Xt.mean(0)
                if fit_intercept
                else torch.zeros(self.p, dtype=torch.float64, device=self.device)
            )
            self.y_mean = float(yt.mean()) if fit_intercept else 0.0
            self.datafit = Quadratic(Xt - self.X_mean, yt - self.y_mean, gram=False)
            self._init_squared_rest()
            return
        if fit_intercept:
            Xt = torch.cat(
                [Xt, torch.ones(self.n, 1, dtype=torch.float64, device=self.device)], dim=1
            )
        rows = self.p + int(fit_intercept)
        yi = torch.as_tensor(y, dtype=torch.long, device=self.device)
        if loss == "logistic":
            self.datafit = Logistic(Xt, 2.0 * yi.to(torch.float64) - 1.0)
            self.size = rows
            free = torch.zeros(rows, dtype=torch.bool, device=self.device)
            if fit_intercept:
                free[-1] = True
        else:
            self.datafit = Multinomial(Xt, yi, n_classes)
            self.size = rows * n_classes
            free = torch.zeros(rows, n_classes, dtype=torch.bool, device=self.device)
            if fit_intercept:
                free[-1] = True
            free = free.reshape(-1)
        self.free = free
        self.factor = (~free).to(torch.float64)

    @classmethod
    def from_stats(
        cls, stats: GramStats, *, l1_ratio: float, fit_intercept: bool, tol: float, max_iter: int
    ) -> LinearProblem:
        """A squared-loss problem from its Gram statistics (cross-validation downdates the
        full data's statistics by each held-out fold instead of recomputing them)."""
        self = cls.__new__(cls)
        self.loss, self.l1_ratio, self.fit_intercept = "squared", float(l1_ratio), fit_intercept
        self.tol, self.max_iter = tol, max_iter
        self.device = stats.XtX.device
        self.n, self.p = stats.n, stats.XtX.shape[0]
        self.n_classes = 2
        self._init_squared_from_stats(stats)
        return self

    def _init_squared_from_stats(self, stats: GramStats) -> None:
        n = stats.n
        if self.fit_intercept:
            self.X_mean = stats.x_sum / n
            self.y_mean = stats.y_sum / n
            G = (stats.XtX - n * torch.outer(self.X_mean, self.X_mean)) / n
            c = (stats.Xty - n * self.X_mean * self.y_mean) / n
            yy = stats.yy - n * self.y_mean**2
        else:
            self.X_mean = torch.zeros_like(stats.x_sum)
            self.y_mean = 0.0
            G, c, yy = stats.XtX / n, stats.Xty / n, stats.yy
        self.datafit = Quadratic.from_gram(G, c, max(yy, 0.0), n)
        self._init_squared_rest()

    def _init_squared_rest(self) -> None:
        self.free = torch.zeros(self.p, dtype=torch.bool, device=self.device)
        self.factor = None
        self.size = self.p

    # -- the PathProblem protocol --------------------------------------------------------------
    def initial_state(self) -> Tensor:
        w = torch.zeros(self.size, dtype=torch.float64, device=self.device)
        if self.loss != "squared" and self.fit_intercept:
            w = self._fit_intercept_only(w)
        return w

    def lambda_max(self) -> float:
        """``max_j |grad_j f(w0)| / l1_ratio`` at the intercept-only fit ``w0``."""
        if self.l1_ratio == 0:
            raise ValueError(
                "l1_ratio=0 has no finite lambda_max (a ridge penalty never zeros all "
                "coefficients); give the grid explicitly"
            )
        grad = self.datafit.grad(self.initial_state())
        return float(grad[~self.free].abs().max()) / self.l1_ratio if grad.numel() else 0.0

    def fit(self, lam: float, state: Tensor) -> tuple[Tensor, FitInfo]:
        w0 = state.to(self.device, torch.float64)

        def penalty_for(idx: Tensor | None) -> ElasticNetPenalty:
            factor = (
                None if self.factor is None else (self.factor if idx is None else self.factor[idx])
            )
            return enet_penalty(lam, self.l1_ratio, factor)

        if self.loss == "squared":
            assert isinstance(self.datafit, Quadratic)
            datafit = self.datafit
            l1, l2 = lam * self.l1_ratio, lam * (1.0 - self.l1_ratio)
            scale = datafit.yy / datafit.n
            tol = self.tol * scale if scale > 0 else self.tol

            def criterion(restricted: Quadratic, w: Tensor) -> float:
                return enet_duality_gap(restricted, w, l1, l2)

            solution = solve(
                datafit,
                penalty_for,
                w0,
                free=self.free,
                tol=tol,
                max_iter=self.max_iter,
                criterion=criterion,
            )
        else:
            solution = solve(
                self.datafit,
                penalty_for,
                w0,
                free=self.free,
                tol=self.tol,
                max_iter=self.max_iter,
                working_set=self.loss == "logistic",
            )
        return solution.w, FitInfo(solution.n_iter, solution.converged, solution.criterion)

    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        """``coef`` and ``intercept`` in scikit-learn's shapes."""
        if self.loss == "squared":
            coef = w.cpu().numpy().copy()
            return coef, float(self.y_mean - float(self.X_mean @ w))
        if self.loss == "logistic":
            coef = w[: self.p].cpu().numpy()[None, :].copy()
            return coef, np.array([float(w[-1]) if self.fit_intercept else 0.0])
        W = w.view(-1, self.n_classes)
        coef = W[: self.p].T.cpu().numpy().copy()
        intercept = W[-1].cpu().numpy().copy() if self.fit_intercept else np.zeros(self.n_classes)
        return coef, intercept

    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        """The inverse of :meth:`coefficients`: a warm start from fitted attributes."""
        coef_t = torch.as_tensor(
            np.asarray(coef, dtype=float), dtype=torch.float64, device=self.device
        )
        b = torch.as_tensor(
            np.atleast_1d(intercept).astype(float), dtype=torch.float64, device=self.device
        )
        if self.loss == "squared":
            return coef_t.reshape(-1).clone()
        if self.loss == "logistic":
            parts = [coef_t.reshape(-1)] + ([b.reshape(-1)[:1]] if self.fit_intercept else [])
            return torch.cat(parts)
        rows = [coef_t.T] + ([b.reshape(1, -1)] if self.fit_intercept else [])
        return torch.cat(rows).reshape(-1)

    def describe(self, state: Tensor) -> Evaluation:
        coef, intercept = self.coefficients(state)
        used = np.flatnonzero(np.any(np.atleast_2d(coef) != 0, axis=0))
        return Evaluation(
            coef, intercept, float(self.datafit.value(state)), tuple(int(j) for j in used)
        )

    def score(
        self, state: Tensor, X: np.ndarray | GramStats, y: np.ndarray | None
    ) -> tuple[float, float]:
        """Squared loss: ``(MSE, R^2)``; classifiers: ``(log-loss, accuracy)``. For the
        squared loss the held-out data may be given by its :class:`GramStats` (``y=None``)."""
        if isinstance(X, GramStats):
            assert self.loss == "squared"
            w = state.to(X.XtX.device)
            sse = X.squared_error(w, self.y_mean - float(self.X_mean @ w))
            mse = max(sse, 0.0) / X.n
            var = X.yy / X.n - (X.y_sum / X.n) ** 2
            return mse, 1.0 - mse / var if var > 0 else 0.0
        assert y is not None
        if self.loss == "squared":
            mse = float(np.mean(self.per_sample_loss(state, X, y)))
            var = float(np.var(y))
            return mse, 1.0 - mse / var if var > 0 else 0.0
        log_prob = self._log_prob(state, X)
        y_idx = np.asarray(y, dtype=int)
        loss = float(-log_prob[np.arange(len(y_idx)), y_idx].mean())
        return loss, float(np.mean(log_prob.argmax(axis=1) == y_idx))

    def per_sample_loss(self, state: Tensor, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``[n]``: squared error ``(y - X w - b)^2`` or the log-loss of each sample."""
        if self.loss == "squared":
            coef, intercept = self.coefficients(state)
            nz = np.flatnonzero(coef)
            pred = (X[:, nz] @ coef[nz] if nz.size < coef.size // 4 else X @ coef) + intercept
            return np.asarray((y - pred) ** 2)
        y_idx = np.asarray(y, dtype=int)
        return np.asarray(-self._log_prob(state, X)[np.arange(len(y_idx)), y_idx])

    def _log_prob(self, state: Tensor, X: np.ndarray) -> np.ndarray:
        """``[n, classes]`` log-probabilities of a classifier."""
        coef, intercept = self.coefficients(state)
        logits = X @ np.atleast_2d(coef).T + intercept
        if self.loss == "logistic":
            logits = np.concatenate([np.zeros_like(logits), logits], axis=1)
        logits = logits - logits.max(axis=1, keepdims=True)
        return np.asarray(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))

    def _fit_intercept_only(self, w: Tensor) -> Tensor:
        """The optimal intercept(s) with all coefficients zero (closed form)."""
        assert isinstance(self.datafit, Logistic | Multinomial)
        w = w.clone()
        if isinstance(self.datafit, Logistic):
            rate = float(((self.datafit.s + 1) / 2).mean())
            rate = min(max(rate, 1e-12), 1 - 1e-12)
            w[-1] = math.log(rate / (1 - rate))
        else:
            counts = torch.bincount(self.datafit.y, minlength=self.n_classes).to(torch.float64)
            logp = torch.log(counts.clamp_min(1e-12) / counts.sum())
            W = w.view(-1, self.n_classes)
            W[-1] = logp - logp.mean()
        return w


def as_problem_kwargs(estimator: Any) -> dict[str, Any]:
    """The solver settings every linear estimator shares."""
    return {
        "fit_intercept": estimator.fit_intercept,
        "tol": estimator.tol,
        "max_iter": estimator.max_iter,
        "device": estimator.device,
    }
