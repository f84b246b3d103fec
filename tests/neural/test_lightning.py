"""The Lightning callback trains to the same parameters as Proximal written by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import shrinkage

pl = pytest.importorskip("lightning.pytorch")
from shrinkage.integrations.lightning import ProximalCallback  # noqa: E402


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 20, generator=g)
    w = torch.zeros(20)
    w[:4] = torch.tensor([2.0, -1.0, 0.5, 1.5])
    return X, X @ w + 0.1 * torch.randn(256, generator=g)


def net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 1))


class Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = net()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(self.net(x).squeeze(1), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


@pytest.mark.parametrize("decoupled", [False, True])
def test_callback_matches_proximal_by_hand(decoupled: bool) -> None:
    X, y = data()
    batches = [(X[i : i + 32], y[i : i + 32]) for i in range(0, 256, 32)]
    epochs = 5

    by_hand = net()
    reg = shrinkage.Regularizer(by_hand, shrinkage.L1(0.5 if decoupled else 1e-2))
    opt = shrinkage.Proximal(
        torch.optim.Adam(by_hand.parameters(), lr=1e-2), reg, decoupled=decoupled
    )
    for _ in range(epochs):
        for x, t in batches:
            opt.zero_grad()
            nn.functional.mse_loss(by_hand(x).squeeze(1), t).backward()
            opt.step()

    module = Module()
    penalty = shrinkage.L1(0.5 if decoupled else 1e-2)
    callback = ProximalCallback(shrinkage.Regularizer(module.net, penalty), decoupled=decoupled)
    trainer = pl.Trainer(
        max_epochs=epochs,
        callbacks=[callback],
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, y), batch_size=32, shuffle=False
    )
    trainer.fit(module, train_dataloaders=loader)

    zeros = 0
    for p, q in zip(by_hand.parameters(), module.net.parameters(), strict=True):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-6)
        zeros += int((q == 0).sum())
    assert zeros > 0  # the prox did run: exact zeros


def test_callback_needs_the_optimizer_of_its_parameters() -> None:
    module = Module()
    stranger = shrinkage.Regularizer(net(), shrinkage.L1(0.1))
    trainer = pl.Trainer(
        max_epochs=1, callbacks=[ProximalCallback(stranger)], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    X, y = data()
    with pytest.raises(ValueError, match="exactly one optimizer"):
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32)
        trainer.fit(module, train_dataloaders=loader)
