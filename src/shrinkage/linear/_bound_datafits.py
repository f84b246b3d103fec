"""Each datafit bound to its data, in scikit-learn's layout: least squares, logistic and
multinomial, one object per loss. The mathematics of each datafit are in
:mod:`shrinkage.linear._datafits`; this layer adds what comes from the data.

Each loss is built from the data (a dense array or a scipy sparse matrix, never densified, and
optional sample weights) and knows everything that differs between them, so that
:class:`~shrinkage.linear.LinearProblem` never asks which loss it holds:

* its smooth ``datafit`` for the solver (``value``, ``grad``, ``hessian``, ``restrict``) over a
  flat coefficient vector ``w`` of ``size`` entries, and which entries are ``free``
  (unpenalized intercepts);
* the warm start with every coefficient zero (the intercept-only fit);
* how the solver decides it is done (the duality gap for least squares, the optimality
  distance otherwise);
* scikit-learn's layout of the fitted attributes (``coef_``, ``intercept_``) and back;
* the per-sample loss and the score (R^2, accuracy) on held-out data.

The objectives, with ``n`` samples and sample weights ``s`` (the penalty is added by the
problem):

=================  ====================================================================
``SquaredLoss``    ``sum_i s_i (y_i - x_i^T w - b)^2 / (2 sum_i s_i)``, ``b`` from the
                   weighted means (scikit-learn rescales ``s`` to sum to ``n``: the same)
``LogisticLoss``   ``sum_i s_i log(1 + exp(-t_i (x_i^T w + b))) / sum_i s_i``, ``t_i = +-1``
``MultinomialLoss````sum_i s_i CE(softmax(x_i^T W + b), y_i) / sum_i s_i``, ``W [p, K]``
=================  ====================================================================
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy import sparse
from torch import Tensor

from ..path import Score
from ._common import row_mean
from ._datafits import Logistic, Multinomial, Quadratic
from ._design import GramStats, SparseDesign, as_tensor, held_out_product, is_sparse
from ._duality import enet_duality_gap
from ._tweedie import Tweedie

__all__ = [
    "LOSSES",
    "GramStats",
    "LinearLoss",
    "LogisticLoss",
    "LossOptions",
    "MultinomialLoss",
    "SquaredLoss",
    "mean_and_se",
    "with_ones",
]

Criterion = Callable[[Quadratic, Tensor], float]
"""``criterion(datafit, w)``: a stopping criterion on a (possibly restricted) datafit."""


@dataclass(frozen=True)
class LossOptions:
    """How a loss is built: with an unpenalized intercept or not, on which torch device, for
    how many classes (read by the multinomial loss only), with which sample weights (``None``:
    all 1), whether a dense ``X`` may be overwritten (centred in place: the caller's own
    copy), with which penalty factors, and what the squared loss keeps."""

    fit_intercept: bool
    device: torch.device
    n_classes: int = 2
    sample_weight: np.ndarray | None = None
    overwrite_X: bool = False
    penalty_factor: np.ndarray | None = None
    gram: bool | None = None
    """Keep the squared loss as its Gram statistics (``None``: when ``n >= p``)."""
    gram_rows: bool = True
    """Keep the Gram rows of the supports of a wide dense design (see
    :class:`~shrinkage.linear._design.GramRows`): worth it over a path, not for one fit."""


class LinearLoss(abc.ABC):
    """One loss with its data (see the module docstring for what it knows), built as
    ``Loss(X [n, p], y [n], options)``."""

    datafit: Quadratic | Logistic | Multinomial | Tweedie
    free: Tensor
    """``[size]`` boolean: the unpenalized coordinates (intercepts)."""
    factor: Tensor | None
    """Per-coordinate penalty factor: 0 on intercepts (``None``: all 1)."""
    working_set: bool = True
    """Whether the solver may restrict itself to working sets of coordinates."""

    @abc.abstractmethod
    def __init__(self, X: Any, y: np.ndarray, options: LossOptions) -> None:
        """Build the loss of ``X [n, p]`` (dense or scipy sparse) and ``y [n]``."""

    @property
    def size(self) -> int:
        return int(self.free.numel())

    @property
    def device(self) -> torch.device:
        return self.free.device

    def initial_state(self) -> Tensor:
        """The fit with every penalized coefficient zero (the intercepts at their optimum)."""
        return torch.zeros(self.size, dtype=torch.float64, device=self.device)

    def _weigh(self, penalty_factor: np.ndarray | None, rows: int) -> None:
        """Per-feature penalty factors (glmnet's ``penalty.factor``) on ``w`` laid out as
        ``[rows, classes]``, a feature's row (all its classes) by its factor; a coordinate of
        factor 0 is free, as an intercept is."""
        if penalty_factor is None:
            return
        factor = self.factor if self.factor is not None else (~self.free).to(torch.float64)
        by_row = torch.as_tensor(penalty_factor, dtype=torch.float64, device=factor.device)
        factor.view(rows, -1)[: by_row.numel()] *= by_row[:, None]
        self.factor, self.free = factor, factor == 0

    def stopping(
        self, l1: float, l2: float, tol: float, positive: bool = False
    ) -> tuple[Criterion | None, float]:
        """The solver's criterion and tolerance at ``l1 * |w|_1 + l2 / 2 * |w|^2`` (under
        ``w >= 0`` when ``positive``); ``None``: the optimality distance, at ``tol``."""
        return None, tol

    def least_norm(self, w: Tensor) -> Tensor:
        """The smallest ``w`` with the same predictions as ``w``: how an unpenalized fit,
        which any such ``w`` solves, is reported (``w`` itself unless the model has a
        redundant direction)."""
        return w

    @abc.abstractmethod
    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        """``(coef_, intercept_)`` in scikit-learn's shapes."""

    @abc.abstractmethod
    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        """The inverse of :meth:`coefficients`: a warm start from fitted attributes."""

    @abc.abstractmethod
    def per_sample_loss(self, w: Tensor, X: Any, y: np.ndarray) -> np.ndarray:
        """``[n]``: each sample's loss on held-out ``(X, y)``."""

    @abc.abstractmethod
    def score(
        self, w: Tensor, X: Any, y: np.ndarray | None, sample_weight: np.ndarray | None = None
    ) -> Score:
        """Mean loss and score on held-out data (weighted by ``sample_weight``)."""


