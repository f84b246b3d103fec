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
        record PathPoint(lam, ..., problem.score(state, *validation))

:func:`choose` is the one place a strength is picked from validation records, by the rule
``"min"`` (the lowest mean validation loss) or ``"1se"`` (the strongest penalty whose mean is
within one standard error of that minimum): estimators, cross-validation, the experiment
runner and the reports all call it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from torch import Tensor

from ._validation import check_choice, check_real

__all__ = [
    "RULES",
    "Choice",
    "Evaluation",
    "FitInfo",
    "NetworkState",
    "PathPoint",
    "PathProblem",
    "Score",
    "choose",
    "choose_from_paths",
    "lambda_grid",
    "path",
]

RULES = ("min", "1se")
"""How a strength is chosen on validation data (see :func:`choose`)."""


@dataclass(frozen=True)
class FitInfo:
    """What one fit at one strength reports.

    Attributes:
        n_iter: the solver's iterations (or a network's epochs).
        converged: whether it reached its tolerance.
        criterion: the stopping criterion reached (duality gap or optimality distance).
    """

    n_iter: int
    converged: bool
    criterion: float


@dataclass(frozen=True)
class Score:
    """A fitted state scored on held-out data.

    Attributes:
        loss: the mean loss (squared error, or log-loss).
        score: R^2 or accuracy, larger is better.
        loss_se: the standard error of ``loss`` over the samples, when the problem knows it.
    """

    loss: float
    score: float
    loss_se: float | None = None


@dataclass(frozen=True)
class NetworkState:
    """A network at one point of a path: what warm-starts the next point and what it reports.

    Attributes:
        weights: the network's ``state_dict()`` (tensors on the CPU, detached copies).
        optimizer: the optimizer's ``state_dict()``, to continue training from this point.
        history: ``(training loss, validation loss)`` of each epoch trained at this point.
        relaxed: the weights refitted without penalty on this point's support (a relaxed
            lasso), when the problem computes them; they are what the point predicts with.
    """

    weights: dict[str, Tensor]
    optimizer: dict[str, Any] | None = None
    history: tuple[tuple[float, float], ...] = ()
    relaxed: dict[str, Tensor] | None = None

    @property
    def predicting(self) -> dict[str, Tensor]:
        """The weights this point predicts with: the relaxed ones when there are any."""
        return self.relaxed if self.relaxed is not None else self.weights


