"""Reports: what each penalty did, drawn from a stored run's path records only.

    view = load_run(store, run_id)
    html = render(view, "reports/")          # report.html with every plot embedded, PNGs beside

The figures (each a function returning a matplotlib ``Figure``, so a notebook shows the very
same plots):

* :func:`path_figure`: the regularization path, each feature's coefficient (linear) or the
  norm of its first-layer weights (MLP) against lam, log axis;
* :func:`validation_figure`: training and validation loss against lam, with ``lam_min`` and
  ``lam_1se`` marked (the bias-variance trade-off);
* :func:`training_figure`: training and validation loss per epoch of each penalty's chosen
  model (MLP), the dense phase followed by the path up to the chosen point;
* :func:`histogram_figure`: the weights of each chosen model (L1's spike at zero, L2's
  shrunken bell);
* :func:`sparsity_figure`: the fraction of exact zeros in each layer;
* :func:`importance_figure`: each feature's importance, the strongest lam at which it is
  still in the model.

Figures are built with matplotlib's object API (no pyplot, no display, any backend), so a
notebook shows them inline and a server renders them to PNG alike.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .._validation import ArgumentError
from ..path import Choice, PathPoint, choose_from_paths
from .results import ResultRow, weight_arrays, zero_fraction
from .runner import chosen_point
from .settings import Settings
from .store import RunInfo, Store

__all__ = [
    "FIGURES",
    "RunView",
    "edge_notes",
    "histogram_figure",
    "importance_figure",
    "load_run",
    "path_figure",
    "render",
    "sparsity_figure",
    "training_figure",
    "validation_figure",
]

_COLORS = {
    "none": "#555555",
    "l1": "#d62728",
    "l2": "#1f77b4",
    "elasticnet": "#9467bd",
    "group_inputs": "#2ca02c",
    "group_neurons": "#ff7f0e",
}


@dataclass(frozen=True)
class RunView:
    """A stored run, read back: its settings, result rows, every fold's path per penalty,
    and the point each row describes."""

    info: RunInfo
    settings: Settings
    rows: list[ResultRow]
    paths: dict[str, dict[int, list[PathPoint]]]
    chosen: dict[str, PathPoint]

    @property
    def penalized(self) -> list[str]:
        return [r.penalty for r in self.rows if r.penalty != "none"]

    def row(self, penalty: str) -> ResultRow:
        """The result row of ``penalty``."""
        return next(r for r in self.rows if r.penalty == penalty)

    def choice(self, penalty: str) -> Choice:
        """Both rules on the validation losses of ``penalty``'s paths (every fold): the same
        choice the run made (:func:`shrinkage.path.choose_from_paths`)."""
        return choose_from_paths(list(self.paths[penalty].values()))

    @property
    def feature_names(self) -> list[str]:
        return list(self.info.meta.get("feature_names", []))


def load_run(store: Store, run_id: str) -> RunView:
    """Everything a report needs, from the store alone."""
    info = store.run(run_id)
    settings = Settings.from_dict(info.config)
    rows = store.results(run_id)
    if not rows:
        raise ArgumentError("run_id", f"{run_id!r} has no finished penalty yet; resume it first")
    folds = list(range(settings.cv or 1))
    paths = {r.penalty: {f: store.points(run_id, r.penalty, f) for f in folds} for r in rows}
    if settings.model == "mlp":
        paths.setdefault("none", {f: store.points(run_id, "none", f) for f in folds})
    chosen = {r.penalty: chosen_point(store, run_id, r) for r in rows}
    return RunView(info, settings, rows, paths, chosen)


def _color(name: str) -> str:
    return _COLORS.get(name, "#333333")


def _panels(n: int, width: float = 4.2, height: float = 3.2) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(width * max(n, 1), height))
    axes = fig.subplots(1, max(n, 1), squeeze=False)
    return fig, list(axes[0])


def _feature_weights(view: RunView, point: PathPoint) -> np.ndarray:
    """``[n_features]``: |coef| (per feature, over classes) for linear models; for MLPs the
    first-layer column norms the records carry as ``coef``."""
    coef = np.atleast_2d(np.asarray(point.coef, dtype=float))
    if view.settings.model == "mlp":
        return coef[0]
    return coef[0] if coef.shape[0] == 1 else np.linalg.norm(coef, axis=0)


def path_figure(view: RunView) -> Figure:
    """Coefficients (or first-layer column norms) of every feature against lam."""
    fig, axes = _panels(len(view.penalized))
    for ax, name in zip(axes, view.penalized, strict=False):
        points = [p for p in view.paths[name][0] if p.lam > 0]
        if view.settings.model == "linear":
            values = np.array([np.atleast_2d(np.asarray(p.coef)) for p in points])
            curves = values.reshape(len(points), -1)
            ylabel = "coefficient"
        else:
            curves = np.array([_feature_weights(view, p) for p in points])
            ylabel = "first-layer weight norm"
        lams = [p.lam for p in points]
        ax.plot(lams, curves, lw=0.8)
        ax.set_xscale("log")
        ax.axvline(view.chosen[name].lam, color="k", ls="--", lw=1, label="chosen")
        ax.set_xlabel("lam")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{name}: regularization path")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def validation_figure(view: RunView) -> Figure:
    """Training and validation loss against lam (mean over folds, with one standard error)."""
    fig, axes = _panels(len(view.penalized))
    dense = _dense_loss(view)
    for ax, name in zip(axes, view.penalized, strict=False):
        folds = view.paths[name]
        choice = view.choice(name)
        lams, length = choice.lams, len(choice.lams)
        train = np.array([[folds[f][i].train_loss for f in folds] for i in range(length)], float)
        keep = lams > 0
        ax.plot(lams[keep], train.mean(axis=1)[keep], color="#888888", label="training loss")
        ax.errorbar(
            lams[keep], choice.mean[keep], yerr=choice.se[keep], color=_color(name),
            label="validation",
        )  # fmt: skip
        if dense is not None:  # the network's lam = 0 end: no penalty
            ax.axhline(dense, color="#888888", ls="-.", lw=1, label="validation, no penalty")
        ax.axvline(lams[choice.best], color="k", ls="--", lw=1, label="lam_min")
        ax.axvline(lams[choice.one_se], color="k", ls=":", lw=1.5, label="lam_1se")
        ax.set_xscale("log")
        ax.set_xlabel("lam")
        ax.set_ylabel("loss")
        ax.set_title(f"{name}: validation curve")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _epoch_history(view: RunView, name: str) -> np.ndarray:
    """``[epochs, 2]`` (training, validation loss) of the chosen model's training: the dense
    phase, then the path up to the chosen point (first fold)."""
    history = list(_history(view.paths["none"][0][0]))
    if name != "none":
        for point in view.paths[name][0][: view.row(name).index + 1]:
            history += _history(point)
    return np.array(history, dtype=float).reshape(-1, 2)


def training_figure(view: RunView) -> Figure:
    """Loss per epoch of each penalty's chosen model (MLP runs)."""
    names = [r.penalty for r in view.rows]
    fig, axes = _panels(len(names), width=3.6)
    for ax, name in zip(axes, names, strict=False):
        if view.settings.model != "mlp":
            ax.text(0.5, 0.5, "linear models have no epochs", ha="center", va="center")
            ax.set_axis_off()
            continue
        history = _epoch_history(view, name)
        epochs = np.arange(1, len(history) + 1)
        ax.plot(epochs, history[:, 0], color="#888888", label="training")
        ax.plot(epochs, history[:, 1], color=_color(name), label="validation")
        dense = len(_history(view.paths["none"][0][0]))
        if name != "none":
            ax.axvline(dense + 0.5, color="k", ls=":", lw=1, label="penalty on")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(name)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def _history(point: PathPoint) -> tuple[tuple[float, float], ...]:
    return () if point.state is None else point.state.history


