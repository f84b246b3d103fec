"""Proximal: exactness against proximal gradient descent and scikit-learn, bit-identity at
lam = 0, kernel tiers, LR schedulers and state_dict round trips."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Lasso
from sklearn.preprocessing import StandardScaler
from torch import nn

from shrinkage import L1, L2, ElasticNet, GroupLasso, Penalty, Proximal, Regularizer

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.05),
    "sgd-nesterov": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
    "adam-amsgrad": lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "nadam": lambda p: torch.optim.NAdam(p, lr=1e-2),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-2, centered=True),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-1, lr_decay=0.01),
    "radam": lambda p: torch.optim.RAdam(p, lr=1e-2),
    "adamax": lambda p: torch.optim.Adamax(p, lr=1e-2),
}
ADAPTIVE = {"adam", "adam-amsgrad", "adamw", "nadam", "rmsprop", "adagrad", "radam", "adamax"}


def make_model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def batches(n_steps: int, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 6, generator=gen), torch.randn(16, 3, generator=gen))
        for _ in range(n_steps)
    ]


def train(
    model: nn.Module, opt: torch.optim.Optimizer, data: list[tuple[torch.Tensor, torch.Tensor]]
) -> None:
    for x, y in data:
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def same_parameters(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


MODES = [(name, False) for name in OPTIMIZERS] + [
    (name, True) for name in OPTIMIZERS if name in ADAPTIVE
]
"""``(optimizer, decoupled)``: the default step for every optimizer, and the decoupled step
for the adaptive ones (for SGD the two are one)."""


@pytest.mark.parametrize(("name", "decoupled"), MODES)
@pytest.mark.parametrize("foreach", [False, True])
def test_zero_lam_reproduces_the_inner_optimizer_bit_for_bit(
    name: str, decoupled: bool, foreach: bool
) -> None:
    data = batches(15)
    plain, wrapped = make_model(), make_model()
    train(plain, OPTIMIZERS[name](plain.parameters()), data)
    reg = Regularizer(wrapped, {"0.weight": L1(0.0), "2.*": ElasticNet(0.0, 0.5)})
    prox = Proximal(
        OPTIMIZERS[name](wrapped.parameters()), reg, decoupled=decoupled, foreach=foreach
    )
    train(wrapped, prox, data)
    assert same_parameters(plain, wrapped)


@pytest.mark.parametrize(
    "penalty", [L1(0.3), L2(0.3), ElasticNet(0.3, 0.4), GroupLasso(0.3, "outputs")], ids=repr
)
def test_with_sgd_it_is_exactly_proximal_gradient_descent(penalty: Penalty) -> None:
    data = batches(10)
    model, manual = make_model(), make_model()
    prox = Proximal(torch.optim.SGD(model.parameters(), lr=0.1), Regularizer(model, penalty))
    train(model, prox, data)
    for x, y in data:  # w <- prox_{lr P}(w - lr * grad), written out by hand
        manual.zero_grad()
        nn.functional.mse_loss(manual(x), y).backward()
        with torch.no_grad():
            for p in manual.parameters():
                p.sub_(0.1 * p.grad)
            for layer in (manual[0], manual[2]):
                penalty.prox_(layer.weight, 0.1)
    for p, q in zip(model.parameters(), manual.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize(
    "penalty",
    [
        L1(0.05),
        L2(0.05),
        ElasticNet(0.05, 0.5),
        L1(0.05, positive=True),
        GroupLasso(0.05, "inputs"),
    ],
    ids=repr,
)
def test_foreach_and_per_tensor_paths_agree_bit_for_bit(penalty: Penalty, decoupled: bool) -> None:
    data = batches(12)
    models = [make_model(), make_model()]
    for model, foreach in zip(models, (True, False), strict=True):
        opt = Proximal(
            torch.optim.Adam(model.parameters(), lr=1e-2),
            Regularizer(model, penalty),
            decoupled=decoupled,
            foreach=foreach,
        )
        train(model, opt, data)
    assert same_parameters(*models)


def test_preconditioned_step_is_the_prox_in_adams_metric() -> None:
    model = make_model()
    adam = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.99), eps=1e-6)
    prox = Proximal(adam, Regularizer(model, {"0.weight": L1(0.5)}))
    ((x, y),) = batches(1)
    nn.functional.mse_loss(model(x), y).backward()
    before = model[0].weight.detach().clone()
    adam.step()  # the inner step alone, then the prox by hand with Adam's element-wise steps
    after_inner = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.copy_(before)
    for state in adam.state.values():
        state.clear()
    prox.step()
    v_hat = adam.state[model[0].weight]["exp_avg_sq"] / (1 - 0.99)
    step = 1e-2 / (v_hat.sqrt() + 1e-6)
    expected = torch.sign(after_inner) * torch.clamp(after_inner.abs() - 0.5 * step, min=0)
    torch.testing.assert_close(model[0].weight.detach(), expected)


WITHOUT_MOMENTUM: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.0, 0.99), eps=1e-3),
    "adam-amsgrad": lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.0, 0.99), amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.0, 0.99), weight_decay=0.0),
    "nadam": lambda p: torch.optim.NAdam(p, lr=1e-2, betas=(0.0, 0.99)),
    "radam": lambda p: torch.optim.RAdam(p, lr=1e-2, betas=(0.0, 0.99)),
    "adamax": lambda p: torch.optim.Adamax(p, lr=1e-2, betas=(0.0, 0.99)),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-2, centered=True),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=1e-1, lr_decay=0.01, eps=1e-3),
}
"""Each adaptive optimizer with its momentum off: its step is then ``w <- w - s * grad``,
so the element-wise step ``s`` it took can be read off the update itself."""


@pytest.mark.parametrize("name", list(WITHOUT_MOMENTUM))
@pytest.mark.parametrize("at_step", [1, 9])  # RAdam rectifies its variance from step 6
def test_the_default_prox_takes_the_step_the_optimizer_took(name: str, at_step: int) -> None:
    """The oracle is the optimizer's own update: ``s = (w_before - w_after) / grad``, then
    ``w <- prox_{s P}(w_after)`` by hand, against :class:`Proximal`'s default step."""
    penalty = ElasticNet(0.3, 0.7)
    data = [(x.double(), y.double()) for x, y in batches(at_step)]
    model, reference = make_model().double(), make_model().double()
    inner = WITHOUT_MOMENTUM[name](model.parameters())
    plain = WITHOUT_MOMENTUM[name](reference.parameters())
    train(model, inner, data[:-1])
    train(reference, plain, data[:-1])
    prox = Proximal(inner, Regularizer(model, {"0.weight": penalty}))
    train(model, prox, data[-1:])
    before = reference[0].weight.detach().clone()
    train(reference, plain, data[-1:])
    assert reference[0].weight.grad is not None
    after = reference[0].weight.detach().clone()
    steps = (before - after) / reference[0].weight.grad
    assert bool((steps > 0).all())
    penalty.prox_(after, steps)
    torch.testing.assert_close(model[0].weight.detach(), after, rtol=1e-9, atol=1e-12)
    assert torch.equal(model[2].weight, reference[2].weight)  # not regularized: Adam alone


