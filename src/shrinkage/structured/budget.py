"""Structured sparsity to a budget: raise the group lasso's strength until the model is cheap
enough, then stop.

    groups = neuron_groups(model, 1e-4, example_input=x[:2])
    opt = Proximal(torch.optim.Adam(model.parameters()), Regularizer(model, None, groups=groups))
    budget = Budget(model, groups, x[:2], target=0.5, optimizer=opt)   # 2x fewer MACs
    for step, (inputs, labels) in enumerate(batches):
        train_step(model, opt, inputs, labels)
        if step % 10 == 9 and budget.check():
            break
    small, report = compact(model, x[:2], round_to=budget.round_to)

Every few steps, :meth:`Budget.check` measures what the model would cost once compacted
(:func:`~shrinkage.compact` on the example input, run only when the set of zero units has
changed; widths rounded up to ``round_to``; MACs per sample or parameters). Above the target
it multiplies every group's strength by ``growth``; in the band down to ``(1 - tolerance) *
target`` it says stop. Below it (the last steps removed a burst of units at once, more than
the budget asked) it puts the model and optimizer back as they were at the last check above
the target and sets to zero the weakest units there (smallest norm per unit of penalty
weight: those the rising strength was removing), as few as meet the target, and says stop.
Units leave only as exact zeros, so compaction stays exact whatever the budget.

The built-in costs are counted, never timed, so the trained model is the same on every
machine. Latency falls with the MACs, though less than in proportion
(``benchmarks/structured.py --budgets 2 3 4``: at batch 256, 2x, 3x and 4x fewer MACs ran
1.35x, 1.49x and 1.61x faster). A budget in measured time is an explicit choice:
``cost=measured_latency(batch, baseline=model)`` (or any function of the compacted model)
drives the same loop by the time it measures on the current device, relative to the dense
model timed in turns with it; the model it stops at then depends on that machine and on what
else runs on it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._validation import ArgumentError, check_positive_int
from .compaction import compact
from .macs import count_macs, median_ratio, median_seconds
from .slices import SliceGroups
from .trace import as_inputs

__all__ = ["Budget", "BudgetReport", "measured_latency"]

COSTS = ("macs", "parameters")

CostFunction = Callable[[nn.Module], float]
"""A cost of a compacted model, ``cost(model) -> float``, lower is cheaper."""


def measured_latency(
    example_input: Any, *, repeats: int = 20, warmup: int = 3, baseline: nn.Module | None = None
) -> CostFunction:
    """A budget cost: the median time of an eval-mode forward pass on ``example_input``.

    With a ``baseline``, the cost is relative: in each of ``repeats`` rounds the model and a
    frozen eval-mode copy of ``baseline`` (taken now) each run once, and the cost is the
    median of ``time(model) / time(baseline)``. A load on the machine that comes and goes
    between checks then cancels out of the cost, which is not so for seconds measured at
    different moments.

    Args:
        example_input: the batch (or tuple of positional inputs) to time, on the device the
            model runs on.
        repeats: timed passes (or rounds); the median is the cost.
        warmup: untimed passes (or rounds) first.
        baseline: the model to time against, usually the dense model the budget starts
            from (not changed).

    Returns:
        ``latency(model) -> seconds``, named ``"latency"`` in a :class:`BudgetReport`; with a
        ``baseline``, ``relative_latency(model) -> ratio``, named ``"relative_latency"``.

    Raises:
        ArgumentError: ``repeats`` or ``warmup`` not a positive integer, or a ``baseline``
            that is not an ``nn.Module``.

    Example:
        >>> import torch
        >>> latency = measured_latency(torch.zeros(8, 4), repeats=3, warmup=1)
        >>> latency(torch.nn.Linear(4, 2)) > 0
        True
    """
    check_positive_int("repeats", repeats)
    check_positive_int("warmup", warmup)
    if baseline is not None and not isinstance(baseline, nn.Module):
        raise ArgumentError("baseline", f"must be an nn.Module or None; got {baseline!r}")
    inputs = as_inputs(example_input)
    on_cuda = any(isinstance(x, torch.Tensor) and x.is_cuda for x in inputs)
    if baseline is None:

        def latency(model: nn.Module) -> float:
            with torch.no_grad():
                return median_seconds(lambda: model(*inputs), repeats, warmup=warmup, cuda=on_cuda)

        return latency
    reference = copy.deepcopy(baseline).eval()

    def relative_latency(model: nn.Module) -> float:
        with torch.no_grad():
            return median_ratio(
                lambda: model(*inputs), lambda: reference(*inputs), repeats, warmup=warmup,
                cuda=on_cuda,
            )  # fmt: skip

    return relative_latency


@dataclass(frozen=True)
class BudgetReport:
    """Where a :class:`Budget` stands.

    Attributes:
        cost: ``"macs"`` (per sample), ``"parameters"``, or a cost function's name
            (``"latency"`` for :func:`measured_latency`, in seconds, or
            ``"relative_latency"`` with a baseline, a ratio).
        dense: the cost of the model when the budget was made.
        target: the cost asked for.
        reached: the cost of the compacted model at the last check.
        lam: the first group's strength now (every group's is raised by the same factor).
        checks: how many checks ran.
        stepped_back: whether the last steps went too far: the state of the check before
            was put back and its weakest units set to zero instead.
        done: whether ``reached`` is within the tolerance below ``target``.
    """

    cost: str
    dense: float
    target: float
    reached: float
    lam: float
    checks: int
    stepped_back: bool
    done: bool


class Budget:
    """Drive ``groups``' strength up until the compacted model costs ``target`` (see the module
    docstring).

    Args:
        model: the model being trained (read, and restored on a step back).
        groups: the group lassos applied to it (their strength is raised in place); the
            first strength is theirs, which must be positive.
        example_input: a batch (or tuple of inputs) that :func:`~shrinkage.compact` and the
            MAC count run on.
        target: the cost to reach, as a fraction of the dense cost, in ``(0, 1)``: ``0.5``
            for 2x fewer.
        cost: ``"macs"`` (per sample), ``"parameters"``, or a function of the compacted
            model, such as :func:`measured_latency` (the model then depends on what it
            measures).
        round_to: widths rounded up to a multiple of this, as ``compact(round_to=)`` does.
        growth: the factor the strength is multiplied by at each check while the cost is
            above target (checked every 10 steps, 1.05 raises it tenfold in about 470 steps).
        tolerance: how far below the target a check may land, as a fraction of it.
        optimizer: restored with the model on a step back (its moments belong to the weights).

    Raises:
        ArgumentError: a bad ``target``, ``cost``, ``round_to``, ``growth`` or
            ``tolerance``, or no group with a positive strength.
    """

    def __init__(
        self,
        model: nn.Module,
        groups: Sequence[SliceGroups],
        example_input: Any,
        *,
        target: float,
        cost: str | CostFunction = "macs",
        round_to: int = 1,
        growth: float = 1.05,
        tolerance: float = 0.05,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        _check(target, cost, round_to, growth, tolerance)
        if not groups or any(g.lam <= 0 for g in groups):
            raise ArgumentError("groups", "must be group lassos with a positive strength")
        self.model, self.groups, self.example = model, list(groups), example_input
        self.cost, self.round_to, self.growth = cost, round_to, growth
        self.tolerance, self.optimizer = tolerance, optimizer
        self.dense = self._measure(model)
        self.target = target * self.dense
        self._saved = self._snapshot()
        self._reached, self._checks, self._stepped_back, self._done = self.dense, 0, False, False
        self._zeros = self._zero_units()

    def _zero_units(self) -> tuple[tuple[int, ...], ...]:
        """Which units of each group are zero now."""
        return tuple(tuple(torch.nonzero(g.norms() == 0).flatten().tolist()) for g in self.groups)

    def _measure(self, model: nn.Module) -> float:
        """The cost of ``model`` once compacted."""
        small, _ = compact(model, self.example, round_to=self.round_to)  # model unchanged
        if callable(self.cost):
            return float(self.cost(small))
        if self.cost == "parameters":
            return sum(p.numel() for p in small.parameters())
        return count_macs(small, as_inputs(self.example)[0][:1])

    def _snapshot(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        state = copy.deepcopy(self.model.state_dict())
        moments = copy.deepcopy(self.optimizer.state_dict()) if self.optimizer else None
        return state, moments

    @property
    def lam(self) -> float:
        """The first group's strength (every group's is raised by the same factor)."""
        return self.groups[0].lam

    def _raise(self) -> None:
        for g in self.groups:
            g.lam = g.lam * self.growth

    def check(self) -> bool:
        """Measure, then raise the strength, take a step back, or say stop.

        Returns:
            ``True`` once the compacted model's cost is within ``tolerance`` below the
            target, or after a step back to the weakest units: stop training.
        """
        self._checks += 1
        zeros = self._zero_units()
        if zeros != self._zeros:  # compaction runs only when a unit has left or come back
            self._reached, self._zeros = self._measure(self.model), zeros
        if self._reached > self.target:
            self._saved = self._snapshot()
            self._raise()
            return False
        if self._reached >= (1 - self.tolerance) * self.target:
            self._done = True
            return True
        return self._step_back()

    def _step_back(self) -> bool:
        """Put back the last state above the target, then zero its weakest units (smallest
        ``||g_u|| / (f_u sqrt(size_u))``, the units the strength was about to remove) until
        the compacted cost is just at or below the target; ``True``: stop."""
        state, moments = self._saved
        if self.optimizer is not None and moments is not None:
            self.optimizer.load_state_dict(moments)
        order = self._weakest(state)
        costs: dict[tuple[tuple[int, int], ...], float] = {}

        def cost(units: list[tuple[int, int]]) -> float:
            key = tuple(units)
            if key not in costs:
                costs[key] = self._zeroed(state, units)
            return costs[key]

        low, high = 0, len(order)  # the fewest weakest units whose removal meets the target
        while low < high:
            middle = (low + high) // 2
            if cost(order[:middle]) <= self.target:
                high = middle
            else:
                low = middle + 1
        chosen = self._in_band(order, low, cost)
        self._reached = cost(chosen)
        self._zero(state, chosen)
        self._zeros = self._zero_units()
        self._stepped_back = True
        self._done = self._reached >= (1 - self.tolerance) * self.target
        return True

    def _in_band(
        self,
        order: list[tuple[int, int]],
        k: int,
        cost: Callable[[list[tuple[int, int]]], float],
    ) -> list[tuple[int, int]]:
        """The ``k`` weakest units, or, when removing them lands below the band because the
        last one costs much, the ``k - 1`` weakest and the next weakest (of 32) that lands
        in it."""
        low = (1 - self.tolerance) * self.target
        if k == 0 or cost(order[:k]) >= low:
            return order[:k]
        for unit in order[k : k + 32]:
            if low <= cost([*order[: k - 1], unit]) <= self.target:
                return [*order[: k - 1], unit]
        return order[:k]

    def _weakest(self, state: dict[str, Any]) -> list[tuple[int, int]]:
        """``(group, unit)`` of every unit still alive in ``state``, weakest first."""
        self.model.load_state_dict(state)
        scores = []
        for k, g in enumerate(self.groups):
            relative = (g.norms().double() / g.weights()).tolist()
            scores += [(r, k, u) for u, r in enumerate(relative) if r > 0]
        return [(k, u) for _, k, u in sorted(scores)]

    @torch.no_grad()
    def _zero(self, state: dict[str, Any], units: list[tuple[int, int]]) -> None:
        """The model at ``state`` with ``units`` set to zero."""
        self.model.load_state_dict(state)
        for k, u in units:
            for m in self.groups[k].members:
                rows = torch.nonzero(m.unit == u).reshape(-1)
                m.parameter.index_fill_(m.dim, rows, 0.0)

    def _zeroed(self, state: dict[str, Any], units: list[tuple[int, int]]) -> float:
        """The cost once compacted of ``state`` with ``units`` set to zero."""
        self._zero(state, units)
        return self._measure(self.model)

    @property
    def report(self) -> BudgetReport:
        """Where the budget stands (see :class:`BudgetReport`)."""
        name = self.cost if isinstance(self.cost, str) else getattr(self.cost, "__name__", "cost")
        return BudgetReport(
            name, self.dense, self.target, self._reached, self.lam, self._checks,
            self._stepped_back, self._done,
        )  # fmt: skip


def _check(
    target: float, cost: str | CostFunction, round_to: int, growth: float, tolerance: float
) -> None:
    if not isinstance(target, int | float) or not 0 < target < 1:
        raise ArgumentError(
            "target", f"must be a fraction of the dense cost in (0, 1); got {target!r}"
        )
    if cost == "latency":
        raise ArgumentError(
            "cost",
            "'latency' is not counted but measured: pass "
            "cost=measured_latency(batch, baseline=model) to budget in time on this device "
            "(the model then depends on the machine's load), "
            f"or one of {list(COSTS)}",
        )
    if not callable(cost) and cost not in COSTS:
        raise ArgumentError(
            "cost", f"must be one of {list(COSTS)} or a function of the model; got {cost!r}"
        )
    check_positive_int("round_to", round_to)
    if not isinstance(growth, int | float) or not growth > 1:
        raise ArgumentError("growth", f"must be a number above 1; got {growth!r}")
    if not isinstance(tolerance, int | float) or not 0 < tolerance < 1:
        raise ArgumentError("tolerance", f"must be in (0, 1); got {tolerance!r}")
