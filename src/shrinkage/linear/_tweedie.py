"""The Tweedie family of generalized linear models (Poisson, Gamma, compound Poisson-Gamma,
normal) as a smooth datafit ``f(w)`` over a flat coefficient vector ``w``.

With the linear predictor ``eta = X w + offset`` and the mean ``mu = exp(eta)`` (log link) or
``mu = eta`` (identity link), ``f`` is scikit-learn's half deviance,

    f(w) = sum_i s_i l(y_i, eta_i) / sum_i s_i,
    l(y, eta) = exp((2 - p) eta) / (2 - p) - y exp((1 - p) eta) / (1 - p)    (log link)

up to terms of ``y`` alone (``p = 1``: ``mu - y eta``; ``p = 2``: ``eta + y / mu``; the
identity link: the same in ``mu``, and ``(y - mu)^2 / 2`` for ``p = 0``). Its gradient
grows like ``exp(eta)``: there is no Lipschitz constant, so the solver minimises it through
local quadratic models
(:meth:`Tweedie.local_model`, a proximal Newton method), each a weighted least-squares
problem that the Lasso solver handles.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._datafits import Design, PerSampleTerm, Quadratic, _dense_columns
from ._design import SparseDesign, columns

__all__ = ["Tweedie", "unit_deviance"]


def _scaled(y: Tensor, values: Tensor) -> Tensor:
    """``y * values`` with ``0 * inf = 0``: a zero count contributes nothing, whatever
    ``eta``."""
    return torch.where(y != 0, y * values, torch.zeros_like(values))


def half_loss(y: Tensor, eta: Tensor, power: float, link: str) -> Tensor:
    """``[n]``: ``l(y_i, eta_i)`` of the module docstring; ``inf`` where the identity link
    gives a mean outside the family's range (``mu <= 0`` for ``power != 0``)."""
    if link == "identity":
        return _identity_loss(y, eta, power)
    if power == 1:
        return eta.exp() - _scaled(y, eta)
    if power == 2:
        return eta + _scaled(y, (-eta).exp())
    return ((2 - power) * eta).exp() / (2 - power) - _scaled(y, ((1 - power) * eta).exp()) / (
        1 - power
    )


def _identity_loss(y: Tensor, mu: Tensor, power: float) -> Tensor:
    if power == 0:
        return 0.5 * (y - mu) ** 2
    valid = mu > 0
    safe = torch.where(valid, mu, 1.0)
    if power == 1:
        values = safe - torch.special.xlogy(y, safe)
    elif power == 2:
        values = safe.log() + y / safe
    else:
        values = safe ** (2 - power) / (2 - power) - y * safe ** (1 - power) / (1 - power)
    return torch.where(valid, values, math.inf)


def derivatives(y: Tensor, eta: Tensor, power: float, link: str) -> tuple[Tensor, Tensor]:
    """``(dl/deta, curvature)``, each ``[n]``.

    The curvature is ``d2l/deta2`` where it is never negative (log link with ``1 <= p <=
    2``; ``p = 0``) and its expectation, the Fisher information ``(dmu/deta)^2 / mu^p``
    (Fisher scoring), elsewhere, so that every local model is convex.
    """
    if link == "identity":
        if power == 0:
            return eta - y, torch.ones_like(eta)
        inverse_variance = eta.clamp_min(torch.finfo(eta.dtype).tiny) ** -power
        return inverse_variance * (eta - y), inverse_variance
    high = ((2 - power) * eta).exp()  # mu^(2 - p)
    low = _scaled(y, ((1 - power) * eta).exp())  # y mu^(1 - p)
    first = high - low
    if 1 <= power <= 2:
        return first, (2 - power) * high - (1 - power) * low
    return first, high


def unit_deviance(y: Tensor, mu: Tensor, power: float) -> Tensor:
    """``[n]``: the Tweedie unit deviance ``d(y, mu)``, twice the log-likelihood ratio of
    ``mu`` against the saturated model (``power = 0``: ``(y - mu)^2``; ``1``: Poisson;
    ``2``: Gamma)."""
    if power == 0:
        return (y - mu) ** 2
    if power == 1:
        return 2 * (torch.special.xlogy(y, y) - torch.special.xlogy(y, mu) - y + mu)
    if power == 2:
        return 2 * (torch.log(mu / y) + y / mu - 1)
    y_part = y.clamp_min(0) ** (2 - power) / ((1 - power) * (2 - power))
    return 2 * (y_part - y * mu ** (1 - power) / (1 - power) + mu ** (2 - power) / (2 - power))


