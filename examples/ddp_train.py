"""Data-parallel training with exact-zero L1 on torch.distributed (CPU, gloo).

    torchrun --nproc-per-node 2 examples/ddp_train.py --epochs 10 --out ddp-out

Every rank trains the same MLP on its shard of scikit-learn's digits; DistributedDataParallel
averages the gradients, and ``shrinkage.Proximal`` applies the L1 prox after each Adam step on
every rank. The ranks start equal and apply the same update, so they end with identical
parameters, exact zeros included; each rank writes its state dict to ``OUT/rank{r}.pt``.
Across nodes, the same command runs on each node with ``--nnodes N --node-rank K
--rdzv-endpoint HOST:PORT`` (see the README). Needs nothing beyond ``pip install
shrinkage``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import shrinkage


def train(epochs: int, lam: float, rank: int, world: int) -> nn.Module:
    """The model after ``epochs`` epochs on this rank's shard; the DDP wrapper that trained
    it is gone when this returns, before the process group is torn down."""
    X, y = load_digits(return_X_y=True)
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    data = TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=32, sampler=sampler)

    torch.manual_seed(0)  # the same initial parameters on every rank
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    ddp = DistributedDataParallel(model)
    reg = shrinkage.Regularizer(model, shrinkage.L1(lam))
    opt = shrinkage.Proximal(torch.optim.Adam(ddp.parameters(), lr=1e-3), reg)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(ddp(xb), yb).backward()
            opt.step()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--lam", type=float, default=1e-3, help="L1 strength: lam * sum|w| beside the mean loss"
    )
    parser.add_argument("--out", default="ddp-out")
    args = parser.parse_args()

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    model = train(args.epochs, args.lam, rank, world)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out / f"rank{rank}.pt")
    if rank == 0:
        report = shrinkage.sparsity(model)
        print(f"world {world}, {args.epochs} epochs: {report}")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
