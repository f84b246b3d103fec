"""Logistic and multinomial regression with L1, L2 or Elastic-Net penalties: scikit-learn's
``LogisticRegression`` and ``LogisticRegressionCV``, solved in torch."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_device
from ..path import RULES, PathPoint, choose_from_paths, path
from ._common import COMMON, warn_not_converged
from ._problem import LinearProblem, as_problem_kwargs

__all__ = ["LogisticRegression", "LogisticRegressionCV", "logistic_problem"]


def logistic_problem(
    estimator: Any, X: np.ndarray, y_idx: np.ndarray, n_classes: int, l1_ratio: float
) -> LinearProblem:
    """The logistic (two classes) or multinomial problem of ``X [n, p]`` and class indices
    ``y_idx [n]``, with ``estimator``'s solver settings."""
    return LinearProblem(
        X,
        y_idx,
        loss="logistic" if n_classes == 2 else "multinomial",
        l1_ratio=l1_ratio,
        n_classes=n_classes,
        **as_problem_kwargs(estimator),
    )


class LogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression with scikit-learn's objective ``C * sum_i loss_i + r(w)``:

    * ``penalty="l2"``: ``r(w) = ||w||^2 / 2``; ``"l1"``: ``||w||_1``;
    * ``"elasticnet"``: ``l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||^2``;
    * ``None``: no penalty.

    Binary targets use the logistic loss (``coef_ [1, n_features]``); more classes the
    multinomial loss (``coef_ [n_classes, n_features]``). The intercept is not penalized.
    Solved by proximal gradient with Newton polishing, stopping when the optimality distance
    of the objective divided by ``C n`` is at most ``tol``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "penalty": [StrOptions({"l1", "l2", "elasticnet"}), None],
        "C": [Interval(Real, 0, None, closed="neither")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), None],
        "warm_start": ["boolean"],
        **COMMON,
    }

    def __init__(
        self,
        penalty: str | None = "l2",
        *,
        C: float = 1.0,
        l1_ratio: float | None = None,
        fit_intercept: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
        warm_start: bool = False,
        device: str = "cpu",
    ) -> None:
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.device = device

    def _effective_l1_ratio(self) -> float:
        if self.penalty == "elasticnet":
            if self.l1_ratio is None:
                raise ValueError(
                    "l1_ratio must be a number in [0, 1] when penalty='elasticnet'; got None"
                )
            return float(self.l1_ratio)
        return 1.0 if self.penalty == "l1" else 0.0

    def fit(self, X: Any, y: Any) -> LogisticRegression:
        """Fit on ``X [n_samples, n_features]`` and class labels ``y [n_samples]``."""
        self._validate_params()
        check_device(self.device)
        l1_ratio = self._effective_l1_ratio()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_[0]}"
            )
        problem = logistic_problem(self, X, y_idx, len(self.classes_), l1_ratio)
        lam = 0.0 if self.penalty is None else 1.0 / (self.C * X.shape[0])
        warm = None
        if self.warm_start and hasattr(self, "coef_") and self.coef_.shape[1] == X.shape[1]:
            warm = problem.state_from(self.coef_, self.intercept_)
        (point,) = path(problem, [lam], initial_state=warm)
        warn_not_converged(point, "LogisticRegression")
        assert point.coef is not None
        self.coef_: np.ndarray = np.atleast_2d(point.coef)
        self.intercept_: np.ndarray = np.asarray(point.intercept, dtype=float).reshape(-1)
        self.n_iter_ = np.array([point.n_iter])
        self.path_ = [point]
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: ``[n_samples]`` for two classes, ``[n_samples, n_classes]`` otherwise."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, ``[n_samples, n_classes]``."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-scores))
            return np.column_stack([1 - p, p])
        scores = scores - scores.max(axis=1, keepdims=True)
        e = np.exp(scores)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]