def histogram_figure(view: RunView) -> Figure:
    """Histogram of the chosen model's weights, one panel per penalty."""
    names = [r.penalty for r in view.rows]
    fig, axes = _panels(len(names), width=3.6)
    for ax, name in zip(axes, names, strict=False):
        w = np.concatenate(list(weight_arrays(view.chosen[name]).values()))
        zeros = zero_fraction(view.chosen[name])
        limit = float(np.abs(w).max()) or 1.0
        ax.hist(w, bins=81, range=(-limit, limit), color=_color(name))
        ax.set_yscale("log")
        ax.set_title(f"{name}: {100 * zeros:.1f}% exactly zero")
        ax.set_xlabel("weight")
    fig.tight_layout()
    return fig


def sparsity_figure(view: RunView) -> Figure:
    """Fraction of exact zeros per layer, one bar per penalty."""
    names = [r.penalty for r in view.rows]
    layers = list(weight_arrays(view.chosen[names[0]]))
    fig = Figure(figsize=(max(5.0, 1.6 * len(layers) * len(names) / 2), 3.4))
    ax = fig.subplots()
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        weights = weight_arrays(view.chosen[name])
        fractions = [float(np.mean(weights[layer] == 0)) for layer in layers]
        x = np.arange(len(layers)) + k * width
        ax.bar(x, fractions, width, color=_color(name), label=name)
    ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2, layers)
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction exactly zero")
    ax.set_title("sparsity per layer")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def importances(view: RunView, name: str) -> np.ndarray:
    """``[n_features]``: the strongest lam along ``name``'s path (first fold) at which each
    feature is still in the model; 0 for a feature never in it."""
    n = len(view.feature_names) or view.rows[0].n_features
    out = np.zeros(n)
    for point in view.paths[name][0]:
        for j in point.selected:
            out[j] = max(out[j], point.lam)
    return out


