"""What a forward pass costs: its multiply-accumulates, counted by
``torch.utils.flop_counter``, and each unit's share of them (or, measured, of the time)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from .trace import Unit, as_inputs, evaluated

__all__ = ["count_macs", "median_ratio", "median_seconds", "unit_latency", "unit_macs"]


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
    example = as_inputs(example_input)
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


LayerCost = Callable[[nn.Module, tuple[Any, ...], Tensor], float]
"""What one whole layer costs, from its module, inputs and output in one forward pass."""

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def unit_macs(model: nn.Module, units: Sequence[Unit], example_input: Any) -> Tensor:
    """``[len(units)]``: the multiply-accumulates per sample that each unit costs, summed
    over its weight slices: a slice of a ``Conv`` or ``Linear`` weight along ``dim`` costs
    ``weight.numel() / weight.shape[dim]`` per output position of that layer (a filter's or
    an input channel's share of the layer's MACs); other tensors (biases, norms) cost none.
    Positions are read from one eval-mode forward pass on ``example_input``."""

    def macs(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> float:
        weight = module.weight
        assert isinstance(weight, Tensor)
        per_sample = out.numel() / (out.shape[0] * weight.shape[0]) if out.ndim > 1 else 1.0
        return weight.numel() * per_sample

    return _unit_costs(model, units, example_input, macs)


def unit_latency(
    model: nn.Module, units: Sequence[Unit], example_input: Any, repeats: int = 10
) -> Tensor:
    """``[len(units)]``: the seconds each unit costs on this device, each layer's measured
    time shared among its slices as :func:`unit_macs` shares its MACs: a slice of a weight
    along ``dim`` costs ``time / weight.shape[dim]``.

    Each ``Conv`` or ``Linear`` layer is timed alone on the input it received in one
    eval-mode forward pass on ``example_input`` (the median of ``repeats`` runs, after one
    untimed run). The figures depend on the machine and on what else runs on it."""

    def seconds(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> float:
        return median_seconds(lambda: module(*args), repeats, warmup=1, cuda=out.is_cuda)

    return _unit_costs(model, units, example_input, seconds)


def median_seconds(run: Callable[[], Any], repeats: int, *, warmup: int, cuda: bool) -> float:
    """The median wall time of ``repeats`` calls of ``run`` after ``warmup`` untimed ones,
    each between two CUDA synchronizations when ``cuda``."""
    for _ in range(warmup):
        run()
    return statistics.median(_seconds(run, cuda) for _ in range(repeats))


def median_ratio(
    run: Callable[[], Any], reference: Callable[[], Any], repeats: int, *, warmup: int, cuda: bool
) -> float:
    """The median over ``repeats`` rounds of ``time(run) / time(reference)``, the two called
    in turns in each round (after ``warmup`` untimed rounds), so that a change in the
    machine's load between rounds cancels out of the ratio."""
    for _ in range(warmup):
        run()
        reference()
    return statistics.median(
        _seconds(run, cuda) / _seconds(reference, cuda) for _ in range(repeats)
    )


def _seconds(run: Callable[[], Any], cuda: bool) -> float:
    """The wall time of one call of ``run``, between two CUDA synchronizations when
    ``cuda``."""
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    run()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _unit_costs(
    model: nn.Module, units: Sequence[Unit], example_input: Any, layer_cost: LayerCost
) -> Tensor:
    """``[len(units)]``: each unit's share of the ``layer_cost`` of every ``Conv`` or
    ``Linear`` layer it holds slices of (``len(slices) / weight.shape[dim]`` of it)."""
    run = evaluated(model)
    seen: dict[str, tuple[nn.Module, tuple[Any, ...], Tensor]] = {}

    def hook(name: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def record(module: nn.Module, args: Any, out: Tensor) -> None:
            seen[name] = (module, tuple(args), out)

        return record

    layers = [(name, m) for name, m in run.named_modules() if isinstance(m, _WEIGHTED)]
    handles = [m.register_forward_hook(hook(name)) for name, m in layers]
    try:
        with torch.no_grad():
            run(*as_inputs(example_input))
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():  # after the pass, each layer on its own input
        costs_of = {name: layer_cost(*recorded) for name, recorded in seen.items()}
    weights = {f"{name}.weight": (m.weight.shape, costs_of.get(name, 0.0)) for name, m in layers}
    costs = torch.zeros(len(units), dtype=torch.float64)
    for u, unit in enumerate(units):
        for (name, dim), slices in unit.members.items():
            if name in weights:
                shape, layer = weights[name]
                costs[u] += len(slices) / shape[dim] * layer
    return costs
