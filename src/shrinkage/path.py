"""``path``: fit one model along a grid of penalty strengths, with warm starts.

The one place where regularization paths are computed. Estimators (``fit`` is a one-point
path), cross-validation (one path per fold), the command line and the reports all consume the
:class:`PathPoint` records it returns.

A *problem* says how to fit at one strength from a warm start and how to score the fit; the
path function owns the grid, the warm starts, the timing and the records::

    lam_max = problem.lambda_max()
    grid    = lam_max * logspace(0, log10(eps), n_lambdas)        # decreasing
    state   = problem.initial_state()
    for lam in grid:
        state, info = problem.fit(lam, state)                      # warm start
        record PathPoint(lam, ..., problem.evaluate(state, validation))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ._validation import check_real

__all__ = ["FitInfo", "PathPoint", "PathProblem", "lambda_grid", "path"]


@dataclass(frozen=True)
class FitInfo:
    """What one fit at one strength reports."""

    n_iter: int
    converged: bool
    criterion: float
    """The stopping criterion reached (duality gap or optimality distance)."""


@dataclass(frozen=True)
class PathPoint:
    """One point of a regularization path.

    Attributes:
        lam: the penalty strength, in the convention of the problem (``alpha`` for the linear
            models, as in scikit-learn).
        coef: the coefficients (linear models: ``[n_features]`` or ``[n_classes, n_features]``),
            or ``None`` for models that keep a ``state``.
        intercept: the intercept(s), or ``None``.
        state: the fitted model's state (neural models), or ``None``.
        train_loss: the data term on the training data.
        val_loss, val_score: loss and score (R^2 or accuracy) on the validation data, if given.
        n_nonzero: the number of selected features.
        selected: indices of the selected features (those with a nonzero coefficient).
        n_iter, converged, criterion: what the solver reported.
        seconds: wall time of this point's fit.
    """

    lam: float
    coef: np.ndarray | None
    intercept: np.ndarray | float | None
    train_loss: float
    val_loss: float | None
    val_score: float | None
    n_nonzero: int
    selected: tuple[int, ...]
    n_iter: int
    converged: bool
    criterion: float
    seconds: float
    state: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class Evaluation:
    """A problem's view of one fitted state."""

    coef: np.ndarray | None
    intercept: np.ndarray | float | None
    train_loss: float
    selected: tuple[int, ...]
    state: Any = None


class PathProblem(Protocol):
    """What :func:`path` needs of a model family."""

    def lambda_max(self) -> float:
        """The smallest strength at which every feature is out of the model."""
        ...

    def initial_state(self) -> Any:
        """The warm start for the first point (all-zero coefficients, say)."""
        ...

    def fit(self, lam: float, state: Any) -> tuple[Any, FitInfo]:
        """Fit at ``lam`` starting from ``state``; return the new state."""
        ...

    def describe(self, state: Any) -> Evaluation:
        """Coefficients, training loss and selected features of ``state``."""
        ...

    def score(self, state: Any, X: Any, y: Any) -> tuple[float, float]:
        """``(loss, score)`` of ``state`` on ``(X, y)``."""
        ...


def lambda_grid(lambda_max: float, n_lambdas: int = 100, eps: float = 1e-3) -> np.ndarray:
    """``n_lambdas`` strengths log-spaced from ``lambda_max`` down to ``eps * lambda_max``.

    Returns an array of shape ``[n_lambdas]``, decreasing (all zeros when ``lambda_max`` is 0).
    """
    check_real("lambda_max", lambda_max, low=0.0)
    check_real("eps", eps, low=0.0, low_open=True)
    if isinstance(n_lambdas, bool) or not isinstance(n_lambdas, int | np.integer) or n_lambdas < 1:
        raise ValueError(f"n_lambdas must be a positive integer, got {n_lambdas!r}")
    if lambda_max == 0:
        return np.zeros(n_lambdas)
    return np.logspace(np.log10(lambda_max), np.log10(lambda_max * eps), num=int(n_lambdas))


def path(
    problem: PathProblem,
    lambdas: Sequence[float] | np.ndarray | None = None,
    *,
    n_lambdas: int = 100,
    eps: float = 1e-3,
    validation: tuple[Any, Any] | None = None,
    initial_state: Any = None,
    stop: Callable[[PathPoint], bool] | None = None,
    progress: Callable[[int, int, PathPoint], None] | None = None,
) -> list[PathPoint]:
    """Fit ``problem`` along a grid of strengths with warm starts.

    Args:
        problem: the model family and data (see :class:`PathProblem`).
        lambdas: the grid, in the order to fit it; default
            ``lambda_grid(problem.lambda_max(), n_lambdas, eps)`` (decreasing).
        n_lambdas, eps: the default grid's size and ratio ``lam_min / lam_max``.
        validation: ``(X_val, y_val)`` to score each point on.
        initial_state: the first warm start (default ``problem.initial_state()``).
        stop: called after each point; ``True`` ends the path early (the point is kept).
        progress: called as ``progress(i, n, point)`` after each point.

    Returns:
        One :class:`PathPoint` per fitted strength, in grid order.
    """
    if lambdas is None:
        grid = lambda_grid(problem.lambda_max(), n_lambdas, eps)
    else:
        grid = np.asarray(lambdas, dtype=float).reshape(-1)
        if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
            raise ValueError(
                f"lambdas must be a non-empty sequence of finite values >= 0, got {lambdas!r}"
            )
    state = problem.initial_state() if initial_state is None else initial_state
    points: list[PathPoint] = []
    for i, lam in enumerate(grid):
        start = time.perf_counter()
        state, info = problem.fit(float(lam), state)
        seconds = time.perf_counter() - start
        described = problem.describe(state)
        val_loss = val_score = None
        if validation is not None:
            val_loss, val_score = problem.score(state, *validation)
        point = PathPoint(
            lam=float(lam),
            coef=described.coef,
            intercept=described.intercept,
            train_loss=described.train_loss,
            val_loss=val_loss,
            val_score=val_score,
            n_nonzero=len(described.selected),
            selected=described.selected,
            n_iter=info.n_iter,
            converged=info.converged,
            criterion=info.criterion,
            seconds=seconds,
            state=described.state,
        )
        points.append(point)
        if progress is not None:
            progress(i, len(grid), point)
        if stop is not None and stop(point):
            break
    return points


def select_index(scores: np.ndarray, rule: str, *, larger_is_better: bool) -> int:
    """Pick a grid point from cross-validated scores ``[n_lambdas, n_folds]``.

    ``"min"``: the best mean score. ``"1se"``: among the points whose mean is within one
    standard error (``std / sqrt(n_folds)``) of the best, the first in grid order, which is
    the most regularized one for a decreasing grid.
    """
    mean = scores.mean(axis=1)
    if not larger_is_better:
        mean = -mean
    best = int(np.argmax(mean))
    if rule == "min":
        return best
    n_folds = scores.shape[1]
    se = scores[best].std(ddof=1) / np.sqrt(n_folds) if n_folds > 1 else 0.0
    within = np.flatnonzero(mean >= mean[best] - se)
    return int(within[0])
