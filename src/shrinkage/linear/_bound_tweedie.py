"""The Tweedie datafit bound to its data, in scikit-learn's layout: what
:class:`~shrinkage.linear.LinearProblem` asks of a loss (see
:mod:`shrinkage.linear._bound_datafits`) for the GLMs of :mod:`shrinkage.linear._tweedie`.

The objective (the penalty is added by the problem) is

    sum_i s_i l(y_i, x_i^T coef + b + o_i) / sum_i s_i

with scikit-learn's half deviance ``l``, sample weights ``s`` and an offset ``o``.

With an intercept the solver works on centred features: its state is
``w = [coef (p), b + m^T coef]`` with ``m`` the weighted mean of the rows, so that the linear
predictor is ``(x_i - m)^T coef + w[p] + o_i``, the same function of the same ``coef``. The
penalty, on ``coef`` alone, is unchanged, and so is the solution. Without it, features far
from zero (ages, prices) make the intercept's column nearly collinear with theirs: the
local models of the proximal Newton method then have condition numbers of ``1e8`` and more,
and their first-order solves stall.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..path import Score
from ._bound_datafits import LinearLoss, LossOptions, mean_and_se, with_ones
from ._common import least_squares, row_mean
from ._design import SparseDesign, as_tensor, held_out_product
from ._tweedie import Tweedie, derivatives, unit_deviance

__all__ = [
    "TweedieLoss",
    "check_family",
    "check_target",
    "d2",
    "mean_deviance",
    "predicted_mean",
]


def check_family(power: float, link: str) -> str:
    """The link in use (``"auto"``: identity for ``power <= 0``, log otherwise, as
    scikit-learn picks it).

    Raises:
        ValueError: ``0 < power < 1``, where no Tweedie distribution exists.
    """
    if 0 < power < 1:
        raise ValueError(
            f"power={power!r}: no Tweedie distribution has 0 < power < 1; use 0 (normal), "
            "1 (Poisson), a value in (1, 2) (compound Poisson-Gamma), 2 (Gamma) or more"
        )
    return ("identity" if power <= 0 else "log") if link == "auto" else link


_OUT_OF_RANGE = "Some value(s) of y are out of the valid range of the loss"
"""scikit-learn's opening words for such ``y``."""


def check_target(y: np.ndarray, power: float, link: str) -> None:
    """A ``ValueError`` naming ``y`` when a value lies outside the family's range (``y >= 0``
    for ``1 <= power < 2``, ``y > 0`` for ``power >= 2``, any real for ``power <= 0``), or
    when no value is positive for a model whose mean must be (log link, or ``power > 0``)."""
    if 1 <= power < 2 and np.any(y < 0):
        raise ValueError(f"{_OUT_OF_RANGE}: y must be >= 0 for power={power!r}; got {y.min():.6g}")
    if power >= 2 and np.any(y <= 0):
        raise ValueError(f"{_OUT_OF_RANGE}: y must be > 0 for power={power!r}; got {y.min():.6g}")
    if (link == "log" or power > 0) and not np.any(y > 0):
        raise ValueError(
            f"{_OUT_OF_RANGE}: y holds no positive value, and the model's mean must be "
            f"positive (power={power!r}, link={link!r}): its intercept has no finite optimum"
        )


