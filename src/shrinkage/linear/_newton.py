"""Newton's method on the support, the solver's last ingredient (see
:mod:`shrinkage.linear._solver`): with the signs of ``w`` fixed the penalty is smooth there,
so a few Newton steps, with a line search that stops at zero where a coordinate would cross
it, land on the exact optimum. Also what the solver asks of a datafit and a penalty.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard, runtime_checkable

import torch
from torch import Tensor

from .._kernels import Step
from ._common import least_squares
from ._design import principal

__all__ = [
    "FINAL_POLISH_SIZE",
    "Datafit",
    "Penalty",
    "PenaltyFor",
    "costly_newton",
    "couples",
    "kkt",
    "newton_limit",
    "newton_support",
    "objective",
    "objective_gradient",
    "polish",
    "separable",
]


class Datafit(Protocol):
    @property
    def size(self) -> int: ...

    def value(self, w: Tensor) -> Tensor: ...
    def grad(self, w: Tensor) -> Tensor: ...
    def hessian(self, idx: Tensor, w: Tensor) -> Tensor: ...
    @property
    def lipschitz(self) -> float: ...
    @property
    def gradient_flops(self) -> int: ...
    def restrict(self, idx: Tensor) -> Any: ...


class Penalty(Protocol):
    """What the solver asks of a penalty, smooth off its kinks."""

    def value(self, w: Tensor) -> Tensor: ...
    def prox_(self, w: Tensor, step: Step) -> Tensor: ...
    def optimality(self, w: Tensor, grad: Tensor) -> Tensor: ...
    def kinked(self, w: Tensor) -> Tensor: ...


PenaltyFor = Callable[[Tensor | None], Penalty]
"""``penalty_for(idx)``: the penalty on coordinates ``idx`` (``None``: all of them)."""


@runtime_checkable
class SeparablePenalty(Penalty, Protocol):
    """A penalty of each coordinate alone: its Hessian off the kinks is a diagonal, ``[d]``."""

    def hessian_diag(self, w: Tensor) -> Tensor: ...


@runtime_checkable
class CouplingPenalty(Penalty, Protocol):
    """A penalty that couples coordinates (a group penalty): its Hessian on ``idx``, ``[k,
    k]``, where a direction carries a whole group to its kink at zero, and the whole groups
    of some entries (a working set takes whole groups)."""

    def hessian_block(self, idx: Tensor, w: Tensor) -> Tensor: ...
    def group_crossing(self, idx: Tensor, w: Tensor, d: Tensor) -> tuple[Tensor, float]: ...
    def whole_groups(self, idx: Tensor) -> Tensor: ...


def couples(penalty: Penalty) -> TypeGuard[CouplingPenalty]:
    """Whether ``penalty`` is a :class:`CouplingPenalty` (see :func:`_implements`)."""
    return _implements(type(penalty), CouplingPenalty)


def separable(penalty: Penalty) -> TypeGuard[SeparablePenalty]:
    """Whether ``penalty`` is a :class:`SeparablePenalty` (see :func:`_implements`)."""
    return _implements(type(penalty), SeparablePenalty)


@functools.cache
def _implements(cls: type, protocol: Any) -> bool:
    """Whether the class ``cls`` has every method of the runtime ``protocol``, decided once
    per class: ``isinstance`` against a protocol reads every member each time (tens of
    microseconds), and the solver asks at each working set and Newton step."""
    return issubclass(cls, protocol)


MAX_NEWTON_SIZE = 1500
"""Largest support polished by Newton's method (a dense Cholesky of that size)."""

NEWTON_BUDGET = 200
"""A Newton step on a support of size ``m`` (a Cholesky, ``m^3 / 3`` operations) is taken only
when it costs at most this many gradients of the datafit (``datafit.gradient_flops``): on a
sparse design a gradient is cheap, and proximal-gradient steps beat a large dense solve."""


SMALL_HESSIAN = 500
"""A Hessian of this size (2 MB) is formed whatever the design's size."""


