"""``sparsity(model)``: how many weights are exactly zero, layer by layer; and, given unit
groups (heads, neurons, channels), which units are alive in each layer."""

from __future__ import annotations

import html
import math
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
    """One layer's units (neurons, channels or heads) and which of them are live.

    Attributes:
        label: the layer's name, e.g. ``"0.weight units"``.
        units: how many units the layer has.
        live: how many of them have a nonzero entry.
        alive: ``[units]``, whether unit ``u`` has a nonzero entry.
    """

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
    """Exact zeros and norms of one parameter tensor.

    Attributes:
        name: the parameter's name in the model.
        shape: its shape.
        size: its number of entries, ``prod(shape)``.
        zeros: entries exactly zero.
        nonzeros: ``size - zeros``.
        fraction_zero: ``zeros / size`` (0 for an empty tensor).
        l1_norm: ``sum |w|``.
        l2_norm: ``sqrt(sum w^2)``.
    """

    name: str
    shape: tuple[int, ...]
    size: int
    zeros: int
    nonzeros: int
    fraction_zero: float
    l1_norm: float
    l2_norm: float

    @classmethod
    def counted(
        cls, name: str, shape: Sequence[int], zeros: int, l1_norm: float, l2_norm: float
    ) -> LayerSparsity:
        """The row of a tensor, its size, nonzeros and fraction derived from its counts.

        Args:
            name: the parameter's name.
            shape: its shape.
            zeros: its exact zeros.
            l1_norm: ``sum |w|``.
            l2_norm: ``sqrt(sum w^2)``.

        Returns:
            The row.

        Example:
            >>> LayerSparsity.counted("w", (2, 2), 3, 1.0, 1.0).fraction_zero
            0.75
        """
        size = math.prod(shape)
        return cls(
            name=name,
            shape=tuple(int(s) for s in shape),
            size=size,
            zeros=zeros,
            nonzeros=size - zeros,
            fraction_zero=zeros / size if size else 0.0,
            l1_norm=l1_norm,
            l2_norm=l2_norm,
        )


@dataclass(frozen=True)
class SparsityReport:
    """Per-parameter rows and the totals over them.

    Attributes:
        layers: one row per parameter tensor.
        size: entries in all of them.
        zeros: exact zeros in all of them.
        nonzeros: ``size - zeros``.
        fraction_zero: ``zeros / size``.
        l1_norm: the sum of the rows' L1 norms.
        l2_norm: the norm of all entries, ``sqrt(sum of the rows' l2_norm^2)``.
        units: per-layer unit rows (neurons, channels, heads), when asked for.
    """

    layers: tuple[LayerSparsity, ...]
    size: int
    zeros: int
    nonzeros: int
    fraction_zero: float
    l1_norm: float
    l2_norm: float
    units: tuple[UnitSparsity, ...] = ()

    @classmethod
    def of_layers(
        cls, rows: Sequence[LayerSparsity], units: Sequence[UnitSparsity] = ()
    ) -> SparsityReport:
        """The report over ``rows``, with their totals.

        Args:
            rows: the per-parameter rows.
            units: the per-layer unit rows, if any.

        Returns:
            The report.

        Example:
            >>> row = LayerSparsity.counted("w", (4,), 1, 3.0, 2.0)
            >>> SparsityReport.of_layers([row, row]).fraction_zero
            0.25
        """
        size = sum(r.size for r in rows)
        zeros = sum(r.zeros for r in rows)
        return cls(
            layers=tuple(rows),
            size=size,
            zeros=zeros,
            nonzeros=size - zeros,
            fraction_zero=zeros / size if size else 0.0,
            l1_norm=sum(r.l1_norm for r in rows),
            l2_norm=sum(r.l2_norm**2 for r in rows) ** 0.5,
            units=tuple(units),
        )

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

    def _rows(self) -> list[tuple[str, ...]]:
        """The per-parameter table, header first and the total last, as text cells."""
        header = ("parameter", "shape", "size", "zeros", "fraction", "L1 norm", "L2 norm")
        body = [
            (r.name, str(r.shape), r.size, r.zeros, r.fraction_zero, r.l1_norm, r.l2_norm)
            for r in self.layers
        ]
        body.append(
            ("total", "", self.size, self.zeros, self.fraction_zero, self.l1_norm, self.l2_norm)
        )
        return [
            header,
            *[
                (
                    name,
                    shape,
                    f"{size:,}",
                    f"{zeros:,}",
                    f"{fraction:.1%}",
                    f"{l1:.4g}",
                    f"{l2:.4g}",
                )
                for name, shape, size, zeros, fraction, l1, l2 in body
            ],
        ]

    def __str__(self) -> str:
        rows = self._rows()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
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

    def to_html(self, title: str = "sparsity") -> str:
        """The report as a self-contained HTML page.

        The page holds the per-parameter table and, when the report has ``units``, the heat
        map of layer x unit. A dark cell is a live unit, a light one a zero unit, and hovering
        shows its index.

        Args:
            title: the page's title.

        Returns:
            The HTML text.
        """
        esc = html.escape
        rows = self._rows()
        table = "<tr>" + "".join(f"<th>{esc(c)}</th>" for c in rows[0]) + "</tr>"
        table += "".join(
            "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
        )
        heat = ""
        if self.units:
            lines = []
            for u in self.units:
                cells = "".join(
                    f'<td class="{"on" if a else "off"}" title="unit {i}: '
                    f'{"live" if a else "zero"}"></td>'
                    for i, a in enumerate(u.alive)
                )
                lines.append(
                    f'<tr><th>{esc(u.label)}</th><td class="n">{u.live} / {u.units}</td>'
                    f"{cells}</tr>"
                )
            heat = (
                "<h2>Units kept per layer</h2>"
                '<table class="units"><tr><th>layer</th><th>live</th></tr>'
                + "".join(lines)
                + "</table>"
            )
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; }}
.units td.on, .units td.off {{ width: 12px; height: 16px; padding: 0; }}
.units td.on {{ background: #1f4e79; }} .units td.off {{ background: #f2f2f2; }}
.units th {{ text-align: left; font-weight: normal; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p>{self.zeros:,} of {self.size:,} weights are exactly zero ({self.fraction_zero:.1%}).</p>
<table>{table}</table>
{heat}
</body></html>
"""


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
        rows.append(
            LayerSparsity.counted(
                name,
                p.shape,
                int((p == 0).sum()),
                float(p.abs().sum()),
                float(torch.linalg.vector_norm(p)),
            )
        )
    return SparsityReport.of_layers(rows, [_units(family) for family in units])


def _units(family: UnitFamily) -> UnitSparsity:
    alive = tuple(bool(v) for v in (family.norms() > 0).tolist())
    return UnitSparsity(family.label, int(family.units), sum(alive), alive)
