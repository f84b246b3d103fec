"""What every linear estimator shares: the parameter constraints of the solver settings, the
convergence warning, and the settings passed on to :class:`~shrinkage.linear.LinearProblem`."""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from ..path import RULES, PathPoint

__all__ = ["COMMON", "CV_COMMON", "warn_not_converged"]

COMMON: dict[str, list[Any]] = {
    "fit_intercept": ["boolean"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device],
}


def warn_not_converged(point: PathPoint, what: str) -> None:
    if not point.converged:
        warnings.warn(
            f"{what} did not converge in max_iter iterations (stopping criterion "
            f"{point.criterion:.3g}); increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )


CV_COMMON: dict[str, list[Any]] = {
    "eps": [Interval(Real, 0, None, closed="neither")],
    "cv": ["cv_object"],
    "selection_rule": [StrOptions(set(RULES))],
    **COMMON,
}
