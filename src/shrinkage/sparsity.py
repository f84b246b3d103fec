"""``sparsity(model)``: how many weights are exactly zero, layer by layer; and, given unit
groups (heads, neurons, channels), which units are alive in each layer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ._validation import check_choice
from .selection import default_mask

__all__ = ["LayerSparsity", "SparsityReport", "UnitFamily", "UnitSparsity", "sparsity"]


class UnitFamily(Protocol):
    """A layer's units, as :func:`shrinkage.head_groups` and :func:`shrinkage.neuron_groups`
    give them: a ``label``, a count, and each unit's norm (zero: removable)."""

    label: str
    units: int

    def norms(self) -> Tensor: ...


@dataclass(frozen=True)
class UnitSparsity:
    """One layer's units: ``alive[u]`` is whether unit ``u`` has a nonzero entry."""

    label: str
    units: int
    live: int
    alive: tuple[bool, ...]

    @property
    def row(self) -> str:
        """The layer as a text heat map: ``#`` a live unit, ``.`` a zero one."""
        return "".join("#" if a else "." for a in self.alive)


@dataclass(frozen=True)
class LayerSparsity:
    """Exact zeros and norms of one parameter tensor."""

    name: str
    shape: tuple[int, ...]
    size: int
    zeros: int
    nonzeros: int
    fraction_zero: float
    l1_norm: float
    l2_norm: float


@dataclass(frozen=True)
class SparsityReport:
    """Per-parameter rows and the totals over them (``l2_norm`` is the norm of all entries)."""

    layers: tuple[LayerSparsity, ...]
    size: int
    zeros: int
    nonzeros: int
    fraction_zero: float
    l1_norm: float
    l2_norm: float
    units: tuple[UnitSparsity, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON)."""
        return asdict(self)

    def heat_map(self) -> list[list[float]]:
        """``[layer][unit]``: 1.0 for a live unit, 0.0 for a zero one, NaN past a layer's
        last unit (layers of ``units``, e.g. layer x head, padded to the widest)."""
        width = max((u.units for u in self.units), default=0)
        return [
            [float(a) for a in u.alive] + [float("nan")] * (width - u.units) for u in self.units
        ]

    def __str__(self) -> str:
        header = ("parameter", "shape", "size", "zeros", "fraction", "L1 norm", "L2 norm")
        rows = [header] + [
            (
                r.name,
                str(r.shape),
                f"{r.size:,}",
                f"{r.zeros:,}",
                f"{r.fraction_zero:.1%}",
                f"{r.l1_norm:.4g}",
                f"{r.l2_norm:.4g}",
            )
            for r in self.layers
        ]
        rows.append(
            (
                "total",
                "",
                f"{self.size:,}",
                f"{self.zeros:,}",
                f"{self.fraction_zero:.1%}",
                f"{self.l1_norm:.4g}",
                f"{self.l2_norm:.4g}",
            )
        )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            "  ".join(
                c.rjust(w) if i > 1 else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if self.units:
            label = max(len(u.label) for u in self.units)
            lines += ["", f"{'units':{label}}  live  (# live, . zero)"]
            lines += [f"{u.label:{label}}  {u.live:>4}  {u.row}" for u in self.units]
        return "\n".join(lines)


@torch.no_grad()
def sparsity(
    model: nn.Module, *, which: str = "weights", units: Sequence[UnitFamily] = ()
) -> SparsityReport:
    """Count exact zeros in ``model``'s parameters.

    Args:
        model: the module to inspect.
        which: ``"weights"`` (the default penalty targets: weight matrices and kernels) or
            ``"all"`` (every parameter, biases and normalisation included).
        units: layers of units to report alive or zero, e.g. ``head_groups(model, 0.0)``
            (one row per attention layer: its heads) or ``neuron_groups(...)``.

    Returns:
        A :class:`SparsityReport`: for each parameter its size, ``zeros = #{w_i == 0}``,
        ``nonzeros``, ``fraction_zero = zeros / size``, ``l1_norm = sum|w_i|`` and
        ``l2_norm = sqrt(sum w_i^2)``, and the same over all of them; for each family of
        ``units``, which units have ``||g_u|| > 0`` (:meth:`SparsityReport.heat_map`: the
        layer x unit table).
    """
    check_choice("which", which, ("weights", "all"))
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    mask = default_mask(model, embeddings=True) if which == "weights" else None
    rows = []
    for name, p in model.named_parameters():
        if mask is not None and not mask[name]:
            continue
        zeros = int((p == 0).sum())
        rows.append(
            LayerSparsity(
                name=name,
                shape=tuple(p.shape),
                size=p.numel(),
                zeros=zeros,
                nonzeros=p.numel() - zeros,
                fraction_zero=zeros / p.numel() if p.numel() else 0.0,
                l1_norm=float(p.abs().sum()),
                l2_norm=float(torch.linalg.vector_norm(p)),
            )
        )
    size = sum(r.size for r in rows)
    zeros = sum(r.zeros for r in rows)
    return SparsityReport(
        layers=tuple(rows),
        size=size,
        zeros=zeros,
        nonzeros=size - zeros,
        fraction_zero=zeros / size if size else 0.0,
        l1_norm=sum(r.l1_norm for r in rows),
        l2_norm=sum(r.l2_norm**2 for r in rows) ** 0.5,
        units=tuple(_units(family) for family in units),
    )


def _units(family: UnitFamily) -> UnitSparsity:
    alive = tuple(bool(v) for v in (family.norms() > 0).tolist())
    return UnitSparsity(family.label, int(family.units), sum(alive), alive)
