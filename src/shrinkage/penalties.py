"""Penalties: small objects that hold their hyperparameters and know their maths.

Every penalty ``P`` offers the same four operations, and nothing outside this module looks
inside one:

``value(w)``
    ``P(w)``, differentiable, for any shape of ``w`` (a scalar tensor).
``prox_(w, step)``
    the proximal operator, in place and exact:
    ``w <- argmin_x 1/2 * sum((x - w)^2 / step) + P(x)``. ``step`` is a positive scalar or a
    tensor of positive element-wise steps (a diagonal metric, as in proximal Adam).
``optimality(w, grad)``
    ``dist(-grad, dP(w))``, the Euclidean distance from ``-grad`` to the subdifferential of
    ``P`` at ``w``: zero exactly when ``w`` is stationary for ``f + P`` with ``grad = ∇f(w)``.
``lambda_max(grad_at_zero)``
    the smallest ``lam`` for which ``w = 0`` is optimal, given ``∇f(0)``: the start of every
    regularization path (``inf`` when no finite ``lam`` makes zero optimal).

The formulas, with ``f`` the optional penalty factor (glmnet's ``penalty.factor``; 1 if unset):

=================  ===================================================================
``L1(lam)``        ``lam * sum(f * |w|)``
``L2(lam)``        ``lam * sum(f * w^2)``
``ElasticNet``     ``lam * (l1_ratio * sum(f * |w|) + (1 - l1_ratio) * sum(f * w^2))``
``GroupLasso``     ``lam * sum_g f_g * sqrt(size_g) * ||w_g||_2``
=================  ===================================================================

A penalty whose groups span several tensors at once (a hidden neuron's row in one layer and
its column in the next) implements :class:`MultiTensorPenalty` instead; the structured
groups of :mod:`shrinkage.structured` are one.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from . import _kernels
from ._group_layout import GroupLayout, group_prox_diagonal
from ._kernels import Step
from ._validation import check_factor, check_real

__all__ = [
    "L1",
    "L2",
    "ElasticNet",
    "GroupLasso",
    "MultiTensorPenalty",
    "Penalty",
    "penalty_from_config",
]


class Penalty(abc.ABC):
    """The interface every penalty implements (see the module docstring for the contract)."""

    lam: float
    _registry: ClassVar[dict[str, type[Penalty]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            Penalty._registry[cls.__name__] = cls

    @abc.abstractmethod
    def value(self, w: Tensor) -> Tensor:
        """``P(w)`` as a differentiable scalar tensor; ``w`` may have any shape."""

    @abc.abstractmethod
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        """Replace ``w`` by ``argmin_x 1/2 * sum((x - w)^2 / step) + P(x)``; return ``w``.

        ``step``: a non-negative float, or a tensor of positive element-wise steps
        broadcastable to ``w``. Runs under ``torch.no_grad()``.
        """

    def prox_list_(
        self, ws: Sequence[Tensor], step: Step | list[Tensor], *, foreach: bool = False
    ) -> None:
        """:meth:`prox_` on every tensor of ``ws`` (one device and dtype), with one scalar step
        for all or one step tensor per tensor. ``foreach`` picks the kernel tier where the
        penalty has two (see :mod:`shrinkage._kernels`); the result is the same."""
        if isinstance(step, list):
            for w, s in zip(ws, step, strict=True):
                self.prox_(w, s)
        else:
            for w in ws:
                self.prox_(w, step)

    @abc.abstractmethod
    def optimality(self, w: Tensor, grad: Tensor) -> Tensor:
        """``dist(-grad, dP(w))`` as a scalar tensor: 0 at a stationary point of ``f + P``."""

    @abc.abstractmethod
    def lambda_max(self, grad_at_zero: Tensor) -> float:
        """Smallest ``lam`` for which ``0`` is optimal given ``∇f(0) = grad_at_zero``."""

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The hyperparameters, as keyword arguments of the constructor."""

    @property
    def elementwise(self) -> bool:
        """True when ``prox_`` acts on each entry alone, the same way whatever the tensor's
        shape: several tensors may then be proximal-stepped as one flat buffer."""
        return False

    def with_lam(self, lam: float) -> Penalty:
        """The same penalty with another strength ``lam``."""
        return type(self)(**{**self.get_config(), "lam": lam})

    def __repr__(self) -> str:
        args = []
        for key, val in self.get_config().items():
            if isinstance(val, Tensor):
                args.append(f"{key}=tensor(shape={tuple(val.shape)})")
            elif val is not None and val is not False:
                args.append(f"{key}={val!r}")
        return f"{type(self).__name__}({', '.join(args)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Penalty)
        mine, theirs = self.get_config(), other.get_config()
        return all(_same(mine[k], theirs[k]) for k in mine)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.lam))


