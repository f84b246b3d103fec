"""The penalties by name: the one registry the estimators, the experiments and the command
line read (``"l1"``, ``"l2"``, ``"elasticnet"``, ``"group_inputs"``, ``"group_neurons"``).

Each :class:`NamedPenalty` says, for an MLP whose first layer is ``model[0]``:

* which :class:`~shrinkage.Regularizer` it puts on the network at strength ``lam``;
* which penalty of the first layer's weight ``W1 [h, p]`` its strength is measured against
  (:func:`lambda_max` asks that penalty for the ``lam`` at which a zero first layer is
  stationary);
* whether it removes inputs (a path from dense to sparse can stop once no input is left);
* the ``l1_ratio`` of the same penalty on a linear model, where it has one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..penalties import L1, L2, ElasticNet, GroupLasso, Penalty
from ..regularizer import Regularizer
from ..structured import SliceGroups, neuron_groups
from .training import first_weight

__all__ = ["PENALTIES", "NamedPenalty", "lambda_max", "named_penalty"]


@dataclass(frozen=True)
class NamedPenalty:
    """One penalty name and what it means for a network and for a linear model."""

    name: str
    network: Callable[[nn.Module, float, float], Regularizer]
    """``network(model, lam, l1_ratio)``: the regularizer of ``model`` at strength ``lam``."""
    first_layer: Callable[[float], Penalty]
    """``first_layer(l1_ratio)``: the penalty of ``W1`` (at ``lam = 1``) that sets the scale."""
    removes_inputs: bool
    """Whether it sets whole input columns of ``W1`` to zero."""
    linear_l1_ratio: Callable[[float], float] | None = None
    """``l1_ratio`` of the linear model's Elastic Net from the given one; ``None``: this
    penalty has no linear counterpart."""

    def regularizer(self, model: nn.Module, lam: float, l1_ratio: float = 0.5) -> Regularizer:
        """The regularizer of ``model`` at strength ``lam``."""
        return self.network(model, lam, l1_ratio)


def _columns(model: nn.Module, lam: float, l1_ratio: float) -> Regularizer:
    return Regularizer(model, {"0.weight": GroupLasso(lam, groups="inputs")})


def _unit_groups(model: nn.Module, lam: float) -> list[SliceGroups]:
    """An MLP's hidden units; for a model that gives an ``example_input()`` (the
    :class:`~shrinkage.neural.cnn.SmallResNet`), the channel units of its traced graph,
    each weighted by the multiply-accumulates it costs (``weighting="macs"``)."""
    example = getattr(model, "example_input", None)
    if callable(example):
        return neuron_groups(model, lam, example_input=example(), weighting="macs")
    return neuron_groups(model, lam)


def _neurons(model: nn.Module, lam: float, l1_ratio: float) -> Regularizer:
    return Regularizer(model, None, groups=_unit_groups(model, lam))


PENALTIES: dict[str, NamedPenalty] = {
    entry.name: entry
    for entry in (
        NamedPenalty(
            "l1",
            lambda model, lam, ratio: Regularizer(model, L1(lam)),
            lambda ratio: L1(1.0),
            removes_inputs=True,
            linear_l1_ratio=lambda ratio: 1.0,
        ),
        NamedPenalty(
            "l2",
            lambda model, lam, ratio: Regularizer(model, L2(lam)),
            lambda ratio: L1(1.0),  # no finite lambda_max: the lasso's sets the scale
            removes_inputs=False,
            linear_l1_ratio=lambda ratio: 0.0,
        ),
        NamedPenalty(
            "elasticnet",
            lambda model, lam, ratio: Regularizer(model, ElasticNet(lam, l1_ratio=ratio)),
            lambda ratio: ElasticNet(1.0, l1_ratio=ratio) if ratio > 0 else L1(1.0),
            removes_inputs=True,
            linear_l1_ratio=lambda ratio: ratio,
        ),
        NamedPenalty(
            "group_inputs",
            _columns,
            lambda ratio: GroupLasso(1.0, groups="inputs"),
            removes_inputs=True,
        ),
        NamedPenalty(
            "group_neurons",
            _neurons,
            lambda ratio: GroupLasso(1.0, groups="outputs"),
            removes_inputs=False,
        ),
    )
}
"""Name -> :class:`NamedPenalty`."""


def named_penalty(name: str) -> NamedPenalty:
    """The registry's entry for ``name``; a ``ValueError`` listing the names otherwise."""
    entry = PENALTIES.get(name)
    if entry is None:
        raise ValueError(f"unknown penalty {name!r}; known: {', '.join(PENALTIES)}")
    return entry


def lambda_max(
    penalty: NamedPenalty,
    model: nn.Module,
    loss: Callable[[Tensor, Tensor], Tensor],
    data: tuple[Tensor, Tensor],
    l1_ratio: float = 0.5,
) -> float:
    """The strength that sets the scale of ``penalty``'s path on ``model`` (not changed).

    * An MLP: the strength at which a zero first layer is stationary, the rest of ``model``
      as it is. With ``g = d loss(model(X), y) / d W1`` at ``W1 = 0``, this is
      ``penalty.first_layer(l1_ratio).lambda_max(g)``: ``max |g|`` for L1,
      ``max_j ||g[:, j]|| / sqrt(h)`` for a group per input column, and so on.
    * A CNN (a model with an ``example_input()``): zeroing its first convolution leaves the
      ReLUs after it without gradient, so the scale is read at the current weights instead,
      the network as it predicts (eval mode: BatchNorm with its running statistics, so the
      gradient of a trained network is not the near-zero one of the batch statistics it was
      trained on): the strength at which a zeroed unit (``group_neurons``:
      ``max_u ||g_u|| / (f_u sqrt(size_u))`` over the traced channel units) or weight (the others:
      the first-layer penalty's ``lambda_max`` of each weight's gradient, the largest) would
      stay zero.
    """
    probe = copy.deepcopy(model)
    X, y = data
    example = getattr(probe, "example_input", None)
    if callable(example):
        probe.eval()
        params = [p for p in probe.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss(probe(X), y), params)
        by_id = {id(p): g for p, g in zip(params, grads, strict=True)}
        if penalty.name == "group_neurons":
            groups = _unit_groups(probe, 1.0)
            return max(g.lambda_max([by_id[id(m.parameter)] for m in g.members]) for g in groups)
        first = penalty.first_layer(l1_ratio)
        return max(first.lambda_max(g) for p, g in zip(params, grads, strict=True) if p.dim() > 1)
    weight = first_weight(probe)
    with torch.no_grad():
        weight.zero_()
    grad = torch.autograd.grad(loss(probe(X), y), weight)[0]
    return penalty.first_layer(l1_ratio).lambda_max(grad)
