"""scikit-learn estimators for multi-layer perceptrons trained with shrinkage's penalties.

``MLPRegressor`` and ``MLPClassifier`` train an MLP in torch with :class:`~shrinkage.Proximal`
around Adam (decoupled: every step shrinks the penalized weights by ``learning_rate * alpha``,
see :class:`~shrinkage.Proximal`), so L1, Elastic Net and group penalties give exact zeros.

``penalty="group_inputs"`` puts a group lasso on each input feature's column of the first
layer: ``alpha * sum_j sqrt(h) * ||W1[:, j]||_2`` for ``W1 [h, n_features]``. A feature whose
column is zero no longer reaches the network. ``fit_path`` follows LassoNet's idea: train the
dense network, then raise ``alpha`` geometrically with warm starts until every input is
dropped, scoring each point on a validation split; it keeps the point chosen by
``selection_rule`` ("min" validation loss, or "1se": the strongest penalty whose validation
loss is within one standard error of the minimum). ``feature_importances_`` is then the
``alpha`` at which each feature left the model.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import Tensor, nn

from ._validation import check_device
from .path import Evaluation, FitInfo, PathPoint, path
from .penalties import L1, L2, ElasticNet, GroupLasso, Penalty
from .proximal import Proximal
from .regularizer import Regularizer

__all__ = [
    "CROSS_ENTROPY",
    "SQUARED_ERROR",
    "MLPClassifier",
    "MLPRegressor",
    "Objective",
    "build_mlp",
    "train_epochs",
]

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
}


def build_mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: str) -> nn.Sequential:
    """``Linear(n_in, h1), act, ..., Linear(h_last, n_out)``; the first layer is ``model[0]``."""
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), _ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def first_weight(model: nn.Sequential) -> Tensor:
    """The weight ``[h, n_features]`` of the first layer: its columns are the inputs."""
    layer = model[0]
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"the first layer must be nn.Linear, got {type(layer).__name__}")
    return layer.weight


@dataclass(frozen=True)
class Objective:
    """What a network is trained and scored on: the mean ``loss(out, target)``, its
    ``per_sample`` terms ``[n]``, and the ``score`` reported (accuracy or R^2)."""

    name: str
    loss: Callable[[Tensor, Tensor], Tensor]
    per_sample: Callable[[Tensor, Tensor], Tensor]
    score: Callable[[Tensor, Tensor], float]


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
)
"""Classification: logits ``[n, classes]``, class indices ``[n]``; scored by accuracy."""

SQUARED_ERROR = Objective(
    "squared error",
    nn.functional.mse_loss,
    lambda out, target: ((out - target) ** 2).reshape(-1),
    _r2,
)
"""Regression: outputs and targets ``[n, 1]``; scored by R^2."""


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
    """
    X, y = data
    n = X.shape[0]
    generator = torch.Generator(device="cpu").manual_seed(seed)
    best_loss, best_state, stale, epochs_run = math.inf, None, 0, 0
    for _ in range(epochs):
        epochs_run += 1
        model.train()
        total, batches = 0.0, 0
        for idx in torch.randperm(n, generator=generator).to(X.device).split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx])
            if not torch.isfinite(loss):
                if best_state is not None:
                    model.load_state_dict(best_state)
                raise FloatingPointError(
                    f"the training loss became {loss.item()} at {what or 'this point'}; lower "
                    "the learning rate or the penalty, or scale the inputs (the last good "
                    "parameters were kept)"
                )
            loss.backward()
            optimizer.step()
            if history is not None:  # a host sync per batch only when it is asked for
                total, batches = total + float(loss.detach()), batches + 1
        val = math.nan
        if validation is not None and evaluate is not None:
            val = evaluate(model, *validation)
        if history is not None:
            history.append((total / max(batches, 1), val))
        if on_epoch is not None:
            on_epoch(epochs_run - 1, model)
        if patience is None or math.isnan(val):
            continue
        if val < best_loss - 1e-6 * abs(best_loss):
            best_loss, best_state, stale = val, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return epochs_run


