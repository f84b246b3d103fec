"""Structured sparsity that pays: group-lasso training, then compaction, on digits.

Two models on scikit-learn's digits (80/20 split, seed 0, standardized): an MLP 64-512-512-10
and a small CNN on the 8x8 images (Conv 32 - BN - ReLU - Conv 64 - BN - ReLU - MaxPool -
Linear). Each is trained without a penalty (the reference) and with the group lasso over whole
neurons / channels (``neuron_groups``, applied by ``Proximal`` around Adam, preconditioned, same
epochs) at each strength of a small grid; the strongest one whose validation accuracy (a 20 %
split of the training part; the test part is not looked at) is within ``--tolerance`` points of
the reference's is kept, and compacted with ``compact``. Reported, measured
side by side in this run: parameters, checkpoint size (``torch.save`` of the state dict, and
``save_sparse``), inference latency at batch 1 and batch 256 (median of interleaved
repetitions, eval mode, no grad) and test accuracy, for the reference, the regularized model
before compaction, and after.

    python benchmarks/compaction.py
    python benchmarks/compaction.py --epochs 40 --tolerance 0.5 --json
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import shrinkage
from shrinkage.checkpoint import save_sparse
from shrinkage.compaction import compact
from shrinkage.structured import neuron_groups


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
    model: nn.Sequential, X: torch.Tensor, y: torch.Tensor, epochs: int, lam: float | None
) -> None:
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    opt: torch.optim.Optimizer = adam
    if lam is not None:
        reg = shrinkage.Regularizer(model, None, groups=neuron_groups(model, lam))
        opt = shrinkage.Proximal(adam, reg, preconditioned=True)
    gen = torch.Generator().manual_seed(0)
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


def sizes(model: nn.Module) -> tuple[int, int]:
    """``(torch.save bytes, save_sparse bytes)``."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    with tempfile.TemporaryDirectory() as tmp:
        sparse = save_sparse(model, Path(tmp) / "m.pt").bytes
    return len(buffer.getvalue()), sparse


def latencies(
    models: dict[str, nn.Module], x: torch.Tensor, rounds: int, inner: int
) -> dict[str, float]:
    """Median seconds per forward pass, the models taking turns in every round."""
    samples: dict[str, list[float]] = {k: [] for k in models}
    calls: dict[str, Callable[[], Any]] = {k: (lambda m=m: m(x)) for k, m in models.items()}
    with torch.inference_mode():
        for call in calls.values():
            for _ in range(inner):
                call()
        for _ in range(rounds):
            for name, call in calls.items():
                start = time.perf_counter()
                for _ in range(inner):
                    call()
                samples[name].append((time.perf_counter() - start) / inner)
    return {k: statistics.median(v) for k, v in samples.items()}


def run(
    name: str, make: Callable[[], nn.Sequential], grid: list[float], args: argparse.Namespace
) -> dict[str, Any]:
    X_all, X_te, y_all, y_te = data()
    if name == "cnn":
        X_all, X_te = X_all.reshape(-1, 1, 8, 8), X_te.reshape(-1, 1, 8, 8)
    index = torch.randperm(len(X_all), generator=torch.Generator().manual_seed(1))
    val, tr = index[: len(index) // 5], index[len(index) // 5 :]
    X_tr, y_tr, X_val, y_val = X_all[tr], y_all[tr], X_all[val], y_all[val]
    torch.manual_seed(0)
    reference = make()
    train(reference, X_tr, y_tr, args.epochs, None)
    floor = accuracy(reference, X_val, y_val) - args.tolerance / 100
    lam, regularized, tried = grid[0], None, {}
    for candidate in grid:  # increasing: keep the strongest within the tolerance
        torch.manual_seed(0)
        model = make()
        train(model, X_tr, y_tr, args.epochs, candidate)
        tried[candidate] = accuracy(model, X_val, y_val)
        if tried[candidate] >= floor or regularized is None:
            lam, regularized = candidate, model
    assert regularized is not None
    compacted, report = compact(regularized, X_te)
    models = {"reference": reference, "regularized": regularized, "compacted": compacted}
    out: dict[str, Any] = {
        "lam": lam,
        "validation_accuracy": {f"{k:g}": v for k, v in tried.items()},
        "kept_units": {str(k): v for k, v in report.kept.items()},
    }
    lat1 = latencies(models, X_te[:1], args.rounds, 200)
    lat256 = latencies(models, X_te[:256], args.rounds, 20)
    for key, model in models.items():
        dense, sparse = sizes(model)
        out[key] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "file_bytes": dense,
            "sparse_file_bytes": sparse,
            "latency_b1_us": lat1[key] * 1e6,
            "latency_b256_us": lat256[key] * 1e6,
            "test_accuracy": accuracy(model, X_te, y_te),
        }
    ref, comp = out["reference"], out["compacted"]
    out["ratios"] = {
        "parameters_removed": 1 - comp["parameters"] / ref["parameters"],
        "speedup_b1": ref["latency_b1_us"] / comp["latency_b1_us"],
        "speedup_b256": ref["latency_b256_us"] / comp["latency_b256_us"],
        "accuracy_points_lost": 100 * (ref["test_accuracy"] - comp["test_accuracy"]),
        "file_ratio": comp["file_bytes"] / ref["file_bytes"],
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--tolerance", type=float, default=0.5, help="validation accuracy points to give up"
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {
        "mlp 64-512-512-10": run("mlp", mlp, [3e-5, 1e-4, 3e-4, 1e-3], args),
        "cnn 32-64 (BN)": run("cnn", cnn, [5e-4, 1e-3, 2e-3, 4e-3], args),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"torch {torch.__version__}, {args.threads} threads, {args.epochs} epochs, digits")
    for label, r in results.items():
        print(f"\n{label}: validation accuracy per lam {r['validation_accuracy']}")
        print(f"  chosen lam={r['lam']:g}; units kept per layer: {r['kept_units']}")
        print(
            f"  {'model':<12}{'params':>10}{'file KB':>9}{'sparse KB':>11}"
            f"{'b=1 us':>9}{'b=256 us':>10}{'test acc':>10}"
        )
        for key in ("reference", "regularized", "compacted"):
            m = r[key]
            print(
                f"  {key:<12}{m['parameters']:>10,}{m['file_bytes'] / 1024:>9.1f}"
                f"{m['sparse_file_bytes'] / 1024:>11.1f}{m['latency_b1_us']:>9.1f}"
                f"{m['latency_b256_us']:>10.1f}{100 * m['test_accuracy']:>9.2f}%"
            )
        q = r["ratios"]
        print(
            f"  compacted vs reference: {100 * q['parameters_removed']:.1f}% fewer parameters, "
            f"{q['speedup_b1']:.2f}x faster at batch 1, {q['speedup_b256']:.2f}x at batch 256, "
            f"{q['accuracy_points_lost']:+.2f} points of accuracy lost, file {q['file_ratio']:.2f}x"
        )


if __name__ == "__main__":
    main()
