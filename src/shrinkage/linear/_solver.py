"""One solver for ``min_w f(w) + P(w)``: smooth datafit ``f``, separable penalty ``P``.

Three ingredients, as in the fast Lasso solvers (celer, skglm, glmnet):

1. **working sets**: the outer loop solves the problem restricted to the current support plus
   the coordinates that violate optimality most (scored by the proximal-gradient mapping
   ``|w_j - prox(w_j - g_j / L)|``), doubling the set until the full problem is solved (a
   small kept Gram matrix is solved whole: :data:`SMALL_GRAM_FLOPS`);
2. **accelerated proximal gradient** (FISTA with adaptive restart) on the restricted problem,
   which identifies the support;
3. **Newton polishing** on the support with the signs fixed (:mod:`._newton`): there ``P``
   is smooth, so a few Newton steps (one, for the quadratic datafit) land on the exact
   optimum; it is accepted only if it keeps the signs and lowers the optimality criterion.
   On a support too large for a dense Hessian, a quadratic datafit's step is taken by
   conjugate gradients on its ``hessian_product`` (:mod:`._newton_cg`), from the first
   proximal-gradient step on.

The solver talks to the datafit through ``value / grad / hessian / lipschitz / restrict``
(and ``hessian_product`` where ``matrix_free_newton`` says it pays) and to the penalty through
``value / prox_ / optimality / kinked / hessian_diag`` (or ``hessian_block``); it never looks
inside either. The caller gives the stopping criterion (the duality gap for regression).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

import torch
from torch import Tensor

from .._threads import threads_for
from ._finish import FINISH_ROUNDS, finish_polish
from ._newton import (
    Datafit,
    Penalty,
    PenaltyFor,
    costly_newton,
    couples,
    kkt,
    objective,
    polish,
)
from ._newton_cg import matrix_free, newton_cg_step


@dataclass(frozen=True)
class Solution:
    """The solver's answer: coefficients, iterations (proximal-gradient steps and Newton
    steps), the final stopping criterion and whether it reached the tolerance."""

    w: Tensor
    n_iter: int
    criterion: float
    converged: bool


INNER_SHARE = 0.03
"""A working set is solved to this share of the full problem's tolerance on its criterion."""

