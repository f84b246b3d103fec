"""Logistic regression with ``C`` (and ``l1_ratio``) chosen by cross-validation:
scikit-learn's ``LogisticRegressionCV``, with its 1.9 parameters and both layouts of its fitted
attributes (``use_legacy_attributes``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn import config_context
from sklearn.metrics import get_scorer
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Hidden, Interval, StrOptions

from .._validation import check_device
from ..path import RULES, PathPoint, choose, path
from ._common import (
    check_penalty_factor,
    fit_threads,
    output_dtype,
    refuse_params,
    warn_not_converged,
)
from ._folds import fold_reports, report_choice
from ._logistic import (
    _DEPRECATED_PENALTY,
    SOLVERS,
    LogisticClassifier,
    LogisticRegression,
    classification_data,
    logistic_problem,
    strength,
)
from ._params import COMMON, LogisticParams

__all__ = ["LogisticRegressionCV"]


def _resolve(penalty: Any, l1_ratios: Any) -> tuple[str, list[float | None]]:
    """The penalty's name and the ``l1_ratios_`` to try (``[None]``: not an Elastic Net),
    from scikit-learn 1.8's parameters, with its warnings."""
    if isinstance(l1_ratios, str) and l1_ratios == "warn":
        warnings.warn(
            "The default value for l1_ratios will change from None to (0.0,) in version "
            "1.10. From version 1.10 onwards, only array-like with values in [0, 1] will be "
            "allowed, None will be forbidden. To avoid this warning, explicitly set a value, "
            "e.g. l1_ratios=(0,).",
            FutureWarning,
            stacklevel=3,
        )
        l1_ratios = None
    elif l1_ratios is None and penalty == "deprecated":
        warnings.warn(
            "'l1_ratios=None' was deprecated in version 1.8 and will trigger an error in "
            "1.10. Use an array-like with values in [0, 1] instead.",
            FutureWarning,
            stacklevel=3,
        )
    if penalty == "deprecated":
        if l1_ratios is None:
            return "l2", [None]
        values = np.asarray(l1_ratios, dtype=object)
        name = "l2" if np.all(values == 0) else "l1" if np.all(values == 1) else "elasticnet"
    else:
        warnings.warn(_DEPRECATED_PENALTY, FutureWarning, stacklevel=3)
        name = penalty
    if name == "elasticnet":
        if (
            l1_ratios is None
            or len(l1_ratios) == 0
            or any(not isinstance(r, Real) or not 0 <= float(r) <= 1 for r in l1_ratios)
        ):
            raise ValueError(
                f"l1_ratios must be an array-like of numbers between 0 and 1; got "
                f"(l1_ratios={l1_ratios!r})"
            )
        return name, [float(r) for r in l1_ratios]
    if l1_ratios is not None and penalty != "deprecated":
        warnings.warn(
            f"l1_ratios parameter is only used when penalty is 'elasticnet'. Got (penalty={name})",
            stacklevel=3,
        )
    return name, [None] if l1_ratios is None else [float(r) for r in l1_ratios]


