"""Keras 3 regularizers that know their proximal operators.

Each is a ``keras.regularizers.Regularizer`` with Keras's own scale, so it is a drop-in for
``kernel_regularizer=``: ``L1(0.01)`` adds ``0.01 * sum|w|`` to the loss, as
``keras.regularizers.l1(0.01)`` does. Computed with ``keras.ops``, they run on every backend.

With ``proximal=True`` (the default) a proximal optimizer of
:mod:`shrinkage.keras.optimizers` takes the penalty over when it is built: after each update
it applies ``w <- prox_{lr * P}(w)`` with the current learning rate ``lr``, which sets
weights exactly to zero, and the penalty's loss term then carries no gradient (the loss that
``model.fit`` logs still includes its value). It stays taken over (``penalty.taken``) while
the penalty object lives: to train the same layers on with a plain optimizer, set
``taken = False`` or use new penalties. Until an optimizer takes it over, the penalty is a
plain loss term like Keras's, and the second time it is computed so (the first may come from
``fit`` building the model before its optimizer) it warns that its zeros will not happen
(TensorFlow traces ``fit``'s step once, so there it warns at the next trace, e.g.
``evaluate``). ``proximal=False`` keeps it a plain loss term under any optimizer. In a custom
training loop, build the proximal optimizer (``optimizer.build(model.trainable_variables)``)
before the first step, as ``fit`` does.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras
from keras import ops

__all__ = ["L1", "L2", "ElasticNet", "GroupLasso", "Penalty"]


def _strength(name: str, value: Any) -> float:
    """``value`` as a float ``>= 0``, or a ``ValueError`` naming the argument."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}") from None
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def _soft(x: Any, threshold: Any) -> Any:
    """``sign(x) * max(|x| - threshold, 0)``, entry by entry."""
    return ops.sign(x) * ops.maximum(ops.abs(x) - threshold, 0.0)


class Penalty(keras.regularizers.Regularizer):
    """A penalty ``P(w)`` with its proximal operator
    ``prox_{s P}(w) = argmin_z (1/2)||z - w||^2 + s P(z)``.

    Subclasses define :meth:`value` and :meth:`prox`; ``proximal`` says whether a proximal
    optimizer applies it (see the module docstring)."""

    def __init__(self, proximal: bool = True) -> None:
        if not isinstance(proximal, bool):
            raise ValueError(f"proximal must be True or False, got {proximal!r}")
        self.proximal = proximal
        self.taken = False  # set by a proximal optimizer that applies this penalty
        self._calls = 0

    def value(self, x: Any) -> Any:
        """``P(x)``, a scalar."""
        raise NotImplementedError

    def prox(self, x: Any, step: Any) -> Any:
        """``prox_{step * P}(x)``, the shape of ``x``."""
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        value = self.value(x)
        if self.proximal and self.taken:
            return ops.stop_gradient(value)  # the optimizer's prox applies it
        self._calls += 1
        if self.proximal and self._calls == 2:  # the first may come before fit builds
            warnings.warn(
                f"{self!r} is proximal, but no proximal optimizer of shrinkage.keras applies "
                "it: it acts as a plain loss term and its weights will not reach exact zeros "
                "(train with ProximalSGD, ProximalAdam, ProximalAdamW or proximal(...), or "
                "pass proximal=False to silence this)",
                UserWarning,
                stacklevel=2,
            )
        return value

    def get_config(self) -> dict[str, Any]:
        return {"proximal": self.proximal}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package="shrinkage")
class L1(Penalty):
    """``P(w) = l1 * sum|w_i|`` (Keras's ``l1``); prox: soft-thresholding,
    ``sign(w) * max(|w| - step * l1, 0)``."""

    def __init__(self, l1: float = 0.01, proximal: bool = True) -> None:
        super().__init__(proximal)
        self.l1 = _strength("l1", l1)

    def value(self, x: Any) -> Any:
        return self.l1 * ops.sum(ops.abs(x))

    def prox(self, x: Any, step: Any) -> Any:
        return _soft(x, step * self.l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, **super().get_config()}


