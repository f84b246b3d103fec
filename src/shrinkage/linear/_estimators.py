"""scikit-learn estimators for penalized linear models, solved in torch.

Same objectives, parameter names and fitted attributes as scikit-learn's ``Lasso``,
``ElasticNet``, ``Ridge``, ``LogisticRegression``, ``LassoCV``, ``ElasticNetCV`` and
``LogisticRegressionCV``, plus ``device`` (a torch device) and, on the CV classes,
``selection_rule`` (``"min"`` or ``"1se"``). Every fit is a :func:`shrinkage.path` over one
or more strengths, so the estimators, cross-validation and the reports see the same records.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import check_cv
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .._validation import check_device
from ..path import PathPoint, lambda_grid, path, select_index
from ._problem import GramStats, LinearProblem, as_problem_kwargs, as_tensor

__all__ = [
    "ElasticNet",
    "ElasticNetCV",
    "Lasso",
    "LassoCV",
    "LogisticRegression",
    "LogisticRegressionCV",
    "Ridge",
]


_COMMON: dict[str, list[Any]] = {
    "fit_intercept": ["boolean"],
    "tol": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device],
}


def _warn_not_converged(point: PathPoint, what: str) -> None:
    if not point.converged:
        warnings.warn(
            f"{what} did not converge in max_iter iterations (stopping criterion "
            f"{point.criterion:.3g}); increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )


class _LinearRegressorBase(RegressorMixin, BaseEstimator):
    """Shared by Lasso and ElasticNet: a one-point path of the squared-loss problem."""

    def _l1_ratio(self) -> float:
        raise NotImplementedError

    def fit(self, X: Any, y: Any) -> Any:
        """Fit on ``X [n_samples, n_features]``, ``y [n_samples]``; returns ``self``."""
        self._validate_params()
        check_device(self.device)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        problem = LinearProblem(
            X, y, loss="squared", l1_ratio=self._l1_ratio(), **as_problem_kwargs(self)
        )
        warm = None
        if self.warm_start and hasattr(self, "coef_") and self.coef_.shape == (X.shape[1],):
            warm = problem.state_from(self.coef_, self.intercept_)
        (point,) = path(problem, [float(self.alpha)], initial_state=warm)
        _warn_not_converged(point, type(self).__name__)
        assert point.coef is not None
        self.coef_: np.ndarray = point.coef
        assert isinstance(point.intercept, float)  # the squared loss has one intercept
        self.intercept_: float = point.intercept
        self.n_iter_ = point.n_iter
        self.dual_gap_ = point.criterion
        self.path_ = [point]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape ``[n_samples]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_

    @property
    def sparse_coef_(self) -> Any:
        from scipy import sparse

        return sparse.csr_matrix(self.coef_[None, :])


class ElasticNet(_LinearRegressorBase):
    """Linear regression with the Elastic-Net penalty (scikit-learn's objective)::

        ||y - X w - b||^2 / (2 n) + alpha * l1_ratio * ||w||_1
                                  + alpha * (1 - l1_ratio) / 2 * ||w||_2^2

    Solved with working sets, accelerated proximal gradient and Newton polishing on the
    support, stopping on the duality gap (``gap <= tol * ||y - mean(y)||^2 / n``).

    Attributes: ``coef_ [n_features]``, ``intercept_``, ``n_iter_``, ``dual_gap_``, ``path_``
    (the one :class:`~shrinkage.path.PathPoint` of the fit).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "warm_start": ["boolean"],
        **_COMMON,
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        l1_ratio: float = 0.5,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
        device: str = "cpu",
    ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.device = device

    def _l1_ratio(self) -> float:
        return float(self.l1_ratio)


class Lasso(ElasticNet):
    """Lasso: ``||y - X w - b||^2 / (2 n) + alpha * ||w||_1`` (ElasticNet with
    ``l1_ratio=1``). Same attributes as :class:`ElasticNet`."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        k: v for k, v in ElasticNet._parameter_constraints.items() if k != "l1_ratio"
    }

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
        device: str = "cpu",
    ) -> None:
        super().__init__(
            alpha=alpha,
            l1_ratio=1.0,
            fit_intercept=fit_intercept,
            max_iter=max_iter,
            tol=tol,
            warm_start=warm_start,
            device=device,
        )

    def _l1_ratio(self) -> float:
        return 1.0

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.pop("l1_ratio", None)
        return params


class Ridge(RegressorMixin, BaseEstimator):
    """Ridge regression, scikit-learn's objective ``||y - X w - b||^2 + alpha * ||w||_2^2``,
    solved exactly by a Cholesky factorisation in torch (of ``X^T X + alpha I`` when
    ``n >= p``, of ``X X^T + alpha I`` otherwise).

    Attributes: ``coef_ [n_features]``, ``intercept_``, ``n_iter_`` (``None``: direct solve).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "fit_intercept": ["boolean"],
        "device": [str, torch.device],
    }

    def __init__(
        self, alpha: float = 1.0, *, fit_intercept: bool = True, device: str = "cpu"
    ) -> None:
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.device = device

    def fit(self, X: Any, y: Any) -> Ridge:
        """Fit on ``X [n_samples, n_features]``, ``y [n_samples]``; returns ``self``."""
        self._validate_params()
        device = check_device(self.device)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        Xt = as_tensor(X, device)
        yt = as_tensor(y, device)
        x_mean = (
            Xt.mean(0)
            if self.fit_intercept
            else torch.zeros(Xt.shape[1], dtype=torch.float64, device=device)
        )
        y_mean = (
            yt.mean() if self.fit_intercept else torch.zeros((), dtype=torch.float64, device=device)
        )
        Xc, yc = Xt - x_mean, yt - y_mean
        n, p = Xc.shape
        if n >= p:
            A = Xc.T @ Xc + self.alpha * torch.eye(p, dtype=torch.float64, device=device)
            coef = _spd_solve(A, Xc.T @ yc)
        else:
            A = Xc @ Xc.T + self.alpha * torch.eye(n, dtype=torch.float64, device=device)
            coef = Xc.T @ _spd_solve(A, yc)
        self.coef_ = coef.cpu().numpy()
        self.intercept_ = float(y_mean - x_mean @ coef)
        self.n_iter_ = None
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape ``[n_samples]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_


