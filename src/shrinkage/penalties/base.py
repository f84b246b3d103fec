"""The interface every penalty implements, and the checks they share."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from .._kernels import Step
from .._validation import check_real

__all__ = ["MultiTensorPenalty", "Penalty", "penalty_from_config"]


class Penalty(abc.ABC):
    """The interface every penalty implements (the contract: :mod:`shrinkage.penalties`)."""

    lam: float
    _registry: ClassVar[dict[str, type[Penalty]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            Penalty._registry[cls.__name__] = cls

    @abc.abstractmethod
    def value(self, w: Tensor) -> Tensor:
        """The penalty's value ``P(w)``.

        Args:
            w: the parameter, any shape.

        Returns:
            A differentiable 0-dim tensor.

        Example:
            >>> from shrinkage import L1
            >>> L1(0.5).value(torch.tensor([1.0, -2.0]))
            tensor(1.5000)
        """

    @abc.abstractmethod
    def prox_(self, w: Tensor, step: Step) -> Tensor:
        """The proximal step in place: ``w <- argmin_x 1/2 * sum((x - w)^2 / step) + P(x)``.

        Args:
            w: the parameter, any shape; overwritten (under ``torch.no_grad()``).
            step: a float ``>= 0``, or a tensor of positive element-wise steps broadcastable
                to ``w``.

        Returns:
            ``w``.

        Example:
            >>> from shrinkage import L1
            >>> L1(1.0).prox_(torch.tensor([0.5, -2.0]), 1.0)
            tensor([ 0., -1.])
        """

    def prox_list_(
        self, ws: Sequence[Tensor], step: Step | list[Tensor], *, foreach: bool = False
    ) -> None:
        """:meth:`prox_` on every tensor of ``ws``, in place.

        Args:
            ws: tensors of one device and dtype.
            step: one float for all, or one step tensor per tensor (each broadcastable to
                its tensor).
            foreach: pick the fused kernel tier where the penalty has two (see
                :mod:`shrinkage._kernels`); the result is the same.
        """
        if isinstance(step, list):
            for w, s in zip(ws, step, strict=True):
                self.prox_(w, s)
        else:
            for w in ws:
                self.prox_(w, step)

    def prox_scaled_(
        self,
        ws: Sequence[Tensor],
        lr: float,
        denominators: list[Tensor],
        *,
        foreach: bool = False,
    ) -> None:
        """The proximal Adam step: ``w <- prox_{(lr / d) P}(w)`` for each ``w`` and ``d``.

        Args:
            ws: the tensors, overwritten.
            lr: the learning rate.
            denominators: an adaptive optimizer's denominator per tensor, ``d > 0`` and the
                shape of its ``w``. They are scratch: this may overwrite them.
            foreach: as in :meth:`prox_list_`.

        Example:
            >>> from shrinkage import L1
            >>> w, d = torch.tensor([0.5, -2.0]), torch.tensor([1.0, 4.0])
            >>> L1(1.0).prox_scaled_([w], 1.0, [d])  # steps 1 and 1/4
            >>> w
            tensor([ 0.0000, -1.7500])
        """
        steps = [d.reciprocal_().mul_(lr) for d in denominators]
        self.prox_list_(ws, steps, foreach=foreach)

    @abc.abstractmethod
    def optimality(self, w: Tensor, grad: Tensor) -> Tensor:
        """The distance ``dist(-grad, dP(w))`` from optimality of ``f + P``.

        Args:
            w: the parameter.
            grad: ``∇f(w)``, the shape of ``w``.

        Returns:
            A 0-dim tensor, 0 exactly at a stationary point of ``f + P``.

        Example:
            >>> from shrinkage import L1
            >>> L1(1.0).optimality(torch.tensor([0.0, 2.0]), torch.tensor([0.5, -1.0]))
            tensor(0.)
        """

    @abc.abstractmethod
    def lambda_max(self, grad_at_zero: Tensor) -> float:
        """The smallest strength at which ``w = 0`` is optimal.

        Args:
            grad_at_zero: ``∇f(0)``, the parameter's shape.

        Returns:
            ``lam_max`` (for L1, ``max |∇f(0)|``).

        Example:
            >>> from shrinkage import L1
            >>> L1(1.0).lambda_max(torch.tensor([0.5, -2.0]))
            2.0
        """

    @abc.abstractmethod
    def get_config(self) -> dict[str, Any]:
        """The hyperparameters, as keyword arguments of the constructor."""

    @property
    def elementwise(self) -> bool:
        """True when ``prox_`` acts on each entry alone, the same way whatever the tensor's
        shape: several tensors may then be proximal-stepped as one flat buffer."""
        return False

    def with_lam(self, lam: float) -> Penalty:
        """A copy of this penalty with another strength.

        Args:
            lam: the new strength.

        Returns:
            A new penalty of the same type and settings.

        Example:
            >>> from shrinkage import L1
            >>> L1(1.0).with_lam(0.1)
            L1(lam=0.1)
        """
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
        """The proximal step of the penalty on its tensors, in place.

        Args:
            steps: ``steps[k]`` the step of the ``k``-th tensor of :attr:`named_parameters`,
                a float or a tensor of its shape for element-wise steps.
        """

    @abc.abstractmethod
    def summary(self) -> tuple[str, str, str]:
        """``(label, penalty, extent)`` for a table row, e.g. ``("layer 0 units", "group
        lasso per unit (lam=0.001)", "256 units")``."""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and torch.equal(a, b)
    return bool(a == b)


def penalty_from_config(name: str, config: dict[str, Any]) -> Penalty:
    """Rebuild a penalty from its class name and :meth:`Penalty.get_config`.

    Args:
        name: the class name (``"L1"``, ``"GroupLasso"``, ...).
        config: what ``get_config`` returned.

    Returns:
        A new penalty equal to the one saved.

    Raises:
        ValueError: an unknown name, with the known ones.
    """
    cls = Penalty._registry.get(name)
    if cls is None:
        known = ", ".join(sorted(Penalty._registry))
        raise ValueError(f"unknown penalty {name!r}; known penalties: {known}")
    return cls(**config)


def check_step(step: Step) -> None:
    if type(step) is float and 0.0 <= step < math.inf:  # the hot path: a valid lr
        return
    if not isinstance(step, Tensor):
        check_real("step", step, low=0.0)


def check_lam(lam: Any) -> float:
    return check_real("lam", lam, low=0.0)
