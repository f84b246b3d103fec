"""What a run reports per penalty: the typed result row, and the weight summaries of a path
point that the runner, the tuner and the reports all compute the same way."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

import numpy as np

from ..path import PathPoint

__all__ = ["ResultRow", "StoredRecord", "weight_arrays", "weight_norm", "zero_fraction"]


_Record = TypeVar("_Record", bound="StoredRecord")


class StoredRecord:
    """A dataclass record that the store keeps as a dict (its ``to_dict``)."""

    @classmethod
    def from_dict(cls: type[_Record], d: dict[str, Any]) -> _Record:
        """The record back from its stored dict.

        Args:
            d: the dict; keys that are not fields (written by another version) are left out.

        Returns:
            The record.
        """
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]  # a dataclass subclass
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class ResultRow(StoredRecord):
    """One penalty of a run: the chosen point and how it does on the held-out test part.

    Attributes:
        penalty: the penalty's name.
        lam: the chosen strength; index: its position in the stored path that holds it
            (the refit's, fold ``-1``, under cross-validation; else fold 0's).
        lam_min, lam_1se: the strengths the two rules pick (see :func:`shrinkage.path.choose`).
        metric: ``"accuracy"`` or ``"r2"``; train, test: its value on each part; gap:
            ``train - test``.
        zeros: the fraction of the weights (weight matrices, or coefficients) exactly zero.
        selected, n_features: the input features the chosen model uses, out of all.
        weight_norm: the L2 norm of the weights.
        seconds: the time of every path point this row needed.
        parameters, macs: the scored network's parameters and multiply-accumulates per
            sample (0 for a linear model). A ``cnn`` row of ``group_neurons`` scores the
            compacted network of its relaxed refit.
    """

    penalty: str
    lam: float
    index: int
    lam_min: float
    lam_1se: float
    metric: str
    test: float
    train: float
    gap: float
    zeros: float
    selected: int
    n_features: int
    weight_norm: float
    seconds: float
    parameters: int = 0
    macs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON)."""
        return asdict(self)

    def columns(self) -> dict[str, Any]:
        """The columns a results table shows (the command line's and the report's), in
        order, with their headers."""
        sizes = {"parameters": self.parameters, "MACs": self.macs} if self.macs else {}
        return {
            "penalty": self.penalty,
            "lam": self.lam,
            f"test {self.metric}": self.test,
            "train-test gap": self.gap,
            "zeros": self.zeros,
            "features": f"{self.selected}/{self.n_features}",
            "weight norm": self.weight_norm,
            **sizes,
            "seconds": self.seconds,
        }


def weight_arrays(point: PathPoint) -> dict[str, np.ndarray]:
    """The weights a penalty acts on, flattened, by name: a network's weight matrices (from
    its state), or a linear model's coefficients."""
    if point.state is not None:
        return {
            name: value.detach().cpu().numpy().ravel()
            for name, value in point.state.weights.items()
            if name.endswith("weight") and value.ndim >= 2
        }
    return {"coef": np.atleast_1d(np.asarray(point.coef, dtype=float)).ravel()}


def zero_fraction(point: PathPoint) -> float:
    """The fraction of ``point``'s weights (see :func:`weight_arrays`) exactly zero."""
    weights = list(weight_arrays(point).values())
    size = sum(w.size for w in weights)
    return sum(int((w == 0).sum()) for w in weights) / size if size else 0.0


def weight_norm(point: PathPoint) -> float:
    """``sqrt(sum w^2)`` over ``point``'s weights (see :func:`weight_arrays`)."""
    return math.sqrt(
        sum(float((w.astype(np.float64) ** 2).sum()) for w in weight_arrays(point).values())
    )