def newton_limit(datafit: Datafit) -> int:
    """Largest support Newton's method works on, for this datafit (at most
    ``MAX_NEWTON_SIZE``): its ``m^3 / 3`` operations within ``NEWTON_BUDGET`` gradients, and,
    where the Hessian is formed for the step (no kept Gram matrix), its ``m^2`` values within
    a quarter of the values one gradient reads (the design's stored values) or
    ``SMALL_HESSIAN``, whichever is larger."""
    affordable = (3.0 * NEWTON_BUDGET * datafit.gradient_flops) ** (1.0 / 3.0)
    limit = min(MAX_NEWTON_SIZE, int(affordable))
    if not getattr(datafit, "hessian_is_cheap", False):
        stored = int(math.sqrt(datafit.gradient_flops / 16))
        limit = min(limit, max(stored, SMALL_HESSIAN))
    return limit


FINAL_POLISH_SIZE = 200
"""Largest support polished once more after the tolerance is met: on such a support Newton's
method costs little (under a millisecond) and makes an easy problem's answer exact, not merely
within ``tol``. A datafit whose Hessian is at hand (``datafit.hessian_is_cheap``: a Gram
matrix) is polished up to :func:`newton_limit`."""


def newton_flops(datafit: Datafit, size: int) -> float:
    """Operations of one Newton step on a support of ``size``: the Cholesky, ``size^3 / 3``,
    and, unless the Hessian is a slice of a kept matrix (``datafit.hessian_is_cheap``), forming
    it: ``size^2`` entries of a sum over the samples, each costing what one coordinate of the
    gradient costs (``datafit.gradient_flops / datafit.size``)."""
    flops = size**3 / 3.0
    if not getattr(datafit, "hessian_is_cheap", False):
        flops += size * size * datafit.gradient_flops / max(datafit.size, 1)
    return flops


def costly_newton(datafit: Datafit, size: int) -> bool:
    """Whether a Newton step on a support of ``size`` is costly: larger than
    ``FINAL_POLISH_SIZE`` and dearer than ten gradients (:func:`newton_flops`). Such a step
    waits until proximal-gradient steps stop changing the support."""
    return size > FINAL_POLISH_SIZE and newton_flops(datafit, size) > 10.0 * datafit.gradient_flops


def kkt(datafit: Datafit, penalty: Penalty) -> Callable[[Tensor], float]:
    """The optimality distance ``w -> penalty.optimality(w, grad f(w))``."""
    return lambda w: float(penalty.optimality(w, datafit.grad(w)))


def objective(datafit: Datafit, penalty: Penalty, w: Tensor) -> float:
    return float(datafit.value(w) + penalty.value(w))


def objective_gradient(datafit: Datafit, penalty: Penalty, w: Tensor, idx: Tensor) -> Tensor:
    """``[k]``: the gradient of ``datafit + penalty`` at ``w`` on ``idx``, where ``w`` is off
    the penalty's kinks (the penalty's part by autograd of its value)."""
    probe = w.detach().clone().requires_grad_(True)
    (pen_grad,) = torch.autograd.grad(penalty.value(probe), probe)
    return datafit.grad(w)[idx] + pen_grad[idx]


def _closer(datafit: Datafit, penalty: Penalty, candidate: Tensor, current: Tensor) -> bool:
    """Whether ``candidate`` is nearer optimality than ``current`` (by the distance to the
    subdifferential): how a step is judged when the objective cannot tell them apart."""
    distance = kkt(datafit, penalty)
    return distance(candidate) < distance(current)


def _newton_step(H: Tensor, g: Tensor) -> tuple[Tensor, Tensor | None]:
    """``(d, d_min)``: ``d = -H^{-1} g`` (``H [m, m]``, ``g [m]``) by Cholesky, ``H = L L^T``,
    and, when ``H`` is singular to its rounding (a pivot ``L_ii^2`` at most
    ``m eps ||H||_F``), the minimum-norm solution ``d_min`` of ``H d = -g`` (else ``None``).
    Without a factor, ``d`` is the minimum-norm solution.

    A nearly singular ``H`` (collinear features) gives Cholesky a long step along the
    near-null direction, where an L1 penalty still decreases linearly: cut where a
    coordinate crosses zero, it carries that coordinate there. Where no kink cuts it (a free
    coordinate, a group penalty, the classes' common shift of a multinomial model), its
    length is set by rounding, and :func:`polish` takes ``d_min`` instead.
    """
    factor, info = torch.linalg.cholesky_ex(H)
    if int(info) != 0:
        return least_squares(H, -g[:, None]).flatten(), None
    d = torch.cholesky_solve(-g[:, None], factor).flatten()
    tau = H.shape[0] * torch.finfo(H.dtype).eps * float(torch.linalg.matrix_norm(H))
    if float(factor.diagonal().min()) ** 2 > tau:
        return d, None
    return d, least_squares(H, -g[:, None]).flatten()


