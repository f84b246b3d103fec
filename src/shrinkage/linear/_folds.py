"""What the cross-validated estimators share: the grid of strengths and the ``l1_ratio`` values
they try, the folds' Gram statistics, the choice on the held-out errors, and the progress
lines their ``verbose`` asks for.

``verbose=1`` writes a line on standard error as each fold's path ends and one for the choice
before the refit; ``verbose=2`` a line per point too (:func:`fold_reports`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import check_cv
from sklearn.utils import check_scalar

from ..path import PathPoint, PathProblem, choose_from_paths, lambda_grid, path
from ._design import GramStats

__all__ = [
    "FoldChoice",
    "FoldData",
    "FoldPaths",
    "FoldProgress",
    "alpha_grid",
    "check_l1_ratios",
    "choose_on_folds",
    "fold_reports",
    "report",
    "report_choice",
]


def _verbosity(estimator: Any) -> int:
    """The estimator's ``verbose`` as an int (``False``, ``None`` or no such attribute: 0)."""
    return int(getattr(estimator, "verbose", 0) or 0)


def report(estimator: Any, message: str, level: int = 1) -> None:
    """Write ``"<estimator's class>: <message>"`` on standard error when the estimator's
    ``verbose`` is at least ``level``.

    Args:
        estimator: read for its ``verbose`` (``False``, ``True`` or an int ``>= 0``) and its
            class name.
        message: the line, without the name.
        level: the least ``verbose`` that shows it.
    """
    if _verbosity(estimator) >= level:
        print(f"{type(estimator).__name__}: {message}", file=sys.stderr, flush=True)


@dataclass
class FoldProgress:
    """What a cross-validated estimator reports of one fold's path (see
    :func:`fold_reports`); called as a path's ``progress(i, n, point)``.

    Attributes:
        estimator: whose ``verbose`` and name the lines carry (see :func:`report`).
        title: the fold, e.g. ``"fold 2 of 5 (l1_ratio=0.5)"``.
        grid: the points' values in the estimator's own terms, in path order, ``[n]``.
        name: what ``grid`` holds (``"alpha"``, ``"C"``).
        seconds: the fold's fitting time so far.
    """

    estimator: Any
    title: str
    grid: Sequence[float] | np.ndarray
    name: str
    seconds: float = 0.0

    def __call__(self, i: int, n: int, point: PathPoint) -> None:
        self.step(i, n, point.n_nonzero, point.n_iter, point.seconds, point.val_loss)

    def step(
        self,
        i: int,
        n: int,
        n_nonzero: int,
        n_iter: int,
        seconds: float,
        held_out: float | None = None,
    ) -> None:
        """Point ``i`` of ``n`` is fitted: a line for it at ``verbose >= 2``, and at
        ``verbose >= 1`` one for the fold once its last point is.

        Args:
            i: the point's position on the path, from 0; n: the path's length.
            n_nonzero: features with a nonzero coefficient.
            n_iter: the solver's iterations.
            seconds: the point's fitting time.
            held_out: its held-out loss, where scored.
        """
        self.seconds += seconds
        loss = "" if held_out is None else f", held-out loss {held_out:.6g}"
        report(
            self.estimator,
            f"{self.title}, {self.name} {i + 1} of {n} = {self.grid[i]:.4g}: "
            f"nonzero {n_nonzero}, n_iter {n_iter}{loss}",
            level=2,
        )
        if i + 1 == n:
            report(self.estimator, f"{self.title}: {n} {self.name}s in {self.seconds:.2f} s")