SMALL_GRAM_FLOPS = 2 * 1024 * 1024
"""A datafit whose Hessian is a kept matrix (``datafit.hessian_is_cheap``: a Gram matrix) and
whose gradient costs at most this (a product with a ``1024 x 1024`` Gram matrix) is solved
whole, in place of working sets, to ``INNER_SHARE * tol`` as a working set's inner solve is
(a path's warm start that merely meets ``tol`` would leave its points that far off). Such a
gradient costs less than a working set's round of small calls (ranking, restriction, a
Lipschitz constant): on tall designs with p from 100 to 1000, paths solved whole took 0.6 -
1.0x the time; at p = 2000, a Lasso path took 3.4x."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _sized(fn: Callable[Concatenate[Datafit, _P], _R]) -> Callable[Concatenate[Datafit, _P], _R]:
    """``fn`` run on the intra-op threads that one gradient of its ``datafit`` is worth
    (:func:`shrinkage._threads.threads_for`; the caller's count restored on return)."""

    @functools.wraps(fn)
    def sized(datafit: Datafit, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with threads_for(datafit.gradient_flops / 2):
            return fn(datafit, *args, **kwargs)

    return sized


def _trypolish(
    datafit: Datafit,
    penalty: Penalty,
    w: Tensor,
    free: Tensor,
    criterion: Callable[[Tensor], float],
    crit: float,
    last_support: Tensor,
) -> tuple[tuple[Tensor, float] | None, Tensor]:
    """A Newton polish of FISTA's iterate ``w``: ``((polished, its criterion), support)``
    when it lowers the criterion ``crit``, else ``(None, support)``; skipped while the
    support still moves and a Newton step on it would be costly. A support beyond the dense
    limit takes the matrix-free step (:func:`._newton_cg.matrix_free`), whose cost is a few
    gradients whatever the support."""
    support = w != 0
    moved = not torch.equal(support, last_support)
    size = int(support.sum())
    cg = matrix_free(datafit, penalty, size)  # a step of a few gradients' cost, not m^3
    if moved and costly_newton(datafit, size) and not cg:
        return None, support  # the support still moves: a costly Newton step would be wasted
    polished = (newton_cg_step if cg else polish)(datafit, penalty, w, free)
    if polished is None:
        return None, support
    crit_polished = criterion(polished)
    return ((polished, crit_polished) if crit_polished < crit else None), support


@_sized
def _fista(
    datafit: Datafit,
    penalty: Penalty,
    w: Tensor,
    free: Tensor,
    tol: float,
    max_iter: int,
    criterion: Callable[[Tensor], float],
    polish_every: int = 10,
    check_every: int | None = None,
) -> tuple[Tensor, int, float]:
    """FISTA with adaptive restart and periodic Newton polishing, until ``criterion <= tol``.

    When the datafit's gradient is affine (``datafit.affine_grad``, least squares), the
    gradient is computed at the iterates ``w_k`` only, and the one at the extrapolated point
    ``z = w_k + beta (w_k - w_{k-1})`` is the same combination of the last two:
    ``grad(z) = grad(w_k) + beta (grad(w_k) - grad(w_{k-1}))``. An iteration then costs the
    same (one gradient), and the criterion at ``w_k``, which shares that gradient's work, can
    be checked at every iteration: ``check_every`` defaults to 1 then, to ``polish_every``
    otherwise. Stopping at the first iteration that meets ``tol`` is what the full problem
    wants; a working set's inner solve is better left to run on to the next check (its
    tolerance is a loose fraction of where it started, and a more accurate inner solution
    saves outer rounds over the whole problem).

    A Newton polish is tried every ``polish_every`` iterations, and also after the first
    iteration when the warm start's support takes the matrix-free step: that first
    proximal-gradient step brings in the coordinates that violate optimality, and on a path
    the rest of the warm start is already near the optimum.
    """
    affine = bool(getattr(datafit, "affine_grad", False))
    if check_every is None:
        check_every = 1 if affine else polish_every
    first_polish = 1 if matrix_free(datafit, penalty, int((w != 0).sum())) else polish_every
    state = _Momentum.start(datafit, penalty, w, affine)
    iters = 0
    crit = criterion(state.w)
    crit_at_polish = crit
    last_support = state.w != 0
    while iters < max_iter and crit > tol:
        iters += 1
        state.advance()
        if iters % check_every and iters < max_iter:
            continue
        crit = criterion(state.w)
        if crit <= tol or (iters % polish_every and iters != first_polish):
            continue
        if crit < 0.1 * crit_at_polish:  # first-order steps are converging fast: no Newton
            crit_at_polish = crit
            continue
        polished, last_support = _trypolish(
            datafit, penalty, state.w, free, criterion, crit, last_support
        )
        if polished is not None:
            w, crit = polished
            state.restart_at(w)
        crit_at_polish = crit
    return state.w, iters, crit


@dataclass
class _Momentum:
    """FISTA's iterates: ``w``, the extrapolated point ``z``, the momentum ``t``, and for an
    affine gradient the gradients at ``w`` and ``z`` (see :func:`_fista`)."""

    datafit: Datafit
    penalty: Penalty
    step: float
    w: Tensor
    z: Tensor
    t: float
    g_w: Tensor | None
    g_z: Tensor | None

    @classmethod
    def start(cls, datafit: Datafit, penalty: Penalty, w: Tensor, affine: bool) -> _Momentum:
        """The iterates at ``w`` (copied), with the step ``1 / L``."""
        lipschitz = datafit.lipschitz
        step = 1.0 / lipschitz if lipschitz > 0 else 1.0
        g_w = datafit.grad(w) if affine else None
        return cls(datafit, penalty, step, w.clone(), w.clone(), 1.0, g_w, g_w)

    def advance(self) -> None:
        """One proximal-gradient step from ``z``, with an adaptive restart of the momentum
        when it points uphill."""
        grad_z = self.g_z if self.g_z is not None else self.datafit.grad(self.z)
        w_next = self.penalty.prox_(torch.add(self.z, grad_z, alpha=-self.step), self.step)
        if float((self.z - w_next) @ (w_next - self.w)) > 0:  # momentum points uphill
            self.t = 1.0
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * self.t * self.t))
        beta = (self.t - 1.0) / t_next
        self.z = torch.lerp(w_next, self.w, -beta)  # w_next + beta (w_next - w)
        if self.g_w is not None:
            g_next = self.datafit.grad(w_next)
            self.g_z = torch.lerp(g_next, self.g_w, -beta)
            self.g_w = g_next
        self.w, self.t = w_next, t_next

    def restart_at(self, w: Tensor) -> None:
        """Start again from ``w`` (a polished point), without momentum."""
        self.w, self.z, self.t = w, w.clone(), 1.0
        if self.g_w is not None:
            self.g_w = self.g_z = self.datafit.grad(w)


