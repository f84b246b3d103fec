"""Logistic and multinomial regression with L1, L2 or Elastic-Net penalties: scikit-learn's
``LogisticRegression``, solved in torch (:class:`~shrinkage.linear.LogisticRegressionCV` is in
``_logistic_cv``).

The penalty follows scikit-learn 1.8's API: ``l1_ratio`` alone chooses it (0: L2, 1: L1, in
between: Elastic Net) and ``C=np.inf`` means none; the old ``penalty=`` spelling is accepted
with the same ``FutureWarning`` as scikit-learn's.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_device
from ..path import path
from ._common import (
    check_overflow,
    check_penalty_factor,
    check_sample_weight,
    class_sample_weight,
    fit_threads,
    output_dtype,
    warn_not_converged,
)
from ._params import COMMON, LogisticParams
from ._problem import LinearProblem, as_problem_kwargs

__all__ = ["LogisticRegression", "logistic_problem", "resolve_penalty"]

SOLVERS = {"lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag", "saga"}
_DEPRECATED_PENALTY = (
    "'penalty' was deprecated in version 1.8 and will be removed in 1.10. To avoid this "
    "warning, leave 'penalty' set to its default value and use 'l1_ratio' or 'C' instead. "
    "Use l1_ratio=0 instead of penalty='l2', l1_ratio=1 instead of penalty='l1', l1_ratio "
    "set to a float between 0 and 1 instead of penalty='elasticnet', and C=np.inf instead "
    "of penalty=None."
)


def resolve_penalty(
    penalty: Any, l1_ratio: Any, C: float, n_jobs: Any = None
) -> tuple[float, float]:
    """``(C, l1_ratio)`` of the problem from scikit-learn 1.8's parameters (``C = inf``: no
    penalty), with scikit-learn's warnings: ``penalty`` other than ``"deprecated"`` (the old
    spelling, which decides over ``l1_ratio``), ``l1_ratio=None``, an ``l1_ratio`` the penalty
    ignores, ``n_jobs``."""
    if penalty == "deprecated":
        if l1_ratio is None:
            warnings.warn(
                "'l1_ratio=None' was deprecated in version 1.8 and will trigger an error in "
                "1.10. Use 0<=l1_ratio<=1 instead.",
                FutureWarning,
                stacklevel=3,
            )
        ratio = 0.0 if l1_ratio is None else float(l1_ratio)
        name: str | None = "l2" if ratio == 0 else "l1" if ratio == 1 else "elasticnet"
        if math.isinf(C):
            name = None
    else:
        warnings.warn(_DEPRECATED_PENALTY, FutureWarning, stacklevel=3)
        name = penalty
    if name != "elasticnet" and l1_ratio is not None and 0 < l1_ratio < 1:
        warnings.warn(
            f"l1_ratio parameter is only used when penalty is 'elasticnet'. Got (penalty={name})",
            stacklevel=3,
        )
    if (penalty == "l2" and l1_ratio != 0) or (penalty == "l1" and l1_ratio != 1):
        warnings.warn(
            f"Inconsistent values: penalty={penalty} with l1_ratio={l1_ratio}. penalty is "
            "deprecated. Please use l1_ratio only.",
            stacklevel=3,
        )
    if name == "elasticnet" and l1_ratio is None:
        raise ValueError("l1_ratio must be specified when penalty is elasticnet.")
    if n_jobs is not None:
        warnings.warn(
            "'n_jobs' has no effect since 1.8 and will be removed in 1.10. You provided "
            f"'n_jobs={n_jobs}', please leave it unspecified.",
            FutureWarning,
            stacklevel=3,
        )
    if name is None:
        if penalty is None and C != 1.0:
            warnings.warn(
                "Setting penalty=None will ignore the C and l1_ratio parameters", stacklevel=3
            )
        return math.inf, 0.0
    return float(C), {"l1": 1.0, "l2": 0.0}.get(name, float(l1_ratio or 0.0))


def logistic_problem(
    estimator: Any,
    X: Any,
    y_idx: np.ndarray,
    n_classes: int,
    l1_ratio: float,
    sample_weight: np.ndarray | None = None,
    finish: bool = True,
    penalty_factor: np.ndarray | None = None,
) -> LinearProblem:
    """The logistic (two classes) or multinomial problem of ``X [n, p]`` (dense or sparse) and
    class indices ``y_idx [n]``, with ``estimator``'s solver settings (``finish``: see
    :class:`~shrinkage.linear.LinearProblem`; ``False`` for cross-validation paths)."""
    return LinearProblem(
        X,
        y_idx,
        loss="logistic" if n_classes == 2 else "multinomial",
        l1_ratio=l1_ratio,
        n_classes=n_classes,
        sample_weight=sample_weight,
        finish=finish,
        penalty_factor=penalty_factor,
        **as_problem_kwargs(estimator),
    )


def strength(C: float, weights: np.ndarray | None, n_samples: int) -> float:
    """``lam = 1 / (C * sum s)``: scikit-learn's ``C sum_i s_i loss_i + r(w)`` divided by
    ``C sum s`` (the weighted mean loss plus ``lam * r(w)``); 0 for ``C = inf``."""
    total = float(n_samples if weights is None else weights.sum())
    return 0.0 if math.isinf(C) else 1.0 / (C * total)


class LogisticClassifier(ClassifierMixin, BaseEstimator):
    """What a fitted logistic model does with ``coef_`` and ``intercept_``: its decision
    function, probabilities and predictions, and ``sparsify`` / ``densify``."""

    coef_: Any
    intercept_: np.ndarray
    classes_: np.ndarray

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: ``[n_samples]`` for two classes, ``[n_samples, n_classes]`` otherwise."""
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32], reset=False
        )
        coef = self.coef_
        scores = np.asarray(X @ (coef.T if not sparse.issparse(coef) else coef.T.toarray()))
        scores = scores + self.intercept_
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

    def sparsify(self) -> Any:
        """Store ``coef_`` as a sparse matrix; returns ``self``."""
        check_is_fitted(self)
        self.coef_ = sparse.csr_matrix(self.coef_)
        return self

    def densify(self) -> Any:
        """Store ``coef_`` as a dense array again; returns ``self``."""
        check_is_fitted(self)
        if sparse.issparse(self.coef_):
            self.coef_ = self.coef_.toarray()
        return self

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def classification_data(
    estimator: Any, X: Any, y: Any, sample_weight: Any
) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray | None]:
    """``X`` (dense or sparse), the classes, ``y`` as class indices, the sample weights
    (class weights included), checked."""
    X, y = validate_data(
        estimator, X, y, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32]
    )
    check_overflow(X)
    check_classification_targets(y)
    classes, y_idx = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            "This solver needs samples of at least 2 classes in the data, but the data "
            f"contains only one class: {classes[0]}"
        )
    weights = check_sample_weight(sample_weight, X.shape[0])
    class_weight = estimator.class_weight
    if isinstance(class_weight, dict):
        unknown = set(class_weight) - set(classes)
        if unknown:
            raise ValueError(
                "The given class_weight dict must have the class labels as keys; "
                f"classes={classes} but key={sorted(unknown)}"
            )
    weights = class_sample_weight(class_weight, y, weights)
    return X, classes, y_idx, weights