def fold_reports(
    estimator: Any,
    grid: Sequence[float] | np.ndarray,
    n_folds: int,
    l1_ratio: float | None = None,
    name: str = "alpha",
) -> list[FoldProgress | None]:
    """The progress reports of the folds' paths along ``grid``, as scikit-learn's ``verbose``
    asks: nothing at 0; from 1, a line on standard error as each fold's path ends; from 2, a
    line per point as well (its value, nonzero coefficients, solver iterations and held-out
    loss).

    Args:
        estimator: the cross-validated estimator.
        grid: the points' values in the estimator's terms, in path order, ``[n]``.
        n_folds: how many folds.
        l1_ratio: the paths' ratio, named in the lines (``None``: not named).
        name: what ``grid`` holds.

    Returns:
        ``[n_folds]``: each fold's report, or ``None`` each when ``verbose`` is 0 (nothing to
        call).

    Example:
        >>> from shrinkage.linear import LassoCV
        >>> fold_reports(LassoCV(), [1.0, 0.1], 2)
        [None, None]
        >>> [r.title for r in fold_reports(LassoCV(verbose=1), [1.0, 0.1], 2, l1_ratio=0.5)]
        ['fold 1 of 2 (l1_ratio=0.5)', 'fold 2 of 2 (l1_ratio=0.5)']
    """
    if not _verbosity(estimator):
        return [None] * n_folds
    ratio = "" if l1_ratio is None else f" (l1_ratio={l1_ratio:g})"
    return [
        FoldProgress(estimator, f"fold {k + 1} of {n_folds}{ratio}", grid, name)
        for k in range(n_folds)
    ]


def report_choice(estimator: Any, **chosen: float | None) -> None:
    """At ``verbose >= 1``, the line of a cross-validated estimator's choice before its
    refit, e.g. ``"chose alpha_=0.01, l1_ratio_=0.5; refitting on all the data"``.

    Args:
        estimator: the cross-validated estimator (see :func:`report`).
        chosen: the chosen values by attribute name; those that are ``None`` are left out.
    """
    named = ", ".join(f"{key}={value:.4g}" for key, value in chosen.items() if value is not None)
    report(estimator, f"chose {named}; refitting on all the data")


_RESOLUTION = float(np.finfo(np.float64).resolution)


def check_l1_ratios(l1_ratio: Any) -> list[float]:
    """``l1_ratio`` (a number or a list) as a list of floats in ``[0, 1]``.

    Raises:
        ValueError: empty, outside ``[0, 1]``, or not finite, naming ``l1_ratio``.
    """
    ratios = np.atleast_1d(np.asarray(l1_ratio, dtype=float))
    if ratios.size == 0 or np.any((ratios < 0) | (ratios > 1)) or not np.all(np.isfinite(ratios)):
        raise ValueError(f"l1_ratio must be in [0, 1] (a number or a list), got {l1_ratio!r}")
    return [float(r) for r in ratios]


def alpha_grid(
    alphas: Any, eps: float, l1_ratio: float, alpha_max: Callable[[], float]
) -> np.ndarray:
    """The strengths a CV class tries, decreasing, as scikit-learn builds them.

    Args:
        alphas: an array (the grid itself, each value checked finite and ``>= 0``), or an
            int: that many log-spaced from ``alpha_max() / l1_ratio`` down to ``eps`` times it
            (the float resolution when the data leave nothing to fit).
        eps: the grid's ratio.
        l1_ratio: the L1 share of the penalty.
        alpha_max: the smallest ``alpha * l1_ratio`` that zeros every coefficient, called
            only for an int ``alphas``.

    Returns:
        ``[n_alphas]``, largest first.

    Raises:
        ValueError: a negative or non-finite given alpha, or an int ``alphas`` with
            ``l1_ratio=0`` (a pure ridge never zeros every coefficient), in scikit-learn's
            words.
    """
    if not isinstance(alphas, Integral):
        for index, alpha in enumerate(alphas):
            check_scalar(alpha, f"alphas[{index}]", Real, min_val=0.0, include_boundaries="left")
            if not np.isfinite(alpha):
                raise ValueError(f"alphas[{index}] must be finite; got {alpha!r}")
        return np.sort(np.asarray(alphas, dtype=float).ravel())[::-1]
    if l1_ratio == 0:
        raise ValueError(
            "Automatic alpha grid generation is not supported for l1_ratio=0. Please "
            "supply a grid by providing your estimator with the appropriate `alphas=` "
            "argument."
        )
    top = alpha_max() / l1_ratio
    if top <= _RESOLUTION:
        return np.full(int(alphas), _RESOLUTION)
    return lambda_grid(top, int(alphas), eps)


