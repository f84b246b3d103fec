"""scikit-learn estimators for multi-layer perceptrons trained with shrinkage's penalties.

``MLPRegressor`` and ``MLPClassifier`` train an MLP in torch with :class:`~shrinkage.Proximal`
around Adam (with Adam's own element-wise step by default, so ``alpha`` weighs the penalty
against the mean loss; ``decoupled=True``: every step shrinks the penalized weights by
``learning_rate * alpha``), so L1, Elastic Net and group penalties give exact zeros.

``penalty="group_inputs"`` puts a group lasso on each input feature's column of the first
layer: ``alpha * sum_j sqrt(h) * ||W1[:, j]||_2`` for ``W1 [h, n_features]``. A feature whose
column is zero no longer reaches the network. ``fit_path`` follows LassoNet's idea: train the
dense network, then raise ``alpha`` geometrically with warm starts until every input is
dropped, scoring each point on a validation split; it keeps the point chosen by
``selection_rule`` ("min" validation loss, the default as in the linear CV estimators, or
"1se": the strongest penalty whose validation loss is within one standard error of the
minimum, a sparser model). ``feature_importances_`` is then the
``alpha`` at which each feature left the model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import Tensor, nn

from .._validation import check_device
from ..path import RULES, PathPoint, choose_from_paths, path
from . import training
from .penalties import PENALTIES, named_penalty
from .problem import MLPPathProblem
from .training import (
    ACTIVATIONS,
    Objective,
    Schedule,
    build_mlp,
    evaluate,
    first_weight,
    train_point,
)

__all__ = ["MLPClassifier", "MLPRegressor"]

SCALE_SPREAD = 10.0
"""With ``standardize=False``: inputs whose standard deviations differ by more than this
factor, or lie further than it from 1, get a warning."""

ESTIMATOR_PENALTIES = ("l1", "l2", "elasticnet", "group_inputs")
"""The names of :data:`~shrinkage.neural.penalties.PENALTIES` the estimators accept."""
assert set(ESTIMATOR_PENALTIES) <= set(PENALTIES)


class _MLPBase(BaseEstimator):
    """Shared by the regressor and the classifier."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "penalty": [StrOptions(set(ESTIMATOR_PENALTIES)), None],
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
        "selection_rule": [StrOptions(set(RULES))],
        "relax": ["boolean"],
        "decoupled": ["boolean"],
        "standardize": ["boolean"],
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
        selection_rule: str = "min",
        relax: bool = True,
        decoupled: bool = False,
        standardize: bool = True,
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
        self.decoupled = decoupled
        self.standardize = standardize
        self.random_state = random_state
        self.device = device

    # -- to be provided by the subclasses ------------------------------------------------------
    _objective: ClassVar[Objective]
    """The loss the network is trained on and its score."""

    def _encode_targets(self, y: Any) -> tuple[np.ndarray, int]:
        raise NotImplementedError

    def _target_tensor(self, y: np.ndarray) -> Tensor:
        raise NotImplementedError

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
        X = self._fit_scaling(X)
        y_enc, self._n_outputs = self._encode_targets(y)
        self._seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        X_val = y_val = None
        if (self.early_stopping or for_path) and X.shape[0] >= 10:
            strata = _strata(y_enc, self.validation_fraction, isinstance(self, ClassifierMixin))
            X, X_val, y_enc, y_val = train_test_split(
                X, y_enc, test_size=self.validation_fraction, random_state=self._seed,
                stratify=strata,
            )  # fmt: skip

        def to_x(a: np.ndarray) -> Tensor:
            return torch.as_tensor(np.require(a, np.float32, ["C", "W"]), device=self._device)

        return (
            to_x(X),
            self._target_tensor(y_enc),
            None if X_val is None else to_x(X_val),
            None if y_val is None else self._target_tensor(y_val),
        )

    def _fit_scaling(self, X: np.ndarray) -> np.ndarray:
        """``(X - x_mean_) / x_scale_``: each input standardized (``standardize``), so that
        a penalty on the first layer weighs every feature alike; without it, a warning when
        the inputs' standard deviations differ by more than :data:`SCALE_SPREAD` or lie
        outside ``[1 / SCALE_SPREAD, SCALE_SPREAD]``."""
        std = X.std(axis=0, dtype=np.float64)
        if not self.standardize:
            self.x_mean_, self.x_scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
            live = std[std > 0]
            spread = live.size and live.max() > SCALE_SPREAD * live.min()
            if live.size and (spread or not 1 / SCALE_SPREAD <= live.min() <= SCALE_SPREAD):
                warnings.warn(
                    f"{type(self).__name__}(standardize=False): the inputs' standard deviations "
                    f"run from {live.min():.3g} to {live.max():.3g}, and a penalty on the "
                    "first layer weighs each feature by its scale; standardize them, or "
                    "leave standardize=True",
                    UserWarning,
                    stacklevel=4,
                )
            return X
        self.x_mean_ = X.mean(axis=0, dtype=np.float64)
        self.x_scale_ = np.where(std > 0, std, 1.0)
        return ((X - self.x_mean_) / self.x_scale_).astype(np.float32)

    def _new_model(self, n_features: int) -> nn.Sequential:
        generator = torch.Generator().manual_seed(self._seed)
        model = build_mlp(
            n_features, self._hidden(), self._n_outputs, self.activation, generator=generator
        )
        return model.to(self._device)

    def _schedule(self, n: int, epochs: int, patience: int | None) -> Schedule:
        batch = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        return Schedule(
            epochs=epochs,
            batch_size=batch,
            learning_rate=float(self.learning_rate),
            seed=self._seed,
            patience=patience,
            decoupled=bool(self.decoupled),
        )

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
        """Train at ``alpha``, with early stopping on a validation split.

        Args:
            X: ``[n_samples, n_features]``.
            y: ``[n_samples]``, targets or class labels.

        Returns:
            ``self``.
        """
        X_tr, y_tr, X_val, y_val = self._prepare(X, y)
        model = self._new_model(X_tr.shape[1])
        patience = self.n_iter_no_change if self.early_stopping else None
        validation = None if X_val is None or y_val is None else (X_val, y_val)
        regularizer = None
        if self.penalty is not None:
            regularizer = named_penalty(self.penalty).regularizer(
                model, float(self.alpha), float(self.l1_ratio)
            )
        trained = train_point(
            model, self._objective, (X_tr, y_tr), regularizer,
            self._schedule(X_tr.shape[0], self.max_epochs, patience),
            validation=validation if patience is not None else None,
            what=f"alpha={float(self.alpha):g}",
        )  # fmt: skip
        self.n_iter_ = trained.epochs
        self.validation_loss_ = (
            evaluate(model, self._objective, *validation).loss if validation else math.nan
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
        """Fit along a warm-started path, from dense to sparse, and keep the best point.

        Trains without penalty, then along an increasing ``alpha`` grid until no input is
        left (or ``max_path_points``), and keeps the point that ``selection_rule`` chooses on
        the validation split.

        Args:
            X: inputs, ``[n_samples, n_features]``.
            y: targets, ``[n_samples]``.
            lambdas: the increasing grid to follow; default: from an automatic start,
                multiplied by ``1 + path_multiplier`` at each point.
            progress: called as ``progress(i, total, point)`` after each point.

        Returns:
            ``self``, with ``path_``, ``alpha_``, ``best_index_`` and ``validation_loss_``.

        Raises:
            ValueError: ``penalty`` is None, or too few samples for a validation split.
        """
        if self.penalty is None:
            raise ValueError("fit_path needs a penalty; got penalty=None")
        X_tr, y_tr, X_val, y_val = self._prepare(X, y, for_path=True)
        if X_val is None or y_val is None:
            raise ValueError(
                "fit_path scores each point on a validation split (validation_fraction) and needs "
                f"at least 10 samples; got {len(np.asarray(y))}"
            )
        model = self._new_model(X_tr.shape[1])
        dense_point, problem = self._path_problems(model, (X_tr, y_tr), (X_val, y_val))
        grid = (
            np.asarray(lambdas, dtype=float)
            if lambdas is not None
            else self._default_grid(problem, dense_point, X_tr.shape[0])
        )
        points = path(
            problem, grid, validation=(X_val, y_val), initial_state=dense_point.state,
            stop=lambda point: point.n_nonzero == 0, progress=progress,
        )  # fmt: skip
        self._keep_path([dense_point, *points], model)
        return self

    def _path_problems(
        self, model: nn.Sequential, train: tuple[Any, Any], validation: tuple[Any, Any]
    ) -> tuple[PathPoint, MLPPathProblem]:
        """The dense start (trained without penalty) and the penalized path problem."""
        assert self.penalty is not None  # fit_path checks it
        n = train[0].shape[0]
        refit = self._schedule(n, self.max_epochs, self.n_iter_no_change)
        dense = MLPPathProblem(model, self._objective, train, None, refit, validation=validation)
        (dense_point,) = path(dense, [0.0], validation=validation)
        assert dense_point.state is not None
        problem = MLPPathProblem(
            model, self._objective, train, named_penalty(self.penalty),
            self._schedule(n, self.path_epochs, None), l1_ratio=float(self.l1_ratio),
            validation=validation, relax=self.relax, relax_schedule=refit,
            record_optimizer=False,
        )  # fmt: skip
        return dense_point, problem

    def _keep_path(self, points: list[PathPoint], model: nn.Sequential) -> None:
        """Load the point ``selection_rule`` chooses into ``model`` and set the fitted
        attributes; a feature's importance is the ``alpha`` at which it leaves the model
        (never: past the last point)."""
        chosen = choose_from_paths([points]).index(self.selection_rule)
        self.path_ = points
        self.alpha_ = points[chosen].lam
        self.best_index_ = chosen
        state = points[chosen].state
        assert state is not None
        model.load_state_dict(state.predicting)
        p = self.n_features_in_
        leaves = np.full(p, points[-1].lam * (1 + self.path_multiplier))
        for point in reversed(points):
            gone = np.setdiff1d(np.arange(p), point.selected)
            leaves[gone] = point.lam
        self.n_iter_ = sum(point.n_iter for point in points)
        self.validation_loss_ = float(points[chosen].val_loss or math.nan)
        self._finish(model, importances=leaves)

    def _default_grid(self, problem: MLPPathProblem, dense: PathPoint, n: int) -> np.ndarray:
        """Start where a group is about to be removed within ``path_epochs`` epochs, and grow
        by ``1 + path_multiplier`` per point.

        By default (``alpha`` weighs the penalty against the loss): a hundredth of the
        strength at which a zero first layer is stationary. Decoupled (the prox shrinks
        ``||W1[:, j]||`` by ``lr * alpha * sqrt(h)`` per step, or ``|w|`` by ``lr * alpha``):
        a tenth of the strength that removes the smallest column, or the median weight, in
        ``path_epochs`` epochs."""
        assert dense.state is not None
        growth = (1 + self.path_multiplier) ** np.arange(self.max_path_points)
        if not self.decoupled:
            return 1e-2 * problem.lambda_max_at(dense.state) * growth
        first = dense.state.weights["0.weight"]
        steps = self.path_epochs * math.ceil(n / problem.schedule.batch_size)
        if self.penalty == "group_inputs":
            norms = torch.linalg.vector_norm(first, dim=0)
            scale = self.learning_rate * math.sqrt(first.shape[0]) * steps
            start = float(norms[norms > 0].min()) / scale
        else:
            start = float(first.abs()[first != 0].median()) / (self.learning_rate * steps)
        return 0.1 * start * growth

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
        X = (X - self.x_mean_) / self.x_scale_
        Xt = torch.as_tensor(np.require(X, np.float64, ["C", "W"]), device=self._device)
        return self.model_(Xt)


def _strata(y: np.ndarray, fraction: float, classifier: bool) -> np.ndarray | None:
    """The labels that stratify the validation split: a classifier's, when every class can
    give that split a sample and keep one; else ``None``."""
    if not classifier:
        return None
    counts = np.bincount(y)
    return y if counts.min() >= 2 and fraction * len(y) >= len(counts) else None


class MLPRegressor(RegressorMixin, _MLPBase):
    """MLP regression (squared error) with L1, L2, Elastic-Net or input-group penalties.

    Inputs (``standardize``, the default) and targets are standardized internally, and
    predictions mapped back: the weights, penalties and ``alpha`` refer to standardized
    inputs, as in the command line's runs. Parameters:
    ``hidden_layer_sizes``, ``activation`` ("relu", "tanh", "logistic", "identity"),
    ``penalty`` ("l1", "l2", "elasticnet", "group_inputs" or None), ``alpha``, ``l1_ratio``,
    ``learning_rate`` (Adam), ``batch_size`` ("auto": min(200, n)), ``max_epochs``,
    ``early_stopping`` / ``validation_fraction`` / ``n_iter_no_change``, the path settings
    ``path_multiplier`` / ``path_epochs`` / ``max_path_points`` / ``selection_rule``,
    ``standardize``, ``random_state`` and ``device``.

    Attributes: ``model_`` (the ``nn.Sequential``, on standardized inputs), ``x_mean_`` and
    ``x_scale_`` (``[n_features]``, the inputs' standardization), ``selected_features_``,
    ``feature_importances_``, ``n_iter_`` (epochs), ``validation_loss_``, ``path_`` and
    ``alpha_`` (after :meth:`fit_path`).
    """

    _objective = training.SQUARED_ERROR

    def _encode_targets(self, y: Any) -> tuple[np.ndarray, int]:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        self._y_mean = float(y.mean())
        self._y_scale = float(y.std()) or 1.0
        return ((y - self._y_mean) / self._y_scale).astype(np.float32), 1

    def _target_tensor(self, y: np.ndarray) -> Tensor:
        return torch.as_tensor(y, dtype=torch.float32, device=self._device).reshape(-1, 1)

    def predict(self, X: Any) -> np.ndarray:
        """The fitted network's predictions.

        Args:
            X: ``[n_samples, n_features]``.

        Returns:
            ``[n_samples]``, in the units of the ``y`` it was fitted on.
        """
        out = self._forward(X).reshape(-1).cpu().numpy().astype(np.float64)
        return out * self._y_scale + self._y_mean


class MLPClassifier(ClassifierMixin, _MLPBase):
    """MLP classification (cross-entropy) with L1, L2, Elastic-Net or input-group penalties.

    Same parameters and attributes as :class:`MLPRegressor`, plus ``classes_``.
    """

    _objective = training.CROSS_ENTROPY

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
        """The class probabilities, the softmax of the network's outputs.

        Args:
            X: ``[n_samples, n_features]``.

        Returns:
            ``[n_samples, n_classes]``, in the order of ``classes_``.
        """
        return torch.softmax(self._forward(X), dim=1).cpu().numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample.

        Args:
            X: ``[n_samples, n_features]``.

        Returns:
            ``[n_samples]``, labels of ``classes_``.
        """
        winners = self._forward(X).argmax(1).cpu().numpy()
        return self.classes_[winners]
