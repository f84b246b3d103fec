"""``Proximal``: any torch optimizer's step, then each penalty's proximal step.

The composition is ``w <- prox_{s P}(optimizer_step(w))`` with ``s`` the current ``lr`` of the
parameter's group (decoupled mode), or ``s = lr / (sqrt(v_hat) + eps)`` element-wise, the
optimizer's own adaptive step (preconditioned mode). Because ``s`` is read from
``param_groups`` at every step, LR schedulers change the threshold too, and ``state_dict`` /
``load_state_dict`` round-trip through the inner optimizer unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._kernels import Step
from .penalties import MultiTensorPenalty, Penalty
from .regularizer import Regularizer

__all__ = ["Proximal"]

_StepScale = Callable[[Tensor, dict[str, Any], dict[str, Any], float], Tensor | None]


def _adam_steps(
    p: Tensor, state: dict[str, Any], group: dict[str, Any], lr: float
) -> Tensor | None:
    """``lr / (sqrt(v / (1 - beta2^t)) + eps)``, Adam's element-wise step (AdamW, NAdam too)."""
    key = "max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq"
    if key not in state:
        return None
    t = float(state["step"])
    bias_correction2 = 1.0 - group["betas"][1] ** t
    denom = state[key].sqrt().div_(math.sqrt(bias_correction2)).add_(group["eps"])
    return denom.reciprocal_().mul_(lr)


def _rmsprop_steps(
    p: Tensor, state: dict[str, Any], group: dict[str, Any], lr: float
) -> Tensor | None:
    """``lr / (sqrt(E[g^2] - E[g]^2 if centered else E[g^2]) + eps)``, RMSprop's step."""
    if "square_avg" not in state:
        return None
    avg = state["square_avg"]
    if group.get("centered"):
        avg = avg.addcmul(state["grad_avg"], state["grad_avg"], value=-1)
    return avg.sqrt().add_(group["eps"]).reciprocal_().mul_(lr)


def _adagrad_steps(
    p: Tensor, state: dict[str, Any], group: dict[str, Any], lr: float
) -> Tensor | None:
    """``lr_t / (sqrt(sum g^2) + eps)`` with Adagrad's decayed ``lr_t``."""
    if "sum" not in state:
        return None
    t = float(state["step"])
    clr = lr / (1.0 + (t - 1.0) * group.get("lr_decay", 0.0))
    return state["sum"].sqrt().add_(group["eps"]).reciprocal_().mul_(clr)


_PRECONDITIONERS: tuple[tuple[type[Optimizer], _StepScale], ...] = (
    (torch.optim.Adam, _adam_steps),
    (torch.optim.AdamW, _adam_steps),
    (torch.optim.NAdam, _adam_steps),
    (torch.optim.RMSprop, _rmsprop_steps),
    (torch.optim.Adagrad, _adagrad_steps),
)


@dataclass
class _Bucket:
    """Parameters of one param group, one penalty, one device and dtype: stepped together."""

    group: int
    penalty: Penalty
    params: list[Tensor]