def test_lr_scheduler_changes_the_threshold() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(50, 40, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(-2, 2, 2000).reshape(40, 50))
    prox = Proximal(torch.optim.SGD(layer.parameters(), lr=0.2), Regularizer(layer, L1(1.0)))
    scheduler = torch.optim.lr_scheduler.StepLR(prox, step_size=1, gamma=0.5)
    shrink_by = []
    for _ in range(3):
        layer.weight.grad = torch.zeros_like(layer.weight)  # only the prox moves the weights
        before = layer.weight.detach().clone()
        prox.step()
        scheduler.step()
        big = before.abs() > 1.0
        shrink_by.append(float((before.abs() - layer.weight.detach().abs())[big].mean()))
    assert shrink_by == pytest.approx([0.2, 0.1, 0.05], rel=1e-5)


@pytest.mark.parametrize("decoupled", [False, True])
def test_state_dict_resume_equals_uninterrupted_training(decoupled: bool) -> None:
    data = batches(20)

    def build(model: nn.Module) -> tuple[Proximal, torch.optim.lr_scheduler.LRScheduler]:
        reg = Regularizer(model, {"0.weight": L1(0.2), "2.weight": GroupLasso(0.1, "inputs")})
        prox = Proximal(torch.optim.Adam(model.parameters(), lr=1e-2), reg, decoupled=decoupled)
        return prox, torch.optim.lr_scheduler.StepLR(prox, step_size=4, gamma=0.7)

    def run(
        model: nn.Module, prox: Proximal, sched: torch.optim.lr_scheduler.LRScheduler, chunk: list
    ) -> None:
        for x, y in chunk:
            prox.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            prox.step()
            sched.step()

    straight = make_model()
    prox, sched = build(straight)
    run(straight, prox, sched, data)

    first = make_model()
    prox, sched = build(first)
    run(first, prox, sched, data[:9])
    buffer = io.BytesIO()
    torch.save(
        {"model": first.state_dict(), "opt": prox.state_dict(), "sched": sched.state_dict()}, buffer
    )
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    resumed = make_model(seed=123)  # fresh objects, different initial weights
    resumed.load_state_dict(saved["model"])
    prox, sched = build(resumed)
    prox.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"])
    run(resumed, prox, sched, data[9:])
    assert same_parameters(straight, resumed)