class TweedieLoss(LinearLoss):
    """``Tweedie`` on ``X [n, p]`` (a column of ones appended for the intercept), ``y [n]``.

    Args:
        X, y, options: as for every loss (``options.n_classes`` is not read).
        power: the Tweedie power; link: ``"log"`` or ``"identity"`` (checked by
            :func:`check_family`).
        offset: ``[n]`` added to the linear predictor, or ``None``.
    """

    def __init__(
        self,
        X: Any,
        y: np.ndarray,
        options: LossOptions,
        *,
        power: float = 1.0,
        link: str = "log",
        offset: np.ndarray | None = None,
    ) -> None:
        device = options.device
        self.power, self.link = float(power), link
        self.fit_intercept, self.n_features = options.fit_intercept, X.shape[1]
        weights = options.sample_weight
        self.x_mean = row_mean(X, weights) if self.fit_intercept else np.zeros(X.shape[1])
        self.tweedie = Tweedie(
            with_ones(X, self.fit_intercept, device, self.x_mean if self.fit_intercept else None),
            as_tensor(np.asarray(y, dtype=np.float64), device),
            self.power,
            link,
            None if weights is None else as_tensor(weights, device),
            None if offset is None else as_tensor(offset, device),
        )
        self.datafit = self.tweedie
        self.free = torch.zeros(self.datafit.size, dtype=torch.bool, device=device)
        if self.fit_intercept:
            self.free[-1] = True
        self.factor = (~self.free).to(torch.float64)
        self._weigh(options.penalty_factor, self.datafit.size)

    def initial_state(self) -> Tensor:
        """Every coefficient zero and the intercept at its optimum, found by Newton's method
        from the (weighted) mean of ``y``, where it starts exactly without an offset."""
        w = super().initial_state()
        if not self.fit_intercept:
            return w
        fit = self.tweedie
        s = fit.weights if fit.weights is not None else torch.ones_like(fit.y)
        mean = float(s @ fit.y / s.sum())
        b = mean if self.link == "identity" else math.log(mean)
        offset = fit.offset if fit.offset is not None else torch.zeros_like(fit.y)
        for _ in range(100):
            first, curvature = derivatives(fit.y, b + offset, self.power, self.link)
            change = float(s @ first) / float(s @ curvature)
            b -= change
            if abs(change) <= 1e-15 * (1.0 + abs(b)):
                break
        w[-1] = b
        return w

    def least_norm(self, w: Tensor) -> Tensor:
        """The state of the smallest ``[coef, intercept]`` with the same linear predictor,
        ``pinv(X) X w`` on the uncentred features (the column of ones included): an
        unpenalized fit on collinear features is not unique. A sparse design is returned as
        it is."""
        X = self.tweedie.X
        if isinstance(X, SparseDesign):
            return w
        shift = torch.as_tensor(self.x_mean, device=X.device)
        uncentred = X + torch.cat([shift, shift.new_zeros(X.shape[1] - len(shift))])
        smallest = least_squares(uncentred, (X @ w)[:, None]).flatten()
        coef, intercept = smallest[: self.n_features], smallest[self.n_features :]
        return self.state_from(coef.cpu().numpy(), intercept.cpu().numpy())

    def coefficients(self, w: Tensor) -> tuple[np.ndarray, float]:
        """``(coef_ [p], intercept_)`` of a state (see the module docstring)."""
        values = w.cpu().numpy()
        coef = values[: self.n_features].copy()
        intercept = float(values[-1] - self.x_mean @ coef) if self.fit_intercept else 0.0
        return coef, intercept

    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        """The state of ``coef [p]`` and ``intercept`` (see the module docstring)."""
        parts = [np.asarray(coef, dtype=np.float64).reshape(-1)]
        if self.fit_intercept:
            shifted = np.asarray(intercept, dtype=np.float64) + self.x_mean @ parts[0]
            parts.append(np.atleast_1d(shifted))
        return torch.as_tensor(np.concatenate(parts), device=self.device)

    def mean(self, w: Tensor, X: Any, offset: np.ndarray | None = None) -> np.ndarray:
        """``[n]``: the predicted mean ``mu`` on ``X`` (with ``offset``)."""
        coef, intercept = self.coefficients(w)
        return predicted_mean(X, coef, intercept, self.link, offset)

    def per_sample_loss(self, w: Tensor, X: Any, y: np.ndarray) -> np.ndarray:
        """``[n]``: the unit deviance ``d(y_i, mu_i)``."""
        return unit_deviance(
            as_tensor(y, "cpu"), as_tensor(self.mean(w, X), "cpu"), self.power
        ).numpy()

    def score(
        self, w: Tensor, X: Any, y: np.ndarray | None, sample_weight: np.ndarray | None = None
    ) -> Score:
        """``(mean deviance, D^2)``, weighted by ``sample_weight``."""
        assert y is not None
        deviance, se = mean_and_se(self.per_sample_loss(w, X, y), sample_weight)
        return Score(deviance, d2(y, self.mean(w, X), self.power, sample_weight), se)


def predicted_mean(
    X: Any, coef: np.ndarray, intercept: float, link: str, offset: np.ndarray | None = None
) -> np.ndarray:
    """``[n]``: ``mu = exp(X coef + intercept + offset)`` (log link) or the linear
    predictor itself (identity link); ``X`` dense or scipy sparse."""
    eta = held_out_product(X, coef).ravel() + intercept
    if offset is not None:
        eta = eta + offset
    return np.exp(eta) if link == "log" else eta


def mean_deviance(
    y: np.ndarray, mu: np.ndarray, power: float, weights: np.ndarray | None = None
) -> float:
    """The (weighted) mean unit deviance of the means ``mu [n]`` for ``y [n]``."""
    deviance = unit_deviance(as_tensor(y, "cpu"), as_tensor(mu, "cpu"), power).numpy()
    return float(np.average(deviance, weights=weights))


def d2(y: np.ndarray, mu: np.ndarray, power: float, weights: np.ndarray | None) -> float:
    """The share of deviance explained, ``1 - D(y, mu) / D(y, mean(y))`` (weighted): R^2
    for ``power = 0``."""
    center = np.full(len(y), np.average(y, weights=weights))
    null = mean_deviance(y, center, power, weights)
    return 1.0 - mean_deviance(y, mu, power, weights) / null if null > 0 else 0.0