@dataclass(frozen=True)
class FoldChoice:
    """What cross-validation over ``l1_ratio`` and ``alpha`` chose.

    Attributes:
        l1_ratio: the chosen ratio; alpha: the chosen strength.
        mse_path: the held-out errors, ``[n_alphas, n_folds]`` (one ratio) or ``[n_l1_ratio,
            n_alphas, n_folds]``.
    """

    l1_ratio: float
    alpha: float
    mse_path: np.ndarray


def choose_on_folds(
    ratios: list[float],
    grids: list[np.ndarray],
    fold_points: list[list[list[PathPoint]]],
    rule: str,
) -> FoldChoice:
    """The best ``l1_ratio`` by its lowest mean held-out error (the first on ties), then
    ``alpha`` on its grid by ``rule`` (``"min"`` or ``"1se"``).

    Args:
        ratios: ``[n_l1_ratio]``; grids: each ratio's ``[n_alphas]`` strengths.
        fold_points: per ratio, per fold, the path's points scored on the held-out rows.
        rule: the selection rule.

    Returns:
        The :class:`FoldChoice`.
    """
    choices = [choose_from_paths(per_fold) for per_fold in fold_points]
    best = int(np.argmin([float(np.nanmin(c.mean)) for c in choices]))
    index = choices[best].index(rule)
    mse = np.array(
        [[[p.val_loss for p in points] for points in per_fold] for per_fold in fold_points],
        dtype=float,
    )  # [n_l1_ratio, n_folds, n_alphas]
    return FoldChoice(ratios[best], float(grids[best][index]), np.squeeze(np.moveaxis(mse, 2, 1)))


