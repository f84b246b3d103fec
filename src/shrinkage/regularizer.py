"""``Regularizer``: which penalty applies to which parameter of a model.

Two ways to say it, which combine:

* model-wide, ``Regularizer(model, spec)``: one penalty for the default targets (weight
  matrices and kernels, see :mod:`shrinkage.selection`), or a mapping from glob patterns over
  ``named_parameters()`` names to penalties (first match wins, ``None`` excludes);
* per layer, Keras style,
  ``regularize_layer(layer, kernel=L2(0.01), bias=None, activity=L1(1e-5))``.
  A layer's own penalties take precedence over the model-wide spec for its parameters.

The regularizer is then used either as a loss term, ``loss + reg.penalty()``, or through
:class:`shrinkage.Proximal`, which applies each penalty's proximal step after the optimizer's.
"""

from __future__ import annotations

import fnmatch
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from .penalties import MultiTensorPenalty, Penalty, penalty_from_config
from .selection import default_mask

__all__ = ["Regularizer", "Target", "regularize_layer"]

Spec = Penalty | Mapping[str, Penalty | None] | None

_LAYER_ATTR = "_shrinkage_layer_penalties"


@dataclass(frozen=True)
class Target:
    """One regularized parameter.

    Attributes:
        name: its name in the model, as ``named_parameters`` gives it.
        parameter: the tensor.
        penalty: the penalty on it.
    """

    name: str
    parameter: nn.Parameter
    penalty: Penalty


@dataclass(eq=False)
class _LayerPenalties:
    """What :func:`regularize_layer` attaches to a layer."""

    kernel: Penalty | None
    bias: Penalty | None
    activity: Penalty | None
    hook: RemovableHandle | None = None
    terms: list[Tensor] = field(default_factory=list)
    owners: int = 0


def _check_penalty(name: str, value: Any, allow_none: bool = True) -> Penalty | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, Penalty):
        allowed = "a Penalty (L1, L2, ElasticNet, GroupLasso)" + (" or None" if allow_none else "")
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    return value


def _activity_hook(module: nn.Module, inputs: Any, output: Any) -> None:
    attached: _LayerPenalties = getattr(module, _LAYER_ATTR)
    out = output[0] if isinstance(output, tuple | list) else output
    if attached.activity is None or not isinstance(out, Tensor):
        return
    batch = out.shape[0] if out.ndim > 0 else 1
    term = attached.activity.value(out) / batch
    if attached.owners:
        attached.terms.append(term)  # a Regularizer clears these at each forward of its model
    else:
        attached.terms[:] = [term]


