"""Time per training step with a penalty, relative to the same step without one.

Every variant trains its own copy of the same MLP on the same random batch with Adam; the
variants take turns in each round (in a shuffled order), so the machine's noise falls on all of
them alike. Reported: the median time per step of each variant, and its ratio to the
unregularized step as the median over rounds of the ratio within each round (a paired
estimate: a slow spell of the machine that spans a round slows both sides of its ratio),
measured side by side in this one run.

    python benchmarks/step_overhead.py                 # both models, 2 threads
    python benchmarks/step_overhead.py --rounds 60 --json

Variants: L1 and L2 as loss terms (``loss + reg.penalty()``), Adam's own ``weight_decay``, and
``Proximal`` with L1, L2 and ElasticNet (decoupled, the default kernel tier: per-tensor on the
CPU, foreach on CUDA), and L1 with the foreach tier forced.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import shrinkage

MODELS = {
    "mlp-784-1024-1024-10 (batch 256)": ((784, 1024, 1024, 10), 256),
    "mlp-64-256-256-10 (batch 64)": ((64, 256, 256, 10), 64),
}


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@dataclass
class Variant:
    name: str
    step: Callable[[], None]


def make_variants(sizes: tuple[int, ...], batch: int, lr: float = 1e-3) -> list[Variant]:
    torch.manual_seed(0)
    x = torch.randn(batch, sizes[0])
    y = torch.randint(0, sizes[-1], (batch,))
    loss_fn = nn.CrossEntropyLoss()
    reference = mlp(sizes)

    def fresh() -> nn.Sequential:
        model = mlp(sizes)
        model.load_state_dict(reference.state_dict())
        return model

    def plain(weight_decay: float = 0.0) -> Callable[[], None]:
        model = fresh()
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        return step

    def loss_term(penalty: shrinkage.Penalty) -> Callable[[], None]:
        model = fresh()
        reg = shrinkage.Regularizer(model, penalty)
        opt = torch.optim.Adam(model.parameters(), lr=lr)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            (loss_fn(model(x), y) + reg.penalty()).backward()
            opt.step()

        return step

    def proximal(penalty: shrinkage.Penalty, foreach: bool | None = None) -> Callable[[], None]:
        model = fresh()
        reg = shrinkage.Regularizer(model, penalty)
        opt = shrinkage.Proximal(torch.optim.Adam(model.parameters(), lr=lr), reg, foreach=foreach)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        return step

    return [
        Variant("none (Adam)", plain()),
        Variant("L1 loss term", loss_term(shrinkage.L1(1e-4))),
        Variant("L2 loss term", loss_term(shrinkage.L2(1e-4))),
        Variant("Adam weight_decay", plain(weight_decay=1e-4)),
        Variant("Proximal L1", proximal(shrinkage.L1(1e-4))),
        Variant("Proximal L2", proximal(shrinkage.L2(1e-4))),
        Variant("Proximal ElasticNet", proximal(shrinkage.ElasticNet(1e-4, 0.5))),
        Variant("Proximal L1 foreach", proximal(shrinkage.L1(1e-4), foreach=True)),
    ]


def measure(
    variants: list[Variant], rounds: int, steps: int, seed: int = 0
) -> dict[str, list[float]]:
    """Seconds per step of each variant in each of ``rounds`` interleaved blocks of ``steps``."""
    rng = random.Random(seed)
    for v in variants:  # warm-up: allocator, Adam state, thread pool
        for _ in range(max(3, steps // 2)):
            v.step()
    samples: dict[str, list[float]] = {v.name: [] for v in variants}
    for _ in range(rounds):
        order = variants[:]
        rng.shuffle(order)
        for v in order:
            start = time.perf_counter()
            for _ in range(steps):
                v.step()
            samples[v.name].append((time.perf_counter() - start) / steps)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--steps", type=int, default=0, help="steps per block (0: by model size)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    results = {}
    for label, (sizes, batch) in MODELS.items():
        steps = args.steps or (5 if sizes[1] >= 1024 else 25)
        samples = measure(make_variants(sizes, batch), args.rounds, steps)
        base = samples["none (Adam)"]
        results[label] = {
            name: {
                "ms_per_step": statistics.median(times) * 1e3,
                "ratio": statistics.median(t / b for t, b in zip(times, base, strict=True)),
                "ratio_of_medians": statistics.median(times) / statistics.median(base),
            }
            for name, times in samples.items()
        }

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"torch {torch.__version__}, {args.threads} threads, {args.rounds} rounds, Adam lr 1e-3")
    for label, rows in results.items():
        print(f"\n{label}")
        print(f"  {'variant':<24}{'ms/step':>10}{'ratio':>9}{'ratio of medians':>18}")
        for name, r in rows.items():
            print(
                f"  {name:<24}{r['ms_per_step']:>10.3f}{r['ratio']:>9.3f}"
                f"{r['ratio_of_medians']:>18.3f}"
            )


if __name__ == "__main__":
    main()
