"""Whether a Keras model's proximal penalties have an optimizer that applies them.

A proximal penalty's loss term carries no gradient: only a proximal optimizer of
:mod:`shrinkage.keras.optimizers` applies it. Under a plain Keras optimizer it is logged and
does nothing. The penalties themselves stay pure functions, so the check is made on the
model, where the optimizer is known: by :func:`unapplied_penalties`, by the
:class:`PenaltyCheck` callback at the start of ``fit``, and by
:func:`shrinkage.keras.sparsity`.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras

from .optimizers import ProximalMixin
from .penalties import proximal_penalty

__all__ = ["PenaltyCheck", "unapplied_penalties", "warn_unapplied"]


def unapplied_penalties(model: Any) -> list[str]:
    """The variables whose proximal penalty the model's optimizer does not apply.

    Args:
        model: a ``keras.Model`` (compiled or not).

    Returns:
        The paths of the trainable variables that carry a proximal penalty, when the model's
        optimizer is not a proximal one of shrinkage.keras (or there is none); else ``[]``.

    Example:
        >>> from shrinkage.keras import L1
        >>> layer = keras.layers.Dense(2, kernel_regularizer=L1(0.01), name="hidden")
        >>> m = keras.Sequential([keras.Input((3,)), layer], name="model")
        >>> m.compile(optimizer="adam", loss="mse")
        >>> unapplied_penalties(m)
        ['model/hidden/kernel']
    """
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a LossScaleOptimizer
    if isinstance(optimizer, ProximalMixin):
        return []
    return [
        str(getattr(v, "path", v.name))
        for v in model.trainable_variables
        if proximal_penalty(v) is not None
    ]


def warn_unapplied(model: Any, stacklevel: int = 2) -> None:
    """Warn when :func:`unapplied_penalties` finds any, naming them and the two remedies."""
    names = unapplied_penalties(model)
    if not names:
        return
    optimizer = type(getattr(model, "optimizer", None)).__name__
    warnings.warn(
        f"{len(names)} variables carry a proximal penalty of shrinkage.keras "
        f"({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}), but the model's "
        f"optimizer ({optimizer}) is not proximal: the penalties are not applied (their "
        "loss terms are logged without a gradient) and give no exact zeros. Compile with "
        "ProximalSGD, ProximalAdam, ProximalAdamW, ProximalNadam, ProximalRMSprop, "
        "ProximalAdagrad or proximal(...), or pass proximal=False for a plain loss term "
        "like Keras's",
        UserWarning,
        stacklevel=stacklevel + 1,
    )


class PenaltyCheck(keras.callbacks.Callback):
    """At the start of ``fit``, warn if a proximal penalty has no optimizer to apply it.

    Example:
        >>> model.fit(x, y, callbacks=[PenaltyCheck()])  # doctest: +SKIP
    """

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        warn_unapplied(self.model, stacklevel=2)
