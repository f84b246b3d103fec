"""examples/ddp_train.py under torchrun: two ranks end with identical parameters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ddp_train.py"


def test_torchrun_example_ranks_agree(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(EXAMPLE), "--epochs", "3", "--lam", "1e-3", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    first = ranks[0]["0.weight"]
    assert 0 < int((first == 0).sum()) < first.numel()  # exact zeros, and a model left
