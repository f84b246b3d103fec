"""Multiply-accumulates of one forward pass, counted by ``torch.utils.flop_counter``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .trace import evaluated

__all__ = ["count_macs"]


def count_macs(model: nn.Module, example_input: Any) -> int:
    """Multiply-accumulates of ``model`` on ``example_input`` (a batch, or a tuple of
    positional inputs), in eval mode: half the FLOPs that
    :class:`torch.utils.flop_counter.FlopCounterMode` counts for matrix products and
    convolutions (a ``[N, k] @ [k, m]`` product is ``N * k * m`` MACs); element-wise work
    (BatchNorm, activations, pooling) is not counted. ``model`` is not changed (a model with
    a module in training mode runs as an eval-mode copy)."""
    example = example_input if isinstance(example_input, tuple) else (example_input,)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        evaluated(model)(*example)
    return int(counter.get_total_flops()) // 2
