"""A ResNet's channels to exact zero, then removed: the same class, the same outputs.

Trains the small ResNet of ``shrinkage.neural`` (stem, a residual block of 16 channels, one of
32 at stride 2 with a 1x1 shortcut) on scikit-learn's digits with the group lasso over every
channel unit that ``neuron_groups`` reads off the traced graph (the channels that the residual
adds tie together form one unit), compacts it, checks the outputs, saves it as safetensors and
loads it back. Prints parameters, MACs per image and test accuracy before and after.

    python examples/resnet_channels.py [--lam 2e-3] [--epochs 25]

Needs nothing beyond ``pip install shrinkage``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.nn import functional as F

from shrinkage import (
    Proximal,
    Regularizer,
    compact,
    count_macs,
    load_sparse,
    neuron_groups,
    save_sparse,
)
from shrinkage.neural import SmallResNet, build_resnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lam", type=float, default=2e-3)
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args()

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X / 16.0, y, test_size=0.2, random_state=0)
    X_tr, X_te = (torch.tensor(a, dtype=torch.float32) for a in (X_tr, X_te))
    y_tr, y_te = torch.tensor(y_tr), torch.tensor(y_te)
    torch.manual_seed(0)
    model = build_resnet(64, (16, 32), 10, generator=torch.Generator().manual_seed(0))

    groups = neuron_groups(model, args.lam, example_input=X_tr[:1])
    optimizer = Proximal(
        torch.optim.Adam(model.parameters(), lr=3e-3),
        Regularizer(model, None, groups=groups),
    )
    # the rate decays to zero over the run, so the last epochs settle the weights (and the
    # BatchNorm statistics) instead of ending on one noisy step
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    order = torch.Generator().manual_seed(0)
    for _ in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(X_tr), generator=order).split(64):
            optimizer.zero_grad()
            F.cross_entropy(model(X_tr[idx]), y_tr[idx]).backward()
            optimizer.step()
        schedule.step()
    model.eval()

    small, report = compact(model, X_tr[:256])
    with torch.no_grad():
        gap = float((small(X_te) - model(X_te)).abs().max())
        acc = [float((m(X_te).argmax(1) == y_te).float().mean()) for m in (model, small)]
    zero = sum(int((g.norms() == 0).sum()) for g in groups)
    print(f"units at exactly zero after training: {zero} of {sum(g.units for g in groups)}")
    print(f"compacted: {type(small).__name__}, block 2 conv1 {small.blocks[1].conv1}")
    print(
        f"parameters {report.parameters_before:,} -> {report.parameters_after:,}; MACs per image "
        f"{report.macs_before:,} -> {report.macs_after:,} "
        f"({report.macs_before / report.macs_after:.2f}x fewer)"
    )
    print(
        f"test accuracy {100 * acc[0]:.2f} -> {100 * acc[1]:.2f}; largest output change {gap:.1e}"
    )
    for row in report.groups:
        print(f"  {row.label:22} units {row.units_before:>3} -> {row.units_after:>3}")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "small.safetensors"
        save_sparse(small, path)
        back = load_sparse(path, architecture=lambda: SmallResNet(64, (16, 32), 10))
        with torch.no_grad():
            same = torch.equal(back(X_te), small(X_te))
        print(f"saved {path.stat().st_size:,} bytes (safetensors); loaded back identical: {same}")
    assert count_macs(small, X_te[:1]) == report.macs_after


if __name__ == "__main__":
    main()