@dataclass(eq=False, repr=False, kw_only=True)
class LogisticRegressionCV(LogisticClassifier, LogisticParams):
    """Logistic regression with ``C`` (and ``l1_ratio``) chosen by K-fold CV.

    ``Cs`` is an int (that many values log-spaced in ``[1e-4, 1e4]``, as scikit-learn) or a
    list. Each fold's training part is fitted along the ``Cs`` with warm starts by
    :func:`shrinkage.path` (strongest penalty first) and scored by ``scoring`` on its held-out
    part (accuracy by default, weighted by ``sample_weight``; any scikit-learn scorer).
    ``refit=True`` keeps the best ``(C, l1_ratio)`` of the summed scores (``selection_rule``
    ``"1se"``: the strongest ``C`` within one standard error of it) and refits on all the data
    from the folds' mean coefficients there; ``refit=False`` averages the folds' best
    coefficients. ``verbose=1`` reports each fold's path on standard error as it ends, and
    the choice before the refit; ``verbose=2`` each point too.

    Attributes (scikit-learn 1.9's; see ``use_legacy_attributes``): ``C_``, ``l1_ratio_``,
    ``Cs_``, ``l1_ratios_``, ``scores_``, ``coefs_paths_``, ``n_iter_``, ``coef_``,
    ``intercept_``, ``classes_``.

    ``penalty_factor`` (``[n_features]``, each ``c_j >= 0``) weighs feature ``j``'s penalty
    (all its classes), as :class:`~shrinkage.linear.LogisticRegression`'s does.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "Cs": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "l1_ratios": ["array-like", None, Hidden(StrOptions({"warn"}))],
        "cv": ["cv_object"],
        "dual": ["boolean"],
        "penalty": [StrOptions({"l1", "l2", "elasticnet"}), Hidden(StrOptions({"deprecated"}))],
        "scoring": [str, callable, None, Hidden(StrOptions({"warn"}))],
        "solver": [StrOptions(SOLVERS)],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "n_jobs": [None, Interval(Real, None, None, closed="neither")],
        "verbose": ["verbose"],
        "refit": ["boolean"],
        "intercept_scaling": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
        "use_legacy_attributes": ["boolean", Hidden(StrOptions({"warn"}))],
        "selection_rule": [StrOptions(set(RULES))],
        "penalty_factor": ["array-like", None],
        **COMMON,
    }

    Cs: int | Any = 10
    l1_ratios: Any = "warn"
    cv: Any = None
    penalty: Any = "deprecated"
    scoring: Any = "warn"
    refit: bool = True
    use_legacy_attributes: Any = "warn"
    selection_rule: str = "min"

    def _scoring(self) -> Any:
        if isinstance(self.scoring, str) and self.scoring == "warn":
            warnings.warn(
                "The default value of the parameter 'scoring' will change from None, i.e. "
                "accuracy, to 'neg_log_loss' in version 1.11. To silence this warning, "
                "explicitly set the scoring parameter.",
                FutureWarning,
                stacklevel=3,
            )
            return None
        return self.scoring

    def _legacy(self) -> bool:
        if isinstance(self.use_legacy_attributes, str):
            warnings.warn(
                f"The fitted attributes of {type(self).__name__} will be simplified in "
                "scikit-learn 1.10 to remove redundancy. Set `use_legacy_attributes=False` to "
                "enable the new behavior now, or set it to `True` to silence this warning. "
                "The default value of use_legacy_attributes will change from True to False "
                "in scikit-learn 1.10.",
                FutureWarning,
                stacklevel=3,
            )
            return True
        return bool(self.use_legacy_attributes)

    def _grid_of_Cs(self) -> np.ndarray:
        Cs = (
            np.logspace(-4, 4, int(self.Cs))
            if isinstance(self.Cs, Integral)
            else np.asarray(self.Cs, float).ravel()
        )
        if Cs.size == 0 or np.any(Cs <= 0) or np.any(np.isnan(Cs)):
            raise ValueError(f"Cs must be a positive int or a list of C > 0, got {self.Cs!r}")
        return Cs

    def fit(self, X: Any, y: Any, sample_weight: Any = None, **params: Any) -> Any:
        """Cross-validate the ``Cs`` (and ``l1_ratios``), pick ``C_``, refit on all the data.

        Args:
            X: ``[n_samples, n_features]``, dense or scipy sparse (CSR or CSC).
            y: ``[n_samples]``, the class labels.
            sample_weight: ``[n_samples]``, or ``None`` for ones.
            **params: refused with scikit-learn's error (no metadata routing).

        Returns:
            ``self``.
        """
        refuse_params(self, params)
        self._validate_params()
        check_device(self.device)
        name, ratios_given = _resolve(self.penalty, self.l1_ratios)
        scoring, legacy = self._scoring(), self._legacy()
        X, self.classes_, y_idx, weights = classification_data(self, X, y, sample_weight)
        self._factor = check_penalty_factor(self.penalty_factor, X.shape[1])
        with fit_threads(X):  # on the threads the data are worth
            y_raw = self.classes_[y_idx]
            score_weights = None if sample_weight is None else np.asarray(sample_weight, float)
            ratios = [r if r is not None else (1.0 if name == "l1" else 0.0) for r in ratios_given]
            Cs = self._grid_of_Cs()
            order = np.argsort(Cs, kind="stable")  # smallest C = strongest penalty first
            folds = list(check_cv(self.cv, y_raw, classifier=True).split(X, y_raw))
            n_classes = len(self.classes_)
            rows = 1 if n_classes == 2 else n_classes
            n_dof = X.shape[1] + int(self.fit_intercept)
            scores = np.zeros((len(folds), len(Cs), len(ratios)))
            coefs = np.zeros((len(folds), len(Cs), len(ratios), rows, n_dof))
            n_iter = np.zeros((len(folds), len(Cs), len(ratios)), dtype=int)
            shown = ratios if len(ratios) > 1 else [None] * len(ratios)
            reports = [fold_reports(self, Cs[order], len(folds), r, "C") for r in shown]
            for f, (train, test) in enumerate(folds):
                w_train = None if weights is None else weights[train]
                w_test = None if score_weights is None else score_weights[test]
                for r, ratio in enumerate(ratios):
                    problem = logistic_problem(
                        self, X[train], y_idx[train], n_classes, ratio, w_train, finish=False,
                        penalty_factor=self._factor,
                    )  # fmt: skip
                    lams = [strength(C, w_train, len(train)) for C in Cs[order]]
                    validation = (X[test], y_idx[test], w_test)
                    points = path(problem, lams, validation=validation, progress=reports[r][f])
                    for k, point in zip(order, points, strict=True):
                        coefs[f, k, r] = _flat(point, self.fit_intercept)
                        n_iter[f, k, r] = point.n_iter
                        scores[f, k, r] = self._score(point, scoring, X[test], y_raw[test], w_test)
            self.Cs_ = Cs
            self.l1_ratios_ = np.asarray(ratios_given)
            grids = (Cs, ratios, ratios_given, name)
            w, best_C, best_ratio = self._chosen(scores, coefs, grids, (X, y_idx, weights))
            dtype = output_dtype(X)
            self.coef_ = w[:, : X.shape[1]].astype(dtype)
            self.intercept_ = (w[:, -1] if self.fit_intercept else np.zeros(rows)).astype(dtype)
            self._attributes(legacy, name, best_C, best_ratio, scores, coefs, n_iter)
            return self

    def _chosen(
        self,
        scores: np.ndarray,
        coefs: np.ndarray,
        grids: tuple[np.ndarray, list[float], Any, str],
        data: tuple[Any, np.ndarray, np.ndarray | None],
    ) -> tuple[np.ndarray, float, Any]:
        """The coefficients kept, with their ``C`` and ``l1_ratio``, as scikit-learn keeps them.

        Args:
            scores: ``[n_folds, n_Cs, n_ratios]`` validation scores.
            coefs: ``[n_folds, n_Cs, n_ratios, rows, n_dof]`` the folds' coefficients.
            grids: ``(Cs, ratios, ratios as given, penalty name)``.
            data: ``(X, class indices, sample weights)`` for the refit.

        Returns:
            ``(w [rows, n_dof], C, l1_ratio)``: under ``refit``, the refit on all the data at
            the best mean score; otherwise the average of each fold's best, and of their
            ``C`` and ``l1_ratio``.
        """
        Cs, ratios, ratios_given, name = grids
        if self.refit:
            c, r = self._best(scores, Cs)
            report_choice(self, C_=Cs[c], l1_ratio_=ratios[r] if len(ratios) > 1 else None)
            start = coefs[:, c, r].mean(axis=0)
            X, y_idx, weights = data
            return (
                self._refit(X, y_idx, weights, Cs[c], ratios[r], start),
                float(Cs[c]),
                ratios_given[r],
            )
        flat = scores.reshape(len(scores), -1).argmax(axis=1)
        picks = [np.unravel_index(i, scores.shape[1:]) for i in flat]
        w = np.mean([coefs[f, c, r] for f, (c, r) in enumerate(picks)], axis=0)
        best_C = float(np.mean([Cs[c] for c, _ in picks]))
        mean_ratio = float(np.mean([ratios[r] for _, r in picks]))
        return w, best_C, mean_ratio if name == "elasticnet" else 0.0

    def _score(
        self, point: PathPoint, scoring: Any, X: Any, y: np.ndarray, weights: np.ndarray | None
    ) -> float:
        """The point's validation score: from its record for accuracy and the log-loss, else
        from ``scoring`` called on an estimator holding the point's coefficients."""
        assert point.val_loss is not None and point.val_score is not None
        if scoring in (None, "accuracy"):
            return float(point.val_score)
        if scoring == "neg_log_loss":
            return -float(point.val_loss)
        model = LogisticRegression(fit_intercept=self.fit_intercept)
        model.classes_, model.n_features_in_ = self.classes_, X.shape[1]
        assert point.coef is not None
        model.coef_ = np.atleast_2d(point.coef)
        model.intercept_ = np.asarray(point.intercept, dtype=float).reshape(-1)
        return _call_scorer(get_scorer(scoring), model, X, y, weights, self.classes_)

    def _best(self, scores: np.ndarray, Cs: np.ndarray) -> tuple[int, int]:
        """``(C index, ratio index)``: the best of the summed scores; with ``"1se"``, the
        strongest ``C`` within one standard error of it for that ratio."""
        total = scores.sum(axis=0)  # [n_Cs, n_ratios]
        best_c, best_r = np.unravel_index(int(np.argmax(total)), total.shape)
        c, r = int(best_c), int(best_r)
        if self.selection_rule == "1se":
            c = choose(scores[:, :, r].T, 1.0 / Cs, larger_is_better=True).one_se
        return c, r

    def _refit(
        self,
        X: Any,
        y_idx: np.ndarray,
        weights: np.ndarray | None,
        C: float,
        ratio: float,
        start: np.ndarray,
    ) -> np.ndarray:
        problem = logistic_problem(
            self, X, y_idx, len(self.classes_), ratio, weights, penalty_factor=self._factor
        )
        intercept = start[:, -1] if self.fit_intercept else np.zeros(start.shape[0])
        warm = problem.state_from(start[:, : X.shape[1]], intercept)
        (point,) = path(problem, [strength(C, weights, X.shape[0])], initial_state=warm)
        warn_not_converged(point, type(self).__name__, "classification")
        self.path_ = [point]
        return _flat(point, self.fit_intercept)

    def _attributes(
        self,
        legacy: bool,
        name: str,
        best_C: float,
        best_ratio: Any,
        scores: np.ndarray,
        coefs: np.ndarray,
        n_iter: np.ndarray,
    ) -> None:
        """``C_``, ``l1_ratio_``, ``scores_``, ``coefs_paths_`` and ``n_iter_`` in
        scikit-learn 1.9's layouts."""
        self.C_: Any
        self.l1_ratio_: Any
        self.scores_: Any
        self.coefs_paths_: Any
        self.n_iter_: Any
        binary = len(self.classes_) == 2
        keys = self.classes_[1:] if binary else self.classes_
        with_ratios = self.l1_ratios_.size > 1 or self.l1_ratios_[0] is not None
        if legacy:
            self.C_ = np.full(len(keys), best_C)
            self.l1_ratio_ = np.array([best_ratio] * len(keys))
            squeeze = (lambda a: a) if with_ratios else (lambda a: a[:, :, 0])
            self.scores_ = {k: squeeze(scores).copy() for k in keys}
            self.coefs_paths_ = {k: squeeze(coefs[..., i, :]) for i, k in enumerate(keys)}
            self.n_iter_ = squeeze(n_iter)[None, ...]
            return
        self.C_ = best_C
        if with_ratios:
            self.l1_ratio_ = float(best_ratio)
        else:
            self.l1_ratio_ = 1.0 if name == "l1" and self.penalty == "l1" else 0.0
        self.scores_ = np.moveaxis(scores, 2, 1)  # [folds, ratios, Cs]
        self.coefs_paths_ = np.moveaxis(coefs, 2, 1)  # [folds, ratios, Cs, classes, dof]
        self.n_iter_ = np.moveaxis(n_iter, 2, 1)

    def score(self, X: Any, y: Any, sample_weight: Any = None, **params: Any) -> float:
        """The ``scoring`` of the refitted model (accuracy by default).

        Args:
            X: ``[n_samples, n_features]``.
            y: ``[n_samples]``, the true labels.
            sample_weight: ``[n_samples]``, or ``None`` for ones.
            **params: refused with scikit-learn's error (no metadata routing).

        Returns:
            The score, larger is better.
        """
        refuse_params(self, params)
        scoring = None if isinstance(self.scoring, str) and self.scoring == "warn" else self.scoring
        scorer = get_scorer(scoring if scoring is not None else "accuracy")
        if sample_weight is None:
            return float(scorer(self, X, y))
        return float(scorer(self, X, y, sample_weight=sample_weight))


