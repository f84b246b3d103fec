"""L1, L2 and Elastic Net: one separable function ``sum_i f_i * (a |w_i| + b w_i^2)``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .. import _kernels
from .._kernels import Step
from .._validation import broadcasts_to, check_factor, check_real
from .base import Penalty, check_lam, check_step

__all__ = ["L1", "L2", "ElasticNet"]


class _Separable(Penalty):
    """``sum_i f_i * (a * |w_i| + b * w_i^2)`` with ``a = lam * share``, ``b = lam * (1 - share)``.

    L1, L2 and Elastic Net are this one function with ``share`` = 1, 0 and ``l1_ratio``;
    ``positive=True`` adds the constraint ``w >= 0`` (glmnet's ``lower.limits = 0``).
    """

    factor: Tensor | None

    def __init__(self, lam: float, factor: Any = None, *, positive: bool = False) -> None:
        self.lam = check_lam(lam)
        self.factor = check_factor("factor", factor)
        if not isinstance(positive, bool):
            raise TypeError(f"positive must be True or False, got {positive!r}")
        self.positive = positive

    @property
    def _share(self) -> float:
        raise NotImplementedError

    @property
    def elementwise(self) -> bool:
        return self.factor is None

    def _coefficients(self) -> tuple[float, float]:
        share = self._share
        return self.lam * share, self.lam * (1.0 - share)

    def _factor_for(self, w: Tensor) -> Tensor | None:
        if self.factor is None:
            return None
        if not broadcasts_to(self.factor.shape, w.shape):
            raise ValueError(
                f"factor of shape {tuple(self.factor.shape)} does not broadcast to the parameter's "
                f"shape {tuple(w.shape)}"
            )
        return self.factor.to(device=w.device, dtype=w.dtype)

    def value(self, w: Tensor) -> Tensor:
        a, b = self._coefficients()
        f = self._factor_for(w)
        if a == 0 and b == 0:
            return (w * 0.0).sum()  # still a function of w, so autograd works on it
        total = a * (w.abs().sum() if f is None else (f * w.abs()).sum()) if a > 0 else None
        if b > 0:
            ridge = b * ((w * w).sum() if f is None else (f * w * w).sum())
            total = ridge if total is None else total + ridge
        assert total is not None
        return total

    def prox_(self, w: Tensor, step: Step) -> Tensor:
        self.prox_list_([w], [step] if isinstance(step, Tensor) else step)
        return w

    def prox_list_(
        self, ws: Sequence[Tensor], step: Step | list[Tensor], *, foreach: bool = False
    ) -> None:
        a, b = self._coefficients()
        if a == 0 and b == 0 and not self.positive:
            return
        tensors = ws if isinstance(ws, list) else list(ws)
        threshold: float | list[Tensor]
        divisor: float | list[Tensor]
        if self.factor is None and not isinstance(step, list):
            check_step(step)
            s = float(step)
            threshold, divisor = s * a, 1.0 + 2.0 * b * s
        else:
            steps: list[Step] = list(step) if isinstance(step, list) else [step] * len(tensors)
            for each in steps:
                check_step(each)
            scales = [
                torch.as_tensor(s, dtype=w.dtype, device=w.device)
                if (f := self._factor_for(w)) is None
                else s * f
                for w, s in zip(tensors, steps, strict=True)
            ]
            threshold = [sc * a for sc in scales]
            divisor = [1.0 + 2.0 * b * sc for sc in scales]
        if torch.is_grad_enabled() and any(w.requires_grad for w in tensors):
            with torch.no_grad():
                _kernels.separable_prox_(tensors, a, b, threshold, divisor, self.positive, foreach)
        else:  # nothing to record: skip entering no_grad
            _kernels.separable_prox_(tensors, a, b, threshold, divisor, self.positive, foreach)

    def prox_scaled_(
        self,
        ws: Sequence[Tensor],
        lr: float,
        denominators: list[Tensor],
        *,
        foreach: bool = False,
    ) -> None:
        a, b = self._coefficients()
        if a == 0 and b == 0 and not self.positive:
            return
        if self.factor is not None:  # per-entry strengths: the general form
            super().prox_scaled_(ws, lr, denominators, foreach=foreach)
            return
        check_step(float(lr))
        tensors = ws if isinstance(ws, list) else list(ws)
        with torch.no_grad():
            _kernels.scaled_separable_prox_(
                tensors, lr * a, 2.0 * lr * b, denominators, self.positive, foreach
            )

    def optimality(self, w: Tensor, grad: Tensor) -> Tensor:
        a, b = self._coefficients()
        f = self._factor_for(w)
        a_f: Tensor | float = a if f is None else a * f
        smooth = grad + 2.0 * (b * w) if f is None else grad + 2.0 * (b * (f * w))
        on_support = smooth + a_f * torch.sign(w)
        # at zero, -smooth must lie in [-a, a] (in (-inf, a] under w >= 0)
        reach = (-smooth).clamp_min(0.0) if self.positive else smooth.abs()
        off_support = torch.clamp(reach - a_f, min=0.0)
        return torch.linalg.vector_norm(torch.where(w != 0, on_support, off_support))

    def kinked(self, w: Tensor) -> Tensor:
        """``[*w.shape]`` boolean: where zero is a kink of ``P`` (a weighted L1 part) or a wall
        (``positive``). Second-order solvers keep such a coordinate on its side of zero; the
        others (a pure L2 part) may cross it smoothly."""
        a, _ = self._coefficients()
        if self.positive:
            return torch.ones_like(w, dtype=torch.bool)
        f = self._factor_for(w)
        if a == 0:
            return torch.zeros_like(w, dtype=torch.bool)
        return torch.ones_like(w, dtype=torch.bool) if f is None else (f > 0).expand_as(w).clone()

    def hessian_diag(self, w: Tensor) -> Tensor:
        """Diagonal of ``P``'s Hessian at ``w`` where ``P`` is twice differentiable
        (``w_i != 0``): ``2 * lam * (1 - share) * f``. Second-order solvers polish on the
        support with it."""
        _, b = self._coefficients()
        f = self._factor_for(w)
        return torch.full_like(w, 2.0 * b) if f is None else (2.0 * b * f).expand_as(w).clone()

    def lambda_max(self, grad_at_zero: Tensor) -> float:
        g = grad_at_zero.detach()
        g = (-g).clamp_min(0.0) if self.positive else g.abs()  # how far -grad reaches out
        f = self._factor_for(g)
        weights = torch.full_like(g, self._share) if f is None else self._share * f.expand_as(g)
        penalized = weights > 0
        if bool((g[~penalized] > 0).any()):
            return math.inf
        if not bool(penalized.any()):
            return 0.0
        return float((g[penalized] / weights[penalized]).max())


class L1(_Separable):
    """Lasso penalty ``P(w) = lam * sum(f * |w|)``.

    Its prox is soft-thresholding, ``sign(w) * max(|w| - step * lam * f, 0)``, which sets small
    weights exactly to zero.

    Args:
        lam: strength, ``>= 0``.
        factor: optional non-negative per-element weights ``f`` broadcastable to the parameter
            (glmnet's ``penalty.factor``); 0 leaves an entry unpenalised.
        positive: also constrain ``w >= 0`` (the prox then sets negative entries to zero).
    """

    def __init__(self, lam: float, factor: Any = None, *, positive: bool = False) -> None:
        super().__init__(lam, factor, positive=positive)

    @property
    def _share(self) -> float:
        return 1.0

    def get_config(self) -> dict[str, Any]:
        return {"lam": self.lam, "factor": self.factor, "positive": self.positive}


class L2(_Separable):
    """Ridge penalty ``P(w) = lam * sum(f * w^2)`` (Keras's ``l2(lam)``; no factor 1/2).

    Its prox is the shrinkage ``w / (1 + 2 * step * lam * f)``. Torch's ``weight_decay=wd`` under
    SGD is ``L2(wd / 2)``: see :func:`shrinkage.convert`.

    Args:
        lam: strength, ``>= 0``.
        factor: optional non-negative per-element weights ``f`` broadcastable to the parameter.
        positive: also constrain ``w >= 0`` (the prox then sets negative entries to zero).
    """

    def __init__(self, lam: float, factor: Any = None, *, positive: bool = False) -> None:
        super().__init__(lam, factor, positive=positive)

    @property
    def _share(self) -> float:
        return 0.0

    def get_config(self) -> dict[str, Any]:
        return {"lam": self.lam, "factor": self.factor, "positive": self.positive}


class ElasticNet(_Separable):
    """Elastic Net ``P(w) = lam * (l1_ratio * sum(f * |w|) + (1 - l1_ratio) * sum(f * w^2))``.

    ``l1_ratio = 1`` is :class:`L1`, ``l1_ratio = 0`` is :class:`L2`. The prox soft-thresholds by
    ``step * lam * l1_ratio * f`` and then divides by ``1 + 2 * step * lam * (1 - l1_ratio) * f``.

    The L2 part is ``sum w^2`` as in Keras's ``l1_l2``, not the ``sum w^2 / 2`` of
    scikit-learn's (and :class:`shrinkage.linear.ElasticNet`'s) objective
    ``alpha * (l1_ratio * |w|_1 + (1 - l1_ratio) / 2 * |w|_2^2)``. That objective is this
    penalty with ``lam = alpha * (1 + l1_ratio) / 2`` and ``l1_ratio' = 2 * l1_ratio /
    (1 + l1_ratio)``; :func:`shrinkage.convert` does it per term.

    Args:
        lam: strength, ``>= 0``.
        l1_ratio: the share of the L1 term, in ``[0, 1]``.
        factor: optional non-negative per-element weights ``f`` broadcastable to the parameter.
        positive: also constrain ``w >= 0`` (the prox then sets negative entries to zero).
    """

    def __init__(
        self, lam: float, l1_ratio: float = 0.5, factor: Any = None, *, positive: bool = False
    ) -> None:
        super().__init__(lam, factor, positive=positive)
        self.l1_ratio = check_real("l1_ratio", l1_ratio, low=0.0, high=1.0)

    @property
    def _share(self) -> float:
        return self.l1_ratio

    def get_config(self) -> dict[str, Any]:
        return {
            "lam": self.lam,
            "l1_ratio": self.l1_ratio,
            "factor": self.factor,
            "positive": self.positive,
        }