class Proximal(Optimizer):
    """Wrap ``optimizer`` so that each ``step()`` also applies the penalties of ``regularizer``
    by their exact proximal operators, which set weights (or groups) exactly to zero.

    ``step()`` runs ``optimizer.step()``, then for every targeted parameter ``w`` with a
    gradient, ``w <- prox_{s P}(w)``:

    * decoupled (default), ``s = lr`` of the parameter's group. With plain SGD this is exactly
      proximal gradient descent on ``loss + P``. With Adam-family optimizers it is the L1 /
      group analogue of AdamW's decoupled weight decay: every step moves ``|w|`` towards zero by
      ``lr * lam`` (L1), whatever the gradient scale, so ``lam`` reads as "shrinkage per unit
      of learning rate", not as a weight on the loss.
    * ``preconditioned=True`` (Adam, AdamW, NAdam, RMSprop, Adagrad), ``s = lr / (sqrt(v_hat) +
      eps)`` element-wise, the optimizer's own adaptive step (proximal Adam). Its fixed points
      are the stationary points of ``loss + P``, so ``lam`` means the same as in
      ``loss + reg.penalty()``.

    With every ``lam = 0`` it reproduces the inner optimizer bit for bit. ``param_groups`` and
    ``state`` are the inner optimizer's own objects, so LR schedulers can wrap either object,
    and hooks registered on this wrapper (``register_step_pre_hook`` / ``_post_hook``) run
    around the whole step, prox included. The parameters are only ever updated in place: their
    storage never moves.

    Args:
        optimizer: any ``torch.optim.Optimizer`` over (at least) the regularized parameters.
        regularizer: the :class:`~shrinkage.Regularizer` whose penalties to apply.
        preconditioned: use the optimizer's adaptive element-wise step (see above).
        foreach: ``True`` for torch's multi-tensor kernels (one kernel per op for all tensors
            of a device and dtype), ``False`` for the per-tensor path (single fused kernels
            such as ``softshrink``); ``None`` picks foreach when every regularized parameter is
            on CUDA, as ``torch.optim`` does, and per-tensor on the CPU, where it is faster.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        regularizer: Regularizer,
        *,
        preconditioned: bool = False,
        foreach: bool | None = None,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if not isinstance(regularizer, Regularizer):
            raise TypeError(
                f"regularizer must be a shrinkage.Regularizer, got {type(regularizer).__name__}"
            )
        if not isinstance(preconditioned, bool):
            raise TypeError(f"preconditioned must be True or False, got {preconditioned!r}")
        if foreach is not None and not isinstance(foreach, bool):
            raise TypeError(f"foreach must be True, False or None, got {foreach!r}")
        step_scale: _StepScale | None = None
        if preconditioned:
            step_scale = next(
                (fn for cls, fn in _PRECONDITIONERS if isinstance(optimizer, cls)), None
            )
            if step_scale is None:
                supported = ", ".join(cls.__name__ for cls, _ in _PRECONDITIONERS)
                raise ValueError(
                    f"preconditioned=True needs an adaptive optimizer ({supported}); "
                    f"got {type(optimizer).__name__}. Use preconditioned=False with it."
                )
        # the base class sets up the hooks and records copies of the groups; the wrapper then
        # shares the inner optimizer's own group list and state (see _share_inner_state)
        super().__init__([dict(group) for group in optimizer.param_groups], optimizer.defaults)
        self.optimizer = optimizer
        self.regularizer = regularizer
        self.preconditioned = preconditioned
        if foreach is None:
            foreach = all(t.parameter.is_cuda for t in regularizer.targets)
        self.foreach = foreach
        self._step_scale = step_scale
        self._share_inner_state()
        self._buckets = self._build_buckets()

    def _share_inner_state(self) -> None:
        """Point ``param_groups`` and ``state`` at the inner optimizer's (again, after it
        loaded a state dict, which replaces both): an LR scheduler or a hook that changes this
        wrapper's groups changes the inner optimizer's."""
        self.param_groups = self.optimizer.param_groups
        self.state = self.optimizer.state

    def _build_buckets(self) -> list[_Bucket]:
        group_of = {
            id(p): i for i, group in enumerate(self.optimizer.param_groups) for p in group["params"]
        }
        outside = [t.name for t in self.regularizer.targets if id(t.parameter) not in group_of]
        outside += [
            name
            for g in self.regularizer.groups
            for name, p in g.named_parameters
            if id(p) not in group_of
        ]
        if outside:
            raise ValueError(
                f"regularized parameters {outside} are not in the optimizer's param_groups; "
                "build the optimizer over model.parameters()"
            )
        self._targets = self.regularizer.targets
        self._group_of = group_of
        buckets: dict[tuple[int, Penalty, torch.device, torch.dtype], _Bucket] = {}
        for t in self.regularizer.targets:
            p = t.parameter
            key = (group_of[id(p)], t.penalty, p.device, p.dtype)  # equal penalties share one
            if key not in buckets:
                buckets[key] = _Bucket(key[0], t.penalty, [])
            buckets[key].params.append(p)
        return list(buckets.values())

    def apply_penalties(self) -> None:
        """The proximal step of every penalty, with the current learning rates (what
        :meth:`step` does after the inner optimizer's step). For frameworks that step the
        inner optimizer themselves: call it right after each of their steps."""
        if self._targets is not self.regularizer.targets:  # penalties replaced (load_state_dict)
            self._buckets = self._build_buckets()
        groups = self.optimizer.param_groups
        for bucket in self._buckets:
            params = [p for p in bucket.params if p.grad is not None]
            if not params:
                continue
            group = groups[bucket.group]
            lr = float(group["lr"])
            if self._step_scale is not None:
                self._apply_preconditioned(bucket.penalty, params, group, lr)
            else:
                bucket.penalty.prox_list_(params, lr, foreach=self.foreach)
        for unit_groups in self.regularizer.groups:
            self._apply_groups(unit_groups, groups)

    def _apply_groups(self, unit_groups: MultiTensorPenalty, groups: list[dict[str, Any]]) -> None:
        """The prox of a group penalty spanning several tensors, each with its own step."""
        params = [p for _, p in unit_groups.named_parameters]
        if any(p.grad is None for p in params):
            return
        steps: list[Step] = []
        with torch.no_grad():
            for p in params:
                group = groups[self._group_of[id(p)]]
                lr = float(group["lr"])
                if self._step_scale is None:
                    steps.append(lr)
                    continue
                s = self._step_scale(p, self.optimizer.state[p], group, lr)
                if s is None:
                    return
                steps.append(s)
        unit_groups.prox_(steps)

    def _apply_preconditioned(
        self, penalty: Penalty, params: list[Tensor], group: dict[str, Any], lr: float
    ) -> None:
        assert self._step_scale is not None
        state = self.optimizer.state
        ready: list[Tensor] = []
        steps: list[Tensor] = []
        with torch.no_grad():
            for p in params:
                s = self._step_scale(p, state[p], group, lr)
                if s is not None:
                    ready.append(p)
                    steps.append(s)
        if ready:
            penalty.prox_list_(ready, steps, foreach=self.foreach)

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        """The inner optimizer's step, then the proximal step of every penalty."""
        if self.param_groups is not self.optimizer.param_groups:  # the inner one was reloaded
            self._share_inner_state()
        loss = self.optimizer.step() if closure is None else self.optimizer.step(closure)
        self.apply_penalties()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The inner optimizer's ``zero_grad``."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the inner optimizer (the penalties follow its ``lr``)."""
        if "optimizer" not in self.__dict__:  # Optimizer.__init__ recording the inner groups
            super().add_param_group(param_group)
            return
        self.optimizer.add_param_group(param_group)
        self._share_inner_state()
        self._buckets = self._build_buckets()

    def state_dict(self) -> dict[str, Any]:
        """Inner optimizer state, regularizer penalties and mode, for :meth:`load_state_dict`."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "regularizer": self.regularizer.state_dict(),
            "preconditioned": self.preconditioned,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:  # type: ignore[override,unused-ignore]
        """Restore what :meth:`state_dict` saved, into this wrapper's optimizer and regularizer."""
        if not isinstance(state_dict, Mapping) or not {"optimizer", "regularizer"} <= set(
            state_dict
        ):
            raise ValueError(
                "state_dict must come from Proximal.state_dict(), with 'optimizer' and "
                "'regularizer' entries; to load a plain optimizer state use "
                "proximal.optimizer.load_state_dict(...)"
            )
        saved_mode = state_dict.get("preconditioned", self.preconditioned)
        if saved_mode != self.preconditioned:
            raise ValueError(
                f"state_dict was saved with preconditioned={saved_mode}, this Proximal has "
                f"preconditioned={self.preconditioned}"
            )
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self.regularizer.load_state_dict(state_dict["regularizer"])
        self._share_inner_state()
        self._buckets = self._build_buckets()

    def __repr__(self) -> str:
        mode = "preconditioned" if self.preconditioned else "decoupled"
        return f"Proximal({self.optimizer!r}, {self.regularizer!r}, {mode})"

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
