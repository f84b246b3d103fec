"""``convert``: one penalty strength between the conventions of Keras, torch and scikit-learn.

shrinkage's ``lam`` weighs a penalty added to the *mean* per-sample loss as torch computes it
(``MSELoss()``, ``CrossEntropyLoss()`` with ``reduction="mean"``)::

    objective = mean_i loss_i + lam * sum|w|        (L1)
    objective = mean_i loss_i + lam * sum w^2       (L2)

Every other convention is a rescaling of that (``v`` the number in that convention, ``n`` the
number of training samples):

- ``shrinkage``: ``lam`` above. L1: ``lam = v``; L2: ``lam = v``.
- ``keras``: ``l1(v)``, ``l2(v)`` add ``v*sum|w|``, ``v*sum w^2`` to the mean loss.
  L1: ``lam = v``; L2: ``lam = v``.
- ``torch_sgd_weight_decay``: ``SGD(weight_decay=v)`` adds ``v*w`` to the gradient, the
  gradient of ``(v/2)*sum w^2``. L2: ``lam = v / 2``.
- ``torch_adam_weight_decay``: ``Adam``, ``RMSprop``, ``Adagrad`` (``weight_decay=v``) add
  ``v*w`` to the gradient before rescaling it (coupled), the same loss term. L2: ``lam = v / 2``.
- ``torch_adamw_weight_decay``: ``AdamW(weight_decay=v)``, decoupled: no exact conversion.
- ``sklearn_lasso``: ``Lasso`` / ``ElasticNet`` ``alpha=v``, data term ``||y - Xw||^2 / (2n)``
  (half the MSE). L1: ``lam = 2 v``; L2 (the ``alpha*(1 - l1_ratio)/2`` part): ``lam = v``.
- ``sklearn_ridge``: ``Ridge(alpha=v)``, data term ``||y - Xw||^2``. L2: ``lam = v / n``.
- ``sklearn_logistic``: ``LogisticRegression(C=v)``, ``C * sum_i loss_i + P(w)``.
  L1: ``lam = 1 / (v n)``; L2 (``||w||^2 / 2``): ``lam = 1 / (2 v n)``.
- ``sklearn_mlp_classifier``: ``MLPClassifier(alpha=v)``. L2: ``lam = v / (2 n)``.
- ``sklearn_mlp_regressor``: ``MLPRegressor(alpha=v)``, half-MSE loss. L2: ``lam = v / n``.

AdamW's decoupled decay ``w <- (1 - lr*v) * w`` is not the gradient of any penalty on the loss
once Adam rescales gradients, so it has no exact conversion; its nearest form in shrinkage is
``Proximal(Adam(...), Regularizer(model, L2(v / 2)), decoupled=True)``, whose step
``w / (1 + lr*v)`` agrees with AdamW's to first order in ``lr*v``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._validation import check_choice, check_real

__all__ = ["CONVENTIONS", "NoExactConversionError", "convert"]


class NoExactConversionError(ValueError):
    """The two conventions do not describe the same objective."""


@dataclass(frozen=True)
class _Rule:
    """``lam = scale(n) * v`` (or ``scale(n) / v`` when ``inverse``)."""

    scale: Callable[[int], float]
    needs_n: bool = False
    inverse: bool = False

    def to_lam(self, v: float, n: int) -> float:
        k = self.scale(n)
        return k / v if self.inverse else k * v

    def from_lam(self, lam: float, n: int) -> float:
        k = self.scale(n)
        return k / lam if self.inverse else lam / k


def _const(k: float) -> Callable[[int], float]:
    return lambda n: k


CONVENTIONS: dict[str, dict[str, _Rule]] = {
    "shrinkage": {"l1": _Rule(_const(1.0)), "l2": _Rule(_const(1.0))},
    "keras": {"l1": _Rule(_const(1.0)), "l2": _Rule(_const(1.0))},
    "torch_sgd_weight_decay": {"l2": _Rule(_const(0.5))},
    "torch_adam_weight_decay": {"l2": _Rule(_const(0.5))},
    "torch_adamw_weight_decay": {},
    "sklearn_lasso": {"l1": _Rule(_const(2.0)), "l2": _Rule(_const(1.0))},
    "sklearn_ridge": {"l2": _Rule(lambda n: 1.0 / n, needs_n=True)},
    "sklearn_logistic": {
        "l1": _Rule(lambda n: 1.0 / n, needs_n=True, inverse=True),
        "l2": _Rule(lambda n: 0.5 / n, needs_n=True, inverse=True),
    },
    "sklearn_mlp_classifier": {"l2": _Rule(lambda n: 0.5 / n, needs_n=True)},
    "sklearn_mlp_regressor": {"l2": _Rule(lambda n: 1.0 / n, needs_n=True)},
}
"""Each convention's rule per penalty; see the module docstring for the table."""

