"""Multi-layer perceptrons and how they are trained: the one builder and the one training loop
that the estimators, the experiments and the demo share.

* :func:`build_mlp`: ``Linear(n_in, h1), act, ..., Linear(h_last, n_out)``, initialised from
  a ``torch.Generator`` (never from torch's global random state);
* :class:`Objective`: what a network is trained and scored on (cross-entropy and accuracy,
  or squared error and R^2);
* :func:`train_epochs`: mini-batch epochs in a seeded order, with early stopping and a clear
  stop on a non-finite loss;
* :func:`train_point`: ``epochs`` epochs of Adam at one penalty strength (through
  :class:`~shrinkage.Proximal`), continuing from an optimizer state: one point of a path;
* :func:`evaluate`: mean loss, score and the loss's standard error on held-out data.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from .._threads import threads_for
from ..path import Score
from ..proximal import Proximal
from ..regularizer import Regularizer

__all__ = [
    "ACTIVATIONS",
    "CROSS_ENTROPY",
    "SQUARED_ERROR",
    "Objective",
    "Schedule",
    "build_mlp",
    "evaluate",
    "first_weight",
    "train_epochs",
    "train_point",
]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}
"""Activation name (scikit-learn's) -> layer."""


def build_mlp(
    n_in: int,
    hidden: tuple[int, ...],
    n_out: int,
    activation: str = "relu",
    *,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """``Linear(n_in, h1), act, ..., Linear(h_last, n_out)``; the first layer is ``model[0]``.

    Each ``Linear(a, b)`` is initialised as torch initialises it (``W ~ U(-1/sqrt(a),
    1/sqrt(a))`` through Kaiming's uniform rule, ``b ~ U(-1/sqrt(a), 1/sqrt(a))``), drawn from
    ``generator`` when one is given, so the same generator seed gives the same network whatever
    else uses torch's global random state.
    """
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, n_out))
    model = nn.Sequential(*layers)
    if generator is not None:
        for layer in model:
            if isinstance(layer, nn.Linear):
                _initialise(layer, generator)
    return model


@torch.no_grad()
def _initialise(layer: nn.Linear, generator: torch.Generator) -> None:
    """``nn.Linear.reset_parameters`` with draws from ``generator``."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        bound = 1.0 / math.sqrt(layer.in_features) if layer.in_features > 0 else 0.0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


def first_weight(model: nn.Module) -> Tensor:
    """The weight of the first layer that reads the inputs (``model[0]``, a ``Linear``, for
    an MLP; the first convolution of a CNN): its columns (dim 1) are the inputs."""
    for layer in model.modules():
        if isinstance(layer, nn.Linear | nn.Conv1d | nn.Conv2d):
            return layer.weight
    raise TypeError(f"{type(model).__name__} has no Linear or Conv layer")


@dataclass(frozen=True)
class Objective:
    """What a network is trained and scored on: the mean ``loss(out, target)``, its
    ``per_sample`` terms ``[n]``, and the ``score`` reported (accuracy or R^2)."""

    name: str
    loss: Callable[[Tensor, Tensor], Tensor]
    per_sample: Callable[[Tensor, Tensor], Tensor]
    score: Callable[[Tensor, Tensor], float]
    metric: str
    """The score's name: ``"accuracy"`` or ``"r2"``."""


def _accuracy(out: Tensor, target: Tensor) -> float:
    return float((out.argmax(1) == target).float().mean())


def _r2(out: Tensor, target: Tensor) -> float:
    var = float(target.var(unbiased=False))
    mse = float(((out - target) ** 2).mean())
    return 1.0 - mse / var if var > 0 else 0.0


CROSS_ENTROPY = Objective(
    "cross-entropy",
    nn.functional.cross_entropy,
    lambda out, target: nn.functional.cross_entropy(out, target, reduction="none"),
    _accuracy,
    "accuracy",
)
"""Classification: logits ``[n, classes]``, class indices ``[n]``; scored by accuracy."""