_LOGISTIC: dict[str, list[Any]] = {
    "penalty": [StrOptions({"l1", "l2", "elasticnet"}), None, Hidden(StrOptions({"deprecated"}))],
    "penalty_factor": ["array-like", None],
    "C": [Interval(Real, 0, None, closed="right")],
    "l1_ratio": [Interval(Real, 0, 1, closed="both"), None],
    "dual": ["boolean"],
    "intercept_scaling": [Interval(Real, 0, None, closed="neither")],
    "class_weight": [dict, StrOptions({"balanced"}), None],
    "random_state": ["random_state"],
    "solver": [StrOptions(SOLVERS)],
    "verbose": ["verbose"],
    "warm_start": ["boolean"],
    "n_jobs": [None, Interval(Real, None, None, closed="neither")],
    **COMMON,
    "max_iter": [Interval(Integral, 0, None, closed="left")],
}
"""``max_iter=0`` is allowed, as in scikit-learn: the fit is then the starting point (every
coefficient zero, the intercepts at their optimum)."""


@dataclass(eq=False, repr=False, kw_only=True)
class LogisticRegression(LogisticClassifier, LogisticParams):
    """Logistic regression with scikit-learn's objective, L1, L2 or Elastic-Net penalized.

    The objective is ``C * sum_i s_i loss_i + r(w)`` with
    ``r(w) = l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||^2`` and sample weights ``s``
    (times ``class_weight``). Binary targets use the logistic loss, more classes the
    multinomial loss. The intercept is not penalized, and ``X`` may be sparse. It is solved by
    proximal gradient with Newton's method on the support.

    Args:
        C: the inverse strength; ``np.inf`` for no penalty.
        l1_ratio: ``0`` for L2 (the default), ``1`` for L1, in between for the Elastic Net.
        tol: stop when the optimality distance of the objective divided by ``C sum s`` is
            at most this.
        fit_intercept, class_weight, max_iter, warm_start: as in scikit-learn.
        penalty_factor: ``[n_features]``, each ``c_j >= 0``: feature ``j``'s penalty (all
            its classes' coefficients) weighed by ``c_j``, ``0`` leaving it unpenalized.
        device: the torch device to compute on.
        penalty: scikit-learn's deprecated spelling (``"l1"``, ``"l2"``, ``"elasticnet"``,
            ``None``), which decides over ``l1_ratio``, with scikit-learn's warning.
        solver, dual, intercept_scaling, random_state, verbose, n_jobs: accepted for
            scikit-learn's sake; the same problem is solved whatever they say (the
            intercept is never penalized, as ``liblinear`` would).

    Attributes:
        classes_: ``[n_classes]``, the labels.
        coef_: ``[1, n_features]`` for two classes, ``[n_classes, n_features]`` for more.
        intercept_: ``[1]`` or ``[n_classes]`` (centred to sum to zero for more classes).
        n_iter_: the solver's iterations.

    Example:
        >>> from sklearn.datasets import load_breast_cancer
        >>> from sklearn.preprocessing import scale
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> model = LogisticRegression(C=0.1, l1_ratio=1.0).fit(scale(X), y)
        >>> int((model.coef_ != 0).sum()) < X.shape[1]
        True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = _LOGISTIC

    penalty: Any = field(default="deprecated", kw_only=False)
    C: float = 1.0
    l1_ratio: float | None = 0.0
    intercept_scaling: float = 1
    warm_start: bool = False

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogisticRegression:
        """Fit the model.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (CSR or CSC).
            y: ``[n_samples]``, the class labels (two or more classes).
            sample_weight: ``[n_samples]``, or ``None`` for ones (times ``class_weight``).

        Returns:
            ``self``.
        """
        self._validate_params()
        check_device(self.device)
        C, l1_ratio = resolve_penalty(self.penalty, self.l1_ratio, self.C, self.n_jobs)
        X, self.classes_, y_idx, weights = classification_data(self, X, y, sample_weight)
        with fit_threads(X):  # on the threads the data are worth
            factor = check_penalty_factor(self.penalty_factor, X.shape[1])
            problem = logistic_problem(
                self, X, y_idx, len(self.classes_), l1_ratio, weights, penalty_factor=factor
            )
            warm = None
            coef: Any = getattr(self, "coef_", None)
            if self.warm_start and coef is not None:
                coef = np.atleast_2d(coef.toarray() if sparse.issparse(coef) else coef)
                rows = 1 if len(self.classes_) == 2 else len(self.classes_)
                if coef.shape == (rows, X.shape[1]):
                    intercept = getattr(self, "intercept_", np.zeros(rows))
                    warm = problem.state_from(coef, intercept)
            lam = strength(C, weights, X.shape[0])
            (point,) = path(problem, [lam], initial_state=warm)
            warn_not_converged(point, "LogisticRegression", "classification")
            assert point.coef is not None
            dtype = output_dtype(X)
            self.coef_ = np.atleast_2d(point.coef).astype(dtype)
            self.intercept_ = np.asarray(point.intercept, dtype=dtype).reshape(-1)
            self.n_iter_ = np.array([point.n_iter])
            self.path_ = [point]
            return self
