"""Make structured sparsity pay: remove dead neurons and channels from a trained model.

A hidden unit (a Linear layer's output neuron, a Conv layer's output channel, channels that
a residual ties together) is **dead** when its parameters are all zero (what a group lasso
over units produces), when nothing reads it, or when it emits a constant whatever the input.
:func:`compact` traces the model (:mod:`shrinkage.structured.trace`), removes its dead units
from a copy (:mod:`shrinkage.structured.rebuild`: constants folded into the next layer's
bias), and checks that the new model's outputs equal the old one's on the example input. One
compaction serves every model: an ``nn.Sequential`` of standard layers is traced like any
other network.

Before the graph, two passes remove what a traced graph cannot show: attention heads
(:mod:`shrinkage.structured.heads`) and the residual channels of RMSNorm decoders
(:mod:`shrinkage.structured.residual`, each norm rescaled to match).

In a plain ``nn.Sequential`` the BatchNorm layers that follow a Linear or Conv layer are then
folded into it and dropped (:mod:`shrinkage.structured.batchnorm`, a pass over the same
graph). Any other model keeps its BatchNorm layers: it comes back as its own class with
its attributes in place, which a checkpoint's ``architecture`` rebuilds.

At batch 1 a small model's time goes mostly to Python's call overhead, not to arithmetic;
``torch.compile`` and ``torch.export`` are the tools made to remove it, though on a CPU their
own call overhead can exceed what they save for models this small
(``benchmarks/compaction.py`` measures eager and compiled side by side).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from .._validation import check_positive_int
from .batchnorm import batchnorm_folds, fold_batchnorm_
from .errors import CompactionError
from .heads import remove_heads_
from .macs import count_macs
from .rebuild import GroupReport, check_outputs, remove_dead_units_
from .residual import remove_residual_
from .trace import Graph, as_inputs

__all__ = ["CompactionError", "CompactionReport", "compact"]


@dataclass(frozen=True)
class CompactionReport:
    """What :func:`compact` removed.

    Attributes:
        kept: ``{layer: (units kept, units)}`` per producer layer, by module name (``"0"``
            for the first layer of an ``nn.Sequential``).
        parameters_before: parameters of the whole model before.
        parameters_after: and after.
        groups: one row per layer: units and that layer's parameters before and after, and
            the dead units kept, with the reason.
        pinned: the channel sets that cannot be removed, by reason (a LayerNorm's
            statistics, the model's inputs and outputs, ...).
        macs_before: multiply-accumulates per sample of the example input
            (:func:`~shrinkage.structured.macs.count_macs`) before.
        macs_after: and after.
    """

    kept: dict[Any, tuple[int, int]]
    parameters_before: int
    parameters_after: int
    groups: tuple[GroupReport, ...] = ()
    pinned: dict[str, int] = field(default_factory=dict)
    macs_before: int = 0
    macs_after: int = 0


def compact(
    model: nn.Module,
    example_input: Any,
    *,
    atol: float = 1e-5,
    fuse_batchnorm: bool = True,
    round_to: int = 1,
) -> tuple[nn.Module, CompactionReport]:
    """A smaller dense copy of ``model`` without its dead units (see the module docstring).

    The result is an instance of ``model``'s own class with smaller layers in the same places
    (``model.layer3[1].conv2`` still exists; an ``nn.Sequential`` keeps its layer names).
    Dead attention heads and the dead residual channels of RMSNorm decoders go first
    (:mod:`~shrinkage.structured.heads`, :mod:`~shrinkage.structured.residual`).

    Args:
        model: the model (left unchanged; evaluated in eval mode).
        example_input: a batch the model accepts, ``[N, ...]`` (or a tuple of positional
            inputs); used to trace it, to learn the constants dead units emit, and to check
            the result.
        atol: the largest absolute difference allowed between the two models' outputs on
            ``example_input`` (relative to the output scale).
        fuse_batchnorm: in a plain ``nn.Sequential``, fold each BatchNorm into the layer it
            reads (:mod:`~shrinkage.structured.batchnorm`); other models keep them.
        round_to: each layer of units keeps a multiple of ``round_to`` of them (or all):
            dead units fill it up, and the outputs stay the same.

    Returns:
        ``(compact_model, report)``, the compact model in eval mode.

    Raises:
        ArgumentError: ``round_to`` is not a positive integer.
        CompactionError: the model cannot be traced, or the compacted copy does not compute
            the same outputs; nothing changed.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> with torch.no_grad():
        ...     model[0].weight[1] = 0.0
        ...     model[0].bias[1] = 0.0
        >>> small, report = compact(model, torch.randn(8, 4))
        >>> report.kept
        {'0': (2, 3)}
    """
    check_positive_int("round_to", round_to)
    example = as_inputs(example_input)
    new = copy.deepcopy(model).eval()  # the one working copy every pass changes
    rows = remove_heads_(new, example)
    rows += remove_residual_(new)
    graph_rows, graph = remove_dead_units_(new, example, round_to)
    if fuse_batchnorm and type(new) is nn.Sequential:  # a subclass may have its own forward
        new = _without_batchnorm(new, graph)
    check_outputs(model, new, example, atol)
    return new.eval(), _report(model, new, rows + graph_rows, graph, example_input)


def _report(
    model: nn.Module, new: nn.Module, rows: list[GroupReport], graph: Graph, example: Any
) -> CompactionReport:
    return CompactionReport(
        {r.label: (r.units_after, r.units_before) for r in rows},
        sum(p.numel() for p in model.parameters()),
        sum(p.numel() for p in new.parameters()),
        tuple(rows),
        graph.pinned,
        *_macs(model, new, example),
    )


def _without_batchnorm(model: nn.Sequential, graph: Graph) -> nn.Sequential:
    """``model`` with every BatchNorm that :func:`_fold_all` folds left out."""
    folded = _fold_all(model, graph)
    if not folded:
        return model
    kept = ((name, layer) for name, layer in model.named_children() if name not in folded)
    return nn.Sequential(OrderedDict(kept))


def _fold_all(model: nn.Sequential, graph: Graph) -> set[str]:
    """Fold every BatchNorm of the stack that reads a producer's output into that producer;
    the names of the BatchNorm layers folded (to drop)."""
    children = dict(model.named_children())
    folds = [f for f in batchnorm_folds(graph) if f.norm in children and f.producer in children]
    for fold in folds:
        fold_batchnorm_(model, fold)
    return {f.norm for f in folds}


def _macs(model: nn.Module, new: nn.Module, example: Any) -> tuple[int, int]:
    """MACs of one sample (the example's first, when it is one tensor) before and after."""
    sample = example[:1] if isinstance(example, Tensor) else example
    return count_macs(model, sample), count_macs(new, sample)