def _call_scorer(
    scorer: Any, model: Any, X: Any, y: np.ndarray, weights: np.ndarray | None, classes: Any
) -> float:
    """``scorer(model, X, y)`` on a held-out fold. A fold may lack some classes: a scorer whose
    metric takes ``labels`` (its metadata request lists it, e.g. the Brier score) is then given
    every class, and with two classes the positive one, passed as metadata."""
    kwargs: dict[str, Any] = {} if weights is None else {"sample_weight": weights}
    routing = getattr(scorer, "get_metadata_routing", None)
    if routing is None or len(np.unique(y)) == len(classes):
        return float(scorer(model, X, y, **kwargs))
    requests = routing().score.requests
    if "labels" not in requests:
        return float(scorer(model, X, y, **kwargs))
    kwargs["labels"] = classes
    if len(classes) == 2 and "pos_label" in requests:
        kwargs["pos_label"] = classes[-1]
    with config_context(enable_metadata_routing=True):
        return float(scorer(model, X, y, **kwargs))


def _flat(point: PathPoint, fit_intercept: bool) -> np.ndarray:
    """``[rows, n_features (+1)]``: a point's coefficients with its intercepts as the last
    column (scikit-learn's ``n_dof`` layout)."""
    coef = np.atleast_2d(np.asarray(point.coef, dtype=float))
    if not fit_intercept:
        return coef
    intercept = np.asarray(point.intercept, dtype=float).reshape(-1, 1)
    return np.hstack([coef, intercept])