SQUARED_ERROR = Objective(
    "squared error",
    nn.functional.mse_loss,
    lambda out, target: ((out - target) ** 2).reshape(-1),
    _r2,
    "r2",
)
"""Regression: outputs and targets ``[n, 1]``; scored by R^2."""


@torch.no_grad()
def evaluate(model: nn.Module, objective: Objective, X: Tensor, y: Tensor) -> Score:
    """``model`` (in eval mode) on ``(X, y)``: the mean per-sample loss, the score, and the
    standard error of the mean loss (``std / sqrt(n)``)."""
    model.eval()
    out = model(X)
    per_sample = objective.per_sample(out, y)
    n = len(per_sample)
    se = float(per_sample.std() / math.sqrt(n)) if n > 1 else 0.0
    return Score(float(per_sample.mean()), objective.score(out, y), se)


def train_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    data: tuple[Tensor, Tensor],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    validation: tuple[Tensor, Tensor] | None = None,
    evaluate: Callable[[nn.Module, Tensor, Tensor], float] | None = None,
    patience: int | None = None,
    history: list[tuple[float, float]] | None = None,
    what: str = "",
    on_epoch: Callable[[int, nn.Module], None] | None = None,
) -> int:
    """Mini-batch training of ``model`` in place: ``epochs`` passes over ``data = (X [n, d],
    y [n, ...])`` in an order drawn from ``seed`` (the same order on every call with that
    seed, so a resumed computation repeats the uninterrupted one).

    With ``validation = (X_val, y_val)`` and ``evaluate(model, X, y) -> mean loss``: the
    validation loss is computed after every epoch; with ``patience`` too, training stops
    after ``patience`` epochs without improvement and the best parameters are restored.
    ``history`` receives ``(mean training loss of the epoch's batches, validation loss or
    nan)`` per epoch. ``on_epoch(epoch, model)`` is called after each epoch (0-based); an
    exception it raises ends the training (a tuner's pruning signal, for instance). A
    non-finite loss raises ``FloatingPointError`` and restores the last good (best)
    parameters when there are any. Returns the number of epochs run.

    Threads: the first step is counted (its multiply-accumulates, forward and backward), and
    the rest run on as many intra-op threads as that work is worth, within torch's count when
    the call starts; that count is restored on return, also when training raises (see
    :func:`shrinkage._threads.threads_for`).
    """
    X, _ = data
    generator = torch.Generator(device="cpu").manual_seed(seed)
    best = _Best()
    epochs_run = 0
    with ExitStack() as scope:
        steps = _Steps(model, optimizer, loss_fn, data, best, what, scope)
        for _ in range(epochs):
            epochs_run += 1
            order = torch.randperm(X.shape[0], generator=generator).to(X.device)
            mean = steps.epoch(order.split(batch_size), record=history is not None)
            val = math.nan
            if validation is not None and evaluate is not None:
                val = evaluate(model, *validation)
            if history is not None:
                history.append((mean, val))
            if on_epoch is not None:
                on_epoch(epochs_run - 1, model)
            if patience is not None and not math.isnan(val) and best.stop(val, model, patience):
                break
    if best.state is not None:
        model.load_state_dict(best.state)
    return epochs_run


@dataclass
class _Best:
    """The lowest validation loss so far, the parameters that reached it, and the epochs
    since."""

    loss: float = math.inf
    state: dict[str, Any] | None = None
    stale: int = 0

    def stop(self, val: float, model: nn.Module, patience: int) -> bool:
        """Record ``val``; whether ``patience`` epochs have now passed without improvement."""
        if val < self.loss - 1e-6 * abs(self.loss):
            self.loss, self.state, self.stale = val, copy.deepcopy(model.state_dict()), 0
            return False
        self.stale += 1
        return self.stale >= patience


