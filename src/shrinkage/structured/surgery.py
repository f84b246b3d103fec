"""Replacing a layer's tensors with smaller ones, and its width attributes with them.

Every compaction (dead units, heads, residual channels) removes slices of parameters and
buffers; this module is the one place that puts a new tensor in a layer and then sets the
layer's shape attributes (``in_features``, ``out_channels``, ``groups``, ``num_groups``, ...)
from its new weight.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

__all__ = ["fit_widths", "keep_slices", "set_tensor", "width_counts"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_COUNTS = ("groups", "out_channels", "num_groups", "num_channels")


def width_counts(module: nn.Module) -> dict[str, Any]:
    """The counts :func:`fit_widths` needs from before a cut (a grouped convolution's
    ``groups`` and ``out_channels``, a GroupNorm's ``num_groups`` and ``num_channels``)."""
    return {k: getattr(module, k) for k in _COUNTS if hasattr(module, k)}


def set_tensor(model: nn.Module, name: str, value: Tensor) -> None:
    """Put ``value`` at ``model``'s parameter or buffer ``name``.

    A parameter stays a parameter (with its ``requires_grad``), and a missing bias becomes
    one; anything else is set as a plain attribute (a buffer).

    Args:
        model: the module that owns ``name``.
        name: a dotted name, ``"layer.weight"``.
        value: the new tensor.

    Example:
        >>> import torch
        >>> layer = torch.nn.Linear(3, 2)
        >>> set_tensor(layer, "weight", torch.zeros(1, 3))
        >>> type(layer.weight).__name__, tuple(layer.weight.shape)
        ('Parameter', (1, 3))
    """
    owner, _, attr = name.rpartition(".")
    module = model.get_submodule(owner)
    old = getattr(module, attr, None)
    if isinstance(old, nn.Parameter) or (old is None and attr == "bias"):
        requires_grad = old.requires_grad if old is not None else True
        setattr(module, attr, nn.Parameter(value, requires_grad=requires_grad))
    else:
        setattr(module, attr, value)


def fit_widths(module: nn.Module, before: dict[str, Any]) -> None:
    """Set ``module``'s shape attributes from its (cut) tensors.

    Args:
        module: a layer whose tensors were replaced.
        before: its :func:`width_counts` from before the cut.
    """
    w = getattr(module, "weight", None)
    if isinstance(module, _CONVS) and isinstance(w, Tensor):
        groups = (
            before["groups"] * w.shape[0] // before["out_channels"] if before["groups"] > 1 else 1
        )
        module.groups = max(groups, 1)
        module.out_channels = int(w.shape[0])
        module.in_channels = int(w.shape[1]) * module.groups
    elif isinstance(module, _TRANSPOSED) and isinstance(w, Tensor):  # [in, out / groups, ...]
        module.in_channels, module.out_channels = int(w.shape[0]), int(w.shape[1])
    elif isinstance(module, nn.Linear) and isinstance(w, Tensor):
        module.out_features, module.in_features = int(w.shape[0]), int(w.shape[1])
    elif isinstance(module, nn.Embedding):
        module.num_embeddings, module.embedding_dim = map(int, module.weight.shape)
    elif isinstance(module, _BATCHNORMS):
        ref = w if isinstance(w, Tensor) else module.running_mean
        if ref is not None:
            module.num_features = int(ref.shape[0])
    elif isinstance(module, nn.GroupNorm) and isinstance(w, Tensor):  # whole groups removed
        per_group = before["num_channels"] // before["num_groups"]
        module.num_channels = int(w.shape[0])
        module.num_groups = module.num_channels // per_group
    elif hasattr(module, "nf") and hasattr(module, "nx") and isinstance(w, Tensor):
        for attr, size in (("nx", w.shape[0]), ("nf", w.shape[1])):  # Conv1D: [in, out]
            setattr(module, attr, int(size))


def keep_slices(model: nn.Module, name: str, dim: int, keep: Tensor) -> None:
    """Keep the slices ``keep`` of ``model``'s tensor ``name`` along ``dim``, and set its
    layer's widths.

    Args:
        model: the module that owns ``name``.
        name: a parameter or buffer, ``"layer.weight"``.
        dim: the dimension to cut.
        keep: ``[k]`` indices along ``dim``, kept in this order.

    Example:
        >>> import torch
        >>> layer = torch.nn.Linear(3, 4)
        >>> keep_slices(layer, "weight", 0, torch.tensor([0, 2]))
        >>> layer.out_features
        2
    """
    owner_name, _, attr = name.rpartition(".")
    owner = model.get_submodule(owner_name)
    before = width_counts(owner)
    tensor: Tensor = getattr(owner, attr)
    set_tensor(model, name, tensor.detach().index_select(dim, keep).clone())
    fit_widths(owner, before)