class MultiTensorPenalty(abc.ABC):
    """A penalty on slices of several tensors together, such as whole neurons or channels.

    :class:`~shrinkage.Regularizer` adds its :meth:`value` to the loss term and
    :class:`~shrinkage.Proximal` calls its :meth:`prox_` with one step per tensor; neither
    looks further inside.
    """

    @property
    @abc.abstractmethod
    def named_parameters(self) -> tuple[tuple[str, Tensor], ...]:
        """The tensors the penalty spans, ``(name in the model, tensor)``, in a fixed order."""

    @abc.abstractmethod
    def value(self) -> Tensor:
        """The penalty at the tensors' current values, a differentiable scalar."""

    @abc.abstractmethod
    def prox_(self, steps: Sequence[Step]) -> None:
        """The proximal step in place; ``steps[k]`` is the step of the ``k``-th tensor of
        :attr:`named_parameters` (a float, or a tensor of its shape for element-wise steps)."""

    @abc.abstractmethod
    def summary(self) -> tuple[str, str, str]:
        """``(label, penalty, extent)`` for a table row, e.g. ``("layer 0 units", "group
        lasso per unit (lam=0.001)", "256 units")``."""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and torch.equal(a, b)
    return bool(a == b)


def penalty_from_config(name: str, config: dict[str, Any]) -> Penalty:
    """Rebuild a penalty from its class name and :meth:`Penalty.get_config`."""
    cls = Penalty._registry.get(name)
    if cls is None:
        known = ", ".join(sorted(Penalty._registry))
        raise ValueError(f"unknown penalty {name!r}; known penalties: {known}")
    return cls(**config)


def _check_step(step: Step) -> None:
    if type(step) is float and 0.0 <= step < math.inf:  # the hot path: a valid lr
        return
    if not isinstance(step, Tensor):
        check_real("step", step, low=0.0)


def _lam_check(lam: Any) -> float:
    return check_real("lam", lam, low=0.0)


class _Separable(Penalty):
    """``sum_i f_i * (a * |w_i| + b * w_i^2)`` with ``a = lam * share``, ``b = lam * (1 - share)``.

    L1, L2 and Elastic Net are this one function with ``share`` = 1, 0 and ``l1_ratio``;
    ``positive=True`` adds the constraint ``w >= 0`` (glmnet's ``lower.limits = 0``).
    """

    factor: Tensor | None

    def __init__(self, lam: float, factor: Any = None, *, positive: bool = False) -> None:
        self.lam = _lam_check(lam)
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
        try:
            torch.broadcast_shapes(self.factor.shape, w.shape)
        except RuntimeError:
            raise ValueError(
                f"factor of shape {tuple(self.factor.shape)} does not broadcast to the parameter's "
                f"shape {tuple(w.shape)}"
            ) from None
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
            _check_step(step)
            s = float(step)
            threshold, divisor = s * a, 1.0 + 2.0 * b * s
        else:
            steps: list[Step] = list(step) if isinstance(step, list) else [step] * len(tensors)
            for each in steps:
                _check_step(each)
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


