"""Exact channel sparsity against Torch-Pruning, on a small ResNet and digits.

For each seed, on the experiments' split of scikit-learn's digits (8x8 images; test part 20 %,
the rest split into ``--cv`` folds, or 75 / 25 training / validation with ``--cv 0``):

* **dense**: the experiments' ``cnn`` (a small ResNet: stem, a residual block per width, the
  second at stride 2 with a 1x1 shortcut) trained without penalty;
* **shrinkage**: the warm-started path of proximal group lasso over the traced channel units
  (``group_neurons``, each unit weighted by the multiply-accumulates it costs) from the dense
  network, the strength chosen by "1se" over ``--cv`` folds (default 3) on the validation loss
  of each point's relaxed refit (up to ``3 * path_epochs`` epochs without penalty, the zero
  units held at zero), then the path on the whole training part up to that strength; the
  chosen network is compacted (``shrinkage.compact``: the outputs unchanged), its relaxed
  refit too;
* **Torch-Pruning 1.6.1**: from the same dense network, ``GroupNormPruner``'s sparse training
  (``pruner.regularize`` after each backward pass, Adam, as many epochs as our path ran up to
  the chosen point), then pruned by group magnitude to the MACs of our compact network
  (global pruning, its ratio found by bisection), then fine-tuned without penalty for the
  same ``path_epochs`` epochs as our relaxed refit.

Reported per seed and averaged: parameters, MACs per sample (``shrinkage.count_macs``), test
accuracy of the trained network, right after compaction or pruning, and after fine-tuning;
the latency of each final network at batch 1 and 256 (median of interleaved repetitions, one
intra-op thread, eval and inference mode), eager and ``torch.compile`` (``--no-compile``
skips compiling), on the first seed.

With ``--budgets 2 3 4``, budget rows instead: from the same dense network, proximal Adam
with the MACs-weighted group lasso and a :class:`~shrinkage.structured.Budget` checked every
``--budget-every`` steps until the compacted network has 1/2, 1/3, 1/4 of the dense MACs
(within 5 % below); then ``compact`` (accuracy unchanged), and both it and Torch-Pruning at
the MACs reached (sparse training for as many epochs, then pruning by magnitude) refitted for
``path_epochs``; with latency at batch 1 and 256 against the dense network's, first seed.
``--latency-budget 0.7`` adds a row budgeted in time: the units weighted by their
measured time (``weighting="latency"``) and the budget's cost ``measured_latency`` of the
compacted network at batch 256 on one thread against the dense network's (the two timed in
turns), until it runs in 0.7 of the dense network's time; its latency at batch 1 and 256
then timed against the dense network's as above. That row depends on this machine and on
what else runs on it.

    python benchmarks/structured.py                      # seeds 0, 1 and 2
    python benchmarks/structured.py --seeds 0 --no-compile --json
    python benchmarks/structured.py --budgets 2 3 4      # the budget rows
    python benchmarks/structured.py --seeds 0 --latency-budget 0.7
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch_pruning as tp
from torch import nn
from torch.nn import functional as F

from shrinkage import Proximal, Regularizer, compact, count_macs
from shrinkage.experiments import Settings
from shrinkage.experiments.problems import NetworkFamily
from shrinkage.experiments.runner import Runner
from shrinkage.structured import Budget, measured_latency, neuron_groups
from timing import interleaved


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


def size(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    return sum(p.numel() for p in model.parameters()), count_macs(model, x[:1])


def sparse_train(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, seed: int
) -> tp.pruner.GroupNormPruner:
    """Torch-Pruning's recipe: its group regularizer added to the gradients of every step."""
    pruner = pruner_for(model, X[:1], 0.0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(X), generator=gen).split(64):
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            pruner.regularize(model)
            opt.step()
    return pruner


