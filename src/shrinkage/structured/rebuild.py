"""Compaction of any traced network: the dead units out, the same class back.

A unit (see :mod:`shrinkage.structured.trace`) is **dead** when every entry of its
parameters is zero, or when each of its channels is a constant whatever the input (a zero
filter with a bias, a BatchNorm whose scale is zero). :func:`remove_dead_units_` removes dead
units from :func:`~shrinkage.compact`'s working copy of the model, slicing every member
tensor, and adds the constant
``sum_kernel W[:, k] * c`` that a removed channel ``k`` of value ``c`` fed a consumer to that
consumer's bias. That is exact for a linear layer and for a convolution without zero
padding; a constant ``c != 0`` entering a zero-padded convolution gives different values at
the borders, so that unit is kept and the report says why. Layer attributes that describe
shapes (``in_channels``, ``out_channels``, ``groups``, ``in_features``, ``num_features``,
...) are updated; ``compact`` then compares the outputs with the original's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, fx, nn

from .errors import CompactionError
from .surgery import fit_widths, set_tensor, width_counts
from .trace import Graph, Unit, evaluated, trace

__all__ = [
    "GroupReport",
    "check_outputs",
    "dead",
    "outputs_of",
    "remove_dead_units_",
    "same_outputs",
]


@dataclass(frozen=True)
class GroupReport:
    """One layer's units: those first produced by layer ``label``.

    Attributes:
        label: the producing layer's module name.
        units_before: its units before compaction.
        units_after: and after.
        parameters_before: that layer's own parameter entries before.
        parameters_after: and after.
        kept: dead units that had to stay, counted by reason.
    """

    label: str
    units_before: int
    units_after: int
    parameters_before: int
    parameters_after: int
    kept: dict[str, int] = field(default_factory=dict)


def _tensors(model: nn.Module) -> dict[str, Tensor]:
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


class _Zeros:
    """Which slices of a model's tensors are all zero, computed once per (tensor, dim)."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        self.tensors = tensors
        self.nonzero: dict[tuple[str, int], np.ndarray] = {}

    def __call__(self, name: str, dim: int, slices: list[int]) -> bool:
        key = (name, dim)
        if key not in self.nonzero:
            t = self.tensors[name].detach().movedim(dim, 0)
            self.nonzero[key] = (t.reshape(t.shape[0], -1) != 0).any(1).numpy()
        return not bool(self.nonzero[key][slices].any())


def dead(unit: Unit, tensors: dict[str, Tensor], zero: _Zeros | None = None) -> str | None:
    """Why ``unit`` can go: ``"zero"`` (every parameter entry it holds is zero),
    ``"unread"`` (every consumer's input slice is zero, so nothing reads its channels) or
    ``"constant"`` (each channel is one value whatever the input: a zero filter with a bias,
    a zero BatchNorm scale); ``None`` when it must stay."""
    zero = zero or _Zeros(tensors)
    params = [k for k in unit.members if isinstance(tensors[k[0]], nn.Parameter)]
    if all(zero(name, dim, unit.members[(name, dim)]) for name, dim in params):
        return "zero"
    reads = {(c.weight, c.weight_dim) for c in unit.consumers}
    if reads and all(zero(name, dim, unit.members[(name, dim)]) for name, dim in reads):
        return "unread"
    return "constant" if unit.constant else None


def _leaves(out: Any) -> Iterator[Tensor]:
    if isinstance(out, Tensor):
        yield out
    elif isinstance(out, dict):
        for v in out.values():
            yield from _leaves(v)
    elif isinstance(out, list | tuple):
        for v in out:
            yield from _leaves(v)


def _call(model: nn.Module, example: tuple[Any, ...]) -> list[Tensor]:
    with torch.no_grad():
        return [t.detach() for t in _leaves(model(*example))]


def _record(
    graph_module: fx.GraphModule, example: tuple[Any, ...], names: set[str]
) -> dict[str, Tensor]:
    """The values of graph nodes ``names`` on ``example``."""
    seen: dict[str, Tensor] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            value = super().run_node(n)
            if n.name in names and isinstance(value, Tensor):
                seen[n.name] = value.detach()
            return value

    with torch.no_grad():
        Recorder(graph_module).run(*example)
    return seen