def _first_kink(w: Tensor, d: Tensor, kinked: Tensor) -> tuple[Tensor, float]:
    """``(crossing, t)`` of a direction ``d`` from ``w`` (both ``[k]``): the kinked entries it
    carries towards zero, and the step at which the first of them reaches zero (``inf`` when
    it carries none)."""
    crossing = kinked & (torch.sign(w) * d < 0)
    if not bool(crossing.any()):
        return crossing, math.inf
    return crossing, float((-w[crossing] / d[crossing]).min())


def _longest_step(w: Tensor, d: Tensor, kinked: Tensor) -> tuple[Tensor, float]:
    """``(crossing, t_max)``: :func:`_first_kink` with the step capped at 1, the longest step
    along ``d`` that keeps every kinked entry on its side of zero."""
    crossing, t = _first_kink(w, d, kinked)
    return crossing, min(1.0, t)


def _step_limit(
    penalty: Penalty, current: Tensor, idx: Tensor, d: Tensor, kinked: Tensor
) -> tuple[Tensor, float, bool]:
    """``(landing, t_max, whole)`` of the direction ``d`` on ``idx`` from ``current``: the
    longest step (at most 1) before an entry crosses its kink (:func:`_longest_step`), or,
    for a group penalty, before a whole group passes zero (``penalty.group_crossing``),
    whichever comes first. ``whole``: the limit is a group's, whose entries ``landing`` are
    set to zero at ``t_max``; otherwise ``landing`` are the entries moving towards their
    kink, those of them that reach it set to zero there."""
    crossing, t_max = _longest_step(current[idx], d, kinked)
    if couples(penalty):
        group, t_group = penalty.group_crossing(idx, current, d)
        if t_group < t_max:
            return group, t_group, True
    return crossing, t_max, False


def _to_nearest_kink(w: Tensor, drift: Tensor, kinked: Tensor) -> Tensor | None:
    """``drift`` scaled so that half of it carries the nearest kinked coordinate it moves
    towards zero onto zero (the line search of :func:`polish` then lands it there exactly);
    ``None`` when it moves none towards zero. Along a direction where the datafit is flat and
    the penalty falls linearly, the objective falls until such a coordinate reaches its
    kink."""
    _, t = _first_kink(w, drift, kinked)
    return None if math.isinf(t) else drift * (2.0 * t)


def newton_support(penalty: Penalty, w: Tensor, free: Tensor) -> Tensor:
    """``[d]`` boolean: the coordinates Newton's method works on, the nonzero ones and those
    where the penalty is smooth at zero (``free`` ones, a pure L2 part)."""
    return (w != 0) | free | ~penalty.kinked(w)