@keras.saving.register_keras_serializable(package="shrinkage")
class L2(Penalty):
    """``P(w) = l2 * sum w_i^2`` (Keras's ``l2``); prox: ``w / (1 + 2 * step * l2)``."""

    def __init__(self, l2: float = 0.01, proximal: bool = True) -> None:
        super().__init__(proximal)
        self.l2 = _strength("l2", l2)

    def value(self, x: Any) -> Any:
        return self.l2 * ops.sum(ops.square(x))

    def prox(self, x: Any, step: Any) -> Any:
        return x / (1.0 + 2.0 * step * self.l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2, **super().get_config()}


@keras.saving.register_keras_serializable(package="shrinkage")
class ElasticNet(Penalty):
    """``P(w) = l1 * sum|w_i| + l2 * sum w_i^2`` (Keras's ``l1_l2``); prox: soft-threshold by
    ``step * l1``, then divide by ``1 + 2 * step * l2``."""

    def __init__(self, l1: float = 0.01, l2: float = 0.01, proximal: bool = True) -> None:
        super().__init__(proximal)
        self.l1, self.l2 = _strength("l1", l1), _strength("l2", l2)

    def value(self, x: Any) -> Any:
        return self.l1 * ops.sum(ops.abs(x)) + self.l2 * ops.sum(ops.square(x))

    def prox(self, x: Any, step: Any) -> Any:
        return _soft(x, step * self.l1) / (1.0 + 2.0 * step * self.l2)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2, **super().get_config()}


@keras.saving.register_keras_serializable(package="shrinkage")
class GroupLasso(Penalty):
    """``P(w) = lam * sum_g sqrt(size_g) * ||w_g||_2`` over the slices of a kernel.

    ``groups="rows"``: one group per input (the second-to-last axis: a ``Dense`` kernel
    ``[in, out]``'s rows, a ``Conv2D`` kernel ``[kh, kw, in, out]``'s input channels), for
    feature selection; ``"columns"``: one group per unit (the last axis: a ``Dense`` layer's
    neurons, a ``Conv2D``'s filters). The prox scales each group by
    ``max(1 - step * lam * sqrt(size_g) / ||w_g||, 0)``, so whole groups reach zero."""

    def __init__(self, lam: float = 0.01, groups: str = "rows", proximal: bool = True) -> None:
        super().__init__(proximal)
        self.lam = _strength("lam", lam)
        if groups not in ("rows", "columns"):
            raise ValueError(f"groups must be 'rows' or 'columns', got {groups!r}")
        self.groups = groups

    def _axes(self, x: Any) -> tuple[tuple[int, ...], float]:
        """The axes a group spans, and its size."""
        shape = tuple(x.shape)
        if len(shape) < 2:
            raise ValueError(
                f"GroupLasso(groups={self.groups!r}) needs a kernel of 2 or more axes, got "
                f"shape {list(shape)}"
            )
        axis = len(shape) - (2 if self.groups == "rows" else 1)
        axes = tuple(i for i in range(len(shape)) if i != axis)
        return axes, float(math.prod(shape[i] for i in axes))

    def _norms(self, x: Any) -> tuple[Any, float]:
        axes, size = self._axes(x)
        return ops.sqrt(ops.sum(ops.square(x), axis=axes, keepdims=True)), size

    def value(self, x: Any) -> Any:
        norms, size = self._norms(x)
        return self.lam * math.sqrt(size) * ops.sum(norms)

    def prox(self, x: Any, step: Any) -> Any:
        norms, size = self._norms(x)
        threshold = step * self.lam * math.sqrt(size)
        scale = ops.maximum(1.0 - threshold / ops.maximum(norms, 1e-30), 0.0)
        return x * ops.cast(scale, x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"lam": self.lam, "groups": self.groups, **super().get_config()}
