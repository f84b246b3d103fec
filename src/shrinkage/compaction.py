"""Make structured sparsity pay: remove dead neurons and channels from a trained model.

A hidden unit (a Linear layer's output neuron, a Conv layer's output channel) is **dead** when
its incoming weights are all zero (what a group lasso over rows or filters produces) or when
the next layer never reads it (its input column, or kernel slice, is all zero). A unit with
zero incoming weights outputs a constant: its bias, then the BatchNorm affine map and the
activation of a constant. :func:`compact` folds that constant's contribution into the next
layer's bias, drops the unit, cuts the next layer's inputs to match (BatchNorm entries and
the columns behind a ``Flatten`` included), and checks that the new model's outputs equal the
old one's on the example input.

The result is a :class:`LeanSequential`: an ``nn.Sequential`` that calls its layers without
the per-call hook checks when nothing is hooked, which at batch 1 cost as much as a small
layer's arithmetic.

Supported: ``nn.Sequential`` models of ``Linear``, ``Conv1d``/``Conv2d`` (``groups=1``),
``BatchNorm1d``/``BatchNorm2d``, element-wise activations, ``Dropout``, ``Flatten``, max and
average pooling; the last Linear or Conv layer (the head) keeps all its outputs.
"""

from __future__ import annotations

import copy
import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx
from torch import Tensor, nn
from torch.nn.modules import module as _module

from .structured import PRODUCERS

__all__ = ["CompactionError", "CompactionReport", "LeanSequential", "compact", "dead_units"]

_PASSTHROUGH = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.Identity,
    nn.Dropout,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.Flatten,
)


