"""The sparse-group lasso as the linear solver asks a penalty to be: its prox, where it is
kinked, its Hessian elsewhere (the block of each nonzero group, which Newton's method uses),
where a Newton step carries a group through zero, and its working sets of whole groups; and
the smallest strength at which it zeros every group.

    alpha * (l1_ratio * ||w||_1 + (1 - l1_ratio) * sum_g c_g * ||w_g||_2)

The group part is :class:`shrinkage.GroupLasso` and the L1 part :class:`shrinkage.L1`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .._kernels import Step
from ..penalties import L1 as L1Penalty
from ..penalties import GroupLasso as GroupLassoPenalty

__all__ = ["GroupPenalty", "sparse_group_alpha_max"]


class GroupPenalty:
    """The sparse-group lasso as the linear solver asks a penalty to be.

    ``alpha * (l1_ratio * ||w||_1 + (1 - l1_ratio) * sum_g c_g ||w_g||_2)`` over ``[d]``
    coefficients, with ``c_g = sqrt(p_g)`` (``by_size``) or 1 and the entries ``free``
    unpenalized. ``l1_ratio=0`` is the group lasso. The prox is the L1 prox followed by the
    group prox (exact for this sum).

    Args:
        alpha: the strength, ``>= 0``.
        ids: ``[d]`` group ids.
        free: ``[d]`` booleans, the unpenalized entries (an intercept).
        by_size: weigh each group by the root of its size.
        l1_ratio: the L1 share, in ``[0, 1]``.

    Example:
        >>> import torch
        >>> ids, free = torch.tensor([0, 0, 1]), torch.zeros(3, dtype=torch.bool)
        >>> GroupPenalty(1.0, ids, free, l1_ratio=0.5).prox_(torch.tensor([3.0, 0.2, 0.4]), 1.0)
        tensor([1.7929, 0.0000, 0.0000])
    """

    def __init__(
        self, alpha: float, ids: Tensor, free: Tensor, by_size: bool = True, l1_ratio: float = 0.0
    ) -> None:
        self.alpha, self.by_size, self.l1_ratio = alpha, by_size, l1_ratio
        self.ids = torch.where(free, ids.max() + 1 if ids.numel() else 0, ids)
        self.free = free
        root_sizes = torch.bincount(self.ids).to(torch.float64).sqrt()
        factor = torch.ones_like(root_sizes) if by_size else 1.0 / root_sizes
        if bool(free.any()):
            factor[-1] = 0.0  # the intercept's own group, unpenalized
        self.penalty = GroupLassoPenalty(alpha * (1.0 - l1_ratio), groups=self.ids, factor=factor)
        self.l1 = (
            L1Penalty(alpha * l1_ratio, factor=(~free).to(torch.float64)) if l1_ratio else None
        )
        self.n_groups = factor.numel()
        self.group_weights = root_sizes * factor
        """``[G]``: each group's weight, ``sqrt(p_g)`` (``by_size``) or 1 (0: the free group)."""
        self.weights = self.group_weights[self.ids]
        """Each entry's group weight: ``sqrt(p_g)`` (``by_size``) or 1."""
        self.alone = torch.bincount(self.ids)[self.ids] == 1
        """``[d]``: the entries alone in their group."""
        self.piecewise_quadratic = l1_ratio == 1.0 or bool(self.alone[~free].all())
        """Whether the penalty is piecewise linear: no group norm of several entries (Newton's
        polish then solves a quadratic datafit on a fixed support in one step)."""

    def restrict(self, idx: Tensor) -> GroupPenalty:
        """The penalty on the entries ``idx``, which hold whole groups (a working set).

        Args:
            idx: ``[k]`` sorted entries.

        Returns:
            The same penalty on those entries, their groups renumbered.

        Raises:
            ValueError: ``idx`` holds part of a group.
        """
        ids, free = self.ids[idx], self.free[idx]
        if not torch.equal(self.whole_groups(idx), idx):
            raise ValueError("a group penalty is restricted to whole groups only")
        compact = torch.zeros_like(ids)
        compact[~free] = torch.unique(ids[~free], return_inverse=True)[1]
        return GroupPenalty(self.alpha, compact, free, self.by_size, self.l1_ratio)

    def penalty_for(self, idx: Tensor | None) -> GroupPenalty:
        """The penalty on the entries ``idx`` (``None``: on all of them, ``self``), as the
        solver asks for it (:data:`~shrinkage.linear._newton.PenaltyFor`).

        Args:
            idx: ``[k]`` sorted entries holding whole groups, or ``None``.

        Returns:
            :meth:`restrict` ``(idx)``, or ``self``.
        """
        return self if idx is None else self.restrict(idx)

    def whole_groups(self, idx: Tensor) -> Tensor:
        """The entries of every group that has an entry in ``idx``, sorted: what a working
        set of a group penalty takes.

        Args:
            idx: ``[k]`` entries.

        Returns:
            ``[m]``, ``m >= k``, sorted entries.
        """
        chosen = torch.zeros(self.n_groups, dtype=torch.bool, device=idx.device)
        chosen[self.ids[idx]] = True
        return torch.nonzero(chosen[self.ids]).flatten()

    def value(self, w: Tensor) -> Tensor:
        group = self.penalty.value(w)
        return group if self.l1 is None else group + self.l1.value(w)

    def prox_(self, w: Tensor, step: Step) -> Tensor:
        if self.l1 is not None:
            self.l1.prox_(w, step)
        return self.penalty.prox_(w, step)

    def optimality(self, w: Tensor, grad: Tensor) -> Tensor:
        """The distance of ``-grad`` to the subdifferential at ``w``: per group, ``max(||S(g_g,
        l1)|| - tau_g, 0)`` at a zero group (``S`` the soft threshold); elsewhere the residual
        of each nonzero entry and ``max(|g_i| - l1, 0)`` at a zero entry."""
        if self.l1 is None:
            return self.penalty.optimality(w, grad)
        l1 = self.l1.lam * (~self.free).to(w.dtype)
        tau = self.penalty.lam * self.weights
        norms = self._norms(w)
        safe = torch.where(norms > 0, norms, 1.0)
        on_entry = grad + l1 * torch.sign(w) + tau * w / safe
        shrunk = (grad.abs() - l1).clamp_min(0.0)
        live = torch.where(w != 0, on_entry, shrunk)
        per_group = torch.zeros(self.n_groups, dtype=w.dtype, device=w.device)
        live_sq = per_group.index_add(0, self.ids, torch.where(norms > 0, live**2, 0.0))
        shrunk_sq = per_group.index_add(0, self.ids, shrunk**2)
        group_tau = self.penalty.lam * self.group_weights.to(w.dtype)
        dead = (shrunk_sq.sqrt() - group_tau).clamp_min(0.0) ** 2
        alive = per_group.index_add(0, self.ids, (norms > 0).to(w.dtype)) > 0
        return torch.where(alive, live_sq, dead).sum().sqrt()

    def _norms(self, w: Tensor) -> Tensor:
        """Each entry's group norm, ``[d]``."""
        squares = torch.zeros(self.n_groups, dtype=w.dtype, device=w.device)
        squares = squares.index_add(0, self.ids, w * w)
        return squares.sqrt()[self.ids]

    def kinked(self, w: Tensor) -> Tensor:
        """``[d]``: where zero is a kink, every penalized entry with an L1 part, else the
        entries of a zero group and those alone in their group (where the group norm is the
        absolute value); the group penalty is smooth elsewhere."""
        if self.l1 is not None:
            return ~self.free
        return ((self._norms(w) == 0) | self.alone) & ~self.free

    def group_crossing(self, idx: Tensor, w: Tensor, d: Tensor) -> tuple[Tensor, float]:
        """Where the direction ``d`` (``[k]``, on the entries ``idx`` of ``w``) first carries a
        penalized group through zero: the step ``t = -||w_g||^2 / (w_g^T d_g)`` at which the
        group's component along ``w_g`` vanishes, the smallest over the groups it shrinks.

        Args:
            idx: ``[k]`` sorted entries, whole groups or every nonzero entry of a group.
            w: ``[d]`` the point; d: ``[k]`` the direction on ``idx``.

        Returns:
            ``(landing, t)``: the ``[k]`` entries of the group that gets there first, and
            its step (``inf``, with no entry, when no group shrinks).
        """
        ids, values = self.ids[idx], w[idx]
        per_group = torch.zeros(self.n_groups, dtype=w.dtype, device=w.device)
        along = per_group.index_add(0, ids, values * d)
        squares = per_group.index_add(0, ids, values * values)
        shrinks = (along < 0) & (squares > 0) & (self.group_weights > 0)
        if not bool(shrinks.any()):
            return torch.zeros_like(idx, dtype=torch.bool), math.inf
        steps = torch.where(shrinks, -squares / torch.where(shrinks, along, -1.0), math.inf)
        first = int(torch.argmin(steps))
        return ids == first, float(steps[first])

    def hessian_block(self, idx: Tensor, w: Tensor) -> Tensor:
        """``[k, k]``: the Hessian on ``idx``, ``lam c_g (I - u_g u_g^T) / ||w_g||`` with
        ``u_g = w_g / ||w_g||`` within each nonzero group, 0 across groups (the L1 part adds
        none off its kinks)."""
        norms = self._norms(w)[idx]
        safe = torch.where(norms > 0, norms, 1.0)
        ids, unit = self.ids[idx], w[idx] / safe
        live = ((norms > 0) & ~self.free[idx]).to(w.dtype)
        scale = self.penalty.lam * self.weights[idx] * live / safe
        same = (ids[:, None] == ids[None, :]).to(w.dtype)
        eye = torch.eye(idx.numel(), dtype=w.dtype, device=w.device)
        return scale[:, None] * same * (eye - unit[:, None] * unit[None, :])


