"""Structured sparsity that pays: group-lasso training, then compaction, on digits.

Two models on scikit-learn's digits (80/20 split, standardized): an MLP 64-512-512-10
and a small CNN on the 8x8 images (Conv 32 - BN - ReLU - Conv 64 - BN - ReLU - MaxPool -
Linear). Each is trained without a penalty (the reference, ``--epochs`` + ``--refit-epochs``
epochs) and with the group lasso over whole neurons / channels (``neuron_groups``, applied by
``Proximal`` around Adam, its default step, ``--epochs`` epochs) at each strength of a grid (the
CNN's from 1e-3 to 8e-3 in steps of sqrt(2)).
Each regularized model is compacted with ``compact`` (outputs unchanged) and the compact model
is then refitted without penalty for ``--refit-epochs`` epochs (the group lasso shrinks the
weights it keeps as well; the refit removes that bias, as a relaxed lasso does, and cannot
bring a removed unit back); BatchNorm is folded into the convolutions after the refit. The
strength is chosen on the refitted models' validation loss (a 20 % split of the training part;
the test part is not looked at) by two rules, both reported: "min", the lowest mean, and "1se",
the strongest whose mean is within one standard error of the lowest (``shrinkage.path.choose``
over the grid). ``--refit-epochs 0`` skips the refit.

Reported, measured side by side in this run: parameters, checkpoint size (``torch.save`` of the
state dict, and ``save_sparse``), inference latency at batch 1 and batch 256 (median of
interleaved repetitions, eval mode, inference mode; timed on one intra-op thread and on
``--threads``, every model served at its faster count, shown after the latency), in eager
PyTorch and compiled with ``torch.compile`` (inductor, static shapes; at batch 1 a small
model's eager time is mostly Python's call overhead, which compiling removes), and test
accuracy, for the reference, the regularized model, its exact compaction and the refitted
compact model. ``--no-compile`` skips the compiled timings (compiling each model and batch
size takes seconds to a minute on a CPU).
Speedups are against the reference passed through ``compact`` too ("reference folded", the
same outputs: its BatchNorm folded, an ``nn.Sequential`` like the compact models): the
unregularized model served the way the compact ones are, so they measure what the removed
units save, not what folding saves.

    python benchmarks/compaction.py                    # seeds 0, 1 and 2
    python benchmarks/compaction.py --seeds 0 --epochs 40 --refit-epochs 10 --json
    python benchmarks/compaction.py --models cnn       # one model family

Each seed draws its own split, initialisation and batch order; the ratios are also given
averaged over the seeds (a test part of 360 images moves by 0.28 points per image, so one seed
alone cannot tell a 1-point difference from chance).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import shrinkage
from shrinkage.path import RULES, choose
from shrinkage.structured import compact, neuron_groups, save_sparse
from timing import interleaved


def data(seed: int = 0) -> tuple[torch.Tensor, ...]:
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
    mean, std = X_tr.mean(0), X_tr.std(0) + 1e-8
    as_x = lambda a: torch.tensor((a - mean) / std, dtype=torch.float32)  # noqa: E731
    return as_x(X_tr), as_x(X_te), torch.tensor(y_tr), torch.tensor(y_te)


def mlp() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    )


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 16, 10),
    )


def train(
    model: nn.Sequential,
    X: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lam: float | None,
    seed: int = 0,
) -> None:
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt: torch.optim.Optimizer = adam
    if lam is not None:
        reg = shrinkage.Regularizer(model, None, groups=neuron_groups(model, lam))
        opt = shrinkage.Proximal(adam, reg)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(X), generator=gen).split(64):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    model.eval()


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


def validation_losses(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy, ``[n]``."""
    with torch.no_grad():
        return nn.functional.cross_entropy(model.eval()(X), y, reduction="none")


