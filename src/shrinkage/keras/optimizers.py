"""Keras 3 optimizers that apply their variables' penalties exactly, by proximal steps.

After the wrapped optimizer's own ``update_step`` (Keras's documented hook: it runs for each
variable on every real update, in ``fit``, ``train_on_batch`` and custom loops, under
``jit_compile``, ``steps_per_execution``, gradient accumulation and loss scaling), a
variable whose ``regularizer`` is a proximal :class:`~shrinkage.keras.penalties.Penalty`
becomes

    w <- prox_{lr * P}(w)

with ``lr`` the learning rate of that step (a schedule's current value), e.g.
``sign(w) * max(|w| - lr * l1, 0)`` for ``L1(l1)``: exact zeros. The loss terms of such
penalties carry no gradient (the logged loss still includes them), so nothing is applied
twice, however the backend orders building the optimizer and tracing the step.

``ProximalSGD``, ``ProximalAdam`` and ``ProximalAdamW`` are ready-made; :func:`proximal`
makes the same of any Keras optimizer class. ``use_ema=True`` is refused: the moving average
would overwrite the zeros at the end of training.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
from keras import ops

from .penalties import Penalty

__all__ = ["ProximalAdam", "ProximalAdamW", "ProximalMixin", "ProximalSGD", "proximal"]


def _penalty(variable: Any) -> Penalty | None:
    penalty = getattr(variable, "regularizer", None)
    return penalty if isinstance(penalty, Penalty) and penalty.proximal else None


class ProximalMixin:
    """Put before a Keras optimizer class: its ``update_step`` is followed by the prox of the
    variable's penalty (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("use_ema"):
            raise ValueError(
                f"use_ema={kwargs['use_ema']!r}: a proximal optimizer does not support "
                "use_ema=True (the moving average would overwrite the exact zeros at the end "
                "of fit); leave use_ema=False"
            )
        super().__init__(*args, **kwargs)

    def build(self, variables: list[Any]) -> None:
        super().build(variables)  # type: ignore[misc]
        # by the optimizer's own variable index: some backends (TensorFlow) hand update_step
        # the backend's variable, which does not carry the Keras variable's regularizer
        self._proximal_penalties = [_penalty(v) for v in variables]
        taken = [p for p in self._proximal_penalties if p is not None]
        for penalty in taken:
            penalty.taken = True
        if not taken:
            warnings.warn(
                f"{type(self).__name__} was built over {len(variables)} variables and none "
                "has a proximal penalty of shrinkage.keras (kernel_regularizer=L1(...), ...): "
                "it will update them exactly like the optimizer it extends",
                UserWarning,
                stacklevel=2,
            )

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """The optimizer's own update of ``variable``, then ``w <- prox_{lr * P}(w)`` with
        ``P`` its penalty and ``lr`` this step's learning rate (same shape as ``w``)."""
        super().update_step(gradient, variable, learning_rate)  # type: ignore[misc]
        # the lookup Keras's Optimizer docstring shows custom optimizers for their slots
        index = self._get_variable_index(variable)  # type: ignore[attr-defined]
        penalty = self._proximal_penalties[index]
        if penalty is not None:
            step = ops.cast(learning_rate, variable.dtype)
            self.assign(variable, penalty.prox(variable, step))  # type: ignore[attr-defined]


def proximal(optimizer: type[keras.optimizers.Optimizer]) -> type[keras.optimizers.Optimizer]:
    """A subclass of the Keras optimizer class ``optimizer`` that applies the proximal step
    of each variable's penalty after every update, registered for ``.keras`` files as
    ``shrinkage>Proximal<Name>``."""
    if not (isinstance(optimizer, type) and issubclass(optimizer, keras.optimizers.Optimizer)):
        raise TypeError(
            f"optimizer must be a Keras optimizer class such as keras.optimizers.SGD, got "
            f"{optimizer!r}"
        )
    name = f"Proximal{optimizer.__name__}"
    cls = type(name, (ProximalMixin, optimizer), {"__doc__": f"{optimizer.__name__}, proximal."})
    cls.__module__ = __name__
    return keras.saving.register_keras_serializable(package="shrinkage", name=name)(cls)


ProximalSGD = proximal(keras.optimizers.SGD)
ProximalAdam = proximal(keras.optimizers.Adam)
ProximalAdamW = proximal(keras.optimizers.AdamW)
