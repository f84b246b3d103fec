"""The data terms of the linear models, one object per loss: least squares, logistic and
multinomial.

Each loss is built from the data and knows everything that differs between them, so that
:class:`~shrinkage.linear.LinearProblem` never asks which loss it holds:

* its smooth ``datafit`` for the solver (``value``, ``grad``, ``hessian``, ``restrict``) over a
  flat coefficient vector ``w`` of ``size`` entries, and which entries are ``free``
  (unpenalized intercepts);
* the warm start with every coefficient zero (the intercept-only fit);
* how the solver decides it is done (the duality gap for least squares, the optimality
  distance otherwise);
* scikit-learn's layout of the fitted attributes (``coef_``, ``intercept_``) and back;
* the per-sample loss and the score (R^2, accuracy) on held-out data.

The objectives, with ``n`` samples (the penalty ``lam * r(w)`` is added by the problem):

=================  ====================================================================
``SquaredLoss``    ``||y - X w - b||^2 / (2n)``, on centered data (``b`` from the means)
``LogisticLoss``   ``mean_i log(1 + exp(-s_i (x_i^T w + b)))``, ``s_i = +-1``
``MultinomialLoss````mean_i CE(softmax(x_i^T W + b), y_i)``, ``W [p, K]``
=================  ====================================================================
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..path import Score
from ._datafits import Logistic, Multinomial, Quadratic, enet_duality_gap

__all__ = [
    "LOSSES",
    "GramStats",
    "LinearLoss",
    "LogisticLoss",
    "LossOptions",
    "MultinomialLoss",
    "SquaredLoss",
]

Criterion = Callable[[Quadratic, Tensor], float]
"""``criterion(datafit, w)``: a stopping criterion on a (possibly restricted) datafit."""


def as_tensor(a: np.ndarray, device: torch.device | str) -> Tensor:
    """A float64 tensor on ``device`` from an array, copying read-only arrays (memory maps)
    rather than aliasing memory that torch could write to."""
    array = np.require(a, dtype=np.float64, requirements=["C", "W"])
    return torch.as_tensor(array, device=device)


class GramStats:
    """Sufficient statistics of least squares on ``(X [n, p], y [n])``: ``X^T X``, ``X^T y``,
    ``y^T y``, the column sums of ``X``, the sum of ``y`` and ``n``. Subtracting a fold's
    statistics from the whole data's gives the statistics of the rest."""

    def __init__(
        self, XtX: Tensor, Xty: Tensor, yy: float, x_sum: Tensor, y_sum: float, n: int
    ) -> None:
        self.XtX, self.Xty, self.yy = XtX, Xty, yy
        self.x_sum, self.y_sum, self.n = x_sum, y_sum, n

    @classmethod
    def of(cls, X: Tensor, y: Tensor) -> GramStats:
        return cls(X.T @ X, X.T @ y, float(y @ y), X.sum(0), float(y.sum()), X.shape[0])

    def _combine(self, other: GramStats, sign: float) -> GramStats:
        return GramStats(
            self.XtX + sign * other.XtX,
            self.Xty + sign * other.Xty,
            self.yy + sign * other.yy,
            self.x_sum + sign * other.x_sum,
            self.y_sum + sign * other.y_sum,
            self.n + int(sign) * other.n,
        )

    def __add__(self, other: GramStats) -> GramStats:
        return self._combine(other, 1.0)

    def __sub__(self, other: GramStats) -> GramStats:
        return self._combine(other, -1.0)

    def squared_error(self, coef: Tensor, intercept: float) -> float:
        """``||y - X coef - intercept||^2`` of the data these statistics summarise."""
        b = intercept
        yb = self.yy - 2 * b * self.y_sum + self.n * b * b
        cross = float(coef @ self.Xty) - b * float(coef @ self.x_sum)
        return yb - 2 * cross + float(coef @ (self.XtX @ coef))


@dataclass(frozen=True)
class LossOptions:
    """How a loss is built: with an unpenalized intercept or not, on which torch device, and
    for how many classes (read by the multinomial loss only)."""

    fit_intercept: bool
    device: torch.device
    n_classes: int = 2


