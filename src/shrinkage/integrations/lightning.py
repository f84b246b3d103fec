"""A Lightning callback that applies shrinkage's penalties by their proximal steps.

    reg = shrinkage.Regularizer(module.net, shrinkage.L1(1e-4))
    trainer = lightning.Trainer(callbacks=[ProximalCallback(reg)])
    trainer.fit(module)

After every step of the optimizer that holds the regularized parameters, the callback runs
the same proximal step as :class:`shrinkage.Proximal` would (by default the optimizer's own
element-wise step, so ``lam`` weighs the penalty against the loss; ``decoupled=True``: a step
of ``lr``), so training with it gives the same parameters as the loop written by hand with
``Proximal``. It hooks the optimizer's own
step-post hook, so gradient accumulation, schedulers and precision plugins that skip a step
skip the prox too. Needs ``pip install shrinkage[lightning]``.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from ..proximal import Proximal
from ..regularizer import Regularizer

__all__ = ["ProximalCallback"]


class ProximalCallback(Callback):
    """Apply ``regularizer``'s penalties after each optimizer step (see the module docstring).

    Args:
        regularizer: the :class:`~shrinkage.Regularizer` of (part of) the LightningModule.
        decoupled: as in :class:`~shrinkage.Proximal`.

    Raises:
        TypeError: ``regularizer`` is not a :class:`~shrinkage.Regularizer`, or ``decoupled``
            not a bool.
        ValueError: (at the start of fit) not exactly one optimizer holds the regularized
            parameters, or its step is not known and ``decoupled`` is False.

    Example:
        >>> import torch
        >>> from shrinkage import L1, Regularizer
        >>> callback = ProximalCallback(Regularizer(torch.nn.Linear(3, 1), L1(1e-3)))
        >>> callback.decoupled
        False
    """

    def __init__(self, regularizer: Regularizer, *, decoupled: bool = False) -> None:
        if not isinstance(regularizer, Regularizer):
            raise TypeError(
                f"regularizer must be a shrinkage.Regularizer, got {type(regularizer).__name__}"
            )
        self.regularizer = regularizer
        if not isinstance(decoupled, bool):
            raise TypeError(f"decoupled must be True or False, got {decoupled!r}")
        self.decoupled = decoupled
        self.proximal: Proximal | None = None
        self._handle: Any = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        targets = {id(p) for p in self.regularizer.parameters()}
        holders = [
            opt
            for opt in trainer.optimizers
            if targets & {id(p) for g in opt.param_groups for p in g["params"]}
        ]
        if len(holders) != 1:
            raise ValueError(
                "ProximalCallback needs exactly one optimizer holding the regularized "
                f"parameters; found {len(holders)} among {len(trainer.optimizers)}"
            )
        optimizer: torch.optim.Optimizer = holders[0]
        self.proximal = Proximal(optimizer, self.regularizer, decoupled=self.decoupled)
        proximal = self.proximal
        self._handle = optimizer.register_step_post_hook(
            lambda opt, args, kwargs: proximal.apply_penalties()
        )

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
