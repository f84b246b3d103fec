"""Experiments: the same model trained with no penalty, L1, L2, Elastic Net and group
penalties, each strength chosen on validation data along a warm-started path, evaluated on
a held-out test part. What ``shrinkage compare``, ``path`` and ``select`` run.

Everything goes through :func:`shrinkage.path` and its :class:`~shrinkage.PathPoint`
records, and every record is committed to a :class:`~shrinkage.store.Store` as soon as it is
computed, so an interrupted run resumes where it stopped and recomputes nothing it has:

    settings = Settings(data="digits", penalties=("none", "l1", "l2"))
    with Store("runs.db") as store:
        run_id = run_experiment(settings, store)
        rows = store.results(run_id)        # one row per penalty

Splits (seeded): 20 % of the rows are held out for the test; the rest is split into training
and validation (75 / 25), or into ``cv`` folds. Features are standardized on each training
part.

**MLP** (``model="mlp"``): ``Linear`` layers of ``hidden`` widths with ReLU, Adam, the
penalty applied by :class:`~shrinkage.Proximal` (preconditioned, so ``lam`` weighs the
penalty against the mean loss as a loss term would). "none" trains the dense network for
``epochs`` epochs; each penalty's path starts from that network and raises ``lam`` over
``n_lambdas`` log-spaced values from ``1e-3 * lam_top`` to ``lam_top`` (``lam_top``: the
strength at which a zero first layer is stationary for that penalty), ``path_epochs`` epochs
per value, stopping early once every input is dropped.

**Linear** (``model="linear"``): least squares, logistic or multinomial regression solved by
:class:`~shrinkage.linear.LinearProblem` along the usual decreasing grid from ``lambda_max``.

The strength is chosen on the validation loss: "min" (lowest mean) or "1se" (the strongest
penalty whose mean is within one standard error of the lowest; the standard error over folds
with ``cv``, over validation samples without). With ``cv``, the chosen path is then refitted
on all the training folds up to the chosen point (fold ``-1`` in the store).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .data import Dataset, Fold, load_dataset, make_folds
from .linear import LinearProblem
from .neural import CROSS_ENTROPY, SQUARED_ERROR, build_mlp, first_weight, train_epochs
from .path import Evaluation, FitInfo, PathPoint, lambda_grid, path
from .penalties import L1, L2, ElasticNet, GroupLasso, Penalty
from .proximal import Proximal
from .regularizer import Regularizer
from .store import Store
from .structured import neuron_groups

__all__ = [
    "MODELS",
    "PENALTIES",
    "PointResult",
    "PointTrainer",
    "Settings",
    "chosen_point",
    "run_experiment",
    "weight_matrices",
]

PENALTIES = ("none", "l1", "l2", "elasticnet", "group_inputs", "group_neurons")
"""Penalty names the experiments know."""
MODELS = ("mlp", "linear")
_SPARSE = {"l1", "elasticnet", "group_inputs"}

Progress = Callable[[str, int, int], None]
"""``progress(task, done, total)``: called after each finished path point."""


@dataclass(frozen=True)
class Settings:
    """Everything that defines a run (stored with it, so ``--resume`` needs nothing else)."""

    data: str
    target: str | None = None
    model: str = "mlp"
    penalties: tuple[str, ...] = ("none", "l1", "l2", "elasticnet")
    cv: int | None = None
    rule: str = "min"
    seed: int = 0
    n_lambdas: int = 12
    hidden: tuple[int, ...] = (256, 256)
    epochs: int = 60
    path_epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 64
    l1_ratio: float = 0.5
    lams: tuple[float, ...] | None = None
    path_learning_rate: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "penalties", tuple(self.penalties))
        if self.lams is not None:
            object.__setattr__(self, "lams", tuple(float(v) for v in self.lams))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.model not in MODELS:
            raise ValueError(f"--model must be one of {', '.join(MODELS)}; got {self.model!r}")
        unknown = [p for p in self.penalties if p not in PENALTIES]
        if unknown or not self.penalties:
            raise ValueError(
                f"--penalties must be a comma-separated list of {', '.join(PENALTIES)}; "
                f"got {','.join(self.penalties) or 'nothing'}"
            )
        if len(set(self.penalties)) != len(self.penalties):
            raise ValueError(f"--penalties lists a penalty twice: {','.join(self.penalties)}")
        for group in ("group_inputs", "group_neurons"):
            if self.model == "linear" and group in self.penalties:
                raise ValueError(f"--penalties {group} needs --model mlp")
        if self.rule not in ("min", "1se"):
            raise ValueError(f"--rule must be 'min' or '1se'; got {self.rule!r}")
        if self.cv is not None and (isinstance(self.cv, bool) or self.cv < 2):
            raise ValueError(f"--cv must be an integer >= 2; got {self.cv!r}")
        for name in ("n_lambdas", "epochs", "path_epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')} must be an integer >= 1; got {value!r}"
                )
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"--hidden must be positive widths; got {self.hidden!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"--learning-rate must be > 0; got {self.learning_rate!r}")
        rate = self.path_learning_rate
        if rate is not None and not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"--path-learning-rate must be > 0; got {rate!r}")
        if self.lams is not None and (
            not self.lams or not all(v > 0 and math.isfinite(v) for v in self.lams)
        ):
            raise ValueError(
                f"--lams must be positive, finite strengths; got {list(self.lams) or 'none'}"
            )
        if not 0 <= self.l1_ratio <= 1:
            raise ValueError(f"--l1-ratio must be in [0, 1]; got {self.l1_ratio!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["penalties"], out["hidden"] = list(self.penalties), list(self.hidden)
        out["lams"] = None if self.lams is None else list(self.lams)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# -- the two model families as path problems -------------------------------------------------
class _Problem:
    """A :class:`~shrinkage.path.PathProblem` on one training part, plus what the experiment
    needs around it: the grid, the validation part, per-sample losses and the test metric."""

    validation: Any = None

    def lambda_max(self) -> float:
        raise NotImplementedError

    def initial_state(self) -> Any:
        raise NotImplementedError

    def fit(self, lam: float, state: Any) -> tuple[Any, FitInfo]:
        raise NotImplementedError

    def describe(self, state: Any) -> Evaluation:
        raise NotImplementedError

    def score(self, state: Any, X: Any, y: Any) -> tuple[float, float]:
        raise NotImplementedError

    def set_validation(self, X: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def grid(self, penalty: str, warm: PathPoint | None) -> np.ndarray:
        raise NotImplementedError

    def warm_state(self, point: PathPoint) -> Any:
        raise NotImplementedError

    def per_sample_loss(self, point: PathPoint, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def metric(self, point: PathPoint, X: np.ndarray, y: np.ndarray) -> float:
        raise NotImplementedError


def weight_matrices(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The weight matrices of an MLP state dict (what the penalties act on)."""
    return {k: v for k, v in state.items() if k.endswith("weight") and v.ndim >= 2}


