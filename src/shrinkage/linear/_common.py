"""What every linear estimator's ``fit`` shares: input checks (data, sample weights, class
weights, penalty factors, overflow), the convergence warning, the exact least-squares solve,
and the thread scope of a fit.

The estimators accept scikit-learn's solver parameters (``solver``, ``precompute``,
``selection``, ``random_state``, ``n_jobs``, ``copy_X``, ``dual``, ``intercept_scaling``,
``verbose``) so that code written for scikit-learn runs unchanged; they do not change the
problem solved (:mod:`shrinkage.linear._params`). ``verbose`` of the cross-validated
estimators reports their progress (:mod:`shrinkage.linear._folds`).
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager
from numbers import Real
from typing import Any, Protocol

import numpy as np
import torch
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import validate_data

from .._threads import threads_for
from .._validation import check_factor
from ._design import stored_values

__all__ = [
    "check_overflow",
    "check_precomputed_gram",
    "check_sample_weight",
    "class_sample_weight",
    "fit_threads",
    "least_squares",
    "output_dtype",
    "refuse_params",
    "regression_data",
    "row_mean",
    "warn_not_converged",
]


def fit_threads(X: Any) -> AbstractContextManager[int]:
    """:func:`shrinkage._threads.threads_for` one product with the validated ``X``
    (:func:`~shrinkage.linear._design.stored_values`): a fit's set-up (centring, statistics,
    scoring) runs on the threads the data are worth and the machine leaves free, like the
    solver inside it, and torch's count is restored when the fit returns or raises."""
    return threads_for(stored_values(X))


_NOT_CONVERGED = {
    "regression": "Objective did not converge. You might want to increase the number of "
    "iterations.",
    "classification": "The max_iter was reached which means the coef_ did not converge.",
}
"""scikit-learn's opening words of the warning, for its regressors and its classifiers (those
of its solvers that are not named after one)."""


class Converging(Protocol):
    """What a fit reports of its convergence: a :class:`~shrinkage.path.PathPoint` or a
    solver's :class:`~shrinkage.linear._solver.Solution`."""

    @property
    def converged(self) -> bool: ...

    @property
    def criterion(self) -> float: ...


def warn_not_converged(point: Converging, what: str, kind: str = "regression") -> None:
    """A ``ConvergenceWarning`` (opening in scikit-learn's words, for ``kind``
    ``"regression"`` or ``"classification"``) when ``point`` stopped at ``max_iter`` before
    meeting ``tol``."""
    if not point.converged:
        warnings.warn(
            f"{_NOT_CONVERGED[kind]} {what} stopped at max_iter with its stopping criterion "
            f"at {point.criterion:.3g}; increase max_iter or tol.",
            ConvergenceWarning,
            stacklevel=3,
        )


def check_precomputed_gram(
    precompute: Any, X: Any, weights: np.ndarray | None, fit_intercept: bool
) -> None:
    """Check a Gram matrix given as ``precompute`` as scikit-learn does, though the solver
    forms its own: ``[p, p]``, and one entry equal to the product of its two columns of the
    (centred, ``sqrt(s)``-scaled, ``s`` normalized to sum to ``n``) design. When ``X`` is
    centred for the intercept, the given matrix is not the one needed: a ``UserWarning``."""
    if isinstance(precompute, (bool, str)) or sparse.issparse(X):
        return
    gram = np.asarray(precompute)
    n, p = X.shape
    if gram.shape != (p, p):
        raise ValueError(
            f"precompute: a Gram matrix of shape ({p}, {p}) is needed for X of shape "
            f"{X.shape}; got shape {gram.shape}"
        )
    s = np.ones(n) if weights is None else weights * (n / weights.sum())
    offset = np.average(X, axis=0, weights=s) if fit_intercept else np.zeros(p)
    if not np.allclose(offset, 0.0):
        warnings.warn(
            "Gram matrix was provided but X was centered to fit intercept: recomputing Gram "
            "matrix.",
            UserWarning,
            stacklevel=3,
        )
        return
    i, j = p // 2, min(p // 2 + 1, p - 1)
    root = np.sqrt(s)
    expected = float(((X[:, i] - offset[i]) * root) @ ((X[:, j] - offset[j]) * root))
    if not np.isclose(expected, gram[i, j], rtol=1e-4, atol=1e-5):
        raise ValueError(
            "Gram matrix passed in via 'precompute' parameter did not pass validation when "
            f"a single element was checked: for element ({i}, {j}) the design gives "
            f"{expected:.6g}, the given matrix {gram[i, j]:.6g}. Compute it as X^T X of the "
            "centred (and weighted) X, or leave precompute to 'auto'."
        )


def refuse_params(estimator: Any, params: dict[str, Any]) -> None:
    """scikit-learn's answer to extra ``fit`` parameters when metadata routing is off."""
    if params:
        raise ValueError(
            f"Passing extra keyword arguments to {type(estimator).__name__}.fit is only "
            f"supported if enable_metadata_routing=True; got {sorted(params)}"
        )