def mean_and_se(values: np.ndarray, weights: np.ndarray | None) -> tuple[float, float]:
    """The (weighted) mean of ``values`` and its standard error."""
    if weights is None:
        se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
        return float(values.mean()), float(se)
    mean = float(np.average(values, weights=weights))
    spread = float(np.average((values - mean) ** 2, weights=weights))
    effective = weights.sum() ** 2 / (weights**2).sum()  # Kish's effective sample size
    return mean, math.sqrt(spread / max(effective - 1.0, 1.0))


def _normalized(weights: np.ndarray | None, n: int) -> np.ndarray | None:
    return None if weights is None else weights * (n / weights.sum())


class SquaredLoss(LinearLoss):
    """``sum_i s_i (y_i - x_i^T w - b)^2 / (2 sum s)``; the intercept ``b`` from the weighted
    means (centered data). With ``n >= p`` only the Gram statistics are kept; otherwise the
    centered, row-scaled design (for a sparse ``X``, centered in each product). Scored by R^2.
    """

    def __init__(self, X: Any, y: np.ndarray, options: LossOptions) -> None:
        n, p = X.shape
        weights = _normalized(options.sample_weight, n)
        if n >= p if options.gram is None else options.gram:  # only its Gram statistics
            stats = GramStats.of(X, y, weights, options.device)
            self._from_stats(stats, options.fit_intercept)
            self._weigh(options.penalty_factor, p)
            return
        s = np.ones(n) if weights is None else weights
        y = np.asarray(y, dtype=np.float64)
        y_mean = float(np.average(y, weights=s)) if options.fit_intercept else 0.0
        if is_sparse(X):
            X_mean = row_mean(X, s) if options.fit_intercept else None
            design: Any = SparseDesign(X, X_mean, np.sqrt(s))
            self.X_mean = torch.as_tensor(np.zeros(p) if X_mean is None else X_mean)
        else:
            Xt = as_tensor(X, options.device)
            st = torch.as_tensor(s, device=options.device)
            self.X_mean = (st @ Xt) / st.sum() if options.fit_intercept else Xt.new_zeros(p)
            if not options.fit_intercept and weights is None:
                design = Xt  # nothing to centre or scale: X is read, never written
            else:
                design = Xt.sub_(self.X_mean) if options.overwrite_X else Xt - self.X_mean
            if weights is not None:
                design.mul_(st.sqrt()[:, None])
        self.y_mean = y_mean
        yt = as_tensor(np.sqrt(s) * (y - y_mean), options.device)
        self.datafit = Quadratic(design, yt, use_gram=False, gram_rows=options.gram_rows)
        self._unpenalized(p, options.device)
        self._weigh(options.penalty_factor, p)

    @classmethod
    def from_stats(
        cls,
        stats: GramStats,
        *,
        fit_intercept: bool,
        penalty_factor: np.ndarray | None = None,
    ) -> SquaredLoss:
        """The loss of the data ``stats`` summarise (cross-validation downdates the whole
        data's statistics by each held-out fold instead of recomputing them), with per-feature
        penalty factors."""
        self = cls.__new__(cls)
        self._from_stats(stats.normalized(), fit_intercept)
        self._weigh(penalty_factor, stats.XtX.shape[0])
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
        self.datafit = Quadratic.from_gram(G, c, max(yy, 0.0), round(n))
        self._unpenalized(stats.XtX.shape[0], stats.XtX.device)

    def _unpenalized(self, p: int, device: torch.device) -> None:
        self.free = torch.zeros(p, dtype=torch.bool, device=device)
        self.factor = None

    def stopping(
        self, l1: float, l2: float, tol: float, positive: bool = False
    ) -> tuple[Criterion | None, float]:
        """The duality gap, at ``tol`` times ``||y - mean(y)||^2 / n`` (weighted). With
        penalty factors, or without a penalty, the optimality distance, at ``tol`` times
        ``||X^T y|| / n``."""

        def gap(restricted: Quadratic, w: Tensor) -> float:
            return enet_duality_gap(restricted, w, l1, l2, positive)

        assert isinstance(self.datafit, Quadratic)
        scale = self.datafit.yy / self.datafit.n
        if (l1 == 0 and l2 == 0) or self.factor is not None:  # the optimality distance
            return None, self.optimality_tol(tol)
        return gap, tol * scale if scale > 0 else tol

    def optimality_tol(self, tol: float) -> float:
        """``tol`` on the scale of the optimality distance: times ``||X^T y|| / n``."""
        assert isinstance(self.datafit, Quadratic)
        top = float(torch.linalg.vector_norm(self.datafit.c))
        return tol * top if top > 0 else tol

    def _intercept(self, w: Tensor) -> float:
        return float(self.y_mean - float(self.X_mean.to(w.device) @ w))

    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        return w.cpu().numpy().copy(), self._intercept(w)

    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        values = np.asarray(coef, dtype=float).reshape(-1)
        return torch.as_tensor(values, dtype=torch.float64, device=self.device).clone()

    def per_sample_loss(self, w: Tensor, X: Any, y: np.ndarray) -> np.ndarray:
        """``(y - X w - b)^2``."""
        coef, intercept = self.coefficients(w)
        return np.asarray((y - held_out_product(X, coef).ravel() - intercept) ** 2)

    def score(
        self, w: Tensor, X: Any, y: np.ndarray | None, sample_weight: np.ndarray | None = None
    ) -> Score:
        """``(MSE, R^2)``; the held-out data may be given by its :class:`GramStats`
        (``y=None``), which knows no per-sample spread."""
        if isinstance(X, GramStats):
            w_there = w.to(X.XtX.device)
            sse = X.squared_error(w_there, self._intercept(w_there))
            mse = max(sse, 0.0) / X.n
            var = X.yy / X.n - (X.y_sum / X.n) ** 2
            return Score(mse, 1.0 - mse / var if var > 0 else 0.0)
        assert y is not None
        mse, se = mean_and_se(self.per_sample_loss(w, X, y), sample_weight)
        center = np.average(y, weights=sample_weight)
        var = float(np.average((y - center) ** 2, weights=sample_weight))
        return Score(mse, 1.0 - mse / var if var > 0 else 0.0, se)