def regularize_layer(
    layer: nn.Module,
    kernel: Penalty | None = None,
    bias: Penalty | None = None,
    activity: Penalty | None = None,
) -> nn.Module:
    """Attach Keras-style penalties to one layer and return the layer.

    A :class:`Regularizer` built on a model that contains the layer picks these up; they take
    precedence over its model-wide spec.

    Args:
        layer: the layer (changed in place: it records its penalties).
        kernel: the penalty of ``layer.weight``.
        bias: the penalty of ``layer.bias``.
        activity: a penalty of the layer's output ``y`` (``[batch, ...]``):
            ``activity.value(y) / batch``, the batch average Keras uses, through a forward
            hook.

    Returns:
        ``layer`` itself.

    Raises:
        TypeError: ``layer`` is not a module, or a penalty is not a :class:`Penalty`.
        ValueError: the layer has no ``weight`` (or ``bias``) parameter for its penalty.

    Example::

        model = nn.Sequential(
            regularize_layer(nn.Linear(64, 256), kernel=L2(0.01), activity=L1(1e-5)),
            nn.ReLU(),
            nn.Linear(256, 10),
        )
        reg = Regularizer(model)  # only the first layer's penalties
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch.nn.Module, got {type(layer).__name__}")
    kernel = _check_penalty("kernel", kernel)
    bias = _check_penalty("bias", bias)
    activity = _check_penalty("activity", activity)
    for arg, attr, pen in (("kernel", "weight", kernel), ("bias", "bias", bias)):
        if pen is not None and not isinstance(getattr(layer, attr, None), nn.Parameter):
            raise ValueError(
                f"{arg}={pen!r} given, but {type(layer).__name__} has no parameter '{attr}'"
            )
    previous: _LayerPenalties | None = getattr(layer, _LAYER_ATTR, None)
    if previous is not None and previous.hook is not None:
        previous.hook.remove()
    attached = _LayerPenalties(kernel, bias, activity)
    if previous is not None:
        attached.owners = previous.owners
    if activity is not None:
        attached.hook = layer.register_forward_hook(_activity_hook)
    object.__setattr__(layer, _LAYER_ATTR, attached)
    return layer


class Regularizer:
    """The penalties of a model, parameter by parameter.

    Args:
        model: the ``nn.Module`` to regularize.
        spec: a :class:`~shrinkage.penalties.Penalty`, applied to the default targets (the
            weights of Linear and Conv layers; never biases, 1-D or normalisation parameters,
            frozen parameters or names in ``model.no_weight_decay()``); or a mapping from glob
            patterns over ``named_parameters()`` names to a penalty or ``None`` (first match
            wins, ``None`` excludes; patterns select explicitly, so ``"*.bias"`` selects biases);
            or ``None`` to use only penalties attached with :func:`regularize_layer`.
        embeddings: with a single penalty, also target Embedding tables.
        groups: penalties whose groups span several tensors, such as whole neurons and
            channels (:func:`~shrinkage.neuron_groups`): any
            :class:`~shrinkage.penalties.MultiTensorPenalty`.

    The penalty as a loss term is :meth:`penalty`:
    ``sum_targets P_t(w_t) + sum_groups P_g + sum_layers activity(y_l) / batch``.

    Raises:
        ValueError: if nothing is selected, naming what was looked for.
    """

    def __init__(
        self,
        model: nn.Module,
        spec: Spec = None,
        *,
        embeddings: bool = False,
        groups: Sequence[MultiTensorPenalty] = (),
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if spec is not None and not isinstance(spec, Penalty | Mapping):
            raise TypeError(
                "spec must be a Penalty, a mapping from parameter-name patterns to penalties, "
                f"or None; got {type(spec).__name__}"
            )
        self.model = model
        self.spec = spec
        self.embeddings = bool(embeddings)
        self.targets: tuple[Target, ...] = self._select(spec)
        self.groups: tuple[MultiTensorPenalty, ...] = tuple(groups)
        own = {id(p) for p in model.parameters()}
        for g in self.groups:
            if not isinstance(g, MultiTensorPenalty):
                raise TypeError(
                    f"groups must hold MultiTensorPenalty objects (see neuron_groups), got {g!r}"
                )
            outside = [name for name, p in g.named_parameters if id(p) not in own]
            if outside:
                raise ValueError(f"groups {g!r} hold parameters {outside} that are not the model's")
        self._layers: tuple[tuple[str, _LayerPenalties], ...] = tuple(
            (name, attached)
            for name, module in model.named_modules()
            if (attached := getattr(module, _LAYER_ATTR, None)) is not None
            and attached.activity is not None
        )
        if not self.targets and not self._layers and not self.groups:
            raise ValueError(self._nothing_selected(spec))
        for _, attached in self._layers:
            attached.owners += 1
        self._clear_hook: RemovableHandle | None = (
            model.register_forward_pre_hook(self._clear_activity) if self._layers else None
        )

    # -- selection -------------------------------------------------------------------------
    def _select(self, spec: Spec) -> tuple[Target, ...]:
        named = dict(self.model.named_parameters())
        chosen: dict[str, Penalty] = {}
        if isinstance(spec, Penalty):
            mask = default_mask(self.model, embeddings=self.embeddings)
            chosen = {name: spec for name, selected in mask.items() if selected}
        elif isinstance(spec, Mapping):
            chosen = self._select_by_patterns(spec, named)
        for layer_name, module in self.model.named_modules():
            attached: _LayerPenalties | None = getattr(module, _LAYER_ATTR, None)
            if attached is None:
                continue
            prefix = f"{layer_name}." if layer_name else ""
            for attr, pen in (("weight", attached.kernel), ("bias", attached.bias)):
                if pen is not None and f"{prefix}{attr}" in named:
                    chosen[f"{prefix}{attr}"] = pen
        return tuple(
            Target(name, named[name], chosen[name])
            for name in named
            if name in chosen and named[name].requires_grad
        )

    @staticmethod
    def _select_by_patterns(
        spec: Mapping[str, Penalty | None], named: Mapping[str, nn.Parameter]
    ) -> dict[str, Penalty]:
        for pattern, pen in spec.items():
            if not isinstance(pattern, str):
                raise TypeError(f"spec keys must be glob patterns (str), got {pattern!r}")
            _check_penalty(f"spec[{pattern!r}]", pen)
        chosen: dict[str, Penalty] = {}
        used: set[str] = set()
        for name in named:
            for pattern, pen in spec.items():
                if fnmatch.fnmatchcase(name, pattern):
                    used.add(pattern)
                    if pen is not None:
                        chosen[name] = pen
                    break
        unused = [p for p in spec if p not in used]
        if unused:
            warnings.warn(
                f"spec patterns {unused} match no parameter (or only ones an earlier pattern took)",
                UserWarning,
                stacklevel=4,
            )
        return chosen

    def _nothing_selected(self, spec: Spec) -> str:
        kind = type(self.model).__name__
        if isinstance(spec, Penalty):
            return (
                f"spec {spec!r} selects no parameter of {kind}: by default a penalty targets the "
                "trainable weights of Linear and Conv layers (Embedding with embeddings=True), "
                "never biases, 1-D, normalisation or no_weight_decay() parameters; pass a mapping "
                "of name patterns to select others"
            )
        if isinstance(spec, Mapping):
            names = list(dict(self.model.named_parameters()))[:8]
            return (
                f"spec patterns {list(spec)} select no trainable parameter of {kind}; "
                f"its parameters are named like {names}"
            )
        return (
            f"no penalty to apply: spec is None and no layer of {kind} has penalties attached "
            "with regularize_layer()"
        )

    # -- use -------------------------------------------------------------------------------
    def _clear_activity(self, module: nn.Module, inputs: Any) -> None:
        for _, attached in self._layers:
            attached.terms.clear()

    def penalty(self) -> Tensor:
        """The differentiable penalty to add to the loss: every target's ``P(w)`` plus the
        activity terms recorded by the last forward pass. A scalar tensor."""
        terms = [t.penalty.value(t.parameter) for t in self.targets]
        terms.extend(g.value() for g in self.groups)
        terms.extend(term for _, attached in self._layers for term in attached.terms)
        if not terms:
            first = next(self.model.parameters(), None)
            return torch.zeros((), device=None if first is None else first.device)
        return sum(terms[1:], terms[0])

    def parameters(self) -> Iterator[nn.Parameter]:
        """The targeted parameters, in ``named_parameters()`` order."""
        return (t.parameter for t in self.targets)

    def describe(self) -> str:
        """A table of every targeted parameter with its penalty, shape and size."""
        rows = [("parameter", "penalty", "shape", "size")]
        rows += [
            (t.name, repr(t.penalty), str(tuple(t.parameter.shape)), f"{t.parameter.numel():,}")
            for t in self.targets
        ]
        rows += [
            (f"{name or '<model>'} (activity)", repr(attached.activity), "output", "-")
            for name, attached in self._layers
        ]
        rows += [
            (*g.summary(), f"{sum(p.numel() for _, p in g.named_parameters):,}")
            for g in self.groups
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        total = sum(t.parameter.numel() for t in self.targets)
        lines.append(f"{len(self.targets)} parameters, {total:,} entries regularized")
        return "\n".join(lines)

    def state_dict(self) -> dict[str, Any]:
        """The penalty of every target, by parameter name (hyperparameters only)."""
        return {
            "penalties": {
                t.name: {"type": type(t.penalty).__name__, "config": t.penalty.get_config()}
                for t in self.targets
            }
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the penalties saved by :meth:`state_dict` onto the same parameter names.

        Args:
            state: a :meth:`state_dict` of a regularizer over the same parameter names.

        Raises:
            ValueError: a state of another kind, or one whose parameter names differ (both
                the missing and the unexpected ones are named).
        """
        saved = state.get("penalties") if isinstance(state, Mapping) else None
        if not isinstance(saved, Mapping):
            raise ValueError("state must be a Regularizer.state_dict() with a 'penalties' entry")
        mine = {t.name for t in self.targets}
        missing, unexpected = sorted(mine - set(saved)), sorted(set(saved) - mine)
        if missing or unexpected:
            raise ValueError(
                "state does not match this regularizer's targets: "
                f"missing {missing}, unexpected {unexpected}"
            )
        self.targets = tuple(
            Target(
                t.name,
                t.parameter,
                penalty_from_config(saved[t.name]["type"], saved[t.name]["config"]),
            )
            for t in self.targets
        )

    def remove(self) -> None:
        """Detach from the model's activity hooks (the layers keep their own penalties)."""
        if self._clear_hook is not None:
            self._clear_hook.remove()
            self._clear_hook = None
            for _, attached in self._layers:
                attached.owners -= 1

    def __repr__(self) -> str:
        return (
            f"Regularizer({type(self.model).__name__}, {len(self.targets)} parameters, "
            f"{len(self._layers)} activity terms, {len(self.groups)} unit groups)"
        )