class GroupLasso(Penalty):
    """Group lasso ``P(w) = lam * sum_g f_g * sqrt(size_g) * ||w_g||_2``.

    Whole groups go to zero together: the prox scales each group by
    ``max(1 - step * lam * f_g * sqrt(size_g) / ||w_g||, 0)``.

    Args:
        lam: strength, ``>= 0``.
        groups: ``"rows"`` (slices along dim 0: a Linear's output neurons, a Conv's filters),
            ``"columns"`` (slices along dim 1: a Linear's input features, a Conv's input
            channels), or an integer tensor of the parameter's shape giving each entry's group id.
        factor: optional non-negative per-group weights ``f_g``, shape ``[G]``.
    """

    def __init__(self, lam: float, groups: str | Tensor = "rows", factor: Any = None) -> None:
        self.lam = _lam_check(lam)
        if isinstance(groups, Tensor):
            if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
                raise TypeError(
                    f"groups as a tensor must hold integer group ids, got dtype {groups.dtype}"
                )
            if groups.numel() and int(groups.min()) < 0:
                raise ValueError(f"groups ids must be >= 0, got minimum {int(groups.min())}")
            groups = groups.detach().long()
        elif groups not in ("rows", "columns"):
            raise ValueError(
                "groups must be 'rows', 'columns' or an integer tensor of group ids; "
                f"got {groups!r}"
            )
        self.groups = groups
        self.factor = check_factor("factor", factor)

    def get_config(self) -> dict[str, Any]:
        return {"lam": self.lam, "groups": self.groups, "factor": self.factor}

    def _layout(self, w: Tensor) -> tuple[GroupLayout, Tensor]:
        """The group layout of ``w`` and the per-group weights ``f_g * sqrt(size_g)``."""
        layout = GroupLayout(w.shape, self.groups, w.device)
        weights = layout.sizes.to(w.dtype).sqrt()
        if self.factor is not None:
            if self.factor.numel() not in (1, layout.n_groups):
                raise ValueError(
                    f"factor has {self.factor.numel()} entries but the parameter of shape "
                    f"{tuple(w.shape)} has {layout.n_groups} groups"
                )
            weights = weights * self.factor.to(device=w.device, dtype=w.dtype).reshape(-1)
        return layout, weights

    def value(self, w: Tensor) -> Tensor:
        layout, weights = self._layout(w)
        return self.lam * (weights * layout.norms(w)).sum()

    def prox_(self, w: Tensor, step: Step) -> Tensor:
        _check_step(step)
        if self.lam == 0:
            return w
        with torch.no_grad():
            layout, weights = self._layout(w)
            tau = self.lam * weights
            if isinstance(step, Tensor) and step.numel() > 1:
                w.copy_(group_prox_diagonal(w, step.expand_as(w), tau, layout))
                return w
            norms = layout.norms(w)
            t = step * tau
            keep = norms > t
            scale = torch.where(keep, 1.0 - t / torch.where(keep, norms, 1.0), 0.0)
            w.mul_(layout.expand(scale.to(w.dtype)))
        return w

    def optimality(self, w: Tensor, grad: Tensor) -> Tensor:
        layout, weights = self._layout(w)
        tau = self.lam * weights
        norms = layout.norms(w)
        nonzero = norms > 0
        direction = w / layout.expand(torch.where(nonzero, norms, 1.0))
        on_support = layout.sum((grad + layout.expand(tau) * direction) ** 2).sqrt()
        off_support = torch.clamp(layout.norms(grad) - tau, min=0.0)
        return torch.linalg.vector_norm(torch.where(nonzero, on_support, off_support))

    def lambda_max(self, grad_at_zero: Tensor) -> float:
        g = grad_at_zero.detach()
        layout, weights = self._layout(g)
        gnorms = layout.norms(g)
        penalized = weights > 0
        if bool((gnorms[~penalized] > 0).any()):
            return math.inf
        if not bool(penalized.any()):
            return 0.0
        return float((gnorms[penalized] / weights[penalized]).max())
