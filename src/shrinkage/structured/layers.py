"""The one table of the layers that structured sparsity understands, and what each one is.

Every layer class :func:`~shrinkage.neuron_groups`, :func:`~shrinkage.compact` and
:func:`~shrinkage.save_sparse` handle is listed here once, with its role and the constructor
arguments that rebuild it:

``producer``
    its outputs are the units: ``Linear`` (neurons) and ``Conv1d`` / ``Conv2d`` (channels).
    Its ``weight`` has the units along dim 0 and the inputs along dim 1.
``norm``
    a per-unit affine map with running statistics (``BatchNorm1d`` / ``BatchNorm2d``): its
    ``weight``, ``bias`` and buffers have one entry per unit.
``passthrough``
    acts on each unit alone (activations, dropout), or spatially within each channel (pooling),
    or reshapes units into consecutive columns (``Flatten``): a constant unit stays constant,
    and a zero one zero, except through a non-zero constant of the activation.

Layers are matched by their exact class: a subclass may compute something else in its own
``forward``, so it is not assumed to be what its parent is.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

__all__ = ["LAYERS", "LayerKind", "kind_of", "supported_names", "tensor_of", "weight_of"]

_CONV = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "padding_mode",
)
_MAX_POOL = ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")
_AVG_POOL = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
_NORM = ("num_features", "eps", "momentum", "affine", "track_running_stats")


@dataclass(frozen=True)
class LayerKind:
    """What structured sparsity knows about one layer class.

    Attributes:
        role: ``"producer"``, ``"norm"`` or ``"passthrough"`` (see the module docstring).
        arguments: the constructor arguments, read back from the layer's attributes of the
            same names, that rebuild it (with ``bias=`` for producers, from whether it has
            one).
    """

    role: str
    arguments: tuple[str, ...] = ()


LAYERS: dict[type[nn.Module], LayerKind] = {
    nn.Linear: LayerKind("producer", ("in_features", "out_features")),
    nn.Conv1d: LayerKind("producer", _CONV),
    nn.Conv2d: LayerKind("producer", _CONV),
    nn.BatchNorm1d: LayerKind("norm", _NORM),
    nn.BatchNorm2d: LayerKind("norm", _NORM),
    nn.ReLU: LayerKind("passthrough"),
    nn.ReLU6: LayerKind("passthrough"),
    nn.LeakyReLU: LayerKind("passthrough", ("negative_slope",)),
    nn.ELU: LayerKind("passthrough", ("alpha",)),
    nn.GELU: LayerKind("passthrough", ("approximate",)),
    nn.SiLU: LayerKind("passthrough"),
    nn.Tanh: LayerKind("passthrough"),
    nn.Sigmoid: LayerKind("passthrough"),
    nn.Identity: LayerKind("passthrough"),
    nn.Dropout: LayerKind("passthrough", ("p",)),
    nn.MaxPool1d: LayerKind("passthrough", _MAX_POOL),
    nn.MaxPool2d: LayerKind("passthrough", _MAX_POOL),
    nn.AvgPool1d: LayerKind("passthrough", _AVG_POOL),
    nn.AvgPool2d: LayerKind("passthrough", _AVG_POOL),
    nn.AdaptiveAvgPool1d: LayerKind("passthrough", ("output_size",)),
    nn.AdaptiveAvgPool2d: LayerKind("passthrough", ("output_size",)),
    nn.AdaptiveMaxPool1d: LayerKind("passthrough", ("output_size", "return_indices")),
    nn.AdaptiveMaxPool2d: LayerKind("passthrough", ("output_size", "return_indices")),
    nn.Flatten: LayerKind("passthrough", ("start_dim", "end_dim")),
}
"""Layer class -> :class:`LayerKind`."""


def kind_of(layer: nn.Module) -> LayerKind | None:
    """The entry of ``layer``'s exact class, or ``None`` when it is not in :data:`LAYERS`."""
    return LAYERS.get(type(layer))


def supported_names(role: str | None = None) -> str:
    """The supported class names (of one ``role``), for error messages."""
    return ", ".join(
        cls.__name__ for cls, kind in LAYERS.items() if role is None or kind.role == role
    )


def tensor_of(layer: nn.Module, name: str) -> Tensor | None:
    """``layer.<name>`` when it is a tensor (a parameter or a buffer), else ``None``."""
    value = getattr(layer, name, None)
    return value if isinstance(value, Tensor) else None


def weight_of(layer: nn.Module) -> Tensor:
    """``layer.weight``; a ``ValueError`` naming the layer when it has none."""
    weight = tensor_of(layer, "weight")
    if weight is None:
        raise ValueError(f"{layer} has no weight tensor")
    return weight