def sizes(model: nn.Module) -> tuple[int, int]:
    """``(torch.save bytes, save_sparse bytes)``."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    with tempfile.TemporaryDirectory() as tmp:
        sparse = save_sparse(model, Path(tmp) / "m.pt").bytes
    return len(buffer.getvalue()), sparse


COMPARED = ("reference folded", *(f"{s} {r}" for s in ("compacted", "refitted") for r in RULES))
"""The models whose latencies the speedups compare (and the only ones compiled)."""


def compiled(model: nn.Module, x: torch.Tensor) -> Callable[..., Any]:
    """``torch.compile`` of a copy of the model (inductor, static shapes), compiled on ``x``."""
    program = torch.compile(copy.deepcopy(model).eval(), dynamic=False)
    with torch.inference_mode():
        program(x)
    return program


def latencies(
    models: dict[str, nn.Module],
    x: torch.Tensor,
    rounds: int,
    inner: int,
    threads: list[int],
    compile_them: bool,
) -> dict[str, dict[int, float]]:
    """Median seconds per forward pass at each intra-op thread count, the models taking turns
    in every round; each model eager and, with ``compile_them``, compiled (``NAME/compiled``).
    ``{name: {threads: seconds}}``."""
    every: dict[str, Callable[..., Any]] = dict(models)
    if compile_them:
        # the models that the speedups compare; torch.compile keeps a few compiled versions
        # of one forward code, so the compiler's caches start empty for each batch size
        torch.compiler.reset()
        every |= {f"{k}/compiled": compiled(m, x) for k, m in models.items() if k in COMPARED}
    calls: dict[str, Callable[[], Any]] = {k: (lambda m=m: m(x)) for k, m in every.items()}
    out: dict[str, dict[int, float]] = {k: {} for k in every}
    before = torch.get_num_threads()
    try:
        for count in threads:
            torch.set_num_threads(count)
            for name, seconds in interleaved(calls, rounds, inner).items():
                out[name][count] = seconds
    finally:
        torch.set_num_threads(before)
    return out


def run(
    name: str,
    make: Callable[[], nn.Sequential],
    grid: list[float],
    args: argparse.Namespace,
    seed: int,
) -> dict[str, Any]:
    """One model family on one seed (the split, the initialisation and the batch order)."""
    X_all, X_te, y_all, y_te = data(seed)
    if name == "cnn":
        X_all, X_te = X_all.reshape(-1, 1, 8, 8), X_te.reshape(-1, 1, 8, 8)
    index = torch.randperm(len(X_all), generator=torch.Generator().manual_seed(seed + 1))
    val, tr = index[: len(index) // 5], index[len(index) // 5 :]
    X_tr, y_tr, X_val, y_val = X_all[tr], y_all[tr], X_all[val], y_all[val]
    torch.manual_seed(seed)
    reference = make()
    train(reference, X_tr, y_tr, args.epochs + args.refit_epochs, None, seed)
    losses = {0.0: validation_losses(reference, X_val, y_val)}
    fits: dict[float, tuple[nn.Sequential, nn.Sequential, nn.Sequential, Any]] = {}
    tried: dict[float, float] = {}
    for candidate in grid:
        torch.manual_seed(seed)
        model = make()
        train(model, X_tr, y_tr, args.epochs, candidate, seed)
        exact, report = compact(model, X_val)
        refitted, _ = compact(model, X_val, fuse_batchnorm=False)
        if args.refit_epochs:
            train(refitted, X_tr, y_tr, args.refit_epochs, None, seed)
        refitted, _ = compact(refitted, X_val)  # nothing left to drop: folds BatchNorm
        tried[candidate] = accuracy(refitted, X_val, y_val)
        losses[candidate] = validation_losses(refitted, X_val, y_val)
        fits[candidate] = (model, exact, refitted, report)
    # "min": the lam of lowest mean validation loss; "1se": the strongest lam whose mean is
    # within one standard error (over the validation samples) of the lowest; shrinkage's rule
    on_grid = [losses[k] for k in grid]
    choice = choose(
        [float(v.mean()) for v in on_grid],
        grid,
        sample_se=[float(v.std() / len(v) ** 0.5) for v in on_grid],
    )
    chosen = {rule: grid[choice.index(rule)] for rule in RULES}
    # the reference as it would be served: BatchNorm folded into the convolutions and the
    # same container as the compact models (torch.compile would fold BatchNorm too);
    # latencies are compared with this one
    served, _ = compact(reference, X_val)
    models: dict[str, nn.Module] = {"reference": reference, "reference folded": served}
    for rule, lam in chosen.items():
        regularized, compacted, refitted, _ = fits[lam]
        models[f"regularized {rule}"] = regularized
        models[f"compacted {rule}"] = compacted
        models[f"refitted {rule}"] = refitted
    out: dict[str, Any] = {
        "lam": chosen,
        "validation_accuracy": {f"{k:g}": v for k, v in tried.items()},
        "validation_loss": {f"{k:g}": float(v.mean()) for k, v in losses.items()},
        "kept_units": {rule: dict(fits[lam][3].kept) for rule, lam in chosen.items()},
    }
    # every model is timed at each thread count and served at its faster one: at batch 1 the
    # work is small, and waking a second thread often costs more than it saves
    counts = sorted({1, args.threads})
    compile_them = not args.no_compile
    timings = {
        "b1": latencies(models, X_te[:1], args.rounds, 200, counts, compile_them),
        "b256": latencies(models, X_te[:256], args.rounds, 20, counts, compile_them),
    }
    variants = (("", ""), ("_compiled", "/compiled")) if compile_them else (("", ""),)
    for key, model in models.items():
        dense, sparse = sizes(model)
        out[key] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "file_bytes": dense,
            "sparse_file_bytes": sparse,
            "test_accuracy": accuracy(model, X_te, y_te),
        }
        for b, per_model in timings.items():
            for tag, suffix in variants:
                name = key + suffix
                if name not in per_model:
                    continue
                best = min(per_model[name], key=per_model[name].__getitem__)
                out[key][f"latency_{b}_us{tag}"] = per_model[name][best] * 1e6
                out[key][f"threads_{b}{tag}"] = best
                out[key][f"latency_{b}_us{tag}_per_threads"] = {
                    str(t): v * 1e6 for t, v in per_model[name].items()
                }
    ref, fast_ref = out["reference"], out["reference folded"]
    out["ratios"] = {
        which: {
            "parameters_removed": 1 - out[which]["parameters"] / ref["parameters"],
            **{
                f"speedup_{b}{tag}": fast_ref[f"latency_{b}_us{tag}"]
                / out[which][f"latency_{b}_us{tag}"]
                for b in ("b1", "b256")
                for tag, _ in variants
            },
            "accuracy_points_lost": 100 * (ref["test_accuracy"] - out[which]["test_accuracy"]),
            "file_ratio": out[which]["file_bytes"] / ref["file_bytes"],
        }
        for which in models
        if which.startswith(("compacted", "refitted"))
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--refit-epochs", type=int, default=10, help="epochs of the compact model's refit"
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="threads for training; latency is timed on 1 and on these",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--models", nargs="+", choices=["mlp", "cnn"], default=["mlp", "cnn"], help="which models"
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile timings")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    families = {
        "mlp 64-512-512-10": ("mlp", mlp, [1e-4, 2e-4, 3e-4, 5e-4, 7e-4, 1e-3]),
        "cnn 32-64 (BN)": ("cnn", cnn, [float(f"{1e-3 * 2 ** (k / 2):.2g}") for k in range(7)]),
    }
    results: dict[str, dict[int, dict[str, Any]]] = {}
    if not args.json:
        print(
            f"torch {torch.__version__}, {args.threads} threads, {args.epochs} epochs + "
            f"{args.refit_epochs} of refit, digits, seeds {args.seeds}; latency in us "
            "(threads), eager / torch.compile"
        )
    for label, (name, make, grid) in families.items():
        if name not in args.models:
            continue
        results[label] = {}
        for seed in args.seeds:
            r = results[label][seed] = run(name, make, grid, args, seed)
            if not args.json:
                show(f"{label}, seed {seed}", r)
        if not args.json:
            summary(label, results[label])
    if args.json:
        print(json.dumps(results, indent=2))


STAGES = ("regularized", "compacted", "refitted")


def show(title: str, r: dict[str, Any]) -> None:
    print(f"\n{title}: validation accuracy per lam {r['validation_accuracy']}")
    print(f"  validation loss per lam (0: reference) {r['validation_loss']}")
    for rule, lam in r["lam"].items():
        print(f"  {rule}: lam={lam:g}; units kept per layer: {r['kept_units'][rule]}")
    print(
        f"  {'model':<18}{'params':>10}{'file KB':>9}{'sparse KB':>11}"
        f"{'b=1 (threads)':>22}{'b=256 (threads)':>22}{'test acc':>10}"
    )
    order = ["reference", "reference folded"]
    order += [f"{k} {rule}" for rule in r["lam"] for k in STAGES]
    for key in order:
        m = r[key]
        print(
            f"  {key:<18}{m['parameters']:>10,}{m['file_bytes'] / 1024:>9.1f}"
            f"{m['sparse_file_bytes'] / 1024:>11.1f}"
            f"{lat(m, 'b1', ''):>11} /{lat(m, 'b1', '_compiled'):>9}"
            f"{lat(m, 'b256', ''):>11} /{lat(m, 'b256', '_compiled'):>10}"
            f"{100 * m['test_accuracy']:>9.2f}%"
        )
    for which, q in r["ratios"].items():
        print(f"  {which} vs reference: {ratio_line(q)}")


def lat(m: dict[str, Any], batch: str, tag: str) -> str:
    key = f"latency_{batch}_us{tag}"
    return f"{m[key]:.1f}({m[f'threads_{batch}{tag}']})" if key in m else "-"


def ratio_line(q: dict[str, float]) -> str:
    compiled_b1 = (
        f" (compiled {q['speedup_b1_compiled']:.2f}x)" if "speedup_b1_compiled" in q else ""
    )
    compiled_b256 = f" ({q['speedup_b256_compiled']:.2f}x)" if "speedup_b256_compiled" in q else ""
    return (
        f"{100 * q['parameters_removed']:.1f}% fewer parameters; faster at batch 1 "
        f"{q['speedup_b1']:.2f}x{compiled_b1}, at batch 256 {q['speedup_b256']:.2f}x"
        f"{compiled_b256}; {q['accuracy_points_lost']:+.2f} points of accuracy lost; "
        f"file {q['file_ratio']:.2f}x"
    )


def summary(label: str, per_seed: dict[int, dict[str, Any]]) -> None:
    """The ratios averaged over the seeds (geometric mean for speedups)."""
    print(f"\n{label}, mean over seeds {sorted(per_seed)}:")
    for which in next(iter(per_seed.values()))["ratios"]:
        rows = [r["ratios"][which] for r in per_seed.values()]
        mean: dict[str, float] = {}
        for key in rows[0]:
            values = [row[key] for row in rows]
            if key.startswith("speedup"):
                mean[key] = statistics.geometric_mean(values)
            else:
                mean[key] = statistics.fmean(values)
        print(f"  {which} vs reference: {ratio_line(mean)}")


if __name__ == "__main__":
    main()