_ADAMW = "torch_adamw_weight_decay"


def _rule(arg: str, name: str, penalty: str) -> _Rule:
    """The rule of convention ``name`` (the argument ``arg``) for ``penalty``."""
    rule = CONVENTIONS[name].get(penalty)
    if rule is None:
        has = [c for c, r in CONVENTIONS.items() if penalty in r]
        raise ValueError(
            f"{arg}={name!r} has no {penalty.upper()} strength; conventions with one: {has}"
        )
    return rule


def _samples(n_samples: int | None, src: str, dst: str) -> int:
    """``n_samples`` checked, for a conversion whose side sums the data term over samples."""
    if n_samples is None:
        raise ValueError(
            f"n_samples is required to convert between {src!r} and {dst!r} "
            "(scikit-learn sums the data term over samples)"
        )
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    return n_samples


def convert(
    value: float,
    penalty: str = "l2",
    src: str = "keras",
    dst: str = "torch_sgd_weight_decay",
    n_samples: int | None = None,
) -> float:
    """Convert a penalty strength ``value`` from convention ``src`` to convention ``dst``.

    Example: ``convert(0.01, "l2", "keras", "torch_sgd_weight_decay")`` is ``0.02``:
    Keras's ``l2(0.01)`` adds ``0.01 * sum w^2``, whose gradient ``0.02 * w`` is SGD's
    ``weight_decay=0.02``.

    Args:
        value: the strength in convention ``src`` (``C`` for ``sklearn_logistic``).
        penalty: ``"l1"`` or ``"l2"``. An Elastic Net converts as the sum of its two parts.
        src, dst: names from :data:`CONVENTIONS` (see the module docstring's table).
        n_samples: number of training samples, needed by the scikit-learn conventions whose
            data term is a sum rather than a mean.

    Raises:
        NoExactConversionError: when one side is AdamW's decoupled weight decay.
        ValueError: an unknown name, a penalty a convention has no number for, a missing
            ``n_samples``, a negative or non-finite ``value``.
    """
    penalty = check_choice("penalty", penalty, ("l1", "l2"))
    src = check_choice("src", src, tuple(CONVENTIONS))
    dst = check_choice("dst", dst, tuple(CONVENTIONS))
    inverse = src == "sklearn_logistic"
    v = check_real("value", value, low=0.0, low_open=inverse)
    if src == dst:
        return v
    if _ADAMW in (src, dst):
        raise NoExactConversionError(
            f"no exact conversion between {src!r} and {dst!r}: AdamW's decoupled decay "
            "w <- (1 - lr*wd) * w is not a penalty on the loss under Adam. The nearest form is "
            "Proximal(Adam(..., weight_decay=0), Regularizer(model, L2(wd / 2)), "
            "decoupled=True), equal to first order in lr*wd."
        )
    src_rule, dst_rule = (_rule(arg, name, penalty) for arg, name in (("src", src), ("dst", dst)))
    n = _samples(n_samples, src, dst) if src_rule.needs_n or dst_rule.needs_n else 0
    lam = src_rule.to_lam(v, n)
    if dst_rule.inverse and lam == 0:
        raise ValueError(f"value={value!r} means no penalty, which {dst!r} (C) cannot express")
    return dst_rule.from_lam(lam, n)
