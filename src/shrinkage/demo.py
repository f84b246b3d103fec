"""The digits demo: one MLP, trained with no penalty, and with L1, L2 and Elastic Net each as
a loss term and by prox at the same strength, compared in one table.

    python -m shrinkage.demo            # or: make demo

Setup: scikit-learn's digits (1797 8x8 images, shipped with scikit-learn), standardized on the
training split, 80/20 split with seed 0; MLP 64-256-256-10 with ReLU; Adam, lr 1e-3, batch 64,
50 epochs. The penalty covers the three weight matrices; ``lam`` means the same in both
columns (the prox takes Adam's own element-wise step), so each pair solves one problem.
Columns: test accuracy, fraction of weights (the weight matrices) exactly zero, L2 norm of the
weights, and training time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import Tensor, nn

from .neural import build_mlp, train_epochs
from .penalties import L1, L2, ElasticNet, Penalty
from .proximal import Proximal
from .regularizer import Regularizer
from .sparsity import sparsity

__all__ = ["DemoConfig", "DemoResult", "digits_split", "run", "train_digits"]


@dataclass(frozen=True)
class DemoConfig:
    """One row of the demo: a penalty and how it is applied ("none", "loss" or "prox")."""

    label: str
    how: str
    penalty: Penalty | None = None


@dataclass(frozen=True)
class DemoResult:
    config: DemoConfig
    test_accuracy: float
    fraction_zero: float
    weight_l2_norm: float
    seconds: float


DEFAULT_CONFIGS: tuple[DemoConfig, ...] = (
    DemoConfig("no penalty", "none"),
    DemoConfig("L1", "loss", L1(1e-4)),
    DemoConfig("L1", "prox", L1(1e-4)),
    DemoConfig("L1", "loss", L1(1e-3)),
    DemoConfig("L1", "prox", L1(1e-3)),
    DemoConfig("L2", "loss", L2(1e-3)),
    DemoConfig("L2", "prox", L2(1e-3)),
    DemoConfig("ElasticNet", "prox", ElasticNet(1e-3, l1_ratio=0.5)),
)


def digits_split(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Digits, 80/20 train/test split with ``seed``, standardized on the training part.

    Returns ``X_train [n_train, 64]``, ``X_test [n_test, 64]`` (float32) and ``y_train``,
    ``y_test`` (int64 class labels).
    """
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X_tr)
    as_x = lambda a: torch.tensor(scaler.transform(a), dtype=torch.float32)  # noqa: E731
    return as_x(X_tr), as_x(X_te), torch.tensor(y_tr), torch.tensor(y_te)


def train_digits(
    config: DemoConfig,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    *,
    epochs: int = 50,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> DemoResult:
    """Train the demo MLP with one configuration and measure it on the test split."""
    X_tr, X_te, y_tr, y_te = data
    model = build_mlp(64, (256, 256), 10, generator=torch.Generator().manual_seed(seed))
    optimizer: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    reg = Regularizer(model, config.penalty) if config.penalty is not None else None
    if config.how == "prox":
        assert reg is not None
        optimizer = Proximal(optimizer, reg)
    cross_entropy = nn.CrossEntropyLoss()

    def loss_fn(out: Tensor, target: Tensor) -> Tensor:
        loss = cross_entropy(out, target)
        return loss + reg.penalty() if config.how == "loss" and reg is not None else loss

    start = time.perf_counter()
    what = f"{config.label} ({config.how})"
    train_epochs(
        model, optimizer, loss_fn, (X_tr, y_tr), epochs=epochs, batch_size=batch_size,
        seed=seed, what=what,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = float((model(X_te).argmax(1) == y_te).float().mean())
    report = sparsity(model)
    return DemoResult(config, accuracy, report.fraction_zero, report.l2_norm, seconds)


def run(
    configs: tuple[DemoConfig, ...] = DEFAULT_CONFIGS,
    epochs: int = 50,
    on_result: Callable[[DemoResult], None] | None = None,
) -> list[DemoResult]:
    """Train every configuration on the same split and initialisation; ``on_result`` is
    called after each one (progress)."""
    data = digits_split()
    results = []
    for config in configs:
        results.append(train_digits(config, data, epochs=epochs))
        if on_result is not None:
            on_result(results[-1])
    return results


def format_table(results: list[DemoResult]) -> str:
    """The demo table as text."""
    header = (
        f"{'penalty':<17}{'applied':<8}{'lam':>8}{'test acc':>10}{'zeros':>9}"
        f"{'||W||_2':>9}{'time':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lam = "-" if r.config.penalty is None else f"{r.config.penalty.lam:g}"
        lines.append(
            f"{r.config.label:<17}{r.config.how:<8}{lam:>8}{r.test_accuracy:>10.2%}"
            f"{r.fraction_zero:>9.2%}{r.weight_l2_norm:>9.2f}{r.seconds:>7.1f}s"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m shrinkage.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--epochs", type=int, default=50, help="training epochs (default 50)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (default: torch's choice)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        "digits, MLP 64-256-256-10, Adam lr 1e-3, batch 64, "
        f"{args.epochs} epochs; zeros = fraction of weight-matrix entries exactly 0\n"
    )

    def report(result: DemoResult) -> None:
        config = result.config
        print(f"  trained {config.label} ({config.how}) in {result.seconds:.1f}s", flush=True)

    results = run(epochs=args.epochs, on_result=report)
    print()
    print(format_table(results))


if __name__ == "__main__":
    main()
