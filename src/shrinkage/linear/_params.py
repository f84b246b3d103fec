"""The parameters the linear estimators share, each declared once with its type, default and
constraint.

scikit-learn reads an estimator's parameters from the signature of its ``__init__``, and that
``__init__`` must only store them. Each estimator of :mod:`shrinkage.linear` is therefore a
dataclass (``eq=False``, ``repr=False``: scikit-learn's identity and ``__repr__`` stay), built
from the groups below and its own fields: its ``__init__`` is that store by construction, and
a parameter two estimators share is written once.

* :class:`SolverParams`: what every solver-backed estimator takes;
* :class:`CoordinateDescentParams`: scikit-learn's coordinate-descent options, accepted and
  not used;
* :class:`PathCVParams`: the strength grid of the cross-validated estimators and its choice;
* :class:`ElasticNetCVParams`: the three groups above, as scikit-learn's ``ElasticNetCV``
  and ``MultiTaskElasticNetCV`` share them, with ``l1_ratio`` (one or a list) and ``n_jobs``;
* :class:`LogisticParams`: what the plain and cross-validated logistic models share.

A subclass that fixes a parameter (``Lasso`` fixes ``l1_ratio = 1``) redeclares it with
``field(default=..., init=False)``: out of the signature, read from the class.

Example:
    >>> from shrinkage.linear import Lasso
    >>> sorted(Lasso(0.1).get_params())[:4]
    ['alpha', 'copy_X', 'device', 'fit_intercept']
    >>> Lasso.l1_ratio
    1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ..path import RULES

__all__ = [
    "ACCEPTED",
    "COMMON",
    "COORDINATE_DESCENT",
    "CV_COMMON",
    "ELASTIC_NET_CV",
    "L1_RATIOS",
    "CoordinateDescentParams",
    "ElasticNetCVParams",
    "LogisticParams",
    "PathCVParams",
    "SolverParams",
]

COMMON: dict[str, list[Any]] = {
    "fit_intercept": ["boolean"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device],
}
"""The constraints of :class:`SolverParams` (scikit-learn's ``_parameter_constraints``)."""

ACCEPTED: dict[str, list[Any]] = {
    "precompute": ["boolean", StrOptions({"auto"}), "array-like"],
    "copy_X": ["boolean"],
    "random_state": ["random_state"],
    "selection": [StrOptions({"cyclic", "random"})],
    "n_jobs": [Integral, None],
    "verbose": ["verbose"],
}
"""scikit-learn's solver parameters: accepted, and they do not change the answer."""

COORDINATE_DESCENT: dict[str, list[Any]] = {
    key: ACCEPTED[key] for key in ("copy_X", "random_state", "selection")
}
"""The constraints of :class:`CoordinateDescentParams`."""

CV_COMMON: dict[str, list[Any]] = {
    "eps": [Interval(Real, 0, None, closed="neither")],
    "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
    "cv": ["cv_object"],
    "selection_rule": [StrOptions(set(RULES))],
    "verbose": ["verbose"],
    **COMMON,
}
"""The constraints of :class:`PathCVParams` and :class:`SolverParams`."""

L1_RATIOS: list[Any] = [Interval(Real, 0, 1, closed="both"), "array-like"]
"""The constraint of a cross-validated ``l1_ratio``: one ratio in [0, 1], or a list to choose
from."""


@dataclass(eq=False, repr=False, kw_only=True)
class SolverParams:
    """The intercept, the solver's budget and tolerance, and the torch device it runs on."""

    fit_intercept: bool = True
    max_iter: int = 1000
    tol: float = 1e-4
    device: str = "cpu"


@dataclass(eq=False, repr=False, kw_only=True)
class CoordinateDescentParams:
    """scikit-learn's coordinate-descent options: accepted, and they do not change the answer."""

    copy_X: bool = True
    random_state: Any = None
    selection: str = "cyclic"


@dataclass(eq=False, repr=False, kw_only=True)
class PathCVParams:
    """The grid of strengths (``alphas`` of them, down to ``eps`` times the largest, or the
    values given), the folds ``cv``, the rule that picks one, and how much is printed."""

    eps: float = 1e-3
    alphas: int | Any = 100
    cv: Any = None
    selection_rule: str = "min"
    verbose: Any = 0


@dataclass(eq=False, repr=False, kw_only=True)
class ElasticNetCVParams(SolverParams, CoordinateDescentParams, PathCVParams):
    """The cross-validated Elastic Nets' parameters: the three groups, the ratio ``l1_ratio``
    (a list: chosen by the folds too), and ``n_jobs`` (accepted, one process does the work)."""

    l1_ratio: float | list[float] = 0.5
    n_jobs: int | None = None


ELASTIC_NET_CV: dict[str, list[Any]] = {
    "l1_ratio": L1_RATIOS,
    "n_jobs": [Integral, None],
    **CV_COMMON,
    **COORDINATE_DESCENT,
}
"""The constraints of :class:`ElasticNetCVParams`."""


@dataclass(eq=False, repr=False, kw_only=True)
class LogisticParams(SolverParams):
    """scikit-learn's logistic-regression options (``dual``, ``intercept_scaling``, ``solver``,
    ``random_state``, ``verbose``, ``n_jobs`` accepted, the same problem solved whatever they
    say), ``class_weight``, and glmnet's ``penalty_factor``."""

    max_iter: int = 100
    dual: bool = False
    intercept_scaling: float = 1.0
    class_weight: Any = None
    random_state: Any = None
    solver: str = "lbfgs"
    verbose: Any = 0
    n_jobs: int | None = None
    penalty_factor: Any = None


def lasso_constraints(elastic_net: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """An Elastic Net's constraints less ``l1_ratio``, which its Lasso fixes at 1.

    Args:
        elastic_net: the Elastic Net's ``_parameter_constraints``.

    Returns:
        A new dict: every other key, with its constraints.

    Example:
        >>> sorted(lasso_constraints({"alpha": [float], "l1_ratio": [float]}))
        ['alpha']
    """
    return {key: value for key, value in elastic_net.items() if key != "l1_ratio"}