def output_dtype(X: Any) -> type[np.floating[Any]]:
    """The dtype of the fitted attributes: float32 for float32 input (computed in float64
    all the same), float64 otherwise."""
    return np.float32 if X.dtype == np.float32 else np.float64


def check_overflow(X: Any) -> None:
    """A ``ValueError`` when ``X``'s values are so large that centering or squaring them
    overflows float64 (the fit would return NaN otherwise)."""
    values = X.data if sparse.issparse(X) else np.asarray(X)
    if values.size == 0:
        return
    top = max(float(values.max()), -float(values.min()))  # no |X| copy
    with np.errstate(over="ignore"):
        bound = top * top * max(X.shape[0], 1)
    if not np.isfinite(bound):
        raise ValueError(
            f"X holds values as large as {top:.3g}: centering or squaring them overflows "
            "float64 (largest about 1.8e308); rescale X, for example with StandardScaler"
        )


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    """``sample_weight`` as a float64 array of shape ``[n_samples]`` (``None`` stays
    ``None``, a number is repeated); a ``ValueError`` (in scikit-learn's words) for a wrong
    shape, a negative or non-finite weight, or weights that are all zero."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, Real):
        return np.full(n_samples, float(sample_weight))
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim != 1:
        raise ValueError(
            f"Sample weights must be 1D array or scalar, got {weights.ndim}D array. Expected "
            f"either a scalar value or a 1D array of length {n_samples}."
        )
    if weights.shape != (n_samples,):
        raise ValueError(f"sample_weight.shape == {weights.shape}, expected {(n_samples,)}!")
    if not np.all(np.isfinite(weights)):
        raise ValueError("sample_weight must be finite; got NaN or infinite weights")
    if np.any(weights < 0):
        raise ValueError("Negative values in data passed to `sample_weight`")
    if not np.any(weights):
        raise ValueError("Sample weights must contain at least one non-zero number.")
    return weights


def row_mean(X: Any, weights: np.ndarray | None) -> np.ndarray:
    """The weighted mean of the rows of ``X`` (dense or scipy sparse), ``sum_i s_i x_i / sum s``.

    Args:
        X: ``[n, p]``.
        weights: ``[n]`` weights ``s``, or ``None`` for equal ones.

    Returns:
        ``[p]``.
    """
    s = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    return np.asarray(X.T @ s).ravel() / s.sum()


def regression_data(
    estimator: Any, X: Any, y: Any, sample_weight: Any, *, multi_output: bool = True
) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """``X`` (dense or CSR/CSC), ``y`` (``[n]``, or ``[n, targets]`` when ``multi_output``)
    and the sample weights, checked."""
    X, y = validate_data(
        estimator,
        X,
        y,
        accept_sparse=["csr", "csc"],
        dtype=[np.float64, np.float32],
        y_numeric=True,
        multi_output=multi_output,
    )
    check_overflow(X)
    return X, np.asarray(y, dtype=np.float64), check_sample_weight(sample_weight, X.shape[0])


def check_penalty_factor(penalty_factor: Any, n_features: int) -> np.ndarray | None:
    """``penalty_factor`` as ``[n_features]`` float64 factors (``None`` stays ``None``:
    every factor 1): the values checked by :func:`~shrinkage._validation.check_factor`, and
    one per feature, or a ``ValueError`` naming it."""
    factor = check_factor("penalty_factor", penalty_factor)
    if factor is None:
        return None
    if tuple(factor.shape) != (n_features,):
        raise ValueError(
            f"penalty_factor must hold one factor per feature ({n_features}); got shape "
            f"{tuple(factor.shape)}"
        )
    return factor.double().numpy()


def class_sample_weight(
    class_weight: Any, y: np.ndarray, sample_weight: np.ndarray | None
) -> np.ndarray | None:
    """The per-sample weights: ``sample_weight`` times each sample's class weight
    (``class_weight``: a dict ``{class: weight}``, ``"balanced"``: ``n / (n_classes *
    count)`` with the counts weighted by ``sample_weight``, or ``None``)."""
    if class_weight is None:
        return sample_weight
    classes, y_idx = np.unique(y, return_inverse=True)
    per_class = compute_class_weight(
        class_weight, classes=classes, y=y, sample_weight=sample_weight
    )
    per_sample = per_class[y_idx]
    return per_sample if sample_weight is None else per_sample * sample_weight


def least_squares(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """The minimum-norm solution of ``min ||A X - B||``: the same answer on every call, also
    for a rank-deficient ``A`` (an SVD-based solve; never LAPACK's default ``gelsy``, whose
    answer there depends on uninitialised memory)."""
    if A.device.type == "cpu":
        return torch.linalg.lstsq(A, B, driver="gelsd").solution
    return torch.linalg.pinv(A) @ B
