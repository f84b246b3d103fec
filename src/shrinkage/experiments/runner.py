"""Experiments: the same model trained with no penalty, L1, L2, Elastic Net and group
penalties, each strength chosen on validation data along a warm-started path, evaluated on
a held-out test part. What ``shrinkage compare``, ``path`` and ``select`` run.

Everything goes through :func:`shrinkage.path` and its :class:`~shrinkage.PathPoint`
records, and every record is committed to a :class:`~.store.Store` as soon as it is
computed, so an interrupted run resumes where it stopped and recomputes nothing it has::

    settings = Settings(data="digits", penalties=("none", "l1", "l2"))
    with Store("runs.db") as store:
        run_id = run_experiment(settings, store)
        rows = store.results(run_id)        # one ResultRow per penalty

Splits (seeded): 20 % of the rows are held out for the test; the rest is split into training
and validation (75 / 25), or into ``cv`` folds. Features are standardized on each training
part. The model families are described in :mod:`.problems`.

The strength is chosen on the validation loss by :func:`shrinkage.path.choose_from_paths`:
"min" (lowest mean) or "1se" (the strongest penalty whose mean is within one standard error
of the lowest; the standard error over folds with ``cv``, over validation samples without).
With ``cv``, the chosen path is then refitted on all the training folds up to the chosen point
(fold ``-1`` in the store).

When the lowest validation loss sits at the weakest strength of a decreasing grid (the
linear models' paths, from ``lambda_max`` down: the curve still falls there, so the "too
little penalty" side of the trade-off is not on the grid yet), the grid goes on down at the
same ratio, :data:`EXTEND_BY` of ``n_lambdas`` more points at a time, warm-started from the
last point, at most :data:`MAX_EXTENSIONS` times. A network's path runs the other way, from
the dense network (``lam = 0``, the "none" penalty) up, so that side is the dense network
itself. A report says when a choice still sits at an end. A grid the user gives (``lams``)
is kept as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from ..neural import named_penalty
from ..path import Choice, PathPoint, choose_from_paths, path
from .data import Dataset, Fold, load_dataset, make_folds
from .problems import Family, NetworkFamily, Part, family_for
from .results import ResultRow, weight_norm, zero_fraction
from .settings import Settings
from .store import Store

__all__ = ["Progress", "Runner", "chosen_point", "run_experiment"]

EXTEND_BY = 0.5
"""Points added below a grid's weakest strength at each extension, as a share of
``n_lambdas``."""
MAX_EXTENSIONS = 2
"""How many times a penalty's grid goes on below its weakest strength."""

Progress = Callable[[str, int, int], None]
"""``progress(task, done, total)``: called after each finished path point."""


@dataclass
class _Data:
    dataset: Dataset
    rest: np.ndarray
    test: np.ndarray
    folds: list[Fold]


def _standardize(X: np.ndarray, train: np.ndarray) -> np.ndarray:
    mean, std = X[train].mean(0), X[train].std(0)
    std[std == 0] = 1.0
    return np.asarray((X - mean) / std)


def _targets(dataset: Dataset, train: np.ndarray) -> np.ndarray:
    if dataset.task == "classification":
        return dataset.y
    mean, std = dataset.y[train].mean(), dataset.y[train].std() or 1.0
    return np.asarray((dataset.y - mean) / std)