def _spd_solve(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return torch.cholesky_solve(b[:, None], L).flatten()
    return torch.linalg.lstsq(
        A, b[:, None]
    ).solution.flatten()  # singular: alpha = 0, rank-deficient X


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
        **_COMMON,
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

    def _problem(self, X: np.ndarray, y_idx: np.ndarray, l1_ratio: float) -> LinearProblem:
        loss = "logistic" if len(self.classes_) == 2 else "multinomial"
        return LinearProblem(
            X,
            y_idx,
            loss=loss,
            l1_ratio=l1_ratio,
            n_classes=len(self.classes_),
            **as_problem_kwargs(self),
        )

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
        problem = self._problem(X, y_idx, l1_ratio)
        lam = 0.0 if self.penalty is None else 1.0 / (self.C * X.shape[0])
        warm = None
        if self.warm_start and hasattr(self, "coef_") and self.coef_.shape[1] == X.shape[1]:
            warm = problem.state_from(self.coef_, self.intercept_)
        (point,) = path(problem, [lam], initial_state=warm)
        _warn_not_converged(point, "LogisticRegression")
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


# -- cross-validation ------------------------------------------------------------------------
_CV_COMMON: dict[str, list[Any]] = {
    "eps": [Interval(Real, 0, None, closed="neither")],
    "cv": ["cv_object"],
    "selection_rule": [StrOptions({"min", "1se"})],
    **_COMMON,
}


class ElasticNetCV(RegressorMixin, BaseEstimator):
    """Elastic Net with ``alpha`` (and ``l1_ratio``, given a list) chosen by K-fold CV.

    The ``alphas`` grid (an int: that many log-spaced from ``alpha_max`` down to
    ``eps * alpha_max``, computed on the whole data as scikit-learn does; or an array) is
    fitted on each fold's training part by :func:`shrinkage.path` with warm starts, scored by
    mean squared error on its held-out part; ``selection_rule="min"`` takes the lowest mean
    error, ``"1se"`` the largest ``alpha`` within one standard error of it. The model is then
    refitted on all the data at ``alpha_``, warm-started from the folds' mean coefficients
    there (close to the answer, so the refit takes few iterations).

    Attributes: ``alpha_``, ``l1_ratio_``, ``alphas_`` (``[n_alphas]``, or
    ``[n_l1_ratio, n_alphas]`` for a list), ``mse_path_`` (``[n_alphas, n_folds]`` or
    ``[n_l1_ratio, n_alphas, n_folds]``), ``coef_``, ``intercept_``, ``dual_gap_``,
    ``n_iter_``, ``path_`` (the refit's record, one point).
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), "array-like"],
        "alphas": [Interval(Integral, 1, None, closed="left"), "array-like"],
        **_CV_COMMON,
    }

    def __init__(
        self,
        *,
        l1_ratio: float | list[float] = 0.5,
        eps: float = 1e-3,
        alphas: int | Any = 100,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        cv: Any = None,
        selection_rule: str = "min",
        device: str = "cpu",
    ) -> None:
        self.l1_ratio = l1_ratio
        self.eps = eps
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.cv = cv
        self.selection_rule = selection_rule
        self.device = device

    def _l1_ratios(self) -> list[float]:
        ratios = np.atleast_1d(np.asarray(self.l1_ratio, dtype=float))
        if (
            ratios.size == 0
            or np.any((ratios < 0) | (ratios > 1))
            or not np.all(np.isfinite(ratios))
        ):
            raise ValueError(
                f"l1_ratio must be in [0, 1] (a number or a list), got {self.l1_ratio!r}"
            )
        return [float(r) for r in ratios]

    def _grid(self, problem: LinearProblem) -> np.ndarray:
        if not isinstance(self.alphas, Integral):
            grid = np.sort(np.asarray(self.alphas, dtype=float).ravel())[::-1]
            if grid.size == 0 or np.any(grid < 0) or not np.all(np.isfinite(grid)):
                raise ValueError(
                    f"alphas must be a positive int or an array of alphas >= 0, got {self.alphas!r}"
                )
            return grid
        return lambda_grid(problem.lambda_max(), int(self.alphas), self.eps)

    def fit(self, X: Any, y: Any) -> ElasticNetCV:
        """Cross-validate the grid, pick ``alpha_`` (and ``l1_ratio_``), refit."""
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        ratios = self._l1_ratios()
        folds = list(check_cv(self.cv).split(X, y))
        if len(folds) > X.shape[0]:
            raise ValueError(
                f"cv asks for {len(folds)} folds but there are only {X.shape[0]} samples"
            )
        device = check_device(self.device)
        stats = None
        fold_stats: list[GramStats] = []
        if X.shape[0] - max(len(test) for _, test in folds) >= X.shape[1]:
            # n >> p: everything from Gram statistics, each fold's computed once; when the
            # folds partition the data, the whole data's statistics are their sum
            Xt = as_tensor(X, device)
            yt = as_tensor(y, device)
            for _, test in folds:
                t = torch.as_tensor(test, device=device)
                fold_stats.append(GramStats.of(Xt[t], yt[t]))
            tests = np.sort(np.concatenate([test for _, test in folds]))
            partition = np.array_equal(tests, np.arange(X.shape[0]))
            stats = sum(fold_stats[1:], fold_stats[0]) if partition else GramStats.of(Xt, yt)

        def whole(ratio: float) -> LinearProblem:
            if stats is None:
                return LinearProblem(
                    X, y, loss="squared", l1_ratio=ratio, **as_problem_kwargs(self)
                )
            return LinearProblem.from_stats(
                stats,
                l1_ratio=ratio,
                fit_intercept=self.fit_intercept,
                tol=self.tol,
                max_iter=self.max_iter,
            )

        grids, mse, fold_points = [], [], []
        for ratio in ratios:
            grid = self._grid(whole(ratio))
            points_per_fold = []
            for k, (train, test) in enumerate(folds):
                validation: tuple[Any, Any] = (X[test], y[test])
                if stats is not None:  # the training part's Gram: the whole minus the fold
                    validation = (fold_stats[k], None)
                    problem = LinearProblem.from_stats(
                        stats - fold_stats[k],
                        l1_ratio=ratio,
                        fit_intercept=self.fit_intercept,
                        tol=self.tol,
                        max_iter=self.max_iter,
                    )
                else:
                    problem = LinearProblem(
                        X[train],
                        y[train],
                        loss="squared",
                        l1_ratio=ratio,
                        **as_problem_kwargs(self),
                    )
                points_per_fold.append(path(problem, grid, validation=validation))
            fold_points.append(points_per_fold)
            grids.append(grid)
            losses = [[p.val_loss for p in points] for points in points_per_fold]
            mse.append(np.array(losses, dtype=float).T)  # [n_alphas, n_folds]
        # choose: best l1_ratio by its best mean error, then alpha by the rule
        best_means = [m.mean(axis=1).min() for m in mse]
        r = int(np.argmin(best_means))
        i = select_index(mse[r], self.selection_rule, larger_is_better=False)
        self.l1_ratio_ = ratios[r]
        self.alpha_ = float(grids[r][i])
        single = np.ndim(self.l1_ratio) == 0
        self.alphas_ = grids[0] if single else np.array(grids)
        self.mse_path_ = mse[0] if single else np.array(mse)
        final = whole(self.l1_ratio_)
        at_alpha = [points[i] for points in fold_points[r]]
        warm = final.state_from(
            np.mean([np.asarray(p.coef) for p in at_alpha], axis=0),
            np.mean([np.asarray(p.intercept, dtype=float) for p in at_alpha], axis=0),
        )
        refit = path(final, [self.alpha_], initial_state=warm)
        point = refit[-1]
        _warn_not_converged(point, type(self).__name__)
        self.coef_, self.intercept_ = point.coef, point.intercept
        self.dual_gap_, self.n_iter_ = point.criterion, point.n_iter
        self.path_ = refit
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_``, shape ``[n_samples]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_ + self.intercept_


class LassoCV(ElasticNetCV):
    """Lasso with ``alpha`` chosen by K-fold CV (:class:`ElasticNetCV` with ``l1_ratio=1``)."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        k: v for k, v in ElasticNetCV._parameter_constraints.items() if k != "l1_ratio"
    }

    def __init__(
        self,
        *,
        eps: float = 1e-3,
        alphas: int | Any = 100,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        cv: Any = None,
        selection_rule: str = "min",
        device: str = "cpu",
    ) -> None:
        super().__init__(
            l1_ratio=1.0,
            eps=eps,
            alphas=alphas,
            fit_intercept=fit_intercept,
            max_iter=max_iter,
            tol=tol,
            cv=cv,
            selection_rule=selection_rule,
            device=device,
        )

    def _l1_ratios(self) -> list[float]:
        return [1.0]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = super().get_params(deep=deep)
        params.pop("l1_ratio", None)
        return params


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
        "selection_rule": [StrOptions({"min", "1se"})],
        **_COMMON,
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
        template = LogisticRegression(
            self.penalty,
            fit_intercept=self.fit_intercept,
            tol=self.tol,
            max_iter=self.max_iter,
            device=self.device,
        )
        template.classes_ = self.classes_
        scores = np.zeros((len(folds), len(Cs), len(ratios)))
        for f, (train, test) in enumerate(folds):
            for r, ratio in enumerate(ratios):
                problem = template._problem(X[train], y_idx[train], ratio)
                lams = 1.0 / (Cs[order] * len(train))
                points = path(problem, lams, validation=(X[test], y_idx[test]))
                for k, point in zip(order, points, strict=True):
                    assert point.val_loss is not None and point.val_score is not None
                    scores[f, k, r] = (
                        point.val_score if self.scoring == "accuracy" else -point.val_loss
                    )
        best_by_ratio = [scores[:, :, r].mean(axis=0).max() for r in range(len(ratios))]
        r = int(np.argmax(best_by_ratio))
        ordered = scores[:, order, r].T  # [n_Cs (strongest first), n_folds]
        i = order[select_index(ordered, self.selection_rule, larger_is_better=True)]
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