class LogisticRegressionCV(ClassifierMixin, BaseEstimator):
    """Logistic regression with ``C`` (and ``l1_ratio``) chosen by K-fold CV.

    ``Cs`` is an int (that many values log-spaced in ``[1e-4, 1e4]``, as scikit-learn) or a
    list. Each fold's training part is fitted along the ``Cs`` with warm starts by
    :func:`shrinkage.path` (strongest penalty first) and scored by ``scoring``
    (``"accuracy"`` or ``"neg_log_loss"``) on its held-out part; ``selection_rule`` picks the
    best mean (``"min"``) or the strongest penalty within one standard error (``"1se"``).

    Attributes: ``C_`` (``[1]``), ``l1_ratio_`` (``[1]``), ``Cs_``, ``scores_``
    (``[n_folds, n_Cs]``, or ``[n_folds, n_Cs, n_l1_ratios]``), ``coef_``, ``intercept_``,
    ``classes_``, ``n_iter_``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "Cs": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "penalty": [StrOptions({"l1", "l2", "elasticnet"})],
        "l1_ratios": ["array-like", None],
        "scoring": [StrOptions({"accuracy", "neg_log_loss"})],
        "cv": ["cv_object"],
        "selection_rule": [StrOptions(set(RULES))],
        **COMMON,
    }

    def __init__(
        self,
        *,
        Cs: int | Any = 10,
        penalty: str = "l2",
        l1_ratios: Any = None,
        fit_intercept: bool = True,
        cv: Any = None,
        scoring: str = "accuracy",
        tol: float = 1e-4,
        max_iter: int = 1000,
        selection_rule: str = "min",
        device: str = "cpu",
    ) -> None:
        self.Cs = Cs
        self.penalty = penalty
        self.l1_ratios = l1_ratios
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.scoring = scoring
        self.tol = tol
        self.max_iter = max_iter
        self.selection_rule = selection_rule
        self.device = device

    def fit(self, X: Any, y: Any) -> LogisticRegressionCV:
        """Cross-validate the ``Cs`` (and ``l1_ratios``), pick ``C_``, refit on all data."""
        self._validate_params()
        check_device(self.device)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_[0]}"
            )
        Cs = (
            np.logspace(-4, 4, int(self.Cs))
            if isinstance(self.Cs, Integral)
            else np.asarray(self.Cs, float)
        )
        if Cs.size == 0 or np.any(Cs <= 0) or not np.all(np.isfinite(Cs)):
            raise ValueError(f"Cs must be a positive int or a list of C > 0, got {self.Cs!r}")
        order = np.argsort(Cs)  # smallest C = strongest penalty first, for warm starts
        if self.penalty == "elasticnet":
            if self.l1_ratios is None:
                raise ValueError(
                    "l1_ratios must be a list of numbers in [0, 1] when penalty='elasticnet'"
                )
            ratios = [float(r) for r in np.atleast_1d(self.l1_ratios)]
        else:
            ratios = [1.0 if self.penalty == "l1" else 0.0]
        folds = list(check_cv(self.cv, y, classifier=True).split(X, y_idx))
        metric = "score" if self.scoring == "accuracy" else "loss"
        scores = np.zeros((len(folds), len(Cs), len(ratios)))
        paths: list[list[list[PathPoint]]] = [[] for _ in ratios]  # [ratio][fold][C]
        for f, (train, test) in enumerate(folds):
            for r, ratio in enumerate(ratios):
                problem = logistic_problem(self, X[train], y_idx[train], len(self.classes_), ratio)
                lams = 1.0 / (Cs[order] * len(train))
                points = path(problem, lams, validation=(X[test], y_idx[test]))
                paths[r].append(points)
                for k, point in zip(order, points, strict=True):
                    assert point.val_loss is not None and point.val_score is not None
                    scores[f, k, r] = (
                        point.val_score if self.scoring == "accuracy" else -point.val_loss
                    )
        best_by_ratio = [scores[:, :, r].mean(axis=0).max() for r in range(len(ratios))]
        r = int(np.argmax(best_by_ratio))
        i = order[choose_from_paths(paths[r], metric=metric).index(self.selection_rule)]
        self.Cs_ = Cs
        self.C_ = np.array([Cs[i]])
        self.l1_ratio_ = np.array([ratios[r]])
        self.scores_ = scores[:, :, 0] if len(ratios) == 1 else scores
        final = LogisticRegression(
            self.penalty,
            C=float(Cs[i]),
            l1_ratio=ratios[r],
            fit_intercept=self.fit_intercept,
            tol=self.tol,
            max_iter=self.max_iter,
            device=self.device,
        ).fit(X, y)
        self.coef_, self.intercept_, self.n_iter_ = final.coef_, final.intercept_, final.n_iter_
        self.path_ = final.path_
        self._final = final
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits of the refitted model."""
        check_is_fitted(self)
        validate_data(self, X, dtype=np.float64, reset=False)
        return self._final.decision_function(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the refitted model."""
        check_is_fitted(self)
        validate_data(self, X, dtype=np.float64, reset=False)
        return self._final.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted classes of the refitted model."""
        check_is_fitted(self)
        validate_data(self, X, dtype=np.float64, reset=False)
        return self._final.predict(X)
