"""shrinkage for Keras 3 (``pip install shrinkage[keras]``): the same penalties, and exact
zeros during ``model.fit``, on the TensorFlow, JAX and PyTorch backends::

    from shrinkage.keras import L1, ProximalAdam, sparsity

    model = keras.Sequential([keras.Input((64,)),
                              keras.layers.Dense(64, "relu", kernel_regularizer=L1(0.01)),
                              keras.layers.Dense(10)])
    model.compile(optimizer=ProximalAdam(1e-3), loss=...)
    model.fit(x, y)                  # L1's prox with Adam's own step: exact zeros
    print(sparsity(model))

* :mod:`~shrinkage.keras.penalties`: ``L1``, ``L2``, ``L1L2``, ``GroupLasso``, Keras
  regularizers with Keras's scale (``L1(0.01)`` adds ``0.01 * sum|w|``, as
  ``keras.regularizers.l1(0.01)``) that know their proximal operators;
* :mod:`~shrinkage.keras.optimizers`: ``ProximalSGD``, ``ProximalAdam``, ``ProximalAdamW``,
  ``ProximalNadam``, ``ProximalRMSprop``, ``ProximalAdagrad`` (the prox with each one's own
  element-wise step, so a penalty's strength means what it means in the loss) and
  :func:`proximal` for any Keras optimizer class;
* :func:`sparsity`: the per-variable report of exact zeros;
* :class:`PenaltyCheck` and :func:`unapplied_penalties`: whether the model's optimizer applies
  its proximal penalties (a plain Keras optimizer does not).
"""

from __future__ import annotations

try:
    import keras
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"shrinkage.keras could not import keras ({error}): it needs Keras 3 (pip install "
        "'shrinkage[keras]') and a backend that is installed, named by KERAS_BACKEND "
        "(torch, jax or tensorflow; Keras's default is tensorflow)"
    ) from error

if not keras.__version__.startswith("3."):  # pragma: no cover
    raise ImportError(f"shrinkage.keras needs Keras 3, found keras {keras.__version__}")

from .checks import PenaltyCheck, unapplied_penalties
from .optimizers import (
    ProximalAdagrad,
    ProximalAdam,
    ProximalAdamW,
    ProximalMixin,
    ProximalNadam,
    ProximalRMSprop,
    ProximalSGD,
    proximal,
)
from .penalties import L1, L1L2, L2, ElasticNet, GroupLasso, Penalty
from .report import sparsity

__all__ = [
    "L1",
    "L1L2",
    "L2",
    "ElasticNet",
    "GroupLasso",
    "Penalty",
    "PenaltyCheck",
    "ProximalAdagrad",
    "ProximalAdam",
    "ProximalAdamW",
    "ProximalMixin",
    "ProximalNadam",
    "ProximalRMSprop",
    "ProximalSGD",
    "proximal",
    "sparsity",
    "unapplied_penalties",
]
