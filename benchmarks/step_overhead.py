"""Time per training step with a penalty, relative to the same step without one.

Every variant trains its own copy of the same MLP on the same random batch with Adam; the
variants take turns in each round (in a shuffled order), so the machine's noise falls on all of
them alike. Reported: the median time per step of each variant, and its ratio to the
unregularized step as the median over rounds of the ratio within each round (a paired
estimate: a slow spell of the machine that spans a round slows both sides of its ratio),
measured side by side in this one run.

    python benchmarks/step_overhead.py                 # both models, 2 threads
    python benchmarks/step_overhead.py --rounds 60 --json

Variants: L1 and L2 as loss terms (``loss + reg.penalty()``), Adam's own ``weight_decay``,
``Proximal`` with L1, L2 and ElasticNet in its default mode (the prox with Adam's element-wise
step ``lr / (sqrt(v_hat) + eps)``, the default kernel tier: per-tensor on the CPU, foreach on
CUDA), L1 with the foreach tier forced, L1 and ElasticNet with ``decoupled=True`` (the
step ``lr``), and the group lasso over whole neurons (``neuron_groups``) in the default mode.

Beside each model the script prints two memory-traffic bounds of the default L1 step, the
bytes its kernels move over the copy bandwidth measured in the same run
(``torch.Tensor.copy_`` of a buffer of the weights' size: one read and one write per number),
each as a ratio to the plain step: five passes over whole tensors (``d = sqrt(v) *
k + eps``: read ``v``, write ``d``, read and write ``d``; ``w <- softshrink(w * d, lr * lam)
/ d``: read ``w`` and ``d``, write ``w``, read and write ``w``, read ``w`` and ``d``, write
``w``: 12 numbers per weight), and one fused pass (read ``v`` and ``w``, write ``w``: 3
numbers), what the per-tensor tier approaches by running the five kernels on windows that
stay in the cache.
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
from shrinkage.structured import neuron_groups

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

    def proximal(
        penalty: shrinkage.Penalty | None, foreach: bool | None = None, decoupled: bool = False
    ) -> Callable[[], None]:
        model = fresh()
        if penalty is None:  # the group lasso over whole neurons
            reg = shrinkage.Regularizer(model, None, groups=neuron_groups(model, 1e-4))
        else:
            reg = shrinkage.Regularizer(model, penalty)
        adam = torch.optim.Adam(model.parameters(), lr=lr)
        opt = shrinkage.Proximal(adam, reg, foreach=foreach, decoupled=decoupled)

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
        Variant("Proximal L1 decoupled", proximal(shrinkage.L1(1e-4), decoupled=True)),
        Variant("Proximal EN decoupled", proximal(shrinkage.ElasticNet(1e-4, 0.5), decoupled=True)),
        Variant("Proximal neuron groups", proximal(None)),
    ]


def traffic_bound_ms(sizes: tuple[int, ...], numbers: int, repeats: int = 20) -> float:
    """Milliseconds to move ``numbers`` numbers per weight, at the copy bandwidth measured
    now on a buffer of the weights' size (see the module docstring)."""
    n = sum(a * b for a, b in itertools.pairwise(sizes))
    src, dst = torch.randn(n), torch.empty(n)
    dst.copy_(src)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dst.copy_(src)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3 * numbers / 2


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
        plain = results[label]["none (Adam)"]["ms_per_step"]
        for name, numbers in (("bound: L1, 5 passes", 12), ("bound: L1, 1 pass", 3)):
            bound = traffic_bound_ms(sizes, numbers)
            results[label][name] = {
                "ms_per_step": bound,
                "ratio": 1.0 + bound / plain,
                "ratio_of_medians": 1.0 + bound / plain,
            }

    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"torch {torch.__version__}, {args.threads} threads, {args.rounds} rounds, Adam lr 1e-3")
    for label, rows in results.items():
        print(f"\n{label}")
        print(f"  {'variant':<30}{'ms/step':>10}{'ratio':>9}{'ratio of medians':>18}")
        for name, r in rows.items():
            print(
                f"  {name:<30}{r['ms_per_step']:>10.3f}{r['ratio']:>9.3f}"
                f"{r['ratio_of_medians']:>18.3f}"
            )


if __name__ == "__main__":
    main()