@_sized
def solve(
    datafit: Datafit,
    penalty_for: PenaltyFor,
    w0: Tensor,
    *,
    free: Tensor,
    tol: float,
    max_iter: int,
    criterion: Callable[[Any, Tensor], float] | None = None,
    working_set: bool = True,
    finish: bool = False,
) -> Solution:
    """Minimise ``datafit(w) + penalty(w)`` from ``w0``.

    Args:
        datafit: the smooth part.
        penalty_for: the penalty on a subset of coordinates (see :data:`PenaltyFor`).
        w0: warm start, shape ``[d]``.
        free: boolean mask ``[d]`` of unpenalized coordinates (intercepts).
        tol: stop when ``criterion(w) <= tol``.
        max_iter: bound on proximal-gradient iterations over all working sets.
        criterion: ``criterion(datafit, w)``, the stopping criterion of the problem on a
            datafit, the full one or one restricted to a working set (a duality gap, on the
            scale of ``tol``): a working set is solved to ``INNER_SHARE * tol`` of it. Default:
            the KKT distance ``penalty.optimality(w, grad f(w))``, and a working set solved
            until it falls by ``1e-3``.
        working_set: restrict the inner solves to working sets (needs ``datafit.restrict``);
            ignored for a small Gram matrix (:data:`SMALL_GRAM_FLOPS`).
        finish: once ``tol`` is met, polish the solution on its support by Newton's method
            when the support is small (:func:`~shrinkage.linear._finish.finish_polish`): an
            easy problem's answer is then exact, not merely within ``tol``. A single fit wants
            it; the points of a path, where it would cost more than the warm-started solves,
            do without.

    A datafit with no Lipschitz constant that offers ``local_model(w)`` (a quadratic model of
    itself at ``w``: the GLMs of :mod:`._tweedie`) is minimised by a proximal Newton method
    instead (:func:`_proximal_newton`), whose every model is solved as above.
    """
    if getattr(datafit, "local_model", None) is not None:
        return _proximal_newton(
            datafit, penalty_for, w0, free=free, tol=tol, max_iter=max_iter,
            working_set=working_set, finish=finish,
        )  # fmt: skip
    penalty = penalty_for(None)
    full_criterion = (
        kkt(datafit, penalty) if criterion is None else functools.partial(criterion, datafit)
    )
    whole = working_set and _small_gram(datafit)  # solved whole in place of working sets,
    working_set = working_set and not whole  # as accurately as their inner solves are
    if working_set:
        sets = _WorkingSets(datafit, penalty_for, free, tol, criterion)
        w, iters, crit = sets.run(w0, max_iter, full_criterion)
    else:
        stop_at = INNER_SHARE * tol if whole else tol
        w, iters, crit = _fista(datafit, penalty, w0, free, stop_at, max_iter, full_criterion)
    if finish:
        w, crit = finish_polish(
            datafit, penalty_for, w, free, crit, tol, full_criterion, working_set
        )
    return Solution(w, iters, crit, crit <= tol)


