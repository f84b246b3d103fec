"""Proximal under DistributedDataParallel (gloo, 2 CPU processes started by the test): the
ranks stay identical and match a one-process run over the same global batches."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from shrinkage import L1, GroupLasso, Proximal, Regularizer

WORLD = 2
STEPS = 25
GLOBAL_BATCH = 32


def make_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)
    )


def global_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [
        (
            torch.randn(GLOBAL_BATCH, 10, generator=gen),
            torch.randint(0, 4, (GLOBAL_BATCH,), generator=gen),
        )
        for _ in range(STEPS)
    ]


def make_optimizer(model: nn.Module, decoupled: bool) -> Proximal:
    # Regularizer names differ under DDP ("module." prefix): patterns that match both.
    # the two L1 weights share a bucket (one flat buffer in the decoupled mode on the CPU)
    spec = {"*0.weight": L1(0.3), "*2.weight": GroupLasso(0.05, "outputs"), "*4.weight": L1(0.3)}
    return Proximal(
        torch.optim.Adam(model.parameters(), lr=1e-2),
        Regularizer(model, spec),
        decoupled=decoupled,
    )


def train(model: nn.Module, opt: Proximal, rank: int, world: int) -> None:
    share = GLOBAL_BATCH // world
    for x, y in global_batches():
        opt.zero_grad()
        part = slice(rank * share, (rank + 1) * share)
        nn.functional.cross_entropy(model(x[part]), y[part]).backward()
        opt.step()


def worker(rank: int, init_file: str, out_dir: str, decoupled: bool) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        model = DistributedDataParallel(make_model())
        train(model, make_optimizer(model, decoupled), rank, WORLD)
        torch.save(model.module.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
    # Leave without the interpreter's shutdown: torch 2.13's gloo threads sometimes abort in
    # the C++ static destructors at exit ("terminate called without an active exception"),
    # after all the work is done and saved.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@pytest.mark.parametrize("decoupled", [False, True])
def test_ddp_ranks_agree_and_match_one_process(tmp_path: Path, decoupled: bool) -> None:
    mp.spawn(
        worker,
        args=(str(tmp_path / "init"), str(tmp_path), decoupled),
        nprocs=WORLD,
        join=True,
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key

    single = make_model()
    train(single, make_optimizer(single, decoupled), rank=0, world=1)
    reference = single.state_dict()
    for key, value in ranks[0].items():
        torch.testing.assert_close(value, reference[key], rtol=0, atol=1e-6)
    zeros = sum(int((v == 0).sum()) for k, v in reference.items() if k.endswith("weight"))
    assert zeros > 0  # the penalties did act
