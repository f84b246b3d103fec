"""Checkpoints of any compacted model in the ``safetensors`` format: no pickles, and a file
cannot make the loader allocate more than the shapes its own tensors have.

    save_sparse(small, "small.safetensors")                     # any model
    model = load_sparse("small.safetensors", architecture=resnet18)

The file holds the state dict (a tensor with enough zeros as a bit mask of its nonzero
positions and the nonzero values, like :mod:`shrinkage.structured.checkpoint`) and, in the
header's metadata, the shape attributes of every layer (``in_channels``, ``out_channels``,
``groups``, ``in_features``, ``num_features``, ...; an attention module's head counts,
``num_attention_heads``, ``num_heads``, ``num_key_value_groups``, and GPT-2 ``Conv1D``'s
``nf`` / ``nx``; an RMSNorm's epsilon). Loading builds ``architecture()`` on the ``meta``
device (no memory), puts a ``HeadAttention`` where the file has one in place of an
``nn.MultiheadAttention`` that lost heads, gives each recorded layer its recorded attributes
and tensor shapes, checks every shape against the tensors stored in the file and against the
layer's own attributes, and only then allocates and reads the tensors. A mismatch raises a
``ValueError`` that names the layer.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from .attention import HeadAttention, settle_encoders
from .heads import check_layouts, shape_attributes
from .residual import epsilon_attribute

__all__ = [
    "FORMAT",
    "is_safetensors",
    "load_module",
    "pack_nonzeros",
    "read_header",
    "read_tensors",
    "save_module",
    "unpack_nonzeros",
]

FORMAT = "shrinkage-sparse/2"
_VOLATILE = "volatile:"
"""The prefix of the stored buffers that a state dict leaves out."""

_SHAPES: dict[type[nn.Module], tuple[str, ...]] = {
    nn.Conv1d: ("in_channels", "out_channels", "groups"),
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.Conv3d: ("in_channels", "out_channels", "groups"),
    nn.Linear: ("in_features", "out_features"),
    nn.BatchNorm1d: ("num_features",),
    nn.BatchNorm2d: ("num_features",),
    nn.BatchNorm3d: ("num_features",),
    nn.GroupNorm: ("num_groups", "num_channels"),
}


def _attributes(module: nn.Module) -> tuple[str, ...]:
    """The attributes a checkpoint records for ``module``: a standard layer's shape
    attributes, an attention module's head counts (:func:`shape_attributes`), an RMSNorm's
    epsilon (a float, which removing residual channels rescales)."""
    return _SHAPES.get(type(module)) or shape_attributes(module) or _epsilon(module)


def _epsilon(module: nn.Module) -> tuple[str, ...]:
    """The name of an RMSNorm's float epsilon (:func:`epsilon_attribute`), else ``()``."""
    name = epsilon_attribute(module)
    return (name,) if isinstance(getattr(module, name, None), float) else ()


def _recorded(value: Any) -> bool:
    """Whether ``value`` is an attribute a file may record: a positive integer, or a
    positive finite float (an epsilon)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value > 0 and math.isfinite(value)


def _expected(module: nn.Module, name: str) -> tuple[int, ...] | None:
    """The shape a layer's tensor ``name`` must have by its attributes."""
    if shape_attributes(module) == ("nf", "nx"):  # GPT-2's Conv1D: weight [nx, nf]
        nf, nx = int(getattr(module, "nf")), int(getattr(module, "nx"))  # noqa: B009
        return (nx, nf) if name == "weight" else (nf,)
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d) and name == "weight":
        out, groups = module.out_channels, module.groups
        if groups < 1 or module.in_channels % groups or out % groups:
            return (-1,)
        return (out, module.in_channels // groups, *module.kernel_size)
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d) and name == "bias":
        return (module.out_channels,)
    if isinstance(module, nn.Linear):
        return (
            (module.out_features, module.in_features)
            if name == "weight"
            else (module.out_features,)
        )
    if (
        isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d)
        and name != "num_batches_tracked"
    ):
        return (module.num_features,)
    if isinstance(module, nn.GroupNorm):
        return (module.num_channels,)
    return None