@dataclass(frozen=True)
class FoldData:
    """The checked data of a cross-validated fit and its folds, and, for the squared loss with
    ``n >> p``, the Gram statistics of the whole data and of each held-out fold
    (:meth:`with_statistics`).

    Attributes:
        X: ``[n, p]``, dense or scipy sparse; y: ``[n]`` or ``[n, T]``.
        weights: ``[n]`` sample weights, or ``None``; offset: ``[n]`` (GLMs), or ``None``.
        folds: ``(train, test)`` row indices.
        stats: the whole data's statistics, or ``None``; fold_stats: each fold's.

    Example:
        >>> import numpy as np
        >>> data = FoldData.split(np.eye(4), np.arange(4.0), None, cv=2)
        >>> [test.tolist() for _, test in data.folds]
        [[0, 1], [2, 3]]
        >>> data.rows(data.folds[0][1])[1].tolist()
        [0.0, 1.0]
    """

    X: Any
    y: np.ndarray
    weights: np.ndarray | None
    folds: list[tuple[np.ndarray, np.ndarray]]
    offset: np.ndarray | None = None
    stats: GramStats | None = None
    fold_stats: tuple[GramStats, ...] = ()

    @classmethod
    def split(
        cls,
        X: Any,
        y: np.ndarray,
        weights: np.ndarray | None,
        cv: Any,
        offset: np.ndarray | None = None,
    ) -> FoldData:
        """The folds of scikit-learn's ``cv`` on ``X`` and ``y``, as index arrays (also
        where ``cv`` gives boolean masks)."""
        rows = np.arange(X.shape[0])
        folds = [(rows[train], rows[test]) for train, test in check_cv(cv).split(X, y)]
        return cls(X, y, weights, folds, offset)

    def with_statistics(self, device: torch.device) -> FoldData:
        """The same folds with the squared loss's Gram statistics, when every training part has
        at least as many rows as features (``self`` as it is otherwise): each fold's training
        problem is then the whole data's less the fold's, without a pass over its rows.

        Args:
            device: where the statistics live.

        Returns:
            A :class:`FoldData` with ``stats``, the whole data's statistics (the folds' sum
            when they partition the rows), and ``fold_stats``, each held-out fold's.
        """
        X, folds = self.X, self.folds
        if X.shape[0] - max(len(test) for _, test in folds) < X.shape[1]:
            return self
        fold_stats = tuple(GramStats.of(*self.rows(test)[:3], device) for _, test in folds)
        tests = np.sort(np.concatenate([test for _, test in folds]))
        if np.array_equal(tests, np.arange(X.shape[0])):
            stats = sum(fold_stats[1:], fold_stats[0])
        else:
            stats = GramStats.of(X, self.y, self.weights, device)
        return replace(self, stats=stats, fold_stats=fold_stats)

    def rows(
        self, index: np.ndarray
    ) -> tuple[Any, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(X, y, weights, offset)`` of the rows ``index`` (``None`` stays ``None``)."""
        return self.X[index], self.y[index], _take(self.weights, index), _take(self.offset, index)


def _take(values: np.ndarray | None, index: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[index]


class FoldPaths:
    """The K-fold engine of the single-target path estimators (``ElasticNetCV``,
    ``GroupLassoCV``): each ``l1_ratio``'s grid fitted along a warm-started path on every
    fold's training part, scored on its held-out rows, and one ``(l1_ratio, alpha)`` chosen.

    A fold's training problem is the whole data's Gram statistics less the fold's when
    :class:`FoldData` holds them, and is built on the fold's rows otherwise. A subclass
    supplies the grids and the two ways of building a problem.
    """

    l1_ratio: Any
    selection_rule: str

    def _grids(self, data: FoldData, ratios: list[float]) -> list[np.ndarray]:
        """Each ratio's strengths, largest first."""
        raise NotImplementedError

    def _from_stats(self, stats: GramStats, ratio: float) -> PathProblem:
        """The problem whose data are the Gram statistics ``stats``."""
        raise NotImplementedError

    def _on_rows(
        self, X: Any, y: np.ndarray, weights: np.ndarray | None, ratio: float
    ) -> PathProblem:
        """The problem on a fold's training rows (:meth:`FoldData.rows`: ``X`` is a copy, the
        fold's own, which the problem may centre in place)."""
        raise NotImplementedError

    def _choose_on_folds(self, data: FoldData) -> tuple[FoldChoice, list[np.ndarray]]:
        """Cross-validate every ratio's grid and choose.

        Args:
            data: the data and its folds.

        Returns:
            ``(choice, grids)``: the :class:`FoldChoice` and each ratio's ``[n_alphas]`` grid.
        """
        ratios = check_l1_ratios(self.l1_ratio)
        grids = self._grids(data, ratios)
        fold_points = []
        for ratio, grid in zip(ratios, grids, strict=True):
            n = len(data.folds)
            reports = fold_reports(self, grid, n, ratio if len(ratios) > 1 else None)
            fold_points.append(
                [self._fold_path(data, k, ratio, grid, reports[k]) for k in range(n)]
            )
        choice = choose_on_folds(ratios, grids, fold_points, self.selection_rule)
        shown = choice.l1_ratio if len(ratios) > 1 else None
        report_choice(self, alpha_=choice.alpha, l1_ratio_=shown)
        return choice, grids

    def _fold_path(
        self, data: FoldData, k: int, ratio: float, grid: np.ndarray, progress: FoldProgress | None
    ) -> list[PathPoint]:
        """Fold ``k``'s warm-started path along ``grid``, scored on its held-out rows."""
        train, test = data.folds[k]
        if data.stats is not None:
            problem = self._from_stats(data.stats - data.fold_stats[k], ratio)
            validation: tuple[Any, ...] = (data.fold_stats[k], None)
        else:
            problem = self._on_rows(*data.rows(train)[:3], ratio)
            validation = data.rows(test)[:3]
        return path(problem, grid, validation=validation, progress=progress)
