"""The two model families of the experiments, each on one training part: what the runner
follows along a path, and how it scores a recorded point on other data.

* :class:`NetworkFamily` (``model="mlp"``): an MLP (ReLU, the settings' hidden widths), trained
  by :class:`~shrinkage.neural.MLPPathProblem`; "none" is the dense network (``epochs``
  epochs), every penalty's path warm-starts from it and raises ``lam`` over ``n_lambdas``
  log-spaced values from ``1e-3 * lam_top`` to ``lam_top``, the strength at which a zero first
  layer is stationary for that penalty (``path_epochs`` epochs each).
  ``model="cnn"`` is the same with a small ResNet on the rows as square images, its grid
  from 0.1 to 3 times the strength at which a zeroed unit of the dense network would stay
  zero (see :func:`~shrinkage.neural.penalties.lambda_max`); ``group_neurons`` weighs each
  channel unit by the multiply-accumulates it costs (``weighting="macs"``), and each new
  set of live units is refitted without penalty (the zero units held at zero; up to
  ``3 * path_epochs`` epochs, the best on validation kept), the points are scored and chosen
  with those relaxed weights, and the chosen one is compacted.
* :class:`LinearFamily` (``model="linear"``): least squares, logistic or multinomial
  regression (:class:`~shrinkage.linear.LinearProblem`), along the usual decreasing grid from
  ``lambda_max`` (ten times the lasso's for the ridge, which has none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._validation import ArgumentError
from ..linear import LinearProblem
from ..neural import (
    CROSS_ENTROPY,
    SQUARED_ERROR,
    MLPPathProblem,
    Schedule,
    build_mlp,
    build_resnet,
    evaluate,
    image_side,
    named_penalty,
    train_point,
)
from ..path import NetworkState, PathPoint, Score, lambda_grid
from ..structured import compact, count_macs
from .data import Dataset
from .settings import Settings

__all__ = ["Family", "LinearFamily", "NetworkFamily", "Part", "family_for"]


@dataclass(frozen=True)
class Part:
    """One training part of a run: the settings, the dataset, the standardized training rows
    ``X [n, p]``, ``y [n]``, and the validation rows when there are any."""

    settings: Settings
    dataset: Dataset
    X: np.ndarray
    y: np.ndarray
    validation: tuple[np.ndarray, np.ndarray] | None = None


class Family:
    """A model family on one training part: its path problem, the validation part in the
    problem's own format, the grid of a path, and scores of recorded points."""

    problem: Any
    """The :class:`~shrinkage.path.PathProblem` to follow."""
    validation: tuple[Any, Any] | None = None

    def grid(self, warm: PathPoint | None) -> np.ndarray:
        """The strengths of this penalty's path (``warm``: the point it starts from)."""
        raise NotImplementedError

    def warm_state(self, point: PathPoint) -> Any:
        """The problem's state at a recorded point (to continue a path from it)."""
        raise NotImplementedError

    def evaluate(self, point: PathPoint, X: np.ndarray, y: np.ndarray) -> Score:
        """A recorded point's loss and score on ``(X, y)`` (standardized like the training
        part)."""
        raise NotImplementedError