class LeanSequential(nn.Sequential):
    """``nn.Sequential`` that runs each unhooked layer's computation itself, skipping the
    per-call hook checks of ``layer(x)`` and, for the common layers, the Python of ``forward``.

    Calling a module checks eight hook registries before it runs ``forward``, and ``forward``
    then passes through a few Python frames before the tensor operation: together 1.5 to 2.5 us
    a layer on a CPU, as much as the arithmetic of a small layer at batch 1 (a compact 7-layer
    CNN on 8x8 images spends a quarter of its batch-1 time there). This container computes
    exactly what ``nn.Sequential`` computes, ``x -> layer_n(... layer_1(x))``, with the same
    tensors and operations: a layer of exactly the class ``Linear``, ``Conv1d``, ``Conv2d``
    (zero padding), ``ReLU``, ``MaxPool1d``/``MaxPool2d`` (no indices) or ``Flatten`` is run as
    the one ``torch`` operation its ``forward`` runs; any other layer, a subclass included,
    through its ``forward``. With autograd off, a ``ReLU`` right after a ``Linear`` or ``Conv``
    overwrites the tensor that layer has just allocated instead of allocating another. It calls a
    layer the usual way when the layer or the global registry holds a hook, the layer's class
    defines its own ``__call__`` or the layer was compiled in place (``layer.compile()``), and
    calls every layer the usual way while TorchScript or ``torch.fx`` traces or scripts the
    model and under ``torch.compile`` / ``torch.export``, so these behave as with
    ``nn.Sequential``. Calling the container itself skips ``Module.__call__``'s frames on the
    same conditions: its own hooks and ``compile()`` are honoured.

    :func:`compact` and :func:`~shrinkage.load_sparse` return one.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # what ``Module.__call__`` does when the container has no hook and was not compiled in
        # place, without its two frames; anything else, or one positional input missing, goes
        # the usual way (looked up now: ``torch.fx`` replaces it while it traces)
        if (
            len(args) == 1
            and not kwargs
            and self._compiled_call_impl is None
            and not (
                self._forward_hooks
                or self._forward_pre_hooks
                or self._backward_hooks
                or self._backward_pre_hooks
            )
            and _direct_calls_allowed()
        ):
            return self._direct(args[0])
        return nn.Module.__call__(self, *args, **kwargs)

    def forward(self, input: Tensor) -> Tensor:
        if not torch.jit.is_scripting():  # noqa: SIM102 (TorchScript skips this block whole)
            if _direct_calls_allowed():
                return self._direct(input)
        for layer in self:
            input = layer(input)
        return input

    @torch.jit.unused
    def _direct(self, input: Tensor) -> Tensor:
        # with autograd off, the output a Linear or Conv kernel has just allocated is seen by
        # nothing else, so a ReLU right after it may overwrite it: the same values, one
        # allocation fewer (the user's input and a hooked layer's output are never overwritten)
        overwrite = not torch.is_grad_enabled()
        fresh = False
        kernels = _KERNELS
        for layer in self._modules.values():
            assert layer is not None
            kind = type(layer)
            # the container's own test in ``__call__``, written out rather than shared through
            # a helper: a function call per layer costs ~0.5 us of a ~35 us batch-1 CNN
            if (
                layer._forward_hooks
                or layer._forward_pre_hooks
                or layer._backward_hooks
                or layer._backward_pre_hooks
                or kind.__call__ is not _MODULE_CALL
                or layer._compiled_call_impl is not None
            ):
                input, fresh = layer(input), False
            elif fresh and overwrite and kind is nn.ReLU:
                input = torch.relu_(input)
            elif kind in kernels:
                kernel, fresh = kernels[kind]
                input = kernel(layer, input)
            else:
                input, fresh = layer.forward(input), False
        return input


_MODULE_CALL = nn.Module.__call__


def _linear(layer: nn.Linear, x: Tensor) -> Tensor:
    # weight and bias from the parameter table (``layer.weight`` would pass through
    # ``Module.__getattr__``, about 0.5 us); ``forward`` when either is not registered there
    table = layer._parameters
    weight = table.get("weight")
    if weight is None or "bias" not in table:
        return layer.forward(x)
    return nn.functional.linear(x, weight, table["bias"])


def _convolution(op: Callable[..., Tensor]) -> Callable[[Any, Tensor], Tensor]:
    """The kernel of a ``Conv1d`` / ``Conv2d`` whose ``forward`` runs ``op``."""

    def kernel(layer: nn.Conv1d | nn.Conv2d, x: Tensor) -> Tensor:
        table = layer._parameters  # as in _linear
        weight = table.get("weight")
        if weight is None or "bias" not in table or layer.padding_mode != "zeros":
            return layer.forward(x)
        bias = table["bias"]
        return op(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)

    return kernel


def _relu(layer: nn.ReLU, x: Tensor) -> Tensor:
    return torch.relu_(x) if layer.inplace else torch.relu(x)


def _max_pooling(op: Callable[..., Tensor]) -> Callable[[Any, Tensor], Tensor]:
    """The kernel of a ``MaxPool1d`` / ``MaxPool2d`` whose ``forward`` runs ``op``."""

    def kernel(layer: nn.MaxPool1d | nn.MaxPool2d, x: Tensor) -> Tensor:
        if layer.return_indices:
            return layer.forward(x)
        return op(
            x, layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode
        )

    return kernel


def _flatten(layer: nn.Flatten, x: Tensor) -> Tensor:
    return x.flatten(layer.start_dim, layer.end_dim)


# the one operation each of these classes' ``forward`` runs, called without its Python frames,
# and whether its output is a tensor it has just allocated; looked up by exact class, so a
# subclass (which may override ``forward``) is not matched
_KERNELS: dict[type[nn.Module], tuple[Callable[[Any, Tensor], Tensor], bool]] = {
    nn.Linear: (_linear, True),
    nn.Conv1d: (_convolution(nn.functional.conv1d), True),
    nn.Conv2d: (_convolution(nn.functional.conv2d), True),
    nn.ReLU: (_relu, False),
    nn.MaxPool1d: (_max_pooling(torch.max_pool1d), False),
    nn.MaxPool2d: (_max_pooling(torch.max_pool2d), False),
    nn.Flatten: (_flatten, False),
}


def _direct_calls_allowed() -> bool:
    """No global hook, and no TorchScript trace, ``torch.fx`` trace or ``torch.compile`` /
    ``torch.export`` in progress."""
    # the fx flag read directly: ``is_fx_symbolic_tracing()`` is that flag unless compiling,
    # which is checked first
    return not (
        _module._global_forward_hooks
        or _module._global_forward_pre_hooks
        or _module._global_backward_hooks
        or _module._global_backward_pre_hooks
        or _tracing_state()
        or _is_compiling()
        or _fx_tracing._is_fx_tracing_flag
    )


_tracing_state = torch._C._get_tracing_state
_is_compiling = torch.compiler.is_compiling
_fx_tracing = torch.fx._symbolic_trace


class CompactionError(ValueError):
    """The model cannot be compacted; the message names the layer and the reason."""


@dataclass(frozen=True)
class CompactionReport:
    """Units kept per producer layer (by its index in the original ``Sequential``), and
    parameters before and after."""

    kept: dict[int, tuple[int, int]]
    parameters_before: int
    parameters_after: int


def _check(model: nn.Module) -> list[int]:
    if not isinstance(model, nn.Sequential):
        raise CompactionError(
            f"compact needs an nn.Sequential model, got {type(model).__name__}; nothing was changed"
        )
    producers = []
    for i, layer in enumerate(model):
        if isinstance(layer, PRODUCERS):
            if isinstance(layer, nn.Conv1d | nn.Conv2d) and layer.groups != 1:
                raise CompactionError(
                    f"layer {i} ({layer}) is a grouped convolution (groups={layer.groups}), "
                    "which compact does not handle; nothing was changed"
                )
            producers.append(i)
        elif not isinstance(layer, _PASSTHROUGH):
            raise CompactionError(
                f"layer {i} ({type(layer).__name__}) is not supported by compact (supported: "
                "Linear, Conv1d/2d, BatchNorm, activations, Dropout, pooling, Flatten); "
                "nothing was changed"
            )
    if not producers:
        raise CompactionError("the model has no Linear or Conv layer; nothing was changed")
    return producers


def _trace(model: nn.Sequential, x: Tensor) -> list[Tensor]:
    """The input of every layer, then the final output."""
    inputs = [x]
    with torch.no_grad():
        for layer in model:
            inputs.append(layer(inputs[-1]))
    return inputs


def _columns(next_layer: nn.Module, units: int, flat_in: int) -> int:
    """How many input columns of ``next_layer`` each unit feeds (``Flatten`` spreads a
    channel over its spatial positions)."""
    if isinstance(next_layer, nn.Linear) and flat_in != units:
        if flat_in % units:
            raise CompactionError(
                f"{next_layer} reads {flat_in} inputs, not a multiple of the {units} units "
                "before it; nothing was changed"
            )
        return flat_in // units
    return 1


def _input_slices(next_layer: nn.Module, units: int, flat_in: int) -> Tensor:
    """``[units, in_features or in_channels]`` boolean: which inputs each unit feeds."""
    width = _columns(next_layer, units, flat_in)
    total = units * width
    own = torch.zeros(units, total, dtype=torch.bool)
    for j in range(units):
        own[j, j * width : (j + 1) * width] = True
    return own


def dead_units(model: nn.Sequential, producer: int, following: int) -> tuple[Tensor, Tensor]:
    """``(no_input, unread)`` boolean masks over ``model[producer]``'s units: all-zero
    incoming weights, and all-zero weights in ``model[following]`` (the next producer)."""
    layer, nxt = model[producer], model[following]
    assert isinstance(layer, PRODUCERS) and isinstance(nxt, PRODUCERS)
    w = layer.weight.detach()
    no_input = (w.reshape(w.shape[0], -1) == 0).all(dim=1)
    units = w.shape[0]
    wn = nxt.weight.detach()
    own = _input_slices(nxt, units, wn.shape[1])
    reads = (wn != 0).reshape(wn.shape[0], wn.shape[1], -1).any(dim=2).any(dim=0)  # [in]
    unread = torch.tensor([not bool(reads[own[j]].any()) for j in range(units)])
    return no_input, unread


def compact(
    model: nn.Module, example_input: Tensor, *, atol: float = 1e-5, fuse_batchnorm: bool = True
) -> tuple[LeanSequential, CompactionReport]:
    """A smaller dense copy of ``model`` without its dead units (see the module docstring).

    Args:
        model: an ``nn.Sequential`` (left unchanged; evaluated in eval mode).
        example_input: a batch the model accepts, ``[N, ...]``; used to learn the feature-map
            sizes and to check the result.
        atol: the largest absolute difference allowed between the two models' outputs on
            ``example_input`` (relative to the output scale).
        fuse_batchnorm: fold each BatchNorm that directly follows a Linear or Conv layer into
            it (eval-mode statistics: ``W <- W * g / sqrt(var + eps)``, ``b <- (b - mean) * g /
            sqrt(var + eps) + beta``) and drop it, as inference engines do. The result then has
            fewer layers; its outputs are the same. ``False`` keeps the BatchNorm layers.

    Returns:
        ``(compact_model, report)``; the compact model is a :class:`LeanSequential` (its
        layers keep the names they had in ``model``), in eval mode.

    Raises:
        CompactionError: for an unsupported model, naming the layer and why; nothing changed.
    """
    producers = _check(model)
    assert isinstance(model, nn.Sequential)
    new = copy.deepcopy(model).eval()
    reference = _trace(copy.deepcopy(model).eval(), example_input)
    before = sum(p.numel() for p in model.parameters())
    kept: dict[int, tuple[int, int]] = {}
    with torch.no_grad():
        for a, b in itertools.pairwise(producers):
            layer, nxt = new[a], new[b]
            assert isinstance(layer, PRODUCERS) and isinstance(nxt, PRODUCERS)
            units = layer.weight.shape[0]
            no_input, unread = dead_units(new, a, b)
            # the constant each zero-input unit passes on: its bias through the layers between
            shape = _trace(new, example_input[:1])[a + 1].shape  # the producer's output
            probe = torch.zeros(shape, dtype=layer.weight.dtype)
            bias = layer.bias if layer.bias is not None else torch.zeros(units)
            probe += bias.reshape(1, -1, *([1] * (len(shape) - 2)))
            passed = probe
            for k in range(a + 1, b):
                passed = new[k](passed)
            drop = unread.clone()
            own = _input_slices(nxt, units, nxt.weight.shape[1])
            fold = torch.zeros(nxt.weight.shape[0], dtype=nxt.weight.dtype)
            candidates = no_input & ~unread
            if bool(candidates.any()):
                # a convolution of a constant map is constant only away from zero padding:
                # fold (and drop) only when the contribution is the same everywhere
                flat = _contribution(nxt, passed, own[candidates].any(dim=0))
                if torch.allclose(flat, flat[:, :1].expand_as(flat), atol=1e-7, rtol=1e-6):
                    fold = flat[:, 0]
                    drop |= candidates
            if bool(drop.all()):  # keep one unit: layers cannot be empty
                drop[0] = False
                if bool(candidates[0]):
                    fold = fold - _contribution(nxt, passed, own[0])[:, 0]
            keep = ~drop
            kept[a] = (int(keep.sum()), units)
            _cut_outputs(new, a, b, keep)
            _cut_inputs(nxt, own[keep].any(dim=0))
            if nxt.bias is None:
                nxt.bias = nn.Parameter(fold.clone())
            else:
                nxt.bias += fold
    children = _fused_children(new) if fuse_batchnorm else list(new.named_children())
    new = LeanSequential(OrderedDict(children)).eval()
    out_new = _trace(new, example_input)[-1]
    scale = max(1.0, float(reference[-1].abs().max()))
    error = float((out_new - reference[-1]).abs().max())
    if error > atol * scale:
        raise CompactionError(
            f"the compacted model's outputs differ by {error:.3g} (more than atol={atol:g}); "
            "nothing was changed"
        )
    after = sum(p.numel() for p in new.parameters())
    return new, CompactionReport(kept, before, after)


@torch.no_grad()
def _fused_children(model: nn.Sequential) -> list[tuple[str, nn.Module]]:
    """``model``'s named layers with each BatchNorm that follows a Linear or Conv layer folded
    into it (the layers are changed in place) and left out."""
    layers: list[tuple[str, nn.Module]] = []
    for name, layer in model.named_children():
        previous = layers[-1][1] if layers else None
        if (
            isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d)
            and isinstance(previous, PRODUCERS)
            and isinstance(layer.running_mean, Tensor)
            and isinstance(layer.running_var, Tensor)
        ):
            scale = (layer.running_var + layer.eps).rsqrt()
            shift = -layer.running_mean * scale
            if layer.weight is not None and layer.bias is not None:
                scale, shift = scale * layer.weight, shift * layer.weight + layer.bias
            bias = previous.bias if previous.bias is not None else torch.zeros_like(scale)
            shape = [-1] + [1] * (previous.weight.dim() - 1)
            previous.weight = nn.Parameter(previous.weight * scale.reshape(shape))
            previous.bias = nn.Parameter(bias * scale + shift)
            continue
        layers.append((name, layer))
    return layers


def _contribution(nxt: nn.Module, passed: Tensor, cols: Tensor) -> Tensor:
    """``[outputs of nxt, positions]``: what the inputs ``cols`` of ``passed`` (one sample)
    add to ``nxt``'s pre-activations, bias excluded."""
    if isinstance(nxt, nn.Linear):
        values = passed.reshape(1, -1)[0]
        return (nxt.weight[:, cols] @ values[cols])[:, None]
    assert isinstance(nxt, nn.Conv1d | nn.Conv2d)
    only = torch.zeros_like(passed)
    only[:, cols] = passed[:, cols]
    out = nxt._conv_forward(only, nxt.weight, None)
    return out.reshape(nxt.weight.shape[0], -1)