class _MLPBase(BaseEstimator):
    """Shared by the regressor and the classifier."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "penalty": [StrOptions({"l1", "l2", "elasticnet", "group_inputs"}), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "path_multiplier": [Interval(Real, 0, None, closed="neither")],
        "path_epochs": [Interval(Integral, 1, None, closed="left")],
        "max_path_points": [Interval(Integral, 1, None, closed="left")],
        "selection_rule": [StrOptions({"min", "1se"})],
        "relax": ["boolean"],
        "preconditioned": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
    }

    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] | int = (100,),
        *,
        activation: str = "relu",
        penalty: str | None = "l1",
        alpha: float = 1e-3,
        l1_ratio: float = 0.5,
        learning_rate: float = 1e-3,
        batch_size: int | str = "auto",
        max_epochs: int = 200,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        path_multiplier: float = 0.1,
        path_epochs: int = 10,
        max_path_points: int = 150,
        selection_rule: str = "1se",
        relax: bool = True,
        preconditioned: bool = True,
        random_state: int | None = None,
        device: str = "cpu",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.path_multiplier = path_multiplier
        self.path_epochs = path_epochs
        self.max_path_points = max_path_points
        self.selection_rule = selection_rule
        self.relax = relax
        self.preconditioned = preconditioned
        self.random_state = random_state
        self.device = device

    # -- to be provided by the subclasses ------------------------------------------------------
    _objective: ClassVar[Objective]

    def _encode_targets(self, y: Any) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def _target_tensor(self, y: np.ndarray) -> Tensor:
        raise NotImplementedError

    def _loss(self, out: Tensor, target: Tensor) -> Tensor:
        return self._objective.loss(out, target)

    def _per_sample_loss(self, out: Tensor, target: Tensor) -> Tensor:
        return self._objective.per_sample(out, target)

    def _score_outputs(self, out: Tensor, target: Tensor) -> float:
        return self._objective.score(out, target)

    # -- helpers ---------------------------------------------------------------------------
    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        hidden = (
            (int(sizes),) if isinstance(sizes, int | Integral) else tuple(int(h) for h in sizes)
        )
        if any(h < 1 for h in hidden):
            raise ValueError(
                f"hidden_layer_sizes must be positive integers, got {self.hidden_layer_sizes!r}"
            )
        return hidden

    def _penalty_spec(self, lam: float) -> dict[str, Penalty | None] | Penalty | None:
        if self.penalty is None:
            return None
        if self.penalty == "group_inputs":
            return {"0.weight": GroupLasso(lam, groups="columns")}
        if self.penalty == "l1":
            return L1(lam)
        if self.penalty == "l2":
            return L2(lam)
        return ElasticNet(lam, l1_ratio=self.l1_ratio)

    def _prepare(
        self, X: Any, y: Any, *, for_path: bool = False
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """Validate, encode, split off the validation part (for early stopping, and always for
        a path); tensors on the device."""
        self._validate_params()
        self._device = check_device(self.device)
        self._hidden()
        X, y = validate_data(
            self, X, y, dtype=np.float32, y_numeric=isinstance(self, RegressorMixin)
        )
        y_enc, self._n_outputs = self._encode_targets(y)
        rng = (
            np.random.RandomState(self.random_state)
            if not isinstance(self.random_state, np.random.RandomState)
            else self.random_state
        )
        self._seed = int(rng.randint(0, 2**31 - 1))
        X_val = y_val = None
        if (self.early_stopping or for_path) and X.shape[0] >= 10:
            stratify = (
                y_enc
                if isinstance(self, ClassifierMixin)
                and _can_stratify(y_enc, self.validation_fraction)
                else None
            )
            X, X_val, y_enc, y_val = train_test_split(
                X,
                y_enc,
                test_size=self.validation_fraction,
                random_state=self._seed,
                stratify=stratify,
            )

        def to_x(a: np.ndarray) -> Tensor:
            return torch.as_tensor(np.require(a, np.float32, ["C", "W"]), device=self._device)

        return (
            to_x(X),
            self._target_tensor(y_enc),
            None if X_val is None else to_x(X_val),
            None if y_val is None else self._target_tensor(y_val),
        )

    def _new_model(self, n_features: int) -> nn.Sequential:
        torch.manual_seed(self._seed)
        return build_mlp(n_features, self._hidden(), self._n_outputs, self.activation).to(
            self._device
        )

    def _train(
        self,
        model: nn.Sequential,
        lam: float,
        data: tuple[Tensor, Tensor, Tensor | None, Tensor | None],
        epochs: int,
        *,
        patience: int | None,
        optimizer_state: dict[str, Any] | None = None,
    ) -> tuple[int, float, dict[str, Any]]:
        """Train ``model`` in place with the penalty at strength ``lam`` for up to ``epochs``
        epochs, keeping the parameters of the best validation loss when there is a validation
        part. Returns the epochs run, the final validation loss and the optimizer state."""
        X, y, X_val, y_val = data
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        spec = self._penalty_spec(lam)
        step_optimizer: torch.optim.Optimizer = optimizer
        if spec is not None:
            step_optimizer = Proximal(
                optimizer, Regularizer(model, spec), preconditioned=self.preconditioned
            )
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        validation = None if X_val is None or y_val is None else (X_val, y_val)
        epochs_run = train_epochs(
            model,
            step_optimizer,
            self._loss,
            (X, y),
            epochs=epochs,
            batch_size=batch,
            seed=self._seed,
            validation=validation if patience is not None else None,
            evaluate=lambda m, a, b: self._evaluate(m, a, b)[0],
            patience=patience,
            what=f"alpha={lam:g}",
        )
        final = self._evaluate(model, *validation)[0] if validation is not None else math.nan
        return epochs_run, final, optimizer.state_dict()

    @torch.no_grad()
    def _evaluate(self, model: nn.Module, X: Tensor, y: Tensor) -> tuple[float, float, float]:
        """``(mean loss, score, standard error of the mean loss)`` on ``(X, y)``."""
        model.eval()
        out = model(X)
        per_sample = self._per_sample_loss(out, y)
        se = float(per_sample.std() / math.sqrt(len(per_sample))) if len(per_sample) > 1 else 0.0
        return float(per_sample.mean()), self._score_outputs(out, y), se

    def _finish(self, model: nn.Sequential, importances: np.ndarray | None = None) -> None:
        """Keep ``model``; selected features from its first layer; importances as given, or
        its first-layer column norms (normalized) when no path gave them."""
        # Inference in float64: predictions then do not depend on how rows are batched.
        self.model_ = model.eval().double()
        first = first_weight(model).detach()
        norms = torch.linalg.vector_norm(first, dim=0).cpu().numpy()
        self.selected_features_ = np.flatnonzero(norms > 0)
        if importances is None:
            importances = norms / norms.sum() if norms.sum() > 0 else norms
        self.feature_importances_ = importances

    # -- public API ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> Any:
        """Train at ``alpha`` with early stopping on a validation split; returns ``self``."""
        data = self._prepare(X, y)
        model = self._new_model(data[0].shape[1])
        patience = self.n_iter_no_change if self.early_stopping else None
        self.n_iter_, self.validation_loss_, _ = self._train(
            model, float(self.alpha), data, self.max_epochs, patience=patience
        )
        self._finish(model)
        self.path_: list[PathPoint] = []
        return self

    def fit_path(
        self,
        X: Any,
        y: Any,
        lambdas: Any = None,
        progress: Callable[[int, int, PathPoint], None] | None = None,
    ) -> Any:
        """Dense to sparse: train without penalty, then along an increasing ``alpha`` grid
        with warm starts until no input is left (or ``max_path_points``); keep the point
        chosen by ``selection_rule`` on the validation split. Returns ``self``.

        ``lambdas``: the increasing grid to follow (default: from an automatic start,
        multiplied by ``1 + path_multiplier`` at each point).
        """
        if self.penalty is None:
            raise ValueError("fit_path needs a penalty; got penalty=None")
        data = self._prepare(X, y, for_path=True)
        if data[2] is None:
            raise ValueError(
                "fit_path scores each point on a validation split (validation_fraction) and needs "
                f"at least 10 samples; got {len(np.asarray(y))}"
            )
        problem = _NeuralPathProblem(self, data)
        grid = np.asarray(lambdas, dtype=float) if lambdas is not None else problem.default_grid()
        points = path(
            problem,
            grid,
            validation=(data[2], data[3]),
            stop=lambda p: p.n_nonzero == 0,
            progress=progress,
        )
        points = [problem.dense_point, *points]
        losses = np.array([p.val_loss for p in points], dtype=float)
        ses = np.array([p.state["se"] for p in points], dtype=float)
        best = int(np.nanargmin(losses))
        chosen = best
        if self.selection_rule == "1se":
            within = np.flatnonzero(losses <= losses[best] + ses[best])
            chosen = int(within.max())  # the strongest penalty within one standard error
        self.path_ = points
        self.alpha_ = points[chosen].lam
        self.best_index_ = chosen
        model = self._new_model(data[0].shape[1])
        model.load_state_dict(points[chosen].state["model"])
        # the alpha at which each feature leaves the model (never: past the last point)
        leaves = np.full(data[0].shape[1], points[-1].lam * (1 + self.path_multiplier))
        for point in reversed(points):
            gone = np.setdiff1d(np.arange(data[0].shape[1]), point.selected)
            leaves[gone] = point.lam
        self.n_iter_ = sum(p.n_iter for p in points)
        self.validation_loss_ = float(losses[chosen])
        self._finish(model, importances=leaves)
        return self

    def get_support(self, indices: bool = False) -> np.ndarray:
        """The selected input features: a boolean mask ``[n_features]`` or their indices."""
        check_is_fitted(self)
        if indices:
            return self.selected_features_.copy()
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.selected_features_] = True
        return mask

    @torch.no_grad()
    def _forward(self, X: Any) -> Tensor:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Xt = torch.as_tensor(np.require(X, np.float64, ["C", "W"]), device=self._device)
        return self.model_(Xt)


def _can_stratify(y: np.ndarray, fraction: float) -> bool:
    counts = np.bincount(y)
    return bool(counts.min() >= 2 and fraction * len(y) >= len(counts))


class _NeuralPathProblem:
    """The network at one penalty strength, as :func:`shrinkage.path` needs it."""

    def __init__(
        self, estimator: _MLPBase, data: tuple[Tensor, Tensor, Tensor | None, Tensor | None]
    ) -> None:
        self.est, self.data = estimator, data
        self.model = estimator._new_model(data[0].shape[1])
        start = time.perf_counter()
        epochs, _, self.optimizer_state = estimator._train(
            self.model, 0.0, data, estimator.max_epochs, patience=estimator.n_iter_no_change
        )
        self.dense_state = copy.deepcopy(self.model.state_dict())
        self._relaxed: dict[tuple[int, ...], dict[str, Any]] = {}
        self._last_relaxed = self.dense_state
        info = FitInfo(epochs, True, math.nan)
        described = self.describe(self.initial_state())
        loss, score = self._validation()
        self.dense_point = PathPoint(
            0.0,
            None,
            None,
            described.train_loss,
            loss,
            score,
            len(described.selected),
            described.selected,
            info.n_iter,
            True,
            math.nan,
            time.perf_counter() - start,
            described.state,
        )

    def default_grid(self) -> np.ndarray:
        """Start where a group is about to be removed within ``path_epochs`` epochs: the
        decoupled prox shrinks ``||W1[:, j]||`` by ``lr * alpha * sqrt(h)`` per step."""
        first = first_weight(self.model).detach()
        norms = torch.linalg.vector_norm(first, dim=0)
        steps = self.est.path_epochs * math.ceil(self.data[0].shape[0] / self._batch())
        h = first.shape[0]
        if self.est.preconditioned:
            # alpha as a weight on the loss: start well below the strength at which a zero
            # first layer is stationary, max_j ||grad_j|| / sqrt(h) (the group lasso_max)
            probe = copy.deepcopy(self.model)
            with torch.no_grad():
                first_weight(probe).zero_()
            X, y = self.data[0], self.data[1]
            self.est._loss(probe(X), y).backward()
            grad = first_weight(probe).grad
            assert grad is not None
            top = float(torch.linalg.vector_norm(grad, dim=0).max()) / math.sqrt(h)
            return (
                1e-2 * top * (1 + self.est.path_multiplier) ** np.arange(self.est.max_path_points)
            )
        if self.est.penalty == "group_inputs":
            scale = self.est.learning_rate * math.sqrt(h) * steps
            start = float(norms[norms > 0].min()) / scale
        else:
            start = float(first.abs()[first != 0].median()) / (self.est.learning_rate * steps)
        start *= 0.1
        return start * (1 + self.est.path_multiplier) ** np.arange(self.est.max_path_points)

    def _batch(self) -> int:
        n = self.data[0].shape[0]
        return min(200, n) if self.est.batch_size == "auto" else min(int(self.est.batch_size), n)

    def lambda_max(self) -> float:
        return float(self.default_grid()[-1])

    def initial_state(self) -> dict[str, Any]:
        return {"model": self.dense_state, "relaxed": self.dense_state}

    def fit(self, lam: float, state: dict[str, Any]) -> tuple[dict[str, Any], FitInfo]:
        self.model.load_state_dict(state["model"])
        epochs, val, self.optimizer_state = self.est._train(
            self.model,
            lam,
            self.data,
            self.est.path_epochs,
            patience=None,
            optimizer_state=self.optimizer_state,
        )
        penalized = copy.deepcopy(self.model.state_dict())
        relaxed = penalized
        if self.est.relax:
            norms = torch.linalg.vector_norm(penalized["0.weight"], dim=0).cpu().numpy()
            support = tuple(int(j) for j in np.flatnonzero(norms > 0))
            if support not in self._relaxed:
                self._relaxed[support], extra = self._relax(support)
                epochs += extra
            relaxed = self._relaxed[support]
        return {"model": penalized, "relaxed": relaxed}, FitInfo(epochs, True, val)

    def _relax(self, support: tuple[int, ...]) -> tuple[dict[str, Any], int]:
        """The relaxed fit of a support (relaxed lasso): the previous support's relaxed
        network with the newly dropped input columns set to zero, retrained without penalty
        (with early stopping). Dropped columns stay exactly zero: their gradient is masked,
        and a fresh Adam never moves a parameter whose gradient is always zero. Each support
        is relaxed once, starting from a network that already fits well."""
        model = self.est._new_model(self.data[0].shape[1])
        model.load_state_dict(self._last_relaxed)
        first = first_weight(model)
        dropped = torch.ones(first.shape[1], dtype=torch.bool, device=first.device)
        dropped[list(support)] = False
        with torch.no_grad():
            first[:, dropped] = 0.0
        handle = first.register_hook(lambda g: g.masked_fill(dropped[None, :], 0.0))
        try:
            epochs, _, _ = self.est._train(
                model, 0.0, self.data, self.est.max_epochs, patience=self.est.n_iter_no_change
            )
        finally:
            handle.remove()
        self._last_relaxed = copy.deepcopy(model.state_dict())
        return self._last_relaxed, epochs

    def describe(self, state: dict[str, Any]) -> Evaluation:
        norms = torch.linalg.vector_norm(state["model"]["0.weight"], dim=0).cpu().numpy()
        selected = tuple(int(j) for j in np.flatnonzero(norms > 0))
        self.model.load_state_dict(state["relaxed"])
        X, y, X_val, y_val = self.data
        train_loss = self.est._evaluate(self.model, X, y)[0]
        se = (
            self.est._evaluate(self.model, X_val, y_val)[2]
            if X_val is not None and y_val is not None
            else math.nan
        )
        snapshot = {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "se": se,
        }
        return Evaluation(None, None, train_loss, selected, snapshot)

    def score(self, state: Any, X: Any, y: Any) -> tuple[float, float]:
        return self._validation()

    def _validation(self) -> tuple[float, float]:
        _, _, X_val, y_val = self.data
        assert X_val is not None and y_val is not None
        loss, score, _ = self.est._evaluate(self.model, X_val, y_val)
        return loss, score


class MLPRegressor(RegressorMixin, _MLPBase):
    """MLP regression (squared error) with L1, L2, Elastic-Net or input-group penalties.

    Targets are standardized internally and predictions mapped back. Parameters:
    ``hidden_layer_sizes``, ``activation`` ("relu", "tanh", "logistic", "identity"),
    ``penalty`` ("l1", "l2", "elasticnet", "group_inputs" or None), ``alpha``, ``l1_ratio``,
    ``learning_rate`` (Adam), ``batch_size`` ("auto": min(200, n)), ``max_epochs``,
    ``early_stopping`` / ``validation_fraction`` / ``n_iter_no_change``, the path settings
    ``path_multiplier`` / ``path_epochs`` / ``max_path_points`` / ``selection_rule``,
    ``random_state`` and ``device``.

    Attributes: ``model_`` (the ``nn.Sequential``), ``selected_features_``,
    ``feature_importances_``, ``n_iter_`` (epochs), ``validation_loss_``, ``path_`` and
    ``alpha_`` (after :meth:`fit_path`).
    """

    _objective = SQUARED_ERROR

    def _encode_targets(self, y: Any) -> tuple[np.ndarray, int]:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        self._y_mean = float(y.mean())
        self._y_scale = float(y.std()) or 1.0
        return ((y - self._y_mean) / self._y_scale).astype(np.float32), 1

    def _target_tensor(self, y: np.ndarray) -> Tensor:
        return torch.as_tensor(y, dtype=torch.float32, device=self._device).reshape(-1, 1)

    def predict(self, X: Any) -> np.ndarray:
        """Predictions, shape ``[n_samples]``."""
        out = self._forward(X).reshape(-1).cpu().numpy().astype(np.float64)
        return out * self._y_scale + self._y_mean


class MLPClassifier(ClassifierMixin, _MLPBase):
    """MLP classification (cross-entropy) with L1, L2, Elastic-Net or input-group penalties.

    Same parameters and attributes as :class:`MLPRegressor`, plus ``classes_``.
    """

    _objective = CROSS_ENTROPY

    def _encode_targets(self, y: Any) -> tuple[np.ndarray, int]:
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "MLPClassifier needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_[0]}"
            )
        return encoded.astype(np.int64), len(self.classes_)

    def _target_tensor(self, y: np.ndarray) -> Tensor:
        return torch.as_tensor(y, dtype=torch.long, device=self._device)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ``[n_samples, n_classes]``."""
        return torch.softmax(self._forward(X), dim=1).cpu().numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample."""
        winners = self._forward(X).argmax(1).cpu().numpy()
        return self.classes_[winners]