class _MLP(_Problem):
    def __init__(
        self, settings: Settings, dataset: Dataset, X: np.ndarray, y: np.ndarray, penalty: str
    ) -> None:
        self.s, self.dataset, self.penalty_name = settings, dataset, penalty
        self.classify = dataset.task == "classification"
        self.objective = CROSS_ENTROPY if self.classify else SQUARED_ERROR
        self.X = torch.as_tensor(X, dtype=torch.float32)
        self.y = self._target(y)
        self.n_out = dataset.n_classes if self.classify else 1
        torch.manual_seed(settings.seed)
        self.model = build_mlp(X.shape[1], settings.hidden, self.n_out, "relu")
        self.initial = copy.deepcopy(self.model.state_dict())
        self.on_epoch: Callable[[int, nn.Module], None] | None = None

    def _target(self, y: np.ndarray) -> Tensor:
        if self.classify:
            return torch.as_tensor(y, dtype=torch.long)
        return torch.as_tensor(y, dtype=torch.float32).reshape(-1, 1)

    def _loss(self, out: Tensor, target: Tensor) -> Tensor:
        return self.objective.loss(out, target)

    def _penalty(self, lam: float) -> Penalty | dict[str, Penalty | None]:
        name = self.penalty_name
        if name == "l1":
            return L1(lam)
        if name == "l2":
            return L2(lam)
        if name == "elasticnet":
            return ElasticNet(lam, l1_ratio=self.s.l1_ratio)
        return {"0.weight": GroupLasso(lam, groups="columns")}

    # PathProblem -------------------------------------------------------------------------
    def lambda_max(self) -> float:
        return float(self.grid(self.penalty_name, None)[-1])

    def initial_state(self) -> dict[str, Any]:
        return {"model": self.initial, "optimizer": None, "history": []}

    def fit(self, lam: float, state: dict[str, Any]) -> tuple[dict[str, Any], FitInfo]:
        self.model.load_state_dict(state["model"])
        dense = self.penalty_name == "none"
        rate = self.s.learning_rate
        if not dense and self.s.path_learning_rate is not None:
            rate = self.s.path_learning_rate
        adam = torch.optim.Adam(self.model.parameters(), lr=rate)
        optimizer: torch.optim.Optimizer = adam
        if self.penalty_name == "group_neurons":
            reg = Regularizer(self.model, None, groups=neuron_groups(self.model, lam))
            optimizer = Proximal(adam, reg, preconditioned=True)
        elif not dense:
            optimizer = Proximal(
                adam, Regularizer(self.model, self._penalty(lam)), preconditioned=True
            )
        if state["optimizer"] is not None:
            # a copy: the optimizer would otherwise update the given state's tensors in place
            adam.load_state_dict(copy.deepcopy(state["optimizer"]))
            for group in adam.param_groups:  # the loaded state carries the rate it ran with
                group["lr"] = rate
        history: list[tuple[float, float]] = []
        epochs = train_epochs(
            self.model,
            optimizer,
            self._loss,
            (self.X, self.y),
            epochs=self.s.epochs if dense else self.s.path_epochs,
            batch_size=min(self.s.batch_size, len(self.X)),
            seed=self.s.seed,
            validation=self.validation,
            evaluate=self._mean_loss,
            history=history,
            what=f"{self.penalty_name} lam={lam:g}",
            on_epoch=self.on_epoch,
        )
        new = {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizer": copy.deepcopy(adam.state_dict()),
            "history": history,
        }
        return new, FitInfo(epochs, True, math.nan)

    def describe(self, state: dict[str, Any]) -> Evaluation:
        self.model.load_state_dict(state["model"])
        norms = torch.linalg.vector_norm(first_weight(self.model).detach(), dim=0).numpy()
        selected = tuple(int(j) for j in np.flatnonzero(norms > 0))
        return Evaluation(
            norms.astype(np.float64),
            None,
            self._mean_loss(self.model, self.X, self.y),
            selected,
            state,
        )

    def score(self, state: Any, X: Tensor, y: Tensor) -> tuple[float, float]:
        self.model.load_state_dict(state["model"])
        return self._mean_loss(self.model, X, y), self._metric(self.model, X, y)

    # helpers -----------------------------------------------------------------------------
    def set_validation(self, X: np.ndarray, y: np.ndarray) -> None:
        self.validation = (torch.as_tensor(X, dtype=torch.float32), self._target(y))

    @torch.no_grad()
    def _per_sample(self, model: nn.Module, X: Tensor, y: Tensor) -> Tensor:
        model.eval()
        return self.objective.per_sample(model(X), y)

    def _mean_loss(self, model: nn.Module, X: Tensor, y: Tensor) -> float:
        return float(self._per_sample(model, X, y).mean())

    @torch.no_grad()
    def _metric(self, model: nn.Module, X: Tensor, y: Tensor) -> float:
        model.eval()
        return self.objective.score(model(X), y)

    def grid(self, penalty: str, warm: PathPoint | None) -> np.ndarray:
        if penalty == "none":
            return np.zeros(1)
        # lam_top: at a zero first layer (rest of the network as trained), the gradient g
        # of the mean loss makes that layer stationary for lam >= max|g| (L1) or
        # max_j ||g_j|| / sqrt(h) (a group per input column)
        probe = copy.deepcopy(self.model)
        if warm is not None:
            probe.load_state_dict(warm.state["model"])
        with torch.no_grad():
            first_weight(probe).zero_()
        self._loss(probe(self.X), self.y).backward()
        grad = first_weight(probe).grad
        assert grad is not None
        if penalty == "group_inputs":
            top = float(torch.linalg.vector_norm(grad, dim=0).max()) / math.sqrt(grad.shape[0])
        elif penalty == "group_neurons":  # a group per first-layer neuron (its row)
            top = float(torch.linalg.vector_norm(grad, dim=1).max()) / math.sqrt(grad.shape[1])
        else:
            top = float(grad.abs().max())
            if penalty == "elasticnet" and self.s.l1_ratio > 0:
                top /= self.s.l1_ratio
        return np.asarray(lambda_grid(top, self.s.n_lambdas, 1e-3)[::-1].copy())

    def warm_state(self, point: PathPoint) -> Any:
        return point.state

    def per_sample_loss(self, point: PathPoint, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        self.model.load_state_dict(point.state["model"])
        Xt = torch.as_tensor(X, dtype=torch.float32)
        return self._per_sample(self.model, Xt, self._target(y)).numpy().astype(np.float64)

    def metric(self, point: PathPoint, X: np.ndarray, y: np.ndarray) -> float:
        self.model.load_state_dict(point.state["model"])
        return self._metric(self.model, torch.as_tensor(X, dtype=torch.float32), self._target(y))


class _Linear(_Problem):
    def __init__(
        self, settings: Settings, dataset: Dataset, X: np.ndarray, y: np.ndarray, penalty: str
    ) -> None:
        self.s, self.penalty_name = settings, penalty
        ratio = {"l1": 1.0, "l2": 0.0, "elasticnet": settings.l1_ratio, "none": 1.0}[penalty]
        if dataset.task != "classification":
            loss = "squared"
        else:
            loss = "logistic" if dataset.n_classes == 2 else "multinomial"
        self.problem = LinearProblem(
            X,
            y,
            loss=loss,
            l1_ratio=ratio,
            fit_intercept=True,
            tol=1e-6,
            max_iter=1000,
            n_classes=max(dataset.n_classes, 2),
        )

    def set_validation(self, X: np.ndarray, y: np.ndarray) -> None:
        self.validation = (X, y)

    def lambda_max(self) -> float:
        return self.problem.lambda_max()

    def initial_state(self) -> Tensor:
        return self.problem.initial_state()

    def fit(self, lam: float, state: Tensor) -> tuple[Tensor, FitInfo]:
        return self.problem.fit(lam, state)

    def describe(self, state: Tensor) -> Evaluation:
        return self.problem.describe(state)

    def score(self, state: Tensor, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        return self.problem.score(state, X, y)

    def grid(self, penalty: str, warm: PathPoint | None) -> np.ndarray:
        if penalty == "none":
            return np.zeros(1)
        if penalty == "l2":  # no finite lambda_max: ten times the lasso's
            p = self.problem
            grad = p.datafit.grad(p.initial_state())
            top = 10.0 * float(grad[~p.free].abs().max())
        else:
            top = self.problem.lambda_max()
        return lambda_grid(top, self.s.n_lambdas, 1e-3)

    def warm_state(self, point: PathPoint) -> Tensor:
        assert point.coef is not None and point.intercept is not None
        return self.problem.state_from(point.coef, point.intercept)

    def per_sample_loss(self, point: PathPoint, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.problem.per_sample_loss(self.warm_state(point), X, y)

    def metric(self, point: PathPoint, X: np.ndarray, y: np.ndarray) -> float:
        return self.problem.score(self.warm_state(point), X, y)[1]


# -- the experiment ---------------------------------------------------------------------------
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


class _Runner:
    """Splits, problems, grids and paths of one run; with ``store=None`` nothing is stored
    (the paths live in memory only)."""

    def __init__(
        self, settings: Settings, store: Store | None, run_id: str, progress: Progress | None
    ):
        self.s, self.store, self.run_id, self.progress = settings, store, run_id, progress
        dataset = load_dataset(settings.data, settings.target, seed=settings.seed)
        rest, test, folds = make_folds(dataset, seed=settings.seed, cv=settings.cv)
        self.data = _Data(dataset, rest, test, folds)
        self._grids: dict[str, np.ndarray] = {}
        self._paths: dict[tuple[str, int, int | None], list[PathPoint]] = {}

    def _rows(self, fold: int) -> tuple[np.ndarray, np.ndarray | None]:
        if fold == -1:
            return self.data.rest, None
        f = self.data.folds[fold]
        return f.train, f.val

    def problem(
        self, penalty: str, fold: int, settings: Settings | None = None
    ) -> tuple[_Problem, np.ndarray, np.ndarray]:
        """The problem on ``fold``'s training rows (under ``settings``, by default the run's),
        and the standardized ``X``, ``y``."""
        train, val = self._rows(fold)
        X = _standardize(self.data.dataset.X, train)
        y = _targets(self.data.dataset, train)
        cls = _MLP if self.s.model == "mlp" else _Linear
        problem: _Problem = cls(settings or self.s, self.data.dataset, X[train], y[train], penalty)
        if val is not None:
            problem.set_validation(X[val], y[val])
        return problem, X, y

    def path(self, penalty: str, fold: int, stop_after: int | None = None) -> list[PathPoint]:
        """The stored prefix of this path, completed (and committed point by point)."""
        key = (penalty, fold, stop_after)
        if key in self._paths:
            return self._paths[key]
        done = [] if self.store is None else self.store.points(self.run_id, penalty, fold)
        grid = self.grid(penalty)
        if stop_after is not None:
            grid = grid[: stop_after + 1]
        # an MLP path (dense to sparse) ends once every input is dropped
        stops = self.s.model == "mlp" and penalty in _SPARSE
        if len(done) >= len(grid) or (stops and bool(done) and done[-1].n_nonzero == 0):
            self._paths[key] = done[: len(grid)]
            return self._paths[key]
        problem, _, _ = self.problem(penalty, fold)
        warm: PathPoint | None = None
        if penalty != "none" and self.s.model == "mlp":
            warm = self.path("none", fold)[0]
        if done:
            start = problem.warm_state(done[-1])
        elif warm is not None:
            start = problem.warm_state(warm)
        else:
            start = problem.initial_state()
        task = f"{penalty}" + ("" if fold == 0 and self.s.cv is None else f" (fold {fold})")

        def commit(i: int, n: int, point: PathPoint) -> None:
            if self.store is not None:
                self.store.add_point(self.run_id, penalty, fold, len(done) + i, point)
            if self.progress is not None:
                self.progress(task, len(done) + i + 1, len(grid))

        new = path(
            problem,
            grid[len(done) :],
            validation=problem.validation,
            initial_state=start,
            stop=(lambda p: p.n_nonzero == 0) if stops else None,
            progress=commit,
        )
        self._paths[key] = done + new
        return self._paths[key]

    def grid(self, penalty: str) -> np.ndarray:
        """One grid per penalty, from the first fold (so every fold and the refit share it);
        the run's ``lams`` where it gives them."""
        if penalty != "none" and self.s.lams is not None:
            return np.asarray(self.s.lams, dtype=np.float64)
        if penalty not in self._grids:
            problem, _, _ = self.problem(penalty, 0)
            warm = self.path("none", 0)[0] if penalty != "none" and self.s.model == "mlp" else None
            self._grids[penalty] = problem.grid(penalty, warm)
        return self._grids[penalty]

    def choose(self, penalty: str) -> tuple[int, int, int, list[list[PathPoint]]]:
        """``(chosen, index_min, index_1se, paths per fold)`` on the validation loss."""
        paths = [self.path(penalty, f) for f in range(len(self.data.folds))]
        length = min(len(p) for p in paths)
        means = np.empty((length, len(paths)))
        ses = np.empty((length, len(paths)))
        for f, points in enumerate(paths):
            problem, X, y = self.problem(penalty, f)
            val = self.data.folds[f].val
            for i, point in enumerate(points[:length]):
                losses = problem.per_sample_loss(point, X[val], y[val])
                means[i, f] = losses.mean()
                ses[i, f] = losses.std(ddof=1) / math.sqrt(len(losses))
        mean = means.mean(axis=1)
        se = means.std(axis=1, ddof=1) / math.sqrt(len(paths)) if len(paths) > 1 else ses[:, 0]
        best = int(np.nanargmin(mean))
        # the grid increases for MLPs (dense to sparse) and decreases for linear models
        order = np.arange(length) if self.s.model == "mlp" else np.arange(length)[::-1]
        within = [i for i in order if mean[i] <= mean[best] + se[best]]
        one_se = int(within[-1]) if within else best
        return (best if self.s.rule == "min" else one_se), best, one_se, paths

    def result(self, penalty: str) -> dict[str, Any]:
        if penalty == "none":
            chosen, best, one_se = 0, 0, 0
            paths = [self.path("none", f) for f in range(len(self.data.folds))]
        else:
            chosen, best, one_se, paths = self.choose(penalty)
        if self.s.cv is not None:
            if penalty != "none" and self.s.model == "mlp":
                self.path("none", -1)
            final_path = self.path(penalty, -1, stop_after=chosen)
            fold = -1
        else:
            final_path, fold = paths[0], 0
        point = final_path[min(chosen, len(final_path) - 1)]
        problem, X, y = self.problem(penalty, fold)
        train, _ = self._rows(fold)
        test = self.data.test
        train_metric = problem.metric(point, X[train], y[train])
        test_metric = problem.metric(point, X[test], y[test])
        weights = _weights(point, self.s.model)
        seconds = sum(p.seconds for ps in paths for p in ps)
        if self.s.cv is not None:
            seconds += sum(p.seconds for p in final_path)
        return {
            "penalty": penalty,
            "lam": point.lam,
            "index": chosen,
            "lam_min": paths[0][best].lam,
            "lam_1se": paths[0][one_se].lam,
            "metric": "accuracy" if self.data.dataset.task == "classification" else "r2",
            "test": test_metric,
            "train": train_metric,
            "gap": train_metric - test_metric,
            "zeros": float(sum(int((w == 0).sum()) for w in weights))
            / max(sum(w.size for w in weights), 1),
            "selected": point.n_nonzero,
            "n_features": int(self.data.dataset.X.shape[1]),
            "weight_norm": float(
                math.sqrt(sum(float((w.astype(np.float64) ** 2).sum()) for w in weights))
            ),
            "seconds": seconds,
        }


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
    """Single points of one penalty, each trained from the run's starting point: what one
    tuning trial computes.

    The data are split and standardized as in :func:`run_experiment` (seeded; the validation
    part of the single split scores each point). An MLP point starts from the dense network
    (``settings.epochs`` epochs with no penalty, trained once per trainer) and trains
    ``settings.path_epochs`` epochs with the penalty at ``lam``, exactly as the first point
    of a path with the grid ``(lam,)`` does; a linear point is solved from zero. So a point
    found here is reproduced by ``run_experiment(replace(settings, lams=(lam,), ...))``.

    ``lam_range``: ``(lo, hi)``, the interval of the penalty's default grid (``hi`` the
    strength at which the first layer, or the linear model, is zero). ``start``: the dense
    network's point when it is already trained (another trainer's :attr:`start`, handed to a
    worker process), instead of training it again.
    """

    def __init__(self, settings: Settings, penalty: str, start: PathPoint | None = None) -> None:
        if penalty not in PENALTIES[1:]:
            raise ValueError(
                f"--penalty must be one of {', '.join(PENALTIES[1:])}; got {penalty!r}"
            )
        if settings.cv is not None:
            raise ValueError("points are scored on one validation split; leave --cv out")
        self.penalty = penalty
        self.settings = replace(
            settings, penalties=("none", penalty), lams=None, path_learning_rate=None
        )
        self._runner = _Runner(self.settings, None, "", None)
        mlp = self.settings.model == "mlp"
        if mlp and start is not None:
            self._runner._paths[("none", 0, None)] = [start]
        self.start: PathPoint | None = self._runner.path("none", 0)[0] if mlp else None
        grid = self._runner.grid(penalty)
        self.lam_range = (float(grid.min()), float(grid.max()))

    @property
    def task(self) -> str:
        """``"classification"`` (score: accuracy) or ``"regression"`` (score: R^2)."""
        return self._runner.data.dataset.task

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
        problem, _, _ = self._runner.problem(self.penalty, 0, settings)
        start = (
            problem.warm_state(self.start) if self.start is not None else problem.initial_state()
        )
        if report is not None and isinstance(problem, _MLP):
            validation = problem.validation

            def on_epoch(epoch: int, model: nn.Module) -> None:
                report(epoch, problem._metric(model, *validation))

            problem.on_epoch = on_epoch
        t0 = time.perf_counter()
        state, info = problem.fit(lam, start)
        seconds = time.perf_counter() - t0
        val_loss, val_score = problem.score(state, *problem.validation)
        evaluation = problem.describe(state)
        point = PathPoint(
            lam, evaluation.coef, evaluation.intercept, evaluation.train_loss, val_loss,
            val_score, len(evaluation.selected), evaluation.selected, info.n_iter,
            info.converged, info.criterion, seconds, evaluation.state,
        )  # fmt: skip
        weights = _weights(point, settings.model)
        zeros = sum(int((w == 0).sum()) for w in weights) / max(sum(w.size for w in weights), 1)
        return PointResult(
            lam, float(val_loss), float(val_score), point.n_nonzero, zeros, info.n_iter, seconds
        )


def _weights(point: PathPoint, model: str) -> list[np.ndarray]:
    if model == "mlp":
        return [v.numpy() for v in weight_matrices(point.state["model"]).values()]
    return [np.atleast_1d(np.asarray(point.coef))]


def chosen_point(store: Store, run_id: str, row: dict[str, Any]) -> PathPoint:
    """The stored point a result row describes (the refit one under cross-validation)."""
    settings = Settings.from_dict(store.run(run_id).config)
    fold = -1 if settings.cv is not None else 0
    points = store.points(run_id, row["penalty"], fold)
    return points[min(int(row["index"]), len(points) - 1)]


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
    """Run ``settings`` (or, with ``resume=RUN_ID``, continue that stored run with its own
    settings; ``settings`` is then ignored and may be ``None``); returns the run id.

    Each path point and each finished penalty's result row is committed to ``store`` when
    it is done. ``on_run(run_id)`` is called once the run exists (before any training).
    ``meta``: more to record with a new run (what it came from, for instance).
    """
    if resume is not None:
        settings = Settings.from_dict(store.run(resume).config)
    if settings is None:
        raise ValueError("run_experiment needs settings, or resume=RUN_ID")
    runner = _Runner(settings, store, resume or "", progress)  # loads and splits: input errors
    if resume is None:
        dataset = runner.data.dataset
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
    have = {row["penalty"] for row in store.results(run_id)}
    for position, penalty in enumerate(settings.penalties):
        if penalty in have:
            continue
        store.add_result(run_id, penalty, position, runner.result(penalty))
    store.finish_run(run_id)
    return run_id


def result_table(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The columns the command line prints, in order."""
    return [
        {
            "penalty": r["penalty"],
            "lam": r["lam"],
            f"test {r['metric']}": r["test"],
            "train-test gap": r["gap"],
            "zeros": r["zeros"],
            "features": f"{r['selected']}/{r['n_features']}",
            "weight norm": r["weight_norm"],
            "seconds": r["seconds"],
        }
        for r in rows
    ]
