"""shrinkage: L1, L2, Elastic-Net and group-lasso regularization for PyTorch models.

* penalties that know their value, exact prox, optimality condition and ``lambda_max``:
  :class:`L1`, :class:`L2`, :class:`ElasticNet`, :class:`GroupLasso`;
* :class:`Regularizer` and :func:`regularize_layer`: which parameter gets which penalty;
* :class:`Proximal`: wraps any ``torch.optim.Optimizer`` and applies the penalties by their
  proximal steps, giving exact zeros;
* :func:`sparsity` and :func:`convert`;
* :func:`neuron_groups`, :func:`head_groups`, :func:`compact`, :func:`count_macs`,
  :func:`save_sparse` / :func:`load_sparse`: structured sparsity that makes CNNs and
  transformers smaller and faster (:mod:`shrinkage.structured`);
* :func:`path`: one model along a grid of strengths with warm starts, as typed records;
* :mod:`shrinkage.linear` and :mod:`shrinkage.neural`: scikit-learn estimators;
* :mod:`shrinkage.experiments`: penalties compared on a dataset, stored, reported and tuned
  (the ``shrinkage`` command's library; ``pip install 'shrinkage[cli]'`` for its reports).

Importing this package loads torch, NumPy and the modules above it only: neither matplotlib,
rich nor Optuna. Bad arguments raise :class:`ArgumentError` (a ``ValueError``) naming them.
"""

from ._validation import ArgumentError
from .conventions import CONVENTIONS, NoExactConversionError, convert
from .path import PathPoint, lambda_grid, path
from .penalties import L1, L2, ElasticNet, GroupLasso, MultiTensorPenalty, Penalty
from .proximal import Proximal
from .regularizer import Regularizer, Target, regularize_layer
from .selection import default_mask
from .sparsity import LayerSparsity, SparsityReport, UnitSparsity, sparsity
from .structured import (
    CompactionError,
    compact,
    count_macs,
    head_groups,
    load_sparse,
    neuron_groups,
    save_sparse,
)

__version__ = "0.1.0"

__all__ = [
    "CONVENTIONS",
    "L1",
    "L2",
    "ArgumentError",
    "CompactionError",
    "ElasticNet",
    "GroupLasso",
    "LayerSparsity",
    "MultiTensorPenalty",
    "NoExactConversionError",
    "PathPoint",
    "Penalty",
    "Proximal",
    "Regularizer",
    "SparsityReport",
    "Target",
    "UnitSparsity",
    "compact",
    "convert",
    "count_macs",
    "default_mask",
    "head_groups",
    "lambda_grid",
    "load_sparse",
    "neuron_groups",
    "path",
    "regularize_layer",
    "save_sparse",
    "sparsity",
]
