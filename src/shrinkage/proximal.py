"""``Proximal``: any torch optimizer's step, then each penalty's proximal step.

The composition is ``w <- prox_{s P}(optimizer_step(w))`` with ``s`` the optimizer's own
element-wise step: ``lr / d`` for an adaptive optimizer with denominator ``d`` (proximal Adam,
the default), ``lr`` for SGD. Its fixed points are the stationary points of ``loss + P``, so
``lam`` means what it means in ``loss + reg.penalty()``. ``decoupled=True`` takes ``s = lr``
whatever the optimizer (the L1 analogue of AdamW's decoupled weight decay). Because ``s`` is
read from ``param_groups`` and the optimizer's state at every step, LR schedulers change the
threshold too, and ``state_dict`` / ``load_state_dict`` round-trip through the inner optimizer
unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._kernels import Step
from ._preconditioners import KNOWN, Reader, preconditioner
from .penalties import MultiTensorPenalty, Penalty
from .regularizer import Regularizer

__all__ = ["Proximal"]

_UNSET: Any = object()

CHUNK = 1 << 18
"""Entries of a parameter stepped at a time by the per-tensor tier: its denominator and its
prox run on windows of this many entries (1 MB in float32), which stay in the cache between
the kernels, instead of five passes over the whole tensor in memory."""


def _windows(p: Tensor) -> list[slice | None]:
    """Windows of :data:`CHUNK` entries of a contiguous ``p``; ``[None]`` (the whole tensor)
    for a small or non-contiguous one."""
    n = p.numel()
    if n <= CHUNK or not p.is_contiguous():
        return [None]
    return [slice(start, min(start + CHUNK, n)) for start in range(0, n, CHUNK)]


def _mode(optimizer: Optimizer, decoupled: bool, preconditioned: Any) -> tuple[bool, Reader | None]:
    """``(decoupled, reader)`` for the arguments of :class:`Proximal`, the old
    ``preconditioned`` spelling translated with a warning; raises where the default cannot
    keep the meaning of ``lam``."""
    if not isinstance(decoupled, bool):
        raise TypeError(f"decoupled must be True or False, got {decoupled!r}")
    if preconditioned is not _UNSET:
        if not isinstance(preconditioned, bool):
            raise TypeError(f"preconditioned must be True or False, got {preconditioned!r}")
        advice = "drop it" if preconditioned else "write decoupled=True"
        warnings.warn(
            f"Proximal(preconditioned={preconditioned}) is deprecated: the optimizer's own "
            f"element-wise step is now the default and decoupled=True the other mode; {advice}",
            FutureWarning,
            stacklevel=3,
        )
        decoupled = decoupled or not preconditioned
    known, reader = preconditioner(optimizer)
    maximizing = [i for i, g in enumerate(optimizer.param_groups) if g.get("maximize")]
    if maximizing:
        raise ValueError(
            f"the optimizer's param_groups {maximizing} have maximize=True; Proximal minimizes "
            "loss + penalty: give it an optimizer with maximize=False"
        )
    if decoupled:
        return True, None
    if not known:
        names = ", ".join(cls.__name__ for cls in KNOWN)
        raise ValueError(
            f"Proximal does not know the element-wise step of {type(optimizer).__name__}, so "
            "it cannot apply the penalty at the strength it has in loss + lam * P(w). Either "
            "pass decoupled=True (every step shrinks by lr * lam, the L1 analogue of AdamW's "
            "decoupled weight decay: lam then means shrinkage per unit of learning rate), or "
            f"use an optimizer whose step it knows: {names}"
        )
    return False, reader


def _saved_decoupled(state_dict: Mapping[str, Any], default: bool) -> bool:
    """The mode a :meth:`Proximal.state_dict` was saved with (states saved before
    ``decoupled`` existed say ``preconditioned``, whose ``False`` was the decoupled step)."""
    if "decoupled" in state_dict:
        return bool(state_dict["decoupled"])
    if "preconditioned" in state_dict:
        return not state_dict["preconditioned"]
    return default


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
    gradient, ``w <- prox_{s P}(w)`` with ``s`` the optimizer's own element-wise step:

    * by default, ``s = lr / d`` for an adaptive optimizer (Adam, AdamW, NAdam, RAdam, Adamax,
      RMSprop, Adagrad: ``d`` its denominator, e.g. Adam's ``sqrt(v_hat) + eps``; proximal
      Adam) and ``s = lr`` for SGD (proximal gradient descent). The fixed points are the
      stationary points of ``loss + P``: ``lam`` means the same as in
      ``loss + reg.penalty()``, with exact zeros;
    * ``decoupled=True``: ``s = lr`` whatever the optimizer, the L1 and group analogue of
      AdamW's decoupled weight decay. Under Adam every step then moves ``|w|`` towards zero by
      ``lr * lam`` whatever the gradient's scale: ``lam`` reads as "shrinkage per unit of
      learning rate", not as a weight on the loss.

    Any other optimizer (Lion, Adafactor, your own) has no known step: the default refuses it
    and names both choices. With every ``lam = 0`` it reproduces the inner optimizer bit for
    bit. ``param_groups`` and ``state`` are the inner optimizer's own objects, so LR schedulers
    can wrap either object, and hooks registered on this wrapper (``register_step_pre_hook`` /
    ``_post_hook``) run around the whole step, prox included. The parameters are only ever
    updated in place: their storage never moves. For ``d`` the default mode keeps one scratch
    tensor per regularized parameter on the foreach tier and for the tensors of unit groups
    (a unit's prox needs the steps of all its tensors at once), and one buffer of at most
    :data:`CHUNK` entries (or of the largest non-contiguous parameter) on the per-tensor tier.

    Args:
        optimizer: any ``torch.optim.Optimizer`` over (at least) the regularized parameters.
        regularizer: the :class:`~shrinkage.Regularizer` whose penalties to apply.
        decoupled: the step ``s = lr`` whatever the optimizer (see above).
        foreach: ``True`` for torch's multi-tensor kernels (one kernel per op for all tensors
            of a device and dtype), ``False`` for the per-tensor path (single fused kernels
            such as ``softshrink``); ``None`` picks foreach when every regularized parameter is
            on CUDA, as ``torch.optim`` does, and per-tensor on the CPU, where it is faster.
        preconditioned: deprecated; ``True`` is the default, ``False`` is ``decoupled=True``.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an optimizer whose step is not known (without ``decoupled=True``), one
            with ``maximize=True``, or regularized parameters outside its ``param_groups``.

    Example:
        >>> import torch
        >>> from shrinkage import L1, Regularizer
        >>> model = torch.nn.Linear(4, 1)
        >>> adam = torch.optim.Adam(model.parameters(), lr=1e-3)
        >>> opt = Proximal(adam, Regularizer(model, L1(0.01)))
        >>> opt.preconditioned  # the prox takes Adam's step lr / (sqrt(v_hat) + eps)
        True
    """

    def __init__(
        self,
        optimizer: Optimizer,
        regularizer: Regularizer,
        *,
        decoupled: bool = False,
        foreach: bool | None = None,
        preconditioned: bool = _UNSET,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if not isinstance(regularizer, Regularizer):
            raise TypeError(
                f"regularizer must be a shrinkage.Regularizer, got {type(regularizer).__name__}"
            )
        if foreach is not None and not isinstance(foreach, bool):
            raise TypeError(f"foreach must be True, False or None, got {foreach!r}")
        decoupled, reader = _mode(optimizer, decoupled, preconditioned)
        # the base class sets up the hooks and records copies of the groups; the wrapper then
        # shares the inner optimizer's own group list and state (see _share_inner_state)
        super().__init__([dict(group) for group in optimizer.param_groups], optimizer.defaults)
        self.optimizer = optimizer
        self.regularizer = regularizer
        self.decoupled = decoupled
        if foreach is None:
            foreach = all(t.parameter.is_cuda for t in regularizer.targets)
        self.foreach = foreach
        self._reader = reader
        self._scratch: dict[tuple[torch.device, torch.dtype], Tensor] = {}
        self._whole: dict[int, Tensor] = {}
        self._share_inner_state()
        self._buckets = self._build_buckets()

    @property
    def preconditioned(self) -> bool:
        """Whether the prox takes the optimizer's element-wise step ``lr / d`` (not SGD's
        uniform ``lr``, nor ``decoupled=True``)."""
        return self._reader is not None

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
            if self._reader is None:
                bucket.penalty.prox_list_(params, float(group["lr"]), foreach=self.foreach)
            else:
                self._apply_preconditioned(bucket.penalty, params, group)
        for unit_groups in self.regularizer.groups:
            self._apply_groups(unit_groups, groups)

    def _buffer(self, p: Tensor, numel: int) -> Tensor:
        """``numel`` entries of the scratch buffer of ``p``'s device and dtype (one buffer,
        grown as needed, shared by every parameter stepped one at a time)."""
        key = (p.device, p.dtype)
        buffer = self._scratch.get(key)
        if buffer is None or buffer.numel() < numel:
            buffer = self._scratch[key] = torch.empty(numel, dtype=p.dtype, device=p.device)
        return buffer[:numel]

    def _whole_denominator(self, p: Tensor, group: dict[str, Any]) -> tuple[float, Tensor] | None:
        """``(lr, d)``: the optimizer's denominator of all of ``p``, in a scratch tensor of
        ``p``'s own, and the numerator of its step ``lr / d``; ``None`` when the optimizer
        has not stepped ``p`` yet."""
        assert self._reader is not None
        denominator = self._reader(self.optimizer.state[p], group)
        if denominator is None:
            return None
        out = self._whole.get(id(p))
        if out is None:
            out = self._whole[id(p)] = torch.empty_like(p)
        denominator.write(out)
        return denominator.lr, out

    def _denominators(
        self, params: list[Tensor], group: dict[str, Any]
    ) -> dict[float, tuple[list[Tensor], list[Tensor]]]:
        """:meth:`_whole_denominator` of every parameter, grouped by the numerator ``lr``
        (parameters the optimizer has not stepped yet are left out)."""
        by_lr: dict[float, tuple[list[Tensor], list[Tensor]]] = {}
        for p in params:
            found = self._whole_denominator(p, group)
            if found is not None:
                ws, ds = by_lr.setdefault(found[0], ([], []))
                ws.append(p)
                ds.append(found[1])
        return by_lr

    def _apply_preconditioned(
        self, penalty: Penalty, params: list[Tensor], group: dict[str, Any]
    ) -> None:
        """``w <- prox_{(lr / d) P}(w)``: all tensors at once on the foreach tier (or for a
        penalty that is not entry by entry), else one window of :data:`CHUNK` entries at a
        time, the denominator and the prox of a window run back to back while it is in the
        cache."""
        with torch.no_grad():
            if self.foreach or not penalty.elementwise:
                for lr, (ws, ds) in self._denominators(params, group).items():
                    penalty.prox_scaled_(ws, lr, ds, foreach=self.foreach)
                return
            assert self._reader is not None
            for p in params:
                denominator = self._reader(self.optimizer.state[p], group)
                if denominator is None:  # not stepped by the optimizer yet
                    continue
                flat = p.view(-1) if p.is_contiguous() else p
                for window in _windows(p):
                    part = p if window is None else flat[window]
                    out = self._buffer(p, part.numel()).view(part.shape)
                    denominator.write(out, window)
                    penalty.prox_scaled_([part], denominator.lr, [out])

    def _apply_groups(self, unit_groups: MultiTensorPenalty, groups: list[dict[str, Any]]) -> None:
        """The prox of a group penalty spanning several tensors, each with its own step."""
        params = [p for _, p in unit_groups.named_parameters]
        if any(p.grad is None for p in params):
            return
        steps: list[Step] = []
        with torch.no_grad():
            for p in params:
                group = groups[self._group_of[id(p)]]
                if self._reader is None:
                    steps.append(float(group["lr"]))
                    continue
                found = self._whole_denominator(p, group)
                if found is None:  # not stepped by the optimizer yet
                    return
                lr, d = found
                steps.append(d.reciprocal_().mul_(lr))
        unit_groups.prox_(steps)

    def step(self, closure: Callable[[], float] | None = None) -> Any:
        """The inner optimizer's step, then the proximal step of every penalty.

        Args:
            closure: re-evaluates the model and returns the loss, passed on to the inner
                optimizer (for those that need one, such as LBFGS).

        Returns:
            What the inner optimizer's step returns (the closure's loss, or ``None``).
        """
        if self.param_groups is not self.optimizer.param_groups:  # the inner one was reloaded
            self._share_inner_state()
        loss = self.optimizer.step() if closure is None else self.optimizer.step(closure)
        self.apply_penalties()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The inner optimizer's ``zero_grad``.

        Args:
            set_to_none: set the gradients to ``None`` in place of zeroing them.
        """
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group to the inner optimizer; the penalties follow its ``lr``.

        Args:
            param_group: as torch's ``Optimizer.add_param_group`` takes it.
        """
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
            "decoupled": self.decoupled,
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:  # type: ignore[override,unused-ignore]
        """Restore what :meth:`state_dict` saved into this optimizer and regularizer.

        Args:
            state_dict: a :meth:`state_dict` of a ``Proximal`` built the same way.

        Raises:
            ValueError: a state of another kind (a plain optimizer's, say), or one saved
                with the other ``decoupled`` mode.
        """
        if not isinstance(state_dict, Mapping) or not {"optimizer", "regularizer"} <= set(
            state_dict
        ):
            raise ValueError(
                "state_dict must come from Proximal.state_dict(), with 'optimizer' and "
                "'regularizer' entries; to load a plain optimizer state use "
                "proximal.optimizer.load_state_dict(...)"
            )
        saved = _saved_decoupled(state_dict, self.decoupled)
        if saved != self.decoupled and preconditioner(self.optimizer)[1] is not None:
            raise ValueError(
                f"state_dict was saved with decoupled={saved}, this Proximal has "
                f"decoupled={self.decoupled}: build it with decoupled={saved} to resume"
            )
        self.optimizer.load_state_dict(state_dict["optimizer"])
        self.regularizer.load_state_dict(state_dict["regularizer"])
        self._share_inner_state()
        self._buckets = self._build_buckets()

    def __repr__(self) -> str:
        step = "lr / d" if self.preconditioned else "lr (decoupled)" if self.decoupled else "lr"
        return f"Proximal({type(self.optimizer).__name__}, {self.regularizer!r}, step {step})"

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
