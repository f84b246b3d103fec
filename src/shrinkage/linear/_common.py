"""What every linear estimator shares: parameter constraints, input checks (data, sample
weights, class weights, overflow), the convergence warning, the exact least-squares solve, the
thread scope of a fit, and the settings passed on to :class:`~shrinkage.linear.LinearProblem`.

The estimators accept scikit-learn's solver parameters (``solver``, ``precompute``,
``selection``, ``random_state``, ``n_jobs``, ``copy_X``, ``dual``, ``intercept_scaling``,
``verbose``) so that code written for scikit-learn runs unchanged; they do not change the
problem solved, and shrinkage's own solver is used whatever they say. ``verbose`` of the
cross-validated estimators reports their progress (:func:`fold_reports`).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Protocol

import numpy as np
import torch
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_scalar
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import validate_data

from .._threads import threads_for
from .._validation import check_factor
from ..path import RULES, PathPoint, lambda_grid
from ._design import stored_values

__all__ = [
    "ACCEPTED",
    "COMMON",
    "CV_COMMON",
    "alpha_grid",
    "check_l1_ratios",
    "check_overflow",
    "check_precomputed_gram",
    "check_sample_weight",
    "class_sample_weight",
    "fit_threads",
    "fold_reports",
    "least_squares",
    "output_dtype",
    "refuse_params",
    "regression_data",
    "report",
    "report_choice",
    "row_mean",
    "warn_not_converged",
]

COMMON: dict[str, list[Any]] = {
    "fit_intercept": ["boolean"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device],
}

ACCEPTED: dict[str, list[Any]] = {
    "precompute": ["boolean", StrOptions({"auto"}), "array-like"],
    "copy_X": ["boolean"],
    "random_state": ["random_state"],
    "selection": [StrOptions({"cyclic", "random"})],
    "n_jobs": [Integral, None],
    "verbose": ["verbose"],
}
"""scikit-learn's solver parameters, accepted and not used (see the module docstring)."""


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


CV_COMMON: dict[str, list[Any]] = {
    "eps": [Interval(Real, 0, None, closed="neither")],
    "cv": ["cv_object"],
    "selection_rule": [StrOptions(set(RULES))],
    **COMMON,
}


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
    estimator: Any,
    X: Any,
    y: Any,
    sample_weight: Any,
    *,
    reset: bool = True,
    multi_output: bool = True,
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
        reset=reset,
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
