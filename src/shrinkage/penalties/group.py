"""The group lasso on slices of one tensor: rows, columns or any grouping by index."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from .._group_layout import GroupLayout, group_prox_diagonal
from .._kernels import Step
from .._validation import check_factor
from .base import Penalty, check_lam, check_step

__all__ = ["GroupLasso"]

_FORMER = {"rows": "outputs", "columns": "inputs"}
"""The former words for ``groups``, and what they are now."""


def _same_key(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Whether two layout keys ``(shape, device, dtype, groups, factor)`` agree: the same
    shape, device and dtype, and the very same ``groups`` and ``factor`` objects."""
    return a[:3] == b[:3] and a[3] is b[3] and a[4] is b[4]


class GroupLasso(Penalty):
    """Group lasso ``P(w) = lam * sum_g f_g * sqrt(size_g) * ||w_g||_2``.

    Whole groups go to zero together: the prox scales each group by
    ``max(1 - step * lam * f_g * sqrt(size_g) / ||w_g||, 0)``.

    Args:
        lam: strength, ``>= 0``.
        groups: ``"outputs"`` (one group per output: slices along dim 0, a Linear's output
            neurons, a Conv's filters), ``"inputs"`` (one group per input: slices along dim 1,
            a Linear's input features, a Conv's input channels), or an integer tensor of the
            parameter's shape giving each entry's group id. The words mean the same in
            :class:`shrinkage.keras.GroupLasso`. The former ``"rows"`` and ``"columns"`` still
            work, with a ``FutureWarning``.
        factor: optional non-negative per-group weights ``f_g``, shape ``[G]``.

    Raises:
        ValueError: ``lam`` negative or not finite, ``groups`` none of the above.

    Example:
        >>> import torch
        >>> w = torch.tensor([[3.0, 4.0], [0.1, 0.0]])
        >>> GroupLasso(1.0, groups="outputs").prox_(w, 0.5)  # rows shrink by 0.5 * sqrt(2)
        tensor([[2.5757, 3.4343],
                [0.0000, 0.0000]])
    """

    def __init__(self, lam: float, groups: str | Tensor = "outputs", factor: Any = None) -> None:
        self.lam = check_lam(lam)
        if isinstance(groups, Tensor):
            if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
                raise TypeError(
                    f"groups as a tensor must hold integer group ids, got dtype {groups.dtype}"
                )
            if groups.numel() and int(groups.min()) < 0:
                raise ValueError(f"groups ids must be >= 0, got minimum {int(groups.min())}")
            groups = groups.detach().long().clone()  # the layout formed from it is kept
        elif groups in _FORMER:
            warnings.warn(
                f"GroupLasso(groups={groups!r}) is now groups={_FORMER[groups]!r} (the same "
                "groups; the word says the same in shrinkage.keras)",
                FutureWarning,
                stacklevel=2,
            )
            groups = _FORMER[groups]
        elif groups not in ("outputs", "inputs"):
            raise ValueError(
                "groups must be 'outputs', 'inputs' or an integer tensor of group ids; "
                f"got {groups!r}"
            )
        self.groups = groups
        self.factor = check_factor("factor", factor)
        self._last: tuple[tuple[Any, ...], GroupLayout, Tensor] | None = None

    def get_config(self) -> dict[str, Any]:
        return {"lam": self.lam, "groups": self.groups, "factor": self.factor}

    def _layout(self, w: Tensor) -> tuple[GroupLayout, Tensor]:
        """The group layout of ``w`` and the per-group weights ``f_g * sqrt(size_g)``, formed
        once for the last shape, device and dtype seen (a solver asks thousands of times)."""
        key = (tuple(w.shape), w.device, w.dtype, self.groups, self.factor)
        if self._last is not None and _same_key(self._last[0], key):
            return self._last[1], self._last[2]
        layout = GroupLayout(w.shape, self.groups, w.device)
        if self.factor is not None and self.factor.numel() not in (1, layout.n_groups):
            raise ValueError(
                f"factor has {self.factor.numel()} entries but the parameter of shape "
                f"{tuple(w.shape)} has {layout.n_groups} groups"
            )
        weights = self._weights(layout.sizes, w)
        self._last = (key, layout, weights)
        return layout, weights

    def value(self, w: Tensor) -> Tensor:
        layout, weights = self._layout(w)
        return self.lam * (weights * layout.norms(w)).sum()

    def prox_(self, w: Tensor, step: Step) -> Tensor:
        check_step(step)
        if self.lam == 0:
            return w
        with torch.no_grad():
            layout, weights = self._layout(w)
            if isinstance(step, Tensor) and step.numel() > 1:
                tau = self.lam * weights  # thresholds(), from the layout's cached weights
                w.copy_(group_prox_diagonal(w, step.expand_as(w), tau, layout))
                return w
            if isinstance(step, Tensor):  # one element, of any shape: one number, as [G] needs
                step = step.reshape(())
            w.mul_(layout.expand(self.scales(layout.sum(w * w), layout.sizes, step).to(w.dtype)))
        return w

    def scales(self, squares: Tensor, sizes: Tensor, step: float | Tensor) -> Tensor:
        """What the prox with a scalar ``step`` multiplies each group by.

        ``max(1 - step * lam * f_g * sqrt(size_g) / ||w_g||, 0)``, from the groups' squared
        norms (a penalty whose groups span several tensors sums them tensor by tensor).

        Args:
            squares: ``[G]``, the groups' ``||w_g||^2``.
            sizes: ``[G]``, their entry counts.
            step: the step, one number.

        Returns:
            ``[G]``, in ``[0, 1]``, in the dtype of ``squares``.
        """
        norms = torch.where(squares > 0, torch.where(squares > 0, squares, 1.0).sqrt(), 0.0)
        t = step * (self.lam * self._weights(sizes, squares))
        keep = norms > t
        return torch.where(keep, 1.0 - t / torch.where(keep, norms, 1.0), 0.0)

    def thresholds(self, sizes: Tensor, like: Tensor) -> Tensor:
        """Each group's threshold ``tau_g = lam * f_g * sqrt(size_g)``, what the prox under
        element-wise steps weighs the group's norm against.

        Args:
            sizes: ``[G]``, the groups' entry counts.
            like: a tensor of the entries' dtype and device.

        Returns:
            ``[G]``, in ``like``'s dtype and on its device.

        Example:
            >>> GroupLasso(0.5).thresholds(torch.tensor([4, 9]), torch.zeros(1))
            tensor([1.0000, 1.5000])
        """
        return self.lam * self._weights(sizes, like)

    def _weights(self, sizes: Tensor, like: Tensor) -> Tensor:
        """``[G]``: ``f_g * sqrt(size_g)`` in ``like``'s dtype and device."""
        weights = sizes.to(like.dtype).sqrt()
        if self.factor is not None:
            weights = weights * self.factor.to(device=like.device, dtype=like.dtype).reshape(-1)
        return weights

    def optimality(self, w: Tensor, grad: Tensor) -> Tensor:
        layout, weights = self._layout(w)
        tau = self.lam * weights
        norms = layout.norms(w)
        nonzero = norms > 0
        direction = w / layout.expand(torch.where(nonzero, norms, 1.0))
        on_support = layout.sum((grad + layout.expand(tau) * direction) ** 2).sqrt()
        off_support = torch.clamp(layout.norms(grad) - tau, min=0.0)
        return torch.linalg.vector_norm(torch.where(nonzero, on_support, off_support))

    def lambda_max(self, grad_at_zero: Tensor) -> float:
        g = grad_at_zero.detach()
        layout, weights = self._layout(g)
        gnorms = layout.norms(g)
        penalized = weights > 0
        if bool((gnorms[~penalized] > 0).any()):
            return math.inf
        if not bool(penalized.any()):
            return 0.0
        return float((gnorms[penalized] / weights[penalized]).max())