class NetworkFamily(Family):
    """An MLP trained with one named penalty (or none)."""

    def __init__(
        self,
        part: Part,
        penalty: str,
        on_epoch: Callable[[int, nn.Module], None] | None = None,
    ) -> None:
        settings, dataset, X, y, validation = (
            part.settings, part.dataset, part.X, part.y, part.validation
        )  # fmt: skip
        self.settings, self.penalty = settings, penalty
        self.classify = dataset.task == "classification"
        objective = CROSS_ENTROPY if self.classify else SQUARED_ERROR
        n_out = dataset.n_classes if self.classify else 1
        generator = torch.Generator().manual_seed(settings.seed)
        model: nn.Module
        if settings.model == "cnn":
            if image_side(X.shape[1]) is None:
                raise ArgumentError(
                    "model",
                    f"cnn needs square grey images, one pixel per feature; {dataset.name} has "
                    f"{X.shape[1]} features",
                )
            model = build_resnet(X.shape[1], settings.widths, n_out, generator=generator)
        else:
            model = build_mlp(X.shape[1], settings.widths, n_out, "relu", generator=generator)
        dense = penalty == "none"
        rate = settings.learning_rate
        if not dense and settings.path_learning_rate is not None:
            rate = settings.path_learning_rate
        schedule = Schedule(
            epochs=settings.epochs if dense else settings.path_epochs,
            batch_size=settings.batch_size,
            learning_rate=rate,
            seed=settings.seed,
            history=True,
        )
        self.objective = objective
        self.data = (self._x(X), self._y(y))
        if validation is not None:
            self.validation = (self._x(validation[0]), self._y(validation[1]))
        relax = settings.model == "cnn" and penalty == "group_neurons"
        self.problem = MLPPathProblem(
            model,
            objective,
            (self._x(X), self._y(y)),
            None if dense else named_penalty(penalty),
            schedule,
            l1_ratio=settings.l1_ratio,
            validation=self.validation,
            relax=relax,
            relax_schedule=self._plain(3 * settings.path_epochs, True) if relax else None,
            on_epoch=on_epoch,
        )

    @staticmethod
    def _x(X: np.ndarray) -> Tensor:
        return torch.as_tensor(X, dtype=torch.float32)

    def _y(self, y: np.ndarray) -> Tensor:
        if self.classify:
            return torch.as_tensor(y, dtype=torch.long)
        return torch.as_tensor(y, dtype=torch.float32).reshape(-1, 1)

    def grid(self, warm: PathPoint | None) -> np.ndarray:
        if self.penalty == "none":
            return np.zeros(1)
        state = warm.state if warm is not None else self.problem.initial_state()
        assert state is not None
        top, eps = self.problem.lambda_max_at(state), 1e-3
        if self.settings.model == "cnn":  # read at trained weights, units die on both sides
            top, eps = 3.0 * top, 1.0 / 30.0  # of it: the grid spans 0.1 to 3 times it
        return np.asarray(lambda_grid(top, self.settings.n_lambdas, eps)[::-1].copy())

    def warm_state(self, point: PathPoint) -> NetworkState:
        assert point.state is not None, "a network's path point records its state"
        return point.state

    def evaluate(self, point: PathPoint, X: np.ndarray, y: np.ndarray) -> Score:
        return self.problem.evaluate(self.warm_state(point), self._x(X), self._y(y))

    def compact_at(self, point: PathPoint) -> nn.Module:
        """The network ``point`` predicts with (its relaxed refit, for a ``cnn`` point of
        ``group_neurons``) without its dead units: the same outputs, eval mode."""
        model = self.problem.model
        model.load_state_dict(self.warm_state(point).predicting)
        return compact(model, self.data[0][:256])[0]

    def _plain(self, epochs: int, best: bool = False) -> Schedule:
        """Adam without penalty; ``best``: keep the epoch of lowest validation loss."""
        return Schedule(
            epochs=epochs,
            batch_size=self.settings.batch_size,
            learning_rate=self.settings.learning_rate,
            seed=self.settings.seed,
            patience=epochs if best else None,
            history=best,
        )

    def refit(self, model: nn.Module, epochs: int) -> nn.Module:
        """``model`` trained in place without penalty on the training part for ``epochs``
        epochs (Adam at the settings' learning rate); returned in eval mode."""
        train_point(model, self.objective, self.data, None, self._plain(epochs), what="a refit")
        return model.eval()

    def score_model(self, model: nn.Module, X: np.ndarray, y: np.ndarray) -> Score:
        """``model``'s loss and score on ``(X, y)``."""
        return evaluate(model, self.objective, self._x(X), self._y(y))

    def size(self, model: nn.Module | None = None) -> tuple[int, int]:
        """Parameters and multiply-accumulates per sample of ``model`` (default: the path's
        network, as it is now)."""
        model = model if model is not None else self.problem.model
        return sum(p.numel() for p in model.parameters()), count_macs(model, self.data[0][:1])


class LinearFamily(Family):
    """A linear model with one named penalty's Elastic-Net mix (or none)."""

    def __init__(self, part: Part, penalty: str) -> None:
        settings, dataset = part.settings, part.dataset
        self.settings, self.penalty = settings, penalty
        ratio = 1.0
        if penalty != "none":
            linear_ratio = named_penalty(penalty).linear_l1_ratio
            assert linear_ratio is not None, f"{penalty} has no linear counterpart"
            ratio = linear_ratio(settings.l1_ratio)
        if dataset.task != "classification":
            loss = "squared"
        else:
            loss = "logistic" if dataset.n_classes == 2 else "multinomial"
        self.problem = LinearProblem(
            part.X,
            part.y,
            loss=loss,
            l1_ratio=ratio,
            fit_intercept=True,
            tol=1e-6,
            max_iter=1000,
            n_classes=max(dataset.n_classes, 2),
        )
        self.validation = part.validation

    def grid(self, warm: PathPoint | None) -> np.ndarray:
        if self.penalty == "none":
            return np.zeros(1)
        if self.problem.l1_ratio == 0:  # the ridge has no lambda_max: ten times the lasso's
            top = 10.0 * self.problem.gradient_at_zero()
        else:
            top = self.problem.lambda_max()
        return lambda_grid(top, self.settings.n_lambdas, 1e-3)

    def warm_state(self, point: PathPoint) -> Tensor:
        assert point.coef is not None and point.intercept is not None
        return self.problem.state_from(point.coef, point.intercept)

    def evaluate(self, point: PathPoint, X: np.ndarray, y: np.ndarray) -> Score:
        return self.problem.score(self.warm_state(point), X, y)


def family_for(
    part: Part, penalty: str, on_epoch: Callable[[int, nn.Module], None] | None = None
) -> Family:
    """The settings' model family with ``penalty`` on the training part."""
    if part.settings.model in ("mlp", "cnn"):
        return NetworkFamily(part, penalty, on_epoch)
    return LinearFamily(part, penalty)