@dataclass(frozen=True)
class PathPoint:
    """One point of a regularization path.

    Attributes:
        lam: the penalty strength, in the convention of the problem (``alpha`` for the linear
            models, as in scikit-learn).
        coef: the coefficients (linear models: ``[n_features]`` or ``[n_classes, n_features]``),
            or ``None`` for models that keep a ``state``.
        intercept: the intercept(s), or ``None``.
        state: the fitted network's :class:`NetworkState` (neural models), or ``None``.
        train_loss: the data term on the training data.
        val_loss, val_score: loss and score (R^2 or accuracy) on the validation data, if given.
        val_loss_se: the standard error of ``val_loss`` over the validation samples, where
            the problem computes it.
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
    state: NetworkState | None = field(default=None, repr=False)
    val_loss_se: float | None = None


@dataclass(frozen=True)
class Evaluation:
    """A problem's view of one fitted state: what its :class:`PathPoint` records.

    Attributes:
        coef: the coefficients, or ``None`` for a network.
        intercept: the intercept(s), or ``None``.
        train_loss: the data term on the training data.
        selected: indices of the features with a nonzero coefficient.
        state: the network's :class:`NetworkState`, or ``None``.
    """

    coef: np.ndarray | None
    intercept: np.ndarray | float | None
    train_loss: float
    selected: tuple[int, ...]
    state: NetworkState | None = None


class PathProblem(Protocol):
    """What :func:`path` needs of a model family.

    A problem may also offer ``extrapolate(lam, last, before) -> state``: a warm start at
    ``lam`` predicted from the last two fits, each ``(strength, state)``, which :func:`path`
    then uses in place of the last state (the linear models extrapolate their coefficients).
    """

    def lambda_max(self) -> float:
        """The smallest strength at which every feature is out of the model."""
        ...

    def initial_state(self) -> Any:
        """The warm start for the first point (all-zero coefficients, say)."""
        ...

    def fit(self, lam: float, state: Any) -> tuple[Any, FitInfo]:
        """Fit at one strength from a warm start.

        Args:
            lam: the strength.
            state: the warm start (the last point's state, or a prediction).

        Returns:
            ``(the fitted state, what the fit reports)``.
        """
        ...

    def describe(self, state: Any) -> Evaluation:
        """What a fitted state's :class:`PathPoint` records.

        Args:
            state: a state that :meth:`fit` returned.

        Returns:
            Its coefficients, training loss and selected features.
        """
        ...

    def score(self, state: Any, X: Any, y: Any) -> Score:
        """A fitted state on held-out data.

        Args:
            state: a state that :meth:`fit` returned.
            X: the held-out inputs (or what the problem summarises them by).
            y: their targets.

        Returns:
            The mean loss and the score.
        """
        ...


def lambda_grid(lambda_max: float, n_lambdas: int = 100, eps: float = 1e-3) -> np.ndarray:
    """``n_lambdas`` strengths log-spaced from ``lambda_max`` down to ``eps * lambda_max``.

    Args:
        lambda_max: the strongest, ``>= 0``.
        n_lambdas: how many, ``>= 1``.
        eps: the weakest as a fraction of the strongest, ``> 0``.

    Returns:
        ``[n_lambdas]``, decreasing (all zeros when ``lambda_max`` is 0).

    Raises:
        ValueError: an argument out of its range, naming it.

    Example:
        >>> lambda_grid(1.0, 3, eps=0.01)
        array([1.  , 0.1 , 0.01])
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
    validation: tuple[Any, ...] | None = None,
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
        validation: ``(X_val, y_val)`` (or ``(X_val, y_val, weights)``) to score each point
            on, as ``problem.score(state, *validation)``.
        initial_state: the first warm start (default ``problem.initial_state()``).
        stop: called after each point; ``True`` ends the path early (the point is kept).
        progress: called as ``progress(i, n, point)`` after each point.

    Returns:
        One :class:`PathPoint` per fitted strength, in grid order.
    """
    grid = (
        lambda_grid(problem.lambda_max(), n_lambdas, eps)
        if lambdas is None
        else _checked_grid(lambdas)
    )
    state = problem.initial_state() if initial_state is None else initial_state
    points: list[PathPoint] = []
    solved: list[tuple[float, Any]] = []  # the last two fits, (strength, state)
    for i, lam in enumerate(grid):
        warm = _warm_start(problem, float(lam), state, solved)
        point, state = _fit_point(problem, float(lam), warm, validation)
        solved = [*solved[-1:], (float(lam), state)]
        points.append(point)
        if progress is not None:
            progress(i, len(grid), point)
        if stop is not None and stop(point):
            break
    return points


def _warm_start(
    problem: PathProblem, lam: float, state: Any, solved: list[tuple[float, Any]]
) -> Any:
    """The warm start at ``lam``: the last ``state``, or, when the problem offers
    ``extrapolate`` (see :class:`PathProblem`), its prediction from the last two fits."""
    extrapolate = getattr(problem, "extrapolate", None)
    if extrapolate is None or len(solved) < 2:
        return state
    return extrapolate(lam, solved[-1], solved[-2])


def _checked_grid(lambdas: Sequence[float] | np.ndarray) -> np.ndarray:
    """``lambdas`` as a flat float array, refused unless non-empty, finite and ``>= 0``."""
    grid = np.asarray(lambdas, dtype=float).reshape(-1)
    if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
        raise ValueError(
            f"lambdas must be a non-empty sequence of finite values >= 0, got {lambdas!r}"
        )
    return grid


def _fit_point(
    problem: PathProblem, lam: float, state: Any, validation: tuple[Any, ...] | None
) -> tuple[PathPoint, Any]:
    """Fit ``problem`` at ``lam`` from the warm start ``state``: ``(its point, new state)``."""
    start = time.perf_counter()
    state, info = problem.fit(lam, state)
    seconds = time.perf_counter() - start
    described = problem.describe(state)
    scored = None if validation is None else problem.score(state, *validation)
    point = PathPoint(
        lam=lam,
        coef=described.coef,
        intercept=described.intercept,
        train_loss=described.train_loss,
        val_loss=None if scored is None else scored.loss,
        val_score=None if scored is None else scored.score,
        val_loss_se=None if scored is None else scored.loss_se,
        n_nonzero=len(described.selected),
        selected=described.selected,
        n_iter=info.n_iter,
        converged=info.converged,
        criterion=info.criterion,
        seconds=seconds,
        state=described.state,
    )
    return point, state


@dataclass(frozen=True)
class Choice:
    """A validation curve and the two points the rules pick on it.

    Attributes:
        lams: ``[n_points]``, the strengths.
        mean: ``[n_points]``, the mean validation loss (over folds), or the negated mean score
            when a larger score is better: lower is better either way.
        se: ``[n_points]``, its standard error: over folds with several, else over the
            validation samples (0 when unknown).
        best: the index of the lowest ``mean`` (rule ``"min"``).
        one_se: the index of the largest strength whose ``mean`` is within ``se[best]`` of
            the lowest (rule ``"1se"``).
    """

    lams: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    best: int
    one_se: int

    def index(self, rule: str) -> int:
        """The index of the point a rule picks.

        Args:
            rule: ``"min"`` or ``"1se"``.

        Returns:
            :attr:`best` or :attr:`one_se`.

        Raises:
            ValueError: another rule, naming the two allowed.
        """
        return self.best if check_choice("rule", rule, RULES) == "min" else self.one_se


def choose(
    values: Any,
    lams: Any,
    *,
    larger_is_better: bool = False,
    sample_se: Any = None,
) -> Choice:
    """Both rules on a validation curve.

    Args:
        values: ``[n_points, n_folds]``, each point's validation loss (or score) per fold.
        lams: ``[n_points]``, each point's strength (larger: more regularized).
        larger_is_better: ``values`` are scores (accuracy, R^2) rather than losses.
        sample_se: ``[n_points]``, the standard error of each point's value over its
            validation samples; used when there is one fold.

    With ``m_i`` the mean over folds and ``s_i`` its standard error (``std / sqrt(n_folds)``
    over folds, else ``sample_se``), ``best = argmin_i m_i`` (NaN ignored) and ``one_se`` the
    ``i`` of largest ``lams[i]`` with ``m_i <= m_best + s_best``.
    """
    table = np.asarray(values, dtype=float)
    if table.ndim == 1:
        table = table[:, None]
    strengths = np.asarray(lams, dtype=float).reshape(-1)
    if table.ndim != 2 or table.shape[0] != strengths.size or table.shape[0] == 0:
        raise ValueError(
            f"values must be [n_points, n_folds] with one row per strength; got shape "
            f"{table.shape} for {strengths.size} strengths"
        )
    if larger_is_better:
        table = -table
    n_folds = table.shape[1]
    mean = table.mean(axis=1)
    if n_folds > 1:
        se = table.std(axis=1, ddof=1) / math.sqrt(n_folds)
    elif sample_se is not None:
        se = np.nan_to_num(np.asarray(sample_se, dtype=float).reshape(-1), nan=0.0)
    else:
        se = np.zeros_like(mean)
    if np.all(np.isnan(mean)):
        raise ValueError("every validation value is NaN: no strength can be chosen")
    best = int(np.nanargmin(mean))
    within = np.flatnonzero(mean <= mean[best] + se[best])
    one_se = int(within[np.argmax(strengths[within])])
    return Choice(strengths, mean, se, best, one_se)


def choose_from_paths(paths: Sequence[Sequence[PathPoint]], *, metric: str = "loss") -> Choice:
    """:func:`choose` on the records of one path per fold, all on the same grid.

    With one fold the loss's standard error over the validation samples (``val_loss_se``) is
    the one the ``"1se"`` rule uses.

    Args:
        paths: one path per fold, each scored on its validation data; cut to the shortest.
        metric: ``"loss"`` (lower is better) or ``"score"`` (higher is better).

    Returns:
        The :class:`Choice` over the common grid.

    Raises:
        ValueError: no point, or a point without a validation score.
    """
    check_choice("metric", metric, ("loss", "score"))
    length = min(len(points) for points in paths) if paths else 0
    if length == 0:
        raise ValueError("choose_from_paths needs at least one fold with at least one point")
    attribute = "val_loss" if metric == "loss" else "val_score"
    values = [[getattr(points[i], attribute) for points in paths] for i in range(length)]
    if any(v is None for row in values for v in row):
        raise ValueError("choose_from_paths needs points scored on validation data")
    lams = [paths[0][i].lam for i in range(length)]
    sample_se = None
    if metric == "loss":
        sample_se = [paths[0][i].val_loss_se for i in range(length)]
        sample_se = [np.nan if v is None else v for v in sample_se]
    return choose(values, lams, larger_is_better=metric == "score", sample_se=sample_se)
