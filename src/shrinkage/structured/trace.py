"""Coupled channels of any network, read off its ``torch.export`` graph.

Every channel of every tensor in the graph gets an id. Each ATen op passes its input ids
through (BatchNorm, activations, pooling, views), ties ids together (a residual ``add`` or
``mul``, broadcasting included; a grouped convolution's inputs and outputs) or starts new
ones (a convolution's or a linear layer's outputs); :mod:`shrinkage.structured.rules` has one
rule per op. Ids tied together form one **unit**: channels that can only be removed together.
A unit's **members** are the parameter slices it touches: the producers' filters and biases
(dim 0), BatchNorm scale and shift, per-channel parameters of element-wise ops, and the
consumers' input slices (dim 1). Channels that an op mixes in a way no rule covers (a
LayerNorm's statistics, a channel ``slice``, the model's inputs and outputs, an op without a
rule) are **pinned**: never grouped, never removed. A model the rules do not fully cover thus
still gets groups that are right, only fewer of them.

Shapes ride along as numpy id arrays broadcast to each tensor's shape, so views, permutes,
``cat``, ``chunk`` and ``flatten`` are the numpy operations of the same name.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, fx, nn

from .errors import CompactionError
from .rules import PARAMETER_READERS, Consumer, Value, op_name, rule_for

__all__ = ["Graph", "Unit", "as_inputs", "evaluated", "trace"]


@dataclass
class Unit:
    """Channels removed together. ``members[(name, dim)]``: the slices of parameter (or
    buffer) ``name`` along ``dim`` that the unit holds; ``constant``: every channel of the
    unit takes one value at every position whatever the input (a zero filter, a zero
    BatchNorm scale), so a consumer can absorb it as a bias."""

    label: str
    members: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    consumers: list[Consumer] = field(default_factory=list)
    constant: bool = True


@dataclass(frozen=True)
class Graph:
    """What :func:`trace` found: the units, how many channel sets were pinned for each
    reason, and the exported program they were read from."""

    units: list[Unit]
    pinned: dict[str, int]
    program: torch.export.ExportedProgram


class Tracer:
    """The walk over one exported graph (used by the rules)."""

    def __init__(self, model: nn.Module, example: tuple[Any, ...]) -> None:
        try:
            self.program = torch.export.export(model, example, strict=False)
        except Exception as error:  # the exporter raises many types; all mean "cannot trace"
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise CompactionError(
                f"torch.export could not trace {type(model).__name__} ({first[:300]}); "
                "nothing was changed"
            ) from None
        signature = self.program.graph_signature
        self.names: dict[str, str] = {
            **signature.inputs_to_parameters,
            **signature.inputs_to_buffers,
            **signature.inputs_to_lifted_tensor_constants,
        }
        self.state = {**dict(self.program.named_parameters()), **dict(self.program.named_buffers())}
        self.state.update(self.program.constants)
        self.parent: list[int] = []
        self.pins: dict[int, str] = {}
        self.values: dict[str, Any] = {}
        self.members: list[tuple[str, int, np.ndarray]] = []  # slice k of (name, dim): ids[k]
        self.reads: list[tuple[Consumer, np.ndarray]] = []  # column k read: ids[k]
        self.produced: list[tuple[str, np.ndarray]] = []  # (layer, ids of its outputs)
        self.frozen: dict[str, str] = {}  # tensor -> why every unit holding it is pinned
        self.lazy: dict[str, tuple[int, ...]] = {}  # graph inputs that are model tensors
        self.nonconstant: set[int] = set()
        self.module = ""  # the module of the op being walked, named in pin reasons

    # -- ids ----------------------------------------------------------------------------
    def fresh(self, n: int) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return np.arange(start, start + n, dtype=np.int64)

    def find(self, a: int) -> int:
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def tie(self, a: np.ndarray, b: np.ndarray) -> None:
        """Tie ``a`` and ``b`` (id arrays of one shape) position by position."""
        both = tuple(
            0 if a.strides[d] == 0 and b.strides[d] == 0 else slice(None) for d in range(a.ndim)
        )
        pairs = np.stack([a[both].reshape(-1), b[both].reshape(-1)], 1)
        pairs = pairs[(pairs >= 0).all(1) & (pairs[:, 0] != pairs[:, 1])]
        for x, y in np.unique(pairs, axis=0).tolist():
            self.union(x, y)

    def pin(self, ids: np.ndarray, why: str) -> None:
        """Pin the channels ``ids`` for the reason ``why``, with the layer that pins them
        (the module of the op being walked) named after it."""
        why = f"{why} [in {self.module}]" if self.module else why
        for i in np.unique(ids).tolist():
            if i >= 0:
                self.pins.setdefault(i, why)

    def channels(self, ids: np.ndarray, dim: int, why: str) -> np.ndarray:
        """The id of each index along ``dim``; ids that also vary along another dim are
        pinned (the op would mix them)."""
        moved = np.moveaxis(ids, dim, -1)
        first = moved[(0,) * (moved.ndim - 1)]
        if not (moved == first).all():
            self.pin(ids, why)
        return np.asarray(first)

    def note(self, value: Value) -> Value:
        """Record which ids are not constant somewhere; returns ``value``."""
        ids, const = value
        if not const.all():
            self.nonconstant.update(i for i in np.unique(ids[~const]).tolist() if i >= 0)
        return value

    # -- graph values -------------------------------------------------------------------
    def get(self, arg: Any) -> Value | None:
        """The ``(ids, constant)`` arrays of graph value ``arg``, if it is a tensor."""
        if not isinstance(arg, fx.Node):
            return None
        shape = self.lazy.pop(arg.name, None)
        if shape is not None:  # a parameter or buffer: one id per entry, constant
            ids = self.fresh(math.prod(shape)).reshape(shape)
            self.values[arg.name] = (ids, np.broadcast_to(np.array(True), shape))
        value = self.values.get(arg.name)
        return value if isinstance(value, tuple) else None

    def name(self, arg: Any) -> str | None:
        """The parameter, buffer or constant that graph input ``arg`` is, if any."""
        return self.names.get(arg.name) if isinstance(arg, fx.Node) else None

    def tensor(self, name: str) -> Tensor:
        return self.state[name].detach()

    def pinned_value(self, val: Any, why: str) -> Any:
        """A new pinned id spanning each tensor output."""
        if isinstance(val, Tensor):
            shape = tuple(val.shape)
            ids = np.broadcast_to(self.fresh(1)[0], shape)
            self.pin(ids, why)
            return ids, np.broadcast_to(np.array(False), shape)
        if isinstance(val, list | tuple):
            return [self.pinned_value(v, why) for v in val]
        return None

    def member(self, name: str, dim: int, ids: np.ndarray) -> None:
        """Slice ``k`` of ``name`` along ``dim`` belongs to channel ``ids[k]``."""
        self.members.append((name, dim, np.asarray(ids, dtype=np.int64)))

    def unknown(self, node: fx.Node, why: str) -> Any:
        """Pin every input channel, freeze every parameter read, pinned outputs. A model
        tensor no op has read element-wise yet keeps no ids: frozen, it pins every unit that
        a later read ties it to (an embedding's ``[vocab, width]`` weight is never turned
        into one id per entry)."""
        for arg in node.all_input_nodes:
            name = self.name(arg)
            if name is not None:
                self.frozen.setdefault(name, why)
            if arg.name in self.lazy:
                continue
            value = self.get(arg)
            if value is not None:
                self.pin(value[0], why)
        return self.pinned_value(node.meta.get("val"), why)

    # -- the walk -----------------------------------------------------------------------
    def run(self) -> None:
        """Give every node of the graph its value: placeholders, ops by their rules, and
        the outputs pinned."""
        for node in self.program.graph.nodes:
            val = node.meta.get("val")
            self.module = _module_of(node)
            if node.op == "placeholder":
                self._placeholder(node, val)
            elif node.op == "call_function":
                rule = rule_for(node)
                if rule is None:
                    self.values[node.name] = self.unknown(node, f"op {op_name(node)} has no rule")
                else:
                    self.values[node.name] = rule(self, node, val)
            elif node.op == "output":
                self.module = ""
                for arg in node.all_input_nodes:
                    value = self.get(arg)
                    if value is not None:
                        self.pin(value[0], "a model output")

    def _placeholder(self, node: fx.Node, val: Any) -> None:
        """A model input (pinned), or a model tensor: its ids made when an op reads it
        element-wise, and frozen when an op without a parameter rule reads it."""
        name = self.names.get(node.name)
        if name is None:
            self.values[node.name] = self.pinned_value(val, "a model input")
        elif isinstance(val, Tensor):
            self.lazy[node.name] = tuple(val.shape)
            readers = {op_name(user) for user in node.users}
            if not readers <= PARAMETER_READERS:
                self.frozen.setdefault(name, f"{name} is read by {sorted(readers)}")

    def roots(self) -> np.ndarray:
        """Every id's representative (pointer jumping over the union-find forest)."""
        parent = np.asarray(self.parent, dtype=np.int64)
        while True:
            up = parent[parent]
            if (up == parent).all():
                return parent
            parent = up

    def build(self) -> Graph:
        """Walk the graph, then gather the channel sets into units."""
        self.run()
        self._tie_shared_slices()
        root = self.roots()
        pinned = self._pinned(root)
        units = self._units(root, pinned)
        reasons: dict[str, int] = {}
        for why in pinned.values():
            reasons[why] = reasons.get(why, 0) + 1
        return Graph([u for u in units.values() if u.members], reasons, self.program)

    def _tie_shared_slices(self) -> None:
        """One slice of a parameter read by two ops is one channel."""
        first: dict[tuple[str, int], np.ndarray] = {}
        for name, dim, ids in self.members:
            seen = first.setdefault((name, dim), ids)
            for x, y in np.unique(np.stack([seen, ids], 1)[seen != ids], axis=0).tolist():
                self.union(x, y)

    def _pinned(self, root: np.ndarray) -> dict[int, str]:
        """Root -> why its channels can never be removed: pinned by a rule, or holding a
        frozen tensor. A unit may hold one tensor along two dims (a residual around a square
        layer ties its outputs to its inputs): removing its rows and its columns is exact."""
        pinned: dict[int, str] = {}
        for i, why in self.pins.items():
            pinned.setdefault(int(root[i]), why)
        for name, _, ids in self.members:
            if name in self.frozen:
                for r in np.unique(root[ids]).tolist():
                    pinned.setdefault(r, self.frozen[name])
        return pinned

    def _units(self, root: np.ndarray, pinned: dict[int, str]) -> dict[int, Unit]:
        """A unit for every root a layer produced and nothing pinned, with its members,
        consumers and constancy."""
        units: dict[int, Unit] = {}
        for label, ids in self.produced:
            for r in np.unique(root[ids]).tolist():
                if r not in pinned and r not in units:
                    units[r] = Unit(label)
        self._attach(units, root)
        return units

    def _attach(self, units: dict[int, Unit], root: np.ndarray) -> None:
        """Each unit's members, consumers and constancy."""
        for name, dim, ids in self.members:
            for r, slices in _by_root(root[ids]):
                if r in units:
                    old = units[r].members.get((name, dim), [])
                    units[r].members[(name, dim)] = sorted({*old, *slices})
        for consumer, ids in self.reads:
            for r, columns in _by_root(root[ids]):
                if r in units:
                    units[r].consumers += [replace(consumer, column=k) for k in columns]
        for r in np.unique(root[list(self.nonconstant)]).tolist() if self.nonconstant else []:
            if r in units:
                units[r].constant = False


