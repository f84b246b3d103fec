"""Keras 3 regularizers that know their proximal operators.

Each is a ``keras.regularizers.Regularizer`` with Keras's own scale, so it is a drop-in for
``kernel_regularizer=``: ``L1(0.01)`` adds ``0.01 * sum|w|`` to the loss, as
``keras.regularizers.l1(0.01)`` does. Computed with ``keras.ops``, they run on every backend.

With ``proximal=True`` (the default) the penalty is applied by a proximal optimizer of
:mod:`shrinkage.keras.optimizers`: after each update it sets ``w <- prox_{s P}(w)`` with the
optimizer's own element-wise step ``s`` (``lr`` for SGD, Adam's ``lr / (sqrt(v_hat) +
epsilon)`` for ``ProximalAdam``), which puts weights exactly at zero at the solution of
``loss + P``. Its loss term then only reports: ``model.fit`` logs the penalized loss, but the
term carries no gradient (it would add the penalty a second time). Under a plain Keras
optimizer such a penalty is therefore not applied at all: :func:`shrinkage.keras.sparsity`
and the :class:`shrinkage.keras.PenaltyCheck` callback warn so. ``proximal=False`` makes it a
plain loss term like Keras's own, under any optimizer, with no exact zeros.

A penalty is a pure function of the weights, as Keras's regularizers are: one object may
serve any number of layers.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras
from keras import ops

from .._validation import check_choice, check_real

__all__ = ["L1", "L1L2", "L2", "ElasticNet", "GroupLasso", "Penalty", "proximal_penalty"]

_FORMER = {"rows": "inputs", "columns": "outputs"}
"""The former words for ``GroupLasso``'s ``groups`` here (a Keras kernel is ``[in, out]``),
and what they are now."""


def _soft(x: Any, threshold: Any) -> Any:
    """``sign(x) * max(|x| - threshold, 0)``, entry by entry."""
    return ops.sign(x) * ops.maximum(ops.abs(x) - threshold, 0.0)


_NEWTON_STEPS = 30
"""Iterations of :func:`_group_prox_diagonal` (a fixed count: no data-dependent loop under
``jit_compile``); safeguarded Newton converges in a handful."""


def _group_prox_diagonal(x: Any, step: Any, tau: float, axes: tuple[int, ...]) -> Any:
    """The group-lasso prox under the diagonal metric ``diag(1 / step)``: minimises
    ``sum_i (z_i - x_i)^2 / (2 step_i) + tau * sum_g ||z_g||`` over groups spanning ``axes``.

    With ``d = 1 / step``, a group is zero iff ``||d * x||_g <= tau``; otherwise
    ``z_i = d_i x_i r / (d_i r + tau)`` where ``r = ||z_g||`` solves
    ``h(r) = phi(r)^(-1/2) - 1 = 0``, ``phi(r) = sum_i (d_i x_i / (d_i r + tau))^2``: Newton's
    method kept inside the bracket ``[0, ||x_g||]`` by bisection (``h`` is linear in ``r``
    when the steps are equal on the group, and Newton then lands in one iteration).
    """
    x = ops.convert_to_tensor(x)
    d = 1.0 / ops.convert_to_tensor(step, dtype=x.dtype)
    dx = d * x
    total = lambda t: ops.sum(t, axis=axes, keepdims=True)  # noqa: E731
    active = ops.sqrt(total(dx * dx)) > tau
    lo = ops.zeros_like(total(x))
    hi = ops.sqrt(total(x * x))
    r = 0.5 * hi
    for _ in range(_NEWTON_STEPS):
        denominator = d * r + tau
        phi = ops.maximum(total(ops.square(dx / denominator)), 1e-30)
        h = 1.0 / ops.sqrt(phi) - 1.0
        dphi = total(-2.0 * d * dx * dx / denominator**3)
        dh = -0.5 * phi ** (-1.5) * dphi
        lo = ops.where(h < 0, r, lo)
        hi = ops.where(h > 0, r, hi)
        newton = r - h / ops.where(dh == 0, 1.0, dh)
        inside = ops.logical_and(newton > lo, newton < hi)
        r = ops.where(inside, newton, 0.5 * (lo + hi))
    z = dx * r / (d * r + tau)
    return ops.where(active, z, ops.zeros_like(z))


class Penalty(keras.regularizers.Regularizer):
    """A penalty ``P(w)`` with its proximal operator.

    The operator is ``prox_{s P}(w) = argmin_z (1/2) sum (z - w)^2 / s + P(z)``, for a scalar
    step ``s`` or element-wise steps. Subclasses define :meth:`value` and :meth:`prox`.

    Args:
        proximal: whether a proximal optimizer applies the penalty (its loss term then only
            reports), or it is a plain loss term (see the module docstring).

    Raises:
        ValueError: ``proximal`` not a bool.
    """

    def __init__(self, proximal: bool = True) -> None:
        if not isinstance(proximal, bool):
            raise ValueError(f"proximal must be True or False, got {proximal!r}")
        self.proximal = proximal

    def value(self, x: Any) -> Any:
        """The penalty's value.

        Args:
            x: the weights, any shape.

        Returns:
            ``P(x)``, a scalar tensor.
        """
        raise NotImplementedError

    def prox(self, x: Any, step: Any) -> Any:
        """The proximal operator.

        Args:
            x: the weights, any shape.
            step: a scalar, or element-wise steps of ``x``'s shape (an adaptive
                optimizer's ``lr / denominator``).

        Returns:
            ``prox_{step P}(x)``, the shape of ``x``.
        """
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        """The loss term ``P(x)``; without a gradient when ``proximal`` (a proximal
        optimizer applies it)."""
        value = self.value(x)
        return ops.stop_gradient(value) if self.proximal else value

    def get_config(self) -> dict[str, Any]:
        return {"proximal": self.proximal}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def proximal_penalty(variable: Any) -> Penalty | None:
    """The proximal :class:`Penalty` a Keras variable carries as its ``regularizer``.

    Args:
        variable: a Keras variable (``layer.kernel``, an item of ``model.trainable_variables``).

    Returns:
        Its regularizer if that is a :class:`Penalty` with ``proximal=True``, else ``None``.
    """
    penalty = getattr(variable, "regularizer", None)
    return penalty if isinstance(penalty, Penalty) and penalty.proximal else None


@keras.saving.register_keras_serializable(package="shrinkage")
class L1(Penalty):
    """``P(w) = l1 * sum|w_i|``, Keras's ``l1``, with soft-thresholding as its prox.

    The prox is ``sign(w) * max(|w| - step * l1, 0)``.

    Args:
        l1: the strength, ``>= 0``.
        proximal: as in :class:`Penalty`.

    Example:
        >>> import numpy as np
        >>> np.asarray(L1(0.5).prox(np.array([1.0, -0.2]), 1.0)).tolist()
        [0.5, -0.0]
    """

    def __init__(self, l1: float = 0.01, proximal: bool = True) -> None:
        super().__init__(proximal)
        self.l1 = check_real("l1", l1, low=0.0)

    def value(self, x: Any) -> Any:
        return self.l1 * ops.sum(ops.abs(x))

    def prox(self, x: Any, step: Any) -> Any:
        return _soft(x, step * self.l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, **super().get_config()}


@keras.saving.register_keras_serializable(package="shrinkage")
class L2(Penalty):
    """``P(w) = l2 * sum w_i^2``, Keras's ``l2``, with the prox ``w / (1 + 2 * step * l2)``.

    Args:
        l2: the strength, ``>= 0``.
        proximal: as in :class:`Penalty`.
    """

    def __init__(self, l2: float = 0.01, proximal: bool = True) -> None:
        super().__init__(proximal)
        self.l2 = check_real("l2", l2, low=0.0)

    def value(self, x: Any) -> Any:
        return self.l2 * ops.sum(ops.square(x))

    def prox(self, x: Any, step: Any) -> Any:
        return x / (1.0 + 2.0 * step * self.l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2, **super().get_config()}


@keras.saving.register_keras_serializable(package="shrinkage")
class L1L2(Penalty):
    """``P(w) = l1 * sum|w_i| + l2 * sum w_i^2``, Keras's ``L1L2`` (``l1_l2``).

    The prox soft-thresholds by ``step * l1``, then divides by ``1 + 2 * step * l2``. The
    torch port's :class:`shrinkage.ElasticNet` is the same penalty with one strength and a
    mix: ``ElasticNet(lam, l1_ratio)`` is ``L1L2(lam * l1_ratio, lam * (1 - l1_ratio))``.

    Args:
        l1: the L1 strength, ``>= 0``.
        l2: the L2 strength, ``>= 0``.
        proximal: as in :class:`Penalty`.

    Example:
        >>> L1L2(0.01, 0.001).get_config()
        {'l1': 0.01, 'l2': 0.001, 'proximal': True}
    """

    def __init__(self, l1: float = 0.01, l2: float = 0.01, proximal: bool = True) -> None:
        super().__init__(proximal)
        self.l1, self.l2 = check_real("l1", l1, low=0.0), check_real("l2", l2, low=0.0)

    def value(self, x: Any) -> Any:
        return self.l1 * ops.sum(ops.abs(x)) + self.l2 * ops.sum(ops.square(x))

    def prox(self, x: Any, step: Any) -> Any:
        return _soft(x, step * self.l1) / (1.0 + 2.0 * step * self.l2)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2, **super().get_config()}


@keras.saving.register_keras_serializable(package="shrinkage")
class ElasticNet(L1L2):
    """The former name of :class:`L1L2` here (``l1, l2``), kept with a ``FutureWarning``:
    ``ElasticNet`` names ``(lam, l1_ratio)`` in the torch port."""

    def __init__(self, l1: float = 0.01, l2: float = 0.01, proximal: bool = True) -> None:
        warnings.warn(
            "shrinkage.keras.ElasticNet(l1, l2) is now shrinkage.keras.L1L2(l1, l2), Keras's "
            "name for the pair; ElasticNet means (lam, l1_ratio) in shrinkage",
            FutureWarning,
            stacklevel=2,
        )
        super().__init__(l1, l2, proximal)


@keras.saving.register_keras_serializable(package="shrinkage")
class GroupLasso(Penalty):
    """``P(w) = lam * sum_g sqrt(size_g) * ||w_g||_2`` over the slices of a kernel.

    The prox scales each group by ``max(1 - step * lam * sqrt(size_g) / ||w_g||, 0)``, so
    whole groups reach zero.

    Args:
        lam: the strength, ``>= 0``.
        groups: the slices, with the same meaning as in :class:`shrinkage.GroupLasso`.

            - ``"inputs"``: one group per input, the second-to-last axis (a ``Dense``
              kernel ``[in, out]``'s rows, a ``Conv2D`` kernel ``[kh, kw, in, out]``'s input
              channels), for feature selection;
            - ``"outputs"``: one group per output, the last axis (a ``Dense`` layer's
              neurons, a ``Conv2D``'s filters).

            The former ``"rows"`` (inputs) and ``"columns"`` (outputs) still work, with a
            ``FutureWarning``.
        proximal: as in :class:`Penalty`.

    Raises:
        ValueError: another ``groups``, or a negative ``lam``.
    """

    def __init__(self, lam: float = 0.01, groups: str = "inputs", proximal: bool = True) -> None:
        super().__init__(proximal)
        self.lam = check_real("lam", lam, low=0.0)
        if groups in _FORMER:
            warnings.warn(
                f"GroupLasso(groups={groups!r}) is now groups={_FORMER[groups]!r} (the same "
                "groups; the word says the same in the torch GroupLasso)",
                FutureWarning,
                stacklevel=2,
            )
            groups = _FORMER[groups]
        self.groups = check_choice("groups", groups, ("inputs", "outputs"))

    def _axes(self, x: Any) -> tuple[tuple[int, ...], float]:
        """The axes a group spans, and its size."""
        shape = tuple(x.shape)
        if len(shape) < 2:
            raise ValueError(
                f"GroupLasso(groups={self.groups!r}) needs a kernel of 2 or more axes, got "
                f"shape {list(shape)}"
            )
        axis = len(shape) - (2 if self.groups == "inputs" else 1)
        axes = tuple(i for i in range(len(shape)) if i != axis)
        return axes, float(math.prod(shape[i] for i in axes))

    def _norms(self, x: Any) -> tuple[Any, float]:
        axes, size = self._axes(x)
        squares = ops.sum(ops.square(x), axis=axes, keepdims=True)
        # a zero group's norm is 1e-30, not 0: its gradient (as a plain loss term) stays finite
        return ops.sqrt(ops.maximum(squares, 1e-60)), size

    def value(self, x: Any) -> Any:
        norms, size = self._norms(x)
        return self.lam * math.sqrt(size) * ops.sum(norms)

    def prox(self, x: Any, step: Any) -> Any:
        """The group prox, with a scalar step or element-wise ones.

        Args:
            x: the kernel, two or more axes.
            step: a scalar, or element-wise steps of ``x``'s shape (solved by
                :func:`_group_prox_diagonal`).

        Returns:
            ``prox_{step P}(x)``, the shape of ``x``.
        """
        x = ops.convert_to_tensor(x)
        if len(getattr(step, "shape", ())) > 0:
            axes, size = self._axes(x)
            return _group_prox_diagonal(x, step, self.lam * math.sqrt(size), axes)
        norms, size = self._norms(x)
        threshold = step * self.lam * math.sqrt(size)
        scale = ops.maximum(1.0 - threshold / ops.maximum(norms, 1e-30), 0.0)
        return x * ops.cast(scale, x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"lam": self.lam, "groups": self.groups, **super().get_config()}
