"""Sparse checkpoints: only the nonzeros are written, and loading never runs a pickle.

    report = save_sparse(model, "model.pt")        # SaveReport: bytes written vs a dense save
    model = load_sparse("model.pt")                # the nn.Sequential back (or a state dict)

A tensor with enough zeros is stored as a bit mask of its nonzero positions (1 bit per entry)
and the nonzero values; other tensors are stored as they are. The file is a ``torch.save``
of tensors, strings, numbers, lists and dicts only, and :func:`load_sparse` reads it with
``torch.load(weights_only=True)``, which refuses anything else, a pickled object that would
run code included. An ``nn.Sequential`` of the layers :mod:`shrinkage.compaction` supports is
stored with its architecture, so it comes back as a model; any other model comes back as its
state dict (load it with ``model.load_state_dict``).
"""

from __future__ import annotations

import io
import os
import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .compaction import LeanSequential

__all__ = ["FORMAT", "SaveReport", "load_sparse", "save_sparse"]

FORMAT = "shrinkage-sparse/1"

# layer type -> the constructor arguments that rebuild it
_ARCHITECTURE: dict[type[nn.Module], tuple[str, ...]] = {
    nn.Linear: ("in_features", "out_features"),
    nn.Conv1d: ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"),
    nn.Conv2d: ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation"),
    nn.BatchNorm1d: ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    nn.BatchNorm2d: ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    nn.ReLU: (),
    nn.ReLU6: (),
    nn.LeakyReLU: ("negative_slope",),
    nn.ELU: ("alpha",),
    nn.GELU: ("approximate",),
    nn.SiLU: (),
    nn.Tanh: (),
    nn.Sigmoid: (),
    nn.Identity: (),
    nn.Dropout: ("p",),
    nn.MaxPool1d: ("kernel_size", "stride", "padding"),
    nn.MaxPool2d: ("kernel_size", "stride", "padding"),
    nn.AvgPool1d: ("kernel_size", "stride", "padding"),
    nn.AvgPool2d: ("kernel_size", "stride", "padding"),
    nn.AdaptiveAvgPool1d: ("output_size",),
    nn.AdaptiveAvgPool2d: ("output_size",),
    nn.AdaptiveMaxPool1d: ("output_size",),
    nn.AdaptiveMaxPool2d: ("output_size",),
    nn.Flatten: ("start_dim", "end_dim"),
}
_BY_NAME = {cls.__name__: cls for cls in _ARCHITECTURE}


@dataclass(frozen=True)
class SaveReport:
    """What :func:`save_sparse` wrote: the file, its size, and the size of a dense
    ``torch.save(model.state_dict())`` of the same model."""

    path: Path
    bytes: int
    dense_bytes: int
    nonzeros: int
    entries: int

    @property
    def ratio(self) -> float:
        """``bytes / dense_bytes``."""
        return self.bytes / self.dense_bytes if self.dense_bytes else 1.0


def _architecture(model: nn.Module) -> list[dict[str, Any]] | None:
    if not isinstance(model, nn.Sequential):
        return None
    layers = []
    for key, layer in model.named_children():
        if type(layer) not in _ARCHITECTURE:
            return None
        args: dict[str, Any] = {}
        for name in _ARCHITECTURE[type(layer)]:
            value = getattr(layer, name)
            args[name] = list(value) if isinstance(value, tuple) else value
        if isinstance(layer, nn.Linear | nn.Conv1d | nn.Conv2d):
            args["bias"] = layer.bias is not None
        layers.append({"type": type(layer).__name__, "name": key, "args": args})
    return layers


def _encode(t: Tensor) -> Any:
    t = t.detach().cpu()
    if not t.is_floating_point() or t.numel() < 64:
        return t.clone()
    nonzero = t != 0
    count = int(nonzero.sum())
    sparse_size = t.numel() / 8 + count * t.element_size()
    if sparse_size >= 0.9 * t.numel() * t.element_size():
        return t.clone()
    mask = np.packbits(nonzero.reshape(-1).numpy())
    return {"shape": list(t.shape), "mask": torch.from_numpy(mask), "values": t[nonzero].clone()}


def _decode(entry: Any) -> Tensor:
    if isinstance(entry, Tensor):
        return entry
    shape = [int(s) for s in entry["shape"]]
    n = int(np.prod(shape)) if shape else 1
    bits = np.unpackbits(entry["mask"].numpy(), count=n).astype(bool)
    values = entry["values"]
    out = torch.zeros(n, dtype=values.dtype)
    out[torch.from_numpy(bits)] = values
    return out.reshape(shape)


def save_sparse(
    model: nn.Module, path: str | os.PathLike[str], *, input_shape: tuple[int, ...] | None = None
) -> SaveReport:
    """Write ``model``'s parameters and buffers with only their nonzeros (see the module
    docstring). ``input_shape`` (one sample's shape, e.g. ``(64,)`` or ``(1, 8, 8)``) is kept
    for tools that need an example input, such as ``shrinkage compact``."""
    state = model.state_dict()
    payload = {
        "format": FORMAT,
        "architecture": _architecture(model),
        "input_shape": list(input_shape) if input_shape is not None else None,
        "tensors": {k: _encode(v) for k, v in state.items()},
    }
    target = Path(path)
    torch.save(payload, target)
    dense = io.BytesIO()
    torch.save(state, dense)
    floats = [v for v in state.values() if v.is_floating_point()]
    return SaveReport(
        target,
        target.stat().st_size,
        len(dense.getvalue()),
        sum(int((v != 0).sum()) for v in floats),
        sum(v.numel() for v in floats),
    )


def load_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw checkpoint, read with ``weights_only=True``; refuses anything else."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"no such checkpoint: {str(path)!r}") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, TypeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"refused to load {str(path)!r}: it is not a plain-tensor shrinkage checkpoint "
            f"({first[:200]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a {FORMAT} checkpoint (see save_sparse)")
    return payload


def load_sparse(path: str | os.PathLike[str]) -> nn.Module | dict[str, Tensor]:
    """Read a :func:`save_sparse` file: the model, a :class:`~shrinkage.compaction.LeanSequential`
    (an ``nn.Sequential``, in eval mode, its layers named as when saved) when its architecture
    was stored, else the state dict. Never unpickles objects."""
    payload = load_payload(path)
    state = {k: _decode(v) for k, v in payload["tensors"].items()}
    architecture = payload.get("architecture")
    if architecture is None:
        return state
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for index, spec in enumerate(architecture):
        cls = _BY_NAME.get(spec["type"])
        if cls is None:
            raise ValueError(f"{str(path)!r}: unknown layer type {spec['type']!r}")
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["args"].items()}
        layers[str(spec.get("name", index))] = cls(**args)
    model = LeanSequential(layers)
    model.load_state_dict(state)
    return model.eval()