def _small_gram(datafit: Datafit) -> bool:
    """Whether ``datafit`` is better solved whole than by working sets (see
    :data:`SMALL_GRAM_FLOPS`)."""
    cheap = bool(getattr(datafit, "hessian_is_cheap", False))
    return cheap and datafit.gradient_flops <= SMALL_GRAM_FLOPS


@dataclass
class _WorkingSets:
    """The outer loop of :func:`solve` with working sets: rank the coordinates, solve the
    problem restricted to the best ``k`` of them, double ``k``, until ``tol`` is met."""

    datafit: Datafit
    penalty_for: PenaltyFor
    free: Tensor
    tol: float
    criterion: Callable[[Any, Tensor], float] | None

    def run(
        self, w: Tensor, max_iter: int, full_criterion: Callable[[Tensor], float]
    ) -> tuple[Tensor, int, float]:
        """``(w, iterations, criterion)`` from the warm start ``w``."""
        iters = 0
        size = max(10, 2 * int(((w != 0) | self.free).sum()))
        crit = full_criterion(w)
        while crit > self.tol and iters < max_iter:
            k = min(size, w.numel())
            if k >= 0.5 * w.numel():  # most of the problem: solve it whole, to tol, no copy
                penalty = self.penalty_for(None)
                w, used, crit = _fista(
                    self.datafit, penalty, w, self.free, self.tol, max_iter - iters, full_criterion
                )
                return w, iters + used, crit
            idx = self.best(w, k)
            w_sub, used = self.inner(w[idx], idx, max_iter - iters)
            iters += max(used, 1)
            w = w.clone()
            w[idx] = w_sub
            crit = full_criterion(w)
            size = min(2 * size, w.numel())
        return w, iters, crit

    def best(self, w: Tensor, k: int) -> Tensor:
        """The sorted indices of the ``k`` coordinates with the largest proximal-gradient
        step, every nonzero and free one among them. For a zero coordinate that step is a
        monotone function of the optimality violation whatever the step size, so a unit
        step ranks as well as ``1 / L`` and needs no Lipschitz constant of the full problem.
        A group penalty's set is widened to the whole groups of those coordinates."""
        penalty = self.penalty_for(None)
        score = (w - penalty.prox_(w - self.datafit.grad(w), 1.0)).abs()
        score[(w != 0) | self.free] = math.inf
        best = torch.topk(score, k).indices.sort().values
        return penalty.whole_groups(best) if couples(penalty) else best

    def inner(self, w_sub: Tensor, idx: Tensor, budget: int) -> tuple[Tensor, int]:
        """The problem restricted to ``idx``, solved from ``w_sub``: ``(w_sub, iterations)``.
        Without a problem criterion, to a 1e-3 fall of its KKT distance, left to run on to the
        next check (see :func:`_fista`); with one, to ``INNER_SHARE * tol``."""
        sub_penalty = self.penalty_for(idx)
        sub = self.datafit.restrict(idx)
        check_every: int | None = None
        if self.criterion is None:
            sub_criterion = kkt(sub, sub_penalty)
            inner_tol = max(1e-3 * sub_criterion(w_sub), INNER_SHARE * self.tol, 1e-14)
            check_every = 10
        else:
            sub_criterion = functools.partial(self.criterion, sub)
            inner_tol = INNER_SHARE * self.tol
        w_sub, used, _ = _fista(
            sub, sub_penalty, w_sub, self.free[idx], inner_tol, budget, sub_criterion,
            check_every=check_every,
        )  # fmt: skip
        return w_sub, used


INNER_INCOMPLETE = 0.01
"""A local model of :func:`_proximal_newton` is solved to this share of the optimality
distance where it is built (and at least to a tenth of ``tol``)."""


