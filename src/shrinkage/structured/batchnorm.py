"""BatchNorm folding, a pass over the traced graph: each BatchNorm that reads a linear layer's
or a convolution's output (and nothing else reads that output) goes into that layer.

In eval mode a BatchNorm is the affine map ``y = x * s + t`` per channel, with
``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s``. A producer ``x = W u + b`` followed
by it is the producer ``W' = W * s`` (row by row), ``b' = b * s + t``: the same outputs with
one layer fewer, as inference engines fold it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn

from .layers import tensor_of, weight_of
from .rules import op_name
from .trace import Graph

__all__ = ["Fold", "batchnorm_folds", "fold_batchnorm_"]

_PRODUCERS = {"conv1d", "conv2d", "conv3d", "linear"}
_BATCHNORMS = {"batch_norm", "_native_batch_norm_legit_no_training"}


@dataclass(frozen=True)
class Fold:
    """BatchNorm module ``norm`` reads only the output of module ``producer``."""

    producer: str
    norm: str


def batchnorm_folds(graph: Graph) -> list[Fold]:
    """Every BatchNorm of ``graph`` that can be folded into the layer before it.

    Args:
        graph: a traced model (:func:`~shrinkage.structured.trace.trace`).

    Returns:
        One :class:`Fold` per BatchNorm whose input is a linear layer's or a convolution's
        output that nothing else reads, both named by their module names.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from shrinkage.structured.trace import trace
        >>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
        >>> batchnorm_folds(trace(model, torch.zeros(1, 1, 5, 5)))
        [Fold(producer='0', norm='1')]
    """
    signature = graph.program.graph_signature
    names = {**signature.inputs_to_parameters, **signature.inputs_to_buffers}

    def module(arg: object) -> str | None:
        name = names.get(arg.name) if isinstance(arg, fx.Node) else None
        return None if name is None else name.rpartition(".")[0]

    folds = []
    for node in graph.program.graph.nodes:
        if node.op != "call_function" or op_name(node) not in _BATCHNORMS:
            continue
        source = node.args[0]
        if not isinstance(source, fx.Node) or source.op != "call_function":
            continue
        if op_name(source) not in _PRODUCERS or len(source.users) != 1:
            continue
        producer, norm = module(source.args[1]), module(node.args[3])  # weight, running mean
        if producer is not None and norm is not None:
            folds.append(Fold(producer, norm))
    return folds


@torch.no_grad()
def fold_batchnorm_(model: nn.Module, fold: Fold) -> None:
    """Fold BatchNorm ``fold.norm`` of ``model`` into layer ``fold.producer``, in place (see
    the module docstring); the BatchNorm module itself is left for the caller to remove.

    Args:
        model: an eval-mode model (its BatchNorm's running statistics are used).
        fold: what to fold, from :func:`batchnorm_folds`.
    """
    norm, layer = model.get_submodule(fold.norm), model.get_submodule(fold.producer)
    mean, var = tensor_of(norm, "running_mean"), tensor_of(norm, "running_var")
    assert mean is not None and var is not None
    scale = (var + float(getattr(norm, "eps"))).rsqrt()  # noqa: B009
    shift = -mean * scale
    gamma, beta = tensor_of(norm, "weight"), tensor_of(norm, "bias")
    if gamma is not None and beta is not None:
        scale, shift = scale * gamma, shift * gamma + beta
    weight = weight_of(layer)
    bias = tensor_of(layer, "bias")
    bias = bias if bias is not None else torch.zeros_like(scale)
    shape = [-1] + [1] * (weight.dim() - 1)
    layer.weight = nn.Parameter(weight * scale.reshape(shape))
    layer.bias = nn.Parameter(bias * scale + shift)
