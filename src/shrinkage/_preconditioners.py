"""The element-wise step of each adaptive torch optimizer, read from its documented state.

An adaptive optimizer moves a parameter ``w`` by ``lr / d * direction``, element by element,
with ``d > 0`` its denominator (Adam's ``sqrt(v_hat) + eps``). Proximal Adam applies a
penalty ``P`` with that same step, ``w <- prox_{(lr / d) P}(w)``; its fixed points are then
the stationary points of ``loss + P`` (``0 in grad + dP(w)`` element-wise), so ``lam`` means
what it means in the loss. This module writes ``d`` for each optimizer it knows into a buffer
the caller owns, from the state entries that the optimizer saves in its ``state_dict``
(``exp_avg_sq``, ``square_avg``, ``sum``, ``exp_inf``, ``step``) and its group's
hyperparameters; nothing else is read.

==============  =======================================================  ===============
optimizer       ``d``                                                    ``lr`` used
==============  =======================================================  ===============
Adam, AdamW,    ``sqrt(v) / sqrt(1 - beta2^t) + eps`` (``v``:            ``lr``
NAdam           ``exp_avg_sq``, ``max_exp_avg_sq`` with ``amsgrad``)
RAdam           ``(sqrt(v) + eps) / (sqrt(1 - beta2^t) * r_t)`` once     ``lr``
                the variance is rectified (``rho_t > 5``); before, 1
Adamax          ``exp_inf``                                              ``lr``
RMSprop         ``sqrt(square_avg [- grad_avg^2 if centered]) + eps``    ``lr``
Adagrad         ``sqrt(sum) + eps``                                      ``lr / (1 + (t - 1)
                                                                         * lr_decay)``
SGD             none: a uniform step                                     ``lr``
==============  =======================================================  ===============

For NAdam the step on the gradient mixes ``lr (1 - mu_t) / (1 - prod mu)`` and
``lr mu_{t+1} / (1 - prod mu)``, whose sum tends to ``lr``: the fixed points are those of
``lr / d``. Any other optimizer has no entry: :func:`preconditioner` returns ``None``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

__all__ = ["KNOWN", "Denominator", "Reader", "preconditioner"]


@dataclass(frozen=True)
class Denominator:
    """One parameter's denominator at this step: ``d = scale * sqrt(source - centre^2) +
    offset`` (``centre``: RMSprop's centred mean, else none), or ``d = source`` when not
    ``root``, or ``d = 1`` when there is no ``source``; the step is ``lr / d``."""

    lr: float
    source: Tensor | None
    scale: float = 1.0
    offset: float = 0.0
    root: bool = True
    centre: Tensor | None = None

    def write(self, out: Tensor, window: slice | None = None) -> None:
        """``d`` into ``out``: of the parameter's shape (``window`` None), or 1-D for the
        ``window`` of its flattened entries (the state contiguous or not)."""
        if self.source is None:
            out.fill_(1.0)
            return
        source = _part(self.source, window)
        if not self.root:
            out.copy_(source)
            return
        if self.centre is not None:
            centre = _part(self.centre, window)
            torch.addcmul(source, centre, centre, value=-1, out=out)
            out.sqrt_()
        else:
            torch.sqrt(source, out=out)
        # one fused a + alpha * x kernel
        torch.add(_constant(self.offset, out.dtype, out.device), out, alpha=self.scale, out=out)


Reader = Callable[[dict[str, Any], dict[str, Any]], Denominator | None]
"""``(state, group) -> Denominator``: one optimizer's denominator of a parameter, from its
state and group; ``None`` when the optimizer has not stepped it yet."""


def _part(t: Tensor, window: slice | None) -> Tensor:
    """``t``, or the ``window`` of its flattened entries."""
    return t if window is None else t.reshape(-1)[window]


def _adam(state: dict[str, Any], group: dict[str, Any]) -> Denominator | None:
    key = "max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq"
    if key not in state:
        return None
    bias_correction2 = 1.0 - group["betas"][1] ** float(state["step"])
    scale = 1.0 / math.sqrt(bias_correction2)
    return Denominator(float(group["lr"]), state[key], scale, float(group["eps"]))


def _radam(state: dict[str, Any], group: dict[str, Any]) -> Denominator | None:
    if "exp_avg_sq" not in state:
        return None
    beta2, t = group["betas"][1], float(state["step"])
    bias_correction2 = 1.0 - beta2**t
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2.0 * t * beta2**t / bias_correction2
    if rho_t <= 5.0:  # RAdam's first steps are plain momentum steps of size lr
        return Denominator(float(group["lr"]), None)
    rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    scale = 1.0 / (math.sqrt(bias_correction2) * rect)
    return Denominator(float(group["lr"]), state["exp_avg_sq"], scale, group["eps"] * scale)


def _adamax(state: dict[str, Any], group: dict[str, Any]) -> Denominator | None:
    if "exp_inf" not in state:
        return None
    return Denominator(float(group["lr"]), state["exp_inf"], root=False)


def _rmsprop(state: dict[str, Any], group: dict[str, Any]) -> Denominator | None:
    if "square_avg" not in state:
        return None
    centre = state["grad_avg"] if group.get("centered") else None
    return Denominator(
        float(group["lr"]), state["square_avg"], offset=float(group["eps"]), centre=centre
    )


def _adagrad(state: dict[str, Any], group: dict[str, Any]) -> Denominator | None:
    if "sum" not in state:
        return None
    t = float(state["step"])
    lr = float(group["lr"]) / (1.0 + (t - 1.0) * group.get("lr_decay", 0.0))
    return Denominator(lr, state["sum"], offset=float(group["eps"]))


@functools.lru_cache(maxsize=64)
def _constant(value: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``value`` as a 0-dimensional tensor, made once per value, dtype and device."""
    return torch.tensor(value, dtype=dtype, device=device)


KNOWN: dict[type[Optimizer], Reader | None] = {
    torch.optim.SGD: None,
    torch.optim.Adam: _adam,
    torch.optim.AdamW: _adam,
    torch.optim.NAdam: _adam,
    torch.optim.RAdam: _radam,
    torch.optim.Adamax: _adamax,
    torch.optim.RMSprop: _rmsprop,
    torch.optim.Adagrad: _adagrad,
}
"""Each optimizer whose element-wise step is known: its :data:`Reader`, or ``None`` where the
step is ``lr`` itself (SGD, with or without momentum)."""


def preconditioner(optimizer: Optimizer) -> tuple[bool, Reader | None]:
    """``(known, reader)`` for ``optimizer``: the entry of its exact class in
    :data:`KNOWN`, and ``(False, None)`` for any other optimizer (a subclass may change the
    update, so it is not taken for its base).

    Example:
        >>> import torch
        >>> known, d = preconditioner(torch.optim.Adam([torch.zeros(1, requires_grad=True)]))
        >>> known, d is not None
        (True, True)
    """
    cls = type(optimizer)
    return (True, KNOWN[cls]) if cls in KNOWN else (False, None)