def _fold(
    unit: Unit,
    values: dict[str, Tensor],
    model: nn.Module,
    tensors: dict[str, Tensor],
) -> str | dict[str, Tensor]:
    """What ``unit``'s constant channels feed each consumer, by the consumer's bias name; or
    why the unit must stay."""
    updates: dict[str, Tensor] = {}
    for c in unit.consumers:
        x = values[c.node].select(c.dim, c.column)
        c0 = x.reshape(-1)[0]
        if not bool((x == c0).all()):
            return "a channel is not constant on the example input"
        if float(c0) == 0.0:
            continue
        module = c.weight.rpartition(".")[0]
        if module + ".bias" not in tensors and not hasattr(model.get_submodule(module), "bias"):
            return f"{module} has no bias to absorb a constant channel"
        if c.padded:
            where = c.weight.rsplit(".", 1)[0]
            return f"a constant channel enters {where}, whose output then varies by position"
        w = tensors[c.weight].detach().select(c.weight_dim, c.column)
        bias = c.weight.rsplit(".", 1)[0] + ".bias"
        add = (w.reshape(w.shape[0], -1).sum(1) * c0).to(w.dtype)
        updates[bias] = updates[bias] + add if bias in updates else add
    return updates


def _keep_one(removed: list[Unit], tensors: dict[str, Tensor], kept: dict[int, str]) -> list[Unit]:
    """``removed`` less the units that would leave a tensor without any slice along a dim
    (a layer with no channel at all cannot be expressed): one unit stays per such tensor."""
    while True:
        count: dict[tuple[str, int], int] = {}
        for unit in removed:
            for key, slices in unit.members.items():
                count[key] = count.get(key, 0) + len(slices)
        emptied = [k for k, n in count.items() if n >= tensors[k[0]].shape[k[1]]]
        if not emptied:
            return removed
        name, dim = emptied[0]
        stay = next(u for u in removed if (name, dim) in u.members)
        kept[id(stay)] = f"{name.rpartition('.')[0]} keeps one channel"
        removed = [u for u in removed if u is not stay]


