"""A small BERT's attention heads and MLP neurons to exact zero, chosen on validation data,
then removed: the same class, the same outputs, saved and loaded back.

A ``BertForSequenceClassification`` built from a config (no download: 2 layers, 4 heads of
size 8, 64 MLP neurons per layer) learns a synthetic task: does token 1 occur more often than
token 2 in a sequence of 12 tokens (one label in ten flipped)? It is trained dense, then
along a warm-started path of strengths of the group lasso over every head (``head_groups``)
and every MLP neuron (``neuron_groups``), applied by ``Proximal``; the strength is chosen by
the one-standard-error rule on the validation loss. ``Proximal`` takes Adam's own element-wise
step, so ``lam`` weighs the group lasso against the mean loss (the path runs from 1e-4, where
every unit stays, to 3e-2). The chosen network is compacted (fewer heads per layer, narrower MLPs,
outputs checked), saved with ``save_sparse`` and loaded with ``load_sparse``.

    python examples/prune_heads.py [--epochs 12] [--path-epochs 4] [--report heads.html]

``--report`` writes an HTML page of the chosen model's exact zeros with its heat map of
heads and MLP neurons kept per layer. Needs the ``hf`` extra: ``pip install
'shrinkage[hf]'`` (transformers).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from shrinkage import (
    Proximal,
    Regularizer,
    compact,
    count_macs,
    head_groups,
    load_sparse,
    neuron_groups,
    save_sparse,
    sparsity,
)
from shrinkage.path import choose
from shrinkage.structured.heads import head_layouts

try:
    import transformers
except ModuleNotFoundError as error:
    sys.exit(f"prune_heads.py needs {error.name}: pip install 'shrinkage[hf]'")
except RuntimeError as error:  # transformers imports torchvision whenever it is installed
    if "torchvision::" not in str(error):
        raise
    sys.exit(
        "prune_heads.py: transformers imports the installed torchvision, whose compiled "
        "operators do not match this torch build; pip uninstall torchvision (the example "
        "does not use it), or install the torchvision built for this torch"
    )

VOCAB, LENGTH = 16, 12
Data = tuple[Tensor, Tensor]


def task(n: int, seed: int) -> Data:
    """Token sequences (token 0 is the classifier's first position) and their labels, one
    in ten flipped."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (n, LENGTH), generator=g)
    ones, twos = torch.randint(0, 4, (n,), generator=g), torch.randint(0, 4, (n,), generator=g)
    for i in range(n):
        slots = torch.randperm(LENGTH - 1, generator=g)[: int(ones[i] + twos[i])] + 1
        ids[i, slots[: int(ones[i])]], ids[i, slots[int(ones[i]) :]] = 1, 2
    ids[:, 0] = 0
    label = (ids == 1).sum(1) > (ids == 2).sum(1)
    flip = torch.rand(n, generator=g) < 0.1  # label noise: no network is right on all
    return ids, (label ^ flip).long()


def build() -> nn.Module:
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=LENGTH, num_labels=2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    return transformers.BertForSequenceClassification(config)


def logits(model: nn.Module, ids: Tensor) -> Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


def losses(model: nn.Module, ids: Tensor, y: Tensor) -> tuple[float, float, float]:
    """Mean cross-entropy, its standard error over the samples, and the accuracy."""
    out = logits(model, ids)
    per = F.cross_entropy(out, y, reduction="none")
    se = float(per.std() / np.sqrt(len(per)))
    return float(per.mean()), se, float((out.argmax(1) == y).float().mean())


def train(model: nn.Module, opt: torch.optim.Optimizer, data: Data, epochs: int) -> None:
    ids, y = data
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(ids), generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(model(input_ids=ids[idx]).logits, y[idx]).backward()
            opt.step()


def live(model: nn.Module) -> list[int]:
    """Live heads per layer: those whose output columns are not all zero."""
    out = []
    for name, layout in head_layouts(model):
        weight = model.get_submodule(name).get_parameter(layout.output[0].parameter)
        cols = weight.detach().reshape(weight.shape[0], layout.heads, layout.head_dim)
        out.append(int((cols.abs().sum((0, 2)) > 0).sum()))
    return out


def follow_path(
    model: nn.Module,
    train_set: Data,
    val_set: Data,
    lams: np.ndarray,
    epochs: int,
) -> float:
    """Train ``model`` along ``lams`` (increasing, warm-started, ``epochs`` each) with the
    group lasso over its heads and MLP neurons, printing each point; leave it at the point
    "1se" chooses on the validation loss, and return that strength."""
    example = train_set[0][:4]
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)  # its state carries along the path
    states, values, errors = [], [], []
    print(f"{'lam':>9} {'val loss':>9} {'val acc':>8}  live heads  live neurons")
    for lam in lams:
        groups = head_groups(model, lam)
        neurons = neuron_groups(model.bert, lam, example_input=example)
        reg = Regularizer(model, None, groups=groups + neurons)
        train(model, Proximal(adam, reg), train_set, epochs)
        loss, se, acc = losses(model, *val_set)
        states.append(copy.deepcopy(model.state_dict()))
        values.append(loss)
        errors.append(se)
        kept = [int((g.norms() > 0).sum()) for g in neurons]
        print(f"{lam:9.2e} {loss:9.4f} {100 * acc:7.2f}%  {live(model)!s:10}  {kept}")
    chosen = choose(values, lams, sample_se=errors).one_se
    model.load_state_dict(states[chosen])
    print(f"chosen by 1se: lam = {lams[chosen]:.2e}")
    return float(lams[chosen])