def _proximal_newton(
    datafit: Any,
    penalty_for: PenaltyFor,
    w: Tensor,
    *,
    free: Tensor,
    tol: float,
    max_iter: int,
    working_set: bool,
    finish: bool = False,
) -> Solution:
    """Minimise ``f + P`` by proximal Newton steps, as glmnet and glum fit GLMs: at ``w``,
    ``v`` minimises ``P`` plus the datafit's quadratic model ``datafit.local_model(w)`` (by
    :func:`solve`), and the step ``w + t (v - w)`` takes the largest ``t`` in ``1, 1/2, ...``
    that lowers ``F = f + P`` by at least ``t / 1e4`` of the model's predicted decrease
    ``Delta = grad f(w)^T (v - w) + P(v) - P(w)`` (Armijo's rule). Near the optimum, where
    ``F`` cannot tell the points apart in float64, the full step is taken if it lowers the
    optimality distance. Stops when that distance is at most ``tol``; ``max_iter`` bounds the
    Newton steps. With ``finish`` (a single fit), up to :data:`FINISH_ROUNDS` more steps
    follow while each still halves the distance: Newton's convergence is quadratic there (the
    inner solves' own last polish makes each model's solution exact), so an easy problem's
    answer is exact, as the quadratic datafit's last polish makes it.
    """
    penalty = penalty_for(None)
    here = _At.of(datafit, penalty, w)
    steps = extra = 0
    while steps < max_iter and (here.crit > tol or (finish and extra < FINISH_ROUNDS)):
        finishing = here.crit <= tol
        extra += finishing
        model = datafit.local_model(here.w)
        inner = solve(
            model, penalty_for, here.w, free=free,
            tol=max(INNER_INCOMPLETE * here.crit, 0.1 * tol), max_iter=10_000,
            working_set=working_set, finish=True,
        )  # fmt: skip
        moved = _armijo(datafit, penalty, here, inner.w - here.w)
        steps += 1
        if moved is None:  # no descent left at this precision
            break
        there = _At.of(datafit, penalty, *moved)
        if finishing and there.crit > 0.5 * here.crit:  # no longer gaining
            here = there if there.crit < here.crit else here
            break
        here = there
    return Solution(here.w, steps, here.crit, here.crit <= tol)


@dataclass(frozen=True)
class _At:
    """A point of :func:`_proximal_newton` with what its step needs: the objective, the
    datafit's gradient, and the optimality distance."""

    w: Tensor
    value: float
    grad: Tensor
    crit: float

    @classmethod
    def of(cls, datafit: Any, penalty: Penalty, w: Tensor, value: float | None = None) -> _At:
        """The point ``w`` (its objective ``value`` when already known)."""
        grad = datafit.grad(w)
        if value is None:
            value = objective(datafit, penalty, w)
        return cls(w, value, grad, float(penalty.optimality(w, grad)))


def _armijo(datafit: Any, penalty: Penalty, here: _At, step: Tensor) -> tuple[Tensor, float] | None:
    """``(w + t step, its objective)`` for the largest ``t = 2^-k`` meeting Armijo's rule (see
    :func:`_proximal_newton`), or whose objective differs from ``w``'s by rounding only while
    its optimality distance is below ``w``'s; ``None`` when no ``t`` qualifies. A predicted
    decrease lost in rounding leaves the second rule alone."""
    w, start = here.w, here.value
    decrease = float(here.grad @ step + penalty.value(w + step) - penalty.value(w))
    rounding = 64 * torch.finfo(torch.float64).eps * max(1.0, abs(start))
    distance = kkt(datafit, penalty)
    t = 1.0
    for _ in range(50):
        candidate = w + t * step
        value = objective(datafit, penalty, candidate)
        if decrease < 0 and value <= start + 1e-4 * t * decrease:
            return candidate, value
        if value <= start + rounding and distance(candidate) < here.crit:
            return candidate, value
        t *= 0.5
    return None