class Runner:
    """Splits, families, grids and paths of one run.

    Args:
        settings: the run's settings.
        store: where the path points are committed (``None``: kept in memory only).
        run_id: the stored run the points belong to.
        progress: called after each finished path point.
        dense: the dense network's point of fold 0 when it is already trained (a tuning
            worker receives it), instead of training it again.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        run_id: str = "",
        progress: Progress | None = None,
        *,
        dense: PathPoint | None = None,
    ) -> None:
        self.settings, self.store, self.run_id, self.progress = settings, store, run_id, progress
        dataset = load_dataset(settings.data, settings.target, seed=settings.seed)
        rest, test, folds = make_folds(dataset, seed=settings.seed, cv=settings.cv)
        self.data = _Data(dataset, rest, test, folds)
        self._grids: dict[str, np.ndarray] = {}
        self._extensions: dict[str, int] = {}
        self._paths: dict[tuple[str, int, int], list[PathPoint]] = {}
        if dense is not None:
            self._paths[("none", 0, 1)] = [dense]

    @property
    def dataset(self) -> Dataset:
        """The run's dataset, loaded once."""
        return self.data.dataset

    def _rows(self, fold: int) -> tuple[np.ndarray, np.ndarray | None]:
        if fold == -1:
            return self.data.rest, None
        f = self.data.folds[fold]
        return f.train, f.val

    def family(
        self,
        penalty: str,
        fold: int,
        settings: Settings | None = None,
        on_epoch: Callable[[int, nn.Module], None] | None = None,
    ) -> tuple[Family, np.ndarray, np.ndarray]:
        """The model family on one fold's training rows.

        Args:
            penalty: the penalty's name.
            fold: the fold's index, or ``-1`` for all the rows but the test part.
            settings: the settings to build it under (by default the run's).
            on_epoch: called as ``on_epoch(epoch, network)`` as a network trains.

        Returns:
            ``(family, X, y)``: the family, and every row of the data standardized on the
            fold's training rows.
        """
        train, val = self._rows(fold)
        X = _standardize(self.dataset.X, train)
        y = _targets(self.dataset, train)
        validation = None if val is None else (X[val], y[val])
        part = Part(settings or self.settings, self.dataset, X[train], y[train], validation)
        return family_for(part, penalty, on_epoch), X, y

    def _warm(self, penalty: str, fold: int) -> PathPoint | None:
        """The point a penalty's path starts from: the dense network (networks), else none."""
        if penalty == "none" or self.settings.model == "linear":
            return None
        return self.path("none", fold)[0]

    def path(self, penalty: str, fold: int, stop_after: int | None = None) -> list[PathPoint]:
        """One fold's path: its stored prefix, completed and committed point by point.

        Args:
            penalty: the penalty's name.
            fold: the fold's index, or ``-1`` for the refit on all but the test part.
            stop_after: the last grid index to fit (the whole grid by default).

        Returns:
            The path's points, in grid order.
        """
        grid = self.grid(penalty)
        if stop_after is not None:
            grid = grid[: stop_after + 1]
        key = (penalty, fold, len(grid))
        if key in self._paths:
            return self._paths[key]
        done = [] if self.store is None else self.store.points(self.run_id, penalty, fold)
        # an MLP path (dense to sparse) ends once every input is dropped
        stops = (
            self.settings.model == "mlp"
            and penalty != "none"
            and named_penalty(penalty).removes_inputs
        )
        if len(done) >= len(grid) or (stops and bool(done) and done[-1].n_nonzero == 0):
            self._paths[key] = done[: len(grid)]
            return self._paths[key]
        family, _, _ = self.family(penalty, fold)
        warm = self._warm(penalty, fold)
        if done:
            start = family.warm_state(done[-1])
        elif warm is not None:
            start = family.warm_state(warm)
        else:
            start = family.problem.initial_state()
        task = penalty + ("" if fold == 0 and self.settings.cv is None else f" (fold {fold})")

        def commit(i: int, n: int, point: PathPoint) -> None:
            if self.store is not None:
                self.store.add_point(self.run_id, penalty, fold, len(done) + i, point)
            if self.progress is not None:
                self.progress(task, len(done) + i + 1, len(grid))

        new = path(
            family.problem,
            grid[len(done) :],
            validation=family.validation,
            initial_state=start,
            stop=(lambda p: p.n_nonzero == 0) if stops else None,
            progress=commit,
        )
        self._paths[key] = done + new
        return self._paths[key]

    def grid(self, penalty: str) -> np.ndarray:
        """A penalty's grid, shared by every fold and the refit.

        Args:
            penalty: the penalty's name.

        Returns:
            The run's ``lams`` where it gives them, else the grid built on the first fold,
            extended as :meth:`paths` asked.
        """
        if penalty != "none" and self.settings.lams is not None:
            return np.asarray(self.settings.lams, dtype=np.float64)
        if penalty not in self._grids:
            family, _, _ = self.family(penalty, 0)
            self._grids[penalty] = family.grid(self._warm(penalty, 0))
        grid = self._grids[penalty]
        times = self._extensions.get(penalty, 0)
        if times == 0:
            return grid
        more = max(2, round(EXTEND_BY * self.settings.n_lambdas)) * times
        return np.concatenate([grid, grid[-1] * (grid[-1] / grid[-2]) ** np.arange(1, more + 1)])

    def paths(self, penalty: str) -> list[list[PathPoint]]:
        """Every fold's path, with the grid extended while the best point is its last.

        Args:
            penalty: the penalty's name.

        Returns:
            One path per fold (see the module docstring for the extension).
        """
        while True:
            paths = [self.path(penalty, f) for f in range(len(self.data.folds))]
            if not self._extends(penalty, paths):
                return paths
            self._extensions[penalty] = self._extensions.get(penalty, 0) + 1

    def _extends(self, penalty: str, paths: list[list[PathPoint]]) -> bool:
        """Whether ``penalty``'s grid goes on below its weakest strength now."""
        grid = self.grid(penalty)
        can = penalty != "none" and self.settings.lams is None and len(grid) >= 2
        can = can and grid[-1] < grid[0]  # decreasing: the path can go on down
        if not can or self._extensions.get(penalty, 0) >= MAX_EXTENSIONS:
            return False
        if min(len(p) for p in paths) < len(grid):  # a path that stopped early: all inputs out
            return False
        return choose_from_paths(paths).best == len(grid) - 1

    def choice(self, penalty: str) -> Choice:
        """Both rules on the validation losses of every fold's path.

        Args:
            penalty: the penalty's name.

        Returns:
            The validation curve and the points the rules pick.
        """
        return choose_from_paths(self.paths(penalty))

    def result(self, penalty: str) -> ResultRow:
        """The penalty's chosen point, evaluated on the training and test parts.

        Args:
            penalty: the penalty's name.

        Returns:
            Its row of the results table.
        """
        paths = self.paths(penalty)
        choice = self.choice(penalty)
        chosen = choice.index(self.settings.rule)
        if self.settings.cv is not None:
            final_path = self.path(penalty, -1, stop_after=chosen)
            fold = -1
        else:
            final_path, fold = paths[0], 0
        point = final_path[min(chosen, len(final_path) - 1)]
        family, X, y = self.family(penalty, fold)
        train, _ = self._rows(fold)
        test = self.data.test
        train_metric = family.evaluate(point, X[train], y[train]).score
        test_metric = family.evaluate(point, X[test], y[test]).score
        parameters = macs = 0
        if isinstance(family, NetworkFamily):
            parameters, macs = family.size()  # the network at the point just evaluated
            if self.settings.model == "cnn" and penalty == "group_neurons":
                small = family.compact_at(point)  # relaxed: refitted on its live units
                train_metric = family.score_model(small, X[train], y[train]).score
                test_metric = family.score_model(small, X[test], y[test]).score
                parameters, macs = family.size(small)
        seconds = sum(p.seconds for ps in paths for p in ps)
        if self.settings.cv is not None:
            seconds += sum(p.seconds for p in final_path)
        return ResultRow(
            penalty=penalty,
            lam=point.lam,
            index=chosen,
            lam_min=float(choice.lams[choice.best]),
            lam_1se=float(choice.lams[choice.one_se]),
            metric="accuracy" if self.dataset.task == "classification" else "r2",
            test=test_metric,
            train=train_metric,
            gap=train_metric - test_metric,
            zeros=zero_fraction(point),
            selected=point.n_nonzero,
            n_features=int(self.dataset.X.shape[1]),
            weight_norm=weight_norm(point),
            seconds=seconds,
            parameters=parameters,
            macs=macs,
        )


