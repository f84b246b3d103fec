"""Multiply-accumulates of one forward pass, counted by ``torch.utils.flop_counter``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from .trace import Unit, evaluated

__all__ = ["count_macs", "unit_macs"]


def count_macs(model: nn.Module, example_input: Any) -> int:
    """Multiply-accumulates of ``model`` on ``example_input``, in eval mode.

    Half the FLOPs that :class:`torch.utils.flop_counter.FlopCounterMode` counts for matrix
    products and convolutions (a ``[N, k] @ [k, m]`` product is ``N * k * m`` MACs);
    element-wise work (BatchNorm, activations, pooling) is not counted.
    ``nn.TransformerEncoderLayer``'s fused inference kernel, whose products the counter
    cannot see, is off while counting (the same products then run one by one).

    Args:
        model: the model (not changed: one with a module in training mode runs as an
            eval-mode copy).
        example_input: a batch, or a tuple of positional inputs.

    Returns:
        The MACs of the whole batch.

    Example:
        >>> import torch
        >>> count_macs(torch.nn.Linear(4, 3), torch.zeros(2, 4))
        24
    """
    example = example_input if isinstance(example_input, tuple) else (example_input,)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), _unfused_attention(), counter:
        evaluated(model)(*example)
    return int(counter.get_total_flops()) // 2


@contextmanager
def _unfused_attention() -> Iterator[None]:
    """Turn ``torch.backends.mha``'s fast path off inside the scope, and back as it was."""
    enabled = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(enabled)


def unit_macs(model: nn.Module, units: Sequence[Unit], example_input: Any) -> Tensor:
    """``[len(units)]``: the multiply-accumulates per sample that each unit costs, summed
    over its weight slices: a slice of a ``Conv`` or ``Linear`` weight along ``dim`` costs
    ``weight.numel() / weight.shape[dim]`` per output position of that layer (a filter's or
    an input channel's share of the layer's MACs); other tensors (biases, norms) cost none.
    Positions are read from one eval-mode forward pass on ``example_input``."""
    example = example_input if isinstance(example_input, tuple) else (example_input,)
    run = evaluated(model)
    positions: dict[str, float] = {}

    def hook(name: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def record(module: nn.Module, args: Any, out: Tensor) -> None:
            weight = module.weight
            assert isinstance(weight, Tensor)
            channels = weight.shape[0]  # out_channels, out_features
            positions[name] = out.numel() / (out.shape[0] * channels) if out.ndim > 1 else 1.0

        return record

    layers = [
        (name, m)
        for name, m in run.named_modules()
        if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d)
    ]
    handles = [m.register_forward_hook(hook(name)) for name, m in layers]
    try:
        with torch.no_grad():
            run(*example)
    finally:
        for handle in handles:
            handle.remove()
    weights = {f"{name}.weight": (m.weight.shape, positions.get(name, 0.0)) for name, m in layers}
    costs = torch.zeros(len(units), dtype=torch.float64)
    for u, unit in enumerate(units):
        for (name, dim), slices in unit.members.items():
            if name in weights:
                shape, at = weights[name]
                costs[u] += len(slices) * math.prod(shape) / shape[dim] * at
    return costs
