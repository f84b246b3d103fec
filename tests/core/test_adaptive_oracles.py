"""``lam`` means the same under every adaptive optimizer: trained to convergence with the
default :class:`~shrinkage.Proximal`, an L1 logistic regression in torch meets the optimality
condition of ``mean loss + lam * ||w||_1`` and equals :mod:`shrinkage.linear`'s solution at
the same ``lam``.

The problem is well conditioned (independent standardized features) and in float64, so the
figures do not follow the CPU's kernels: measured KKT residuals are 1e-16 to 3e-6 (NAdam,
whose momentum schedule still moves at step 4000: its step tends to ``lr / d`` only as
``t -> inf``) and coefficient gaps 1e-15 to 2e-5, against the bounds 1e-5 and 1e-3 below.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from shrinkage import L1, Proximal, Regularizer
from shrinkage.linear import LogisticRegression

LAM = 0.02
STEPS, DECAY = 4000, 0.998  # full batch; the learning rate decays to 3e-4 of its start

ADAPTIVE: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "Adam": lambda p: torch.optim.Adam(p, lr=0.05),
    "AdamW": lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.0),
    "Adam-amsgrad": lambda p: torch.optim.Adam(p, lr=0.05, amsgrad=True),
    "NAdam": lambda p: torch.optim.NAdam(p, lr=0.05),
    "RAdam": lambda p: torch.optim.RAdam(p, lr=0.05),
    "Adamax": lambda p: torch.optim.Adamax(p, lr=0.05),
    "RMSprop": lambda p: torch.optim.RMSprop(p, lr=0.01),
    "Adagrad": lambda p: torch.optim.Adagrad(p, lr=0.5),
}


@pytest.fixture(scope="module")
def problem() -> tuple[torch.Tensor, torch.Tensor, LogisticRegression]:
    X, y = make_classification(
        n_samples=400, n_features=30, n_informative=8, n_redundant=0, flip_y=0.1,
        random_state=0,
    )  # fmt: skip
    X = StandardScaler().fit_transform(X)
    # scikit-learn's C * sum(loss) + ||w||_1 is n * C * (mean loss + ||w||_1 / (n C))
    reference = LogisticRegression(C=1 / (LAM * len(y)), l1_ratio=1.0, tol=1e-10).fit(X, y)
    return torch.tensor(X), torch.tensor(y, dtype=torch.float64), reference


def mean_loss(model: torch.nn.Linear, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.binary_cross_entropy_with_logits(model(X).squeeze(1), y)


@pytest.mark.parametrize("name", list(ADAPTIVE))
def test_default_proximal_solves_the_l1_problem_of_its_lam(name: str, problem) -> None:  # type: ignore[no-untyped-def]
    X, y, reference = problem
    torch.manual_seed(0)
    model = torch.nn.Linear(X.shape[1], 1).double()
    opt = Proximal(ADAPTIVE[name](model.parameters()), Regularizer(model, L1(LAM)))
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=DECAY)
    for _ in range(STEPS):
        opt.zero_grad()
        mean_loss(model, X, y).backward()
        opt.step()
        schedule.step()
    model.zero_grad()
    mean_loss(model, X, y).backward()
    assert model.weight.grad is not None and model.bias.grad is not None
    assert float(L1(LAM).optimality(model.weight.detach(), model.weight.grad)) < 1e-5
    assert abs(float(model.bias.grad)) < 1e-5
    coef = model.weight.detach().numpy().ravel()
    np.testing.assert_allclose(coef, reference.coef_.ravel(), atol=1e-3, rtol=0)
    assert abs(float(model.bias.detach()) - float(reference.intercept_[0])) < 1e-3
    zeros = reference.coef_.ravel() == 0
    assert zeros.any() and bool(np.all(coef[zeros] == 0))  # exact zeros where the lasso has them