def test_parameters_without_gradient_are_left_alone() -> None:
    model = make_model()
    prox = Proximal(torch.optim.SGD(model.parameters(), lr=0.1), Regularizer(model, L1(10.0)))
    model[0].weight.grad = torch.zeros_like(model[0].weight)
    untouched = model[2].weight.detach().clone()
    prox.step()
    assert torch.equal(model[0].weight, torch.zeros_like(model[0].weight))
    assert torch.equal(model[2].weight, untouched)


def test_closure_is_passed_through_and_its_loss_returned() -> None:
    model = make_model()
    prox = Proximal(torch.optim.SGD(model.parameters(), lr=0.1), Regularizer(model, L1(0.1)))
    ((x, y),) = batches(1)

    def closure() -> float:
        prox.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        return float(loss.detach())

    expected = float(nn.functional.mse_loss(make_model()(x), y).detach())
    assert prox.step(closure) == pytest.approx(expected)


# -- oracles: scikit-learn's Lasso solves the same problem ----------------------------------
def diabetes() -> tuple[torch.Tensor, torch.Tensor]:
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    return torch.tensor(X), torch.tensor(y).reshape(-1, 1)


def lasso_reference(lam: float) -> np.ndarray:
    X, y = diabetes()
    # mean squared error + lam * |w|_1 == 2 * (sklearn's objective with alpha = lam / 2)
    return Lasso(alpha=lam / 2, tol=1e-12, max_iter=100_000).fit(X.numpy(), y.numpy().ravel()).coef_


def fit_linear(
    opt_factory: Callable, lam: float, steps: int, decoupled: bool = False, gamma: float = 1.0
) -> nn.Linear:
    X, y = diabetes()
    torch.manual_seed(0)
    model = nn.Linear(X.shape[1], 1).double()
    reg = Regularizer(model, L1(lam))
    prox = Proximal(opt_factory(model.parameters()), reg, decoupled=decoupled)
    sched = torch.optim.lr_scheduler.ExponentialLR(prox, gamma=gamma)
    for _ in range(steps):
        prox.zero_grad()
        nn.functional.mse_loss(model(X), y).backward()
        prox.step()
        sched.step()
    return model


def kkt_residual(model: nn.Linear, lam: float) -> float:
    X, y = diabetes()
    model.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    assert model.weight.grad is not None
    return float(L1(lam).optimality(model.weight.detach(), model.weight.grad))


def test_proximal_sgd_reaches_sklearn_lasso_solution_with_exact_zeros() -> None:
    lam = 0.05
    model = fit_linear(lambda p: torch.optim.SGD(p, lr=0.2), lam, 4000)
    coef = model.weight.detach().numpy().ravel()
    reference = lasso_reference(lam)
    np.testing.assert_allclose(coef, reference, atol=1e-6)
    assert np.array_equal(coef == 0, reference == 0) and (reference == 0).any()
    assert kkt_residual(model, lam) < 1e-6