def with_ones(
    X: Any, fit_intercept: bool, device: torch.device, center: np.ndarray | None = None
) -> Any:
    """``X [n, p]`` as the solver's design, with a last column of ones when an intercept is
    fitted.

    Args:
        X: the features, dense or scipy sparse.
        fit_intercept: whether to append the column of ones.
        device: the torch device of a dense design (a sparse one stays on the CPU).
        center: ``[p]`` subtracted from every row (a sparse ``X`` is centred in each
            product, never densified), or ``None``.

    Returns:
        A dense float64 tensor on ``device``, or a
        :class:`~shrinkage.linear._design.SparseDesign` for a scipy sparse ``X``.

    Raises:
        ValueError: a sparse ``X`` with a device other than the CPU.
    """
    if is_sparse(X):
        if device.type != "cpu":
            raise ValueError(f"a sparse X is solved on the CPU; got device={device}")
        column = np.ones((X.shape[0], 1))
        if center is not None and fit_intercept:
            center = np.append(center, 0.0)
        return SparseDesign(sparse.hstack([X, column]) if fit_intercept else X, center)
    design = as_tensor(X, device)
    if center is not None:
        design = design - as_tensor(center, device)
    if fit_intercept:
        ones = torch.ones(design.shape[0], 1, dtype=torch.float64, device=device)
        design = torch.cat([design, ones], dim=1)
    return design


