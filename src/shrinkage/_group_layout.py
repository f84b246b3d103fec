"""How one tensor's entries fall into groups, and the group-lasso prox under a diagonal metric.

The arithmetic behind :class:`shrinkage.GroupLasso`, kept apart from the penalty object: a
:class:`GroupLayout` sums per group and spreads per-group values back over the entries, and
:func:`group_prox_diagonal` solves the prox when every entry has its own step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["GroupLayout", "group_prox_diagonal"]


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
        """Per-group sums of the entries of ``x`` (shape of the parameter) -> shape ``[G]``."""
        if self.index is not None:
            out = x.new_zeros(self.n_groups)
            return out.index_add(0, self.index, x.reshape(-1))
        if not self._other_dims:
            return x
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


def group_prox_diagonal(v: Tensor, step: Tensor, tau: Tensor, layout: GroupLayout) -> Tensor:
    """Group-lasso prox under the diagonal metric ``D = diag(1 / step)``.

    Minimises ``sum_i d_i / 2 * (x_i - v_i)^2 + sum_g tau_g * ||x_g||``. A group is zero iff
    ``||d * v||_g <= tau_g``; otherwise ``x_i = d_i v_i r / (d_i r + tau_g)`` where ``r = ||x_g||``
    solves ``phi(r) = sum_i (d_i v_i / (d_i r + tau_g))^2 = 1``. We solve
    ``h(r) = phi(r)^(-1/2) - 1 = 0`` (linear in ``r`` when ``d`` is constant on the group) by
    Newton's method safeguarded by bisection on ``[0, ||v_g||]``, in float64.
    """
    dtype = v.dtype
    v64, d = v.double(), 1.0 / step.double()
    tau64 = tau.double()
    tau_e = layout.expand(tau64)
    dv = d * v64
    active = layout.sum(dv * dv).sqrt() > tau64
    lo = torch.zeros_like(tau64)
    hi = layout.sum(v64 * v64).sqrt()
    r = 0.5 * hi
    for _ in range(100):
        denom = d * layout.expand(r) + tau_e
        phi = layout.sum((dv / denom) ** 2)
        h = phi.rsqrt() - 1.0
        dphi = layout.sum(-2.0 * d * dv * dv / denom**3)
        dh = -0.5 * phi.pow(-1.5) * dphi
        lo = torch.where(h < 0, r, lo)
        hi = torch.where(h > 0, r, hi)
        newton = r - h / dh
        inside = (newton > lo) & (newton < hi) & torch.isfinite(newton)
        r_next = torch.where(inside, newton, 0.5 * (lo + hi))
        converged = (h.abs() < 1e-14) | ~active
        r = torch.where(converged, r, r_next)
        if bool(converged.all()):
            break
    r_e = layout.expand(r)
    x = dv * r_e / (d * r_e + tau_e)
    return torch.where(layout.expand(active), x, 0.0).to(dtype)