def chosen_point(store: Store, run_id: str, row: ResultRow) -> PathPoint:
    """The stored point a result row describes.

    Args:
        store: the store holding the run.
        run_id: the run.
        row: one of its result rows.

    Returns:
        The row's chosen point (under cross-validation, the one refitted on all the folds).
    """
    settings = Settings.from_dict(store.run(run_id).config)
    fold = -1 if settings.cv is not None else 0
    points = store.points(run_id, row.penalty, fold)
    return points[min(row.index, len(points) - 1)]


def run_experiment(
    settings: Settings | None,
    store: Store,
    *,
    command: str = "compare",
    resume: str | None = None,
    progress: Progress | None = None,
    on_run: Callable[[str], None] | None = None,
    meta: dict[str, Any] | None = None,
) -> str:
    """Run an experiment, or continue a stored one.

    Each path point and each finished penalty's result row is committed to ``store`` when
    it is done, so an interrupted run can be resumed.

    Args:
        settings: what to run; ignored (and may be ``None``) with ``resume``.
        store: where the run is recorded.
        command: the command recorded with a new run.
        resume: a stored run's id, to continue with its own settings.
        progress: called as ``progress(task, done, total)`` after each path point.
        on_run: called as ``on_run(run_id)`` once the run exists, before any training.
        meta: more to record with a new run (what it came from, for instance).

    Returns:
        The run id.

    Raises:
        ValueError: neither ``settings`` nor ``resume``.
    """
    if resume is not None:
        settings = Settings.from_dict(store.run(resume).config)
    if settings is None:
        raise ValueError("run_experiment needs settings, or resume=RUN_ID")
    runner = Runner(settings, store, resume or "", progress)  # loads and splits: input errors
    if resume is None:
        dataset = runner.dataset
        meta = {
            "dataset": dataset.name,
            "task": dataset.task,
            "n_samples": int(dataset.X.shape[0]),
            "feature_names": list(dataset.feature_names),
            "class_names": list(dataset.class_names),
            **(meta or {}),
        }
        runner.run_id = store.create_run(command, settings.to_dict(), meta)
    run_id = runner.run_id
    if on_run is not None:
        on_run(run_id)
    have = {row.penalty for row in store.results(run_id)}
    for position, penalty in enumerate(settings.penalties):
        if penalty in have:
            continue
        store.add_result(run_id, position, runner.result(penalty))
    store.finish_run(run_id)
    return run_id
