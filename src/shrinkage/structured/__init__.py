"""Structured sparsity: whole neurons and channels to exact zero, then removed.

* :func:`neuron_groups`: a group lasso over every hidden unit of a network (its incoming
  weights, bias, BatchNorm entries and outgoing weights together), as a
  :class:`~shrinkage.penalties.MultiTensorPenalty` for :class:`~shrinkage.Regularizer`;
* :func:`compact`: a smaller dense copy without the dead units, same outputs;
* :func:`save_sparse` / :func:`load_sparse`: checkpoints of the nonzeros only, never
  unpickled;
* :data:`~shrinkage.structured.layers.LAYERS`: the one table of the layers all three handle.
"""

from .checkpoint import CompactedFile, SaveReport, compact_file, load_sparse, save_sparse
from .compaction import CompactionError, CompactionReport, compact, dead_units
from .groups import Member, UnitGroups, neuron_groups, unit_sparsity
from .layers import LAYERS, LayerKind

__all__ = [
    "LAYERS",
    "CompactedFile",
    "CompactionError",
    "CompactionReport",
    "LayerKind",
    "Member",
    "SaveReport",
    "UnitGroups",
    "compact",
    "compact_file",
    "dead_units",
    "load_sparse",
    "neuron_groups",
    "save_sparse",
    "unit_sparsity",
]
