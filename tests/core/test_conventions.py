"""convert(): each conversion checked against what the other library actually optimises."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from torch import nn

from shrinkage import CONVENTIONS, L1, L2, convert


def regression() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return torch.tensor(X), torch.tensor((y - y.mean()) / y.std())


def mse_grad(
    coef: np.ndarray, X: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.tensor(coef, dtype=torch.float64, requires_grad=True)
    nn.functional.mse_loss(X @ w, y).backward()
    assert w.grad is not None
    return w.detach(), w.grad


def test_keras_l2_equals_sgd_weight_decay() -> None:
    wd = convert(0.01, "l2", "keras", "torch_sgd_weight_decay")
    assert wd == pytest.approx(0.02)
    torch.manual_seed(0)
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    models = [nn.Linear(5, 1, bias=False) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    decayed = torch.optim.SGD(models[0].parameters(), lr=0.1, weight_decay=wd)
    keras = torch.optim.SGD(models[1].parameters(), lr=0.1)
    for _ in range(10):
        for model, opt, extra in ((models[0], decayed, 0.0), (models[1], keras, 1.0)):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y) + extra * L2(0.01).value(model.weight)
            loss.backward()
            opt.step()
    torch.testing.assert_close(models[0].weight, models[1].weight)


def test_adam_coupled_weight_decay_is_the_same_loss_term() -> None:
    wd = 0.05
    lam = convert(wd, "l2", "torch_adam_weight_decay", "shrinkage")
    torch.manual_seed(0)
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    models = [nn.Linear(5, 1, bias=False) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [
        torch.optim.Adam(models[0].parameters(), lr=0.01, weight_decay=wd),
        torch.optim.Adam(models[1].parameters(), lr=0.01),
    ]
    for _ in range(10):
        for i, (model, opt) in enumerate(zip(models, opts, strict=True)):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y) + i * L2(lam).value(model.weight)
            loss.backward()
            opt.step()
    torch.testing.assert_close(models[0].weight, models[1].weight)


def test_sklearn_lasso_alpha_solves_our_l1_problem() -> None:
    X, y = regression()
    alpha = 0.02
    coef = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y).coef_
    lam = convert(alpha, "l1", "sklearn_lasso", "shrinkage")
    w, grad = mse_grad(coef, X, y)
    assert float(L1(lam).optimality(w, grad)) < 1e-8
    assert float(L1(1.5 * lam).optimality(w, grad)) > 1e-3  # a wrong factor would fail


def test_sklearn_ridge_alpha_solves_our_l2_problem() -> None:
    X, y = regression()
    alpha = 30.0
    coef = Ridge(alpha=alpha, fit_intercept=False, tol=1e-12).fit(X, y).coef_
    lam = convert(alpha, "l2", "sklearn_ridge", "shrinkage", n_samples=len(y))
    w, grad = mse_grad(coef, X, y)
    assert float(L2(lam).optimality(w, grad)) < 1e-8
    assert float(L2(2 * lam).optimality(w, grad)) > 1e-3


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_sklearn_logistic_c_solves_our_problem(penalty: str) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    C = 0.5
    clf = LogisticRegression(
        C=C,
        l1_ratio=1.0 if penalty == "l1" else 0.0,
        solver="saga" if penalty == "l1" else "lbfgs",
        fit_intercept=False,
        tol=1e-12,
        max_iter=100_000,
    ).fit(X, y)
    lam = convert(C, penalty, "sklearn_logistic", "shrinkage", n_samples=len(y))
    w = torch.tensor(clf.coef_.ravel(), requires_grad=True)
    nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(X) @ w, torch.tensor(y, dtype=torch.float64)
    ).backward()
    assert w.grad is not None
    reg = L1(lam) if penalty == "l1" else L2(lam)
    assert float(reg.optimality(w.detach(), w.grad)) < 1e-5
    assert float(reg.with_lam(2 * lam).optimality(w.detach(), w.grad)) > 1e-3


@pytest.mark.parametrize("src", list(CONVENTIONS))
@pytest.mark.parametrize("dst", list(CONVENTIONS))
@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_round_trip(src: str, dst: str, penalty: str) -> None:
    if src != dst and (penalty not in CONVENTIONS[src] or penalty not in CONVENTIONS[dst]):
        with pytest.raises(ValueError):
            convert(0.3, penalty, src, dst, n_samples=100)
        return
    there = convert(0.3, penalty, src, dst, n_samples=100)
    assert convert(there, penalty, dst, src, n_samples=100) == pytest.approx(0.3)


def test_table_values() -> None:
    assert convert(0.1, "l1", "sklearn_lasso", "keras") == pytest.approx(0.2)
    assert convert(1.0, "l2", "sklearn_ridge", "shrinkage", n_samples=200) == pytest.approx(0.005)
    assert convert(
        1e-4, "l2", "sklearn_mlp_classifier", "shrinkage", n_samples=50
    ) == pytest.approx(1e-6)
    assert convert(1e-4, "l2", "sklearn_mlp_regressor", "shrinkage", n_samples=50) == pytest.approx(
        2e-6
    )
    assert convert(2.0, "l1", "sklearn_logistic", "shrinkage", n_samples=10) == pytest.approx(0.05)