def sparse_group_alpha_max(
    grad: np.ndarray, ids: np.ndarray, weights: np.ndarray, l1_ratio: float
) -> float:
    """The smallest ``alpha`` at which every group is zero: per group the root of
    ``||S(g_g, alpha l1_ratio)|| = alpha (1 - l1_ratio) c_g`` (``S`` the soft threshold),
    found by bisection, the largest over groups.

    Args:
        grad: ``[d]`` the data term's gradient at zero coefficients (penalized entries).
        ids: ``[d]`` group ids; weights: ``[d]`` each entry's group weight ``c_g``.
        l1_ratio: the L1 share.

    Returns:
        ``alpha_max >= 0``.
    """
    if not grad.size:
        return 0.0
    g, n_groups = np.abs(grad), int(ids.max()) + 1
    group_weight = _group_weight(ids, weights, n_groups)
    if l1_ratio == 0:
        return float(np.max(np.sqrt(np.bincount(ids, weights=g * g)) / group_weight))
    low, high = np.zeros(n_groups), np.full(n_groups, g.max() / l1_ratio)
    for _ in range(200):
        mid = (low + high) / 2
        shrunk = np.maximum(g - mid[ids] * l1_ratio, 0.0)
        excess = np.sqrt(np.bincount(ids, weights=shrunk**2, minlength=mid.size))
        above = excess > mid * (1 - l1_ratio) * group_weight
        low, high = np.where(above, mid, low), np.where(above, high, mid)
    return float(high.max())


def _group_weight(ids: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """``[G]``: each group's weight from the entries' ``[d]`` copies."""
    out = np.zeros(n_groups)
    out[ids] = weights
    return out
