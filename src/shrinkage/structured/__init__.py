"""Structured sparsity: whole neurons and channels to exact zero, then removed.

* :func:`neuron_groups`: a group lasso over every hidden unit of a network (its incoming
  weights, bias, BatchNorm entries and outgoing weights together), as a
  :class:`~shrinkage.penalties.MultiTensorPenalty` for :class:`~shrinkage.Regularizer`; an
  ``nn.Sequential`` layer by layer, any other network through its ``torch.export`` graph
  (:mod:`~shrinkage.structured.trace`, one rule per op in :mod:`~shrinkage.structured.rules`);
* :func:`explain`: why channels of a network cannot be grouped (``neuron_groups`` warns
  with the top reasons when it finds no unit at all);
* :func:`head_groups`: a group lasso over every attention head
  (:mod:`~shrinkage.structured.heads`, one adapter per layout in
  :mod:`~shrinkage.structured.adapters`); :class:`HeadAttention`, what an
  ``nn.MultiheadAttention`` that lost heads becomes;
* :func:`residual_groups`: a group lasso over the residual width of an RMSNorm decoder
  (Llama, Mistral, Qwen2; :mod:`~shrinkage.structured.residual`), also
  ``head_groups(..., residual=True)``;
* :func:`compact`: a smaller dense copy without the dead units, same outputs, same class,
  for every network through its traced graph (:mod:`~shrinkage.structured.rebuild`);
* :class:`Budget`: raise the strength during training until the compacted model costs a
  requested fraction of its MACs or parameters, or of the time :func:`measured_latency`
  measures (:mod:`~shrinkage.structured.budget`);
* :func:`count_macs`: multiply-accumulates of a forward pass;
* :func:`save_sparse` / :func:`load_sparse`: checkpoints of the nonzeros only, never
  unpickled;
* :data:`~shrinkage.structured.layers.LAYERS`: the one table of the layers all three handle.
"""

from .attention import HeadAttention
from .budget import Budget, BudgetReport, measured_latency
from .checkpoint import CompactedFile, SaveReport, compact_file, load_sparse, save_sparse
from .compaction import CompactionReport, compact
from .errors import CompactionError
from .groups import explain, neuron_groups, unit_sparsity
from .heads import HeadLayout, head_groups
from .layers import LAYERS, LayerKind
from .macs import count_macs
from .rebuild import GroupReport
from .residual import residual_groups
from .slices import SliceGroups, SliceMember

__all__ = [
    "LAYERS",
    "Budget",
    "BudgetReport",
    "CompactedFile",
    "CompactionError",
    "CompactionReport",
    "GroupReport",
    "HeadAttention",
    "HeadLayout",
    "LayerKind",
    "SaveReport",
    "SliceGroups",
    "SliceMember",
    "compact",
    "compact_file",
    "count_macs",
    "explain",
    "head_groups",
    "load_sparse",
    "measured_latency",
    "neuron_groups",
    "residual_groups",
    "save_sparse",
    "unit_sparsity",
]