def strengths(n: int) -> np.ndarray:
    """The path's ``n`` strengths, geometric from 1e-4 (every head and neuron stays) to 3e-2
    (one head per layer, no MLP neuron)."""
    return np.geomspace(1e-4, 3e-2, n)


def dense_model(epochs: int, seed: int = 0) -> tuple[nn.Module, Data, Data, Data]:
    """The dense network trained for ``epochs`` on the task, and the training, validation and
    test sets (``seed`` draws the data and the initial weights)."""
    train_set, val_set, test_set = (task(n, 3 * seed + k) for k, n in enumerate((2000, 500, 500)))
    torch.manual_seed(seed)
    model = build()
    train(model, torch.optim.Adam(model.parameters(), lr=3e-3), train_set, epochs)
    return model, train_set, val_set, test_set


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="dense training epochs")
    parser.add_argument("--path-epochs", type=int, default=4, help="epochs per strength")
    parser.add_argument("--n-lambdas", type=int, default=8)
    parser.add_argument("--report", type=Path, help="write an HTML sparsity report here")
    args = parser.parse_args()

    model, train_set, val_set, test_set = dense_model(args.epochs)
    dense = copy.deepcopy(model)
    print(f"dense: validation loss {losses(model, *val_set)[0]:.4f}, heads {live(model)}")
    follow_path(model, train_set, val_set, strengths(args.n_lambdas), args.path_epochs)

    ids = test_set[0]
    if args.report is not None:
        units = head_groups(model, 0.0) + neuron_groups(model, 0.0, example_input=ids[:2])
        page = sparsity(model, units=units).to_html("prune_heads: the chosen model")
        args.report.write_text(page, encoding="utf-8")
        print(f"report: {args.report}")
    small, report = compact(model.eval(), ids[:64])
    before, after = logits(model, ids), logits(small, ids)
    change = float((before - after).abs().max())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bert.safetensors"
        save_sparse(small, path)
        loaded = load_sparse(path, architecture=build)
        assert isinstance(loaded, nn.Module)
        reloaded = logits(loaded, ids)
    print(
        f"parameters {report.parameters_before:,} -> {report.parameters_after:,}; MACs per "
        f"sequence {count_macs(dense, ids[:1]):,} -> {count_macs(small, ids[:1]):,}; heads "
        f"{live(dense)} -> {[layout.heads for _, layout in head_layouts(small)]}"
    )
    accuracy = [losses(m, *test_set)[2] for m in (dense, model, small, loaded)]
    print(
        "test accuracy: dense {:.2f}%, chosen {:.2f}%, compacted {:.2f}%, reloaded {:.2f}%".format(
            *(100 * a for a in accuracy)
        )
    )
    print(
        f"largest change of a logit: compaction {change:.2e}, reload "
        f"{float((reloaded - after).abs().max()):.2e}"
    )
    if change > 1e-4 * max(1.0, float(before.abs().max())) or not torch.equal(reloaded, after):
        sys.exit("the compacted or reloaded model does not reproduce the chosen one")


if __name__ == "__main__":
    main()