def _rounded(graph: Graph, removed: list[Unit], kept: dict[int, str], round_to: int) -> list[Unit]:
    """``removed`` less the dead units each layer keeps so that its width stays a multiple
    of ``round_to`` (or is the whole layer)."""
    if round_to <= 1:
        return removed
    width: dict[str, int] = {}
    for unit in graph.units:
        width[unit.label] = width.get(unit.label, 0) + 1
    gone: dict[str, int] = {}
    for unit in removed:
        gone[unit.label] = gone.get(unit.label, 0) + 1
    fill = {
        label: min(width[label], -(-(width[label] - n) // round_to) * round_to) - (width[label] - n)
        for label, n in gone.items()
    }
    out = []
    for unit in reversed(removed):  # the last dead units of a layer fill it up
        if fill[unit.label] > 0:
            fill[unit.label] -= 1
            kept[id(unit)] = f"kept for a width that is a multiple of {round_to}"
        else:
            out.append(unit)
    return out[::-1]


def remove_dead_units_(
    model: nn.Module, example: tuple[Any, ...], round_to: int = 1
) -> tuple[list[GroupReport], Graph]:
    """Remove the dead units of the eval-mode ``model`` in place (its layers get new,
    smaller tensors): the per-layer report and the traced graph. The caller owns ``model``
    and checks its outputs against the original's. Each layer keeps a multiple of
    ``round_to`` units (or all of them): dead units fill it up, which changes no output.

    Raises:
        CompactionError: the model cannot be traced.
    """
    graph: Graph = trace(model, example)
    before = {label: _size(model, label) for label in {u.label for u in graph.units}}
    tensors = _tensors(model)
    removed, folds, kept = _removable(graph, model, tensors, example)
    removed = _rounded(graph, removed, kept, round_to)
    drop: dict[tuple[str, int], set[int]] = {}
    delta: dict[str, Tensor] = {}
    for unit in removed:
        for key, slices in unit.members.items():
            drop.setdefault(key, set()).update(slices)
        for bias, add in folds[id(unit)].items():
            delta[bias] = delta[bias] + add if bias in delta else add
    _cut(model, tensors, drop, delta)
    return _reports(graph, removed, kept, before, model), graph


def _size(model: nn.Module, label: str) -> int:
    """The parameter entries of ``model``'s layer ``label``."""
    return sum(p.numel() for p in model.get_submodule(label).parameters())


def _removable(
    graph: Graph, new: nn.Module, tensors: dict[str, Tensor], example: tuple[Any, ...]
) -> tuple[list[Unit], dict[int, dict[str, Tensor]], dict[int, str]]:
    """The dead units to remove, the bias each folds into its consumers (``id(unit) ->
    {bias: added}``), and the dead units kept, with why."""
    zeros = _Zeros(tensors)
    why_dead = {id(u): dead(u, tensors, zeros) for u in graph.units}
    candidates = [u for u in graph.units if why_dead[id(u)] is not None]
    needed = {c.node for u in candidates if why_dead[id(u)] == "constant" for c in u.consumers}
    values: dict[str, Tensor] = {}
    if needed:
        values = _record(graph.program.module(), example, needed)
    folds: dict[int, dict[str, Tensor]] = {}
    kept: dict[int, str] = {}
    for unit in candidates:
        fold = _fold(unit, values, new, tensors) if why_dead[id(unit)] == "constant" else {}
        if isinstance(fold, str):
            kept[id(unit)] = fold
        else:
            folds[id(unit)] = fold
    removed = _keep_one([u for u in candidates if id(u) in folds], tensors, kept)
    return removed, folds, kept


def _cut(
    new: nn.Module,
    tensors: dict[str, Tensor],
    drop: dict[tuple[str, int], set[int]],
    delta: dict[str, Tensor],
) -> None:
    """In ``new``: add the folded constants ``delta`` to their biases, cut the slices
    ``drop[(name, dim)]``, and set each touched layer's shape attributes."""
    shapes = {name: width_counts(m) for name, m in new.named_modules()}
    with torch.no_grad():
        for bias, add in delta.items():
            old = tensors.get(bias)
            if old is None:  # a new bias: cut it like the weight's rows
                weight = bias.rpartition(".")[0] + ".weight"
                drop[(bias, 0)] = set(drop.get((weight, 0), set()))
            base = old.detach() if old is not None else torch.zeros_like(add)
            set_tensor(new, bias, base + add)
        tensors = _tensors(new)
        by_name: dict[str, list[tuple[int, set[int]]]] = {}
        for (name, dim), dropped in drop.items():
            by_name.setdefault(name, []).append((dim, dropped))
        for name, cuts in by_name.items():
            t = tensors[name].detach()
            for dim, cut in cuts:
                keep = torch.tensor(
                    [k for k in range(t.shape[dim]) if k not in cut], dtype=torch.long
                )
                t = t.index_select(dim, keep)
            set_tensor(new, name, t)
        for name in {n.rpartition(".")[0] for n in by_name} | {b.rpartition(".")[0] for b in delta}:
            fit_widths(new.get_submodule(name), shapes[name])


def check_outputs(model: nn.Module, new: nn.Module, example: tuple[Any, ...], atol: float) -> None:
    """Raise :class:`CompactionError` unless ``new`` computes ``model``'s outputs on
    ``example`` (positional inputs), every output within ``atol`` times its scale
    (``max(1, max |output|)``)."""
    same_outputs(_call(evaluated(model), example), new, example, atol)


def outputs_of(model: nn.Module, example: tuple[Any, ...]) -> list[Tensor]:
    """Every tensor ``model`` returns on ``example`` (positional inputs), without gradients."""
    return _call(model, example)


def same_outputs(
    reference: list[Tensor], new: nn.Module, example: tuple[Any, ...], atol: float
) -> None:
    """Raise :class:`CompactionError` unless ``new`` returns ``reference`` on ``example``,
    every output within ``atol`` times its scale (``max(1, max |output|)``)."""
    try:
        outputs = _call(new, example)
    except Exception as error:  # any failure of the user's forward on the smaller layers
        raise CompactionError(
            f"the compacted {type(new).__name__} fails on the example input "
            f"({type(error).__name__}: {str(error)[:300]}); nothing was changed"
        ) from None
    if len(outputs) != len(reference):
        raise CompactionError("the compacted model returns different outputs; nothing was changed")
    for a, b in zip(reference, outputs, strict=True):
        if a.shape != b.shape:
            raise CompactionError(
                f"an output's shape changed from {tuple(a.shape)} to {tuple(b.shape)}; "
                "nothing was changed"
            )
        scale = max(1.0, float(a.abs().max())) if a.numel() else 1.0
        gap = float((a - b).abs().max()) if a.numel() else 0.0
        if gap > atol * scale:
            raise CompactionError(
                f"the compacted model's outputs differ by {gap:.3g} (more than atol={atol:g}); "
                "nothing was changed"
            )


def _reports(
    graph: Graph,
    removed: list[Unit],
    kept: dict[int, str],
    before: dict[str, int],
    new: nn.Module,
) -> list[GroupReport]:
    """One row per producing layer: its units, and its own parameters ``before`` and after."""
    gone = {id(u) for u in removed}
    rows: dict[str, list[int]] = {}
    reasons: dict[str, dict[str, int]] = {}
    for unit in graph.units:
        row = rows.setdefault(unit.label, [0, 0])
        row[0] += 1
        row[1] += id(unit) not in gone
        if id(unit) in kept:
            r = reasons.setdefault(unit.label, {})
            r[kept[id(unit)]] = r.get(kept[id(unit)], 0) + 1
    return [
        GroupReport(label, a, b, before[label], _size(new, label), reasons.get(label, {}))
        for label, (a, b) in rows.items()
    ]