def pruner_for(model: nn.Module, x: torch.Tensor, ratio: float) -> tp.pruner.GroupNormPruner:
    head = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return tp.pruner.GroupNormPruner(
        model,
        x,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=ratio,
        global_pruning=True,
        ignored_layers=head,
        reg=5e-4,
    )


def prune_to(model: nn.Module, x: torch.Tensor, macs: int) -> nn.Module:
    """A copy of ``model`` pruned by Torch-Pruning to at most ``macs`` (bisection on the
    global ratio)."""
    low, high, best = 0.0, 0.95, copy.deepcopy(model)
    for _ in range(12):
        mid = (low + high) / 2
        candidate = copy.deepcopy(model).eval()
        pruner_for(candidate, x, mid).step()
        if count_macs(candidate, x) <= macs:
            high, best = mid, candidate
        else:
            low = mid
    return best


def latency(
    models: dict[str, nn.Module], x: torch.Tensor, rounds: int, inner: int
) -> dict[str, float]:
    """Median seconds per forward pass on one intra-op thread, the models taking turns."""
    calls: dict[str, Callable[[], Any]] = {k: (lambda m=m: m(x)) for k, m in models.items()}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return interleaved(calls, rounds, inner)
    finally:
        torch.set_num_threads(before)


def run(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(
        data="digits", model="cnn", penalties=("none", "group_neurons"), rule="1se",
        seed=seed, epochs=args.epochs, path_epochs=args.path_epochs, n_lambdas=args.n_lambdas,
        cv=args.cv or None,
    )  # fmt: skip
    runner = Runner(settings, None, "")
    fold = -1 if args.cv else 0  # with cross-validation: the refit on the whole training part
    test = runner.data.test
    dense_family, X, y = runner.family("none", fold)
    dense_point = runner.path("none", fold)[0]
    family, _, _ = runner.family("group_neurons", fold)
    assert isinstance(family, NetworkFamily) and isinstance(dense_family, NetworkFamily)
    Xte = torch.as_tensor(X[test], dtype=torch.float32)
    yte = torch.as_tensor(y[test], dtype=torch.long)
    Xtr, ytr = family.data

    dense = copy.deepcopy(dense_family.problem.model)
    dense.load_state_dict(dense_point.state.predicting)
    dense.eval()
    chosen = runner.choice("group_neurons").index("1se")
    point = runner.path("group_neurons", fold, stop_after=chosen if args.cv else None)[chosen]
    regularized = copy.deepcopy(family.problem.model)
    regularized.load_state_dict(point.state.weights)
    regularized.eval()
    exact, _ = compact(regularized, Xtr[:256])  # the penalized network, compacted exactly
    ours = family.compact_at(point)  # its relaxed refit (zero units held at zero), compacted
    budget = (chosen + 1) * settings.path_epochs  # the epochs of our path to the chosen point

    theirs_trained = copy.deepcopy(dense).train()
    sparse_train(theirs_trained, Xtr, ytr, budget, settings.learning_rate, seed)
    theirs = prune_to(theirs_trained, Xtr[:1], size(ours, Xtr)[1])
    theirs_pruned = accuracy(theirs, Xte, yte)
    family.refit(theirs, settings.path_epochs)  # the same budget as our relaxed refit

    row: dict[str, Any] = {"seed": seed, "lam": point.lam, "budget_epochs": budget}
    for name, model, trained, cut in [
        ("dense", dense, None, None),
        ("shrinkage", ours, accuracy(regularized, Xte, yte), accuracy(exact, Xte, yte)),
        ("torch-pruning", theirs, accuracy(theirs_trained, Xte, yte), theirs_pruned),
    ]:
        params, macs = size(model, Xtr)
        row[name] = {
            "parameters": params, "macs": macs, "trained": trained, "after_cut": cut,
            "final": accuracy(model, Xte, yte),
        }  # fmt: skip
    if seed == args.seeds[0]:
        models = {"dense": dense, "shrinkage": ours, "torch-pruning": theirs}
        for batch in (1, 256):
            x = Xte[:batch]
            timed = dict(models)
            if not args.no_compile:
                torch.compiler.reset()
                for k, m in models.items():
                    timed[f"{k}/compiled"] = torch.compile(copy.deepcopy(m).eval(), dynamic=False)
                    with torch.inference_mode():
                        timed[f"{k}/compiled"](x)
            row[f"latency_b{batch}"] = latency(timed, x, args.rounds, 50 if batch == 1 else 5)
    return row


def budget_train(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    target: float,
    args: argparse.Namespace,
    cost: Any = "macs",
) -> tuple[Budget, int]:
    """Proximal Adam with the group lasso over channels and a budget in ``cost`` checked every
    ``--budget-every`` steps; returns the budget and the epochs it took. Units are weighted by
    their MACs for a counted cost and by their measured time for a measured one."""
    weighting = "macs" if isinstance(cost, str) else "latency"
    groups = neuron_groups(model, args.budget_lam, example_input=X[:2], weighting=weighting)
    reg = Regularizer(model, None, groups=groups)
    opt = Proximal(torch.optim.Adam(model.parameters(), lr=args.budget_lr), reg)
    budget = Budget(model, groups, X[:2], target=target, cost=cost, optimizer=opt)
    gen = torch.Generator().manual_seed(0)
    step = 0
    for epoch in range(1, args.budget_max_epochs + 1):
        model.train()
        for idx in torch.randperm(len(X), generator=gen).split(64):
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
            step += 1
            if step % args.budget_every == 0 and budget.check():
                return budget, epoch
    return budget, args.budget_max_epochs


def one_thread_latency(x: torch.Tensor, dense: nn.Module) -> Callable[[nn.Module], float]:
    """The budget's cost for the latency rows: ``measured_latency`` at the batch ``x``
    relative to ``dense`` (the two timed in turns) on one intra-op thread, as the rows'
    latency columns are timed."""
    measure = measured_latency(x, repeats=15, baseline=dense)

    def latency(model: nn.Module) -> float:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return measure(model)
        finally:
            torch.set_num_threads(before)

    return latency


def run_budgets(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """For each factor: the dense network trained to ``1 / factor`` of its MACs, compacted
    and refitted; Torch-Pruning from the same network to the MACs reached, refitted alike.
    With ``--latency-budget``, one more row trained to that fraction of the dense network's
    one-thread batch-256 latency."""
    settings = Settings(
        data="digits", model="cnn", penalties=("none", "group_neurons"), rule="1se",
        seed=seed, epochs=args.epochs, path_epochs=args.path_epochs, cv=None,
    )  # fmt: skip
    runner = Runner(settings, None, "")
    family, X, y = runner.family("group_neurons", 0)
    dense_family, _, _ = runner.family("none", 0)
    assert isinstance(family, NetworkFamily) and isinstance(dense_family, NetworkFamily)
    test = runner.data.test
    Xte = torch.as_tensor(X[test], dtype=torch.float32)
    yte = torch.as_tensor(y[test], dtype=torch.long)
    dense = copy.deepcopy(dense_family.problem.model)
    dense.load_state_dict(runner.path("none", 0)[0].state.predicting)
    dense.eval()
    row: dict[str, Any] = {
        "seed": seed,
        "dense": {"macs": size(dense, family.data[0])[1], "final": accuracy(dense, Xte, yte)},
    }
    for factor in args.budgets or []:
        row[f"{factor}x"] = budget_row(dense, family, (Xte, yte), 1 / factor, "macs", args, seed)
    cost = one_thread_latency(family.data[0][:256], dense)
    for fraction in args.latency_budget or []:
        row[f"latency {fraction:g}"] = budget_row(
            dense, family, (Xte, yte), fraction, cost, args, seed
        )
    return row


def budget_row(
    dense: nn.Module,
    family: NetworkFamily,
    test: tuple[torch.Tensor, torch.Tensor],
    target: float,
    cost: Any,
    args: argparse.Namespace,
    seed: int,
) -> dict[str, Any]:
    """One budget: a copy of ``dense`` trained to ``target`` of its ``cost``, compacted and
    refitted; Torch-Pruning to the MACs reached, refitted alike; latency against ``dense``
    at batch 1 and 256 on the first seed and for a latency budget."""
    (Xtr, ytr), (Xte, yte) = family.data, test
    model = copy.deepcopy(dense)
    budget, epochs = budget_train(model, Xtr, ytr, target, args, cost)
    trained = accuracy(model, Xte, yte)
    ours, _ = compact(model.eval(), Xtr[:256])
    cut = accuracy(ours, Xte, yte)
    family.refit(ours, args.path_epochs)
    theirs_trained = copy.deepcopy(dense).train()
    sparse_train(theirs_trained, Xtr, ytr, epochs, args.budget_lr, seed)
    theirs = prune_to(theirs_trained, Xtr[:1], size(ours, Xtr)[1])
    theirs_cut = accuracy(theirs, Xte, yte)
    family.refit(theirs, args.path_epochs)
    report = budget.report
    row = {
        "cost": report.cost, "target": report.target, "reached_cost": report.reached,
        "reached": size(ours, Xtr)[1], "dense_macs": size(dense, Xtr)[1], "epochs": epochs,
        "stepped_back": report.stepped_back, "trained": trained, "cut": cut,
        "final": accuracy(ours, Xte, yte), "theirs_macs": size(theirs, Xtr)[1],
        "theirs_cut": theirs_cut, "theirs_final": accuracy(theirs, Xte, yte),
    }  # fmt: skip
    if seed == args.seeds[0] or not isinstance(cost, str):
        for batch in (1, 256):
            times = latency({"dense": dense, "ours": ours}, Xte[:batch], args.rounds,
                            50 if batch == 1 else 5)  # fmt: skip
            row[f"latency_b{batch}"] = times["ours"] / times["dense"]
    return row


def show_budgets(row: dict[str, Any], factors: list[float]) -> None:
    print(f"seed {row['seed']}: dense {row['dense']['macs']:,} MACs, "
          f"test accuracy {100 * row['dense']['final']:.2f}")  # fmt: skip
    heads = ("target", "reached", "/target", "epochs", "trained", "cut", "change", "final",
             "TP MACs", "TP cut", "TP final", "lat b1", "lat b256")  # fmt: skip
    print("  " + " ".join(f"{h:>9}" for h in heads))
    for factor in factors:
        r = row[f"{factor}x"]
        print("  " + " ".join(f"{c:>9}" for c in budget_cells(f"{factor:g}x", r)))
    for name in (k for k in row if k.startswith("latency")):
        r = row[name]
        print(f"  {name} (one thread, batch 256, time against the dense network's): target "
              f"{r['target']:.3f}, reached {r['reached_cost']:.3f} "
              f"({r['reached_cost'] / r['target']:.3f}), MACs "
              f"{r['reached'] / r['dense_macs']:.2f}x of dense")  # fmt: skip
        print("  " + " ".join(f"{c:>9}" for c in budget_cells(name.split()[1], r)))


def budget_cells(name: str, r: dict[str, Any]) -> tuple[str, ...]:
    """One budget row's cells: the MACs reached, the accuracies, Torch-Pruning's, the
    latencies against the dense network."""
    lat = [f"{r[k]:.2f}x" if k in r else "" for k in ("latency_b1", "latency_b256")]
    return (
        name, f"{r['reached']:,}", f"{r['reached_cost'] / r['target']:.3f}",
        str(r["epochs"]), f"{100 * r['trained']:.2f}", f"{100 * r['cut']:.2f}",
        f"{100 * (r['cut'] - r['trained']):+.2f}", f"{100 * r['final']:.2f}",
        f"{r['theirs_macs']:,}", f"{100 * r['theirs_cut']:.2f}",
        f"{100 * r['theirs_final']:.2f}", *lat,
    )  # fmt: skip


def show(row: dict[str, Any]) -> None:
    dense = row["dense"]
    budget = row["budget_epochs"]
    print(f"seed {row['seed']}: lam_1se={row['lam']:.3g}, sparse-training budget {budget} epochs")
    heads = ("params", "MACs", "x fewer", "trained", "cut", "change", "final")
    print(f"  {'':14} " + " ".join(f"{h:>9}" for h in heads))
    for name in ("dense", "shrinkage", "torch-pruning"):
        r = row[name]
        trained = "" if r["trained"] is None else f"{100 * r['trained']:.2f}"
        cut = "" if r["after_cut"] is None else f"{100 * r['after_cut']:.2f}"
        change = "" if r["after_cut"] is None else f"{100 * (r['after_cut'] - r['trained']):+.2f}"
        print(
            f"  {name:14} {r['parameters']:>9,} {r['macs']:>9,} {dense['macs'] / r['macs']:>9.2f} "
            f"{trained:>9} {cut:>9} {change:>9} {100 * r['final']:>9.2f}"
        )
    for batch in (1, 256):
        times = row.get(f"latency_b{batch}")
        if times:
            base = times["dense"]
            parts = [f"{k} {1e3 * v:.3f} ms ({base / v:.2f}x)" for k, v in times.items()]
            print(f"  latency batch {batch} (vs dense eager): " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30, help="dense training epochs")
    parser.add_argument("--path-epochs", type=int, default=10, help="epochs per strength")
    parser.add_argument("--n-lambdas", type=int, default=8)
    parser.add_argument(
        "--cv", type=int, default=3, help="folds to choose lam by (0: one validation split)"
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--budgets", type=float, nargs="+", help="rows to MAC budgets: 2 3 4 for 2x, 3x, 4x fewer"
    )
    parser.add_argument("--budget-lam", type=float, default=1e-4, help="the starting strength")
    parser.add_argument("--budget-lr", type=float, default=1e-3)
    parser.add_argument("--budget-every", type=int, default=5, help="steps between checks")
    parser.add_argument("--budget-max-epochs", type=int, default=300)
    parser.add_argument(
        "--latency-budget",
        type=float,
        nargs="+",
        help="rows to these fractions of the dense batch-256 latency: 0.7 0.5",
    )
    args = parser.parse_args()
    if args.budgets or args.latency_budget:
        for seed in args.seeds:
            row = run_budgets(seed, args)
            if args.json:
                print(json.dumps(row))
            else:
                show_budgets(row, args.budgets or [])
        return
    rows = []
    for seed in args.seeds:
        row = run(seed, args)
        rows.append(row)
        if not args.json:
            show(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    mean = {
        name: {k: float(np.mean([r[name][k] for r in rows])) for k in ("macs", "final")}
        for name in ("dense", "shrinkage", "torch-pruning")
    }
    change = np.mean([r["shrinkage"]["after_cut"] - r["shrinkage"]["trained"] for r in rows])
    theirs = np.mean(
        [r["torch-pruning"]["after_cut"] - r["torch-pruning"]["trained"] for r in rows]
    )
    d, o, t = mean["dense"], mean["shrinkage"], mean["torch-pruning"]
    print(
        f"mean over {len(rows)} seeds: MACs dense/ours {d['macs'] / o['macs']:.2f}x, accuracy "
        f"dense {100 * d['final']:.2f}, ours {100 * o['final']:.2f}, Torch-Pruning "
        f"{100 * t['final']:.2f} at {t['macs']:,.0f} MACs; change at the cut: ours "
        f"{100 * change:+.2f}, Torch-Pruning {100 * theirs:+.2f} points"
    )


if __name__ == "__main__":
    main()
