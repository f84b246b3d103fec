"""Which parameters a penalty applies to, expressed as masks over ``named_parameters()``.

The default mask takes what practitioners mean by "the weights": the weight matrices of Linear
(and Bilinear) layers and the kernels of convolutions, optionally embedding tables. It leaves
alone biases, every 1-D parameter, normalisation layers, frozen parameters, and the names a
model lists in its ``no_weight_decay()`` hook (the timm convention).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from torch import nn

__all__ = ["default_mask", "matches", "no_weight_decay_names"]

WEIGHT_LAYERS: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Bilinear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
"""Layers whose ``weight`` is a matrix or a kernel (their lazy and quantization-aware
subclasses included)."""
EMBEDDING_LAYERS: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),  # torch >= 2.4
)


def no_weight_decay_names(model: nn.Module) -> frozenset[str]:
    """Names (or glob patterns) that ``model.no_weight_decay()`` excludes; empty if no hook."""
    hook = getattr(model, "no_weight_decay", None)
    if hook is None or not callable(hook):
        return frozenset()
    names = hook()
    if isinstance(names, str):
        names = [names]
    return frozenset(str(n) for n in names)


def matches(name: str, patterns: Iterable[str]) -> bool:
    """True if ``name`` equals, lies under (``prefix.``) or glob-matches one of ``patterns``."""
    return any(
        name == p or name.startswith(p + ".") or fnmatch.fnmatchcase(name, p) for p in patterns
    )


def _owners(model: nn.Module) -> dict[int, tuple[nn.Module, str]]:
    """Map each parameter (by id) to the module that holds it and its attribute name."""
    owners: dict[int, tuple[nn.Module, str]] = {}
    for module in model.modules():
        for attr, param in module.named_parameters(recurse=False):
            owners.setdefault(id(param), (module, attr))
    return owners


def default_mask(model: nn.Module, *, embeddings: bool = False) -> dict[str, bool]:
    """The default targets of a penalty.

    Selected: the ``weight`` of every Linear, Bilinear and convolution layer (and of Embedding
    and EmbeddingBag layers when ``embeddings=True``) that is trainable, has at least two
    dimensions and is not named by ``model.no_weight_decay()``.

    Args:
        model: the model.
        embeddings: whether embedding tables are selected too.

    Returns:
        ``{name: selected}`` over ``model.named_parameters()``.

    Example:
        >>> from torch import nn
        >>> default_mask(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)))
        {'0.weight': True, '0.bias': False, '1.weight': False, '1.bias': False}
    """
    layers = WEIGHT_LAYERS + (EMBEDDING_LAYERS if embeddings else ())
    excluded = no_weight_decay_names(model)
    owners = _owners(model)
    mask: dict[str, bool] = {}
    for name, param in model.named_parameters():
        module, attr = owners[id(param)]
        mask[name] = (
            isinstance(module, layers)
            and not isinstance(module, NORM_LAYERS)
            and attr == "weight"
            and param.requires_grad
            and param.ndim >= 2
            and not matches(name, excluded)
        )
    return mask