def polish(
    datafit: Datafit,
    penalty: Penalty,
    w: Tensor,
    free: Tensor,
    max_newton: int = 50,
    final: bool = False,
) -> Tensor | None:
    """Newton's method on the support of ``w`` (plus the coordinates where the penalty is
    smooth: :func:`newton_support`) with the signs of ``w`` kept, an active-set method: a step
    that would carry a coordinate across a kink at zero stops there and drops it from the
    support. Every step lowers the objective.
    Returns ``None`` when no step could be taken, or when the support is too large for a
    dense Newton system (:func:`newton_limit`; first-order steps carry on alone).

    ``final``: the last polish of a solution that meets the tolerance, where a full step whose
    objective change is within round-off is also taken when it lowers the optimality
    distance (near the optimum the objective is flat to machine precision, the gradient is
    not). During the iterations such steps are not taken: the objective alone decides."""
    smooth = free | ~penalty.kinked(w)
    if int(((w != 0) | smooth).sum()) > newton_limit(datafit):
        return None
    current = w.clone()
    best = objective(datafit, penalty, current)
    flat = _round_off(datafit, w, best)
    moved_at_all = False
    quadratic = bool(getattr(datafit, "affine_grad", False)) and bool(
        getattr(penalty, "piecewise_quadratic", not couples(penalty))
    )  # a quadratic datafit and a piecewise-quadratic penalty (a group norm is not)
    known: tuple[Tensor, Tensor] | None = None  # (idx, loss Hessian) after a null-space step
    for _ in range(max_newton):
        idx = torch.nonzero((current != 0) | smooth).flatten()
        if idx.numel() == 0:
            break
        signs = torch.sign(current[idx])
        known_hessian = None if final else _principal(known, idx)  # last polish: afresh
        direction = _newton_direction(datafit, penalty, current, idx, known_hessian, final)
        if direction is None:
            break
        d, d_min, drift, loss_hessian = direction
        to_kink = None if drift is None else _to_nearest_kink(current[idx], drift, ~smooth[idx])
        known = None
        if to_kink is not None:  # along the null space: the loss Hessian stays as it is
            d, d_min, known = to_kink, None, (idx, loss_hessian)
        limit = _step_limit(penalty, current, idx, d, ~smooth[idx])
        if d_min is not None and limit[1] >= 1.0:  # a long step that no kink cuts
            d = d_min
            limit = _step_limit(penalty, current, idx, d, ~smooth[idx])
        search = _Search(datafit, penalty, current, idx, d, signs, limit, final, flat)
        accepted, candidate, value, step = search.run(best)
        if not accepted:
            break
        decrease = best - value
        current, best, moved_at_all = candidate, value, True
        if step == 1.0 and quadratic:  # a quadratic on a fixed support: one full step solves it
            break
        if decrease <= 1e-16 * (1.0 + abs(best)) and limit[1] >= 1.0:
            break
        smooth = free | ~penalty.kinked(current)  # a group landed on zero is kinked now
    return current if moved_at_all else None


def _round_off(datafit: Datafit, w: Tensor, best: float) -> float:
    """The objective's round-off near ``w``: it sums terms as large as its value at zero, so
    a change below this is noise (a full step is then judged by the optimality distance)."""
    at_zero = abs(float(datafit.value(torch.zeros_like(w))))
    return 256 * torch.finfo(w.dtype).eps * max(1.0, abs(best), at_zero)


def _principal(known: tuple[Tensor, Tensor] | None, idx: Tensor) -> Tensor | None:
    """The loss Hessian of ``known = (kept, H)`` on ``idx``, its principal submatrix, when
    ``idx`` is a subset of ``kept`` (both sorted); else ``None``.

    A step along the null space of the loss Hessian (the drift of :func:`_newton_direction`,
    such as a multinomial feature's common shift over its classes) leaves the model's
    predictions, hence the Hessian, as they were: only the coordinates it carried to zero
    leave it."""
    if known is None:
        return None
    kept, H = known
    at = torch.searchsorted(kept, idx).clamp(max=kept.numel() - 1)
    if not torch.equal(kept[at], idx):
        return None
    return principal(H, at)