class LinearLoss(abc.ABC):
    """One loss with its data (see the module docstring for what it knows), built as
    ``Loss(X [n, p], y [n], options)``."""

    datafit: Quadratic | Logistic | Multinomial
    free: Tensor
    """``[size]`` boolean: the unpenalized coordinates (intercepts)."""
    factor: Tensor | None
    """Per-coordinate penalty factor: 0 on intercepts (``None``: all 1)."""
    working_set: bool = True
    """Whether the solver may restrict itself to working sets of coordinates."""

    @abc.abstractmethod
    def __init__(self, X: np.ndarray, y: np.ndarray, options: LossOptions) -> None:
        """Build the loss of ``X [n, p]`` and ``y [n]``."""

    @property
    def size(self) -> int:
        return int(self.free.numel())

    @property
    def device(self) -> torch.device:
        return self.free.device

    def initial_state(self) -> Tensor:
        """The fit with every penalized coefficient zero (the intercepts at their optimum)."""
        return torch.zeros(self.size, dtype=torch.float64, device=self.device)

    def stopping(self, l1: float, l2: float, tol: float) -> tuple[Criterion | None, float]:
        """The solver's criterion and tolerance at ``l1 * |w|_1 + l2 / 2 * |w|^2``;
        ``None``: the optimality distance, at ``tol``."""
        return None, tol

    @abc.abstractmethod
    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        """``(coef_, intercept_)`` in scikit-learn's shapes."""

    @abc.abstractmethod
    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        """The inverse of :meth:`coefficients`: a warm start from fitted attributes."""

    @abc.abstractmethod
    def per_sample_loss(self, w: Tensor, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``[n]``: each sample's loss on held-out ``(X, y)``."""

    @abc.abstractmethod
    def score(self, w: Tensor, X: np.ndarray | GramStats, y: np.ndarray | None) -> Score:
        """Mean loss and score on held-out data."""


def _loss_se(losses: np.ndarray) -> float:
    return float(losses.std(ddof=1) / math.sqrt(len(losses))) if len(losses) > 1 else 0.0


class SquaredLoss(LinearLoss):
    """``||y - X w - b||^2 / (2n)``; the intercept ``b = mean(y) - mean(X) w`` (centered data).

    With ``n >= p`` only the Gram statistics are kept; otherwise the centered ``X``.
    Scored by R^2.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, options: LossOptions) -> None:
        fit_intercept, device = options.fit_intercept, options.device
        Xt, yt = as_tensor(X, device), as_tensor(y, device)
        n, p = Xt.shape
        if n >= p:  # least squares only needs its Gram statistics
            self._from_stats(GramStats.of(Xt, yt), fit_intercept)
            return
        self.X_mean = Xt.mean(0) if fit_intercept else torch.zeros(p, dtype=Xt.dtype, device=device)
        self.y_mean = float(yt.mean()) if fit_intercept else 0.0
        self.datafit = Quadratic(Xt - self.X_mean, yt - self.y_mean, gram=False)
        self._unpenalized(p, device)

    @classmethod
    def from_stats(cls, stats: GramStats, *, fit_intercept: bool) -> SquaredLoss:
        """The loss of the data ``stats`` summarise (cross-validation downdates the whole
        data's statistics by each held-out fold instead of recomputing them)."""
        self = cls.__new__(cls)
        self._from_stats(stats, fit_intercept)
        return self

    def _from_stats(self, stats: GramStats, fit_intercept: bool) -> None:
        n = stats.n
        if fit_intercept:
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
        self._unpenalized(stats.XtX.shape[0], stats.XtX.device)

    def _unpenalized(self, p: int, device: torch.device) -> None:
        self.free = torch.zeros(p, dtype=torch.bool, device=device)
        self.factor = None

    def stopping(self, l1: float, l2: float, tol: float) -> tuple[Criterion | None, float]:
        """The duality gap, at ``tol`` times ``||y - mean(y)||^2 / n``."""

        def gap(restricted: Quadratic, w: Tensor) -> float:
            return enet_duality_gap(restricted, w, l1, l2)

        assert isinstance(self.datafit, Quadratic)
        scale = self.datafit.yy / self.datafit.n
        return gap, tol * scale if scale > 0 else tol

    def _intercept(self, w: Tensor) -> float:
        return float(self.y_mean - float(self.X_mean @ w))

    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        return w.cpu().numpy().copy(), self._intercept(w)

    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        values = np.asarray(coef, dtype=float).reshape(-1)
        return torch.as_tensor(values, dtype=torch.float64, device=self.device).clone()

    def per_sample_loss(self, w: Tensor, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(y - X w - b)^2``."""
        coef, intercept = self.coefficients(w)
        nz = np.flatnonzero(coef)
        pred = (X[:, nz] @ coef[nz] if nz.size < coef.size // 4 else X @ coef) + intercept
        return np.asarray((y - pred) ** 2)

    def score(self, w: Tensor, X: np.ndarray | GramStats, y: np.ndarray | None) -> Score:
        """``(MSE, R^2)``; the held-out data may be given by its :class:`GramStats`
        (``y=None``), which knows no per-sample spread."""
        if isinstance(X, GramStats):
            w_there = w.to(X.XtX.device)
            sse = X.squared_error(w_there, self._intercept(w_there))
            mse = max(sse, 0.0) / X.n
            var = X.yy / X.n - (X.y_sum / X.n) ** 2
            return Score(mse, 1.0 - mse / var if var > 0 else 0.0)
        assert y is not None
        losses = self.per_sample_loss(w, X, y)
        mse, var = float(np.mean(losses)), float(np.var(y))
        return Score(mse, 1.0 - mse / var if var > 0 else 0.0, _loss_se(losses))


class _Classification(LinearLoss):
    """Shared by the logistic and multinomial losses: ``X`` with a column of ones when there
    is an intercept, class indices ``y``, scored by the log-loss and the accuracy."""

    def __init__(self, X: np.ndarray, y: np.ndarray, options: LossOptions) -> None:
        device = options.device
        Xt = as_tensor(X, device)
        self.n_classes = options.n_classes
        self.fit_intercept = options.fit_intercept
        self.n_features = Xt.shape[1]
        if self.fit_intercept:
            ones = torch.ones(Xt.shape[0], 1, dtype=torch.float64, device=device)
            Xt = torch.cat([Xt, ones], dim=1)
        self._build(Xt, torch.as_tensor(y, dtype=torch.long, device=device))
        self.factor = (~self.free).to(torch.float64)

    @abc.abstractmethod
    def _build(self, X: Tensor, y: Tensor) -> None:
        """Set ``datafit`` and ``free`` from the design (with its column of ones)."""

    @abc.abstractmethod
    def log_prob(self, w: Tensor, X: np.ndarray) -> np.ndarray:
        """``[n, classes]`` log-probabilities."""

    def per_sample_loss(self, w: Tensor, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``-log p(y_i | x_i)``."""
        y_idx = np.asarray(y, dtype=int)
        return np.asarray(-self.log_prob(w, X)[np.arange(len(y_idx)), y_idx])

    def score(self, w: Tensor, X: np.ndarray | GramStats, y: np.ndarray | None) -> Score:
        """``(log-loss, accuracy)``."""
        assert not isinstance(X, GramStats) and y is not None
        log_prob = self.log_prob(w, X)
        y_idx = np.asarray(y, dtype=int)
        losses = -log_prob[np.arange(len(y_idx)), y_idx]
        accuracy = float(np.mean(log_prob.argmax(axis=1) == y_idx))
        return Score(float(losses.mean()), accuracy, _loss_se(losses))


def _normalized(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    return np.asarray(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))


class LogisticLoss(_Classification):
    """Binary logistic regression: ``w = [coef (p), intercept]``; classes ``0`` and ``1``."""

    def _build(self, X: Tensor, y: Tensor) -> None:
        self.datafit = Logistic(X, 2.0 * y.to(torch.float64) - 1.0)
        self.free = torch.zeros(X.shape[1], dtype=torch.bool, device=X.device)
        if self.fit_intercept:
            self.free[-1] = True

    def initial_state(self) -> Tensor:
        w = super().initial_state()
        if self.fit_intercept:
            assert isinstance(self.datafit, Logistic)
            rate = float(((self.datafit.s + 1) / 2).mean())
            rate = min(max(rate, 1e-12), 1 - 1e-12)
            w[-1] = math.log(rate / (1 - rate))
        return w

    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        coef = w[: self.n_features].cpu().numpy()[None, :].copy()
        return coef, np.array([float(w[-1]) if self.fit_intercept else 0.0])

    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        parts = [np.asarray(coef, dtype=float).reshape(-1)]
        if self.fit_intercept:
            parts.append(np.atleast_1d(np.asarray(intercept, dtype=float)).reshape(-1)[:1])
        return torch.as_tensor(np.concatenate(parts), dtype=torch.float64, device=self.device)

    def log_prob(self, w: Tensor, X: np.ndarray) -> np.ndarray:
        coef, intercept = self.coefficients(w)
        logits = X @ coef.T + intercept
        return _normalized(np.concatenate([np.zeros_like(logits), logits], axis=1))


class MultinomialLoss(_Classification):
    """Multinomial regression: ``W [p (+1), K]`` flattened row-major, the last row the
    intercepts. Solved on all coordinates (no working sets)."""

    working_set = False

    def _build(self, X: Tensor, y: Tensor) -> None:
        self.datafit = Multinomial(X, y, self.n_classes)
        free = torch.zeros(X.shape[1], self.n_classes, dtype=torch.bool, device=X.device)
        if self.fit_intercept:
            free[-1] = True
        self.free = free.reshape(-1)

    def initial_state(self) -> Tensor:
        w = super().initial_state()
        if self.fit_intercept:
            assert isinstance(self.datafit, Multinomial)
            counts = torch.bincount(self.datafit.y, minlength=self.n_classes).to(torch.float64)
            logp = torch.log(counts.clamp_min(1e-12) / counts.sum())
            w.view(-1, self.n_classes)[-1] = logp - logp.mean()
        return w

    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        W = w.view(-1, self.n_classes)
        coef = W[: self.n_features].T.cpu().numpy().copy()
        intercept = W[-1].cpu().numpy().copy() if self.fit_intercept else np.zeros(self.n_classes)
        return coef, intercept

    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        rows = [np.asarray(coef, dtype=float).T]
        if self.fit_intercept:
            rows.append(np.atleast_1d(np.asarray(intercept, dtype=float)).reshape(1, -1))
        stacked = np.concatenate(rows).reshape(-1)
        return torch.as_tensor(stacked, dtype=torch.float64, device=self.device)

    def log_prob(self, w: Tensor, X: np.ndarray) -> np.ndarray:
        coef, intercept = self.coefficients(w)
        return _normalized(X @ np.atleast_2d(coef).T + intercept)


LOSSES: dict[str, type[LinearLoss]] = {
    "squared": SquaredLoss,
    "logistic": LogisticLoss,
    "multinomial": MultinomialLoss,
}
"""Loss name -> class (the names :class:`~shrinkage.linear.LinearProblem` accepts)."""