def test_preconditioned_adam_minimises_loss_plus_penalty() -> None:
    lam = 0.05
    adam = lambda p: torch.optim.Adam(p, lr=0.02)  # noqa: E731
    model = fit_linear(adam, lam, 3000, gamma=0.998)
    reference = lasso_reference(lam)
    np.testing.assert_allclose(model.weight.detach().numpy().ravel(), reference, atol=2e-3)
    assert kkt_residual(model, lam) < 1e-3
    # the decoupled mode under Adam is a different problem: far from the Lasso's optimality
    decoupled = fit_linear(adam, lam, 3000, decoupled=True, gamma=0.998)
    assert kkt_residual(decoupled, lam) > 10 * kkt_residual(model, lam)


def test_l1_prox_gives_exact_zeros_where_a_loss_term_does_not() -> None:
    """The same ``lam`` both ways under Adam: the prox gives exact zeros, the loss term none."""
    data = batches(200)
    by_prox, by_loss = make_model(), make_model()
    prox = Proximal(torch.optim.Adam(by_prox.parameters(), lr=1e-2), Regularizer(by_prox, L1(0.01)))
    train(by_prox, prox, data)
    reg = Regularizer(by_loss, L1(0.01))
    opt = torch.optim.Adam(by_loss.parameters(), lr=1e-2)
    for x, y in data:
        opt.zero_grad()
        (nn.functional.mse_loss(by_loss(x), y) + reg.penalty()).backward()
        opt.step()
    zeros = lambda m: sum(int((t.parameter == 0).sum()) for t in Regularizer(m, L1(1)).targets)  # noqa: E731
    assert zeros(by_prox) > 20 and zeros(by_loss) == 0


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("penalty", [L1(0.5), ElasticNet(0.5, 0.5), GroupLasso(2.0)], ids=repr)
def test_parameters_keep_their_storage_over_training(penalty: Penalty, decoupled: bool) -> None:
    """Every step updates the parameters in place: the same Parameter objects, the same
    memory, so references a user keeps to them (or to their data) stay live."""
    model = make_model()
    params = list(model.parameters())
    addresses = [p.data_ptr() for p in params]
    views = [p.detach() for p in params]  # aliases of the parameters' memory
    prox = Proximal(
        torch.optim.Adam(model.parameters(), lr=1e-2),
        Regularizer(model, penalty),
        decoupled=decoupled,
    )
    assert [p.data_ptr() for p in model.parameters()] == addresses
    train(model, prox, batches(25))
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert [p.data_ptr() for p in model.parameters()] == addresses
    assert all(torch.equal(v, p) for v, p in zip(views, model.parameters(), strict=True))
    assert int((model[0].weight == 0).sum()) > 0


def test_hooks_registered_on_the_wrapper_run_around_the_whole_step() -> None:
    """Proximal is a torch Optimizer set up by Optimizer.__init__: its step pre- and
    post-hooks run once per step, the post-hook after the prox."""
    model = make_model()
    prox = Proximal(torch.optim.SGD(model.parameters(), lr=0.1), Regularizer(model, L1(10.0)))
    seen: list[str] = []
    prox.register_step_pre_hook(lambda opt, args, kwargs: seen.append("pre"))
    prox.register_step_post_hook(
        lambda opt, args, kwargs: seen.append(f"post {int((model[0].weight == 0).sum())}")
    )
    train(model, prox, batches(2))
    assert seen == ["pre", f"post {model[0].weight.numel()}"] * 2  # zeros already at the hook
    assert prox.param_groups is prox.optimizer.param_groups


def test_parameters_that_moved_are_still_stepped() -> None:
    """module.to() gives the parameters new storage after the Proximal was built: the
    penalty still acts on the live weights."""
    model = make_model()
    prox = Proximal(torch.optim.SGD(model.parameters(), lr=1.0), Regularizer(model, L1(0.1)))
    model.double()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before = model[0].weight.detach().clone()
    prox.step()
    expected = torch.sign(before) * torch.clamp(before.abs() - 0.1, min=0)
    assert model[0].weight.dtype == torch.float64
    torch.testing.assert_close(model[0].weight.detach(), expected)