def staying_from(view: RunView, name: str) -> np.ndarray:
    """``[n_features]``: for each feature of ``name``'s chosen model, the strongest lam from
    which it stays in the model at every point of the first fold's path down to the chosen
    lam (the chosen lam itself where that path does not hold it there); 0 for the others.

    Example:
        A feature that enters at lam 0.3, leaves at 0.1 and enters again at 0.05, chosen at
        0.02, stays from 0.05.
    """
    chosen = view.chosen[name]
    out = np.zeros(len(view.feature_names) or view.rows[0].n_features)
    down = [p for p in sorted(view.paths[name][0], key=lambda p: -p.lam) if p.lam >= chosen.lam]
    for j in chosen.selected:
        out[j] = chosen.lam
        for point in reversed(down):
            if j not in point.selected:
                break
            out[j] = point.lam
    return out


def importance_figure(view: RunView, top: int = 30) -> Figure:
    """The ``top`` features by importance, for every penalty that zeros weights."""
    names = [n for n in view.penalized if n != "l2"] or view.penalized
    fig, axes = _panels(len(names), width=4.6, height=max(3.0, 0.16 * top))
    labels = view.feature_names
    for ax, name in zip(axes, names, strict=False):
        values = importances(view, name)
        order = np.argsort(values)[::-1][:top][::-1]
        ax.barh(
            [labels[j] if j < len(labels) else f"x{j}" for j in order],
            values[order],
            color=_color(name),
        )
        if np.all(values[order] > 0):
            ax.set_xscale("log")
        ax.set_xlabel("lam at which the feature leaves")
        ax.set_title(f"{name}: feature importance")
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


FIGURES: dict[str, tuple[str, Callable[[RunView], Figure]]] = {
    "path": ("Regularization path", path_figure),
    "validation": ("Validation curve: choosing lam (bias-variance trade-off)", validation_figure),
    "training": (
        "Training and validation loss per epoch (overfitting made visible)",
        training_figure,
    ),
    "histograms": ("Weight histograms of the chosen models", histogram_figure),
    "sparsity": ("Sparsity per layer", sparsity_figure),
    "importances": ("Feature importances", importance_figure),
}
"""File stem -> (title, figure function), in the report's order."""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _dense_loss(view: RunView) -> float | None:
    """The unpenalized network's mean validation loss over folds (``lam = 0``), if the run
    trained one."""
    folds = view.paths.get("none", {})
    losses = [points[0].val_loss for points in folds.values() if points]
    known = [v for v in losses if v is not None]
    return float(np.mean(known)) if known and len(known) == len(losses) else None


def edge_notes(view: RunView) -> list[str]:
    """One sentence for each penalty whose lowest validation loss sits at an end of the
    strengths tried, saying which end and what is on the other side of it.

    Example:
        ``["l1: the lowest validation loss (0.0871) is at the weakest lam tried (1e-05);
        the unpenalized network validates at 0.112"]``
    """
    notes, dense = [], _dense_loss(view)
    for name in view.penalized:
        choice = view.choice(name)
        lam, loss = float(choice.lams[choice.best]), float(choice.mean[choice.best])
        if len(choice.lams) < 2:
            continue
        where = f"the lowest validation loss ({loss:.4g}) is at"
        if choice.best == int(np.argmin(choice.lams)):
            side = (
                f"; the unpenalized network validates at {dense:.4g}"
                if dense is not None
                else ": within the strengths tried, less penalty always validated better"
            )
            notes.append(f"{name}: {where} the weakest lam tried ({lam:.3g}){side}")
        elif choice.best == int(np.argmax(choice.lams)):
            notes.append(
                f"{name}: {where} the strongest lam tried ({lam:.3g}): the data favour the "
                "most heavily penalized model tried"
            )
    return notes


def render(view: RunView, out_dir: str | Path) -> Path:
    """Write ``report.html`` (self-contained: the plots embedded as PNG data) and the PNGs
    beside it into ``out_dir``; returns the HTML file's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for stem, (title, make) in FIGURES.items():
        fig = make(view)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        png = buffer.getvalue()
        (out / f"{stem}.png").write_bytes(png)
        data = base64.b64encode(png).decode("ascii")
        sections.append(
            f'<section><h2>{html.escape(title)}</h2><img alt="{stem}" '
            f'src="data:image/png;base64,{data}"></section>'
        )
    table = [row.columns() for row in view.rows]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in table[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row.values()) + "</tr>" for row in table
    )
    s, meta = view.settings, view.info.meta
    how = f"{s.cv}-fold cross-validation" if s.cv else "a validation split"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>shrinkage report {html.escape(view.info.id)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
img {{ max-width: 100%; }} section {{ margin-top: 2em; }}
</style></head><body>
<h1>shrinkage {html.escape(view.info.command)}: {html.escape(str(meta.get("dataset")))}</h1>
<p>Run <code>{html.escape(view.info.id)}</code>: {html.escape(s.model)} model,
{html.escape(str(meta.get("n_samples")))} samples, {len(view.feature_names)} features,
{html.escape(str(meta.get("task")))}; each lam chosen on {how} by the "{html.escape(s.rule)}"
rule, then evaluated on a held-out test part (seed {s.seed}).</p>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
{"".join(f"<p class='note'>{html.escape(n)}</p>" for n in edge_notes(view))}
{"".join(sections)}
</body></html>
"""
    target = out / "report.html"
    target.write_text(page, encoding="utf-8")
    return target
