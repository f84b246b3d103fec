"""Single points of one penalty, each trained from the run's starting point: what one tuning
trial computes (:mod:`.tune`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from .._validation import ArgumentError
from ..neural import evaluate
from ..path import PathPoint, path
from .results import zero_fraction
from .runner import Runner
from .settings import PENALTIES, Settings

__all__ = ["PointResult", "PointTrainer"]


@dataclass(frozen=True)
class PointResult:
    """One point trained on its own (see :class:`PointTrainer`)."""

    lam: float
    val_loss: float
    val_score: float
    n_nonzero: int
    zeros: float
    epochs: int
    seconds: float


class PointTrainer:
    """Single points of one penalty, each trained from the run's starting point.

    The data are split and standardized as in :func:`~.runner.run_experiment` (seeded; the
    validation part of the single split scores each point). A network's point starts from the
    dense network (``settings.epochs`` epochs with no penalty, trained once per trainer) and
    trains ``settings.path_epochs`` epochs with the penalty at ``lam``, exactly as the first
    point of a path with the grid ``(lam,)`` does; a linear point is solved from zero. So a
    point found here is reproduced by ``run_experiment(replace(settings, lams=(lam,), ...))``.

    ``lam_range``: ``(lo, hi)``, the interval of the penalty's default grid (``hi`` the
    strength at which the first layer, or the linear model, is zero). ``start``: the dense
    network's point when it is already trained (another trainer's :attr:`start`, handed to a
    worker process), instead of training it again.
    """

    def __init__(self, settings: Settings, penalty: str, start: PathPoint | None = None) -> None:
        if penalty not in PENALTIES[1:]:
            raise ArgumentError(
                "penalty", f"must be one of {', '.join(PENALTIES[1:])}; got {penalty!r}"
            )
        if settings.cv is not None:
            raise ArgumentError("cv", "must be left out: a point is scored on one validation split")
        self.penalty = penalty
        self.settings = replace(
            settings, penalties=("none", penalty), lams=None, path_learning_rate=None
        )
        network = self.settings.model != "linear"
        self._runner = Runner(self.settings, dense=start if network else None)
        self.start: PathPoint | None = self._runner.path("none", 0)[0] if network else None
        grid = self._runner.grid(penalty)
        self.lam_range = (float(grid.min()), float(grid.max()))

    @property
    def task(self) -> str:
        """``"classification"`` (score: accuracy) or ``"regression"`` (score: R^2)."""
        return self._runner.dataset.task

    def fit(
        self,
        lam: float,
        *,
        l1_ratio: float | None = None,
        learning_rate: float | None = None,
        report: Callable[[int, float], None] | None = None,
    ) -> PointResult:
        """Train the point at ``lam`` (with ``l1_ratio`` for Elastic Net and, for an MLP,
        ``learning_rate`` for the penalized epochs; the settings' values by default).
        ``report(epoch, validation score)`` is called after each MLP epoch; an exception it
        raises stops the training and propagates."""
        changes: dict[str, Any] = {}
        if l1_ratio is not None:
            changes["l1_ratio"] = l1_ratio
        if learning_rate is not None:
            changes["path_learning_rate"] = learning_rate
        settings = replace(self.settings, **changes)  # validates
        on_epoch = None
        family: Any = None
        if report is not None:

            def on_epoch(epoch: int, model: nn.Module) -> None:
                objective = family.problem.objective
                report(epoch, evaluate(model, objective, *family.validation).score)

        family, _, _ = self._runner.family(self.penalty, 0, settings, on_epoch)
        start = (
            family.warm_state(self.start)
            if self.start is not None
            else family.problem.initial_state()
        )
        (point,) = path(family.problem, [lam], validation=family.validation, initial_state=start)
        assert point.val_loss is not None and point.val_score is not None
        return PointResult(
            lam,
            float(point.val_loss),
            float(point.val_score),
            point.n_nonzero,
            zero_fraction(point),
            point.n_iter,
            point.seconds,
        )