class _Classification(LinearLoss):
    """Shared by the logistic and multinomial losses: ``X`` with a column of ones when there
    is an intercept, class indices ``y``, scored by the log-loss and the accuracy."""

    def __init__(self, X: Any, y: np.ndarray, options: LossOptions) -> None:
        device = options.device
        self.n_classes = options.n_classes
        self.fit_intercept = options.fit_intercept
        self.n_features = X.shape[1]
        design = with_ones(X, self.fit_intercept, device)
        weights = options.sample_weight
        self.weights = None if weights is None else as_tensor(weights, device)
        self._build(design, torch.as_tensor(y, dtype=torch.long, device=device))
        self.factor = (~self.free).to(torch.float64)
        self._weigh(options.penalty_factor, self.n_features + int(self.fit_intercept))

    @abc.abstractmethod
    def _build(self, X: Any, y: Tensor) -> None:
        """Set ``datafit`` and ``free`` from the design (with its column of ones)."""

    @abc.abstractmethod
    def log_prob(self, w: Tensor, X: Any) -> np.ndarray:
        """``[n, classes]`` log-probabilities."""

    def _class_rates(self, y: Tensor) -> Tensor:
        """``[classes]``: each class's (weighted) share of the training samples."""
        counts = torch.zeros(self.n_classes, dtype=torch.float64, device=y.device)
        weights = (
            self.weights if self.weights is not None else torch.ones_like(y, dtype=torch.float64)
        )
        counts.index_add_(0, y, weights)
        return counts.clamp_min(1e-12) / counts.sum()

    def per_sample_loss(self, w: Tensor, X: Any, y: np.ndarray) -> np.ndarray:
        """``-log p(y_i | x_i)``."""
        y_idx = np.asarray(y, dtype=int)
        return np.asarray(-self.log_prob(w, X)[np.arange(len(y_idx)), y_idx])

    def score(
        self, w: Tensor, X: Any, y: np.ndarray | None, sample_weight: np.ndarray | None = None
    ) -> Score:
        """``(log-loss, accuracy)``, weighted by ``sample_weight``."""
        assert not isinstance(X, GramStats) and y is not None
        log_prob = self.log_prob(w, X)
        y_idx = np.asarray(y, dtype=int)
        loss, se = mean_and_se(-log_prob[np.arange(len(y_idx)), y_idx], sample_weight)
        right = (log_prob.argmax(axis=1) == y_idx).astype(float)
        return Score(loss, float(np.average(right, weights=sample_weight)), se)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    return np.asarray(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))