def _cut_outputs(model: nn.Sequential, a: int, b: int, keep: Tensor) -> None:
    layer = model[a]
    assert isinstance(layer, PRODUCERS)
    layer.weight = nn.Parameter(layer.weight[keep].clone())
    if layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias[keep].clone())
    if isinstance(layer, nn.Linear):
        layer.out_features = int(keep.sum())
    else:
        layer.out_channels = int(keep.sum())
    for k in range(a + 1, b):
        norm = model[k]
        if isinstance(norm, nn.BatchNorm1d | nn.BatchNorm2d):
            if norm.weight is not None:
                norm.weight = nn.Parameter(norm.weight[keep].clone())
                norm.bias = nn.Parameter(norm.bias[keep].clone())
            mean, var = norm.running_mean, norm.running_var
            if isinstance(mean, Tensor) and isinstance(var, Tensor):
                norm.running_mean = mean[keep].clone()
                norm.running_var = var[keep].clone()
            norm.num_features = int(keep.sum())


def _cut_inputs(layer: nn.Module, columns: Tensor) -> None:
    assert isinstance(layer, PRODUCERS)
    layer.weight = nn.Parameter(layer.weight[:, columns].clone())
    if isinstance(layer, nn.Linear):
        layer.in_features = int(columns.sum())
    else:
        layer.in_channels = int(columns.sum())