def pack_nonzeros(t: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(mask, values)``: the nonzero positions of ``t`` as packed bits and its nonzero
    values, when they take less than 0.9 of ``t``'s bytes (floating tensors of 64 entries or
    more); else ``None``."""
    if not t.is_floating_point() or t.numel() < 64:
        return None
    nonzero = t != 0
    if t.numel() / 8 + int(nonzero.sum()) * t.element_size() >= 0.9 * t.numel() * t.element_size():
        return None
    return torch.from_numpy(np.packbits(nonzero.reshape(-1).numpy())), t[nonzero].clone()


def unpack_nonzeros(name: str, mask: Tensor, values: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The tensor of ``shape`` that :func:`pack_nonzeros` gave ``(mask, values)`` for; a
    ``ValueError`` naming ``name`` when they disagree."""
    n = math.prod(shape)
    bits = np.unpackbits(mask.numpy(), count=n).astype(bool)
    if int(bits.sum()) != values.numel():
        raise ValueError(f"{name}: its mask and values disagree")
    flat = torch.zeros(n, dtype=values.dtype)
    flat[torch.from_numpy(bits)] = values
    return flat.reshape(shape)


def _encode(name: str, t: Tensor, out: dict[str, Tensor]) -> dict[str, Any]:
    t = t.detach().cpu().contiguous()
    record: dict[str, Any] = {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
    packed = pack_nonzeros(t)
    if packed is not None:
        out[f"{name}/mask"], out[f"{name}/values"] = packed
        record["encoding"] = "bitmask"
    else:
        out[name] = t.clone()
        record["encoding"] = "dense"
    return record


def save_module(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_shape: Any = None,
    sequential: list[dict[str, Any]] | None = None,
) -> None:
    """Write ``model``'s state dict and layer shapes (see the module docstring), and the
    layers of an ``nn.Sequential`` that can be rebuilt from the file alone (``sequential``:
    each layer's type, name and constructor arguments)."""
    tensors: dict[str, Tensor] = {}
    state = model.state_dict()
    records = {name: _encode(name, t, tensors) for name, t in state.items()}
    volatile = {  # buffers the state dict leaves out (a rotary embedding's frequencies)
        _VOLATILE + name: _encode(_VOLATILE + name, b, tensors)
        for name, b in model.named_buffers()
        if name not in state
    }
    modules = {
        name: {"type": type(m).__name__, **{k: getattr(m, k) for k in _attributes(m)}}
        for name, m in model.named_modules()
        if _attributes(m)
    }
    metadata = {
        "format": FORMAT,
        "class": type(model).__name__,
        "input_shape": json.dumps(list(input_shape) if input_shape is not None else None),
        "modules": json.dumps(modules),
        "tensors": json.dumps(records),
        "volatile": json.dumps(volatile),
    }
    if sequential is not None:
        metadata["sequential"] = json.dumps(sequential)
    save_file(tensors, str(path), metadata=metadata)


def is_safetensors(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts like a safetensors file (an 8-byte header size, then JSON)."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1


def read_header(path: Path) -> dict[str, Any]:
    """The file's metadata, decoded, and the shapes of the tensors it stores."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        stored = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a {FORMAT} checkpoint (see save_sparse)")
    try:
        return {
            "class": metadata["class"],
            "input_shape": json.loads(metadata.get("input_shape", "null")),
            "modules": json.loads(metadata["modules"]),
            "tensors": json.loads(metadata["tensors"]),
            "sequential": json.loads(metadata.get("sequential", "null")),
            "volatile": json.loads(metadata.get("volatile", "null")),
            "stored": stored,
        }
    except (KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"{str(path)!r}: damaged metadata ({error})") from None


def _check_stored(name: str, record: dict[str, Any], stored: dict[str, tuple[int, ...]]) -> None:
    shape = tuple(int(s) for s in record["shape"])
    n = math.prod(shape)
    if record.get("encoding") == "bitmask":
        mask, values = stored.get(f"{name}/mask"), stored.get(f"{name}/values")
        if mask != ((n + 7) // 8,) or values is None or len(values) != 1 or values[0] > n:
            raise ValueError(f"{name}: recorded shape {list(shape)} does not match its stored mask")
    elif stored.get(name) != shape:
        raise ValueError(
            f"{name}: recorded shape {list(shape)} but the file stores {stored.get(name)}"
        )


def load_module(
    path: str | os.PathLike[str], architecture: Callable[[], nn.Module]
) -> tuple[nn.Module, Any]:
    """The model in ``path``, built by ``architecture`` and resized as recorded, in eval mode;
    and the recorded input shape. Raises ``ValueError`` naming the layer on any mismatch."""
    path = Path(path)
    header = read_header(path)
    with torch.device("meta"):
        model = architecture()
    if type(model).__name__ != header["class"]:
        raise ValueError(
            f"{str(path)!r} holds a {header['class']}, but architecture builds a "
            f"{type(model).__name__}"
        )
    for name, spec in header["modules"].items():
        _resize_recorded(model, name, spec)
    expected_keys = set(model.state_dict())
    if set(header["tensors"]) != expected_keys:
        missing = sorted(expected_keys - set(header["tensors"]))[:5]
        extra = sorted(set(header["tensors"]) - expected_keys)[:5]
        raise ValueError(
            f"the file's tensors do not match the architecture: missing {missing}, "
            f"unexpected {extra}"
        )
    for name, record in header["tensors"].items():
        _place_recorded(model, name, record, header["stored"])
    check_layouts(model)
    settle_encoders(model)
    volatile = [n for n, _ in model.named_buffers() if n not in expected_keys]
    model = model.to_empty(device="cpu")
    if volatile:
        with torch.no_grad():
            for name, value in _volatile(path, header, volatile, architecture).items():
                model.get_buffer(name).copy_(value)
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    with torch.no_grad():
        for name, value in read_tensors(path, header["tensors"]).items():
            state[name].copy_(value)
    return model.eval(), header["input_shape"]


def _volatile(
    path: Path, header: dict[str, Any], names: list[str], architecture: Callable[[], nn.Module]
) -> dict[str, Tensor]:
    """The buffers ``names`` that the state dict leaves out: from the file, which records
    them; from a real build of the architecture for a file written before it did."""
    records = header.get("volatile") or {}
    if {_VOLATILE + n for n in names} <= set(records):
        stored = read_tensors(path, {_VOLATILE + n: records[_VOLATILE + n] for n in names})
        return {name.removeprefix(_VOLATILE): t for name, t in stored.items()}
    reference = dict(architecture().named_buffers())
    return {name: reference[name] for name in names}


def _resize_recorded(model: nn.Module, name: str, spec: dict[str, Any]) -> None:
    """Give layer ``name`` of the meta-device ``model`` the shape attributes the file
    records (an ``nn.MultiheadAttention`` that lost heads becoming a ``HeadAttention``)."""
    try:
        module = model.get_submodule(name)
    except AttributeError:
        raise ValueError(f"layer {name!r} of the file is not in the architecture") from None
    if spec.get("type") == HeadAttention.__name__ and isinstance(module, nn.MultiheadAttention):
        module = HeadAttention.from_multihead(module)
        model.set_submodule(name, module)
    if type(module).__name__ != spec.get("type"):
        raise ValueError(
            f"layer {name!r} is a {type(module).__name__}, the file says {spec.get('type')}"
        )
    attributes = _attributes(module)
    if not attributes or set(spec) - {"type"} != set(attributes):
        raise ValueError(
            f"layer {name!r}: the file records {sorted(set(spec) - {'type'})}, "
            f"a {type(module).__name__} has {list(attributes)}"
        )
    for attr in attributes:
        value = spec.get(attr)
        if not _recorded(value) or type(value) is not type(getattr(module, attr)):
            kind = type(getattr(module, attr)).__name__
            raise ValueError(f"layer {name!r}: {attr}={value!r} is not a positive {kind}")
        setattr(module, attr, value)


def _place_recorded(
    model: nn.Module, name: str, record: dict[str, Any], stored: dict[str, Any]
) -> None:
    """An empty meta tensor of the recorded shape and dtype in place of ``name``, after
    checking it against what the file stores and the layer's attributes."""
    _check_stored(name, record, stored)
    owner, _, attr = name.rpartition(".")
    module = model.get_submodule(owner)
    shape = tuple(int(s) for s in record["shape"])
    want = _expected(module, attr)
    if want is not None and tuple(want) != shape:
        raise ValueError(
            f"layer {owner!r}: {attr} has shape {list(shape)}, but its attributes say {list(want)}"
        )
    dtype = getattr(torch, str(record["dtype"]), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{name}: unknown dtype {record['dtype']!r}")
    old = getattr(module, attr)
    if isinstance(module, nn.RMSNorm) and attr == "weight":
        module.normalized_shape = shape
    empty = torch.empty(shape, dtype=dtype, device="meta")
    setattr(
        module,
        attr,
        nn.Parameter(empty, old.requires_grad) if isinstance(old, nn.Parameter) else empty,
    )


def read_tensors(path: Path, records: dict[str, Any] | None = None) -> dict[str, Tensor]:
    """The state dict stored in ``path``, decoded (``records``: the header's, if read)."""
    records = records if records is not None else read_header(path)["tensors"]
    out = {}
    with safe_open(str(path), framework="pt") as f:
        for name, record in records.items():
            shape = tuple(int(s) for s in record["shape"])
            if record.get("encoding") == "bitmask":
                mask, values = f.get_tensor(f"{name}/mask"), f.get_tensor(f"{name}/values")
                out[name] = unpack_nonzeros(name, mask, values, shape)
            else:
                out[name] = f.get_tensor(name)
    return out
