"""How one tensor's entries fall into groups, and the group-lasso prox under a diagonal metric.

The arithmetic behind :class:`shrinkage.GroupLasso`, kept apart from the penalty object: a
:class:`GroupLayout` sums per group and spreads per-group values back over the entries, and
:func:`group_prox_diagonal` solves the prox when every entry has its own step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["BLOCK", "GroupLayout", "group_prox_diagonal"]

BLOCK = 1 << 18
"""Entries of whole groups that :func:`group_prox_diagonal` solves at a time on the CPU when
the groups lie along dim 0 (2 MB per float64 buffer: Newton's passes then run in the cache)."""


class GroupLayout:
    """How one parameter's entries fall into groups: sums per group, and back to entries."""

    def __init__(self, shape: torch.Size, groups: str | Tensor, device: torch.device) -> None:
        self.shape = shape
        self.index: Tensor | None = None
        if len(shape) == 0:
            raise ValueError(
                "GroupLasso needs a parameter with at least one dimension, got a scalar"
            )
        if isinstance(groups, Tensor):
            if tuple(groups.shape) != tuple(shape):
                raise ValueError(
                    f"groups index of shape {tuple(groups.shape)} does not match the parameter's "
                    f"shape {tuple(shape)}; give one group id per entry"
                )
            self.index = groups.to(device).reshape(-1)
            self.n_groups = int(groups.max()) + 1 if groups.numel() else 0
            self.sizes = torch.bincount(self.index, minlength=self.n_groups)
            return
        if groups == "inputs" and len(shape) < 2:
            raise ValueError(
                "groups='inputs' needs a parameter with at least 2 dimensions, "
                f"got shape {tuple(shape)}"
            )
        self.dim = 0 if groups == "outputs" else 1
        self.n_groups = shape[self.dim]
        numel = math.prod(shape)
        per_group = numel // self.n_groups if self.n_groups else 0
        self.sizes = torch.full((self.n_groups,), per_group, device=device)
        self._other_dims = [d for d in range(len(shape)) if d != self.dim]
        self._view = [1] * len(shape)
        self._view[self.dim] = self.n_groups

    def sum(self, x: Tensor) -> Tensor:
        """Per-group sums of the entries of ``x`` (shape of the parameter) -> shape ``[G]``,
        a new tensor."""
        if self.index is not None:
            out = x.new_zeros(self.n_groups)
            return out.index_add(0, self.index, x.reshape(-1))
        if not self._other_dims:
            return x.clone()
        return x.sum(dim=self._other_dims)

    def norms(self, w: Tensor) -> Tensor:
        """``||w_g||_2`` per group, differentiable with gradient 0 (a subgradient) at zero."""
        squares = self.sum(w * w)
        nonzero = squares > 0
        return torch.where(nonzero, torch.where(nonzero, squares, 1.0).sqrt(), 0.0)

    def expand(self, v: Tensor) -> Tensor:
        """Per-group values ``[G]`` -> broadcastable to the parameter's shape."""
        if self.index is not None:
            return v[self.index].reshape(self.shape)
        return v.view(self._view)

    def blocks(self, entries: int | None = None) -> list[tuple[slice, GroupLayout]]:
        """Consecutive runs of whole groups of about ``entries`` entries (default
        :data:`BLOCK`), each with its own layout: one run of every group (``self``) unless
        the groups lie along dim 0 on the CPU and span more entries.

        Example:
            >>> layout = GroupLayout(torch.Size([5, 4]), "outputs", torch.device("cpu"))
            >>> [(b.start, b.stop, part.n_groups) for b, part in layout.blocks(8)]
            [(0, 2, 2), (2, 4, 2), (4, 5, 1)]
        """
        entries = BLOCK if entries is None else entries
        numel = math.prod(self.shape)
        if self.index is not None or self.dim != 0:
            return [(slice(None), self)]
        if numel <= entries or self.sizes.device.type != "cpu":
            return [(slice(0, self.n_groups), self)]
        rows = max(1, entries // max(numel // self.n_groups, 1))
        out, parts = [], {}
        for start in range(0, self.n_groups, rows):
            stop = min(start + rows, self.n_groups)
            if stop - start not in parts:
                shape = torch.Size([stop - start, *self.shape[1:]])
                parts[stop - start] = GroupLayout(shape, "outputs", self.sizes.device)
            out.append((slice(start, stop), parts[stop - start]))
        return out


def group_prox_diagonal(v: Tensor, step: Tensor, tau: Tensor, layout: GroupLayout) -> Tensor:
    """Group-lasso prox under the diagonal metric ``D = diag(1 / step)``.

    Minimises ``sum_i d_i / 2 * (x_i - v_i)^2 + sum_g tau_g * ||x_g||`` with ``d = 1 / step``.
    A group is zero iff ``||d * v||_g <= tau_g``; otherwise ``x_i = d_i v_i r / (d_i r +
    tau_g)``, where ``r = ||x_g||`` is the root of ``h(r) = phi(r)^(-1/2) - 1`` with ``phi(r)
    = sum_i (d_i v_i / (d_i r + tau_g))^2`` (see :func:`_group_radii`). In float64. On the
    CPU, groups along dim 0 (``"outputs"``) are solved :data:`BLOCK` entries of whole groups
    at a time: each group's answer depends on its own entries only, and a block's float64
    work stays in the cache through Newton's iterations instead of passing over memory at
    each. Elsewhere (a GPU: no such cache, and a kernel launch per operation) all at once.

    Args:
        v: the point, the parameter's shape.
        step: the element-wise steps (``> 0``), the shape of ``v``.
        tau: ``[G]``, each group's threshold.
        layout: how the entries of ``v`` fall into the ``G`` groups.

    Returns:
        The prox, the shape and dtype of ``v``; ``v`` and ``step`` are left unchanged.

    Example:
        >>> layout = GroupLayout(torch.Size([2, 2]), "outputs", torch.device("cpu"))
        >>> v, step = torch.tensor([[3.0, 4.0], [0.1, 0.1]]), torch.ones(2, 2)
        >>> group_prox_diagonal(v, step, torch.tensor([1.0, 1.0]), layout)
        tensor([[2.4000, 3.2000],
                [0.0000, 0.0000]])
    """
    rows = layout.blocks()
    if len(rows) == 1:
        return _prox(v, step, tau, layout)
    out = torch.empty_like(v)
    for block, part in rows:
        out[block] = _prox(v[block], step[block], tau[block], part)
    return out


def _prox(v: Tensor, step: Tensor, tau: Tensor, layout: GroupLayout) -> Tensor:
    """:func:`group_prox_diagonal` on all of ``v`` at once."""
    d = step.to(torch.float64, copy=True).reciprocal_()
    dv = v.to(torch.float64, copy=True).mul_(d)
    dv2 = dv.square()
    tau64 = tau.double()
    norm = layout.sum(dv2).sqrt_()
    active = norm > tau64
    hi = layout.sum(v.double().square()).sqrt_()
    r_e = layout.expand(_group_radii(d, dv2, tau64, norm, active, hi, layout))
    dv.mul_(r_e).div_(torch.addcmul(layout.expand(tau64), d, r_e))
    return dv.masked_fill_(layout.expand(~active), 0.0).to(v.dtype)


def _group_radii(
    d: Tensor,
    dv2: Tensor,
    tau: Tensor,
    norm: Tensor,
    active: Tensor,
    hi: Tensor,
    layout: GroupLayout,
) -> Tensor:
    """``[G]``: each active group's root ``r`` of ``h(r) = phi(r)^(-1/2) - 1`` (0 for the
    others), with ``dv2 = (d * v)^2`` and ``norm = ||d * v||_g``.

    ``h`` is linear in ``r`` when ``d`` is constant on a group, so the start is that root
    with ``d`` replaced by its mean weighted by ``(d v)^2``, and Newton's method (safeguarded
    by bisection on ``[0, hi]``, ``hi = ||v_g||``, where ``h(0) < 0 < h(hi)``) takes a few
    steps from there, until ``|h| < 1e-14``. The steps work in two buffers of the entries'
    size, allocated once.
    """
    t, q = torch.empty_like(dv2), torch.empty_like(dv2)
    tau_e = layout.expand(tau)
    lo = torch.zeros_like(tau)
    mean_d = layout.sum(torch.mul(d, dv2, out=t)).div_(torch.where(active, norm.square(), 1.0))
    r = torch.where(active, (norm - tau) / mean_d, 0.0).clamp_(lo, hi)
    inactive = ~active
    for _ in range(100):
        torch.addcmul(tau_e, d, layout.expand(r), out=t).reciprocal_()  # 1 / (d r + tau)
        phi = layout.sum(torch.mul(dv2, t, out=q).mul_(t))
        h = phi.rsqrt() - 1.0
        converged = (h.abs() < 1e-14) | inactive
        if bool(converged.all()):  # before the slope: the last pass only checks
            break
        slope = phi.pow(-1.5) * layout.sum(q.mul_(t).mul_(d))  # dh/dr
        lo = torch.where(h < 0, r, lo)
        hi = torch.where(h > 0, r, hi)
        newton = r - h / slope
        inside = (newton > lo) & (newton < hi) & torch.isfinite(newton)
        r = torch.where(converged, r, torch.where(inside, newton, 0.5 * (lo + hi)))
    return r