def _newton_direction(
    datafit: Datafit,
    penalty: Penalty,
    current: Tensor,
    idx: Tensor,
    loss_hessian: Tensor | None = None,
    final: bool = False,
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor] | None:
    """Newton's directions on the coordinates ``idx`` at ``current``, each ``[len(idx)]``.

    Args:
        datafit: the smooth part.
        penalty: the penalty, whose gradient and Hessian on ``idx`` are added.
        current: the point ``[d]``.
        idx: the coordinates, sorted.
        loss_hessian: the datafit's Hessian on ``idx`` at ``current`` when already known
            (see :func:`_principal`); formed when ``None``.
        final: a solution's last polish (see :func:`polish`), whose line search judges a
            step the objective cannot resolve by the optimality distance: only a gradient
            of exactly zero takes no step.

    Returns:
        ``(d, d_min, drift, loss_hessian)``: ``d = -H^{-1} g`` with ``g`` and ``H`` the
        gradient and Hessian of the objective there (the penalty's part from its
        ``hessian_block(idx, w)`` where it has one, a group penalty's, else its diagonal);
        ``d_min``, the minimum-norm one when ``H`` is singular to rounding (see
        :func:`_newton_step`); ``drift = -(g + H d)``, the part of ``-g`` that no step
        reaches, when it is above a thousandth of ``g`` (``g`` then has a part along
        ``H``'s null space: the classes' common shift of a multinomial feature, where the
        loss is flat and an L1 term falls linearly), else ``None``; and the datafit's
        Hessian on ``idx``. ``None`` when the gradient is already zero to round-off (on
        a badly conditioned support a gradient that small can still carry a step: a rank-10
        design at ``l2 = 3e-9`` kept coefficients 5e-10 off until the final polish took it).
    """
    g = objective_gradient(datafit, penalty, current, idx)
    size = float(g.abs().max())
    if size == 0 or (not final and size <= 1e-15 * (1.0 + float(current.abs().max()))):
        return None
    if loss_hessian is None:
        loss_hessian = datafit.hessian(idx, current)
    H = loss_hessian + _penalty_hessian(penalty, idx, current)
    d, d_min = _newton_step(H, g)
    drift = -(g + H @ (d if d_min is None else d_min))
    large = float(drift.norm()) > 1e-3 * float(g.norm())
    return d, d_min, (drift if large else None), loss_hessian


def _penalty_hessian(penalty: Penalty, idx: Tensor, w: Tensor) -> Tensor:
    """``[k, k]``: the penalty's Hessian on ``idx`` at ``w``, from its ``hessian_block`` or
    its ``hessian_diag``."""
    if couples(penalty):
        return penalty.hessian_block(idx, w)
    if not separable(penalty):
        raise TypeError(f"{type(penalty).__name__} has neither hessian_diag nor hessian_block")
    return torch.diag(penalty.hessian_diag(w)[idx])


@dataclass
class _Search:
    """The backtracking line search of one Newton step ``d`` on the coordinates ``idx``:
    from ``t_max`` (the longest step that keeps every kinked coordinate on its side of
    zero, landing exactly on zero where it stops), halving until the objective decreases, or
    until two steps in a row are within ``flat``, the objective's round-off, of the start
    (see :func:`polish` for ``final``)."""

    datafit: Datafit
    penalty: Penalty
    current: Tensor
    idx: Tensor
    d: Tensor
    signs: Tensor
    limit: tuple[Tensor, float, bool]
    """``(landing, t_max, whole)`` of :func:`_step_limit`."""
    final: bool
    flat: float

    def candidate(self, step: float) -> Tensor:
        """The point ``step`` along ``d``."""
        idx, out = self.idx, self.current.clone()
        landing, t_max, whole = self.limit
        out[idx] = self.current[idx] + step * self.d
        if step == t_max and t_max < 1.0:  # land exactly on zero where it stops
            hits = landing if whole else landing & ((out[idx] * self.signs) <= 0)
            landed = out[idx]
            landed[hits] = 0.0
            out[idx] = landed
        return out

    def run(self, best: float) -> tuple[bool, Tensor, float, float]:
        """``(accepted, candidate, its objective, step)``."""
        step = t_max = self.limit[1]
        candidate, value, was_flat = self.current, best, False
        for _ in range(40):
            candidate = self.candidate(step)
            value = objective(self.datafit, self.penalty, candidate)
            if value < best or (value <= best and step == t_max and t_max < 1.0):
                return True, candidate, value, step
            if (
                self.final
                and step == t_max
                and value <= best + self.flat
                and _closer(self.datafit, self.penalty, candidate, self.current)
            ):
                return True, candidate, min(value, best), step
            flat = abs(value - best) <= self.flat
            if flat and was_flat:  # two steps in a row the objective cannot tell from here:
                break  # shorter ones cannot either
            was_flat = flat
            step *= 0.5
        return False, candidate, value, step