class LogisticLoss(_Classification):
    """Binary logistic regression: ``w = [coef (p), intercept]``; classes ``0`` and ``1``."""

    def _build(self, X: Any, y: Tensor) -> None:
        self.datafit = Logistic(X, 2.0 * y.to(torch.float64) - 1.0, self.weights)
        self.free = torch.zeros(X.shape[1], dtype=torch.bool, device=y.device)
        if self.fit_intercept:
            self.free[-1] = True

    def initial_state(self) -> Tensor:
        w = super().initial_state()
        if self.fit_intercept:
            assert isinstance(self.datafit, Logistic)
            labels = ((self.datafit.s + 1) / 2).long()
            rate = float(self._class_rates(labels)[1])
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

    def log_prob(self, w: Tensor, X: Any) -> np.ndarray:
        coef, intercept = self.coefficients(w)
        logits = held_out_product(X, coef.T).reshape(-1, 1) + intercept
        return _log_softmax(np.concatenate([np.zeros_like(logits), logits], axis=1))


class MultinomialLoss(_Classification):
    """Multinomial regression: ``W [p (+1), K]`` flattened row-major, the last row the
    intercepts (reported centred: softmax does not change when a constant is added to all of
    them). Solved on all coordinates (no working sets)."""

    working_set = False

    def _build(self, X: Any, y: Tensor) -> None:
        self.datafit = Multinomial(X, y, self.n_classes, self.weights)
        free = torch.zeros(X.shape[1], self.n_classes, dtype=torch.bool, device=y.device)
        if self.fit_intercept:
            free[-1] = True
        self.free = free.reshape(-1)

    def initial_state(self) -> Tensor:
        w = super().initial_state()
        if self.fit_intercept:
            assert isinstance(self.datafit, Multinomial)
            logp = torch.log(self._class_rates(self.datafit.y))
            w.view(-1, self.n_classes)[-1] = logp - logp.mean()
        return w

    def least_norm(self, w: Tensor) -> Tensor:
        """Adding a constant across classes to a row of ``W`` changes no probability: the
        smallest representative has rows that sum to zero (scikit-learn's symmetric one)."""
        W = w.view(-1, self.n_classes)
        return (W - W.mean(dim=1, keepdim=True)).reshape(-1)

    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        W = w.view(-1, self.n_classes)
        coef = W[: self.n_features].T.cpu().numpy().copy()
        intercept = np.zeros(self.n_classes)
        if self.fit_intercept:
            intercept = W[-1].cpu().numpy().copy()
            intercept -= intercept.mean()
        return coef, intercept

    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        rows = [np.asarray(coef, dtype=float).T]
        if self.fit_intercept:
            rows.append(np.atleast_1d(np.asarray(intercept, dtype=float)).reshape(1, -1))
        stacked = np.concatenate(rows).reshape(-1)
        return torch.as_tensor(stacked, dtype=torch.float64, device=self.device)

    def log_prob(self, w: Tensor, X: Any) -> np.ndarray:
        coef, intercept = self.coefficients(w)
        return _log_softmax(held_out_product(X, np.atleast_2d(coef).T) + intercept)


LOSSES: dict[str, type[LinearLoss]] = {
    "squared": SquaredLoss,
    "logistic": LogisticLoss,
    "multinomial": MultinomialLoss,
}
"""Loss name -> class (the names :class:`~shrinkage.linear.LinearProblem` accepts)."""
