"""Sparse checkpoints: only the nonzeros are written, and loading never runs a pickle.

    report = save_sparse(model, "model.safetensors")   # SaveReport: bytes vs a dense save
    model = load_sparse("model.safetensors")           # an nn.Sequential back
    model = load_sparse("model.safetensors", architecture=build)   # any other model

One format for every model: a ``safetensors`` file (:mod:`shrinkage.structured.safefile`)
whose tensors with enough zeros are stored as a bit mask of their nonzero positions (1 bit
per entry) and the nonzero values, and whose header records every layer's shape attributes.
An ``nn.Sequential`` of the layers in :mod:`shrinkage.structured.layers` also records its
layers, so it comes back as a model without ``architecture``; any other model comes back
from ``architecture`` resized to the file, or as its state dict without it.

Files of the earlier format (:data:`FORMAT_V1`: a ``torch.save`` of plain tensors, read with
``torch.load(weights_only=True)``, which refuses a pickled object) still load, with a
``FutureWarning``; saving them again writes the safetensors format.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._validation import ArgumentError
from .compaction import CompactionReport, compact
from .layers import LAYERS, kind_of
from .safefile import (
    is_safetensors,
    load_module,
    read_header,
    read_tensors,
    save_module,
    unpack_nonzeros,
)

__all__ = [
    "FORMAT_V1",
    "CompactedFile",
    "SaveReport",
    "compact_file",
    "load_sparse",
    "save_sparse",
]

FORMAT_V1 = "shrinkage-sparse/1"
"""The earlier format, read but no longer written (see the module docstring)."""

_BY_NAME = {cls.__name__: cls for cls in LAYERS}


@dataclass(frozen=True)
class SaveReport:
    """What :func:`save_sparse` wrote.

    Attributes:
        path: the file.
        bytes: its size.
        dense_bytes: the size of a dense ``torch.save(model.state_dict())`` of the model.
        nonzeros: the nonzero floating-point entries of the state dict.
        entries: all its floating-point entries.
    """

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
        kind = kind_of(layer)
        if kind is None:
            return None
        args: dict[str, Any] = {}
        for name in kind.arguments:
            value = getattr(layer, name)
            args[name] = list(value) if isinstance(value, tuple) else value
        if kind.role == "producer":
            args["bias"] = getattr(layer, "bias", None) is not None
        layers.append({"type": type(layer).__name__, "name": key, "args": args})
    return layers


def _decode(name: str, entry: Any) -> Tensor:
    if isinstance(entry, Tensor):
        return entry
    shape = tuple(int(s) for s in entry["shape"])
    return unpack_nonzeros(name, entry["mask"], entry["values"], shape)


def save_sparse(
    model: nn.Module, path: str | os.PathLike[str], *, input_shape: tuple[int, ...] | None = None
) -> SaveReport:
    """Write ``model``'s parameters and buffers with only their nonzeros, as safetensors (see
    the module docstring).

    Args:
        model: any module; an ``nn.Sequential`` of the layers of
            :mod:`shrinkage.structured.layers` is also recorded layer by layer.
        path: the file to write.
        input_shape: one sample's shape, e.g. ``(64,)`` or ``(1, 8, 8)``, kept for tools that
            need an example input, such as ``shrinkage compact``.

    Returns:
        The file's size beside that of a dense ``torch.save(model.state_dict())``.

    Example:
        >>> import tempfile, torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(100, 10))
        >>> _ = torch.nn.init.zeros_(model[0].weight)
        >>> path = tempfile.mkdtemp() + "/m.safetensors"
        >>> save_sparse(model, path).ratio < 0.5
        True
    """
    state = model.state_dict()
    target = Path(path)
    save_module(model, target, input_shape, _architecture(model))
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
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_V1:
        raise ValueError(f"{str(path)!r} is not a shrinkage checkpoint (see save_sparse)")
    return payload


def load_sparse(
    path: str | os.PathLike[str], *, architecture: Callable[[], nn.Module] | None = None
) -> nn.Module | dict[str, Tensor]:
    """Read a :func:`save_sparse` file. Never unpickles objects.

    Every layer is first built on the ``meta`` device and every recorded shape checked
    against the tensors stored in the file, so a damaged or crafted file is refused before
    any memory is allocated for it.

    Args:
        path: the file.
        architecture: for a model other than an ``nn.Sequential`` of known layers, a class
            or a function of no arguments that builds it (e.g.
            ``torchvision.models.resnet18``).

    Returns:
        The ``nn.Sequential`` saved with its layers, in eval mode, its layers named as when
        saved; or the model ``architecture`` builds, resized to the shapes recorded in the
        file, in eval mode; or, without ``architecture``, the state dict.

    Raises:
        ValueError: a damaged or crafted file, naming the layer.
    """
    return _read(path, architecture)[0]


def _read(
    path: str | os.PathLike[str], architecture: Callable[[], nn.Module] | None
) -> tuple[nn.Module | dict[str, Tensor], Any]:
    """What :func:`load_sparse` returns, and the input shape the file records (or ``None``),
    from one reading of the file."""
    if Path(path).exists() and is_safetensors(path):
        if architecture is not None:
            return load_module(path, architecture)
        header = read_header(Path(path))
        layers = header["sequential"]
        if layers is None:
            return read_tensors(Path(path), header["tensors"]), header["input_shape"]
        return load_module(path, lambda: _sequential(path, layers))
    return _read_v1(path)


def _read_v1(path: str | os.PathLike[str]) -> tuple[nn.Module | dict[str, Tensor], Any]:
    """A file of the earlier format (:data:`FORMAT_V1`), with a ``FutureWarning``."""
    payload = load_payload(path)
    warnings.warn(
        f"{str(path)!r} is a checkpoint of the earlier format ({FORMAT_V1}); it loads, but "
        "save it again with save_sparse to keep it in the safetensors format",
        FutureWarning,
        stacklevel=4,
    )
    stored, input_shape = payload["tensors"], payload.get("input_shape")
    spec_list = payload.get("architecture")
    if spec_list is None:
        return {k: _decode(k, v) for k, v in stored.items()}, input_shape
    with torch.device("meta"):
        model = _sequential(path, spec_list)
    expected = model.state_dict()
    if set(expected) != set(stored):
        raise ValueError(
            f"{str(path)!r}: its tensors {sorted(set(stored) ^ set(expected))[:5]} do not match "
            "its recorded architecture"
        )
    for name, meta in expected.items():
        shape = _stored_shape(name, stored[name])
        if tuple(meta.shape) != shape:
            layer = name.rpartition(".")[0]
            raise ValueError(
                f"{str(path)!r}: layer {layer} ({type(model.get_submodule(layer)).__name__}) "
                f"records {name} of shape {list(meta.shape)}, but the file stores {list(shape)}"
            )
    model = model.to_empty(device="cpu")
    model.load_state_dict({k: _decode(k, v) for k, v in stored.items()})
    return model.eval(), input_shape


def _sequential(path: str | os.PathLike[str], layers: list[dict[str, Any]]) -> nn.Sequential:
    """The ``nn.Sequential`` a file records, layer by layer (type, name, arguments)."""
    built: OrderedDict[str, nn.Module] = OrderedDict()
    for index, spec in enumerate(layers):
        cls = _BY_NAME.get(spec["type"])
        if cls is None:
            raise ValueError(f"{str(path)!r}: unknown layer type {spec['type']!r}")
        args = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["args"].items()}
        built[str(spec.get("name", index))] = cls(**args)
    return nn.Sequential(built)


def _stored_shape(name: str, entry: Any) -> tuple[int, ...]:
    """The shape a stored tensor decodes to, read without decoding it."""
    if isinstance(entry, Tensor):
        return tuple(entry.shape)
    shape = tuple(int(s) for s in entry["shape"])
    n = int(np.prod(shape)) if shape else 1
    if entry["mask"].numel() != (n + 7) // 8 or entry["values"].numel() > n:
        raise ValueError(
            f"{name}: a mask of {entry['mask'].numel()} bytes and {entry['values'].numel()} "
            f"values cannot encode shape {list(shape)}"
        )
    return shape


@dataclass(frozen=True)
class CompactedFile:
    """What :func:`compact_file` did.

    Attributes:
        out: the file it wrote.
        report: the compaction's :class:`CompactionReport`.
        bytes_before: the size of the file read.
        bytes_after: the size of the file written.
    """

    out: Path
    report: CompactionReport
    bytes_before: int
    bytes_after: int


def compact_file(
    path: Path, *, out: Path | None = None, input_shape: tuple[int, ...] | None = None
) -> CompactedFile:
    """Compact the ``nn.Sequential`` saved in ``path`` and save the result.

    Args:
        path: a :func:`save_sparse` file of an ``nn.Sequential``.
        out: where to write (default: ``<name>-compact.pt`` beside ``path``, in the
            safetensors format).
        input_shape: one sample's shape (default: the one the file records); the check of
            the outputs runs on 64 standard-normal samples of that shape (seeded).

    Returns:
        The file written, the :class:`CompactionReport`, and both files' sizes.

    Raises:
        ValueError: ``path`` holds no ``nn.Sequential``.
        ArgumentError: no ``input_shape`` given or recorded.
    """
    model, stored = _read(path, None)
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"{path} holds a state dict without an architecture; compaction needs an "
            "nn.Sequential saved with save_sparse"
        )
    if input_shape is None:
        if not stored:
            raise ArgumentError("input_shape", f"is needed: {path} does not record it")
        input_shape = tuple(int(v) for v in stored)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn((64, *input_shape), generator=generator)
    small, report = compact(model, example)
    target = out or path.with_name(f"{path.stem}-compact.pt")
    saved = save_sparse(small, target, input_shape=input_shape)
    return CompactedFile(target, report, path.stat().st_size, saved.bytes)
