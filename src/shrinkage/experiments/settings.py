"""What defines an experiment run: :class:`Settings`, checked when it is made.

A bad value raises :class:`~shrinkage._validation.ArgumentError` naming the field, as a
Python argument (``hidden must be ...``); the command line renders the same error with its
option names (``--hidden must be ...``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .._validation import ArgumentError
from ..neural import PENALTIES as NAMED
from ..path import RULES
from .results import StoredRecord

__all__ = ["MODELS", "PENALTIES", "Settings"]

PENALTIES = ("none", *NAMED)
"""Penalty names the experiments know: no penalty, and every named penalty."""
MODELS = ("mlp", "cnn", "linear")
"""Model families: an MLP (ReLU, Adam, penalties by :class:`~shrinkage.Proximal`), a small
ResNet on square images (``cnn``: the same training, one residual block per ``hidden``
width), or a linear model (least squares, logistic or multinomial, solved exactly)."""


def _positive_integer(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def _positive_real(value: Any) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and value > 0
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class Settings(StoredRecord):
    """Everything that defines a run (stored with it, so a resumed run needs nothing else).

    Attributes:
        data: a bundled dataset's name or a CSV file (see :func:`~.data.load_dataset`).
        target: the target column of a CSV file.
        model: ``"mlp"``, ``"cnn"`` or ``"linear"``.
        penalties: the penalties compared, from :data:`PENALTIES`.
        cv: K-fold cross-validation to choose ``lam`` (``None``: one validation split).
        rule: ``"min"`` or ``"1se"`` (see :func:`shrinkage.path.choose`).
        seed: the splits, the initialisation and the batch order.
        n_lambdas: points per path.
        hidden: the MLP's hidden widths, or the CNN's block widths (``None``: the model's
            default, :attr:`widths`).
        epochs: dense training epochs; path_epochs: epochs per strength.
        learning_rate: Adam's; path_learning_rate: for the penalized epochs (default: the same).
        batch_size: mini-batch size.
        l1_ratio: the Elastic Net's mix.
        lams: the grid of strengths (default: from each penalty's ``lambda_max``).
    """

    data: str
    target: str | None = None
    model: str = "mlp"
    penalties: tuple[str, ...] = ("none", "l1", "l2", "elasticnet")
    cv: int | None = None
    rule: str = "min"
    seed: int = 0
    n_lambdas: int = 12
    hidden: tuple[int, ...] | None = None
    epochs: int = 60
    path_epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 64
    l1_ratio: float = 0.5
    lams: tuple[float, ...] | None = None
    path_learning_rate: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "penalties", tuple(self.penalties))
        if self.lams is not None:
            object.__setattr__(self, "lams", tuple(float(v) for v in self.lams))
        if self.hidden is not None:
            object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.model not in MODELS:
            raise ArgumentError("model", f"must be one of {', '.join(MODELS)}; got {self.model!r}")
        self._check_penalties()
        if self.rule not in RULES:
            raise ArgumentError("rule", f"must be 'min' or '1se'; got {self.rule!r}")
        if self.cv is not None and (not _positive_integer(self.cv) or self.cv < 2):
            raise ArgumentError("cv", f"must be an integer >= 2; got {self.cv!r}")
        self._check_numbers()

    def _check_numbers(self) -> None:
        """Counts, widths, learning rates, strengths and the mix, each in its range."""
        for name in ("n_lambdas", "epochs", "path_epochs", "batch_size"):
            value = getattr(self, name)
            if not _positive_integer(value):
                raise ArgumentError(name, f"must be an integer >= 1; got {value!r}")
        if self.hidden is not None and (not self.hidden or min(self.hidden) < 1):
            raise ArgumentError("hidden", f"must be positive layer widths; got {self.hidden!r}")
        for name in ("learning_rate", "path_learning_rate"):
            value = getattr(self, name)
            if value is not None and not _positive_real(value):
                raise ArgumentError(name, f"must be a finite number > 0; got {value!r}")
        if self.lams is not None and (not self.lams or not all(map(_positive_real, self.lams))):
            raise ArgumentError(
                "lams", f"must be positive, finite strengths; got {list(self.lams) or 'none'}"
            )
        if not 0 <= self.l1_ratio <= 1:
            raise ArgumentError("l1_ratio", f"must be in [0, 1]; got {self.l1_ratio!r}")

    def _check_penalties(self) -> None:
        unknown = [p for p in self.penalties if p not in PENALTIES]
        if unknown or not self.penalties:
            raise ArgumentError(
                "penalties",
                f"must be a non-empty list of {', '.join(PENALTIES)}; "
                f"got {','.join(self.penalties) or 'nothing'}",
            )
        if len(set(self.penalties)) != len(self.penalties):
            raise ArgumentError("penalties", f"lists a penalty twice: {','.join(self.penalties)}")
        if self.model == "linear":
            networks_only = [
                p for p in self.penalties if p != "none" and NAMED[p].linear_l1_ratio is None
            ]
            if networks_only:
                raise ArgumentError(
                    "penalties",
                    f"{networks_only[0]} needs {{model}} mlp (it acts on a network's units)",
                    related=("model",),
                )

        if self.model == "cnn" and "group_inputs" in self.penalties:
            raise ArgumentError(
                "penalties",
                "group_inputs acts on an MLP's input columns; with {model} cnn use "
                "group_neurons (channels), l1, l2 or elasticnet",
                related=("model",),
            )

    @property
    def widths(self) -> tuple[int, ...]:
        """``hidden``, or the model's default: ``(256, 256)`` for an MLP, ``(16, 32)`` for
        the CNN (two residual blocks, the second at stride 2)."""
        if self.hidden is not None:
            return self.hidden
        return (16, 32) if self.model == "cnn" else (256, 256)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON), for the store."""
        out = asdict(self)
        out["penalties"] = list(self.penalties)
        out["hidden"] = None if self.hidden is None else list(self.hidden)
        out["lams"] = None if self.lams is None else list(self.lams)
        return out
