"""Attention heads and MLP neurons of a small BERT: proximal group lasso against magnitude.

On the task of ``examples/prune_heads.py`` (is token 1 more frequent than token 2 in 12
tokens, one label in ten flipped; a ``BertForSequenceClassification`` of 2 layers, 4 heads of
size 8 and 64 MLP neurons per layer, built from a config), measured side by side in one run:

* **dense**: trained ``--epochs`` epochs;
* **shrinkage**: from the dense network, the warm-started path of the group lasso over every
  head and MLP neuron (``Proximal`` around Adam, its default step; the example's strengths),
  the strength chosen by "1se" on the validation loss, compacted (``shrinkage.compact``),
  then refitted without penalty for ``--refit-epochs`` epochs (the relaxed step: the compact
  network has no removed unit left to bring back);
* **magnitude**: from the dense network, the same number of heads in each layer and of MLP
  neurons in each layer set to zero, those of smallest norm (a head: its query, key and value
  rows and output columns; a neuron: its up row and down column), compacted the same way,
  and refitted for the same epochs.

Reported for each of ``--seeds`` (data and initial weights): heads and neurons left,
parameters, MACs per sequence, test accuracy before and right after compaction (for
shrinkage: the chosen network and its compaction, identical), and after the refit; for the
first seed's networks, latency at batch 1 and 32 (median of interleaved repetitions, one
intra-op thread, inference mode), eager and ``torch.compile`` (``--no-compile`` skips it).

    python benchmarks/heads.py
    python benchmarks/heads.py --no-compile --path-epochs 2
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "tests")]
try:  # torchvision's registry wheel beside the CPU torch: see tests/torchvision_cpu.py
    from torchvision_cpu import import_torchvision

    import_torchvision()
except ImportError:
    pass

import prune_heads as example  # noqa: E402

from shrinkage import compact, count_macs, head_groups, neuron_groups  # noqa: E402
from shrinkage.structured.heads import head_layouts  # noqa: E402
from timing import interleaved  # noqa: E402


def counts(model: nn.Module, example_ids: torch.Tensor) -> tuple[list[int], list[int]]:
    """Heads per layer and MLP neurons per layer that are not all zero."""
    heads = [int((g.norms() > 0).sum()) for g in head_groups(model, 0.0)]
    neurons = [
        int((g.norms() > 0).sum())
        for g in neuron_groups(model.bert, 0.0, example_input=example_ids)
    ]
    return heads, neurons


def by_magnitude(
    dense: nn.Module, heads: list[int], neurons: list[int], example_ids: torch.Tensor
) -> nn.Module:
    """A copy of ``dense`` that keeps, in each layer, ``heads[i]`` heads and ``neurons[i]``
    MLP neurons of largest norm, the others set to zero."""
    model = copy.deepcopy(dense)
    groups = [head_groups(model, 0.0), neuron_groups(model.bert, 0.0, example_input=example_ids)]
    with torch.no_grad():
        for family, keep in zip(groups, (heads, neurons), strict=True):
            for g, k in zip(family, keep, strict=True):
                gone = torch.argsort(g.norms(), descending=True)[k:]
                for m in g.members:
                    rows = torch.nonzero(torch.isin(m.unit, gone)).reshape(-1)
                    m.parameter.index_fill_(m.dim, rows, 0.0)
    return model


def refit(model: nn.Module, data: example.Data, epochs: int) -> nn.Module:
    example.train(model, torch.optim.Adam(model.parameters(), lr=1e-3), data, epochs)
    return model.eval()


def compare(args: argparse.Namespace, seed: int) -> dict[str, nn.Module]:
    """One seed: train dense, follow the path, cut by magnitude; print the table and return
    the three final networks."""
    dense, train_set, val_set, test_set = example.dense_model(args.epochs, seed)
    ids = test_set[0]
    probe = train_set[0][:4]
    model = copy.deepcopy(dense)
    example.follow_path(
        model, train_set, val_set, example.strengths(args.n_lambdas), args.path_epochs
    )
    heads, neurons = counts(model, probe)
    magnitude = by_magnitude(dense, heads, neurons, probe).eval()

    rows = {}
    finals = {"dense": dense.eval()}
    for name, sparse, before in (
        ("shrinkage", model.eval(), model),
        ("magnitude", magnitude, dense),  # before the cut: the dense network it was cut from
    ):
        small, _ = compact(sparse, ids[:64])
        rows[name] = {
            "trained": example.losses(before, *test_set)[2],
            "compacted": example.losses(small, *test_set)[2],
        }
        finals[name] = refit(small, train_set, args.refit_epochs)
        rows[name]["refitted"] = example.losses(small, *test_set)[2]
    print(f"seed {seed}: kept per layer: heads {heads} of 4, MLP neurons {neurons} of 64")
    head = ("params", "MACs", "heads", "trained", "compacted", "refitted")
    print(f"{'':10} " + " ".join(f"{h:>10}" for h in head))
    for name, m in finals.items():
        layout = sum(lay.heads for _, lay in head_layouts(m))
        r = rows.get(name, {})
        acc = [r.get(k) for k in ("trained", "compacted", "refitted")]
        if name == "dense":
            acc = [example.losses(m, *test_set)[2], None, None]
        cells = ["" if a is None else f"{100 * a:.2f}" for a in acc]
        params = sum(p.numel() for p in m.parameters())
        print(
            f"{name:10} {params:>10,} {count_macs(m, ids[:1]):>10,} {layout:>10} "
            + " ".join(f"{c:>10}" for c in cells)
        )
    return finals


def latency(args: argparse.Namespace, finals: dict[str, nn.Module], ids: torch.Tensor) -> None:
    """Median latency of each network at batch 1 and 32, eager and compiled, one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for batch in (1, 32):
            x = ids[:batch]
            calls = {k: (lambda m=m, x=x: m(input_ids=x)) for k, m in finals.items()}
            if not args.no_compile:
                torch.compiler.reset()
                for k, m in finals.items():
                    compiled = torch.compile(copy.deepcopy(m).eval(), dynamic=False)
                    with torch.inference_mode():
                        compiled(input_ids=x)
                    calls[f"{k}/compiled"] = lambda c=compiled, x=x: c(input_ids=x)
            times = interleaved(calls, args.rounds, 20 if batch == 1 else 5)
            base = times["dense"]
            parts = [f"{k} {1e3 * v:.3f} ms ({base / v:.2f}x)" for k, v in times.items()]
            print(f"latency batch {batch} (vs dense eager): " + "; ".join(parts))
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="dense training epochs")
    parser.add_argument("--path-epochs", type=int, default=4, help="epochs per strength")
    parser.add_argument("--n-lambdas", type=int, default=8)
    parser.add_argument("--refit-epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    for k, seed in enumerate(args.seeds):
        finals = compare(args, seed)
        if k == 0:  # latency of the first seed's networks
            latency(args, finals, example.task(64, 99)[0])


if __name__ == "__main__":
    main()