class _Steps:
    """The training steps of one :func:`train_epochs` call: forward, backward and the
    optimizer's step; the first step's work is counted, and the threads sized to it within
    ``scope``."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        data: tuple[Tensor, Tensor],
        best: _Best,
        what: str,
        scope: ExitStack,
    ) -> None:
        self.model, self.optimizer, self.loss_fn, self.data = model, optimizer, loss_fn, data
        self.best, self.what, self.scope = best, what, scope
        self.sized = False

    def epoch(self, batches: Sequence[Tensor], record: bool) -> float:
        """One pass over ``batches`` (index tensors); the mean loss of its batches when
        ``record`` (a host sync per batch only then), else 0."""
        self.model.train()
        total, count = 0.0, 0
        for idx in batches:
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._forward_backward(idx) if self.sized else self._first(idx)
            self.optimizer.step()
            if record:
                total, count = total + float(loss.detach()), count + 1
        return total / max(count, 1)

    def _first(self, idx: Tensor) -> Tensor:
        counter = FlopCounterMode(display=False)
        with counter:
            loss = self._forward_backward(idx)
        self.scope.enter_context(threads_for(counter.get_total_flops() / 2))
        self.sized = True
        return loss

    def _forward_backward(self, idx: Tensor) -> Tensor:
        X, y = self.data
        loss = self.loss_fn(self.model(X[idx]), y[idx])
        if not torch.isfinite(loss):
            if self.best.state is not None:
                self.model.load_state_dict(self.best.state)
            raise FloatingPointError(
                f"the training loss became {loss.item()} at {self.what or 'this point'}; lower "
                "the learning rate or the penalty, or scale the inputs (the last good "
                "parameters were kept)"
            )
        loss.backward()
        return loss


@dataclass(frozen=True)
class Schedule:
    """How one point of a path is trained.

    ``epochs``: at most this many; ``patience``: stop after this many epochs without a lower
    validation loss and keep the best parameters (``None``: run every epoch); ``batch_size``;
    ``learning_rate`` (Adam's); ``seed``: the batch order; ``decoupled``: the prox with step
    ``lr`` instead of Adam's own (see :class:`~shrinkage.Proximal`); ``history``: record the
    loss per epoch.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    patience: int | None = None
    decoupled: bool = False
    history: bool = False


@dataclass(frozen=True)
class PointTraining:
    """What :func:`train_point` did: the epochs run, the optimizer's state to continue from,
    and the per-epoch ``(training, validation)`` losses when the schedule records them."""

    epochs: int
    optimizer: dict[str, Any]
    history: tuple[tuple[float, float], ...]


def train_point(
    model: nn.Module,
    objective: Objective,
    data: tuple[Tensor, Tensor],
    regularizer: Regularizer | None,
    schedule: Schedule,
    *,
    optimizer_state: dict[str, Any] | None = None,
    validation: tuple[Tensor, Tensor] | None = None,
    on_epoch: Callable[[int, nn.Module], None] | None = None,
    what: str = "",
) -> PointTraining:
    """Train ``model`` in place with Adam, the penalties of ``regularizer`` applied by
    :class:`~shrinkage.Proximal` after every step (none when it is ``None``), as
    ``schedule`` says. ``optimizer_state``: Adam's state to continue from (copied, never
    changed), its learning rate replaced by the schedule's."""
    adam = torch.optim.Adam(model.parameters(), lr=schedule.learning_rate)
    optimizer: torch.optim.Optimizer = adam
    if regularizer is not None:
        optimizer = Proximal(adam, regularizer, decoupled=schedule.decoupled)
    if optimizer_state is not None:
        adam.load_state_dict(copy.deepcopy(optimizer_state))
        for group in adam.param_groups:  # the loaded state carries the rate it ran with
            group["lr"] = schedule.learning_rate
    history: list[tuple[float, float]] | None = [] if schedule.history else None

    def mean_loss(m: nn.Module, X: Tensor, y: Tensor) -> float:
        return evaluate(m, objective, X, y).loss

    epochs = train_epochs(
        model,
        optimizer,
        objective.loss,
        data,
        epochs=schedule.epochs,
        batch_size=min(schedule.batch_size, len(data[0])),
        seed=schedule.seed,
        validation=validation,
        evaluate=mean_loss,
        patience=schedule.patience,
        history=history,
        what=what,
        on_epoch=on_epoch,
    )
    return PointTraining(epochs, adam.state_dict(), tuple(history or ()))
