"""An MLP at one penalty strength after another: the :class:`~shrinkage.path.PathProblem` that
the estimators' ``fit_path`` and the experiments both follow.

Each point trains the network for a few epochs at its strength (Adam, the penalty applied by
:class:`~shrinkage.Proximal`), starting from the previous point's weights and optimizer state
(a warm start), and records a :class:`~shrinkage.path.NetworkState`. A point's selected
features are the inputs whose first-layer column is not all zero; its ``coef`` is the norm of
each column (what the reports draw).

With ``relax=True`` each new support (set of selected inputs) is also refitted without penalty
(a relaxed lasso): the previous support's relaxed network, the newly dropped input columns set
to zero and kept there, trained with early stopping. Under ``group_neurons`` on a network with
channel units (the CNN), the support is the set of live units, and the refit trains the
network the point left with every zero unit held at zero. The point then predicts, and is scored,
with the relaxed weights, so validation losses compare supports rather than amounts of
shrinkage.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..path import Evaluation, FitInfo, NetworkState, Score
from ..structured import neuron_groups
from .penalties import NamedPenalty, lambda_max
from .training import Objective, Schedule, evaluate, first_weight, train_point

__all__ = ["MLPPathProblem"]


def _snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class MLPPathProblem:
    """A network, its training data and a penalty, as :func:`shrinkage.path` fits it.

    Args:
        model: the network (an MLP, an ``nn.Sequential`` whose ``model[0]`` is a
            ``Linear``, or a :class:`~shrinkage.neural.cnn.SmallResNet`); this problem trains
            it in place, point after point.
        objective: the loss and score.
        data: ``(X [n, p], y)`` to train on.
        penalty: the named penalty, or ``None`` for plain training (a dense point).
        schedule: how each point is trained.
        l1_ratio: for ``"elasticnet"``.
        validation: ``(X_val, y_val)``: evaluated after every epoch when the schedule has a
            patience or records its history.
        relax: refit each new support without penalty (see the module docstring), on
            ``relax_schedule`` (default: ``schedule`` without penalty).
        record_optimizer: keep each point's optimizer state in its record (what resuming a
            stored path from its last point needs); the warm start between consecutive points
            carries it either way.
        on_epoch: called as ``on_epoch(epoch, model)`` after every epoch of a point.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        data: tuple[Tensor, Tensor],
        penalty: NamedPenalty | None,
        schedule: Schedule,
        *,
        l1_ratio: float = 0.5,
        validation: tuple[Tensor, Tensor] | None = None,
        relax: bool = False,
        relax_schedule: Schedule | None = None,
        record_optimizer: bool = True,
        on_epoch: Callable[[int, nn.Module], None] | None = None,
    ) -> None:
        self.model, self.objective, self.data = model, objective, data
        self.penalty, self.schedule, self.l1_ratio = penalty, schedule, l1_ratio
        self.validation = validation
        self.relax = relax
        self.relax_schedule = relax_schedule or schedule
        self.record_optimizer = record_optimizer
        self.on_epoch = on_epoch
        self._relaxed: dict[tuple[int, ...], dict[str, Tensor]] = {}
        self._last_relaxed: dict[str, Tensor] | None = None
        self._groups: list[Any] | None = None

    # -- the PathProblem protocol ----------------------------------------------------------------
    def lambda_max(self) -> float:
        """The strength at which a zero first layer is stationary (the network as it is now);
        see :func:`shrinkage.neural.penalties.lambda_max`."""
        if self.penalty is None:
            return 0.0
        return lambda_max(self.penalty, self.model, self.objective.loss, self.data, self.l1_ratio)

    def lambda_max_at(self, state: NetworkState) -> float:
        """:meth:`lambda_max` with the network at ``state``'s weights."""
        self.model.load_state_dict(state.weights)
        return self.lambda_max()

    def initial_state(self) -> NetworkState:
        return NetworkState(_snapshot(self.model))

    def fit(self, lam: float, state: NetworkState) -> tuple[NetworkState, FitInfo]:
        self.model.load_state_dict(state.weights)
        regularizer = None
        if self.penalty is not None:
            regularizer = self.penalty.regularizer(self.model, lam, self.l1_ratio)
        watch = self.schedule.patience is not None or self.schedule.history
        what = f"{self.penalty.name if self.penalty else 'no penalty'} lam={lam:g}"
        trained = train_point(
            self.model,
            self.objective,
            self.data,
            regularizer,
            self.schedule,
            optimizer_state=state.optimizer,
            validation=self.validation if watch else None,
            on_epoch=self.on_epoch,
            what=what,
        )
        weights = _snapshot(self.model)
        epochs, relaxed = trained.epochs, None
        if self.relax and self.penalty is not None:
            support = self._support(weights)
            if self._last_relaxed is None:
                self._last_relaxed = state.predicting
            if support not in self._relaxed and self._unit_groups() is not None:
                self._relaxed[support], extra = self._refit_units(support, trained.optimizer)
                epochs += extra
            elif support not in self._relaxed:
                self._relaxed[support], extra = self._refit(support)
                epochs += extra
            relaxed = self._relaxed[support]
        criterion = math.nan
        if self.validation is not None and trained.history:
            criterion = trained.history[-1][1]
        new = NetworkState(weights, trained.optimizer, trained.history, relaxed)
        return new, FitInfo(epochs, True, criterion)

    def describe(self, state: NetworkState) -> Evaluation:
        norms = self._column_norms(state.weights)
        selected = tuple(int(j) for j in np.flatnonzero(norms > 0))
        train_loss = self.evaluate(state, *self.data).loss
        if not self.record_optimizer:
            state = NetworkState(state.weights, None, state.history, state.relaxed)
        return Evaluation(norms.astype(np.float64), None, train_loss, selected, state)

    def score(self, state: NetworkState, X: Tensor, y: Tensor) -> Score:
        return self.evaluate(state, X, y)

    # -- helpers ---------------------------------------------------------------------------------
    def evaluate(self, state: NetworkState, X: Tensor, y: Tensor) -> Score:
        """The weights ``state`` predicts with, on ``(X, y)``."""
        self.model.load_state_dict(state.predicting)
        return evaluate(self.model, self.objective, X, y)

    def _column_norms(self, weights: dict[str, Any]) -> np.ndarray:
        """The norm of the first layer's weights per input feature. A convolution's input
        columns are channels, not features: every pixel then gets the whole filter bank's
        norm (a pixel is read as long as any filter is nonzero)."""
        self.model.load_state_dict(weights)
        w = first_weight(self.model).detach()
        norms = torch.linalg.vector_norm(w.transpose(0, 1).reshape(w.shape[1], -1), dim=1)
        n_features = self.data[0].shape[1]
        if norms.shape[0] != n_features:
            norms = torch.linalg.vector_norm(w).expand(n_features)
        return norms.cpu().numpy()

    def _support(self, weights: dict[str, Tensor]) -> tuple[int, ...]:
        """The inputs whose first-layer column is nonzero; for a network with channel
        units (``group_neurons`` on a CNN), the units that are not all zero."""
        groups = self._unit_groups()
        if groups is None:
            return tuple(int(j) for j in np.flatnonzero(self._column_norms(weights) > 0))
        self.model.load_state_dict(weights)
        alive = torch.cat([g.norms() > 0 for g in groups])
        return tuple(int(j) for j in torch.nonzero(alive).reshape(-1))

    def _unit_groups(self) -> list[Any] | None:
        """The channel units of a model with an ``example_input()`` under ``group_neurons``
        (traced once; they hold the model's own parameters), else ``None``."""
        example = getattr(self.model, "example_input", None)
        if self.penalty is None or self.penalty.name != "group_neurons" or not callable(example):
            return None
        if self._groups is None:
            self._groups = list(neuron_groups(self.model, 1.0, example_input=example()))
        return self._groups

    def _refit_units(
        self, support: tuple[int, ...], optimizer: dict[str, Any]
    ) -> tuple[dict[str, Tensor], int]:
        """The relaxed fit of a set of live channel units: the network as this point left it,
        trained without penalty from the point's Adam state (``optimizer``), every zero
        unit's slices kept at zero (their gradients masked, and their Adam moments zero, so
        Adam never moves them): the compact network's fit, in the full one."""
        groups = self._unit_groups()
        assert groups is not None
        model = copy.deepcopy(self.model)
        live = set(support)
        masks: dict[str, Tensor] = {}
        offset = 0
        for g in groups:
            dead = torch.tensor([offset + u not in live for u in range(g.units)])
            offset += g.units
            for m in g.members:
                hit = (m.unit >= 0) & dead[m.unit.clamp(min=0)]
                shape = [1] * m.parameter.dim()
                shape[m.dim] = -1
                keep = (~hit).reshape(shape).expand_as(m.parameter)
                masks[m.name] = masks[m.name] & keep if m.name in masks else keep
        state = copy.deepcopy(optimizer)
        for index, (name, parameter) in enumerate(model.named_parameters()):
            if name in masks:
                mask = masks[name].to(parameter.dtype)
                parameter.register_hook(lambda grad, mask=mask: grad * mask)
                moments = state["state"].get(index, {})
                if "exp_avg" in moments:
                    moments["exp_avg"].mul_(mask)
        trained = train_point(
            model, self.objective, self.data, None, self.relax_schedule,
            optimizer_state=state, validation=self.validation, what="the relaxed refit",
        )  # fmt: skip
        return _snapshot(model), trained.epochs

    def _refit(self, support: tuple[int, ...]) -> tuple[dict[str, Tensor], int]:
        """The relaxed fit of a support: the previous support's relaxed network with the newly
        dropped input columns set to zero, retrained without penalty. Dropped columns stay
        exactly zero: their gradient is masked, and a fresh Adam never moves a parameter whose
        gradient is always zero. Each support is refitted once, from a network that already
        fits well."""
        assert self._last_relaxed is not None
        model = copy.deepcopy(self.model)
        model.load_state_dict(self._last_relaxed)
        first = first_weight(model)
        dropped = torch.ones(first.shape[1], dtype=torch.bool, device=first.device)
        dropped[list(support)] = False
        with torch.no_grad():
            first[:, dropped] = 0.0
        first.register_hook(lambda g: g.masked_fill(dropped[None, :], 0.0))
        trained = train_point(
            model,
            self.objective,
            self.data,
            None,
            self.relax_schedule,
            validation=self.validation,
            what="the relaxed refit",
        )
        self._last_relaxed = _snapshot(model)
        return self._last_relaxed, trained.epochs
