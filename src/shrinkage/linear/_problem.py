"""The linear models as a :class:`~shrinkage.path.PathProblem`.

Every linear model here minimises a data term plus ``lam * r(w)`` with the Elastic-Net ``r``
of scikit-learn::

    r(w) = l1_ratio * ||w||_1 + (1 - l1_ratio) / 2 * ||w||_2^2

* squared loss: ``||y - Xw - b||^2 / (2n) + alpha * r(w)`` (``lam = alpha``: Lasso,
  ElasticNet);
* logistic / multinomial loss: ``mean_i loss_i + r(w) / (C n)`` (``lam = 1 / (C n)``), which
  is scikit-learn's ``C * sum_i loss_i + r(w)`` divided by ``C n``.

Intercepts are never penalized: centered data for the squared loss, a free coordinate for the
others. Everything is computed in float64 on ``device``. What differs between the losses lives
in their objects (:mod:`shrinkage.linear._bound_datafits`); the problem only composes a loss, the
penalty and the solver.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..path import Evaluation, FitInfo, Score
from ..penalties import ElasticNet as ElasticNetPenalty
from ._bound_datafits import LOSSES, LinearLoss, LossOptions, SquaredLoss
from ._design import GramStats, as_tensor
from ._solver import solve

__all__ = [
    "GramStats",
    "LinearProblem",
    "as_problem_kwargs",
    "as_tensor",
    "enet_penalty",
]


def enet_penalty(
    lam: float, l1_ratio: float, factor: Tensor | None, positive: bool = False
) -> ElasticNetPenalty:
    """``lam * r(w)`` as shrinkage's ``ElasticNet(lam', r')``:
    ``lam' = lam * (1 + l1_ratio) / 2`` and ``r' = 2 * l1_ratio / (1 + l1_ratio)`` (with the
    constraint ``w >= 0`` when ``positive``)."""
    return ElasticNetPenalty(
        lam * (1.0 + l1_ratio) / 2.0,
        2.0 * l1_ratio / (1.0 + l1_ratio),
        factor=factor,
        positive=positive,
    )


class LinearProblem:
    """A linear model, its data and solver settings: what :func:`shrinkage.path` fits.

    Args:
        X: ``[n, p]`` features, dense or scipy sparse; y: ``[n]`` targets (class indices
            ``0..K-1`` for classifiers).
        loss: ``"squared"``, ``"logistic"`` (binary) or ``"multinomial"``: a name of
            :data:`~shrinkage.linear._bound_datafits.LOSSES`, or a built
            :class:`~shrinkage.linear._bound_datafits.LinearLoss` (``X`` and ``y`` are then
            ``None``).
        l1_ratio: the mix of ``r(w)``.
        fit_intercept, tol, max_iter: as in scikit-learn.
        n_classes: for ``"multinomial"``.
        device: torch device for the computation.
        sample_weight: ``[n]`` non-negative weights (``None``: all 1).
        positive: constrain every coefficient to ``>= 0``.
        gradient_tol: stop when the optimality distance (the norm of the projected gradient of
            the objective above) is at most ``tol``, instead of the loss's own criterion (the
            duality gap for the squared loss).
        finish: polish each solution on its support once ``tol`` is met, when the support is
            small (exact answers to easy problems; see :func:`~shrinkage.linear._solver.solve`).
            The estimators' single fits do; paths and cross-validation folds stop at ``tol``.
            A problem that finishes is one fit: the squared loss keeps no Gram rows for it
            (they pay for themselves over a path's many gradients, not over one fit's few).
        copy_X: as in scikit-learn: ``False`` lets the squared loss centre a dense ``X`` in
            place (cross-validation passes its own copies of the folds).
        expected_support: deprecated and ignored (a hint that bought Gram rows early; it
            made wide cross-validation slower, never faster). Passing it warns.
        penalty_factor: ``[p]`` factors ``c_j >= 0`` of each feature's penalty, ``lam *
            sum_j c_j r(w_j)`` (squared loss; ``0``: unpenalized), as glmnet's
            ``penalty.factor`` without its rescaling to sum ``p``.
    """

    def __init__(
        self,
        X: np.ndarray | None,
        y: np.ndarray | None,
        *,
        loss: str | LinearLoss,
        l1_ratio: float,
        fit_intercept: bool = True,
        tol: float,
        max_iter: int,
        n_classes: int = 2,
        device: str | torch.device = "cpu",
        sample_weight: np.ndarray | None = None,
        positive: bool = False,
        gradient_tol: bool = False,
        finish: bool = False,
        copy_X: bool = True,
        expected_support: np.ndarray | None = None,
        penalty_factor: np.ndarray | None = None,
        gram: bool | None = None,
    ) -> None:
        if expected_support is not None:
            warnings.warn(
                "LinearProblem(expected_support=...) is deprecated and ignored: the hint made "
                "wide fits slower, never faster; drop the argument",
                FutureWarning,
                stacklevel=2,
            )
        if isinstance(loss, LinearLoss):
            self.loss = loss
        else:
            if loss not in LOSSES:
                raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
            assert X is not None and y is not None
            options = LossOptions(
                fit_intercept, torch.device(device), n_classes, sample_weight, not copy_X,
                penalty_factor, gram, gram_rows=not finish,
            )  # fmt: skip
            self.loss = LOSSES[loss](X, y, options)
        self.l1_ratio, self.tol, self.max_iter = float(l1_ratio), tol, max_iter
        self.positive, self.gradient_tol, self.finish = positive, gradient_tol, finish

    @classmethod
    def from_stats(
        cls,
        stats: GramStats,
        *,
        l1_ratio: float,
        fit_intercept: bool,
        tol: float,
        max_iter: int,
        positive: bool = False,
        finish: bool = False,
        penalty_factor: np.ndarray | None = None,
    ) -> LinearProblem:
        """A squared-loss problem from its Gram statistics in place of its data.

        Cross-validation builds each fold's problem so, from the whole data's statistics less
        the held-out fold's, without a pass over the training rows.

        Args:
            stats: the training data's :class:`~shrinkage.linear._design.GramStats`.
            l1_ratio, fit_intercept, tol, max_iter, positive, finish, penalty_factor: as in
                the constructor.

        Returns:
            The problem.
        """
        loss = SquaredLoss.from_stats(
            stats, fit_intercept=fit_intercept, penalty_factor=penalty_factor
        )
        return cls(
            None, None, loss=loss, l1_ratio=l1_ratio, tol=tol, max_iter=max_iter,
            positive=positive, finish=finish,
        )  # fmt: skip

    @property
    def datafit(self) -> Any:
        """The data term the solver minimizes (its value, gradient and Hessian)."""
        return self.loss.datafit

    @property
    def free(self) -> Tensor:
        """``[d]``, the unpenalized coordinates of the state (the intercepts)."""
        return self.loss.free

    # -- the PathProblem protocol --------------------------------------------------------------
    def initial_state(self) -> Tensor:
        """The state with every coefficient zero (the intercepts at their optimum)."""
        return self.loss.initial_state()

    def lambda_max(self) -> float:
        """``max_j |grad_j f(w0)| / l1_ratio`` at the intercept-only fit ``w0`` (``max_j
        max(-grad_j, 0) / l1_ratio`` under ``w >= 0``)."""
        if self.l1_ratio == 0:
            raise ValueError(
                "l1_ratio=0 has no finite lambda_max (a ridge penalty never zeros all "
                "coefficients); give the grid explicitly"
            )
        return self.gradient_at_zero() / self.l1_ratio

    def null_state(self) -> Tensor:
        """The fit with every penalized coefficient zero: the intercepts at their optimum,
        and the features of penalty factor 0 fitted with them (on a datafit that can be
        restricted to them; the multinomial one cannot, and starts them at zero)."""
        w = self.initial_state()
        unpenalized = torch.nonzero(self.loss.free).reshape(-1)
        if self.loss.factor is None or not unpenalized.numel():
            return w
        try:
            datafit = self.loss.datafit.restrict(unpenalized)
        except NotImplementedError:
            return w
        scale = 1.0 + float(self.loss.datafit.grad(w).abs().max())
        solution = solve(
            datafit, lambda idx: enet_penalty(0.0, 1.0, None), w[unpenalized],
            free=torch.ones_like(unpenalized, dtype=torch.bool), tol=1e-12 * scale,
            max_iter=self.max_iter, working_set=False,
        )  # fmt: skip
        w[unpenalized] = solution.w
        return w

    def gradient_at_zero(self) -> float:
        """``max_j |grad_j f(w0)| / c_j`` over the penalized coordinates at the fit ``w0``
        with all of them zero (:meth:`null_state`), with ``c_j`` their penalty factors."""
        grad = self.loss.datafit.grad(self.null_state())
        factor = self.loss.factor
        if factor is not None:
            grad = grad / torch.where(factor > 0, factor, 1.0)
        penalized = grad[~self.loss.free]
        if not penalized.numel():
            return 0.0
        reach = (-penalized).clamp_min(0.0) if self.positive else penalized.abs()
        return float(reach.max())

    def fit(self, lam: float, state: Tensor) -> tuple[Tensor, FitInfo]:
        """Solve at one strength from a warm start.

        Args:
            lam: ``alpha``, the strength.
            state: ``[d]``, the warm start.

        Returns:
            ``(the solution [d], the solver's iterations, convergence and criterion)``.
        """
        loss = self.loss
        w0 = state.to(loss.device, torch.float64)

        def penalty_for(idx: Tensor | None) -> ElasticNetPenalty:
            factor = loss.factor if loss.factor is None or idx is None else loss.factor[idx]
            return enet_penalty(lam, self.l1_ratio, factor, self.positive)

        l1, l2 = lam * self.l1_ratio, lam * (1.0 - self.l1_ratio)
        criterion, tol = (
            (None, self.tol)
            if self.gradient_tol
            else loss.stopping(l1, l2, self.tol, self.positive)
        )
        solution = solve(
            loss.datafit,
            penalty_for,
            w0,
            free=loss.free,
            tol=tol,
            max_iter=self.max_iter,
            criterion=criterion,
            working_set=loss.working_set,
            finish=self.finish,
        )
        w = solution.w if lam > 0 else loss.least_norm(solution.w)
        return w, FitInfo(solution.n_iter, solution.converged, solution.criterion)

    def extrapolate(
        self, lam: float, last: tuple[float, Tensor], before: tuple[float, Tensor]
    ) -> Tensor:
        """A warm start at ``lam`` from the last two fits, the line through them:
        ``w = w1 + t (w1 - w0)``, ``t = (lam - lam1) / (lam1 - lam0)``, with every penalized
        coordinate that the line takes off ``w1``'s sign (or off zero) set to zero. Along a
        Lasso path the solution is affine in ``lam`` while its support and signs hold, so
        the prediction is then exact; elsewhere it is a first-order one. Only for
        ``0 < t <= 1`` (the grid going on the same way, by no longer a step); otherwise
        ``w1``.

        Args:
            lam: the next strength.
            last: ``(lam1, w1)``, the last fit, ``w1 [d]``.
            before: ``(lam0, w0)``, the fit before it.

        Returns:
            ``[d]``, the warm start.
        """
        (lam1, w1), (lam0, w0) = last, before
        t = (lam - lam1) / (lam1 - lam0) if lam1 != lam0 else 0.0
        if not 0.0 < t <= 1.0:
            return w1
        w = torch.lerp(w1, w0, -t)
        keep = self.loss.free | (torch.sign(w) == torch.sign(w1))
        return torch.where(keep, w, 0.0)

    def coefficients(self, w: Tensor) -> tuple[np.ndarray, np.ndarray | float]:
        """A state as scikit-learn's fitted attributes.

        Args:
            w: ``[d]``, a state.

        Returns:
            ``(coef_, intercept_)`` in scikit-learn's shapes for this loss.
        """
        return self.loss.coefficients(w)

    def state_from(self, coef: np.ndarray, intercept: np.ndarray | float) -> Tensor:
        """The inverse of :meth:`coefficients`: a warm start from fitted attributes.

        Args:
            coef: ``coef_`` in scikit-learn's shape.
            intercept: ``intercept_``.

        Returns:
            ``[d]``, the state.
        """
        return self.loss.state_from(coef, intercept)

    def describe(self, state: Tensor) -> Evaluation:
        """The coefficients, training loss and selected features of a state.

        Args:
            state: ``[d]``, a state.

        Returns:
            What its :class:`~shrinkage.path.PathPoint` records.
        """
        coef, intercept = self.coefficients(state)
        used = np.flatnonzero(np.any(np.atleast_2d(coef) != 0, axis=0))
        return Evaluation(
            coef, intercept, float(self.loss.datafit.value(state)), tuple(used.tolist())
        )

    def score(
        self,
        state: Tensor,
        X: Any,
        y: np.ndarray | None,
        sample_weight: np.ndarray | None = None,
    ) -> Score:
        """A state on held-out data.

        Args:
            state: ``[d]``, a state.
            X: ``[m, p]`` held-out features, or for the squared loss their
                :class:`GramStats` (``y`` then ``None``).
            y: ``[m]`` targets.
            sample_weight: ``[m]`` weights, or ``None``.

        Returns:
            ``(MSE, R^2)`` for the squared loss, ``(log-loss, accuracy)`` for a classifier.
        """
        return self.loss.score(state, X, y, sample_weight)

    def per_sample_loss(self, state: Tensor, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Each held-out sample's loss.

        Args:
            state: ``[d]``, a state.
            X: ``[m, p]`` features.
            y: ``[m]`` targets.

        Returns:
            ``[m]``: the squared error ``(y - X w - b)^2``, or each sample's log-loss.
        """
        return self.loss.per_sample_loss(state, X, y)


def as_problem_kwargs(estimator: Any) -> dict[str, Any]:
    """The solver settings every linear estimator shares."""
    return {
        "fit_intercept": estimator.fit_intercept,
        "tol": estimator.tol,
        "max_iter": estimator.max_iter,
        "device": estimator.device,
    }