def _by_root(roots: np.ndarray) -> list[tuple[int, list[int]]]:
    """``[(root, positions holding it)]``."""
    order = np.argsort(roots, kind="stable")
    values, starts = np.unique(roots[order], return_index=True)
    ends = [*starts[1:].tolist(), len(order)]
    return [
        (int(v), order[a:b].tolist()) for v, a, b in zip(values, starts.tolist(), ends, strict=True)
    ]


def _module_of(node: fx.Node) -> str:
    """The name of the innermost module whose forward ran ``node`` (``""``: the model's
    own forward, or none recorded)."""
    stack = node.meta.get("nn_module_stack") or {}
    return str(list(stack.values())[-1][0]) if stack else ""


def evaluated(model: nn.Module) -> nn.Module:
    """``model`` itself when none of its modules is in training mode, else an eval-mode deep
    copy: what to run or trace for eval-mode results without changing the user's model."""
    return copy.deepcopy(model).eval() if any(m.training for m in model.modules()) else model


def as_inputs(example_input: Any) -> tuple[Any, ...]:
    """The model's positional inputs: ``example_input`` itself when a tuple, else a tuple of
    it (one batch)."""
    return example_input if isinstance(example_input, tuple) else (example_input,)


def trace(model: nn.Module, example_input: Any) -> Graph:
    """The units of ``model`` (see the module docstring).

    Args:
        model: any module ``torch.export`` can trace; it is not changed (an eval-mode copy
            is traced).
        example_input: a batch the model accepts, or a tuple of positional inputs.

    Raises:
        CompactionError: when the model cannot be exported.
    """
    example = as_inputs(example_input)
    with torch.no_grad():
        tracer = Tracer(evaluated(model), example)
    return tracer.build()