class Tweedie(PerSampleTerm):
    """``f(w)`` of the module docstring on ``X [n, d]`` (dense, or a sparse design), which
    already carries a column of ones when there is an intercept.

    Args:
        X: the design; y: ``[n]`` targets in the family's range.
        power: the Tweedie power ``p`` (``0``: normal, ``1``: Poisson, ``2``: Gamma).
        link: ``"log"`` or ``"identity"``.
        weights: ``[n]`` sample weights ``s`` (``None``: all 1).
        offset: ``[n]`` added to ``X w`` (``None``: zero).
    """

    def __init__(
        self,
        X: Design,
        y: Tensor,
        power: float,
        link: str,
        weights: Tensor | None = None,
        offset: Tensor | None = None,
    ) -> None:
        self.X, self.y, self.power, self.link = X, y, float(power), link
        self.weights, self.offset = weights, offset
        self._total = float(weights.sum()) if weights is not None else float(X.shape[0])

    @property
    def lipschitz(self) -> float:
        """None exists (the gradient grows like ``exp(eta)``): ``inf``. The solver uses
        :meth:`local_model` instead."""
        return math.inf

    def eta(self, w: Tensor) -> Tensor:
        """``[n]``: the linear predictor ``X w + offset``."""
        product = self.X @ w
        return product if self.offset is None else product + self.offset

    def _per_sample(self, v: Tensor) -> Tensor:
        return v if self.weights is None else self.weights * v

    def value(self, w: Tensor) -> Tensor:
        losses = half_loss(self.y, self.eta(w), self.power, self.link)
        return self._per_sample(losses).sum() / self._total

    def grad(self, w: Tensor) -> Tensor:
        first, _ = derivatives(self.y, self.eta(w), self.power, self.link)
        return self.X.T @ self._per_sample(first) / self._total

    def hessian(self, idx: Tensor, w: Tensor) -> Tensor:
        """``[k, k]``: ``X_idx^T diag(s * curvature) X_idx / sum s`` (see
        :func:`derivatives`)."""
        _, curvature = derivatives(self.y, self.eta(w), self.power, self.link)
        Xs = _dense_columns(self.X, idx)
        return (Xs * self._per_sample(curvature)[:, None]).T @ Xs / self._total

    def restrict(self, idx: Tensor) -> Tweedie:
        if idx.numel() == self.size:
            return self
        X = columns(self.X, idx)
        return Tweedie(X, self.y, self.power, self.link, self.weights, self.offset)

    def local_model(self, w: Tensor) -> Quadratic:
        """The second-order model of ``f`` at ``w`` as weighted least squares.

        With ``g_i = s_i l'(eta_i) / sum s`` and ``h_i = s_i l''(eta_i) / sum s``,
        ``f(w + d) ~ f(w) + sum_i g_i x_i^T d + sum_i h_i (x_i^T d)^2 / 2``, which is,
        up to a constant, ``||z' - X' v||^2 / (2 n)`` at ``v = w + d`` with the rows scaled by
        ``r_i = sqrt(n h_i)``: ``X' = diag(r) X`` and ``z' = r * (X w - g / h)``.

        Returns:
            a :class:`~shrinkage.linear._datafits.Quadratic` over the same ``[d]``
            coordinates.
        """
        first, curvature = derivatives(self.y, self.eta(w), self.power, self.link)
        g, h = self._per_sample(first) / self._total, self._per_sample(curvature) / self._total
        n = self.X.shape[0]
        scale = (n * h).sqrt()
        working = self.X @ w - torch.where(h > 0, g / torch.where(h > 0, h, 1.0), 0.0)
        design: Design
        if isinstance(self.X, SparseDesign):
            design = SparseDesign(self.X.X, self.X.center, scale.numpy())
        else:
            design = self.X * scale[:, None]
        return Quadratic(design, scale * working)
