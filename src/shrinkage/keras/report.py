"""``sparsity(model)`` for a Keras 3 model: the report :func:`shrinkage.sparsity` gives for a
torch module, from the model's variables."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from .._validation import check_choice
from ..sparsity import LayerSparsity, SparsityReport
from .checks import warn_unapplied

__all__ = ["sparsity"]


def sparsity(model: Any, *, which: str = "weights") -> SparsityReport:
    """Exact zeros of a Keras model's variables, as :func:`shrinkage.sparsity` counts them
    for a torch module.

    Args:
        model: a built ``keras.Model`` (or layer).
        which: ``"weights"`` (trainable kernels and embeddings: the variables of two or more
            axes) or ``"all"`` (every trainable variable, biases and norms included).

    Returns:
        A :class:`shrinkage.SparsityReport`: for each variable (by its path) its shape, size,
        ``zeros = #{w_i == 0}``, ``fraction_zero``, ``l1_norm = sum|w_i|`` and
        ``l2_norm = sqrt(sum w_i^2)``, and the same over all of them.

    Warns:
        UserWarning: when the model is compiled with an optimizer that does not apply its
        proximal penalties (see :func:`shrinkage.keras.checks.unapplied_penalties`).
    """
    check_choice("which", which, ("weights", "all"))
    variables = getattr(model, "trainable_variables", None)
    if variables is None:
        raise TypeError(f"model must be a Keras model or layer, got {type(model).__name__}")
    if not variables:
        raise ValueError(
            f"model {getattr(model, 'name', '')!r} has no trainable variables yet: build it "
            "(call it on a batch, or give it a keras.Input) first"
        )
    if getattr(model, "optimizer", None) is not None:
        warn_unapplied(model)
    rows = []
    for v in variables:
        w = np.asarray(keras.ops.convert_to_numpy(v))
        if which == "weights" and w.ndim < 2:
            continue
        rows.append(
            LayerSparsity.counted(
                str(getattr(v, "path", v.name)),
                w.shape,
                int((w == 0).sum()),
                float(np.abs(w).sum()),
                float(np.sqrt((w.astype(np.float64) ** 2).sum())),
            )
        )
    return SparsityReport.of_layers(rows)
